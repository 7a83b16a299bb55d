//! One ordinary chaos client: a person who posts (with ids), joins and parts rooms, pages
//! through history, writes to other accounts, edits, reacts, deletes, types, searches,
//! takes its own session over, drops its connection, and comes back after every crash of
//! the server, resuming each room with `since` as a real client does. It follows every
//! stream it is in seq by seq and tells the [`Ledger`] what it received, and what broke.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_channel::Receiver;
use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{
    ClientFrame, CloseCode, Frame, FrameReader, Password, RejectCode, ServerFrame, Writer,
};
use futures_lite::{AsyncWriteExt, future};
use smol::Timer;

use super::ledger::{Breach, Ledger, Stream};
use super::tally::{Tally, word};
use crate::spawn;

/// What every client of a run shares.
pub(crate) struct World {
    /// The server's address; in a cluster, each node's.
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) ledger: Ledger,
    pub(crate) tally: Tally,
    /// The rooms the clients spread over (the default room besides).
    pub(crate) rooms: Vec<String>,
    /// The default room, as the server names it.
    pub(crate) general: String,
    /// The ordinary clients' names (whom the administrator moderates).
    pub(crate) names: Vec<String>,
    /// Time between one client's actions, on average.
    pub(crate) pace: Duration,
    /// Cleared when the run ends: the clients finish what they started and leave.
    pub(crate) acting: AtomicBool,
    /// Whose frames are written to stderr: a client's name, or `all`.
    pub(crate) trace: Option<String>,
}

impl World {
    fn acting(&self) -> bool {
        self.acting.load(Ordering::Relaxed)
    }

    /// Where a connection goes: in a cluster, any node, as `rng` picks (a client that
    /// comes back may come back to another one).
    pub(crate) fn addr(&self, rng: &mut fastrand::Rng) -> SocketAddr {
        self.addrs[rng.usize(..self.addrs.len())]
    }
}

/// Who a client is.
pub(crate) struct Identity {
    pub(crate) name: String,
    /// For an account: its password.
    pub(crate) password: Option<String>,
    /// The accounts it writes to (its circle of friends).
    pub(crate) friends: Vec<String>,
    pub(crate) admin: bool,
}

/// How far a client got in one stream.
enum Track {
    /// Followed live: the newest seq received.
    Live(u64),
    /// A `join` (or a catch-up) was asked since `since`: what comes before its answer waits.
    Asked {
        since: Option<u64>,
        held: Vec<ServerFrame>,
    },
    /// The answer came: events up to `until` complete what `last` left; newer ones wait.
    Replaying {
        last: Option<u64>,
        until: u64,
        held: Vec<ServerFrame>,
        /// The replay began after `last + 1` (the server keeps a window of each room in
        /// memory): the events up to `until` come page by page from `history` `after`.
        fetching: bool,
    },
}

impl Track {
    fn last(&self) -> Option<u64> {
        match self {
            Self::Live(last) => Some(*last),
            Self::Asked { since, .. } => *since,
            Self::Replaying { last, .. } => *last,
        }
    }
}

/// Where a post goes.
#[derive(Clone)]
enum Target {
    Room(String),
    To(String),
}

#[derive(Clone)]
struct Post {
    target: Target,
    text: String,
    id: String,
    reply_to: Option<u64>,
    /// Not before then (after `rate_limited`).
    due: Option<Instant>,
}

/// An open connection: its writing half and the frames its reader hands over.
struct Conn {
    me: String,
    /// Whether what it sends and receives is written to stderr (`--trace`).
    traced: bool,
    writer: Writer,
    frames: Receiver<ServerFrame>,
    _reader: smol::Task<()>,
}

/// How a frame left the connection.
enum After {
    Keep,
    Lost,
}

pub(crate) struct User {
    me: Identity,
    rng: fastrand::Rng,
    token: Option<String>,
    epoch: Option<String>,
    registered: bool,
    tracks: HashMap<Stream, Track>,
    /// Rooms besides the default one, joined by choice.
    wanted: Vec<String>,
    outbox: Vec<Post>,
    acked_ids: HashSet<String>,
    /// Own messages (accounts edit and delete them).
    mine: Vec<(Stream, u64)>,
    /// Messages seen lately (to react and reply to).
    recent: VecDeque<(Stream, u64)>,
    /// `history` answers on their way, per stream (their events are older than `last`).
    browsing: HashMap<Stream, u32>,
    posted: u64,
    /// Waiting for the `pong` that ends the run.
    pinged_end: bool,
    /// Requests decided while taking an event, sent right after it.
    asks: Vec<ClientFrame>,
    /// Rooms whose `join` the server could not record (`unavailable`): asked again on the
    /// next step, as the protocol says.
    rejoin: Vec<String>,
}

