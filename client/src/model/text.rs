//! Reading a message's text: where its links are, and whether it mentions someone.

use std::ops::Range;

/// `text` with its first letter a capital (a server's reason, shown as a sentence).
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The web links in `text`, as byte ranges, with the address each one opens (`www.` links
/// get `https://`). Only `http`, `https` and `www.` links count: a chat must not hand
/// `file:` or other schemes to the system's opener.
pub fn links(text: &str) -> Vec<(Range<usize>, String)> {
    let mut finder = linkify::LinkFinder::new();
    finder
        .kinds(&[linkify::LinkKind::Url])
        .url_must_have_scheme(false);
    finder
        .links(text)
        .filter_map(|link| {
            let raw = link.as_str();
            let lower = raw.to_ascii_lowercase();
            let target = if lower.starts_with("https://") || lower.starts_with("http://") {
                raw.to_string()
            } else if lower.starts_with("www.") {
                format!("https://{raw}")
            } else {
                return None;
            };
            Some((link.start()..link.end(), target))
        })
        .collect()
}

/// Whether `text` mentions the name whose folded form is `folded_name`: the name as a
/// word (not inside a longer word), in any case.
pub fn mentions(text: &str, folded_name: &str) -> bool {
    if folded_name.is_empty() {
        return false;
    }
    let text = chat_shared::fold(text);
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(folded_name).any(|(at, found)| {
        let before = text[..at].chars().next_back();
        let after = text[at + found.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// A server time as local time, if it is one.
pub fn local(ms: u64) -> Option<chrono::DateTime<chrono::Local>> {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(i64::try_from(ms).unwrap_or(i64::MAX))
        .single()
}

/// Now, in ms since the Unix epoch (as the server counts time).
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Local HH:MM of a server time.
pub fn clock(ms: u64) -> String {
    local(ms).map_or_else(|| "--:--".into(), |t| t.format("%H:%M").to_string())
}

/// When a ban or a mute ends, in words for a sentence: "until 14:00" (today, local
/// time), "until 7 Dec 14:00" (another day), "for good" (it does not end by itself).
pub fn until_words(until: Option<u64>, now: u64) -> String {
    let Some(until) = until else {
        return "for good".into();
    };
    match (local(until), local(now)) {
        (Some(end), Some(today)) if end.date_naive() == today.date_naive() => {
            format!("until {}", end.format("%H:%M"))
        }
        (Some(end), _) => format!("until {}", end.format("%-d %b %H:%M")),
        (None, _) => "for good".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_web_links_only() {
        let text = "see https://example.com/a?b=1, www.rust-lang.org and file:///etc/passwd.";
        let found = links(text);
        let shown: Vec<&str> = found.iter().map(|(r, _)| &text[r.clone()]).collect();
        assert_eq!(shown, ["https://example.com/a?b=1", "www.rust-lang.org"]);
        assert_eq!(found[1].1, "https://www.rust-lang.org");
        assert!(links("mail me at a@b.c").is_empty());
    }

    #[test]
    fn a_mention_is_the_name_as_a_word_in_any_case() {
        let me = chat_shared::fold("Alice");
        assert!(mentions("hi alice!", &me));
        assert!(mentions("ALICE: look", &me));
        assert!(mentions("@Alice", &me));
        assert!(!mentions("malice aforethought", &me));
        assert!(!mentions("alice_2 is here", &me));
        assert!(!mentions("alices", &me));
        let mary = chat_shared::fold("Mary Ann");
        assert!(mentions("thanks mary ann.", &mary));
        assert!(mentions("STRASSE", &chat_shared::fold("Straße")));
    }

    #[test]
    fn when_a_ban_ends_in_words() {
        let now = local(1_764_000_000_000).expect("a time").timestamp_millis() as u64;
        assert_eq!(until_words(None, now), "for good");
        let soon = until_words(Some(now + 60_000), now);
        assert!(
            soon.starts_with("until ") && soon.len() == "until 14:00".len(),
            "{soon}"
        );
        let later = until_words(Some(now + 3 * 86_400_000), now);
        assert!(later.len() > "until 14:00".len(), "{later}");
    }
}
