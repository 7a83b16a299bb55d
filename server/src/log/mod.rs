//! The event log: where the events of a stream get their `seq` and are kept.
//!
//! A stream is a room or the direct conversation of two accounts; each has its own
//! sequence. The hub hands the log batches of new events and fans out only what the log
//! returns, so an event anyone sees is as safe as the log makes it:
//! [`memory::MemoryLog`] keeps nothing of rooms beyond the hub's own window (`--memory`),
//! [`store::Store`] commits each batch to disk with one fsync before it returns (on the
//! thread of [`recorder::Recorder`]), and [`redis::RedisLog`] appends it to the Redis that
//! the nodes of a cluster share.
//!
//! Every method may block (disk); the hub calls them from its recorder thread or a blocking
//! pool, never from the task that fans out.

pub mod amend;
pub mod archive;
pub mod backup;
pub mod memory;
pub mod recorder;
pub mod redis;
pub mod scrub;
pub mod state;
pub mod store;

use std::fmt;
use std::sync::Arc;

use chat_shared::{Conversation, Frame, LeaveReason, Role, ServerFrame};
use futures_lite::future;

/// A position in a stream's sequence.
pub type Seq = u64;

/// What begins the key of a direct conversation's stream.
const DIRECT: &str = "dm\n";

/// A stream with its own sequence: a room (its case-folded name), or the direct
/// conversation of two accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(Arc<str>);

impl StreamId {
    /// The stream called `key` (a room's case-folded name).
    pub fn new(key: &str) -> Self {
        Self(key.into())
    }

    /// The conversation of the accounts with these case-folded names (in either order).
    /// Its key holds a newline, which no room name can.
    pub fn direct(a: &str, b: &str) -> Self {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        Self(format!("{DIRECT}{first}\n{second}").into())
    }

    /// The two accounts of a direct conversation's stream; `None` for a room's.
    pub fn parties(&self) -> Option<(&str, &str)> {
        Self::parties_of(&self.0)
    }

    /// The two accounts of the direct conversation whose stream has the key `key`; `None`
    /// for a room's key.
    pub fn parties_of(key: &str) -> Option<(&str, &str)> {
        key.strip_prefix(DIRECT)?.split_once('\n')
    }

    /// Its key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened, before it has a seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Someone said something.
    Message {
        /// The sender as the server accepted them.
        from: String,
        /// The text.
        text: String,
        /// The sender's id for the post.
        id: Option<String>,
        /// An action ("/me waves").
        me: bool,
        /// The seq of the message it answers.
        reply_to: Option<Seq>,
    },
    /// Someone came in.
    Joined {
        /// Who.
        name: String,
    },
    /// Someone went.
    Left {
        /// Who.
        name: String,
        /// Why.
        reason: LeaveReason,
        /// The moderator who put them out (`removed`, `banned`).
        by: Option<String>,
        /// Why the moderator did, if said.
        message: Option<String>,
    },
    /// The topic changed.
    Topic {
        /// Who set it.
        by: String,
        /// The topic (empty: cleared).
        text: String,
    },
    /// A role was given or taken.
    Role {
        /// Who gave it.
        by: String,
        /// To whom.
        name: String,
        /// The role from now on.
        role: Role,
    },
    /// A name was banned from the room.
    Ban {
        /// Who banned it.
        by: String,
        /// The name.
        name: String,
        /// Why, if said.
        message: Option<String>,
        /// When it ends (ms since the Unix epoch), if it does.
        until: Option<u64>,
    },
    /// A ban was lifted.
    Unban {
        /// Who lifted it.
        by: String,
        /// The name.
        name: String,
    },
    /// A name was muted in the room.
    Mute {
        /// Who muted it.
        by: String,
        /// The name.
        name: String,
        /// When it ends, if it does.
        until: Option<u64>,
    },
    /// A mute was lifted.
    Unmute {
        /// Who lifted it.
        by: String,
        /// The name.
        name: String,
    },
    /// The room's settings changed.
    Settings {
        /// Who changed them.
        by: String,
        /// Whether only the invited may join.
        invite_only: bool,
        /// How many days it keeps its history, if it has a limit of its own.
        retain_days: Option<chat_shared::Days>,
    },
    /// An account was invited to the room.
    Invite {
        /// Who invited.
        by: String,
        /// The account.
        name: String,
    },
    /// A message was deleted (see [`amend`]).
    Deleted {
        /// Who deleted it.
        by: String,
        /// Its seq.
        target: Seq,
    },
    /// A message was edited by its author.
    Edited {
        /// The author.
        from: String,
        /// Its seq.
        target: Seq,
        /// Its text from now on.
        text: String,
    },
    /// A reaction was added or taken back.
    Reaction {
        /// Who reacted.
        from: String,
        /// The message's seq.
        target: Seq,
        /// The emoji.
        emoji: String,
        /// Added or taken back.
        on: bool,
    },
}

