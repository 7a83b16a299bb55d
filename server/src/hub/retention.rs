//! Retention (`--retain-days`, and a room's own `retain_days`): messages older than that
//! are deleted, from the log and the search index, by a sweep every so often. The log is
//! swept off the hub's task, a stream at a time and a bounded number of events per step,
//! so posting goes on meanwhile; the rooms in memory then let go of what the log no longer
//! holds, and their `oldest` moves up (clients see it in `room` and `welcome`, and
//! `history` stops there). A room keeps its history for the shorter of the server's time
//! and its own.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use futures_lite::future;
use smol::Timer;

use super::Hub;
use super::command::{Command, Swept};
use crate::log::state::{RETAIN_DAYS, retain_days};
use crate::log::{EventLog, LogError, Seq, StreamId};
use crate::wire::now_millis;

/// Events deleted from one stream in one step of a sweep.
const STEP: usize = 10_000;

/// The longest time between two sweeps.
const LONGEST_PAUSE: Duration = Duration::from_secs(600);

/// How long between two sweeps when messages are kept for `retain`: an eighth of it (so
/// a message lives at most an eighth longer than asked), at least 50 ms and at most ten
/// minutes.
fn pause(retain: Option<Duration>) -> Duration {
    retain.map_or(LONGEST_PAUSE, |retain| {
        (retain / 8).clamp(Duration::from_millis(50), LONGEST_PAUSE)
    })
}

/// The shorter of two retentions (`None`: keep forever).
fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Asks the hub for a sweep at once, then every `pause`, and at once whenever woken
/// (a room got a shorter retention), until the hub is gone.
async fn sweeps(inbox: Sender<Command>, pause: Arc<AtomicU64>, wake: Receiver<()>) {
    loop {
        if inbox.send(Command::Retain).await.is_err() {
            return;
        }
        let wait = Duration::from_millis(pause.load(Ordering::Relaxed));
        future::or(
            async {
                Timer::after(wait).await;
            },
            async {
                let _ = wake.recv().await;
            },
        )
        .await;
    }
}

/// Deletes from every stream of `log` what is older than its retention: the shorter of
/// `server`'s and the room's own. Runs on the blocking pool.
fn sweep_log(log: &dyn EventLog, server: Option<Duration>) -> Result<Swept, LogError> {
    let now = now_millis();
    let (mut gone, mut shortest) = (Vec::new(), None);
    for stream in log.streams()? {
        let own = if stream.parties().is_some() {
            None
        } else {
            log.room_state(&stream)?
                .iter()
                .find(|(field, _)| field == RETAIN_DAYS)
                .and_then(|(_, value)| retain_days(value))
                .and_then(chat_shared::Days::duration)
        };
        shortest = shorter(shortest, own);
        let Some(keep) = shorter(server, own) else {
            continue;
        };
        let before = now.saturating_sub(keep.as_millis() as u64);
        while let Some(seqs) = log.forget_before(&stream, before, STEP)? {
            let whole = seqs.end - seqs.start >= STEP as Seq;
            gone.push((stream.clone(), seqs));
            if !whole {
                break;
            }
        }
    }
    Ok((gone, shortest))
}

impl Hub {
    /// Starts asking itself for sweeps, unless nothing can be deleted from the log (a
    /// cluster's: it refuses `--retain-days` and rooms' own retention).
    pub(super) fn start_sweeps(&self, executor: &smol::Executor<'static>) {
        if !self.log.retains() {
            return;
        }
        self.sweep_pause.store(
            pause(self.config.retain).as_millis() as u64,
            Ordering::Relaxed,
        );
        let (pause, wake) = (self.sweep_pause.clone(), self.sweep_wake.1.clone());
        executor
            .spawn(sweeps(self.inbox.clone(), pause, wake))
            .detach();
    }

    /// A room keeps its history for at most `retain`: the sweeps come often enough for
    /// it, starting at once when that is more often than they did.
    pub(super) fn sweep_within(&self, retain: Option<Duration>) {
        let wanted = pause(shorter(self.config.retain, retain)).as_millis() as u64;
        if wanted < self.sweep_pause.load(Ordering::Relaxed) {
            self.sweep_pause.store(wanted, Ordering::Relaxed);
            let _ = self.sweep_wake.0.try_send(());
        }
    }

    /// A sweep: the rooms whose window is their history (a log that keeps nothing) let
    /// go of what is too old at once; the log is swept off this task.
    pub(super) fn retain(&mut self) {
        let server = self.config.retain;
        if !self.log.durable() {
            let now = now_millis();
            for key in self.rooms.ready_keys() {
                let own = self
                    .rooms
                    .get(&key)
                    .and_then(|room| room.state().retain_days)
                    .and_then(chat_shared::Days::duration);
                let Some(keep) = shorter(server, own) else {
                    continue;
                };
                let before = now.saturating_sub(keep.as_millis() as u64);
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
            let _ = inbox.try_send(Command::Forgotten(sweep_log(&*log, server)));
        })
        .detach();
    }

    /// A sweep of the log is done: the rooms in memory and the index let go of what it
    /// deleted.
    pub(super) fn forgotten(&mut self, swept: Result<Swept, LogError>) {
        self.sweeping = false;
        let gone = match swept {
            Ok((gone, shortest)) => {
                // The sweeps come as often as the shortest retention seen asks. Never less
                // often: a sweep may have read a room's state before its new limit was
                // stored (and a limit taken away only makes sweeps come more often than
                // needed, which costs little).
                self.sweep_within(shortest);
                gone
            }
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
