//! The CPU time the process spends, and how much of it is password hashing.
//!
//! The hub stretches its coalescing window when the cores are busy with chat (see
//! [`crate::pressure`]); password hashing runs on threads of its own at a lower priority
//! and yields to chat, so its CPU time is counted apart and left out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::time::ClockId;

/// CPU time the hashing threads spent on jobs, all together, in nanoseconds.
static HASHING_NANOS: AtomicU64 = AtomicU64::new(0);

/// A CPU-time clock, now.
fn clock(clock: ClockId) -> Duration {
    let time = rustix::time::clock_gettime(clock);
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}

/// The CPU time (user and system) the calling thread has used so far.
pub fn thread() -> Duration {
    clock(ClockId::ThreadCPUTime)
}

/// Counts CPU time a hashing thread spent on a job.
pub fn count_hashing(took: Duration) {
    HASHING_NANOS.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
}

/// The CPU time of the threads that serve chat: the process's, less what password
/// hashing took.
pub fn chat() -> Duration {
    let hashing = Duration::from_nanos(HASHING_NANOS.load(Ordering::Relaxed));
    clock(ClockId::ProcessCPUTime).saturating_sub(hashing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_clock_moves() {
        let start = chat();
        let mut x = 0u64;
        while chat() == start {
            x = x.wrapping_add(1);
        }
        assert!(chat() > start, "{x}");
    }
}
