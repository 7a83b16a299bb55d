//! One room: its timeline, who is in it, and the posts the user sent there that the
//! server has not acknowledged yet.

use chat_shared::{LeaveReason, ServerFrame, fold};

use super::members::Members;
use super::moderation::{Moderation, put_out_words};
use super::timeline::{ChangeKind, EventEntry, Pos, Timeline};

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
    /// An action (`/me`).
    pub me: bool,
    /// Refused by the server, with why.
    pub failed: Option<String>,
}

/// A room as the client knows it.
#[derive(Debug, Clone)]
pub struct Room {
    /// Its name as the server spells it (shown as `#name`).
    pub name: String,
    /// What happened, in order.
    pub timeline: Timeline,
    /// Who is in (as of the last answer from the server and the live events since).
    pub members: Members,
    /// The user's posts not yet echoed, oldest first.
    pub pending: Vec<Pending>,
    /// Its topic, roles, settings, bans, mutes and invitations.
    pub moderation: Moderation,
    /// Why the user is no longer in it ("You were removed from #rust by alice"): the room
    /// stays, greyed, until the user joins it again or closes it.
    pub out: Option<String>,
    /// Events up to this seq are replay: they do not change who is in, and never notify.
    replay_until: u64,
    /// The replay resumes after this seq (what the client had seen): replayed events
    /// after it are new to the user; without it, a replay is old conversation.
    resumed_after: Option<u64>,
    /// The newest seq seen (shown or not).
    last_seq: u64,
    /// The server answered for the room since the last login (its `room`, or the
    /// `welcome` for the default room).
    answered: bool,
    /// Who said they are typing, and when (ms since the Unix epoch, the client's clock).
    typing: Vec<(String, u64)>,
}

/// How long "… is typing" shows after the last `typing`, in ms.
pub const TYPING_SHOWS_MS: u64 = 5000;

/// What an event was to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Where it went in the timeline, if it is shown.
    pub pos: Option<Pos>,
    /// A message from someone else that the user has not seen yet (live, or replayed
    /// after where the user left off).
    pub new_message: bool,
    /// It mentions the user.
    pub mention: bool,
    /// It arrived live, not in a replay.
    pub live: bool,
}

impl Room {
    /// An empty room called `name` for the user `me`, where the user had seen events up
    /// to `last_seq` (0: none) in an earlier run.
    pub fn new(me: &str, name: &str, last_seq: u64) -> Self {
        Self {
            name: name.to_string(),
            timeline: Timeline::new(me, SCROLLBACK),
            members: Members::default(),
            pending: Vec::new(),
            moderation: Moderation::default(),
            out: None,
            replay_until: 0,
            resumed_after: None,
            last_seq,
            answered: false,
            typing: Vec::new(),
        }
    }

    /// The account's read marker from the server: what comes after it in the replay is
    /// new to the user, also on a device that never showed the room.
    pub fn read_up_to(&mut self, read: u64) {
        if read > self.resumed_after.unwrap_or(0) {
            self.resumed_after = Some(read);
        }
    }

    /// Someone said they are typing, at `now` (ms).
    pub fn typing_from(&mut self, name: &str, now: u64) {
        let key = fold(name);
        self.typing.retain(|(who, _)| fold(who) != key);
        self.typing.push((name.to_string(), now));
    }

