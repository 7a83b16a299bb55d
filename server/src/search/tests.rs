//! The index on its own: fed committed events by hand, searched as the hub does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::search::Query;
use chat_shared::{Frame, ServerFrame};
use tantivy::Term;

use super::service::{Scratch, Search};
use super::{Place, Request, SearchError, SearchIndex};
use crate::log::memory::MemoryLog;
use crate::log::{Event, StreamId};

fn started() -> Search {
    Search::start(&Place::Memory, Arc::new(MemoryLog::new("epoch".into()))).expect("an index")
}

fn message(seq: u64, text: &str) -> Event {
    Event {
        seq,
        frame: Frame::encode(&ServerFrame::Message {
            room: Some("rust".into()),
            with: None,
            seq,
            time: 1_764_000_000_000 + seq,
            from: "bob".into(),
            text: text.into(),
            id: None,
            me: false,
            deleted: false,
            reply_to: None,
            edited: None,
            reactions: Vec::new(),
        }),
    }
}

fn deleted(seq: u64, target: u64) -> Event {
    Event {
        seq,
        frame: Frame::encode(&ServerFrame::Deleted {
            room: Some("rust".into()),
            with: None,
            seq,
            time: 1_764_000_000_000 + seq,
            by: "bob".into(),
            target,
        }),
    }
}

fn request(query: &str) -> Request {
    Request::by_guest(Query::parse(query).expect("a query"))
}

