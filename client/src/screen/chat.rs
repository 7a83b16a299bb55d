//! The Chat screen: the rooms in a sidebar, a header with the room and the connection's
//! state, the log, the member list and the input.
//!
//! The rooms themselves (timelines, members, pending posts, what is new) live in
//! [`crate::model`]; this screen keeps only how they are shown: where each room's log is,
//! what is typed in each, which dialog is open.

pub mod account;
pub mod composer;
pub mod life;
#[cfg(test)]
mod life_tests;
pub mod log;
pub mod members;
pub mod moderation;
#[cfg(test)]
mod moderation_tests;
#[cfg(test)]
mod rooms_tests;
pub mod search;
#[cfg(test)]
mod search_tests;
pub mod sidebar;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use chat_shared::{CloseCode, Limits, ServerFrame, TextError, check_text};
use iced::widget::text_editor::Content;
use iced::widget::{
    button, center, column, container, mouse_area, opaque, operation, pick_list, responsive, row,
    rule, scrollable, space, stack, text,
};
use iced::{Center, Element, Fill, Task, Theme};

use crate::connection::{Handle, new_post_id};
use crate::model::{Input, Joined, Notify, Room, Rooms, Session, Tone, command, room_key};
use crate::screen::style::{bold, muted, unique_style};
use crate::settings::{Settings, ThemeChoice, Visit};
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
    /// The log moved; the mode it was built in (held at the bottom, offsets count from
    /// there; or at the top).
    Scrolled(scrollable::Viewport, viewport::Mode),
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
    /// Opened or closed the list of shortcuts and commands.
    Help(bool),
    /// Escape while nothing had the focus.
    Escape,
    /// Clicked a room in the sidebar.
    Switch(String),
    /// Alt+Up (-1) or Alt+Down (1): the room above or below in the sidebar.
    Step(i32),
    /// Opened or closed the list of rooms.
    Rooms(bool),
    /// Typed in the list of rooms' field.
    FindRoom(String),
    /// Join (or show) a room, from the list of rooms.
    JoinRoom(String),
    /// Leave the room shown ("Leave" in the header).
    Part,
    /// Opened or closed the form that changes the account's password.
    Account(bool),
    /// In that form.
    Password(account::Message),
    /// Moderation: the topic, a member's menu, a message's actions, the room's settings.
    Moderation(moderation::Message),
    /// A message's life: replies, edits, reactions, jumps to what a reply answers.
    Life(life::Message),
    /// Closed the banner.
    CloseBanner,
    /// "Log in again", once the session ended for good.
    LogInAgain,
    /// Opened or closed a side panel over the log, in a window too narrow for it to stay.
    Drawer(Option<Drawer>),
    /// Opened or closed the menu under the user's name.
    AccountMenu(bool),
    /// "Message" on a member's card: the conversation with them.
    OpenDirect(String),
    /// Search: the box, its results, opening one.
    Search(search::Message),
    /// "Log out" (`switch`: "Switch account…", the form without the name).
    LogOut {
        /// To log in under another name.
        switch: bool,
    },
}

/// A side panel that a narrow window shows over the log, on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawer {
    /// The rooms (and conversations), on the left.
    Rooms,
    /// The room's members, on the right.
    Members,
}

/// Below this width the member list no longer stays beside the log: "Members" opens it
/// over the log. The sidebar, the list and a log of about 450 px fit above it.
const MEMBERS_STAY_FROM: f32 = 860.0;

/// Below this width the rooms sidebar no longer stays either: "Rooms" opens it over the
/// log, which then has the window's whole width.
const ROOMS_STAY_FROM: f32 = 660.0;

/// Which side panels stay beside the log at a window width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    rooms_stay: bool,
    members_stay: bool,
}

impl Layout {
    fn at(width: f32) -> Self {
        Self {
            rooms_stay: width >= ROOMS_STAY_FROM,
            members_stay: width >= MEMBERS_STAY_FROM,
        }
    }
}

/// What the app must do for the Chat screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Open this web address with the system's opener.
    OpenLink(String),
    /// Change and remember a setting.
    Change(SettingChange),
    /// The rooms, or the one shown, changed: remember them.
    Remember,
    /// "Log in again" after the session ended for good: back to the Login screen.
    LogInAgain,
    /// Log out: say bye and go back to the Login screen (`switch`: without the name).
    LogOut {
        /// To log in under another name.
        switch: bool,
    },
}

/// A change of the remembered settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingChange {
    /// Show or hide the member list.
    ToggleMembers,
    /// The look.
    Theme(ThemeChoice),
    /// Hide joins and leaves in rooms with more members than this.
    HidePresenceAbove(usize),
}

/// The choices offered for hiding joins and leaves (`usize::MAX`: never).
const PRESENCE_THRESHOLDS: [usize; 6] = [10, 25, 50, 100, 500, usize::MAX];

/// What is open over the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialog {
    Help,
    Settings,
    Rooms,
    Password,
}

/// How one room is shown.
#[derive(Debug, Clone, Default)]
struct RoomView {
    log: log::Log,
    /// The replay of the last answer for the room has arrived (and older history was
    /// asked for if the room held too little).
    caught_up: bool,
    /// A message found by a search, shown in its context instead of the live log.
    context: Option<search::Context>,
}

