//! Rooms: joining, parting, posting, listing, reading a room back from the log, and their
//! history.

use std::sync::Arc;
use std::time::Instant;

use chat_shared::{ErrorCode, Frame, LeaveReason, Role, RoomName, ServerFrame};

use crate::log::{Body, LogError, Reach, Seq, Span, StreamId};
use crate::queue::SendQueue;
use crate::registry::ConnId;
use crate::room::Effect;
use crate::room::table::{Deferred, Lookup};
use crate::wire::now_millis;

use super::Hub;
use super::command::{Place, Said};
use super::history::{Read, Target, history_answer};
use super::load::{Loaded, build_room, read_room};
use super::peers::Seer;

impl Hub {
    /// Finds the room a frame names (`None`: the default room); a name that looks like
    /// another room's is answered `invalid_room` here (with `id`, for a post).
    pub(super) fn resolve(
        &self,
        conn: ConnId,
        room: Option<&RoomName>,
        id: Option<&str>,
    ) -> Option<Lookup> {
        self.rooms
            .lookup(room)
            .map_err(|message| {
                let (id, named) = (id.map(str::to_string), room.map(RoomName::as_str));
                self.error(conn, ErrorCode::InvalidRoom, message, id, named);
            })
            .ok()
    }

    /// The queue of a connection that is in a room (or joining it).
    pub(super) fn queue_in(&self, conn: ConnId, key: &Arc<str>) -> Option<SendQueue> {
        self.registry
            .get(conn)
            .filter(|m| m.rooms.contains(key))
            .map(|m| m.queue.clone())
    }

