//! Recording and fan-out: batches to the log, what a recorded event means for its author,
//! and pushing what was recorded to the members.

use std::sync::Arc;
use std::time::Instant;

use chat_shared::{CloseCode, ErrorCode, Frame, LeaveReason, RejectCode, ServerFrame};

use crate::cluster::Request;
use crate::log::recorder::Recorded;
use crate::log::{Body, LogError, Seq};
use crate::registry::ConnId;
use crate::room::{Effect, Pending};
use crate::wire::closing;

use super::Hub;

impl Hub {
    /// Sends the due batches to the log, and handles what it returns.
    pub(super) fn submit(&mut self, now: Instant) {
        let busy: Vec<Arc<str>> = self.busy.iter().cloned().collect();
        for key in busy {
            let window = self.pressure.window();
            let Some(room) = self.room(&key) else {
                self.busy.remove(&key);
                continue;
            };
            let Some(events) = room.take_batch(now, window) else {
                // What is recorded goes on its members' beats; while a batch is being
                // recorded, it goes with that batch.
                if !room.is_recording() {
                    self.push_to_members(&key, now);
                }
                continue;
            };
            if !room.has_pending() && !room.fanout.owes() {
                self.busy.remove(&key);
            }
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
                let recorded = self.log.append(&events);
                self.recorded(&key, recorded);
            }
        }
    }

    /// The log answered for a room's batch in flight.
    pub(super) fn recorded(&mut self, key: &Arc<str>, result: Recorded) {
        let Some(room) = self.room(key) else {
            return;
        };
        let batch = room.finish();
        if room.has_pending() {
            self.busy.insert(key.clone());
        }
        let events = match result {
            Ok(events) => events,
            Err(err) => {
                self.unrecorded(key, batch, &err);
                return;
            }
        };
        for (pending, event) in batch.iter().zip(&events) {
            if let (Some(poster), Body::Message { id: Some(id), .. }, true) =
                (&pending.event.poster, &pending.event.body, event.seq > 0)
            {
                self.recent
                    .entry(poster.clone())
                    .or_default()
                    .remember(id, event.frame.clone());
            }
        }
        if self.cluster.is_some() {
            // The tail brings these in order with every other node's events; what they
            // mean for their authors waits for them there.
            let mut skipped = Vec::new();
            if let Some(room) = self.room(key) {
                for (pending, event) in batch.into_iter().zip(events) {
                    if event.seq == 0 {
                        skipped.push(pending);
                    } else {
                        room.awaiting.insert(event.seq, pending);
                    }
                }
            }
            for pending in skipped {
                self.skipped(key, pending);
            }
            self.apply_tailed(key);
            return;
        }
        let mut parted = Vec::new();
        for (pending, event) in batch.into_iter().zip(events) {
            parted.extend(self.settle(key, pending, event.seq));
            if let Some(room) = self.room(key) {
                room.record(event);
            }
        }
        self.push_recorded(key, parted);
    }

    /// What a recorded event means for its author, just before it is gathered for the
    /// room: a newcomer's welcome or `room` answer, with the replay of what came before
    /// it. A part's author is returned: it is out once its `left` is pushed.
    pub(super) fn settle(&mut self, key: &Arc<str>, pending: Pending, seq: Seq) -> Option<ConnId> {
        match pending.effect {
            Effect::Welcome(welcome) => {
                // The newcomer gets what was gathered before this `joined` in its
                // replay, not again live (see `FanOut::add`), and its own `joined` as
                // its first live event.
                if self.registry.get(welcome.conn).is_some() {
                    // A member from here on, so `welcome.users` names it.
                    let (conn, queue) = (welcome.conn, welcome.queue.clone());
                    if let Some(room) = self.room(key) {
                        room.fanout.add(conn, queue);
                    }
                    self.send_welcome(&welcome, seq - 1, true);
                } else {
                    let _ = welcome.reply.try_send(false);
                    self.left_while_joining(key, &pending.event.body);
                }
            }
            Effect::Joined { conn, since } => {
                // As for a welcome: the replay carries what was gathered before.
                let still_joining = self
                    .registry
                    .get(conn)
                    .is_some_and(|m| m.rooms.contains(key));
                if still_joining {
                    // A member from here on, so the `room` answer names it.
                    if let (Some(queue), Some(room)) = (
                        self.registry.get(conn).map(|m| m.queue.clone()),
                        self.room(key),
                    ) {
                        room.fanout.add(conn, queue);
                    }
                    self.answer_join(conn, key, since, seq - 1);
                } else {
                    self.left_while_joining(key, &pending.event.body);
                }
            }
            Effect::Parted { conn } => return Some(conn),
            Effect::Post { .. } | Effect::None => {}
        }
        None
    }

    /// Pushes what a room gathered; then the members who parted in it are out.
    pub(super) fn push_recorded(&mut self, key: &Arc<str>, parted: Vec<ConnId>) {
        self.push_to_members(key, Instant::now());
        // A part's `left` is its answer: it gets it now, then it is out.
        let overflowed: Vec<ConnId> = match self.room(key) {
            Some(room) => parted
                .into_iter()
                .filter_map(|conn| room.fanout.remove_after_push(conn).err())
                .collect(),
            None => Vec::new(),
        };
        for conn in overflowed {
            self.evict(conn);
        }
        self.drop_if_idle(key);
    }

    /// Someone went away (or parted) while their `joined` was being recorded: record that
    /// they left.
    pub(super) fn left_while_joining(&mut self, key: &Arc<str>, joined: &Body) {
        // In a cluster the release of its name records its `left`s, in the rooms whose
        // `joined` was recorded before it.
        if self.cluster.is_some() {
            return;
        }
        if let Body::Joined { name } = joined {
            self.push(
                key,
                Body::Left {
                    name: name.clone(),
                    reason: LeaveReason::Lost,
                },
                None,
                Effect::None,
            );
        }
    }

    /// The log could not record a batch: nothing of it happened.
    pub(super) fn unrecorded(&mut self, key: &Arc<str>, batch: Vec<Pending>, err: &LogError) {
        tracing::error!(%err, room = %key, events = batch.len(), "the log could not record a batch");
        let name = self.names.name(key);
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
                    if let (Some(member), Some(cluster)) =
                        (self.registry.remove(welcome.conn), &self.cluster)
                    {
                        cluster.ask(Request::Release {
                            member: member.keys.folded,
                            token: member.token,
                            reason: LeaveReason::Lost,
                        });
                    }
                    welcome
                        .queue
                        .push_unmetered(Frame::encode(&ServerFrame::Rejected {
                            code: RejectCode::Unavailable,
                            message: "the server cannot record your login now; try again".into(),
                            retry_after: Some(2000),
                        }));
                    let _ = welcome.reply.try_send(false);
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
                Effect::Parted { conn } => {
                    // Still a member, as far as anyone can tell.
                    if let Some(member) = self.registry.get_mut(conn) {
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
    /// that cannot keep up; the room stays busy while it owes the rest or events wait.
    pub(super) fn push_to_members(&mut self, key: &Arc<str>, now: Instant) {
        let window = self.pressure.window();
        let Some(room) = self.room(key) else {
            return;
        };
        let overflowed = room.push_due(now, window);
        if room.fanout.owes() || room.has_pending() {
            self.busy.insert(key.clone());
        } else {
            self.busy.remove(key);
        }
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
