//! The client's connection to a server, as a state machine with no GUI types in it.
//!
//! [`run`] connects, logs in, reads and writes, and when the connection drops it retries
//! every two seconds and resumes with `since` (the last `seq` it saw), so nothing said
//! meanwhile is missed and nothing shows twice. Posts go through an [`Outbox`]: they wait
//! there while the connection is down, are paced to the server's rate, and are re-sent
//! with the same `id` until the server echoes them back, so each is posted exactly once.
//! The app talks to it through a [`Handle`] and hears from it through [`Event`]s.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use chat_shared::limits::{CLIENT_PING_AFTER_SECS, MAX_SERVER_FRAME};
use chat_shared::{
    ClientFrame, CloseCode, ErrorCode, FrameReader, FrameWriter, Limits, PROTOCOL_VERSION,
    ReadError, RejectCode, ServerFrame,
};
use futures_lite::future;
use smol::Timer;
use smol::net::TcpStream;

/// How long the client waits between two tries while the server is offline.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long `bye` may take to be written and acknowledged before the client gives up.
pub const BYE_TIMEOUT: Duration = Duration::from_millis(450);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Whom to connect to, as whom: the identity of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `host:port`.
    pub server: String,
    /// The name to log in with.
    pub name: String,
}

/// What the app asks of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Post a message under an id.
    Say {
        /// The post's id.
        id: String,
        /// The text.
        text: String,
    },
    /// Ask for older events.
    History {
        /// Before this seq.
        before: u64,
        /// How many at most.
        limit: u32,
    },
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

    /// Posts `text` under `id` (see [`new_post_id`]); it waits in the outbox until sent.
    pub fn say(&self, id: String, text: String) {
        let _ = self.0.try_send(Command::Say { id, text });
    }

    /// Asks for at most `limit` events before `before`; the answer comes as one
    /// [`Event::History`].
    pub fn history(&self, before: u64, limit: u32) {
        let _ = self.0.try_send(Command::History { before, limit });
    }

    /// Leaves: sends `bye`, waits (bounded) for the server to close, then the connection
    /// emits [`Event::Closed`] and ends.
    pub fn bye(&self) {
        let _ = self.0.try_send(Command::Bye);
    }
}

