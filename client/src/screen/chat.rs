//! The Chat screen: header with the connection's status, the message list, who is online,
//! and the input bar.
//!
//! The list keeps a bounded scrollback ([`SCROLLBACK`] entries) and renders only a window
//! of it ([`WINDOW`] entries), so a long-running chat stays smooth: the user pages back with
//! "Show older" and returns with "Jump to latest".

use std::collections::{BTreeMap, VecDeque};

use chat_shared::{ErrorCode, LeaveReason, Limits, Name, ServerFrame, TextError, check_text};
use iced::widget::{
    Column, button, column, container, operation, row, rule, scrollable, text, text_input,
};
use iced::{Center, Element, Fill, Font, Task, Theme, font};

use crate::connection::{Handle, Session, new_post_id};

/// Entries kept in memory; older ones are dropped.
pub const SCROLLBACK: usize = 100_000;
/// Entries rendered at once.
pub const WINDOW: usize = 200;
/// The id of the message list.
pub const LIST: &str = "chat-list";
/// The id of the input field.
pub const INPUT: &str = "chat-input";

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

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A message.
    Message {
        /// Server time, ms since the Unix epoch.
        time: u64,
        /// Sender.
        from: String,
        /// Text.
        text: String,
        /// Sent by this user.
        mine: bool,
    },
    /// Something that happened: joins, leaves, reconnects.
    System {
        /// Server time, if the server stamped it.
        time: Option<u64>,
        /// What happened, in words.
        text: String,
    },
}

/// A post not yet acknowledged by the server.
#[derive(Debug, Clone)]
struct Pending {
    id: String,
    text: String,
    /// Refused by the server, with why.
    failed: Option<String>,
}

/// What the user did on the Chat screen.
#[derive(Debug, Clone)]
pub enum Message {
    /// Typed in the input.
    InputChanged(String),
    /// Pressed Enter or Send.
    Send,
    /// Scrolled the list.
    Scrolled(scrollable::Viewport),
    /// Asked for the newest messages.
    JumpToLatest,
    /// Asked for older messages.
    ShowOlder,
    /// Dismissed a failed post.
    Dismiss(String),
    /// Put the cursor in the input (sent once the screen is up).
    Focus,
}

