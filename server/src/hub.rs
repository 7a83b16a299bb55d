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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use chat_shared::limits::{MAX_NAME, MAX_PASSWORD, REMEMBERED_IDS};
use chat_shared::{
    CloseCode, Conversation, ErrorCode, Frame, LeaveReason, Limits, Name, NameKeys, Password,
    RejectCode, RoomName, RoomUsers, ServerFrame, check_password, fold,
};
use futures_lite::future;
use smol::{Executor, Timer};

use crate::Config;
use crate::accounts::{self, Account, Directory, Hasher, PasswordHash, Throttle};
use crate::cluster::{AfterClaim, Claim, Cluster, Counted, News, Request};
use crate::log::recorder::{Recorded, Recorder};
use crate::log::{
    Body, Direct, Event, EventLog, Head, LogError, NewEvent, Note, Seq, Snapshot, Span, StreamId,
    for_reader,
};
use crate::pressure::Pressure;
use crate::queue::{Batch, SendQueue};
use crate::registry::{Admission, ConnId, ConnMap, ConnSet, Member, Registry};
use crate::room::{Effect, Pending, Room, Welcome};
use crate::wire::{closing, now_millis, random_hex};

/// What a session asks of the hub.
#[derive(Debug)]
pub enum Command {
    /// Log in (the `hello` was valid); the hub answers through `reply`.
    Login(Login),
    /// Post a message (already validated and rate-limited by the session).
    Post {
        /// The sender.
        conn: ConnId,
        /// The room; `None`: the default room.
        room: Option<RoomName>,
        /// The text.
        text: String,
        /// The sender's id for the post.
        id: Option<String>,
        /// An action.
        me: bool,
    },
    /// Send events of a room's history to this member.
    History {
        /// Who asks.
        conn: ConnId,
        /// The room; `None`: the default room.
        room: Option<RoomName>,
        /// Which; `None`: the newest.
        span: Option<Span>,
        /// How many at most.
        limit: usize,
    },
    /// Enter a room, or resume it.
    Join {
        /// Who.
        conn: ConnId,
        /// The room.
        room: RoomName,
        /// Resume after this seq.
        since: Option<Seq>,
    },
    /// Leave a room.
    Part {
        /// Who.
        conn: ConnId,
        /// The room.
        room: RoomName,
    },
    /// List the rooms with someone in them.
    Rooms {
        /// Who asks.
        conn: ConnId,
    },
    /// This connection is gone.
    Leave {
        /// Which.
        conn: ConnId,
        /// Why, as recorded in `left`.
        reason: LeaveReason,
    },
    /// A direct message to an account (already validated and rate-limited).
    Direct {
        /// The sender.
        conn: ConnId,
        /// The recipient, as the frame named it.
        to: String,
        /// The text.
        text: String,
        /// The sender's id for the post.
        id: Option<String>,
        /// An action.
        me: bool,
    },
    /// Send events of a direct conversation to this member.
    DirectHistory {
        /// Who asks.
        conn: ConnId,
        /// The other account, as the frame named it.
        with: String,
        /// Which; `None`: the newest.
        span: Option<Span>,
        /// How many at most.
        limit: usize,
    },
    /// Change the account's password.
    SetPassword {
        /// Who asks.
        conn: ConnId,
        /// The password now.
        password: Password,
        /// The new one.
        new_password: Password,
    },
    /// The hashing threads answered a password login.
    Verified {
        /// The login.
        login: Box<Login>,
        /// Whether the password was right.
        right: bool,
    },
    /// The hashing threads hashed and stored a new account.
    Registered {
        /// The login that registers it.
        login: Box<Login>,
        /// Its hash, or why it could not be made or stored.
        result: Result<PasswordHash, String>,
    },
    /// The hashing threads answered a `set_password`.
    PasswordChecked {
        /// Who asked.
        conn: ConnId,
        /// The account.
        folded: String,
        /// The address it asked from.
        ip: IpAddr,
        /// What came of it.
        outcome: PasswordOutcome,
    },
    /// The log recorded a direct message (or could not).
    DirectRecorded {
        /// The message.
        event: Box<NewEvent>,
        /// Who sent it.
        conn: ConnId,
        /// The log's answer.
        result: Recorded,
    },
    /// News from the cluster (with `--redis`).
    Cluster(News),
    /// The server is about to close every connection: record what was accepted and push
    /// everything owed now, so that it reaches everyone before their `closing`; then
    /// answer.
    Flush(Sender<()>),
    /// The server is going down: record what was accepted, then stop.
    Shutdown,
}

/// What came of a `set_password`.
#[derive(Debug)]
pub enum PasswordOutcome {
    /// The current password was wrong.
    Wrong,
    /// Changed: the new hash is stored.
    Changed(PasswordHash),
    /// Right, but the new hash could not be made or stored.
    Failed(String),
}

/// How a login proves its name.
#[derive(Debug)]
pub enum Auth {
    /// A guest name (or a token takeover).
    Guest,
    /// Log in to an account.
    Password(Password),
    /// Create an account, then log in.
    Register(Password),
}

/// A login request.
#[derive(Debug)]
pub struct Login {
    /// The connection logging in.
    pub conn: ConnId,
    /// The protocol version it speaks.
    pub protocol: u32,
    /// The name it asks for.
    pub name: Name,
    /// Resume the default room after this seq.
    pub since: Option<u64>,
    /// The epoch `since` counts in.
    pub epoch: Option<String>,
    /// The token of an earlier session, to take it over.
    pub token: Option<String>,
    /// Where the member's frames go; the welcome or the rejection is queued here.
    pub queue: SendQueue,
    /// Told whether the login was accepted.
    pub reply: Sender<bool>,
    /// The posts the log remembers for this name (read before the login reached the hub).
    pub recent: Vec<(String, Frame)>,
    /// How it proves its name.
    pub auth: Auth,
    /// The address it connects from.
    pub ip: IpAddr,
    /// The conversations the log holds for this name, should it be an account (read
    /// before the login reached the hub).
    pub conversations: Vec<Conversation>,
    /// The token its session will have, once made (in a cluster, before the name is
    /// claimed).
    pub session: Option<String>,
}

