//! Accounts: registering one, logging in with a password, changing it, and counting
//! wrong ones. Hashing runs on the hashing threads; their answers come back as commands.

use std::net::IpAddr;
use std::time::Instant;

use chat_shared::limits::MAX_PASSWORD;
use chat_shared::{ErrorCode, NameKeys, Password, RejectCode, ServerFrame, check_password};

use crate::accounts::{self, Account, PasswordHash};
use crate::registry::{Admission, ConnId};

use super::Hub;
use super::command::{AfterClaim, Command, Login, PasswordOutcome};

impl Hub {
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
        // The name must be free on every node before it is hashed and stored.
        self.claim(login, AfterClaim::Register(password), false, true);
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
    fn busy(login: &Login) {
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
            let message = if self.accounts.get_any(&keys.folded).is_some() {
                format!("the account {} was deleted", login.name)
            } else {
                format!("there is no account {}", login.name)
            };
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
            // The account is online here: this connection takes it over.
            Some((_, true)) => self.claim(login, account, true, false),
            Some((_, false)) => Self::reject(
                &login,
                RejectCode::NameTaken,
                format!("{} is logging in on another connection", login.name),
                None,
            ),
            // It may be online on another node: the claim says.
            None => self.claim(login, account, true, true),
        }
    }

    /// Counts a wrong password (on every node, in a cluster).
    fn count_failure(&mut self, folded: &str, ip: IpAddr) {
        self.throttle.fail(folded, ip, Instant::now());
        self.peers.count_failure(folded, ip);
    }

    /// A new account was hashed and stored (or not).
    pub(super) fn registered(&mut self, login: Login, result: Result<PasswordHash, String>) {
        let keys = login.name.keys();
        match result {
            Ok(hash) => {
                tracing::info!(conn = login.conn, account = %login.name, "account registered");
                self.accounts.insert(Account {
                    name: login.name.clone(),
                    keys,
                    hash,
                });
                if login.queue.is_closed() {
                    // Gone while its password was hashed, after its `leave`: it does not
                    // log in, and its name is free again.
                    self.unclaim(&login);
                    let _ = login.reply.try_send(Err(RejectCode::Unavailable));
                    return;
                }
                self.fresh_login(login, true);
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
                    until: None,
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
                tracing::info!(conn, account = folded, "password changed");
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
}
