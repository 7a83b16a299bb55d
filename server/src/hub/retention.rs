//! Retention (`--retain-days`): messages older than that are deleted, from the log and the
//! search index, by a sweep every so often. The log is swept off the hub's task, a stream
//! at a time and a bounded number of events per step, so posting goes on meanwhile; the
//! rooms in memory then let go of what the log no longer holds, and their `oldest` moves
//! up (clients see it in `room` and `welcome`, and `history` stops there).

use std::ops::Range;
use std::time::Duration;

use async_channel::Sender;
use smol::Timer;

use super::Hub;
use super::command::Command;
use crate::log::{LogError, Seq, StreamId};
use crate::wire::now_millis;

/// Events deleted from one stream in one step of a sweep.
const STEP: usize = 10_000;

/// The longest time between two sweeps.
const LONGEST_PAUSE: Duration = Duration::from_secs(600);

/// How long between two sweeps when messages are kept for `retain`: an eighth of it (so
/// a message lives at most an eighth longer than asked), at least 50 ms and at most ten
/// minutes.
fn pause(retain: Duration) -> Duration {
    (retain / 8).clamp(Duration::from_millis(50), LONGEST_PAUSE)
}

/// Asks the hub for a sweep every [`pause`], until the hub is gone.
async fn sweeps(inbox: Sender<Command>, retain: Duration) {
    loop {
        Timer::after(pause(retain)).await;
        if inbox.send(Command::Retain).await.is_err() {
            return;
        }
    }
}

impl Hub {
    /// With `--retain-days`, starts asking itself for sweeps.
    pub(super) fn start_sweeps(&self, executor: &smol::Executor<'static>) {
        if let Some(retain) = self.config.retain {
            executor.spawn(sweeps(self.inbox.clone(), retain)).detach();
        }
    }

    /// A sweep: the rooms whose window is their history (a log that keeps nothing) let
    /// go of what is too old at once; the log is swept off this task.
    pub(super) fn retain(&mut self) {
        let Some(retain) = self.config.retain else {
            return;
        };
        let before = now_millis().saturating_sub(retain.as_millis() as u64);
        if !self.log.durable() {
            for key in self.rooms.ready_keys() {
                let stream = StreamId::new(&key);
                if let Some(Some(gone)) = self.rooms.update(&key, |room| room.forget_before(before))
                {
                    self.forget_in_index(stream, gone);
                }
            }
        }
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        smol::unblock(move || {
            let swept = (|| {
                let mut gone = Vec::new();
                for stream in log.streams()? {
                    while let Some(seqs) = log.forget_before(&stream, before, STEP)? {
                        let whole = seqs.end - seqs.start >= STEP as Seq;
                        gone.push((stream.clone(), seqs));
                        if !whole {
                            break;
                        }
                    }
                }
                Ok::<_, LogError>(gone)
            })();
            let _ = inbox.try_send(Command::Forgotten(swept));
        })
        .detach();
    }

    /// A sweep of the log is done: the rooms in memory and the index let go of what it
    /// deleted.
    pub(super) fn forgotten(&mut self, swept: Result<Vec<(StreamId, Range<Seq>)>, LogError>) {
        self.sweeping = false;
        let gone = match swept {
            Ok(gone) => gone,
            Err(err) => {
                tracing::error!(%err, "retention: the log could not delete old messages");
                return;
            }
        };
        if gone.is_empty() {
            return;
        }
        let events: Seq = gone.iter().map(|(_, seqs)| seqs.end - seqs.start).sum();
        tracing::info!(
            events,
            streams = gone.len(),
            "retention: old events deleted"
        );
        for (stream, seqs) in gone {
            let key: std::sync::Arc<str> = stream.as_str().into();
            self.rooms.update(&key, |room| room.forgotten(seqs.end));
            self.forget_in_index(stream, seqs);
        }
    }

    /// The search index lets go of these events (when this server feeds it).
    fn forget_in_index(&self, stream: StreamId, seqs: Range<Seq>) {
        if let Some(feed) = self.search.as_ref().and_then(|search| search.feed.as_ref()) {
            feed.forgotten(stream, seqs);
        }
    }
}
