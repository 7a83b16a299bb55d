//! A room: its stream in the log, the window of its newest events kept in memory (replay
//! and recent history come from there), its members' fan-out, and its events on their way
//! to the log.
//!
//! Events wait in `pending` until the room submits them as one batch, on the next beat of
//! a group of its members (see [`FanOut`]); while the log records a batch, the next one
//! gathers. Nothing reaches a member before its batch is recorded.

mod fanout;
pub mod table;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::{Frame, LeaveReason, ServerFrame, fold};

use crate::log::amend::{Change, apply, change_of, erased, recorded_change};
use crate::log::state::{KeptState, changes_of, unless_message};
use crate::log::{Body, Event, Head, NewEvent, Note, Seq, Snapshot, Span, StreamId, Tailed};
use crate::pressure::Window;
use crate::queue::SendQueue;
use crate::registry::{ConnId, ConnSet, Registry};

use fanout::FanOut;

/// Member writes per second a room aims to stay under when it is busy: in a big room the
/// window in which each member gets at most one write grows (members / budget), so a join
/// storm or a busy room of thousands costs a bounded number of system calls instead of
/// one per member per event. Its members are pushed on beats spread over the window (see
/// [`FanOut`]), so an event waits about a window, not a window and a pass over everyone.
const WRITE_BUDGET: f64 = 45_000.0;

/// The longest window a room's size alone sets (from 1,125 members on): beyond it only a
/// busy server stretches it (see [`crate::pressure`]).
const MAX_SIZE_WINDOW: Duration = Duration::from_millis(30);

/// The most events in one batch: a batch goes to every member as one push, counted
/// against each member's queue, so it must stay well under `--send-queue` however fast
/// events arrive while the log is busy; the rest wait for the next batch.
const MAX_BATCH: usize = 256;

/// An event waiting for the log, with what to do once it is recorded (or not).
#[derive(Debug)]
pub struct Pending {
    /// The event.
    pub event: NewEvent,
    /// What it means for its author.
    pub effect: Effect,
}

/// What follows when an event is recorded.
#[derive(Debug)]
pub enum Effect {
    /// Nothing more than its fan-out.
    None,
    /// A fresh login's `joined` in the default room: the member gets its welcome.
    Welcome(Box<Welcome>),
    /// A `join`'s `joined`: the member gets the `room` answer and its replay.
    Joined {
        /// Who joined.
        conn: ConnId,
        /// Resume after this seq.
        since: Option<Seq>,
        /// No `room` answer: the join was asked on a connection taken over since, and the
        /// new one's welcome lists the room; it gets the answer if it asks again.
        quiet: bool,
    },
    /// A `part`'s `left`: the member gets it as the answer, then is out.
    Parted {
        /// Who parted.
        conn: ConnId,
        /// Its `joined` was on its way when it parted: it is in the room once that is
        /// recorded (and gets the `room` answer), and out once this `left` is.
        joining: bool,
    },
    /// A moderation step: if it cannot be recorded, its author hears so.
    Step {
        /// Who took it.
        conn: ConnId,
    },
    /// A post: if it cannot be recorded, its sender hears so.
    Post {
        /// The sender.
        conn: ConnId,
        /// Its id, echoed in the error.
        id: Option<String>,
    },
}

impl Effect {
    /// The connection it answers, where it names one (a welcome is a login's own, and
    /// no takeover happens before it).
    fn conn_mut(&mut self) -> Option<&mut ConnId> {
        match self {
            Effect::Joined { conn, .. }
            | Effect::Parted { conn, .. }
            | Effect::Step { conn }
            | Effect::Post { conn, .. } => Some(conn),
            Effect::None | Effect::Welcome(_) => None,
        }
    }
}

/// A login waiting for its `joined` to be recorded.
#[derive(Debug)]
pub struct Welcome {
    /// The connection.
    pub conn: ConnId,
    /// Resume after this seq.
    pub since: Option<Seq>,
    /// The epoch `since` counts in.
    pub epoch: Option<String>,
    /// Where its frames go.
    pub queue: SendQueue,
    /// Told whether the login went through, or the code it was refused with.
    pub reply: async_channel::Sender<Result<(), chat_shared::RejectCode>>,
    /// For an account: its conversations, for the welcome.
    pub conversations: Option<Vec<chat_shared::Conversation>>,
    /// For an account: the rooms it is invited to (room key, who invited).
    pub invites: Vec<(String, String)>,
}

