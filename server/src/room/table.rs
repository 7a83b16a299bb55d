//! Every room the server knows: the names of all that exist, the ones in memory (ready, or
//! being read back from the log with what was asked of them meanwhile), the default room,
//! and which of them are busy.
//!
//! A room is busy while it has events to record or recorded events some member is still
//! owed; the hub looks only at busy rooms for what is due. Rooms are changed only through
//! [`Rooms::update`], which keeps the busy set true to the room, so no caller has to.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chat_shared::{RoomName, RoomUsers};

use crate::log::Seq;
use crate::pressure::Window;
use crate::registry::ConnId;

use super::Room;

/// The most rooms a `room_list` names.
const ROOM_LIST_MAX: usize = 500;

/// What a room name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A room that exists: its key.
    Existing(Arc<str>),
    /// No room yet: its key and its name.
    New(Arc<str>, Arc<str>),
}

/// Asked of a room while it is read back from the log, to be done once it is in memory.
#[derive(Debug)]
pub enum Deferred {
    /// A join (the member counts as in the room already).
    Join(ConnId, Option<Seq>),
    /// A post (a client re-joins its rooms, then re-sends its outbox at once).
    Post {
        /// The poster.
        conn: ConnId,
        /// The room as the post named it.
        room: RoomName,
        /// What it says.
        said: crate::hub::command::Said,
    },
    /// A part.
    Part(ConnId, RoomName),
    /// A member taken over from another node: in the room already, nothing recorded.
    Adopt(ConnId),
    /// A join of a room the member is in already: the answer again.
    Resume(ConnId, Option<Seq>),
    /// A moderation step.
    Step(ConnId, Box<crate::step::Step>),
    /// A deletion of one of its messages: the room as named, and the message's seq.
    Delete(ConnId, RoomName, Seq),
    /// An edit of, or a reaction to, one of its messages.
    Amend(ConnId, RoomName, Seq, crate::hub::command::Life),
}

impl Deferred {
    /// The connection that asked.
    pub fn conn_mut(&mut self) -> &mut ConnId {
        match self {
            Deferred::Join(conn, _)
            | Deferred::Post { conn, .. }
            | Deferred::Part(conn, _)
            | Deferred::Adopt(conn)
            | Deferred::Resume(conn, _)
            | Deferred::Step(conn, _)
            | Deferred::Delete(conn, ..)
            | Deferred::Amend(conn, ..) => conn,
        }
    }
}

/// A room in memory: ready (with whether it is in the busy set, so that a change that
/// leaves it as busy as it was costs no look-up there), or being read back from the log
/// with what members asked of it meanwhile waiting, in order.
#[derive(Debug)]
enum Entry {
    Loading(Vec<Deferred>),
    Ready(Box<Room>, bool),
}

/// Every room the server knows; see the module's documentation.
#[derive(Debug)]
pub struct Rooms {
    entries: HashMap<Arc<str>, Entry>,
    /// Every room that exists, in memory or not, by key: its name as first spelled.
    names: HashMap<Arc<str>, Arc<str>>,
    /// The key of every room by its skeleton: two different rooms may not look alike.
    skeletons: HashMap<String, Arc<str>>,
    default: Arc<str>,
    busy: HashSet<Arc<str>>,
    /// Rooms nobody is in, kept in memory while the log keeps nothing: oldest first (some
    /// may have members again).
    idle: VecDeque<Arc<str>>,
    /// How many rooms nobody is in stay in memory: none when the log keeps their history,
    /// else the newest `--max-rooms` (a client that drops for a moment finds its rooms'
    /// history).
    keep_idle: usize,
}

impl Rooms {
    /// A table with the default room (`key`, as read back) in memory, and the rooms the
    /// log knows by name; `keep_idle` rooms nobody is in stay in memory.
    pub fn new(
        key: Arc<str>,
        default: Room,
        known: impl IntoIterator<Item = (Arc<str>, Arc<str>)>,
        keep_idle: usize,
    ) -> Self {
        let mut rooms = Self {
            entries: HashMap::new(),
            names: HashMap::new(),
            skeletons: HashMap::new(),
            default: key.clone(),
            busy: HashSet::new(),
            idle: VecDeque::new(),
            keep_idle,
        };
        for (key, name) in known {
            rooms.name_room(key, name);
        }
        rooms.name_room(key.clone(), default.name().clone());
        rooms
            .entries
            .insert(key, Entry::Ready(Box::new(default), false));
        rooms.count();
        rooms
    }

