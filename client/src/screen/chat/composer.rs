//! The input of the Chat screen: several lines (Shift+Enter), Enter sends, Tab completes
//! names, Up and Down walk back through what was sent.

use std::collections::VecDeque;
use std::sync::Arc;

use iced::keyboard::{self, key};
use iced::widget::text_editor::{
    Action, Binding, Content, Cursor, Edit, KeyPress, Motion, Position,
};
use iced::widget::{button, column, container, row, text, text_editor};
use iced::{Bottom, Element, Fill, Shrink};

use super::Message;
use crate::model::Members;
use crate::widget::viewport::Scroll;

/// The id of the input.
pub const INPUT: &str = "chat-input";
/// Sent messages remembered for Up and Down.
const REMEMBERED: usize = 100;

/// The input and what it remembers.
#[derive(Debug, Default)]
pub struct Composer {
    content: Content,
    /// What was sent, oldest first.
    sent: VecDeque<String>,
    /// Walking back through `sent`: how far back, and the draft to return to.
    recall: Option<(usize, String)>,
    completion: Option<Completion>,
}

/// A Tab completion in progress: pressing Tab again moves to the next candidate.
#[derive(Debug, Clone)]
struct Completion {
    line: usize,
    /// Where the completed word starts, in bytes of its line.
    start: usize,
    /// Where what was inserted ends.
    end: usize,
    candidates: Vec<String>,
    index: usize,
    /// Put after the name: ", " at the start of a message, else " ".
    suffix: &'static str,
}

impl Composer {
    /// The text typed so far.
    pub fn text(&self) -> String {
        self.content.text()
    }

    /// Applies an edit or a move the person made.
    pub fn perform(&mut self, action: Action) {
        if action.is_edit() {
            self.recall = None;
            self.completion = None;
        }
        self.content.perform(action);
    }

    /// Empties the input, remembering what was in it for Up.
    pub fn take(&mut self) -> String {
        let text = self.content.text();
        self.content = Content::new();
        self.recall = None;
        self.completion = None;
        if self.sent.len() == REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back(text.clone());
        text
    }

    /// Puts `draft` in the input and returns what was typed there (another room is shown).
    pub fn swap_draft(&mut self, draft: Content) -> Content {
        self.recall = None;
        self.completion = None;
        std::mem::replace(&mut self.content, draft)
    }

    /// Puts text at the cursor (typed while the input had no focus, or pasted).
    pub fn insert(&mut self, text: &str) {
        self.perform(Action::Edit(Edit::Paste(Arc::new(text.to_string()))));
    }

    /// Up (`older`) or Down through what was sent; past the newest, the draft comes back.
    pub fn recall(&mut self, older: bool) {
        let (back, draft) = self
            .recall
            .take()
            .unwrap_or_else(|| (0, self.content.text()));
        let back = if older {
            (back + 1).min(self.sent.len())
        } else {
            back.saturating_sub(1)
        };
        let shown = match back {
            0 => draft.clone(),
            n => self.sent[self.sent.len() - n].clone(),
        };
        self.content = Content::with_text(&shown);
        self.content.perform(Action::Move(Motion::DocumentEnd));
        self.completion = None;
        if back > 0 {
            self.recall = Some((back, draft));
        }
    }

    /// Tab: completes the word before the cursor to a member's name, or moves to the next
    /// (Shift+Tab: previous) candidate.
    pub fn complete(&mut self, members: &Members, me: &str, backwards: bool) {
        if let Some(mut completion) = self.completion.take() {
            let count = completion.candidates.len();
            completion.index = if backwards {
                (completion.index + count - 1) % count
            } else {
                (completion.index + 1) % count
            };
            self.replace(&mut completion);
            self.completion = Some(completion);
            return;
        }
        let Position { line, column } = self.content.cursor().position;
        let Some(text) = self.content.line(line).map(|l| l.text.into_owned()) else {
            return;
        };
        let column = column.min(text.len());
        let start = text[..column]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &text[start..column];
        let (start, prefix) = match word.strip_prefix('@') {
            Some(rest) => (start + 1, rest),
            None => (start, word),
        };
        if prefix.is_empty() {
            return;
        }
        let me = chat_shared::fold(me);
        let candidates: Vec<String> = members
            .starting_with(prefix)
            .into_iter()
            .filter(|name| chat_shared::fold(name) != me)
            .map(str::to_string)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let at_start = line == 0 && text[..start].trim_start_matches('@').is_empty();
        let mut completion = Completion {
            line,
            start,
            end: column,
            candidates,
            index: if backwards { usize::MAX } else { 0 },
            suffix: if at_start { ", " } else { " " },
        };
        if backwards {
            completion.index = completion.candidates.len() - 1;
        }
        self.replace(&mut completion);
        self.completion = Some(completion);
    }

