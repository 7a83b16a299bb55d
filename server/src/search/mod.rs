//! Search: a full-text index of every message, derived from the log.
//!
//! The index (tantivy) sits beside the store in the data directory (`search/`), in memory
//! with `--memory`, or in a cluster node's own scratch directory (`chat-search-PID-N`
//! under `TMPDIR`). Its own thread ([`indexer`]) feeds it from what the log committed: at
//! start it catches up with the log, stream by stream, from the newest message it holds
//! of each (all of them when it is new, damaged or of another format: searches meanwhile
//! are answered `unavailable` with `retry_after`); then it takes each committed batch, and
//! commits the index within [`COMMIT_EVERY`], so that a message is findable within a
//! second of going out. An edit re-indexes its message, a reaction restores it with the
//! reaction, a deletion removes it (its text leaves the index's files when the segment
//! holding it is merged). Queries run on the blocking pool, never on the hub's task; the
//! hub hands them who is asking and which rooms they are in.

mod follow;
pub mod indexer;
pub mod service;
pub mod tokenizer;
pub mod unsynced;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chat_shared::search::Query as Asked;
use chat_shared::{Frame, ServerFrame, decode_line};
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::{DocAddress, Index, IndexReader, Searcher, TantivyDocument, Term};

use crate::log::redis::RedisLog;
use crate::log::{Event, Seq, StreamId, for_reader};

/// Names the index's layout; an index of another is rebuilt.
const FORMAT: &str = "chat-search 1";
/// The longest a committed message waits before the index commits it.
pub const COMMIT_EVERY: Duration = Duration::from_millis(750);
/// How long a first page's view of the index is kept for the pages after it.
const PINNED_FOR: Duration = Duration::from_secs(120);
/// The most views kept for later pages.
const PINNED_MAX: usize = 32;
/// The party of every room's message (a conversation's are its two accounts).
const ROOM_PARTY: &str = "#";

/// The index's fields.
#[derive(Debug, Clone, Copy)]
struct Fields {
    /// The stream and seq: one message's term, to replace or remove it.
    key: Field,
    /// The stream's key.
    stream: Field,
    /// Who may find it: [`ROOM_PARTY`], or a conversation's two accounts.
    party: Field,
    /// The sender, case-folded.
    from: Field,
    /// The words.
    text: Field,
    /// When it was sent (ranks recent ones up).
    time: Field,
    /// Its seq (where catching up starts).
    seq: Field,
    /// The `message` frame as it is now.
    frame: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer::INDEXING)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING | STORED),
        stream: builder.add_text_field("stream", STRING),
        party: builder.add_text_field("party", STRING),
        from: builder.add_text_field("from", STRING),
        text: builder.add_text_field("text", words),
        time: builder.add_u64_field("time", FAST),
        seq: builder.add_u64_field("seq", FAST | INDEXED),
        frame: builder.add_text_field("frame", STORED),
    };
    (builder.build(), fields)
}

/// The term naming one message.
fn key(stream: &StreamId, seq: Seq) -> String {
    format!("{stream}\u{1f}{seq}")
}

/// Who may find a stream's messages: everyone (rooms) or its two accounts.
fn parties(stream: &StreamId) -> Vec<&str> {
    match stream.parties() {
        Some((a, b)) => vec![a, b],
        None => vec![ROOM_PARTY],
    }
}

/// Search could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index is being built; try again after this many milliseconds.
    #[error("the search index is being built; try again shortly")]
    Building(u64),
    /// The cursor is not one this server gave.
    #[error("that cursor is not one from search_results")]
    BadCursor,
    /// The query's words hold nothing to search for (punctuation), and it has no filter.
    #[error("the query has no words to search for")]
    NoWords,
    /// The index failed.
    #[error("the search index failed: {0}")]
    Index(String),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(err: tantivy::TantivyError) -> Self {
        SearchError::Index(err.to_string())
    }
}

