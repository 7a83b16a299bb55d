//! The tail: one connection blocked in `XREAD` on the streams of the rooms this node has in
//! memory and on the stream of direct messages; what it reads goes to the hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_channel::Sender;
use chat_shared::Frame;
use event_listener::Event as Notify;
use futures_lite::future;
use redis::Value;

use crate::hub::command::{Command, DirectMessage, News};
use crate::log::redis::{self as store, Entry, RedisLog, entry_of, frames_of, key};
use crate::log::{Event, LogError, Seq, Tailed};

use super::backoff::Backoff;

/// The most events one read of the tail takes from each stream.
const TAIL_COUNT: usize = 1000;

/// How long the tail's read blocks before it asks again (it is woken at once when the
/// streams it follows change).
const TAIL_BLOCK_MS: u64 = 5000;

/// The streams the tail follows, each with the newest seq the hub has of it.
#[derive(Debug, Default)]
pub(super) struct Following {
    pub(super) streams: Mutex<HashMap<Arc<str>, Seq>>,
    pub(super) changed: Notify,
}

/// Reads the followed rooms' streams and the direct messages, and hands what it reads to
/// the hub. A change of what is followed wakes the blocked read (`CLIENT UNBLOCK` from
/// the command connection).
pub(super) async fn tail(log: Arc<RedisLog>, following: Arc<Following>, hub: Sender<Command>) {
    // Where the direct messages were read up to: a new connection resumes there.
    let (mut direct_after, mut backoff) = (None, Backoff::new());
    loop {
        let started = Instant::now();
        let result = tail_once(&log, &following, &hub, &mut direct_after).await;
        backoff.wait("tail", started, result).await;
    }
}

async fn tail_once(
    log: &RedisLog,
    following: &Following,
    hub: &Sender<Command>,
    direct_after: &mut Option<String>,
) -> Result<(), LogError> {
    // The read blocks until something comes (or TAIL_BLOCK_MS).
    let mut conn = log.blocking_connection().await?;
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await?;
    let direct_key = key("direct");
    if direct_after.is_none() {
        // From now on: direct messages already recorded reach their readers by `history`.
        *direct_after = Some(store::stream_end(&mut conn, &direct_key).await?);
    }
    loop {
        let listener = following.changed.listen();
        let streams: Vec<(Arc<str>, Seq)> = following
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, seq)| (key.clone(), *seq))
            .collect();
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(TAIL_COUNT)
            .arg("BLOCK")
            .arg(TAIL_BLOCK_MS)
            .arg("STREAMS")
            .arg(&direct_key);
        for (key, _) in &streams {
            read.arg(store::stream_key(key));
        }
        read.arg(direct_after.as_deref().unwrap_or("0-0"));
        for (_, seq) in &streams {
            read.arg(format!("{seq}-1"));
        }
        let mut waker = log.connection();
        let reply: Value = future::or(read.query_async(&mut conn), async {
            listener.await;
            // Wake the read so that it starts again with the new streams; its (empty)
            // answer comes back on its own connection.
            let _: Result<i64, _> = redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(id)
                .query_async(&mut waker)
                .await;
            future::pending().await
        })
        .await?;
        // The positions move past what was read only once the hub has it: if Redis goes
        // away before the frames are read, the next connection reads the same again.
        let (rooms, direct, direct_last) = sort_reply(&reply, &direct_key, following);
        let newest: Vec<(Arc<str>, Seq)> = rooms
            .iter()
            .filter_map(|(key, entries)| Some((key.clone(), entries.last()?.seq)))
            .collect();
        let (rooms, direct) = with_frames(&mut conn, rooms, direct).await?;
        if !direct.is_empty() {
            News::Direct(direct).send_to(hub).await;
        }
        for (key, events) in rooms {
            News::Tailed { key, events }.send_to(hub).await;
        }
        if direct_last.is_some() {
            *direct_after = direct_last;
        }
        following.read_up_to(newest);
    }
}

/// A direct event as its delivery stream names it: sender, recipient (case-folded), and
/// where its frame is (its conversation's stream and seq), unless the entry holds it.
struct DirectEntry {
    from: String,
    to: String,
    frame: Option<Frame>,
    stream: String,
    seq: Seq,
}

