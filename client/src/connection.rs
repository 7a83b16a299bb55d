//! The client's connection to a server, as a state machine with no GUI types in it.
//!
//! [`run`] connects, logs in, re-joins the rooms the app is in, reads and writes, and when
//! the connection drops it retries every two seconds and resumes every room with `since`
//! (the last `seq` it saw there), so nothing said meanwhile is missed and nothing shows
//! twice. Posts go through an [`Outbox`]: they wait there while the connection is down,
//! are paced to the server's rate, and are re-sent with the same `id` until the server
//! echoes them back, so each is posted exactly once. The app talks to it through a
//! [`Handle`] and hears from it through [`Event`]s.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use chat_shared::limits::{CLIENT_PING_AFTER_SECS, MAX_SERVER_FRAME};
use chat_shared::{
    ClientFrame, CloseCode, ErrorCode, FrameReader, FrameWriter, LeaveReason, Limits,
    PROTOCOL_VERSION, Password, ReadError, Reader, RejectCode, ServerFrame, Writer,
};
use futures_lite::future;
use smol::Timer;
use smol::net::TcpStream;

use crate::model::{DIRECT, Session, direct_with, room_key};
use crate::tls;

/// A `history` request for a room or (`@name`) a direct conversation.
fn history_request(name: &str, before: Option<u64>, after: Option<u64>, limit: u32) -> ClientFrame {
    let (room, with) = match direct_with(name) {
        Some(with) => (None, Some(with.to_string())),
        None => (Some(name.to_string()), None),
    };
    ClientFrame::History {
        room,
        with,
        before,
        after,
        limit: Some(limit),
    }
}

/// How long the client waits between two tries while the server is offline.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long `bye` may take to be written and acknowledged before the client gives up.
pub const BYE_TIMEOUT: Duration = Duration::from_millis(450);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whom to connect to, as whom: the identity of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Target {
    /// `host:port`, or several comma-separated: the nodes of one cluster, tried in turn.
    pub server: String,
    /// The name to log in with.
    pub name: String,
    /// Over TLS.
    pub tls: bool,
    /// The account's password (`None`: a guest name). Its `Debug` shows nothing of it.
    pub password: Option<Password>,
    /// Create the account on the first login.
    pub register: bool,
    /// The fingerprint of a certificate nobody vouches for that the person trusts for
    /// this server.
    pub trusted: Option<String>,
    /// Keep the password in the desktop's keyring once logged in ("Remember me").
    pub remember: bool,
}

impl Target {
    /// Each address it names (`host:port`), in the order given.
    pub fn servers(&self) -> Vec<&str> {
        self.server
            .split(',')
            .map(str::trim)
            .filter(|server| !server.is_empty())
            .collect()
    }

    /// The server as the person typed it: `tls://host:port` over TLS.
    pub fn address(&self) -> String {
        if self.tls {
            format!("tls://{}", self.server)
        } else {
            self.server.clone()
        }
    }
}

/// Where a connection starts from: what an earlier run of the client knew of this server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Resume {
    /// The epoch the seqs below count in.
    pub epoch: Option<String>,
    /// The server's default room.
    pub default_room: Option<String>,
    /// The rooms to be in, in order, each with the newest seq seen there (0: none);
    /// `None`: the rooms the server puts a new connection in.
    pub rooms: Option<Vec<(String, u64)>>,
}

/// What the app asks of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Post a message under an id.
    Say {
        /// The room; `None`: the default room.
        room: Option<String>,
        /// The post's id.
        id: String,
        /// The text.
        text: String,
        /// An action (`/me`).
        me: bool,
        /// The seq of the message it answers.
        reply_to: Option<u64>,
    },
    /// Ask for older events of a room.
    History {
        /// The room.
        room: String,
        /// Before this seq.
        before: u64,
        /// How many at most.
        limit: u32,
    },
    /// Ask for the events around a message (one found by a search).
    Context {
        /// The room, or `@name` for a direct conversation.
        room: String,
        /// The message's seq.
        seq: u64,
    },
    /// Enter a room (and stay in it across reconnects).
    Join {
        /// The room.
        room: String,
    },
    /// Leave a room.
    Part {
        /// The room.
        room: String,
    },
    /// A frame the connection has no part in: sent as it is while logged in, and not
    /// kept while offline (the app asks again once it is back).
    Send(ClientFrame),
    /// Leave.
    Bye,
}

/// The app's way to talk to a running connection; it stays valid across reconnects.
#[derive(Debug, Clone)]
pub struct Handle(Sender<Command>);

impl Handle {
    /// A handle attached to no connection: what it is asked lands in the receiver (for
    /// tests and benchmarks of the screens).
    pub fn detached() -> (Self, Receiver<Command>) {
        let (tx, rx) = async_channel::unbounded();
        (Self(tx), rx)
    }

    /// Posts `text` under `id` (see [`new_post_id`]) in `room` (`None`: the default
    /// room), as an action with `me`; it waits in the outbox until sent.
    pub fn say(&self, room: Option<&str>, id: String, text: String, me: bool) {
        self.reply(room, id, text, me, None);
    }

    /// As [`Handle::say`], answering the message at `reply_to` (if any).
    pub fn reply(
        &self,
        room: Option<&str>,
        id: String,
        text: String,
        me: bool,
        reply_to: Option<u64>,
    ) {
        let room = room.map(str::to_string);
        let _ = self.0.try_send(Command::Say {
            room,
            id,
            text,
            me,
            reply_to,
        });
    }

    /// Asks for at most `limit` events of `room` before `before`; the answer comes as one
    /// [`Event::History`].
    pub fn history(&self, room: &str, before: u64, limit: u32) {
        let room = room.to_string();
        let _ = self.0.try_send(Command::History {
            room,
            before,
            limit,
        });
    }

    /// Asks for the events around the message `seq` of `room` (one found by a search):
    /// [`CONTEXT`] before it and after it, as history has them now; the answer comes as
    /// one [`Event::Context`].
    pub fn context(&self, room: &str, seq: u64) {
        let room = room.to_string();
        let _ = self.0.try_send(Command::Context { room, seq });
    }

