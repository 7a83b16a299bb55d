//! Who is in a room, in the order people expect to read a list of names.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// The members of a room, kept in natural order: case-insensitive, numbers by value
/// (`Ahmed_43` before `Ahmed_183`).
#[derive(Debug, Clone, Default)]
pub struct Members {
    sorted: BTreeMap<NaturalKey, String>,
    by_folded: HashMap<String, NaturalKey>,
}

impl Members {
    /// A list holding `names`.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut members = Self::default();
        for name in names {
            members.insert(name);
        }
        members
    }

    /// Adds someone (once, whatever the case of the name).
    pub fn insert(&mut self, name: &str) {
        let folded = chat_shared::fold(name);
        if let Some(old) = self.by_folded.remove(&folded) {
            self.sorted.remove(&old);
        }
        let key = NaturalKey::of(&folded);
        self.sorted.insert(key.clone(), name.to_string());
        self.by_folded.insert(folded, key);
    }

    /// Removes someone.
    pub fn remove(&mut self, name: &str) {
        if let Some(key) = self.by_folded.remove(&chat_shared::fold(name)) {
            self.sorted.remove(&key);
        }
    }

    /// Whether someone is in.
    pub fn contains(&self, name: &str) -> bool {
        self.by_folded.contains_key(&chat_shared::fold(name))
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether nobody is in.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The names, in natural order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + Clone {
        self.sorted.values().map(String::as_str)
    }

    /// The names that start with `prefix` (case-insensitive), in natural order: what Tab
    /// completes to.
    pub fn starting_with(&self, prefix: &str) -> Vec<&str> {
        let prefix = chat_shared::fold(prefix);
        self.by_folded
            .iter()
            .filter(|(folded, _)| folded.starts_with(&prefix))
            .map(|(_, key)| key)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter_map(|key| self.sorted.get(key).map(String::as_str))
            .collect()
    }
}

/// A sort key that orders digit runs by their value: the folded name with each run of
/// ASCII digits replaced by its length and its digits (leading zeros dropped), then the
/// folded name itself so that different names never share a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NaturalKey(Vec<Part>, String);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Part {
    Number(usize, String),
    Text(String),
}

impl NaturalKey {
    fn of(folded: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = folded;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits > 0 {
                let number = rest[..digits].trim_start_matches('0');
                parts.push(Part::Number(number.len(), number.to_string()));
                rest = &rest[digits..];
            } else {
                let text = rest
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(rest.len());
                parts.push(Part::Text(rest[..text].to_string()));
                rest = &rest[text..];
            }
        }
        Self(parts, folded.to_string())
    }
}

impl Ord for Part {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Part::Number(a, da), Part::Number(b, db)) => a.cmp(b).then_with(|| da.cmp(db)),
            // Numbers before words, as file managers do.
            (Part::Number(..), Part::Text(_)) => Ordering::Less,
            (Part::Text(_), Part::Number(..)) => Ordering::Greater,
            (Part::Text(a), Part::Text(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Part {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NaturalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0).then_with(|| self.1.cmp(&other.1))
    }
}

impl PartialOrd for NaturalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_is_case_insensitive_with_numbers_by_value() {
        let members = Members::from_names([
            "Ahmed_183",
            "ahmed_43",
            "bob",
            "Ahmed_7",
            "Zoë",
            "alice",
            "ahmed_043x",
        ]);
        let names: Vec<&str> = members.iter().collect();
        assert_eq!(
            names,
            [
                "Ahmed_7",
                "ahmed_43",
                "ahmed_043x",
                "Ahmed_183",
                "alice",
                "bob",
                "Zoë"
            ]
        );
    }

    #[test]
    fn insert_and_remove_ignore_case() {
        let mut members = Members::from_names(["Bob"]);
        members.insert("BOB");
        assert_eq!(members.len(), 1);
        assert!(members.contains("bob"));
        members.remove("bOb");
        assert!(members.is_empty());
    }

    #[test]
    fn completion_candidates_are_prefix_matches_in_order() {
        let members = Members::from_names(["carol", "Carl_10", "carl_9", "dave"]);
        assert_eq!(members.starting_with("CAR"), ["carl_9", "Carl_10", "carol"]);
        assert!(members.starting_with("x").is_empty());
    }
}
