//! What a server shares with other nodes: nothing when it runs alone ([`Alone`]); with
//! `--redis` ([`crate::cluster::Cluster`]), the names online, every room's events in one
//! order, the rooms in use and the wrong passwords counted.
//!
//! The hub runs the same code either way and asks its peers at these few points: a
//! login's name is claimed (alone the answer comes at once), a room is followed while it
//! is in memory, a member's name is released when it goes, and recorded events settle as
//! the log answered them (alone) or as the tail brings them in the cluster's order.

use std::net::IpAddr;
use std::sync::Arc;

use async_channel::Sender;
use chat_shared::LeaveReason;
use smol::Executor;

use crate::log::Seq;
use crate::queue::SendQueue;

use super::command::{AfterClaim, Claim, Claimed, Command, Login, Typing};

/// A login's claim of its name.
#[derive(Debug)]
pub struct NameClaim {
    /// The login.
    pub login: Box<Login>,
    /// What follows once the name is its.
    pub next: AfterClaim,
    /// The token the login's session will have.
    pub token: String,
    /// Its password was checked (a takeover needs no token).
    pub proven: bool,
    /// Whether it logs in to an account.
    pub account: bool,
    /// Whether nobody here holds the name (else a member here does, and the claim may be a
    /// takeover of it).
    pub free_here: bool,
}

/// Who asks for the rooms in use: invite-only rooms are listed only to their members and
/// to administrators.
#[derive(Debug, Clone)]
pub struct Seer {
    /// The rooms the asker is in (keys).
    pub rooms: Vec<String>,
    /// Whether it is an administrator.
    pub admin: bool,
}

impl Seer {
    /// Whether it sees an invite-only room (by key).
    pub fn sees(&self, key: &str) -> bool {
        self.admin || self.rooms.iter().any(|room| room == key)
    }
}

/// The other nodes, as the hub sees them.
pub trait Peers: Send {
    /// Starts what runs beside the hub, on `executor`; what it learns comes to `inbox` as
    /// [`Command::Cluster`].
    fn start(&mut self, executor: &Executor<'static>, inbox: &Sender<Command>);

    /// This server's id among the nodes.
    fn node(&self) -> &str;

    /// Claims a login's name on every node: the answer now, or (`None`) later as
    /// [`super::command::News::Claimed`].
    fn claim(&self, claim: NameClaim) -> Option<Claimed>;

    /// Frees a member's name on every node, if its session (`token`) still holds it.
    fn release(&self, member: String, token: String, reason: LeaveReason);

    /// Whether events reach the hub through a tail of the log that every node shares: this
    /// node's own settle only when the tail brings them (in the order of every node's), a
    /// member's `left`s are recorded by the release of its name, and a room this node has
    /// not heard of may exist already.
    fn tails(&self) -> bool;

    /// Follows a room's events after `seq` (the newest the hub has of it). Following a
    /// room again reads it again from there: what a read under way brings of it is left
    /// out.
    fn follow(&self, key: &Arc<str>, seq: Seq);

    /// Tells every other node that `sender` (case-folded) is typing; this node relayed it
    /// to its own members already.
    fn typing(&self, sender: String, typing: Typing);

    /// Stops following a room's events.
    fn unfollow(&self, key: &str);

    /// Answers a `rooms` request with the rooms in use on every node that `seer` may see;
    /// gives the queue and the seer back when the hub's own rooms are all there are.
    fn list_rooms(&self, queue: SendQueue, seer: Seer) -> Option<(SendQueue, Seer)>;

    /// Counts a wrong password on every node.
    fn count_failure(&self, account: &str, ip: IpAddr);

    /// Asks which of these members (case-folded name, token) are no longer this node's.
    fn verify(&self, members: Vec<(String, String)>);
}

/// A server on its own: nobody to ask.
#[derive(Debug, Default)]
pub struct Alone;

impl Peers for Alone {
    fn start(&mut self, _: &Executor<'static>, _: &Sender<Command>) {}

    fn node(&self) -> &'static str {
        ""
    }

    fn claim(&self, claim: NameClaim) -> Option<Claimed> {
        // The hub's registry is every name there is: free here is free, and a name a
        // member here holds (with the token or the password) is a takeover of it.
        let outcome = if claim.free_here {
            Claim::Free
        } else {
            Claim::Takeover {
                node: String::new(),
                name: claim.login.name.to_string(),
                account: claim.account,
                rooms: Vec::new(),
            }
        };
        Some(Claimed {
            login: claim.login,
            next: claim.next,
            outcome: Ok(outcome),
        })
    }

    fn release(&self, _: String, _: String, _: LeaveReason) {}

    fn tails(&self) -> bool {
        false
    }

    fn follow(&self, _: &Arc<str>, _: Seq) {}

    fn typing(&self, _: String, _: Typing) {}

    fn unfollow(&self, _: &str) {}

    fn list_rooms(&self, queue: SendQueue, seer: Seer) -> Option<(SendQueue, Seer)> {
        Some((queue, seer))
    }

    fn count_failure(&self, _: &str, _: IpAddr) {}

    fn verify(&self, _: Vec<(String, String)>) {}
}
