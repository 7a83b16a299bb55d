//! Who is online: names under both collision keys, takeover tokens, and each
//! connection's send queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chat_shared::{Name, NameKeys};

use crate::queue::SendQueue;

/// Identifies one connection for its whole life.
pub type ConnId = u64;

/// The hashing of connection ids. The server hands them out in sequence, so nobody can
/// pick ids that collide, and `SipHash` (the standard maps' default, which resists that) was
/// most of the cost of looking up a member: a login into a room of 10,000 looks up every
/// one of them for its `welcome`.
pub type ConnHasher = foldhash::fast::RandomState;
/// A map keyed by connection.
pub type ConnMap<V> = HashMap<ConnId, V, ConnHasher>;
/// A set of connections.
pub type ConnSet = std::collections::HashSet<ConnId, ConnHasher>;

/// Someone logged in (or logging in: their `joined` is on its way to the log).
#[derive(Debug)]
pub struct Member {
    /// The name as accepted.
    pub name: Name,
    /// Its collision keys.
    pub keys: NameKeys,
    /// Presented in a later `hello` to take this session over.
    pub token: String,
    /// Where the connection's frames go.
    pub queue: SendQueue,
    /// Whether the welcome went out (until then the name is only reserved).
    pub online: bool,
    /// The rooms it is in (or joining), by key, in the order they were joined.
    pub rooms: Vec<Arc<str>>,
    /// The protocol version it speaks.
    pub protocol: u32,
    /// Whether the name is an account (logged in with its password, or its token).
    pub account: bool,
    /// The address it connected from (password attempts are counted per address).
    pub ip: std::net::IpAddr,
    /// An account's read markers, by stream.
    pub read: std::collections::HashMap<crate::log::StreamId, crate::log::Seq>,
    /// Where it said it is typing lately, and when (relayed at most every 2 s).
    pub typed: Vec<(crate::log::StreamId, std::time::Instant)>,
}

/// What a login finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// The name is free.
    Free,
    /// The same user on a new connection, with the right token: take `ConnId` over.
    Takeover(ConnId),
    /// Someone else holds the name, or one that looks the same; the message says who.
    Taken(String),
}

/// Everyone connected and logged in (or logging in).
#[derive(Debug, Default)]
pub struct Registry {
    /// Boxed: the table holds twice the slots it has members, and a slot should not
    /// cost a whole member.
    members: ConnMap<Box<Member>>,
    /// By case-folded name: the sorted user list, and one collision key.
    by_folded: BTreeMap<String, ConnId>,
    /// By the other collision key.
    by_skeleton: HashMap<String, ConnId>,
}

impl Registry {
    /// Whether `name` may log in with `token`.
    pub fn admit(&self, name: &Name, keys: &NameKeys, token: Option<&str>) -> Admission {
        let Some(conn) = self.holding(keys) else {
            return Admission::Free;
        };
        let member = &self.members[&conn];
        if member.online
            && token == Some(member.token.as_str())
            && member.keys.folded == keys.folded
        {
            return Admission::Takeover(conn);
        }
        Admission::Taken(if member.keys.folded == keys.folded {
            format!("{} is already online", member.name)
        } else {
            format!("{} is online, and {name} looks the same", member.name)
        })
    }

    /// Who holds `keys` (either key), and whether it is online under the same
    /// case-folded name (the same account, for a password login).
    pub fn holder(&self, keys: &NameKeys) -> Option<(ConnId, bool)> {
        let conn = self.holding(keys)?;
        let member = &self.members[&conn];
        Some((conn, member.online && member.keys.folded == keys.folded))
    }

    /// The connection holding a name that collides with `keys` (either key).
    fn holding(&self, keys: &NameKeys) -> Option<ConnId> {
        self.by_folded
            .get(&keys.folded)
            .or_else(|| self.by_skeleton.get(&keys.skeleton))
            .copied()
    }

    /// Adds a member under `conn`.
    pub fn insert(&mut self, conn: ConnId, member: Member) {
        self.by_folded.insert(member.keys.folded.clone(), conn);
        self.by_skeleton.insert(member.keys.skeleton.clone(), conn);
        self.members.insert(conn, Box::new(member));
    }

    /// Removes a member.
    pub fn remove(&mut self, conn: ConnId) -> Option<Member> {
        let member = self.members.remove(&conn)?;
        self.by_folded.remove(&member.keys.folded);
        self.by_skeleton.remove(&member.keys.skeleton);
        Some(*member)
    }

    /// A member.
    pub fn get(&self, conn: ConnId) -> Option<&Member> {
        self.members.get(&conn).map(|member| &**member)
    }

    /// A member, to change.
    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Member> {
        self.members.get_mut(&conn).map(|member| &mut **member)
    }

    /// Everyone, sorted by case-folded name, with their connections.
    pub fn sorted(&self) -> impl Iterator<Item = (ConnId, &Member)> {
        self.by_folded
            .values()
            .filter_map(|conn| self.members.get(conn).map(|member| (*conn, &**member)))
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The connection of whoever is online with the case-folded name `folded`.
    pub fn online_conn(&self, folded: &str) -> Option<ConnId> {
        self.by_folded
            .get(folded)
            .copied()
            .filter(|conn| self.members[conn].online)
    }

    /// The connection holding the case-folded name `folded`, online or logging in.
    pub fn conn_of(&self, folded: &str) -> Option<ConnId> {
        self.by_folded.get(folded).copied()
    }

    /// Whether someone online has the case-folded name `folded`.
    pub fn is_online(&self, folded: &str) -> bool {
        self.by_folded
            .get(folded)
            .is_some_and(|conn| self.members[conn].online)
    }
}
