//! The frames of the protocol (shared/README.md) as Rust types, in both directions.
//!
//! Frames are JSON objects internally tagged on `type` with `snake_case` names. Optional
//! fields are left out when absent. Every code enum has an `Unknown` fallback so that a
//! newer peer never breaks an older one: unknown codes decode to `Unknown`.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks (`hello.protocol`, `welcome.protocol`): version
/// 2 adds rooms, accounts and direct messages to version 1; version 3 adds moderation (and,
/// in time, a message's life, typing, read markers and search).
pub const PROTOCOL_VERSION: u32 = 3;

/// The versions a server accepts.
pub const PROTOCOL_VERSIONS: std::ops::RangeInclusive<u32> = 1..=3;

/// A frame sent by a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Log in; must be the first frame of a connection.
    Hello {
        /// Protocol version the client speaks.
        protocol: u32,
        /// The wanted name, as typed; the server validates and normalises it.
        name: String,
        /// The last `seq` this client saw, to resume after a reconnect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// The epoch `since` counts in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        /// The token of an earlier `welcome`, to take that session over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The account's password (only over TLS or from a loopback address).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Password>,
        /// Create the account `name` with `password`, then log in.
        #[serde(default, skip_serializing_if = "is_false")]
        register: bool,
    },
    /// Post a message to a room, or (with `to`) a direct message to an account.
    Say {
        /// The room (default: the server's default room).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// A direct message to this account instead (not with `room`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The message text.
        text: String,
        /// A client-chosen unique id, so a re-sent copy is dropped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// An action ("/me waves"), shown as such.
        #[serde(default, skip_serializing_if = "is_false")]
        me: bool,
        /// The seq of the message (of the same room or conversation) this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    /// Ask for events of the current epoch: the newest `limit` before `before`, or the
    /// oldest `limit` after `after` (at most one of the two; neither means before the
    /// newest + 1). The answer is oldest first, then `history_end`.
    History {
        /// The room (default: the server's default room).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The direct conversation with this account instead (not with `room`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Only events with a seq below this one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// Only events with a seq above this one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// How many at most (the server caps it at 200, default 50).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Keep-alive; answered with `pong` carrying the same token.
    Ping {
        /// Echoed back in the `pong`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Answer to a server `ping`.
    Pong {
        /// The token of the `ping` it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Leave the server; it flushes, closes and records `left`/`quit` in every room.
    Bye,
    /// Enter a room (created if it does not exist); also how a client resumes a room.
    Join {
        /// The room.
        room: String,
        /// Resume after this seq of the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// Leave a room.
    Part {
        /// The room.
        room: String,
    },
    /// List the rooms that have someone in them.
    Rooms,
    /// Change the account's password.
    SetPassword {
        /// The password now.
        password: Password,
        /// The new one.
        new_password: Password,
    },
    /// Set a room's topic (owners and ops); an empty text clears it.
    Topic {
        /// The room.
        room: String,
        /// The topic, at most 512 bytes.
        text: String,
    },
    /// Give an account a role in a room (owners).
    Role {
        /// The room.
        room: String,
        /// The account.
        name: String,
        /// Its role from now on.
        role: Role,
    },
    /// Put a member out of a room (owners and ops); it may join again.
    Remove {
        /// The room.
        room: String,
        /// Who.
        name: String,
        /// Why, at most 512 bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Ban a name from a room (owners and ops), or, without `room`, from the server
    /// (administrators).
    Ban {
        /// The room; absent: the whole server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The name (an account, or a guest name with every name that looks like it).
        name: String,
        /// Why, at most 512 bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// For how long; absent: until unbanned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u64>,
        /// A server ban: the address the named user is connected from too.
        #[serde(default, skip_serializing_if = "is_false")]
        address: bool,
    },
    /// Lift a ban of a room, or, without `room`, of the server.
    Unban {
        /// The room; absent: the whole server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The name.
        name: String,
    },
    /// Let a name stay in a room and read, but not post there (owners and ops).
    Mute {
        /// The room.
        room: String,
        /// The name.
        name: String,
        /// For how long; absent: until unmuted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u64>,
    },
    /// Lift a mute.
    Unmute {
        /// The room.
        room: String,
        /// The name.
        name: String,
    },
    /// Change a room's settings (owners).
    Settings {
        /// The room.
        room: String,
        /// Whether only the invited (and those with a role) may join.
        invite_only: bool,
        /// How many days the room keeps its history (0: no limit of its own); absent:
        /// as it is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retain_days: Option<crate::Days>,
    },
    /// Let an account join a room that is invite-only (owners and ops).
    Invite {
        /// The room.
        room: String,
        /// The account.
        name: String,
    },
    /// Delete a message: its author's own (accounts), or, in a room, anyone's (owners and
    /// ops).
    Delete {
        /// The room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The direct conversation with this account instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// The message's seq.
        seq: u64,
    },
    /// Change the text of one's own message (accounts).
    Edit {
        /// The room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The direct conversation with this account instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// The message's seq.
        seq: u64,
        /// Its text from now on (the rules of `say`).
        text: String,
    },
    /// Add (`on`) or take back a reaction to a message.
    React {
        /// The room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The direct conversation with this account instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// The message's seq.
        seq: u64,
        /// One emoji.
        emoji: String,
        /// Added (true) or taken back (false).
        on: bool,
    },
    /// The sender is composing a message (relayed, never recorded).
    Typing {
        /// The room (not with `to`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The account written to instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// The newest seq the person has seen in a room or conversation (accounts).
    Read {
        /// The room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The direct conversation with this account instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// The seq.
        seq: u64,
    },
    /// Find messages: words, `"quoted phrases"`, `from:NAME` and `in:ROOM`.
    Search {
        /// What to find.
        query: String,
        /// Only this room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Only the direct conversation with this account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// The most results (at most 50; 20 when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Where the previous page ended (from `search_results`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
}

impl ClientFrame {
    /// The `type` tags this enum decodes.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "say",
        "history",
        "ping",
        "pong",
        "bye",
        "join",
        "part",
        "rooms",
        "set_password",
        "topic",
        "role",
        "remove",
        "ban",
        "unban",
        "mute",
        "unmute",
        "settings",
        "invite",
        "delete",
        "edit",
        "react",
        "typing",
        "read",
        "search",
    ];
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May do everything in the room, ops' steps and roles and settings too.
    Owner,
    /// May set the topic, put members out, ban, mute, invite and delete messages.
    Op,
    /// Everyone else.
    Member,
    /// A role this version does not know: treated as a member.
    #[serde(other)]
    Unknown,
}

impl Role {
    /// The role as the protocol spells it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Op => "op",
            Self::Member | Self::Unknown => "member",
        }
    }

    /// The role a word names (an unknown word is a member).
    pub fn from_word(word: &str) -> Self {
        match word {
            "owner" => Self::Owner,
            "op" => Self::Op,
            _ => Self::Member,
        }
    }
}

/// An invitation to a room, in `welcome.invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The room.
    pub room: String,
    /// Who invited.
    pub by: String,
}

/// A ban or a mute in force in a room, in the `room` answer for those who may lift it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    /// The name as it was given.
    pub name: String,
    /// Who set it.
    pub by: String,
    /// Why, if it was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it ends, ms since the Unix epoch; absent: when it is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// A password as it crosses the wire: its `Debug` shows nothing of it, so it never reaches
/// a log by accident. Only [`Password::expose`] reads it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password itself, for hashing or sending.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A room's moderation state as the `room` answer gives it to one member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// Its topic, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The accounts with a role other than member, online or not: name to role.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub roles: std::collections::BTreeMap<String, Role>,
    /// Whether only the invited (and those with a role) may join.
    #[serde(default, skip_serializing_if = "is_false")]
    pub invite_only: bool,
    /// How many days the room keeps its history, if it has a limit of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_days: Option<crate::Days>,
    /// For those who may lift them: the bans in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bans: Vec<Restriction>,
    /// For those who may lift them: the mutes in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mutes: Vec<Restriction>,
    /// For those who may invite: the accounts invited who have not joined yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invites: Vec<String>,
}

/// A direct conversation in `welcome.conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The other account (the account itself for notes to self).
    pub with: String,
    /// Its newest seq.
    pub seq: u64,
    /// The account's read marker there (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read: u64,
}

/// Adds (`on`) or takes back `from`'s reaction with `emoji` in a message's reactions, as a
/// recorded `reaction` says: the count goes up or down, the name is listed (up to
/// [`MAX_REACTION_NAMES`]) or taken off (by case-folded name), and an emoji nobody reacts
/// with any more leaves the list. The server and clients apply it alike. A reaction the
/// list shows already (a replay brings a message as it is now, then the events that made
/// it so) changes nothing, nor does taking back one it does not hold.
///
/// [`MAX_REACTION_NAMES`]: crate::limits::MAX_REACTION_NAMES
pub fn apply_reaction(reactions: &mut Vec<Reaction>, from: &str, emoji: &str, on: bool) {
    let key = crate::fold(from);
    let at = reactions.iter().position(|r| r.emoji == emoji);
    let listed = at.is_some_and(|at| reactions[at].names.iter().any(|n| crate::fold(n) == key));
    match (at, on) {
        (Some(_), true) if listed => {}
        (Some(at), true) => {
            let reaction = &mut reactions[at];
            reaction.count = reaction.count.saturating_add(1);
            if reaction.names.len() < crate::limits::MAX_REACTION_NAMES {
                reaction.names.push(from.to_string());
            }
        }
        (None, true) => reactions.push(Reaction {
            emoji: emoji.to_string(),
            count: 1,
            names: vec![from.to_string()],
        }),
        (Some(at), false) => {
            let reaction = &mut reactions[at];
            // Not listed: one of those beyond the names, if there are any.
            if !listed && reaction.names.len() >= reaction.count as usize {
                return;
            }
            reaction.count = reaction.count.saturating_sub(1);
            reaction.names.retain(|n| crate::fold(n) != key);
            if reaction.count == 0 {
                reactions.remove(at);
            }
        }
        (None, false) => {}
    }
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: String,
    /// How many reacted with it.
    pub count: u32,
    /// Who did, in the order they did (at most [`MAX_REACTION_NAMES`]).
    ///
    /// [`MAX_REACTION_NAMES`]: crate::limits::MAX_REACTION_NAMES
    pub names: Vec<String>,
}

/// For `skip_serializing_if` on numbers that are absent when 0.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// For `skip_serializing_if` on flags that are false unless set.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

/// The limits the server enforces, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Longest client frame in bytes, newline included.
    pub max_frame: u32,
    /// Longest `say` text in bytes of UTF-8.
    pub max_text: u32,
    /// Longest name in Unicode scalar values.
    pub max_name: u32,
    /// Posts per second allowed per client (0: no limit).
    pub rate: u32,
    /// Posts allowed in a burst above the rate.
    pub burst: u32,
}