/// A room's state.
#[derive(Debug)]
pub struct Room {
    /// Its stream in the log (its case-folded name).
    stream: StreamId,
    /// Its name as first spelled.
    name: Arc<str>,
    /// Its topic, roles, settings, bans, mutes and invitations, as of its newest event.
    state: KeptState,
    /// The newest recorded events, oldest first, seqs contiguous.
    window: VecDeque<Event>,
    capacity: usize,
    /// The ends of the stream in the log.
    head: Head,
    /// Its members on this server, and what is on its way to them.
    fanout: FanOut,
    pending: VecDeque<Pending>,
    in_flight: Option<Vec<Pending>>,
    /// The (poster, id) of every post waiting or being recorded, to spot a copy sent
    /// again meanwhile.
    posts_underway: HashSet<(String, String)>,
    last_submit: Instant,
    /// In a cluster: everyone in the room on any node (case-folded -> name), as of its
    /// newest event; alone, the fan-out knows the members.
    roster: Option<BTreeMap<String, String>>,
    /// What this server's recorded events mean, by seq, until they arrive in order (see
    /// [`Room::arrive`]).
    awaiting: BTreeMap<Seq, Pending>,
    /// Recorded events on their way into the room, in seq order: this server's own as the
    /// log answered them, or, in a cluster, every node's as the tail brought them (those
    /// that come while a batch of this node is being recorded wait here, since which of
    /// them are this node's is known only once it is).
    arriving: Tailed,
    /// In a cluster: a hole the tail left before the events it brought, being read again.
    hole: Option<Hole>,
    /// Events arriving a second, as last measured.
    rate: f64,
    /// Events arrived since `counting_since`.
    arrived: u32,
    counting_since: Instant,
}

/// How long a room counts arrivals before it updates its rate.
const RATE_PERIOD: Duration = Duration::from_millis(100);

/// How long a hole in the tail's events is given to be read again before it is asked
/// again: reads under way when it was asked may still bring events past it meanwhile.
const HOLE_WAIT: Duration = Duration::from_secs(1);

/// How many times a hole is read again before the room goes on past it: events the log
/// does not have (which no node writes) must not stop a room for good.
const HOLE_TRIES: u32 = 3;

/// Events missing between the room's newest and what the tail brought.
#[derive(Debug, Clone, Copy)]
struct Hole {
    /// The room's newest event before it.
    after: Seq,
    /// When it was last asked to be read again.
    asked: Instant,
    /// How many times it was.
    tries: u32,
}

/// What [`Room::arrive`] took in.
#[derive(Debug, Default)]
pub struct Arrived {
    /// The events that arrived in order.
    pub arrivals: Vec<Arrival>,
    /// In a cluster: events are missing after this seq (the tail brought later ones): the
    /// room is to be read again from there. What came past the hole was left out.
    pub read_again_after: Option<Seq>,
}

/// What a recorded event means for members beyond its fan-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consequence {
    /// A moderator put this member (case-folded) out of the room: its connection is out
    /// once the `left` is pushed to it.
    PutOut(String),
    /// This account (case-folded) was invited by `by`: its connections are told.
    Invited {
        /// The account.
        folded: String,
        /// Who invited it.
        by: String,
    },
}

/// An event recorded in a room, as it arrives there in seq order.
#[derive(Debug)]
pub struct Arrival {
    /// The event.
    pub event: Event,
    /// What it means for its author, if it is this server's.
    pub mine: Option<Pending>,
    /// For a post of any node with an id: its poster (case-folded) and the id.
    pub posted: Option<(String, String)>,
}

impl Room {
    /// A room whose log stream stands as `snapshot` says, with `recent` (its newest
    /// events) in memory and at most `capacity` kept there.
    pub fn new(
        stream: StreamId,
        name: Arc<str>,
        snapshot: Snapshot,
        recent: Vec<Event>,
        capacity: usize,
    ) -> Self {
        let now = Instant::now();
        let mut window: VecDeque<Event> = recent.into();
        while window.len() > capacity {
            window.pop_front();
        }
        let state = KeptState::from_fields(
            snapshot
                .state
                .iter()
                .map(|(field, value)| (field.as_str(), value.as_str())),
        );
        Self {
            stream,
            name,
            state,
            window,
            capacity: capacity.max(1),
            head: snapshot.head,
            fanout: FanOut::default(),
            roster: snapshot
                .members
                .map(|members| members.into_iter().collect()),
            awaiting: BTreeMap::new(),
            arriving: Vec::new(),
            hole: None,
            pending: VecDeque::new(),
            in_flight: None,
            posts_underway: HashSet::new(),
            last_submit: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            rate: 0.0,
            arrived: 0,
            counting_since: now,
        }
    }

