//! The hub: one task that owns who is online (the [`Registry`]) and the rooms, turns what
//! sessions ask into events, has the [`EventLog`] record them, and fans out what was
//! recorded.
//!
//! Sessions talk to it through an inbox of [`Command`]s. A room's events gather and go to
//! the log as one batch; only when the log returns them, with their seqs, does anyone
//! receive them, encoded once and pushed to the queues of the room's members without
//! waiting on any socket, each member at most once a short window ([`Config::coalesce`]),
//! the members of a big room in groups on beats spread over it (see [`crate::fanout`]).
//! A connection has one queue whatever the number of its rooms; one that overflows is
//! closed with `send_queue_full` once, and leaves every room it was in. Reading a room back
//! from the store, and deep history, run on a blocking pool, never on this task; a room
//! nobody is in is dropped from memory (with a durable log) and read back when someone
//! joins it.

mod cluster;
mod command;
mod direct;
mod history;
mod login;
mod record;
mod rooms;

pub use command::{Auth, Command, Login};

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use chat_shared::limits::{MAX_NAME, REMEMBERED_IDS};
use chat_shared::{ErrorCode, Frame, Limits, Name, RoomName, ServerFrame};
use futures_lite::future;
use smol::{Executor, Timer};

use crate::Config;
use crate::accounts::{Account, Directory, Hasher, PasswordHash, Throttle};
use crate::cluster::Cluster;
use crate::log::recorder::{Recorded, Recorder};
use crate::log::{Body, Event, EventLog, LogError, Seq, Snapshot, StreamId};
use crate::pressure::Pressure;
use crate::queue::SendQueue;
use crate::registry::{ConnId, ConnMap, Registry};
use crate::room::{Effect, Pending, Room};
use crate::wire::now_millis;

use rooms::{build_room, read_room};

/// How long post ids are kept in memory at least, after the name's last post (the log may
/// remember them for longer).
const REMEMBER_FOR: Duration = Duration::from_secs(10 * 60);

/// The ids of a name's recent posts, with the message each produced.
#[derive(Default)]
struct RecentPosts {
    by_id: HashMap<Box<str>, Frame>,
    order: VecDeque<Box<str>>,
    last_post: Option<Instant>,
}

impl RecentPosts {
    fn remember(&mut self, id: &str, frame: Frame) {
        if self.by_id.contains_key(id) {
            return;
        }
        if self.order.len() == REMEMBERED_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        self.order.push_back(id.into());
        self.by_id.insert(id.into(), frame);
    }
}

/// Every room that exists, active or not: keys, names as first spelled, and skeletons
/// (two different rooms may not look alike).
#[derive(Default)]
struct RoomNames {
    by_key: HashMap<Arc<str>, Arc<str>>,
    by_skeleton: HashMap<String, Arc<str>>,
}

/// What a room name refers to.
enum Lookup {
    /// A room that exists: its key.
    Existing(Arc<str>),
    /// No room yet: its key and its name.
    New(Arc<str>, Arc<str>),
    /// Another room looks the same: its name.
    LooksLike(Arc<str>),
}

impl RoomNames {
    fn insert(&mut self, key: Arc<str>, name: Arc<str>) {
        if let Ok(parsed) = RoomName::parse(&name) {
            self.by_skeleton.insert(parsed.keys().skeleton, key.clone());
        }
        self.by_key.insert(key, name);
    }

    fn lookup(&self, room: &RoomName) -> Lookup {
        let keys = room.keys();
        if let Some((key, _)) = self.by_key.get_key_value(keys.folded.as_str()) {
            return Lookup::Existing(key.clone());
        }
        if let Some(other) = self.by_skeleton.get(&keys.skeleton) {
            return Lookup::LooksLike(self.name(other));
        }
        Lookup::New(keys.folded.into(), room.as_str().into())
    }

    fn name(&self, key: &str) -> Arc<str> {
        self.by_key.get(key).cloned().unwrap_or_else(|| key.into())
    }
}

/// A login whose name Redis is asked for.
#[derive(Debug, Clone, Copy)]
struct Claiming {
    /// The connection is still there.
    wanted: bool,
    /// The name is held here meanwhile (by a member not yet online).
    held: bool,
}

/// A room's batch, as the log answered it.
type RoomRecorded = (Arc<str>, Recorded);

/// A room in memory: ready, or being read back from the store with what members asked of
/// it meanwhile waiting, in order.
enum Slot {
    Loading(Vec<Deferred>),
    Ready(Box<Room>),
}

