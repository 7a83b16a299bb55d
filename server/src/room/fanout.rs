//! The fan-out of a room: the send queues of its members, and the room's recorded events
//! on their way to them, encoded once per push.
//!
//! A write costs about the same whether it carries one event or twenty (most of it is the
//! kernel's send path), so a busy room writes to each member at most once a window. In a
//! big room that is a pass over a thousand sockets or more; made at once, it delays the
//! members at its end by the whole pass on top of the window, and every post waiting to
//! be read with them. So the members of a big room are split into groups of about
//! [`GROUP`], each pushed once a window on a beat of its own, the beats spread over the
//! window: every member still gets one write a window, and an event waits at most a
//! window and one group's pass.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chat_shared::Frame;

use crate::queue::{Batch, SendQueue};
use crate::registry::ConnId;

/// Members a group aims at: a pass over them takes under a millisecond.
const GROUP: usize = 128;

/// The most groups a room has (its batches are recorded this many times a window); the
/// groups of a bigger room are bigger.
const MAX_GROUPS: usize = 32;

/// The most events one push carries: a group owed this many is pushed at once, whatever
/// its beat, so that a push stays well under `--send-queue`.
const MAX_PUSH: usize = 256;

/// The members of a room and what is on its way to them.
#[derive(Debug, Default)]
pub struct FanOut {
    groups: Vec<Group>,
    /// Members not in a group yet, each with the number of the first event it is owed
    /// (it had the ones before in its replay). They go into the next group pushed.
    joining: Vec<Joining>,
    /// Recorded events some member is still owed, oldest first; `recent[0]` is event
    /// number `first`.
    recent: VecDeque<Frame>,
    first: u64,
}

/// Members pushed together, on one beat.
#[derive(Debug)]
struct Group {
    members: Vec<(ConnId, SendQueue)>,
    /// The number of the first event the group is owed.
    next: u64,
    /// When it was last pushed to (a window later it is due again).
    beat: Instant,
}

#[derive(Debug)]
struct Joining {
    conn: ConnId,
    queue: SendQueue,
    from: u64,
}

/// What one push of a group found: the members whose queues were over their limit.
type Overflowed = Vec<ConnId>;