    /// The default room's key.
    pub fn default_key(&self) -> &Arc<str> {
        &self.default
    }

    /// Records a room's name (as first spelled), for a room made here or elsewhere.
    pub fn name_room(&mut self, key: Arc<str>, name: Arc<str>) {
        if let Ok(parsed) = RoomName::parse(&name) {
            self.skeletons.insert(parsed.keys().skeleton, key.clone());
        }
        self.names.insert(key, name);
    }

    /// A room's name as first spelled (its key, if it has none).
    pub fn name(&self, key: &str) -> Arc<str> {
        self.names.get(key).cloned().unwrap_or_else(|| key.into())
    }

    /// The key a room's name has among the known rooms, if it is one.
    pub fn known_key(&self, key: &str) -> Option<Arc<str>> {
        self.names.get_key_value(key).map(|(key, _)| key.clone())
    }

    /// Finds the room a frame names (`None`: the default room). An error is the answer to
    /// send: `invalid_room`, for a room that looks like another.
    pub fn lookup(&self, room: Option<&RoomName>) -> Result<Lookup, String> {
        let Some(room) = room else {
            return Ok(Lookup::Existing(self.default.clone()));
        };
        let keys = room.keys();
        if let Some(key) = self.known_key(&keys.folded) {
            return Ok(Lookup::Existing(key));
        }
        if let Some(other) = self.skeletons.get(&keys.skeleton) {
            let other = self.name(other);
            return Err(format!(
                "{room} looks like the room {other}; use that one, or another name"
            ));
        }
        Ok(Lookup::New(keys.folded.into(), room.as_str().into()))
    }

