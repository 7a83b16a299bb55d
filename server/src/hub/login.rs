//! Log-in and accounts: names, passwords, registrations, takeovers, welcomes, and a
//! member going.

use std::net::IpAddr;
use std::time::Instant;

use chat_shared::limits::MAX_PASSWORD;
use chat_shared::{
    CloseCode, ErrorCode, Frame, LeaveReason, NameKeys, Password, RejectCode, ServerFrame,
    check_password, fold,
};

use crate::accounts::{self, Account, PasswordHash};
use crate::cluster::{AfterClaim, Request};
use crate::log::{Body, Seq};
use crate::registry::{Admission, ConnId, Member};
use crate::room::{Effect, Welcome};
use crate::wire::{closing, random_hex};

use super::command::{Auth, Command, Login, PasswordOutcome};
use super::{Hub, Slot};

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
            .push_unmetered(Frame::encode(&ServerFrame::Rejected {
                code,
                message,
                retry_after,
            }));
        let _ = login.reply.try_send(false);
    }

    /// A new session token for `login`; without one (no random bytes) the login is
    /// refused as `unavailable`.
    pub(super) fn session_token(login: &Login) -> Option<String> {
        let token = random_hex(16).ok();
        if token.is_none() {
            tracing::error!("no random bytes for a token");
            Self::reject(
                login,
                RejectCode::Unavailable,
                "the server cannot make a session token now; try again".into(),
                Some(2000),
            );
        }
        token
    }

    pub(super) fn login(&mut self, mut login: Login) {
        let keys = login.name.keys();
        match std::mem::replace(&mut login.auth, Auth::Guest) {
            Auth::Guest => {
                let admission = self
                    .registry
                    .admit(&login.name, &keys, login.token.as_deref());
                if self.cluster.is_some() {
                    // Whether the name is free (or this login's to take over) on every
                    // node is for Redis to say.
                    // The checks come in the same order as alone: a takeover, an
                    // account's name, a name taken.
                    let guest = AfterClaim::Login { account: false };
                    if let Admission::Takeover(_) = admission {
                        return self.claim(login, guest, false, false);
                    }
                    // With a token, the session to take over may be on another node.
                    if login.token.is_none() && self.refuse_an_accounts_name(&login, &keys) {
                        return;
                    }
                    return match admission {
                        Admission::Taken(message) => {
                            Self::reject(&login, RejectCode::NameTaken, message, None);
                        }
                        _ => self.claim(login, guest, false, true),
                    };
                }
                if let Admission::Takeover(old) = admission {
                    return self.take_over(old, login);
                }
                if self.refuse_an_accounts_name(&login, &keys) {
                    return;
                }
                match admission {
                    Admission::Taken(message) => {
                        Self::reject(&login, RejectCode::NameTaken, message, None);
                    }
                    _ => self.fresh_login(login, keys, false),
                }
            }
            Auth::Register(password) => self.register(login, &keys, password),
            Auth::Password(password) => self.check_password(login, &keys, password),
        }
    }

    /// Refuses a name that is an account's, or looks like one (`name_registered`); says
    /// whether it did.
    pub(super) fn refuse_an_accounts_name(&self, login: &Login, keys: &NameKeys) -> bool {
        let Some(owner) = self.accounts.colliding(keys) else {
            return false;
        };
        let message = if fold(owner) == keys.folded {
            format!("{owner} is an account: log in with its password, or choose another name")
        } else {
            format!("{} looks like the account {owner}", login.name)
        };
        Self::reject(login, RejectCode::NameRegistered, message, None);
        true
    }

    /// Registers an account (the session checked `registration_closed` and the name):
    /// `name_registered`, `name_taken`, `weak_password`, in this order; then the name is
    /// held while the hashing threads hash the password and store the account.
    pub(super) fn register(&mut self, login: Login, keys: &NameKeys, password: Password) {
        if self.refuse_an_accounts_name(&login, keys) {
            return;
        }
        if let Admission::Taken(message) = self.registry.admit(&login.name, keys, None) {
            return Self::reject(&login, RejectCode::NameTaken, message, None);
        }
        if let Err(weak) = check_password(login.name.as_str(), password.expose()) {
            return Self::reject(&login, RejectCode::WeakPassword, weak.to_string(), None);
        }
        if self.cluster.is_some() {
            // The name must be free on every node before it is hashed and stored.
            return self.claim(login, AfterClaim::Register(password), false, true);
        }
        self.hash_new_account(login, keys, password);
    }

    /// Hashes a new account's password and stores it, on the hashing threads; the name is
    /// held meanwhile.
    pub(super) fn hash_new_account(&mut self, login: Login, keys: &NameKeys, password: Password) {
        self.accounts.reserve(keys);
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        let (folded, name) = (keys.folded.clone(), login.name.to_string());
        let login = Box::new(login);
        // The login travels with the job and comes back with its answer; if the queue is
        // full, it comes back at once.
        let job = move |login: Box<Login>| {
            let result = accounts::hash(&password).and_then(|hash| {
                match log.create_account(&folded, &name, hash.as_stored()) {
                    Ok(true) => Ok(hash),
                    Ok(false) => Err("the account exists already".into()),
                    Err(err) => Err(err.to_string()),
                }
            });
            let _ = inbox.try_send(Command::Registered { login, result });
        };
        if let Err(login) = self.hasher.submit(login, job) {
            self.accounts.release(&keys.folded);
            self.unclaim(&login);
            Self::busy(&login);
        }
    }

    /// Too many password checks are queued: come back in a moment.
    pub(super) fn busy(login: &Login) {
        Self::reject(
            login,
            RejectCode::Unavailable,
            "the server is checking many passwords at once; try again in a moment".into(),
            Some(2000),
        );
    }

    /// A log-in with a password: `no_account`, `too_many_attempts`, then the hashing
    /// threads check it.
    pub(super) fn check_password(&mut self, login: Login, keys: &NameKeys, password: Password) {
        let Some(account) = self.accounts.get(&keys.folded) else {
            let message = format!("there is no account {}", login.name);
            return Self::reject(&login, RejectCode::NoAccount, message, None);
        };
        if let Err(wait) = self.throttle.check(&keys.folded, login.ip, Instant::now()) {
            return Self::reject(
                &login,
                RejectCode::TooManyAttempts,
                "too many wrong passwords; wait before trying again".into(),
                Some(wait.as_millis() as u64 + 1),
            );
        }
        if password.expose().len() > MAX_PASSWORD {
            // Longer than any password can be: wrong, without hashing it.
            return self.verified(login, false);
        }
        let hash = account.hash.clone();
        let inbox = self.inbox.clone();
        let job = move |login: Box<Login>| {
            let right = accounts::verify(&hash, &password);
            let _ = inbox.try_send(Command::Verified { login, right });
        };
        if let Err(login) = self.hasher.submit(Box::new(login), job) {
            Self::busy(&login);
        }
    }

    /// The password of a log-in was checked.
    pub(super) fn verified(&mut self, mut login: Login, right: bool) {
        let keys = login.name.keys();
        if !right {
            self.count_failure(&keys.folded, login.ip);
            return Self::reject(
                &login,
                RejectCode::BadPassword,
                "wrong password".into(),
                None,
            );
        }
        let Some(account) = self.accounts.get(&keys.folded) else {
            return Self::reject(
                &login,
                RejectCode::NoAccount,
                "no such account".into(),
                None,
            );
        };
        // The welcome carries the account's own spelling.
        login.name = account.name.clone();
        let keys = account.keys.clone();
        let account = AfterClaim::Login { account: true };
        match self.registry.holder(&keys) {
            // In a cluster, the account may be online on another node too: Redis says.
            Some((_, true)) if self.cluster.is_some() => self.claim(login, account, true, false),
            None if self.cluster.is_some() => self.claim(login, account, true, true),
            // The account is online: this connection takes it over.
            Some((conn, true)) => self.take_over(conn, login),
            Some((_, false)) => Self::reject(
                &login,
                RejectCode::NameTaken,
                format!("{} is logging in on another connection", login.name),
                None,
            ),
            None => self.fresh_login(login, keys, true),
        }
    }

    /// Counts a wrong password (on every node, in a cluster).
    pub(super) fn count_failure(&mut self, folded: &str, ip: IpAddr) {
        self.throttle.fail(folded, ip, Instant::now());
        if let Some(cluster) = &self.cluster {
            cluster.ask(Request::Fail {
                account: folded.to_string(),
                ip,
            });
        }
    }

    /// A new account was hashed and stored (or not).
    pub(super) fn registered(&mut self, login: Login, result: Result<PasswordHash, String>) {
        let keys = login.name.keys();
        match result {
            Ok(hash) => {
                tracing::info!(account = %login.name, "account registered");
                self.accounts.insert(Account {
                    name: login.name.clone(),
                    keys: keys.clone(),
                    hash,
                });
                self.fresh_login(login, keys, true);
            }
            Err(err) => {
                tracing::error!(%err, "cannot register an account");
                self.accounts.release(&keys.folded);
                self.unclaim(&login);
                Self::reject(
                    &login,
                    RejectCode::Unavailable,
                    "the account could not be created now; try again".into(),
                    Some(2000),
                );
            }
        }
    }

    /// A login that takes a free name: it joins the default room, and gets its welcome
    /// once that `joined` is recorded.
    pub(super) fn fresh_login(&mut self, mut login: Login, keys: NameKeys, account: bool) {
        let Some(token) = login.session.take().or_else(|| Self::session_token(&login)) else {
            return;
        };
        // Only names with posts to remember get an entry: an idle connection costs none.
        if !login.recent.is_empty() {
            let entry = self.recent.entry(keys.folded.clone()).or_default();
            for (id, frame) in login.recent {
                entry.remember(&id, frame);
            }
        }
        let name = login.name.to_string();
        let default = self.default_room.clone();
        self.registry.insert(
            login.conn,
            Member {
                name: login.name,
                keys,
                token,
                queue: login.queue.clone(),
                online: false,
                rooms: vec![default.clone()],
                protocol: login.protocol,
                account,
                ip: login.ip,
            },
        );
        let welcome = Welcome {
            conn: login.conn,
            since: login.since,
            epoch: login.epoch,
            queue: login.queue,
            reply: login.reply,
            conversations: account.then_some(login.conversations),
        };
        self.push(
            &default,
            Body::Joined { name },
            None,
            Effect::Welcome(Box::new(welcome)),
        );
    }

    /// The same user on a new connection, with its token: it keeps the rooms, the others
    /// see nothing, the old connection is told it was replaced.
    pub(super) fn take_over(&mut self, old: ConnId, mut login: Login) {
        let Some(token) = login.session.take().or_else(|| Self::session_token(&login)) else {
            return;
        };
        let Some(previous) = self.registry.remove(old) else {
            return;
        };
        previous
            .queue
            .close_with(Some(closing(CloseCode::Replaced)));
        for key in &previous.rooms {
            match self.rooms.get_mut(key) {
                Some(Slot::Ready(room)) => {
                    // Its welcome replays the default room up to its newest event.
                    let caught_up = *key == self.default_room;
                    room.fanout
                        .replace(old, login.conn, login.queue.clone(), caught_up);
                }
                // What it asked of a room on its way back from the store is the new one's.
                Some(Slot::Loading(waiting)) => {
                    for deferred in waiting {
                        if *deferred.conn_mut() == old {
                            *deferred.conn_mut() = login.conn;
                        }
                    }
                }
                None => {}
            }
        }
        let in_default = previous.rooms.contains(&self.default_room);
        self.registry.insert(
            login.conn,
            Member {
                name: previous.name,
                keys: previous.keys,
                token,
                queue: login.queue.clone(),
                online: true,
                rooms: previous.rooms,
                protocol: login.protocol,
                account: previous.account,
                ip: login.ip,
            },
        );
        let welcome = Welcome {
            conn: login.conn,
            since: login.since,
            epoch: login.epoch,
            queue: login.queue,
            reply: login.reply,
            conversations: previous.account.then_some(login.conversations),
        };
        let newest = self
            .room(&self.default_room.clone())
            .map_or(0, |room| room.head.newest);
        // A connection that had parted the default room gets no replay of it.
        self.send_welcome(&welcome, newest, in_default);
    }

    /// Sends a login its welcome (with `seq` the default room's newest event before it)
    /// and, when it is in the default room, the replay.
    pub(super) fn send_welcome(&mut self, welcome: &Welcome, seq: Seq, replay: bool) {
        let Some(member) = self.registry.get_mut(welcome.conn) else {
            let _ = welcome.reply.try_send(false);
            return;
        };
        member.online = true;
        let (name, token, protocol, account) = (
            member.name.to_string(),
            member.token.clone(),
            member.protocol,
            member.account,
        );
        let rooms: Vec<String> = member
            .rooms
            .iter()
            .map(|key| self.names.name(key).to_string())
            .collect();
        let same_epoch = welcome.epoch.as_deref() == Some(self.log.epoch());
        let durable = self.log.durable();
        let (fresh, max) = (self.config.replay, self.config.replay_max);
        let default = self.default_room.clone();
        let users = self.room_users(&default);
        let Some(room) = self.room(&default) else {
            return;
        };
        let replay = if replay {
            room.replay(welcome.since, same_epoch, fresh, max)
        } else {
            Vec::new()
        };
        let frame = Frame::encode(&ServerFrame::Welcome {
            protocol,
            name,
            users,
            seq,
            oldest: room.oldest(durable),
            epoch: self.log.epoch().to_string(),
            token,
            rooms,
            account,
            conversations: welcome.conversations.clone(),
            limits: self.limits(),
        });
        welcome
            .queue
            .push_unmetered(Frame::concat(std::iter::once(&frame).chain(&replay)));
        let _ = welcome.reply.try_send(true);
    }

    /// `set_password`: only an account; not while throttled; the new one must be
    /// acceptable; then the hashing threads check the current one and store the new.
    pub(super) fn set_password(
        &mut self,
        conn: ConnId,
        password: Password,
        new_password: Password,
    ) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let account = self
            .accounts
            .get(&member.keys.folded)
            .filter(|_| member.account);
        let Some(account) = account else {
            return self.error(
                conn,
                ErrorCode::AccountRequired,
                "only an account has a password; register one".into(),
                None,
                None,
            );
        };
        let (folded, ip) = (account.keys.folded.clone(), member.ip);
        if let Err(wait) = self.throttle.check(&folded, ip, Instant::now()) {
            return self.tell(
                conn,
                &ServerFrame::Error {
                    code: ErrorCode::TooManyAttempts,
                    message: "too many wrong passwords; wait before trying again".into(),
                    id: None,
                    room: None,
                    retry_after: Some(wait.as_millis() as u64 + 1),
                },
            );
        }
        if let Err(weak) = check_password(account.name.as_str(), new_password.expose()) {
            return self.error(conn, ErrorCode::WeakPassword, weak.to_string(), None, None);
        }
        if password.expose().len() > MAX_PASSWORD {
            return self.password_checked(conn, &folded, ip, PasswordOutcome::Wrong);
        }
        let (hash, log, inbox) = (account.hash.clone(), self.log.clone(), self.inbox.clone());
        let job = move |folded: String| {
            let outcome = if accounts::verify(&hash, &password) {
                match accounts::hash(&new_password).and_then(|hash| {
                    log.set_password(&folded, hash.as_stored())
                        .map(|()| hash)
                        .map_err(|err| err.to_string())
                }) {
                    Ok(hash) => PasswordOutcome::Changed(hash),
                    Err(err) => PasswordOutcome::Failed(err),
                }
            } else {
                PasswordOutcome::Wrong
            };
            let _ = inbox.try_send(Command::PasswordChecked {
                conn,
                folded,
                ip,
                outcome,
            });
        };
        if self.hasher.submit(folded, job).is_err() {
            self.error(
                conn,
                ErrorCode::Unavailable,
                "the server is checking many passwords at once; try again in a moment".into(),
                None,
                None,
            );
        }
    }

    pub(super) fn password_checked(
        &mut self,
        conn: ConnId,
        folded: &str,
        ip: IpAddr,
        outcome: PasswordOutcome,
    ) {
        match outcome {
            PasswordOutcome::Wrong => {
                self.count_failure(folded, ip);
                self.error(
                    conn,
                    ErrorCode::BadPassword,
                    "the current password is wrong".into(),
                    None,
                    None,
                );
            }
            PasswordOutcome::Changed(hash) => {
                tracing::info!(account = folded, "password changed");
                self.accounts.set_hash(folded, hash);
                self.tell(conn, &ServerFrame::PasswordChanged);
            }
            PasswordOutcome::Failed(err) => {
                tracing::error!(%err, "cannot change a password");
                self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "the password could not be changed now; try again".into(),
                    None,
                    None,
                );
            }
        }
    }

    pub(super) fn leave(&mut self, conn: ConnId, reason: LeaveReason) {
        if let Some(claiming) = self.claiming.get_mut(&conn) {
            claiming.wanted = false;
        }
        let Some(member) = self.registry.remove(conn) else {
            return;
        };
        if let Some(cluster) = &self.cluster {
            // Its `left`s are recorded in Redis with its name's release, in one step, and
            // only if its session is still its own there; every node's tail brings them.
            cluster.ask(Request::Release {
                member: member.keys.folded.clone(),
                token: member.token.clone(),
                reason,
            });
            for key in &member.rooms {
                if let Some(room) = self.room(key) {
                    room.fanout.remove(conn);
                }
                self.drop_if_idle(key);
            }
            return;
        }
        // A member whose `joined` is still on its way gets its `left` once that is
        // recorded; in every other room it was in, it leaves now.
        for key in &member.rooms {
            if let Some(room) = self.room(key)
                && room.fanout.contains(conn)
            {
                room.fanout.remove(conn);
                self.push(
                    key,
                    Body::Left {
                        name: member.name.to_string(),
                        reason,
                    },
                    None,
                    Effect::None,
                );
            }
        }
    }

    /// Takes a member out of the registry and its rooms' fan-out and closes its
    /// connection with `code`, recording nothing.
    pub(super) fn drop_member(&mut self, conn: ConnId, code: CloseCode) {
        let Some(member) = self.registry.remove(conn) else {
            return;
        };
        member.queue.close_with(Some(closing(code)));
        for key in &member.rooms {
            if let Some(room) = self.room(key) {
                room.fanout.remove(conn);
            }
            self.drop_if_idle(key);
        }
    }
}
