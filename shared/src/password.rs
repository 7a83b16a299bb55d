//! The rule a new password must meet (shared/README.md, "Accounts"): the server enforces it,
//! a client checks it before sending so a person learns at once.

use crate::fold;
use crate::limits::{MAX_PASSWORD, MIN_PASSWORD};

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    /// Under [`MIN_PASSWORD`] bytes.
    #[error("a password needs at least {MIN_PASSWORD} bytes")]
    TooShort,
    /// Over [`MAX_PASSWORD`] bytes.
    #[error("a password has at most {MAX_PASSWORD} bytes")]
    TooLong,
    /// The account's name, in any case.
    #[error("the password cannot be the name itself")]
    IsTheName,
}

/// Checks a new password for the account `name`.
pub fn check_password(name: &str, password: &str) -> Result<(), WeakPassword> {
    if password.len() < MIN_PASSWORD {
        Err(WeakPassword::TooShort)
    } else if password.len() > MAX_PASSWORD {
        Err(WeakPassword::TooLong)
    } else if fold(password.trim()) == fold(name.trim()) {
        Err(WeakPassword::IsTheName)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_of_a_new_password() {
        assert_eq!(check_password("alice", ""), Err(WeakPassword::TooShort));
        assert_eq!(
            check_password("alice", "1234567"),
            Err(WeakPassword::TooShort)
        );
        assert_eq!(check_password("alice", "12345678"), Ok(()));
        assert_eq!(check_password("alice", &"x".repeat(128)), Ok(()));
        assert_eq!(
            check_password("alice", &"x".repeat(129)),
            Err(WeakPassword::TooLong)
        );
        assert_eq!(
            check_password("Alexander", "ALEXANDER"),
            Err(WeakPassword::IsTheName)
        );
        // Bytes, not characters: four 2-byte letters are 8 bytes.
        assert_eq!(check_password("bob", "éééé"), Ok(()));
    }
}
