//! The IRC port (`--irc-port`, `--irc-tls-port`): IRC clients in the same chat.
//!
//! An IRC connection is a session like any other (`session.rs`): the same login, flood
//! control, send queue, timeouts and hub. Only its two edges differ. The [`reader`] turns
//! the lines a client sends into the protocol's client frames (and answers what IRC asks of
//! the connection itself: `CAP`, `AUTHENTICATE`, `NAMES`, `WHO`…); the [`render`]er turns
//! the frames the hub queues for it into IRC lines as they are written. What it says to the
//! client on its own it queues as IRC lines, which start with `:` or `@` where a frame
//! starts with `{`, so the renderer tells them apart by their first byte.
//!
//! How our chat maps onto IRC is written down in shared/README.md ("The IRC port").

pub(crate) mod label;
pub(crate) mod line;
mod names;
pub(crate) mod reader;
pub(crate) mod render;
mod time;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chat_shared::{Role, fold};

use crate::log::{Reach, Span};

pub use names::{HOST, channel, key, name_of, nick, place, prefix, source};

/// The capabilities a client may ask for, with their bits.
pub const CAPS: [(&str, u32); 13] = [
    ("account-tag", ACCOUNT_TAG),
    ("batch", BATCH),
    ("draft/chathistory", CHATHISTORY),
    ("draft/message-redaction", REDACTION),
    ("draft/read-marker", READ_MARKER),
    ("echo-message", ECHO_MESSAGE),
    ("extended-join", EXTENDED_JOIN),
    ("labeled-response", LABELED_RESPONSE),
    ("message-tags", MESSAGE_TAGS),
    ("multi-prefix", MULTI_PREFIX),
    ("sasl", SASL),
    ("server-time", SERVER_TIME),
    ("userhost-in-names", USERHOST_IN_NAMES),
];
/// `server-time`: each event's time as a `time` tag.
pub const SERVER_TIME: u32 = 1;
/// `message-tags`: `msgid`, replies, reactions and typing as tags.
pub const MESSAGE_TAGS: u32 = 1 << 1;
/// `echo-message`: one's own messages come back once recorded.
pub const ECHO_MESSAGE: u32 = 1 << 2;
/// `sasl`: log in to an account with `AUTHENTICATE PLAIN`.
pub const SASL: u32 = 1 << 3;
/// `multi-prefix`: every prefix of a member in `NAMES` (one here: a member has one role).
pub const MULTI_PREFIX: u32 = 1 << 4;
/// `batch`: lines that belong together (a page of history) come between `BATCH` lines.
pub const BATCH: u32 = 1 << 5;
/// `draft/chathistory`: `CHATHISTORY` pages through a room's or a conversation's
/// history (it works without the capability too; the capability says so).
pub const CHATHISTORY: u32 = 1 << 6;
/// `draft/message-redaction`: deletions as `REDACT`, both ways.
pub const REDACTION: u32 = 1 << 7;
/// `userhost-in-names`: `NAMES` gives each member as `nick!user@host`.
pub const USERHOST_IN_NAMES: u32 = 1 << 8;

/// `labeled-response`: a command's answers carry the label it was sent with
/// ([`label`]).
pub const LABELED_RESPONSE: u32 = 1 << 9;
/// `draft/read-marker`: `MARKREAD` gets and sets one's read marker in a channel, and
/// a join says where it stands.
pub const READ_MARKER: u32 = 1 << 10;
/// `account-tag`: what an account says carries an `account` tag with its name.
pub const ACCOUNT_TAG: u32 = 1 << 11;
/// `extended-join`: a `JOIN` says the account (or `*` for a guest) and the real name.
pub const EXTENDED_JOIN: u32 = 1 << 12;

/// What the reader and the renderer of one IRC connection share: the capabilities agreed,
/// and what the connection knows of its channels (for `NAMES`, `TOPIC`, `MODE`, `WHO`,
/// which IRC answers from what the client was told, not from the log).
#[derive(Debug)]
pub struct Shared {
    /// The server's name on IRC (`--irc-name`).
    pub server: Arc<str>,
    caps: AtomicU32,
    view: Mutex<View>,
}

