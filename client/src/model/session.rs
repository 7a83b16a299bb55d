//! What a login learnt from its `welcome`.

use chat_shared::Limits;

/// What was learnt from a `welcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools, reason = "the facts a welcome states")]
pub struct Session {
    /// The name the server accepted.
    pub name: String,
    /// Everyone in the default room.
    pub users: Vec<String>,
    /// The default room's newest seq before this login: its events up to it are replay,
    /// later ones live.
    pub seq: u64,
    /// The oldest seq the server holds of the default room, 0 if none.
    pub oldest: u64,
    /// The history `seq` counts in.
    pub epoch: String,
    /// The server's limits.
    pub limits: Limits,
    /// Whether this login resumed an earlier one (same epoch, with `since`).
    pub resumed: bool,
    /// Whether events of the default room were lost between the last one seen and the
    /// oldest the server holds.
    pub missed: bool,
    /// A new history started (the server restarted): known `seq` values mean nothing now.
    pub new_epoch: bool,
    /// The default room: `users`, `seq`, `oldest` and the replay after the welcome are
    /// its.
    pub default_room: String,
    /// The rooms the connection is in or is re-joining, in order. Each but the default
    /// room gets a `room` frame (its members, newest seq and oldest) as it is joined.
    pub rooms: Vec<String>,
    /// Whether the name is an account.
    pub account: bool,
    /// For an account: its direct conversations with the latest activity (`@name`, newest
    /// seq), latest first.
    pub conversations: Vec<(String, u64)>,
    /// For an account: its read marker in each of those conversations (`@name`, seq; 0:
    /// none), as the server keeps it for every device.
    pub conversations_read: Vec<(String, u64)>,
    /// Whether the account is one of the server's administrators.
    pub admin: bool,
    /// The account's password is a temporary one its server's operator set: ask for a
    /// new one.
    pub password_reset: bool,
    /// For an account: the rooms it is invited to and has not joined (room, who invited).
    pub invites: Vec<(String, String)>,
}
