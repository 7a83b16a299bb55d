//! `server export` and `server import`: the whole of a chat's durable state as NDJSON, one
//! [`Record`] a line, the same whichever log held it. It is how a chat moves between the
//! embedded store and a cluster's Redis, and between versions whose store formats differ.
//!
//! What a line holds is the log's own content, not what a client is told: each event's
//! frame exactly as members received it (byte for byte, so the moved history is the same
//! history), each stream's newest seq (seqs go on where they were, even where retention
//! deleted the oldest events), the epoch, account password hashes (never passwords), a
//! room's state, the direct conversations, read markers and the ids of recent posts (so
//! that an outbox re-sent after the move is not posted twice). Who is online is not
//! state: nobody is, after an import.
//!
//! The first line is the header ([`Record::ChatExport`]); then accounts, server bans, each
//! stream followed by its events in seq order, conversations, posts (each poster's oldest
//! first) and read markers. An import reads it into an empty store or an empty Redis and
//! checks it as it goes: a line that is not a record, an event of a stream not declared
//! before it, or seqs out of order stop it with the line's number, and nothing is kept.

pub mod file_store;
pub mod redis_store;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use chat_shared::{Frame, ServerFrame};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Seq;
use super::amend::Aside;

/// The version of the format a header names; an import refuses any other.
pub const VERSION: u32 = 1;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// The first line: the format's version and the epoch every seq counts in.
    ChatExport {
        /// [`VERSION`].
        version: u32,
        /// The epoch.
        epoch: String,
    },
    /// An account.
    Account {
        /// Its case-folded name.
        key: String,
        /// Its name as registered.
        name: String,
        /// Its password hash as the server keeps it (PHC, perhaps marked temporary).
        hash: String,
    },
    /// A server ban.
    ServerBan {
        /// `name:<case-folded>` or `ip:<address>`.
        key: String,
        /// What the ban holds.
        value: String,
    },
    /// A room or a direct conversation; its events follow it.
    Stream {
        /// Its key (a room's case-folded name; `dm\n<a>\n<b>` for a conversation).
        key: String,
        /// A room's name as first spelled; none for a conversation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Its newest seq.
        newest: Seq,
        /// A room's state, field by field.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        state: BTreeMap<String, String>,
    },
    /// An event of the stream declared last.
    Event {
        /// Its seq.
        seq: Seq,
        /// Its frame as stored: the JSON object members got.
        frame: Box<RawValue>,
        /// What the log keeps beside a message (reactions beyond the names it lists, the
        /// seqs of its edits).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aside: Option<Aside>,
    },
    /// One side of a direct conversation, as `owner`'s list of conversations shows it.
    Conversation {
        /// The account whose list it is in (case-folded).
        owner: String,
        /// The other account (case-folded).
        with: String,
        /// The other account as spelled.
        name: String,
        /// Its newest message's seq.
        seq: Seq,
        /// Its newest message's time.
        time: u64,
    },
    /// A recent post's id, remembered for its poster (oldest first).
    Post {
        /// The poster (case-folded).
        poster: String,
        /// The id.
        id: String,
        /// Its stream.
        stream: String,
        /// Its seq.
        seq: Seq,
    },
    /// An account's read marker.
    Read {
        /// The account (case-folded).
        account: String,
        /// The stream.
        stream: String,
        /// The newest seq it has seen there.
        seq: Seq,
    },
}

impl Record {
    /// An event's record from its stored frame.
    pub fn event(seq: Seq, frame: &[u8], aside: Option<Aside>) -> Result<Self, ArchiveError> {
        let text = std::str::from_utf8(frame.trim_ascii_end())
            .map_err(|_| ArchiveError::Source(format!("event {seq}: its frame is not UTF-8")))?;
        let frame = RawValue::from_string(text.to_string())
            .map_err(|err| ArchiveError::Source(format!("event {seq}: its frame: {err}")))?;
        Ok(Record::Event { seq, frame, aside })
    }
}

/// How much an export or an import moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Accounts.
    pub accounts: u64,
    /// Rooms and direct conversations.
    pub streams: u64,
    /// Events.
    pub events: u64,
    /// Every other line (bans, conversations, posts, read markers).
    pub other: u64,
}

impl Counts {
    /// Counts a record.
    pub fn add(&mut self, record: &Record) {
        match record {
            Record::ChatExport { .. } => {}
            Record::Account { .. } => self.accounts += 1,
            Record::Stream { .. } => self.streams += 1,
            Record::Event { .. } => self.events += 1,
            _ => self.other += 1,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} accounts, {} rooms and conversations, {} events, {} other records",
            self.accounts, self.streams, self.events, self.other
        )
    }
}

/// Why an export or an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the log or writing the export failed.
    #[error("{0}")]
    Source(String),
    /// A line of the import is not what it must be.
    #[error("line {line}: {why}")]
    Line {
        /// Its number, from 1.
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// The place to import into holds a chat already.
    #[error("{0}")]
    NotEmpty(String),
}

impl From<super::LogError> for ArchiveError {
    fn from(err: super::LogError) -> Self {
        ArchiveError::Source(err.to_string())
    }
}