/// The Chat screen's state.
pub struct Chat {
    server: String,
    /// Whether the user is logged in to an account (which may have direct messages).
    account: bool,
    /// Whether the account is one of the server's administrators.
    admin: bool,
    /// What is open of moderation: the topic's field, menus, dialogs.
    moderation_state: moderation::State,
    /// A reply or an edit under way, the emoji picker, what was sent of typing and read.
    life: life::State,
    /// The search box, its results, a result being opened.
    search: search::State,
    /// The form that changes the account's password.
    password: account::PasswordForm,
    handle: Handle,
    status: Status,
    limits: Limits,
    rooms: Rooms,
    /// By room key.
    views: HashMap<String, RoomView>,
    composer: composer::Composer,
    /// What was typed in the rooms not shown, by room key.
    drafts: HashMap<String, Content>,
    hint: Option<String>,
    /// A word of the client's own about the session, not about a room (no keyring, say):
    /// shown above the input until closed, where the person looks, not among messages
    /// that may arrive before or after it.
    banner: Option<String>,
    member_filter: String,
    dialog: Option<Dialog>,
    /// The side panel open over the log (in a narrow window).
    drawer: Option<Drawer>,
    /// The menu under the user's name is open.
    account_menu: bool,
    find_room: String,
    /// How a room is shown before anything happened to its view.
    fresh_view: RoomView,
}

impl Chat {
    /// The screen right after logging in; `visit` is where the user was on this server in
    /// an earlier run (the newest seq seen in each room, the room shown).
    pub fn new(server: &str, session: &Session, handle: Handle, visit: Option<&Visit>) -> Self {
        let seen = |key: &str| {
            visit
                .filter(|v| v.epoch.as_deref() == Some(session.epoch.as_str()))
                .and_then(|v| v.rooms.iter().find(|(name, _)| room_key(name) == key))
                .map_or(0, |(_, seq)| *seq)
        };
        let active = visit.and_then(|v| v.active.as_deref());
        let mut chat = Self {
            server: server.to_string(),
            handle,
            status: Status::Online,
            limits: session.limits,
            account: session.account,
            admin: session.admin,
            moderation_state: moderation::State::default(),
            life: life::State::default(),
            search: search::State::default(),
            password: account::PasswordForm::default(),
            rooms: Rooms::new(session, seen, active),
            views: HashMap::new(),
            composer: composer::Composer::default(),
            drafts: HashMap::new(),
            hint: None,
            banner: None,
            member_filter: String::new(),
            dialog: None,
            drawer: None,
            account_menu: false,
            find_room: String::new(),
            fresh_view: RoomView::default(),
        };
        chat.logged_in(session);
        chat
    }

    /// Focuses the input once the screen has been built: an operation issued in the same
    /// update that creates the screen would look for the input in the old one.
    pub fn focus() -> Task<Message> {
        Task::done(Message::Focus)
    }

    /// The rooms.
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// The room shown.
    pub fn room(&self) -> Option<&Room> {
        self.rooms.active().map(|joined| &joined.room)
    }

    /// What is typed in the input.
    pub fn input(&self) -> String {
        self.composer.text()
    }

    /// Whether the search box is open.
    pub fn searching(&self) -> bool {
        self.search.is_open()
    }

    /// The hint under the input, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Whether the log is away from the newest line.
    pub fn away_from_latest(&self) -> bool {
        self.view_of_active()
            .is_some_and(|view| view.context.is_some() || view.log.mode() == viewport::Mode::Read)
    }

    /// Where the user is, to remember for the next run.
    pub fn visit(&self, epoch: Option<String>) -> Visit {
        Visit {
            epoch,
            default_room: Some(self.rooms.default_room().to_string()),
            rooms: self.rooms.positions(),
            active: self.rooms.active().map(|joined| joined.room.name.clone()),
        }
    }

    fn view_of_active(&self) -> Option<&RoomView> {
        self.views.get(&self.rooms.active()?.key)
    }

    /// The room shown and how it is shown.
    fn active_mut(&mut self) -> Option<(&mut Joined, &mut RoomView)> {
        let joined = self.rooms.active_mut()?;
        let view = self.views.entry(joined.key.clone()).or_default();
        Some((joined, view))
    }

    /// Logged in (again).
    pub fn logged_in(&mut self, session: &Session) {
        let reconnected = self.status != Status::Online;
        self.status = Status::Online;
        self.limits = session.limits;
        self.account = session.account;
        self.admin = session.admin;
        self.ask_for_a_new_password(session);
        let before = self.shown_key();
        self.rooms.logged_in(session);
        if session.new_epoch {
            self.rooms.notice_all(
                "The server restarted without its history; what follows is new.",
                Tone::Info,
            );
        } else if reconnected {
            self.rooms.notice_all("Reconnected.", Tone::Info);
        }
        if session.missed
            && let Some(joined) = self.rooms.get_mut(&session.default_room)
        {
            joined.room.timeline.notice(
                None,
                "Some messages were missed while you were away.",
                Tone::Problem,
            );
        }
        self.views
            .retain(|key, _| self.rooms.iter().any(|j| j.key == *key));
        for view in self.views.values_mut() {
            view.caught_up = false;
        }
        self.shown_changed(before);
        self.catch_up();
        self.search_again();
    }

    /// The key of the room shown.
    fn shown_key(&self) -> Option<String> {
        self.rooms.active().map(|joined| joined.key.clone())
    }

    /// Another room may be shown than `before`: the input holds that room's draft now.
    fn shown_changed(&mut self, before: Option<String>) {
        let now = self.shown_key();
        if now == before {
            return;
        }
        let draft = self.composer.swap_draft(
            now.as_ref()
                .and_then(|key| self.drafts.remove(key))
                .unwrap_or_default(),
        );
        if let Some(before) = before
            && self.rooms.iter().any(|joined| joined.key == before)
        {
            self.drafts.insert(before, draft);
        }
        self.hint = None;
        self.member_filter.clear();
        self.moderation_state.shown_changed();
        self.catch_up();
    }

    /// Once the replay of the room shown is in: fetch older history if it holds too
    /// little.
    fn catch_up(&mut self) {
        let Some((joined, view)) = self.active_mut() else {
            return;
        };
        if view.caught_up || !joined.room.replayed() {
            return;
        }
        view.caught_up = true;
        if let Some(request) = view.log.wants_more(&mut joined.room.timeline) {
            let name = joined.room.name.clone();
            self.request(&name, request);
        }
    }

