//! The direct conversations that moved lately, for the welcomes of logins that were on
//! their way meanwhile (see [`RecentDirect`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chat_shared::{Conversation, fold};

use crate::log::Seq;

/// How long a moved conversation is remembered for the welcomes: far longer than a
/// login takes from the session's reading of its conversations to its welcome.
const RECENT_DIRECT: Duration = Duration::from_secs(600);

/// The newest seq of each direct conversation that moved in the last [`RECENT_DIRECT`],
/// by account. A session reads its account's conversations from the log before the hub
/// lets it in (after the password is checked); an event recorded meanwhile reached no
/// connection of that account, so its welcome takes the conversation's seq from here,
/// and the client catches up with `history` as from any welcome.
#[derive(Debug, Default)]
pub(super) struct RecentDirect {
    /// Account key → the other account's key → (its name, newest seq, when).
    heads: HashMap<String, HashMap<String, (String, Seq, Instant)>>,
    /// What was noted, oldest first: forgotten in this order.
    order: VecDeque<(Instant, String, String)>,
}

impl RecentDirect {
    /// An event at `seq` in the conversation of `account` with `other` (named `with`).
    pub(super) fn note(&mut self, account: &str, other: &str, with: &str, seq: Seq, now: Instant) {
        while let Some((at, ..)) = self.order.front()
            && now.duration_since(*at) > RECENT_DIRECT
        {
            let Some((at, account, other)) = self.order.pop_front() else {
                break;
            };
            if let Some(others) = self.heads.get_mut(&account) {
                if others.get(&other).is_some_and(|(_, _, noted)| *noted == at) {
                    others.remove(&other);
                }
                if others.is_empty() {
                    self.heads.remove(&account);
                }
            }
        }
        let head = self
            .heads
            .entry(account.to_owned())
            .or_default()
            .entry(other.to_owned())
            .or_insert_with(|| (with.to_owned(), seq, now));
        if seq >= head.1 {
            *head = (with.to_owned(), seq, now);
        }
        self.order
            .push_back((now, account.to_owned(), other.to_owned()));
    }

    /// `listed` (as the log had them when the session read them) with what moved since:
    /// a newer seq, or a conversation that was not there yet (first).
    pub(super) fn merged(&self, account: &str, listed: &[Conversation]) -> Vec<Conversation> {
        let mut merged = listed.to_vec();
        let Some(others) = self.heads.get(account) else {
            return merged;
        };
        for (other, (with, seq, _)) in others {
            match merged.iter_mut().find(|c| fold(&c.with) == *other) {
                Some(listed) => listed.seq = listed.seq.max(*seq),
                None => merged.insert(
                    0,
                    Conversation {
                        with: with.clone(),
                        seq: *seq,
                        read: 0,
                    },
                ),
            }
        }
        merged
    }
}