/// Who searches, and what they may find.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Their account (case-folded), if they are one: their conversations are theirs.
    pub account: Option<String>,
    /// The rooms they are in (keys): invite-only ones among them are searched too.
    pub rooms: Vec<Arc<str>>,
    /// Administrators find everything in rooms.
    pub admin: bool,
}

/// A search to run.
#[derive(Debug, Clone)]
pub struct Request {
    /// The query, taken apart.
    pub query: Asked,
    /// Only these streams: the `room` or `with` asked, and `in:` (all must hold).
    pub only: Vec<StreamId>,
    /// The most results.
    pub limit: usize,
    /// Where the last page ended.
    pub cursor: Option<String>,
    /// Who asks.
    pub viewer: Viewer,
}

impl Request {
    /// The first page of `query` for a guest in no room: what anyone may find.
    pub fn by_guest(query: Asked) -> Self {
        Self {
            query,
            only: Vec::new(),
            limit: chat_shared::limits::SEARCH_RESULTS as usize,
            cursor: None,
            viewer: Viewer {
                account: None,
                rooms: Vec::new(),
                admin: false,
            },
        }
    }
}

/// What a search found.
#[derive(Debug)]
pub struct Found {
    /// The messages, best first, as the viewer sees them.
    pub results: Vec<ServerFrame>,
    /// Where the next page starts, if there is one.
    pub cursor: Option<String>,
}

/// A view of the index kept for the pages after a first one, so that they go on from
/// the same ranking: no result twice, none skipped.
struct Pinned {
    searcher: Searcher,
    since: Instant,
}

/// The index, shared by its thread and the searches.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Whether the index has caught up with the log since the start.
    ready: AtomicBool,
    /// Why it cannot be written, if its writer could not be started: searches are
    /// answered with it.
    failed: std::sync::OnceLock<String>,
    /// Streams left to catch up with (for `retry_after`).
    streams_left: AtomicU64,
    /// The invite-only rooms (keys): their messages are for their members.
    invite_only: RwLock<HashSet<String>>,
    pinned: Mutex<VecDeque<Pinned>>,
}

/// Where the index lives, and what feeds it.
#[derive(Debug, Clone)]
pub enum Place {
    /// In memory, fed by this server: rebuilt at every start.
    Memory,
    /// In this directory (`search/` in the data directory), fed by this server.
    Dir(PathBuf),
    /// In a scratch directory of the node's own (built anew at each start, removed at its
    /// stop), fed by the cluster's feed in this Redis (every node's events).
    Cluster(Arc<RedisLog>),
}

impl SearchIndex {
    /// Whether the index has caught up with the log.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the index as one that cannot be written (its writer did not start).
    pub(super) fn fail(&self, err: &SearchError) {
        let _ = self.failed.set(err.to_string());
    }

    /// Runs a search (on the caller's thread: the blocking pool).
    pub fn find(&self, request: &Request) -> Result<Found, SearchError> {
        if let Some(why) = self.failed.get() {
            return Err(SearchError::Index(why.clone()));
        }
        if !self.ready() {
            // About a thousand streams a second are caught up with.
            let left = self.streams_left.load(Ordering::Relaxed);
            return Err(SearchError::Building((left + 1).clamp(1, 30) * 1000));
        }
        let (searcher, now, offset) = match &request.cursor {
            Some(cursor) => self.resume(cursor)?,
            None => (self.pin(), now_ms(), 0),
        };
        let query = self.compile(request)?;
        let collector = TopDocs::with_limit(request.limit + 1)
            .and_offset(offset)
            .tweak_score(move |segment: &tantivy::SegmentReader| {
                let column = |name| {
                    segment
                        .fast_fields()
                        .u64(name)
                        .map(|c| c.first_or_default_col(0))
                        .ok()
                };
                let (times, seqs) = (column("time"), column("seq"));
                // Ties (filters alone score nothing) go to the newest.
                move |doc: tantivy::DocId, score: tantivy::Score| {
                    let time = times.as_ref().map_or(0, |c| c.get_val(doc));
                    let seq = seqs.as_ref().map_or(0, |c| c.get_val(doc));
                    ((1.0 + score) * recency(now, time), time, seq)
                }
            });
        let hits: Vec<((f32, u64, u64), DocAddress)> = searcher.search(&query, &collector)?;
        let more = hits.len() > request.limit;
        let current = self.reader.searcher();
        let mut results = Vec::with_capacity(hits.len().min(request.limit));
        for (_, address) in hits.into_iter().take(request.limit) {
            let frame = self.now_as(&searcher, &current, address)?;
            results.extend(frame.and_then(|f| Self::for_viewer(&f, &request.viewer)));
        }
        let cursor = more.then(|| {
            format!(
                "{:x}.{now:x}.{:x}",
                searcher.generation().generation_id(),
                offset + request.limit
            )
        });
        Ok(Found { results, cursor })
    }