    /// Its name as first spelled.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Its topic, roles, settings, bans, mutes and invitations, as of its newest event.
    pub fn state(&self) -> &KeptState {
        &self.state
    }

    /// The role of `folded` once the events on their way to the log are recorded: the
    /// last `role` among them that names it (a new room's creator is its owner from the
    /// step that joins it, before that step is recorded), else the one it has.
    pub fn role_underway(&self, folded: &str) -> chat_shared::Role {
        self.in_flight
            .iter()
            .flatten()
            .chain(&self.pending)
            .rev()
            .find_map(|pending| match &pending.event.body {
                Body::Role { name, role, .. } if fold(name) == folded => Some(*role),
                _ => None,
            })
            .unwrap_or_else(|| self.state.role(folded))
    }

    /// Whether a name (case-folded) is in the room: on any node in a cluster (as the
    /// roster knows), else among its members here.
    pub fn has_member(&self, folded: &str, registry: &Registry) -> bool {
        match &self.roster {
            Some(roster) => roster.contains_key(folded),
            None => registry
                .online_conn(folded)
                .is_some_and(|conn| self.fanout.contains(conn)),
        }
    }

    /// The name of a member (case-folded) as it is spelled in the room, if it is in it.
    pub fn member_name(&self, folded: &str, registry: &Registry) -> Option<String> {
        match &self.roster {
            Some(roster) => roster.get(folded).cloned(),
            None => registry
                .online_conn(folded)
                .filter(|conn| self.fanout.contains(*conn))
                .and_then(|conn| registry.get(conn))
                .map(|member| member.name.to_string()),
        }
    }

    /// The recorded event at `seq`, if the window holds it.
    pub fn event_at(&self, seq: Seq) -> Option<&Event> {
        let first = self.window.front()?.seq;
        let at = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.window.get(at).filter(|e| e.seq == seq)
    }

    /// Whether nothing was ever recorded in it, nor is on its way to the log: the next
    /// event makes it.
    pub fn is_new(&self) -> bool {
        self.head.newest == 0 && self.pending.is_empty() && self.in_flight.is_none()
    }

    /// Its newest seq (0 when it has none).
    pub fn newest(&self) -> Seq {
        self.head.newest
    }

    /// How many members it has on this server.
    pub fn len(&self) -> usize {
        self.fanout.len()
    }