/// The two parties of a direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direct {
    /// The sender's account (case-folded).
    pub from_key: String,
    /// The recipient's account (case-folded).
    pub to_key: String,
    /// The recipient as registered.
    pub to: String,
}

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its stream.
    pub stream: StreamId,
    /// The room's name as its members see it (spelled as when it was created); empty for
    /// a direct message.
    pub room: Arc<str>,
    /// For a direct message: its parties. Its frame names the recipient in `with` (the
    /// sender's view); [`for_reader`] turns it round for the recipient.
    pub direct: Option<Box<Direct>>,
    /// When the server received it, ms since the Unix epoch.
    pub time: u64,
    /// What happened.
    pub body: Body,
    /// For a post with an id: the poster's key (case-folded name), under which the id is
    /// remembered so that a re-sent copy is answered with this event.
    pub poster: Option<String>,
    /// In a cluster, for a `joined` or a part's `left`: the member's session token; the
    /// event is recorded only while the member still holds it (not after it went, or was
    /// taken over on another node).
    pub holder: Option<String>,
    /// For an event about a message of a room (see [`amend`]) with a log that keeps no
    /// room's events (`--memory`): the message as the room's window holds it when the
    /// batch goes, for the log to decide against.
    pub base: Option<Frame>,
}

impl Body {
    /// A `left` that no moderator caused.
    pub fn left(name: String, reason: LeaveReason) -> Self {
        Body::Left {
            name,
            reason,
            by: None,
            message: None,
        }
    }
}

/// An event with its seq: the frame every member gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its seq in its stream; 0 for an event the log did not record (see
    /// [`Event::unrecorded`]).
    pub seq: Seq,
    /// The encoded event; for one not recorded, what its author is told (empty: nothing).
    pub frame: Frame,
}

impl Event {
    /// An event the log did not record: its author no longer holds its session, or a
    /// message's life refused it (`answer`: the `error` for its author, if any).
    pub fn unrecorded(answer: Option<Frame>) -> Self {
        Self {
            seq: 0,
            frame: answer.unwrap_or_else(|| Frame::from_encoded(b"")),
        }
    }
}

/// The ends of a stream: the oldest and newest seq held (both 0 when it is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// The oldest seq held.
    pub oldest: Seq,
    /// The newest seq.
    pub newest: Seq,
}

/// Which events a read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The newest ones with a seq below this.
    Before(Seq),
    /// The oldest ones with a seq above this.
    After(Seq),
}

/// Where a history starts: at a seq, or at a time that is looked up (IRC's `CHATHISTORY`
/// refers to times, where the protocol counts in seqs). Times are ms since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// These seqs.
    Seqs(Span),
    /// The newest events recorded before this time.
    BeforeTime(u64),
    /// The oldest events recorded after this time.
    AfterTime(u64),
    /// The events from `back` before the first one recorded at or after `time` on.
    AroundTime {
        /// The time looked up.
        time: u64,
        /// How many events before the one found the page starts.
        back: u64,
    },
}

impl Reach {
    /// The seqs this reaches, given where the first event recorded at or after a time is
    /// (one past the newest if none is).
    pub fn span<E>(self, mut first_at: impl FnMut(u64) -> Result<Seq, E>) -> Result<Span, E> {
        Ok(match self {
            Self::Seqs(span) => span,
            Self::BeforeTime(time) => Span::Before(first_at(time)?),
            Self::AfterTime(time) => {
                Span::After(first_at(time.saturating_add(1))?.saturating_sub(1))
            }
            Self::AroundTime { time, back } => {
                Span::After(first_at(time)?.saturating_sub(back.saturating_add(1)))
            }
        })
    }
}

/// What a stream entry says besides its frame, for a node that follows the stream of a log
/// several nodes share (see [`Snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Someone joined the room: case-folded, and as spelled.
    Joined(String, String),
    /// Someone left it: case-folded.
    Left(String),
    /// A post with an id: its poster (case-folded) and the id, so that the poster's node
    /// knows the id even when the answer to its append was lost.
    Posted(String, String),
}

