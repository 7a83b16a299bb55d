//! History: a room's or a conversation's events read from the log on the blocking pool,
//! never on the hub's task, and answered with `history_end`.

use std::sync::Arc;

use chat_shared::{ErrorCode, Frame, ServerFrame};

use crate::log::state::KeptState;
use crate::log::{EventLog, Span, StreamId, for_reader};
use crate::queue::SendQueue;

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
    pub(super) span: Option<Span>,
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
            span,
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
            let read = match span {
                Some(span) => Ok(span),
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
