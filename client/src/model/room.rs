//! One room: its timeline, who is in it, and the posts the user sent there that the
//! server has not acknowledged yet.

use chat_shared::ServerFrame;

use super::timeline::{ChangeKind, EventEntry, Timeline};
use super::{Members, Pos};
use crate::connection::Session;

/// Entries a room keeps in memory; older ones are dropped (and can be fetched again from
/// the server's history).
pub const SCROLLBACK: usize = 100_000;

/// A post waiting for its echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// Refused by the server, with why.
    pub failed: Option<String>,
}

/// A room as the client knows it.
#[derive(Debug, Clone)]
pub struct Room {
    /// What happened, in order.
    pub timeline: Timeline,
    /// Who is in (as of the last login and the live events since).
    pub members: Members,
    /// The user's posts not yet echoed, oldest first.
    pub pending: Vec<Pending>,
    /// Events up to this seq are replay: they do not change who is in.
    replay_until: u64,
    /// The newest seq seen (shown or not).
    last_seq: u64,
}

impl Room {
    /// An empty room for the user `me`.
    pub fn new(me: &str) -> Self {
        Self {
            timeline: Timeline::new(me, SCROLLBACK),
            members: Members::default(),
            pending: Vec::new(),
            replay_until: 0,
            last_seq: 0,
        }
    }

    /// Logged in (again): who is in comes from the welcome.
    pub fn logged_in(&mut self, session: &Session) {
        self.timeline.set_me(&session.name);
        self.timeline.logged_in(session.oldest, session.new_epoch);
        self.members = Members::from_names(session.users.iter().map(String::as_str));
        self.replay_until = session.seq;
        if session.new_epoch {
            self.last_seq = 0;
        }
    }

    /// Whether the replay of the last login has arrived.
    pub fn replayed(&self) -> bool {
        self.last_seq >= self.replay_until
    }

    /// A room event from the server (live or replayed). Returns where it went, if it is
    /// shown.
    pub fn event(&mut self, frame: ServerFrame) -> Option<Pos> {
        let seq = frame.seq();
        let live = seq.is_some_and(|seq| seq > self.replay_until);
        self.last_seq = self.last_seq.max(seq.unwrap_or(0));
        if let ServerFrame::Message { id: Some(id), .. } = &frame {
            self.pending.retain(|p| &p.id != id);
        }
        let event = self.timeline.entry_of(frame)?;
        if live && let EventEntry::Change(change) = &event {
            match change.kind {
                ChangeKind::Joined => self.members.insert(&change.name),
                ChangeKind::Left(_) => self.members.remove(&change.name),
            }
        }
        self.timeline.push_event(event)
    }

    /// The answer to a history request for the events before `before`.
    pub fn history(&mut self, before: u64, frames: Vec<ServerFrame>) -> usize {
        let events = frames
            .into_iter()
            .filter_map(|frame| self.timeline.entry_of(frame))
            .collect();
        self.timeline.prepend_history(before, events)
    }

    /// The user posted `text` under `id`.
    pub fn post(&mut self, id: String, text: String) {
        self.pending.push(Pending {
            id,
            text,
            failed: None,
        });
    }

    /// The server refused the post `id`; returns whether it was one of ours.
    pub fn post_failed(&mut self, id: &str, why: String) -> bool {
        match self.pending.iter_mut().find(|p| p.id == id) {
            Some(post) => {
                post.failed = Some(why);
                true
            }
            None => false,
        }
    }

    /// Forgets a refused post.
    pub fn dismiss(&mut self, id: &str) {
        self.pending.retain(|p| p.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::{LeaveReason, Limits};

    fn session(seq: u64, users: &[&str]) -> Session {
        Session {
            name: "me".into(),
            users: users.iter().map(ToString::to_string).collect(),
            seq,
            oldest: 1,
            epoch: "e".into(),
            limits: Limits::default(),
            resumed: false,
            missed: false,
            new_epoch: false,
        }
    }

    #[test]
    fn replayed_events_do_not_change_who_is_in() {
        let mut room = Room::new("me");
        room.logged_in(&session(10, &["me", "Bob", "alice"]));
        room.event(ServerFrame::Joined {
            seq: 11,
            time: 0,
            name: "carol".into(),
        });
        room.event(ServerFrame::Left {
            seq: 12,
            time: 0,
            name: "Bob".into(),
            reason: LeaveReason::Timeout,
        });
        room.event(ServerFrame::Left {
            seq: 3,
            time: 0,
            name: "alice".into(),
            reason: LeaveReason::Quit,
        });
        assert_eq!(
            room.members.iter().collect::<Vec<_>>(),
            ["alice", "carol", "me"]
        );
    }

    #[test]
    fn the_echo_settles_a_pending_post() {
        let mut room = Room::new("me");
        room.logged_in(&session(0, &["me"]));
        room.post("p1".into(), "hello".into());
        room.post("p2".into(), "again".into());
        assert!(room.post_failed("p2", "too long".into()));
        room.event(ServerFrame::Message {
            seq: 1,
            time: 0,
            from: "me".into(),
            text: "hello".into(),
            id: Some("p1".into()),
        });
        assert_eq!(room.pending.len(), 1);
        assert_eq!(room.pending[0].failed.as_deref(), Some("too long"));
        room.dismiss("p2");
        assert!(room.pending.is_empty());
    }
}
