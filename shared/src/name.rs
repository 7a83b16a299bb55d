//! User names: the rules of the protocol (shared/README.md), and the keys under which two names collide.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::limits::MAX_NAME;

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';

/// Why a name was refused; the message says which rule failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing left after trimming.
    #[error("name is empty")]
    Empty,
    /// Over [`MAX_NAME`] characters.
    #[error("name is {0} characters long; at most {MAX_NAME} are allowed")]
    TooLong(usize),
    /// A control character (U+0000–U+001F, U+007F–U+009F).
    #[error("name contains a control character ({})", codepoint(*.0))]
    Control(char),
    /// An invisible formatting character, such as a bidi override.
    #[error("name contains an invisible formatting character ({})", codepoint(*.0))]
    Format(char),
    /// A private-use character.
    #[error("name contains a private-use character ({})", codepoint(*.0))]
    PrivateUse(char),
    /// Two spaces in a row.
    #[error("name contains two spaces in a row")]
    DoubleSpace,
    /// A space in a room name.
    #[error("a room name has no spaces")]
    Space,
    /// A combining mark that does not follow a letter.
    #[error("a combining mark ({}) must follow a letter", codepoint(*.0))]
    StrayMark(char),
    /// ZWJ or ZWNJ not between two letters.
    #[error("a joiner ({}) must stand between two letters", codepoint(*.0))]
    StrayJoiner(char),
    /// Any other character outside the allowed set.
    #[error(
        "name contains {:?} ({}); use letters, digits, '_', '-', '.' and single spaces",
        .0, codepoint(*.0)
    )]
    Disallowed(char),
}

