//! A `search` query as people type it: words, `"quoted phrases"`, `from:NAME` and
//! `in:ROOM`. The server parses it to search; the client, to highlight what was found
//! and to complete the filters.

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