    pub(super) fn post(&mut self, conn: ConnId, room: Option<&RoomName>, said: Said) {
        let id = said.id.clone();
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let folded = member.keys.folded.clone();
        if let Some(id) = &id
            && let Some(original) = self.posts.original(&folded, id)
        {
            // A re-sent post: the sender gets the original back, nobody else sees it.
            member.queue.push_unmetered(original.clone());
            return;
        }
        let Some(lookup) = self.resolve(conn, room, id.as_deref()) else {
            return;
        };
        let key = match lookup {
            Lookup::Existing(key) if member.rooms.contains(&key) => key,
            _ => {
                let name = room.map_or_else(
                    || self.rooms.name(self.rooms.default_key()),
                    |r| r.as_str().into(),
                );
                return self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not in {name}; join it first"),
                    id,
                    room.map(RoomName::as_str),
                );
            }
        };
        if let Some(room) = room
            && self.rooms.is_loading(&key)
        {
            let room = room.clone();
            let post = Deferred::Post { conn, room, said };
            let _ = self.rooms.defer(&key, post);
            return;
        }
        let from = member.name.to_string();
        if let Some(muted) = self
            .rooms
            .get(&key)
            .and_then(|room| Self::muted(member, room, id.clone()))
        {
            member.queue.push_unmetered(muted);
            return;
        }
        if let Some(id) = &id
            && self
                .rooms
                .get(&key)
                .is_some_and(|room| room.has_post(&folded, id))
        {
            // The original is on its way to the log; its echo will settle this too.
            return;
        }
        if id.is_some() {
            self.posts.posted(&folded, Instant::now());
        }
        let poster = id.is_some().then_some(folded);
        self.push(
            &key,
            Body::Message {
                from,
                text: said.text,
                id: said.id,
                me: said.me,
                reply_to: said.reply_to,
            },
            poster,
            Effect::Post { conn, id },
        );
    }

    pub(super) fn history(
        &mut self,
        conn: ConnId,
        room: Option<&RoomName>,
        reach: Option<Reach>,
        limit: usize,
    ) {
        let Some(queue) = self.online_queue(conn) else {
            return;
        };
        let key = match self.resolve(conn, room, None) {
            Some(Lookup::Existing(key)) => key,
            Some(Lookup::New(_, name)) => {
                // No such room: nothing in it.
                let span = match reach {
                    Some(Reach::Seqs(span)) => span,
                    _ => Span::Before(1),
                };
                queue.push_unmetered(history_answer(&Target::Room(name.to_string()), span, &[]));
                return;
            }
            None => return,
        };
        let durable = self.log.durable();
        let target = Target::Room(self.rooms.name(&key).to_string());
        // An invite-only room's history is for its members (and administrators).
        let outsider = self
            .registry
            .get(conn)
            .is_some_and(|m| !m.rooms.contains(&key) && !self.is_admin(m));
        if outsider
            && self
                .rooms
                .get(&key)
                .is_some_and(|room| room.state().invite_only)
        {
            return self.error(
                conn,
                ErrorCode::NotPermitted,
                "that room is invite-only: its history is for its members".into(),
                None,
                room.map(RoomName::as_str),
            );
        }
        if let Some(room) = self.rooms.get(&key) {
            let span = match reach {
                None => Some(Span::Before(room.newest() + 1)),
                Some(reach) => reach
                    .span(|time| room.first_at(time, durable).ok_or(()))
                    .ok(),
            };
            if let Some(span) = span
                && let Some(frames) = room.read_window(span, limit, durable)
            {
                queue.push_unmetered(history_answer(&target, span, &frames));
                return;
            }
        }
        // Not in memory, or older than its window: read on the blocking pool.
        let read = Read {
            stream: StreamId::new(&key),
            reach,
            limit,
            target,
            members_only: outsider,
        };
        read.answer_from(self.log.clone(), queue);
    }

    pub(super) fn join(&mut self, conn: ConnId, room: &RoomName, since: Option<Seq>) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let (key, new_name) = match self.resolve(conn, Some(room), None) {
            Some(Lookup::Existing(key)) => (key, None),
            Some(Lookup::New(key, name)) => (key, Some(name)),
            None => return,
        };
        if member.rooms.contains(&key) {
            // Already in: the answer again, nothing recorded (how a client resumes). A
            // join on its way to the log is answered once, when it is recorded.
            if self.rooms.update(&key, |room| room.ask_again(conn, since)) == Some(true) {
                return;
            }
            if self.rooms.is_loading(&key) {
                let _ = self.rooms.defer(&key, Deferred::Resume(conn, since));
            } else {
                self.answer_join(conn, &key, since, None);
            }
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
        if self.rooms.is_empty(&key)
            && key != *self.rooms.default_key()
            && self.rooms.in_use() >= self.config.max_rooms
        {
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
        if let Some(name) = new_name {
            self.rooms.name_room(key.clone(), name);
        }
        if self.rooms.get(&key).is_some() {
            self.push_joined(conn, &key, since);
        } else if self.rooms.is_loading(&key) {
            let _ = self.rooms.defer(&key, Deferred::Join(conn, since));
        } else {
            // Not in memory: read back from the log (a new room reads empty; in a cluster
            // another node may have made it a moment ago).
            self.load_room(&key, vec![Deferred::Join(conn, since)]);
        }
    }

    /// Records a join, if the room admits the member (see [`Hub::admission`]); else the
    /// member is not in it after all, and hears why.
    fn push_joined(&mut self, conn: ConnId, key: &Arc<str>, since: Option<Seq>) {
        let (Some(member), Some(room)) = (self.registry.get(conn), self.rooms.get(key)) else {
            return;
        };
        if let Err(refusal) = self.admission(member, room, now_millis()) {
            member.queue.push_unmetered(refusal);
            if let Some(member) = self.registry.get_mut(conn) {
                member.rooms.retain(|k| k != key);
            }
            self.drop_if_idle(key);
            return;
        }
        let name = member.name.to_string();
        // The account whose join makes a room owns it, from the event after its `joined`
        // (in the same batch: nothing comes between). A guest's room, and the default
        // room, have no owner until one is given.
        let owner =
            (member.account && room.is_new() && key != self.rooms.default_key()).then(|| {
                Body::Role {
                    by: name.clone(),
                    name: name.clone(),
                    role: Role::Owner,
                }
            });
        self.push(
            key,
            Body::Joined { name },
            None,
            Effect::Joined {
                conn,
                since,
                quiet: false,
            },
        );
        if let Some(owner) = owner {
            self.push(key, owner, None, Effect::Step { conn });
        }
    }

    /// Reads a room back from the log, on the blocking pool, never on the hub's task;
    /// what `waiting` asked is done once it is in memory.
    pub(super) fn load_room(&mut self, key: &Arc<str>, waiting: Vec<Deferred>) {
        self.rooms.start_loading(key.clone(), waiting);
        let (log, done) = (self.log.clone(), self.loaded.0.clone());
        let (key, history) = (key.clone(), self.config.history);
        smol::unblock(move || {
            let result = read_room(&*log, &StreamId::new(&key), history);
            let _ = done.try_send(Loaded { key, result });
        })
        .detach();
    }

    pub(super) fn room_loaded(&mut self, loaded: Loaded) {
        let Loaded { key, result } = loaded;
        let Some(waiting) = self.rooms.finish_loading(&key) else {
            return;
        };
        let read = match result {
            Ok(read) => read,
            Err(err) => return self.not_loaded(&key, waiting, &err),
        };
        if !read.0.name.is_empty() {
            // Named on another node first: its spelling is the room's.
            self.rooms
                .name_room(key.clone(), read.0.name.as_str().into());
        }
        let name = self.rooms.name(&key);
        let room = build_room(&key, name, read, self.config.history, &*self.peers);
        self.rooms.insert(key.clone(), room);
        for deferred in waiting {
            // Joins, takeovers and resumes count for a connection still in the room.
            match deferred {
                Deferred::Join(conn, since) => {
                    if self.queue_in(conn, &key).is_some() {
                        self.push_joined(conn, &key, since);
                    }
                }
                Deferred::Adopt(conn) => {
                    let Some(queue) = self.queue_in(conn, &key) else {
                        continue;
                    };
                    // Read back after the member left it (put out meanwhile): not its.
                    let folded = self.registry.get(conn).map(|m| m.keys.folded.clone());
                    let still_in = folded.is_some_and(|folded| {
                        self.rooms
                            .get(&key)
                            .is_some_and(|room| room.has_member(&folded, &self.registry))
                    });
                    if still_in {
                        self.rooms.update(&key, |room| room.add(conn, queue));
                    } else if let Some(member) = self.registry.get_mut(conn) {
                        member.rooms.retain(|k| *k != key);
                    }
                }
                Deferred::Resume(conn, since) => {
                    if self.queue_in(conn, &key).is_some() {
                        self.answer_join(conn, &key, since, None);
                    }
                }
                Deferred::Post { conn, room, said } => self.post(conn, Some(&room), said),
                Deferred::Part(conn, room) => self.part(conn, &room),
                Deferred::Step(conn, step) => self.moderate(conn, *step),
                Deferred::Delete(conn, room, seq) => self.delete(conn, Place::Room(room), seq),
                Deferred::Amend(conn, room, seq, change) => {
                    self.amend(conn, Place::Room(room), seq, change);
                }
            }
        }
        self.drop_if_idle(&key);
    }

    /// A room could not be read back: nothing asked of it meanwhile happened.
    fn not_loaded(&mut self, key: &Arc<str>, waiting: Vec<Deferred>, err: &LogError) {
        tracing::error!(%err, room = %key, "cannot read a room back");
        let name = self.rooms.name(key);
        for deferred in waiting {
            match deferred {
                Deferred::Join(conn, _) | Deferred::Adopt(conn) | Deferred::Resume(conn, _) => {
                    if let Some(member) = self.registry.get_mut(conn) {
                        member.rooms.retain(|k| k != key);
                    }
                    self.error(
                        conn,
                        ErrorCode::Unavailable,
                        "the room cannot be read now; try again later".into(),
                        None,
                        Some(&name),
                    );
                }
                Deferred::Post {
                    conn,
                    said: Said { id, .. },
                    ..
                } => self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "your post could not be recorded; send it again".into(),
                    id,
                    Some(&name),
                ),
                Deferred::Step(conn, _)
                | Deferred::Delete(conn, ..)
                | Deferred::Amend(conn, ..) => {
                    self.error(
                        conn,
                        ErrorCode::Unavailable,
                        "the room cannot be read now; try again later".into(),
                        None,
                        Some(&name),
                    );
                }
                // Its join failed: it is not in the room.
                Deferred::Part(..) => {}
            }
        }
    }

    /// The answer to a `join`: the room, then its replay (events up to `seq`; `None`: up to
    /// the room's newest).
    pub(super) fn answer_join(
        &mut self,
        conn: ConnId,
        key: &Arc<str>,
        since: Option<Seq>,
        seq: Option<Seq>,
    ) {
        if let Some(since) = since {
            self.rooms.update(key, |room| room.resumed_at(conn, since));
        }
        let (Some(room), Some(member)) = (self.rooms.get(key), self.registry.get(conn)) else {
            return;
        };
        let (fresh, max) = (self.config.replay, self.config.replay_max);
        // A join's `since` counts in the epoch its client logged in with, this one.
        let replay = room.replay(since, true, fresh, max);
        let frame = Frame::encode(&ServerFrame::Room {
            room: room.name().to_string(),
            users: room.users(&self.registry),
            seq: seq.unwrap_or(room.newest()),
            oldest: room.oldest(self.log.durable()),
            state: self.described(member, room),
            read: member.read.get(&StreamId::new(key)).copied().unwrap_or(0),
        });
        member
            .queue
            .push_unmetered(Frame::concat(std::iter::once(&frame).chain(&replay)));
    }

    pub(super) fn part(&mut self, conn: ConnId, room: &RoomName) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let key = match self.resolve(conn, Some(room), None) {
            Some(Lookup::Existing(key)) if member.rooms.contains(&key) => key,
            Some(_) => {
                return self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not in {room}"),
                    None,
                    Some(room.as_str()),
                );
            }
            None => return,
        };
        if self.rooms.is_loading(&key) {
            let _ = self.rooms.defer(&key, Deferred::Part(conn, room.clone()));
            return;
        }
        let name = member.name.to_string();
        // A `part` right after the `join`, before its `joined` is recorded: the join is
        // answered first, then the part (see `Hub::settle`).
        let joining = self
            .rooms
            .get(&key)
            .is_some_and(|room| !room.contains(conn));
        if !joining && let Some(member) = self.registry.get_mut(conn) {
            member.rooms.retain(|k| *k != key);
        }
        self.push(
            &key,
            Body::left(name, LeaveReason::Part),
            None,
            Effect::Parted { conn, joining },
        );
    }

    /// Lists the rooms in use; invite-only ones only to their members and to
    /// administrators.
    pub(super) fn list_rooms(&self, conn: ConnId) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let seer = Seer {
            rooms: member.rooms.iter().map(ToString::to_string).collect(),
            admin: self.is_admin(member),
        };
        // In a cluster: the rooms in use on every node.
        if let Some((queue, seer)) = self.peers.list_rooms(member.queue.clone(), seer) {
            let rooms = self
                .rooms
                .listing(|key, room| !room.state().invite_only || seer.sees(key));
            queue.push_unmetered(Frame::encode(&ServerFrame::RoomList { rooms }));
        }
    }
}