    fn request(&self, room: &str, request: log::Request) {
        match request {
            log::Request::History(before) => {
                self.handle.history(room, before, log::HISTORY_PAGE);
            }
        }
    }

    /// The connection dropped and is coming back; `closing` says why if the server did.
    pub fn reconnecting(&mut self, closing: Option<CloseCode>) {
        if self.status == Status::Online {
            let words = match closing {
                Some(CloseCode::Shutdown) => "The server is restarting; reconnecting…",
                _ => "Connection lost; reconnecting…",
            };
            self.rooms.notice_all(words, Tone::Problem);
        }
        self.rooms.history_failed();
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
        // Said once, in the banner above the input with its way out ("Log in again").
        self.status = Status::Ended(reason);
    }

    /// A frame from the server; `focused`: whether the window has the focus. Returns what
    /// to notify outside the window.
    pub fn received(&mut self, frame: ServerFrame, focused: bool) -> Option<Notify> {
        if self.search_answered(&frame) {
            return None;
        }
        // A message shown in its context changes with the room's (only these frames
        // change a message: nothing more is looked up for the others).
        let changes_a_message = matches!(
            frame,
            ServerFrame::Edited { .. } | ServerFrame::Reaction { .. } | ServerFrame::Deleted { .. }
        );
        if changes_a_message
            && let Some(context) = self
                .views
                .get_mut(&self.rooms.key_of(&frame))
                .and_then(|view| view.context.as_mut())
        {
            context.room.timeline.change(&frame);
        }
        match &frame {
            ServerFrame::PasswordChanged => {
                if self.dialog == Some(Dialog::Password) {
                    self.dialog = None;
                }
                self.password = account::PasswordForm::default();
                self.rooms.notice("Your password was changed.", Tone::Info);
                return None;
            }
            ServerFrame::Error {
                code,
                message,
                id: None,
                room: None,
                ..
            } if self.password.refused(*code, message) => return None,
            _ => {}
        }
        if let ServerFrame::Error {
            code: chat_shared::ErrorCode::Muted,
            id: Some(id),
            room: Some(room),
            until,
            ..
        } = &frame
        {
            self.muted(room, id, *until);
            return None;
        }
        let before = self.shown_key();
        let notify = self.rooms.received(frame, focused);
        // A join the server refused takes its room away.
        self.shown_changed(before);
        self.catch_up();
        notify
    }

    /// A post was refused because the user is muted in `room`: the room knows it now,
    /// and the post's text goes back to that room's input (nothing typed is lost).
    fn muted(&mut self, room: &str, id: &str, until: Option<u64>) {
        let shown = self.shown_key();
        let Some(joined) = self.rooms.get_mut(room) else {
            return;
        };
        let me = joined.room.timeline.me().to_string();
        joined.room.moderation.mutes.insert(
            chat_shared::fold(&me),
            chat_shared::Restriction {
                name: me,
                by: String::new(),
                message: None,
                until,
            },
        );
        let Some(at) = joined.room.pending.iter().position(|p| p.id == id) else {
            return;
        };
        let post = joined.room.pending.remove(at);
        let text = if post.me {
            format!("/me {}", post.text)
        } else {
            post.text
        };
        if shown.as_deref() == Some(joined.key.as_str()) {
            if self.composer.text().is_empty() {
                self.composer.insert(&text);
            }
            self.hint = None;
        } else {
            let draft = self.drafts.entry(joined.key.clone()).or_default();
            if draft.text().trim().is_empty() {
                *draft = Content::with_text(&text);
            }
        }
    }

    /// A word for the user in the room shown.
    pub fn notice(&mut self, text: &str) {
        self.banner = Some(text.to_string());
    }

    /// The answer to a history request.
    pub fn history(&mut self, room: &str, before: u64, frames: Vec<ServerFrame>) -> Task<Message> {
        let added = self.rooms.history(room, before, frames);
        let Some(joined) = self.rooms.get_mut(room) else {
            return Task::none();
        };
        let key = joined.key.clone();
        let view = self.views.entry(key.clone()).or_default();
        view.log.history_arrived(&joined.room.timeline, added);
        if let Some(request) = view.log.wants_more(&mut joined.room.timeline) {
            let name = joined.room.name.clone();
            self.request(&name, request);
        }
        self.wanted_arrived(&key)
    }