impl Default for Limits {
    /// The protocol's default limits (what a server announces with default flags).
    fn default() -> Self {
        use crate::limits;
        Self {
            max_frame: limits::MAX_FRAME as u32,
            max_text: limits::MAX_TEXT as u32,
            max_name: limits::MAX_NAME as u32,
            rate: limits::RATE,
            burst: limits::BURST,
        }
    }
}

/// A frame sent by the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Login accepted.
    Welcome {
        /// Protocol version the server speaks.
        protocol: u32,
        /// The name as the server accepted it (trimmed, NFC).
        name: String,
        /// Everyone in the default room, this client included, sorted by case-folded name.
        users: Vec<String>,
        /// The newest seq of the default room before this login; later seqs are live.
        seq: u64,
        /// The oldest seq the server still holds, 0 if none.
        oldest: u64,
        /// Names the history `seq` counts in.
        epoch: String,
        /// Presented in a later `hello` to take this session over.
        token: String,
        /// The rooms this connection is in, in the order they were joined.
        #[serde(default)]
        rooms: Vec<String>,
        /// Whether the name is an account (logged in with its password or its token).
        #[serde(default)]
        account: bool,
        /// For an account: its direct conversations with the latest activity, latest first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversations: Option<Vec<Conversation>>,
        /// For an account: the rooms it is invited to and has not joined yet.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        invites: Vec<Invitation>,
        /// Whether the account is one of the server's administrators.
        #[serde(default, skip_serializing_if = "is_false")]
        admin: bool,
        /// Whether the account's password is a temporary one its server's operator set:
        /// the client should ask for a new one (`set_password`, with the temporary one as
        /// `password`).
        #[serde(default, skip_serializing_if = "is_false")]
        password_reset: bool,
        /// The limits the server enforces.
        limits: Limits,
    },
    /// Login refused; the server closes.
    Rejected {
        /// Why.
        code: RejectCode,
        /// Why, in words for a person.
        message: String,
        /// When to try again, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// A chat message.
    Message {
        /// Its room (absent only from a server that has a single room, and on a direct
        /// message).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// On a direct message: the other party as the receiver sees it (on the sender's
        /// echo, the recipient).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// The name the server accepted for the sender.
        from: String,
        /// The text (absent, so empty here, once the message is deleted).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
        /// The sender's id for this post, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// An action ("/me waves").
        #[serde(default, skip_serializing_if = "is_false")]
        me: bool,
        /// The message was deleted: it keeps its seq, time and sender, and has no text.
        #[serde(default, skip_serializing_if = "is_false")]
        deleted: bool,
        /// The seq of the message this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// When it was last edited (ms since the Unix epoch), if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited: Option<u64>,
        /// Its reactions, in the order the emoji were first used.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reactions: Vec<Reaction>,
    },
    /// Someone entered the room.
    Joined {
        /// Its room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who.
        name: String,
    },
    /// Someone left the room.
    Left {
        /// Its room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who.
        name: String,
        /// Why.
        reason: LeaveReason,
        /// With `removed` or `banned`: the moderator who put the member out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// With `removed` or `banned`: why, if the moderator said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The end of a `history` answer.
    HistoryEnd {
        /// The room asked about.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The direct conversation asked about.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// The `before` of the request (newest + 1 when it named neither).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        /// The `after` of the request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// How many events the answer held.
        count: u32,
    },
    /// A non-fatal problem with one frame, which had no effect.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// What went wrong, in words for a person.
        message: String,
        /// The `id` of the `say` this answers, if it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The room named by the frame this answers (`join`, `part`, `say`, `history`), as
        /// the frame spelled it, so a client knows which of its requests failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// With `rate_limited`: when a post will be accepted again, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        /// With `banned`: when the ban ends, ms since the Unix epoch (absent: when lifted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// The server is about to close this connection.
    Closing {
        /// Why.
        code: CloseCode,
        /// Why, in words for a person.
        message: String,
    },
    /// Keep-alive.
    Ping {
        /// To be echoed in the `pong`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Answer to a client `ping`.
    Pong {
        /// The token of the `ping` it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// The answer to `join`: the room as it is; events with seq up to `seq` that follow
    /// are its replay.
    Room {
        /// The room, as spelled when it was created.
        room: String,
        /// Its members, this connection included, sorted by case-folded name.
        users: Vec<String>,
        /// Its newest seq.
        seq: u64,
        /// The oldest seq held, 0 if none.
        oldest: u64,
        /// Its topic, roles, settings, and what the member may lift (version 3; its
        /// fields stand beside the others on the wire).
        #[serde(flatten)]
        state: RoomState,
        /// For an account: its read marker in the room (0: none).
        #[serde(default, skip_serializing_if = "is_zero")]
        read: u64,
    },
    /// The answer to `rooms`.
    RoomList {
        /// The rooms with someone in them, most members first.
        rooms: Vec<RoomUsers>,
    },
    /// The answer to `set_password`: the new password is in force.
    PasswordChanged,
    /// A room's topic changed (an empty text: cleared).
    Topic {
        /// Its room.
        room: String,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who set it.
        by: String,
        /// The topic.
        text: String,
    },
    /// A role was given or taken.
    Role {
        /// Its room.
        room: String,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who gave it.
        by: String,
        /// To whom.
        name: String,
        /// The role from now on.
        role: Role,
    },
    /// A ban was set: of a room (recorded there), or of the server (`room` and `seq`
    /// absent; sent to the administrators online).
    Ban {
        /// Its room; absent for a server ban.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Room sequence number; absent (0) for a server ban.
        #[serde(default, skip_serializing_if = "is_zero")]
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who set it.
        by: String,
        /// The name banned.
        name: String,
        /// Why, if it was said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// When it ends, ms since the Unix epoch; absent: when it is lifted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// A ban was lifted (of a room, or without `room` and `seq`, of the server).
    Unban {
        /// Its room; absent for a server ban.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Room sequence number; absent (0) for a server ban.
        #[serde(default, skip_serializing_if = "is_zero")]
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who lifted it.
        by: String,
        /// The name.
        name: String,
    },
    /// A mute was set.
    Mute {
        /// Its room.
        room: String,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who set it.
        by: String,
        /// The name muted.
        name: String,
        /// When it ends, ms since the Unix epoch; absent: when it is lifted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// A mute was lifted.
    Unmute {
        /// Its room.
        room: String,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who lifted it.
        by: String,
        /// The name.
        name: String,
    },
    /// A room's settings changed.
    Settings {
        /// Its room.
        room: String,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who changed them.
        by: String,
        /// Whether only the invited (and those with a role) may join.
        invite_only: bool,
        /// How many days the room keeps its history, if it has a limit of its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retain_days: Option<crate::Days>,
    },
    /// An account was invited to a room (recorded there, so the room's members see it).
    Invite {
        /// Its room.
        room: String,
        /// Room sequence number.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who invited.
        by: String,
        /// The account invited.
        name: String,
    },
    /// A message was deleted.
    Deleted {
        /// Its room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Its direct conversation instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Sequence number of this event.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who deleted it.
        by: String,
        /// The deleted message's seq.
        target: u64,
    },
    /// A message was edited by its author.
    Edited {
        /// Its room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Its direct conversation instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Sequence number of this event.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// The author.
        from: String,
        /// The edited message's seq.
        target: u64,
        /// Its text from now on (absent once the message is deleted).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
    },
    /// A reaction was added (`on`) or taken back.
    Reaction {
        /// Its room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// Its direct conversation instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Sequence number of this event.
        seq: u64,
        /// Server time, milliseconds since the Unix epoch.
        time: u64,
        /// Who reacted.
        from: String,
        /// The message's seq.
        target: u64,
        /// The emoji.
        emoji: String,
        /// Added (true) or taken back (false).
        on: bool,
    },
    /// Someone is composing (to version-3 connections; not recorded).
    Typing {
        /// Its room (not with `with`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The direct conversation with this account instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Who.
        name: String,
    },
    /// This account was invited to a room (to the invitee's connections; not recorded).
    Invited {
        /// The room.
        room: String,
        /// Who invited.
        by: String,
    },
    /// The answer to a `search`: `message` frames, best match first, each as it is now.
    SearchResults {
        /// The query, as asked.
        query: String,
        /// The messages found (with their `room` or `with`).
        results: Vec<ServerFrame>,
        /// Where to go on from, for the next page; absent when there is no more.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
}

/// A room and how many are in it (`room_list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomUsers {
    /// The room.
    pub room: String,
    /// How many members.
    pub users: u32,
}

impl ServerFrame {
    /// The `type` tags this enum decodes.
    pub const TYPES: &'static [&'static str] = &[
        "welcome",
        "rejected",
        "message",
        "joined",
        "left",
        "history_end",
        "error",
        "closing",
        "ping",
        "pong",
        "room",
        "room_list",
        "password_changed",
        "topic",
        "role",
        "ban",
        "unban",
        "mute",
        "unmute",
        "settings",
        "invite",
        "deleted",
        "invited",
        "edited",
        "reaction",
        "typing",
        "search_results",
    ];

    /// The sequence number, for the frames that are recorded events (of a room or a
    /// direct conversation).
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Message { seq, .. }
            | Self::Joined { seq, .. }
            | Self::Left { seq, .. }
            | Self::Topic { seq, .. }
            | Self::Role { seq, .. }
            | Self::Mute { seq, .. }
            | Self::Unmute { seq, .. }
            | Self::Settings { seq, .. }
            | Self::Invite { seq, .. }
            | Self::Deleted { seq, .. }
            | Self::Edited { seq, .. }
            | Self::Reaction { seq, .. } => Some(*seq),
            // A server ban is recorded in no room.
            Self::Ban { seq, .. } | Self::Unban { seq, .. } => Some(*seq).filter(|seq| *seq > 0),
            _ => None,
        }
    }

    /// The other account of the direct conversation a frame is about, if it is about one.
    pub fn with(&self) -> Option<&str> {
        match self {
            Self::Message { with, .. }
            | Self::HistoryEnd { with, .. }
            | Self::Deleted { with, .. }
            | Self::Edited { with, .. }
            | Self::Reaction { with, .. }
            | Self::Typing { with, .. } => with.as_deref(),
            _ => None,
        }
    }

    /// The room a frame is about, if it names one.
    pub fn room(&self) -> Option<&str> {
        match self {
            Self::Message { room, .. }
            | Self::Joined { room, .. }
            | Self::Left { room, .. }
            | Self::HistoryEnd { room, .. }
            | Self::Ban { room, .. }
            | Self::Unban { room, .. }
            | Self::Deleted { room, .. }
            | Self::Edited { room, .. }
            | Self::Reaction { room, .. }
            | Self::Typing { room, .. } => room.as_deref(),
            Self::Room { room, .. }
            | Self::Topic { room, .. }
            | Self::Role { room, .. }
            | Self::Mute { room, .. }
            | Self::Unmute { room, .. }
            | Self::Settings { room, .. }
            | Self::Invite { room, .. }
            | Self::Invited { room, .. } => Some(room),
            _ => None,
        }
    }
}

/// Why a login was refused (`rejected.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The name, or one that looks the same, is online.
    NameTaken,
    /// The name breaks a rule; the message says which.
    InvalidName,
    /// The `hello` asked for a protocol version the server does not speak.
    UnsupportedProtocol,
    /// The first frame was not a `hello`.
    ExpectedHello,
    /// The server holds as many connections as it allows (retry later).
    ServerFull,
    /// This address holds as many connections as it may (retry later).
    TooManyConnections,
    /// The login could not be recorded (the store failed), or the server is too busy
    /// checking passwords; retry later.
    Unavailable,
    /// A `hello` with a password came over plain TCP from another machine; use TLS.
    TlsRequired,
    /// The name, or one that collides with it, belongs to an account: log in with its
    /// password (or register another name).
    NameRegistered,
    /// No account has this name.
    NoAccount,
    /// The password is wrong.
    BadPassword,
    /// The new password is under 8 bytes, over 128, or the name itself.
    WeakPassword,
    /// The server does not take new accounts.
    RegistrationClosed,
    /// Too many wrong passwords lately, for the account or from the address; see
    /// `retry_after`.
    TooManyAttempts,
    /// The name, or the address, is banned from the server (`retry_after`: when a timed
    /// ban ends).
    Banned,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

impl RejectCode {
    /// Whether the client should retry as if the server were offline.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::ServerFull | Self::TooManyConnections | Self::Unavailable
        )
    }
}