/// The Chat screen's state.
pub struct Chat {
    server: String,
    me: String,
    handle: Handle,
    status: Status,
    limits: Limits,
    entries: VecDeque<Entry>,
    /// Entries dropped from the front since the start, so a window can stay put.
    dropped: usize,
    /// The end of the rendered window when the user paged back; `None` follows the newest.
    window_end: Option<usize>,
    /// The user scrolled up within the window.
    scrolled_up: bool,
    /// Online users by case-folded name.
    users: BTreeMap<String, String>,
    pending: Vec<Pending>,
    input: String,
    hint: Option<String>,
    /// Events up to this seq (of this login) are replay: they do not change who is online.
    replay_until: u64,
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
            entries: VecDeque::new(),
            dropped: 0,
            window_end: None,
            scrolled_up: false,
            users: BTreeMap::new(),
            pending: Vec::new(),
            input: String::new(),
            hint: None,
            replay_until: 0,
        };
        chat.logged_in(session);
        chat
    }

    /// Focuses the input once the screen has been built: an operation issued in the same
    /// update that creates the screen would look for the input in the old one.
    pub fn focus() -> Task<Message> {
        Task::done(Message::Focus)
    }

    /// The entries held.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Who is online, sorted case-insensitively.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.values().map(String::as_str)
    }

    /// Logged in (again): who is online comes from the welcome.
    pub fn logged_in(&mut self, session: &Session) {
        let reconnected = self.status != Status::Online;
        self.status = Status::Online;
        self.me.clone_from(&session.name);
        self.limits = session.limits;
        self.replay_until = session.seq;
        self.users = session.users.iter().map(|u| (fold(u), u.clone())).collect();
        if session.new_epoch {
            self.push(system(
                None,
                "The server restarted; its history starts afresh.",
            ));
        } else if reconnected {
            self.push(system(None, "Reconnected."));
        }
        if session.missed {
            self.push(system(
                None,
                "Some messages were missed while you were away.",
            ));
        }
    }

    /// The connection dropped and is coming back.
    pub fn reconnecting(&mut self) {
        if self.status == Status::Online {
            self.push(system(None, "Connection lost; reconnecting…"));
        }
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
        self.push(system(None, &format!("Disconnected: {reason}")));
        self.status = Status::Ended(reason);
    }

    /// A frame from the server.
    pub fn received(&mut self, frame: ServerFrame) {
        let live = frame.seq().is_some_and(|seq| seq > self.replay_until);
        match frame {
            ServerFrame::Message {
                time,
                from,
                text,
                id,
                ..
            } => {
                if let Some(id) = &id {
                    self.pending.retain(|p| &p.id != id);
                }
                let mine = from == self.me;
                self.push(Entry::Message {
                    time,
                    from,
                    text,
                    mine,
                });
            }
            ServerFrame::Joined { time, name, .. } => {
                if live {
                    self.users.insert(fold(&name), name.clone());
                }
                self.push(system(Some(time), &format!("{name} joined")));
            }
            ServerFrame::Left {
                time, name, reason, ..
            } => {
                if live {
                    self.users.remove(&fold(&name));
                }
                let words = match reason {
                    LeaveReason::Quit => "left".to_string(),
                    other => format!("left ({})", other.describe()),
                };
                self.push(system(Some(time), &format!("{name} {words}")));
            }
            ServerFrame::Error {
                code,
                message,
                id: Some(id),
                ..
            } => {
                if let Some(post) = self.pending.iter_mut().find(|p| p.id == id) {
                    post.failed = Some(describe_error(code, &message));
                }
            }
            ServerFrame::Error { code, message, .. } => {
                self.push(system(None, &describe_error(code, &message)));
            }
            _ => {}
        }
    }

    fn push(&mut self, entry: Entry) {
        if self.entries.len() == SCROLLBACK {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
    }

    /// Handles a message; may return a task (scrolling, focus).
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::InputChanged(input) => {
                self.hint = match check_text(&input, self.limits.max_text as usize) {
                    Err(err @ TextError::TooLong { .. }) => Some(too_long_hint(&err)),
                    _ => None,
                };
                self.input = input;
            }
            Message::Send => match check_text(&self.input, self.limits.max_text as usize) {
                Ok(()) => {
                    let id = new_post_id();
                    let text = std::mem::take(&mut self.input);
                    self.handle.say(id.clone(), text.clone());
                    self.pending.push(Pending {
                        id,
                        text,
                        failed: None,
                    });
                    self.hint = None;
                    return self.jump_to_latest();
                }
                Err(TextError::Empty) => {}
                Err(err @ TextError::TooLong { .. }) => self.hint = Some(too_long_hint(&err)),
                Err(err) => self.hint = Some(err.to_string()),
            },
            Message::Scrolled(viewport) => {
                // The list is anchored at the bottom: offset 0 is the newest line.
                self.scrolled_up = viewport.absolute_offset().y > 2.0;
            }
            Message::JumpToLatest => return self.jump_to_latest(),
            Message::ShowOlder => {
                let end = self.window_end_index();
                let start = end.saturating_sub(WINDOW);
                if start > 0 {
                    let new_end = (start + WINDOW / 2).min(self.entries.len());
                    self.window_end = Some(self.dropped + new_end);
                }
            }
            Message::Dismiss(id) => self.pending.retain(|p| p.id != id),
            Message::Focus => return operation::focus(INPUT),
        }
        Task::none()
    }

    fn jump_to_latest(&mut self) -> Task<Message> {
        self.window_end = None;
        self.scrolled_up = false;
        operation::snap_to_end(LIST)
    }

    /// The index one past the last rendered entry.
    fn window_end_index(&self) -> usize {
        self.window_end
            .map_or(self.entries.len(), |end| end.saturating_sub(self.dropped))
            .min(self.entries.len())
    }

    /// Whether the user is away from the newest messages.
    pub fn away_from_latest(&self) -> bool {
        self.scrolled_up || self.window_end.is_some()
    }

    /// The screen.
    pub fn view(&self) -> Element<'_, Message> {
        let header = self.header();
        let end = self.window_end_index();
        let start = end.saturating_sub(WINDOW);
        let mut list = Column::new().spacing(4).padding([8, 12]);
        if start > 0 {
            list = list.push(
                container(
                    button(text(format!("Show older ({start} more)")).size(13))
                        .on_press(Message::ShowOlder)
                        .style(button::text),
                )
                .center_x(Fill),
            );
        }
        for entry in self.entries.range(start..end) {
            list = list.push(entry_view(entry));
        }
        if self.window_end.is_none() {
            for post in &self.pending {
                list = list.push(pending_view(post, self.status == Status::Online));
            }
        }
        let messages = scrollable(list)
            .id(LIST)
            .anchor_bottom()
            .on_scroll(Message::Scrolled)
            .height(Fill)
            .width(Fill);
        let mut main = column![messages];
        if self.away_from_latest() {
            main = main.push(
                container(
                    button(text("Jump to latest ↓").size(13))
                        .on_press(Message::JumpToLatest)
                        .style(button::secondary),
                )
                .center_x(Fill)
                .padding(4),
            );
        }
        main = main.push(self.input_bar());
        let body = row![
            container(main).width(Fill).height(Fill),
            rule::vertical(1),
            self.user_list(),
        ];
        column![header, rule::horizontal(1), body].into()
    }

    fn header(&self) -> Element<'_, Message> {
        let (status, style): (String, fn(&Theme) -> text::Style) = match &self.status {
            Status::Online => ("● online".into(), text::success),
            Status::Reconnecting => ("● reconnecting…".into(), text::warning),
            Status::Offline { attempt, retry_in } => (
                format!("● offline, retrying in {retry_in}s (attempt {attempt})"),
                text::danger,
            ),
            Status::Ended(_) => ("● offline".into(), text::danger),
        };
        row![
            text(&self.server).size(14),
            text("·").size(14),
            text(&self.me).size(14).font(bold()),
            iced::widget::space::horizontal(),
            text(status).size(14).style(style),
        ]
        .spacing(8)
        .padding([8, 12])
        .align_y(Center)
        .into()
    }

    fn user_list(&self) -> Element<'_, Message> {
        let mut users = Column::new().spacing(4).push(
            text(format!("Online — {}", self.users.len()))
                .size(13)
                .font(bold()),
        );
        for name in self.users.values() {
            let line = text(name.as_str()).size(13);
            users = users.push(if *name == self.me {
                line.font(bold())
            } else {
                line
            });
        }
        container(scrollable(users.padding(12)).height(Fill))
            .width(180)
            .height(Fill)
            .into()
    }

    fn input_bar(&self) -> Element<'_, Message> {
        let input = text_input("Write a message…", &self.input)
            .id(INPUT)
            .on_input(Message::InputChanged)
            .on_submit(Message::Send)
            .padding(8);
        let send = button("Send").on_press(Message::Send).padding([8, 16]);
        let mut bar = column![row![input, send].spacing(8).align_y(Center)].spacing(4);
        if let Some(hint) = &self.hint {
            bar = bar.push(text(hint.as_str()).size(12).style(text::danger));
        }
        container(bar).padding(8).into()
    }
}