/// Events of a room as a node read them from a shared log, in seq order, each with what it
/// changes in the room's member list.
pub type Tailed = Vec<(Event, Option<Note>)>;

/// A room's stream as a node starts to follow it: its ends, its state and, where several
/// nodes share the log, its name and its members on every node, as of its newest event.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The ends of its stream.
    pub head: Head,
    /// Its name as first spelled (empty: unknown to the log, or no event yet).
    pub name: String,
    /// Its members on every node: case-folded, and as spelled. `None` when the log is this
    /// server's alone: its own connections are all the members there are.
    pub members: Option<Vec<(String, String)>>,
    /// Its state's fields (see [`state`]).
    pub state: Vec<(String, String)>,
}

/// What the log remembers for a name logging in.
#[derive(Debug, Default)]
pub struct Remembered {
    /// Its posts' ids with the event each produced, oldest first (so that an outbox
    /// re-sent after a restart is not posted twice).
    pub posts: Vec<(String, Frame)>,
    /// Should it be an account: its conversations with the latest activity, latest first.
    pub conversations: Vec<Conversation>,
    /// Should it be an account: the rooms it is invited to (room key, who invited).
    pub invites: Vec<(String, String)>,
    /// Should it be an account: its read markers (stream key, seq).
    pub read: Vec<(String, Seq)>,
}

/// An account's read marker in a stream: the newest seq it has seen there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    /// The account (case-folded).
    pub account: String,
    /// The room or conversation.
    pub stream: StreamId,
    /// The seq.
    pub seq: Seq,
}

/// The log could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store failed (disk full, I/O error, corruption found while reading).
    #[error("{0}")]
    Store(String),
}

