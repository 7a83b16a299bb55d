//! `labeled-response`: a client tags a command with `label`, and what answers that
//! command comes back with the same label (one line), in a `labeled-response` batch
//! (several lines), or as `ACK` (nothing).
//!
//! What the reader answers itself it labels at once. What the hub answers arrives later,
//! among everything else the connection is sent, so the reader says what will answer each
//! frame the command became ([`Awaits`]), and the renderer collects those answers' lines
//! until the last one has come. The hub answers one connection's frames in order and
//! names what it answers: a post by its `id` (the reader gives a labeled post one), a
//! room's command by the event it caused (by this member) or by an `error` naming the room.

use std::collections::VecDeque;

use chat_shared::{ClientFrame, LeaveReason, ServerFrame, fold};

use super::line::{Out, escape};
use super::names::{key, place};

/// The most labeled commands waiting for their answers: past it the oldest is forgotten
/// (its answers come unlabeled), so a client that labels what is never answered does not
/// grow its connection's memory.
const MAX_WAITING: usize = 256;

/// What answers one frame of a labeled command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaits {
    /// The poster's own `message` with this `id`, or an `error` with it.
    Post(String),
    /// An answer about the room (by key; `@` and a key for a direct conversation).
    Room(String, Kind),
    /// A page of history of this room or conversation.
    History(String),
    /// The `pong` with this token.
    Pong(String),
    /// The list of rooms.
    List,
}

/// Which event of a room answers a command about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The room's members and topic, for the one who joined.
    Join,
    /// One's own `left`.
    Part,
    /// A `left` of someone else that one put out.
    Remove,
    /// The rest: the event of the same name, by oneself.
    Topic,
    Role,
    Ban,
    Unban,
    Mute,
    Unmute,
    Settings,
    Invite,
    Delete,
    React,
}

impl Awaits {
    /// What answers `frame`, a frame a labeled command became (`None`: nothing does).
    pub fn of(frame: &ClientFrame) -> Option<Self> {
        let room = |room: &str, kind| Some(Self::Room(key(room), kind));
        let in_place = |room: &Option<String>, with: &Option<String>, kind| {
            place(room.as_deref(), with.as_deref()).map(|place| Self::Room(place, kind))
        };
        match frame {
            ClientFrame::Say { id: Some(id), .. } => Some(Self::Post(id.clone())),
            ClientFrame::Join { room: name, .. } => room(name, Kind::Join),
            ClientFrame::Part { room: name } => room(name, Kind::Part),
            ClientFrame::Remove { room: name, .. } => room(name, Kind::Remove),
            ClientFrame::Topic { room: name, .. } => room(name, Kind::Topic),
            ClientFrame::Role { room: name, .. } => room(name, Kind::Role),
            ClientFrame::Ban {
                room: Some(name), ..
            } => room(name, Kind::Ban),
            ClientFrame::Unban {
                room: Some(name), ..
            } => room(name, Kind::Unban),
            ClientFrame::Mute { room: name, .. } => room(name, Kind::Mute),
            ClientFrame::Unmute { room: name, .. } => room(name, Kind::Unmute),
            ClientFrame::Settings { room: name, .. } => room(name, Kind::Settings),
            ClientFrame::Invite { room: name, .. } => room(name, Kind::Invite),
            ClientFrame::Delete { room, with, .. } => in_place(room, with, Kind::Delete),
            ClientFrame::React { room, with, .. } => in_place(room, with, Kind::React),
            ClientFrame::History { room, with, .. } => {
                place(room.as_deref(), with.as_deref()).map(Self::History)
            }
            ClientFrame::Ping { token: Some(token) } => Some(Self::Pong(token.clone())),
            ClientFrame::Rooms => Some(Self::List),
            _ => None,
        }
    }

    /// Whether `frame`, sent to the member whose key is `me`, answers this.
    fn answered_by(&self, frame: &ServerFrame, me: &str) -> bool {
        let by_me = |name: &str| fold(name) == me;
        let place = |room: &Option<String>, with: &Option<String>| {
            place(room.as_deref(), with.as_deref()).unwrap_or_default()
        };
        match (self, frame) {
            (
                Self::Post(id),
                ServerFrame::Message {
                    id: Some(got),
                    from,
                    ..
                },
            ) => got == id && by_me(from),
            (Self::Post(id), ServerFrame::Error { id: Some(got), .. }) => got == id,
            (
                Self::Room(place_key, _) | Self::History(place_key),
                ServerFrame::Error {
                    id: None,
                    room: Some(room),
                    ..
                },
            ) => key(room) == *place_key,
            (Self::Room(place_key, kind), frame) => {
                let (room, matches) = match (kind, frame) {
                    (Kind::Join, ServerFrame::Room { room, .. }) => (Some(room.as_str()), true),
                    (Kind::Part, ServerFrame::Left { room, name, .. }) => {
                        (room.as_deref(), by_me(name))
                    }
                    (
                        Kind::Remove,
                        ServerFrame::Left {
                            room,
                            reason: LeaveReason::Removed,
                            by: Some(by),
                            ..
                        },
                    )
                    | (Kind::Ban, ServerFrame::Ban { room, by, .. })
                    | (Kind::Unban, ServerFrame::Unban { room, by, .. }) => {
                        (room.as_deref(), by_me(by))
                    }
                    (Kind::Topic, ServerFrame::Topic { room, by, .. })
                    | (Kind::Role, ServerFrame::Role { room, by, .. })
                    | (Kind::Mute, ServerFrame::Mute { room, by, .. })
                    | (Kind::Unmute, ServerFrame::Unmute { room, by, .. })
                    | (Kind::Settings, ServerFrame::Settings { room, by, .. })
                    | (Kind::Invite, ServerFrame::Invite { room, by, .. }) => {
                        (Some(room.as_str()), by_me(by))
                    }
                    (Kind::Delete, ServerFrame::Deleted { room, with, by, .. }) => {
                        return by_me(by) && place(room, with) == *place_key;
                    }
                    (
                        Kind::React,
                        ServerFrame::Reaction {
                            room, with, from, ..
                        },
                    ) => {
                        return by_me(from) && place(room, with) == *place_key;
                    }
                    _ => (None, false),
                };
                matches && room.is_some_and(|room| key(room) == *place_key)
            }
            (Self::Pong(token), ServerFrame::Pong { token: Some(got) }) => got == token,
            (Self::List, ServerFrame::RoomList { .. }) => true,
            _ => false,
        }
    }
}