/// Asked of a room while it is read back from the store.
enum Deferred {
    /// A join (the member counts as in the room already).
    Join(ConnId, Option<Seq>),
    /// A post (a client re-joins its rooms, then re-sends its outbox at once).
    Post {
        conn: ConnId,
        room: RoomName,
        text: String,
        id: Option<String>,
        me: bool,
    },
    /// A part.
    Part(ConnId, RoomName),
    /// A member taken over from another node: in the room already, nothing recorded.
    Adopt(ConnId),
    /// A join of a room the member is in already: the answer again.
    Resume(ConnId, Option<Seq>),
}

impl Deferred {
    fn conn_mut(&mut self) -> &mut ConnId {
        match self {
            Deferred::Join(conn, _)
            | Deferred::Post { conn, .. }
            | Deferred::Part(conn, _)
            | Deferred::Adopt(conn)
            | Deferred::Resume(conn, _) => conn,
        }
    }
}

/// A room's stream as read back: see [`read_room`].
type RoomRead = (Snapshot, Vec<Event>);

/// A room read back from the store: its head and newest events, and in a cluster its name
/// and members.
struct Loaded {
    key: Arc<str>,
    result: Result<RoomRead, LogError>,
}

/// The hub's state; [`Hub::run`] is its task.
pub struct Hub {
    config: Config,
    log: Arc<dyn EventLog>,
    /// For a durable log: the thread that records batches (a log that keeps nothing
    /// records them at once, on this task).
    recorder: Option<Recorder>,
    /// Where the recorder reports, room by room.
    recorded: (Sender<RoomRecorded>, Receiver<RoomRecorded>),
    /// Where rooms read back from the store arrive.
    loaded: (Sender<Loaded>, Receiver<Loaded>),
    registry: Registry,
    rooms: HashMap<Arc<str>, Slot>,
    names: RoomNames,
    default_room: Arc<str>,
    /// Rooms with events waiting for a batch.
    busy: HashSet<Arc<str>>,
    /// With a log that keeps nothing: rooms that became idle, oldest first (some may
    /// have members again).
    idle: VecDeque<Arc<str>>,
    recent: HashMap<String, RecentPosts>,
    last_sweep: Instant,
    /// How busy the cores are, and so how often a room writes to a member.
    pressure: Pressure,
    /// Every account.
    accounts: Directory,
    /// Wrong passwords lately.
    throttle: Throttle,
    /// The threads that hash passwords.
    hasher: Hasher,
    /// The hub's own inbox, where the hashing threads and the recorder answer.
    inbox: Sender<Command>,
    /// Direct messages on their way to the log, by poster and id: a re-sent copy is
    /// dropped.
    direct_pending: HashSet<(String, String)>,
    /// With `--redis`: this node's part of the cluster.
    cluster: Option<Cluster>,
    /// In a cluster: logins whose name Redis is asked for: whether they still want it
    /// (false once the connection went), and whether the name is held here meanwhile.
    claiming: ConnMap<Claiming>,
    /// Who asked for a flush ([`Command::Flush`]), to answer once it is done.
    flushing: Vec<Sender<()>>,
}

impl Hub {
    /// A hub over `log`, with the default room's newest events and every account read
    /// back from it; `inbox` is the sender of the inbox [`Hub::run`] will serve.
    pub fn new(
        config: Config,
        log: Arc<dyn EventLog>,
        hasher: Hasher,
        inbox: Sender<Command>,
        cluster: Option<Cluster>,
    ) -> Result<Self, LogError> {
        let mut accounts = Directory::default();
        for (name, hash) in log.accounts()? {
            match Name::parse(&name) {
                Ok(name) => accounts.insert(Account {
                    keys: name.keys(),
                    name,
                    hash: PasswordHash::from_stored(hash),
                }),
                Err(err) => tracing::error!(name, %err, "an account's name is not valid; skipped"),
            }
        }
        let mut names = RoomNames::default();
        for (stream, name) in log.rooms()? {
            names.insert(stream.as_str().into(), name.into());
        }
        let default = config.room.clone();
        let key: Arc<str> = default.keys().folded.into();
        let name = names.name(&key);
        let name = if names.by_key.contains_key(&key) {
            name
        } else {
            Arc::from(default.as_str())
        };
        names.insert(key.clone(), name.clone());
        let read = read_room(&*log, &StreamId::new(&key), config.history)?;
        let room = build_room(&key, name, read, config.history, cluster.as_ref());
        let recorder = if log.durable() {
            Some(Recorder::spawn(log.clone()).map_err(|err| LogError::Store(err.to_string()))?)
        } else {
            None
        };
        let pressure = Pressure::new(config.coalesce, config.worker_threads(), Instant::now());
        Ok(Self {
            config,
            log,
            recorder,
            recorded: async_channel::unbounded(),
            loaded: async_channel::unbounded(),
            registry: Registry::default(),
            rooms: HashMap::from([(key.clone(), Slot::Ready(Box::new(room)))]),
            names,
            default_room: key,
            busy: HashSet::new(),
            idle: VecDeque::new(),
            recent: HashMap::new(),
            last_sweep: Instant::now(),
            pressure,
            accounts,
            throttle: Throttle::default(),
            hasher,
            inbox,
            direct_pending: HashSet::new(),
            cluster,
            claiming: ConnMap::default(),
            flushing: Vec::new(),
        })
    }

