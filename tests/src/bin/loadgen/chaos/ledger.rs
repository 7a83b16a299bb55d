//! What the chaos clients saw, gathered from all of them: every recorded event as first
//! received (each later copy must be the same), every post whose echo came back, and the
//! broken promises, counted with the first few examples.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chat_shared::ServerFrame;
use serde::Serialize;
use serde_json::Value;

/// A room or a direct conversation (its two accounts in order): what `seq` counts in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub(crate) enum Stream {
    Room(String),
    Direct(String, String),
}

impl Stream {
    /// The stream of a recorded event as `me` received it.
    pub(crate) fn of(frame: &ServerFrame, me: &str) -> Option<Self> {
        if let Some(with) = frame.with() {
            return Some(Self::direct(me, with));
        }
        frame.room().map(|room| Self::Room(room.to_owned()))
    }

    pub(crate) fn direct(a: &str, b: &str) -> Self {
        if a <= b {
            Self::Direct(a.to_owned(), b.to_owned())
        } else {
            Self::Direct(b.to_owned(), a.to_owned())
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Room(room) => write!(f, "#{room}"),
            Self::Direct(a, b) => write!(f, "@{a}/@{b}"),
        }
    }
}

/// An event as first received.
pub(crate) struct Seen {
    /// The frame without what depends on who reads it or when ([`canonical`]).
    pub(crate) canon: Value,
    /// A message's text as it went out live (replay and history show it as it is now).
    pub(crate) live_text: Option<String>,
}

/// The kinds of broken promise the chaos run looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Breach {
    /// Two clients received different events at one seq.
    Differs,
    /// A client missed seqs of a stream it followed.
    Gap,
    /// A client received a seq of a stream twice.
    Repeat,
    /// A received event that `history` does not hold, or holds otherwise.
    NotInHistory,
    /// A message whose state in `history` is not what its edits, reactions and deletion
    /// make it.
    WrongState,
    /// `history` itself skips seqs.
    HistoryHole,
    /// A post whose echo came back is missing from `history`, or is there twice.
    AckedPost,
    /// The epoch changed although the store was kept.
    EpochChanged,
    /// An ordinary client was closed (flood, bad frame, queue) or refused unexpectedly.
    Closed,
    /// A misbehaving client was closed with another code than its misdeed's.
    WrongClosing,
    /// The server panicked, or exited with an error.
    ServerFailed,
    /// The history could not be read back to check it.
    Unchecked,
}

/// Every event received, by stream and seq.
pub(crate) type Received = HashMap<Stream, BTreeMap<u64, Seen>>;

/// A post acknowledged: its stream, its id and the seq of its echo.
pub(crate) type Acked = (Stream, String, u64);

#[derive(Default)]
struct Inner {
    events: Received,
    acked: Vec<Acked>,
    breaches: BTreeMap<Breach, u64>,
    examples: Vec<String>,
}

/// Shared by every client of a chaos run.
#[derive(Default)]
pub(crate) struct Ledger(Mutex<Inner>);

const EXAMPLES: usize = 30;

impl Ledger {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a broken promise, keeping the first few descriptions.
    pub(crate) fn breach(&self, kind: Breach, what: impl FnOnce() -> String) {
        let mut inner = self.inner();
        *inner.breaches.entry(kind).or_default() += 1;
        if inner.examples.len() < EXAMPLES {
            let text = format!("{kind:?}: {}", what());
            inner.examples.push(text);
        }
    }

    /// A recorded event as a client received it; `live` when it went out live (not in a
    /// replay or a `history` answer).
    pub(crate) fn saw(&self, stream: &Stream, seq: u64, frame: &ServerFrame, live: bool) {
        let canon = canonical(frame);
        let live_text = match frame {
            ServerFrame::Message { text, .. } if live => Some(text.clone()),
            _ => None,
        };
        let mut inner = self.inner();
        let events = inner.events.entry(stream.clone()).or_default();
        let mut differs = None;
        match events.get_mut(&seq) {
            None => {
                events.insert(seq, Seen { canon, live_text });
            }
            Some(seen) => {
                if seen.canon != canon
                    && !erased_since(&seen.canon, &canon)
                    && !erased_since(&canon, &seen.canon)
                {
                    differs = Some(format!("{stream} seq {seq}: {} then {}", seen.canon, canon));
                }
                match (&seen.live_text, live_text) {
                    (Some(first), Some(again)) if *first != again => {
                        differs =
                            Some(format!("{stream} seq {seq}: text {first:?} then {again:?}"));
                    }
                    (None, Some(text)) => seen.live_text = Some(text),
                    _ => {}
                }
            }
        }
        drop(inner);
        if let Some(what) = differs {
            self.breach(Breach::Differs, || what);
        }
    }

    /// The events some client received at seqs `from..=to` of a stream, briefly.
    pub(crate) fn seen_between(&self, stream: &Stream, from: u64, to: u64) -> String {
        let inner = self.inner();
        let Some(events) = inner.events.get(stream) else {
            return "nobody saw them".into();
        };
        let seen: Vec<String> = events
            .range(from..=to)
            .map(|(seq, seen)| {
                let field = |key: &str| seen.canon.get(key).and_then(Value::as_str).unwrap_or("");
                format!("{seq} {} {}{}", field("type"), field("name"), field("from"))
            })
            .collect();
        if seen.is_empty() {
            "nobody saw them".into()
        } else {
            seen.join(", ")
        }
    }

    /// A post's echo: the server acknowledged it at `seq`.
    pub(crate) fn acked(&self, stream: &Stream, id: &str, seq: u64) {
        self.inner()
            .acked
            .push((stream.clone(), id.to_owned(), seq));
    }

    /// Every stream some client saw, with what it saw, and the acknowledged posts.
    pub(crate) fn take(&self) -> (Received, Vec<Acked>) {
        let mut inner = self.inner();
        (
            std::mem::take(&mut inner.events),
            std::mem::take(&mut inner.acked),
        )
    }

    /// The broken promises by kind, and the first few of them described.
    pub(crate) fn breaches(&self) -> (BTreeMap<Breach, u64>, Vec<String>) {
        let inner = self.inner();
        (inner.breaches.clone(), inner.examples.clone())
    }
}

/// An event without what differs between readers and over time: the conversation's other
/// party (`with`), and a message's text, edit time, deletion and reactions (its state now,
/// checked against the events that changed it).
pub(crate) fn canonical(frame: &ServerFrame) -> Value {
    let mut value = serde_json::to_value(frame).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("with");
        if matches!(frame, ServerFrame::Message { .. }) {
            for field in ["text", "edited", "deleted", "reactions"] {
                map.remove(field);
            }
        }
    }
    value
}

/// Whether `later` is `first` with its text erased (an edit of a message deleted since).
pub(crate) fn erased_since(first: &Value, later: &Value) -> bool {
    let (Value::Object(first), Value::Object(later)) = (first, later) else {
        return false;
    };
    let text = |map: &serde_json::Map<String, Value>| {
        map.get("text").and_then(Value::as_str).map(str::to_owned)
    };
    if first.get("type").and_then(Value::as_str) != Some("edited")
        || text(later).is_some_and(|t| !t.is_empty())
    {
        return false;
    }
    let mut first = first.clone();
    let mut later = later.clone();
    first.remove("text");
    later.remove("text");
    first == later
}