fn bold() -> Font {
    Font {
        weight: font::Weight::Bold,
        ..Font::DEFAULT
    }
}

fn entry_view(entry: &Entry) -> Element<'_, Message> {
    match entry {
        Entry::Message {
            time,
            from,
            text: body,
            mine,
        } => {
            let name = text(from.as_str()).size(14).font(bold());
            let name = if *mine {
                name.style(text::primary)
            } else {
                name
            };
            row![
                text(clock(*time)).size(12).style(muted),
                name,
                text(body.as_str()).size(14).width(Fill),
            ]
            .spacing(8)
            .into()
        }
        Entry::System { time, text: what } => row![
            text(time.map(clock).unwrap_or_default())
                .size(12)
                .style(muted),
            text(what.as_str()).size(13).style(muted).font(Font {
                style: font::Style::Italic,
                ..Font::DEFAULT
            }),
        ]
        .spacing(8)
        .into(),
    }
}

fn pending_view(post: &Pending, online: bool) -> Element<'_, Message> {
    let status = match (&post.failed, online) {
        (Some(why), _) => format!("not sent: {why}"),
        (None, true) => "sending…".into(),
        (None, false) => "waiting for the connection…".into(),
    };
    let mut line = row![
        text("--:--").size(12).style(muted),
        text(post.text.as_str()).size(14).style(muted).width(Fill),
        text(status).size(12).style(if post.failed.is_some() {
            text::danger
        } else {
            muted
        }),
    ]
    .spacing(8);
    if post.failed.is_some() {
        line = line.push(
            button(text("Dismiss").size(12))
                .on_press(Message::Dismiss(post.id.clone()))
                .style(button::text),
        );
    }
    line.into()
}

fn muted(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(
            theme
                .extended_palette()
                .background
                .strong
                .text
                .scale_alpha(0.6),
        ),
    }
}

fn system(time: Option<u64>, what: &str) -> Entry {
    Entry::System {
        time,
        text: what.to_string(),
    }
}

/// Local HH:MM of a server time.
fn clock(ms: u64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(i64::try_from(ms).unwrap_or(i64::MAX))
        .single()
        .map_or_else(|| "--:--".into(), |t| t.format("%H:%M").to_string())
}

