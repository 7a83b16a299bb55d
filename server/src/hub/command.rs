//! What sessions, the hashing threads, the recorder and the cluster ask of the hub, and
//! what the cluster answers.

use std::net::IpAddr;
use std::sync::Arc;

use async_channel::Sender;
use chat_shared::{
    Conversation, Frame, LeaveReason, Name, Password, RejectCode, RoomName, ServerFrame,
};

pub use crate::step::{Place, Retention, Step};

use crate::accounts::PasswordHash;
use crate::log::recorder::Recorded;
use crate::log::{LogError, NewEvent, Reach, Seq, Tailed};
use crate::queue::SendQueue;
use crate::registry::ConnId;

/// A `search`, checked by the session.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The query as the frame gave it (the answer repeats it).
    pub text: String,
    /// The query, taken apart.
    pub query: chat_shared::search::Query,
    /// Only this room (its key): the frame's `room`, or `in:` (both when both are given).
    pub rooms: Vec<String>,
    /// Only the conversation with this account.
    pub with: Option<String>,
    /// The most results.
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// What a post says: its text and how it is meant.
#[derive(Debug, Clone)]
pub struct Said {
    /// The text.
    pub text: String,
    /// The sender's id for the post.
    pub id: Option<String>,
    /// An action ("/me waves").
    pub me: bool,
    /// The seq of the message it answers.
    pub reply_to: Option<Seq>,
}

/// A change to a message after it is posted.
#[derive(Debug, Clone)]
pub enum Life {
    /// Its author's new text.
    Edit(String),
    /// A reaction added (`true`) or taken back.
    React(String, bool),
}

/// A place with messages, for IRC's `CHATHISTORY TARGETS`: a room (its name) or a direct
/// conversation (the other account's name), and when its newest message was recorded (ms
/// since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub room: Option<String>,
    pub with: Option<String>,
    pub time: u64,
}

/// What is done with the places a [`Command::Targets`] finds, once they are read (on the
/// blocking pool).
pub struct TargetsReply(pub Box<dyn FnOnce(Result<Vec<Latest>, LogError>) + Send>);

