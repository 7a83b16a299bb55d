//! Log-in: a name is checked here, claimed from the other nodes (alone, at once), then
//! taken fresh (the default room's `joined`, then the welcome) or taken over (the same
//! member on a new connection, nobody else sees anything); and a member going.

use std::collections::HashMap;
use std::sync::Arc;

use chat_shared::{
    CloseCode, Conversation, Frame, Invitation, LeaveReason, Name, NameKeys, RejectCode,
    ServerFrame, fold,
};

use crate::log::{Body, Seq, StreamId};
use crate::registry::{Admission, ConnId, Member};
use crate::room::table::Deferred;
use crate::room::{Effect, Room, Welcome};
use crate::wire::{closing, now_millis, random_hex, rejected};

use super::command::{AfterClaim, Auth, Claim, Claimed, Login};
use super::peers::NameClaim;
use super::{Claiming, Hub};

impl Hub {
    /// Refuses a login: queues the rejection and tells the session.
    pub(super) fn reject(
        login: &Login,
        code: RejectCode,
        message: String,
        retry_after: Option<u64>,
    ) {
        login
            .queue
            .push_unmetered(rejected(code, message, retry_after));
        let _ = login.reply.try_send(Err(code));
    }

    pub(super) fn login(&mut self, mut login: Login) {
        let keys = login.name.keys();
        if self.refuse_banned(&login, &keys) {
            return;
        }
        match std::mem::replace(&mut login.auth, Auth::Guest) {
            Auth::Guest => {
                // In this order: a takeover, an account's name, a name taken.
                let admission = self
                    .registry
                    .admit(&login.name, &keys, login.token.as_deref());
                let guest = AfterClaim::Login { account: false };
                if let Admission::Takeover(_) = admission {
                    return self.claim(login, guest, false, false);
                }
                // With a token for a name free here, the session to take over may be on
                // another node: an account's name is refused once the claim says it is
                // not a takeover.
                let elsewhere = login.token.is_some() && admission == Admission::Free;
                if !elsewhere && self.refuse_an_accounts_name(&login, &keys) {
                    return;
                }
                // A guest may not pass for an administrator, registered yet or not.
                if self.is_admin_name(&keys) {
                    let message = format!("{} is kept for an administrator", login.name);
                    return Self::reject(&login, RejectCode::NameRegistered, message, None);
                }
                match admission {
                    Admission::Taken(message) => {
                        Self::reject(&login, RejectCode::NameTaken, message, None);
                    }
                    _ => self.claim(login, guest, false, true),
                }
            }
            Auth::Register(password) => self.register(login, &keys, password),
            Auth::Password(password) => self.check_password(login, &keys, password),
        }
    }

    /// Refuses a name, or an address, that a server ban holds (`banned`, with when it
    /// ends); says whether it did.
    fn refuse_banned(&self, login: &Login, keys: &NameKeys) -> bool {
        let now = now_millis();
        let Some(ban) = self
            .server_bans
            .of_name(keys, now)
            .or_else(|| self.server_bans.of_address(login.ip, now))
        else {
            return false;
        };
        let message = ban
            .message
            .clone()
            .unwrap_or_else(|| "you are banned from this server".into());
        let retry_after = ban.until.map(|until| until.saturating_sub(now));
        Self::reject(login, RejectCode::Banned, message, retry_after);
        true
    }

    /// Refuses a name that is an account's, or looks like one (`name_registered`); says
    /// whether it did.
    pub(super) fn refuse_an_accounts_name(&self, login: &Login, keys: &NameKeys) -> bool {
        let Some(owner) = self.accounts.colliding(keys) else {
            return false;
        };
        let deleted = self
            .accounts
            .get_any(&fold(owner))
            .is_some_and(|account| account.hash.is_deleted());
        let message = if deleted {
            format!("{owner} was an account, deleted: its name is not given out again")
        } else if fold(owner) == keys.folded {
            format!("{owner} is an account: log in with its password, or choose another name")
        } else {
            format!("{} looks like the account {owner}", login.name)
        };
        Self::reject(login, RejectCode::NameRegistered, message, None);
        true
    }

