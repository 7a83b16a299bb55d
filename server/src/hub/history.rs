//! History: a room's or a conversation's events read from the log on the blocking pool,
//! never on the hub's task, and answered with `history_end`.

use std::sync::Arc;

use chat_shared::{ErrorCode, Frame, ServerFrame, fold};

use super::Hub;
use super::command::{Latest, TargetsReply};
use crate::log::state::KeptState;
use crate::log::{EventLog, LogError, Reach, Span, StreamId, for_reader, message_time};
use crate::queue::SendQueue;
use crate::registry::ConnId;
use crate::room::Newest;

/// What a `history` asked about.
pub(super) enum Target {
    /// A room, by name.
    Room(String),
    /// A direct conversation: the other account's name, and who reads it (case-folded),
    /// for whom each message is turned round.
    Direct { with: String, reader: String },
}

/// A `history` request to read from the log.
pub(super) struct Read {
    pub(super) stream: StreamId,
    /// `None`: the newest.
    pub(super) reach: Option<Reach>,
    pub(super) limit: usize,
    pub(super) target: Target,
    /// Answered only if the room is not invite-only (the reader is not one of its
    /// members): else `not_permitted`.
    pub(super) members_only: bool,
}

impl Read {
    /// Reads on the blocking pool, never on the hub's task, and queues the answer there.
    pub(super) fn answer_from(self, log: Arc<dyn EventLog>, queue: SendQueue) {
        let Read {
            stream,
            reach,
            limit,
            target,
            members_only,
        } = self;
        smol::unblock(move || {
            if members_only {
                match log.room_state(&stream) {
                    Ok(fields)
                        if KeptState::from_fields(
                            fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                        .invite_only =>
                    {
                        let room = match &target {
                            Target::Room(room) => Some(room.clone()),
                            Target::Direct { .. } => None,
                        };
                        queue.push_unmetered(Frame::encode(&ServerFrame::Error {
                            room,
                            code: ErrorCode::NotPermitted,
                            message: "that room is invite-only: its history is for its members"
                                .into(),
                            id: None,
                            retry_after: None,
                            until: None,
                        }));
                        return;
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::error!(%err, "cannot read a room's state");
                        queue.push_unmetered(unavailable());
                        return;
                    }
                }
            }
            let read = match reach {
                Some(reach) => reach.span(|time| log.first_at(&stream, time)),
                None => log.head(&stream).map(|head| Span::Before(head.newest + 1)),
            }
            .and_then(|span| Ok((span, log.read(&stream, span, limit)?)));
            let answer = match read {
                Ok((span, events)) => {
                    let frames: Vec<Frame> = match &target {
                        Target::Room(_) => events.into_iter().map(|e| e.frame).collect(),
                        Target::Direct { reader, .. } => events
                            .iter()
                            .map(|e| for_reader(&e.frame, reader))
                            .collect(),
                    };
                    history_answer(&target, span, &frames)
                }
                Err(err) => {
                    tracing::error!(%err, "cannot read the history");
                    unavailable()
                }
            };
            queue.push_unmetered(answer);
        })
        .detach();
    }
}

/// The answer to a history that cannot be read now.
fn unavailable() -> Frame {
    Frame::encode(&ServerFrame::Error {
        room: None,
        code: ErrorCode::Unavailable,
        message: "the history cannot be read now; try again later".into(),
        id: None,
        retry_after: None,
        until: None,
    })
}

/// A history answer: the events, then `history_end`.
pub(super) fn history_answer(target: &Target, span: Span, frames: &[Frame]) -> Frame {
    crate::metrics::get().history_reads.inc();
    let (before, after) = match span {
        Span::Before(before) => (Some(before), None),
        Span::After(after) => (None, Some(after)),
    };
    let (room, with) = match target {
        Target::Room(room) => (Some(room.clone()), None),
        Target::Direct { with, .. } => (None, Some(with.clone())),
    };
    let end = Frame::encode(&ServerFrame::HistoryEnd {
        room,
        with,
        before,
        after,
        count: frames.len() as u32,
    });
    Frame::concat(frames.iter().chain(std::iter::once(&end)))
}

/// The newest events of a place looked at for its newest message (`CHATHISTORY TARGETS`):
/// a place whose newest message is older than these is not listed.
const TARGETS_DEPTH: usize = 64;

impl Hub {
    /// The member's rooms and (for an account) direct conversations whose newest message
    /// was recorded between the two times (both left out), the `limit` oldest of them,
    /// oldest first; handed to `reply` once read. A room's newest message is looked for in
    /// its window first, and in the log (on the blocking pool) when the window cannot
    /// tell.
    pub(super) fn targets(
        &mut self,
        conn: ConnId,
        (from, to): (u64, u64),
        limit: usize,
        reply: TargetsReply,
    ) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let durable = self.log.durable();
        let rooms: Vec<(String, StreamId, Newest)> = member
            .rooms
            .iter()
            .map(|key| {
                let known = self
                    .rooms
                    .get(key)
                    .map_or(Newest::Unknown, |room| room.newest_message(durable));
                (self.rooms.name(key).to_string(), StreamId::new(key), known)
            })
            .collect();
        let owner = member.account.then(|| member.keys.folded.clone());
        let log = self.log.clone();
        smol::unblock(move || {
            let found = latest(&*log, rooms, owner.as_deref()).map(|mut found| {
                found.retain(|place| from < place.time && place.time < to);
                found.sort_by_key(|place| place.time);
                found.truncate(limit);
                found
            });
            (reply.0)(found);
        })
        .detach();
    }
}

/// When each place's newest message was recorded: the rooms' (what their windows could
/// not tell is read from the log) and the direct conversations of `owner` (an account's
/// key, if the member is one).
fn latest(
    log: &dyn EventLog,
    rooms: Vec<(String, StreamId, Newest)>,
    owner: Option<&str>,
) -> Result<Vec<Latest>, LogError> {
    let newest_in_log = |stream: &StreamId| -> Result<Option<u64>, LogError> {
        let head = log.head(stream)?;
        let events = log.read(stream, Span::Before(head.newest + 1), TARGETS_DEPTH)?;
        Ok(events.iter().rev().find_map(|e| message_time(&e.frame)))
    };
    let mut found = Vec::new();
    for (room, stream, known) in rooms {
        let time = match known {
            Newest::Message(time) => Some(time),
            Newest::NoMessage => None,
            Newest::Unknown => newest_in_log(&stream)?,
        };
        if let Some(time) = time {
            found.push(Latest {
                room: Some(room),
                with: None,
                time,
            });
        }
    }
    if let Some(owner) = owner {
        for conversation in log.conversations(owner, usize::MAX)? {
            let stream = StreamId::direct(owner, &fold(&conversation.with));
            if let Some(time) = newest_in_log(&stream)? {
                found.push(Latest {
                    room: None,
                    with: Some(conversation.with),
                    time,
                });
            }
        }
    }
    Ok(found)
}
