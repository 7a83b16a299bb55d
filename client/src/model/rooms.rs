//! The rooms the user is in, in the order of the sidebar: which one is shown, what is new
//! in the others, what mentions the user. Frames from the connection go in; what the user
//! must be told (a desktop notification) comes out.

use chat_shared::{ErrorCode, RoomUsers, ServerFrame};

use super::key::{DIRECT, direct_with, room_key};
use super::moderation::Moderation;
use super::room::Room;
use super::session::Session;
use super::text::{capitalized, until_words};
use super::timeline::{Pos, Tone};

/// A room, or a direct conversation (named `@name`), in the sidebar.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Its case-folded name: how frames are matched to it.
    pub key: String,
    /// The room.
    pub room: Room,
    /// Messages from others not seen yet (counted while the room is not shown).
    pub unread: usize,
    /// How many of those mention the user.
    pub mentions: usize,
    /// The newest seq the user has seen shown (what is unread comes after it).
    read_seq: u64,
    /// Where the user left off, when the room was shown with unread messages: the first
    /// message that was new then, with a "New messages" line before it.
    pub left_off: Option<Pos>,
}

/// What the user should be told outside the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The room.
    pub room: String,
    /// Who.
    pub from: String,
    /// What they said.
    pub text: String,
}

/// The rooms of the chat.
#[derive(Debug, Clone)]
pub struct Rooms {
    me: String,
    list: Vec<Joined>,
    /// Which one is shown (an index into `list`), if any.
    active: Option<usize>,
    /// The key of the room shown before it: shown again when the user leaves this one.
    previous: Option<String>,
    default_room: String,
    /// The last `room_list` the server sent.
    directory: Option<Vec<RoomUsers>>,
    /// Invitations to rooms the user is not in: the room and who invited.
    invitations: Vec<(String, String)>,
}

/// The key of the room or conversation a frame belongs to.
fn frame_key(frame: &ServerFrame, default_room: &str) -> String {
    match frame.with() {
        Some(with) => room_key(&format!("{DIRECT}{with}")),
        None => room_key(frame.room().unwrap_or(default_room)),
    }
}

impl Joined {
    /// Whether it is a direct conversation.
    pub fn is_direct(&self) -> bool {
        self.key.starts_with(DIRECT)
    }

    /// The other account of a direct conversation.
    pub fn with(&self) -> Option<&str> {
        direct_with(&self.room.name)
    }
}

impl Rooms {
    /// The rooms of a first login; `seen` gives the newest seq the user had seen in a
    /// room in an earlier run of the client; `active` is the room to show if it is one.
    pub fn new(session: &Session, seen: impl Fn(&str) -> u64, active: Option<&str>) -> Self {
        let mut rooms = Self {
            me: session.name.clone(),
            list: Vec::new(),
            active: None,
            previous: None,
            default_room: session.default_room.clone(),
            directory: None,
            invitations: Vec::new(),
        };
        for name in &session.rooms {
            rooms.add(name, seen(&room_key(name)));
        }
        rooms.active = active
            .and_then(|name| rooms.index(&room_key(name)))
            .or_else(|| rooms.index(&room_key(&session.default_room)))
            .or((!rooms.list.is_empty()).then_some(0));
        rooms.logged_in(session);
        rooms
    }

    fn entry(&self, name: &str, last_seq: u64) -> Joined {
        let mut room = Room::new(&self.me, name, last_seq);
        if let Some(with) = direct_with(name) {
            // A conversation has no answer from the server: it is its two people.
            let people = [self.me.clone(), with.to_string()];
            room.answered(&people, last_seq, 1);
        }
        Joined {
            key: room_key(name),
            room,
            unread: 0,
            mentions: 0,
            read_seq: last_seq,
            left_off: None,
        }
    }

    fn add(&mut self, name: &str, last_seq: u64) -> usize {
        let entry = self.entry(name, last_seq);
        self.list.push(entry);
        self.list.len() - 1
    }

