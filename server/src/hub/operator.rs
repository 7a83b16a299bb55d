//! What the operator asks on the control socket (see [`crate::control`]): the accounts,
//! temporary passwords, deleting an account, and the server bans.

use async_channel::Sender;
use chat_shared::{CloseCode, Name, Password, ServerFrame, fold};

use super::Hub;
use super::command::{AccountDeleted, BanAnswer, Command};
use super::direct::direct_event;
use crate::accounts::{self, Account, PasswordHash, TEMPORARY_FOR};
use crate::control::{AccountInfo, BanInfo, Reply, Request};
use crate::log::recorder::Recorded;
use crate::log::{Body, EventLog, LogError, NewEvent, Seq, Span, StreamId};
use crate::wire::{closing, now_millis, random_hex};

/// Deletions recorded per batch when a deleted account's direct messages are erased.
const ERASED_PER_BATCH: usize = 500;

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
                        deleted: account.hash.is_deleted(),
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
            Request::DeleteAccount { name, erase_direct } => {
                match self.delete_account(&name, erase_direct, reply.clone()) {
                    Ok(()) => return,
                    Err(failed) => failed,
                }
            }
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

    /// Deletes an account: at once here (its session closed, no log-in or direct message
    /// to it from now on), then its tombstone and what is kept for it alone are stored
    /// (and, with `erase`, the direct messages it wrote are looked up) on the blocking
    /// pool; the answer comes to [`Hub::account_deleted`].
    fn delete_account(
        &mut self,
        name: &str,
        erase: bool,
        reply: Sender<Reply>,
    ) -> Result<(), Reply> {
        let folded = Name::parse(name)
            .map_err(|err| Reply::failed(format!("{name:?} is not a name: {err}")))?
            .keys()
            .folded;
        let Some(previous) = self.accounts.get(&folded).map(|a| a.hash.clone()) else {
            return Err(Reply::failed(format!("there is no account {name}")));
        };
        let tombstone = PasswordHash::deleted(now_millis());
        self.accounts.set_hash(&folded, tombstone.clone());
        let closed = self.close_deleted(&folded);
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        smol::unblock(move || {
            let result = (|| {
                log.set_password(&folded, tombstone.as_stored())?;
                let erasable = if erase {
                    written_directly(&*log, &folded)?
                } else {
                    Vec::new()
                };
                log.forget_account(&folded)?;
                Ok::<_, LogError>(erasable)
            })()
            .map_err(|err| err.to_string());
            let _ = inbox.try_send(Command::AccountDeleted(Box::new(AccountDeleted {
                folded,
                closed,
                previous,
                result,
                reply,
            })));
        })
        .detach();
        Ok(())
    }

    /// An account's deletion is stored (or, if it could not be, the account is back as it
    /// was); with `--erase-direct`, the deletions of its direct messages are recorded.
    pub(super) fn account_deleted(&mut self, deleted: AccountDeleted) {
        let AccountDeleted {
            folded,
            closed,
            previous,
            result,
            reply,
        } = deleted;
        let erasable = match result {
            Ok(erasable) => erasable,
            Err(err) => {
                tracing::error!(%err, account = folded, "cannot delete an account");
                self.accounts.set_hash(&folded, previous);
                let _ = reply.try_send(Reply::failed(format!("cannot delete it: {err}")));
                return;
            }
        };
        let Some(account) = self.accounts.get_any(&folded).cloned() else {
            return;
        };
        self.throttle.forget(&folded);
        tracing::info!(
            account = folded,
            closed,
            erased = erasable.len(),
            "account deleted by the operator"
        );
        let answer = Reply::AccountDeleted {
            name: account.name.to_string(),
            closed,
            erased: erasable.len(),
        };
        let events: Vec<NewEvent> = erasable
            .into_iter()
            .filter_map(|(other, spelled, seq)| {
                let to = if let Some(to) = self.accounts.get_any(&other) {
                    to.clone()
                } else {
                    let name = Name::parse(&spelled).ok()?;
                    Account {
                        keys: name.keys(),
                        name,
                        hash: PasswordHash::deleted(0),
                    }
                };
                let body = Body::Deleted {
                    by: account.name.to_string(),
                    target: seq,
                };
                Some(direct_event(&account, &to, body))
            })
            .collect();
        if events.is_empty() {
            let _ = reply.try_send(answer);
            return;
        }
        let batches: Vec<Vec<NewEvent>> = events
            .chunks(ERASED_PER_BATCH)
            .map(<[NewEvent]>::to_vec)
            .collect();
        let last = batches.len() - 1;
        let mut answer = Some((reply, answer));
        for (n, batch) in batches.into_iter().enumerate() {
            let reply = if n == last { answer.take() } else { None };
            if let Some(recorder) = &self.recorder {
                let (inbox, events) = (self.inbox.clone(), batch.clone());
                recorder.record(
                    batch,
                    Box::new(move |result| {
                        let _ = inbox.try_send(Command::Erased {
                            events,
                            result,
                            reply,
                        });
                    }),
                );
            } else {
                let result = self.append_here(&batch);
                self.erased(&batch, result, reply);
            }
        }
    }

    /// Closes the session of a deleted account here (`closing` `account_deleted`); says
    /// how many there were.
    pub(super) fn close_deleted(&mut self, folded: &str) -> usize {
        let Some(conn) = self.registry.online_conn(folded) else {
            return 0;
        };
        let code = CloseCode::AccountDeleted;
        self.close_member(conn, closing(code), code.leave_reason());
        1
    }

    /// Deletions of a deleted account's direct messages are recorded: they go to the
    /// other parties online here, and the last batch answers the operator.
    pub(super) fn erased(
        &mut self,
        events: &[NewEvent],
        result: Recorded,
        reply: Option<(Sender<Reply>, Reply)>,
    ) {
        let answer = match result {
            Ok(recorded) => {
                for (event, recorded) in events.iter().zip(recorded) {
                    if let (Some(direct), true) = (&event.direct, recorded.seq > 0)
                        && !self.peers.tails()
                    {
                        self.deliver_direct(&direct.from_key, &direct.to_key, &recorded.frame);
                    }
                }
                reply
            }
            Err(err) => {
                tracing::error!(%err, "cannot erase a deleted account's direct messages");
                reply.map(|(reply, _)| {
                    (
                        reply,
                        Reply::failed(format!(
                            "the account is deleted, but its direct messages could not all be erased: {err}"
                        )),
                    )
                })
            }
        };
        if let Some((reply, answer)) = answer {
            let _ = reply.try_send(answer);
        }
    }
}

/// The direct messages `folded` wrote and that are not deleted: the other account (folded
/// and as spelled) and the seq.
fn written_directly(
    log: &dyn EventLog,
    folded: &str,
) -> Result<Vec<(String, String, Seq)>, LogError> {
    let mut found = Vec::new();
    for conversation in log.conversations(folded, usize::MAX)? {
        let other = fold(&conversation.with);
        let stream = StreamId::direct(folded, &other);
        let mut after = 0;
        loop {
            let events = log.read(&stream, Span::After(after), 1000)?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                if let Ok(ServerFrame::Message {
                    from,
                    deleted: false,
                    seq,
                    ..
                }) = chat_shared::decode_line(event.frame.as_bytes().trim_ascii_end())
                    && fold(&from) == folded
                {
                    found.push((other.clone(), conversation.with.clone(), seq));
                }
            }
        }
    }
    Ok(found)
}
