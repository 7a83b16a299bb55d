//! The hub: one task that owns who is online (the [`Registry`]) and the room, turns what
//! sessions ask into events, has the [`EventLog`] record them, and fans out what was
//! recorded.
//!
//! Sessions talk to it through an inbox of [`Command`]s. Events gather for a short window
//! ([`Config::coalesce`]) and go to the log as one batch; only when the log returns them,
//! with their seqs, does anyone receive them, each encoded once and pushed to every
//! member's queue without waiting on any socket. A member whose queue overflows is closed
//! with `send_queue_full`, and nobody else notices. Deep history is read on a blocking
//! pool, never on this task.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use chat_shared::limits::{MAX_NAME, REMEMBERED_IDS};
use chat_shared::{
    CloseCode, ErrorCode, Frame, LeaveReason, Limits, Name, PROTOCOL_VERSION, RejectCode,
    ServerFrame,
};
use futures_lite::future;
use smol::{Executor, Timer};

use crate::Config;
use crate::log::writer::{Recorded, Writer};
use crate::log::{Body, EventLog, LogError, NewEvent, Seq, Span, StreamId};
use crate::queue::SendQueue;
use crate::registry::{Admission, ConnId, Member, Registry};
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
        /// The text.
        text: String,
        /// The sender's id for the post.
        id: Option<String>,
    },
    /// Send events of the history to this member.
    History {
        /// Who asks.
        conn: ConnId,
        /// Which; `None`: the newest.
        span: Option<Span>,
        /// How many at most.
        limit: usize,
    },
    /// This connection is gone.
    Leave {
        /// Which.
        conn: ConnId,
        /// Why, as broadcast in `left`.
        reason: LeaveReason,
    },
    /// The server is going down: record what was accepted, then stop.
    Shutdown,
}

/// A login request.
#[derive(Debug)]
pub struct Login {
    /// The connection logging in.
    pub conn: ConnId,
    /// The name it asks for.
    pub name: Name,
    /// Resume after this seq.
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
}

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

/// The hub's state; [`Hub::run`] is its task.
pub struct Hub {
    config: Config,
    log: Arc<dyn EventLog>,
    /// For a durable log: the thread that records batches (a log that keeps nothing
    /// records them at once, on this task).
    writer: Option<Writer>,
    /// Where the writer reports.
    recorded: (Sender<Recorded>, Receiver<Recorded>),
    registry: Registry,
    room: Room,
    recent: HashMap<String, RecentPosts>,
    last_sweep: Instant,
}

/// The key of the one room: the default room's stream.
const DEFAULT_STREAM: &str = "general";

impl Hub {
    /// A hub over `log`, with the room's newest events read back from it.
    pub fn new(config: Config, log: Arc<dyn EventLog>) -> Result<Self, LogError> {
        let stream = StreamId::new(DEFAULT_STREAM);
        let head = log.head(&stream)?;
        let recent = log.read(&stream, Span::Before(head.newest + 1), config.history)?;
        let room = Room::new(stream, head, recent, config.history);
        let writer = if log.durable() {
            Some(Writer::spawn(log.clone()).map_err(|err| LogError::Store(err.to_string()))?)
        } else {
            None
        };
        Ok(Self {
            config,
            log,
            writer,
            recorded: async_channel::unbounded(),
            registry: Registry::default(),
            room,
            recent: HashMap::new(),
            last_sweep: Instant::now(),
        })
    }