impl ErrorCode {
    /// Whether this answer to a `join` means the connection is not in the room: it was
    /// refused (a ban, an invite-only room, too many rooms, a bad name) or could not be
    /// recorded.
    pub fn refuses_a_join(self) -> bool {
        matches!(
            self,
            Self::TooManyRooms
                | Self::InvalidRoom
                | Self::Unavailable
                | Self::NotMember
                | Self::Banned
                | Self::InviteOnly
        )
    }
}

/// Why someone left the room (`left.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// Said `bye`.
    Quit,
    /// The connection dropped.
    Lost,
    /// Closed for `idle_timeout`.
    Timeout,
    /// Closed for `send_queue_full`, `flood`, `bad_frame` or `frame_too_long`.
    Kicked,
    /// Left the room on purpose (`part`), staying connected.
    Part,
    /// Put out of the room by a moderator (`by`); may join again.
    Removed,
    /// Banned from the room (or the server) by a moderator (`by`).
    Banned,
    /// A reason this version does not know.
    #[serde(other)]
    Unknown,
}

impl LeaveReason {
    /// The reason in words, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Quit | Self::Unknown => "left",
            Self::Lost => "lost the connection",
            Self::Timeout => "timed out",
            Self::Kicked => "was disconnected by the server",
            Self::Part => "left the room",
            Self::Removed => "was removed",
            Self::Banned => "was banned",
        }
    }
}