    /// Enters `room`; the connection re-joins it after every reconnect.
    pub fn join(&self, room: &str) {
        let _ = self.0.try_send(Command::Join { room: room.into() });
    }

    /// Leaves `room`.
    pub fn part(&self, room: &str) {
        let _ = self.0.try_send(Command::Part { room: room.into() });
    }

    /// Changes the account's password; the answer comes as a `password_changed` or an
    /// `error` frame.
    pub fn set_password(&self, password: Password, new_password: Password) {
        self.send(ClientFrame::SetPassword {
            password,
            new_password,
        });
    }

    /// Asks for the list of rooms; it comes as a `room_list` frame.
    pub fn rooms(&self) {
        self.send(ClientFrame::Rooms);
    }

    /// Sends a frame as it is while logged in; nothing is kept for later while offline.
    pub fn send(&self, frame: ClientFrame) {
        let _ = self.0.try_send(Command::Send(frame));
    }

    /// Leaves: sends `bye`, waits (bounded) for the server to close, then the connection
    /// emits [`Event::Closed`] and ends.
    pub fn bye(&self) {
        let _ = self.0.try_send(Command::Bye);
    }
}

/// `welcome.conversations` as the app takes them: each conversation (`@name`) with its
/// newest seq, and with the account's read marker there.
type Marks = Vec<(String, u64)>;
fn conversations_of(conversations: Vec<chat_shared::Conversation>) -> (Marks, Marks) {
    conversations
        .into_iter()
        .map(|c| {
            let name = format!("{DIRECT}{}", c.with);
            ((name.clone(), c.seq), (name, c.read))
        })
        .unzip()
}

/// A fresh post id: 64 random bits in hex.
pub fn new_post_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// What the connection tells the app.
#[derive(Debug, Clone)]
pub enum Event {
    /// The connection started; use this handle to talk to it.
    Ready(Handle),
    /// Trying to connect.
    Connecting {
        /// 1 for the first try, counting up while the server stays away.
        attempt: u32,
    },
    /// The server cannot be reached; the next try comes in `retry_in` (emitted every
    /// second while waiting).
    Offline {
        /// The attempt that failed.
        attempt: u32,
        /// Time left before the next try.
        retry_in: Duration,
        /// Why, in words.
        reason: String,
    },
    /// Logged in.
    LoggedIn(Session),
    /// A frame from the server: room events (each once, in `seq` order within its room,
    /// only of rooms the app is in), `room` answers, errors, `room_list`.
    Frame(ServerFrame),
    /// The answer to a history request: the events before `before`, oldest first.
    History {
        /// The room.
        room: String,
        /// The `before` of the request.
        before: u64,
        /// The events.
        frames: Vec<ServerFrame>,
    },
    /// The answer to a context request: the events around `seq`, oldest first.
    Context {
        /// The room.
        room: String,
        /// The message asked about.
        seq: u64,
        /// The events.
        frames: Vec<ServerFrame>,
    },
    /// The server's certificate is not vouched for and was not trusted before; the
    /// connection ends, and the app may ask the person to trust it.
    Untrusted {
        /// Its SHA-256 fingerprint.
        fingerprint: String,
    },
    /// The server's certificate is not the one trusted before: refused, and the
    /// connection ends.
    CertificateChanged {
        /// The fingerprint trusted before.
        expected: String,
        /// The one it shows now.
        got: String,
    },
    /// The login was refused for good; the connection ends.
    Rejected {
        /// Why.
        code: RejectCode,
        /// Why, in the server's words.
        message: String,
    },
    /// The connection dropped; it is coming back by itself. History requests under way
    /// are not answered.
    Disconnected {
        /// Why, in words.
        reason: String,
        /// The code of the server's `closing`, when it said why.
        closing: Option<CloseCode>,
    },
    /// The connection ended for good, not by our `bye` (another login took the session).
    Ended {
        /// Why, in words.
        reason: String,
    },
    /// `bye` was sent and the server closed: the app may exit.
    Closed,
}

/// A post waiting to be acknowledged.
#[derive(Debug, Clone)]
struct Post {
    id: String,
    room: Option<String>,
    text: String,
    me: bool,
    reply_to: Option<u64>,
    /// Sent on the current connection (and not refused since).
    sent: bool,
}

/// Posts not yet acknowledged by the server, oldest first.
#[derive(Debug, Default)]
struct Outbox {
    posts: VecDeque<Post>,
    /// The local token bucket that paces sending to the server's rate.
    tokens: f64,
    refilled: Option<Instant>,
    /// Nothing is sent before this (after a `rate_limited`).
    paused_until: Option<Instant>,
}

impl Outbox {
    fn push(&mut self, room: Option<String>, id: String, said: (String, bool, Option<u64>)) {
        let (text, me, reply_to) = said;
        if !self.posts.iter().any(|p| p.id == id) {
            self.posts.push_back(Post {
                id,
                room,
                text,
                me,
                reply_to,
                sent: false,
            });
        }
    }

    /// A new connection: everything not acknowledged goes again (the server drops copies).
    fn resend_all(&mut self, limits: &Limits, now: Instant) {
        for post in &mut self.posts {
            post.sent = false;
        }
        self.tokens = f64::from(limits.burst);
        self.refilled = Some(now);
        self.paused_until = None;
    }

    fn acknowledge(&mut self, id: &str) -> bool {
        let before = self.posts.len();
        self.posts.retain(|p| p.id != id);
        before != self.posts.len()
    }

    fn rate_limited(&mut self, id: &str, retry_after: Duration, now: Instant) {
        if let Some(post) = self.posts.iter_mut().find(|p| p.id == id) {
            post.sent = false;
        }
        self.tokens = 0.0;
        self.paused_until = Some(now + retry_after);
    }