impl FanOut {
    /// How many members.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.members.len()).sum::<usize>() + self.joining.len()
    }

    /// The number the next recorded event gets.
    fn end(&self) -> u64 {
        self.first + self.recent.len() as u64
    }

    /// Adds a member: events gathered from now on go to it (it had the older ones in its
    /// replay).
    pub fn add(&mut self, conn: ConnId, queue: SendQueue) {
        let from = self.end();
        self.joining.push(Joining { conn, queue, from });
    }

    /// A member has `ahead` events beyond the last one gathered (it resumed with a `since`
    /// this cluster node has not caught up with yet): it is owed only what follows them,
    /// and waits outside the groups until the room is there.
    pub fn has_ahead(&mut self, conn: ConnId, ahead: u64) {
        if ahead == 0 {
            return;
        }
        if let Some((queue, _)) = self.take(conn) {
            let from = self.end().saturating_add(ahead);
            self.joining.push(Joining { conn, queue, from });
            self.trim();
        }
    }

    /// Removes a member; what it was still owed is dropped with it.
    pub fn remove(&mut self, conn: ConnId) {
        self.take(conn);
        self.trim();
    }

    /// Removes a member after pushing it what it is owed: a part's `left` is its answer.
    /// Fails if that did not fit its queue.
    pub fn remove_after_push(&mut self, conn: ConnId) -> Result<(), ConnId> {
        let Some((queue, from)) = self.take(conn) else {
            return Ok(());
        };
        let overflowed = self.push_from(from, [(conn, &queue)]);
        self.trim();
        overflowed.into_iter().next().map_or(Ok(()), Err)
    }

    /// Takes a member out, with the number of the first event it is owed.
    fn take(&mut self, conn: ConnId) -> Option<(SendQueue, u64)> {
        if let Some(at) = self.joining.iter().position(|j| j.conn == conn) {
            let joining = self.joining.remove(at);
            return Some((joining.queue, joining.from));
        }
        let (g, at) = self.find(conn)?;
        let group = &mut self.groups[g];
        let (_, queue) = group.members.swap_remove(at);
        let next = group.next;
        if group.members.is_empty() {
            self.groups.swap_remove(g);
        }
        Some((queue, next))
    }

    /// Where a member is in the groups.
    fn find(&self, conn: ConnId) -> Option<(usize, usize)> {
        self.groups.iter().enumerate().find_map(|(g, group)| {
            let at = group.members.iter().position(|(c, _)| *c == conn)?;
            Some((g, at))
        })
    }

    /// Whether a connection is a member.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.conns().any(|c| c == conn)
    }

    /// The members' connections.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        let joining = self.joining.iter().map(|j| j.conn);
        let grouped = self
            .groups
            .iter()
            .flat_map(|g| g.members.iter().map(|(c, _)| *c));
        grouped.chain(joining)
    }

    /// Moves a membership to another connection (a takeover): nobody else notices. With
    /// `caught_up`, the new connection's replay holds every recorded event, so it is owed
    /// only what follows; otherwise it is owed what the old one was.
    pub fn replace(&mut self, old: ConnId, new: ConnId, queue: SendQueue, caught_up: bool) {
        if let Some((_, from)) = self.take(old) {
            let from = if caught_up { self.end() } else { from };
            self.joining.push(Joining {
                conn: new,
                queue,
                from,
            });
            self.trim();
        }
    }

    /// Gathers a recorded event for the members.
    pub fn gather(&mut self, frame: Frame) {
        if self.len() == 0 {
            // Nobody to owe it to.
            self.first += 1;
        } else {
            self.recent.push_back(frame);
        }
    }

    /// Whether some member is owed an event.
    pub fn owes(&self) -> bool {
        let end = self.end();
        self.groups.iter().any(|g| g.next < end) || self.joining.iter().any(|j| j.from < end)
    }

    /// When the next beat of a group comes, for members written to at most once a
    /// `window`: the room records what waits then, so that the group pushed gets it.
    pub fn next_beat(&self, window: Duration) -> Option<Instant> {
        self.groups.iter().map(|g| g.beat + window).min()
    }

    /// When the next push is due, for members written to at most once a `window`.
    pub fn next_due(&self, now: Instant, window: Duration) -> Option<Instant> {
        let end = self.end();
        let groups = self
            .groups
            .iter()
            .filter(|g| g.next < end)
            .map(|g| g.due(end, window));
        groups.chain(self.stranded().then_some(now)).min()
    }

    /// Whether newcomers are owed events no group is: they will not go with a group's
    /// push, so they go at once.
    fn stranded(&self) -> bool {
        let end = self.end();
        !self.groups.iter().any(|g| g.next < end) && self.joining.iter().any(|j| j.from < end)
    }

    /// Pushes to every group whose beat came (or that is owed a full push) what it is
    /// owed, as one buffer, and the newcomers theirs; they join a group pushed now.
    /// Returns the members whose queues were over their limit: the caller closes them.
    pub fn push_due(&mut self, now: Instant, window: Duration) -> Overflowed {
        let end = self.end();
        let mut overflowed = Vec::new();
        let mut pushed = None;
        let mut off_beat = Vec::new();
        for g in 0..self.groups.len() {
            let group = &self.groups[g];
            if group.next >= end || group.due(end, window) > now {
                continue;
            }
            // A group whose beat came less than a window ago keeps it; one that was owed
            // nothing for longer starts a new one.
            let on_beat = now < group.beat + window * 2;
            let members = group.members.iter().map(|(c, q)| (*c, q));
            overflowed.extend(self.push_from(group.next, members));
            let group = &mut self.groups[g];
            group.next = end;
            if on_beat {
                group.beat = (group.beat + window).min(now);
            } else {
                off_beat.push(g);
            }
            pushed.get_or_insert(g);
        }
        // A quiet room pushes all its groups at once when an event comes; from then on
        // their beats are spread over the window again.
        for at in 0..off_beat.len() {
            self.groups[off_beat[at]].beat = self.free_beat(now, window, &off_beat[at..]);
        }
        // A group left small in a room that has more groups than it wants is taken apart:
        // its members are placed like newcomers.
        if let Some(g) = pushed {
            let (wanted, size) = self.shape();
            if self.groups.len() > wanted && self.groups[g].members.len() < size / 2 {
                let group = self.groups.swap_remove(g);
                let members = group.members.into_iter();
                self.joining.extend(members.map(|(conn, queue)| Joining {
                    conn,
                    queue,
                    from: end,
                }));
                pushed = None;
            }
        }
        overflowed.extend(self.place_newcomers(pushed, now, window));
        self.split_grown(now, window);
        self.trim();
        overflowed
    }

    /// Splits groups grown past their size while the room wants more groups (a login
    /// storm puts hundreds of newcomers in one group): a group that has every event can
    /// hand members to a new group on a beat of its own.
    fn split_grown(&mut self, now: Instant, window: Duration) {
        let (wanted, size) = self.shape();
        let end = self.end();
        while self.groups.len() < wanted {
            let grown = (0..self.groups.len())
                .filter(|g| self.groups[*g].next == end && self.groups[*g].members.len() > size)
                .max_by_key(|g| self.groups[*g].members.len());
            let Some(g) = grown else {
                break;
            };
            let members = self.groups[g].members.split_off(size);
            let beat = self.free_beat(now, window, &[]);
            self.groups.push(Group {
                members,
                next: end,
                beat,
            });
        }
    }

    /// How many groups a room of this many members wants, and how big each.
    fn shape(&self) -> (usize, usize) {
        let len = self.len().max(1);
        let groups = len.div_ceil(GROUP).clamp(1, MAX_GROUPS);
        (groups, len.div_ceil(groups))
    }

    /// Pushes newcomers what they are owed and puts them in a group that has every event:
    /// the one pushed now (`pushed`), as many as it has room for, the others in a new
    /// group while the room wants more groups, else they wait for the next push (if one
    /// is coming). With no group pushed, all of them go to the smallest group that has
    /// every event, if any.
    fn place_newcomers(
        &mut self,
        pushed: Option<usize>,
        now: Instant,
        window: Duration,
    ) -> Overflowed {
        // Those ahead of the room (rare: a cluster node behind a resuming member) wait
        // until it has caught up with them.
        let end = self.end();
        if !self.joining.iter().any(|j| j.from > end) {
            return self.place_ready(pushed, now, window);
        }
        let (ahead, ready) = std::mem::take(&mut self.joining)
            .into_iter()
            .partition(|j| j.from > end);
        self.joining = ready;
        let overflowed = self.place_ready(pushed, now, window);
        self.joining.extend(ahead);
        overflowed
    }

    /// [`Self::place_newcomers`] for newcomers owed events from the room's end or before.
    fn place_ready(&mut self, pushed: Option<usize>, now: Instant, window: Duration) -> Overflowed {
        let end = self.end();
        let target = pushed.or_else(|| {
            let current = (0..self.groups.len()).filter(|g| self.groups[*g].next == end);
            current.min_by_key(|g| self.groups[*g].members.len())
        });
        if self.joining.is_empty() || (target.is_none() && !self.groups.is_empty()) {
            return Vec::new();
        }
        let (wanted, size) = self.shape();
        let room = target.map_or(0, |g| size.saturating_sub(self.groups[g].members.len()));
        let new_group = target.is_none() || self.groups.len() < wanted;
        // Those left wait only for a push that will come.
        let later = self.groups.iter().any(|g| g.next < end);
        let going = if new_group || pushed.is_none() || !later {
            self.joining.len()
        } else {
            room.min(self.joining.len())
        };
        let waiting = self.joining.split_off(going);
        let joining = std::mem::replace(&mut self.joining, waiting);
        let mut overflowed = Vec::new();
        // Newcomers are in the order they came (`add` appends, `remove` keeps the order),
        // so those who came at the same point are next to each other and share a suffix.
        for same in joining.chunk_by(|a, b| a.from == b.from) {
            let members = same.iter().map(|j| (j.conn, &j.queue));
            overflowed.extend(self.push_from(same[0].from, members));
        }
        let mut members = joining.into_iter().map(|j| (j.conn, j.queue));
        if let Some(g) = target {
            let fit = if new_group { room } else { usize::MAX };
            self.groups[g].members.extend(members.by_ref().take(fit));
        }
        let rest: Vec<(ConnId, SendQueue)> = members.collect();
        if !rest.is_empty() {
            let beat = self.free_beat(now, window, &[]);
            self.groups.push(Group {
                members: rest,
                next: end,
                beat,
            });
        }
        overflowed
    }

    /// A new beat for a group: in the middle of the longest stretch of the window without
    /// one of the other groups' (all but `except`); a window from now for the first.
    fn free_beat(&self, now: Instant, window: Duration, except: &[usize]) -> Instant {
        let span = window.as_nanos().max(1);
        let mut phases: Vec<u128> = (0..self.groups.len())
            .filter(|g| !except.contains(g))
            .map(|g| {
                let due = self.groups[g].beat + window;
                due.saturating_duration_since(now).as_nanos() % span
            })
            .collect();
        if phases.is_empty() {
            return now;
        }
        phases.sort_unstable();
        let wrap = phases[0] + span;
        let (from, gap) = phases
            .iter()
            .zip(phases.iter().skip(1).chain([&wrap]))
            .map(|(a, b)| (*a, b - a))
            .max_by_key(|(_, gap)| *gap)
            .unwrap_or((0, span));
        // Due in (0, window]: never at once.
        let phase = match (from + gap / 2) % span {
            0 => span,
            phase => phase,
        };
        let due = Duration::from_nanos(u64::try_from(phase).unwrap_or(u64::MAX));
        (now + due).checked_sub(window).unwrap_or(now)
    }

    /// Pushes events `from` to the end, as one buffer, to `members`; returns those whose
    /// queues were over their limit.
    fn push_from<'a>(
        &self,
        from: u64,
        members: impl IntoIterator<Item = (ConnId, &'a SendQueue)>,
    ) -> Overflowed {
        let skip = usize::try_from(from.saturating_sub(self.first)).unwrap_or(usize::MAX);
        let count = self.recent.len().saturating_sub(skip);
        let batch = match count {
            0 => return Vec::new(),
            1 => Batch::new(self.recent[skip].clone(), 1),
            _ => Batch::new(Frame::concat(self.recent.range(skip..)), count),
        };
        members
            .into_iter()
            .filter(|(_, queue)| queue.push(&batch).is_err())
            .map(|(conn, _)| conn)
            .collect()
    }

    /// Forgets the events every member has.
    fn trim(&mut self) {
        let end = self.end();
        let owed = self.groups.iter().map(|g| g.next);
        let oldest = owed
            .chain(self.joining.iter().map(|j| j.from))
            .min()
            .unwrap_or(end);
        while self.first < oldest && self.recent.pop_front().is_some() {
            self.first += 1;
        }
        if self.recent.is_empty() {
            self.first = end;
        }
    }
}