const EMOJI: [&str; 5] = ["👍", "❤️", "😂", "🎉", "👀"];

impl User {
    pub(crate) fn new(me: Identity, seed: u64) -> Self {
        Self {
            me,
            rng: fastrand::Rng::with_seed(seed),
            token: None,
            epoch: None,
            registered: false,
            tracks: HashMap::new(),
            wanted: Vec::new(),
            outbox: Vec::new(),
            acked_ids: HashSet::new(),
            mine: Vec::new(),
            recent: VecDeque::new(),
            browsing: HashMap::new(),
            posted: 0,
            pinged_end: false,
            asks: Vec::new(),
            rejoin: Vec::new(),
        }
    }

    /// Chats until the run ends, then settles (every post acknowledged, every stream caught
    /// up) and says `bye`. Gives up settling after `settle`.
    pub(crate) async fn run(mut self, world: Arc<World>, settle: Duration) {
        let mut conn: Option<Conn> = None;
        let mut next = Instant::now() + self.pause(&world);
        let mut settle_by: Option<Instant> = None;
        loop {
            if !world.acting() && settle_by.is_none() {
                settle_by = Some(Instant::now() + settle);
            }
            if settle_by.is_some_and(|by| Instant::now() > by) {
                world.ledger.breach(Breach::Closed, || {
                    format!(
                        "{} could not settle: {} posts unacknowledged; behind: {}",
                        self.me.name,
                        self.outbox.len(),
                        self.behind()
                    )
                });
                return;
            }
            let Some(open) = conn.as_mut() else {
                match self.connect(&world, None).await {
                    Ok(new) => conn = Some(new),
                    Err(wait) => {
                        Timer::after(wait).await;
                    }
                }
                continue;
            };
            let frame = future::or(async { Some(open.frames.recv().await) }, async {
                Timer::at(next).await;
                None
            })
            .await;
            match frame {
                Some(Ok(frame)) => {
                    let end = matches!(&frame, ServerFrame::Pong { token: Some(token) } if token == "end");
                    if end && self.settled() {
                        let _ = send(open, &ClientFrame::Bye).await;
                        world.tally.add("left at the end");
                        return;
                    }
                    if matches!(self.on_frame(frame, open, &world).await, After::Lost) {
                        conn = None;
                    }
                }
                Some(Err(_)) => {
                    world.tally.add("connections lost");
                    conn = None;
                }
                None => {
                    next = Instant::now() + self.pause(&world);
                    if world.acting() {
                        self.act(&mut conn, &world).await;
                    } else {
                        next = Instant::now() + Duration::from_millis(300);
                        self.settle(open, &world).await;
                    }
                }
            }
        }
    }

    fn pause(&mut self, world: &World) -> Duration {
        world.pace.mul_f64(0.5 + self.rng.f64())
    }

    /// Every post acknowledged and every stream followed live.
    fn settled(&self) -> bool {
        self.outbox.is_empty()
            && self
                .tracks
                .values()
                .all(|track| matches!(track, Track::Live(_)))
    }

    /// The streams not followed live yet, and how far each got.
    fn behind(&self) -> String {
        let behind: Vec<String> = self
            .tracks
            .iter()
            .filter_map(|(stream, track)| match track {
                Track::Live(_) => None,
                Track::Asked { since, held } => Some(format!(
                    "{stream} asked since {since:?}, {} held",
                    held.len()
                )),
                Track::Replaying {
                    last, until, held, ..
                } => Some(format!(
                    "{stream} replayed to {last:?} of {until}, {} held",
                    held.len()
                )),
            })
            .collect();
        behind.join(", ")
    }

    async fn settle(&mut self, conn: &mut Conn, world: &World) {
        self.flush_due(conn).await;
        if self.settled() && !self.pinged_end {
            self.pinged_end = send(
                conn,
                &ClientFrame::Ping {
                    token: Some("end".into()),
                },
            )
            .await;
        } else if !self.settled() {
            self.pinged_end = false;
            world.tally.add("settling rounds");
        }
    }