    /// Opens the conversation with the account `with` (made if new) and shows it;
    /// returns its name (`@with`).
    pub fn open_direct(&mut self, with: &str) -> String {
        let name = format!("{DIRECT}{}", with.trim());
        if !self.activate(&name) {
            let index = self.add(&name, 0);
            self.previous = self.active().map(|joined| joined.key.clone());
            self.active = Some(index);
        }
        name
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.list.iter().position(|joined| joined.key == key)
    }

    /// The rooms, in the order of the sidebar.
    pub fn iter(&self) -> impl Iterator<Item = &Joined> {
        self.list.iter()
    }

    /// Forgets, in every room, who stopped typing by `now` (ms).
    pub fn forget_typing(&mut self, now: u64) {
        for joined in &mut self.list {
            joined.room.forget_typing(now);
        }
    }

    /// How many rooms.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the user is in no room.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A room, by name (with or without `#`, in any case).
    pub fn get(&self, name: &str) -> Option<&Joined> {
        self.index(&room_key(name)).map(|i| &self.list[i])
    }

    /// A room, to change.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Joined> {
        let index = self.index(&room_key(name))?;
        Some(&mut self.list[index])
    }

    /// The room shown.
    pub fn active(&self) -> Option<&Joined> {
        self.active.map(|i| &self.list[i])
    }

    /// The room shown, to change.
    pub fn active_mut(&mut self) -> Option<&mut Joined> {
        self.active.map(|i| &mut self.list[i])
    }

    /// The key of the room (or conversation) a frame is about.
    pub fn key_of(&self, frame: &ServerFrame) -> String {
        frame_key(frame, &self.default_room)
    }

    /// The user's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The server's default room.
    pub fn default_room(&self) -> &str {
        &self.default_room
    }

    /// The last list of rooms the server sent (`/rooms`), if any.
    pub fn directory(&self) -> Option<&[RoomUsers]> {
        self.directory.as_deref()
    }

    /// Forgets the list of rooms, before asking for a fresh one.
    pub fn clear_directory(&mut self) {
        self.directory = None;
    }

    /// Shows a room: what was new in it is seen now. Returns whether it is one of the
    /// user's rooms.
    pub fn activate(&mut self, name: &str) -> bool {
        let Some(index) = self.index(&room_key(name)) else {
            return false;
        };
        if self.active != Some(index) {
            self.previous = self.active().map(|joined| joined.key.clone());
        }
        self.active = Some(index);
        let joined = &mut self.list[index];
        joined.left_off = if joined.unread > 0 {
            joined.room.timeline.first_message_after(joined.read_seq)
        } else {
            None
        };
        joined.unread = 0;
        joined.mentions = 0;
        joined.read_seq = joined.room.last_seq();
        true
    }

    /// The invitations to rooms the user is not in: the room and who invited.
    pub fn invitations(&self) -> &[(String, String)] {
        &self.invitations
    }

    /// Forgets the invitation to a room.
    pub fn dismiss_invitation(&mut self, room: &str) {
        let key = room_key(room);
        self.invitations.retain(|(name, _)| room_key(name) != key);
    }

    /// The user joins `name`: a room of theirs is shown; a new one is added (shown, and
    /// waiting for the server) and `true` returned: the join must be sent. So it is for a
    /// room the user was put out of.
    pub fn join(&mut self, name: &str) -> bool {
        self.dismiss_invitation(name);
        if self.activate(name) {
            return self
                .active()
                .is_some_and(|joined| joined.room.out.is_some());
        }
        let index = self.add(name, 0);
        self.previous = self.active().map(|joined| joined.key.clone());
        self.active = Some(index);
        true
    }

    /// The user leaves `name`; the room next to it is shown if it was. Returns the room's
    /// name as the server spells it, if the user was in it.
    pub fn part(&mut self, name: &str) -> Option<String> {
        let index = self.index(&room_key(name))?;
        let joined = self.list.remove(index);
        let previous = self.previous.as_deref().and_then(|key| self.index(key));
        self.active = match self.active {
            _ if self.list.is_empty() => None,
            // The room shown goes: back to the one shown before it, or its neighbour.
            Some(active) if active == index => previous.or(Some(index.min(self.list.len() - 1))),
            Some(active) if active > index => Some(active - 1),
            other => other,
        };
        if let Some(active) = self.active_mut() {
            active.unread = 0;
            active.mentions = 0;
        }
        Some(joined.room.name)
    }

    /// Logged in (again): the rooms are the session's, in its order (a room the server
    /// would not let the user join is gone); the default room is answered for.
    pub fn logged_in(&mut self, session: &Session) {
        self.me.clone_from(&session.name);
        self.default_room.clone_from(&session.default_room);
        let active = self.active().map(|joined| joined.key.clone());
        let read_of = |name: &str| {
            session
                .conversations_read
                .iter()
                .find(|(conversation, _)| room_key(conversation) == room_key(name))
                .map_or(0, |(_, read)| *read)
        };
        let mut list = Vec::with_capacity(session.rooms.len());
        // Conversations stay, whatever the server says of rooms.
        let mut directs: Vec<Joined> = Vec::new();
        // So do rooms the user was put out of: greyed, until joined again or closed.
        self.list.retain(|joined| {
            if joined.is_direct() || joined.room.out.is_some() {
                directs.push(joined.clone());
            }
            !joined.is_direct() && joined.room.out.is_none()
        });
        for name in &session.rooms {
            let key = room_key(name);
            if direct_with(name).is_some() {
                if !directs.iter().any(|joined| joined.key == key) {
                    directs.push(self.entry(name, 0));
                }
                continue;
            }
            let joined = match self.index(&key) {
                Some(index) => self.list.swap_remove(index),
                None => Joined {
                    key,
                    room: Room::new(&self.me, name, 0),
                    unread: 0,
                    mentions: 0,
                    read_seq: 0,
                    left_off: None,
                },
            };
            list.push(joined);
        }
        self.list = list;
        for joined in &mut self.list {
            joined.room.logged_in(&session.name, session.new_epoch);
            if session.new_epoch {
                joined.read_seq = 0;
            }
        }
        for joined in &mut directs {
            // A conversation is answered by the login itself: what comes after the last
            // message seen is new (a new epoch forgets what was seen).
            joined.room.logged_in(&session.name, session.new_epoch);
            if session.new_epoch {
                joined.read_seq = 0;
            }
            if joined.room.out.is_some() {
                continue;
            }
            let people = [
                session.name.clone(),
                joined.with().unwrap_or_default().to_string(),
            ];
            // What the account read, here or on another device, is not new.
            let seen = joined.room.last_seq().max(read_of(&joined.room.name));
            joined.room.answered(&people, seen, 1);
        }
        self.list.extend(directs);
        for (name, _) in &session.conversations {
            if self.index(&room_key(name)).is_none() {
                let index = self.add(name, 0);
                let joined = &mut self.list[index];
                let people = [
                    session.name.clone(),
                    joined.with().unwrap_or_default().to_string(),
                ];
                joined.room.answered(&people, read_of(name), 1);
            }
        }
        self.invitations.clone_from(&session.invites);
        self.active = active
            .and_then(|key| self.index(&key))
            .or((!self.list.is_empty()).then_some(0));
        if let Some(joined) = self.get_mut(&session.default_room) {
            joined
                .room
                .answered(&session.users, session.seq, session.oldest);
        }
    }

    /// A notice in every room (the connection came or went).
    pub fn notice_all(&mut self, text: &str, tone: Tone) {
        for joined in &mut self.list {
            joined.room.timeline.notice(None, text, tone);
        }
    }

    /// A notice in the room shown (or, with none, nowhere).
    pub fn notice(&mut self, text: &str, tone: Tone) {
        if let Some(joined) = self.active_mut() {
            joined.room.timeline.notice(None, text, tone);
        }
    }

    /// A frame from the connection. `focused`: whether the user is looking at the window.
    /// Returns what to notify outside the window: a live message that mentions the user
    /// while the window is not focused.
    pub fn received(&mut self, frame: ServerFrame, focused: bool) -> Option<Notify> {
        match frame {
            ServerFrame::Room {
                ref room,
                ref users,
                seq,
                oldest,
                ref state,
                read,
            } => {
                let joined = self.get_mut(room)?;
                joined.room.name.clone_from(room);
                joined.room.moderation_answered(Moderation::answered(state));
                let lost = joined.room.answered(users, seq, oldest);
                // What the account read elsewhere is read here too: the "New messages"
                // line goes after it.
                joined.room.read_up_to(read);
                joined.read_seq = joined.read_seq.max(read);
                if lost {
                    joined.room.timeline.notice(
                        None,
                        "Some messages were missed while you were away.",
                        Tone::Problem,
                    );
                }
                None
            }
            ServerFrame::RoomList { rooms } => {
                self.directory = Some(rooms);
                None
            }
            ServerFrame::Invited { room, by } => {
                if self
                    .get(&room)
                    .is_some_and(|joined| joined.room.out.is_none())
                {
                    return None;
                }
                self.dismiss_invitation(&room);
                let text = format!("{by} invited you to #{room}");
                self.invitations.push((room.clone(), by.clone()));
                self.notice(&format!("{text}: join it from the sidebar."), Tone::Info);
                (!focused).then_some(Notify {
                    room,
                    from: by,
                    text,
                })
            }
            ServerFrame::Error {
                code,
                message,
                id,
                room,
                until,
                ..
            } => {
                self.error(&Refusal {
                    code,
                    message: &message,
                    id: id.as_deref(),
                    room: room.as_deref(),
                    until,
                });
                None
            }
            ServerFrame::Typing { room, with, name } => {
                let key = match (room, with) {
                    (Some(room), _) => room_key(&room),
                    (None, Some(with)) => room_key(&format!("{DIRECT}{with}")),
                    (None, None) => room_key(&self.default_room),
                };
                if let Some(index) = self.index(&key) {
                    self.list[index]
                        .room
                        .typing_from(&name, super::text::now_millis());
                }
                None
            }
            frame if frame.seq().is_some() => self.event(frame, focused),
            _ => None,
        }
    }

    /// A room event.
    fn event(&mut self, frame: ServerFrame, focused: bool) -> Option<Notify> {
        let key = frame_key(&frame, &self.default_room);
        let index = match (self.index(&key), &frame) {
            (Some(index), _) => index,
            // Someone wrote first: the conversation appears.
            (
                None,
                ServerFrame::Message {
                    with: Some(with),
                    seq,
                    ..
                },
            ) => {
                let name = format!("{DIRECT}{with}");
                self.add(&name, seq.saturating_sub(1))
            }
            (None, _) => return None,
        };
        let shown = self.active == Some(index);
        let joined = &mut self.list[index];
        let message = match &frame {
            ServerFrame::Message { from, text, .. } => Some((from.clone(), text.clone())),
            _ => None,
        };
        let seen = joined.room.event(frame);
        if !shown && seen.new_message {
            joined.unread += 1;
            joined.mentions += usize::from(seen.mention);
        } else if shown || joined.unread == 0 {
            // Nothing unread before it: read up to here.
            joined.read_seq = joined.room.last_seq();
        }
        let (from, text) = message?;
        // In a conversation every new message is for the user.
        let for_me = seen.mention || (joined.is_direct() && seen.new_message);
        (for_me && seen.live && !focused).then(|| Notify {
            room: joined.room.name.clone(),
            from,
            text,
        })
    }

    /// An `error`: a refused post is marked in its room; a join that failed takes the
    /// room away again (or, for a room the user was put out of, leaves it greyed); anything
    /// else is a notice where it belongs.
    fn error(&mut self, refusal: &Refusal<'_>) {
        let Refusal {
            code,
            message,
            id,
            room,
            until,
        } = *refusal;
        let words = match (code, room) {
            (ErrorCode::Unknown, _) => format!("The server had a problem: {message}"),
            (ErrorCode::Banned, Some(room)) => {
                let mut words = format!(
                    "You are banned from #{room} {}",
                    until_words(until, crate::model::text::now_millis())
                );
                if !message.starts_with("you are banned from") {
                    words = format!("{words}: {message}");
                }
                words
            }
            (ErrorCode::InviteOnly, Some(room)) => {
                format!("#{room} is invite-only: ask one of its owners or ops for an invitation")
            }
            _ => capitalized(message),
        };
        if let Some(id) = id
            && self
                .list
                .iter_mut()
                .any(|joined| joined.room.post_failed(id, words.clone()))
        {
            return;
        }
        if let Some(room) = room
            && let Some(joined) = self.get_mut(room)
            && !joined.room.is_answered()
            && code.refuses_a_join()
        {
            if joined.room.out.is_some() {
                // Put out, and not let in again: the room stays greyed, saying why.
                joined.room.out = Some(words.clone());
                joined.room.timeline.notice(None, words, Tone::Problem);
                return;
            }
            self.part(room);
            let words = if matches!(code, ErrorCode::Banned | ErrorCode::InviteOnly) {
                words
            } else {
                format!("Cannot join #{room}: {words}")
            };
            self.notice(&words, Tone::Problem);
            return;
        }
        match room.and_then(|room| self.get_mut(room)) {
            Some(joined) => {
                joined.room.timeline.notice(None, words, Tone::Problem);
            }
            None => self.notice(&words, Tone::Problem),
        }
    }

    /// The answer to a history request of a room.
    pub fn history(&mut self, room: &str, before: u64, frames: Vec<ServerFrame>) -> usize {
        self.get_mut(room)
            .map_or(0, |joined| joined.room.history(before, frames))
    }

    /// History requests under way will not be answered (the connection dropped).
    pub fn history_failed(&mut self) {
        for joined in &mut self.list {
            joined.room.timeline.history_failed();
        }
    }

    /// Where the user is in each room, in the sidebar's order: the name and the newest
    /// seq read (a room with unread messages resumes before them, so they are unread
    /// again in the next run).
    pub fn positions(&self) -> Vec<(String, u64)> {
        self.list
            .iter()
            .map(|joined| {
                let seq = if joined.unread == 0 {
                    joined.room.last_seq()
                } else {
                    joined.read_seq
                };
                (joined.room.name.clone(), seq)
            })
            .collect()
    }
}

