//! A `search` query as people type it: words, `"quoted phrases"`, `from:NAME` and
//! `in:ROOM`. The server parses it to search; the client, to highlight what was found
//! and to complete the filters.

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::limits::MAX_QUERY;

/// A query taken apart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// The bare words, in order.
    pub words: Vec<String>,
    /// The quoted phrases, without their quotes.
    pub phrases: Vec<String>,
    /// `from:NAME`: only this sender's messages.
    pub from: Option<String>,
    /// `in:ROOM` (a leading `#` dropped): only this room's.
    pub room: Option<String>,
    /// Whether the last word is still being typed (nothing after it): it matches as a
    /// prefix.
    pub prefix_last: bool,
}

/// Why a query cannot be searched (`error` `bad_query`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing to search for.
    #[error("the query is empty: give words, a \"phrase\", from:NAME or in:ROOM")]
    Empty,
    /// Over [`MAX_QUERY`] bytes.
    #[error("the query is over {MAX_QUERY} bytes")]
    TooLong,
    /// A `"` with no closing one.
    #[error("a quote in the query is not closed")]
    Unclosed,
    /// `from:` or `in:` with nothing after it.
    #[error("{0} needs a name after it")]
    EmptyFilter(&'static str),
    /// The same filter twice.
    #[error("the query has {0} twice")]
    Twice(&'static str),
}

impl Query {
    /// Takes a query apart. Filters are recognised without case (`From:bob`).
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        if text.len() > MAX_QUERY {
            return Err(QueryError::TooLong);
        }
        let mut query = Query::default();
        let mut rest = text;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('"') {
                let end = after.find('"').ok_or(QueryError::Unclosed)?;
                let phrase = after[..end].trim();
                if !phrase.is_empty() {
                    query.phrases.push(phrase.to_string());
                }
                rest = &after[end + 1..];
                query.prefix_last = false;
                continue;
            }
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            let item = &rest[..end];
            rest = &rest[end..];
            if let Some(name) = filter(item, "from:") {
                set_once(&mut query.from, name, "from:")?;
                query.prefix_last = false;
            } else if let Some(room) = filter(item, "in:") {
                let room = room.strip_prefix('#').unwrap_or(room);
                set_once(&mut query.room, room, "in:")?;
                query.prefix_last = false;
            } else {
                query.words.push(item.to_string());
                query.prefix_last = rest.is_empty();
            }
        }
        if query.words.is_empty()
            && query.phrases.is_empty()
            && query.from.is_none()
            && query.room.is_none()
        {
            return Err(QueryError::Empty);
        }
        Ok(query)
    }

    /// The words and phrases' words, for highlighting what was found.
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        self.words
            .iter()
            .map(String::as_str)
            .chain(self.phrases.iter().flat_map(|p| p.split_whitespace()))
    }

    /// Where the query's words stand in `text`, to highlight them: byte ranges, in order,
    /// not overlapping. A word matches without case or Latin accents where a word of the
    /// text starts (so `check` marks the start of `checker`, as the prefix search finds
    /// it); in a script written without spaces it matches anywhere.
    pub fn highlights(&self, text: &str) -> Vec<Range<usize>> {
        let (hay, origin) = folded(text);
        let mut marked = vec![false; hay.len()];
        let pieces = self
            .terms()
            .flat_map(|term| term.split(|c: char| !c.is_alphanumeric()))
            .filter(|piece| !piece.is_empty());
        for piece in pieces {
            let (needle, _) = folded(piece);
            let anywhere = needle.iter().any(|&c| unspaced(c));
            for start in 0..(hay.len() + 1).saturating_sub(needle.len()) {
                let at_word = anywhere || start == 0 || !hay[start - 1].is_alphanumeric();
                if at_word && hay[start..start + needle.len()] == needle[..] {
                    marked[start..start + needle.len()].fill(true);
                }
            }
        }
        let mut ranges: Vec<Range<usize>> = Vec::new();
        for (range, _) in origin.into_iter().zip(marked).filter(|(_, on)| *on) {
            match ranges.last_mut() {
                Some(last) if last.end >= range.start => last.end = last.end.max(range.end),
                _ => ranges.push(range),
            }
        }
        ranges
    }
}

