//! The wait between two attempts of a task to reach Redis again.

use std::time::{Duration, Instant};

use smol::Timer;

use crate::log::LogError;

/// The longest wait between two attempts to reach Redis again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The wait before a task's next attempt to reach Redis: it doubles while Redis stays
/// away, up to [`MAX_BACKOFF`], and is short again after an attempt that lasted (it was
/// connected).
pub(super) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    pub(super) fn new() -> Self {
        Self(Self::FIRST)
    }

    /// After an attempt that began at `started` and ended with `result`: says why, waits.
    pub(super) async fn wait(
        &mut self,
        what: &str,
        started: Instant,
        result: Result<(), LogError>,
    ) {
        if let Err(err) = result {
            tracing::warn!(%err, "{what}: cannot reach Redis; trying again");
        }
        if started.elapsed() > MAX_BACKOFF {
            self.0 = Self::FIRST;
        }
        Timer::after(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
}
