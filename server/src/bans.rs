//! Server bans, set by administrators: of a name (and every name that looks like it), and
//! of an address. The hub keeps them ([`ServerBans`]) and refuses a banned name's login;
//! the accept loop asks [`AddressBans`], which the hub keeps up to date, before a
//! connection gets anything.
//!
//! Each ban is stored in the log under a key (`name:<case-folded>` or `ip:<address>`) with
//! what it holds as JSON ([`ServerBan`]), and in a cluster every node hears of each change.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use chat_shared::NameKeys;
use serde::{Deserialize, Serialize};

/// A server ban as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBan {
    /// The name banned (for an address: the name that was connected from it).
    pub name: String,
    /// The collision skeleton of the name: names that look like it are banned too.
    pub skeleton: String,
    /// The administrator who set it.
    pub by: String,
    /// Why, if it was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it ends (ms since the Unix epoch); `None`: when it is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// A name ban: the addresses its sessions connect from are banned too (each node bans
    /// those of the sessions it holds).
    #[serde(default)]
    pub address: bool,
}

impl ServerBan {
    /// Whether it is still in force at `now` (ms since the Unix epoch).
    pub fn in_force(&self, now: u64) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// What a ban's key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Banned {
    /// A name, case-folded.
    Name(String),
    /// An address.
    Address(IpAddr),
}

impl Banned {
    /// The key the log keeps the ban under.
    pub fn key(&self) -> String {
        match self {
            Banned::Name(folded) => format!("name:{folded}"),
            Banned::Address(ip) => format!("ip:{ip}"),
        }
    }

    /// What a key names, if it is a ban's.
    pub fn from_key(key: &str) -> Option<Self> {
        if let Some(folded) = key.strip_prefix("name:") {
            Some(Banned::Name(folded.to_string()))
        } else {
            key.strip_prefix("ip:")?.parse().ok().map(Banned::Address)
        }
    }
}

/// The addresses banned from the server, shared with the accept loop: address to when
/// the ban ends (`None`: when lifted).
#[derive(Debug, Default)]
pub struct AddressBans(Mutex<HashMap<IpAddr, Option<u64>>>);

impl AddressBans {
    /// Whether a connection from `ip` is refused at `now` (ms since the Unix epoch).
    pub fn refuses(&self, ip: IpAddr, now: u64) -> bool {
        self.0.lock().is_ok_and(|bans| {
            bans.get(&ip)
                .is_some_and(|until| until.is_none_or(|until| now < until))
        })
    }

    fn ban(&self, ip: IpAddr, until: Option<u64>) {
        if let Ok(mut bans) = self.0.lock() {
            bans.insert(ip, until);
        }
    }

    fn lift(&self, ip: IpAddr) {
        if let Ok(mut bans) = self.0.lock() {
            bans.remove(&ip);
        }
    }
}

/// Every server ban, as the hub keeps them.
#[derive(Debug, Default)]
pub struct ServerBans {
    names: BTreeMap<String, ServerBan>,
    addresses: BTreeMap<IpAddr, ServerBan>,
    /// The addresses, for the accept loop.
    shared: std::sync::Arc<AddressBans>,
}

impl ServerBans {
    /// The bans the log holds (keys it cannot read are skipped).
    pub fn from_stored(stored: Vec<(String, String)>) -> Self {
        let mut bans = Self::default();
        for (key, value) in stored {
            bans.apply(&key, Some(&value));
        }
        bans
    }

    /// The addresses banned, as the accept loop asks them.
    pub fn shared(&self) -> std::sync::Arc<AddressBans> {
        self.shared.clone()
    }