    fn replace(&mut self, completion: &mut Completion) {
        let name = &completion.candidates[completion.index];
        let inserted = format!("{name}{}", completion.suffix);
        self.content.move_to(Cursor {
            position: Position {
                line: completion.line,
                column: completion.end,
            },
            selection: Some(Position {
                line: completion.line,
                column: completion.start,
            }),
        });
        self.content
            .perform(Action::Edit(Edit::Paste(Arc::new(inserted.clone()))));
        completion.end = completion.start + inserted.len();
    }

    /// The input bar, with a hint under it when there is one.
    pub fn view(&self, placeholder: String, hint: Option<String>) -> Element<'_, Message> {
        let cursor = self.content.cursor().position;
        let first_line = cursor.line == 0;
        let last_line = cursor.line + 1 >= self.content.line_count();
        let walk = self.recall.is_some() || self.content.is_empty();
        let editor = text_editor(&self.content)
            .id(INPUT)
            .placeholder(placeholder)
            .on_action(Message::Edit)
            .key_binding(move |press| binding(press, first_line && walk, last_line && walk))
            .height(Shrink)
            .max_height(160)
            .padding(8)
            .wrapping(text::Wrapping::WordOrGlyph);
        let send = button("Send").on_press(Message::Send).padding([8, 16]);
        let mut bar = column![row![editor, send].spacing(8).align_y(Bottom)].spacing(4);
        if let Some(hint) = hint {
            bar = bar.push(text(hint).size(12).style(text::danger));
        }
        container(bar).padding(8).width(Fill).into()
    }
}

/// What a key does in the input: Enter sends, Shift+Enter breaks the line, Tab completes,
/// Up and Down at the edges walk through what was sent, Alt+Up and Alt+Down change rooms,
/// PageUp/PageDown and
/// Ctrl+Home/Ctrl+End scroll the log; everything else edits as usual.
fn binding(press: KeyPress, may_go_back: bool, may_go_forward: bool) -> Option<Binding<Message>> {
    if !matches!(press.status, text_editor::Status::Focused { .. }) {
        return None;
    }
    let modifiers = press.modifiers;
    let custom = |message| Some(Binding::Custom(message));
    match press.key.as_ref() {
        keyboard::Key::Named(key::Named::Enter) if !modifiers.shift() => custom(Message::Send),
        keyboard::Key::Named(key::Named::Tab) if !modifiers.control() && !modifiers.alt() => {
            custom(Message::Complete {
                backwards: modifiers.shift(),
            })
        }
        keyboard::Key::Named(key::Named::ArrowUp) if modifiers.alt() => custom(Message::Step(-1)),
        keyboard::Key::Named(key::Named::ArrowDown) if modifiers.alt() => custom(Message::Step(1)),
        keyboard::Key::Named(key::Named::ArrowUp) if may_go_back && !modifiers.shift() => {
            custom(Message::Recall { older: true })
        }
        keyboard::Key::Named(key::Named::ArrowDown) if may_go_forward && !modifiers.shift() => {
            custom(Message::Recall { older: false })
        }
        keyboard::Key::Character(c) if modifiers.command() && (c == "k" || c == "f") => {
            custom(Message::Search(super::search::Message::Open))
        }
        keyboard::Key::Named(key::Named::PageUp) => custom(Message::ScrollLog(Scroll::Pages(-1.0))),
        keyboard::Key::Named(key::Named::PageDown) => {
            custom(Message::ScrollLog(Scroll::Pages(1.0)))
        }
        keyboard::Key::Named(key::Named::Home) if modifiers.command() => {
            custom(Message::ScrollLog(Scroll::Top))
        }
        keyboard::Key::Named(key::Named::End) if modifiers.command() => {
            custom(Message::ScrollLog(Scroll::Bottom))
        }
        _ => Binding::from_key_press(press),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_completes_names_and_cycles() {
        let members = Members::from_names(["me", "alice", "Alfred", "bob"]);
        let mut composer = Composer::default();
        composer.insert("al");
        composer.complete(&members, "me", false);
        assert_eq!(composer.text(), "Alfred, ");
        composer.complete(&members, "me", false);
        assert_eq!(composer.text(), "alice, ");
        composer.complete(&members, "me", false);
        assert_eq!(composer.text(), "Alfred, ");
        composer.insert("hi @b");
        composer.complete(&members, "me", false);
        assert_eq!(composer.text(), "Alfred, hi @bob ");
        // Your own name is not offered.
        let mut composer = Composer::default();
        composer.insert("m");
        composer.complete(&members, "me", false);
        assert_eq!(composer.text(), "m");
    }

    #[test]
    fn up_and_down_walk_through_what_was_sent() {
        let mut composer = Composer::default();
        for text in ["first", "second"] {
            composer.insert(text);
            composer.take();
        }
        composer.insert("draft");
        composer.recall(true);
        assert_eq!(composer.text(), "second");
        composer.recall(true);
        assert_eq!(composer.text(), "first");
        composer.recall(true);
        assert_eq!(composer.text(), "first", "stops at the oldest");
        composer.recall(false);
        composer.recall(false);
        assert_eq!(composer.text(), "draft", "back to the draft");
    }
}
