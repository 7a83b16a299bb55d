//! The Chat screen: a header with the connection's state, the log, the member list and
//! the input.
//!
//! The room itself (timeline, members, pending posts) lives in [`crate::model`]; this
//! screen keeps only how it is shown: where the log is, what is typed, what is open.

pub mod composer;
pub mod log;
pub mod members;
#[cfg(test)]
mod tests;

use chat_shared::{CloseCode, ErrorCode, Limits, ServerFrame, TextError, check_text};
use iced::widget::{
    button, center, column, container, mouse_area, opaque, operation, pick_list, row, rule,
    scrollable, space, stack, text,
};
use iced::{Center, Element, Fill, Task, Theme};

use crate::connection::{Handle, Session, new_post_id};
use crate::model::{Room, Tone};
use crate::screen::style::{bold, muted, unique_style};
use crate::settings::{Settings, ThemeChoice};
use crate::widget::selectable;
use crate::widget::viewport::{self, Scroll};

pub use composer::INPUT;
pub use log::LIST;

/// The connection's state as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Logged in.
    Online,
    /// Lost the connection, trying again.
    Reconnecting,
    /// The server cannot be reached; the next try comes in `retry_in` seconds.
    Offline {
        /// Which try failed.
        attempt: u32,
        /// Whole seconds to the next.
        retry_in: u64,
    },
    /// Not coming back by itself.
    Ended(String),
}

/// What the user did on the Chat screen.
#[derive(Debug, Clone)]
pub enum Message {
    /// Typed or moved in the input.
    Edit(iced::widget::text_editor::Action),
    /// Enter or Send.
    Send,
    /// Tab (Shift+Tab: backwards) in the input.
    Complete {
        /// Shift was held.
        backwards: bool,
    },
    /// Up (`older`) or Down at the edge of the input.
    Recall {
        /// Up.
        older: bool,
    },
    /// `PageUp`, `PageDown`, Ctrl+Home, Ctrl+End.
    ScrollLog(Scroll),
    /// The log moved.
    Scrolled(scrollable::Viewport),
    /// "Jump to latest" or "N new messages".
    JumpToLatest,
    /// "Show older messages".
    ShowOlder,
    /// Opened or folded a run of joins and leaves.
    TogglePresence(crate::model::Pos),
    /// Clicked a link.
    OpenLink(String),
    /// Dismissed a refused post.
    Dismiss(String),
    /// Put the cursor in the input (once the screen is up).
    Focus,
    /// Typed while nothing had the focus: the text goes to the input.
    TypeAhead(String),
    /// Ctrl+C while nothing had the focus: copy what is selected in the log.
    Copy,
    /// What was selected, to put on the clipboard.
    Copied(Option<String>),
    /// Ctrl+V while nothing had the focus.
    Paste,
    /// The clipboard, to put in the input.
    Pasted(Option<String>),
    /// Showed or hid the member list.
    ToggleMembers,
    /// Opened or closed the settings.
    Settings(bool),
    /// Chose a look.
    ThemeChosen(ThemeChoice),
    /// Chose the room size above which joins and leaves are hidden.
    HidePresenceAbove(usize),
    /// Typed in the member filter.
    MemberFilter(String),
    /// Opened or closed the list of shortcuts.
    Help(bool),
    /// Escape while nothing had the focus.
    Escape,
}

/// What the app must do for the Chat screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Open this web address with the system's opener.
    OpenLink(String),
    /// Change and remember a setting.
    Change(Change),
}

/// A change of the remembered settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Show or hide the member list.
    ToggleMembers,
    /// The look.
    Theme(ThemeChoice),
    /// Hide joins and leaves in rooms with more members than this.
    HidePresenceAbove(usize),
}

/// The choices offered for hiding joins and leaves (`usize::MAX`: never).
const PRESENCE_THRESHOLDS: [usize; 6] = [10, 25, 50, 100, 500, usize::MAX];