/// What one read of the tail brought, with the frames its entries do not hold read from
/// `fr:<stream>` in one round trip; an event whose frame is nowhere is left out.
async fn with_frames(
    conn: &mut impl redis::aio::ConnectionLike,
    rooms: Vec<(Arc<str>, Vec<Entry>)>,
    direct: Vec<DirectEntry>,
) -> Result<(Vec<(Arc<str>, Tailed)>, Vec<DirectMessage>), LogError> {
    let mut wanted: Vec<(&str, Vec<Seq>)> = rooms
        .iter()
        .map(|(key, entries)| {
            let missing = entries.iter().filter(|e| e.frame.is_none()).map(|e| e.seq);
            (&**key, missing.collect())
        })
        .collect();
    wanted.extend(direct.iter().map(|d| {
        (
            d.stream.as_str(),
            d.frame.is_none().then_some(d.seq).into_iter().collect(),
        )
    }));
    let mut found = frames_of(conn, &wanted).await?.into_iter();
    let rooms = rooms
        .into_iter()
        .map(|(key, entries)| {
            let mut frames = found.next().unwrap_or_default().into_iter();
            let events = entries
                .into_iter()
                .filter_map(|entry| {
                    let frame = entry.frame.or_else(|| frames.next().flatten())?;
                    Some((
                        Event {
                            seq: entry.seq,
                            frame,
                        },
                        entry.note,
                    ))
                })
                .collect();
            (key, events)
        })
        .collect();
    let direct = direct
        .into_iter()
        .filter_map(|d| {
            let mut frames = found.next().unwrap_or_default().into_iter();
            let frame = d.frame.or_else(|| frames.next().flatten())?;
            Some((d.from, d.to, frame))
        })
        .collect();
    Ok((rooms, direct))
}

impl Following {
    /// The hub has these rooms' events up to these seqs: the next read starts after them
    /// (for the rooms still followed; a room followed again since starts where its load
    /// said, if that is later).
    fn read_up_to(&self, newest: Vec<(Arc<str>, Seq)>) {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, newest) in newest {
            if let Some(seq) = streams.get_mut(&key) {
                *seq = (*seq).max(newest);
            }
        }
    }
}

/// The entries of each room and the direct events one read of the tail brought, with the
/// id of the last direct entry read.
type Sorted = (
    Vec<(Arc<str>, Vec<Entry>)>,
    Vec<DirectEntry>,
    Option<String>,
);

/// What one read of the tail brought: the entries of each room still followed, and the
/// direct events. Positions do not move here (see [`Following::read_up_to`]).
fn sort_reply(reply: &Value, direct_key: &str, following: &Following) -> Sorted {
    let (mut rooms, mut direct, mut direct_last) = (Vec::new(), Vec::new(), None);
    let Value::Array(per_stream) = reply else {
        return (rooms, direct, direct_last);
    };
    let prefix = format!("{}s:", store::PREFIX);
    for stream in per_stream {
        let Value::Array(parts) = stream else {
            continue;
        };
        let [name, Value::Array(entries)] = parts.as_slice() else {
            continue;
        };
        let Some(name) = store::text(name) else {
            continue;
        };
        if name == direct_key {
            for entry in entries {
                if let Some((id, message)) = direct_entry(entry) {
                    direct_last = Some(id);
                    direct.extend(message);
                }
            }
            continue;
        }
        let Some(room) = name.strip_prefix(&prefix) else {
            continue;
        };
        let events: Vec<Entry> = entries.iter().filter_map(entry_of).collect();
        if events.is_empty() {
            continue;
        }
        // Still followed: the hub wants these.
        let key = following
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_key_value(room)
            .map(|(key, _)| key.clone());
        if let Some(key) = key {
            rooms.push((key, events));
        }
    }
    (rooms, direct, direct_last)
}

/// An entry of the direct events' stream: its id and the event.
fn direct_entry(entry: &Value) -> Option<(String, Option<DirectEntry>)> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let id = store::text(id)?;
    let (mut frame, mut from, mut to, mut stream, mut seq) = (None, None, None, None, None);
    for pair in fields.chunks(2) {
        let [field, value] = pair else { continue };
        match store::bytes(field) {
            Some(b"f") => frame = store::bytes(value).map(Frame::from_encoded),
            Some(b"a") => from = store::text(value),
            Some(b"b") => to = store::text(value),
            Some(b"k") => stream = store::text(value),
            Some(b"s") => seq = store::text(value).and_then(|s| s.parse().ok()),
            _ => {}
        }
    }
    let event = match (from, to) {
        (Some(from), Some(to)) => Some(DirectEntry {
            from,
            to,
            frame,
            stream: stream.unwrap_or_default(),
            seq: seq.unwrap_or(0),
        }),
        _ => None,
    };
    Some((id, event))
}