/// How long post ids are kept in memory at least, after the name's last post (the log may
/// remember them for longer).
const REMEMBER_FOR: Duration = Duration::from_secs(10 * 60);
/// The most rooms a `room_list` names.
const ROOM_LIST_MAX: usize = 500;

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

    /// Refuses a login: queues the rejection and tells the session.
    fn reject(login: &Login, code: RejectCode, message: String, retry_after: Option<u64>) {
        login
            .queue
            .push_unmetered(Frame::encode(&ServerFrame::Rejected {
                code,
                message,
                retry_after,
            }));
        let _ = login.reply.try_send(false);
    }

    /// A new session token for `login`; without one (no random bytes) the login is
    /// refused as `unavailable`.
    fn session_token(login: &Login) -> Option<String> {
        let token = random_hex(16).ok();
        if token.is_none() {
            tracing::error!("no random bytes for a token");
            Self::reject(
                login,
                RejectCode::Unavailable,
                "the server cannot make a session token now; try again".into(),
                Some(2000),
            );
        }
        token
    }

    fn login(&mut self, mut login: Login) {
        let keys = login.name.keys();
        match std::mem::replace(&mut login.auth, Auth::Guest) {
            Auth::Guest => {
                let admission = self
                    .registry
                    .admit(&login.name, &keys, login.token.as_deref());
                if self.cluster.is_some() {
                    // Whether the name is free (or this login's to take over) on every
                    // node is for Redis to say.
                    // The checks come in the same order as alone: a takeover, an
                    // account's name, a name taken.
                    let guest = AfterClaim::Login { account: false };
                    if let Admission::Takeover(_) = admission {
                        return self.claim(login, guest, false, false);
                    }
                    // With a token, the session to take over may be on another node.
                    if login.token.is_none() && self.refuse_an_accounts_name(&login, &keys) {
                        return;
                    }
                    return match admission {
                        Admission::Taken(message) => {
                            Self::reject(&login, RejectCode::NameTaken, message, None);
                        }
                        _ => self.claim(login, guest, false, true),
                    };
                }
                if let Admission::Takeover(old) = admission {
                    return self.take_over(old, login);
                }
                if self.refuse_an_accounts_name(&login, &keys) {
                    return;
                }
                match admission {
                    Admission::Taken(message) => {
                        Self::reject(&login, RejectCode::NameTaken, message, None);
                    }
                    _ => self.fresh_login(login, keys, false),
                }
            }
            Auth::Register(password) => self.register(login, &keys, password),
            Auth::Password(password) => self.check_password(login, &keys, password),
        }
    }

    /// Refuses a name that is an account's, or looks like one (`name_registered`); says
    /// whether it did.
    fn refuse_an_accounts_name(&self, login: &Login, keys: &NameKeys) -> bool {
        let Some(owner) = self.accounts.colliding(keys) else {
            return false;
        };
        let message = if fold(owner) == keys.folded {
            format!("{owner} is an account: log in with its password, or choose another name")
        } else {
            format!("{} looks like the account {owner}", login.name)
        };
        Self::reject(login, RejectCode::NameRegistered, message, None);
        true
    }

    /// Registers an account (the session checked `registration_closed` and the name):
    /// `name_registered`, `name_taken`, `weak_password`, in this order; then the name is
    /// held while the hashing threads hash the password and store the account.
    fn register(&mut self, login: Login, keys: &NameKeys, password: Password) {
        if self.refuse_an_accounts_name(&login, keys) {
            return;
        }
        if let Admission::Taken(message) = self.registry.admit(&login.name, keys, None) {
            return Self::reject(&login, RejectCode::NameTaken, message, None);
        }
        if let Err(weak) = check_password(login.name.as_str(), password.expose()) {
            return Self::reject(&login, RejectCode::WeakPassword, weak.to_string(), None);
        }
        if self.cluster.is_some() {
            // The name must be free on every node before it is hashed and stored.
            return self.claim(login, AfterClaim::Register(password), false, true);
        }
        self.hash_new_account(login, keys, password);
    }

    /// Hashes a new account's password and stores it, on the hashing threads; the name is
    /// held meanwhile.
    fn hash_new_account(&mut self, login: Login, keys: &NameKeys, password: Password) {
        self.accounts.reserve(keys);
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        let (folded, name) = (keys.folded.clone(), login.name.to_string());
        let login = Box::new(login);
        // The login travels with the job and comes back with its answer; if the queue is
        // full, it comes back at once.
        let job = move |login: Box<Login>| {
            let result = accounts::hash(&password).and_then(|hash| {
                match log.create_account(&folded, &name, hash.as_stored()) {
                    Ok(true) => Ok(hash),
                    Ok(false) => Err("the account exists already".into()),
                    Err(err) => Err(err.to_string()),
                }
            });
            let _ = inbox.try_send(Command::Registered { login, result });
        };
        if let Err(login) = self.hasher.submit(login, job) {
            self.accounts.release(&keys.folded);
            self.unclaim(&login);
            Self::busy(&login);
        }
    }

    /// Too many password checks are queued: come back in a moment.
    fn busy(login: &Login) {
        Self::reject(
            login,
            RejectCode::Unavailable,
            "the server is checking many passwords at once; try again in a moment".into(),
            Some(2000),
        );
    }

    /// A log-in with a password: `no_account`, `too_many_attempts`, then the hashing
    /// threads check it.
    fn check_password(&mut self, login: Login, keys: &NameKeys, password: Password) {
        let Some(account) = self.accounts.get(&keys.folded) else {
            let message = format!("there is no account {}", login.name);
            return Self::reject(&login, RejectCode::NoAccount, message, None);
        };
        if let Err(wait) = self.throttle.check(&keys.folded, login.ip, Instant::now()) {
            return Self::reject(
                &login,
                RejectCode::TooManyAttempts,
                "too many wrong passwords; wait before trying again".into(),
                Some(wait.as_millis() as u64 + 1),
            );
        }
        if password.expose().len() > MAX_PASSWORD {
            // Longer than any password can be: wrong, without hashing it.
            return self.verified(login, false);
        }
        let hash = account.hash.clone();
        let inbox = self.inbox.clone();
        let job = move |login: Box<Login>| {
            let right = accounts::verify(&hash, &password);
            let _ = inbox.try_send(Command::Verified { login, right });
        };
        if let Err(login) = self.hasher.submit(Box::new(login), job) {
            Self::busy(&login);
        }
    }

    /// The password of a log-in was checked.
    fn verified(&mut self, mut login: Login, right: bool) {
        let keys = login.name.keys();
        if !right {
            self.count_failure(&keys.folded, login.ip);
            return Self::reject(
                &login,
                RejectCode::BadPassword,
                "wrong password".into(),
                None,
            );
        }
        let Some(account) = self.accounts.get(&keys.folded) else {
            return Self::reject(
                &login,
                RejectCode::NoAccount,
                "no such account".into(),
                None,
            );
        };
        // The welcome carries the account's own spelling.
        login.name = account.name.clone();
        let keys = account.keys.clone();
        let account = AfterClaim::Login { account: true };
        match self.registry.holder(&keys) {
            // In a cluster, the account may be online on another node too: Redis says.
            Some((_, true)) if self.cluster.is_some() => self.claim(login, account, true, false),
            None if self.cluster.is_some() => self.claim(login, account, true, true),
            // The account is online: this connection takes it over.
            Some((conn, true)) => self.take_over(conn, login),
            Some((_, false)) => Self::reject(
                &login,
                RejectCode::NameTaken,
                format!("{} is logging in on another connection", login.name),
                None,
            ),
            None => self.fresh_login(login, keys, true),
        }
    }

    /// Counts a wrong password (on every node, in a cluster).
    fn count_failure(&mut self, folded: &str, ip: IpAddr) {
        self.throttle.fail(folded, ip, Instant::now());
        if let Some(cluster) = &self.cluster {
            cluster.ask(Request::Fail {
                account: folded.to_string(),
                ip,
            });
        }
    }

    /// In a cluster: asks Redis for the name on every node; the answer comes back as
    /// [`News::Claimed`]. With `hold`, the name is held here meanwhile (it is not held
    /// here by anyone); without, a member here holds it and the claim may take it over.
    fn claim(&mut self, mut login: Login, next: AfterClaim, proven: bool, hold: bool) {
        let Some(token) = Self::session_token(&login) else {
            return;
        };
        let Some(cluster) = &self.cluster else {
            return;
        };
        let account = match next {
            AfterClaim::Login { account } => account,
            AfterClaim::Register(_) => true,
        };
        login.session = Some(token.clone());
        if hold {
            self.registry.insert(
                login.conn,
                Member {
                    name: login.name.clone(),
                    keys: login.name.keys(),
                    token: token.clone(),
                    queue: login.queue.clone(),
                    online: false,
                    rooms: Vec::new(),
                    protocol: login.protocol,
                    account,
                    ip: login.ip,
                },
            );
        }
        self.claiming.insert(
            login.conn,
            Claiming {
                wanted: true,
                held: hold,
            },
        );
        cluster.ask(Request::Claim {
            login: Box::new(login),
            next,
            token,
            proven,
            account,
        });
    }

    /// Gives up a name claimed for `login` that will not be used (a failed registration,
    /// an account's name): it is free again on every node.
    fn unclaim(&mut self, login: &Login) {
        let (Some(cluster), Some(token)) = (&self.cluster, &login.session) else {
            return;
        };
        cluster.ask(Request::Release {
            member: login.name.keys().folded,
            token: token.clone(),
            reason: LeaveReason::Quit,
        });
        self.drop_placeholder(login.conn);
    }

    /// Forgets a member not yet online (the name held for a login while it is claimed, or
    /// while its `joined` is recorded).
    fn drop_placeholder(&mut self, conn: ConnId) {
        if self.registry.get(conn).is_some_and(|member| !member.online) {
            self.registry.remove(conn);
        }
    }

    /// Redis answered a claim.
    fn claimed(
        &mut self,
        login: Login,
        next: AfterClaim,
        outcome: Result<Claim, LogError>,
        executor: &Executor<'static>,
    ) {
        let keys = login.name.keys();
        // Gone meanwhile: a name held here is released behind the claim (same order); one
        // claimed without being held here is released below.
        let Claiming { wanted, held } = self.claiming.remove(&login.conn).unwrap_or(Claiming {
            wanted: false,
            held: true,
        });
        let guest = matches!(next, AfterClaim::Login { account: false });
        let reject_taken = |hub: &mut Self, login: &Login, message: String| {
            hub.drop_placeholder(login.conn);
            // An account's name is refused as such first, as alone.
            if !(guest && hub.refuse_an_accounts_name(login, &keys)) {
                Self::reject(login, RejectCode::NameTaken, message, None);
            }
        };
        match outcome {
            Err(err) => {
                tracing::error!(%err, "cannot claim a name");
                // It may have gone through before the answer was lost.
                self.unclaim(&login);
                Self::reject(
                    &login,
                    RejectCode::Unavailable,
                    "the server cannot reach its cluster now; try again".into(),
                    Some(2000),
                );
            }
            Ok(Claim::Taken(name)) => {
                reject_taken(self, &login, format!("{name} is already online"));
            }
            Ok(Claim::LooksLike(name)) => {
                let message = format!("{name} is online, and {} looks the same", login.name);
                reject_taken(self, &login, message);
            }
            Ok(Claim::Free) if !wanted => {
                if !held {
                    self.unclaim(&login);
                }
            }
            Ok(Claim::Free) => match next {
                AfterClaim::Login { account } => {
                    if !account && self.refuse_an_accounts_name(&login, &keys) {
                        self.unclaim(&login);
                        return;
                    }
                    // Redis no longer knew a session here under this name (this node was
                    // taken for dead a moment ago): that session is over.
                    if let Some((stale, _)) = self
                        .registry
                        .holder(&keys)
                        .filter(|(conn, _)| *conn != login.conn)
                    {
                        self.drop_member(stale, CloseCode::Shutdown);
                    }
                    self.fresh_login(login, keys, account);
                }
                AfterClaim::Register(password) => self.hash_new_account(login, &keys, password),
            },
            Ok(Claim::Takeover {
                node,
                name,
                account,
                rooms,
            }) => {
                let here = self
                    .cluster
                    .as_ref()
                    .is_some_and(|cluster| cluster.node() == node);
                let old = self
                    .registry
                    .holder(&keys)
                    .filter(|(conn, online)| *online && *conn != login.conn)
                    .map(|(conn, _)| conn);
                if !wanted {
                    // Nobody is there to take the session: it ends, with its `left`s.
                    if let (true, Some(old)) = (here, old) {
                        let conn = login.conn;
                        self.take_over(old, login);
                        self.leave(conn, LeaveReason::Lost);
                    } else if !held {
                        self.unclaim(&login);
                    }
                    return;
                }
                match old {
                    Some(old) if here => self.take_over(old, login),
                    _ => self.adopt(login, &name, account, &rooms, executor),
                }
            }
        }
    }

    /// A member taken over from another node: it keeps its rooms, nobody sees anything,
    /// and the old node closes its old connection (`replaced`).
    fn adopt(
        &mut self,
        mut login: Login,
        name: &str,
        account: bool,
        rooms: &[String],
        executor: &Executor<'static>,
    ) {
        let Some(token) = login.session.take() else {
            return;
        };
        let name = Name::parse(name).unwrap_or_else(|_| login.name.clone());
        let mut keys: Vec<Arc<str>> = rooms
            .iter()
            .map(|room| {
                self.names
                    .by_key
                    .get_key_value(room.as_str())
                    .map_or_else(|| Arc::from(room.as_str()), |(key, _)| key.clone())
            })
            .collect();
        keys.sort_by_key(|key| *key != self.default_room);
        let (conn, queue) = (login.conn, login.queue.clone());
        self.registry.insert(
            conn,
            Member {
                keys: name.keys(),
                name,
                token,
                queue: queue.clone(),
                online: false,
                rooms: keys.clone(),
                protocol: login.protocol,
                account,
                ip: login.ip,
            },
        );
        for key in &keys {
            match self.rooms.get_mut(key) {
                Some(Slot::Ready(room)) => room.fanout.add(conn, queue.clone()),
                Some(Slot::Loading(waiting)) => waiting.push(Deferred::Adopt(conn)),
                None => self.load_room(key, vec![Deferred::Adopt(conn)], executor),
            }
        }
        let welcome = Welcome {
            conn,
            since: login.since,
            epoch: login.epoch,
            queue,
            reply: login.reply,
            conversations: account.then_some(login.conversations),
        };
        let newest = self
            .room(&self.default_room.clone())
            .map_or(0, |room| room.head.newest);
        let in_default = keys.contains(&self.default_room);
        self.send_welcome(&welcome, newest, in_default);
    }

    /// What the cluster reports.
    fn news(&mut self, news: News, executor: &Executor<'static>) {
        match news {
            News::Claimed {
                login,
                next,
                outcome,
            } => self.claimed(*login, next, outcome, executor),
            News::Tailed { key, events } => {
                if let Some(room) = self.room(&key) {
                    room.tailed.extend(events);
                    self.apply_tailed(&key);
                }
            }
            News::Direct(messages) => {
                for (from, to, frame) in messages {
                    self.deliver_direct(&from, &to, &frame);
                }
            }
            News::Replaced { member, token } => self.replaced(&member, &token, CloseCode::Replaced),
            News::Orphaned { member, token } => self.replaced(&member, &token, CloseCode::Shutdown),
            News::Subscribed => {
                if let Some(cluster) = &self.cluster {
                    let members = self
                        .registry
                        .sorted()
                        .filter(|(_, member)| member.online)
                        .map(|(_, member)| (member.keys.folded.clone(), member.token.clone()))
                        .collect::<Vec<_>>();
                    if !members.is_empty() {
                        cluster.ask(Request::Verify(members));
                    }
                }
            }
            News::Accounts(accounts) => {
                for (name, hash) in accounts {
                    if let Ok(name) = Name::parse(&name) {
                        self.accounts.insert(Account {
                            keys: name.keys(),
                            name,
                            hash: PasswordHash::from_stored(hash),
                        });
                    }
                }
            }
            News::Rooms(rooms) => {
                for (key, name) in rooms {
                    self.names.insert(key.into(), name.into());
                }
            }
            News::Failed { account, ip } => self.throttle.fail(&account, ip, Instant::now()),
            News::Failures(failures) => {
                let (now, now_ms) = (Instant::now(), now_millis());
                for (counted, at) in failures {
                    let at = now
                        .checked_sub(Duration::from_millis(now_ms.saturating_sub(at)))
                        .unwrap_or(now);
                    match counted {
                        Counted::Account(account) => self.throttle.fail_account(&account, at),
                        Counted::Address(ip) => self.throttle.fail_address(ip, at),
                    }
                }
            }
            News::CutOff => self.cut_off(),
        }
    }

    /// A member here was taken over on another node: its connection is closed with
    /// `code` (`replaced`), and nothing is recorded (it is online there).
    fn replaced(&mut self, member: &str, token: &str, code: CloseCode) {
        let Some(conn) = self.registry.conn_of(member) else {
            return;
        };
        if self.registry.get(conn).is_none_or(|m| m.token != token) {
            return;
        }
        self.claiming.remove(&conn);
        self.drop_member(conn, code);
    }

    /// Every connection here starts over: the cluster took this node's members offline.
    fn cut_off(&mut self) {
        let conns: Vec<ConnId> = self.registry.sorted().map(|(conn, _)| conn).collect();
        for conn in conns {
            self.drop_member(conn, CloseCode::Shutdown);
        }
    }

    /// Takes a member out of the registry and its rooms' fan-out and closes its
    /// connection with `code`, recording nothing.
    fn drop_member(&mut self, conn: ConnId, code: CloseCode) {
        let Some(member) = self.registry.remove(conn) else {
            return;
        };
        member.queue.close_with(Some(closing(code)));
        for key in &member.rooms {
            if let Some(room) = self.room(key) {
                room.fanout.remove(conn);
            }
            self.drop_if_idle(key);
        }
    }

    /// A new account was hashed and stored (or not).
    fn registered(&mut self, login: Login, result: Result<PasswordHash, String>) {
        let keys = login.name.keys();
        match result {
            Ok(hash) => {
                tracing::info!(account = %login.name, "account registered");
                self.accounts.insert(Account {
                    name: login.name.clone(),
                    keys: keys.clone(),
                    hash,
                });
                self.fresh_login(login, keys, true);
            }
            Err(err) => {
                tracing::error!(%err, "cannot register an account");
                self.accounts.release(&keys.folded);
                self.unclaim(&login);
                Self::reject(
                    &login,
                    RejectCode::Unavailable,
                    "the account could not be created now; try again".into(),
                    Some(2000),
                );
            }
        }
    }

    /// A login that takes a free name: it joins the default room, and gets its welcome
    /// once that `joined` is recorded.
    fn fresh_login(&mut self, mut login: Login, keys: NameKeys, account: bool) {
        let Some(token) = login.session.take().or_else(|| Self::session_token(&login)) else {
            return;
        };
        // Only names with posts to remember get an entry: an idle connection costs none.
        if !login.recent.is_empty() {
            let entry = self.recent.entry(keys.folded.clone()).or_default();
            for (id, frame) in login.recent {
                entry.remember(&id, frame);
            }
        }
        let name = login.name.to_string();
        let default = self.default_room.clone();
        self.registry.insert(
            login.conn,
            Member {
                name: login.name,
                keys,
                token,
                queue: login.queue.clone(),
                online: false,
                rooms: vec![default.clone()],
                protocol: login.protocol,
                account,
                ip: login.ip,
            },
        );
        let welcome = Welcome {
            conn: login.conn,
            since: login.since,
            epoch: login.epoch,
            queue: login.queue,
            reply: login.reply,
            conversations: account.then_some(login.conversations),
        };
        self.push(
            &default,
            Body::Joined { name },
            None,
            Effect::Welcome(Box::new(welcome)),
        );
    }

    /// The same user on a new connection, with its token: it keeps the rooms, the others
    /// see nothing, the old connection is told it was replaced.
    fn take_over(&mut self, old: ConnId, mut login: Login) {
        let Some(token) = login.session.take().or_else(|| Self::session_token(&login)) else {
            return;
        };
        let Some(previous) = self.registry.remove(old) else {
            return;
        };
        previous
            .queue
            .close_with(Some(closing(CloseCode::Replaced)));
        for key in &previous.rooms {
            match self.rooms.get_mut(key) {
                Some(Slot::Ready(room)) => {
                    // Its welcome replays the default room up to its newest event.
                    let caught_up = *key == self.default_room;
                    room.fanout
                        .replace(old, login.conn, login.queue.clone(), caught_up);
                }
                // What it asked of a room on its way back from the store is the new one's.
                Some(Slot::Loading(waiting)) => {
                    for deferred in waiting {
                        if *deferred.conn_mut() == old {
                            *deferred.conn_mut() = login.conn;
                        }
                    }
                }
                None => {}
            }
        }
        let in_default = previous.rooms.contains(&self.default_room);
        self.registry.insert(
            login.conn,
            Member {
                name: previous.name,
                keys: previous.keys,
                token,
                queue: login.queue.clone(),
                online: true,
                rooms: previous.rooms,
                protocol: login.protocol,
                account: previous.account,
                ip: login.ip,
            },
        );
        let welcome = Welcome {
            conn: login.conn,
            since: login.since,
            epoch: login.epoch,
            queue: login.queue,
            reply: login.reply,
            conversations: previous.account.then_some(login.conversations),
        };
        let newest = self
            .room(&self.default_room.clone())
            .map_or(0, |room| room.head.newest);
        // A connection that had parted the default room gets no replay of it.
        self.send_welcome(&welcome, newest, in_default);
    }

    /// Sends a login its welcome (with `seq` the default room's newest event before it)
    /// and, when it is in the default room, the replay.
    fn send_welcome(&mut self, welcome: &Welcome, seq: Seq, replay: bool) {
        let Some(member) = self.registry.get_mut(welcome.conn) else {
            let _ = welcome.reply.try_send(false);
            return;
        };
        member.online = true;
        let (name, token, protocol, account) = (
            member.name.to_string(),
            member.token.clone(),
            member.protocol,
            member.account,
        );
        let rooms: Vec<String> = member
            .rooms
            .iter()
            .map(|key| self.names.name(key).to_string())
            .collect();
        let same_epoch = welcome.epoch.as_deref() == Some(self.log.epoch());
        let durable = self.log.durable();
        let (fresh, max) = (self.config.replay, self.config.replay_max);
        let default = self.default_room.clone();
        let users = self.room_users(&default);
        let Some(room) = self.room(&default) else {
            return;
        };
        let replay = if replay {
            room.replay(welcome.since, same_epoch, fresh, max)
        } else {
            Vec::new()
        };
        let frame = Frame::encode(&ServerFrame::Welcome {
            protocol,
            name,
            users,
            seq,
            oldest: room.oldest(durable),
            epoch: self.log.epoch().to_string(),
            token,
            rooms,
            account,
            conversations: welcome.conversations.clone(),
            limits: self.limits(),
        });
        welcome
            .queue
            .push_unmetered(Frame::concat(std::iter::once(&frame).chain(&replay)));
        let _ = welcome.reply.try_send(true);
    }

    /// The names of a room's members, sorted by case-folded name.
    fn room_users(&self, key: &str) -> Vec<String> {
        let Some(Slot::Ready(room)) = self.rooms.get(key) else {
            return Vec::new();
        };
        // In a cluster, members are on every node: the room's roster knows them all.
        if let Some(roster) = &room.roster {
            return roster.values().cloned().collect();
        }
        // A login storm builds this for every newcomer, for rooms of thousands: a room that
        // holds most of everyone is read in the registry's order, with no sorting; a
        // smaller one is borrowed and sorted. Either way the names are copied once, into a
        // list of its final size.
        if room.fanout.len() * 2 >= self.registry.len() {
            let conns: ConnSet = room.fanout.conns().collect();
            let mut users = Vec::with_capacity(conns.len());
            users.extend(
                self.registry
                    .sorted()
                    .filter(|(conn, _)| conns.contains(conn))
                    .map(|(_, member)| member.name.as_str().to_owned()),
            );
            return users;
        }
        let mut members: Vec<(&str, &str)> = room
            .fanout
            .conns()
            .filter_map(|conn| self.registry.get(conn))
            .map(|m| (m.keys.folded.as_str(), m.name.as_str()))
            .collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut users = Vec::with_capacity(members.len());
        users.extend(members.iter().map(|(_, name)| (*name).to_owned()));
        users
    }

    /// Finds the room a frame names (`None`: the default room). An error is the answer to
    /// send: `invalid_room` for a room that looks like another.
    fn resolve(&self, room: Option<&RoomName>) -> Result<Lookup, String> {
        let Some(room) = room else {
            return Ok(Lookup::Existing(self.default_room.clone()));
        };
        match self.names.lookup(room) {
            Lookup::LooksLike(other) => Err(format!(
                "{room} looks like the room {other}; use that one, or another name"
            )),
            lookup => Ok(lookup),
        }
    }

    fn post(
        &mut self,
        conn: ConnId,
        room: Option<&RoomName>,
        text: String,
        id: Option<String>,
        me: bool,
    ) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let folded = member.keys.folded.clone();
        if let Some(id) = &id
            && let Some(original) = self
                .recent
                .get(&folded)
                .and_then(|recent| recent.by_id.get(id.as_str()))
        {
            // A re-sent post: the sender gets the original back, nobody else sees it.
            member.queue.push_unmetered(original.clone());
            return;
        }
        let named = room.map(RoomName::as_str);
        let key = match self.resolve(room) {
            Ok(Lookup::Existing(key)) if member.rooms.contains(&key) => key,
            Ok(_) => {
                let name = room.map_or_else(
                    || self.names.name(&self.default_room),
                    |r| r.as_str().into(),
                );
                return self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not in {name}; join it first"),
                    id,
                    named,
                );
            }
            Err(message) => return self.error(conn, ErrorCode::InvalidRoom, message, id, named),
        };
        if let (Some(Slot::Loading(waiting)), Some(room)) = (self.rooms.get_mut(&key), room) {
            waiting.push(Deferred::Post {
                conn,
                room: room.clone(),
                text,
                id,
                me,
            });
            return;
        }
        let from = member.name.to_string();
        if let Some(id) = &id
            && self
                .room(&key)
                .is_some_and(|room| room.has_post(&folded, id))
        {
            // The original is on its way to the log; its echo will settle this too.
            return;
        }
        if id.is_some() {
            self.recent.entry(folded.clone()).or_default().last_post = Some(Instant::now());
        }
        let poster = id.is_some().then_some(folded);
        self.push(
            &key,
            Body::Message {
                from,
                text,
                id: id.clone(),
                me,
            },
            poster,
            Effect::Post { conn, id },
        );
    }

    fn history(
        &mut self,
        conn: ConnId,
        room: Option<&RoomName>,
        span: Option<Span>,
        limit: usize,
        executor: &Executor<'static>,
    ) {
        let Some(queue) = self.online_queue(conn) else {
            return;
        };
        let key = match self.resolve(room) {
            Ok(Lookup::Existing(key)) => key,
            Ok(Lookup::New(_, name) | Lookup::LooksLike(name)) => {
                // No such room: nothing in it.
                let span = span.unwrap_or(Span::Before(1));
                queue.push_unmetered(history_answer(&Target::Room(name.to_string()), span, &[]));
                return;
            }
            Err(message) => {
                let named = room.map(RoomName::as_str);
                return self.error(conn, ErrorCode::InvalidRoom, message, None, named);
            }
        };
        let durable = self.log.durable();
        let target = Target::Room(self.names.name(&key).to_string());
        if let Some(room) = self.room(&key) {
            let span = span.unwrap_or(Span::Before(room.head.newest + 1));
            if let Some(frames) = room.read_window(span, limit, durable) {
                queue.push_unmetered(history_answer(&target, span, &frames));
                return;
            }
        }
        // Not in memory, or older than its window: read on the blocking pool.
        let read = Read {
            stream: StreamId::new(&key),
            span,
            limit,
            target,
        };
        read.answer_from(self.log.clone(), queue, executor);
    }

    /// The account a direct message or a conversation names, or the error to answer.
    fn account_named(&self, conn: ConnId, named: &str) -> Result<(Account, Account), ErrorCode> {
        let me = self
            .registry
            .get(conn)
            .filter(|m| m.online && m.account)
            .and_then(|m| self.accounts.get(&m.keys.folded))
            .ok_or(ErrorCode::AccountRequired)?;
        let other = Name::parse(named)
            .ok()
            .and_then(|name| self.accounts.get(&name.keys().folded))
            .ok_or(ErrorCode::NoAccount)?;
        Ok((me.clone(), other.clone()))
    }

    fn account_error(&self, conn: ConnId, code: ErrorCode, named: &str, id: Option<String>) {
        let message = match code {
            ErrorCode::AccountRequired => "only an account can have direct messages".into(),
            _ => format!("there is no account {named}"),
        };
        self.error(conn, code, message, id, None);
    }

    /// A direct message: recorded in the pair's conversation, then sent to both parties.
    fn direct(&mut self, conn: ConnId, to: &str, text: String, id: Option<String>, me: bool) {
        if self.registry.get(conn).is_none_or(|m| !m.online) {
            return;
        }
        let (sender, recipient) = match self.account_named(conn, to) {
            Ok(pair) => pair,
            Err(code) => return self.account_error(conn, code, to, id),
        };
        let folded = sender.keys.folded.clone();
        if let Some(id) = &id {
            if let Some(original) = self
                .recent
                .get(&folded)
                .and_then(|recent| recent.by_id.get(id.as_str()))
            {
                // A re-sent post: the sender gets the original back.
                if let Some(member) = self.registry.get(conn) {
                    member.queue.push_unmetered(original.clone());
                }
                return;
            }
            if !self.direct_pending.insert((folded.clone(), id.clone())) {
                // The original is on its way to the log.
                return;
            }
            self.recent.entry(folded.clone()).or_default().last_post = Some(Instant::now());
        }
        let event = NewEvent {
            stream: StreamId::direct(&folded, &recipient.keys.folded),
            room: Arc::from(""),
            direct: Some(Box::new(Direct {
                from_key: folded.clone(),
                to_key: recipient.keys.folded.clone(),
                to: recipient.name.to_string(),
            })),
            time: now_millis(),
            body: Body::Message {
                from: sender.name.to_string(),
                text,
                id: id.clone(),
                me,
            },
            poster: id.is_some().then_some(folded),
            holder: None,
        };
        if let Some(recorder) = &self.recorder {
            let inbox = self.inbox.clone();
            let copy = Box::new(event.clone());
            recorder.record(
                vec![event],
                Box::new(move |result| {
                    let _ = inbox.try_send(Command::DirectRecorded {
                        event: copy,
                        conn,
                        result,
                    });
                }),
            );
        } else {
            let result = self.log.append(std::slice::from_ref(&event));
            self.direct_recorded(&event, conn, result);
        }
    }

    /// The log answered for a direct message: the sender gets its echo, the recipient (if
    /// online over protocol 2) the message.
    fn direct_recorded(&mut self, event: &NewEvent, conn: ConnId, result: Recorded) {
        let (Some(direct), Body::Message { id, .. }) = (&event.direct, &event.body) else {
            return;
        };
        if let Some(id) = id {
            self.direct_pending
                .remove(&(direct.from_key.clone(), id.clone()));
        }
        let recorded = match result {
            Ok(mut events) if !events.is_empty() => events.swap_remove(0),
            Ok(_) => return,
            Err(err) => {
                tracing::error!(%err, "the log could not record a direct message");
                return self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "your message could not be recorded; send it again".into(),
                    id.clone(),
                    None,
                );
            }
        };
        if let Some(id) = id {
            self.recent
                .entry(direct.from_key.clone())
                .or_default()
                .remember(id, recorded.frame.clone());
        }
        // In a cluster the parties may be on any node: every node's tail delivers it.
        if self.cluster.is_none() {
            self.deliver_direct(&direct.from_key, &direct.to_key, &recorded.frame);
        }
    }

    /// A recorded direct message to its sender (the echo) and its recipient (over
    /// protocol 2), if they are online here.
    fn deliver_direct(&mut self, from_key: &str, to_key: &str, frame: &Frame) {
        let mut slow = Vec::new();
        if let Some(sender) = self.registry.online_conn(from_key)
            && let Some(member) = self.registry.get(sender)
            && member.queue.push(&Batch::new(frame.clone(), 1)).is_err()
        {
            slow.push(sender);
        }
        if to_key != from_key
            && let Some(recipient) = self.registry.online_conn(to_key)
            && let Some(member) = self.registry.get(recipient)
            && member.protocol >= 2
        {
            let frame = for_reader(frame, to_key);
            if member.queue.push(&Batch::new(frame, 1)).is_err() {
                slow.push(recipient);
            }
        }
        for conn in slow {
            self.evict(conn);
        }
    }

    /// Events of a direct conversation, read on the blocking pool, as this member sees
    /// them.
    fn direct_history(
        &mut self,
        conn: ConnId,
        with: &str,
        span: Option<Span>,
        limit: usize,
        executor: &Executor<'static>,
    ) {
        let Some(queue) = self.online_queue(conn) else {
            return;
        };
        let (me, other) = match self.account_named(conn, with) {
            Ok(pair) => pair,
            Err(code) => return self.account_error(conn, code, with, None),
        };
        let read = Read {
            stream: StreamId::direct(&me.keys.folded, &other.keys.folded),
            span,
            limit,
            target: Target::Direct {
                with: other.name.to_string(),
                reader: me.keys.folded,
            },
        };
        read.answer_from(self.log.clone(), queue, executor);
    }

    /// `set_password`: only an account; not while throttled; the new one must be
    /// acceptable; then the hashing threads check the current one and store the new.
    fn set_password(&mut self, conn: ConnId, password: Password, new_password: Password) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let account = self
            .accounts
            .get(&member.keys.folded)
            .filter(|_| member.account);
        let Some(account) = account else {
            return self.error(
                conn,
                ErrorCode::AccountRequired,
                "only an account has a password; register one".into(),
                None,
                None,
            );
        };
        let (folded, ip) = (account.keys.folded.clone(), member.ip);
        if let Err(wait) = self.throttle.check(&folded, ip, Instant::now()) {
            return self.tell(
                conn,
                &ServerFrame::Error {
                    code: ErrorCode::TooManyAttempts,
                    message: "too many wrong passwords; wait before trying again".into(),
                    id: None,
                    room: None,
                    retry_after: Some(wait.as_millis() as u64 + 1),
                },
            );
        }
        if let Err(weak) = check_password(account.name.as_str(), new_password.expose()) {
            return self.error(conn, ErrorCode::WeakPassword, weak.to_string(), None, None);
        }
        if password.expose().len() > MAX_PASSWORD {
            return self.password_checked(conn, &folded, ip, PasswordOutcome::Wrong);
        }
        let (hash, log, inbox) = (account.hash.clone(), self.log.clone(), self.inbox.clone());
        let job = move |folded: String| {
            let outcome = if accounts::verify(&hash, &password) {
                match accounts::hash(&new_password).and_then(|hash| {
                    log.set_password(&folded, hash.as_stored())
                        .map(|()| hash)
                        .map_err(|err| err.to_string())
                }) {
                    Ok(hash) => PasswordOutcome::Changed(hash),
                    Err(err) => PasswordOutcome::Failed(err),
                }
            } else {
                PasswordOutcome::Wrong
            };
            let _ = inbox.try_send(Command::PasswordChecked {
                conn,
                folded,
                ip,
                outcome,
            });
        };
        if self.hasher.submit(folded, job).is_err() {
            self.error(
                conn,
                ErrorCode::Unavailable,
                "the server is checking many passwords at once; try again in a moment".into(),
                None,
                None,
            );
        }
    }

    fn password_checked(
        &mut self,
        conn: ConnId,
        folded: &str,
        ip: IpAddr,
        outcome: PasswordOutcome,
    ) {
        match outcome {
            PasswordOutcome::Wrong => {
                self.count_failure(folded, ip);
                self.error(
                    conn,
                    ErrorCode::BadPassword,
                    "the current password is wrong".into(),
                    None,
                    None,
                );
            }
            PasswordOutcome::Changed(hash) => {
                tracing::info!(account = folded, "password changed");
                self.accounts.set_hash(folded, hash);
                self.tell(conn, &ServerFrame::PasswordChanged);
            }
            PasswordOutcome::Failed(err) => {
                tracing::error!(%err, "cannot change a password");
                self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "the password could not be changed now; try again".into(),
                    None,
                    None,
                );
            }
        }
    }

    /// Rooms with someone in them (the default room always counts), for `--max-rooms`.
    fn rooms_in_use(&self) -> usize {
        self.rooms
            .iter()
            .filter(|(key, slot)| match slot {
                Slot::Loading(_) => true,
                Slot::Ready(room) => room.fanout.len() > 0 || **key == self.default_room,
            })
            .count()
    }

    fn join(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        since: Option<Seq>,
        executor: &Executor<'static>,
    ) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let (key, new_name) = match self.resolve(Some(room)) {
            Ok(Lookup::Existing(key)) => (key, None),
            Ok(Lookup::New(key, name)) => (key, Some(name)),
            Ok(Lookup::LooksLike(_)) => unreachable!("resolve reports it as an error"),
            Err(message) => {
                return self.error(
                    conn,
                    ErrorCode::InvalidRoom,
                    message,
                    None,
                    Some(room.as_str()),
                );
            }
        };
        if member.rooms.contains(&key) {
            // Already in: the answer again, nothing recorded (how a client resumes).
            if let Some(Slot::Loading(waiting)) = self.rooms.get_mut(&key) {
                waiting.push(Deferred::Resume(conn, since));
                return;
            }
            let newest = self.room(&key).map_or(0, |room| room.head.newest);
            self.answer_join(conn, &key, since, newest);
            return;
        }
        if member.rooms.len() >= self.config.max_joined {
            let max = self.config.max_joined;
            return self.error(
                conn,
                ErrorCode::TooManyRooms,
                format!("you are in {max} rooms already; part one first"),
                None,
                Some(room.as_str()),
            );
        }
        let empty = match self.rooms.get(&key) {
            Some(Slot::Ready(room)) => room.fanout.len() == 0,
            Some(Slot::Loading(_)) => false,
            None => true,
        };
        if empty && key != self.default_room && self.rooms_in_use() >= self.config.max_rooms {
            let max = self.config.max_rooms;
            return self.error(
                conn,
                ErrorCode::TooManyRooms,
                format!("the server has {max} rooms in use; try an existing one"),
                None,
                Some(room.as_str()),
            );
        }
        if let Some(member) = self.registry.get_mut(conn) {
            member.rooms.push(key.clone());
        }
        match self.rooms.get_mut(&key) {
            Some(Slot::Ready(_)) => self.push_joined(conn, &key, since),
            Some(Slot::Loading(waiting)) => waiting.push(Deferred::Join(conn, since)),
            None => {
                let cluster = self.cluster.is_some();
                if let (Some(name), true) = (&new_name, cluster) {
                    // New to this node; another may have made it a moment ago.
                    self.names.insert(key.clone(), name.clone());
                    self.load_room(&key, vec![Deferred::Join(conn, since)], executor);
                } else if let Some(name) = new_name {
                    // A new room: nothing to read back.
                    self.names.insert(key.clone(), name.clone());
                    let room = Room::new(
                        StreamId::new(&key),
                        name,
                        Head::default(),
                        Vec::new(),
                        self.config.history,
                    );
                    self.rooms.insert(key.clone(), Slot::Ready(Box::new(room)));
                    self.push_joined(conn, &key, since);
                } else {
                    self.load_room(&key, vec![Deferred::Join(conn, since)], executor);
                }
            }
        }
    }

    fn push_joined(&mut self, conn: ConnId, key: &Arc<str>, since: Option<Seq>) {
        let Some(name) = self.registry.get(conn).map(|m| m.name.to_string()) else {
            return;
        };
        self.push(
            key,
            Body::Joined { name },
            None,
            Effect::Joined { conn, since },
        );
    }

    /// Reads a room back from the store, on the blocking pool; `waiting` join once it is
    /// in memory.
    fn load_room(&mut self, key: &Arc<str>, waiting: Vec<Deferred>, executor: &Executor<'static>) {
        self.rooms.insert(key.clone(), Slot::Loading(waiting));
        let (log, done) = (self.log.clone(), self.loaded.0.clone());
        let (key, history) = (key.clone(), self.config.history);
        executor
            .spawn(async move {
                let stream = StreamId::new(&key);
                let result = smol::unblock(move || read_room(&*log, &stream, history)).await;
                let _ = done.send(Loaded { key, result }).await;
            })
            .detach();
    }

    fn room_loaded(&mut self, loaded: Loaded) {
        let Some(Slot::Loading(waiting)) = self.rooms.remove(&loaded.key) else {
            return;
        };
        match loaded.result {
            Ok(read) => {
                if !read.0.name.is_empty() {
                    self.names
                        .insert(loaded.key.clone(), read.0.name.as_str().into());
                }
                let name = self.names.name(&loaded.key);
                let cluster = self.cluster.as_ref();
                let room = build_room(&loaded.key, name, read, self.config.history, cluster);
                self.rooms
                    .insert(loaded.key.clone(), Slot::Ready(Box::new(room)));
                for deferred in waiting {
                    match deferred {
                        Deferred::Join(conn, since) => {
                            if self
                                .registry
                                .get(conn)
                                .is_some_and(|m| m.rooms.contains(&loaded.key))
                            {
                                self.push_joined(conn, &loaded.key, since);
                            }
                        }
                        Deferred::Post {
                            conn,
                            room,
                            text,
                            id,
                            me,
                        } => self.post(conn, Some(&room), text, id, me),
                        Deferred::Part(conn, room) => self.part(conn, &room),
                        Deferred::Adopt(conn) => {
                            let queue = self
                                .registry
                                .get(conn)
                                .filter(|m| m.rooms.contains(&loaded.key))
                                .map(|m| m.queue.clone());
                            if let (Some(queue), Some(room)) = (queue, self.room(&loaded.key)) {
                                room.fanout.add(conn, queue);
                            }
                        }
                        Deferred::Resume(conn, since) => {
                            if self
                                .registry
                                .get(conn)
                                .is_some_and(|m| m.rooms.contains(&loaded.key))
                            {
                                let newest = self.room(&loaded.key).map_or(0, |r| r.head.newest);
                                self.answer_join(conn, &loaded.key, since, newest);
                            }
                        }
                    }
                }
                self.drop_if_idle(&loaded.key);
            }
            Err(err) => {
                tracing::error!(%err, room = %loaded.key, "cannot read a room back");
                let name = self.names.name(&loaded.key);
                for deferred in waiting {
                    match deferred {
                        Deferred::Join(conn, _)
                        | Deferred::Adopt(conn)
                        | Deferred::Resume(conn, _) => {
                            if let Some(member) = self.registry.get_mut(conn) {
                                member.rooms.retain(|k| *k != loaded.key);
                            }
                            self.error(
                                conn,
                                ErrorCode::Unavailable,
                                "the room cannot be read now; try again later".into(),
                                None,
                                Some(&name),
                            );
                        }
                        Deferred::Post { conn, id, .. } => self.error(
                            conn,
                            ErrorCode::Unavailable,
                            "your post could not be recorded; send it again".into(),
                            id,
                            Some(&name),
                        ),
                        // Its join failed: it is not in the room.
                        Deferred::Part(..) => {}
                    }
                }
            }
        }
    }

    /// The answer to a `join`: the room, then its replay (events up to `seq`).
    fn answer_join(&mut self, conn: ConnId, key: &Arc<str>, since: Option<Seq>, seq: Seq) {
        let users = self.room_users(key);
        let durable = self.log.durable();
        let (fresh, max) = (self.config.replay, self.config.replay_max);
        let Some(queue) = self.registry.get(conn).map(|m| m.queue.clone()) else {
            return;
        };
        let Some(room) = self.room(key) else {
            return;
        };
        // A join's `since` counts in the epoch its client logged in with, this one.
        let replay = room.replay(since, true, fresh, max);
        let frame = Frame::encode(&ServerFrame::Room {
            room: room.name.to_string(),
            users,
            seq,
            oldest: room.oldest(durable),
        });
        queue.push_unmetered(Frame::concat(std::iter::once(&frame).chain(&replay)));
    }

    fn part(&mut self, conn: ConnId, room: &RoomName) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let key = match self.resolve(Some(room)) {
            Ok(Lookup::Existing(key)) if member.rooms.contains(&key) => key,
            Ok(_) => {
                return self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not in {room}"),
                    None,
                    Some(room.as_str()),
                );
            }
            Err(message) => {
                return self.error(
                    conn,
                    ErrorCode::InvalidRoom,
                    message,
                    None,
                    Some(room.as_str()),
                );
            }
        };
        if let Some(Slot::Loading(waiting)) = self.rooms.get_mut(&key) {
            waiting.push(Deferred::Part(conn, room.clone()));
            return;
        }
        let name = member.name.to_string();
        if let Some(member) = self.registry.get_mut(conn) {
            member.rooms.retain(|k| *k != key);
        }
        self.push(
            &key,
            Body::Left {
                name,
                reason: LeaveReason::Part,
            },
            None,
            Effect::Parted { conn },
        );
    }

    fn list_rooms(&self, conn: ConnId) {
        if let Some(cluster) = &self.cluster {
            // Rooms in use on every node.
            if let Some(queue) = self.online_queue(conn) {
                cluster.ask(Request::ListRooms { queue });
            }
            return;
        }
        let mut rooms: Vec<RoomUsers> = self
            .rooms
            .values()
            .filter_map(|slot| match slot {
                Slot::Ready(room) if room.fanout.len() > 0 => Some(RoomUsers {
                    room: room.name.to_string(),
                    users: room.fanout.len() as u32,
                }),
                _ => None,
            })
            .collect();
        rooms.sort_by(|a, b| b.users.cmp(&a.users).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(ROOM_LIST_MAX);
        self.tell(conn, &ServerFrame::RoomList { rooms });
    }

    fn leave(&mut self, conn: ConnId, reason: LeaveReason) {
        if let Some(claiming) = self.claiming.get_mut(&conn) {
            claiming.wanted = false;
        }
        let Some(member) = self.registry.remove(conn) else {
            return;
        };
        if let Some(cluster) = &self.cluster {
            // Its `left`s are recorded in Redis with its name's release, in one step, and
            // only if its session is still its own there; every node's tail brings them.
            cluster.ask(Request::Release {
                member: member.keys.folded.clone(),
                token: member.token.clone(),
                reason,
            });
            for key in &member.rooms {
                if let Some(room) = self.room(key) {
                    room.fanout.remove(conn);
                }
                self.drop_if_idle(key);
            }
            return;
        }
        // A member whose `joined` is still on its way gets its `left` once that is
        // recorded; in every other room it was in, it leaves now.
        for key in &member.rooms {
            if let Some(room) = self.room(key)
                && room.fanout.contains(conn)
            {
                room.fanout.remove(conn);
                self.push(
                    key,
                    Body::Left {
                        name: member.name.to_string(),
                        reason,
                    },
                    None,
                    Effect::None,
                );
            }
        }
    }

    /// Sends the due batches to the log, and handles what it returns.
    fn submit(&mut self, now: Instant) {
        let busy: Vec<Arc<str>> = self.busy.iter().cloned().collect();
        for key in busy {
            let window = self.pressure.window();
            let Some(room) = self.room(&key) else {
                self.busy.remove(&key);
                continue;
            };
            let Some(events) = room.take_batch(now, window) else {
                // What is recorded goes on its members' beats; while a batch is being
                // recorded, it goes with that batch.
                if !room.is_recording() {
                    self.push_to_members(&key, now);
                }
                continue;
            };
            if !room.has_pending() && !room.fanout.owes() {
                self.busy.remove(&key);
            }
            if let Some(recorder) = &self.recorder {
                let done = self.recorded.0.clone();
                let room_key = key.clone();
                recorder.record(
                    events,
                    Box::new(move |result| {
                        let _ = done.try_send((room_key, result));
                    }),
                );
            } else {
                let recorded = self.log.append(&events);
                self.recorded(&key, recorded);
            }
        }
    }

    /// The log answered for a room's batch in flight.
    fn recorded(&mut self, key: &Arc<str>, result: Recorded) {
        let Some(room) = self.room(key) else {
            return;
        };
        let batch = room.finish();
        if room.has_pending() {
            self.busy.insert(key.clone());
        }
        let events = match result {
            Ok(events) => events,
            Err(err) => {
                self.unrecorded(key, batch, &err);
                return;
            }
        };
        for (pending, event) in batch.iter().zip(&events) {
            if let (Some(poster), Body::Message { id: Some(id), .. }, true) =
                (&pending.event.poster, &pending.event.body, event.seq > 0)
            {
                self.recent
                    .entry(poster.clone())
                    .or_default()
                    .remember(id, event.frame.clone());
            }
        }
        if self.cluster.is_some() {
            // The tail brings these in order with every other node's events; what they
            // mean for their authors waits for them there.
            let mut skipped = Vec::new();
            if let Some(room) = self.room(key) {
                for (pending, event) in batch.into_iter().zip(events) {
                    if event.seq == 0 {
                        skipped.push(pending);
                    } else {
                        room.awaiting.insert(event.seq, pending);
                    }
                }
            }
            for pending in skipped {
                self.skipped(key, pending);
            }
            self.apply_tailed(key);
            return;
        }
        let mut parted = Vec::new();
        for (pending, event) in batch.into_iter().zip(events) {
            parted.extend(self.settle(key, pending, event.seq));
            if let Some(room) = self.room(key) {
                room.record(event);
            }
        }
        self.push_recorded(key, parted);
    }

    /// What a recorded event means for its author, just before it is gathered for the
    /// room: a newcomer's welcome or `room` answer, with the replay of what came before
    /// it. A part's author is returned: it is out once its `left` is pushed.
    fn settle(&mut self, key: &Arc<str>, pending: Pending, seq: Seq) -> Option<ConnId> {
        match pending.effect {
            Effect::Welcome(welcome) => {
                // The newcomer gets what was gathered before this `joined` in its
                // replay, not again live (see `FanOut::add`), and its own `joined` as
                // its first live event.
                if self.registry.get(welcome.conn).is_some() {
                    // A member from here on, so `welcome.users` names it.
                    let (conn, queue) = (welcome.conn, welcome.queue.clone());
                    if let Some(room) = self.room(key) {
                        room.fanout.add(conn, queue);
                    }
                    self.send_welcome(&welcome, seq - 1, true);
                } else {
                    let _ = welcome.reply.try_send(false);
                    self.left_while_joining(key, &pending.event.body);
                }
            }
            Effect::Joined { conn, since } => {
                // As for a welcome: the replay carries what was gathered before.
                let still_joining = self
                    .registry
                    .get(conn)
                    .is_some_and(|m| m.rooms.contains(key));
                if still_joining {
                    // A member from here on, so the `room` answer names it.
                    if let (Some(queue), Some(room)) = (
                        self.registry.get(conn).map(|m| m.queue.clone()),
                        self.room(key),
                    ) {
                        room.fanout.add(conn, queue);
                    }
                    self.answer_join(conn, key, since, seq - 1);
                } else {
                    self.left_while_joining(key, &pending.event.body);
                }
            }
            Effect::Parted { conn } => return Some(conn),
            Effect::Post { .. } | Effect::None => {}
        }
        None
    }

    /// Pushes what a room gathered; then the members who parted in it are out.
    fn push_recorded(&mut self, key: &Arc<str>, parted: Vec<ConnId>) {
        self.push_to_members(key, Instant::now());
        // A part's `left` is its answer: it gets it now, then it is out.
        let overflowed: Vec<ConnId> = match self.room(key) {
            Some(room) => parted
                .into_iter()
                .filter_map(|conn| room.fanout.remove_after_push(conn).err())
                .collect(),
            None => Vec::new(),
        };
        for conn in overflowed {
            self.evict(conn);
        }
        self.drop_if_idle(key);
    }

    /// In a cluster: takes in the events the tail brought for a room, in seq order, with
    /// what this node's own mean; not while a batch of the room is being recorded (which
    /// of them are this node's is known only once it is).
    fn apply_tailed(&mut self, key: &Arc<str>) {
        let Some(room) = self.room(key) else {
            return;
        };
        if room.is_recording() {
            return;
        }
        let tailed = std::mem::take(&mut room.tailed);
        let mut parted = Vec::new();
        for (event, change) in tailed {
            let Some(room) = self.room(key) else {
                break;
            };
            if event.seq <= room.head.newest {
                continue;
            }
            if room.head.newest > 0 && event.seq > room.head.newest + 1 {
                tracing::warn!(room = %key, from = room.head.newest + 1, to = event.seq - 1, "events missing from the tail");
            }
            let posted = match &change {
                Some(Note::Posted(poster, id)) => Some((poster.clone(), id.clone())),
                _ => None,
            };
            room.change_roster(change);
            let mine = room.awaiting.remove(&event.seq);
            // A post of a member here: its id is known even if the answer to the append
            // was lost (Redis went away), so a copy sent again is not posted twice.
            if let Some((poster, id)) = posted
                && self.registry.online_conn(&poster).is_some()
            {
                self.recent
                    .entry(poster)
                    .or_default()
                    .remember(&id, event.frame.clone());
            }
            if let Some(pending) = mine {
                parted.extend(self.settle(key, pending, event.seq));
            }
            if let Some(room) = self.room(key) {
                room.record(event);
            }
        }
        // Ours that the room is past already (it was read back meanwhile): settled late.
        let late = match self.room(key) {
            Some(room) => {
                let newer = room.awaiting.split_off(&(room.head.newest + 1));
                std::mem::replace(&mut room.awaiting, newer)
            }
            None => BTreeMap::new(),
        };
        for (seq, pending) in late {
            parted.extend(self.settle(key, pending, seq));
        }
        self.push_recorded(key, parted);
    }

    /// In a cluster: an event of this node that Redis did not record, because its author
    /// no longer holds its session (it went, or was taken over elsewhere).
    fn skipped(&mut self, key: &Arc<str>, pending: Pending) {
        match pending.effect {
            Effect::Welcome(welcome) => {
                let _ = welcome.reply.try_send(false);
                self.drop_placeholder(welcome.conn);
            }
            Effect::Joined { conn, .. } => {
                if let Some(member) = self.registry.get_mut(conn) {
                    member.rooms.retain(|k| k != key);
                }
            }
            Effect::Parted { .. } | Effect::Post { .. } | Effect::None => {}
        }
    }

    /// Someone went away (or parted) while their `joined` was being recorded: record that
    /// they left.
    fn left_while_joining(&mut self, key: &Arc<str>, joined: &Body) {
        // In a cluster the release of its name records its `left`s, in the rooms whose
        // `joined` was recorded before it.
        if self.cluster.is_some() {
            return;
        }
        if let Body::Joined { name } = joined {
            self.push(
                key,
                Body::Left {
                    name: name.clone(),
                    reason: LeaveReason::Lost,
                },
                None,
                Effect::None,
            );
        }
    }

    /// The log could not record a batch: nothing of it happened.
    fn unrecorded(&mut self, key: &Arc<str>, batch: Vec<Pending>, err: &LogError) {
        tracing::error!(%err, room = %key, events = batch.len(), "the log could not record a batch");
        let name = self.names.name(key);
        for pending in batch {
            match pending.effect {
                Effect::Post { conn, id } => self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "your post could not be recorded; send it again".into(),
                    id,
                    Some(&name),
                ),
                Effect::Welcome(welcome) => {
                    if let (Some(member), Some(cluster)) =
                        (self.registry.remove(welcome.conn), &self.cluster)
                    {
                        cluster.ask(Request::Release {
                            member: member.keys.folded,
                            token: member.token,
                            reason: LeaveReason::Lost,
                        });
                    }
                    welcome
                        .queue
                        .push_unmetered(Frame::encode(&ServerFrame::Rejected {
                            code: RejectCode::Unavailable,
                            message: "the server cannot record your login now; try again".into(),
                            retry_after: Some(2000),
                        }));
                    let _ = welcome.reply.try_send(false);
                }
                Effect::Joined { conn, .. } => {
                    if let Some(member) = self.registry.get_mut(conn) {
                        member.rooms.retain(|k| k != key);
                    }
                    self.error(
                        conn,
                        ErrorCode::Unavailable,
                        "your join could not be recorded; try again".into(),
                        None,
                        Some(&name),
                    );
                }
                Effect::Parted { conn } => {
                    // Still a member, as far as anyone can tell.
                    if let Some(member) = self.registry.get_mut(conn) {
                        member.rooms.push(key.clone());
                    }
                    self.error(
                        conn,
                        ErrorCode::Unavailable,
                        "your part could not be recorded; try again".into(),
                        None,
                        Some(&name),
                    );
                }
                Effect::None => {
                    tracing::warn!(event = ?pending.event.body, "an event was not recorded");
                }
            }
        }
        self.drop_if_idle(key);
    }

    /// Pushes what a room recorded to the members whose beat came by `now`, closing those
    /// that cannot keep up; the room stays busy while it owes the rest or events wait.
    fn push_to_members(&mut self, key: &Arc<str>, now: Instant) {
        let window = self.pressure.window();
        let Some(room) = self.room(key) else {
            return;
        };
        let overflowed = room.push_due(now, window);
        if room.fanout.owes() || room.has_pending() {
            self.busy.insert(key.clone());
        } else {
            self.busy.remove(key);
        }
        for conn in overflowed {
            self.evict(conn);
        }
    }

    /// Closes a connection that reads too slowly: once, and it leaves every room.
    fn evict(&mut self, conn: ConnId) {
        let Some(member) = self.registry.get(conn) else {
            return;
        };
        member.queue.abort_with(closing(CloseCode::SendQueueFull));
        self.leave(conn, LeaveReason::Kicked);
    }

    /// Drops a room nobody is in from memory: its history is in the store. With a log
    /// that keeps nothing, the window is the history, so the newest `--max-rooms` rooms
    /// nobody is in stay (a client that drops for a moment finds its rooms' history), and
    /// older ones go.
    fn drop_if_idle(&mut self, key: &Arc<str>) {
        if *key == self.default_room || !self.is_idle(key) {
            return;
        }
        if self.log.durable() {
            self.rooms.remove(key);
            self.busy.remove(key);
            if let Some(cluster) = &self.cluster {
                cluster.unfollow(key);
            }
            return;
        }
        self.idle.push_back(key.clone());
        while self.idle.len() > self.config.max_rooms {
            let Some(oldest) = self.idle.pop_front() else {
                break;
            };
            // Joined again meanwhile, or listed again later: not this time.
            if self.is_idle(&oldest) && !self.idle.contains(&oldest) {
                self.rooms.remove(&oldest);
                self.busy.remove(&oldest);
            }
        }
    }

    fn is_idle(&self, key: &str) -> bool {
        matches!(self.rooms.get(key), Some(Slot::Ready(room)) if room.is_idle())
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

/// A room's stream as read back: where it stands (in a cluster, with its name and members
/// on every node) and its newest events. Blocks.
fn read_room(log: &dyn EventLog, stream: &StreamId, history: usize) -> Result<RoomRead, LogError> {
    let snapshot = log.snapshot(stream)?;
    let recent = log.read(stream, Span::Before(snapshot.head.newest + 1), history)?;
    Ok((snapshot, recent))
}

/// A room from what [`read_room`] read; in a cluster it knows its members on every node,
/// and the tail follows it from its head.
fn build_room(
    key: &Arc<str>,
    name: Arc<str>,
    (snapshot, recent): RoomRead,
    history: usize,
    cluster: Option<&Cluster>,
) -> Room {
    let head = snapshot.head;
    let mut room = Room::new(StreamId::new(key), name, head, recent, history);
    room.roster = snapshot
        .members
        .map(|members| members.into_iter().collect());
    if let Some(cluster) = cluster {
        cluster.follow(key, head.newest);
    }
    room
}

/// What a `history` asked about.
enum Target {
    /// A room, by name.
    Room(String),
    /// A direct conversation: the other account's name, and who reads it (case-folded),
    /// for whom each message is turned round.
    Direct { with: String, reader: String },
}

/// A `history` request to read from the log.
struct Read {
    stream: StreamId,
    /// `None`: the newest.
    span: Option<Span>,
    limit: usize,
    target: Target,
}

impl Read {
    /// Reads on the blocking pool, never on the hub's task, and queues the answer.
    fn answer_from(self, log: Arc<dyn EventLog>, queue: SendQueue, executor: &Executor<'static>) {
        let Read {
            stream,
            span,
            limit,
            target,
        } = self;
        executor
            .spawn(async move {
                let read = smol::unblock(move || {
                    let span = match span {
                        Some(span) => span,
                        None => Span::Before(log.head(&stream)?.newest + 1),
                    };
                    log.read(&stream, span, limit).map(|events| (span, events))
                })
                .await;
                match read {
                    Ok((span, events)) => {
                        let frames: Vec<Frame> = match &target {
                            Target::Room(_) => events.into_iter().map(|e| e.frame).collect(),
                            Target::Direct { reader, .. } => events
                                .iter()
                                .map(|e| for_reader(&e.frame, reader))
                                .collect(),
                        };
                        queue.push_unmetered(history_answer(&target, span, &frames));
                    }
                    Err(err) => {
                        tracing::error!(%err, "cannot read the history");
                        queue.push_unmetered(Frame::encode(&ServerFrame::Error {
                            room: None,
                            code: ErrorCode::Unavailable,
                            message: "the history cannot be read now; try again later".into(),
                            id: None,
                            retry_after: None,
                        }));
                    }
                }
            })
            .detach();
    }
}

/// A history answer: the events, then `history_end`.
fn history_answer(target: &Target, span: Span, frames: &[Frame]) -> Frame {
    let (before, after) = match span {
        Span::Before(before) => (Some(before), None),
        Span::After(after) => (None, Some(after)),
    };
    let (room, with) = match target {
        Target::Room(room) => (Some(room.clone()), None),
        Target::Direct { with, .. } => (None, Some(with.clone())),
    };
    let end = Frame::encode(&ServerFrame::HistoryEnd {
        room,
        with,
        before,
        after,
        count: frames.len() as u32,
    });
    Frame::concat(frames.iter().chain(std::iter::once(&end)))
}