    /// Logs in (taking the session over with its token or password when `takeover`), then
    /// resumes every room and conversation. On failure, how long to wait.
    async fn connect(&mut self, world: &World, takeover: Option<&str>) -> Result<Conn, Duration> {
        // A new connection joins every wanted room again anyway.
        self.rejoin.clear();
        let retry = Duration::from_millis(100 + self.rng.u64(0..500));
        let addr = world.addr(&mut self.rng);
        let Ok((_, reader, writer)) = chat_tests::open(addr, None, None).await else {
            world.tally.add("connects refused");
            return Err(retry);
        };
        let general = Stream::Room(world.general.clone());
        let since = self.tracks.get(&general).and_then(Track::last);
        let hello = ClientFrame::Hello {
            protocol: chat_shared::PROTOCOL_VERSION,
            name: self.me.name.clone(),
            since,
            epoch: self.epoch.clone(),
            token: if takeover == Some("password") {
                None
            } else {
                self.token.clone()
            },
            password: self.me.password.clone().map(Password::new),
            register: self.me.password.is_some() && !self.registered,
        };
        let mut frames = FrameReader::new(reader, MAX_SERVER_FRAME);
        let mut writer = writer;
        if !write(&mut writer, &hello).await {
            return Err(retry);
        }
        let Some(Ok(answer)) = frames.next().await else {
            world.tally.add("logins cut off");
            return Err(retry);
        };
        let traced = world
            .trace
            .as_ref()
            .is_some_and(|who| *who == self.me.name || who == "all");
        if traced {
            let how = takeover.unwrap_or("login");
            eprintln!(
                "{:?} {} <- {addr} ({how}): {answer:?}",
                started(),
                self.me.name
            );
        }
        let (tx, rx) = async_channel::bounded(4096);
        let mut conn = Conn {
            me: self.me.name.clone(),
            traced,
            writer,
            frames: rx,
            _reader: spawn(async move {
                while let Some(Ok(frame)) = frames.next().await {
                    if tx.send(frame).await.is_err() {
                        break;
                    }
                }
            }),
        };
        match answer {
            ServerFrame::Welcome {
                seq,
                epoch,
                token,
                conversations,
                account,
                ..
            } => {
                self.welcomed(world, takeover, account, (epoch, token), since, seq);
                self.resume(&mut conn, conversations.unwrap_or_default())
                    .await;
                Ok(conn)
            }
            ServerFrame::Rejected {
                code,
                retry_after,
                message,
            } => {
                self.rejected(world, code, &message);
                Err(retry.max(Duration::from_millis(retry_after.unwrap_or(0))))
            }
            other => {
                world.ledger.breach(Breach::Closed, || {
                    format!("{} answered {other:?}", self.me.name)
                });
                Err(retry)
            }
        }
    }

    /// A `welcome`: what it says is kept, and every stream followed resumes from where it
    /// was (the default room's replay comes next).
    fn welcomed(
        &mut self,
        world: &World,
        takeover: Option<&str>,
        account: bool,
        (epoch, token): (String, String),
        since: Option<u64>,
        seq: u64,
    ) {
        let general = Stream::Room(world.general.clone());
        world.tally.add(match (takeover, account) {
            (Some(_), _) => "takeovers",
            (None, true) => "password logins",
            (None, false) => "guest logins",
        });
        self.registered |= account;
        if self.epoch.as_ref().is_some_and(|known| *known != epoch) {
            world.ledger.breach(Breach::EpochChanged, || {
                format!("{} saw {epoch}", self.me.name)
            });
        }
        self.epoch = Some(epoch);
        self.token = Some(token);
        self.pinged_end = false;
        self.browsing.clear();
        // What was asked on the last connection is asked again below (or was lost
        // with it); what was never followed is taken from the next event on.
        let tracks = std::mem::take(&mut self.tracks);
        self.tracks = tracks
            .into_iter()
            .filter_map(|(stream, track)| track.last().map(|last| (stream, Track::Live(last))))
            .collect();
        self.tracks.insert(
            general,
            Track::Replaying {
                last: since,
                until: seq,
                held: Vec::new(),
                fetching: false,
            },
        );
        self.finish_replay(&Stream::Room(world.general.clone()), world);
    }

    /// A refused log-in: only the refusals a crowd of clients can meet are expected.
    fn rejected(&mut self, world: &World, code: RejectCode, message: &str) {
        world
            .tally
            .add(&format!("logins rejected: {}", word(&code)));
        match code {
            RejectCode::NameRegistered if !self.registered => self.registered = true,
            RejectCode::NameTaken
            | RejectCode::TooManyAttempts
            | RejectCode::ServerFull
            | RejectCode::Unavailable => {}
            _ => world.ledger.breach(Breach::Closed, || {
                format!("{} rejected: {code:?}: {message}", self.me.name)
            }),
        }
    }

