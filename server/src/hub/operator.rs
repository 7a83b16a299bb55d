//! What the operator asks on the control socket (see [`crate::control`]): the accounts,
//! temporary passwords, and the server bans.

use async_channel::Sender;
use chat_shared::{Name, Password};

use super::Hub;
use super::command::{BanAnswer, Command};
use crate::accounts::{self, PasswordHash, TEMPORARY_FOR};
use crate::control::{AccountInfo, BanInfo, Reply, Request};
use crate::wire::{now_millis, random_hex};

impl Hub {
    /// Answers the operator (a backup is the control socket's own business).
    pub(super) fn operator(&mut self, request: Request, reply: Sender<Reply>) {
        let answer = match request {
            Request::Accounts => {
                let mut accounts: Vec<AccountInfo> = self
                    .accounts
                    .iter()
                    .map(|account| AccountInfo {
                        name: account.name.to_string(),
                        online: self.registry.holder(&account.keys).is_some(),
                        reset_until: account.hash.temporary_until(),
                    })
                    .collect();
                accounts.sort_by(|a, b| a.name.cmp(&b.name));
                Reply::Accounts { accounts }
            }
            Request::Bans => Reply::Bans {
                bans: self
                    .server_bans
                    .all()
                    .map(|(key, ban)| BanInfo {
                        key,
                        ban: ban.clone(),
                    })
                    .collect(),
            },
            Request::Unban { name } => match Name::parse(&name) {
                Err(err) => Reply::failed(format!("{name:?} is not a name: {err}")),
                Ok(name) => {
                    let lifted = self.server_bans.lifted_by(&name.keys());
                    if lifted.is_empty() {
                        Reply::failed(format!("{name} is not banned from the server"))
                    } else {
                        let changes = lifted.iter().map(|key| (key.clone(), None)).collect();
                        self.store_server_bans(Some(BanAnswer::Operator(reply, lifted)), changes);
                        return;
                    }
                }
            },
            Request::ResetPassword { name } => match self.reset_password(&name, reply.clone()) {
                Ok(()) => return,
                Err(failed) => failed,
            },
            Request::Backup { .. } => Reply::failed("a backup is made by the control socket"),
        };
        let _ = reply.try_send(answer);
    }

    /// Makes a temporary password for the account `name` on a hashing thread, and stores
    /// its hash there.
    fn reset_password(&mut self, name: &str, reply: Sender<Reply>) -> Result<(), Reply> {
        let folded = Name::parse(name)
            .map_err(|err| Reply::failed(format!("{name:?} is not a name: {err}")))?
            .keys()
            .folded;
        if self.accounts.get(&folded).is_none() {
            return Err(Reply::failed(format!("there is no account {name}")));
        }
        // 16 hex digits: 64 bits, and acceptable to the password rules whatever the name.
        let password =
            random_hex(8).map_err(|err| Reply::failed(format!("no random bytes: {err}")))?;
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        let until = now_millis() + TEMPORARY_FOR.as_millis() as u64;
        let job = move |(folded, reply): (String, Sender<Reply>)| {
            let result = accounts::hash(&Password::new(password.clone()))
                .map(|hash| PasswordHash::temporary(&hash, until))
                .and_then(|hash| {
                    log.set_password(&folded, hash.as_stored())
                        .map(|()| (password, hash))
                        .map_err(|err| err.to_string())
                });
            let _ = inbox.try_send(Command::PasswordReset {
                folded,
                result,
                reply,
            });
        };
        self.hasher
            .submit((folded, reply), job)
            .map_err(|_| Reply::failed("the server is checking many passwords; try again"))
    }

    /// A temporary password was stored (or not): it is in force, and the operator gets it.
    pub(super) fn password_reset(
        &mut self,
        folded: &str,
        result: Result<(String, PasswordHash), String>,
        reply: &Sender<Reply>,
    ) {
        let answer = match result {
            Ok((password, hash)) => {
                let until = hash.temporary_until().unwrap_or_default();
                self.accounts.set_hash(folded, hash);
                self.throttle.forget(folded);
                tracing::info!(account = folded, "temporary password set by the operator");
                let name = self
                    .accounts
                    .get(folded)
                    .map_or_else(|| folded.to_string(), |account| account.name.to_string());
                Reply::PasswordReset {
                    name,
                    password,
                    until,
                }
            }
            Err(err) => {
                tracing::error!(%err, "cannot store a temporary password");
                Reply::failed(format!("cannot store it: {err}"))
            }
        };
        let _ = reply.try_send(answer);
    }
}
