//! The events of one room as the client shows them: messages, folded runs of joins and
//! leaves, and notices of its own, in order, each at a stable position.
//!
//! Live events are appended; older pages fetched from the server's history are prepended.
//! Every entry keeps its [`Pos`] for as long as it is held, so a view can remember what it
//! was showing while entries are added at either end or the oldest are dropped.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use chat_shared::{LeaveReason, ServerFrame};

use super::text;

/// The position of an entry: stable while entries are added before or after it.
pub type Pos = i64;

/// A count of entries as a distance between positions.
pub fn span(count: usize) -> Pos {
    Pos::try_from(count).unwrap_or(Pos::MAX)
}

/// One line (or folded run of lines) of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Someone said something.
    Message(ChatMessage),
    /// People came or went: consecutive joins and leaves folded into one entry.
    Presence(Presence),
    /// Something the client itself has to say (reconnected, a problem, a restart).
    Notice(Notice),
    /// A moderator's step (a topic, a role, a ban...), in words.
    Step(Step),
}

/// A moderation event as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Room seq.
    pub seq: u64,
    /// Server time, ms since the Unix epoch.
    pub time: u64,
    /// What happened, in words.
    pub text: String,
}

impl Entry {
    /// When it happened (server time, ms since the Unix epoch), if known.
    pub fn time(&self) -> Option<u64> {
        match self {
            Entry::Message(message) => Some(message.time),
            Entry::Presence(presence) => presence.changes.last().map(|c| c.time),
            Entry::Notice(notice) => notice.time,
            Entry::Step(step) => Some(step.time),
        }
    }

    /// The room seq of the newest event in it, if it came from the server.
    fn newest_seq(&self) -> Option<u64> {
        match self {
            Entry::Message(message) => Some(message.seq),
            Entry::Presence(presence) => presence.changes.last().map(|c| c.seq),
            Entry::Step(step) => Some(step.seq),
            Entry::Notice(_) => None,
        }
    }

    /// The room seq of the oldest event in it, if it came from the server.
    fn oldest_seq(&self) -> Option<u64> {
        match self {
            Entry::Message(message) => Some(message.seq),
            Entry::Presence(presence) => presence.changes.first().map(|c| c.seq),
            Entry::Step(step) => Some(step.seq),
            Entry::Notice(_) => None,
        }
    }
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "what a message is to its reader"
)]
pub struct ChatMessage {
    /// Room seq.
    pub seq: u64,
    /// Server time, ms since the Unix epoch.
    pub time: u64,
    /// The sender, as the server names them.
    pub from: String,
    /// What they said.
    pub text: String,
    /// The web links in the text: byte ranges and the address each opens.
    pub links: Vec<(Range<usize>, String)>,
    /// Posted by this user.
    pub mine: bool,
    /// Mentions this user by name (never true for the user's own posts).
    pub mention: bool,
    /// An action (`/me waves`): shown as "* from text".
    pub action: bool,
    /// Deleted: its text is gone, it reads "message deleted".
    pub deleted: bool,
    /// The seq of the message it answers.
    pub reply_to: Option<u64>,
    /// When it was last edited (server time, ms), if it was.
    pub edited: Option<u64>,
    /// Its reactions, in the order the emoji were first used.
    pub reactions: Vec<chat_shared::Reaction>,
}

/// A run of joins and leaves with nothing said in between.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// Oldest first.
    pub changes: Vec<PresenceChange>,
}

/// Someone joining or leaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// Room seq.
    pub seq: u64,
    /// Server time, ms since the Unix epoch.
    pub time: u64,
    /// Who.
    pub name: String,
    /// Joined, or left and why.
    pub kind: ChangeKind,
}

/// What a [`Change`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Came in.
    Joined,
    /// Came in again while the room still had them (a `joined` with no `left` before
    /// it: their connection came back after the server restarted, say).
    Returned,
    /// Went away, for this reason.
    Left(LeaveReason),
}

impl ChangeKind {
    /// Whether the person is in the room after it.
    pub fn is_in(self) -> bool {
        !matches!(self, Self::Left(_))
    }
}