    /// After a welcome: joins every wanted room again with `since`, catches up every
    /// conversation that moved on, and sends again what is not acknowledged yet.
    async fn resume(&mut self, conn: &mut Conn, conversations: Vec<chat_shared::Conversation>) {
        for room in self.wanted.clone() {
            self.ask_join(conn, room).await;
        }
        for conversation in conversations {
            let stream = Stream::direct(&self.me.name, &conversation.with);
            let last = self.tracks.get(&stream).and_then(Track::last);
            if conversation.seq > last.unwrap_or(0) {
                // The fetch is under way: an event that comes live meanwhile (the echo of
                // a post sent again) does not ask for the same page a second time.
                self.tracks.insert(
                    stream.clone(),
                    Track::Replaying {
                        last,
                        until: conversation.seq,
                        held: Vec::new(),
                        fetching: true,
                    },
                );
                let ask = history_of(&stream, &self.me.name, last.unwrap_or(0), conversation.seq);
                send(conn, &ask).await;
            }
        }
        for post in &mut self.outbox {
            post.due = None;
        }
        self.flush_due(conn).await;
    }

    /// Sends the posts of the outbox that are due (all of them after a reconnect), and
    /// the joins to ask again.
    async fn flush_due(&mut self, conn: &mut Conn) {
        for room in std::mem::take(&mut self.rejoin) {
            if self.wanted.contains(&room) {
                self.ask_join(conn, room).await;
            }
        }
        let now = Instant::now();
        let due: Vec<Post> = self
            .outbox
            .iter_mut()
            .filter(|post| post.due.is_none_or(|due| due <= now))
            .map(|post| {
                // Sent now: not again until answered (or the connection is lost).
                post.due = Some(now + Duration::from_secs(3600));
                post.clone()
            })
            .collect();
        for post in due {
            send(conn, &say(&post)).await;
        }
    }

    async fn on_frame(&mut self, frame: ServerFrame, conn: &mut Conn, world: &World) -> After {
        if conn.traced {
            eprintln!("{:?} {} <- {frame:?}", started(), conn.me);
        }
        match &frame {
            ServerFrame::Ping { token } => {
                send(
                    conn,
                    &ClientFrame::Pong {
                        token: token.clone(),
                    },
                )
                .await;
            }
            ServerFrame::Closing { code, message } => {
                world.tally.add(&format!("closed: {}", word(code)));
                if !matches!(code, CloseCode::Shutdown | CloseCode::Replaced) {
                    world.ledger.breach(Breach::Closed, || {
                        format!("{} closed: {code:?}: {message}", self.me.name)
                    });
                }
                return After::Lost;
            }
            ServerFrame::Room { room, seq, .. } => {
                self.answered(&Stream::Room(room.clone()), *seq, world);
            }
            ServerFrame::HistoryEnd { .. } => {
                if let Some(stream) = Stream::of(&frame, &self.me.name) {
                    self.history_ended(&stream, conn).await;
                }
            }
            ServerFrame::Error {
                code,
                id: Some(id),
                retry_after,
                ..
            } => {
                world.tally.add(&format!("posts refused: {}", word(code)));
                if let Some(post) = self.outbox.iter_mut().find(|post| post.id == *id) {
                    if *code == chat_shared::ErrorCode::RateLimited {
                        post.due = Some(
                            Instant::now() + Duration::from_millis(retry_after.unwrap_or(200)),
                        );
                    } else {
                        self.outbox.retain(|post| post.id != *id);
                    }
                }
            }
            ServerFrame::Error {
                code: chat_shared::ErrorCode::Unavailable,
                room: Some(room),
                id: None,
                ..
            } if matches!(
                self.tracks.get(&Stream::Room(room.clone())),
                Some(Track::Asked { .. })
            ) =>
            {
                world.tally.add("joins not recorded, asked again");
                self.rejoin.push(room.clone());
            }
            ServerFrame::Error { code, .. } => world.tally.add(&format!("refused: {}", word(code))),
            _ => {
                if let (Some(seq), Some(stream)) = (frame.seq(), Stream::of(&frame, &self.me.name))
                {
                    self.on_event(&stream, seq, frame, world);
                    for ask in std::mem::take(&mut self.asks) {
                        send(conn, &ask).await;
                    }
                }
            }
        }
        After::Keep
    }

