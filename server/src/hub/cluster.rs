//! News from the other nodes of a cluster (`--redis`): claims answered, events the tail
//! brought, direct messages, takeovers elsewhere, accounts, rooms, server bans and wrong
//! passwords made or counted elsewhere.

use std::time::{Duration, Instant};

use chat_shared::{CloseCode, Name};

use crate::accounts::{Account, PasswordHash};
use crate::registry::ConnId;
use crate::wire::now_millis;

use super::Hub;
use super::command::{Counted, News};

impl Hub {
    /// What the cluster reports.
    pub(super) fn news(&mut self, news: News) {
        match news {
            News::Claimed(answer) => self.claimed(answer),
            News::Tailed { key, events } => {
                if self
                    .rooms
                    .update(&key, |room| room.arriving(events))
                    .is_some()
                {
                    self.take_arrivals(&key);
                }
            }
            News::Direct(messages) => {
                for (from, to, frame) in messages {
                    self.direct_arrived(&from, &to, &frame);
                }
            }
            News::Replaced { member, token } => self.replaced(&member, &token, CloseCode::Replaced),
            News::Orphaned { member, token } => self.replaced(&member, &token, CloseCode::Shutdown),
            News::Subscribed => {
                let members = self
                    .registry
                    .sorted()
                    .filter(|(_, member)| member.online)
                    .map(|(_, member)| (member.keys.folded.clone(), member.token.clone()))
                    .collect::<Vec<_>>();
                if !members.is_empty() {
                    self.peers.verify(members);
                }
            }
            News::Accounts(accounts) => {
                for (name, hash) in accounts {
                    if let Ok(name) = Name::parse(&name) {
                        let hash = PasswordHash::from_stored(hash);
                        let deleted = hash.is_deleted().then(|| name.keys().folded);
                        self.accounts.insert(Account {
                            keys: name.keys(),
                            name,
                            hash,
                        });
                        // Deleted on another node: its session here ends too.
                        if let Some(folded) = deleted {
                            self.close_deleted(&folded);
                        }
                    }
                }
            }
            News::Rooms(rooms) => {
                for (key, name) in rooms {
                    self.rooms.name_room(key.into(), name.into());
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
            News::ServerBan(key, value) => self.server_ban_changed(&key, value.as_deref()),
            News::ServerBans(stored) => self.server_bans_read(stored),
            News::Invited { account, room, by } => {
                let key = self.rooms.known_key(&room).unwrap_or_else(|| room.into());
                self.tell_invited(&account, &key, by);
            }
            News::Typing { sender, typing } => self.relay_typing(&sender, &typing),
            News::CutOff => self.cut_off(),
        }
    }

    /// A member here was taken over on another node: its connection is closed with
    /// `code` (`replaced`), and nothing is recorded (it is online there).
    fn replaced(&mut self, member: &str, token: &str, code: CloseCode) {
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
    fn cut_off(&mut self) {
        let conns: Vec<ConnId> = self.registry.sorted().map(|(conn, _)| conn).collect();
        for conn in conns {
            self.drop_member(conn, CloseCode::Shutdown);
        }
    }
}
