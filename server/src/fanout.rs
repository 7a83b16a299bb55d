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
    /// Members that came in while events were being gathered, with how many of those
    /// events were before them (they had those in their replay): until the next push they
    /// get only what follows. In a login storm a whole batch of `joined`s is newcomers;
    /// pushing what was gathered before each of them instead cost a push to every member
    /// per login.
    joining: Vec<(ConnId, SendQueue, usize)>,
    /// Events gathered for the next push, oldest first.
    gathered: Vec<Frame>,
}

impl FanOut {
    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len() + self.joining.len()
    }

    /// Adds a member: events gathered from now on go to it too.
    pub fn add(&mut self, conn: ConnId, queue: SendQueue) {
        if self.gathered.is_empty() {
            self.members.push((conn, queue));
        } else {
            self.joining.push((conn, queue, self.gathered.len()));
        }
    }

    /// Removes a member.
    pub fn remove(&mut self, conn: ConnId) {
        if let Some(at) = self.members.iter().position(|(c, _)| *c == conn) {
            self.members.swap_remove(at);
        } else if let Some(at) = self.joining.iter().position(|(c, ..)| *c == conn) {
            self.joining.remove(at);
        }
    }

    /// Whether a connection is a member.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.conns().any(|c| c == conn)
    }

    /// The members' connections.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        let joining = self.joining.iter().map(|(c, ..)| *c);
        self.members.iter().map(|(c, _)| *c).chain(joining)
    }

    /// Moves a membership to another connection (a takeover): nobody else notices.
    pub fn replace(&mut self, old: ConnId, new: ConnId, queue: SendQueue) {
        if let Some(member) = self.members.iter_mut().find(|(c, _)| *c == old) {
            *member = (new, queue);
        } else if let Some(member) = self.joining.iter_mut().find(|(c, ..)| *c == old) {
            (member.0, member.1) = (new, queue);
        }
    }

    /// Gathers an event for the next push.
    pub fn gather(&mut self, frame: Frame) {
        self.gathered.push(frame);
    }

    /// Pushes what was gathered to every member as one buffer (a member that came in
    /// meanwhile gets what followed it). Returns the members that could not take it (their
    /// queues are over the limit): the caller closes them.
    pub fn push(&mut self) -> Vec<ConnId> {
        let mut overflowed = Vec::new();
        let joining = std::mem::take(&mut self.joining);
        // Newcomers are in the order they came (`add` appends, `remove` keeps the order),
        // so those who came at the same point are next to each other and share a suffix.
        let mut suffix: Option<(usize, Batch)> = None;
        for &(conn, ref queue, from) in &joining {
            if from == self.gathered.len() {
                continue;
            }
            if suffix.as_ref().is_none_or(|(at, _)| *at != from) {
                let rest = &self.gathered[from..];
                suffix = Some((from, Batch::new(Frame::concat(rest), rest.len())));
            }
            if let Some((_, batch)) = &suffix
                && queue.push(batch).is_err()
            {
                overflowed.push(conn);
            }
        }
        let count = self.gathered.len();
        let frame = match count {
            0 => None,
            1 => self.gathered.pop(),
            _ => {
                let frame = Frame::concat(&self.gathered);
                self.gathered.clear();
                Some(frame)
            }
        };
        if let Some(frame) = frame {
            let batch = Batch::new(frame, count);
            overflowed.extend(
                self.members
                    .iter()
                    .filter(|(_, queue)| queue.push(&batch).is_err())
                    .map(|(conn, _)| *conn),
            );
        }
        // Members like any other from now on.
        self.members
            .extend(joining.into_iter().map(|(conn, queue, _)| (conn, queue)));
        overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{QueueLimits, QueueReceiver, send_queue};

    fn queue(frames: usize) -> (SendQueue, QueueReceiver) {
        send_queue(QueueLimits {
            frames,
            bytes: 1 << 20,
        })
    }

    fn event(n: u32) -> Frame {
        Frame::from_encoded(format!("{{\"type\":\"ping\",\"token\":\"{n}\"}}\n").as_bytes())
    }

    fn tokens(pushes: &[String]) -> Vec<Vec<u32>> {
        pushes
            .iter()
            .map(|push| {
                push.lines()
                    .map(|line| {
                        let digits: String = line.chars().filter(char::is_ascii_digit).collect();
                        digits.parse().expect("a numbered event")
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_member_that_comes_in_while_events_gather_gets_only_what_follows_it() {
        let mut fanout = FanOut::default();
        let (old, old_rx) = queue(100);
        fanout.add(1, old);
        fanout.gather(event(1));
        let (first, first_rx) = queue(100);
        fanout.add(2, first);
        fanout.gather(event(2));
        let (second, second_rx) = queue(100);
        let (same, same_rx) = queue(100);
        fanout.add(3, second);
        fanout.add(4, same);
        fanout.gather(event(3));
        let (last, last_rx) = queue(100);
        fanout.add(5, last);
        assert_eq!(fanout.len(), 5);
        assert!(fanout.contains(5));
        assert!(fanout.push().is_empty());
        assert_eq!(tokens(&old_rx.queued()), [vec![1, 2, 3]], "one push of all");
        assert_eq!(tokens(&first_rx.queued()), [vec![2, 3]]);
        assert_eq!(tokens(&second_rx.queued()), [vec![3]]);
        assert_eq!(tokens(&same_rx.queued()), [vec![3]]);
        assert!(last_rx.queued().is_empty(), "nothing came after it");
        // From now on all of them are members like any other.
        fanout.gather(event(4));
        assert!(fanout.push().is_empty());
        for rx in [&old_rx, &first_rx, &second_rx, &same_rx, &last_rx] {
            assert_eq!(tokens(&rx.queued()), [vec![4]]);
        }
    }

    #[test]
    fn a_newcomer_can_leave_be_replaced_or_overflow_before_the_push() {
        let mut fanout = FanOut::default();
        let (old, _old_rx) = queue(100);
        fanout.add(1, old);
        fanout.gather(event(1));
        let (gone, gone_rx) = queue(100);
        fanout.add(2, gone);
        let (small, _small_rx) = queue(1);
        fanout.add(3, small);
        let (replaced, replaced_rx) = queue(100);
        fanout.add(4, replaced);
        let (taker, taker_rx) = queue(100);
        fanout.replace(4, 5, taker);
        fanout.remove(2);
        assert!(!fanout.contains(2) && !fanout.contains(4) && fanout.contains(5));
        fanout.gather(event(2));
        fanout.gather(event(3));
        assert_eq!(fanout.push(), [3], "two events do not fit a queue of one");
        assert!(gone_rx.queued().is_empty());
        assert!(replaced_rx.queued().is_empty());
        assert_eq!(tokens(&taker_rx.queued()), [vec![2, 3]]);
    }
}
