//! How the client names rooms and direct conversations: a room by its name, a
//! conversation by `@` and the other account's name; each by a case-folded key.

use chat_shared::fold;

/// The prefix of a direct conversation's name inside the client: `@Judy` is the
/// conversation with the account Judy. It never goes on the wire: a `say` to it goes with
/// `to`, a history request with `with`. (No room name can start with it.)
pub const DIRECT: char = '@';

/// The other account of a direct conversation's name (`@Judy` → `Judy`), or `None` for a
/// room.
pub fn direct_with(name: &str) -> Option<&str> {
    name.strip_prefix(DIRECT)
}

/// The case-folded form of a room name, with or without its `#` (a conversation's
/// `@name` keeps its `@`).
pub fn room_key(name: &str) -> String {
    fold(name.trim().trim_start_matches('#'))
}