/// The Chat screen's state.
pub struct Chat {
    server: String,
    me: String,
    handle: Handle,
    status: Status,
    limits: Limits,
    room: Room,
    log: log::Log,
    composer: composer::Composer,
    hint: Option<String>,
    member_filter: String,
    help: bool,
    settings_open: bool,
    /// The replay of the last login has arrived (and older history was asked for if the
    /// room held too little).
    caught_up: bool,
}

impl Chat {
    /// The screen right after logging in.
    pub fn new(server: &str, session: &Session, handle: Handle) -> Self {
        let mut chat = Self {
            server: server.to_string(),
            me: session.name.clone(),
            handle,
            status: Status::Online,
            limits: session.limits,
            room: Room::new(&session.name),
            log: log::Log::default(),
            composer: composer::Composer::default(),
            hint: None,
            member_filter: String::new(),
            help: false,
            settings_open: false,
            caught_up: false,
        };
        chat.logged_in(session);
        chat
    }

    /// Focuses the input once the screen has been built: an operation issued in the same
    /// update that creates the screen would look for the input in the old one.
    pub fn focus() -> Task<Message> {
        Task::done(Message::Focus)
    }

    /// The room shown.
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// What is typed in the input.
    pub fn input(&self) -> String {
        self.composer.text()
    }

    /// Whether the log is away from the newest line.
    pub fn away_from_latest(&self) -> bool {
        self.log.mode() == viewport::Mode::Read
    }

    /// Logged in (again).
    pub fn logged_in(&mut self, session: &Session) {
        let reconnected = self.status != Status::Online;
        self.status = Status::Online;
        self.me.clone_from(&session.name);
        self.limits = session.limits;
        self.room.logged_in(session);
        let timeline = &mut self.room.timeline;
        if session.new_epoch {
            timeline.notice(
                None,
                "The server restarted without its history; what follows is new.",
                Tone::Info,
            );
        } else if reconnected {
            timeline.notice(None, "Reconnected.", Tone::Info);
        }
        if session.missed {
            timeline.notice(
                None,
                "Some messages were missed while you were away.",
                Tone::Problem,
            );
        }
        self.caught_up = false;
        self.catch_up();
    }

    /// Once a login's replay is in: fetch older history if the room holds too little.
    fn catch_up(&mut self) {
        if !self.caught_up && self.room.replayed() {
            self.caught_up = true;
            if let Some(request) = self.log.wants_more(&mut self.room.timeline) {
                self.request(request);
            }
        }
    }

    fn request(&self, request: log::Request) {
        match request {
            log::Request::History(before) => self.handle.history(before, log::HISTORY_PAGE),
        }
    }

    /// The connection dropped and is coming back; `closing` says why if the server did.
    pub fn reconnecting(&mut self, closing: Option<CloseCode>) {
        if self.status == Status::Online {
            let words = match closing {
                Some(CloseCode::Shutdown) => "The server is restarting; reconnecting…",
                _ => "Connection lost; reconnecting…",
            };
            self.room.timeline.notice(None, words, Tone::Problem);
        }
        self.room.timeline.history_failed();
        self.status = Status::Reconnecting;
    }

    /// The server is unreachable for now.
    pub fn offline(&mut self, attempt: u32, retry_in: std::time::Duration) {
        self.status = Status::Offline {
            attempt,
            retry_in: retry_in.as_secs_f64().ceil() as u64,
        };
    }

    /// The connection ended for good.
    pub fn ended(&mut self, reason: String) {
        self.room
            .timeline
            .notice(None, format!("Disconnected: {reason}"), Tone::Problem);
        self.status = Status::Ended(reason);
    }

