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
}

impl TextError {
    /// The `error` code the server answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLong { .. } => ErrorCode::TooLong,
            Self::Empty => ErrorCode::Empty,
            Self::BadText(_) => ErrorCode::BadText,
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

#[cfg(test)]
mod tests {
    use super::*;

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
