//! A cluster node's feed of its search index: every node's recorded events, read from the
//! `feed` stream of the shared Redis (see `cluster.lua`) on a connection of its own, in the
//! order the nodes appended them. It starts from the stream's end as it is when the node
//! starts ([`end`]): what came before is in Redis's streams, where the indexer catches up
//! from.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::Value;

use super::indexer::Feed;
use crate::log::redis::{self as store, RedisLog, frames_of, key};
use crate::log::{Event, LogError, Seq, StreamId};

/// Entries read at a time.
const COUNT: usize = 1000;
/// How long a read waits for entries before it looks at the stop flag.
const BLOCK_MS: u64 = 500;

/// Where the feed ends now: its newest entry's id. Taken before the indexer catches up,
/// so that an event is either in a stream when the indexer reads it, or after this.
pub(super) fn end(log: &RedisLog) -> Result<String, LogError> {
    smol::block_on(store::stream_end(&mut log.connection(), &key("feed")))
}

/// Reads the feed after `after` into `feed` until `stop`; a failed read is tried again
/// after a second.
pub(super) fn run(log: &Arc<RedisLog>, after: String, feed: &Feed, stop: &AtomicBool) {
    let mut after = after;
    while !stop.load(Ordering::Acquire) {
        if let Err(err) = smol::block_on(follow(log, feed, stop, &mut after)) {
            tracing::warn!(%err, "the search index cannot read the cluster's feed; trying again");
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

async fn follow(
    log: &RedisLog,
    feed: &Feed,
    stop: &AtomicBool,
    after: &mut String,
) -> Result<(), LogError> {
    let mut conn = log.blocking_connection().await?;
    let stream = key("feed");
    while !stop.load(Ordering::Acquire) {
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(&stream)
            .arg(after.as_str())
            .query_async(&mut conn)
            .await?;
        let read: Vec<(String, String, Seq)> = match &reply {
            Value::Array(per_stream) => per_stream
                .iter()
                .filter_map(|s| match s {
                    Value::Array(parts) => parts.get(1),
                    _ => None,
                })
                .flat_map(entries)
                .collect(),
            _ => Vec::new(),
        };
        let Some(last) = read.last().map(|e| e.0.clone()) else {
            continue;
        };
        // The frames, one pipelined read per stream.
        let mut seqs: HashMap<&str, Vec<Seq>> = HashMap::new();
        for (_, stream, seq) in &read {
            seqs.entry(stream.as_str()).or_default().push(*seq);
        }
        let wanted: Vec<(&str, Vec<Seq>)> = seqs.into_iter().collect();
        let frames = frames_of(&mut conn, &wanted).await?;
        let mut found: HashMap<(&str, Seq), chat_shared::Frame> = HashMap::new();
        for ((stream, seqs), frames) in wanted.iter().zip(frames) {
            for (seq, frame) in seqs.iter().zip(frames) {
                if let Some(frame) = frame {
                    found.insert((stream, *seq), frame);
                }
            }
        }
        let events = read
            .iter()
            .filter_map(|(_, stream, seq)| {
                let frame = found.remove(&(stream.as_str(), *seq))?;
                Some((StreamId::new(stream), Event { seq: *seq, frame }))
            })
            .collect();
        feed.send(events);
        *after = last;
    }
    Ok(())
}

/// The entries of an `XRANGE`-like reply: id, stream and seq.
fn entries(reply: &Value) -> Vec<(String, String, Seq)> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else {
                return None;
            };
            let [id, Value::Array(fields)] = parts.as_slice() else {
                return None;
            };
            let (mut stream, mut seq) = (None, None);
            for pair in fields.chunks(2) {
                let [field, value] = pair else { continue };
                match store::bytes(field) {
                    Some(b"k") => stream = store::text(value),
                    Some(b"s") => seq = store::text(value).and_then(|s| s.parse().ok()),
                    _ => {}
                }
            }
            Some((store::text(id)?, stream?, seq?))
        })
        .collect()
}