/// The labeled commands of one connection still waiting for answers, oldest first.
#[derive(Debug, Default)]
pub struct Labels {
    waiting: VecDeque<Waiting>,
    /// The number the next one gets.
    next: u64,
}

#[derive(Debug)]
struct Waiting {
    n: u64,
    label: String,
    awaits: Vec<Awaits>,
    /// The answers' lines so far.
    lines: String,
}

/// An answer taken for a labeled command: its lines go to [`Labels::fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken(u64);

/// A labeled command all of whose answers have come.
#[derive(Debug)]
pub struct Answered {
    label: String,
    lines: String,
}

impl Labels {
    /// Waits for `awaits` to answer the command labeled `label`, whose first lines (the
    /// reader's own) are `lines`.
    pub fn wait(&mut self, label: String, awaits: Vec<Awaits>, lines: String) {
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
        }
        self.next += 1;
        self.waiting.push_back(Waiting {
            n: self.next,
            label,
            awaits,
            lines,
        });
    }

    /// If `frame` answers a labeled command (the oldest one it can), takes it as that
    /// command's answer.
    pub fn take(&mut self, frame: &ServerFrame, me: &str) -> Option<Taken> {
        self.take_where(|awaits| awaits.answered_by(frame, me))
    }

    /// If the poster's own message with `id` answers a labeled command, takes it.
    pub fn take_post(&mut self, id: &str) -> Option<Taken> {
        self.take_where(|awaits| matches!(awaits, Awaits::Post(got) if got == id))
    }

    /// If a page of history of `key` answers a labeled command, takes it.
    pub fn take_history(&mut self, place: &str) -> Option<Taken> {
        self.take_where(|awaits| matches!(awaits, Awaits::History(got) if got == place))
    }

    fn take_where(&mut self, answers: impl Fn(&Awaits) -> bool) -> Option<Taken> {
        self.waiting.iter_mut().find_map(|waiting| {
            let at = waiting.awaits.iter().position(&answers)?;
            waiting.awaits.swap_remove(at);
            Some(Taken(waiting.n))
        })
    }

    /// Adds the lines of an answer taken; once its command has all its answers, it is
    /// done.
    pub fn fill(&mut self, taken: Taken, lines: &str) -> Option<Answered> {
        let at = self
            .waiting
            .iter()
            .position(|waiting| waiting.n == taken.0)?;
        let waiting = &mut self.waiting[at];
        waiting.lines.push_str(lines);
        if !waiting.awaits.is_empty() {
            return None;
        }
        let waiting = self.waiting.remove(at)?;
        Some(Answered {
            label: waiting.label,
            lines: waiting.lines,
        })
    }
}

impl Answered {
    /// A command answered at once with `lines`.
    pub fn now(label: String, lines: String) -> Self {
        Self { label, lines }
    }

    /// Writes the answer: one line with the label, several in a `labeled-response` batch
    /// (`batch` gives the batch's id; without one, they go unlabeled), none as `ACK`.
    pub fn write(self, batch: impl FnOnce() -> Option<String>, out: &mut Out) {
        let mut label = String::from("label=");
        escape(&self.label, &mut label);
        let count = self.lines.split_inclusive('\n').count();
        match count {
            0 => out.server_tagged(&label, "ACK").params(&[]),
            1 => out.add_tags(&label, &self.lines),
            _ => match batch() {
                None => out.push_str(&self.lines),
                Some(id) => {
                    out.server_tagged(&label, "BATCH")
                        .params(&[&format!("+{id}"), "labeled-response"]);
                    let tag = format!("batch={id}");
                    for line in self.lines.split_inclusive('\n') {
                        if in_inner_batch(line) {
                            out.push_str(line);
                        } else {
                            out.add_tags(&tag, line);
                        }
                    }
                    out.server("BATCH").params(&[&format!("-{id}")]);
                }
            },
        }
    }
}