impl PresenceChange {
    /// The change in words: "alice joined", "bob left (timed out)", "carol reconnected".
    pub fn describe(&self) -> String {
        match self.kind {
            ChangeKind::Joined => format!("{} joined", self.name),
            ChangeKind::Returned => format!("{} reconnected", self.name),
            // "left (left the room)" would say it twice.
            ChangeKind::Left(LeaveReason::Quit | LeaveReason::Unknown | LeaveReason::Part) => {
                format!("{} left", self.name)
            }
            ChangeKind::Left(reason) => format!("{} left ({})", self.name, reason.describe()),
        }
    }
}

/// What a run of changes came to for one person, from whether they were in before it
/// and are in after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    Joined,
    Left,
    CameBack,
    Reconnected,
    JoinedAndLeft,
}

impl Outcome {
    fn verb(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Left => "left",
            Self::CameBack => "left and came back",
            Self::Reconnected => "reconnected",
            Self::JoinedAndLeft => "joined and left",
        }
    }
}

impl Presence {
    /// The run in one line, each person by the net outcome of their changes, in the
    /// order the outcomes first came: "alice joined", "alice and bob joined, carol left",
    /// "alice left and came back", "12 joined, 3 left".
    pub fn summary(&self) -> String {
        if let [only] = self.changes.as_slice() {
            return only.describe();
        }
        let mut outcomes: Vec<(Outcome, Vec<&str>)> = Vec::new();
        for (name, outcome) in self.outcomes() {
            match outcomes.iter_mut().find(|(o, _)| *o == outcome) {
                Some((_, names)) => names.push(name),
                None => outcomes.push((outcome, vec![name])),
            }
        }
        outcomes
            .iter()
            .map(|(outcome, names)| {
                let verb = outcome.verb();
                match names.as_slice() {
                    [one] => format!("{one} {verb}"),
                    [a, b] => format!("{a} and {b} {verb}"),
                    [a, b, c] => format!("{a}, {b} and {c} {verb}"),
                    many => format!("{} {verb}", many.len()),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Each person once (by the name of their first change), in the order of their first
    /// change, with the net outcome of the run for them.
    fn outcomes(&self) -> Vec<(&str, Outcome)> {
        let mut order: Vec<&str> = Vec::new();
        let mut spans: HashMap<String, (ChangeKind, ChangeKind, bool)> = HashMap::new();
        for change in &self.changes {
            let key = chat_shared::fold(&change.name);
            let returned = change.kind == ChangeKind::Returned;
            if let Some((_, last, all_returned)) = spans.get_mut(&key) {
                *last = change.kind;
                *all_returned &= returned;
            } else {
                order.push(&change.name);
                spans.insert(key, (change.kind, change.kind, returned));
            }
        }
        order
            .into_iter()
            .filter_map(|name| {
                let (first, last, all_returned) = spans.get(&chat_shared::fold(name))?;
                // In before the run: their first change was to leave or to come back.
                let before = *first != ChangeKind::Joined;
                let outcome = match (before, last.is_in()) {
                    (true, true) if *all_returned => Outcome::Reconnected,
                    (true, true) => Outcome::CameBack,
                    (true, false) => Outcome::Left,
                    (false, true) => Outcome::Joined,
                    (false, false) => Outcome::JoinedAndLeft,
                };
                Some((name, outcome))
            })
            .collect()
    }
}

/// A line the client writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Server time when it relates to a server event, else the local time.
    pub time: Option<u64>,
    /// What happened, in words.
    pub text: String,
    /// How it should stand out.
    pub tone: Tone,
}

/// How a [`Notice`] should stand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something worth knowing.
    Info,
    /// Something went wrong.
    Problem,
}

/// Whether the server holds events older than the oldest in the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Older {
    /// Not known yet (no events held).
    Unknown,
    /// Yes: a `history` request before this seq fetches them.
    Before(u64),
    /// A request for the events before this seq is under way.
    Loading(u64),
    /// No: the timeline starts at the first event the server holds.
    None,
}

/// The entries of one room, oldest first, each at a stable [`Pos`].
#[derive(Debug, Clone)]
pub struct Timeline {
    entries: VecDeque<Entry>,
    /// The position of `entries[0]`.
    first: Pos,
    /// The most entries held; the oldest are dropped beyond it.
    capacity: usize,
    /// The oldest seq the server holds (from `welcome`), 0 if none.
    server_oldest: u64,
    /// The oldest seq held of the current epoch, if any.
    oldest_seq: Option<u64>,
    /// Scrolling back stops here: entries before it belong to an earlier epoch.
    epoch_start: Pos,
    loading: Option<u64>,
    /// Whether each person (case-folded) was in after their last change pushed here, and
    /// when that change was.
    presence: HashMap<String, (bool, u64)>,
    me: String,
    me_folded: String,
}

impl Timeline {
    /// An empty timeline for the user `me`, holding at most `capacity` entries.
    pub fn new(me: &str, capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            first: 0,
            capacity: capacity.max(1),
            server_oldest: 0,
            oldest_seq: None,
            epoch_start: 0,
            loading: None,
            presence: HashMap::new(),
            me: me.to_string(),
            me_folded: chat_shared::fold(me),
        }
    }