/// Where events get their seq and are kept. One log holds every stream of the server.
pub trait EventLog: Send + Sync + 'static {
    /// Names the history seqs count in; changes only when the history is lost.
    fn epoch(&self) -> &str;

    /// Whether what it holds survives a restart.
    fn durable(&self) -> bool;

    /// Whether old events can be deleted from it (`--retain-days`, a room's
    /// `retain_days`): yes, but where a cluster shares it.
    fn retains(&self) -> bool {
        true
    }

    /// The ends of a stream.
    fn head(&self, stream: &StreamId) -> Result<Head, LogError>;

    /// A room's stream as a node starts to follow it: by default its ends and its state,
    /// and no members (a log no other node shares knows none this server does not).
    fn snapshot(&self, stream: &StreamId) -> Result<Snapshot, LogError> {
        Ok(Snapshot {
            head: self.head(stream)?,
            state: self.room_state(stream)?,
            ..Snapshot::default()
        })
    }

    /// A room's state's fields.
    fn room_state(&self, stream: &StreamId) -> Result<Vec<(String, String)>, LogError>;

    /// The rooms an account (case-folded) is invited to and has not joined: room key, and
    /// who invited.
    fn invites_of(&self, account: &str) -> Result<Vec<(String, String)>, LogError>;

    /// Every server ban: its key (`name:<case-folded>` or `ip:<address>`) and what it
    /// holds.
    fn server_bans(&self) -> Result<Vec<(String, String)>, LogError>;

    /// Sets (or, with `None`, lifts) a server ban.
    fn set_server_ban(&self, key: &str, value: Option<&str>) -> Result<(), LogError>;

    /// Deletes the oldest events of `stream` recorded before `time` (ms since the Unix
    /// epoch), at most `max` of them at once, and says which seqs went (`--retain-days`).
    /// A log that holds no events of its own (a `--memory` server's rooms live in the hub)
    /// deletes nothing. The stream's newest seq stays: seqs go on where they were.
    fn forget_before(
        &self,
        stream: &StreamId,
        time: u64,
        max: usize,
    ) -> Result<Option<std::ops::Range<Seq>>, LogError> {
        let _ = (stream, time, max);
        Ok(None)
    }

    /// Housekeeping between batches, on the recorder's thread (the store erases deleted
    /// texts from its file there). Says whether some is still to do (the recorder then
    /// comes back to it even when no batch comes).
    fn tidy(&self) -> bool {
        false
    }

    /// Appends events (of any streams) as one step: each gets the next seq of its stream.
    /// When this returns `Ok`, the events are as safe as the log makes them; on `Err`
    /// none of them was recorded.
    fn append(&self, events: &[NewEvent]) -> Result<Vec<Event>, LogError>;

    /// At most `limit` events of a stream, oldest first.
    fn read(&self, stream: &StreamId, span: Span, limit: usize) -> Result<Vec<Event>, LogError>;

    /// The seq of the first event of `stream` recorded at or after `time` (ms since the
    /// Unix epoch); one past the newest if none is. Events are recorded in the order of
    /// their times, so this is a binary search of a few reads.
    fn first_at(&self, stream: &StreamId, time: u64) -> Result<Seq, LogError> {
        let head = self.head(stream)?;
        let (mut low, mut high) = (head.oldest.max(1), head.newest + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.read(stream, Span::After(middle - 1), 1)?.first() {
                Some(event) if time_of(&event.frame).is_some_and(|at| at < time) => {
                    low = event.seq + 1;
                }
                // At or after `time`, or nothing from `middle` on (seqs between `middle`
                // and the event are gone).
                _ => high = middle,
            }
        }
        Ok(low)
    }

    /// The posts remembered for a poster (at most [`REMEMBERED_IDS`]): each id with the
    /// event it produced, oldest first.
    ///
    /// [`REMEMBERED_IDS`]: chat_shared::limits::REMEMBERED_IDS
    fn recent_posts(&self, poster: &str) -> Result<Vec<(String, Frame)>, LogError>;

    /// An account's read markers: stream key and seq.
    fn read_markers(&self, account: &str) -> Result<Vec<(String, Seq)>, LogError>;

    /// Keeps read markers, each only if it is higher than the one kept.
    fn set_read(&self, marks: &[ReadMark]) -> Result<(), LogError>;

    /// Every room it holds events of: its stream and its name as first spelled.
    fn rooms(&self) -> Result<Vec<(StreamId, String)>, LogError>;

    /// Every stream that has events: rooms and direct conversations (for the search
    /// index to catch up with).
    fn streams(&self) -> Result<Vec<StreamId>, LogError>;

    /// Every account: its name as registered and its password hash (PHC).
    fn accounts(&self) -> Result<Vec<(String, String)>, LogError>;

    /// Creates an account; `Ok(false)` if one with this key exists already.
    fn create_account(&self, folded: &str, name: &str, hash: &str) -> Result<bool, LogError>;

    /// Replaces an account's password hash.
    fn set_password(&self, folded: &str, hash: &str) -> Result<(), LogError>;

    /// Forgets what is kept for an account alone (its read markers, its list of
    /// conversations, its invitations, its recent post ids): it was deleted. Its events,
    /// and the conversations as the other accounts list them, stay.
    fn forget_account(&self, folded: &str) -> Result<(), LogError>;

    /// An account's direct conversations with the latest activity, latest first.
    fn conversations(&self, owner: &str, limit: usize) -> Result<Vec<Conversation>, LogError>;

    /// What it remembers for `poster` (case-folded) logging in: its posts and its `limit`
    /// latest conversations. By default read on the blocking pool, off the threads that
    /// serve connections.
    fn remembered(
        self: Arc<Self>,
        poster: String,
        limit: usize,
    ) -> future::Boxed<Result<Remembered, LogError>> {
        Box::pin(smol::unblock(move || {
            Ok(Remembered {
                posts: self.recent_posts(&poster)?,
                conversations: self.conversations(&poster, limit)?,
                invites: self.invites_of(&poster)?,
                read: self.read_markers(&poster)?,
            })
        }))
    }
}

/// When an event was recorded (ms since the Unix epoch), as its frame says.
pub fn time_of(frame: &Frame) -> Option<u64> {
    recorded_at(frame.as_bytes())
}

/// When the event encoded in `bytes` was recorded (ms since the Unix epoch).
pub fn recorded_at(bytes: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Timed {
        time: u64,
    }
    serde_json::from_slice::<Timed>(bytes)
        .ok()
        .map(|timed| timed.time)
}

/// When a message was recorded (ms since the Unix epoch), if `frame` is one.
pub fn message_time(frame: &Frame) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        time: u64,
    }
    serde_json::from_slice::<Typed>(frame.as_bytes())
        .ok()
        .filter(|typed| typed.kind == "message")
        .map(|typed| typed.time)
}

