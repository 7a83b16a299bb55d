//! How IRC names what the chat names: nicks, channels, sources, prefixes.

use std::borrow::Cow;

use chat_shared::{Role, fold};

/// The host of every user as IRC shows it (`nick!~u@chat`): addresses are not shown.
pub const HOST: &str = "chat";

/// A name as an IRC nick: a space (which our names may hold, one at a time) becomes a
/// no-break space, which IRC does not split on.
pub fn nick(name: &str) -> Cow<'_, str> {
    if name.contains(' ') {
        Cow::Owned(name.replace(' ', "\u{a0}"))
    } else {
        Cow::Borrowed(name)
    }
}

/// A nick as one of our names: the way back of [`nick`].
pub fn name_of(nick: &str) -> String {
    nick.replace('\u{a0}', " ")
}

/// `nick!~u@chat`: how IRC names the source of a line.
pub fn source(name: &str) -> String {
    format!("{}!~u@{HOST}", nick(name))
}

/// The prefix `NAMES` gives a member with `role`.
pub fn prefix(role: Role) -> &'static str {
    match role {
        Role::Owner => "~",
        Role::Op => "@",
        Role::Member | Role::Unknown => "",
    }
}

/// The key (folded name) of the room a channel (`#room`, or a room's name) names.
pub fn key(channel: &str) -> String {
    fold(channel.strip_prefix('#').unwrap_or(channel))
}

/// How the view knows a room (its key) or a direct conversation with `with` (`@` and
/// that account's key).
pub fn place(room: Option<&str>, with: Option<&str>) -> Option<String> {
    match (room, with) {
        (Some(room), _) => Some(key(room)),
        (None, Some(with)) => Some(format!("@{}", fold(with))),
        (None, None) => None,
    }
}

/// `#room`.
pub fn channel(room: &str) -> String {
    format!("#{room}")
}