/// What one IRC connection knows of itself and its channels.
#[derive(Debug, Default)]
pub struct View {
    /// Its nick (its name, as IRC writes it) once it has one.
    pub nick: Option<String>,
    /// Its name's key (folded), once welcomed.
    pub me: String,
    /// Whether its login came through SASL (its refusals are 904, not 464).
    pub sasl: bool,
    /// Its channels, by folded name.
    pub channels: HashMap<String, Channel, foldhash::fast::RandomState>,
    /// The read markers of its direct conversations (an account's), by the other
    /// account's key: at most [`MAX_DIRECT_MARKERS`].
    pub direct: HashMap<String, Marker>,
    /// The `CHATHISTORY` requests not answered yet, oldest first.
    pub asks: VecDeque<Ask>,
    /// The last batch id given.
    pub batches: u64,
    /// The rooms a `LIST` on its way asked for (by key), if it named any.
    pub listing: Option<Vec<String>>,
    /// The channels a `JOIN` was sent for and not answered yet (by key).
    pub joining: HashSet<String>,
    /// The labeled commands waiting for their answers.
    pub labels: label::Labels,
    /// The `REDACT`s sent and not answered yet, oldest first: a refusal is a `FAIL
    /// REDACT` naming the message.
    pub redacting: VecDeque<Redacting>,
}

/// A `REDACT` on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacting {
    /// The room's key, or `@` and the other account's key.
    pub key: String,
    /// The target as the client wrote it.
    pub target: String,
    /// The message id as the client wrote it.
    pub msgid: String,
}

/// The most `CHATHISTORY` requests, and joins, a connection may have on their way: one
/// answered with an error instead is forgotten once these are exceeded, so a client that
/// keeps asking for what it may not read does not grow its connection's memory.
const MAX_UNANSWERED: usize = 256;

/// The most direct conversations whose read markers a connection keeps; past it, the one
/// whose newest message shown is oldest goes.
const MAX_DIRECT_MARKERS: usize = 100;

impl View {
    /// The read marker of the direct conversation with the account whose key is `key`.
    pub fn direct_marker(&mut self, key: &str) -> &mut Marker {
        if !self.direct.contains_key(key) && self.direct.len() >= MAX_DIRECT_MARKERS {
            let stalest = self
                .direct
                .iter()
                .min_by_key(|(_, marker)| marker.times.last_key_value().map(|(_, at)| *at))
                .map(|(key, _)| key.clone());
            if let Some(stalest) = stalest {
                self.direct.remove(&stalest);
            }
        }
        self.direct.entry(key.to_string()).or_default()
    }

    /// Remembers a `CHATHISTORY` request on its way.
    pub fn ask(&mut self, ask: Ask) {
        if self.asks.len() >= MAX_UNANSWERED {
            self.asks.pop_front();
        }
        self.asks.push_back(ask);
    }

    /// Remembers a `REDACT` on its way.
    pub fn redacting(&mut self, redacting: Redacting) {
        if self.redacting.len() >= MAX_UNANSWERED {
            self.redacting.pop_front();
        }
        self.redacting.push_back(redacting);
    }

    /// Takes the oldest `REDACT` on its way in the room or conversation `key`.
    pub fn redacted(&mut self, key: &str) -> Option<Redacting> {
        let at = self.redacting.iter().position(|r| r.key == key)?;
        self.redacting.remove(at)
    }

    /// Remembers a join on its way.
    pub fn joining(&mut self, key: String) {
        if self.joining.len() >= MAX_UNANSWERED {
            self.joining.clear();
        }
        self.joining.insert(key);
    }

    /// A new batch's id.
    pub fn batch(&mut self) -> String {
        self.batches += 1;
        self.batches.to_string()
    }

    /// Whether the connection is in the channel with `key`, or on its way in.
    pub fn is_in(&self, key: &str) -> bool {
        self.channels.contains_key(key) || self.joining.contains(key)
    }
}

/// A `CHATHISTORY` request on its way: where, and which events of the page it wants (a
/// `LATEST` after a message, a `BETWEEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The room's key, or `@` and the other account's key.
    pub key: String,
    /// Only events after this.
    pub after: Option<Reference>,
    /// Only events before this.
    pub before: Option<Reference>,
}

impl Ask {
    /// Whether the page's event `seq`, recorded at `time`, is wanted.
    pub fn keeps(&self, seq: u64, time: u64) -> bool {
        self.after.is_none_or(|after| after.precedes(seq, time))
            && self.before.is_none_or(|before| before.follows(seq, time))
    }
}

/// Where a `CHATHISTORY` reference points: a message (`msgid=room/seq`, by its seq), or a
/// time (`timestamp=…`, ms since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    Seq(u64),
    Time(u64),
}