    /// Who is typing at `now` (ms): those who said so within the last 5 s and have not
    /// posted since, in the order they started.
    pub fn typists(&self, now: u64) -> Vec<&str> {
        self.typing
            .iter()
            .filter(|(_, at)| now.saturating_sub(*at) < TYPING_SHOWS_MS)
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Forgets who stopped typing by `now` (ms); whether anyone still is.
    pub fn forget_typing(&mut self, now: u64) -> bool {
        self.typing
            .retain(|(_, at)| now.saturating_sub(*at) < TYPING_SHOWS_MS);
        !self.typing.is_empty()
    }

    /// Logged in (again), as `me`: the room waits for the server's answer. With
    /// `new_epoch`, the seqs seen so far mean nothing now.
    pub fn logged_in(&mut self, me: &str, new_epoch: bool) {
        self.timeline.set_me(me);
        self.answered = false;
        if new_epoch {
            self.timeline.logged_in(0, true);
            self.last_seq = 0;
        }
    }

    /// The server's answer for the room (a `room` frame, or the `welcome` for the default
    /// room): who is in, its newest seq (later ones are live) and the oldest it holds.
    /// Returns whether events were lost between the last one seen and the oldest held.
    pub fn answered(&mut self, users: &[String], seq: u64, oldest: u64) -> bool {
        self.answered = true;
        self.out = None;
        self.timeline.logged_in(oldest, false);
        self.members = Members::from_names(users.iter().map(String::as_str));
        self.replay_until = seq;
        self.resumed_after = (self.last_seq > 0).then_some(self.last_seq);
        self.last_seq > 0 && oldest > 0 && self.last_seq + 1 < oldest
    }

    /// The answer for the room stated its moderation too (a `room` frame).
    pub fn moderation_answered(&mut self, moderation: Moderation) {
        self.moderation = moderation;
    }

    /// Whether the server answered for the room since the last login.
    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// The newest seq seen.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Whether the replay of the last answer has arrived.
    pub fn replayed(&self) -> bool {
        self.answered && self.last_seq >= self.replay_until
    }

    /// A room event from the server (live or replayed): where it went and what it was to
    /// the user.
    pub fn event(&mut self, frame: ServerFrame) -> Seen {
        let seq = frame.seq().unwrap_or(0);
        let live = seq > self.replay_until;
        let new = live || self.resumed_after.is_some_and(|after| seq > after);
        self.last_seq = self.last_seq.max(seq);
        if let ServerFrame::Message { id: Some(id), .. } = &frame {
            self.pending.retain(|p| &p.id != id);
        }
        self.moderation.apply(&frame);
        self.timeline.change(&frame);
        match &frame {
            // Their message: they are no longer typing.
            ServerFrame::Message { from, .. } => {
                let key = fold(from);
                self.typing.retain(|(name, _)| fold(name) != key);
            }
            ServerFrame::Left {
                name,
                reason: LeaveReason::Removed | LeaveReason::Banned,
                ..
            } if live => {
                self.members.remove(name);
                if fold(name) == fold(self.timeline.me()) {
                    self.out = put_out_words(&self.name, &frame);
                }
            }
            _ => {}
        }
        let Some(event) = self.timeline.entry_of(frame) else {
            return Seen {
                pos: None,
                new_message: false,
                mention: false,
                live,
            };
        };
        let mut event = event;
        let (new_message, mention) = match &mut event {
            EventEntry::Message(message) => (new && !message.mine, message.mention),
            EventEntry::Change(change) => {
                // A join of someone the room still has (no `left` came between, or the
                // member list has them live) is their connection coming back.
                let still_in = match self.timeline.was_in(&change.name) {
                    Some(was_in) => was_in,
                    None => live && self.members.contains(&change.name),
                };
                if change.kind == ChangeKind::Joined && still_in {
                    change.kind = ChangeKind::Returned;
                }
                if live {
                    if change.kind.is_in() {
                        self.members.insert(&change.name);
                    } else {
                        self.members.remove(&change.name);
                    }
                }
                (false, false)
            }
            EventEntry::Step(_) => (false, false),
        };
        Seen {
            pos: self.timeline.push_event(event),
            new_message,
            mention: new_message && mention,
            live,
        }
    }

    /// The answer to a history request for the events before `before`.
    pub fn history(&mut self, before: u64, frames: Vec<ServerFrame>) -> usize {
        let events = frames
            .into_iter()
            .filter_map(|frame| self.timeline.entry_of(frame))
            .collect();
        self.timeline.prepend_history(before, events)
    }

    /// The user posted `text` under `id` (an action with `me`).
    pub fn post(&mut self, id: String, text: String, me: bool) {
        self.pending.push(Pending {
            id,
            text,
            me,
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
    use chat_shared::LeaveReason;

    fn message(seq: u64, from: &str, text: &str) -> ServerFrame {
        ServerFrame::Message {
            with: None,
            room: None,
            seq,
            time: 0,
            from: from.into(),
            text: text.into(),
            id: None,
            me: false,
            deleted: false,
            reply_to: None,
            edited: None,
            reactions: Vec::new(),
        }
    }

    #[test]
    fn replayed_events_do_not_change_who_is_in() {
        let mut room = Room::new("me", "general", 0);
        room.answered(&["me".into(), "Bob".into(), "alice".into()], 10, 1);
        room.event(ServerFrame::Joined {
            room: None,
            seq: 11,
            time: 0,
            name: "carol".into(),
        });
        room.event(ServerFrame::Left {
            room: None,
            seq: 12,
            time: 0,
            name: "Bob".into(),
            reason: LeaveReason::Timeout,
            by: None,
            message: None,
        });
        room.event(ServerFrame::Left {
            room: None,
            seq: 3,
            time: 0,
            name: "alice".into(),
            reason: LeaveReason::Quit,
            by: None,
            message: None,
        });
        assert_eq!(
            room.members.iter().collect::<Vec<_>>(),
            ["alice", "carol", "me"]
        );
    }

    fn joined(seq: u64, name: &str) -> ServerFrame {
        ServerFrame::Joined {
            room: None,
            seq,
            time: 0,
            name: name.into(),
        }
    }

    fn summary(room: &Room) -> String {
        match room.timeline.last() {
            Some((_, crate::model::Entry::Presence(run))) => run.summary(),
            other => panic!("a presence run last, not {other:?}"),
        }
    }

    #[test]
    fn a_join_without_a_leave_before_it_is_a_reconnection() {
        let mut room = Room::new("me", "general", 0);
        room.answered(&["me".into(), "dave".into()], 10, 1);
        // Seen joining, then joining again with no `left` between (the server restarted).
        room.event(joined(11, "bob"));
        room.event(message(12, "bob", "hi"));
        room.event(joined(13, "bob"));
        assert_eq!(summary(&room), "bob reconnected");
        // Never seen joining, but in the room when it was entered.
        room.event(joined(14, "dave"));
        assert_eq!(summary(&room), "bob and dave reconnected");
        // A real return stays one.
        room.event(message(15, "bob", "back"));
        room.event(ServerFrame::Left {
            room: None,
            seq: 16,
            time: 0,
            name: "bob".into(),
            reason: LeaveReason::Quit,
            by: None,
            message: None,
        });
        room.event(joined(17, "bob"));
        room.event(joined(18, "erin"));
        assert_eq!(summary(&room), "bob left and came back, erin joined");
        assert_eq!(
            room.members.iter().collect::<Vec<_>>(),
            ["bob", "dave", "erin", "me"]
        );
    }

    #[test]
    fn what_is_new_to_the_user() {
        // A first visit: the replay is old conversation, live messages are new.
        let mut room = Room::new("me", "rust", 0);
        room.answered(&[], 5, 1);
        assert!(!room.event(message(4, "bob", "old")).new_message);
        let live = room.event(message(6, "bob", "hi me"));
        assert!(live.new_message && live.mention && live.live);
        assert!(!room.event(message(7, "me", "mine")).new_message);
        // Back after a while: what was replayed after where the user left off is new,
        // but it was not live.
        room.logged_in("me", false);
        room.answered(&[], 9, 1);
        let missed = room.event(message(8, "bob", "while you were away"));
        assert!(missed.new_message && !missed.live);
    }

    #[test]
    fn the_echo_settles_a_pending_post() {
        let mut room = Room::new("me", "general", 0);
        room.answered(&["me".into()], 0, 0);
        room.post("p1".into(), "hello".into(), false);
        room.post("p2".into(), "again".into(), false);
        assert!(room.post_failed("p2", "too long".into()));
        room.event(ServerFrame::Message {
            with: None,
            me: false,
            room: None,
            seq: 1,
            time: 0,
            from: "me".into(),
            text: "hello".into(),
            id: Some("p1".into()),
            deleted: false,
            reply_to: None,
            edited: None,
            reactions: Vec::new(),
        });
        assert_eq!(room.pending.len(), 1);
        assert_eq!(room.pending[0].failed.as_deref(), Some("too long"));
        room.dismiss("p2");
        assert!(room.pending.is_empty());
    }
}
