//! The index's thread: catches up with the log, then indexes what the log commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use chat_shared::{Frame, ServerFrame, apply_reaction, decode_line};
use tantivy::index::SegmentId;
use tantivy::schema::IndexRecordOption;
use tantivy::{IndexWriter, TantivyDocument, Term};

use super::{COMMIT_EVERY, Committed, SearchError, SearchIndex, key, parties, stored_frame};
use crate::log::state::KeptState;
use crate::log::{Body, EventLog, NewEvent, Seq, Span, StreamId};

/// Events read from the log at a time while catching up.
const PAGE: usize = 1000;
/// Messages indexed while catching up before a commit (bounds the writer's memory).
const CATCH_UP_COMMIT: usize = 100_000;
/// The indexer's share of memory for what it has not committed yet.
const WRITER_MEMORY: usize = 16 * 1024 * 1024;
/// The least time between two merges that erase deleted messages' texts from the files.
const ERASE_EVERY: Duration = Duration::from_secs(2);

/// What the indexer's thread is sent.
pub(super) enum Fed {
    /// Events the log committed.
    Committed(Committed),
    /// These events of a stream were deleted for their age (`--retain-days`).
    Forgotten(StreamId, std::ops::Range<Seq>),
    /// Look at the stop flag.
    Wake,
}

/// Where committed events go to be indexed (cheap to clone; sending never blocks).
#[derive(Clone)]
pub struct Feed(Sender<Fed>);

impl Feed {
    pub(super) fn new(sender: Sender<Fed>) -> Self {
        Self(sender)
    }

    /// Hands the index what the log committed (events it does not index are skipped
    /// here, without being decoded).
    pub fn committed(&self, new: &[NewEvent], events: &[crate::log::Event]) {
        self.send(Self::wanted(new, events));
    }

    /// What the index takes of a committed batch: messages and what changes them.
    pub fn wanted(new: &[NewEvent], events: &[crate::log::Event]) -> Committed {
        new.iter()
            .zip(events)
            .filter(|(new, event)| event.seq > 0 && indexed(&new.body))
            .map(|(new, event)| (new.stream.clone(), event.clone()))
            .collect()
    }

    /// Hands the index committed events (those of a shared log: a cluster's).
    pub fn send(&self, events: Committed) {
        if !events.is_empty() {
            let _ = self.0.send(Fed::Committed(events));
        }
    }

    /// Tells the index that these events of a stream are gone for their age: what it
    /// holds of them goes too.
    pub fn forgotten(&self, stream: StreamId, seqs: std::ops::Range<Seq>) {
        let _ = self.0.send(Fed::Forgotten(stream, seqs));
    }

    pub(super) fn wake(&self) {
        let _ = self.0.send(Fed::Wake);
    }
}

/// Whether an event changes what search finds.
fn indexed(body: &Body) -> bool {
    matches!(
        body,
        Body::Message { .. }
            | Body::Edited { .. }
            | Body::Reaction { .. }
            | Body::Deleted { .. }
            | Body::Settings { .. }
    )
}

/// The thread's state.
pub(super) struct Indexer {
    shared: Arc<SearchIndex>,
    writer: IndexWriter<TantivyDocument>,
    /// Messages changed since the last commit (the reader does not see them yet): each
    /// one's frame from now on, `None` once deleted.
    pending: HashMap<String, Option<String>>,
    /// Changes not committed, and since when.
    dirty: Option<(Instant, usize)>,
    /// Where catching up ended, per stream: events up to it are in already.
    caught_up: HashMap<StreamId, Seq>,
    /// Deleted messages whose texts may still be in the index's files.
    erasing: HashSet<String>,
    last_merge: Instant,
}

impl Indexer {
    pub(super) fn new(shared: Arc<SearchIndex>) -> Result<Self, SearchError> {
        let writer = shared.index.writer_with_num_threads(1, WRITER_MEMORY)?;
        Ok(Self {
            shared,
            writer,
            pending: HashMap::new(),
            dirty: None,
            caught_up: HashMap::new(),
            erasing: HashSet::new(),
            last_merge: Instant::now(),
        })
    }

