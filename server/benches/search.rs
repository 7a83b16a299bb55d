//! What search costs (`cargo bench -p chat-server --bench search -- [MESSAGES]`, default
//! 1,000,000): an index in a temporary directory (as beside a store) is fed that many
//! messages (50 rooms, 200 senders, 8 to 20 words each from a vocabulary of 20,000 with
//! Zipf-like frequencies) as fast as the indexer takes them, then searched 1,000 times with
//! a two-word query, a `from:` query and a word, and a prefix; then 40 more messages are
//! handed to it one at a time. Prints the indexing rate, the index's bytes per message,
//! each kind of query's latency percentiles, and how long a new message takes to be found.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_server::log::memory::MemoryLog;
use chat_server::log::{Event, StreamId};
use chat_server::search::service::Search;
use chat_server::search::{Place, Request, SearchIndex};
use chat_shared::search::Query;
use chat_shared::{Frame, ServerFrame};

const VOCABULARY: usize = 20_000;
const BATCH: usize = 1000;

fn word(n: usize) -> String {
    // Pronounceable, distinct words.
    let syllables = ["ka", "ro", "mi", "tu", "se", "la", "no", "vi", "da", "pe"];
    let mut n = n + 1;
    let mut word = String::new();
    while n > 0 {
        word.push_str(syllables[n % 10]);
        n /= 10;
    }
    word
}

/// A word index with Zipf-like frequencies: word k about as often as 1/k.
fn zipf(rng: &mut fastrand::Rng) -> usize {
    let x = rng.f64();
    ((VOCABULARY as f64).powf(x) as usize)
        .saturating_sub(1)
        .min(VOCABULARY - 1)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1000.0
}

/// Makes a query of one kind.
type MakeQuery<'a> = Box<dyn Fn(&mut fastrand::Rng) -> String + 'a>;

/// A search for `query` by a guest in no room.
fn ask(query: &str) -> Request {
    Request::by_guest(Query::parse(query).expect("a query"))
}

/// A message of `room{room}`, as the log hands it to the index.
fn posted(room: usize, seq: u64, time: u64, from: String, text: String) -> (StreamId, Event) {
    let name = format!("room{room}");
    let frame = Frame::encode(&ServerFrame::Message {
        room: Some(name.clone()),
        with: None,
        seq,
        time,
        from,
        text,
        id: None,
        me: false,
        deleted: false,
        reply_to: None,
        edited: None,
        reactions: Vec::new(),
    });
    (StreamId::new(&name), Event { seq, frame })
}

/// Runs 1,000 searches of each kind and prints their latency percentiles.
fn measure(index: &SearchIndex, words: &[String], rng: &mut fastrand::Rng) {
    let kinds: Vec<(&str, MakeQuery)> = vec![
        (
            "two words",
            Box::new(|rng| format!("{} {} ", words[zipf(rng)], words[zipf(rng)])),
        ),
        (
            "from: and a word",
            Box::new(|rng| format!("from:user{} {} ", rng.usize(0..200), words[zipf(rng)])),
        ),
        (
            "a prefix",
            Box::new(|rng| words[zipf(rng)].chars().take(4).collect()),
        ),
    ];
    for (kind, make) in kinds {
        let mut times = Vec::with_capacity(1000);
        let mut found = 0;
        for _ in 0..1000 {
            let request = ask(&make(rng));
            let at = Instant::now();
            let result = index.find(&request).expect("a search");
            times.push(at.elapsed());
            found += result.results.len();
        }
        times.sort();
        println!(
            "{kind}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({:.1} results a query)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
            found as f64 / 1000.0
        );
    }
}

/// How long a message takes to be findable: 40 messages, one at a time, each with a word of
/// its own, searched every 5 ms from when the index is handed it until it is found (while
/// the index holds the million before them).
fn freshness(
    index: &SearchIndex,
    feed: &chat_server::search::indexer::Feed,
    seqs: &mut [u64],
    time: u64,
) {
    let mut waits = Vec::with_capacity(40);
    for n in 0..40 {
        seqs[0] += 1;
        let seq = seqs[0];
        let word = format!("fresh{n}word");
        let at = Instant::now();
        feed.send(vec![posted(
            0,
            seq,
            time + n,
            "user0".into(),
            format!("just now {word}"),
        )]);
        let request = ask(&word);
        while index
            .find(&request)
            .map_or(true, |found| found.results.is_empty())
        {
            assert!(at.elapsed() < Duration::from_secs(60), "{word} never found");
            std::thread::sleep(Duration::from_millis(5));
        }
        waits.push(at.elapsed());
    }
    waits.sort();
    println!(
        "findable after: p50 {:.0} ms, max {:.0} ms (40 messages, one at a time)",
        percentile(&waits, 0.5),
        percentile(&waits, 1.0)
    );
}

fn main() {
    let messages: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("chat-search-bench-{}", std::process::id()));
    let search = Search::start(
        &Place::Dir(dir.clone()),
        Arc::new(MemoryLog::new("bench".into())),
    )
    .expect("an index");
    let index = search.index();
    let feed = search.feed();
    let words: Vec<String> = (0..VOCABULARY).map(word).collect();
    let mut rng = fastrand::Rng::with_seed(7);
    let started = Instant::now();
    let base_time = 1_764_000_000_000u64;
    let mut seqs = vec![0u64; 50];
    for first in (0..messages).step_by(BATCH) {
        let batch = (first..(first + BATCH).min(messages))
            .map(|n| {
                let room = n % 50;
                seqs[room] += 1;
                let length = 8 + rng.usize(0..13);
                let text: Vec<&str> = (0..length)
                    .map(|_| words[zipf(&mut rng)].as_str())
                    .collect();
                let seq = seqs[room];
                posted(
                    room,
                    seq,
                    base_time + n as u64 * 100,
                    format!("user{}", rng.usize(0..200)),
                    text.join(" "),
                )
            })
            .collect();
        feed.send(batch);
    }
    // The last message's words, searched until found: everything before it is in.
    let last_room = (messages - 1) % 50;
    let mut last = ask(&format!("in:room{last_room}"));
    // As the session does with `in:`: the room's stream.
    last.only = vec![StreamId::new(&format!("room{last_room}"))];
    loop {
        let found = index.find(&last).ok();
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the last message was not found in 30 minutes"
        );
        if found
            .and_then(|f| f.results.first().and_then(ServerFrame::seq))
            .is_some_and(|seq| seq == seqs[last_room])
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let bytes: u64 = std::fs::read_dir(dir.join("search"))
        .expect("the index")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "indexed {messages} messages in {:.1} s: {:.0} messages/s; index {} MB, {:.0} bytes/message",
        took.as_secs_f64(),
        messages as f64 / took.as_secs_f64(),
        bytes / 1_000_000,
        bytes as f64 / messages as f64
    );
    measure(&index, &words, &mut rng);
    freshness(&index, &feed, &mut seqs, base_time + messages as u64 * 100);
    drop(search);
    let _ = std::fs::remove_dir_all(&dir);
}
