//! The log's recorder: one thread that records batches, several at a time.
//!
//! A batch waits here while the previous commit's fsync runs; whatever queued up meanwhile
//! is recorded by the next commit, together: group commit, so a busy server does one
//! fsync for many batches instead of one each.

use std::sync::Arc;

use async_channel::{Receiver, Sender};

/// Called with a batch's result, on the recorder's thread: it only hands the result on.
pub type Done = Box<dyn FnOnce(Recorded) + Send>;

use super::{Body, Event, EventLog, LogError, NewEvent};
use crate::metrics::Metrics;
use crate::search::indexer::Feed;

/// What the recorder reports for a batch.
pub type Recorded = Result<Vec<Event>, LogError>;

/// A batch handed to the recorder, with where its result goes.
struct Submitted {
    events: Vec<NewEvent>,
    done: Done,
}

/// The handle to the recording thread; the thread ends when the handle is dropped (and
/// the drop waits for it: the log is closed once the recorder is gone).
pub struct Recorder {
    requests: Sender<Submitted>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.requests.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Recorder {
    /// Starts the recording thread for `log`; what it commits also goes to `feed` (the
    /// search index), if given.
    pub fn spawn(log: Arc<dyn EventLog>, feed: Option<Feed>) -> std::io::Result<Self> {
        let (requests, queue) = async_channel::unbounded::<Submitted>();
        let thread = std::thread::Builder::new()
            .name("chat-recorder".into())
            .spawn(move || write_loop(&*log, &queue, feed.as_ref()))?;
        Ok(Self {
            requests,
            thread: Some(thread),
        })
    }

    /// Queues a batch; its result goes to `done`.
    pub fn record(&self, events: Vec<NewEvent>, done: Done) {
        if let Err(err) = self.requests.try_send(Submitted { events, done }) {
            // The thread is gone: the batch cannot be recorded.
            let request = err.into_inner();
            (request.done)(Err(LogError::Store("the log's recorder stopped".into())));
        }
    }
}

/// How long the recorder waits for a batch before it tidies the log.
const TIDY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The next batch: at once if one waits, else the first to come; when the log has tidying
/// left to do, `None` after [`TIDY_AFTER`] without one. Only then is a timer set: a timer
/// costs wake-ups of the reactor's thread, on every batch of a busy server. `Err`: the hub
/// is gone.
fn next_batch(queue: &Receiver<Submitted>, untidy: bool) -> Result<Option<Submitted>, ()> {
    match queue.try_recv() {
        Ok(first) => return Ok(Some(first)),
        Err(async_channel::TryRecvError::Closed) => return Err(()),
        Err(async_channel::TryRecvError::Empty) => {}
    }
    if !untidy {
        return queue.recv_blocking().map(Some).map_err(|_| ());
    }
    smol::block_on(futures_lite::future::or(
        async { queue.recv().await.map(Some).map_err(|_| ()) },
        async {
            smol::Timer::after(TIDY_AFTER).await;
            Ok(None)
        },
    ))
}

/// Appends `events` to `log`, with the commit's duration and size, and the messages it
/// recorded, counted in the metrics (the recorder's thread and a log that records on the
/// hub's task both append through here).
pub fn append_measured(log: &dyn EventLog, events: &[NewEvent]) -> Result<Vec<Event>, LogError> {
    let started = std::time::Instant::now();
    let appended = log.append(events);
    let metrics = crate::metrics::get();
    Metrics::time(&metrics.commit_seconds, started.elapsed());
    metrics.commit_events.observe(events.len() as f64);
    if appended.is_ok() {
        let posts = events
            .iter()
            .filter(|new| matches!(new.body, Body::Message { .. }))
            .count();
        metrics.posts.inc_by(posts as u64);
    }
    appended
}

fn write_loop(log: &dyn EventLog, queue: &Receiver<Submitted>, feed: Option<&Feed>) {
    loop {
        // Tidied between batches (a busy log, too, erases deleted texts from its files
        // in time) and after a quiet second.
        let untidy = log.tidy();
        let first = match next_batch(queue, untidy) {
            Ok(Some(first)) => first,
            Ok(None) => continue,
            Err(()) => return,
        };
        let mut requests = vec![first];
        while let Ok(more) = queue.try_recv() {
            requests.push(more);
        }
        let all: Vec<NewEvent> = requests
            .iter()
            .flat_map(|r| r.events.iter().cloned())
            .collect();
        match append_measured(log, &all) {
            Ok(events) => {
                let indexed = feed.map(|_| Feed::wanted(&all, &events));
                let mut events = events.into_iter();
                for request in requests {
                    let mine = events.by_ref().take(request.events.len()).collect();
                    (request.done)(Ok(mine));
                }
                // After the hub has them: indexing never delays a delivery.
                if let (Some(feed), Some(indexed)) = (feed, indexed) {
                    feed.send(indexed);
                }
            }
            Err(err) => {
                let message = err.to_string();
                for request in requests {
                    (request.done)(Err(LogError::Store(message.clone())));
                }
            }
        }
    }
}
