//! How long a room keeps its history: `retain_days` of `settings` and of a room's state.

use serde::{Deserialize, Serialize};

use crate::limits::MAX_RETAIN_DAYS;

/// A number of days, fractions allowed, as `settings` carries it. In a client's `settings`
/// 0 means "no limit of the room's own"; in the `settings` event and a room's state it is
/// always above 0. Never NaN or infinite (JSON has neither), so it is `Eq`.
#[derive(Debug, Clone, Copy, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Days(f64);

impl Days {
    /// `days` as a limit a room may have: above 0, at most [`MAX_RETAIN_DAYS`]; `None`
    /// for 0 (no limit); an error for anything else.
    pub fn limit(days: f64) -> Result<Option<Self>, String> {
        if days == 0.0 {
            Ok(None)
        } else if days.is_finite() && days > 0.0 && days <= MAX_RETAIN_DAYS {
            Ok(Some(Self(days)))
        } else {
            Err(format!(
                "retain_days must be between 0 (no limit of the room's own) and {MAX_RETAIN_DAYS}, not {days}"
            ))
        }
    }

    /// What a client's `settings` says to take a room's own limit away: 0.
    pub fn no_limit() -> Self {
        Self(0.0)
    }

    /// `days` as a client's `settings` carries it: a limit, or with `None` no limit.
    pub fn asked(days: Option<Self>) -> Self {
        days.unwrap_or_else(Self::no_limit)
    }

    /// Days, as a number.
    pub fn get(self) -> f64 {
        self.0
    }

    /// As a duration (`None` past what a duration holds, which no limit reaches).
    pub fn duration(self) -> Option<std::time::Duration> {
        std::time::Duration::try_from_secs_f64(self.0 * 86_400.0).ok()
    }
}

impl PartialEq for Days {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Days {}

impl std::fmt::Display for Days {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_above_zero_and_at_most_a_hundred_years() {
        assert_eq!(Days::limit(0.0), Ok(None));
        assert_eq!(Days::limit(0.5).map(|d| d.map(Days::get)), Ok(Some(0.5)));
        assert!(Days::limit(MAX_RETAIN_DAYS).is_ok());
        for bad in [-1.0, MAX_RETAIN_DAYS + 1.0, f64::NAN, f64::INFINITY] {
            assert!(Days::limit(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Days::limit(30.0).ok().flatten().and_then(Days::duration),
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
    }
}
