//! News from the cluster (`--redis`): claims of names, takeovers on other nodes, events
//! the tail brought, and what Redis did not record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::{CloseCode, LeaveReason, Name, RejectCode};
use smol::Executor;

use crate::accounts::{Account, PasswordHash};
use crate::cluster::{AfterClaim, Claim, Counted, News, Request};
use crate::log::{LogError, Note};
use crate::registry::{ConnId, Member};
use crate::room::{Effect, Pending, Welcome};
use crate::wire::now_millis;

use super::command::Login;
use super::{Claiming, Deferred, Hub, Slot};

impl Hub {
    /// In a cluster: asks Redis for the name on every node; the answer comes back as
    /// [`News::Claimed`]. With `hold`, the name is held here meanwhile (it is not held
    /// here by anyone); without, a member here holds it and the claim may take it over.
    pub(super) fn claim(&mut self, mut login: Login, next: AfterClaim, proven: bool, hold: bool) {
        let Some(token) = Self::session_token(&login) else {
            return;
        };
        let Some(cluster) = &self.cluster else {
            return;
        };
        let account = match next {
            AfterClaim::Login { account } => account,
            AfterClaim::Register(_) => true,
        };
        login.session = Some(token.clone());
        if hold {
            self.registry.insert(
                login.conn,
                Member {
                    name: login.name.clone(),
                    keys: login.name.keys(),
                    token: token.clone(),
                    queue: login.queue.clone(),
                    online: false,
                    rooms: Vec::new(),
                    protocol: login.protocol,
                    account,
                    ip: login.ip,
                },
            );
        }
        self.claiming.insert(
            login.conn,
            Claiming {
                wanted: true,
                held: hold,
            },
        );
        cluster.ask(Request::Claim {
            login: Box::new(login),
            next,
            token,
            proven,
            account,
        });
    }

    /// Gives up a name claimed for `login` that will not be used (a failed registration,
    /// an account's name): it is free again on every node.
    pub(super) fn unclaim(&mut self, login: &Login) {
        let (Some(cluster), Some(token)) = (&self.cluster, &login.session) else {
            return;
        };
        cluster.ask(Request::Release {
            member: login.name.keys().folded,
            token: token.clone(),
            reason: LeaveReason::Quit,
        });
        self.drop_placeholder(login.conn);
    }

    /// Forgets a member not yet online (the name held for a login while it is claimed, or
    /// while its `joined` is recorded).
    pub(super) fn drop_placeholder(&mut self, conn: ConnId) {
        if self.registry.get(conn).is_some_and(|member| !member.online) {
            self.registry.remove(conn);
        }
    }

    /// Redis answered a claim.
    pub(super) fn claimed(
        &mut self,
        login: Login,
        next: AfterClaim,
        outcome: Result<Claim, LogError>,
        executor: &Executor<'static>,
    ) {
        let keys = login.name.keys();
        // Gone meanwhile: a name held here is released behind the claim (same order); one
        // claimed without being held here is released below.
        let Claiming { wanted, held } = self.claiming.remove(&login.conn).unwrap_or(Claiming {
            wanted: false,
            held: true,
        });
        let guest = matches!(next, AfterClaim::Login { account: false });
        let reject_taken = |hub: &mut Self, login: &Login, message: String| {
            hub.drop_placeholder(login.conn);
            // An account's name is refused as such first, as alone.
            if !(guest && hub.refuse_an_accounts_name(login, &keys)) {
                Self::reject(login, RejectCode::NameTaken, message, None);
            }
        };
        match outcome {
            Err(err) => {
                tracing::error!(%err, "cannot claim a name");
                // It may have gone through before the answer was lost.
                self.unclaim(&login);
                Self::reject(
                    &login,
                    RejectCode::Unavailable,
                    "the server cannot reach its cluster now; try again".into(),
                    Some(2000),
                );
            }
            Ok(Claim::Taken(name)) => {
                reject_taken(self, &login, format!("{name} is already online"));
            }
            Ok(Claim::LooksLike(name)) => {
                let message = format!("{name} is online, and {} looks the same", login.name);
                reject_taken(self, &login, message);
            }
            Ok(Claim::Free) if !wanted => {
                if !held {
                    self.unclaim(&login);
                }
            }
            Ok(Claim::Free) => match next {
                AfterClaim::Login { account } => {
                    if !account && self.refuse_an_accounts_name(&login, &keys) {
                        self.unclaim(&login);
                        return;
                    }
                    // Redis no longer knew a session here under this name (this node was
                    // taken for dead a moment ago): that session is over.
                    if let Some((stale, _)) = self
                        .registry
                        .holder(&keys)
                        .filter(|(conn, _)| *conn != login.conn)
                    {
                        self.drop_member(stale, CloseCode::Shutdown);
                    }
                    self.fresh_login(login, keys, account);
                }
                AfterClaim::Register(password) => self.hash_new_account(login, &keys, password),
            },
            Ok(Claim::Takeover {
                node,
                name,
                account,
                rooms,
            }) => {
                let here = self
                    .cluster
                    .as_ref()
                    .is_some_and(|cluster| cluster.node() == node);
                let old = self
                    .registry
                    .holder(&keys)
                    .filter(|(conn, online)| *online && *conn != login.conn)
                    .map(|(conn, _)| conn);
                if !wanted {
                    // Nobody is there to take the session: it ends, with its `left`s.
                    if let (true, Some(old)) = (here, old) {
                        let conn = login.conn;
                        self.take_over(old, login);
                        self.leave(conn, LeaveReason::Lost);
                    } else if !held {
                        self.unclaim(&login);
                    }
                    return;
                }
                match old {
                    Some(old) if here => self.take_over(old, login),
                    _ => self.adopt(login, &name, account, &rooms, executor),
                }
            }
        }
    }

