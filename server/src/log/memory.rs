//! `--memory`: seqs counted in memory and nothing kept beyond the hub's window for rooms; a
//! restart starts a new epoch. Accounts and direct conversations (which have no window in
//! the hub) live here, in memory, until the process ends: the newest
//! [`DIRECT_KEPT`] messages of each conversation.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chat_shared::{Conversation, Frame};
use futures_lite::future;

use super::amend::{Aside, Refusal, change_of, decide, erased};
use super::state::{changes, invitee, inviter};
use super::{
    Body, Event, EventLog, Head, LogError, NewEvent, ReadMark, Remembered, Seq, Span, StreamId,
    frame, latest_first,
};

/// Messages kept per direct conversation.
pub const DIRECT_KEPT: usize = 1000;

/// A log that only counts, for rooms.
#[derive(Debug)]
pub struct MemoryLog {
    epoch: String,
    state: Mutex<Contents>,
}

/// What the log holds.
#[derive(Debug, Default)]
struct Contents {
    newest: HashMap<StreamId, Seq>,
    /// Case-folded name → (name, hash).
    accounts: HashMap<String, (String, String)>,
    direct: HashMap<StreamId, VecDeque<Event>>,
    /// (account, other) → (the other's name, newest seq, its time).
    conversations: HashMap<String, HashMap<String, (String, Seq, u64)>>,
    /// Each room's state's fields (see [`super::state`]).
    room_states: HashMap<StreamId, BTreeMap<String, String>>,
    /// Server bans by key.
    server_bans: BTreeMap<String, String>,
    /// Invitations by account: room key to who invited.
    invites_of: HashMap<String, BTreeMap<String, String>>,
    /// What is kept beside messages (see [`Aside`]), where there is any.
    asides: HashMap<(StreamId, Seq), Aside>,
    /// Read markers: account to stream to seq.
    read: HashMap<String, HashMap<StreamId, Seq>>,
}

impl Contents {
    /// Decides an event about a message (see [`super::amend`]) at `seq` against the
    /// message as this log holds it (a direct one), as the room's window held it when the
    /// batch went (`base`), or as an earlier event of the same batch left it (`amended`),
    /// and stores the message anew.
    fn amend(
        &mut self,
        new: &NewEvent,
        seq: Seq,
        amended: &mut HashMap<(StreamId, Seq), Frame>,
    ) -> Result<(), Refusal> {
        let Some((target, change)) = change_of(&new.body) else {
            return Ok(());
        };
        let at = (new.stream.clone(), target);
        let kept = self.direct.get_mut(&new.stream);
        let held = kept
            .as_ref()
            .and_then(|kept| kept.binary_search_by_key(&target, |e| e.seq).ok());
        let current = match (held, &kept) {
            (Some(index), Some(kept)) => Some(kept[index].frame.clone()),
            _ => amended.get(&at).or(new.base.as_ref()).cloned(),
        }
        .ok_or(Refusal::NoSuchMessage)?;
        let mut aside = self.asides.remove(&at).unwrap_or_default();
        let decided = decide(&current, &mut aside, &change, seq, new.time);
        if matches!(new.body, Body::Deleted { .. })
            && decided.is_ok()
            && let Some(kept) = self.direct.get_mut(&new.stream)
        {
            for edit in std::mem::take(&mut aside.edits) {
                if let Ok(index) = kept.binary_search_by_key(&edit, |e| e.seq) {
                    kept[index].frame = erased(&kept[index].frame);
                }
            }
        }
        if new.direct.is_none() {
            // A room's window erases the edits itself.
            aside.edits.clear();
        }
        if aside.encode().is_some() {
            self.asides.insert(at.clone(), aside);
        }
        if let Some(frame) = decided? {
            match (held, self.direct.get_mut(&new.stream)) {
                (Some(index), Some(kept)) => kept[index].frame = frame,
                _ => {
                    amended.insert(at, frame);
                }
            }
        }
        Ok(())
    }
}