    /// Claims the login's name from the other nodes (see [`super::peers::Peers::claim`]);
    /// the answer comes to [`Hub::claimed`]. With `free_here`, nobody here holds the name,
    /// and it is held for this login meanwhile; without, a member here holds it, and the
    /// claim may take it over.
    pub(super) fn claim(
        &mut self,
        mut login: Login,
        next: AfterClaim,
        proven: bool,
        free_here: bool,
    ) {
        let Ok(token) = random_hex(16) else {
            tracing::error!("no random bytes for a token");
            return Self::reject(
                &login,
                RejectCode::Unavailable,
                "the server cannot make a session token now; try again".into(),
                Some(2000),
            );
        };
        let account = match next {
            AfterClaim::Login { account } => account,
            AfterClaim::Register(_) => true,
        };
        login.session = Some(token.clone());
        if free_here {
            let member = self.member(&login, login.name.clone(), token.clone(), account);
            self.registry.insert(login.conn, member);
        }
        self.claiming.insert(
            login.conn,
            Claiming {
                wanted: true,
                held: free_here,
            },
        );
        let claim = NameClaim {
            login: Box::new(login),
            next,
            token,
            proven,
            account,
            free_here,
        };
        if let Some(answer) = self.peers.claim(claim) {
            self.claimed(answer);
        }
    }

    /// Gives up a name claimed for `login` that will not be used (a failed registration,
    /// an account's name, a connection gone): it is free again on every node.
    pub(super) fn unclaim(&mut self, login: &Login) {
        if let Some(token) = &login.session {
            let member = login.name.keys().folded;
            self.peers.release(member, token.clone(), LeaveReason::Quit);
        }
        self.drop_placeholder(login.conn);
    }

    /// Forgets a member not yet online (the name held for a login while it is claimed, or
    /// while its `joined` is recorded).
    pub(super) fn drop_placeholder(&mut self, conn: ConnId) {
        if self.registry.get(conn).is_some_and(|member| !member.online) {
            self.registry.remove(conn);
        }
    }