    /// The position of the oldest entry held.
    pub fn start(&self) -> Pos {
        self.first
    }

    /// One past the position of the newest entry.
    pub fn end(&self) -> Pos {
        self.first + span(self.entries.len())
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at `pos`.
    pub fn get(&self, pos: Pos) -> Option<&Entry> {
        let index = usize::try_from(pos - self.first).ok()?;
        self.entries.get(index)
    }

    /// The entries in `range` (clamped to what is held), with their positions.
    pub fn range(&self, range: Range<Pos>) -> impl DoubleEndedIterator<Item = (Pos, &Entry)> {
        let start = range.start.clamp(self.start(), self.end());
        let end = range.end.clamp(start, self.end());
        let (from, to) = ((start - self.first) as usize, (end - self.first) as usize);
        self.entries
            .range(from..to)
            .enumerate()
            .map(move |(i, entry)| (start + span(i), entry))
    }

    /// The newest entry, with its position.
    pub fn last(&self) -> Option<(Pos, &Entry)> {
        self.entries.back().map(|entry| (self.end() - 1, entry))
    }

    /// How many messages (not joins, leaves or notices) are held.
    pub fn message_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Message(_)))
            .count()
    }

    /// How many messages are held at or after `pos`.
    pub fn messages_since(&self, pos: Pos) -> usize {
        self.range(pos..self.end())
            .filter(|(_, e)| matches!(e, Entry::Message(_)))
            .count()
    }

    /// The user this timeline is for (their posts are `mine`, their name is a mention).
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The user's name changed (the server accepted another spelling).
    pub fn set_me(&mut self, me: &str) {
        me.clone_into(&mut self.me);
        self.me_folded = chat_shared::fold(me);
    }

    /// A new login: the server holds events from `server_oldest` on. With `new_epoch` the
    /// seqs held so far belong to a history the server no longer has: scrolling back stops
    /// at the entries that follow.
    pub fn logged_in(&mut self, server_oldest: u64, new_epoch: bool) {
        self.server_oldest = server_oldest;
        self.loading = None;
        if new_epoch {
            self.oldest_seq = None;
            self.epoch_start = self.end();
        }
    }

    /// Whether older events can be fetched, and from where.
    pub fn older(&self) -> Older {
        match (self.loading, self.oldest_seq) {
            (Some(before), _) => Older::Loading(before),
            (None, None) => Older::Unknown,
            (None, Some(oldest)) if oldest > self.server_oldest.max(1) => Older::Before(oldest),
            (None, Some(_)) => Older::None,
        }
    }

    /// Marks a history request for the events before `before` as under way.
    pub fn loading(&mut self, before: u64) {
        self.loading = Some(before);
    }

    /// Turns a room event from the server into an entry: `None` for frames that are not
    /// events.
    pub fn entry_of(&self, frame: ServerFrame) -> Option<EventEntry> {
        Some(match frame {
            ServerFrame::Message {
                seq,
                time,
                from,
                text,
                me: action,
                deleted,
                reply_to,
                edited,
                reactions,
                ..
            } => {
                let mine = from == self.me;
                let mention = !mine && !deleted && text::mentions(&text, &self.me_folded);
                EventEntry::Message(ChatMessage {
                    seq,
                    time,
                    links: text::links(&text),
                    from,
                    text,
                    mine,
                    mention,
                    action,
                    deleted,
                    reply_to,
                    edited,
                    reactions,
                })
            }
            ServerFrame::Left {
                seq,
                time,
                reason: LeaveReason::Removed | LeaveReason::Banned,
                ..
            }
            | ServerFrame::Topic { seq, time, .. }
            | ServerFrame::Role { seq, time, .. }
            | ServerFrame::Ban { seq, time, .. }
            | ServerFrame::Unban { seq, time, .. }
            | ServerFrame::Mute { seq, time, .. }
            | ServerFrame::Unmute { seq, time, .. }
            | ServerFrame::Settings { seq, time, .. }
            | ServerFrame::Invite { seq, time, .. } => EventEntry::Step(Step {
                seq,
                time,
                text: super::moderation::describe(&frame, time)?,
            }),
            ServerFrame::Joined {
                seq, time, name, ..
            } => EventEntry::Change(PresenceChange {
                seq,
                time,
                name,
                kind: ChangeKind::Joined,
            }),
            ServerFrame::Left {
                seq,
                time,
                name,
                reason,
                ..
            } => EventEntry::Change(PresenceChange {
                seq,
                time,
                name,
                kind: ChangeKind::Left(reason),
            }),
            _ => return None,
        })
    }

    /// The oldest message after `seq`, looking back from the newest only as far as that
    /// (what is new is at the end).
    pub fn first_message_after(&self, seq: u64) -> Option<Pos> {
        let mut first = None;
        for (pos, entry) in self.range(self.start()..self.end()).rev() {
            if let Entry::Message(message) = entry {
                if message.seq <= seq {
                    break;
                }
                first = Some(pos);
            }
        }
        first
    }

    /// Whether the last change of this person pushed here left them in the room (`None`:
    /// none was).
    pub fn was_in(&self, name: &str) -> Option<bool> {
        self.presence
            .get(&chat_shared::fold(name))
            .map(|(was_in, _)| *was_in)
    }

    /// When this person last came in, as far as this timeline saw (server time, ms).
    pub fn online_since(&self, name: &str) -> Option<u64> {
        match self.presence.get(&chat_shared::fold(name)) {
            Some((true, time)) => Some(*time),
            _ => None,
        }
    }

    /// Appends a live event (or one replayed at login). The user's own joins and leaves
    /// are not shown: a reconnect shows nothing. Returns the position of the entry it
    /// went into.
    pub fn push_event(&mut self, event: EventEntry) -> Option<Pos> {
        if self.oldest_seq.is_none() {
            self.oldest_seq = Some(event.seq());
        }
        match event {
            EventEntry::Message(message) => Some(self.push(Entry::Message(message))),
            EventEntry::Step(step) => Some(self.push(Entry::Step(step))),
            EventEntry::Change(change) if chat_shared::fold(&change.name) == self.me_folded => None,
            EventEntry::Change(change) => {
                self.presence.insert(
                    chat_shared::fold(&change.name),
                    (change.kind.is_in(), change.time),
                );
                if let Some(Entry::Presence(run)) = self.entries.back_mut() {
                    run.changes.push(change);
                    return Some(self.end() - 1);
                }
                Some(self.push(Entry::Presence(Presence {
                    changes: vec![change],
                })))
            }
        }
    }

    /// Appends a notice of the client's own.
    pub fn notice(&mut self, time: Option<u64>, text: impl Into<String>, tone: Tone) -> Pos {
        self.push(Entry::Notice(Notice {
            time,
            text: text.into(),
            tone,
        }))
    }

    fn push(&mut self, entry: Entry) -> Pos {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
            self.first += 1;
        }
        self.entries.push_back(entry);
        self.end() - 1
    }

    /// Puts an answer to a `history` request (events before `before`, oldest first) in
    /// front of what is held, keeping only what is older than the oldest event held.
    /// Returns how many entries were added.
    pub fn prepend_history(&mut self, before: u64, events: Vec<EventEntry>) -> usize {
        if self.loading == Some(before) {
            self.loading = None;
        }
        let Some(oldest) = self.oldest_seq else {
            return 0;
        };
        if self.epoch_start > self.first {
            // The front holds an earlier epoch: the answer would land in the wrong place.
            return 0;
        }
        let mut added = 0;
        let mut new_oldest = oldest;
        for event in events.into_iter().rev() {
            let seq = event.seq();
            if seq >= new_oldest {
                continue;
            }
            new_oldest = seq;
            match event {
                EventEntry::Message(message) => {
                    self.push_front(Entry::Message(message));
                    added += 1;
                }
                EventEntry::Step(step) => {
                    self.push_front(Entry::Step(step));
                    added += 1;
                }
                EventEntry::Change(change) if chat_shared::fold(&change.name) == self.me_folded => {
                }
                EventEntry::Change(change) => {
                    if let Some(Entry::Presence(run)) = self.entries.front_mut() {
                        run.changes.insert(0, change);
                    } else {
                        self.push_front(Entry::Presence(Presence {
                            changes: vec![change],
                        }));
                        added += 1;
                    }
                }
            }
        }
        if new_oldest == oldest {
            // Nothing older came back: the server no longer holds it.
            self.server_oldest = self.server_oldest.max(oldest);
        }
        self.oldest_seq = Some(new_oldest);
        // Full: what was fetched stays, the newest go (the view is reading back).
        self.entries.truncate(self.capacity);
        self.epoch_start = self.epoch_start.min(self.first);
        added
    }

    /// Applies an event that changes a message in place (a deletion, an edit, a
    /// reaction); other events change nothing. Returns whether it changed a message held.
    pub fn change(&mut self, frame: &ServerFrame) -> bool {
        match frame {
            // A deleted message is changed in place; the event itself shows nothing more.
            ServerFrame::Deleted { target, .. } => self.erase(*target),
            ServerFrame::Edited {
                target, text, time, ..
            } => self.edit(*target, text, *time),
            ServerFrame::Reaction {
                target,
                from,
                emoji,
                on,
                ..
            } => self.react(*target, from, emoji, *on),
            _ => false,
        }
    }

    /// A message was deleted: it stays in its place, without its text. Returns whether
    /// the timeline holds it.
    pub fn erase(&mut self, seq: u64) -> bool {
        let found = self.entries.iter_mut().rev().find_map(|entry| match entry {
            Entry::Message(message) if message.seq == seq => Some(message),
            _ => None,
        });
        let Some(message) = found else {
            return false;
        };
        message.deleted = true;
        message.mention = false;
        message.text.clear();
        message.links.clear();
        message.edited = None;
        message.reactions.clear();
        true
    }

    /// A message was edited: its text (and what it links to and whether it mentions the
    /// user) changes in place, with when. Returns whether the timeline holds it.
    pub fn edit(&mut self, seq: u64, text: &str, time: u64) -> bool {
        let me = self.me_folded.clone();
        self.amend(seq, |message| {
            message.text = text.to_string();
            message.links = super::text::links(text);
            message.mention = !message.mine && super::text::mentions(text, &me);
            message.edited = Some(time);
        })
    }

    /// A reaction was added or taken back. Returns whether the timeline holds the message.
    pub fn react(&mut self, seq: u64, from: &str, emoji: &str, on: bool) -> bool {
        self.amend(seq, |message| {
            chat_shared::apply_reaction(&mut message.reactions, from, emoji, on);
        })
    }

    /// The message at `seq`, if the timeline holds it.
    pub fn message(&self, seq: u64) -> Option<(Pos, &ChatMessage)> {
        self.range(self.start()..self.end())
            .rev()
            .find_map(|(pos, entry)| match entry {
                Entry::Message(message) if message.seq == seq => Some((pos, message)),
                _ => None,
            })
    }

    /// The user's newest message that is not deleted, if any is held.
    pub fn last_own(&self) -> Option<&ChatMessage> {
        self.entries.iter().rev().find_map(|entry| match entry {
            Entry::Message(message) if message.mine && !message.deleted => Some(message),
            _ => None,
        })
    }

    /// Changes a live message in place; whether it was held.
    fn amend(&mut self, seq: u64, change: impl FnOnce(&mut ChatMessage)) -> bool {
        let found = self.entries.iter_mut().rev().find_map(|entry| match entry {
            Entry::Message(message) if message.seq == seq && !message.deleted => Some(message),
            _ => None,
        });
        found.map(change).is_some()
    }

    /// A `history` request could not be answered (the connection dropped).
    pub fn history_failed(&mut self) {
        self.loading = None;
    }

    fn push_front(&mut self, entry: Entry) {
        self.entries.push_front(entry);
        self.first -= 1;
    }

    /// The oldest and newest seq of the current epoch held, for tests and the view.
    pub fn seq_span(&self) -> Option<(u64, u64)> {
        let oldest = self.oldest_seq?;
        let newest = self.entries.iter().rev().find_map(Entry::newest_seq)?;
        Some((oldest, newest))
    }

    /// The oldest seq any entry holds.
    pub fn first_seq(&self) -> Option<u64> {
        self.entries.iter().find_map(Entry::oldest_seq)
    }
}