    /// A `room` answer: the replay up to `seq` follows.
    fn answered(&mut self, stream: &Stream, seq: u64, world: &World) {
        // An answer not asked for on this connection changes nothing of what it follows.
        if self
            .tracks
            .get(stream)
            .is_some_and(|track| !matches!(track, Track::Asked { .. }))
        {
            world.tally.add("room answers not asked for");
            return;
        }
        if let Some(Track::Asked { since, held }) = self.tracks.remove(stream) {
            self.tracks.insert(
                stream.clone(),
                Track::Replaying {
                    last: since,
                    until: seq,
                    held,
                    fetching: false,
                },
            );
            self.finish_replay(stream, world);
        }
    }

    async fn history_ended(&mut self, stream: &Stream, conn: &mut Conn) {
        if let Some(count) = self.browsing.get_mut(stream) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.browsing.remove(stream);
            }
            return;
        }
        // A catch-up page (of a conversation, or of a room whose replay began late): ask
        // for the next one while it is behind.
        if let Some(Track::Replaying {
            last,
            until,
            fetching,
            ..
        }) = self.tracks.get(stream)
            && (*fetching || matches!(stream, Stream::Direct(..)))
            && last.unwrap_or(0) < *until
        {
            let ask = history_of(stream, &self.me.name, last.unwrap_or(0), *until);
            send(conn, &ask).await;
        }
    }

    /// A recorded event of `stream`.
    fn on_event(&mut self, stream: &Stream, seq: u64, frame: ServerFrame, world: &World) {
        // A post sent again after leaving its room (its first copy was recorded while the
        // connection was on its way out): the answer is the post as recorded, an
        // acknowledgement, not an event of a room followed. Not while a join of the room
        // is answered: a replay can hold its own `left` before its `joined` again, and
        // what comes then is taken in its turn.
        if let (
            Stream::Room(room),
            ServerFrame::Message {
                from, id: Some(id), ..
            },
        ) = (stream, &frame)
            && *from == self.me.name
            && *room != world.general
            && !self.wanted.contains(room)
            && !matches!(
                self.tracks.get(stream),
                Some(Track::Asked { .. } | Track::Replaying { .. })
            )
            && self.acknowledge(stream, id, seq, world)
        {
            world.ledger.saw(stream, seq, &frame, false);
            world
                .tally
                .add("posts acknowledged after leaving their room");
            return;
        }
        if let ServerFrame::Message {
            from, id: Some(id), ..
        } = &frame
            && *from == self.me.name
            && self.acked_ids.contains(id)
            && self
                .tracks
                .get(stream)
                .and_then(Track::last)
                .is_some_and(|last| seq <= last)
        {
            // The original echo of a post sent again: an acknowledgement, not a new event.
            world.tally.add("posts sent again and recognised");
            return;
        }
        match self.tracks.get_mut(stream) {
            None => {
                if self.browsing.contains_key(stream) {
                    world.ledger.saw(stream, seq, &frame, false);
                    return;
                }
                self.tracks.insert(stream.clone(), Track::Live(seq));
                self.take(stream, seq, &frame, true, world);
            }
            Some(Track::Live(last)) => {
                let last = *last;
                if seq <= last && self.browsing.contains_key(stream) {
                    world.ledger.saw(stream, seq, &frame, false);
                } else if self.check_next(stream, last, seq, world, "live") {
                    self.tracks.insert(stream.clone(), Track::Live(seq));
                    self.take(stream, seq, &frame, true, world);
                }
            }
            Some(Track::Asked { held, .. }) => held.push(frame),
            Some(Track::Replaying {
                last,
                until,
                held,
                fetching,
            }) => {
                if seq > *until {
                    held.push(frame);
                    return;
                }
                if let Some(previous) = *last
                    && seq > previous + 1
                {
                    // Begun later than asked: the rest, and these again, come with
                    // `history` `after`, page by page (see `history_ended`).
                    if !*fetching {
                        *fetching = true;
                        let ask = history_of(stream, &self.me.name, previous, *until);
                        self.asks.push(ask);
                        world.tally.add("replays completed from history");
                    }
                    return;
                }
                let previous = last.replace(seq);
                if let Some(previous) = previous
                    && !self.check_next(stream, previous, seq, world, "in a replay")
                {
                    // A repeat: the newest stays the newest.
                    if let Some(Track::Replaying { last, .. }) = self.tracks.get_mut(stream) {
                        *last = Some(previous);
                    }
                    return;
                }
                self.take(stream, seq, &frame, false, world);
                self.finish_replay(stream, world);
            }
        }
    }

    /// Whether `seq` is new after `last`; a repeat or a gap is a breach.
    fn check_next(&self, stream: &Stream, last: u64, seq: u64, world: &World, when: &str) -> bool {
        let name = &self.me.name;
        if seq <= last {
            world.ledger.breach(Breach::Repeat, || {
                format!("{name} got {stream} seq {seq} again (had {last})")
            });
            false
        } else {
            if seq > last + 1 {
                // What the others received there, to tell what kind of event went astray.
                let missed = world.ledger.seen_between(stream, last + 1, seq - 1);
                world.ledger.breach(Breach::Gap, || {
                    format!(
                        "{name} missed {stream} seqs {}..={} ({when}, then {seq}): {missed}",
                        last + 1,
                        seq - 1
                    )
                });
            }
            true
        }
    }

    /// Once a replay reached its end: what waited is taken, in order, and the stream is
    /// followed live.
    fn finish_replay(&mut self, stream: &Stream, world: &World) {
        let Some(Track::Replaying { last, until, .. }) = self.tracks.get(stream) else {
            return;
        };
        if last.unwrap_or(0) < *until {
            return;
        }
        let Some(Track::Replaying { last, held, .. }) = self.tracks.remove(stream) else {
            return;
        };
        let mut newest = last.unwrap_or(0);
        for frame in held {
            let Some(seq) = frame.seq() else { continue };
            if seq <= newest {
                // Live before the answer, and in the replay too; or a post sent again
                // answered with the post as recorded, older than the replay.
                world.tally.add("events seen live and in a replay");
                if let ServerFrame::Message {
                    from, id: Some(id), ..
                } = &frame
                    && *from == self.me.name
                {
                    self.acknowledge(stream, id, seq, world);
                }
                continue;
            }
            self.check_next(stream, newest, seq, world, "after a replay");
            newest = seq;
            self.take(stream, seq, &frame, true, world);
        }
        self.tracks.insert(stream.clone(), Track::Live(newest));
    }

    /// An event taken in its turn: into the ledger; an echo acknowledges a post.
    fn take(&mut self, stream: &Stream, seq: u64, frame: &ServerFrame, live: bool, world: &World) {
        world.ledger.saw(stream, seq, frame, live);
        world.tally.add("events received");
        if let ServerFrame::Message {
            from,
            id,
            deleted: false,
            ..
        } = frame
        {
            if self.recent.len() >= 50 {
                self.recent.pop_front();
            }
            self.recent.push_back((stream.clone(), seq));
            if *from == self.me.name {
                if self.me.password.is_some() {
                    self.mine.push((stream.clone(), seq));
                }
                if let Some(id) = id {
                    self.acknowledge(stream, id, seq, world);
                }
            }
        }
        // Its own `joined` and `left`, in seq order, say whether it is in the room: a
        // replay may hold the `left` of a connection that was lost and then the `joined`
        // of this one, and a room it is in is asked for again after a takeover.
        match frame {
            ServerFrame::Left { name, .. } if *name == self.me.name => {
                if let Stream::Room(room) = stream {
                    // Parted, or put out by a moderator: joined again later, perhaps.
                    self.wanted.retain(|wanted| wanted != room);
                }
            }
            ServerFrame::Joined { name, .. } if *name == self.me.name => {
                if let Stream::Room(room) = stream
                    && *room != world.general
                    && !self.wanted.contains(room)
                {
                    self.wanted.push(room.clone());
                }
            }
            _ => {}
        }
    }

    /// The echo of a post of the outbox, at `seq`: it is acknowledged. Whether it was one.
    fn acknowledge(&mut self, stream: &Stream, id: &str, seq: u64, world: &World) -> bool {
        let Some(at) = self.outbox.iter().position(|post| post.id == id) else {
            return false;
        };
        self.outbox.remove(at);
        self.acked_ids.insert(id.to_owned());
        world.ledger.acked(stream, id, seq);
        world.tally.add("posts acknowledged");
        true
    }

    /// One step of the mix.
    async fn act(&mut self, conn: &mut Option<Conn>, world: &World) {
        let Some(open) = conn.as_mut() else { return };
        self.flush_due(open).await;
        let account = self.me.password.is_some();
        let roll = self.rng.u32(0..100);
        let sent = match roll {
            45..53 => self.join(open, world).await,
            53..57 => self.part(open).await,
            57..64 => self.browse(open).await,
            64..70 if account => self.edit(open).await,
            70..78 => self.react(open).await,
            78..80 if account => self.delete(open).await,
            80..86 => self.typing(open, world).await,
            86..88 => {
                send(
                    open,
                    &ClientFrame::Search {
                        query: "chaos".into(),
                        room: None,
                        with: None,
                        limit: Some(10),
                        cursor: None,
                    },
                )
                .await
            }
            88..91 if self.me.admin => self.moderate(open, world).await,
            91..93 => {
                // A network cut: the connection is gone; the next turn reconnects.
                *conn = None;
                world.tally.add("connections dropped");
                return;
            }
            93..95 => {
                let how = if account && self.rng.bool() {
                    "password"
                } else {
                    "token"
                };
                match self.connect(world, Some(how)).await {
                    Ok(new) => *conn = Some(new),
                    Err(_) => world.tally.add("takeovers failed"),
                }
                return;
            }
            _ => self.post(open, world).await,
        };
        if !sent {
            *conn = None;
        }
    }

    async fn post(&mut self, conn: &mut Conn, world: &World) -> bool {
        self.posted += 1;
        let target = if !self.me.friends.is_empty() && self.rng.u32(0..6) == 0 {
            Target::To(self.me.friends[self.rng.usize(0..self.me.friends.len())].clone())
        } else if self.wanted.is_empty() || self.rng.u32(0..4) == 0 {
            Target::Room(world.general.clone())
        } else {
            Target::Room(self.wanted[self.rng.usize(0..self.wanted.len())].clone())
        };
        let stream = match &target {
            Target::Room(room) => Stream::Room(room.clone()),
            Target::To(to) => Stream::direct(&self.me.name, to),
        };
        let reply_to = if self.rng.u32(0..5) == 0 {
            self.recent
                .iter()
                .rev()
                .find(|(s, _)| *s == stream)
                .map(|(_, seq)| *seq)
        } else {
            None
        };
        let post = Post {
            target,
            text: format!(
                "{} says {} ({:016x})",
                self.me.name,
                self.posted,
                self.rng.u64(..)
            ),
            id: format!("{}-{}-{:016x}", self.me.name, self.posted, self.rng.u64(..)),
            reply_to,
            due: Some(Instant::now() + Duration::from_secs(3600)),
        };
        world.tally.add(if matches!(post.target, Target::To(_)) {
            "direct messages sent"
        } else {
            "posts sent"
        });
        let frame = say(&post);
        self.outbox.push(post);
        send(conn, &frame).await
    }

    async fn join(&mut self, conn: &mut Conn, world: &World) -> bool {
        if self.wanted.len() >= 4 {
            return true;
        }
        let room = world.rooms[self.rng.usize(0..world.rooms.len())].clone();
        if self.wanted.contains(&room) {
            return true;
        }
        self.wanted.push(room.clone());
        world.tally.add("joins");
        self.ask_join(conn, room).await
    }

    /// Sends a `join` of `room` since the last seq seen there; what comes before its
    /// answer waits.
    async fn ask_join(&mut self, conn: &mut Conn, room: String) -> bool {
        let stream = Stream::Room(room.clone());
        let since = self.tracks.get(&stream).and_then(Track::last);
        self.tracks.insert(
            stream,
            Track::Asked {
                since,
                held: Vec::new(),
            },
        );
        send(conn, &ClientFrame::Join { room, since }).await
    }

    async fn part(&mut self, conn: &mut Conn) -> bool {
        if self.wanted.is_empty() {
            return true;
        }
        let room = self.wanted.remove(self.rng.usize(0..self.wanted.len()));
        send(conn, &ClientFrame::Part { room }).await
    }

    /// Scrolls back somewhere in a stream it follows.
    async fn browse(&mut self, conn: &mut Conn) -> bool {
        let live: Vec<(Stream, u64)> = self
            .tracks
            .iter()
            .filter_map(|(stream, track)| match track {
                Track::Live(last) if *last > 1 => Some((stream.clone(), *last)),
                _ => None,
            })
            .collect();
        if live.is_empty() {
            return true;
        }
        let (stream, last) = live[self.rng.usize(0..live.len())].clone();
        let before = self.rng.u64(1..=last);
        let (room, with) = self.address(&stream);
        *self.browsing.entry(stream).or_default() += 1;
        send(
            conn,
            &ClientFrame::History {
                room,
                with,
                before: Some(before),
                after: None,
                limit: Some(50),
            },
        )
        .await
    }

    async fn edit(&mut self, conn: &mut Conn) -> bool {
        let Some((stream, seq)) = self.pick_mine() else {
            return true;
        };
        let (room, with) = self.address(&stream);
        let text = format!("{} edited {seq} ({:08x})", self.me.name, self.rng.u32(..));
        send(
            conn,
            &ClientFrame::Edit {
                room,
                with,
                seq,
                text,
            },
        )
        .await
    }

    async fn delete(&mut self, conn: &mut Conn) -> bool {
        let Some((stream, seq)) = self.pick_mine() else {
            return true;
        };
        self.mine.retain(|(s, q)| !(*s == stream && *q == seq));
        let (room, with) = self.address(&stream);
        send(conn, &ClientFrame::Delete { room, with, seq }).await
    }

    async fn react(&mut self, conn: &mut Conn) -> bool {
        if self.recent.is_empty() {
            return true;
        }
        let (stream, seq) = self.recent[self.rng.usize(0..self.recent.len())].clone();
        let (room, with) = self.address(&stream);
        let emoji = EMOJI[self.rng.usize(0..EMOJI.len())].to_owned();
        let on = self.rng.u32(0..3) > 0;
        send(
            conn,
            &ClientFrame::React {
                room,
                with,
                seq,
                emoji,
                on,
            },
        )
        .await
    }

    async fn typing(&mut self, conn: &mut Conn, world: &World) -> bool {
        let room = self
            .wanted
            .first()
            .cloned()
            .unwrap_or_else(|| world.general.clone());
        send(
            conn,
            &ClientFrame::Typing {
                room: Some(room),
                to: None,
            },
        )
        .await
    }

    /// The administrator's part: topics, mutes and removals in its rooms.
    async fn moderate(&mut self, conn: &mut Conn, world: &World) -> bool {
        let Some(room) = self.wanted.first().cloned() else {
            return true;
        };
        let name = world.names[self.rng.usize(0..world.names.len())].clone();
        let frame = match self.rng.u32(0..4) {
            0 => ClientFrame::Topic {
                room,
                text: format!("topic {:08x}", self.rng.u32(..)),
            },
            1 => ClientFrame::Mute {
                room,
                name,
                minutes: Some(1),
            },
            2 => ClientFrame::Unmute { room, name },
            _ => ClientFrame::Remove {
                room,
                name,
                message: Some("chaos".into()),
            },
        };
        world.tally.add("moderation steps");
        send(conn, &frame).await
    }

    fn pick_mine(&mut self) -> Option<(Stream, u64)> {
        (!self.mine.is_empty()).then(|| self.mine[self.rng.usize(0..self.mine.len())].clone())
    }

    /// `room` or `with` for a frame about `stream`.
    fn address(&self, stream: &Stream) -> (Option<String>, Option<String>) {
        match stream {
            Stream::Room(room) => (Some(room.clone()), None),
            Stream::Direct(a, b) => (
                None,
                Some(if *a == self.me.name {
                    b.clone()
                } else {
                    a.clone()
                }),
            ),
        }
    }
}