    /// A member taken over from another node: it keeps its rooms, nobody sees anything,
    /// and the old node closes its old connection (`replaced`).
    pub(super) fn adopt(
        &mut self,
        mut login: Login,
        name: &str,
        account: bool,
        rooms: &[String],
        executor: &Executor<'static>,
    ) {
        let Some(token) = login.session.take() else {
            return;
        };
        let name = Name::parse(name).unwrap_or_else(|_| login.name.clone());
        let mut keys: Vec<Arc<str>> = rooms
            .iter()
            .map(|room| {
                self.names
                    .by_key
                    .get_key_value(room.as_str())
                    .map_or_else(|| Arc::from(room.as_str()), |(key, _)| key.clone())
            })
            .collect();
        keys.sort_by_key(|key| *key != self.default_room);
        let (conn, queue) = (login.conn, login.queue.clone());
        self.registry.insert(
            conn,
            Member {
                keys: name.keys(),
                name,
                token,
                queue: queue.clone(),
                online: false,
                rooms: keys.clone(),
                protocol: login.protocol,
                account,
                ip: login.ip,
            },
        );
        for key in &keys {
            match self.rooms.get_mut(key) {
                Some(Slot::Ready(room)) => room.fanout.add(conn, queue.clone()),
                Some(Slot::Loading(waiting)) => waiting.push(Deferred::Adopt(conn)),
                None => self.load_room(key, vec![Deferred::Adopt(conn)], executor),
            }
        }
        let welcome = Welcome {
            conn,
            since: login.since,
            epoch: login.epoch,
            queue,
            reply: login.reply,
            conversations: account.then_some(login.conversations),
        };
        let newest = self
            .room(&self.default_room.clone())
            .map_or(0, |room| room.head.newest);
        let in_default = keys.contains(&self.default_room);
        self.send_welcome(&welcome, newest, in_default);
    }

    /// What the cluster reports.
    pub(super) fn news(&mut self, news: News, executor: &Executor<'static>) {
        match news {
            News::Claimed {
                login,
                next,
                outcome,
            } => self.claimed(*login, next, outcome, executor),
            News::Tailed { key, events } => {
                if let Some(room) = self.room(&key) {
                    room.tailed.extend(events);
                    self.apply_tailed(&key);
                }
            }
            News::Direct(messages) => {
                for (from, to, frame) in messages {
                    self.deliver_direct(&from, &to, &frame);
                }
            }
            News::Replaced { member, token } => self.replaced(&member, &token, CloseCode::Replaced),
            News::Orphaned { member, token } => self.replaced(&member, &token, CloseCode::Shutdown),
            News::Subscribed => {
                if let Some(cluster) = &self.cluster {
                    let members = self
                        .registry
                        .sorted()
                        .filter(|(_, member)| member.online)
                        .map(|(_, member)| (member.keys.folded.clone(), member.token.clone()))
                        .collect::<Vec<_>>();
                    if !members.is_empty() {
                        cluster.ask(Request::Verify(members));
                    }
                }
            }
            News::Accounts(accounts) => {
                for (name, hash) in accounts {
                    if let Ok(name) = Name::parse(&name) {
                        self.accounts.insert(Account {
                            keys: name.keys(),
                            name,
                            hash: PasswordHash::from_stored(hash),
                        });
                    }
                }
            }
            News::Rooms(rooms) => {
                for (key, name) in rooms {
                    self.names.insert(key.into(), name.into());
                }
            }
            News::Failed { account, ip } => self.throttle.fail(&account, ip, Instant::now()),
            News::Failures(failures) => {
                let (now, now_ms) = (Instant::now(), now_millis());
                for (counted, at) in failures {
                    let at = now
                        .checked_sub(Duration::from_millis(now_ms.saturating_sub(at)))
                        .unwrap_or(now);
                    match counted {
                        Counted::Account(account) => self.throttle.fail_account(&account, at),
                        Counted::Address(ip) => self.throttle.fail_address(ip, at),
                    }
                }
            }
            News::CutOff => self.cut_off(),
        }
    }

