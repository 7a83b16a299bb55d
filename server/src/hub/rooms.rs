//! Rooms: joining, parting, posting, listing, reading a room back from the store, and
//! their history.

use std::sync::Arc;
use std::time::Instant;

use chat_shared::{ErrorCode, Frame, LeaveReason, RoomName, RoomUsers, ServerFrame};
use smol::Executor;

use crate::cluster::{Cluster, Request};
use crate::log::{Body, EventLog, Head, LogError, Seq, Span, StreamId};
use crate::registry::{ConnId, ConnSet};
use crate::room::{Effect, Room};

use super::history::{Read, Target, history_answer};
use super::{Deferred, Hub, Loaded, Lookup, RoomRead, Slot};

impl Hub {
    /// The names of a room's members, sorted by case-folded name.
    pub(super) fn room_users(&self, key: &str) -> Vec<String> {
        let Some(Slot::Ready(room)) = self.rooms.get(key) else {
            return Vec::new();
        };
        // In a cluster, members are on every node: the room's roster knows them all.
        if let Some(roster) = &room.roster {
            return roster.values().cloned().collect();
        }
        // A login storm builds this for every newcomer, for rooms of thousands: a room that
        // holds most of everyone is read in the registry's order, with no sorting; a
        // smaller one is borrowed and sorted. Either way the names are copied once, into a
        // list of its final size.
        if room.fanout.len() * 2 >= self.registry.len() {
            let conns: ConnSet = room.fanout.conns().collect();
            let mut users = Vec::with_capacity(conns.len());
            users.extend(
                self.registry
                    .sorted()
                    .filter(|(conn, _)| conns.contains(conn))
                    .map(|(_, member)| member.name.as_str().to_owned()),
            );
            return users;
        }
        let mut members: Vec<(&str, &str)> = room
            .fanout
            .conns()
            .filter_map(|conn| self.registry.get(conn))
            .map(|m| (m.keys.folded.as_str(), m.name.as_str()))
            .collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut users = Vec::with_capacity(members.len());
        users.extend(members.iter().map(|(_, name)| (*name).to_owned()));
        users
    }

    /// Finds the room a frame names (`None`: the default room). An error is the answer to
    /// send: `invalid_room` for a room that looks like another.
    pub(super) fn resolve(&self, room: Option<&RoomName>) -> Result<Lookup, String> {
        let Some(room) = room else {
            return Ok(Lookup::Existing(self.default_room.clone()));
        };
        match self.names.lookup(room) {
            Lookup::LooksLike(other) => Err(format!(
                "{room} looks like the room {other}; use that one, or another name"
            )),
            lookup => Ok(lookup),
        }
    }