impl MemoryLog {
    /// A log with a new epoch.
    pub fn new(epoch: String) -> Self {
        Self {
            epoch,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, Contents>, LogError> {
        self.state
            .lock()
            .map_err(|_| LogError::Store("poisoned".into()))
    }
}

impl EventLog for MemoryLog {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn durable(&self) -> bool {
        false
    }

    fn forget_before(
        &self,
        stream: &StreamId,
        time: u64,
        max: usize,
    ) -> Result<Option<std::ops::Range<Seq>>, LogError> {
        let mut state = self.state()?;
        let Some(events) = state.direct.get_mut(stream) else {
            return Ok(None);
        };
        let old = events
            .iter()
            .take(max)
            .take_while(|event| super::time_of(&event.frame).is_some_and(|at| at < time))
            .count();
        let gone: Vec<Event> = events.drain(..old).collect();
        Ok(gone
            .first()
            .zip(gone.last())
            .map(|(first, last)| first.seq..last.seq + 1))
    }

    fn head(&self, stream: &StreamId) -> Result<Head, LogError> {
        let state = self.state()?;
        let newest = state.newest.get(stream).copied().unwrap_or(0);
        // Rooms: it holds nothing itself, the hub's window is all there is.
        let oldest = state
            .direct
            .get(stream)
            .and_then(|events| events.front())
            .map_or(0, |event| event.seq);
        Ok(Head { oldest, newest })
    }

    fn append(&self, events: &[NewEvent]) -> Result<Vec<Event>, LogError> {
        let mut state = self.state()?;
        let mut amended = HashMap::new();
        Ok(events
            .iter()
            .map(|new| {
                let next = state.newest.get(&new.stream).copied().unwrap_or(0) + 1;
                if let Err(refusal) = state.amend(new, next, &mut amended) {
                    return Event::unrecorded(refusal.answer_to(new));
                }
                let seq = state.newest.entry(new.stream.clone()).or_insert(0);
                *seq += 1;
                let event = Event {
                    seq: *seq,
                    frame: frame(*seq, new),
                };
                let ops = changes(event.frame.as_bytes());
                if !ops.is_empty() {
                    let fields = state.room_states.entry(new.stream.clone()).or_default();
                    let invited_before: Vec<String> = fields
                        .keys()
                        .filter_map(|field| invitee(field).map(str::to_string))
                        .collect();
                    for op in &ops {
                        op.apply_to(fields);
                    }
                    let invited: Vec<(String, String)> = fields
                        .iter()
                        .filter_map(|(field, value)| {
                            invitee(field).map(|who| (who.to_string(), inviter(value).to_string()))
                        })
                        .collect();
                    let room = new.stream.as_str().to_string();
                    for who in invited_before {
                        if let Some(rooms) = state.invites_of.get_mut(&who) {
                            rooms.remove(&room);
                        }
                    }
                    for (who, by) in invited {
                        state
                            .invites_of
                            .entry(who)
                            .or_default()
                            .insert(room.clone(), by);
                    }
                }
                if new.direct.is_some() {
                    let kept = state.direct.entry(new.stream.clone()).or_default();
                    kept.push_back(event.clone());
                    if kept.len() > DIRECT_KEPT {
                        kept.pop_front();
                    }
                }
                if let (Some(direct), Body::Message { from, .. }) = (&new.direct, &new.body) {
                    let mut index = |owner: &str, other: &str, name: &str| {
                        state
                            .conversations
                            .entry(owner.to_string())
                            .or_default()
                            .insert(other.to_string(), (name.to_string(), event.seq, new.time));
                    };
                    index(&direct.from_key, &direct.to_key, &direct.to);
                    index(&direct.to_key, &direct.from_key, from);
                }
                event
            })
            .collect())
    }

    fn read(&self, stream: &StreamId, span: Span, limit: usize) -> Result<Vec<Event>, LogError> {
        let state = self.state()?;
        let Some(events) = state.direct.get(stream) else {
            return Ok(Vec::new());
        };
        Ok(match span {
            Span::Before(before) => {
                let end = events.partition_point(|e| e.seq < before);
                events
                    .range(end.saturating_sub(limit)..end)
                    .cloned()
                    .collect()
            }
            Span::After(after) => events
                .iter()
                .skip_while(|e| e.seq <= after)
                .take(limit)
                .cloned()
                .collect(),
        })
    }

    fn recent_posts(&self, _: &str) -> Result<Vec<(String, Frame)>, LogError> {
        Ok(Vec::new())
    }

    fn room_state(&self, stream: &StreamId) -> Result<Vec<(String, String)>, LogError> {
        Ok(self
            .state()?
            .room_states
            .get(stream)
            .map(|fields| fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn invites_of(&self, account: &str) -> Result<Vec<(String, String)>, LogError> {
        Ok(self
            .state()?
            .invites_of
            .get(account)
            .map(|rooms| rooms.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn server_bans(&self) -> Result<Vec<(String, String)>, LogError> {
        Ok(self
            .state()?
            .server_bans
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn set_server_ban(&self, key: &str, value: Option<&str>) -> Result<(), LogError> {
        let mut state = self.state()?;
        match value {
            Some(value) => state.server_bans.insert(key.into(), value.into()),
            None => state.server_bans.remove(key),
        };
        Ok(())
    }

    fn remembered(
        self: Arc<Self>,
        poster: String,
        limit: usize,
    ) -> future::Boxed<Result<Remembered, LogError>> {
        // In memory: nothing to wait for, no thread needed.
        let remembered = self
            .conversations(&poster, limit)
            .and_then(|conversations| {
                Ok(Remembered {
                    posts: Vec::new(),
                    conversations,
                    invites: self.invites_of(&poster)?,
                    read: self.read_markers(&poster)?,
                })
            });
        Box::pin(future::ready(remembered))
    }

    fn read_markers(&self, account: &str) -> Result<Vec<(String, Seq)>, LogError> {
        Ok(self
            .state()?
            .read
            .get(account)
            .map(|marks| {
                marks
                    .iter()
                    .map(|(stream, seq)| (stream.as_str().to_string(), *seq))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn set_read(&self, marks: &[ReadMark]) -> Result<(), LogError> {
        let mut state = self.state()?;
        for mark in marks {
            let seq = state
                .read
                .entry(mark.account.clone())
                .or_default()
                .entry(mark.stream.clone())
                .or_insert(0);
            *seq = (*seq).max(mark.seq);
        }
        Ok(())
    }

    fn streams(&self) -> Result<Vec<StreamId>, LogError> {
        Ok(self.state()?.newest.keys().cloned().collect())
    }

    fn rooms(&self) -> Result<Vec<(StreamId, String)>, LogError> {
        // Nothing outlives the process: the hub knows its rooms itself.
        Ok(Vec::new())
    }

    fn accounts(&self) -> Result<Vec<(String, String)>, LogError> {
        Ok(self.state()?.accounts.values().cloned().collect())
    }

    fn create_account(&self, folded: &str, name: &str, hash: &str) -> Result<bool, LogError> {
        let mut state = self.state()?;
        if state.accounts.contains_key(folded) {
            return Ok(false);
        }
        state
            .accounts
            .insert(folded.to_string(), (name.to_string(), hash.to_string()));
        Ok(true)
    }

    fn set_password(&self, folded: &str, hash: &str) -> Result<(), LogError> {
        match self.state()?.accounts.get_mut(folded) {
            Some(account) => {
                account.1 = hash.to_string();
                Ok(())
            }
            None => Err(LogError::Store(format!("no account {folded:?}"))),
        }
    }

    fn forget_account(&self, folded: &str) -> Result<(), LogError> {
        let mut state = self.state()?;
        state.read.remove(folded);
        state.conversations.remove(folded);
        state.invites_of.remove(folded);
        Ok(())
    }

    fn conversations(&self, owner: &str, limit: usize) -> Result<Vec<Conversation>, LogError> {
        let state = self.state()?;
        let all = state
            .conversations
            .get(owner)
            .into_iter()
            .flatten()
            .map(|(_, (with, seq, time))| {
                (
                    *time,
                    Conversation {
                        with: with.clone(),
                        seq: *seq,
                        read: 0,
                    },
                )
            })
            .collect();
        Ok(latest_first(all, limit))
    }
}