    /// The keys of the rooms in memory and ready.
    pub fn ready_keys(&self) -> Vec<Arc<str>> {
        self.entries
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Ready(..)))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// A room in memory and ready.
    pub fn get(&self, key: &str) -> Option<&Room> {
        match self.entries.get(key) {
            Some(Entry::Ready(room, _)) => Some(room),
            _ => None,
        }
    }

    /// Changes a room in memory and ready with `change`; the room is busy afterwards if it
    /// has something to do.
    pub fn update<R>(&mut self, key: &Arc<str>, change: impl FnOnce(&mut Room) -> R) -> Option<R> {
        let Some(Entry::Ready(room, listed)) = self.entries.get_mut(key) else {
            return None;
        };
        let result = change(room);
        let busy = room.is_busy();
        if busy != *listed {
            *listed = busy;
            if busy {
                self.busy.insert(key.clone());
            } else {
                self.busy.remove(key);
            }
        }
        Some(result)
    }

    /// Adds a room just made or read back.
    pub fn insert(&mut self, key: Arc<str>, room: Room) {
        let busy = room.is_busy();
        self.entries
            .insert(key.clone(), Entry::Ready(Box::new(room), busy));
        if busy {
            self.busy.insert(key);
        }
        self.count();
    }

    /// Tells the metrics how many rooms are held (ready or being read back).
    fn count(&self) {
        crate::metrics::Metrics::set(&crate::metrics::get().rooms, self.entries.len());
    }

    /// Whether some room is being read back from the log.
    #[cfg(test)]
    pub fn any_loading(&self) -> bool {
        self.entries
            .values()
            .any(|entry| matches!(entry, Entry::Loading(_)))
    }

    /// Whether a room is being read back from the log.
    pub fn is_loading(&self, key: &str) -> bool {
        matches!(self.entries.get(key), Some(Entry::Loading(_)))
    }

    /// Keeps what was asked of a room being read back, for when it is in memory (see
    /// [`Rooms::is_loading`]); a room that is not being read back gives it back.
    pub fn defer(&mut self, key: &str, deferred: Deferred) -> Result<(), Deferred> {
        match self.entries.get_mut(key) {
            Some(Entry::Loading(waiting)) => {
                waiting.push(deferred);
                Ok(())
            }
            _ => Err(deferred),
        }
    }

    /// A room is being read back from the log; `waiting` is what was asked of it.
    pub fn start_loading(&mut self, key: Arc<str>, waiting: Vec<Deferred>) {
        self.entries.insert(key, Entry::Loading(waiting));
        self.count();
    }

    /// The room read back is here (or could not be read): what was asked of it meanwhile.
    /// `None` if it was not being read back.
    pub fn finish_loading(&mut self, key: &str) -> Option<Vec<Deferred>> {
        match self.entries.remove(key) {
            Some(Entry::Loading(waiting)) => {
                self.count();
                Some(waiting)
            }
            Some(ready) => {
                self.entries.insert(key.into(), ready);
                None
            }
            None => None,
        }
    }

    /// What `old` asked of its rooms and is underway (a room being read back, an event
    /// being recorded) is now asked by `new` (a takeover).
    pub fn hand_over(&mut self, keys: &[Arc<str>], old: ConnId, new: ConnId) {
        for key in keys {
            match self.entries.get_mut(key) {
                Some(Entry::Loading(waiting)) => {
                    for deferred in waiting {
                        if *deferred.conn_mut() == old {
                            *deferred.conn_mut() = new;
                        }
                    }
                }
                Some(Entry::Ready(room, _)) => room.hand_over(old, new),
                None => {}
            }
        }
    }

    /// Whether a room has nobody in it (or is not in memory at all): a join makes it one
    /// of the rooms in use.
    pub fn is_empty(&self, key: &str) -> bool {
        match self.entries.get(key) {
            Some(Entry::Ready(room, _)) => room.len() == 0,
            Some(Entry::Loading(_)) => false,
            None => true,
        }
    }

    /// Rooms with someone in them (the default room always counts), for `--max-rooms`.
    pub fn in_use(&self) -> usize {
        self.entries
            .iter()
            .filter(|(key, entry)| match entry {
                Entry::Loading(_) => true,
                Entry::Ready(room, _) => room.len() > 0 || **key == self.default,
            })
            .count()
    }

    /// The rooms with someone in them that `shown` lets through (given each room's key),
    /// fullest first, as a `room_list` names them.
    pub fn listing(&self, shown: impl Fn(&str, &Room) -> bool) -> Vec<RoomUsers> {
        let mut rooms: Vec<RoomUsers> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Ready(room, _) if room.len() > 0 && shown(key, room) => Some(RoomUsers {
                    room: room.name().to_string(),
                    users: room.len() as u32,
                }),
                _ => None,
            })
            .collect();
        rooms.sort_by(|a, b| b.users.cmp(&a.users).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(ROOM_LIST_MAX);
        rooms
    }

    /// The busy rooms.
    pub fn busy(&self) -> Vec<Arc<str>> {
        self.busy.iter().cloned().collect()
    }

    /// Whether some room is busy.
    pub fn any_busy(&self) -> bool {
        !self.busy.is_empty()
    }

    /// Whether some room has a batch being recorded.
    pub fn recording(&self) -> bool {
        self.entries
            .values()
            .any(|entry| matches!(entry, Entry::Ready(room, _) if room.is_recording()))
    }

    /// When the next batch or push of any busy room is due.
    pub fn next_due(&self, now: Instant, window: Window) -> Option<Instant> {
        self.busy
            .iter()
            .filter_map(|key| self.get(key)?.next_due(now, window))
            .min()
    }

    /// Drops a room nobody is in from memory (never the default room): at once when the
    /// log keeps its history, else once it is older than the newest `keep_idle` such
    /// rooms. Returns the rooms dropped.
    pub fn drop_if_idle(&mut self, key: &Arc<str>) -> Vec<Arc<str>> {
        if *key == self.default || !self.is_idle(key) {
            return Vec::new();
        }
        if self.keep_idle == 0 {
            self.remove(key);
            return vec![key.clone()];
        }
        self.idle.push_back(key.clone());
        let mut dropped = Vec::new();
        while self.idle.len() > self.keep_idle {
            let Some(oldest) = self.idle.pop_front() else {
                break;
            };
            // Joined again meanwhile, or listed again later: not this time.
            if self.is_idle(&oldest) && !self.idle.contains(&oldest) {
                self.remove(&oldest);
                dropped.push(oldest);
            }
        }
        dropped
    }

    fn is_idle(&self, key: &str) -> bool {
        self.get(key).is_some_and(Room::is_idle)
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
        self.busy.remove(key);
        self.count();
    }
}
