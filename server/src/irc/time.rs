//! The `time` tag of `IRCv3` `server-time`: UTC in ISO 8601 with milliseconds.

use std::fmt::Write as _;

/// Writes `millis` since the Unix epoch as `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn write_time(millis: u64, out: &mut String) {
    let (days, rest) = (millis / 86_400_000, millis % 86_400_000);
    let (year, month, day) = civil(i64::try_from(days).unwrap_or(i64::MAX / 2));
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    );
}

/// Reads a `time` tag's `YYYY-MM-DDThh:mm:ss.sssZ` (the milliseconds may be left out) as
/// milliseconds since the Unix epoch; `None` if it is not one, or before 1970.
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, clock) = text.split_once('T')?;
    let mut date = date.splitn(3, '-');
    let number = |part: Option<&str>, digits: usize| {
        part.filter(|part| part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|part| part.parse::<u32>().ok())
    };
    let (year, month, day) = (
        number(date.next(), 4)?,
        number(date.next(), 2)?,
        number(date.next(), 2)?,
    );
    let (clock, millis) = match clock.split_once('.') {
        Some((clock, millis)) => (clock, number(Some(millis), 3)?),
        None => (clock, 0),
    };
    let mut clock = clock.splitn(3, ':');
    let (hour, minute, second) = (
        number(clock.next(), 2)?,
        number(clock.next(), 2)?,
        number(clock.next(), 2)?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(i64::from(year), month, day)).ok()?;
    Some(
        days * 86_400_000
            + u64::from(hour) * 3_600_000
            + u64::from(minute) * 60_000
            + u64::from(second) * 1000
            + u64::from(millis),
    )
}

/// The day counted from 1970-01-01 of a date (the way back of [`civil`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01 (the proleptic Gregorian calendar).
fn civil(days: i64) -> (i64, u32, u32) {
    // Days from 0000-03-01, in eras of 400 years (146,097 days each).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> String {
        let mut out = String::new();
        write_time(millis, &mut out);
        out
    }

    #[test]
    fn times_are_written_in_utc_with_milliseconds() {
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_796_601_755_961), "2026-12-07T00:02:35.961Z");
        assert_eq!(at(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn times_read_back_as_written() {
        for millis in [0, 951_782_400_000, 1_796_601_755_961, 4_102_444_799_999] {
            assert_eq!(parse_time(&at(millis)), Some(millis), "{}", at(millis));
        }
        assert_eq!(parse_time("2026-12-07T00:02:35Z"), Some(1_796_601_755_000));
        for bad in [
            "",
            "2026-12-07",
            "2026-12-07T00:02:35.961",
            "2026-13-07T00:02:35.961Z",
            "2026-12-07T24:00:00.000Z",
            "1969-12-31T23:59:59.999Z",
            "2026-12-07T00:02:35.96Z",
            "+026-12-07T00:02:35.961Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