    pub(super) fn post(
        &mut self,
        conn: ConnId,
        room: Option<&RoomName>,
        text: String,
        id: Option<String>,
        me: bool,
    ) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let folded = member.keys.folded.clone();
        if let Some(id) = &id
            && let Some(original) = self
                .recent
                .get(&folded)
                .and_then(|recent| recent.by_id.get(id.as_str()))
        {
            // A re-sent post: the sender gets the original back, nobody else sees it.
            member.queue.push_unmetered(original.clone());
            return;
        }
        let named = room.map(RoomName::as_str);
        let key = match self.resolve(room) {
            Ok(Lookup::Existing(key)) if member.rooms.contains(&key) => key,
            Ok(_) => {
                let name = room.map_or_else(
                    || self.names.name(&self.default_room),
                    |r| r.as_str().into(),
                );
                return self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not in {name}; join it first"),
                    id,
                    named,
                );
            }
            Err(message) => return self.error(conn, ErrorCode::InvalidRoom, message, id, named),
        };
        if let (Some(Slot::Loading(waiting)), Some(room)) = (self.rooms.get_mut(&key), room) {
            waiting.push(Deferred::Post {
                conn,
                room: room.clone(),
                text,
                id,
                me,
            });
            return;
        }
        let from = member.name.to_string();
        if let Some(id) = &id
            && self
                .room(&key)
                .is_some_and(|room| room.has_post(&folded, id))
        {
            // The original is on its way to the log; its echo will settle this too.
            return;
        }
        if id.is_some() {
            self.recent.entry(folded.clone()).or_default().last_post = Some(Instant::now());
        }
        let poster = id.is_some().then_some(folded);
        self.push(
            &key,
            Body::Message {
                from,
                text,
                id: id.clone(),
                me,
            },
            poster,
            Effect::Post { conn, id },
        );
    }

    pub(super) fn history(
        &mut self,
        conn: ConnId,
        room: Option<&RoomName>,
        span: Option<Span>,
        limit: usize,
        executor: &Executor<'static>,
    ) {
        let Some(queue) = self.online_queue(conn) else {
            return;
        };
        let key = match self.resolve(room) {
            Ok(Lookup::Existing(key)) => key,
            Ok(Lookup::New(_, name) | Lookup::LooksLike(name)) => {
                // No such room: nothing in it.
                let span = span.unwrap_or(Span::Before(1));
                queue.push_unmetered(history_answer(&Target::Room(name.to_string()), span, &[]));
                return;
            }
            Err(message) => {
                let named = room.map(RoomName::as_str);
                return self.error(conn, ErrorCode::InvalidRoom, message, None, named);
            }
        };
        let durable = self.log.durable();
        let target = Target::Room(self.names.name(&key).to_string());
        if let Some(room) = self.room(&key) {
            let span = span.unwrap_or(Span::Before(room.head.newest + 1));
            if let Some(frames) = room.read_window(span, limit, durable) {
                queue.push_unmetered(history_answer(&target, span, &frames));
                return;
            }
        }
        // Not in memory, or older than its window: read on the blocking pool.
        let read = Read {
            stream: StreamId::new(&key),
            span,
            limit,
            target,
        };
        read.answer_from(self.log.clone(), queue, executor);
    }

    /// Rooms with someone in them (the default room always counts), for `--max-rooms`.
    pub(super) fn rooms_in_use(&self) -> usize {
        self.rooms
            .iter()
            .filter(|(key, slot)| match slot {
                Slot::Loading(_) => true,
                Slot::Ready(room) => room.fanout.len() > 0 || **key == self.default_room,
            })
            .count()
    }

    pub(super) fn join(
        &mut self,
        conn: ConnId,
        room: &RoomName,
        since: Option<Seq>,
        executor: &Executor<'static>,
    ) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let (key, new_name) = match self.resolve(Some(room)) {
            Ok(Lookup::Existing(key)) => (key, None),
            Ok(Lookup::New(key, name)) => (key, Some(name)),
            Ok(Lookup::LooksLike(_)) => unreachable!("resolve reports it as an error"),
            Err(message) => {
                return self.error(
                    conn,
                    ErrorCode::InvalidRoom,
                    message,
                    None,
                    Some(room.as_str()),
                );
            }
        };
        if member.rooms.contains(&key) {
            // Already in: the answer again, nothing recorded (how a client resumes).
            if let Some(Slot::Loading(waiting)) = self.rooms.get_mut(&key) {
                waiting.push(Deferred::Resume(conn, since));
                return;
            }
            let newest = self.room(&key).map_or(0, |room| room.head.newest);
            self.answer_join(conn, &key, since, newest);
            return;
        }
        if member.rooms.len() >= self.config.max_joined {
            let max = self.config.max_joined;
            return self.error(
                conn,
                ErrorCode::TooManyRooms,
                format!("you are in {max} rooms already; part one first"),
                None,
                Some(room.as_str()),
            );
        }
        let empty = match self.rooms.get(&key) {
            Some(Slot::Ready(room)) => room.fanout.len() == 0,
            Some(Slot::Loading(_)) => false,
            None => true,
        };
        if empty && key != self.default_room && self.rooms_in_use() >= self.config.max_rooms {
            let max = self.config.max_rooms;
            return self.error(
                conn,
                ErrorCode::TooManyRooms,
                format!("the server has {max} rooms in use; try an existing one"),
                None,
                Some(room.as_str()),
            );
        }
        if let Some(member) = self.registry.get_mut(conn) {
            member.rooms.push(key.clone());
        }
        match self.rooms.get_mut(&key) {
            Some(Slot::Ready(_)) => self.push_joined(conn, &key, since),
            Some(Slot::Loading(waiting)) => waiting.push(Deferred::Join(conn, since)),
            None => {
                let cluster = self.cluster.is_some();
                if let (Some(name), true) = (&new_name, cluster) {
                    // New to this node; another may have made it a moment ago.
                    self.names.insert(key.clone(), name.clone());
                    self.load_room(&key, vec![Deferred::Join(conn, since)], executor);
                } else if let Some(name) = new_name {
                    // A new room: nothing to read back.
                    self.names.insert(key.clone(), name.clone());
                    let room = Room::new(
                        StreamId::new(&key),
                        name,
                        Head::default(),
                        Vec::new(),
                        self.config.history,
                    );
                    self.rooms.insert(key.clone(), Slot::Ready(Box::new(room)));
                    self.push_joined(conn, &key, since);
                } else {
                    self.load_room(&key, vec![Deferred::Join(conn, since)], executor);
                }
            }
        }
    }

    pub(super) fn push_joined(&mut self, conn: ConnId, key: &Arc<str>, since: Option<Seq>) {
        let Some(name) = self.registry.get(conn).map(|m| m.name.to_string()) else {
            return;
        };
        self.push(
            key,
            Body::Joined { name },
            None,
            Effect::Joined { conn, since },
        );
    }

    /// Reads a room back from the store, on the blocking pool; `waiting` join once it is
    /// in memory.
    pub(super) fn load_room(
        &mut self,
        key: &Arc<str>,
        waiting: Vec<Deferred>,
        executor: &Executor<'static>,
    ) {
        self.rooms.insert(key.clone(), Slot::Loading(waiting));
        let (log, done) = (self.log.clone(), self.loaded.0.clone());
        let (key, history) = (key.clone(), self.config.history);
        executor
            .spawn(async move {
                let stream = StreamId::new(&key);
                let result = smol::unblock(move || read_room(&*log, &stream, history)).await;
                let _ = done.send(Loaded { key, result }).await;
            })
            .detach();
    }

    pub(super) fn room_loaded(&mut self, loaded: Loaded) {
        let Some(Slot::Loading(waiting)) = self.rooms.remove(&loaded.key) else {
            return;
        };
        match loaded.result {
            Ok(read) => {
                if !read.0.name.is_empty() {
                    self.names
                        .insert(loaded.key.clone(), read.0.name.as_str().into());
                }
                let name = self.names.name(&loaded.key);
                let cluster = self.cluster.as_ref();
                let room = build_room(&loaded.key, name, read, self.config.history, cluster);
                self.rooms
                    .insert(loaded.key.clone(), Slot::Ready(Box::new(room)));
                for deferred in waiting {
                    match deferred {
                        Deferred::Join(conn, since) => {
                            if self
                                .registry
                                .get(conn)
                                .is_some_and(|m| m.rooms.contains(&loaded.key))
                            {
                                self.push_joined(conn, &loaded.key, since);
                            }
                        }
                        Deferred::Post {
                            conn,
                            room,
                            text,
                            id,
                            me,
                        } => self.post(conn, Some(&room), text, id, me),
                        Deferred::Part(conn, room) => self.part(conn, &room),
                        Deferred::Adopt(conn) => {
                            let queue = self
                                .registry
                                .get(conn)
                                .filter(|m| m.rooms.contains(&loaded.key))
                                .map(|m| m.queue.clone());
                            if let (Some(queue), Some(room)) = (queue, self.room(&loaded.key)) {
                                room.fanout.add(conn, queue);
                            }
                        }
                        Deferred::Resume(conn, since) => {
                            if self
                                .registry
                                .get(conn)
                                .is_some_and(|m| m.rooms.contains(&loaded.key))
                            {
                                let newest = self.room(&loaded.key).map_or(0, |r| r.head.newest);
                                self.answer_join(conn, &loaded.key, since, newest);
                            }
                        }
                    }
                }
                self.drop_if_idle(&loaded.key);
            }
            Err(err) => {
                tracing::error!(%err, room = %loaded.key, "cannot read a room back");
                let name = self.names.name(&loaded.key);
                for deferred in waiting {
                    match deferred {
                        Deferred::Join(conn, _)
                        | Deferred::Adopt(conn)
                        | Deferred::Resume(conn, _) => {
                            if let Some(member) = self.registry.get_mut(conn) {
                                member.rooms.retain(|k| *k != loaded.key);
                            }
                            self.error(
                                conn,
                                ErrorCode::Unavailable,
                                "the room cannot be read now; try again later".into(),
                                None,
                                Some(&name),
                            );
                        }
                        Deferred::Post { conn, id, .. } => self.error(
                            conn,
                            ErrorCode::Unavailable,
                            "your post could not be recorded; send it again".into(),
                            id,
                            Some(&name),
                        ),
                        // Its join failed: it is not in the room.
                        Deferred::Part(..) => {}
                    }
                }
            }
        }
    }

    /// The answer to a `join`: the room, then its replay (events up to `seq`).
    pub(super) fn answer_join(
        &mut self,
        conn: ConnId,
        key: &Arc<str>,
        since: Option<Seq>,
        seq: Seq,
    ) {
        let users = self.room_users(key);
        let durable = self.log.durable();
        let (fresh, max) = (self.config.replay, self.config.replay_max);
        let Some(queue) = self.registry.get(conn).map(|m| m.queue.clone()) else {
            return;
        };
        let Some(room) = self.room(key) else {
            return;
        };
        // A join's `since` counts in the epoch its client logged in with, this one.
        let replay = room.replay(since, true, fresh, max);
        let frame = Frame::encode(&ServerFrame::Room {
            room: room.name.to_string(),
            users,
            seq,
            oldest: room.oldest(durable),
        });
        queue.push_unmetered(Frame::concat(std::iter::once(&frame).chain(&replay)));
    }

    pub(super) fn part(&mut self, conn: ConnId, room: &RoomName) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let key = match self.resolve(Some(room)) {
            Ok(Lookup::Existing(key)) if member.rooms.contains(&key) => key,
            Ok(_) => {
                return self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not in {room}"),
                    None,
                    Some(room.as_str()),
                );
            }
            Err(message) => {
                return self.error(
                    conn,
                    ErrorCode::InvalidRoom,
                    message,
                    None,
                    Some(room.as_str()),
                );
            }
        };
        if let Some(Slot::Loading(waiting)) = self.rooms.get_mut(&key) {
            waiting.push(Deferred::Part(conn, room.clone()));
            return;
        }
        let name = member.name.to_string();
        if let Some(member) = self.registry.get_mut(conn) {
            member.rooms.retain(|k| *k != key);
        }
        self.push(
            &key,
            Body::Left {
                name,
                reason: LeaveReason::Part,
            },
            None,
            Effect::Parted { conn },
        );
    }

    pub(super) fn list_rooms(&self, conn: ConnId) {
        if let Some(cluster) = &self.cluster {
            // Rooms in use on every node.
            if let Some(queue) = self.online_queue(conn) {
                cluster.ask(Request::ListRooms { queue });
            }
            return;
        }
        let mut rooms: Vec<RoomUsers> = self
            .rooms
            .values()
            .filter_map(|slot| match slot {
                Slot::Ready(room) if room.fanout.len() > 0 => Some(RoomUsers {
                    room: room.name.to_string(),
                    users: room.fanout.len() as u32,
                }),
                _ => None,
            })
            .collect();
        rooms.sort_by(|a, b| b.users.cmp(&a.users).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(ROOM_LIST_MAX);
        self.tell(conn, &ServerFrame::RoomList { rooms });
    }

    /// Drops a room nobody is in from memory: its history is in the store. With a log
    /// that keeps nothing, the window is the history, so the newest `--max-rooms` rooms
    /// nobody is in stay (a client that drops for a moment finds its rooms' history), and
    /// older ones go.
    pub(super) fn drop_if_idle(&mut self, key: &Arc<str>) {
        if *key == self.default_room || !self.is_idle(key) {
            return;
        }
        if self.log.durable() {
            self.rooms.remove(key);
            self.busy.remove(key);
            if let Some(cluster) = &self.cluster {
                cluster.unfollow(key);
            }
            return;
        }
        self.idle.push_back(key.clone());
        while self.idle.len() > self.config.max_rooms {
            let Some(oldest) = self.idle.pop_front() else {
                break;
            };
            // Joined again meanwhile, or listed again later: not this time.
            if self.is_idle(&oldest) && !self.idle.contains(&oldest) {
                self.rooms.remove(&oldest);
                self.busy.remove(&oldest);
            }
        }
    }

    pub(super) fn is_idle(&self, key: &str) -> bool {
        matches!(self.rooms.get(key), Some(Slot::Ready(room)) if room.is_idle())
    }
}

/// The most rooms a `room_list` names.
pub(super) const ROOM_LIST_MAX: usize = 500;

/// A room's stream as read back: where it stands (in a cluster, with its name and members
/// on every node) and its newest events. Blocks.
pub(super) fn read_room(
    log: &dyn EventLog,
    stream: &StreamId,
    history: usize,
) -> Result<RoomRead, LogError> {
    let snapshot = log.snapshot(stream)?;
    let recent = log.read(stream, Span::Before(snapshot.head.newest + 1), history)?;
    Ok((snapshot, recent))
}

/// A room from what [`read_room`] read; in a cluster it knows its members on every node,
/// and the tail follows it from its head.
pub(super) fn build_room(
    key: &Arc<str>,
    name: Arc<str>,
    (snapshot, recent): RoomRead,
    history: usize,
    cluster: Option<&Cluster>,
) -> Room {
    let head = snapshot.head;
    let mut room = Room::new(StreamId::new(key), name, head, recent, history);
    room.roster = snapshot
        .members
        .map(|members| members.into_iter().collect());
    if let Some(cluster) = cluster {
        cluster.follow(key, head.newest);
    }
    room
}