    /// Serves commands until [`Command::Shutdown`] (or until every sender of the inbox is
    /// gone), then records what was accepted and returns. Reads from the store run on
    /// `executor`'s blocking pool.
    pub async fn run(mut self, inbox: Receiver<Command>, executor: Arc<Executor<'static>>) {
        /// Commands handled between two looks at the batch deadlines.
        const DRAIN: usize = 256;
        enum Next {
            Command(Command),
            Recorded(Arc<str>, Recorded),
            Loaded(Loaded),
            Stop,
            Due,
        }
        let recorded = self.recorded.1.clone();
        let loaded = self.loaded.1.clone();
        if let Some(cluster) = &mut self.cluster {
            cluster.start(&executor, &self.inbox);
        }
        let mut timer = Timer::never();
        // When the timer is set to fire (`None`: not set, or fired). Setting it costs a
        // timer operation and a reactor wake-up, so it is only moved when the deadline
        // changes; a deadline that went away leaves it to fire once for nothing.
        let mut armed: Option<Instant> = None;
        loop {
            if let Some(due) = self.next_deadline()
                && armed != Some(due)
            {
                timer.set_at(due);
                armed = Some(due);
            }
            let next = future::or(
                async {
                    match inbox.recv().await {
                        Ok(Command::Shutdown) | Err(_) => Next::Stop,
                        Ok(command) => Next::Command(command),
                    }
                },
                future::or(
                    async {
                        recorded
                            .recv()
                            .await
                            .map_or(Next::Stop, |(key, result)| Next::Recorded(key, result))
                    },
                    future::or(
                        async { loaded.recv().await.map_or(Next::Stop, Next::Loaded) },
                        async {
                            (&mut timer).await;
                            Next::Due
                        },
                    ),
                ),
            )
            .await;
            match next {
                Next::Command(command) => {
                    self.handle(command, &executor);
                    for _ in 0..DRAIN {
                        match inbox.try_recv() {
                            Ok(Command::Shutdown) => return self.finish(&recorded).await,
                            Ok(command) => self.handle(command, &executor),
                            Err(_) => break,
                        }
                    }
                }
                Next::Recorded(key, result) => self.recorded(&key, result),
                Next::Loaded(loaded) => self.room_loaded(loaded),
                Next::Stop => return self.finish(&recorded).await,
                Next::Due => armed = None,
            }
            if !self.flushing.is_empty() {
                self.finish(&recorded).await;
                for done in self.flushing.drain(..) {
                    let _ = done.try_send(());
                }
            }
            let now = Instant::now();
            self.pressure.tick(now);
            self.submit(now);
        }
    }

    /// Records what was accepted and pushes everything owed (nobody is told anybody
    /// left), then returns.
    async fn finish(&mut self, recorded: &Receiver<RoomRecorded>) {
        loop {
            let recording = self
                .rooms
                .values()
                .any(|slot| matches!(slot, Slot::Ready(room) if room.is_recording()));
            if recording {
                match recorded.recv().await {
                    Ok((key, result)) => self.recorded(&key, result),
                    Err(_) => return,
                }
            } else if self.busy.is_empty() {
                return;
            } else {
                self.submit(Instant::now() + Duration::from_secs(3600));
            }
        }
    }

    /// When the next batch of any room may go.
    fn next_deadline(&self) -> Option<Instant> {
        let now = Instant::now();
        self.busy
            .iter()
            .filter_map(|key| match self.rooms.get(key) {
                Some(Slot::Ready(room)) => room.next_due(now, self.pressure.window()),
                _ => None,
            })
            .min()
    }