    /// A frame from the server.
    pub fn received(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Error {
                code,
                message,
                id: Some(id),
                ..
            } => {
                if !self.room.post_failed(&id, describe_error(code, &message)) {
                    self.room
                        .timeline
                        .notice(None, describe_error(code, &message), Tone::Problem);
                }
            }
            ServerFrame::Error { code, message, .. } => {
                self.room
                    .timeline
                    .notice(None, describe_error(code, &message), Tone::Problem);
            }
            frame => {
                self.room.event(frame);
                self.catch_up();
            }
        }
    }

    /// The answer to a history request.
    pub fn history(&mut self, before: u64, frames: Vec<ServerFrame>) {
        let added = self.room.history(before, frames);
        self.log.history_arrived(&self.room.timeline, added);
        if let Some(request) = self.log.wants_more(&mut self.room.timeline) {
            self.request(request);
        }
    }

    /// Handles a message; may return a task (scrolling, focus, clipboard) and an action
    /// for the app.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Action) {
        let task = match message {
            Message::Edit(action) => {
                self.composer.perform(action);
                self.hint = match check_text(&self.composer.text(), self.max_text()) {
                    Err(err @ TextError::TooLong { .. }) => Some(too_long_hint(&err)),
                    _ => None,
                };
                Task::none()
            }
            Message::Send => self.send(),
            Message::Complete { backwards } => {
                self.composer
                    .complete(&self.room.members, &self.me, backwards);
                Task::none()
            }
            Message::Recall { older } => {
                self.composer.recall(older);
                Task::none()
            }
            Message::ScrollLog(Scroll::Bottom) | Message::JumpToLatest => self.jump_to_latest(),
            Message::ScrollLog(Scroll::Top) => {
                self.log.jump_to_oldest(&self.room.timeline);
                viewport::scroll(LIST.into(), Scroll::Top, viewport::Mode::Read)
            }
            Message::ScrollLog(to) => viewport::scroll(LIST.into(), to, self.log.mode()),
            Message::Scrolled(viewport) => {
                if let Some(request) = self.log.scrolled(&viewport, &mut self.room.timeline) {
                    self.request(request);
                }
                Task::none()
            }
            Message::ShowOlder => {
                if let Some(request) = self.log.show_older(&mut self.room.timeline) {
                    self.request(request);
                }
                Task::none()
            }
            Message::TogglePresence(pos) => {
                self.log.toggle(pos);
                Task::none()
            }
            Message::OpenLink(url) => return (Task::none(), Action::OpenLink(url)),
            Message::Dismiss(id) => {
                self.room.dismiss(&id);
                Task::none()
            }
            Message::Focus => operation::focus(INPUT),
            Message::TypeAhead(text) => {
                self.composer.insert(&text);
                operation::focus(INPUT)
            }
            Message::Copy => selectable::copy_selection().map(Message::Copied),
            Message::Copied(Some(text)) => iced::clipboard::write(text),
            Message::Copied(None) => Task::none(),
            Message::Paste => iced::clipboard::read().map(Message::Pasted),
            Message::Pasted(text) => {
                if let Some(text) = text {
                    self.composer.insert(&text);
                }
                operation::focus(INPUT)
            }
            Message::ToggleMembers => {
                return (Task::none(), Action::Change(Change::ToggleMembers));
            }
            Message::Settings(open) => {
                self.settings_open = open;
                Task::none()
            }
            Message::ThemeChosen(choice) => {
                return (Task::none(), Action::Change(Change::Theme(choice)));
            }
            Message::HidePresenceAbove(members) => {
                return (
                    Task::none(),
                    Action::Change(Change::HidePresenceAbove(members)),
                );
            }
            Message::MemberFilter(filter) => {
                self.member_filter = filter;
                Task::none()
            }
            Message::Help(open) => {
                self.help = open;
                if open {
                    Task::none()
                } else {
                    operation::focus(INPUT)
                }
            }
            Message::Escape => {
                self.help = false;
                self.settings_open = false;
                operation::focus(INPUT)
            }
        };
        (task, Action::None)
    }

    fn max_text(&self) -> usize {
        self.limits.max_text as usize
    }

    fn send(&mut self) -> Task<Message> {
        let text = self.composer.text();
        match check_text(&text, self.max_text()) {
            Ok(()) => {
                let text = self.composer.take();
                let id = new_post_id();
                self.handle.say(id.clone(), text.clone());
                self.room.post(id, text);
                self.hint = None;
                self.jump_to_latest()
            }
            Err(TextError::Empty) => Task::none(),
            Err(err @ TextError::TooLong { .. }) => {
                self.hint = Some(too_long_hint(&err));
                Task::none()
            }
            Err(err) => {
                self.hint = Some(err.to_string());
                Task::none()
            }
        }
    }

    fn jump_to_latest(&mut self) -> Task<Message> {
        // The log's keeper puts a following list at its newest line by itself.
        self.log.jump_to_latest();
        Task::none()
    }

    /// The screen, in `theme`, as `settings` want it.
    pub fn view<'a>(&'a self, theme: &'a Theme, settings: &Settings) -> Element<'a, Message> {
        let looks = log::Looks {
            theme,
            online: self.status == Status::Online,
            hide_presence_above: settings.hide_presence_above,
        };
        let mut log = stack![self.log.view(&self.room, &looks)];
        if self.away_from_latest() {
            let unseen = self.log.unseen(&self.room.timeline);
            let label = match unseen {
                0 => "Jump to latest ↓".to_string(),
                1 => "1 new message ↓".to_string(),
                n => format!("{n} new messages ↓"),
            };
            log = log.push(
                container(
                    button(text(label.clone()).size(13).style(unique_style(
                        |theme: &Theme| text::Style {
                            color: Some(theme.extended_palette().primary.base.text),
                        },
                        &label,
                    )))
                    .on_press(Message::JumpToLatest)
                    .style(button::primary)
                    .padding([4, 12]),
                )
                .align_bottom(Fill)
                .center_x(Fill)
                .padding(8),
            );
        }
        let main = column![
            container(log).height(Fill),
            self.composer.view(self.hint.as_deref())
        ];
        let mut body = row![container(main).width(Fill).height(Fill)];
        if settings.show_members {
            body = body.push(rule::vertical(1)).push(members::view(
                &self.room.members,
                &self.me,
                &self.member_filter,
                self.status == Status::Online,
            ));
        }
        let screen = column![self.header(settings), rule::horizontal(1), body];
        let mut layers = stack![screen];
        if self.help {
            layers = layers.push(modal(help(), Message::Help(false)));
        } else if self.settings_open {
            layers = layers.push(modal(settings_card(settings), Message::Settings(false)));
        }
        layers.into()
    }

    fn header(&self, settings: &Settings) -> Element<'_, Message> {
        let (status, tone): (String, fn(&Theme) -> iced::theme::palette::Pair) = match &self.status
        {
            Status::Online => ("● online".into(), |t| t.extended_palette().success.strong),
            Status::Reconnecting => ("● reconnecting…".into(), |t| {
                t.extended_palette().warning.strong
            }),
            Status::Offline { attempt, retry_in } => (
                format!("● offline, retrying in {retry_in}s (attempt {attempt})"),
                |t| t.extended_palette().danger.strong,
            ),
            Status::Ended(_) => ("● offline".into(), |t| t.extended_palette().danger.strong),
        };
        // The strong shade of each tone reads on both light and dark backgrounds.
        let style = move |theme: &Theme| text::Style {
            color: Some(tone(theme).color),
        };
        let members = button(
            text(if settings.show_members {
                "Hide members"
            } else {
                "Members"
            })
            .size(13),
        )
        .on_press(Message::ToggleMembers)
        .style(button::text)
        .padding([2, 6]);
        let gear = button(text("Settings").size(13))
            .on_press(Message::Settings(true))
            .style(button::text)
            .padding([2, 6]);
        let help = button(text("?").size(13).font(bold()))
            .on_press(Message::Help(true))
            .style(button::text)
            .padding([2, 8]);
        row![
            text(&self.server).size(14),
            text("·").size(14),
            text(&self.me).size(14).font(bold()),
            space::horizontal(),
            text(status.clone())
                .size(14)
                .style(unique_style(style, &status)),
            members,
            gear,
            help,
        ]
        .spacing(8)
        .padding([8, 12])
        .align_y(Center)
        .into()
    }
}

