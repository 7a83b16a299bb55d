//! The rules a message text must follow, checked by the server and, before sending, by
//! clients.

use crate::protocol::ErrorCode;

/// Why a text cannot be posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Over the limit, in bytes of UTF-8.
    #[error("text is {len} bytes; at most {max} are allowed")]
    TooLong {
        /// The text's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nothing but white space.
    #[error("text is blank")]
    Empty,
    /// A control character other than newline and tab.
    #[error("text contains a control character (U+{:04X})", u32::from(*.0))]
    BadText(char),
    /// A reaction that is not one emoji.
    #[error("a reaction is one emoji")]
    NotEmoji,
}

impl TextError {
    /// The `error` code the server answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLong { .. } => ErrorCode::TooLong,
            Self::Empty => ErrorCode::Empty,
            Self::BadText(_) | Self::NotEmoji => ErrorCode::BadText,
        }
    }
}

/// Checks a `say` text against the rules, with `max` bytes at most.
pub fn check_text(text: &str, max: usize) -> Result<(), TextError> {
    if text.len() > max {
        return Err(TextError::TooLong {
            len: text.len(),
            max,
        });
    }
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    match text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        Some(c) => Err(TextError::BadText(c)),
        None => Ok(()),
    }
}

/// Checks a one-line text (a room's topic, the reason given with a removal or a ban)
/// against `max` bytes: it may be empty, and may hold no control character at all.
pub fn check_line(text: &str, max: usize) -> Result<(), TextError> {
    if text.len() > max {
        return Err(TextError::TooLong {
            len: text.len(),
            max,
        });
    }
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(TextError::BadText(c)),
        None => Ok(()),
    }
}

/// Checks a reaction: one emoji of Unicode's list (a single grapheme cluster: skin tones,
/// flags, keycaps and sequences joined with U+200D included), with or without its
/// variation selector, in at most [`MAX_EMOJI`] bytes.
///
/// [`MAX_EMOJI`]: crate::limits::MAX_EMOJI
pub fn check_emoji(emoji: &str) -> Result<(), TextError> {
    if emoji.is_empty() || emoji.len() > crate::limits::MAX_EMOJI {
        return Err(TextError::NotEmoji);
    }
    let known = emojis::get(emoji).is_some()
        || (emoji.contains('\u{FE0F}') && emojis::get(&emoji.replace('\u{FE0F}', "")).is_some());
    if known {
        Ok(())
    } else {
        Err(TextError::NotEmoji)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaction_is_one_emoji() {
        for good in ["👍", "❤️", "❤", "👍🏽", "🇫🇷", "👩‍👩‍👧", "1️⃣", "🏳️‍🌈"]
        {
            assert_eq!(check_emoji(good), Ok(()), "{good}");
        }
        for bad in ["", "a", "👍👍", "👍 ", ":+1:", "\u{200D}", "🇫", "x\u{20E3}"] {
            assert_eq!(check_emoji(bad), Err(TextError::NotEmoji), "{bad:?}");
        }
        assert_eq!(check_emoji(&"👍".repeat(9)), Err(TextError::NotEmoji));
    }

    #[test]
    fn a_line_may_be_empty_and_holds_no_control_character() {
        assert_eq!(check_line("", 10), Ok(()));
        assert_eq!(check_line("Rust talk", 10), Ok(()));
        assert_eq!(check_line("a\nb", 10), Err(TextError::BadText('\n')));
        assert_eq!(
            check_line("0123456789x", 10),
            Err(TextError::TooLong { len: 11, max: 10 })
        );
    }

    #[test]
    fn rules() {
        assert_eq!(check_text("hi\n\tthere", 10), Ok(()));
        assert_eq!(check_text("  \n\t", 10), Err(TextError::Empty));
        assert_eq!(check_text("", 10), Err(TextError::Empty));
        assert_eq!(
            check_text("é", 1),
            Err(TextError::TooLong { len: 2, max: 1 })
        );
        assert_eq!(check_text("a\rb", 10), Err(TextError::BadText('\r')));
        assert_eq!(check_text("a\u{7f}", 10), Err(TextError::BadText('\u{7f}')));
    }
}
