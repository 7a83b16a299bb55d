//! What a fan-out client does once logged in: read raw lines until told to stop, and count
//! each post it gets (once, or twice) with its latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use chat_shared::{FrameReader, Reader, ServerFrame};
use futures_lite::{AsyncReadExt, future};
use hdrhistogram::Histogram;
use memchr::memmem;

use crate::measure::histogram;
use crate::{EPOCH_UNIX_NS, now_ns};

/// The latencies every receiving client records into: one set for the whole load
/// generator, locked once per read, so that recording stays in cache (a set per client
/// made the load generator miss it on nearly every delivery).
pub(crate) struct Latencies {
    pub(crate) latency: Histogram<u64>,
    /// From the post's send time to the server's `time` on it (when the room took it).
    pub(crate) to_room: Histogram<u64>,
    /// From the server's `time` to the delivery.
    pub(crate) from_room: Histogram<u64>,
}

impl Latencies {
    pub(crate) fn new() -> Self {
        Self {
            latency: histogram(),
            to_room: histogram(),
            from_room: histogram(),
        }
    }
}

/// With `fanout --edits`: each sender's newest message seq, by sender (the post number
/// modulo the senders), as any reader sees it; a sender edits that one.
pub(crate) static NEWEST_OF: OnceLock<Vec<AtomicU64>> = OnceLock::new();

/// Notes the seq of a sender's message (`fields`: a `message`'s fields before its text).
fn note_newest(post: u64, fields: &[u8]) {
    static SEQ: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("\"seq\":"));
    let Some(newest) = NEWEST_OF.get().filter(|all| !all.is_empty()) else {
        return;
    };
    let Some(at) = SEQ.find(fields) else {
        return;
    };
    if let Some((seq, _)) = leading_number(&fields[at + SEQ.needle().len()..]) {
        let sender = (post % newest.len() as u64) as usize;
        newest[sender].fetch_max(seq, Ordering::Relaxed);
    }
}

/// What each receiving client counted.
pub(crate) struct Received {
    pub(crate) seen: Vec<u64>,
    pub(crate) unique: u64,
    pub(crate) duplicates: u64,
    pub(crate) rate_limited: u64,
}

impl Received {
    pub(crate) fn new() -> Self {
        Self {
            seen: Vec::new(),
            unique: 0,
            duplicates: 0,
            rate_limited: 0,
        }
    }

    /// A `message` whose text starts with `p<post> <sent> ` (see [`scan_line`]).
    fn message(
        &mut self,
        latencies: &mut Latencies,
        post: u64,
        sent: u64,
        fields: &[u8],
        now: u64,
    ) {
        let post = post as usize;
        let (word, bit) = (post / 64, post % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        let _ = latencies
            .latency
            .record(now.saturating_sub(sent).max(1_000));
        // One post in eight is split in two at the server's stamp: plenty for percentiles,
        // and it keeps the load generator's own work small.
        if !post.is_multiple_of(8) {
            return;
        }
        if let (Some(time), Some(epoch)) = (server_time(fields), EPOCH_UNIX_NS.get()) {
            // The server's clock counts whole milliseconds: each part is ±1 ms.
            let time = (time * 1_000_000).saturating_sub(*epoch);
            let _ = latencies
                .to_room
                .record(time.saturating_sub(sent).max(1_000));
            let _ = latencies
                .from_room
                .record(now.saturating_sub(time).max(1_000));
        }
    }
}

/// The server's `time` (milliseconds) among a `message`'s fields.
fn server_time(fields: &[u8]) -> Option<u64> {
    static TIME: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("\"time\":"));
    let at = TIME.find(fields)? + TIME.needle().len();
    let (time, _) = leading_number(&fields[at..])?;
    Some(time)
}

/// The decimal number at the start of `bytes`, and what follows it.
fn leading_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    if end == 0 || end > 19 {
        return None;
    }
    let value = bytes[..end]
        .iter()
        .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
    Some((value, &bytes[end..]))
}