impl Group {
    /// When the group is due, owed events up to `end`: a window after its last push, at
    /// once when it is owed a full push.
    fn due(&self, end: u64, window: Duration) -> Instant {
        if end - self.next >= MAX_PUSH as u64 {
            self.beat
        } else {
            self.beat + window
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{QueueLimits, QueueReceiver, send_queue};
    use proptest::prelude::*;

    const WINDOW: Duration = Duration::from_millis(10);

    fn queue(frames: usize) -> (SendQueue, QueueReceiver) {
        send_queue(QueueLimits {
            frames,
            bytes: 1 << 20,
        })
    }

    fn event(n: u32) -> Frame {
        Frame::from_encoded(format!("{{\"type\":\"ping\",\"token\":\"{n}\"}}\n").as_bytes())
    }

    /// The events of each push, by number.
    fn pushes(rx: &QueueReceiver) -> Vec<Vec<u32>> {
        rx.queued()
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
        let now = Instant::now();
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
        assert_eq!(
            fanout.next_due(now, WINDOW),
            Some(now),
            "no group yet: at once"
        );
        assert!(fanout.push_due(now, WINDOW).is_empty());
        assert_eq!(pushes(&old_rx), [vec![1, 2, 3]], "one push of all");
        assert_eq!(pushes(&first_rx), [vec![2, 3]]);
        assert_eq!(pushes(&second_rx), [vec![3]]);
        assert_eq!(pushes(&same_rx), [vec![3]]);
        assert!(last_rx.queued().is_empty(), "nothing came after it");
        // From now on all of them are one group, pushed once a window.
        fanout.gather(event(4));
        assert_eq!(fanout.next_due(now, WINDOW), Some(now + WINDOW));
        assert!(fanout.push_due(now + WINDOW / 2, WINDOW).is_empty());
        assert!(old_rx.queued().is_empty(), "not before its beat");
        assert!(fanout.push_due(now + WINDOW, WINDOW).is_empty());
        for rx in [&old_rx, &first_rx, &second_rx, &same_rx, &last_rx] {
            assert_eq!(pushes(rx), [vec![4]]);
        }
        assert!(!fanout.owes());
    }

    #[test]
    fn a_member_ahead_of_the_room_gets_only_what_follows_what_it_has() {
        let now = Instant::now();
        let mut fanout = FanOut::default();
        let (behind, behind_rx) = queue(100);
        fanout.add(1, behind);
        let (grouped, grouped_rx) = queue(100);
        fanout.add(2, grouped);
        fanout.gather(event(1));
        assert!(fanout.push_due(now, WINDOW).is_empty());
        // Both in a group now; one resumes with two events the room has not had yet, and
        // a newcomer with one.
        fanout.has_ahead(2, 2);
        let (newcomer, newcomer_rx) = queue(100);
        fanout.add(3, newcomer);
        fanout.has_ahead(3, 1);
        fanout.has_ahead(1, 0);
        fanout.gather(event(2));
        assert!(fanout.push_due(now + WINDOW, WINDOW).is_empty());
        fanout.gather(event(3));
        fanout.gather(event(4));
        assert!(fanout.push_due(now + WINDOW * 2, WINDOW).is_empty());
        fanout.gather(event(5));
        assert!(fanout.push_due(now + WINDOW * 3, WINDOW).is_empty());
        let got = |rx: &QueueReceiver| pushes(rx).concat();
        assert_eq!(got(&behind_rx), [1, 2, 3, 4, 5]);
        assert_eq!(got(&grouped_rx), [1, 4, 5], "it had 2 and 3");
        assert_eq!(got(&newcomer_rx), [3, 4, 5], "it had 2");
        assert!(!fanout.owes());
        assert_eq!(fanout.len(), 3);
    }

    #[test]
    fn a_newcomer_can_leave_be_replaced_or_overflow_before_the_push() {
        let now = Instant::now();
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
        fanout.replace(4, 5, taker, false);
        fanout.remove(2);
        assert!(!fanout.contains(2) && !fanout.contains(4) && fanout.contains(5));
        fanout.gather(event(2));
        fanout.gather(event(3));
        assert_eq!(
            fanout.push_due(now, WINDOW),
            [3],
            "two events do not fit a queue of one"
        );
        assert!(gone_rx.queued().is_empty());
        assert!(replaced_rx.queued().is_empty());
        assert_eq!(pushes(&taker_rx), [vec![2, 3]]);
    }

    #[test]
    fn a_login_storm_in_one_push_is_split_into_groups_on_their_own_beats() {
        let now = Instant::now();
        let mut fanout = FanOut::default();
        let receivers: Vec<QueueReceiver> = (0..300)
            .map(|conn| {
                let (tx, rx) = queue(100);
                fanout.add(conn, tx);
                rx
            })
            .collect();
        fanout.gather(event(1));
        assert!(fanout.push_due(now, WINDOW).is_empty());
        let sizes: Vec<usize> = fanout.groups.iter().map(|g| g.members.len()).collect();
        assert_eq!(sizes, [100, 100, 100]);
        let beats: std::collections::HashSet<Instant> =
            fanout.groups.iter().map(|g| g.beat).collect();
        assert_eq!(beats.len(), 3, "each on a beat of its own");
        for rx in &receivers {
            assert_eq!(pushes(rx), [vec![1]]);
        }
    }

    #[test]
    fn a_takeover_caught_up_by_its_replay_is_owed_only_what_follows() {
        let now = Instant::now();
        let mut fanout = FanOut::default();
        let (old, _old_rx) = queue(100);
        fanout.add(1, old);
        fanout.push_due(now, WINDOW);
        fanout.gather(event(1));
        let (caught_up, caught_up_rx) = queue(100);
        fanout.replace(1, 2, caught_up, true);
        fanout.gather(event(2));
        fanout.push_due(now + WINDOW, WINDOW);
        assert_eq!(pushes(&caught_up_rx), [vec![2]]);
    }

    #[test]
    fn a_part_gets_what_it_is_owed_before_it_is_out() {
        let now = Instant::now();
        let mut fanout = FanOut::default();
        let (stays, stays_rx) = queue(100);
        let (parts, parts_rx) = queue(100);
        fanout.add(1, stays);
        fanout.add(2, parts);
        fanout.gather(event(1));
        fanout.push_due(now, WINDOW);
        fanout.gather(event(2));
        assert_eq!(fanout.remove_after_push(2), Ok(()));
        assert_eq!(pushes(&parts_rx), [vec![1], vec![2]], "its `left` at once");
        assert!(!fanout.contains(2));
        fanout.push_due(now + WINDOW, WINDOW);
        assert_eq!(pushes(&stays_rx), [vec![1], vec![2]]);
    }

    #[test]
    fn a_big_room_pushes_its_groups_on_beats_spread_over_the_window() {
        let mut now = Instant::now();
        let start = now;
        let mut fanout = FanOut::default();
        let mut receivers = Vec::new();
        // Four groups' worth, coming in over four pushes.
        for wave in 0..4 {
            for i in 0..GROUP {
                let (tx, rx) = queue(1000);
                fanout.add((wave * GROUP + i) as ConnId, tx);
                receivers.push(rx);
            }
            fanout.gather(event(wave as u32));
            now = fanout.next_due(now, WINDOW).expect("owed").max(now);
            assert!(fanout.push_due(now, WINDOW).is_empty());
        }
        // The room is quiet for a while, then an event goes to everybody at once.
        now += WINDOW * 3;
        fanout.gather(event(9));
        fanout.push_due(now, WINDOW);
        assert_eq!(fanout.groups.len(), 4);
        assert!(!fanout.owes());
        for rx in &receivers {
            rx.queued();
        }
        // A steady stream, an event every millisecond for ten windows: every member gets
        // every event once, in order, in at most one push a window, and no push waits
        // for more than a window.
        let mut pushed_at: Vec<Vec<Instant>> = vec![Vec::new(); receivers.len()];
        let mut got: Vec<Vec<u32>> = vec![Vec::new(); receivers.len()];
        let mut gathered_at = Vec::new();
        for n in 100..200 {
            fanout.gather(event(n));
            gathered_at.push(now);
            now += Duration::from_millis(1);
            while fanout.next_due(now, WINDOW).is_some_and(|d| d <= now) {
                assert!(fanout.push_due(now, WINDOW).is_empty());
                for (i, rx) in receivers.iter().enumerate() {
                    for push in pushes(rx) {
                        pushed_at[i].push(now);
                        for n in &push {
                            let waited =
                                now.saturating_duration_since(gathered_at[*n as usize - 100]);
                            assert!(
                                waited <= WINDOW + Duration::from_millis(1),
                                "{n}: {waited:?}"
                            );
                        }
                        got[i].extend(push);
                    }
                }
            }
        }
        // Spread over the window, so every delivery waits at most a window.
        let mut beats: Vec<Duration> = fanout.groups.iter().map(|g| g.beat - start).collect();
        beats.sort();
        let gaps: Vec<Duration> = beats
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect();
        assert_eq!(
            gaps,
            [WINDOW / 4; 3],
            "beats a quarter of a window apart: {beats:?}"
        );
        fanout.push_due(now + WINDOW * 10, WINDOW);
        for (i, rx) in receivers.iter().enumerate() {
            for push in pushes(rx) {
                got[i].extend(push);
            }
        }
        for (i, events) in got.iter().enumerate() {
            assert_eq!(*events, (100..200).collect::<Vec<u32>>(), "member {i}");
            let pushes = &pushed_at[i];
            assert!(
                pushes.windows(2).all(|w| w[1] - w[0] >= WINDOW / 2),
                "member {i}"
            );
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add,
        Remove(usize),
        Part(usize),
        Replace(usize, bool),
        Gather,
        Wait(u64),
        /// A push whether or not one is due (the hub pushes when a batch is recorded).
        Push,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Add),
            1 => any::<usize>().prop_map(Op::Remove),
            1 => any::<usize>().prop_map(Op::Part),
            1 => (any::<usize>(), any::<bool>()).prop_map(|(k, c)| Op::Replace(k, c)),
            6 => Just(Op::Gather),
            3 => (0..15u64).prop_map(Op::Wait),
            2 => Just(Op::Push),
        ]
    }

    /// One connection of the model: the events it must get, as a range of numbers, and
    /// what it got.
    struct Conn {
        rx: QueueReceiver,
        from: u32,
        /// Where it must end: `None` while a member; for one removed without a push, any
        /// prefix will do.
        until: Option<u32>,
        prefix_only: bool,
        /// The connection that took it over, which goes on where it stopped (its `from`
        /// is set from what this one got).
        successor: Option<usize>,
        got: Vec<u32>,
    }

    proptest! {
        /// Whatever members do while events come, each gets every event from the one after
        /// it came in, once, in order, up to when it went (one removed with no push, a
        /// prefix of those; one taken over, up to where its successor goes on).
        #[test]
        fn every_member_gets_each_event_once_in_order(
            ops in proptest::collection::vec(op(), 1..300),
            members in 0..(3 * GROUP),
        ) {
            let mut now = Instant::now();
            let mut fanout = FanOut::default();
            let mut conns: Vec<Conn> = Vec::new();
            let mut live: Vec<usize> = Vec::new();
            let mut next_event = 0u32;
            let add = |fanout: &mut FanOut, conns: &mut Vec<Conn>, live: &mut Vec<usize>, from: u32| {
                let (tx, rx) = queue(100_000);
                fanout.add(conns.len() as ConnId, tx);
                live.push(conns.len());
                conns.push(Conn { rx, from, until: None, prefix_only: false, successor: None, got: Vec::new() });
            };
            for _ in 0..members {
                add(&mut fanout, &mut conns, &mut live, 0);
            }
            for op in ops {
                match op {
                    Op::Add => add(&mut fanout, &mut conns, &mut live, next_event),
                    Op::Remove(k) | Op::Part(k) | Op::Replace(k, _) if !live.is_empty() => {
                        let c = live.swap_remove(k % live.len());
                        match op {
                            Op::Remove(_) => {
                                fanout.remove(c as ConnId);
                                (conns[c].until, conns[c].prefix_only) = (Some(next_event), true);
                            }
                            Op::Part(_) => {
                                prop_assert_eq!(fanout.remove_after_push(c as ConnId), Ok(()));
                                conns[c].until = Some(next_event);
                            }
                            Op::Replace(_, caught_up) => {
                                let (tx, rx) = queue(100_000);
                                let new = conns.len();
                                fanout.replace(c as ConnId, new as ConnId, tx, caught_up);
                                conns[c].until = Some(next_event);
                                conns[c].prefix_only = true;
                                if !caught_up {
                                    conns[c].successor = Some(new);
                                }
                                live.push(new);
                                conns.push(Conn { rx, from: next_event, until: None, prefix_only: false, successor: None, got: Vec::new() });
                            }
                            _ => unreachable!(),
                        }
                    }
                    Op::Gather => {
                        fanout.gather(event(next_event));
                        next_event += 1;
                    }
                    Op::Wait(ms) => now += Duration::from_millis(ms),
                    Op::Push => prop_assert!(fanout.push_due(now, WINDOW).is_empty()),
                    _ => {}
                }
                while let Some(due) = fanout.next_due(now, WINDOW).filter(|due| *due <= now) {
                    prop_assert!(fanout.push_due(now, WINDOW).is_empty());
                    if fanout.next_due(now, WINDOW) == Some(due) {
                        break;
                    }
                }
                for conn in &mut conns {
                    conn.got.extend(pushes(&conn.rx).into_iter().flatten());
                }
            }
            // Everything owed goes.
            fanout.push_due(now + WINDOW * 100, WINDOW);
            prop_assert!(!fanout.owes());
            for conn in &mut conns {
                conn.got.extend(pushes(&conn.rx).into_iter().flatten());
            }
            // One taken over owes its successor what it did not get.
            for c in 0..conns.len() {
                if let Some(next) = conns[c].successor {
                    conns[next].from = conns[c].from + conns[c].got.len() as u32;
                }
            }
            for (c, conn) in conns.iter().enumerate() {
                let until = conn.until.unwrap_or(next_event);
                let expected: Vec<u32> = (conn.from..until).collect();
                if conn.prefix_only {
                    prop_assert!(expected.starts_with(&conn.got), "conn {}: {:?} {:?}", c, conn.got, expected);
                } else {
                    prop_assert_eq!(&conn.got, &expected, "conn {}", c);
                }
            }
        }
    }
}