    /// A member here was taken over on another node: its connection is closed with
    /// `code` (`replaced`), and nothing is recorded (it is online there).
    pub(super) fn replaced(&mut self, member: &str, token: &str, code: CloseCode) {
        let Some(conn) = self.registry.conn_of(member) else {
            return;
        };
        if self.registry.get(conn).is_none_or(|m| m.token != token) {
            return;
        }
        self.claiming.remove(&conn);
        self.drop_member(conn, code);
    }

    /// Every connection here starts over: the cluster took this node's members offline.
    pub(super) fn cut_off(&mut self) {
        let conns: Vec<ConnId> = self.registry.sorted().map(|(conn, _)| conn).collect();
        for conn in conns {
            self.drop_member(conn, CloseCode::Shutdown);
        }
    }

    /// In a cluster: takes in the events the tail brought for a room, in seq order, with
    /// what this node's own mean; not while a batch of the room is being recorded (which
    /// of them are this node's is known only once it is).
    pub(super) fn apply_tailed(&mut self, key: &Arc<str>) {
        let Some(room) = self.room(key) else {
            return;
        };
        if room.is_recording() {
            return;
        }
        let tailed = std::mem::take(&mut room.tailed);
        let mut parted = Vec::new();
        for (event, change) in tailed {
            let Some(room) = self.room(key) else {
                break;
            };
            if event.seq <= room.head.newest {
                continue;
            }
            if room.head.newest > 0 && event.seq > room.head.newest + 1 {
                tracing::warn!(room = %key, from = room.head.newest + 1, to = event.seq - 1, "events missing from the tail");
            }
            let posted = match &change {
                Some(Note::Posted(poster, id)) => Some((poster.clone(), id.clone())),
                _ => None,
            };
            room.change_roster(change);
            let mine = room.awaiting.remove(&event.seq);
            // A post of a member here: its id is known even if the answer to the append
            // was lost (Redis went away), so a copy sent again is not posted twice.
            if let Some((poster, id)) = posted
                && self.registry.online_conn(&poster).is_some()
            {
                self.recent
                    .entry(poster)
                    .or_default()
                    .remember(&id, event.frame.clone());
            }
            if let Some(pending) = mine {
                parted.extend(self.settle(key, pending, event.seq));
            }
            if let Some(room) = self.room(key) {
                room.record(event);
            }
        }
        // Ours that the room is past already (it was read back meanwhile): settled late.
        let late = match self.room(key) {
            Some(room) => {
                let newer = room.awaiting.split_off(&(room.head.newest + 1));
                std::mem::replace(&mut room.awaiting, newer)
            }
            None => BTreeMap::new(),
        };
        for (seq, pending) in late {
            parted.extend(self.settle(key, pending, seq));
        }
        self.push_recorded(key, parted);
    }

    /// In a cluster: an event of this node that Redis did not record, because its author
    /// no longer holds its session (it went, or was taken over elsewhere).
    pub(super) fn skipped(&mut self, key: &Arc<str>, pending: Pending) {
        match pending.effect {
            Effect::Welcome(welcome) => {
                let _ = welcome.reply.try_send(false);
                self.drop_placeholder(welcome.conn);
            }
            Effect::Joined { conn, .. } => {
                if let Some(member) = self.registry.get_mut(conn) {
                    member.rooms.retain(|k| k != key);
                }
            }
            Effect::Parted { .. } | Effect::Post { .. } | Effect::None => {}
        }
    }
}