    /// Handles a message; may return a task (scrolling, focus, clipboard) and an action
    /// for the app.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Action) {
        let task = match message {
            Message::Edit(action) => self.input_changed(action),
            Message::Send => return self.send(),
            Message::Complete { backwards } => {
                if let Some(joined) = self.rooms.active() {
                    let me = self.rooms.me().to_string();
                    self.composer.complete(&joined.room.members, &me, backwards);
                }
                Task::none()
            }
            Message::Recall { older } => {
                if older && let Some(task) = self.edit_last() {
                    return (task, Action::None);
                }
                self.composer.recall(older);
                Task::none()
            }
            Message::ScrollLog(_)
            | Message::JumpToLatest
            | Message::Scrolled(..)
            | Message::ShowOlder
            | Message::TogglePresence(_) => self.log_message(&message),
            Message::OpenLink(url) => return (Task::none(), Action::OpenLink(url)),
            Message::Dismiss(id) => {
                if let Some((joined, _)) = self.active_mut() {
                    joined.room.dismiss(&id);
                }
                Task::none()
            }
            Message::Focus
            | Message::TypeAhead(_)
            | Message::Copy
            | Message::Copied(_)
            | Message::Paste
            | Message::Pasted(_) => self.clipboard(message),
            Message::Settings(open) => self.dialog(open.then_some(Dialog::Settings)),
            Message::ToggleMembers => {
                return (Task::none(), Action::Change(SettingChange::ToggleMembers));
            }
            Message::ThemeChosen(choice) => {
                return (Task::none(), Action::Change(SettingChange::Theme(choice)));
            }
            Message::HidePresenceAbove(members) => {
                return (
                    Task::none(),
                    Action::Change(SettingChange::HidePresenceAbove(members)),
                );
            }
            Message::MemberFilter(filter) => {
                self.member_filter = filter;
                Task::none()
            }
            Message::Help(open) => self.dialog(open.then_some(Dialog::Help)),
            Message::CloseBanner
            | Message::Drawer(_)
            | Message::AccountMenu(_)
            | Message::LogOut { .. }
            | Message::LogInAgain => return self.chrome(&message),
            Message::Account(true) => {
                self.account_menu = false;
                self.password_form(None)
            }
            Message::Password(message) => self.password_form(Some(message)),
            Message::Escape | Message::Account(false) => self.escape(),
            Message::Moderation(message) => self.moderation(message),
            Message::Search(message) => self.search(message),
            Message::Life(message) => self.life(message),

            Message::Rooms(_)
            | Message::FindRoom(_)
            | Message::JoinRoom(_)
            | Message::Switch(_)
            | Message::Step(_)
            | Message::OpenDirect(_)
            | Message::Part => return self.rooms_message(message),
        };
        (task, Action::None)
    }

    /// Scrolling and reading the log.
    fn log_message(&mut self, message: &Message) -> Task<Message> {
        match *message {
            Message::ScrollLog(Scroll::Bottom) | Message::JumpToLatest => self.jump_to_latest(),
            Message::ScrollLog(Scroll::Top) => {
                self.with_log(|log, timeline| {
                    log.jump_to_oldest(timeline);
                    None
                });
                viewport::scroll(LIST.into(), Scroll::Top, viewport::Mode::Read)
            }
            Message::ScrollLog(to) => {
                let mode = self
                    .view_of_active()
                    .map_or(viewport::Mode::Follow, |view| {
                        view.context.as_ref().map_or(&view.log, |c| &c.log).mode()
                    });
                viewport::scroll(LIST.into(), to, mode)
            }
            Message::Scrolled(ref viewport, built) => {
                self.with_log(|log, timeline| log.scrolled(viewport, built, timeline));
                Task::none()
            }
            Message::ShowOlder => {
                self.with_log(log::Log::show_older);
                Task::none()
            }
            Message::TogglePresence(pos) => {
                self.with_log(|log, _| {
                    log.toggle(pos);
                    None
                });
                Task::none()
            }
            _ => Task::none(),
        }
    }

    /// What is around the log: the banner, the side panels over it, the menu under the
    /// name, logging out and in again.
    fn chrome(&mut self, message: &Message) -> (Task<Message>, Action) {
        match message {
            Message::CloseBanner => self.banner = None,
            Message::Drawer(drawer) => self.drawer = *drawer,
            Message::AccountMenu(open) => self.account_menu = *open,
            Message::LogOut { switch } => {
                return (Task::none(), Action::LogOut { switch: *switch });
            }
            Message::LogInAgain => return (Task::none(), Action::LogInAgain),
            _ => {}
        }
        (Task::none(), Action::None)
    }

    /// The focus, typing ahead, and the clipboard.
    fn clipboard(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::TypeAhead(text) if self.search.is_open() => {
                self.search(search::Message::TypeAhead(text))
            }
            Message::TypeAhead(text) => {
                self.composer.insert(&text);
                operation::focus(INPUT)
            }
            Message::Copy => selectable::copy_selection().map(Message::Copied),
            Message::Copied(Some(text)) => iced::clipboard::write(text),
            Message::Paste => iced::clipboard::read().map(Message::Pasted),
            Message::Pasted(text) => {
                if let Some(text) = text {
                    self.composer.insert(&text);
                }
                operation::focus(INPUT)
            }
            Message::Focus if self.search.is_open() => operation::focus(search::FIELD),
            Message::Focus => operation::focus(INPUT),
            _ => Task::none(),
        }
    }

    /// What the user did with the rooms: the sidebar, the list of rooms, leaving.
    fn rooms_message(&mut self, message: Message) -> (Task<Message>, Action) {
        let task = match message {
            Message::Rooms(open) => {
                if open {
                    self.open_rooms()
                } else {
                    self.dialog(None)
                }
            }
            Message::FindRoom(find) => {
                self.find_room = find;
                Task::none()
            }
            Message::JoinRoom(name) => {
                if chat_shared::RoomName::parse(&name).is_err() {
                    return (Task::none(), Action::None);
                }
                self.dialog = None;
                self.join(&name);
                return (operation::focus(INPUT), Action::Remember);
            }
            Message::Switch(name) => {
                self.switch(&name);
                self.drawer = None;
                return (operation::focus(INPUT), Action::Remember);
            }
            Message::Step(by) => {
                self.step(by);
                return (Task::none(), Action::Remember);
            }
            Message::OpenDirect(name) => {
                let before = self.shown_key();
                self.rooms.open_direct(&name);
                self.shown_changed(before);
                return (operation::focus(INPUT), Action::Remember);
            }
            Message::Part => {
                if let Some(name) = self.rooms.active().map(|j| j.room.name.clone()) {
                    self.part(&name);
                }
                return (operation::focus(INPUT), Action::Remember);
            }
            _ => Task::none(),
        };
        (task, Action::None)
    }

    /// Runs `f` on the log and timeline of the room shown (of the message found that it
    /// shows in its context, if it does), and asks for what it needs.
    fn with_log(
        &mut self,
        f: impl FnOnce(&mut log::Log, &mut crate::model::Timeline) -> Option<log::Request>,
    ) {
        let Some((joined, view)) = self.active_mut() else {
            return;
        };
        if let Some(context) = &mut view.context {
            // Only the events around the message are there: nothing more is fetched.
            f(&mut context.log, &mut context.room.timeline);
            return;
        }
        if let Some(request) = f(&mut view.log, &mut joined.room.timeline) {
            let name = joined.room.name.clone();
            self.request(&name, request);
        }
    }

    /// After a log-in with a temporary password (an operator's reset), the form that
    /// changes it opens by itself.
    fn ask_for_a_new_password(&mut self, session: &Session) {
        if session.password_reset && self.dialog != Some(Dialog::Password) {
            self.password = account::PasswordForm::after_reset();
            self.dialog = Some(Dialog::Password);
        }
    }

    /// Opens the form that changes the password (`None`), or a step in it: sent once
    /// complete, if connected.
    fn password_form(&mut self, message: Option<account::Message>) -> Task<Message> {
        let Some(message) = message else {
            self.password = account::PasswordForm::default();
            self.dialog = Some(Dialog::Password);
            return operation::focus(account::CURRENT);
        };
        let me = self.rooms.me().to_string();
        if let Some((current, new)) = self.password.update(message, &me) {
            if self.status == Status::Online {
                self.handle.set_password(current, new);
            } else {
                self.password.refused(
                    chat_shared::ErrorCode::Unavailable,
                    "Not connected; try again once reconnected.",
                );
            }
        }
        Task::none()
    }

    /// Escape: closes what moderation has open, or else the dialog.
    fn escape(&mut self) -> Task<Message> {
        if self.search.is_open() {
            return self.search(search::Message::Close);
        }
        if self.escape_life() || self.moderation_state.escape() {
            return operation::focus(INPUT);
        }
        if self.drawer.take().is_some() || std::mem::take(&mut self.account_menu) {
            return operation::focus(INPUT);
        }
        self.dialog(None)
    }

    fn dialog(&mut self, dialog: Option<Dialog>) -> Task<Message> {
        self.dialog = dialog;
        match dialog {
            None => operation::focus(INPUT),
            Some(_) => Task::none(),
        }
    }

    /// Opens the list of rooms, asking the server for a fresh one.
    fn open_rooms(&mut self) -> Task<Message> {
        self.rooms.clear_directory();
        self.handle.rooms();
        self.find_room.clear();
        self.dialog = Some(Dialog::Rooms);
        operation::focus(sidebar::FIND)
    }

    /// Shows the room `by` places below the one shown in the sidebar (above, if negative),
    /// going round at the ends.
    fn step(&mut self, by: i32) {
        let count = self.rooms.len();
        let Some(at) = self
            .rooms
            .active()
            .and_then(|a| self.rooms.iter().position(|j| j.key == a.key))
        else {
            return;
        };
        let moves = by.unsigned_abs() as usize % count;
        let next = if by < 0 {
            (at + count - moves) % count
        } else {
            (at + moves) % count
        };
        let name = self.rooms.iter().nth(next).map(|j| j.room.name.clone());
        if let Some(name) = name {
            self.switch(&name);
        }
    }

    /// Shows a room of the user's.
    fn switch(&mut self, name: &str) {
        let before = self.shown_key();
        self.rooms.activate(name);
        self.shown_changed(before);
    }

    /// Joins a room (or shows it, if the user is in it).
    fn join(&mut self, name: &str) {
        let before = self.shown_key();
        if self.rooms.join(name) {
            self.handle.join(name);
        }
        self.shown_changed(before);
    }

    /// Leaves a room.
    fn part(&mut self, name: &str) {
        let before = self.shown_key();
        let out = self.rooms.get(name).is_some_and(|j| j.room.out.is_some());
        if let Some(name) = self.rooms.part(name) {
            let key = room_key(&name);
            self.views.remove(&key);
            self.drafts.remove(&key);
            if !out {
                self.handle.part(&name);
            }
        }
        self.shown_changed(before);
    }

    /// Typed or moved in the input: what is too long says so; typing says so to others.
    fn input_changed(&mut self, action: iced::widget::text_editor::Action) -> Task<Message> {
        let edit = action.is_edit();
        self.composer.perform(action);
        if edit {
            self.typed();
        }
        self.hint = match check_text(&self.composer.text(), self.max_text()) {
            Err(err @ TextError::TooLong { .. }) => Some(too_long_hint(&err)),
            _ => None,
        };
        Task::none()
    }

    fn max_text(&self) -> usize {
        self.limits.max_text as usize
    }

    /// Enter: a message to the room shown, or a command.
    fn send(&mut self) -> (Task<Message>, Action) {
        // Nothing is queued that could never be sent: the text stays in the input.
        if let Status::Ended(_) = &self.status {
            self.hint = Some("Not sent: this session has ended. Log in again to send it.".into());
            return (Task::none(), Action::None);
        }
        if let Some(task) = self.send_edit() {
            return (task, Action::None);
        }
        match command::parse(&self.composer.text()) {
            Err(hint) => {
                self.hint = Some(hint);
                (Task::none(), Action::None)
            }
            Ok(Input::Say(text)) => self.post(text, false),
            Ok(Input::Me(text)) => self.post(text, true),
            Ok(command) => self.run(command),
        }
    }

    /// A slash command.
    fn run(&mut self, command: Input) -> (Task<Message>, Action) {
        match command {
            Input::Say(text) => self.post(text, false),
            Input::Me(text) => self.post(text, true),
            Input::Join(room) => {
                self.composer.take();
                self.join(room.as_str());
                (Task::none(), Action::Remember)
            }
            Input::Part(room) => {
                let name = room
                    .map(|room| room.as_str().to_string())
                    .or_else(|| self.rooms.active().map(|j| j.room.name.clone()));
                let Some(name) = name else {
                    self.hint = Some("You are in no room.".into());
                    return (Task::none(), Action::None);
                };
                if self.rooms.get(&name).is_none() {
                    self.hint = Some(format!("You are not in #{name}."));
                    return (Task::none(), Action::None);
                }
                self.composer.take();
                self.part(&name);
                (Task::none(), Action::Remember)
            }
            Input::Msg(to, text) => {
                if !self.account {
                    self.hint = Some(
                        "Only an account can send direct messages: log in with a password.".into(),
                    );
                    return (Task::none(), Action::None);
                }
                self.composer.take();
                let before = self.shown_key();
                self.rooms.open_direct(to.as_str());
                self.shown_changed(before);
                if text.trim().is_empty() {
                    return (Task::none(), Action::Remember);
                }
                let (task, _) = self.post(text, false);
                (task, Action::Remember)
            }
            Input::Rooms => {
                self.composer.take();
                (self.open_rooms(), Action::None)
            }
            Input::Help => {
                self.composer.take();
                (self.dialog(Some(Dialog::Help)), Action::None)
            }
            Input::Moderate(step) => {
                self.moderate(step);
                (Task::none(), Action::None)
            }
        }
    }

    /// Posts what was typed in the room shown (an action with `me`).
    fn post(&mut self, text: String, me: bool) -> (Task<Message>, Action) {
        match check_text(&text, self.max_text()) {
            Ok(()) => {}
            Err(TextError::Empty) => return (Task::none(), Action::None),
            Err(err @ TextError::TooLong { .. }) => {
                self.hint = Some(too_long_hint(&err));
                return (Task::none(), Action::None);
            }
            Err(err) => {
                self.hint = Some(err.to_string());
                return (Task::none(), Action::None);
            }
        }
        // What was typed stays in the input; why shows under it (see `cannot_post`).
        if self.cannot_post().is_some() {
            self.hint = None;
            return (Task::none(), Action::None);
        }
        let Some(joined) = self.rooms.active_mut() else {
            self.hint = Some("You are in no room: /join #room to enter one.".into());
            return (Task::none(), Action::None);
        };
        let name = joined.room.name.clone();
        let reply_to = self.reply_to();
        self.composer.take();
        let id = new_post_id();
        self.handle
            .reply(Some(&name), id.clone(), text.clone(), me, reply_to);
        if let Some(joined) = self.rooms.active_mut() {
            joined.room.post(id, text, me);
        }
        self.hint = None;
        (self.jump_to_latest(), Action::None)
    }

    fn jump_to_latest(&mut self) -> Task<Message> {
        // The log's keeper puts a following list at its newest line by itself.
        if let Some((_, view)) = self.active_mut() {
            view.context = None;
            view.log.jump_to_latest();
        }
        Task::none()
    }

    /// The screen, in `theme`, as `settings` want it.
    pub fn view<'a>(&'a self, theme: &'a Theme, settings: &'a Settings) -> Element<'a, Message> {
        // The panels that fit depend on the width the screen gets.
        let screen = responsive(move |size| self.screen(Layout::at(size.width), theme, settings));
        let mut layers = stack![screen];
        match self.dialog {
            Some(Dialog::Help) => layers = layers.push(modal(help(), Message::Help(false))),
            Some(Dialog::Settings) => {
                layers = layers.push(modal(settings_card(settings), Message::Settings(false)));
            }
            Some(Dialog::Rooms) => {
                layers = layers.push(modal(
                    sidebar::dialog(&self.rooms, &self.find_room),
                    Message::Rooms(false),
                ));
            }
            Some(Dialog::Password) => {
                layers = layers.push(modal(self.password.view(), Message::Account(false)));
            }
            None => {}
        }
        if let Some(card) = self.moderation_dialog() {
            layers = layers.push(modal(card, Message::Moderation(moderation::Message::Close)));
        }
        if self.search.is_open() {
            layers = layers.push(modal(
                self.search_dialog(theme).map(Message::Search),
                Message::Search(search::Message::Close),
            ));
        }
        layers.into()
    }

    /// The header, the side panels that fit and the log with its input.
    fn screen<'a>(
        &'a self,
        layout: Layout,
        theme: &'a Theme,
        settings: &'a Settings,
    ) -> Element<'a, Message> {
        let deletable = |message: &crate::model::ChatMessage| self.may_delete(message);
        let (hovered, menu) = self.moderation_state.message_shown();
        let looks = log::Looks {
            theme,
            online: self.status == Status::Online,
            hide_presence_above: settings.hide_presence_above,
            deletable: &deletable,
            hovered,
            menu,
            left_off: self.rooms.active().and_then(|joined| joined.left_off),
            account: self.account,
            picker: self.life.picker().map(|seq| (seq, self.life.offered())),
            excerpt: false,
        };
        let (main, placeholder) = match self.rooms.active() {
            Some(joined) => {
                let view = self.views.get(&joined.key).unwrap_or(&self.fresh_view);
                let log: Element<'_, Message> = if let Some(context) = &view.context {
                    // Its own list, so that the live log keeps its place underneath.
                    let list = list_id(&joined.key) ^ 1;
                    let excerpt = log::Looks {
                        excerpt: true,
                        left_off: None,
                        ..looks
                    };
                    column![
                        Self::context_bar(context),
                        context.log.view(&context.room, &excerpt, list)
                    ]
                    .into()
                } else {
                    let mut log = stack![view.log.view(&joined.room, &looks, list_id(&joined.key))];
                    if view.log.mode() == viewport::Mode::Read {
                        log = log.push(jump_button(view.log.unseen(&joined.room.timeline)));
                    }
                    log.into()
                };
                let placeholder = if joined.is_direct() {
                    format!("Message {}", joined.room.name)
                } else {
                    format!("Message #{}", joined.room.name)
                };
                (container(log).height(Fill).into(), placeholder)
            }
            None => (no_room(), "/join #room to enter a room".to_string()),
        };
        let hint = self.hint.clone().or_else(|| self.cannot_post());
        let mut main = column![main];
        if let Status::Ended(reason) = &self.status {
            main = main.push(banner(
                format!("Disconnected: {reason}"),
                ("Log in again", Message::LogInAgain),
            ));
        } else if let Some(words) = &self.banner {
            main = main.push(banner(words.clone(), ("Close", Message::CloseBanner)));
        }
        if let Some(line) = self.typing_line() {
            main = main.push(
                container(
                    text(line)
                        .size(12)
                        .style(crate::screen::style::unique_style(muted, "typing")),
                )
                .padding([0, 14]),
            );
        }
        if let Some(bar) = self.life_bar() {
            main = main.push(bar);
        }
        let main = main.push(self.composer.view(placeholder, hint));
        let mut body = row![];
        if layout.rooms_stay {
            body = body.push(self.sidebar()).push(rule::vertical(1));
        }
        body = body.push(container(main).width(Fill).height(Fill));
        if settings.show_members
            && layout.members_stay
            && let Some(members) = self.members()
        {
            body = body.push(rule::vertical(1)).push(members);
        }
        // What does not stay opens over the log, closed by a click beside it.
        let beside =
            || mouse_area(space().width(Fill).height(Fill)).on_press(Message::Drawer(None));
        let drawer = match self.drawer {
            Some(Drawer::Rooms) if !layout.rooms_stay => {
                Some(row![drawer(self.sidebar()), rule::vertical(1), beside()])
            }
            Some(Drawer::Members) if !layout.members_stay => self
                .members()
                .map(|members| row![beside(), rule::vertical(1), drawer(members)]),
            _ => None,
        };
        let body: Element<'_, Message> = match drawer {
            Some(drawer) => stack![body, drawer].into(),
            None => body.into(),
        };
        column![self.header(settings, layout), rule::horizontal(1), body].into()
    }

    /// The rooms sidebar.
    fn sidebar(&self) -> Element<'_, Message> {
        sidebar::view(
            &self.rooms,
            &sidebar::Me {
                server: &self.server,
                account: self.account,
                menu: self.account_menu,
            },
            self.invitations_view(),
        )
    }

    /// The member list of the room shown; none for a conversation (it is the two of you,
    /// and the list would claim the other is online).
    fn members(&self) -> Option<Element<'_, Message>> {
        let joined = self.rooms.active().filter(|joined| !joined.is_direct())?;
        let actions = |name: &str| self.member_actions(name);
        let card = |name: &str| self.member_card(name);
        Some(members::view(
            &joined.room.members,
            &members::Look {
                me: self.rooms.me(),
                filter: &self.member_filter,
                online: self.status == Status::Online,
                moderation: &joined.room.moderation,
                menu: self.moderation_state.member_menu(),
                actions: &actions,
                card: &card,
            },
        ))
    }

    /// Whether someone is in one of the user's rooms now.
    fn seen_online(&self, name: &str) -> bool {
        self.status == Status::Online
            && self
                .rooms
                .iter()
                .any(|joined| !joined.is_direct() && joined.room.members.contains(name))
    }

    /// What the card of a member of the room shown says.
    fn member_card(&self, name: &str) -> members::Card {
        let me = chat_shared::fold(name) == chat_shared::fold(self.rooms.me());
        let Some(joined) = self.rooms.active() else {
            return members::Card::default();
        };
        // Only accounts hold roles and conversations.
        let account = if me {
            Some(self.account)
        } else if joined.room.moderation.role(name) != chat_shared::Role::Member
            || self.rooms.iter().any(|other| {
                other
                    .with()
                    .is_some_and(|with| chat_shared::fold(with) == chat_shared::fold(name))
            })
        {
            Some(true)
        } else {
            None
        };
        members::Card {
            since: joined.room.timeline.online_since(name),
            account,
            message: (self.account && !me && account != Some(false))
                .then(|| Message::OpenDirect(name.to_string())),
        }
    }

    /// The sidebar's toggle in a narrow window, with what is unread behind it.
    fn rooms_toggle(&self) -> Element<'_, Message> {
        let unread: usize = self.rooms.iter().map(|joined| joined.unread).sum();
        let label = if unread > 0 {
            format!("☰ Rooms ({unread})")
        } else {
            "☰ Rooms".to_string()
        };
        let open = self.drawer != Some(Drawer::Rooms);
        button(text(label).size(13))
            .on_press(Message::Drawer(open.then_some(Drawer::Rooms)))
            .style(button::text)
            .padding([2, 6])
            .into()
    }

    /// The connection's state in words, and its colour.
    fn status_words(&self, layout: Layout) -> (String, fn(&Theme) -> iced::theme::palette::Pair) {
        match &self.status {
            Status::Online => ("● online".into(), |t| t.extended_palette().success.strong),
            Status::Reconnecting => ("● reconnecting…".into(), |t| {
                t.extended_palette().warning.strong
            }),
            // A narrow header keeps the essential.
            Status::Offline { retry_in, .. } if !layout.rooms_stay => {
                (format!("● offline, retry in {retry_in}s"), |t| {
                    t.extended_palette().danger.strong
                })
            }
            Status::Offline { attempt, retry_in } => (
                format!("● offline, retrying in {retry_in}s (attempt {attempt})"),
                |t| t.extended_palette().danger.strong,
            ),
            Status::Ended(_) => ("● offline".into(), |t| t.extended_palette().danger.strong),
        }
    }

    fn header(&self, settings: &Settings, layout: Layout) -> Element<'_, Message> {
        let (status, tone) = self.status_words(layout);
        // The strong shade of each tone reads on both light and dark backgrounds.
        let style = move |theme: &Theme| text::Style {
            color: Some(tone(theme).color),
        };
        let small = |label: &'static str, message: Message| {
            button(text(label).size(13))
                .on_press(message)
                .style(button::text)
                .padding([2, 6])
        };
        let mut bar = row![].spacing(8).align_y(Center);
        if !layout.rooms_stay {
            bar = bar.push(self.rooms_toggle());
        }
        if let Some(joined) = self.rooms.active() {
            let title = if joined.is_direct() {
                joined.room.name.clone()
            } else {
                format!("#{}", joined.room.name)
            };
            // A conversation says whether the other is online, as far as the rooms the
            // two share tell (the protocol has no presence beyond rooms).
            let people = match (joined.with(), joined.room.members.len()) {
                (Some(with), _) if self.seen_online(with) => format!("● {with} is online"),
                (Some(with), _) => format!("{with} is in no room you share"),
                (None, 1) => "1 member".to_string(),
                (None, n) => format!("{n} members"),
            };
            let mut heading = column![
                row![
                    text(title.clone())
                        .size(16)
                        .font(bold())
                        .style(unique_style(text::default, &title)),
                    text(people.clone())
                        .size(13)
                        .style(unique_style(muted, &people)),
                ]
                .spacing(8)
                .align_y(Center)
            ]
            .spacing(2)
            .width(iced::Shrink);
            if let Some(topic) = self.topic_line(joined) {
                heading = heading.push(topic);
            }
            bar = bar.push(heading);
            if joined.room.out.is_some() {
                bar = bar.push(small(
                    "Join",
                    Message::Moderation(moderation::Message::Join(joined.room.name.clone())),
                ));
            }
            bar = bar.push(small(
                if joined.is_direct() || joined.room.out.is_some() {
                    "Close"
                } else {
                    "Leave"
                },
                Message::Part,
            ));
            if let Some(settings) = self.settings_button(joined) {
                bar = bar.push(settings);
            }
        }
        // Wide, the state and the buttons keep to the right; narrow, everything flows
        // onto a second line rather than being cut off.
        if layout.members_stay {
            bar = bar.push(space::horizontal());
        }
        bar = bar.push(
            text(status.clone())
                .size(14)
                .style(unique_style(style, &status)),
        );
        // A conversation has no member list to show or hide.
        if !self.rooms.active().is_some_and(Joined::is_direct) {
            bar = bar.push(if layout.members_stay {
                small(
                    if settings.show_members {
                        "Hide members"
                    } else {
                        "Members"
                    },
                    Message::ToggleMembers,
                )
            } else {
                let open = self.drawer != Some(Drawer::Members);
                small("Members", Message::Drawer(open.then_some(Drawer::Members)))
            });
        }
        let bar = bar
            .push(small("Search", Message::Search(search::Message::Open)))
            .push(small("Settings", Message::Settings(true)))
            .push(small("?", Message::Help(true)))
            .padding([8, 12]);
        if layout.members_stay {
            bar.into()
        } else {
            bar.wrap().vertical_spacing(4).into()
        }
    }
}

