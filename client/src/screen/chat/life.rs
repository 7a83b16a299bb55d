//! A message's life on the Chat screen: replying to a message, editing one's own (also
//! with Up in an empty input), reacting (the picker, and the reactions under a message),
//! jumping to the message a reply answers, "… is typing", and the read markers the client
//! sends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat_shared::{ClientFrame, check_text};
use iced::widget::{button, column, container, row, text, tooltip};
use iced::{Element, Fill, Task, Theme};

use super::{Chat, Message as ChatMessage, Status};
use crate::model::direct_with;
use crate::model::text::now_millis;
use crate::screen::style::{muted, unique_style};

/// The emoji the picker always offers.
pub const COMMON: [&str; 16] = [
    "👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀", "🔥", "✅", "👎", "🚀", "💯", "🤔", "👋", "😄",
];
/// Recently used emoji the picker offers first.
const RECENT: usize = 8;
/// Least time between two `typing` the client sends for a room.
const TYPING_EVERY: Duration = Duration::from_secs(3);
/// Least time between two `read` the client sends for a room.
const READ_EVERY: Duration = Duration::from_secs(1);

/// What the user did to a message's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// "Reply" on a message.
    Reply(u64),
    /// Closed the reply bar.
    StopReply,
    /// "Edit" on one's message (or Up in an empty input).
    StartEdit(u64),
    /// Escape, or closed the edit bar.
    StopEdit,
    /// Opened (or closed) the emoji picker for a message.
    Picker(Option<u64>),
    /// Chose an emoji, or clicked a reaction: on or off.
    React(u64, String, bool),
    /// Clicked the quote of the message a reply answers.
    JumpTo(u64),
    /// A second went by.
    Tick,
}

/// What the screen keeps of it.
#[derive(Debug, Default)]
pub struct State {
    /// Answering a message of the room shown: its room key and seq.
    replying: Option<(String, u64)>,
    /// Editing one's message of the room shown: its room key and seq.
    editing: Option<(String, u64)>,
    /// The message whose emoji picker is open.
    picker: Option<u64>,
    /// Emoji used lately, the latest first.
    recent: Vec<String>,
    /// When the client last said the user is typing, by room key.
    typed: HashMap<String, Instant>,
    /// The read marker last sent per room key, and when.
    read: HashMap<String, (u64, Instant)>,
    /// The window is in the background: what arrives is not seen, nor read.
    away: bool,
    /// A message to show once the history that holds it has come (a reply's quote was
    /// clicked before it was loaded): room key and seq.
    wanted: Option<(String, u64)>,
}

impl State {
    /// The message the picker is open for.
    pub fn picker(&self) -> Option<u64> {
        self.picker
    }

    /// Emoji the picker offers: the recent ones, then the common ones.
    pub fn offered(&self) -> Vec<String> {
        let mut offered = self.recent.clone();
        for emoji in COMMON {
            if !offered.iter().any(|e| e == emoji) {
                offered.push(emoji.to_string());
            }
        }
        offered
    }
}

impl Chat {
    /// Handles a message of a message's life.
    pub(super) fn life(&mut self, message: Message) -> Task<ChatMessage> {
        let key = self.shown_key();
        match message {
            Message::Reply(seq) => {
                self.moderation_state.close_message_menu();
                self.life.editing = None;
                self.life.replying = key.map(|key| (key, seq));
                return iced::widget::operation::focus(super::INPUT);
            }
            Message::StopReply => self.life.replying = None,
            Message::StartEdit(seq) => {
                self.moderation_state.close_message_menu();
                return self.start_edit(seq);
            }
            Message::StopEdit => {
                if self.life.editing.take().is_some() {
                    self.composer.take();
                }
            }
            Message::Picker(seq) => {
                self.moderation_state.close_message_menu();
                self.life.picker = seq;
            }
            Message::React(seq, emoji, on) => {
                self.life.picker = None;
                if on {
                    self.life.recent.retain(|e| *e != emoji);
                    self.life.recent.insert(0, emoji.clone());
                    self.life.recent.truncate(RECENT);
                }
                self.send_about(|room, with| ClientFrame::React {
                    room,
                    with,
                    seq,
                    emoji,
                    on,
                });
            }
            Message::JumpTo(seq) => return self.jump_to(seq),
            Message::Tick => self.tick(),
        }
        Task::none()
    }