    /// The other nodes answered a claim (alone: at once).
    pub(super) fn claimed(&mut self, answer: Claimed) {
        let Claimed {
            login,
            next,
            outcome,
        } = answer;
        let login = *login;
        let keys = login.name.keys();
        // Gone meanwhile: a name held here is released behind the claim (same order); one
        // claimed without being held here is released below.
        let Claiming {
            mut wanted,
            mut held,
        } = self.claiming.remove(&login.conn).unwrap_or(Claiming {
            wanted: false,
            held: true,
        });
        if wanted && login.queue.is_closed() {
            // Gone before its `leave` could find it (its password was being checked):
            // nothing will release what it holds but this.
            (wanted, held) = (false, false);
        }
        let guest = matches!(next, AfterClaim::Login { account: false });
        let reject_taken = |hub: &mut Self, login: &Login, message: String| {
            hub.drop_placeholder(login.conn);
            // An account's name is refused as such first.
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
                    // The other nodes no longer knew a session here under this name (this
                    // node was taken for dead a moment ago): that session is over.
                    if let Some((stale, _)) = self
                        .registry
                        .holder(&keys)
                        .filter(|(conn, _)| *conn != login.conn)
                    {
                        self.drop_member(stale, CloseCode::Shutdown);
                    }
                    self.fresh_login(login, account);
                }
                AfterClaim::Register(password) => self.hash_new_account(login, &keys, password),
            },
            Ok(Claim::Takeover {
                node,
                name,
                account,
                rooms,
            }) => {
                let here = node == self.peers.node();
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
                    _ => self.adopt(login, &name, account, &rooms),
                }
            }
        }
    }

    /// A member as `login` makes it: not online until its welcome goes out, in no room
    /// yet.
    pub(super) fn member(&self, login: &Login, name: Name, token: String, account: bool) -> Member {
        let read = if account {
            self.read_markers_of(&name.keys().folded, &login.read)
        } else {
            HashMap::new()
        };
        Member {
            keys: name.keys(),
            name,
            token,
            queue: login.queue.clone(),
            online: false,
            rooms: Vec::new(),
            protocol: login.protocol,
            account,
            ip: login.ip,
            read,
            typed: Vec::new(),
        }
    }

    /// A login that takes a free name: it joins the default room, and gets its welcome
    /// once that `joined` is recorded.
    pub(super) fn fresh_login(&mut self, mut login: Login, account: bool) {
        let Some(token) = login.session.take() else {
            return;
        };
        let posts = std::mem::take(&mut login.recent);
        let folded = login.name.keys().folded;
        for (id, frame) in posts {
            self.posts.remember(&folded, &id, frame);
        }
        let default = self.rooms.default_key().clone();
        let mut member = self.member(&login, login.name.clone(), token, account);
        let name = member.name.to_string();
        // A member the default room does not admit (banned, or not invited) starts in no
        // room: its welcome goes at once, then why. So does one that does not join it.
        let refused = self
            .rooms
            .get(&default)
            .and_then(|room| self.admission(&member, room, now_millis()).err());
        if refused.is_some() || !login.joins_default {
            self.registry.insert(login.conn, member);
            let newest = self.rooms.get(&default).map_or(0, Room::newest);
            let queue = login.queue.clone();
            self.send_welcome(&welcome(login, account), newest, false);
            if let Some(refusal) = refused {
                queue.push_unmetered(refusal);
            }
            return;
        }
        member.rooms.push(default.clone());
        self.registry.insert(login.conn, member);
        let waiting = welcome(login, account);
        self.push(
            &default,
            Body::Joined { name },
            None,
            Effect::Welcome(Box::new(waiting)),
        );
    }

    /// The same user on a new connection, with its token or its password: it keeps the
    /// rooms, the others see nothing, the old connection is told it was replaced.
    pub(super) fn take_over(&mut self, old: ConnId, mut login: Login) {
        let Some(token) = login.session.take() else {
            return;
        };
        let Some(previous) = self.registry.remove(old) else {
            return;
        };
        previous
            .queue
            .close_with(Some(closing(CloseCode::Replaced)));
        let default = self.rooms.default_key().clone();
        for key in &previous.rooms {
            // Its welcome replays the default room up to its newest event.
            let caught_up = *key == default;
            let queue = login.queue.clone();
            self.rooms
                .update(key, |room| room.replace(old, login.conn, queue, caught_up));
        }
        // What it asked of a room on its way back from the log is the new one's.
        self.rooms.hand_over(&previous.rooms, old, login.conn);
        let mut member = self.member(&login, previous.name, token, previous.account);
        member.rooms = previous.rooms;
        self.registry.insert(login.conn, member);
        self.welcome_back(login, previous.account);
    }

    /// A member taken over from another node: it keeps its rooms, nobody sees anything,
    /// and the old node closes its old connection (`replaced`).
    pub(super) fn adopt(&mut self, mut login: Login, name: &str, account: bool, rooms: &[String]) {
        let Some(token) = login.session.take() else {
            return;
        };
        let name = Name::parse(name).unwrap_or_else(|_| login.name.clone());
        let default = self.rooms.default_key().clone();
        let mut keys: Vec<Arc<str>> = rooms
            .iter()
            .map(|room| {
                self.rooms
                    .known_key(room)
                    .unwrap_or_else(|| Arc::from(room.as_str()))
            })
            .collect();
        keys.sort_by_key(|key| *key != default);
        // A room that has taken in the member's leaving (a moderator put it out while the
        // claim was on its way) is not its any more.
        let folded = name.keys().folded;
        keys.retain(|key| {
            self.rooms
                .get(key)
                .is_none_or(|room| room.has_member(&folded, &self.registry))
        });
        let conn = login.conn;
        let mut member = self.member(&login, name, token, account);
        member.rooms.clone_from(&keys);
        self.registry.insert(conn, member);
        for key in &keys {
            let queue = login.queue.clone();
            if self.rooms.get(key).is_some() {
                self.rooms.update(key, |room| room.add(conn, queue));
            } else if self.rooms.is_loading(key) {
                let _ = self.rooms.defer(key, Deferred::Adopt(conn));
            } else {
                self.load_room(key, vec![Deferred::Adopt(conn)]);
            }
        }
        self.welcome_back(login, account);
    }

    /// The welcome of a member who was online already (a takeover), with the default
    /// room's newest seq and, if it is in that room, the replay.
    fn welcome_back(&mut self, login: Login, account: bool) {
        let default = self.rooms.default_key().clone();
        let newest = self.rooms.get(&default).map_or(0, Room::newest);
        // A connection that had parted the default room gets no replay of it.
        let in_default = self
            .registry
            .get(login.conn)
            .is_some_and(|member| member.rooms.contains(&default));
        self.send_welcome(&welcome(login, account), newest, in_default);
    }

    /// Sends a login its welcome (with `seq` the default room's newest event before it)
    /// and, when it is in the default room, the replay.
    pub(super) fn send_welcome(&mut self, welcome: &Welcome, seq: Seq, replay: bool) {
        let Some(member) = self.registry.get_mut(welcome.conn) else {
            let _ = welcome.reply.try_send(Err(RejectCode::Unavailable));
            return;
        };
        member.online = true;
        let Some(member) = self.registry.get(welcome.conn) else {
            return;
        };
        let rooms: Vec<String> = member
            .rooms
            .iter()
            .map(|key| self.rooms.name(key).to_string())
            .collect();
        let epoch = self.log.epoch();
        let same_epoch = welcome.epoch.as_deref() == Some(epoch);
        if let (true, true, Some(since)) = (replay, same_epoch, welcome.since) {
            let (conn, default) = (welcome.conn, self.rooms.default_key().clone());
            self.rooms
                .update(&default, |room| room.resumed_at(conn, since));
        }
        let Some(room) = self.rooms.get(self.rooms.default_key()) else {
            return;
        };
        let replay = if replay {
            let (fresh, max) = (self.config.replay, self.config.replay_max);
            room.replay(welcome.since, same_epoch, fresh, max)
        } else {
            Vec::new()
        };
        let invites = welcome
            .invites
            .iter()
            .map(|(key, by)| Invitation {
                room: self.rooms.name(key).to_string(),
                by: by.clone(),
            })
            .collect();
        let admin = self.is_admin(member);
        let password_reset = member.account
            && self
                .accounts
                .get(&member.keys.folded)
                .is_some_and(|account| account.hash.temporary_until().is_some());
        crate::metrics::get().logins.inc();
        let frame = Frame::encode(&ServerFrame::Welcome {
            protocol: member.protocol,
            name: member.name.to_string(),
            users: room.users(&self.registry),
            seq,
            oldest: room.oldest(self.log.durable()),
            epoch: epoch.to_string(),
            token: member.token.clone(),
            rooms,
            account: member.account,
            conversations: welcome.conversations.as_ref().map(|listed| {
                self.recent_direct
                    .merged(&member.keys.folded, listed)
                    .into_iter()
                    .map(|conversation| {
                        let stream =
                            StreamId::direct(&member.keys.folded, &fold(&conversation.with));
                        Conversation {
                            read: member.read.get(&stream).copied().unwrap_or(0),
                            ..conversation
                        }
                    })
                    .collect()
            }),
            invites,
            admin,
            password_reset,
            limits: self.limits(),
        });
        welcome
            .queue
            .push_unmetered(Frame::concat(std::iter::once(&frame).chain(&replay)));
        let _ = welcome.reply.try_send(Ok(()));
    }

    /// A member goes (`bye`, dropped, timed out, kicked): its name is released and it
    /// leaves every room it is in, with a `left` for `reason` in each.
    pub(super) fn leave(&mut self, conn: ConnId, reason: LeaveReason) {
        if let Some(claiming) = self.claiming.get_mut(&conn) {
            claiming.wanted = false;
        }
        let Some(member) = self.registry.remove(conn) else {
            return;
        };
        // In a cluster its `left`s are recorded with its name's release, in one step, and
        // only if its session is still its own; every node's tail brings them.
        let released_with_lefts = self.peers.tails();
        let (folded, token) = (member.keys.folded.clone(), member.token.clone());
        self.peers.release(folded, token, reason);
        for key in &member.rooms {
            // A member whose `joined` is still on its way gets its `left` once that is
            // recorded; in every other room it was in, it leaves now.
            let was_in = self.rooms.update(key, |room| {
                let was_in = room.contains(conn);
                room.remove(conn);
                was_in
            });
            if was_in == Some(true) && !released_with_lefts {
                let name = member.name.to_string();
                self.push(key, Body::left(name, reason), None, Effect::None);
            }
            self.drop_if_idle(key);
        }
    }

    /// Closes a member's connection with `closing` (sent after what is queued) and takes
    /// it out of its rooms, each recording its `left` for `reason`.
    pub(super) fn close_member(&mut self, conn: ConnId, closing: Frame, reason: LeaveReason) {
        if let Some(member) = self.registry.get(conn) {
            member.queue.close_with(Some(closing));
        }
        self.leave(conn, reason);
    }

    /// Takes a member out of the registry and its rooms' fan-out and closes its
    /// connection with `code`, recording nothing.
    pub(super) fn drop_member(&mut self, conn: ConnId, code: CloseCode) {
        let Some(member) = self.registry.remove(conn) else {
            return;
        };
        member.queue.close_with(Some(closing(code)));
        for key in &member.rooms {
            self.rooms.update(key, |room| room.remove(conn));
            self.drop_if_idle(key);
        }
    }
}

/// What a login waits for until its welcome goes out.
fn welcome(login: Login, account: bool) -> Welcome {
    Welcome {
        conn: login.conn,
        since: login.since,
        epoch: login.epoch,
        queue: login.queue,
        reply: login.reply,
        conversations: account.then_some(login.conversations),
        invites: if account { login.invites } else { Vec::new() },
    }
}
