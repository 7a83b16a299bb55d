//! A message's life after it is posted (edits and reactions: recorded, decided by the log
//! against the message as it holds it, see [`crate::log::amend`]), typing indicators (only
//! relayed) and read markers (kept per account and stream).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_shared::limits::TYPING_EVERY_MS;
use chat_shared::{ErrorCode, Frame, ServerFrame};

use crate::log::{Body, ReadMark, Seq, StreamId};
use crate::queue::Batch;
use crate::registry::ConnId;
use crate::room::Effect;
use crate::room::table::{Deferred, Lookup};

use super::Hub;
use super::command::{Command, Life, Place, Typing};
use super::direct::direct_event;
use super::moderation::place_room;
use super::read_markers::READ_MARKERS_EVERY;

impl Hub {
    /// An edit or a reaction: checked here for what only the hub knows (membership, a
    /// mute, an account for edits), then recorded, the log deciding against the message.
    pub(super) fn amend(&mut self, conn: ConnId, place: Place, seq: Seq, change: Life) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        if matches!(change, Life::Edit(_)) && !member.account {
            return self.error(
                conn,
                ErrorCode::AccountRequired,
                "only an account can edit its messages: a guest name may be someone else's tomorrow"
                    .into(),
                None,
                place_room(&place),
            );
        }
        let from = member.name.to_string();
        let body = match change.clone() {
            Life::Edit(text) => Body::Edited {
                from,
                target: seq,
                text,
            },
            Life::React(emoji, on) => Body::Reaction {
                from,
                target: seq,
                emoji,
                on,
            },
        };
        let named = match place {
            Place::Room(named) => named,
            Place::With(with) => return self.amend_direct(conn, &with, body),
        };
        let Some(key) = self.room_of_member(conn, &named) else {
            return;
        };
        if self.rooms.is_loading(&key) {
            let _ = self
                .rooms
                .defer(&key, Deferred::Amend(conn, named, seq, change));
            return;
        }
        let (Some(member), Some(room)) = (self.registry.get(conn), self.rooms.get(&key)) else {
            return;
        };
        if let Some(muted) = Self::muted(member, room, None) {
            member.queue.push_unmetered(muted);
            return;
        }
        // A seq past the newest this node has may be a message another node of a cluster
        // recorded a moment ago: the log, which refuses what is not a message, decides.
        if seq == 0 || (seq > room.newest() && !self.peers.tails()) {
            let name = room.name().to_string();
            return self.error(
                conn,
                ErrorCode::NoSuchMessage,
                format!("{seq} is not a message there"),
                None,
                Some(&name),
            );
        }
        self.push(&key, body, None, Effect::Step { conn });
    }

    /// An edit of, or a reaction to, a direct message.
    fn amend_direct(&mut self, conn: ConnId, with: &str, body: Body) {
        let (me, other) = match self.account_named(conn, with) {
            Ok(pair) => pair,
            Err(code) => return self.account_error(conn, code, with, None),
        };
        let event = direct_event(&me, &other, body);
        self.record_direct(event, conn);
    }

    /// A `typing`: relayed at most every 2 s per sender and place to the other members
    /// (or the other party) on protocol 3, on every node; nothing for a muted sender, a
    /// non-member, or a guest writing to an account. Never answered, never recorded.
    pub(super) fn typing(&mut self, conn: ConnId, place: &Place) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let name = member.name.to_string();
        let (stream, relay) = match place {
            Place::Room(named) => {
                let Ok(Lookup::Existing(key)) = self.rooms.lookup(Some(named)) else {
                    return;
                };
                let Some(room) = self.rooms.get(&key) else {
                    return;
                };
                if !member.rooms.contains(&key) || Self::muted(member, room, None).is_some() {
                    return;
                }
                let frame = ServerFrame::Typing {
                    room: Some(room.name().to_string()),
                    with: None,
                    name: name.clone(),
                };
                (StreamId::new(&key), Typing::Room(key, frame))
            }
            Place::With(with) => {
                let Ok((me, other)) = self.account_named(conn, with) else {
                    return;
                };
                let frame = ServerFrame::Typing {
                    room: None,
                    with: Some(me.name.to_string()),
                    name: name.clone(),
                };
                (
                    StreamId::direct(&me.keys.folded, &other.keys.folded),
                    Typing::Direct(other.keys.folded.clone(), frame),
                )
            }
        };
        let now = Instant::now();
        let every = Duration::from_millis(TYPING_EVERY_MS);
        let Some(member) = self.registry.get_mut(conn) else {
            return;
        };
        member
            .typed
            .retain(|(_, at)| now.duration_since(*at) < every);
        if member.typed.iter().any(|(typed, _)| *typed == stream) {
            return;
        }
        member.typed.push((stream, now));
        let folded = member.keys.folded.clone();
        self.relay_typing(&folded, &relay);
        self.peers.typing(folded, relay);
    }

    /// Hands a `typing` to the members here it is for (never back to its sender).
    pub(super) fn relay_typing(&mut self, sender: &str, typing: &Typing) {
        let (frame, conns): (&ServerFrame, Vec<ConnId>) = match typing {
            Typing::Room(key, frame) => {
                let Some(room) = self.rooms.get(key) else {
                    return;
                };
                (frame, room.conns().collect())
            }
            Typing::Direct(to, frame) => (frame, self.registry.conn_of(to).into_iter().collect()),
        };
        let batch = Batch::new(Frame::encode(frame), 1);
        let overflowed: Vec<ConnId> = conns
            .into_iter()
            .filter(|conn| {
                self.registry
                    .get(*conn)
                    .is_some_and(|m| m.online && m.protocol >= 3 && m.keys.folded != sender)
            })
            .filter(|conn| {
                self.registry
                    .get(*conn)
                    .is_some_and(|m| m.queue.push(&batch).is_err())
            })
            .collect();
        for conn in overflowed {
            self.evict(conn);
        }
    }

    /// A `read` marker from an account: kept if it is higher than the one it has (guests:
    /// ignored; a seq past the newest is taken as the newest).
    pub(super) fn read_up_to(&mut self, conn: ConnId, place: &Place, seq: Seq) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online && m.account) else {
            return;
        };
        let account = member.keys.folded.clone();
        let (stream, newest) = match place {
            Place::Room(named) => {
                let Ok(Lookup::Existing(key)) = self.rooms.lookup(Some(named)) else {
                    return;
                };
                let newest = self.rooms.get(&key).map_or(seq, crate::room::Room::newest);
                (StreamId::new(&key), newest)
            }
            Place::With(with) => {
                let Ok((me, other)) = self.account_named(conn, with) else {
                    return;
                };
                (StreamId::direct(&me.keys.folded, &other.keys.folded), seq)
            }
        };
        let seq = seq.min(newest);
        let Some(member) = self.registry.get_mut(conn) else {
            return;
        };
        let kept = member.read.entry(stream.clone()).or_insert(0);
        if seq <= *kept {
            return;
        }
        *kept = seq;
        let gathered = self
            .read_markers
            .gathered
            .entry((account, stream))
            .or_insert(0);
        *gathered = (*gathered).max(seq);
        self.schedule_read_markers();
    }

    /// Has the gathered read markers kept in a moment, unless that is under way.
    fn schedule_read_markers(&mut self) {
        if self.read_markers.scheduled || self.read_markers.gathered.is_empty() {
            return;
        }
        self.read_markers.scheduled = true;
        let inbox = self.inbox.clone();
        smol::spawn(async move {
            smol::Timer::after(READ_MARKERS_EVERY).await;
            let _ = inbox.send(Command::KeepReadMarkers).await;
        })
        .detach();
    }

    /// Sends the gathered read markers to the log, off this task: one write for all.
    pub(super) fn keep_read_markers(&mut self) {
        let marks: Vec<ReadMark> = self.read_markers.drain().collect();
        if marks.is_empty() {
            self.read_markers.scheduled = false;
            return;
        }
        self.read_markers.in_flight.clone_from(&marks);
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        smol::spawn(async move {
            let count = marks.len();
            if let Err(err) = smol::unblock(move || log.set_read(&marks)).await {
                tracing::warn!(%err, count, "read markers could not be kept");
            }
            let _ = inbox.send(Command::ReadMarkersKept).await;
        })
        .detach();
    }

    /// The read markers in flight were kept (or given up): the next may go.
    pub(super) fn read_markers_kept(&mut self) {
        self.read_markers.in_flight.clear();
        self.read_markers.scheduled = false;
        self.schedule_read_markers();
    }

    /// The read markers a login starts with: the log's, raised by those still on their
    /// way to it.
    pub(super) fn read_markers_of(
        &self,
        account: &str,
        kept: &[(String, Seq)],
    ) -> HashMap<StreamId, Seq> {
        let mut marks: HashMap<StreamId, Seq> = kept
            .iter()
            .map(|(stream, seq)| (StreamId::new(stream), *seq))
            .collect();
        for (stream, seq) in &mut marks {
            *seq = (*seq).max(self.read_markers.pending(account, stream));
        }
        for ((owner, stream), seq) in &self.read_markers.gathered {
            if owner == account {
                let mark = marks.entry(stream.clone()).or_insert(0);
                *mark = (*mark).max(*seq);
            }
        }
        marks
    }
}