    /// Handles one command.
    fn handle(&mut self, command: Command, executor: &Executor<'static>) {
        match command {
            Command::Login(login) => self.login(login),
            Command::Post {
                conn,
                room,
                text,
                id,
                me,
            } => self.post(conn, room.as_ref(), text, id, me),
            Command::History {
                conn,
                room,
                span,
                limit,
            } => self.history(conn, room.as_ref(), span, limit, executor),
            Command::Join { conn, room, since } => self.join(conn, &room, since, executor),
            Command::Part { conn, room } => self.part(conn, &room),
            Command::Rooms { conn } => self.list_rooms(conn),
            Command::Leave { conn, reason } => self.leave(conn, reason),
            Command::Direct {
                conn,
                to,
                text,
                id,
                me,
            } => self.direct(conn, &to, text, id, me),
            Command::DirectHistory {
                conn,
                with,
                span,
                limit,
            } => self.direct_history(conn, &with, span, limit, executor),
            Command::SetPassword {
                conn,
                password,
                new_password,
            } => self.set_password(conn, password, new_password),
            Command::Verified { login, right } => self.verified(*login, right),
            Command::Registered { login, result } => self.registered(*login, result),
            Command::PasswordChecked {
                conn,
                folded,
                ip,
                outcome,
            } => self.password_checked(conn, &folded, ip, outcome),
            Command::DirectRecorded {
                event,
                conn,
                result,
            } => self.direct_recorded(&event, conn, result),
            Command::Cluster(news) => self.news(news, executor),
            Command::Flush(done) => self.flushing.push(done),
            Command::Shutdown => {}
        }
        let now = Instant::now();
        if now.duration_since(self.last_sweep) > Duration::from_secs(60) {
            self.sweep_recent(now);
            self.throttle.sweep(now);
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_frame: self.config.max_frame as u32,
            max_text: self.config.max_text as u32,
            max_name: MAX_NAME as u32,
            rate: self.config.rate,
            burst: self.config.burst,
        }
    }

    fn room(&mut self, key: &str) -> Option<&mut Room> {
        match self.rooms.get_mut(key) {
            Some(Slot::Ready(room)) => Some(room),
            _ => None,
        }
    }

    /// Queues an event in a room.
    fn push(&mut self, key: &Arc<str>, body: Body, poster: Option<String>, effect: Effect) {
        // In a cluster a member's own `joined` or `left` is recorded only while its
        // session is still its own (see `NewEvent::holder`).
        let holder = match &effect {
            Effect::Welcome(welcome) => Some(welcome.conn),
            Effect::Joined { conn, .. } | Effect::Parted { conn } => Some(*conn),
            Effect::Post { .. } | Effect::None => None,
        }
        .filter(|_| self.cluster.is_some())
        .and_then(|conn| self.registry.get(conn))
        .map(|member| member.token.clone());
        if let Some(room) = self.room(key) {
            let event = room.event(now_millis(), body, poster, holder);
            room.push(Pending { event, effect });
            self.busy.insert(key.clone());
        }
    }

    /// The send queue of a member whose welcome went out.
    fn online_queue(&self, conn: ConnId) -> Option<SendQueue> {
        self.registry
            .get(conn)
            .filter(|m| m.online)
            .map(|m| m.queue.clone())
    }

    /// Queues a frame for one connection, outside its limit (an answer it asked for).
    fn tell(&self, conn: ConnId, frame: &ServerFrame) {
        if let Some(member) = self.registry.get(conn) {
            member.queue.push_unmetered(Frame::encode(frame));
        }
    }

    /// An `error` for one frame; `room` is the room the frame named, if it named one.
    fn error(
        &self,
        conn: ConnId,
        code: ErrorCode,
        message: String,
        id: Option<String>,
        room: Option<&str>,
    ) {
        self.tell(
            conn,
            &ServerFrame::Error {
                room: room.map(str::to_string),
                code,
                message,
                id,
                retry_after: None,
            },
        );
    }

    fn sweep_recent(&mut self, now: Instant) {
        self.last_sweep = now;
        let registry = &self.registry;
        self.recent.retain(|folded, recent| {
            registry.is_online(folded)
                || recent
                    .last_post
                    .is_some_and(|t| now.duration_since(t) < REMEMBER_FOR)
        });
    }
}