fn say(post: &Post) -> ClientFrame {
    let (room, to) = match &post.target {
        Target::Room(room) => (Some(room.clone()), None),
        Target::To(to) => (None, Some(to.clone())),
    };
    ClientFrame::Say {
        room,
        to,
        text: post.text.clone(),
        id: Some(post.id.clone()),
        me: false,
        reply_to: post.reply_to,
    }
}

/// The next page of a catch-up of `stream` (as `me` asks for it) after `after`, up to
/// `until` and no further: what comes after it comes live, and must not come twice.
fn history_of(stream: &Stream, me: &str, after: u64, until: u64) -> ClientFrame {
    let (room, with) = match stream {
        Stream::Room(room) => (Some(room.clone()), None),
        Stream::Direct(a, b) => (None, Some(if a == me { b } else { a }.clone())),
    };
    ClientFrame::History {
        room,
        with,
        before: None,
        after: Some(after),
        limit: Some(
            u32::try_from(until.saturating_sub(after))
                .unwrap_or(200)
                .clamp(1, 200),
        ),
    }
}

/// Time since the first call: how the trace stamps its lines.
fn started() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Writes one frame; false when the connection is gone.
async fn send(conn: &mut Conn, frame: &ClientFrame) -> bool {
    if conn.traced {
        eprintln!("{:?} {} -> {frame:?}", started(), conn.me);
    }
    write(&mut conn.writer, frame).await
}

async fn write(writer: &mut Writer, frame: &ClientFrame) -> bool {
    let frame = Frame::encode(frame);
    writer.write_all(frame.as_bytes()).await.is_ok() && writer.flush().await.is_ok()
}