/// Whether `line` belongs to a batch inside the answer (a page of history), which keeps
/// its own lines: one tagged `batch`, or the inner batch's end. The inner batch's start
/// line is the one that goes in the labeled batch.
fn in_inner_batch(line: &str) -> bool {
    let (tags, rest) = match line.strip_prefix('@') {
        Some(tagged) => tagged.split_once(' ').unwrap_or((tagged, "")),
        None => ("", line),
    };
    if tags
        .split(';')
        .any(|tag| tag.split('=').next() == Some("batch"))
    {
        return true;
    }
    let command = rest
        .strip_prefix(':')
        .and_then(|sourced| sourced.split_once(' '))
        .map_or(rest, |(_, command)| command);
    command.starts_with("BATCH -")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn write(answered: Answered) -> String {
        let mut out = Out::new(&Arc::from("chat"));
        answered.write(|| Some("7".into()), &mut out);
        out.into_string()
    }

    #[test]
    fn none_one_or_several_lines_are_an_ack_a_labeled_line_or_a_batch() {
        let ack = write(Answered::now("a;b".into(), String::new()));
        assert_eq!(ack, "@label=a\\:b :chat ACK\r\n");
        let one = write(Answered::now(
            "x".into(),
            "@time=1 :ann!~u@chat PRIVMSG #r :hi\r\n".into(),
        ));
        assert_eq!(one, "@label=x;time=1 :ann!~u@chat PRIVMSG #r :hi\r\n");
        let several = write(Answered::now(
            "x".into(),
            ":chat 353 ann = #r :ann\r\n:chat 366 ann #r :End\r\n".into(),
        ));
        assert_eq!(
            several,
            "@label=x :chat BATCH +7 labeled-response\r\n\
             @batch=7 :chat 353 ann = #r :ann\r\n\
             @batch=7 :chat 366 ann #r :End\r\n\
             :chat BATCH -7\r\n"
        );
        // A page of history keeps its own batch inside; text that looks like a batch's
        // tag or end is text.
        let page = write(Answered::now(
            "h".into(),
            ":chat BATCH +1 chathistory #r\r\n\
             @batch=1;time=1 :ann!~u@chat PRIVMSG #r :a;batch=2 BATCH -1\r\n\
             :chat BATCH -1\r\n\
             :ann!~u@chat PRIVMSG #r :x;batch=3 BATCH -4\r\n"
                .into(),
        ));
        assert_eq!(
            page,
            "@label=h :chat BATCH +7 labeled-response\r\n\
             @batch=7 :chat BATCH +1 chathistory #r\r\n\
             @batch=1;time=1 :ann!~u@chat PRIVMSG #r :a;batch=2 BATCH -1\r\n\
             :chat BATCH -1\r\n\
             @batch=7 :ann!~u@chat PRIVMSG #r :x;batch=3 BATCH -4\r\n\
             :chat BATCH -7\r\n"
        );
    }

    #[test]
    fn answers_are_matched_to_the_oldest_command_they_answer_and_done_with_the_last() {
        let mut labels = Labels::default();
        let say = |id: &str| ClientFrame::Say {
            room: Some("r".into()),
            to: None,
            text: "hi".into(),
            id: Some(id.into()),
            me: false,
            reply_to: None,
        };
        let awaits = [say("p1"), say("p2")]
            .iter()
            .filter_map(Awaits::of)
            .collect();
        labels.wait("two".into(), awaits, ":chat 404 ann #x :no\r\n".into());
        let join = Awaits::of(&ClientFrame::Join {
            room: "Rust".into(),
            since: None,
        });
        labels.wait("join".into(), join.into_iter().collect(), String::new());
        let error = ServerFrame::Error {
            room: Some("rust".into()),
            code: chat_shared::ErrorCode::InvalidRoom,
            message: "no".into(),
            id: None,
            retry_after: None,
            until: None,
        };
        let taken = labels.take(&error, "ann").expect("the join's answer");
        let done = labels
            .fill(taken, ":chat 403 ann #rust :no\r\n")
            .expect("done");
        assert_eq!(done.label, "join");
        let echo = |id: &str, from: &str| ServerFrame::Message {
            room: Some("r".into()),
            with: None,
            seq: 1,
            time: 1,
            from: from.into(),
            text: "hi".into(),
            id: Some(id.into()),
            me: false,
            deleted: false,
            reply_to: None,
            edited: None,
            reactions: Vec::new(),
        };
        assert_eq!(labels.take(&echo("p2", "bob"), "ann"), None, "not mine");
        let taken = labels
            .take(&echo("p2", "Ann"), "ann")
            .expect("the second post");
        assert!(labels.fill(taken, "").is_none(), "one post to come");
        let taken = labels
            .take(&echo("p1", "ann"), "ann")
            .expect("the first post");
        let done = labels.fill(taken, "").expect("both posts came");
        assert_eq!(done.label, "two");
        assert_eq!(done.lines, ":chat 404 ann #x :no\r\n");
        assert!(labels.waiting.is_empty());
    }
}
