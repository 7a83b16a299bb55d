//! The fan-out of a room: the send queues of its members, and one push per member per
//! batch of events, encoded once. A member whose queue overflows is reported, never
//! waited for.

use chat_shared::Frame;

use crate::queue::{Batch, SendQueue};
use crate::registry::ConnId;

/// The members of a room and what is about to go to them.
#[derive(Debug, Default)]
pub struct FanOut {
    members: Vec<(ConnId, SendQueue)>,
    /// Events gathered for the next push, oldest first.
    gathered: Vec<Frame>,
}

impl FanOut {
    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Adds a member: events gathered from now on go to it too.
    pub fn add(&mut self, conn: ConnId, queue: SendQueue) {
        self.members.push((conn, queue));
    }

    /// Removes a member.
    pub fn remove(&mut self, conn: ConnId) {
        if let Some(at) = self.members.iter().position(|(c, _)| *c == conn) {
            self.members.swap_remove(at);
        }
    }

    /// Whether a connection is a member.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.members.iter().any(|(c, _)| *c == conn)
    }

    /// The members' connections.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members.iter().map(|(c, _)| *c)
    }

    /// Moves a membership to another connection (a takeover): nobody else notices.
    pub fn replace(&mut self, old: ConnId, new: ConnId, queue: SendQueue) {
        if let Some(member) = self.members.iter_mut().find(|(c, _)| *c == old) {
            *member = (new, queue);
        }
    }

    /// Gathers an event for the next push.
    pub fn gather(&mut self, frame: Frame) {
        self.gathered.push(frame);
    }

    /// Pushes what was gathered to every member as one buffer. Returns the members that
    /// could not take it (their queues are over the limit): the caller closes them.
    pub fn push(&mut self) -> Vec<ConnId> {
        let count = self.gathered.len();
        let frame = match count {
            0 => return Vec::new(),
            1 => self.gathered.pop().expect("one gathered event"),
            _ => {
                let frame = Frame::concat(&self.gathered);
                self.gathered.clear();
                frame
            }
        };
        let batch = Batch::new(frame, count);
        self.members
            .iter()
            .filter(|(_, queue)| queue.push(&batch).is_err())
            .map(|(conn, _)| *conn)
            .collect()
    }
}