    /// Starts editing one's message `seq` of the room shown: its text goes in the input.
    fn start_edit(&mut self, seq: u64) -> Task<ChatMessage> {
        let Some(joined) = self.rooms.active() else {
            return Task::none();
        };
        let Some((_, message)) = joined.room.timeline.message(seq) else {
            return Task::none();
        };
        if !message.mine || message.deleted || !self.account {
            return Task::none();
        }
        let text = message.text.clone();
        self.life.replying = None;
        self.life.editing = Some((joined.key.clone(), seq));
        self.composer.take();
        self.composer.insert(&text);
        iced::widget::operation::focus(super::INPUT)
    }

    /// The window got (or lost) the focus: only what is on screen in a focused window
    /// counts as read.
    pub fn focused(&mut self, focused: bool) {
        self.life.away = !focused;
        self.mark_read();
    }

    /// Up in an empty input: edits the user's newest message in the room shown (an
    /// account's), as in Slack; `false` when there is none to edit.
    pub(super) fn edit_last(&mut self) -> Option<Task<ChatMessage>> {
        if !self.account || !self.composer.text().is_empty() || self.life.editing.is_some() {
            return None;
        }
        let seq = self.rooms.active()?.room.timeline.last_own()?.seq;
        Some(self.start_edit(seq))
    }

    /// Escape: stops an edit or a reply, if one is under way.
    pub(super) fn escape_life(&mut self) -> bool {
        if self.life.picker.take().is_some() {
            return true;
        }
        if self.life.editing.take().is_some() {
            self.composer.take();
            return true;
        }
        self.life.replying.take().is_some()
    }

    /// Enter while editing: the new text goes as an `edit`. `None` when no edit is under
    /// way (the input is a post or a command).
    pub(super) fn send_edit(&mut self) -> Option<Task<ChatMessage>> {
        let (key, seq) = self.life.editing.clone()?;
        if self.shown_key().as_deref() != Some(key.as_str()) {
            self.life.editing = None;
            return None;
        }
        let text = self.composer.text();
        if let Err(err) = check_text(&text, self.max_text()) {
            self.hint = Some(err.to_string());
            return Some(Task::none());
        }
        if self.send_about(|room, with| ClientFrame::Edit {
            room,
            with,
            seq,
            text,
        }) {
            self.life.editing = None;
            self.composer.take();
            self.hint = None;
        }
        Some(Task::none())
    }

    /// The message the post being written answers, if it is in the room shown.
    pub(super) fn reply_to(&mut self) -> Option<u64> {
        let (key, seq) = self.life.replying.take()?;
        (self.shown_key().as_deref() == Some(key.as_str())).then_some(seq)
    }

    /// Sends a frame about a message of the room shown (`room` or `with` filled in);
    /// whether it went (only while online).
    fn send_about(
        &mut self,
        frame: impl FnOnce(Option<String>, Option<String>) -> ClientFrame,
    ) -> bool {
        let Some(joined) = self.rooms.active() else {
            return false;
        };
        if self.status != Status::Online {
            self.hint = Some("Not connected: try again once reconnected.".into());
            return false;
        }
        let name = joined.room.name.clone();
        let frame = match direct_with(&name) {
            Some(with) => frame(None, Some(with.to_string())),
            None => frame(Some(name), None),
        };
        self.handle.send(frame);
        true
    }

