//! What sessions, the hashing threads, the recorder and the cluster ask of the hub.

use std::net::IpAddr;

use async_channel::Sender;
use chat_shared::{Conversation, Frame, LeaveReason, Name, Password, RoomName};

use crate::accounts::PasswordHash;
use crate::cluster::News;
use crate::log::recorder::Recorded;
use crate::log::{NewEvent, Seq, Span};
use crate::queue::SendQueue;
use crate::registry::ConnId;

/// What a session asks of the hub.
#[derive(Debug)]
pub enum Command {
    /// Log in (the `hello` was valid); the hub answers through `reply`.
    Login(Login),
    /// Post a message (already validated and rate-limited by the session).
    Post {
        /// The sender.
        conn: ConnId,
        /// The room; `None`: the default room.
        room: Option<RoomName>,
        /// The text.
        text: String,
        /// The sender's id for the post.
        id: Option<String>,
        /// An action.
        me: bool,
    },
    /// Send events of a room's history to this member.
    History {
        /// Who asks.
        conn: ConnId,
        /// The room; `None`: the default room.
        room: Option<RoomName>,
        /// Which; `None`: the newest.
        span: Option<Span>,
        /// How many at most.
        limit: usize,
    },
    /// Enter a room, or resume it.
    Join {
        /// Who.
        conn: ConnId,
        /// The room.
        room: RoomName,
        /// Resume after this seq.
        since: Option<Seq>,
    },
    /// Leave a room.
    Part {
        /// Who.
        conn: ConnId,
        /// The room.
        room: RoomName,
    },
    /// List the rooms with someone in them.
    Rooms {
        /// Who asks.
        conn: ConnId,
    },
    /// This connection is gone.
    Leave {
        /// Which.
        conn: ConnId,
        /// Why, as recorded in `left`.
        reason: LeaveReason,
    },
    /// A direct message to an account (already validated and rate-limited).
    Direct {
        /// The sender.
        conn: ConnId,
        /// The recipient, as the frame named it.
        to: String,
        /// The text.
        text: String,
        /// The sender's id for the post.
        id: Option<String>,
        /// An action.
        me: bool,
    },
    /// Send events of a direct conversation to this member.
    DirectHistory {
        /// Who asks.
        conn: ConnId,
        /// The other account, as the frame named it.
        with: String,
        /// Which; `None`: the newest.
        span: Option<Span>,
        /// How many at most.
        limit: usize,
    },
    /// Change the account's password.
    SetPassword {
        /// Who asks.
        conn: ConnId,
        /// The password now.
        password: Password,
        /// The new one.
        new_password: Password,
    },
    /// The hashing threads answered a password login.
    Verified {
        /// The login.
        login: Box<Login>,
        /// Whether the password was right.
        right: bool,
    },
    /// The hashing threads hashed and stored a new account.
    Registered {
        /// The login that registers it.
        login: Box<Login>,
        /// Its hash, or why it could not be made or stored.
        result: Result<PasswordHash, String>,
    },
    /// The hashing threads answered a `set_password`.
    PasswordChecked {
        /// Who asked.
        conn: ConnId,
        /// The account.
        folded: String,
        /// The address it asked from.
        ip: IpAddr,
        /// What came of it.
        outcome: PasswordOutcome,
    },
    /// The log recorded a direct message (or could not).
    DirectRecorded {
        /// The message.
        event: Box<NewEvent>,
        /// Who sent it.
        conn: ConnId,
        /// The log's answer.
        result: Recorded,
    },
    /// News from the cluster (with `--redis`).
    Cluster(News),
    /// The server is about to close every connection: record what was accepted and push
    /// everything owed now, so that it reaches everyone before their `closing`; then
    /// answer.
    Flush(Sender<()>),
    /// The server is going down: record what was accepted, then stop.
    Shutdown,
}

/// What came of a `set_password`.
#[derive(Debug)]
pub enum PasswordOutcome {
    /// The current password was wrong.
    Wrong,
    /// Changed: the new hash is stored.
    Changed(PasswordHash),
    /// Right, but the new hash could not be made or stored.
    Failed(String),
}

/// How a login proves its name.
#[derive(Debug)]
pub enum Auth {
    /// A guest name (or a token takeover).
    Guest,
    /// Log in to an account.
    Password(Password),
    /// Create an account, then log in.
    Register(Password),
}

/// A login request.
#[derive(Debug)]
pub struct Login {
    /// The connection logging in.
    pub conn: ConnId,
    /// The protocol version it speaks.
    pub protocol: u32,
    /// The name it asks for.
    pub name: Name,
    /// Resume the default room after this seq.
    pub since: Option<u64>,
    /// The epoch `since` counts in.
    pub epoch: Option<String>,
    /// The token of an earlier session, to take it over.
    pub token: Option<String>,
    /// Where the member's frames go; the welcome or the rejection is queued here.
    pub queue: SendQueue,
    /// Told whether the login was accepted.
    pub reply: Sender<bool>,
    /// The posts the log remembers for this name (read before the login reached the hub).
    pub recent: Vec<(String, Frame)>,
    /// How it proves its name.
    pub auth: Auth,
    /// The address it connects from.
    pub ip: IpAddr,
    /// The conversations the log holds for this name, should it be an account (read
    /// before the login reached the hub).
    pub conversations: Vec<Conversation>,
    /// The token its session will have, once made (in a cluster, before the name is
    /// claimed).
    pub session: Option<String>,
}