/// The seqs found, once the index shows `count` of them (or after five seconds).
fn found(index: &SearchIndex, query: &str, count: usize) -> Vec<u64> {
    let started = Instant::now();
    loop {
        let seqs: Vec<u64> = match index.find(&request(query)) {
            Ok(found) => found.results.iter().filter_map(ServerFrame::seq).collect(),
            Err(SearchError::Building(_)) => Vec::new(),
            Err(err) => panic!("{err}"),
        };
        if seqs.len() == count || started.elapsed() > Duration::from_secs(5) {
            return seqs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether any segment's files hold `word` as a term of the text, deleted or not.
fn files_hold(index: &SearchIndex, word: &str) -> bool {
    let term = Term::from_field_text(index.fields.text, word);
    let reader = index.index.reader().expect("a reader");
    reader.searcher().segment_readers().iter().any(|segment| {
        segment
            .inverted_index(index.fields.text)
            .and_then(|inverted| Ok(inverted.get_term_info(&term)?.is_some()))
            .expect("readable")
    })
}

#[test]
fn a_deleted_message_leaves_the_index_files() {
    let search = started();
    let index = search.index();
    let rust = StreamId::new("rust");
    search.feed().send(vec![
        (rust.clone(), message(1, "kept words")),
        (rust.clone(), message(2, "secret zanzibar")),
    ]);
    assert_eq!(found(&index, "zanzibar", 1), [2]);
    search.feed().send(vec![(rust.clone(), deleted(3, 2))]);
    assert_eq!(found(&index, "zanzibar", 0), Vec::<u64>::new());
    let started = Instant::now();
    while files_hold(&index, "zanzibar") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the deleted text is still in the index's files"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(files_hold(&index, "kept"), "the files are read as they are");
    assert_eq!(found(&index, "kept", 1), [1]);
}

#[test]
fn a_cursor_the_server_did_not_give_is_refused() {
    let search = started();
    let index = search.index();
    let rust = StreamId::new("rust");
    search.feed().send(vec![(rust.clone(), message(1, "once"))]);
    assert_eq!(found(&index, "once", 1), [1]);
    let bad = Request {
        cursor: Some("zz".into()),
        ..request("once")
    };
    assert!(matches!(index.find(&bad), Err(SearchError::BadCursor)));
}

#[test]
fn a_search_while_the_index_is_built_is_told_when_to_come_back() {
    let search = started();
    let index = search.index();
    // Caught up with the (empty) log first, so that nothing sets it ready again.
    let started = std::time::Instant::now();
    while matches!(
        index.find(&request("anything")),
        Err(SearchError::Building(_))
    ) {
        assert!(started.elapsed() < Duration::from_secs(10), "never ready");
        std::thread::yield_now();
    }
    index
        .ready
        .store(false, std::sync::atomic::Ordering::Release);
    assert!(matches!(
        index.find(&request("anything")),
        Err(SearchError::Building(wait)) if wait >= 1000
    ));
}

/// A message of the room rust recorded at `time`, to append to a log.
fn posted(text: &str, time: u64) -> crate::log::NewEvent {
    crate::log::NewEvent {
        stream: StreamId::new("rust"),
        room: "rust".into(),
        direct: None,
        time,
        body: crate::log::Body::Message {
            from: "bob".into(),
            text: text.into(),
            id: None,
            me: false,
            reply_to: None,
        },
        poster: None,
        holder: None,
        base: None,
    }
}

#[test]
fn messages_the_store_deleted_for_their_age_leave_the_index_at_the_next_start() {
    use crate::log::EventLog;
    let dir = std::env::temp_dir().join(format!("chat-search-forgotten-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn EventLog> =
        Arc::new(crate::log::store::Store::open(&dir, || "epoch".into()).expect("a store"));
    let batch: Vec<_> = (1..=5)
        .map(|i| posted(&format!("word {i}"), 1_000 * i))
        .collect();
    store.append(&batch).expect("appended");
    let place = Place::Dir(dir.join("search"));
    let search = Search::start(&place, store.clone()).expect("an index");
    assert_eq!(found(&search.index(), "word", 5).len(), 5);
    drop(search);
    // Retention deletes the first three from the store, and the server stops before the
    // index heard of it.
    let gone = store
        .forget_before(&StreamId::new("rust"), 3_500, 100)
        .expect("forgotten");
    assert_eq!(gone, Some(1..4));
    let search = Search::start(&place, store).expect("the index again");
    let mut seqs = found(&search.index(), "word", 2);
    seqs.sort_unstable();
    assert_eq!(seqs, [4, 5], "only what the store still holds");
    drop(search);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_index_whose_writer_cannot_start_answers_searches_with_why_and_starts_all_the_same() {
    let dir = std::env::temp_dir().join(format!("chat-search-locked-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = Arc::new(MemoryLog::new("epoch".into()));
    let place = Place::Dir(dir.clone());
    let first = Search::start(&place, log.clone()).expect("an index");
    let started = Instant::now();
    while matches!(
        first.index().find(&request("anything")),
        Err(SearchError::Building(_))
    ) {
        assert!(started.elapsed() < Duration::from_secs(10), "never ready");
        std::thread::yield_now();
    }
    // The first one's writer holds the index: the second cannot write it. Its start does
    // not wait for its writer (at idle priority, that can take seconds on a busy machine).
    let second = Search::start(&place, log).expect("started, the writer on its own thread");
    let index = second.index();
    drop(second);
    assert!(
        !dir.join("search").join("clean").exists(),
        "what it never wrote is not marked whole"
    );
    match index.find(&request("anything")) {
        Err(SearchError::Index(why)) => assert!(why.contains("lock"), "{why}"),
        other => panic!("expected the index's failure, got {other:?}"),
    }
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cluster_node_sweeps_the_scratch_indexes_of_nodes_no_longer_running() {
    // No process has a pid above the kernel's most; this one runs.
    let most: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|max| max.trim().parse().ok())
        .unwrap_or(4_194_304);
    let tmp = std::env::temp_dir();
    let gone = tmp.join(format!("chat-search-{}-0", most + 1));
    let running = tmp.join("chat-search-1-0");
    let other = tmp.join(format!("chat-search-x{}", std::process::id()));
    for dir in [&gone, &other] {
        std::fs::create_dir_all(dir).expect("a directory");
    }
    let init_had_one = running.exists();
    std::fs::create_dir_all(&running).expect("a directory");
    let (first, second) = (Scratch::new(), Scratch::new());
    let mine = format!("chat-search-{}-", std::process::id());
    for dir in [first.path(), second.path()] {
        assert!(dir.starts_with(&tmp), "{}", dir.display());
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(name.starts_with(&mine), "{name}");
    }
    assert_ne!(
        first.path(),
        second.path(),
        "each index of the process has its own"
    );
    std::fs::create_dir_all(first.path()).expect("a directory");
    let path = first.path().to_path_buf();
    drop(first);
    assert!(!path.exists(), "removed with its owner");
    assert!(!gone.exists(), "a node no longer running left it");
    assert!(running.exists(), "process 1 runs: its directory stays");
    assert!(other.exists(), "not a node's: it stays");
    let _ = std::fs::remove_dir_all(&other);
    if !init_had_one {
        let _ = std::fs::remove_dir_all(&running);
    }
}