/// A room event ready to go into a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventEntry {
    /// A message.
    Message(ChatMessage),
    /// A join or a leave.
    Change(PresenceChange),
    /// A moderator's step.
    Step(Step),
}

impl EventEntry {
    /// Its room seq.
    pub fn seq(&self) -> u64 {
        match self {
            EventEntry::Message(message) => message.seq,
            EventEntry::Change(change) => change.seq,
            EventEntry::Step(step) => step.seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, from: &str, text: &str) -> ServerFrame {
        ServerFrame::Message {
            with: None,
            me: false,
            room: None,
            seq,
            time: seq * 1000,
            from: from.into(),
            text: text.into(),
            id: None,
            deleted: false,
            reply_to: None,
            edited: None,
            reactions: Vec::new(),
        }
    }

    fn joined(seq: u64, name: &str) -> ServerFrame {
        ServerFrame::Joined {
            room: None,
            seq,
            time: seq * 1000,
            name: name.into(),
        }
    }

    fn left(seq: u64, name: &str) -> ServerFrame {
        ServerFrame::Left {
            room: None,
            seq,
            time: seq * 1000,
            name: name.into(),
            reason: LeaveReason::Lost,
            by: None,
            message: None,
        }
    }

    fn push(timeline: &mut Timeline, frame: ServerFrame) -> Option<Pos> {
        let event = timeline.entry_of(frame).expect("an event");
        timeline.push_event(event)
    }

    #[test]
    fn joins_and_leaves_fold_into_one_entry_between_messages() {
        let mut timeline = Timeline::new("me", 100);
        push(&mut timeline, message(1, "bob", "hi"));
        for seq in 2..14 {
            push(&mut timeline, joined(seq, &format!("u{seq}")));
        }
        push(&mut timeline, left(14, "u2"));
        push(&mut timeline, left(15, "u3"));
        push(&mut timeline, left(16, "u4"));
        push(&mut timeline, message(17, "bob", "welcome all"));
        assert_eq!(timeline.len(), 3);
        let Some(Entry::Presence(run)) = timeline.get(1) else {
            panic!("a presence run")
        };
        assert_eq!(run.summary(), "u2, u3 and u4 joined and left, 9 joined");
        assert_eq!(run.changes.len(), 15);
    }

    #[test]
    fn a_run_names_each_person_once() {
        let mut timeline = Timeline::new("me", 100);
        push(&mut timeline, message(1, "bob", "hi"));
        push(&mut timeline, joined(2, "x"));
        push(&mut timeline, left(3, "x"));
        push(&mut timeline, joined(4, "x"));
        push(&mut timeline, joined(5, "carol"));
        let Some(Entry::Presence(run)) = timeline.get(1) else {
            panic!("a presence run")
        };
        // x came, went and came again: x is in, as carol is.
        assert_eq!(run.summary(), "x and carol joined");
        assert_eq!(run.changes.len(), 4, "each change is still listed");
    }

    #[test]
    fn a_run_tells_the_net_outcome_in_order() {
        let mut timeline = Timeline::new("me", 100);
        push(&mut timeline, joined(1, "alice"));
        push(&mut timeline, joined(2, "bob"));
        push(&mut timeline, message(3, "bob", "hi"));
        push(&mut timeline, left(4, "alice"));
        push(&mut timeline, joined(5, "alice"));
        let Some(Entry::Presence(run)) = timeline.get(2) else {
            panic!("a presence run")
        };
        assert_eq!(run.summary(), "alice left and came back");
        let expanded: Vec<String> = run.changes.iter().map(PresenceChange::describe).collect();
        assert_eq!(
            expanded,
            ["alice left (lost the connection)", "alice joined"]
        );
        push(&mut timeline, left(6, "bob"));
        push(&mut timeline, joined(7, "carol"));
        push(&mut timeline, left(8, "carol"));
        let Some(Entry::Presence(run)) = timeline.get(2) else {
            panic!("a presence run")
        };
        assert_eq!(
            run.summary(),
            "alice left and came back, bob left, carol joined and left"
        );
    }

    #[test]
    fn leaving_a_room_is_said_once() {
        let change = PresenceChange {
            seq: 1,
            time: 0,
            name: "bob".into(),
            kind: ChangeKind::Left(LeaveReason::Part),
        };
        assert_eq!(change.describe(), "bob left");
    }

    #[test]
    fn own_joins_and_leaves_are_not_shown() {
        let mut timeline = Timeline::new("Me", 100);
        assert_eq!(push(&mut timeline, left(1, "me")), None);
        assert_eq!(push(&mut timeline, joined(2, "ME")), None);
        assert!(timeline.is_empty());
    }

    #[test]
    fn mentions_and_own_posts_are_marked() {
        let mut timeline = Timeline::new("alice", 100);
        push(&mut timeline, message(1, "bob", "Alice, look"));
        push(&mut timeline, message(2, "alice", "alice here"));
        let flags: Vec<(bool, bool)> = timeline
            .range(timeline.start()..timeline.end())
            .map(|(_, e)| match e {
                Entry::Message(m) => (m.mine, m.mention),
                _ => panic!("messages only"),
            })
            .collect();
        assert_eq!(flags, [(false, true), (true, false)]);
    }

    #[test]
    fn history_goes_in_front_without_moving_what_is_held() {
        let mut timeline = Timeline::new("me", 100);
        timeline.logged_in(1, false);
        let p10 = push(&mut timeline, message(10, "bob", "ten")).expect("pos");
        push(&mut timeline, message(11, "bob", "eleven"));
        assert_eq!(timeline.older(), Older::Before(10));
        timeline.loading(10);
        assert_eq!(timeline.older(), Older::Loading(10));
        // The page overlaps what is held (seq 10): only the older events go in.
        let page: Vec<EventEntry> = [message(5, "a", "five"), joined(6, "x"), left(7, "y")]
            .into_iter()
            .chain([message(8, "a", "eight"), message(10, "bob", "ten")])
            .map(|f| timeline.entry_of(f).expect("event"))
            .collect();
        assert_eq!(timeline.prepend_history(10, page), 3);
        assert!(matches!(timeline.get(p10), Some(Entry::Message(m)) if m.text == "ten"));
        let texts: Vec<String> = timeline
            .range(timeline.start()..timeline.end())
            .map(|(_, e)| match e {
                Entry::Message(m) => m.text.clone(),
                Entry::Presence(p) => p.summary(),
                Entry::Notice(n) => n.text.clone(),
                Entry::Step(s) => s.text.clone(),
            })
            .collect();
        assert_eq!(
            texts,
            ["five", "x joined, y left", "eight", "ten", "eleven"]
        );
        assert_eq!(timeline.older(), Older::Before(5));
        let page = vec![timeline.entry_of(message(1, "a", "one")).expect("event")];
        timeline.prepend_history(5, page);
        assert_eq!(timeline.older(), Older::None, "seq 1 is the beginning");
    }

    #[test]
    fn a_new_epoch_stops_scrolling_back_at_its_start() {
        let mut timeline = Timeline::new("me", 100);
        timeline.logged_in(1, false);
        push(&mut timeline, message(40, "bob", "old epoch"));
        timeline.logged_in(3, true);
        push(&mut timeline, message(5, "bob", "new epoch"));
        assert_eq!(timeline.older(), Older::Before(5));
        let page = vec![timeline.entry_of(message(4, "bob", "four")).expect("event")];
        assert_eq!(
            timeline.prepend_history(5, page),
            0,
            "not in front of the old epoch"
        );
    }

    #[test]
    fn the_oldest_entries_go_when_full_and_positions_stay() {
        let mut timeline = Timeline::new("me", 3);
        let positions: Vec<Pos> = (1..=5)
            .filter_map(|seq| push(&mut timeline, message(seq, "bob", &seq.to_string())))
            .collect();
        assert_eq!(positions, [0, 1, 2, 3, 4]);
        assert_eq!(timeline.start(), 2);
        assert!(timeline.get(1).is_none());
        assert!(matches!(timeline.get(4), Some(Entry::Message(m)) if m.text == "5"));
    }
}
