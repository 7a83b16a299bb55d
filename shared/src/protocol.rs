//! The frames of the protocol (shared/README.md) as Rust types, in both directions.
//!
//! Frames are JSON objects internally tagged on `type` with `snake_case` names. Optional
//! fields are left out when absent. Every code enum has an `Unknown` fallback so that a
//! newer peer never breaks an older one: unknown codes decode to `Unknown`.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks (`hello.protocol`, `welcome.protocol`): version
/// 2 adds rooms (and, in time, accounts and direct messages) to version 1.
pub const PROTOCOL_VERSION: u32 = 2;

/// The versions a server accepts.
pub const PROTOCOL_VERSIONS: std::ops::RangeInclusive<u32> = 1..=2;

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
    ];
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

/// A direct conversation in `welcome.conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The other account (the account itself for notes to self).
    pub with: String,
    /// Its newest seq.
    pub seq: u64,
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
        /// The text.
        text: String,
        /// The sender's id for this post, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// An action ("/me waves").
        #[serde(default, skip_serializing_if = "is_false")]
        me: bool,
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
    },
    /// The answer to `rooms`.
    RoomList {
        /// The rooms with someone in them, most members first.
        rooms: Vec<RoomUsers>,
    },
    /// The answer to `set_password`: the new password is in force.
    PasswordChanged,
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
    ];

    /// The room sequence number, for the frames that are room events.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Message { seq, .. } | Self::Joined { seq, .. } | Self::Left { seq, .. } => {
                Some(*seq)
            }
            _ => None,
        }
    }

    /// The room a frame is about, if it names one.
    pub fn room(&self) -> Option<&str> {
        match self {
            Self::Message { room, .. }
            | Self::Joined { room, .. }
            | Self::Left { room, .. }
            | Self::HistoryEnd { room, .. } => room.as_deref(),
            Self::Room { room, .. } => Some(room),
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
            Self::Shutdown | Self::LoginTimeout | Self::Replaced | Self::Unknown => {
                LeaveReason::Lost
            }
        }
    }
}