fn fold(name: &str) -> String {
    Name::parse(name).map_or_else(|_| name.to_lowercase(), |n| n.keys().folded)
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

#[cfg(test)]
mod tests {
    use super::*;
    use iced_test::simulator;

    fn session(users: &[&str]) -> Session {
        Session {
            name: "me".into(),
            users: users.iter().map(ToString::to_string).collect(),
            seq: 10,
            limits: Limits {
                max_text: 20,
                ..Limits::default()
            },
            resumed: false,
            missed: false,
            new_epoch: false,
        }
    }

    fn chat() -> (Chat, async_channel::Receiver<crate::connection::Command>) {
        let (handle, commands) = crate::connection::Handle::detached();
        (
            Chat::new("127.0.0.1:60000", &session(&["me", "Bob", "alice"]), handle),
            commands,
        )
    }

    #[test]
    fn enter_in_the_input_sends_and_shows_pending() {
        let (mut chat, commands) = chat();
        let mut ui = simulator(chat.view());
        ui.click(iced_test::selector::id(INPUT)).expect("input");
        let _ = ui.typewrite("hello there");
        let _ = ui.tap_key(iced::keyboard::key::Named::Enter);
        for message in ui.into_messages() {
            let _ = chat.update(message);
        }
        let sent = commands.try_recv().expect("a post went to the connection");
        assert!(
            matches!(sent, crate::connection::Command::Say { ref text, .. } if text == "hello there")
        );
        let mut ui = simulator(chat.view());
        assert!(ui.find("hello there").is_ok());
        assert!(ui.find("sending…").is_ok());
    }

    #[test]
    fn blank_input_does_nothing_and_too_long_is_refused_with_a_hint() {
        let (mut chat, commands) = chat();
        let _ = chat.update(Message::InputChanged("   ".into()));
        let _ = chat.update(Message::Send);
        assert!(commands.try_recv().is_err());
        let _ = chat.update(Message::InputChanged("x".repeat(21)));
        let _ = chat.update(Message::Send);
        assert!(commands.try_recv().is_err());
        let mut ui = simulator(chat.view());
        assert!(
            ui.find("Too long to send: 21 bytes, the server takes at most 20.")
                .is_ok()
        );
    }

    #[test]
    fn status_users_and_events_are_shown() {
        let (mut chat, _commands) = chat();
        let mut ui = simulator(chat.view());
        assert!(ui.find("● online").is_ok());
        assert!(ui.find("Online — 3").is_ok());
        drop(ui);
        chat.received(ServerFrame::Joined {
            seq: 11,
            time: 0,
            name: "carol".into(),
        });
        chat.received(ServerFrame::Left {
            seq: 12,
            time: 0,
            name: "Bob".into(),
            reason: LeaveReason::Timeout,
        });
        // Replayed events (seq ≤ the welcome's) do not change who is online.
        chat.received(ServerFrame::Left {
            seq: 3,
            time: 0,
            name: "alice".into(),
            reason: LeaveReason::Quit,
        });
        assert_eq!(chat.users().collect::<Vec<_>>(), ["alice", "carol", "me"]);
        chat.offline(2, std::time::Duration::from_millis(1200));
        let mut ui = simulator(chat.view());
        assert!(ui.find("● offline, retrying in 2s (attempt 2)").is_ok());
        assert!(ui.find("Bob left (timed out)").is_ok());
        assert!(ui.find("carol joined").is_ok());
    }

    #[test]
    fn own_echo_settles_the_pending_post() {
        let (mut chat, commands) = chat();
        let _ = chat.update(Message::InputChanged("ping".into()));
        let _ = chat.update(Message::Send);
        let crate::connection::Command::Say { id, .. } = commands.try_recv().expect("sent") else {
            panic!("not a post");
        };
        chat.received(ServerFrame::Message {
            seq: 11,
            time: 0,
            from: "me".into(),
            text: "ping".into(),
            id: Some(id),
        });
        let mut ui = simulator(chat.view());
        assert!(ui.find("sending…").is_err());
        assert!(matches!(
            chat.entries().last(),
            Some(Entry::Message { mine: true, .. })
        ));
    }

    #[test]
    fn the_window_pages_back_and_jumps_to_latest() {
        let (mut chat, _commands) = chat();
        for i in 0..1000 {
            chat.received(ServerFrame::Message {
                seq: 11 + i,
                time: 0,
                from: "Bob".into(),
                text: format!("m{i}"),
                id: None,
            });
        }
        let mut ui = simulator(chat.view());
        assert!(ui.find("m999").is_ok());
        assert!(ui.find("m0").is_err(), "only a window is rendered");
        drop(ui);
        let _ = chat.update(Message::ShowOlder);
        assert!(chat.away_from_latest());
        let mut ui = simulator(chat.view());
        assert!(ui.find("Jump to latest ↓").is_ok());
        assert!(ui.find("m999").is_err());
        drop(ui);
        let _ = chat.update(Message::JumpToLatest);
        let mut ui = simulator(chat.view());
        assert!(ui.find("m999").is_ok());
    }
}
