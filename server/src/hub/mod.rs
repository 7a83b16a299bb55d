//! The hub: one task that owns who is online (the [`Registry`]) and the rooms, turns what
//! sessions ask into events, has the [`EventLog`] record them, and fans out what was
//! recorded.
//!
//! Sessions talk to it through an inbox of [`Command`]s. A room's events gather and go to
//! the log as one batch; only when the log returns them, with their seqs, does anyone
//! receive them, encoded once and pushed to the queues of the room's members without
//! waiting on any socket, each member at most once a short window ([`Config::coalesce`]),
//! the members of a big room in groups on beats spread over it (see [`crate::room`]).
//! A connection has one queue whatever the number of its rooms; one that overflows is
//! closed with `send_queue_full` once, and leaves every room it was in. Reading a room back
//! from the store, and deep history, run on a blocking pool, never on this task; a room
//! nobody is in is dropped from memory (with a durable log) and read back when someone
//! joins it.
//!
//! This file holds the loop, the dispatch and the state; each job is an `impl Hub` of its
//! own: [`login`] (names, takeovers, welcomes, a member going), [`accounts`] (passwords),
//! [`rooms`] (join, part, post, list), [`record`] (batches, what they mean, fan-out),
//! [`direct`] (direct messages), [`moderation`] (roles, moderators' steps, deleting,
//! who may join or post, server bans) and [`cluster`] (news from other nodes). They lean on
//! leaf modules that never look back at the hub: [`command`] (what is asked of it),
//! [`peers`] (the other nodes, or none), [`posts`] (post ids remembered), [`load`] and
//! [`history`] (reads off this task). The rooms themselves, with their membership and
//! fan-out, are [`crate::room`]'s; the hub asks them, it does not reach in.

mod accounts;
mod cluster;
pub mod command;
mod direct;
mod history;
mod life;
mod load;
mod login;
mod moderation;
mod operator;
pub mod peers;
mod posts;
mod read_markers;
mod recent;
mod record;
mod retention;
mod rooms;
mod search;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use chat_shared::limits::MAX_NAME;
use chat_shared::{ErrorCode, Frame, Limits, Name, NameKeys, ServerFrame};
use futures_lite::future;
use smol::{Executor, Timer};

use crate::Config;
use crate::accounts::{Account, AccountNames, Directory, Hasher, PasswordHash, Throttle};
use crate::bans::{AddressBans, ServerBans};
use crate::log::recorder::{Recorded, Recorder};
use crate::log::{Body, EventLog, LogError, StreamId};
use crate::pressure::Pressure;
use crate::queue::SendQueue;
use crate::registry::{ConnId, ConnMap, Registry};
use crate::room::table::Rooms;
use crate::room::{Effect, Pending};
use crate::search::SearchIndex;
use crate::search::indexer::Feed;
use crate::wire::now_millis;

use command::Command;
use load::{Loaded, build_room, read_room};
use peers::Peers;
use posts::PostIds;

/// A login whose name the other nodes are asked for.
#[derive(Debug, Clone, Copy)]
struct Claiming {
    /// The connection is still there.
    wanted: bool,
    /// The name is held here meanwhile (by a member not yet online).
    held: bool,
}

/// A room's batch, as the log answered it.
type RoomRecorded = (Arc<str>, Recorded);

/// The hub's state; [`Hub::run`] is its task.
pub struct Hub {
    config: Config,
    log: Arc<dyn EventLog>,
    /// For a durable log: the thread that records batches (a log that keeps nothing
    /// records them at once, on this task).
    recorder: Option<Recorder>,
    /// Where the recorder reports, room by room.
    recorded: (Sender<RoomRecorded>, Receiver<RoomRecorded>),
    /// Where rooms read back from the log arrive.
    loaded: (Sender<Loaded>, Receiver<Loaded>),
    registry: Registry,
    rooms: Rooms,
    /// Post ids remembered, so that a post sent again is not posted twice.
    posts: PostIds,
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
    /// The direct conversations that moved lately, for the welcomes of logins that were
    /// on their way meanwhile.
    recent_direct: recent::RecentDirect,
    /// The other nodes of a cluster, or nobody.
    peers: Box<dyn Peers>,
    /// Logins whose name the other nodes are asked for: whether they still want it (false
    /// once the connection went), and whether the name is held here meanwhile.
    claiming: ConnMap<Claiming>,
    /// Who asked for a flush ([`Command::Flush`]), to answer once it is done.
    flushing: Vec<Sender<()>>,
    /// The keys of the server's administrators' names.
    admins: Vec<NameKeys>,
    /// The names and addresses banned from the server.
    server_bans: ServerBans,
    /// Read markers on their way to the log.
    read_markers: read_markers::ReadMarkers,
    /// The search index, and (unless a cluster's nodes feed it from Redis) where what
    /// the log commits on this task goes to it.
    search: Option<Searching>,
    /// Whether a retention sweep of the log is under way.
    sweeping: bool,
    /// The time between two retention sweeps (ms), read by the task that asks for them,
    /// and how the hub wakes that task when it gets shorter.
    sweep_pause: Arc<std::sync::atomic::AtomicU64>,
    sweep_wake: (Sender<()>, Receiver<()>),
}