    /// The posts that may go now, paced to `limits`, as `say` frames; marks them sent.
    fn due(&mut self, limits: &Limits, now: Instant) -> Vec<ClientFrame> {
        if self.paused_until.is_some_and(|t| now < t) {
            return Vec::new();
        }
        self.paused_until = None;
        if limits.rate > 0 {
            let elapsed = self
                .refilled
                .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
            self.tokens =
                (self.tokens + elapsed * f64::from(limits.rate)).min(f64::from(limits.burst));
            self.refilled = Some(now);
        }
        let mut due = Vec::new();
        for post in self.posts.iter_mut().filter(|p| !p.sent) {
            if limits.rate > 0 {
                if self.tokens < 1.0 {
                    break;
                }
                self.tokens -= 1.0;
            }
            post.sent = true;
            let direct = post.room.as_deref().and_then(direct_with);
            due.push(ClientFrame::Say {
                to: direct.map(str::to_string),
                room: post.room.clone().filter(|_| direct.is_none()),
                text: post.text.clone(),
                id: Some(post.id.clone()),
                me: post.me,
                reply_to: post.reply_to,
            });
        }
        due
    }

    /// When the next unsent post may go, if one waits.
    fn next_due(&self, limits: &Limits, now: Instant) -> Option<Instant> {
        if !self.posts.iter().any(|p| !p.sent) {
            return None;
        }
        if let Some(t) = self.paused_until {
            return Some(t);
        }
        if limits.rate == 0 || self.tokens >= 1.0 {
            return Some(now);
        }
        let wait = (1.0 - self.tokens) / f64::from(limits.rate);
        Some(now + Duration::from_secs_f64(wait))
    }
}

/// A room the connection is in (or is joining), and where the client is in its history.
#[derive(Debug)]
struct RoomState {
    /// Its name as the server spells it (as the app asked, until the server answers).
    name: String,
    /// Its case-folded name: how frames are matched to it.
    key: String,
    /// The newest seq passed on to the app.
    last_seq: u64,
    /// The server answered for it on this connection (its `room`, or the `welcome`).
    answered: bool,
    /// Filling what a bounded replay left out.
    gap: Gap,
}

impl RoomState {
    fn is_direct(&self) -> bool {
        self.key.starts_with(DIRECT)
    }

    fn new(name: &str, last_seq: u64) -> Self {
        Self {
            name: name.to_string(),
            key: room_key(name),
            last_seq,
            answered: false,
            gap: Gap::None,
        }
    }
}

/// How one connection ended.
enum Ending {
    /// We said bye and the server closed.
    Bye,
    /// Lost after logging in; reconnect at once (the server was there a moment ago).
    Lost(String, Option<CloseCode>),
    /// Failed before logging in; wait, then retry.
    Failed(String),
    /// Refused for now (`server_full`, `too_many_connections`): wait, then retry.
    Busy(Duration, String),
    /// Refused for good.
    Rejected(RejectCode, String),
    /// Ended for good without a rejection.
    Ended(String),
}

/// Runs a connection for `target`, starting from what `resume` says, until the app says
/// `bye`, the login is refused for good, or `events` is dropped. Every event goes to
/// `events`.
pub async fn run(target: Target, resume: Resume, events: Sender<Event>) {
    let (commands_tx, commands) = async_channel::unbounded();
    let rooms = resume.rooms.map(|rooms| {
        rooms
            .iter()
            .map(|(name, seq)| RoomState::new(name, *seq))
            .collect()
    });
    let mut worker = Worker {
        target,
        events,
        commands,
        outbox: Outbox::default(),
        epoch: resume.epoch,
        token: None,
        default_room: resume.default_room,
        rooms,
        limits: None,
        asked: Vec::new(),
        at: 0,
        me: None,
    };
    worker.emit(Event::Ready(Handle(commands_tx))).await;
    worker.run().await;
}

struct Worker {
    target: Target,
    events: Sender<Event>,
    commands: Receiver<Command>,
    outbox: Outbox,
    /// The epoch the rooms' seqs count in.
    epoch: Option<String>,
    /// The token of the last welcome, to take that session over.
    token: Option<String>,
    default_room: Option<String>,
    /// The rooms, in order; `None` until a welcome says which (with nothing to resume).
    rooms: Option<Vec<RoomState>>,
    limits: Option<Limits>,
    /// History requests sent and not yet answered, with what has arrived.
    asked: Vec<Asked>,
    /// Which of the target's servers to try next (they are tried in turn).
    at: usize,
    /// The name the server accepted (case-folded), once logged in.
    me: Option<String>,
}

/// Events fetched with one `history` request per page while resuming.
const CATCH_UP_PAGE: u32 = 200;
/// Events fetched before (and after) a message shown in its context.
pub const CONTEXT: u64 = 20;

/// A history request sent and not yet answered.
#[derive(Debug)]
enum Asked {
    /// By the app, scrolling back: the answer goes to it as one [`Event::History`].
    Before {
        key: String,
        before: u64,
        frames: Vec<ServerFrame>,
    },
    /// By the connection, filling a gap: the events after this seq, passed on one by one.
    After { key: String, after: u64 },
    /// By the app, around a message: the events after `after` that the connection had
    /// passed on when it asked (up to `until`); newer ones are live and pass as usual.
    Around {
        key: String,
        seq: u64,
        after: u64,
        until: u64,
        frames: Vec<ServerFrame>,
    },
}

/// A replay bounded by the server (`--replay-max`) starts later than where this client
/// left off; the events in between are fetched with `history` `after` before anything
/// newer is passed on, so the app still gets every event once, in order.
#[derive(Debug)]
enum Gap {
    /// Nothing to fill.
    None,
    /// Resumed after this seq: the first event to arrive shows whether there is a gap.
    Watch(u64),
    /// Fetching; events from `until` on wait in `held`.
    Filling {
        /// The first event the server replayed.
        until: u64,
        /// It and everything after it, until the gap is filled.
        held: Vec<ServerFrame>,
    },
}

impl Worker {
    async fn emit(&self, event: Event) {
        let _ = self.events.send(event).await;
    }