    /// The newest view of the index, kept for the pages that follow.
    fn pin(&self) -> Searcher {
        let searcher = self.reader.searcher();
        let id = searcher.generation().generation_id();
        if let Ok(mut pinned) = self.pinned.lock() {
            pinned.retain(|p| p.since.elapsed() < PINNED_FOR);
            if !pinned
                .iter()
                .any(|p| p.searcher.generation().generation_id() == id)
            {
                if pinned.len() >= PINNED_MAX {
                    pinned.pop_front();
                }
                pinned.push_back(Pinned {
                    searcher: searcher.clone(),
                    since: Instant::now(),
                });
            }
        }
        searcher
    }

    /// The view, time and offset a cursor goes on from. A view no longer kept (or one of
    /// another node) gives way to the newest: its pages go on from the same place.
    fn resume(&self, cursor: &str) -> Result<(Searcher, u64, usize), SearchError> {
        let mut parts = cursor.split('.').map(|p| u64::from_str_radix(p, 16));
        let (Some(Ok(id)), Some(Ok(now)), Some(Ok(offset)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SearchError::BadCursor);
        };
        let offset = usize::try_from(offset).map_err(|_| SearchError::BadCursor)?;
        let kept = self.pinned.lock().ok().and_then(|pinned| {
            pinned
                .iter()
                .find(|p| p.searcher.generation().generation_id() == id)
                .map(|p| p.searcher.clone())
        });
        Ok((kept.unwrap_or_else(|| self.reader.searcher()), now, offset))
    }

    /// A hit's message as it is now: from the newest view (a message deleted since the
    /// pinned view was taken is not found there, and is left out).
    fn now_as(
        &self,
        pinned: &Searcher,
        current: &Searcher,
        address: DocAddress,
    ) -> Result<Option<String>, SearchError> {
        let doc: TantivyDocument = pinned.doc(address)?;
        let stored = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        if pinned.generation().generation_id() == current.generation().generation_id() {
            return Ok(stored(self.fields.frame));
        }
        match stored(self.fields.key) {
            Some(key) => stored_frame(current, self.fields, &key),
            None => Ok(None),
        }
    }

