//! Erasing deleted texts from a log's files. A log stores a deleted message anew without
//! its text, but its files may still hold the old bytes (redb copies pages on write and
//! frees the old ones; Redis appends every command to its append-only file): a scrub
//! rewrites them (a compaction of the store, a rewrite of Redis's file). A scrub costs a
//! moment of the log's time, so a storm of deletions costs one scrub every
//! [`SCRUB_EVERY`], not one each; the first comes at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two scrubs.
pub const SCRUB_EVERY: Duration = Duration::from_secs(10);

/// Whether a text was erased since the last scrub, and when that was.
#[derive(Debug, Default)]
pub struct Scrub(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    pending: bool,
    last: Option<Instant>,
}

impl Scrub {
    /// A text was erased: the files are to be scrubbed.
    pub fn erased(&self) {
        if let Ok(mut state) = self.0.lock() {
            state.pending = true;
        }
    }

    /// Runs `scrub` if a text was erased since the last one and the last one was at least
    /// [`SCRUB_EVERY`] ago (`force`: whenever one is pending); `what` names it in the
    /// server's log. Says whether a scrub is still to come.
    pub fn run(&self, force: bool, what: &str, scrub: impl FnOnce() -> Result<(), String>) -> bool {
        let now = Instant::now();
        let Ok(mut state) = self.0.lock() else {
            return false;
        };
        let recent = state
            .last
            .is_some_and(|last| now.duration_since(last) < SCRUB_EVERY);
        if !state.pending || (recent && !force) {
            return state.pending;
        }
        match scrub() {
            Ok(()) => {
                state.pending = false;
                let took_ms = now.elapsed().as_millis() as u64;
                tracing::info!(took_ms, "deleted texts erased from {what}");
            }
            Err(err) => tracing::warn!(%err, "cannot erase deleted texts from {what}"),
        }
        state.last = Some(now);
        state.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_scrub_comes_at_once_and_the_next_waits_unless_forced() {
        let scrub = Scrub::default();
        let count = std::cell::Cell::new(0);
        let run = |force| {
            scrub.run(force, "a test", || {
                count.set(count.get() + 1);
                Ok(())
            })
        };
        assert!(!run(false));
        assert_eq!(count.get(), 0, "nothing erased yet");
        scrub.erased();
        assert!(!run(false), "done");
        assert_eq!(count.get(), 1, "at once");
        scrub.erased();
        assert!(run(false), "still to do");
        assert_eq!(count.get(), 1, "not again so soon");
        assert!(!run(true));
        assert_eq!(count.get(), 2, "forced");
        assert!(!run(true));
        assert_eq!(count.get(), 2, "nothing pending");
    }
}