    async fn run(&mut self) {
        let mut servers: Vec<String> = self
            .target
            .servers()
            .into_iter()
            .map(str::to_string)
            .collect();
        if servers.is_empty() {
            servers.push(self.target.server.clone());
        }
        let count = servers.len();
        let mut attempt = 0;
        // Servers that could not be reached since the last connection: once every one
        // has failed, wait before the next round.
        let mut failed = 0;
        loop {
            if self.events.is_closed() {
                return;
            }
            attempt += 1;
            self.emit(Event::Connecting { attempt }).await;
            let server = servers[self.at % count].as_str();
            let (wait, reason) = match connect(&self.target, server).await {
                Err(Failed::Io(err)) => (RETRY_EVERY, describe_io(&err)),
                Err(Failed::Tls(reason)) => (RETRY_EVERY, reason),
                Err(Failed::Refused(refusal)) => {
                    self.refused(refusal).await;
                    return;
                }
                Ok(stream) => match self.session(stream).await {
                    Ending::Bye => {
                        self.emit(Event::Closed).await;
                        return;
                    }
                    Ending::Rejected(code, message) => {
                        self.emit(Event::Rejected { code, message }).await;
                        return;
                    }
                    Ending::Ended(reason) => {
                        self.emit(Event::Ended { reason }).await;
                        return;
                    }
                    Ending::Lost(reason, closing) => {
                        // We were online a moment ago: try again at once (the same
                        // server first).
                        self.emit(Event::Disconnected { reason, closing }).await;
                        attempt = 0;
                        failed = 0;
                        continue;
                    }
                    Ending::Busy(wait, reason) => (wait, reason),
                    Ending::Failed(reason) => (RETRY_EVERY, reason),
                },
            };
            // This one is away (or full): the next one at once, until all were tried.
            self.at = (self.at + 1) % count;
            failed += 1;
            if failed < count {
                tracing::info!(server, %reason, "moving to the next server");
                continue;
            }
            failed = 0;
            if self.wait_offline(attempt, wait, &reason).await {
                self.emit(Event::Closed).await;
                return;
            }
        }
    }

    async fn refused(&self, refusal: tls::Refusal) {
        self.emit(match refusal {
            tls::Refusal::Untrusted { fingerprint } => Event::Untrusted { fingerprint },
            tls::Refusal::Changed { expected, got } => Event::CertificateChanged { expected, got },
        })
        .await;
    }