/// `text` without case or combining accents, one char at a time, each with the byte
/// range of the char of `text` it comes from.
fn folded(text: &str) -> (Vec<char>, Vec<Range<usize>>) {
    let mut chars = Vec::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        let range = at..at + c.len_utf8();
        for base in std::iter::once(c).nfd().filter(|&d| !is_combining_mark(d)) {
            for lower in base.to_lowercase() {
                chars.push(lower);
                origin.push(range.clone());
            }
        }
    }
    (chars, origin)
}

/// Whether a character belongs to a script written without spaces between words (whose
/// words are found by their characters).
pub fn unspaced(c: char) -> bool {
    matches!(u32::from(c),
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x1100..=0x11FF // Hangul Jamo
        | 0x2E80..=0x2FDF // CJK radicals
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3130..=0x318F // Hangul compatibility Jamo
        | 0x31F0..=0x31FF // Katakana extensions
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF66..=0xFF9F // half-width Katakana
        | 0x20000..=0x3134F // CJK extensions B to G
    )
}

/// The value of `item` if it is the filter `name` (any case).
fn filter<'a>(item: &'a str, name: &str) -> Option<&'a str> {
    let head = item.get(..name.len())?;
    head.eq_ignore_ascii_case(name).then(|| &item[name.len()..])
}

fn set_once(slot: &mut Option<String>, value: &str, name: &'static str) -> Result<(), QueryError> {
    if value.is_empty() {
        return Err(QueryError::EmptyFilter(name));
    }
    if slot.is_some() {
        return Err(QueryError::Twice(name));
    }
    *slot = Some(value.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Query, QueryError};

    #[test]
    fn highlights_words_without_case_or_accents_where_words_start() {
        let query = Query::parse(r#"creme "the checker" from:bob"#).expect("parses");
        let text = "Crème brûlée: The checker rechecks; thecheck";
        let marked: Vec<&str> = query
            .highlights(text)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(marked, ["Crème", "The", "checker", "the"]);
        let query = Query::parse("东京 chec").expect("parses");
        let text = "我爱东京 and checks";
        let marked: Vec<&str> = query
            .highlights(text)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(marked, ["东京", "chec"]);
        assert!(
            Query::parse("from:bob")
                .expect("parses")
                .highlights(text)
                .is_empty()
        );
    }

    #[test]
    fn words_phrases_and_filters() {
        let query = Query::parse(r#"borrow "the checker" From:bob in:#rust chec"#).expect("parses");
        assert_eq!(query.words, ["borrow", "chec"]);
        assert_eq!(query.phrases, ["the checker"]);
        assert_eq!(query.from.as_deref(), Some("bob"));
        assert_eq!(query.room.as_deref(), Some("rust"));
        assert!(query.prefix_last);
    }

    #[test]
    fn a_space_after_the_last_word_ends_it() {
        assert!(!Query::parse("chec ").expect("parses").prefix_last);
        assert!(!Query::parse("chec from:bob").expect("parses").prefix_last);
    }

    #[test]
    fn bad_queries_say_why() {
        assert_eq!(Query::parse("   "), Err(QueryError::Empty));
        assert_eq!(Query::parse("\"\""), Err(QueryError::Empty));
        assert_eq!(Query::parse("\"open"), Err(QueryError::Unclosed));
        assert_eq!(Query::parse("from:"), Err(QueryError::EmptyFilter("from:")));
        assert_eq!(Query::parse("in:a in:b"), Err(QueryError::Twice("in:")));
        assert_eq!(Query::parse(&"a".repeat(600)), Err(QueryError::TooLong));
    }

    #[test]
    fn filters_alone_are_queries() {
        assert_eq!(
            Query::parse("from:alice").expect("parses").from.as_deref(),
            Some("alice")
        );
    }
}
