//! `--memory`: seqs counted in memory and nothing kept beyond the hub's window; a restart
//! starts a new epoch.

use std::collections::HashMap;
use std::sync::Mutex;

use chat_shared::Frame;

use super::{Event, EventLog, Head, LogError, NewEvent, Seq, Span, StreamId, frame};

/// A log that only counts.
#[derive(Debug)]
pub struct MemoryLog {
    epoch: String,
    newest: Mutex<HashMap<StreamId, Seq>>,
}

impl MemoryLog {
    /// A log with a new epoch.
    pub fn new(epoch: String) -> Self {
        Self {
            epoch,
            newest: Mutex::new(HashMap::new()),
        }
    }
}

impl EventLog for MemoryLog {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn durable(&self) -> bool {
        false
    }

    fn head(&self, stream: &StreamId) -> Result<Head, LogError> {
        let newest = self
            .newest
            .lock()
            .map_err(|_| LogError::Store("poisoned".into()))?
            .get(stream)
            .copied()
            .unwrap_or(0);
        // It holds nothing itself: the hub's window is all there is.
        Ok(Head { oldest: 0, newest })
    }

    fn append(&self, events: &[NewEvent]) -> Result<Vec<Event>, LogError> {
        let mut newest = self
            .newest
            .lock()
            .map_err(|_| LogError::Store("poisoned".into()))?;
        Ok(events
            .iter()
            .map(|event| {
                let seq = newest.entry(event.stream.clone()).or_insert(0);
                *seq += 1;
                Event {
                    seq: *seq,
                    frame: frame(*seq, event),
                }
            })
            .collect())
    }

    fn read(&self, _: &StreamId, _: Span, _: usize) -> Result<Vec<Event>, LogError> {
        Ok(Vec::new())
    }

    fn recent_posts(&self, _: &str) -> Result<Vec<(String, Frame)>, LogError> {
        Ok(Vec::new())
    }

    fn rooms(&self) -> Result<Vec<(StreamId, String)>, LogError> {
        // Nothing outlives the process: the hub knows its rooms itself.
        Ok(Vec::new())
    }
}