    /// Catches up, then indexes what comes until `stop` (or until every feed is gone).
    pub(super) fn run(mut self, log: &dyn EventLog, feed: &Receiver<Fed>, stop: &AtomicBool) {
        let started = Instant::now();
        match self.catch_up(log, stop) {
            Ok(messages) => tracing::info!(
                messages,
                streams = self.caught_up.len(),
                seconds = started.elapsed().as_secs_f32(),
                "the search index is up to date"
            ),
            Err(err) => tracing::error!(%err, "the search index could not catch up with the log"),
        }
        self.shared.streams_left.store(0, Ordering::Relaxed);
        self.shared.ready.store(true, Ordering::Release);
        while !stop.load(Ordering::Acquire) {
            let wait = match self.dirty {
                Some((since, _)) => COMMIT_EVERY.saturating_sub(since.elapsed()),
                None if !self.erasing.is_empty() => ERASE_EVERY,
                None => Duration::from_secs(3600),
            };
            match feed.recv_timeout(wait) {
                Ok(Fed::Committed(events)) => {
                    for (stream, event) in events {
                        if self
                            .caught_up
                            .get(&stream)
                            .is_some_and(|&up| event.seq <= up)
                        {
                            continue;
                        }
                        self.apply(&stream, &event.frame);
                    }
                }
                Ok(Fed::Forgotten(stream, seqs)) => {
                    for seq in seqs {
                        self.remove(&key(&stream, seq));
                    }
                }
                Ok(Fed::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self
                .dirty
                .is_some_and(|(since, _)| since.elapsed() >= COMMIT_EVERY)
            {
                self.commit();
            }
            self.erase();
        }
        self.commit();
    }

    /// Indexes every stream's events after the newest message the index holds of it.
    fn catch_up(&mut self, log: &dyn EventLog, stop: &AtomicBool) -> Result<u64, SearchError> {
        let store = |err: crate::log::LogError| SearchError::Index(err.to_string());
        let mut invite_only = HashSet::new();
        for (stream, _) in log.rooms().map_err(store)? {
            let fields = log.room_state(&stream).map_err(store)?;
            let state =
                KeptState::from_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if state.invite_only {
                invite_only.insert(stream.as_str().to_string());
            }
        }
        if let Ok(mut rooms) = self.shared.invite_only.write() {
            *rooms = invite_only;
        }
        let streams = log.streams().map_err(store)?;
        let searcher = self.shared.reader.searcher();
        let (mut messages, mut last_report) = (0u64, Instant::now());
        for (done, stream) in streams.iter().enumerate() {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let mut after = newest_indexed(&searcher, self.shared.fields, stream)?;
            if after > 0 {
                let oldest = log.head(stream).map_err(store)?.oldest;
                self.forget_below(&searcher, stream, oldest)?;
            }
            loop {
                let events = log.read(stream, Span::After(after), PAGE).map_err(store)?;
                let Some(last) = events.last() else {
                    break;
                };
                after = last.seq;
                for event in &events {
                    messages += u64::from(self.apply(stream, &event.frame));
                }
                if self.dirty.is_some_and(|(_, ops)| ops >= CATCH_UP_COMMIT) {
                    self.commit();
                }
            }
            self.caught_up.insert(stream.clone(), after);
            let left = streams.len() - done - 1;
            self.shared
                .streams_left
                .store(left as u64, Ordering::Relaxed);
            if last_report.elapsed() >= Duration::from_secs(5) {
                last_report = Instant::now();
                tracing::info!(messages, streams_left = left, "building the search index");
            }
        }
        self.commit();
        Ok(messages)
    }

    /// Lets go of what the index holds of `stream` below `oldest` (0: the stream holds
    /// nothing): messages the log deleted for their age (`--retain-days`) when the server
    /// stopped before the index did (a crash between the two).
    fn forget_below(
        &mut self,
        searcher: &tantivy::Searcher,
        stream: &StreamId,
        oldest: Seq,
    ) -> Result<(), SearchError> {
        const PAGE: usize = 1000;
        let query = tantivy::query::TermQuery::new(
            Term::from_field_text(self.shared.fields.stream, stream.as_str()),
            IndexRecordOption::Basic,
        );
        let mut offset = 0;
        loop {
            let collector = tantivy::collector::TopDocs::with_limit(PAGE)
                .and_offset(offset)
                .order_by_u64_field("seq", tantivy::Order::Asc);
            let hits = searcher.search(&query, &collector)?;
            let below: Vec<Seq> = hits
                .iter()
                .filter_map(|(seq, _)| *seq)
                .take_while(|seq| oldest == 0 || *seq < oldest)
                .collect();
            for seq in &below {
                self.remove(&super::key(stream, *seq));
            }
            if below.len() < PAGE {
                if offset + below.len() > 0 {
                    tracing::info!(
                        %stream,
                        removed = offset + below.len(),
                        "the search index let go of messages deleted for their age"
                    );
                }
                return Ok(());
            }
            offset += PAGE;
        }
    }

    /// Applies one event; says whether it was a message.
    fn apply(&mut self, stream: &StreamId, frame: &Frame) -> bool {
        let Ok(event) = decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end()) else {
            return false;
        };
        match event {
            ServerFrame::Message {
                deleted: false,
                seq,
                ..
            } => {
                self.put(stream, seq, &event, false);
                return true;
            }
            ServerFrame::Edited {
                target, text, time, ..
            } => self.change(stream, target, |message| {
                if let ServerFrame::Message {
                    text: now, edited, ..
                } = message
                {
                    *now = text;
                    *edited = Some(time);
                }
            }),
            ServerFrame::Reaction {
                target,
                from,
                emoji,
                on,
                ..
            } => self.change(stream, target, |message| {
                if let ServerFrame::Message { reactions, .. } = message {
                    apply_reaction(reactions, &from, &emoji, on);
                }
            }),
            ServerFrame::Deleted { target, .. } => self.remove(&key(stream, target)),
            ServerFrame::Settings { invite_only, .. } => {
                if let Ok(mut rooms) = self.shared.invite_only.write() {
                    if invite_only {
                        rooms.insert(stream.as_str().to_string());
                    } else {
                        rooms.remove(stream.as_str());
                    }
                }
            }
            _ => {}
        }
        false
    }

    /// Takes a message out of the index, and its text out of the index's files.
    fn remove(&mut self, key: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.shared.fields.key, key));
        self.pending.insert(key.to_owned(), None);
        self.erasing.insert(key.to_owned());
        self.touched();
    }

    /// Indexes a message (in place of the one with its key, if `replacing`).
    fn put(&mut self, stream: &StreamId, seq: Seq, message: &ServerFrame, replacing: bool) {
        let ServerFrame::Message {
            from, text, time, ..
        } = message
        else {
            return;
        };
        let fields = self.shared.fields;
        let key = key(stream, seq);
        if replacing {
            self.writer
                .delete_term(Term::from_field_text(fields.key, &key));
        }
        let frame = Frame::encode(message);
        let frame = String::from_utf8_lossy(frame.as_bytes().trim_ascii_end()).into_owned();
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.key, &key);
        doc.add_text(fields.stream, stream.as_str());
        for party in parties(stream) {
            doc.add_text(fields.party, party);
        }
        doc.add_text(fields.from, chat_shared::fold(from));
        doc.add_text(fields.text, text);
        doc.add_u64(fields.time, *time);
        doc.add_u64(fields.seq, seq);
        doc.add_text(fields.frame, &frame);
        if let Err(err) = self.writer.add_document(doc) {
            tracing::error!(%err, "cannot index a message");
            return;
        }
        self.pending.insert(key, Some(frame));
        self.touched();
    }

    /// Re-indexes a message as `change` leaves it (nothing if it is not indexed: deleted).
    fn change(&mut self, stream: &StreamId, target: Seq, change: impl FnOnce(&mut ServerFrame)) {
        let key = key(stream, target);
        let current = match self.pending.get(&key) {
            Some(frame) => frame.clone(),
            None => stored_frame(&self.shared.reader.searcher(), self.shared.fields, &key)
                .unwrap_or_else(|err| {
                    tracing::error!(%err, "cannot read the search index");
                    None
                }),
        };
        let Some(Ok(mut message)) = current.map(|f| decode_line::<ServerFrame>(f.as_bytes()))
        else {
            return;
        };
        change(&mut message);
        self.put(stream, target, &message, true);
    }

    fn touched(&mut self) {
        let (since, ops) = self.dirty.unwrap_or((Instant::now(), 0));
        self.dirty = Some((since, ops + 1));
    }

    /// Commits what changed, and shows it to searches.
    fn commit(&mut self) {
        if self.dirty.take().is_none() {
            return;
        }
        let committed = self
            .writer
            .commit()
            .and_then(|_| self.shared.reader.reload());
        if let Err(err) = committed {
            tracing::error!(%err, "cannot commit the search index");
            return;
        }
        self.pending.clear();
    }

    /// Merges the segments that still hold deleted messages' texts (a deleted document
    /// stays in its segment's files until the segment is merged): the merged segment is
    /// written without them, and the old files go. Asked again until no segment holds
    /// them: a segment that the merge policy is merging already cannot be asked for.
    fn erase(&mut self) {
        if self.erasing.is_empty()
            || self.dirty.is_some()
            || self.last_merge.elapsed() < ERASE_EVERY
        {
            return;
        }
        self.last_merge = Instant::now();
        if let Err(err) = self.shared.reader.reload() {
            tracing::error!(%err, "cannot read the search index");
            return;
        }
        let searcher = self.shared.reader.searcher();
        let mut segments = HashSet::new();
        self.erasing.retain(|key| {
            let term = Term::from_field_text(self.shared.fields.key, key);
            let mut held = false;
            for segment in searcher.segment_readers() {
                let holds = segment
                    .inverted_index(self.shared.fields.key)
                    .and_then(|index| Ok(index.get_term_info(&term)?.is_some()))
                    .unwrap_or(false);
                if holds {
                    segments.insert(segment.segment_id());
                    held = true;
                }
            }
            held
        });
        if !segments.is_empty() {
            let ids: Vec<SegmentId> = segments.into_iter().collect();
            // Not waited for: the merge runs on the writer's merge thread.
            drop(self.writer.merge(&ids));
        }
    }
}

/// The seq of the newest message of `stream` in the index (0: none).
fn newest_indexed(
    searcher: &tantivy::Searcher,
    fields: super::Fields,
    stream: &StreamId,
) -> Result<Seq, SearchError> {
    let query = tantivy::query::TermQuery::new(
        Term::from_field_text(fields.stream, stream.as_str()),
        IndexRecordOption::Basic,
    );
    let collector =
        tantivy::collector::TopDocs::with_limit(1).order_by_u64_field("seq", tantivy::Order::Desc);
    let hits = searcher.search(&query, &collector)?;
    Ok(hits.first().and_then(|(seq, _)| *seq).unwrap_or(0))
}
