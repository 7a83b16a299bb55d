//! The index on its own: fed committed events by hand, searched as the hub does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::search::Query;
use chat_shared::{Frame, ServerFrame};
use tantivy::Term;

use super::service::Search;
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
