//! Recording and fan-out: batches to the log, what a recorded event means for its author,
//! and pushing what was recorded to the members.
//!
//! A recorded event arrives in its room in seq order: alone, as the log answered the
//! batch; in a cluster, as the tail brings it with every node's events (see
//! [`super::peers::Peers::tails`]). Either way the room takes it in the same way: what
//! it means for its author here (a welcome, a `room` answer, a part), then it is gathered
//! for the members and pushed on their beats.

use std::sync::Arc;
use std::time::Instant;

use chat_shared::{CloseCode, ErrorCode, Frame, LeaveReason, RejectCode};

use crate::log::recorder::Recorded;
use crate::log::{Body, LogError, Seq};
use crate::registry::ConnId;
use crate::room::{Arrival, Arrived, Consequence, Effect, Pending, Room};
use crate::wire::{closing, now_millis, rejected};

use super::Hub;

impl Hub {
    /// Sends the due batches to the log, and pushes what is due to members.
    pub(super) fn submit(&mut self, now: Instant) {
        let window = self.pressure.window();
        for key in self.rooms.busy() {
            let batch = self
                .rooms
                .update(&key, |room| room.take_batch(now, window))
                .flatten();
            let Some(events) = batch else {
                // What is recorded goes on its members' beats; while a batch is being
                // recorded, it goes with that batch.
                if self
                    .rooms
                    .get(&key)
                    .is_some_and(|room| !room.is_recording())
                {
                    self.push_to_members(&key, now);
                }
                continue;
            };
            if let Some(recorder) = &self.recorder {
                let done = self.recorded.0.clone();
                let room_key = key.clone();
                recorder.record(
                    events,
                    Box::new(move |result| {
                        let _ = done.try_send((room_key, result));
                    }),
                );
            } else {
                let recorded = self.append_here(&events);
                self.recorded(&key, recorded);
            }
        }
    }