    /// The input changed: says the user is typing in the room shown, at most every 3 s,
    /// never for a command and never while editing.
    pub(super) fn typed(&mut self) {
        let text = self.composer.text();
        if text.trim().is_empty() || text.starts_with('/') || self.life.editing.is_some() {
            return;
        }
        let Some(key) = self.shown_key() else {
            return;
        };
        let now = Instant::now();
        if self
            .life
            .typed
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < TYPING_EVERY)
        {
            return;
        }
        if self.send_about(|room, with| ClientFrame::Typing { room, to: with }) {
            self.life.typed.insert(key, now);
        }
    }

    /// Says how far the user has read in the room shown, when its newest message is on
    /// screen (the log follows the newest line) in a focused window: at most once a
    /// second per room, and only for an account (a guest's markers are not kept).
    pub fn mark_read(&mut self) {
        if !self.account || self.status != Status::Online || self.life.away {
            return;
        }
        let Some(joined) = self.rooms.active() else {
            return;
        };
        let following = self
            .views
            .get(&joined.key)
            .is_none_or(|view| view.log.mode() == crate::widget::viewport::Mode::Follow);
        let seq = joined.room.last_seq();
        if !following || seq == 0 {
            return;
        }
        let now = Instant::now();
        let key = joined.key.clone();
        if let Some((sent, at)) = self.life.read.get(&key)
            && (*sent >= seq || now.duration_since(*at) < READ_EVERY)
        {
            return;
        }
        let name = joined.room.name.clone();
        self.handle.send(match direct_with(&name) {
            Some(with) => ClientFrame::Read {
                room: None,
                with: Some(with.to_string()),
                seq,
            },
            None => ClientFrame::Read {
                room: Some(name),
                with: None,
                seq,
            },
        });
        self.life.read.insert(key, (seq, now));
    }

    /// A second went by: who stopped typing goes from the line, a read marker held back
    /// goes now.
    fn tick(&mut self) {
        let now = now_millis();
        self.rooms.forget_typing(now);
        self.mark_read();
    }

    /// Shows the message `seq` of the room shown: where it is, if the timeline holds it;
    /// else older history is fetched until it comes (what is read stays where it is).
    fn jump_to(&mut self, seq: u64) -> Task<ChatMessage> {
        let held = self
            .rooms
            .active()
            .and_then(|joined| joined.room.timeline.message(seq))
            .map(|(pos, _)| pos);
        if let Some(pos) = held {
            self.life.wanted = None;
            let Some((joined, view)) = self.active_mut() else {
                return Task::none();
            };
            return view.log.show(pos, &joined.room.timeline);
        }
        let Some(joined) = self.rooms.active_mut() else {
            return Task::none();
        };
        if joined
            .room
            .timeline
            .first_seq()
            .is_some_and(|first| first <= seq)
        {
            // Held once, deleted or dropped: nothing to show.
            return Task::none();
        }
        let (key, name) = (joined.key.clone(), joined.room.name.clone());
        let request = super::log::fetch_older(&mut joined.room.timeline);
        self.life.wanted = Some((key, seq));
        if let Some(request) = request {
            self.request(&name, request);
        } else {
            // The beginning of the history: it is not there any more.
            self.life.wanted = None;
        }
        Task::none()
    }

    /// History came for a room: if it holds the message a reply's quote asked for, it is
    /// shown; else more is fetched.
    pub(super) fn wanted_arrived(&mut self, key: &str) -> Task<ChatMessage> {
        match self.life.wanted.clone() {
            Some((wanted, seq)) if wanted == key => self.jump_to(seq),
            _ => Task::none(),
        }
    }

    /// "bob is typing…" for the room shown, if anyone is.
    pub(super) fn typing_line(&self) -> Option<String> {
        let joined = self.rooms.active()?;
        let me = chat_shared::fold(joined.room.timeline.me());
        let names: Vec<&str> = joined
            .room
            .typists(now_millis())
            .into_iter()
            .filter(|name| chat_shared::fold(name) != me)
            .collect();
        Some(match names.as_slice() {
            [] => return None,
            [one] => format!("{one} is typing…"),
            [a, b] => format!("{a} and {b} are typing…"),
            _ => "Several people are typing…".to_string(),
        })
    }

    /// The bar above the input while replying or editing: what, and how to stop.
    pub(super) fn life_bar(&self) -> Option<Element<'_, ChatMessage>> {
        let joined = self.rooms.active()?;
        let (words, stop) = if let Some((key, _)) = &self.life.editing {
            if *key != joined.key {
                return None;
            }
            (
                "Editing your message · Enter saves, Escape cancels".to_string(),
                Message::StopEdit,
            )
        } else if let Some((key, seq)) = &self.life.replying {
            if *key != joined.key {
                return None;
            }
            let quote = joined
                .room
                .timeline
                .message(*seq)
                .map_or_else(String::new, |(_, m)| {
                    format!("{}: {}", m.from, first_line(&m.text))
                });
            (format!("Replying to {quote}"), Message::StopReply)
        } else {
            return None;
        };
        Some(
            container(
                row![
                    text(words.clone())
                        .size(12)
                        .style(unique_style(muted, "life-bar"))
                        .width(Fill),
                    button(text("✕").size(12))
                        .on_press(ChatMessage::Life(stop))
                        .style(button::text)
                        .padding([0, 6]),
                ]
                .spacing(6),
            )
            .padding([2, 12])
            .into(),
        )
    }
}

