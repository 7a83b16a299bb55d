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

/// The streams the tail follows, each with where its next read starts.
#[derive(Debug, Default)]
pub(super) struct Following {
    streams: Mutex<Streams>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Streams {
    at: HashMap<Arc<str>, Position>,
    /// How many times a stream was followed (again): each time is a turn of its own.
    turns: u64,
}

/// Where the tail is in a stream: the newest seq the hub has of it, in the turn it was
/// followed in. A read that started in an earlier turn neither moves it nor is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    seq: Seq,
    turn: u64,
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
        // Iterated twice, unchanged: the keys and their ids go in the same order.
        let streams = following.positions();
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(TAIL_COUNT)
            .arg("BLOCK")
            .arg(TAIL_BLOCK_MS)
            .arg("STREAMS")
            .arg(&direct_key);
        for key in streams.keys() {
            read.arg(store::stream_key(key));
        }
        read.arg(direct_after.as_deref().unwrap_or("0-0"));
        for at in streams.values() {
            read.arg(format!("{}-1", at.seq));
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
        let (rooms, direct, direct_last) = sort_reply(&reply, &direct_key, following, &streams);
        let newest: Vec<(Arc<str>, Position)> = rooms
            .iter()
            .filter_map(|(key, entries)| {
                let (seq, turn) = (entries.last()?.seq, streams.get(key)?.turn);
                Some((key.clone(), Position { seq, turn }))
            })
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
    /// Follows a stream after `seq`: from now on a turn of its own.
    pub(super) fn follow(&self, key: &Arc<str>, seq: Seq) {
        {
            let mut streams = self.lock();
            streams.turns += 1;
            let turn = streams.turns;
            streams.at.insert(key.clone(), Position { seq, turn });
        }
        self.changed.notify(usize::MAX);
    }

    /// Stops following a stream.
    pub(super) fn unfollow(&self, key: &str) {
        if self.lock().at.remove(key).is_some() {
            self.changed.notify(usize::MAX);
        }
    }

    /// Where each followed stream's next read starts.
    fn positions(&self) -> HashMap<Arc<str>, Position> {
        self.lock().at.clone()
    }

    /// The key of a stream still followed in the turn a read started in.
    fn still(&self, stream: &str, turn: u64) -> Option<Arc<str>> {
        let streams = self.lock();
        let (key, at) = streams.at.get_key_value(stream)?;
        (at.turn == turn).then(|| key.clone())
    }

    /// The hub has these streams' events up to these seqs: the next read starts after
    /// them (for the streams still followed in the same turn; one followed again since
    /// starts where that said).
    fn read_up_to(&self, newest: Vec<(Arc<str>, Position)>) {
        let mut streams = self.lock();
        for (key, read) in newest {
            if let Some(at) = streams.at.get_mut(&key)
                && at.turn == read.turn
            {
                at.seq = at.seq.max(read.seq);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The entries of each room and the direct events one read of the tail brought, with the
/// id of the last direct entry read.
type Sorted = (
    Vec<(Arc<str>, Vec<Entry>)>,
    Vec<DirectEntry>,
    Option<String>,
);

/// What one read of the tail brought: the entries of each room still followed in the turn
/// the read started in (`read`), and the direct events. Positions do not move here (see
/// [`Following::read_up_to`]).
fn sort_reply(
    reply: &Value,
    direct_key: &str,
    following: &Following,
    read: &HashMap<Arc<str>, Position>,
) -> Sorted {
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
        // Still followed from where this read started: the hub wants these.
        let key = read.get(room).and_then(|at| following.still(room, at.turn));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(following: &Following) -> Position {
        following.positions()["r"]
    }

    /// The hub has room `r` up to `seq`, read in `turn`.
    fn read(following: &Following, seq: Seq, turn: u64) {
        following.read_up_to(vec![("r".into(), Position { seq, turn })]);
    }

    #[test]
    fn a_room_followed_again_is_read_from_there_whatever_reads_were_under_way() {
        let following = Following::default();
        following.follow(&"r".into(), 10);
        let first = at(&following).turn;
        read(&following, 20, first);
        assert_eq!(at(&following).seq, 20);
        // The hub follows it again from 12 (a hole after 12) while a read that started
        // before is under way: that read's events are left out and do not move it.
        following.follow(&"r".into(), 12);
        assert_eq!(following.still("r", first), None);
        read(&following, 30, first);
        assert_eq!(at(&following).seq, 12);
        // A read of the new turn is taken, and moves it.
        let second = at(&following).turn;
        assert_eq!(following.still("r", second).as_deref(), Some("r"));
        read(&following, 15, second);
        assert_eq!(at(&following).seq, 15);
        // Once not followed, a read brings nothing back.
        following.unfollow("r");
        read(&following, 16, second);
        assert!(following.positions().is_empty());
        assert_eq!(following.still("r", second), None);
    }
}