/// An `error` from the server, as [`Rooms::error`] reads it.
struct Refusal<'a> {
    code: ErrorCode,
    message: &'a str,
    id: Option<&'a str>,
    room: Option<&'a str>,
    until: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{direct_message, room_message, session_in};

    fn answer(room: &str, seq: u64) -> ServerFrame {
        ServerFrame::Room {
            room: room.into(),
            users: vec!["me".into()],
            seq,
            oldest: u64::from(seq > 0),
            state: chat_shared::RoomState::default(),
            read: 0,
        }
    }

    fn counts(rooms: &Rooms) -> Vec<(String, usize, usize)> {
        rooms
            .iter()
            .map(|j| (j.room.name.clone(), j.unread, j.mentions))
            .collect()
    }

    #[test]
    fn unread_and_mentions_count_where_the_user_is_not_looking() {
        let mut rooms = Rooms::new(&session_in(&["general", "rust"]), |_| 0, Some("#general"));
        rooms.received(answer("rust", 2), true);
        // Replayed on a first visit: old conversation, not unread.
        rooms.received(room_message("rust", 1, "bob", "old"), true);
        rooms.received(room_message("rust", 2, "bob", "old, me"), true);
        rooms.received(room_message("rust", 3, "bob", "new"), true);
        let notify = rooms.received(room_message("rust", 4, "bob", "hey ME"), true);
        assert_eq!(notify, None, "the window has the focus");
        rooms.received(room_message("general", 1, "bob", "here, me"), true);
        assert_eq!(
            counts(&rooms),
            [("general".into(), 0, 0), ("rust".into(), 2, 1)]
        );
        let notify = rooms.received(room_message("rust", 5, "bob", "me?"), false);
        assert_eq!(
            notify,
            Some(Notify {
                room: "rust".into(),
                from: "bob".into(),
                text: "me?".into()
            })
        );
        // Remembered for the next run: rust from before what is unread in it.
        assert_eq!(rooms.positions()[1], ("rust".into(), 2));
        assert!(rooms.activate("RUST"));
        assert_eq!(counts(&rooms)[1], ("rust".into(), 0, 0));
        assert_eq!(rooms.positions()[1], ("rust".into(), 5));
    }

    #[test]
    fn joining_parting_and_a_join_refused() {
        let mut rooms = Rooms::new(&session_in(&["general"]), |_| 0, None);
        assert!(rooms.join("Rust"), "a new room: the join goes out");
        assert_eq!(rooms.active().map(|j| j.key.as_str()), Some("rust"));
        assert!(!rooms.join("#rust"), "already in: just shown");
        rooms.received(answer("rust", 0), true);
        assert_eq!(rooms.active().map(|j| j.room.name.as_str()), Some("rust"));
        assert!(rooms.join("full"));
        rooms.received(
            ServerFrame::Error {
                code: ErrorCode::TooManyRooms,
                message: "you are in 2 rooms already; part one first".into(),
                id: None,
                room: Some("full".into()),
                retry_after: None,
                until: None,
            },
            true,
        );
        assert!(rooms.get("full").is_none(), "the refused room is gone");
        assert_eq!(rooms.part("rust"), Some("rust".into()));
        assert_eq!(rooms.active().map(|j| j.key.as_str()), Some("general"));
        assert_eq!(rooms.part("nowhere"), None);
        assert_eq!(rooms.positions(), [("general".into(), 0)]);
    }

    #[test]
    fn a_login_keeps_what_each_room_holds() {
        let mut rooms = Rooms::new(&session_in(&["general", "rust"]), |_| 0, Some("rust"));
        rooms.received(answer("rust", 0), true);
        rooms.received(room_message("rust", 1, "bob", "kept"), true);
        rooms.logged_in(&session_in(&["general", "rust"]));
        assert_eq!(rooms.active().map(|j| j.room.timeline.len()), Some(1));
        assert_eq!(rooms.positions()[1], ("rust".into(), 1));
    }

    #[test]
    fn a_conversation_keeps_its_place_and_counts_what_came_while_away() {
        let mut session = session_in(&["general"]);
        session.account = true;
        session.conversations = vec![("@Judy".into(), 0)];
        let mut rooms = Rooms::new(&session, |_| 0, Some("general"));
        rooms.received(direct_message("Judy", 1, "first"), true);
        assert_eq!(counts(&rooms)[1], ("@Judy".into(), 1, 0));
        assert!(rooms.activate("@judy"));
        assert!(rooms.activate("general"));
        // Reconnected: the server lists the conversation, and the catch-up follows.
        session.conversations = vec![("@Judy".into(), 3)];
        rooms.logged_in(&session);
        rooms.received(direct_message("Judy", 2, "while away"), true);
        rooms.received(direct_message("Judy", 3, "still away"), true);
        let judy = rooms.get("@Judy").expect("kept");
        assert_eq!((judy.unread, judy.room.timeline.len()), (2, 3));
        assert_eq!(rooms.positions()[1], ("@Judy".into(), 1), "read up to 1");
        assert_eq!(rooms.len(), 2, "one conversation, not two");
        // The server lost its history (a new epoch): seqs start again, nothing is dropped
        // as seen.
        session.new_epoch = true;
        session.conversations = vec![("@Judy".into(), 1)];
        rooms.logged_in(&session);
        rooms.received(direct_message("Judy", 1, "a new history"), true);
        let judy = rooms.get("@Judy").expect("kept");
        assert_eq!(judy.room.last_seq(), 1);
        assert!(
            judy.room.timeline.len() > 3,
            "the new message is shown: {}",
            judy.room.timeline.len()
        );
    }
}