    /// A stored frame as `viewer` reads it.
    fn for_viewer(frame: &str, viewer: &Viewer) -> Option<ServerFrame> {
        let mut bytes = frame.as_bytes().to_vec();
        bytes.push(b'\n');
        let frame = Frame::from_encoded(&bytes);
        let frame = match &viewer.account {
            Some(account) => for_reader(&frame, account),
            None => frame,
        };
        decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end()).ok()
    }

    /// The query: every word and phrase, the filters, and what the viewer may see.
    fn compile(&self, request: &Request) -> Result<BooleanQuery, SearchError> {
        let fields = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let words = &request.query.words;
        for (i, word) in words.iter().enumerate() {
            let last = i + 1 == words.len() && request.query.prefix_last;
            let tokens = tokenizer::tokens(word, true);
            if tokens.is_empty() {
                continue;
            }
            if last {
                let terms: Vec<(usize, Term)> = tokens
                    .iter()
                    .map(|(p, t)| (*p, Term::from_field_text(fields.text, t)))
                    .collect();
                // The whole word counts towards the score; as a prefix, it only matches.
                let mut either: Vec<(Occur, Box<dyn Query>)> = vec![(
                    Occur::Should,
                    Box::new(PhrasePrefixQuery::new_with_offset(terms)),
                )];
                either.push((Occur::Should, phrase(fields.text, &tokens)));
                clauses.push((Occur::Must, Box::new(BooleanQuery::new(either))));
            } else {
                clauses.push((Occur::Must, phrase(fields.text, &tokens)));
            }
        }
        for text in &request.query.phrases {
            let tokens = tokenizer::tokens(text, true);
            if !tokens.is_empty() {
                clauses.push((Occur::Must, phrase(fields.text, &tokens)));
            }
        }
        if clauses.is_empty() && request.query.from.is_none() && request.only.is_empty() {
            return Err(SearchError::NoWords);
        }
        if let Some(from) = &request.query.from {
            clauses.push((Occur::Must, filter(fields.from, &chat_shared::fold(from))));
        }
        for stream in &request.only {
            clauses.push((Occur::Must, filter(fields.stream, stream.as_str())));
        }
        // Rooms' messages, and the viewer's own conversations.
        let mut parties = vec![ROOM_PARTY.to_string()];
        parties.extend(request.viewer.account.clone());
        let parties: Vec<Term> = parties
            .iter()
            .map(|p| Term::from_field_text(fields.party, p))
            .collect();
        clauses.push((
            Occur::Must,
            Box::new(ConstScoreQuery::new(
                Box::new(TermSetQuery::new(parties)),
                0.0,
            )),
        ));
        if !request.viewer.admin {
            let hidden: Vec<Term> = self
                .invite_only
                .read()
                .map(|rooms| {
                    rooms
                        .iter()
                        .filter(|room| !request.viewer.rooms.iter().any(|r| **r == ***room))
                        .map(|room| Term::from_field_text(fields.stream, room))
                        .collect()
                })
                .unwrap_or_default();
            if !hidden.is_empty() {
                clauses.push((Occur::MustNot, Box::new(TermSetQuery::new(hidden))));
            }
        }
        Ok(BooleanQuery::new(clauses))
    }
}

/// A word or a phrase's tokens as one query: a term, or the terms in their places.
fn phrase(field: Field, tokens: &[(usize, String)]) -> Box<dyn Query> {
    if let [(_, only)] = tokens {
        return Box::new(TermQuery::new(
            Term::from_field_text(field, only),
            IndexRecordOption::WithFreqs,
        ));
    }
    let terms = tokens
        .iter()
        .map(|(p, t)| (*p, Term::from_field_text(field, t)))
        .collect();
    Box::new(PhraseQuery::new_with_offset(terms))
}

/// A filter that does not count towards the score.
fn filter(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        )),
        0.0,
    ))
}

/// The stored frame of the message with this key, in `searcher`'s view.
fn stored_frame(
    searcher: &Searcher,
    fields: Fields,
    key: &str,
) -> Result<Option<String>, SearchError> {
    let query = TermQuery::new(
        Term::from_field_text(fields.key, key),
        IndexRecordOption::Basic,
    );
    let hits = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
    let Some((_, address)) = hits.first() else {
        return Ok(None);
    };
    let doc: TantivyDocument = searcher.doc(*address)?;
    Ok(doc
        .get_first(fields.frame)
        .and_then(|v| v.as_str())
        .map(str::to_string))
}

/// How much a message's age takes from its rank: a message of today counts up to twice
/// one of long ago, halving the difference every 30 days.
fn recency(now: u64, time: u64) -> f32 {
    let days = now.saturating_sub(time) as f32 / 86_400_000.0;
    1.0 + (-days / 30.0 * std::f32::consts::LN_2).exp()
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the indexer is fed: committed events, each with its stream.
pub type Committed = Vec<(StreamId, Event)>;

#[cfg(test)]
mod tests;