/// A fresh post id: 64 random bits in hex.
pub fn new_post_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// What was learnt from a `welcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The name the server accepted.
    pub name: String,
    /// Everyone online.
    pub users: Vec<String>,
    /// The newest seq before this login: events up to it are replay, later ones live.
    pub seq: u64,
    /// The oldest seq the server holds, 0 if none.
    pub oldest: u64,
    /// The history `seq` counts in.
    pub epoch: String,
    /// The server's limits.
    pub limits: Limits,
    /// Whether this login resumed an earlier one (same epoch, with `since`).
    pub resumed: bool,
    /// Whether events were lost between the last one seen and the oldest the server holds.
    pub missed: bool,
    /// A new history started (the server restarted): known `seq` values mean nothing now.
    pub new_epoch: bool,
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
    /// A frame from the server: room events (each once, in `seq` order) and errors.
    Frame(ServerFrame),
    /// The answer to a history request: the events before `before`, oldest first.
    History {
        /// The `before` of the request.
        before: u64,
        /// The events.
        frames: Vec<ServerFrame>,
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
    text: String,
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
    fn push(&mut self, id: String, text: String) {
        if !self.posts.iter().any(|p| p.id == id) {
            self.posts.push_back(Post {
                id,
                text,
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

    /// The posts that may go now, paced to `limits`; marks them sent.
    fn due(&mut self, limits: &Limits, now: Instant) -> Vec<(String, String)> {
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
            due.push((post.id.clone(), post.text.clone()));
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

/// Where this client is in the room's history, to resume after a reconnect.
#[derive(Debug, Default)]
struct Position {
    epoch: Option<String>,
    last_seq: u64,
    token: Option<String>,
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

/// Runs a connection for `target` until the app says `bye`, the login is refused for good,
/// or `events` is dropped. Every event goes to `events`.
pub async fn run(target: Target, events: Sender<Event>) {
    let (commands_tx, commands) = async_channel::unbounded();
    let mut worker = Worker {
        target,
        events,
        commands,
        outbox: Outbox::default(),
        position: Position::default(),
        limits: None,
        history: VecDeque::new(),
        gap: Gap::None,
    };
    worker.emit(Event::Ready(Handle(commands_tx))).await;
    worker.run().await;
}

struct Worker {
    target: Target,
    events: Sender<Event>,
    commands: Receiver<Command>,
    outbox: Outbox,
    position: Position,
    limits: Option<Limits>,
    /// History requests sent and not yet answered, oldest first, with what has arrived.
    history: VecDeque<Asked>,
    /// Filling what a bounded replay left out.
    gap: Gap,
}

/// Events fetched with one `history` request per page while resuming.
const CATCH_UP_PAGE: u32 = 200;

/// A history request sent and not yet answered.
#[derive(Debug)]
enum Asked {
    /// By the app, scrolling back: the answer goes to it as one [`Event::History`].
    Before(u64, Vec<ServerFrame>),
    /// By the connection, filling a gap: the events after this seq, passed on one by one.
    After(u64),
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
        let mut attempt = 0;
        loop {
            if self.events.is_closed() {
                return;
            }
            attempt += 1;
            self.emit(Event::Connecting { attempt }).await;
            let (wait, reason) = match connect(&self.target.server).await {
                Err(err) => (RETRY_EVERY, describe_io(&err)),
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
                        // We were online a moment ago: try again at once.
                        self.emit(Event::Disconnected { reason, closing }).await;
                        attempt = 0;
                        continue;
                    }
                    Ending::Busy(wait, reason) => (wait, reason),
                    Ending::Failed(reason) => (RETRY_EVERY, reason),
                },
            };
            if self.wait_offline(attempt, wait, &reason).await {
                self.emit(Event::Closed).await;
                return;
            }
        }
    }

    /// Counts down to the next try, taking posts into the outbox meanwhile. Returns `true`
    /// if the app said bye.
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
                    Some(Command::Say { id, text }) => self.outbox.push(id, text),
                    // Nothing to ask while offline; the app asks again once logged in.
                    Some(Command::History { .. }) => {}
                }
            }
        }
    }

    /// One connection, from `hello` to its end.
    async fn session(&mut self, stream: TcpStream) -> Ending {
        let mut reader = FrameReader::<_, ServerFrame>::new(stream.clone(), MAX_SERVER_FRAME);
        let mut writer = FrameWriter::new(stream);
        let hello = ClientFrame::Hello {
            protocol: PROTOCOL_VERSION,
            name: self.target.name.clone(),
            since: self.position.epoch.as_ref().map(|_| self.position.last_seq),
            epoch: self.position.epoch.clone(),
            token: self.position.token.clone(),
        };
        if let Err(err) = writer.send_frame(&hello).await {
            return Ending::Failed(describe_io(&err));
        }
        let welcome = match next_frame(&mut reader, Duration::from_secs(30)).await {
            Ok(frame) => frame,
            Err(reason) => return Ending::Failed(reason),
        };
        let limits = match welcome {
            ServerFrame::Welcome {
                name,
                users,
                seq,
                oldest,
                epoch,
                token,
                limits,
                ..
            } => {
                let same_epoch = self.position.epoch.as_deref() == Some(epoch.as_str());
                let had_position = self.position.epoch.is_some();
                let missed = had_position && oldest > 0 && self.position.last_seq + 1 < oldest;
                if !same_epoch {
                    self.position.last_seq = 0;
                }
                // Resuming with events to replay that the server still holds: if its replay
                // is bounded, the first event says where the gap is.
                self.gap = if same_epoch && !missed && seq > self.position.last_seq {
                    Gap::Watch(self.position.last_seq)
                } else {
                    Gap::None
                };
                self.position.epoch = Some(epoch.clone());
                self.position.token = Some(token);
                self.emit(Event::LoggedIn(Session {
                    name,
                    users,
                    seq,
                    oldest,
                    epoch,
                    limits,
                    resumed: same_epoch,
                    missed,
                    new_epoch: had_position && !same_epoch,
                }))
                .await;
                limits
            }
            ServerFrame::Rejected {
                code,
                message,
                retry_after,
            } => {
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
        // Requests sent on the last connection will not be answered.
        self.history.clear();
        self.outbox.resend_all(&limits, Instant::now());
        self.online(reader, writer, limits).await
    }

    /// The logged-in part of a session.
    async fn online(
        &mut self,
        mut reader: FrameReader<TcpStream, ServerFrame>,
        mut writer: FrameWriter<TcpStream>,
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
            for (id, text) in self.outbox.due(&limits, now) {
                let frame = ClientFrame::Say { text, id: Some(id) };
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
            match wake {
                Wake::Timer => {
                    let now = Instant::now();
                    if now >= silence_limit {
                        if pinged {
                            return Ending::Lost("the server stopped answering".into(), None);
                        }
                        pinged = true;
                        let ping = ClientFrame::Ping { token: None };
                        if let Err(err) = writer.send_frame(&ping).await {
                            return Ending::Lost(describe_io(&err), None);
                        }
                    }
                }
                Wake::Command(None) => return Ending::Lost("the app went away".into(), None),
                Wake::Command(Some(Command::Say { id, text })) => self.outbox.push(id, text),
                Wake::Command(Some(Command::History { before, limit })) => {
                    let frame = ClientFrame::History {
                        before: Some(before),
                        after: None,
                        limit: Some(limit),
                    };
                    if let Err(err) = writer.send_frame(&frame).await {
                        return Ending::Lost(describe_io(&err), None);
                    }
                    self.history.push_back(Asked::Before(before, Vec::new()));
                }
                Wake::Command(Some(Command::Bye)) => {
                    return say_bye(&mut reader, &mut writer).await;
                }
                Wake::Frame(None | Some(Err(ReadError::Io(_) | ReadError::Truncated))) => {
                    return match closing {
                        Some((CloseCode::Replaced, message)) => Ending::Ended(message),
                        Some((code, message)) => Ending::Lost(message, Some(code)),
                        None => Ending::Lost("the server closed the connection".into(), None),
                    };
                }
                // A frame this version cannot read: skip it, servers can grow.
                Wake::Frame(Some(Err(ReadError::Decode(_)))) => last_heard = Instant::now(),
                Wake::Frame(Some(Ok(frame))) => {
                    last_heard = Instant::now();
                    pinged = false;
                    match frame {
                        ServerFrame::Ping { token } => {
                            if let Err(err) = writer.send_frame(&ClientFrame::Pong { token }).await
                            {
                                return Ending::Lost(describe_io(&err), None);
                            }
                        }
                        ServerFrame::Closing { code, message } => closing = Some((code, message)),
                        frame => {
                            if let Some(after) = self.received(frame).await
                                && let Err(err) = self.ask_after(&mut writer, after).await
                            {
                                return Ending::Lost(describe_io(&err), None);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Passes a frame to the app, dropping replayed events it already has and settling the
    /// outbox. Events a history request asked for are its answer. Returns the seq after
    /// which the events of a gap must be fetched next, if any.
    async fn received(&mut self, frame: ServerFrame) -> Option<u64> {
        match self.history.front_mut() {
            Some(Asked::Before(before, answer)) => match &frame {
                ServerFrame::HistoryEnd {
                    before: Some(end), ..
                } if end == before => {
                    if let Some(Asked::Before(before, frames)) = self.history.pop_front() {
                        self.emit(Event::History { before, frames }).await;
                    }
                    return None;
                }
                frame if frame.seq().is_some_and(|seq| seq < *before) => {
                    answer.push(frame.clone());
                    return None;
                }
                _ => {}
            },
            Some(Asked::After(after)) => match &frame {
                ServerFrame::HistoryEnd {
                    after: Some(end),
                    count,
                    ..
                } if end == after => {
                    self.history.pop_front();
                    return self.gap_page_done(*count).await;
                }
                frame
                    if frame.seq().is_some_and(|seq| {
                        seq > *after
                            && matches!(self.gap, Gap::Filling { until, .. } if seq < until)
                    }) =>
                {
                    self.pass(frame.clone()).await;
                    return None;
                }
                _ => {}
            },
            None => {}
        }
        if let Some(seq) = frame.seq() {
            match &mut self.gap {
                Gap::Watch(since) if seq > *since + 1 => {
                    let since = *since;
                    self.gap = Gap::Filling {
                        until: seq,
                        held: vec![frame],
                    };
                    return Some(since);
                }
                Gap::Watch(_) => self.gap = Gap::None,
                Gap::Filling { held, .. } => {
                    held.push(frame);
                    return None;
                }
                Gap::None => {}
            }
        }
        self.pass(frame).await;
        None
    }

    /// Asks for the page of a gap after `after`.
    async fn ask_after(
        &mut self,
        writer: &mut FrameWriter<TcpStream>,
        after: u64,
    ) -> io::Result<()> {
        let ask = ClientFrame::History {
            before: None,
            after: Some(after),
            limit: Some(CATCH_UP_PAGE),
        };
        writer.send_frame(&ask).await?;
        self.history.push_back(Asked::After(after));
        Ok(())
    }

    /// A page of the gap came in full: ask for the next, or pass on what waited.
    async fn gap_page_done(&mut self, count: u32) -> Option<u64> {
        let Gap::Filling { until, .. } = &self.gap else {
            return None;
        };
        if count >= CATCH_UP_PAGE && self.position.last_seq + 1 < *until {
            return Some(self.position.last_seq);
        }
        if let Gap::Filling { held, .. } = std::mem::replace(&mut self.gap, Gap::None) {
            for frame in held {
                self.pass(frame).await;
            }
        }
        None
    }

    /// Passes one frame on to the app.
    async fn pass(&mut self, frame: ServerFrame) {
        if let Some(seq) = frame.seq() {
            if seq <= self.position.last_seq {
                return; // already seen
            }
            self.position.last_seq = seq;
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
                // Refused for good (too long, blank, ...): it must not go again.
                self.outbox.acknowledge(id);
            }
            _ => {}
        }
        self.emit(Event::Frame(frame)).await;
    }
}

/// Sends `bye` and waits, bounded, for the server to close: the end of the stream is the
/// acknowledgement.
async fn say_bye(
    reader: &mut FrameReader<TcpStream, ServerFrame>,
    writer: &mut FrameWriter<TcpStream>,
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
    reader: &mut FrameReader<TcpStream, ServerFrame>,
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

/// Connects, refusing a socket connected to itself: port 60000 is in Linux's ephemeral
/// range, so with no server listening a client can end up talking to itself.
async fn connect(server: &str) -> io::Result<TcpStream> {
    let stream = future::or(TcpStream::connect(server), async {
        Timer::after(CONNECT_TIMEOUT).await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await?;
    if stream.local_addr()? == stream.peer_addr()? {
        return Err(io::ErrorKind::ConnectionRefused.into());
    }
    stream.set_nodelay(true)?;
    Ok(stream)
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
            outbox.push(format!("{i}"), format!("m{i}"));
        }
        outbox.push("0".into(), "again".into()); // same id: not twice
        outbox.resend_all(&l, t0);
        let ids =
            |due: Vec<(String, String)>| due.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
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
}