/// What a fan-out client does once logged in: read until told to stop, measuring.
///
/// The stream is read as raw lines: a `message` is known by its first bytes and only the
/// post number and send time at the start of its text are parsed; every line read at
/// once counts as arrived at that read. One core can then take in a million deliveries a
/// second, so the load generator measures the server instead of its own decoding.
pub(crate) async fn read_messages(
    reader: FrameReader<Reader, ServerFrame>,
    stopped: async_channel::Receiver<()>,
    delivered: Arc<AtomicU64>,
    latencies: Arc<Mutex<Latencies>>,
) -> Received {
    let (mut stream, mut buf) = reader.into_parts();
    let mut got = Received::new();
    let mut end = buf.len();
    buf.resize(end.max(READ_CHUNK) + READ_CHUNK, 0);
    loop {
        let now = now_ns();
        let mut lines = &buf[..end];
        let mut messages = 0;
        {
            let mut latencies = latencies.lock().expect("no reader panics");
            while let Some(at) = memchr::memchr(b'\n', lines) {
                match scan_line(&lines[..at]) {
                    Scanned::Message { post, sent, fields } => {
                        if fields.starts_with(b"{\"type\":\"message\"") {
                            note_newest(post, fields);
                        }
                        got.message(&mut latencies, post, sent, fields, now);
                        messages += 1;
                    }
                    Scanned::RateLimited => got.rate_limited += 1,
                    Scanned::Other => {}
                }
                lines = &lines[at + 1..];
            }
        }
        delivered.fetch_add(messages, Ordering::Relaxed);
        // Keep the partial line, and room for a long one (a `welcome` or `room` answer).
        let partial = lines.len();
        buf.copy_within(end - partial..end, 0);
        end = partial;
        if buf.len() - end < READ_CHUNK {
            buf.resize(buf.len() * 2, 0);
        }
        // A closed channel stops the readers: no timer per read, timers cost the reactor.
        let read = future::or(async { Some(stream.read(&mut buf[end..]).await) }, async {
            let _ = stopped.recv().await;
            None
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => end += n,
            _ => return got,
        }
    }
}

/// Bytes a fan-out client reads at once, at least.
const READ_CHUNK: usize = 16 * 1024;

/// What a line from the server is, as far as the load generator cares.
enum Scanned<'a> {
    /// A `message` whose text starts `p<post> <sent> `, and the fields before its text
    /// (where the server's `time` is).
    Message {
        post: u64,
        sent: u64,
        fields: &'a [u8],
    },
    /// An `error` `rate_limited`.
    RateLimited,
    Other,
}

fn scan_line(line: &[u8]) -> Scanned<'_> {
    const MESSAGE: &[u8] = b"{\"type\":\"message\"";
    // An edit (`fanout --edits`) carries its text as a post does, and counts as one.
    const EDITED: &[u8] = b"{\"type\":\"edited\"";
    const ERROR: &[u8] = b"{\"type\":\"error\"";
    static TEXT: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("\"text\":\"p"));
    static RATE_LIMITED: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("\"rate_limited\""));
    if line.starts_with(MESSAGE) || line.starts_with(EDITED) {
        // "p<post> <sent> ...": digits, a space, digits, a space; no escapes in there.
        let Some(at) = TEXT.find(line) else {
            return Scanned::Other;
        };
        let text = &line[at + TEXT.needle().len()..];
        let Some((post, rest)) = leading_number(text) else {
            return Scanned::Other;
        };
        let Some((sent, _)) = rest.strip_prefix(b" ").and_then(leading_number) else {
            return Scanned::Other;
        };
        return Scanned::Message {
            post,
            sent,
            fields: &line[..at],
        };
    }
    if line.starts_with(ERROR) && RATE_LIMITED.find(line).is_some() {
        return Scanned::RateLimited;
    }
    Scanned::Other
}