/// The first line of a text, cut to about 80 characters.
pub fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut cut: String = line.chars().take(80).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}

/// The reactions under a message: each emoji with its count, highlighted when the user
/// is among those who reacted, the names on hover; a click toggles the user's own.
pub fn reactions_row<'a>(
    seq: u64,
    reactions: &'a [chat_shared::Reaction],
    me: &str,
) -> Option<Element<'a, ChatMessage>> {
    if reactions.is_empty() {
        return None;
    }
    let me = chat_shared::fold(me);
    let chips = reactions.iter().map(|reaction| {
        let mine = reaction.names.iter().any(|n| chat_shared::fold(n) == me);
        let label = format!("{} {}", reaction.emoji, reaction.count);
        let chip = button(text(label).size(13))
            .on_press(ChatMessage::Life(Message::React(
                seq,
                reaction.emoji.clone(),
                !mine,
            )))
            .padding([1, 6])
            .style(move |theme: &Theme, status| {
                if mine {
                    button::primary(theme, status)
                } else {
                    button::secondary(theme, status)
                }
            });
        let listed = reaction.names.join(", ");
        let beyond = (reaction.count as usize).saturating_sub(reaction.names.len());
        let names = if beyond > 0 {
            format!("{listed} and {beyond} more")
        } else {
            listed
        };
        tooltip(
            chip,
            container(text(names).size(12))
                .padding(6)
                .style(container::bordered_box),
            tooltip::Position::Top,
        )
        .into()
    });
    Some(
        row(chips)
            .spacing(4)
            .padding(iced::Padding::ZERO.left(44))
            .into(),
    )
}

/// The emoji picker under a message: the recent and the common emoji.
pub fn picker<'a>(seq: u64, offered: Vec<String>) -> Element<'a, ChatMessage> {
    let cells: Vec<Element<'a, ChatMessage>> = offered
        .into_iter()
        .map(|emoji| {
            button(text(emoji.clone()).size(18))
                .on_press(ChatMessage::Life(Message::React(seq, emoji, true)))
                .style(button::text)
                .padding([2, 4])
                .into()
        })
        .collect();
    let mut rows = column![].spacing(2);
    let mut cells = cells.into_iter().peekable();
    while cells.peek().is_some() {
        rows = rows.push(row(cells.by_ref().take(12)).spacing(2));
    }
    container(rows)
        .padding([4, 8])
        .style(container::bordered_box)
        .into()
}