/// Writes records as lines.
pub struct Writer<W: Write> {
    out: W,
    counts: Counts,
}

impl<W: Write> Writer<W> {
    /// Writes to `out`, starting with the header.
    pub fn new(out: W, epoch: &str) -> Result<Self, ArchiveError> {
        let mut writer = Self {
            out,
            counts: Counts::default(),
        };
        writer.put(&Record::ChatExport {
            version: VERSION,
            epoch: epoch.to_string(),
        })?;
        Ok(writer)
    }

    /// Writes one record.
    pub fn put(&mut self, record: &Record) -> Result<(), ArchiveError> {
        let fail = |err: std::io::Error| ArchiveError::Source(format!("writing the export: {err}"));
        serde_json::to_writer(&mut self.out, record)
            .map_err(|err| fail(std::io::Error::other(err)))?;
        self.out.write_all(b"\n").map_err(fail)?;
        self.counts.add(record);
        Ok(())
    }

    /// Flushes what was written; says how much.
    pub fn finish(mut self) -> Result<Counts, ArchiveError> {
        self.out
            .flush()
            .map_err(|err| ArchiveError::Source(format!("writing the export: {err}")))?;
        Ok(self.counts)
    }
}

/// Where an import stands: the checks every line goes through, whatever the log.
#[derive(Debug, Default)]
pub struct Checked {
    /// The current stream (the one declared last) and the last seq seen in it.
    current: Option<(String, Seq, Seq)>,
    /// The line being read.
    line: u64,
    /// Whether the header was read.
    started: bool,
    /// What was read so far.
    pub counts: Counts,
}

/// A record of an import as it is to be written, the stream of an event resolved.
#[derive(Debug)]
pub enum Item {
    /// The header's epoch (the first item).
    Epoch(String),
    /// Anything but an event.
    Plain(Record),
    /// An event of `stream`.
    Event {
        /// Its stream.
        stream: String,
        /// Its seq.
        seq: Seq,
        /// Its frame as stored (with its newline).
        frame: Frame,
        /// What is kept beside it.
        aside: Option<Aside>,
    },
}

/// Reads an export: its header's epoch, then each record, checked, as [`Item`]s to `each`.
pub fn read(
    input: impl BufRead,
    mut each: impl FnMut(Item) -> Result<(), ArchiveError>,
) -> Result<Counts, ArchiveError> {
    let mut checked = Checked::default();
    for line in input.lines() {
        checked.line += 1;
        let at = checked.line;
        let fail = |why: String| ArchiveError::Line { line: at, why };
        let line = line.map_err(|err| fail(format!("cannot be read: {err}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(&line).map_err(|err| fail(format!("not a record: {err}")))?;
        match (checked.started, &record) {
            (false, Record::ChatExport { version, epoch }) => {
                if *version != VERSION {
                    return Err(fail(format!(
                        "format version {version}; this server reads version {VERSION}"
                    )));
                }
                if epoch.is_empty() {
                    return Err(fail("the epoch is empty".into()));
                }
                checked.started = true;
                each(Item::Epoch(epoch.clone()))?;
                continue;
            }
            (false, _) => {
                return Err(fail(
                    "not the header of a chat export ({\"chat_export\": …})".into(),
                ));
            }
            (_, Record::ChatExport { .. }) => return Err(fail("a second header".into())),
            _ => {}
        }
        checked.counts.add(&record);
        let item = checked.item(record).map_err(fail)?;
        each(item)?;
    }
    if !checked.started {
        return Err(ArchiveError::Line {
            line: 1,
            why: "the export is empty".into(),
        });
    }
    Ok(checked.counts)
}

impl Checked {
    /// Checks a record against what came before it.
    fn item(&mut self, record: Record) -> Result<Item, String> {
        match record {
            Record::Stream {
                ref key,
                ref room,
                newest,
                ..
            } => {
                if key.is_empty() {
                    return Err("a stream without a key".into());
                }
                if room.is_none() != super::StreamId::parties_of(key).is_some() {
                    return Err(format!(
                        "stream {key:?}: a room needs its name, a conversation has none"
                    ));
                }
                self.current = Some((key.clone(), 0, newest));
                Ok(Item::Plain(record))
            }
            Record::Event { seq, frame, aside } => {
                let Some((stream, last, newest)) = &mut self.current else {
                    return Err("an event before any stream".into());
                };
                if seq <= *last || seq > *newest {
                    return Err(format!(
                        "event {seq} of {stream:?}: after {last}, it must be above it and at most the stream's newest, {newest}"
                    ));
                }
                let said = chat_shared::decode_line::<ServerFrame>(frame.get().as_bytes())
                    .map_err(|err| format!("event {seq}: not an event: {err}"))?;
                if said.seq() != Some(seq) {
                    return Err(format!("event {seq}: its frame says seq {:?}", said.seq()));
                }
                *last = seq;
                let mut bytes = frame.get().as_bytes().to_vec();
                bytes.push(b'\n');
                Ok(Item::Event {
                    stream: stream.clone(),
                    seq,
                    frame: Frame::from_encoded(&bytes),
                    aside,
                })
            }
            record => Ok(Item::Plain(record)),
        }
    }
}
