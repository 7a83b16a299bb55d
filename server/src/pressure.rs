//! How busy the server's cores are, and how often a room writes to a member because of it.
//!
//! A write to a member costs about the same whether it carries one event or ten (most of
//! it is the kernel's loopback or network send path), so when the cores are busy the
//! cheapest way to carry more is fewer, fuller writes. Every [`PERIOD`] the hub looks at
//! the CPU time the process used for chat (password hashing left out), smoothed over about
//! a second: above [`HIGH`] of its cores the window (the least time between two writes to
//! a member) grows by [`STEP`], up to [`MAX_WINDOW`]; below [`LOW`] it shrinks back to
//! `--coalesce-ms`. A quiet server keeps the configured window, and so its latency; a busy
//! one trades a few milliseconds of it for fewer system calls instead of falling behind.

use std::time::{Duration, Instant};

use crate::cpu;

/// How often the load is looked at.
pub const PERIOD: Duration = Duration::from_millis(100);
/// Share of the cores above which the window grows: near saturation, where queues (and
/// so latency) grow fastest.
pub const HIGH: f64 = 0.85;
/// Share of the cores below which the window shrinks back. Close under [`HIGH`], so that
/// a busy server hovers at the shortest window that keeps it under [`HIGH`] instead of
/// staying stretched after one busy moment.
pub const LOW: f64 = 0.7;
/// Factor of one step.
pub const STEP: f64 = 1.5;
/// Weight of the newest period in the smoothed share: about the last second counts.
const SMOOTHING: f64 = 0.2;
/// The longest window, however busy the server.
pub const MAX_WINDOW: Duration = Duration::from_millis(50);

/// The least time between two writes of a room's events to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The configured window (`--coalesce-ms`).
    pub base: Duration,
    /// The window while the cores are busy, for a room whose events come fast enough to
    /// put at least [`Window::FILLED`] in it; as long as `base` on a quiet server.
    pub busy: Duration,
}

impl Window {
    /// Events a stretched window must expect to gather to be worth its wait: a room with
    /// fewer would only delay its events, and spend a timer on each.
    pub const FILLED: f64 = 2.0;

    /// The window for a room whose events arrive `rate` a second.
    pub fn for_rate(self, rate: f64) -> Duration {
        if rate * self.busy.as_secs_f64() >= Self::FILLED {
            self.busy
        } else {
            self.base
        }
    }
}

/// The load the hub has seen and the window it sets.
#[derive(Debug)]
pub struct Pressure {
    base: Duration,
    cores: f64,
    stretch: f64,
    last_at: Instant,
    last_cpu: Duration,
    /// The share of the cores used, smoothed over the last few periods.
    smoothed: f64,
}

impl Pressure {
    /// Starts with the configured window `base`, for a process running on `cores` threads.
    pub fn new(base: Duration, cores: usize, now: Instant) -> Self {
        Self {
            base,
            cores: cores.max(1) as f64,
            stretch: 1.0,
            last_at: now,
            last_cpu: cpu::chat(),
            smoothed: 0.0,
        }
    }

    /// How long rooms gather events now: the configured window, and the longer one for
    /// rooms busy enough to fill it.
    pub fn window(&self) -> Window {
        let busy = if self.stretch <= 1.0 {
            self.base
        } else {
            self.base
                .mul_f64(self.stretch)
                .min(MAX_WINDOW.max(self.base))
        };
        Window {
            base: self.base,
            busy,
        }
    }

    /// Looks at the CPU time used since the last look, once a [`PERIOD`] has passed.
    pub fn tick(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_at);
        if elapsed < PERIOD {
            return;
        }
        let cpu = cpu::chat();
        let used = cpu.saturating_sub(self.last_cpu).as_secs_f64();
        self.last_at = now;
        self.last_cpu = cpu;
        self.observe(used / (elapsed.as_secs_f64() * self.cores));
    }

    /// One period in which the cores were busy `share` of the time. One period is 100 ms:
    /// a server at 75 % on average has periods at 55 % and at 95 %, and the window must
    /// not jump with each of them (a stretched window is latency for everybody in the
    /// room), so the window follows the share smoothed over about a second.
    fn observe(&mut self, share: f64) {
        self.smoothed += SMOOTHING * (share - self.smoothed);
        self.adjust(self.smoothed);
    }

    /// One step for a period in which the cores were busy `share` of the time.
    fn adjust(&mut self, share: f64) {
        let before = self.window().busy;
        if share > HIGH {
            let most = MAX_WINDOW.as_secs_f64() / self.base.as_secs_f64().max(1e-6);
            self.stretch = (self.stretch * STEP).min(most.max(1.0));
        } else if share < LOW {
            self.stretch = (self.stretch / STEP).max(1.0);
        }
        let after = self.window().busy;
        if after != before {
            tracing::debug!(
                cpu = share,
                window_ms = after.as_secs_f64() * 1e3,
                "coalescing window"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pressure(base_ms: u64) -> Pressure {
        Pressure::new(Duration::from_millis(base_ms), 1, Instant::now())
    }

    #[test]
    fn a_quiet_server_keeps_the_configured_window() {
        let mut p = pressure(5);
        for _ in 0..20 {
            p.adjust(0.3);
        }
        assert_eq!(p.window().busy, Duration::from_millis(5));
        p.adjust(0.6);
        assert_eq!(
            p.window().busy,
            Duration::from_millis(5),
            "between the marks: no change"
        );
    }

    #[test]
    fn a_busy_server_gathers_longer_up_to_the_cap_and_comes_back() {
        let mut p = pressure(5);
        p.adjust(0.95);
        assert_eq!(p.window().busy, Duration::from_micros(7500));
        for _ in 0..20 {
            p.adjust(1.0);
        }
        assert_eq!(p.window().busy, MAX_WINDOW);
        p.adjust(0.8);
        assert_eq!(p.window().busy, MAX_WINDOW, "between the marks: stays");
        for _ in 0..20 {
            p.adjust(0.2);
        }
        assert_eq!(p.window().busy, Duration::from_millis(5));
    }

    #[test]
    fn a_server_busy_on_average_but_not_near_saturation_keeps_its_window() {
        let mut p = pressure(5);
        for _ in 0..30 {
            p.observe(0.75);
        }
        for _ in 0..30 {
            p.observe(0.55);
            p.observe(0.95);
        }
        assert_eq!(p.window().busy, Duration::from_millis(5));
        for _ in 0..30 {
            p.observe(0.95);
        }
        assert!(
            p.window().busy > Duration::from_millis(5),
            "saturated for 3 s"
        );
    }

    #[test]
    fn no_coalescing_stays_none_and_a_long_window_is_kept() {
        let mut p = pressure(0);
        p.adjust(1.0);
        assert_eq!(p.window().busy, Duration::ZERO);
        let mut p = pressure(80);
        p.adjust(1.0);
        assert_eq!(p.window().busy, Duration::from_millis(80));
    }

    #[test]
    fn only_rooms_that_fill_the_longer_window_wait_for_it() {
        let mut p = pressure(5);
        for _ in 0..20 {
            p.adjust(1.0);
        }
        let window = p.window();
        assert_eq!(window.base, Duration::from_millis(5));
        assert_eq!(window.for_rate(100.0), MAX_WINDOW, "5 events in 50 ms");
        assert_eq!(
            window.for_rate(20.0),
            Duration::from_millis(5),
            "1 in 50 ms"
        );
        assert_eq!(
            pressure(5).window().for_rate(1000.0),
            Duration::from_millis(5)
        );
    }
}