    /// The log answered for a room's batch in flight.
    pub(super) fn recorded(&mut self, key: &Arc<str>, result: Recorded) {
        let Some(batch) = self.rooms.update(key, Room::finish) else {
            return;
        };
        let events = match result {
            Ok(events) => events,
            Err(err) => return self.unrecorded(key, batch, &err),
        };
        let tails = self.peers.tails();
        let (mut own, mut arriving, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        for (pending, event) in batch.into_iter().zip(events) {
            if event.seq == 0 {
                skipped.push((pending, event.frame));
                continue;
            }
            if let (Some(poster), Body::Message { id: Some(id), .. }) =
                (&pending.event.poster, &pending.event.body)
            {
                self.posts.remember(poster, id, event.frame.clone());
            }
            own.push((event.seq, pending));
            // In a cluster the tail brings these in order with every other node's events.
            if !tails {
                arriving.push((event, None));
            }
        }
        self.rooms.update(key, |room| {
            for (seq, pending) in own {
                room.await_own(seq, pending);
            }
            room.arriving(arriving);
        });
        for (pending, answer) in skipped {
            self.skipped(key, pending, &answer);
        }
        self.take_arrivals(key);
    }

    /// Takes in the events that arrived in a room, in seq order (not while a batch of the
    /// room is being recorded: which of them are this server's is known only once it is):
    /// what this server's own mean for their authors, each gathered for the members, and
    /// then pushed.
    pub(super) fn take_arrivals(&mut self, key: &Arc<str>) {
        if self.rooms.get(key).is_none_or(Room::is_recording) {
            return;
        }
        let Arrived {
            arrivals,
            read_again_after,
        } = self
            .rooms
            .update(key, |room| room.arrive(Instant::now()))
            .unwrap_or_default();
        if let Some(newest) = read_again_after {
            // The tail skipped events: it reads the room again after what the room has.
            self.peers.follow(key, newest);
        }
        let mut parted = Vec::new();
        for Arrival {
            event,
            mine,
            posted,
        } in arrivals
        {
            // A post of a member here: its id is known even if the answer to the append
            // was lost (Redis went away), so a copy sent again is not posted twice.
            if let Some((poster, id)) = posted
                && self.registry.online_conn(&poster).is_some()
            {
                self.posts.remember(&poster, &id, event.frame.clone());
            }
            if let Some(pending) = mine {
                parted.extend(self.settle(key, pending, event.seq));
            }
            match self.rooms.update(key, |room| room.record(event)).flatten() {
                // A member here put out by a moderator is out once its `left` is pushed.
                Some(Consequence::PutOut(folded)) => {
                    if let Some(conn) = self.registry.conn_of(&folded)
                        && let Some(member) = self.registry.get_mut(conn)
                        && member.rooms.contains(key)
                    {
                        member.rooms.retain(|k| k != key);
                        parted.push(conn);
                    }
                }
                // In a cluster every node hears of an invitation, room or no room.
                Some(Consequence::Invited { folded, by }) if !self.peers.tails() => {
                    self.tell_invited(&folded, key, by);
                }
                Some(Consequence::Invited { .. }) | None => {}
            }
        }
        // Ours that the room is past already (it was read back meanwhile): settled late.
        for (seq, pending) in self.rooms.update(key, Room::take_late).unwrap_or_default() {
            parted.extend(self.settle(key, pending, seq));
        }
        self.push_recorded(key, parted);
    }

    /// What a recorded event means for its author, just before it is gathered for the
    /// room: a newcomer's welcome or `room` answer, with the replay of what came before
    /// it. A part's author is returned: it is out once its `left` is pushed.
    fn settle(&mut self, key: &Arc<str>, pending: Pending, seq: Seq) -> Option<ConnId> {
        match pending.effect {
            Effect::Welcome(welcome) => {
                // The newcomer gets what was gathered before this `joined` in its
                // replay, not again live (see `FanOut::add`), and its own `joined` as
                // its first live event.
                if self.registry.get(welcome.conn).is_some() {
                    // A member from here on, so `welcome.users` names it.
                    let (conn, queue) = (welcome.conn, welcome.queue.clone());
                    self.rooms.update(key, |room| room.add(conn, queue));
                    self.send_welcome(&welcome, seq - 1, true);
                } else {
                    let _ = welcome.reply.try_send(Err(RejectCode::Unavailable));
                    self.left_while_joining(key, &pending.event.body);
                }
            }
            Effect::Joined { conn, since, quiet } => {
                // A ban or the room's closing recorded since the join was let in (on
                // another node, a moment before) puts the newcomer out again at once.
                if self.refused_after_all(conn, key) {
                    return None;
                }
                // As for a welcome: the replay carries what was gathered before.
                if let Some(queue) = self.queue_in(conn, key) {
                    // A member from here on, so the `room` answer names it.
                    self.rooms.update(key, |room| room.add(conn, queue));
                    if !quiet {
                        self.answer_join(conn, key, since, Some(seq - 1));
                    }
                } else {
                    self.left_while_joining(key, &pending.event.body);
                }
            }
            Effect::Parted { conn, joining } => {
                if joining && let Some(member) = self.registry.get_mut(conn) {
                    member.rooms.retain(|k| k != key);
                }
                return Some(conn);
            }
            Effect::Post { .. } | Effect::Step { .. } | Effect::None => {}
        }
        None
    }

    /// Whether a join whose `joined` was just recorded is refused by what the room took in
    /// before it (the checks of [`Hub::admission`], against the room as of its `joined`):
    /// then the member hears why, is not in the room, and its `left` is recorded.
    fn refused_after_all(&mut self, conn: ConnId, key: &Arc<str>) -> bool {
        let (Some(member), Some(room)) = (self.registry.get(conn), self.rooms.get(key)) else {
            return false;
        };
        if !member.rooms.contains(key) {
            return false;
        }
        let Err(refusal) = self.admission(member, room, now_millis()) else {
            return false;
        };
        let keys = &member.keys;
        let ban = room
            .state()
            .ban_of(&keys.folded, &keys.skeleton, now_millis());
        let body = Body::Left {
            name: member.name.to_string(),
            reason: if ban.is_some() {
                LeaveReason::Banned
            } else {
                LeaveReason::Removed
            },
            by: ban.map(|ban| ban.restriction.by.clone()),
            message: ban.and_then(|ban| ban.restriction.message.clone()),
        };
        member.queue.push_unmetered(refusal);
        if let Some(member) = self.registry.get_mut(conn) {
            member.rooms.retain(|k| k != key);
        }
        self.push(key, body, None, Effect::None);
        true
    }

    /// Pushes what a room gathered; then the members who parted in it are out.
    fn push_recorded(&mut self, key: &Arc<str>, parted: Vec<ConnId>) {
        self.push_to_members(key, Instant::now());
        // A part's `left` is its answer: it gets it now, then it is out.
        let overflowed: Vec<ConnId> = self
            .rooms
            .update(key, |room| {
                parted
                    .into_iter()
                    .filter_map(|conn| room.remove_after_push(conn).err())
                    .collect()
            })
            .unwrap_or_default();
        for conn in overflowed {
            self.evict(conn);
        }
        self.drop_if_idle(key);
    }

    /// Someone went away (or parted) while their `joined` was being recorded: record that
    /// they left.
    fn left_while_joining(&mut self, key: &Arc<str>, joined: &Body) {
        // In a cluster the release of its name records its `left`s, in the rooms whose
        // `joined` was recorded before it.
        if self.peers.tails() {
            return;
        }
        if let Body::Joined { name } = joined {
            self.push(
                key,
                Body::left(name.clone(), LeaveReason::Lost),
                None,
                Effect::None,
            );
        }
    }

    /// An event the log did not record: its author no longer holds its session (it went,
    /// or was taken over on another node: only a log that nodes share does this), or what
    /// it asked of a message could not be done (`answer`: what its author is told).
    fn skipped(&mut self, key: &Arc<str>, pending: Pending, answer: &Frame) {
        match pending.effect {
            Effect::Post { conn, .. } | Effect::Step { conn } if !answer.is_empty() => {
                self.tell_frame(conn, answer);
            }
            Effect::Welcome(welcome) => {
                let _ = welcome.reply.try_send(Err(RejectCode::Unavailable));
                self.drop_placeholder(welcome.conn);
            }
            Effect::Joined { conn, .. } => {
                if let Some(member) = self.registry.get_mut(conn) {
                    member.rooms.retain(|k| k != key);
                }
            }
            Effect::Parted { .. } | Effect::Post { .. } | Effect::Step { .. } | Effect::None => {}
        }
    }

    /// The log could not record a batch: nothing of it happened.
    fn unrecorded(&mut self, key: &Arc<str>, batch: Vec<Pending>, err: &LogError) {
        tracing::error!(%err, room = %key, events = batch.len(), "the log could not record a batch");
        let name = self.rooms.name(key);
        for pending in batch {
            match pending.effect {
                Effect::Post { conn, id } => self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "your post could not be recorded; send it again".into(),
                    id,
                    Some(&name),
                ),
                Effect::Welcome(welcome) => {
                    if let Some(member) = self.registry.remove(welcome.conn) {
                        let (folded, token) = (member.keys.folded, member.token);
                        self.peers.release(folded, token, LeaveReason::Lost);
                    }
                    welcome.queue.push_unmetered(rejected(
                        RejectCode::Unavailable,
                        "the server cannot record your login now; try again".into(),
                        Some(2000),
                    ));
                    let _ = welcome.reply.try_send(Err(RejectCode::Unavailable));
                }
                Effect::Joined { conn, .. } => {
                    if let Some(member) = self.registry.get_mut(conn) {
                        member.rooms.retain(|k| k != key);
                    }
                    self.error(
                        conn,
                        ErrorCode::Unavailable,
                        "your join could not be recorded; try again".into(),
                        None,
                        Some(&name),
                    );
                }
                Effect::Step { conn } => self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "that could not be recorded; try again".into(),
                    None,
                    Some(&name),
                ),
                Effect::Parted { conn, .. } => {
                    // Still a member, as far as anyone can tell.
                    if let Some(member) = self.registry.get_mut(conn)
                        && !member.rooms.contains(key)
                    {
                        member.rooms.push(key.clone());
                    }
                    self.error(
                        conn,
                        ErrorCode::Unavailable,
                        "your part could not be recorded; try again".into(),
                        None,
                        Some(&name),
                    );
                }
                Effect::None => {
                    tracing::warn!(event = ?pending.event.body, "an event was not recorded");
                }
            }
        }
        self.drop_if_idle(key);
    }

    /// Pushes what a room recorded to the members whose beat came by `now`, closing those
    /// that cannot keep up.
    fn push_to_members(&mut self, key: &Arc<str>, now: Instant) {
        let window = self.pressure.window();
        let overflowed = self
            .rooms
            .update(key, |room| room.push_due(now, window))
            .unwrap_or_default();
        for conn in overflowed {
            self.evict(conn);
        }
    }

    /// Closes a connection that reads too slowly: once, and it leaves every room.
    pub(super) fn evict(&mut self, conn: ConnId) {
        let Some(member) = self.registry.get(conn) else {
            return;
        };
        member.queue.abort_with(closing(CloseCode::SendQueueFull));
        self.leave(conn, LeaveReason::Kicked);
    }
}