/// The search index as the hub uses it.
pub struct Searching {
    /// The index, to search.
    pub index: Arc<SearchIndex>,
    /// Where committed events go, when this server feeds the index itself.
    pub feed: Option<Feed>,
}

impl Hub {
    /// A hub over `log`, with the default room's newest events and every account read
    /// back from it; `inbox` is the sender of the inbox [`Hub::run`] will serve.
    pub fn new(
        config: Config,
        log: Arc<dyn EventLog>,
        hasher: Hasher,
        inbox: Sender<Command>,
        peers: Box<dyn Peers>,
        search: Option<Searching>,
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
        let known: Vec<(Arc<str>, Arc<str>)> = log
            .rooms()?
            .into_iter()
            .map(|(stream, name)| (stream.as_str().into(), name.into()))
            .collect();
        let key: Arc<str> = config.room.keys().folded.into();
        // The default room keeps the spelling it was first given.
        let name = known
            .iter()
            .find(|(known, _)| *known == key)
            .map_or_else(|| Arc::from(config.room.as_str()), |(_, name)| name.clone());
        let read = read_room(&*log, &StreamId::new(&key), config.history)?;
        let room = build_room(&key, name, read, config.history, &*peers);
        let keep_idle = if log.durable() { 0 } else { config.max_rooms };
        let recorder = if log.durable() {
            let feed = search.as_ref().and_then(|s| s.feed.clone());
            Some(
                Recorder::spawn(log.clone(), feed)
                    .map_err(|err| LogError::Store(err.to_string()))?,
            )
        } else {
            None
        };
        let pressure = Pressure::new(config.coalesce, config.worker_threads(), Instant::now());
        let admins = config.admins.iter().map(Name::keys).collect();
        let server_bans = ServerBans::from_stored(log.server_bans()?);
        Ok(Self {
            config,
            log,
            recorder,
            recorded: async_channel::unbounded(),
            loaded: async_channel::unbounded(),
            registry: Registry::default(),
            rooms: Rooms::new(key, room, known, keep_idle),
            posts: PostIds::default(),
            last_sweep: Instant::now(),
            pressure,
            accounts,
            throttle: Throttle::default(),
            hasher,
            inbox,
            direct_pending: HashSet::new(),
            recent_direct: recent::RecentDirect::default(),
            peers,
            claiming: ConnMap::default(),
            flushing: Vec::new(),
            admins,
            server_bans,
            read_markers: read_markers::ReadMarkers::default(),
            search,
            sweeping: false,
            sweep_pause: Arc::default(),
            sweep_wake: async_channel::bounded(1),
        })
    }

    /// The addresses banned from the server, kept up to date by the hub, for the accept
    /// loop.
    pub fn address_bans(&self) -> Arc<AddressBans> {
        self.server_bans.shared()
    }

    /// The accounts' keys, which the hub keeps up to date for the connections to read.
    pub fn account_names(&self) -> Arc<AccountNames> {
        self.accounts.names()
    }