    /// Sets (`Some`) or lifts (`None`) the ban under `key`, as stored; returns it when one
    /// was set.
    pub fn apply(&mut self, key: &str, value: Option<&str>) -> Option<(Banned, ServerBan)> {
        let banned = Banned::from_key(key)?;
        let ban: Option<ServerBan> = value.and_then(|value| serde_json::from_str(value).ok());
        match (&banned, ban) {
            (Banned::Name(folded), Some(ban)) => {
                self.names.insert(folded.clone(), ban.clone());
                Some((banned, ban))
            }
            (Banned::Name(folded), None) => {
                self.names.remove(folded);
                None
            }
            (Banned::Address(ip), Some(ban)) => {
                self.shared.ban(*ip, ban.until);
                self.addresses.insert(*ip, ban.clone());
                Some((banned, ban))
            }
            (Banned::Address(ip), None) => {
                self.shared.lift(*ip);
                self.addresses.remove(ip);
                None
            }
        }
    }

    /// The ban in force at `now` on a name with these keys: its own, or that of a name
    /// that looks like it.
    pub fn of_name(&self, keys: &NameKeys, now: u64) -> Option<&ServerBan> {
        self.names
            .get(&keys.folded)
            .filter(|ban| ban.in_force(now))
            .or_else(|| {
                self.names
                    .values()
                    .find(|ban| ban.skeleton == keys.skeleton && ban.in_force(now))
            })
    }

    /// The ban in force at `now` on an address.
    pub fn of_address(&self, ip: IpAddr, now: u64) -> Option<&ServerBan> {
        self.addresses.get(&ip).filter(|ban| ban.in_force(now))
    }

    /// The keys of the bans an `unban` of a name with these keys lifts: its own (or that
    /// of the name it looks like), and those of the addresses banned with it.
    pub fn lifted_by(&self, keys: &NameKeys) -> Vec<String> {
        let name = self
            .names
            .iter()
            .find(|(folded, ban)| **folded == keys.folded || ban.skeleton == keys.skeleton);
        let Some((folded, ban)) = name else {
            return Vec::new();
        };
        let mut lifted = vec![Banned::Name(folded.clone()).key()];
        lifted.extend(
            self.addresses
                .iter()
                .filter(|(_, by_address)| by_address.skeleton == ban.skeleton)
                .map(|(ip, _)| Banned::Address(*ip).key()),
        );
        lifted
    }

    /// Every ban held (some may have ended), with its key.
    pub fn all(&self) -> impl Iterator<Item = (String, &ServerBan)> + '_ {
        let names = self
            .names
            .iter()
            .map(|(folded, ban)| (Banned::Name(folded.clone()).key(), ban));
        names.chain(
            self.addresses
                .iter()
                .map(|(ip, ban)| (Banned::Address(*ip).key(), ban)),
        )
    }

    /// The keys of every ban held (some may have ended).
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.all().map(|(key, _)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::Name;

    fn ban(name: &str, until: Option<u64>, address: bool) -> ServerBan {
        ServerBan {
            name: name.into(),
            skeleton: Name::parse(name).expect("a name").keys().skeleton,
            by: "root".into(),
            message: Some("spam".into()),
            until,
            address,
        }
    }

    #[test]
    fn a_ban_covers_look_alikes_until_it_ends_and_an_unban_lifts_its_addresses_too() {
        let mut bans = ServerBans::default();
        let troll = ban("troll", Some(1_000), true);
        let ip: IpAddr = [192, 0, 2, 9].into();
        let value = serde_json::to_string(&troll).expect("JSON");
        bans.apply("name:troll", Some(&value));
        bans.apply(&Banned::Address(ip).key(), Some(&value));
        let look_alike = Name::parse("TR0LL").expect("a name").keys();
        assert!(bans.of_name(&look_alike, 999).is_some());
        assert!(bans.of_name(&look_alike, 1_000).is_none(), "ended");
        assert!(bans.shared().refuses(ip, 999));
        assert!(!bans.shared().refuses(ip, 1_000));
        assert_eq!(
            bans.lifted_by(&look_alike),
            vec!["name:troll".to_string(), format!("ip:{ip}")]
        );
        bans.apply(&format!("ip:{ip}"), None);
        assert!(!bans.shared().refuses(ip, 0));
        assert_eq!(Banned::from_key("nonsense"), None);
    }
}