/// A non-fatal problem with one frame (`error.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Invalid UTF-8, invalid JSON or a wrong field type.
    BadFrame,
    /// A `type` the server does not know.
    UnknownType,
    /// Text over `max_text` bytes.
    TooLong,
    /// Blank text.
    Empty,
    /// Text with a control character other than newline and tab.
    BadText,
    /// A post over the rate limit; see `retry_after`.
    RateLimited,
    /// The server could not record it (its store failed); nothing happened, retry later.
    Unavailable,
    /// Posting to a room the connection is not in.
    NotMember,
    /// A room name that breaks the rules, or looks like another room's.
    InvalidRoom,
    /// Too many rooms: joined by this connection, or with members on the server.
    TooManyRooms,
    /// Only an account may do this (direct messages, `set_password`).
    AccountRequired,
    /// No account has this name (`say` with `to`, `history` with `with`).
    NoAccount,
    /// `set_password`: the current password is wrong.
    BadPassword,
    /// `set_password`: the new password is under 8 bytes, over 128, or the name.
    WeakPassword,
    /// `set_password`: too many wrong passwords lately; see `retry_after`.
    TooManyAttempts,
    /// The connection may not do this (its role in the room, or who the target is).
    NotPermitted,
    /// The seq is not a message of that room or conversation, or it is deleted already.
    NoSuchMessage,
    /// The name is banned from the room (see `until`).
    Banned,
    /// The room is invite-only and this account is not invited.
    InviteOnly,
    /// The name is muted in the room: it may read, not post (see `until`).
    Muted,
    /// The message holds as many distinct emoji as it may.
    TooManyReactions,
    /// A `search` query that is empty or cannot be parsed (or a cursor that is not one).
    BadQuery,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