    /// Counts down to the next try, taking posts, joins and parts meanwhile. Returns
    /// `true` if the app said bye.
    async fn wait_offline(&mut self, attempt: u32, wait: Duration, reason: &str) -> bool {
        let until = Instant::now() + wait;
        loop {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            let retry_in = until - now;
            self.emit(Event::Offline {
                attempt,
                retry_in,
                reason: reason.to_string(),
            })
            .await;
            // Tick on whole seconds of the countdown, so the app can show it.
            let tick = retry_in
                .checked_sub(Duration::from_secs(retry_in.as_secs()))
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(1))
                .min(retry_in);
            let deadline = now + tick;
            loop {
                let command = future::or(async { self.commands.recv().await.ok() }, async {
                    Timer::at(deadline).await;
                    None
                })
                .await;
                match command {
                    None => break,
                    Some(Command::Bye) => return true,
                    Some(command) => {
                        // Joins and parts take effect at the next login; posts wait.
                        let _ = self.command_offline(command);
                    }
                }
            }
        }
    }

    /// A command while there is no connection: what it changes is sent at the next login.
    /// Returns the frame to send when there is a connection after all.
    fn command_offline(&mut self, command: Command) -> Option<ClientFrame> {
        match command {
            Command::Say {
                room,
                id,
                text,
                me,
                reply_to,
            } => {
                if let Some(name) = room.as_deref().filter(|r| direct_with(r).is_some()) {
                    let key = room_key(name);
                    let rooms = self.rooms.get_or_insert_with(Vec::new);
                    if !rooms.iter().any(|r| r.key == key) {
                        let mut state = RoomState::new(name, 0);
                        state.answered = true;
                        rooms.push(state);
                    }
                }
                self.outbox.push(room, id, (text, me, reply_to));
            }
            Command::Join { room } => {
                let key = RoomState::new(&room, 0).key;
                let rooms = self.rooms.get_or_insert_with(Vec::new);
                if !rooms.iter().any(|r| r.key == key) {
                    rooms.push(RoomState::new(&room, 0));
                }
                // A conversation is not joined: it is there for an account.
                return direct_with(&room)
                    .is_none()
                    .then_some(ClientFrame::Join { room, since: None });
            }
            Command::Part { room } => {
                let key = RoomState::new(&room, 0).key;
                if let Some(rooms) = &mut self.rooms {
                    rooms.retain(|r| r.key != key);
                }
                self.asked.retain(|asked| asked.key() != key);
                return direct_with(&room)
                    .is_none()
                    .then_some(ClientFrame::Part { room });
            }
            // Nothing to ask while offline; the app asks again once logged in.
            Command::History { .. } | Command::Context { .. } | Command::Send(_) | Command::Bye => {
            }
        }
        None
    }

    /// One connection, from `hello` to its end.
    async fn session(&mut self, (reader, writer): (Reader, Writer)) -> Ending {
        // Requests sent on the last connection will not be answered.
        self.asked.clear();
        let mut reader = FrameReader::<_, ServerFrame>::new(reader, MAX_SERVER_FRAME);
        let mut writer = FrameWriter::new(writer);
        let default_seq = self
            .default_room
            .as_deref()
            .and_then(|name| self.room(&room_key(name)))
            .map(|room| room.last_seq);
        // An account comes back with its token, which costs the server no hashing; the
        // password goes only when there is no token (or it was refused).
        let hello = ClientFrame::Hello {
            password: self
                .token
                .is_none()
                .then(|| self.target.password.clone())
                .flatten(),
            register: self.target.register && self.token.is_none(),
            protocol: PROTOCOL_VERSION,
            name: self.target.name.clone(),
            since: self.epoch.as_ref().and(default_seq),
            epoch: self.epoch.clone(),
            token: self.token.clone(),
        };
        if let Err(err) = writer.send_frame(&hello).await {
            return Ending::Failed(describe_io(&err));
        }
        let welcome = match next_frame(&mut reader, Duration::from_secs(30)).await {
            Ok(frame) => frame,
            Err(reason) => return Ending::Failed(reason),
        };
        let (limits, catch_up) = match welcome {
            ServerFrame::Welcome {
                name,
                users,
                seq,
                oldest,
                epoch,
                token,
                rooms,
                limits,
                account,
                conversations,
                invites,
                admin,
                password_reset,
                ..
            } => {
                // Registered: from now on it logs in.
                self.target.register = false;
                self.me = Some(chat_shared::fold(&name));
                let (mut session, mut catch_up) =
                    self.welcomed(name, users, seq, oldest, epoch, token, &rooms, limits);
                session.account = account;
                session.admin = admin;
                session.password_reset = password_reset;
                session.invites = invites
                    .into_iter()
                    .map(|invitation| (invitation.room, invitation.by))
                    .collect();
                let (conversations, read) = conversations_of(conversations.unwrap_or_default());
                session.conversations_read = read;
                catch_up.extend(self.catch_up_directs(&conversations, session.new_epoch));
                catch_up.splice(0..0, default_room_answer(&session));
                session.conversations = conversations;
                self.emit(Event::LoggedIn(session)).await;
                (limits, catch_up)
            }
            ServerFrame::Rejected {
                code,
                message,
                retry_after,
            } => {
                if code == RejectCode::NameRegistered
                    && self.token.is_some()
                    && self.target.password.is_some()
                {
                    // The token is gone (the server restarted): log in with the password.
                    self.token = None;
                    return Ending::Busy(Duration::from_millis(100), message);
                }
                return if code.is_transient() {
                    let wait = retry_after.map_or(RETRY_EVERY, Duration::from_millis);
                    Ending::Busy(wait.max(Duration::from_millis(100)), message)
                } else {
                    Ending::Rejected(code, message)
                };
            }
            ServerFrame::Closing { message, .. } => return Ending::Failed(message),
            other => return Ending::Failed(format!("unexpected first frame {other:?}")),
        };
        self.limits = Some(limits);
        // Rooms first, then the outbox: a post re-sent to a room is then a member's.
        for frame in catch_up {
            if let Err(err) = writer.send_frame(&frame).await {
                return Ending::Lost(describe_io(&err), None);
            }
        }
        self.outbox.resend_all(&limits, Instant::now());
        self.online(reader, writer, limits).await
    }

    /// The history requests that catch up with the account's conversations: every one
    /// the welcome lists with newer messages than seen (a new one from its newest 50),
    /// each filled like a gap so that what arrives live meanwhile waits its turn.
    fn catch_up_directs(
        &mut self,
        conversations: &[(String, u64)],
        new_epoch: bool,
    ) -> Vec<ClientFrame> {
        let mut asks = Vec::new();
        for (name, newest) in conversations {
            let key = room_key(name);
            let rooms = self.rooms.get_or_insert_with(Vec::new);
            let at = rooms.iter().position(|r| r.key == key).unwrap_or_else(|| {
                rooms.push(RoomState::new(name, 0));
                rooms.len() - 1
            });
            let room = &mut rooms[at];
            room.answered = true;
            if new_epoch {
                room.last_seq = 0;
            }
            if *newest <= room.last_seq {
                continue;
            }
            let after = if room.last_seq == 0 {
                newest.saturating_sub(50)
            } else {
                room.last_seq
            };
            room.last_seq = after;
            room.gap = Gap::Filling {
                until: newest + 1,
                held: Vec::new(),
            };
            let name = room.name.clone();
            asks.push(self.ask_after(&key, &name, after));
        }
        asks
    }

    /// A `welcome`: where each room stands now, the session for the app, and the frames
    /// that bring the connection into the app's rooms (and out of the others).
    #[allow(clippy::too_many_arguments, reason = "the fields of a welcome")]
    fn welcomed(
        &mut self,
        name: String,
        users: Vec<String>,
        seq: u64,
        oldest: u64,
        epoch: String,
        token: String,
        rooms: &[String],
        limits: Limits,
    ) -> (Session, Vec<ClientFrame>) {
        let same_epoch = self.epoch.as_deref() == Some(epoch.as_str());
        let new_epoch = self.epoch.is_some() && !same_epoch;
        // A fresh login puts the connection in the default room alone; after a takeover
        // the rooms are the old connection's, and the default room is the one known.
        if self.token.is_none() || self.default_room.is_none() {
            self.default_room = rooms.first().cloned().or(self.default_room.take());
        }
        let default_room = self.default_room.clone().unwrap_or_default();
        let default_key = room_key(&default_room);
        let list = self
            .rooms
            .get_or_insert_with(|| rooms.iter().map(|name| RoomState::new(name, 0)).collect());
        let mut missed = false;
        for room in list.iter_mut() {
            room.answered = false;
            room.gap = Gap::None;
            if !same_epoch {
                room.last_seq = 0;
            }
            if room.key == default_key && rooms.iter().any(|r| room_key(r) == default_key) {
                // The welcome answers for the default room.
                room.answered = true;
                room.name.clone_from(&default_room);
                missed = same_epoch && room.last_seq > 0 && room.last_seq + 1 < oldest;
                // Resuming with events to replay that the server still holds: if
                // its replay is bounded, the first event says where the gap is.
                if same_epoch && !missed && seq > room.last_seq {
                    room.gap = Gap::Watch(room.last_seq);
                }
            }
        }
        let names = list.iter().map(|room| room.name.clone()).collect();
        // Rooms to resume or enter, and rooms the server put us in that the app
        // left.
        let mut catch_up: Vec<ClientFrame> = list
            .iter_mut()
            .filter(|room| !room.answered && !room.is_direct())
            .map(|room| {
                let since = (same_epoch && room.last_seq > 0).then_some(room.last_seq);
                if let Some(since) = since {
                    room.gap = Gap::Watch(since);
                }
                ClientFrame::Join {
                    room: room.name.clone(),
                    since,
                }
            })
            .collect();
        catch_up.extend(
            rooms
                .iter()
                .filter(|name| !list.iter().any(|room| room.key == room_key(name)))
                .map(|name| ClientFrame::Part { room: name.clone() }),
        );
        for room in list.iter_mut().filter(|room| room.is_direct()) {
            // A conversation has no `room` answer: it is there as soon as logged in.
            room.answered = true;
        }
        self.epoch = Some(epoch.clone());
        self.token = Some(token);
        let session = Session {
            name,
            users,
            seq,
            oldest,
            epoch,
            limits,
            resumed: same_epoch,
            missed,
            new_epoch,
            default_room,
            rooms: names,
            account: false,
            conversations: Vec::new(),
            conversations_read: Vec::new(),
            admin: false,
            password_reset: false,
            invites: Vec::new(),
        };
        (session, catch_up)
    }

    /// The logged-in part of a session.
    async fn online(
        &mut self,
        mut reader: FrameReader<Reader, ServerFrame>,
        mut writer: FrameWriter<Writer>,
        limits: Limits,
    ) -> Ending {
        enum Wake {
            Frame(Option<Result<ServerFrame, ReadError>>),
            Command(Option<Command>),
            Timer,
        }
        let ping_after = Duration::from_secs(CLIENT_PING_AFTER_SECS);
        let mut last_heard = Instant::now();
        let mut pinged = false;
        let mut closing: Option<(CloseCode, String)> = None;
        loop {
            let now = Instant::now();
            for frame in self.outbox.due(&limits, now) {
                if let Err(err) = writer.send_frame(&frame).await {
                    return Ending::Lost(describe_io(&err), None);
                }
            }
            let silence_limit = last_heard + if pinged { ping_after * 2 } else { ping_after };
            let wake_at = self
                .outbox
                .next_due(&limits, now)
                .map_or(silence_limit, |t| t.min(silence_limit));
            let wake = future::or(
                async { Wake::Frame(reader.next().await) },
                future::or(
                    async { Wake::Command(self.commands.recv().await.ok()) },
                    async {
                        Timer::at(wake_at).await;
                        Wake::Timer
                    },
                ),
            )
            .await;
            let send = match wake {
                Wake::Timer => {
                    if Instant::now() < silence_limit {
                        continue;
                    }
                    if pinged {
                        return Ending::Lost("the server stopped answering".into(), None);
                    }
                    pinged = true;
                    Some(ClientFrame::Ping { token: None })
                }
                Wake::Command(None) => return Ending::Lost("the app went away".into(), None),
                Wake::Command(Some(Command::Bye)) => {
                    return say_bye(&mut reader, &mut writer).await;
                }
                Wake::Command(Some(command)) => self.command(command),
                Wake::Frame(None | Some(Err(ReadError::Io(_) | ReadError::Truncated))) => {
                    return match closing {
                        // Coming back would not help: another connection has the session,
                        // or the account is no more.
                        Some((CloseCode::Replaced | CloseCode::AccountDeleted, message)) => {
                            Ending::Ended(message)
                        }
                        Some((code, message)) => Ending::Lost(message, Some(code)),
                        None => Ending::Lost("the server closed the connection".into(), None),
                    };
                }
                // A frame this version cannot read: skip it, servers can grow.
                Wake::Frame(Some(Err(ReadError::Decode(_)))) => {
                    last_heard = Instant::now();
                    None
                }
                Wake::Frame(Some(Ok(frame))) => {
                    last_heard = Instant::now();
                    pinged = false;
                    match frame {
                        ServerFrame::Ping { token } => Some(ClientFrame::Pong { token }),
                        ServerFrame::Closing { code, message } => {
                            closing = Some((code, message));
                            None
                        }
                        frame => self.received(frame).await,
                    }
                }
            };
            if let Some(frame) = send
                && let Err(err) = writer.send_frame(&frame).await
            {
                return Ending::Lost(describe_io(&err), None);
            }
        }
    }

    /// A command while logged in: the frame to send, if any.
    fn command(&mut self, command: Command) -> Option<ClientFrame> {
        match command {
            Command::History {
                room,
                before,
                limit,
            } => {
                let key = RoomState::new(&room, 0).key;
                self.room(&key)?;
                self.asked.push(Asked::Before {
                    key,
                    before,
                    frames: Vec::new(),
                });
                Some(history_request(&room, Some(before), None, limit))
            }
            Command::Context { room, seq } => {
                let key = RoomState::new(&room, 0).key;
                let until = self.room(&key)?.last_seq;
                let after = seq.saturating_sub(CONTEXT + 1);
                self.asked.push(Asked::Around {
                    key,
                    seq,
                    after,
                    until,
                    frames: Vec::new(),
                });
                Some(history_request(
                    &room,
                    None,
                    Some(after),
                    2 * CONTEXT as u32 + 1,
                ))
            }
            Command::Send(frame) => Some(frame),
            command => self.command_offline(command),
        }
    }

    fn room(&self, key: &str) -> Option<&RoomState> {
        self.rooms.as_ref()?.iter().find(|room| room.key == key)
    }

    fn room_mut(&mut self, key: &str) -> Option<&mut RoomState> {
        self.rooms.as_mut()?.iter_mut().find(|room| room.key == key)
    }

    /// The key of the room a frame is about (a frame with no room is the default room's).
    fn key_of(&self, frame: &ServerFrame) -> Option<String> {
        if let Some(with) = frame.with() {
            return Some(room_key(&format!("{DIRECT}{with}")));
        }
        let room = match frame {
            ServerFrame::Error { room, .. } => room.as_deref(),
            frame => frame.room().or(self.default_room.as_deref()),
        };
        room.map(room_key)
    }

    /// Handles a frame: passes it to the app, dropping replayed events it already has and
    /// settling the outbox. Events a history request asked for are its answer. Returns
    /// the next page of a gap to ask for, if any.
    async fn received(&mut self, frame: ServerFrame) -> Option<ClientFrame> {
        let key = self.key_of(&frame);
        if let (
            ServerFrame::Message {
                with: Some(with),
                seq,
                ..
            },
            Some(key),
        ) = (&frame, &key)
            && self.room(key).is_none()
        {
            // Someone wrote to us first: a new conversation, from this message on.
            let mut room = RoomState::new(&format!("{DIRECT}{with}"), seq.saturating_sub(1));
            room.answered = true;
            self.rooms.get_or_insert_with(Vec::new).push(room);
        }
        match (&frame, key) {
            (ServerFrame::RoomList { .. }, _) | (_, None) => {}
            (
                ServerFrame::HistoryEnd {
                    before,
                    after,
                    count,
                    ..
                },
                Some(key),
            ) => {
                return self.history_end(&key, *before, *after, *count).await;
            }
            (ServerFrame::Room { room, .. }, Some(key)) => {
                let Some(state) = self.room_mut(&key) else {
                    return None; // parted meanwhile
                };
                state.answered = true;
                state.name.clone_from(room);
            }
            (
                ServerFrame::Error {
                    code,
                    id: None,
                    room: Some(_),
                    ..
                },
                Some(key),
            ) => {
                // A join that failed: the room is not the app's any more.
                let failed_join =
                    code.refuses_a_join() && self.room(&key).is_some_and(|room| !room.answered);
                if failed_join && let Some(rooms) = &mut self.rooms {
                    rooms.retain(|room| room.key != key);
                }
            }
            (frame, Some(key)) if frame.seq().is_some() => {
                let put_out = self.puts_me_out(frame);
                let next = self.room_event(&key, frame.clone()).await;
                if put_out && let Some(rooms) = &mut self.rooms {
                    // Not to be joined again by itself at the next login.
                    rooms.retain(|room| room.key != key);
                    self.asked.retain(|asked| asked.key() != key);
                }
                return next;
            }
            _ => {}
        }
        self.pass(frame).await;
        None
    }

    /// Whether an event is a moderator putting this user out of its room.
    fn puts_me_out(&self, frame: &ServerFrame) -> bool {
        matches!(frame, ServerFrame::Left { name, reason: LeaveReason::Removed | LeaveReason::Banned, .. }
            if self.me.as_deref() == Some(chat_shared::fold(name).as_str()))
    }

    /// An event of a room: an answer to a history request, held while a gap is filled,
    /// or passed on.
    async fn room_event(&mut self, key: &str, frame: ServerFrame) -> Option<ClientFrame> {
        let seq = frame.seq()?;
        let Some(room) = self.rooms.as_mut()?.iter_mut().find(|r| r.key == key) else {
            return None; // not a room of ours (any more)
        };
        for asked in &mut self.asked {
            match asked {
                Asked::Before {
                    key: k,
                    before,
                    frames,
                } if k == key && seq < *before => {
                    frames.push(frame);
                    return None;
                }
                Asked::Around {
                    key: k,
                    after,
                    until,
                    frames,
                    ..
                } if k == key && seq > *after && seq <= *until => {
                    frames.push(frame);
                    return None;
                }
                Asked::After { key: k, after }
                    if k == key
                        && seq > *after
                        && matches!(room.gap, Gap::Filling { until, .. } if seq < until) =>
                {
                    self.pass(frame).await;
                    return None;
                }
                _ => {}
            }
        }
        match &mut room.gap {
            Gap::Watch(since) if seq > *since + 1 => {
                let since = *since;
                let name = room.name.clone();
                room.gap = Gap::Filling {
                    until: seq,
                    held: vec![frame],
                };
                return Some(self.ask_after(key, &name, since));
            }
            Gap::Watch(_) => room.gap = Gap::None,
            Gap::Filling { held, .. } => {
                held.push(frame);
                return None;
            }
            Gap::None => {}
        }
        self.pass(frame).await;
        None
    }

    /// The end of a history answer.
    async fn history_end(
        &mut self,
        key: &str,
        before: Option<u64>,
        after: Option<u64>,
        count: u32,
    ) -> Option<ClientFrame> {
        let at = self.asked.iter().position(|asked| match asked {
            Asked::Before {
                key: k, before: b, ..
            } => k == key && Some(*b) == before,
            Asked::After { key: k, after: a }
            | Asked::Around {
                key: k, after: a, ..
            } => k == key && Some(*a) == after,
        })?;
        match self.asked.remove(at) {
            Asked::Before { before, frames, .. } => {
                let room = self.room(key)?.name.clone();
                self.emit(Event::History {
                    room,
                    before,
                    frames,
                })
                .await;
                None
            }
            Asked::Around { seq, frames, .. } => {
                let room = self.room(key)?.name.clone();
                self.emit(Event::Context { room, seq, frames }).await;
                None
            }
            Asked::After { .. } => self.gap_page_done(key, count).await,
        }
    }

    /// Asks for the page of a gap after `after`.
    fn ask_after(&mut self, key: &str, room: &str, after: u64) -> ClientFrame {
        self.asked.push(Asked::After {
            key: key.to_string(),
            after,
        });
        history_request(room, None, Some(after), CATCH_UP_PAGE)
    }

    /// A page of a gap came in full: ask for the next, or pass on what waited.
    async fn gap_page_done(&mut self, key: &str, count: u32) -> Option<ClientFrame> {
        let room = self.room_mut(key)?;
        let Gap::Filling { until, .. } = &room.gap else {
            return None;
        };
        if count >= CATCH_UP_PAGE && room.last_seq + 1 < *until {
            let (name, last) = (room.name.clone(), room.last_seq);
            return Some(self.ask_after(key, &name, last));
        }
        if let Gap::Filling { held, .. } = std::mem::replace(&mut room.gap, Gap::None) {
            for frame in held {
                self.pass(frame).await;
            }
        }
        None
    }

    /// Passes one frame on to the app.
    async fn pass(&mut self, frame: ServerFrame) {
        if let Some(seq) = frame.seq() {
            let Some(key) = self.key_of(&frame) else {
                return;
            };
            let Some(room) = self.room_mut(&key) else {
                return;
            };
            if seq <= room.last_seq {
                return; // already seen
            }
            room.last_seq = seq;
        }
        match &frame {
            ServerFrame::Message { id: Some(id), .. } => {
                self.outbox.acknowledge(id);
            }
            ServerFrame::Error {
                code: code @ (ErrorCode::RateLimited | ErrorCode::Unavailable),
                id: Some(id),
                retry_after,
                ..
            } => {
                // Not posted, and nothing happened: the post goes again later.
                let default = if *code == ErrorCode::Unavailable {
                    2000
                } else {
                    1000
                };
                let wait = Duration::from_millis(retry_after.unwrap_or(default));
                self.outbox.rate_limited(id, wait, Instant::now());
                return;
            }
            ServerFrame::Error { id: Some(id), .. } => {
                // Refused for good (too long, blank, not a member...): it must not go again.
                self.outbox.acknowledge(id);
            }
            _ => {}
        }
        self.emit(Event::Frame(frame)).await;
    }
}

