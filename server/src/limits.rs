//! Flood control: a token bucket for posts, and a meter that spots a client far over it.

use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            updated: now,
        }
    }

    /// Takes a token if there is one; otherwise says how long until there will be.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// The window in which frames over the rate are counted towards `flood`.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// Counts frames (of any type) sent beyond the rate; a client with more than
/// `10 × burst` of them within [`FLOOD_WINDOW`] is flooding.
#[derive(Debug)]
pub struct FloodMeter {
    bucket: TokenBucket,
    excess: u32,
    window_start: Instant,
    allowed_excess: u32,
}

impl FloodMeter {
    /// A meter for the given rate and burst.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(rate, burst, now),
            excess: 0,
            window_start: now,
            allowed_excess: burst.saturating_mul(10),
        }
    }

    /// Records one frame; returns `true` when the client is flooding.
    pub fn record(&mut self, now: Instant) -> bool {
        if self.bucket.take(now).is_ok() {
            return false;
        }
        if now.saturating_duration_since(self.window_start) > FLOOD_WINDOW {
            self.window_start = now;
            self.excess = 0;
        }
        self.excess += 1;
        self.excess > self.allowed_excess
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5, 20, t0);
        for _ in 0..20 {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(200));
        assert!(bucket.take(t0 + Duration::from_millis(200)).is_ok());
        assert!(bucket.take(t0 + Duration::from_millis(200)).is_err());
    }

    #[test]
    fn flood_needs_ten_bursts_over_the_rate() {
        let t0 = Instant::now();
        let mut meter = FloodMeter::new(5, 20, t0);
        // The burst itself plus 10 × burst over it are tolerated; one more is a flood.
        for i in 0..(20 + 200) {
            assert!(!meter.record(t0), "frame {i}");
        }
        assert!(meter.record(t0));
    }

    #[test]
    fn flood_window_forgets() {
        let t0 = Instant::now();
        let mut meter = FloodMeter::new(1, 1, t0);
        for _ in 0..11 {
            assert!(!meter.record(t0));
        }
        // Eleven seconds later the bucket refilled and the window restarted.
        let later = t0 + Duration::from_secs(11);
        for _ in 0..11 {
            assert!(!meter.record(later));
        }
    }
}
