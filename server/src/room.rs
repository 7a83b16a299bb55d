//! The room: one task owns the members, the `seq` counter, the history and the fan-out.
//!
//! Sessions talk to it through an inbox of [`Command`]s. Every event is encoded once and
//! queued for each member without waiting on any socket; a member whose queue overflows is
//! closed with `send_queue_full`, and nobody else notices. Under load the room gathers the
//! events of a short window into one buffer per member ([`Config::coalesce`]), so that one
//! write carries several events; after a quiet spell an event goes out at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender};
use chat_shared::limits::{MAX_NAME, REMEMBERED_IDS};
use chat_shared::{
    CloseCode, Frame, LeaveReason, Limits, Name, PROTOCOL_VERSION, RejectCode, ServerFrame,
};
use futures_lite::future;
use smol::Timer;

use crate::Config;
use crate::queue::SendQueue;

/// Identifies one connection for its whole life.
pub type ConnId = u64;

/// What a session asks of the room.
#[derive(Debug)]
pub enum Command {
    /// Log in (the `hello` was valid); the room answers through `reply`.
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
    /// Send older events to this member.
    History {
        /// Who asks.
        conn: ConnId,
        /// Only events with a seq below this.
        before: u64,
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
}

/// Member writes per second the room aims to stay under when it is busy: in a big room the
/// window between two flushes grows (members / budget), so a join storm or a busy room of
/// thousands costs a bounded number of system calls instead of one per member per event.
const WRITE_BUDGET: f64 = 100_000.0;

/// How long post ids are remembered at least, after the name's last post.
const REMEMBER_FOR: Duration = Duration::from_secs(10 * 60);

struct Member {
    name: Name,
    folded: String,
    skeleton: String,
    token: String,
    queue: SendQueue,
}

/// The ids of a name's recent posts, with the message each produced.
#[derive(Default)]
struct RecentPosts {
    by_id: HashMap<Box<str>, Frame>,
    order: VecDeque<Box<str>>,
    last_post: Option<Instant>,
}

impl RecentPosts {
    fn remember(&mut self, id: &str, frame: Frame, now: Instant) {
        if self.order.len() == REMEMBERED_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        self.order.push_back(id.into());
        self.by_id.insert(id.into(), frame);
        self.last_post = Some(now);
    }
}

/// The room's state; [`Room::run`] is its task.
pub struct Room {
    config: Config,
    epoch: String,
    seq: u64,
    /// Events kept for replay and `history`, oldest first, seqs contiguous.
    history: VecDeque<(u64, Frame)>,
    members: HashMap<ConnId, Member>,
    /// Online members by case-folded name: the sorted user list, and one collision key.
    by_folded: BTreeMap<String, ConnId>,
    /// Online members by the other collision key.
    by_skeleton: HashMap<String, ConnId>,
    recent: HashMap<String, RecentPosts>,
    /// Events recorded but not yet queued to the members.
    pending: Vec<Frame>,
    last_flush: Instant,
    last_sweep: Instant,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random hex string of `bytes` random bytes (tokens and epochs).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // No OS randomness: fall back to the clock and the address space, still unique.
        let seed = now_millis() ^ (std::ptr::from_ref(&buf) as u64);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    buf.iter()
        .fold(String::with_capacity(bytes * 2), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

impl Room {
    /// An empty room with a fresh epoch.
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        Self {
            config,
            epoch: random_hex(8),
            seq: 0,
            history: VecDeque::new(),
            members: HashMap::new(),
            by_folded: BTreeMap::new(),
            by_skeleton: HashMap::new(),
            recent: HashMap::new(),
            pending: Vec::new(),
            last_flush: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            last_sweep: now,
        }
    }

    /// Serves commands until every sender of the inbox is gone.
    pub async fn run(mut self, inbox: Receiver<Command>) {
        /// Commands handled between two looks at the flush deadline.
        const DRAIN: usize = 256;
        enum Next {
            Command(Command),
            Closed,
            FlushDue,
        }
        let received = |r: Result<Command, _>| r.map_or(Next::Closed, Next::Command);
        let mut timer = Timer::never();
        loop {
            let next = if self.pending.is_empty() {
                received(inbox.recv().await)
            } else {
                timer.set_at(self.last_flush + self.window());
                future::or(async { received(inbox.recv().await) }, async {
                    (&mut timer).await;
                    Next::FlushDue
                })
                .await
            };
            match next {
                Next::Command(command) => {
                    self.handle(command);
                    for _ in 0..DRAIN {
                        let Ok(command) = inbox.try_recv() else { break };
                        self.handle(command);
                    }
                }
                Next::Closed => {
                    self.flush();
                    return;
                }
                Next::FlushDue => {}
            }
            if !self.pending.is_empty() && Instant::now() >= self.last_flush + self.window() {
                self.flush();
            }
        }
    }

    /// The least time between two flushes: the configured window, longer in big rooms.
    fn window(&self) -> Duration {
        let by_size = Duration::from_secs_f64(self.members.len() as f64 / WRITE_BUDGET);
        self.config.coalesce.max(by_size)
    }

    /// Handles one command.
    pub fn handle(&mut self, command: Command) {
        match command {
            Command::Login(login) => self.login(login),
            Command::Post { conn, text, id } => self.post(conn, text, id),
            Command::History {
                conn,
                before,
                limit,
            } => self.history(conn, before, limit),
            Command::Leave { conn, reason } => {
                if let Some(member) = self.remove(conn) {
                    self.record_left(&member.name, reason);
                }
            }
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
        // Anything pending is already in the history this login may replay.
        self.flush();
        let keys = login.name.keys();
        let holder = self
            .by_folded
            .get(&keys.folded)
            .or_else(|| self.by_skeleton.get(&keys.skeleton))
            .copied();
        let mut name = login.name;
        let takeover = match holder {
            None => false,
            Some(conn) => {
                let member = &self.members[&conn];
                let owns = login.token.as_deref() == Some(member.token.as_str())
                    && member.folded == keys.folded;
                if !owns {
                    let message = if member.folded == keys.folded {
                        format!("{} is already online", member.name)
                    } else {
                        format!("{} is online, and {name} looks the same", member.name)
                    };
                    login
                        .queue
                        .push_unmetered(Frame::encode(&ServerFrame::Rejected {
                            code: RejectCode::NameTaken,
                            message,
                            retry_after: None,
                        }));
                    let _ = login.reply.try_send(false);
                    return;
                }
                // The same user on a new connection: the others see nothing.
                if let Some(old) = self.remove(conn) {
                    name = old.name;
                    old.queue.close_with(Some(closing(CloseCode::Replaced)));
                }
                true
            }
        };
        let token = random_hex(8);
        let replay = self.replay_after(login.since, login.epoch.as_deref());
        let (seq, oldest) = (self.seq, self.history.front().map_or(0, |(seq, _)| *seq));
        self.by_folded.insert(keys.folded.clone(), login.conn);
        self.by_skeleton.insert(keys.skeleton.clone(), login.conn);
        let accepted = name.to_string();
        self.members.insert(
            login.conn,
            Member {
                name,
                folded: keys.folded,
                skeleton: keys.skeleton,
                token: token.clone(),
                queue: login.queue.clone(),
            },
        );
        let welcome = Frame::encode(&ServerFrame::Welcome {
            protocol: PROTOCOL_VERSION,
            name: accepted.clone(),
            // by_folded is ordered by case-folded name, as the protocol wants.
            users: self
                .by_folded
                .values()
                .map(|conn| self.members[conn].name.to_string())
                .collect(),
            seq,
            oldest,
            epoch: self.epoch.clone(),
            token,
            limits: self.limits(),
        });
        login.queue.push_unmetered(Frame::concat(
            std::iter::once(&welcome).chain(replay.iter().map(|(_, frame)| frame)),
        ));
        let _ = login.reply.try_send(true);
        if !takeover {
            let seq = self.next_seq();
            self.record(
                seq,
                Frame::encode(&ServerFrame::Joined {
                    seq,
                    time: now_millis(),
                    name: accepted,
                }),
            );
        }
    }

    /// The held events a login replays: after `since` in the same epoch, all of them for
    /// another epoch, the newest `--replay` without `since`.
    fn replay_after(&self, since: Option<u64>, epoch: Option<&str>) -> Vec<(u64, Frame)> {
        let skip = match since {
            Some(since) if epoch == Some(self.epoch.as_str()) => self
                .history
                .iter()
                .take_while(|(seq, _)| *seq <= since)
                .count(),
            Some(_) => 0,
            None => self.history.len().saturating_sub(self.config.replay),
        };
        self.history.iter().skip(skip).cloned().collect()
    }

    fn post(&mut self, conn: ConnId, text: String, id: Option<String>) {
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        if let Some(id) = &id
            && let Some(original) = self
                .recent
                .get(&member.folded)
                .and_then(|recent| recent.by_id.get(id.as_str()))
        {
            // A re-sent post: the sender gets the original back, nobody else sees it again.
            let original = original.clone();
            self.flush();
            if let Some(member) = self.members.get(&conn) {
                member.queue.push_unmetered(original);
            }
            return;
        }
        let from = member.name.to_string();
        let folded = id.is_some().then(|| member.folded.clone());
        let seq = self.next_seq();
        let frame = Frame::encode(&ServerFrame::Message {
            seq,
            time: now_millis(),
            from,
            text,
            id: id.clone(),
        });
        if let (Some(id), Some(folded)) = (id, folded) {
            self.recent
                .entry(folded)
                .or_default()
                .remember(&id, frame.clone(), Instant::now());
        }
        self.record(seq, frame);
    }

    fn history(&mut self, conn: ConnId, before: u64, limit: usize) {
        self.flush();
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let older = self.history.iter().take_while(|(seq, _)| *seq < before);
        let count = older.clone().count();
        let answer: Vec<&Frame> = older
            .skip(count.saturating_sub(limit))
            .map(|(_, f)| f)
            .collect();
        let end = Frame::encode(&ServerFrame::HistoryEnd {
            before,
            count: answer.len() as u32,
        });
        member.queue.push_unmetered(Frame::concat(
            answer.into_iter().chain(std::iter::once(&end)),
        ));
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Keeps an event in the history and queues it for everyone at the next flush.
    fn record(&mut self, seq: u64, frame: Frame) {
        if self.history.len() == self.config.history {
            self.history.pop_front();
        }
        self.history.push_back((seq, frame.clone()));
        self.pending.push(frame);
    }

    fn record_left(&mut self, name: &Name, reason: LeaveReason) {
        let seq = self.next_seq();
        self.record(
            seq,
            Frame::encode(&ServerFrame::Left {
                seq,
                time: now_millis(),
                name: name.to_string(),
                reason,
            }),
        );
    }

    fn remove(&mut self, conn: ConnId) -> Option<Member> {
        let member = self.members.remove(&conn)?;
        self.by_folded.remove(&member.folded);
        self.by_skeleton.remove(&member.skeleton);
        Some(member)
    }

    /// Queues the pending events to every member as one buffer, closing the members that
    /// cannot keep up.
    pub fn flush(&mut self) {
        while !self.pending.is_empty() {
            let count = self.pending.len();
            let frame = if count == 1 {
                self.pending.pop().expect("one pending event")
            } else {
                let frame = Frame::concat(&self.pending);
                self.pending.clear();
                frame
            };
            let slow: Vec<ConnId> = self
                .members
                .iter()
                .filter(|(_, member)| member.queue.push(frame.clone(), count).is_err())
                .map(|(conn, _)| *conn)
                .collect();
            // Their `left` events become the next round of pending events.
            for conn in slow {
                if let Some(member) = self.remove(conn) {
                    member.queue.abort_with(closing(CloseCode::SendQueueFull));
                    self.record_left(&member.name, LeaveReason::Kicked);
                }
            }
        }
        self.last_flush = Instant::now();
    }

    fn sweep_recent(&mut self, now: Instant) {
        self.last_sweep = now;
        let online = &self.by_folded;
        self.recent.retain(|folded, recent| {
            online.contains_key(folded)
                || recent
                    .last_post
                    .is_some_and(|t| now.duration_since(t) < REMEMBER_FOR)
        });
    }
}

/// The `closing` frame for a code, with its words for a person.
pub fn closing(code: CloseCode) -> Frame {
    let message = match code {
        CloseCode::Shutdown => "the server is shutting down",
        CloseCode::IdleTimeout => "nothing heard from you for too long",
        CloseCode::LoginTimeout => "no hello in time",
        CloseCode::SendQueueFull => "you are reading too slowly; too much was queued for you",
        CloseCode::BadFrame => "three bad frames in a row",
        CloseCode::FrameTooLong => "frame longer than the limit",
        CloseCode::Flood => "far too many frames; slow down",
        CloseCode::Replaced => "your session was taken over by a new connection",
        CloseCode::Unknown => "closing",
    };
    Frame::encode(&ServerFrame::Closing {
        code,
        message: message.into(),
    })
}