fn codepoint(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// A valid user name: NFC-normalised, trimmed, 1 to 32 allowed characters.
///
/// The only way to get one is [`Name::parse`], so holding a `Name` proves it is valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<str>);

impl Name {
    /// Normalises (NFC), trims and checks a name against every rule.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let normalised: String = raw.nfc().collect();
        let name = normalised.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        let chars: Vec<char> = name.chars().collect();
        if chars.len() > MAX_NAME {
            return Err(NameError::TooLong(chars.len()));
        }
        for (i, &c) in chars.iter().enumerate() {
            check_char(&chars, i, c)?;
        }
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The keys under which this name collides with others.
    pub fn keys(&self) -> NameKeys {
        NameKeys::of(&self.0)
    }
}

/// A valid room name: NFC-normalised, trimmed, 1 to 32 letters (with their combining
/// marks), digits, `_`, `-` and `.`, no spaces. Shown with a `#` in front; sent without.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Box<str>);

impl RoomName {
    /// Normalises (NFC), trims and checks a room name; a leading `#` is dropped.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let trimmed = raw.trim();
        let name = Name::parse(trimmed.strip_prefix('#').unwrap_or(trimmed))?;
        if name.as_str().contains(' ') {
            return Err(NameError::Space);
        }
        Ok(Self(name.0))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The keys under which this name collides with others: rooms with the same folded
    /// key are the same room; different rooms may not share a skeleton.
    pub fn keys(&self) -> NameKeys {
        NameKeys::of(&self.0)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !is_combining_mark(c)
}

fn check_char(chars: &[char], i: usize, c: char) -> Result<(), NameError> {
    let prev = i.checked_sub(1).map(|p| chars[p]);
    let next = chars.get(i + 1).copied();
    if c.is_control() {
        return Err(NameError::Control(c));
    }
    if is_letter(c) || c.is_numeric() || matches!(c, '_' | '-' | '.') {
        return Ok(());
    }
    if c == ' ' {
        // Trimming removed outer spaces, so only doubles remain to refuse.
        return if next == Some(' ') {
            Err(NameError::DoubleSpace)
        } else {
            Ok(())
        };
    }
    if is_combining_mark(c) {
        // A run of marks is fine as long as a letter starts it.
        let base = chars[..i].iter().rev().find(|&&p| !is_combining_mark(p));
        return match base {
            Some(&b) if is_letter(b) => Ok(()),
            _ => Err(NameError::StrayMark(c)),
        };
    }
    if c == ZWJ || c == ZWNJ {
        let letter = |x: Option<char>| x.is_some_and(|x| is_letter(x) || is_combining_mark(x));
        return if letter(prev) && letter(next) {
            Ok(())
        } else {
            Err(NameError::StrayJoiner(c))
        };
    }
    if is_format(c) {
        return Err(NameError::Format(c));
    }
    if is_private_use(c) {
        return Err(NameError::PrivateUse(c));
    }
    Err(NameError::Disallowed(c))
}

/// Invisible formatting characters (general category Cf) that people paste into names.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

fn is_private_use(c: char) -> bool {
    matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The two keys under which names collide, as Ergo does: case-folded, and case-folded
/// confusable skeleton (UTS #39). Two names collide when either key is equal; neither key
/// alone catches both `ALICE` and `AIice` as `alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameKeys {
    /// `casefold(name)`: catches `Alice`/`ALICE`.
    pub folded: String,
    /// `casefold(skeleton(name))`: catches `A1ice`, `AIice` and Cyrillic `аlice`.
    pub skeleton: String,
}

/// Case-folds `text` and normalises the result (NFC): the form in which names are compared,
/// and in which a client looks for its own name in a message.
pub fn fold(text: &str) -> String {
    // Folding can undo normalisation (`ß` + U+0301 folds to `ss` + U+0301, while `Ś`
    // folds to the precomposed `ś`), so the result is normalised again.
    caseless::default_case_fold_str(text).nfc().collect()
}

impl NameKeys {
    fn of(name: &str) -> Self {
        let skeleton: String = unicode_security::skeleton(name).collect();
        Self {
            folded: fold(name),
            skeleton: fold(&skeleton),
        }
    }

    /// Whether two names with these keys may not be online at once.
    pub fn collides(&self, other: &Self) -> bool {
        self.folded == other.folded || self.skeleton == other.skeleton
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> NameKeys {
        Name::parse(s).expect("valid").keys()
    }

    #[test]
    fn confusables_collide() {
        let alice = key("alice");
        for other in [
            "Alice",
            "ALICE",
            "A1ice",
            "AIice",
            "\u{0430}lice",
            " alice ",
        ] {
            assert!(
                alice.collides(&key(other)),
                "{other} should collide with alice"
            );
        }
        assert!(!alice.collides(&key("alicia")));
        assert!(!alice.collides(&key("bob")));
    }

    #[test]
    fn keys_survive_folding_that_denormalises() {
        assert!(key("a\u{DF}\u{301}").collides(&key("ASS\u{301}")));
    }

    #[test]
    fn normalises_and_trims() {
        let n = Name::parse("  Jose\u{0301} ").expect("valid");
        assert_eq!(n.as_str(), "Jos\u{e9}");
    }

    #[test]
    fn accepts_scripts_and_punctuation() {
        for ok in [
            "a",
            "Zoë",
            "李小龙",
            "Ελένη",
            "محمد",
            "अनु",
            "x_y-z.w",
            "Mary Ann",
            "१२३",
            "क्\u{200D}ष",
        ] {
            assert!(Name::parse(ok).is_ok(), "{ok:?} should be valid");
        }
    }

    #[test]
    fn room_names() {
        for ok in ["general", "#rust", "Café", "हिंदी", "dev-ops_2.0", "李"] {
            assert!(RoomName::parse(ok).is_ok(), "{ok:?} should be a room");
        }
        assert_eq!(
            RoomName::parse("#rust").map(|r| r.to_string()),
            Ok("rust".into())
        );
        assert_eq!(RoomName::parse("two words"), Err(NameError::Space));
        assert_eq!(RoomName::parse("#"), Err(NameError::Empty));
        assert!(RoomName::parse("a!").is_err());
        assert!(
            RoomName::parse("General")
                .expect("room")
                .keys()
                .collides(&RoomName::parse("general").expect("room").keys())
        );
    }

    #[test]
    fn each_rule_has_its_error() {
        let cases: &[(&str, NameError)] = &[
            ("   ", NameError::Empty),
            (&"a".repeat(33), NameError::TooLong(33)),
            ("a\u{7}b", NameError::Control('\u{7}')),
            ("a\u{202E}b", NameError::Format('\u{202E}')),
            ("a\u{E000}", NameError::PrivateUse('\u{E000}')),
            ("a  b", NameError::DoubleSpace),
            ("\u{0301}a", NameError::StrayMark('\u{0301}')),
            ("a\u{200D}", NameError::StrayJoiner('\u{200D}')),
            ("a!b", NameError::Disallowed('!')),
            ("a\tb", NameError::Control('\t')),
            ("x\u{0378}", NameError::Disallowed('\u{0378}')),
        ];
        for (raw, want) in cases {
            assert_eq!(Name::parse(raw).as_ref(), Err(want), "{raw:?}");
        }
    }
}
