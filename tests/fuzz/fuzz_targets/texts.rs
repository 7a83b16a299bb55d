//! The password, text, topic, emoji and search-query rules, fed arbitrary text: what they
//! accept keeps their promises, and a query's highlights are ranges of the text it marks
//! (in order, apart, on character boundaries).
#![no_main]

use chat_shared::limits::{MAX_EMOJI, MAX_PASSWORD, MIN_PASSWORD};
use chat_shared::search::Query;
use chat_shared::{check_emoji, check_line, check_password, check_text, fold};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    // Two texts in one input: before and after the first U+0001 (a name and a password, a
    // query and a message).
    let (first, second) = raw.split_once('\u{1}').unwrap_or((raw, raw));

    if check_password(first, second).is_ok() {
        assert!((MIN_PASSWORD..=MAX_PASSWORD).contains(&second.len()));
        assert_ne!(
            fold(second.trim()),
            fold(first.trim()),
            "the name as a password"
        );
    }

    let max = 1 + first.len() % 64;
    match check_text(second, max) {
        Ok(()) => {
            assert!(second.len() <= max);
            assert!(!second.trim().is_empty());
            assert!(
                second
                    .chars()
                    .all(|c| !c.is_control() || matches!(c, '\n' | '\t'))
            );
        }
        Err(err) => {
            let _ = err.code();
            let _ = err.to_string();
        }
    }
    if check_line(second, max).is_ok() {
        assert!(second.len() <= max);
        assert!(!second.chars().any(char::is_control));
    }
    if check_emoji(second).is_ok() {
        assert!((1..=MAX_EMOJI).contains(&second.len()));
    }

    if let Ok(query) = Query::parse(first) {
        for text in [second, first] {
            let ranges = query.highlights(text);
            let mut end = 0;
            for range in ranges {
                assert!(range.start >= end, "highlights out of order or overlapping");
                assert!(range.start < range.end && range.end <= text.len());
                assert!(text.is_char_boundary(range.start) && text.is_char_boundary(range.end));
                end = range.end;
            }
        }
    }
});