impl Reference {
    /// The events before this point.
    pub fn before(self) -> Reach {
        match self {
            Self::Seq(seq) => Reach::Seqs(Span::Before(seq)),
            Self::Time(time) => Reach::BeforeTime(time),
        }
    }

    /// The events after this point.
    pub fn after(self) -> Reach {
        match self {
            Self::Seq(seq) => Reach::Seqs(Span::After(seq)),
            Self::Time(time) => Reach::AfterTime(time),
        }
    }

    /// Whether this point comes before the event `seq`, recorded at `time`.
    fn precedes(self, seq: u64, time: u64) -> bool {
        match self {
            Self::Seq(at) => seq > at,
            Self::Time(at) => time > at,
        }
    }

    /// Whether this point comes after the event `seq`, recorded at `time`.
    fn follows(self, seq: u64, time: u64) -> bool {
        match self {
            Self::Seq(at) => seq < at,
            Self::Time(at) => time < at,
        }
    }
}

/// A channel as one IRC connection sees it.
#[derive(Debug, Default)]
pub struct Channel {
    /// The room's name, as the server spells it.
    pub name: String,
    /// The newest seq shown: what comes again (a replay, history) is not shown twice.
    pub shown: u64,
    /// Its topic.
    pub topic: Option<String>,
    /// Whether it is invite-only.
    pub invite_only: bool,
    /// Its members by folded name: name and role.
    pub members: BTreeMap<String, (String, Role)>,
    /// The accounts with a role, by folded name (online or not).
    pub roles: HashMap<String, Role>,
    /// The names banned (for those who may see them).
    pub bans: Vec<String>,
    /// The names muted (for those who may see them).
    pub mutes: Vec<String>,
    /// Its read marker.
    pub marker: Marker,
}

/// A read marker as `MARKREAD` sees it, of a channel or a direct conversation: the
/// protocol's `read`, which counts in seqs, with the times IRC counts in.
#[derive(Debug, Default)]
pub struct Marker {
    /// The newest seq read, and that event's time if known (or the newest time the client
    /// gave, which may fall after it).
    pub read: (u64, Option<u64>),
    /// The seqs and times of the newest messages shown (live or paged back to), by seq:
    /// what a `MARKREAD` timestamp is matched against (kept with `draft/read-marker`
    /// only).
    pub times: BTreeMap<u64, u64>,
}

/// The most message times a read marker keeps for `MARKREAD`.
const MAX_TIMES: usize = 256;

impl Marker {
    /// Keeps message `seq`'s time, for `MARKREAD` (and the read message's time, if it
    /// was not known).
    pub fn saw(&mut self, seq: u64, time: u64) {
        if seq == self.read.0 && self.read.1.is_none() {
            self.read.1 = Some(time);
        }
        self.times.insert(seq, time);
        if self.times.len() > MAX_TIMES {
            self.times.pop_first();
        }
    }

    /// The newest message shown at or before `time`: its seq and time.
    pub fn read_at(&self, time: u64) -> Option<(u64, u64)> {
        self.times
            .iter()
            .rev()
            .find(|(_, at)| **at <= time)
            .map(|(seq, at)| (*seq, *at))
    }

    /// Moves the marker forward to `time` (never back): to the newest message shown at or
    /// before it. Returns that message's seq if it is newer than the one read (a `read`
    /// to send).
    pub fn mark(&mut self, time: u64) -> Option<u64> {
        if self.read.1.is_none_or(|known| time > known) {
            self.read.1 = Some(time);
        }
        let (seq, _) = self.read_at(time)?;
        (seq > self.read.0).then(|| {
            self.read.0 = seq;
            seq
        })
    }
}

impl Channel {
    /// `name`'s role here.
    pub fn role_of(&self, name: &str) -> Role {
        self.roles.get(&fold(name)).copied().unwrap_or(Role::Member)
    }
}

impl Shared {
    /// What a new connection to the server named `server` shares.
    pub fn new(server: Arc<str>) -> Self {
        Self {
            server,
            caps: AtomicU32::new(0),
            view: Mutex::new(View::default()),
        }
    }

    /// The capabilities agreed so far.
    pub fn caps(&self) -> u32 {
        self.caps.load(Ordering::Acquire)
    }

    fn set_caps(&self, caps: u32) {
        self.caps.store(caps, Ordering::Release);
    }

    /// What the connection knows, locked.
    pub fn view(&self) -> MutexGuard<'_, View> {
        // Nothing leaves the view half-changed.
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