impl std::fmt::Debug for TargetsReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetsReply")
    }
}

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
        /// What it says.
        said: Said,
    },
    /// Send events of a room's history to this member.
    History {
        /// Who asks.
        conn: ConnId,
        /// The room; `None`: the default room.
        room: Option<RoomName>,
        /// Which; `None`: the newest.
        reach: Option<Reach>,
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
    /// Find the member's rooms and (for an account) direct conversations whose newest
    /// message was recorded after `from` and before `to` (ms since the Unix epoch), the
    /// `limit` oldest of them, oldest first (IRC's `CHATHISTORY TARGETS`).
    Targets {
        /// Who asks.
        conn: ConnId,
        from: u64,
        to: u64,
        limit: usize,
        /// Where they go.
        reply: TargetsReply,
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
        /// What it says.
        said: Said,
    },
    /// Search messages for this member.
    Search {
        /// Who asks.
        conn: ConnId,
        /// What to find, and where.
        asked: Box<Asked>,
    },
    /// Send events of a direct conversation to this member.
    DirectHistory {
        /// Who asks.
        conn: ConnId,
        /// The other account, as the frame named it.
        with: String,
        /// Which; `None`: the newest.
        reach: Option<Reach>,
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
    /// A moderation step (the session checked its texts and names).
    Moderate {
        /// Who asks.
        conn: ConnId,
        /// What.
        step: Step,
    },
    /// Delete a message.
    Delete {
        /// Who asks.
        conn: ConnId,
        /// Where the message is.
        place: Place,
        /// Its seq.
        seq: Seq,
    },
    /// Edit a message, or react to it (already validated and rate-limited).
    Amend {
        /// Who asks.
        conn: ConnId,
        /// Where the message is.
        place: Place,
        /// Its seq.
        seq: Seq,
        /// What to do.
        change: Life,
    },
    /// The member is composing (flood-counted by the session).
    Typing {
        /// Who.
        conn: ConnId,
        /// Where.
        place: Place,
    },
    /// A read marker.
    Read {
        /// Whose.
        conn: ConnId,
        /// Where.
        place: Place,
        /// The newest seq seen there.
        seq: Seq,
    },
    /// The read markers gathered meanwhile are due to be kept.
    KeepReadMarkers,
    /// The read markers in flight were kept (or could not be).
    ReadMarkersKept,
    /// A message to delete, read back from the log off the hub's task (it was older than
    /// what the hub keeps in memory).
    Found {
        /// Who asked to delete it.
        conn: ConnId,
        /// Where it is.
        place: Place,
        /// Its seq.
        seq: Seq,
        /// What the log holds at that seq (`None`: nothing), or why it could not be read.
        read: Result<Option<Frame>, LogError>,
    },
    /// Server bans were stored (or could not be), off the hub's task.
    ServerBanStored {
        /// Who set or lifted them and the answer it gets once they are stored (`None`:
        /// bans this node set on its own).
        answer: Option<Box<BanAnswer>>,
        /// Each ban's key and what it holds (`None`: lifted).
        changes: Vec<(String, Option<String>)>,
        /// Whether the log took them.
        result: Result<(), LogError>,
    },
    /// Time for a retention sweep (`--retain-days`).
    Retain,
    /// A retention sweep deleted these events from the log (stream, seqs), or failed.
    Forgotten(Result<Swept, LogError>),
    /// The operator asks, on the control socket.
    Operator {
        /// What.
        request: crate::control::Request,
        /// Where the answer goes.
        reply: Sender<crate::control::Reply>,
    },
    /// A temporary password was hashed and stored (or could not be).
    PasswordReset {
        /// The account, case-folded.
        folded: String,
        /// The temporary password, to show the operator, and its stored hash.
        result: Result<(String, PasswordHash), String>,
        /// Where the answer goes.
        reply: Sender<crate::control::Reply>,
    },
    /// An account's deletion is stored (or not).
    AccountDeleted(Box<AccountDeleted>),
    /// Deletions of a deleted account's direct messages were recorded (or not); the last
    /// batch answers the operator.
    Erased {
        /// The events asked for.
        events: Vec<crate::log::NewEvent>,
        /// What the log made of them.
        result: crate::log::recorder::Recorded,
        /// With the last batch: where the answer goes, and the answer.
        reply: Option<(Sender<crate::control::Reply>, crate::control::Reply)>,
    },
    /// The server is about to close every connection: record what was accepted and push
    /// everything owed now, so that it reaches everyone before their `closing`; then
    /// answer.
    Flush(Sender<()>),
    /// The server is going down: record what was accepted, then stop.
    Shutdown,
}

/// What a retention sweep of the log did: the events it deleted (stream, seqs), and the
/// shortest retention of a room's own that it saw.
pub type Swept = (
    Vec<(crate::log::StreamId, std::ops::Range<Seq>)>,
    Option<std::time::Duration>,
);

/// An account's deletion, as the log took it.
#[derive(Debug)]
pub struct AccountDeleted {
    /// The account, case-folded.
    pub folded: String,
    /// Its sessions closed here.
    pub closed: usize,
    /// Its hash before, to put back if the deletion could not be stored.
    pub previous: PasswordHash,
    /// With `--erase-direct`, the direct messages it wrote (the other account, as folded
    /// and as spelled, and the seq); or why it could not be deleted.
    pub result: Result<Vec<(String, String, Seq)>, String>,
    /// Where the answer goes.
    pub reply: Sender<crate::control::Reply>,
}

/// Who is answered once server bans are stored.
#[derive(Debug)]
pub enum BanAnswer {
    /// An administrator's connection, with the frame it gets.
    Member(ConnId, chat_shared::ServerFrame),
    /// The operator on the control socket, with the keys lifted.
    Operator(Sender<crate::control::Reply>, Vec<String>),
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
    /// Told whether the login was accepted, or the code it was refused with.
    pub reply: Sender<Result<(), RejectCode>>,
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
    /// The rooms the log holds invitations to for this name, should it be an account:
    /// room key, and who invited (read before the login reached the hub).
    pub invites: Vec<(String, String)>,
    /// Should it be an account: its read markers as the log keeps them (stream key, seq).
    pub read: Vec<(String, Seq)>,
    /// Whether a fresh login joins the default room (protocol clients do; IRC clients
    /// join the channels they choose).
    pub joins_default: bool,
}

/// A direct message as the tail read it: sender, recipient (case-folded), frame.
pub type DirectMessage = (String, String, Frame);

/// The answer to a login's claim of its name.
#[derive(Debug)]
pub struct Claimed {
    /// The login that claimed it.
    pub login: Box<Login>,
    /// What comes after a free claim.
    pub next: AfterClaim,
    /// What the other nodes answered.
    pub outcome: Result<Claim, LogError>,
}

/// What the cluster tells the hub.
#[derive(Debug)]
pub enum News {
    /// A name claim was answered.
    Claimed(Claimed),
    /// Events of a room, in seq order, as recorded by any node.
    Tailed {
        /// The room.
        key: Arc<str>,
        /// Its events, each with what it changes in the member list.
        events: Tailed,
    },
    /// Direct messages recorded by any node: sender, recipient (case-folded), frame.
    Direct(Vec<DirectMessage>),
    /// A member here was taken over on another node: close it, record nothing.
    Replaced {
        /// Case-folded name.
        member: String,
        /// The token it held here.
        token: String,
    },
    /// A member here whose session Redis no longer knows (its node was taken for dead):
    /// close it, so that it logs in again.
    Orphaned {
        /// Case-folded name.
        member: String,
        /// The token it held here.
        token: String,
    },
    /// This node (re)subscribed to its channel: takeovers published meanwhile were
    /// missed, so the hub asks which of its members are still its own.
    Subscribed,
    /// Accounts as stored (made or changed elsewhere): name and hash.
    Accounts(Vec<(String, String)>),
    /// Rooms as named: key and name.
    Rooms(Vec<(String, String)>),
    /// Wrong passwords counted in Redis (read when the node subscribes): for an account
    /// or an address, when (ms since the Unix epoch).
    Failures(Vec<(Counted, u64)>),
    /// A server ban was set or lifted (on any node): its key, and what it holds (`None`:
    /// lifted).
    ServerBan(String, Option<String>),
    /// An account was invited to a room (on any node): its connection here, if any, is
    /// told.
    Invited {
        /// The account, case-folded.
        account: String,
        /// The room's key.
        room: String,
        /// Who invited it.
        by: String,
    },
    /// Someone on another node is typing.
    Typing {
        /// The sender, case-folded.
        sender: String,
        /// To whom.
        typing: Typing,
    },
    /// Every server ban, as stored (read when the node subscribes).
    ServerBans(Vec<(String, String)>),
    /// A wrong password on another node.
    Failed {
        /// The account.
        account: String,
        /// The address it came from.
        ip: IpAddr,
    },
    /// This node's lease ran out while it could not reach Redis, and another node took
    /// its members offline: every connection here must start over.
    CutOff,
}

impl News {
    /// Hands the news to the hub.
    pub async fn send_to(self, hub: &Sender<Command>) {
        let _ = hub.send(Command::Cluster(self)).await;
    }
}

/// What a wrong password was counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// An account (case-folded).
    Account(String),
    /// An address.
    Address(IpAddr),
}

/// What happens once a name is claimed.
#[derive(Debug)]
pub enum AfterClaim {
    /// A login with a free name (guest, or account after its password).
    Login {
        /// Whether the name is an account.
        account: bool,
    },
    /// A registration: hash the password and store the account.
    Register(chat_shared::Password),
}

/// What a claim found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The name is now this login's.
    Free,
    /// Someone online elsewhere has it.
    Taken(String),
    /// Someone online elsewhere has a name that looks the same.
    LooksLike(String),
    /// The same member (its token, or its password) took over its session, here or on
    /// another node.
    Takeover {
        /// Where it was.
        node: String,
        /// Its name as online.
        name: String,
        /// Whether it is an account.
        account: bool,
        /// Its rooms (keys).
        rooms: Vec<String>,
    },
}

/// A `typing` on its way: to a room's members (by key), or to an account (case-folded).
#[derive(Debug, Clone)]
pub enum Typing {
    /// To a room's members.
    Room(Arc<str>, ServerFrame),
    /// To the other party of a conversation.
    Direct(String, ServerFrame),
}