    /// Its members' connections here (those joining too).
    pub fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.fanout.conns()
    }

    /// Whether a connection is a member.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.fanout.contains(conn)
    }

    /// Adds a member: events recorded from now on go to it (it had the older ones in its
    /// replay).
    pub fn add(&mut self, conn: ConnId, queue: SendQueue) {
        self.fanout.add(conn, queue);
    }

    /// A member resumed with `since`: if that is past this room's newest event (a cluster
    /// node that has not read the newest from the log yet), it is owed only what follows.
    pub fn resumed_at(&mut self, conn: ConnId, since: Seq) {
        self.fanout
            .has_ahead(conn, since.saturating_sub(self.head.newest));
    }

    /// Removes a member; what it was still owed is dropped with it.
    pub fn remove(&mut self, conn: ConnId) {
        self.fanout.remove(conn);
    }

    /// Removes a member after pushing it what it is owed (a part's `left` is its answer).
    /// Fails if that did not fit its queue.
    pub fn remove_after_push(&mut self, conn: ConnId) -> Result<(), ConnId> {
        self.fanout.remove_after_push(conn)
    }

    /// Moves a membership to another connection (a takeover): nobody else notices. With
    /// `caught_up`, the new connection's replay holds every recorded event.
    pub fn replace(&mut self, old: ConnId, new: ConnId, queue: SendQueue, caught_up: bool) {
        self.fanout.replace(old, new, queue, caught_up);
    }

    /// The names of its members, sorted by case-folded name: in a cluster everyone on any
    /// node, as the roster knows them; alone, its members here, named by the registry.
    pub fn users(&self, registry: &Registry) -> Vec<String> {
        if let Some(roster) = &self.roster {
            return roster.values().cloned().collect();
        }
        // A login storm builds this for every newcomer, for rooms of thousands: a room that
        // holds most of everyone is read in the registry's order, with no sorting; a
        // smaller one is borrowed and sorted. Either way the names are copied once, into a
        // list of its final size.
        if self.fanout.len() * 2 >= registry.len() {
            let conns: ConnSet = self.fanout.conns().collect();
            let mut users = Vec::with_capacity(conns.len());
            users.extend(
                registry
                    .sorted()
                    .filter(|(conn, _)| conns.contains(conn))
                    .map(|(_, member)| member.name.as_str().to_owned()),
            );
            return users;
        }
        let mut members: Vec<(&str, &str)> = self
            .fanout
            .conns()
            .filter_map(|conn| registry.get(conn))
            .map(|m| (m.keys.folded.as_str(), m.name.as_str()))
            .collect();
        members.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut users = Vec::with_capacity(members.len());
        users.extend(members.iter().map(|(_, name)| (*name).to_owned()));
        users
    }

    /// Retention: the log deleted this room's events below `below`; the window lets
    /// them go too, and the oldest seq held moves up.
    pub fn forgotten(&mut self, below: Seq) {
        while self.window.front().is_some_and(|event| event.seq < below) {
            self.window.pop_front();
        }
        if below > self.head.oldest {
            self.head.oldest = if below > self.head.newest { 0 } else { below };
        }
    }

    /// Retention with a log that keeps nothing (the window is the history): the events
    /// recorded before `time` (ms since the Unix epoch) go; says which seqs went.
    pub fn forget_before(&mut self, time: u64) -> Option<std::ops::Range<Seq>> {
        let old = self
            .window
            .iter()
            .take_while(|event| crate::log::time_of(&event.frame).is_some_and(|at| at < time))
            .count();
        let first = self.window.front()?.seq;
        if old == 0 {
            return None;
        }
        self.window.drain(..old);
        Some(first..first + old as Seq)
    }

    /// The oldest seq the server holds: the log's, or the window's when the log keeps
    /// nothing itself (0 when there is none).
    pub fn oldest(&self, durable: bool) -> Seq {
        if durable {
            self.head.oldest
        } else {
            self.window.front().map_or(0, |e| e.seq)
        }
    }

    /// An event of this room, to append.
    pub fn event(
        &self,
        time: u64,
        body: Body,
        poster: Option<String>,
        holder: Option<String>,
    ) -> NewEvent {
        NewEvent {
            stream: self.stream.clone(),
            room: self.name.clone(),
            direct: None,
            time,
            body,
            poster,
            holder,
            base: None,
        }
    }

    /// A message of the window, as it is now.
    fn kept(&self, seq: Seq) -> Option<&Event> {
        let first = self.window.front().map_or(0, |e| e.seq);
        self.window
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    /// Queues an event for the next batch.
    pub fn push(&mut self, pending: Pending) {
        self.count_arrival(Instant::now());
        if let Some(key) = post_key(&pending) {
            self.posts_underway.insert(key);
        }
        self.pending.push_back(pending);
    }

    /// Whether a post with this poster's id is waiting or being recorded.
    pub fn has_post(&self, poster: &str, id: &str) -> bool {
        self.posts_underway
            .contains(&(poster.to_string(), id.to_string()))
    }

    /// Counts an arriving event; every [`RATE_PERIOD`] (or at the first event after a
    /// longer quiet spell) the rate is measured anew.
    fn count_arrival(&mut self, now: Instant) {
        self.arrived += 1;
        let elapsed = now.saturating_duration_since(self.counting_since);
        if elapsed >= RATE_PERIOD {
            self.rate = f64::from(self.arrived) / elapsed.as_secs_f64();
            self.arrived = 0;
            self.counting_since = now;
        }
    }

    /// The least time between two batches: the configured window, longer in big rooms
    /// and in rooms busy enough to fill the longer window of a busy server.
    fn window_length(&self, window: Window) -> Duration {
        let by_size =
            Duration::from_secs_f64(self.fanout.len() as f64 / WRITE_BUDGET).min(MAX_SIZE_WINDOW);
        window.for_rate(self.rate).max(by_size)
    }

    /// When the next batch may go, if one waits and none is being recorded: on the next
    /// beat of a group of members, so that the group pushed then carries it (a window
    /// after the last batch while no member is in a group yet); at once when more than a
    /// batch waits.
    pub fn next_submit(&self, window: Window) -> Option<Instant> {
        if self.pending.is_empty() || self.in_flight.is_some() {
            return None;
        }
        if self.pending.len() >= MAX_BATCH {
            return Some(self.last_submit);
        }
        let length = self.window_length(window);
        Some(
            self.fanout
                .next_beat(length)
                .unwrap_or(self.last_submit + length),
        )
    }

    /// When the room next has something to do: a batch to record, or recorded events
    /// to push (those wait while a batch is being recorded: they go with it).
    pub fn next_due(&self, now: Instant, window: Window) -> Option<Instant> {
        let push = if self.in_flight.is_some() {
            None
        } else {
            self.fanout.next_due(now, self.window_length(window))
        };
        self.next_submit(window).into_iter().chain(push).min()
    }

    /// Pushes recorded events to the members whose beat came; returns those that could
    /// not take them.
    pub fn push_due(&mut self, now: Instant, window: Window) -> Vec<ConnId> {
        let length = self.window_length(window);
        self.fanout.push_due(now, length)
    }

    /// The batch to record now, if one is due: the events leave `pending` and are in
    /// flight until [`Room::finish`].
    pub fn take_batch(&mut self, now: Instant, window: Window) -> Option<Vec<NewEvent>> {
        if self.next_submit(window).is_none_or(|due| now < due) {
            return None;
        }
        self.last_submit = now;
        let take = self.pending.len().min(MAX_BATCH);
        let mut batch: Vec<Pending> = self.pending.drain(..take).collect();
        // An event about a message goes with the message as the window holds it now (what
        // a log that keeps no room's events decides against).
        for pending in &mut batch {
            if let Some((target, _)) = change_of(&pending.event.body) {
                pending.event.base = self.kept(target).map(|e| e.frame.clone());
            }
        }
        let events = batch.iter().map(|p| p.event.clone()).collect();
        self.in_flight = Some(batch);
        Some(events)
    }

    /// The batch in flight is done: its events with what each meant.
    pub fn finish(&mut self) -> Vec<Pending> {
        let batch = self.in_flight.take().unwrap_or_default();
        for pending in &batch {
            if let Some(key) = post_key(pending) {
                self.posts_underway.remove(&key);
            }
        }
        batch
    }

    /// What this server's events waiting for the log, being recorded or waiting to arrive
    /// mean for their authors.
    fn underway(&mut self) -> impl Iterator<Item = &mut Effect> {
        self.pending
            .iter_mut()
            .chain(self.in_flight.iter_mut().flatten())
            .chain(self.awaiting.values_mut())
            .map(|pending| &mut pending.effect)
    }

    /// A takeover: what `old` asked of the room and is still underway (a join, a part, a
    /// post, a step) is answered on `new`.
    pub fn hand_over(&mut self, old: ConnId, new: ConnId) {
        for effect in self.underway() {
            if let Effect::Joined { conn, quiet, .. } = effect
                && *conn == old
            {
                *quiet = true;
            }
            if let Some(conn) = effect.conn_mut()
                && *conn == old
            {
                *conn = new;
            }
        }
    }

    /// A join of `conn`'s that is underway, asked again (a resume after `since`): it is
    /// answered once, when it is recorded. Whether there was one.
    pub fn ask_again(&mut self, of: ConnId, resume: Option<Seq>) -> bool {
        self.underway()
            .find_map(|effect| match effect {
                Effect::Joined { conn, since, quiet } if *conn == of => {
                    (*since, *quiet) = (resume, false);
                    Some(())
                }
                _ => None,
            })
            .is_some()
    }

    /// Whether a batch is being recorded.
    pub fn is_recording(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether the room has something to do: events to record, or recorded events some
    /// member is still owed.
    pub fn is_busy(&self) -> bool {
        !self.pending.is_empty() || self.fanout.owes()
    }

    /// Keeps what one of this server's recorded events means until the event arrives in
    /// order (see [`Room::arrive`]).
    pub fn await_own(&mut self, seq: Seq, pending: Pending) {
        self.awaiting.insert(seq, pending);
    }

    /// Recorded events on their way into the room, in seq order.
    pub fn arriving(&mut self, events: Tailed) {
        self.arriving.extend(events);
    }

    /// Takes in the recorded events that arrived, in seq order: each new one with what it
    /// means for its author here (events the room has already are dropped). Each is to be
    /// gathered for the members by [`Room::record`] once its author got what it means. Not
    /// while a batch is being recorded: which of them are this server's is known only once
    /// it is.
    ///
    /// Nothing is taken in past a hole (a cluster's tail that skipped events): the events
    /// after it are left out, to come again in order once the room is read again from its
    /// newest event, which is asked at once and then every [`HOLE_WAIT`] while the hole
    /// stays. After [`HOLE_TRIES`] asks the room goes on past it, saying so.
    pub fn arrive(&mut self, now: Instant) -> Arrived {
        let mut arrived = Arrived::default();
        let mut newest = self.head.newest;
        for (event, note) in std::mem::take(&mut self.arriving) {
            if event.seq <= newest {
                continue;
            }
            if newest > 0 && event.seq > newest + 1 {
                if !self.go_past(newest, event.seq, now, &mut arrived) {
                    break;
                }
            } else {
                self.hole = None;
            }
            newest = event.seq;
            let posted = match &note {
                Some(Note::Posted(poster, id)) => Some((poster.clone(), id.clone())),
                _ => None,
            };
            self.change_roster(note);
            let mine = self.awaiting.remove(&event.seq);
            arrived.arrivals.push(Arrival {
                event,
                mine,
                posted,
            });
        }
        arrived
    }

    /// Events are missing after `newest`, before `seq`: whether to go on past them. In a
    /// cluster the room asks to be read again from `newest` (in `arrived`) and waits for
    /// them, unless it asked [`HOLE_TRIES`] times already. Alone, there is nothing to read
    /// again: its own log's answers are all there is.
    fn go_past(&mut self, newest: Seq, seq: Seq, now: Instant, arrived: &mut Arrived) -> bool {
        let (room, from, to) = (&self.stream, newest + 1, seq - 1);
        if self.roster.is_none() {
            tracing::warn!(%room, from, to, "events missing");
            return true;
        }
        match self.hole.filter(|hole| hole.after == newest) {
            Some(hole) if hole.tries >= HOLE_TRIES => {
                tracing::error!(%room, from, to, "events missing from the log; going on past them");
                self.hole = None;
                true
            }
            Some(hole) if now.duration_since(hole.asked) < HOLE_WAIT => false,
            hole => {
                let tries = hole.map_or(0, |hole| hole.tries) + 1;
                tracing::warn!(%room, from, to, tries, "events missing from the tail; reading them again");
                self.hole = Some(Hole {
                    after: newest,
                    asked: now,
                    tries,
                });
                arrived.read_again_after = Some(newest);
                false
            }
        }
    }

    /// This server's events the room is past already, without having taken them in (it
    /// was read back from the log meanwhile): what they mean, in seq order.
    pub fn take_late(&mut self) -> Vec<(Seq, Pending)> {
        let newer = self.awaiting.split_off(&(self.head.newest + 1));
        std::mem::replace(&mut self.awaiting, newer)
            .into_iter()
            .collect()
    }

    /// Whether the room can be dropped from memory: nobody in it and nothing underway.
    pub fn is_idle(&self) -> bool {
        self.fanout.len() == 0
            && self.pending.is_empty()
            && self.in_flight.is_none()
            && self.awaiting.is_empty()
    }

    /// Applies what an event changes in the member list of a cluster's room.
    fn change_roster(&mut self, change: Option<Note>) {
        match (&mut self.roster, change) {
            (Some(roster), Some(Note::Joined(member, name))) => {
                roster.insert(member, name);
            }
            (Some(roster), Some(Note::Left(member))) => {
                roster.remove(&member);
            }
            _ => {}
        }
    }

    /// Keeps a recorded event in the window and gathers it for the members; what it
    /// changes in the room's state takes effect (a deleted message is erased in the
    /// window too). Returns what it means for members beyond its fan-out.
    pub fn record(&mut self, event: Event) -> Option<Consequence> {
        let consequence = self.take_in(&event);
        self.head.newest = event.seq;
        if self.head.oldest == 0 {
            self.head.oldest = event.seq;
        }
        if self.window.len() == self.capacity {
            self.window.pop_front();
        }
        self.fanout.gather(event.frame.clone());
        self.window.push_back(event);
        consequence
    }

    /// What an event changes in the room's state and window. Messages change nothing
    /// (and are not decoded: most events are messages).
    fn take_in(&mut self, event: &Event) -> Option<Consequence> {
        let frame = unless_message(event.frame.as_bytes())?;
        for op in changes_of(&frame) {
            self.state.apply(&op);
        }
        if let Some((target, change, time)) = recorded_change(&frame) {
            let first = self.window.front().map_or(0, |e| e.seq);
            if let Some(kept) = target
                .checked_sub(first)
                .and_then(|at| self.window.get_mut(usize::try_from(at).ok()?))
                && let Some(changed) = apply(&kept.frame, &change, time)
            {
                kept.frame = changed;
            }
            if change == Change::Erase {
                // Its edits' texts go with it.
                for kept in &mut self.window {
                    if kept.frame.as_bytes().starts_with(br#"{"type":"edited""#)
                        && matches!(
                            chat_shared::decode_line::<ServerFrame>(kept.frame.as_bytes().trim_ascii_end()),
                            Ok(ServerFrame::Edited { target: edited, .. }) if edited == target
                        )
                    {
                        kept.frame = erased(&kept.frame);
                    }
                }
            }
            return None;
        }
        match frame {
            ServerFrame::Left {
                name,
                reason: LeaveReason::Removed | LeaveReason::Banned,
                ..
            } => Some(Consequence::PutOut(fold(&name))),
            ServerFrame::Invite { name, by, .. } => Some(Consequence::Invited {
                folded: fold(&name),
                by,
            }),
            _ => None,
        }
    }

    /// What a login or join replays: after `since` when it counts in this epoch
    /// (`same_epoch`), all of the window for another epoch, the newest `fresh` without
    /// `since`; never more than `max`.
    pub fn replay(
        &self,
        since: Option<Seq>,
        same_epoch: bool,
        fresh: usize,
        max: usize,
    ) -> Vec<Frame> {
        let after = match since {
            Some(since) if same_epoch => since,
            Some(_) => 0,
            None => self.head.newest.saturating_sub(fresh as Seq),
        };
        let newer = self.window.iter().filter(|e| e.seq > after);
        let count = newer.clone().count();
        newer
            .skip(count.saturating_sub(max))
            .map(|e| e.frame.clone())
            .collect()
    }

    /// The seq of the first event recorded at or after `time` (ms since the Unix epoch),
    /// one past the newest if none is, if the window can tell: with a log that keeps
    /// nothing itself (`durable` false) it always can; else not when what it holds all
    /// comes after `time` and older events are in the log.
    pub fn first_at(&self, time: u64, durable: bool) -> Option<Seq> {
        let at = self
            .window
            .partition_point(|e| crate::log::time_of(&e.frame).is_some_and(|t| t < time));
        let reaches_back = at > 0 || !durable;
        match self.window.get(at) {
            Some(event) if reaches_back || event.seq <= self.head.oldest.max(1) => Some(event.seq),
            None if reaches_back || self.head.newest == 0 => Some(self.head.newest + 1),
            _ => None,
        }
    }

    /// When the newest message was recorded, as far as the window can tell: it holds
    /// every event there is when it reaches back to the oldest, or when the log keeps
    /// nothing itself (`durable` false).
    pub fn newest_message(&self, durable: bool) -> Newest {
        if let Some(time) = self
            .window
            .iter()
            .rev()
            .find_map(|e| crate::log::message_time(&e.frame))
        {
            return Newest::Message(time);
        }
        let whole = self
            .window
            .front()
            .map_or(self.head.newest == 0, |e| e.seq <= self.head.oldest.max(1));
        if whole || !durable {
            Newest::NoMessage
        } else {
            Newest::Unknown
        }
    }

    /// A history answer from the window, if the window holds all of it (with a log that
    /// keeps nothing, `durable` false, the window is all there is).
    pub fn read_window(&self, span: Span, limit: usize, durable: bool) -> Option<Vec<Frame>> {
        let first = self.window.front().map_or(self.head.newest + 1, |e| e.seq);
        let frames: Vec<Frame> = match span {
            Span::Before(before) => {
                let older: Vec<&Event> = self.window.iter().filter(|e| e.seq < before).collect();
                let complete = older.len() >= limit
                    || first <= self.head.oldest.max(1)
                    || before <= self.head.oldest;
                if durable && !complete {
                    return None;
                }
                older[older.len().saturating_sub(limit)..]
                    .iter()
                    .map(|e| e.frame.clone())
                    .collect()
            }
            Span::After(after) => {
                if durable && after + 1 < first && after < self.head.newest {
                    return None;
                }
                self.window
                    .iter()
                    .filter(|e| e.seq > after)
                    .take(limit)
                    .map(|e| e.frame.clone())
                    .collect()
            }
        };
        Some(frames)
    }
}

/// What a room's window knows of its newest message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Newest {
    /// It was recorded then (ms since the Unix epoch).
    Message(u64),
    /// The room has none.
    NoMessage,
    /// Older than the window: the log knows.
    Unknown,
}

/// The (poster, id) of a post with an id.
fn post_key(pending: &Pending) -> Option<(String, String)> {
    match (&pending.event.poster, &pending.event.body) {
        (Some(poster), Body::Message { id: Some(id), .. }) => Some((poster.clone(), id.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Head;

    /// A cluster's room whose newest event is `newest`.
    fn room_at(newest: Seq) -> Room {
        let snapshot = Snapshot {
            head: Head { oldest: 1, newest },
            name: "r".into(),
            members: Some(Vec::new()),
            state: Vec::new(),
        };
        Room::new(StreamId::new("r"), "r".into(), snapshot, Vec::new(), 100)
    }

    fn events(seqs: std::ops::RangeInclusive<Seq>) -> Tailed {
        seqs.map(|seq| {
            let frame = format!(
                r#"{{"type":"message","room":"r","seq":{seq},"time":1,"from":"a","text":"x"}}"#
            );
            let frame = Frame::from_encoded(format!("{frame}\n").as_bytes());
            (Event { seq, frame }, None)
        })
        .collect()
    }

    /// Takes in what arrived, as the hub does: the seqs taken in, and where the room is
    /// to be read again from.
    fn take(room: &mut Room, now: Instant) -> (Vec<Seq>, Option<Seq>) {
        let arrived = room.arrive(now);
        let mut seqs = Vec::new();
        for arrival in arrived.arrivals {
            seqs.push(arrival.event.seq);
            room.record(arrival.event);
        }
        (seqs, arrived.read_again_after)
    }

    #[test]
    fn a_hole_in_the_tail_is_read_again_and_never_gone_past() {
        let (mut room, start) = (room_at(2), Instant::now());
        room.arriving(events(3..=3));
        room.arriving(events(6..=7));
        assert_eq!(take(&mut room, start), (vec![3], Some(3)));
        // Reads under way when it was asked bring what follows the hole again: left out,
        // without asking again.
        room.arriving(events(7..=8));
        let soon = start + Duration::from_millis(10);
        assert_eq!(take(&mut room, soon), (vec![], None));
        // Read again from 3: everything in order, once.
        room.arriving(events(3..=8));
        assert_eq!(take(&mut room, soon), (vec![4, 5, 6, 7, 8], None));
        assert_eq!(room.newest(), 8);
        // A later hole is a hole of its own.
        room.arriving(events(10..=10));
        assert_eq!(take(&mut room, soon), (vec![], Some(8)));
    }

    #[test]
    fn a_hole_the_log_cannot_fill_is_asked_again_and_then_gone_past() {
        let (mut room, start) = (room_at(2), Instant::now());
        let at = |ms| start + Duration::from_millis(ms);
        for (ms, asked) in [(0, Some(2)), (500, None), (1000, Some(2)), (2000, Some(2))] {
            room.arriving(events(5..=5));
            assert_eq!(take(&mut room, at(ms)), (vec![], asked), "at {ms} ms");
        }
        room.arriving(events(5..=6));
        assert_eq!(take(&mut room, at(3000)), (vec![5, 6], None));
    }
}