/// Why the server is closing a connection (`closing.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseCode {
    /// The server is shutting down.
    Shutdown,
    /// No data from the client for too long.
    IdleTimeout,
    /// No `hello` in time.
    LoginTimeout,
    /// The client read too slowly and its queue overflowed.
    SendQueueFull,
    /// Three bad frames in a row.
    BadFrame,
    /// A frame longer than `max_frame`.
    FrameTooLong,
    /// Far more frames than the rate allows.
    Flood,
    /// Another connection took this session over with its token.
    Replaced,
    /// The name (or the address) was banned from the server.
    Banned,
    /// The server's operator deleted the account (`server admin delete-account`); it
    /// cannot log in again, and its name is not given out again.
    AccountDeleted,
    /// A code this version does not know.
    #[serde(other)]
    Unknown,
}

impl CloseCode {
    /// The reason broadcast in `left` when a member is closed for this code.
    pub fn leave_reason(self) -> LeaveReason {
        match self {
            Self::IdleTimeout => LeaveReason::Timeout,
            Self::SendQueueFull | Self::BadFrame | Self::FrameTooLong | Self::Flood => {
                LeaveReason::Kicked
            }
            Self::Banned => LeaveReason::Banned,
            Self::Shutdown
            | Self::LoginTimeout
            | Self::Replaced
            | Self::AccountDeleted
            | Self::Unknown => LeaveReason::Lost,
        }
    }
}