    /// Serves commands until [`Command::Shutdown`] (or until every sender of the inbox is
    /// gone), then records what was accepted and returns. The cluster's tasks, if any, run
    /// on `executor`.
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
        self.peers.start(&executor, &self.inbox);
        self.start_sweeps(&executor);
        let mut timer = Timer::never();
        // When the timer is set to fire (`None`: not set, or fired). Setting it costs a
        // timer operation and a reactor wake-up, so it is only moved when the deadline
        // changes; a deadline that went away leaves it to fire once for nothing.
        let mut armed: Option<Instant> = None;
        loop {
            if let Some(due) = self.rooms.next_due(Instant::now(), self.pressure.window())
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
                    self.handle(command);
                    for _ in 0..DRAIN {
                        match inbox.try_recv() {
                            Ok(Command::Shutdown) => return self.finish(&recorded).await,
                            Ok(command) => self.handle(command),
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
        let marks = self.read_markers.take_all();
        if !marks.is_empty() {
            let log = self.log.clone();
            if let Err(err) = smol::unblock(move || log.set_read(&marks)).await {
                tracing::warn!(%err, "read markers could not be kept");
            }
        }
        loop {
            if self.rooms.recording() {
                match recorded.recv().await {
                    Ok((key, result)) => self.recorded(&key, result),
                    Err(_) => return,
                }
            } else if self.rooms.any_busy() {
                self.submit(Instant::now() + Duration::from_secs(3600));
            } else {
                return;
            }
        }
    }

    /// Handles one command.
    fn handle(&mut self, command: Command) {
        match command {
            Command::Login(login) => self.login(login),
            Command::Post { conn, room, said } => self.post(conn, room.as_ref(), said),
            Command::History {
                conn,
                room,
                reach,
                limit,
            } => self.history(conn, room.as_ref(), reach, limit),
            Command::Join { conn, room, since } => self.join(conn, &room, since),
            Command::Part { conn, room } => self.part(conn, &room),
            Command::Rooms { conn } => self.list_rooms(conn),
            Command::Targets {
                conn,
                from,
                to,
                limit,
                reply,
            } => self.targets(conn, (from, to), limit, reply),
            Command::Leave { conn, reason } => self.leave(conn, reason),
            Command::Direct { conn, to, said } => self.direct(conn, &to, said),
            Command::DirectHistory {
                conn,
                with,
                reach,
                limit,
            } => self.direct_history(conn, &with, reach, limit),
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
            Command::Cluster(news) => self.news(news),
            Command::Moderate { conn, step } => self.moderate(conn, step),
            Command::Delete { conn, place, seq } => self.delete(conn, place, seq),
            Command::Amend {
                conn,
                place,
                seq,
                change,
            } => self.amend(conn, place, seq, change),
            Command::Typing { conn, place } => self.typing(conn, &place),
            Command::Read { conn, place, seq } => self.read_up_to(conn, &place, seq),
            Command::Search { conn, asked } => self.search(conn, *asked),
            Command::KeepReadMarkers => self.keep_read_markers(),
            Command::ReadMarkersKept => self.read_markers_kept(),
            Command::Found {
                conn,
                place,
                seq,
                read,
            } => self.found(conn, &place, seq, read),
            Command::ServerBanStored {
                answer,
                changes,
                result,
            } => self.server_ban_stored(answer, changes, result),
            Command::Retain => self.retain(),
            Command::Forgotten(result) => self.forgotten(result),
            Command::Operator { request, reply } => self.operator(request, reply),
            Command::PasswordReset {
                folded,
                result,
                reply,
            } => self.password_reset(&folded, result, &reply),
            Command::AccountDeleted(deleted) => self.account_deleted(*deleted),
            Command::Erased {
                events,
                result,
                reply,
            } => self.erased(&events, result, reply),
            Command::Flush(done) => self.flushing.push(done),
            Command::Shutdown => {}
        }
        let now = Instant::now();
        if now.duration_since(self.last_sweep) > Duration::from_secs(60) {
            self.last_sweep = now;
            self.posts.sweep(now, &self.registry);
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

    /// Queues an event in a room.
    fn push(&mut self, key: &Arc<str>, body: Body, poster: Option<String>, effect: Effect) {
        // In a cluster a member's own `joined` or `left` is recorded only while its
        // session is still its own (see `NewEvent::holder`).
        let holder = match &effect {
            Effect::Welcome(welcome) => Some(welcome.conn),
            Effect::Joined { conn, .. } | Effect::Parted { conn, .. } => Some(*conn),
            Effect::Post { .. } | Effect::Step { .. } | Effect::None => None,
        }
        .and_then(|conn| self.registry.get(conn))
        .map(|member| member.token.clone());
        self.rooms.update(key, |room| {
            let event = room.event(now_millis(), body, poster, holder);
            room.push(Pending { event, effect });
        });
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
        self.tell_frame(conn, &Frame::encode(frame));
    }

    /// An encoded frame for one connection, outside its queue's limit.
    fn tell_frame(&self, conn: ConnId, frame: &Frame) {
        if let Some(member) = self.registry.get(conn) {
            member.queue.push_unmetered(frame.clone());
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
                until: None,
            },
        );
    }

    /// Drops a room nobody is in from memory, if it is time to (see
    /// [`Rooms::drop_if_idle`]); the rooms dropped are no longer followed.
    fn drop_if_idle(&mut self, key: &Arc<str>) {
        for dropped in self.rooms.drop_if_idle(key) {
            self.peers.unfollow(&dropped);
        }
    }
}