/// The list of shortcuts, over the screen.
fn help<'a>() -> Element<'a, Message> {
    let keys: &[(&str, &str)] = &[
        ("Enter", "send"),
        ("Shift+Enter", "new line"),
        ("Tab / Shift+Tab", "complete a name"),
        (
            "Up / Down",
            "walk through what you sent (in an empty input)",
        ),
        ("PageUp / PageDown", "scroll the messages"),
        ("Ctrl+Home / Ctrl+End", "oldest / newest messages"),
        (
            "Ctrl+C",
            "copy the selected text (drag over messages to select)",
        ),
        ("Escape", "close this"),
    ];
    let mut list = column![text("Keyboard shortcuts").size(16).font(bold())].spacing(6);
    for (key, what) in keys {
        list = list.push(
            row![
                text(*key).size(13).font(bold()).width(170),
                text(*what).size(13).style(muted)
            ]
            .spacing(8),
        );
    }
    list.push(
        container(
            button(text("Close").size(13))
                .on_press(Message::Help(false))
                .style(button::secondary),
        )
        .align_right(Fill),
    )
    .width(460)
    .into()
}

/// The settings: the look, and when joins and leaves are hidden.
fn settings_card<'a>(settings: &Settings) -> Element<'a, Message> {
    fn shown(n: usize) -> String {
        match n {
            usize::MAX => "never".to_string(),
            n => format!("more than {n} members"),
        }
    }
    let thresholds: Vec<String> = PRESENCE_THRESHOLDS.into_iter().map(shown).collect();
    let chosen = shown(settings.hide_presence_above);
    column![
        text("Settings").size(16).font(bold()),
        text("Look").size(13).font(bold()),
        pick_list(ThemeChoice::ALL, Some(settings.theme), Message::ThemeChosen).text_size(13),
        text("Hide joins and leaves in rooms with")
            .size(13)
            .font(bold()),
        pick_list(thresholds, Some(chosen), move |picked: String| {
            let members = PRESENCE_THRESHOLDS
                .into_iter()
                .find(|n| shown(*n) == picked)
                .unwrap_or(usize::MAX);
            Message::HidePresenceAbove(members)
        })
        .text_size(13),
        container(
            button(text("Close").size(13))
                .on_press(Message::Settings(false))
                .style(button::secondary),
        )
        .align_right(Fill),
    ]
    .spacing(8)
    .width(360)
    .into()
}

/// `card` over the screen; a click beside it sends `close`.
fn modal(card: Element<'_, Message>, close: Message) -> Element<'_, Message> {
    let card = container(card).padding(16).style(container::bordered_box);
    opaque(
        mouse_area(center(opaque(card)).style(|theme: &Theme| {
            container::Style {
                background: Some(
                    theme
                        .extended_palette()
                        .background
                        .base
                        .color
                        .scale_alpha(0.7)
                        .into(),
                ),
                ..container::Style::default()
            }
        }))
        .on_press(close),
    )
}

fn too_long_hint(err: &TextError) -> String {
    match err {
        TextError::TooLong { len, max } => {
            format!("Too long to send: {len} bytes, the server takes at most {max}.")
        }
        other => other.to_string(),
    }
}

/// Words for an `error` the server sent about a post.
fn describe_error(code: ErrorCode, message: &str) -> String {
    match code {
        ErrorCode::Unknown => format!("the server had a problem: {message}"),
        _ => message.to_string(),
    }
}