/// What shows instead of a log when the user is in no room.
fn no_room<'a>() -> Element<'a, Message> {
    center(
        column![
            text("You are in no room.").size(16).font(bold()),
            text("Type /join #room, or browse the rooms people are in.")
                .size(13)
                .style(muted),
            button(text("Browse rooms…").size(13)).on_press(Message::Rooms(true)),
        ]
        .spacing(8)
        .align_x(Center),
    )
    .into()
}

/// Tells one room's log from another's for the widget that keeps each one's place.
fn list_id(key: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// "Jump to latest", or how many messages came since the reader scrolled up.
fn jump_button<'a>(unseen: usize) -> Element<'a, Message> {
    let label = match unseen {
        0 => "Jump to latest ↓".to_string(),
        1 => "1 new message ↓".to_string(),
        n => format!("{n} new messages ↓"),
    };
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
    .padding(8)
    .into()
}

/// The slash commands and the keyboard shortcuts, over the screen.
fn help<'a>() -> Element<'a, Message> {
    let keys: &[(&str, &str)] = &[
        ("Enter", "send"),
        ("Shift+Enter", "new line"),
        ("Tab / Shift+Tab", "complete a name"),
        (
            "Up / Down",
            "walk through what you sent (in an empty input)",
        ),
        ("Alt+Up / Alt+Down", "the room above / below"),
        ("PageUp / PageDown", "scroll the messages"),
        ("Ctrl+Home / Ctrl+End", "oldest / newest messages"),
        ("Ctrl+K / Ctrl+F", "search every room (from:name, in:room)"),
        (
            "Ctrl+C",
            "copy the selected text (drag over messages to select)",
        ),
        (
            "Right click",
            "a message's or a member's actions (also \"…\" beside them)",
        ),
        ("Escape", "close this"),
    ];
    let line = |(what, does): &(&'a str, &'a str)| {
        row![
            text(*what).size(13).font(bold()).width(170),
            text(*does).size(13).style(muted)
        ]
        .spacing(8)
    };
    let mut list = column![text("Commands").size(16).font(bold())].spacing(6);
    for command in &command::COMMANDS {
        list = list.push(line(command));
    }
    list = list.push(text("Keys").size(16).font(bold()));
    for key in keys {
        list = list.push(line(key));
    }
    list.push(
        container(
            button(text("Close").size(13))
                .on_press(Message::Help(false))
                .style(button::secondary),
        )
        .align_right(Fill),
    )
    .width(480)
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

/// A word of the client's own above the input, with a button (that closes it, or acts).
fn banner(words: String, (label, press): (&str, Message)) -> Element<'_, Message> {
    container(
        row![
            text(words).size(14).width(Fill),
            button(text(label).size(13))
                .on_press(press)
                .style(button::text)
                .padding([2, 6]),
        ]
        .spacing(8)
        .align_y(Center),
    )
    .padding([6, 12])
    .width(Fill)
    .style(container::secondary)
    .into()
}

/// A side panel over the log: opaque, so that what is under it takes no click.
fn drawer(panel: Element<'_, Message>) -> Element<'_, Message> {
    opaque(container(panel).height(Fill).style(container::bordered_box))
}