impl Asked {
    fn key(&self) -> &str {
        match self {
            Asked::Before { key, .. } | Asked::After { key, .. } | Asked::Around { key, .. } => key,
        }
    }
}

/// The welcome does not say the default room's topic and roles: its `room` answer does,
/// asked for as a resume (nothing is recorded, and nothing the welcome replayed comes
/// again).
fn default_room_answer(session: &Session) -> Option<ClientFrame> {
    let default = room_key(&session.default_room);
    session
        .rooms
        .iter()
        .any(|room| room_key(room) == default)
        .then(|| ClientFrame::Join {
            room: session.default_room.clone(),
            since: Some(session.seq),
        })
}

/// Sends `bye` and waits, bounded, for the server to close: the end of the stream is the
/// acknowledgement.
async fn say_bye(
    reader: &mut FrameReader<Reader, ServerFrame>,
    writer: &mut FrameWriter<Writer>,
) -> Ending {
    let bye = async {
        if writer.send_frame(&ClientFrame::Bye).await.is_ok() {
            while let Some(Ok(_)) = reader.next().await {}
        }
    };
    future::or(bye, async {
        Timer::after(BYE_TIMEOUT).await;
    })
    .await;
    Ending::Bye
}

async fn next_frame(
    reader: &mut FrameReader<Reader, ServerFrame>,
    limit: Duration,
) -> Result<ServerFrame, String> {
    future::or(
        async {
            loop {
                match reader.next().await {
                    Some(Ok(frame)) => return Ok(frame),
                    Some(Err(ReadError::Decode(_))) => {}
                    Some(Err(err)) => return Err(err.to_string()),
                    None => return Err("the server closed the connection".into()),
                }
            }
        },
        async {
            Timer::after(limit).await;
            Err("the server did not answer".into())
        },
    )
    .await
}