    /// Serves commands until [`Command::Shutdown`] (or until every sender of the inbox is
    /// gone), then records what was accepted and returns. Deep history reads run on
    /// `executor`'s blocking pool.
    pub async fn run(mut self, inbox: Receiver<Command>, executor: Arc<Executor<'static>>) {
        /// Commands handled between two looks at the batch deadline.
        const DRAIN: usize = 256;
        enum Next {
            Command(Command),
            Recorded(Recorded),
            Stop,
            Due,
        }
        let recorded = self.recorded.1.clone();
        let mut timer = Timer::never();
        loop {
            let due = self.room.next_submit(self.config.coalesce);
            timer.set_at(due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)));
            let next = future::or(
                async {
                    match inbox.recv().await {
                        Ok(Command::Shutdown) | Err(_) => Next::Stop,
                        Ok(command) => Next::Command(command),
                    }
                },
                future::or(
                    async { recorded.recv().await.map_or(Next::Stop, Next::Recorded) },
                    async {
                        (&mut timer).await;
                        Next::Due
                    },
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
                Next::Recorded(result) => self.recorded(result),
                Next::Stop => return self.finish(&recorded).await,
                Next::Due => {}
            }
            self.submit(Instant::now());
        }
    }

    /// Records what was accepted (nobody is told anybody left), then returns.
    async fn finish(&mut self, recorded: &Receiver<Recorded>) {
        loop {
            if self.room.is_recording() {
                match recorded.recv().await {
                    Ok(result) => self.recorded(result),
                    Err(_) => return,
                }
            } else if self.room.has_pending() {
                self.submit(Instant::now() + Duration::from_secs(3600));
            } else {
                return;
            }
        }
    }

    /// Handles one command.
    fn handle(&mut self, command: Command, executor: &Executor<'static>) {
        match command {
            Command::Login(login) => self.login(login),
            Command::Post { conn, text, id } => self.post(conn, text, id),
            Command::History { conn, span, limit } => self.history(conn, span, limit, executor),
            Command::Leave { conn, reason } => self.leave(conn, reason),
            Command::Shutdown => {}
        }
        let now = Instant::now();
        if now.duration_since(self.last_sweep) > Duration::from_secs(60) {
            self.sweep_recent(now);
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

    fn login(&mut self, login: Login) {
        let keys = login.name.keys();
        match self
            .registry
            .admit(&login.name, &keys, login.token.as_deref())
        {
            Admission::Taken(message) => {
                login
                    .queue
                    .push_unmetered(Frame::encode(&ServerFrame::Rejected {
                        code: RejectCode::NameTaken,
                        message,
                        retry_after: None,
                    }));
                let _ = login.reply.try_send(false);
            }
            Admission::Takeover(old) => {
                // The same user on a new connection: the others see nothing.
                let Some(old) = self.registry.remove(old).map(|m| (old, m)) else {
                    return;
                };
                self.room.fanout.remove(old.0);
                old.1.queue.close_with(Some(closing(CloseCode::Replaced)));
                self.registry.insert(
                    login.conn,
                    Member {
                        name: old.1.name,
                        keys,
                        token: random_hex(8),
                        queue: login.queue.clone(),
                        online: false,
                    },
                );
                let welcome = Welcome {
                    conn: login.conn,
                    since: login.since,
                    epoch: login.epoch,
                    queue: login.queue,
                    reply: login.reply,
                };
                self.welcome(welcome, self.room.head.newest);
            }
            Admission::Free => {
                let entry = self.recent.entry(keys.folded.clone()).or_default();
                for (id, frame) in login.recent {
                    entry.remember(&id, frame);
                }
                let name = login.name.to_string();
                self.registry.insert(
                    login.conn,
                    Member {
                        name: login.name,
                        keys,
                        token: random_hex(8),
                        queue: login.queue.clone(),
                        online: false,
                    },
                );
                self.room.push(Pending {
                    event: NewEvent {
                        stream: self.room.stream.clone(),
                        time: now_millis(),
                        body: Body::Joined { name },
                        poster: None,
                    },
                    effect: Effect::Welcome(Box::new(Welcome {
                        conn: login.conn,
                        since: login.since,
                        epoch: login.epoch,
                        queue: login.queue,
                        reply: login.reply,
                    })),
                });
            }
        }
    }

    /// Sends a login its welcome (with `seq` the newest event before it) and its replay,
    /// and makes it a member from here on.
    fn welcome(&mut self, welcome: Welcome, seq: Seq) {
        let Some(member) = self.registry.get_mut(welcome.conn) else {
            let _ = welcome.reply.try_send(false);
            return;
        };
        member.online = true;
        let (name, token) = (member.name.to_string(), member.token.clone());
        let same_epoch = welcome.epoch.as_deref() == Some(self.log.epoch());
        let replay = self.room.replay(
            welcome.since,
            same_epoch,
            self.config.replay,
            self.config.replay_max,
        );
        let frame = Frame::encode(&ServerFrame::Welcome {
            protocol: PROTOCOL_VERSION,
            name,
            users: self.registry.online_names().map(str::to_string).collect(),
            seq,
            oldest: self.room.oldest(self.log.durable()),
            epoch: self.log.epoch().to_string(),
            token,
            limits: self.limits(),
        });
        welcome
            .queue
            .push_unmetered(Frame::concat(std::iter::once(&frame).chain(&replay)));
        self.room.fanout.add(welcome.conn, welcome.queue);
        let _ = welcome.reply.try_send(true);
    }

    fn post(&mut self, conn: ConnId, text: String, id: Option<String>) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let folded = &member.keys.folded;
        if let Some(id) = &id {
            if let Some(original) = self
                .recent
                .get(folded)
                .and_then(|recent| recent.by_id.get(id.as_str()))
            {
                // A re-sent post: the sender gets the original back, nobody else sees it.
                member.queue.push_unmetered(original.clone());
                return;
            }
            if self.room.has_post(folded, id) {
                // The original is on its way to the log; its echo will settle this too.
                return;
            }
        }
        let event = NewEvent {
            stream: self.room.stream.clone(),
            time: now_millis(),
            poster: id.is_some().then(|| folded.clone()),
            body: Body::Message {
                from: member.name.to_string(),
                text,
                id: id.clone(),
            },
        };
        if let Some(recent) = event.poster.as_ref().and_then(|p| self.recent.get_mut(p)) {
            recent.last_post = Some(Instant::now());
        }
        self.room.push(Pending {
            event,
            effect: Effect::Post { conn, id },
        });
    }

    fn history(
        &mut self,
        conn: ConnId,
        span: Option<Span>,
        limit: usize,
        executor: &Executor<'static>,
    ) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let span = span.unwrap_or(Span::Before(self.room.head.newest + 1));
        let queue = member.queue.clone();
        if let Some(frames) = self.room.read_window(span, limit, self.log.durable()) {
            queue.push_unmetered(history_answer(span, &frames));
            return;
        }
        // Older than the window: read on the blocking pool, answer from there.
        let log = self.log.clone();
        let stream = self.room.stream.clone();
        executor
            .spawn(async move {
                let read = smol::unblock(move || log.read(&stream, span, limit)).await;
                match read {
                    Ok(events) => {
                        let frames: Vec<Frame> = events.into_iter().map(|e| e.frame).collect();
                        queue.push_unmetered(history_answer(span, &frames));
                    }
                    Err(err) => {
                        tracing::error!(%err, "cannot read the history");
                        queue.push_unmetered(Frame::encode(&ServerFrame::Error {
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

    fn leave(&mut self, conn: ConnId, reason: LeaveReason) {
        let Some(member) = self.registry.remove(conn) else {
            return;
        };
        self.room.fanout.remove(conn);
        // A member whose `joined` is still on its way gets its `left` once that is recorded.
        if member.online {
            self.push_left(member.name.to_string(), reason);
        }
    }

    fn push_left(&mut self, name: String, reason: LeaveReason) {
        self.room.push(Pending {
            event: NewEvent {
                stream: self.room.stream.clone(),
                time: now_millis(),
                body: Body::Left { name, reason },
                poster: None,
            },
            effect: Effect::None,
        });
    }

    /// Sends the due batch to the log, and handles what it returns.
    fn submit(&mut self, now: Instant) {
        let Some(events) = self.room.take_batch(now, self.config.coalesce) else {
            return;
        };
        if let Some(writer) = &self.writer {
            writer.record(events, self.recorded.0.clone());
        } else {
            let recorded = self.log.append(&events);
            self.recorded(recorded);
        }
    }

    /// The log answered for the batch in flight.
    fn recorded(&mut self, result: Recorded) {
        let batch = self.room.finish();
        let events = match result {
            Ok(events) => events,
            Err(err) => {
                self.unrecorded(batch, &err);
                return;
            }
        };
        for (pending, event) in batch.into_iter().zip(events) {
            if let (Some(poster), Body::Message { id: Some(id), .. }) =
                (&pending.event.poster, &pending.event.body)
            {
                self.recent
                    .entry(poster.clone())
                    .or_default()
                    .remember(id, event.frame.clone());
            }
            if let Effect::Welcome(welcome) = pending.effect {
                // Everything before this `joined` goes to the members before the newcomer
                // is one of them; the newcomer gets it in its replay, and its own `joined`
                // as its first live event.
                self.push_to_members();
                if self.registry.get(welcome.conn).is_some() {
                    self.welcome(*welcome, event.seq - 1);
                } else {
                    // It left while its `joined` was being recorded: record that it left.
                    let _ = welcome.reply.try_send(false);
                    if let Body::Joined { name } = &pending.event.body {
                        self.push_left(name.clone(), LeaveReason::Lost);
                    }
                }
            }
            self.room.record(event);
        }
        self.push_to_members();
    }

    /// The log could not record a batch: nothing of it happened.
    fn unrecorded(&mut self, batch: Vec<Pending>, err: &LogError) {
        tracing::error!(%err, events = batch.len(), "the log could not record a batch");
        for pending in batch {
            match pending.effect {
                Effect::Post { conn, id } => {
                    if let Some(member) = self.registry.get(conn) {
                        member
                            .queue
                            .push_unmetered(Frame::encode(&ServerFrame::Error {
                                code: ErrorCode::Unavailable,
                                message: "your post could not be recorded; send it again".into(),
                                id,
                                retry_after: None,
                            }));
                    }
                }
                Effect::Welcome(welcome) => {
                    self.registry.remove(welcome.conn);
                    welcome
                        .queue
                        .push_unmetered(Frame::encode(&ServerFrame::Rejected {
                            code: RejectCode::Unavailable,
                            message: "the server cannot record your login now; try again".into(),
                            retry_after: Some(2000),
                        }));
                    let _ = welcome.reply.try_send(false);
                }
                Effect::None => {
                    tracing::warn!(event = ?pending.event.body, "an event was not recorded");
                }
            }
        }
    }

    /// Pushes what the room gathered to its members, closing those that cannot keep up.
    fn push_to_members(&mut self) {
        for conn in self.room.fanout.push() {
            self.room.fanout.remove(conn);
            if let Some(member) = self.registry.remove(conn) {
                member.queue.abort_with(closing(CloseCode::SendQueueFull));
                self.push_left(member.name.to_string(), LeaveReason::Kicked);
            }
        }
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

/// A history answer: the events, then `history_end`.
fn history_answer(span: Span, frames: &[Frame]) -> Frame {
    let (before, after) = match span {
        Span::Before(before) => (Some(before), None),
        Span::After(after) => (None, Some(after)),
    };
    let end = Frame::encode(&ServerFrame::HistoryEnd {
        before,
        after,
        count: frames.len() as u32,
    });
    Frame::concat(frames.iter().chain(std::iter::once(&end)))
}