/// The `limit` conversations with the latest activity (by time, then seq), latest first.
pub fn latest_first(mut all: Vec<(u64, Conversation)>, limit: usize) -> Vec<Conversation> {
    all.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.seq.cmp(&a.1.seq)));
    all.into_iter().take(limit).map(|(_, c)| c).collect()
}

/// A direct message's frame as `reader` (case-folded) sees it: the stored frame names the
/// recipient in `with`, so the recipient gets it with the sender there instead.
pub fn for_reader(frame: &Frame, reader: &str) -> Frame {
    let Ok(mut message) =
        chat_shared::decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end())
    else {
        return frame.clone();
    };
    match &mut message {
        ServerFrame::Message {
            with: Some(with),
            from: author,
            ..
        }
        | ServerFrame::Deleted {
            with: Some(with),
            by: author,
            ..
        }
        | ServerFrame::Edited {
            with: Some(with),
            from: author,
            ..
        }
        | ServerFrame::Reaction {
            with: Some(with),
            from: author,
            ..
        } if chat_shared::fold(author) != reader => {
            with.clone_from(author);
            Frame::encode(&message)
        }
        _ => frame.clone(),
    }
}

/// The frame of an event.
pub fn frame(seq: Seq, event: &NewEvent) -> Frame {
    let (room, with) = match &event.direct {
        Some(direct) => (None, Some(direct.to.clone())),
        None => (Some(event.room.to_string()), None),
    };
    let time = event.time;
    Frame::encode(&match event.body.clone() {
        Body::Message {
            from,
            text,
            id,
            me,
            reply_to,
        } => ServerFrame::Message {
            room,
            with,
            seq,
            time,
            from,
            text,
            id,
            me,
            deleted: false,
            reply_to,
            edited: None,
            reactions: Vec::new(),
        },
        Body::Joined { name } => ServerFrame::Joined {
            room,
            seq,
            time,
            name,
        },
        Body::Left {
            name,
            reason,
            by,
            message,
        } => ServerFrame::Left {
            room,
            seq,
            time,
            name,
            reason,
            by,
            message,
        },
        Body::Ban {
            by,
            name,
            message,
            until,
        } => ServerFrame::Ban {
            room,
            seq,
            time,
            by,
            name,
            message,
            until,
        },
        Body::Unban { by, name } => ServerFrame::Unban {
            room,
            seq,
            time,
            by,
            name,
        },
        body @ (Body::Deleted { .. } | Body::Edited { .. } | Body::Reaction { .. }) => {
            life_event(room, with, seq, time, body)
        }
        body => room_state_event(event.room.to_string(), seq, time, body),
    })
}

/// The frame of an event about a message (see [`amend`]), of a room or a conversation.
fn life_event(
    room: Option<String>,
    with: Option<String>,
    seq: Seq,
    time: u64,
    body: Body,
) -> ServerFrame {
    match body {
        Body::Deleted { by, target } => ServerFrame::Deleted {
            room,
            with,
            seq,
            time,
            by,
            target,
        },
        Body::Edited { from, target, text } => ServerFrame::Edited {
            room,
            with,
            seq,
            time,
            from,
            target,
            text,
        },
        Body::Reaction {
            from,
            target,
            emoji,
            on,
        } => ServerFrame::Reaction {
            room,
            with,
            seq,
            time,
            from,
            target,
            emoji,
            on,
        },
        _ => unreachable!("not an event about a message"),
    }
}

/// The frame of an event that changes a room's state (not a ban: that may be the
/// server's).
fn room_state_event(room: String, seq: Seq, time: u64, body: Body) -> ServerFrame {
    match body {
        Body::Topic { by, text } => ServerFrame::Topic {
            room,
            seq,
            time,
            by,
            text,
        },
        Body::Role { by, name, role } => ServerFrame::Role {
            room,
            seq,
            time,
            by,
            name,
            role,
        },
        Body::Mute { by, name, until } => ServerFrame::Mute {
            room,
            seq,
            time,
            by,
            name,
            until,
        },
        Body::Unmute { by, name } => ServerFrame::Unmute {
            room,
            seq,
            time,
            by,
            name,
        },
        Body::Settings {
            by,
            invite_only,
            retain_days,
        } => ServerFrame::Settings {
            room,
            seq,
            time,
            by,
            invite_only,
            retain_days,
        },
        Body::Invite { by, name } => ServerFrame::Invite {
            room,
            seq,
            time,
            by,
            name,
        },
        _ => unreachable!("not an event of a room's state"),
    }
}