/// Why no connection was made.
enum Failed {
    /// The socket could not connect.
    Io(io::Error),
    /// The TLS handshake failed (not for trust): retried like an offline server.
    Tls(String),
    /// The certificate is not trusted: not retried.
    Refused(tls::Refusal),
}

/// Connects (over TLS when the target says so), refusing a socket connected to itself:
/// port 60000 is in Linux's ephemeral range, so with no server listening a client can
/// end up talking to itself.
async fn connect(target: &Target, server: &str) -> Result<(Reader, Writer), Failed> {
    let tcp = async {
        let stream = TcpStream::connect(server).await?;
        if stream.local_addr()? == stream.peer_addr()? {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        stream.set_nodelay(true)?;
        Ok(stream)
    };
    let stream = future::or(tcp, async {
        Timer::after(CONNECT_TIMEOUT).await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await
    .map_err(Failed::Io)?;
    if !target.tls {
        return Ok((Box::new(stream.clone()), Box::new(stream)));
    }
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    let handshake = async {
        tls::connect(stream, host, target.trusted.clone())
            .await
            .map_err(|failure| match failure {
                tls::Failure::Refused(refusal) => Failed::Refused(refusal),
                tls::Failure::Other(reason) => Failed::Tls(reason),
            })
    };
    let tls = future::or(handshake, async {
        Timer::after(CONNECT_TIMEOUT).await;
        Err(Failed::Tls("the TLS handshake timed out".into()))
    })
    .await?;
    let (reader, writer) = futures_lite::io::split(tls);
    Ok((Box::new(reader), Box::new(writer)))
}

fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => "connection lost".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32) -> Limits {
        Limits {
            rate,
            burst,
            ..Limits::default()
        }
    }

    #[test]
    fn outbox_paces_to_the_rate_and_keeps_order() {
        let t0 = Instant::now();
        let l = limits(5, 2);
        let mut outbox = Outbox::default();
        for i in 0..4 {
            outbox.push(
                Some("rust".into()),
                format!("{i}"),
                (format!("m{i}"), i == 3, None),
            );
        }
        outbox.push(None, "0".into(), ("again".into(), false, None)); // same id: not twice
        outbox.resend_all(&l, t0);
        let ids = |due: Vec<ClientFrame>| {
            due.into_iter()
                .map(|frame| match frame {
                    ClientFrame::Say {
                        id: Some(id), room, ..
                    } => {
                        assert_eq!(room.as_deref(), Some("rust"), "posted where it was typed");
                        id
                    }
                    other => panic!("not a say: {other:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(outbox.due(&l, t0)), ["0", "1"]);
        assert_eq!(
            outbox.next_due(&l, t0),
            Some(t0 + Duration::from_millis(200))
        );
        assert_eq!(ids(outbox.due(&l, t0 + Duration::from_millis(200))), ["2"]);
        assert!(outbox.acknowledge("0"));
        outbox.rate_limited("2", Duration::from_secs(1), t0 + Duration::from_millis(200));
        assert!(outbox.due(&l, t0 + Duration::from_millis(500)).is_empty());
        assert_eq!(
            ids(outbox.due(&l, t0 + Duration::from_millis(1400))),
            ["2", "3"]
        );
        // After a reconnect everything unacknowledged goes again, in order.
        outbox.resend_all(&l, t0 + Duration::from_secs(2));
        assert_eq!(ids(outbox.due(&l, t0 + Duration::from_secs(2))), ["1", "2"]);
        assert_eq!(outbox.posts.len(), 3);
    }

    #[test]
    fn a_conversation_goes_on_the_wire_with_to_and_with() {
        let l = limits(0, 1);
        let mut outbox = Outbox::default();
        outbox.push(
            Some("@Judy".into()),
            "1".into(),
            ("psst".into(), false, None),
        );
        outbox.push(
            Some("rust".into()),
            "2".into(),
            ("hi".into(), false, Some(1)),
        );
        let due = outbox.due(&l, Instant::now());
        assert!(
            matches!(&due[0], ClientFrame::Say { room: None, to: Some(to), .. } if to == "Judy")
        );
        assert!(matches!(&due[1], ClientFrame::Say { room: Some(r), to: None, .. } if r == "rust"));
        assert!(matches!(
            history_request("@Judy", Some(9), None, 50),
            ClientFrame::History { room: None, with: Some(w), before: Some(9), .. } if w == "Judy"
        ));
        assert!(matches!(
            history_request("rust", None, Some(3), 200),
            ClientFrame::History { room: Some(r), with: None, after: Some(3), .. } if r == "rust"
        ));
    }
}
