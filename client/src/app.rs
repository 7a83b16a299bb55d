//! The application: which screen shows, the connection subscription, the keyboard, the
//! settings, and quitting.

use iced::futures::{SinkExt, Stream};
use iced::keyboard::{self, key};
use iced::widget::operation;
use iced::{Element, Subscription, Task, Theme, event, system, window};

use crate::connection::{self, Event, Handle, Resume, Target};
use crate::model::Notify;
use crate::screen::{chat, login};
use crate::settings::{Settings, ThemeChoice, TrustedServers, Visits};

/// How long closing the window waits for `bye` to be written and acknowledged.
pub const QUIT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The whole app.
pub struct App {
    screen: Screen,
    /// The connection that should be running, and where it starts from: together they
    /// key the subscription.
    target: Option<(Target, Resume)>,
    handle: Option<Handle>,
    /// Who was logged in where (name, server) when the session ended for good (taken
    /// over, say): the title still says so, and "Log in again" starts from it.
    ended: Option<(String, String)>,
    quitting: bool,
    settings: Settings,
    /// Where the user was on each server, under each name.
    visits: Visits,
    /// Certificates nobody vouches for that the user trusts, by server.
    trusted: TrustedServers,
    /// The epoch of the last login.
    epoch: Option<String>,
    /// Whether the window has the focus (mentions notify only when it has not).
    focused: bool,
    /// Desktop notifications shown (unit tests only: they show none).
    #[cfg(test)]
    pub(crate) notified: Vec<Notify>,
    /// The desktop's light or dark setting, for [`ThemeChoice::System`].
    system_dark: bool,
    /// The theme in use, from the two above.
    theme: Theme,
    /// Links the app opened (unit tests only: they open nothing).
    #[cfg(test)]
    pub(crate) opened: Vec<String>,
}

enum Screen {
    Login(Box<login::Login>),
    Chat(Box<chat::Chat>),
}

/// A key press no widget took (or Escape, which a field takes to let go of the focus).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key.
    pub key: keyboard::Key,
    /// The modifiers held.
    pub modifiers: keyboard::Modifiers,
    /// The text it types, if any.
    pub text: Option<String>,
    /// A widget took it already.
    pub captured: bool,
}

/// Everything that can happen.
#[derive(Debug, Clone)]
pub enum Message {
    /// On the Login screen.
    Login(login::Message),
    /// On the Chat screen.
    Chat(chat::Message),
    /// From the connection.
    Connection(Event),
    /// A key that no widget took.
    Key(Key),
    /// The desktop switched between light and dark.
    SystemTheme(bool),
    /// The window got (`true`) or lost the focus.
    Focused(bool),
    /// The user asked to close the window.
    CloseRequested,
    /// Time to go.
    Exit,
}

impl App {
    /// Starts on the Login screen, pre-filled; with `connect`, logs in at once.
    pub fn new(name: &str, server: &str, connect: bool) -> (Self, Task<Message>) {
        let mut login = login::Login::new(name, server);
        if let Some(password) = crate::remember::load(server.trim_start_matches("tls://"), name) {
            login.remembered(&password);
        }
        let target = match connect.then(|| login.submit()) {
            Some(login::Action::Connect(target)) => Some(target),
            _ => None,
        };
        let mut app = Self {
            screen: Screen::Login(Box::new(login)),
            target: None,
            handle: None,
            ended: None,
            quitting: false,
            settings: Settings::load(),
            visits: Visits::load(),
            trusted: TrustedServers::load(),
            epoch: None,
            focused: true,
            #[cfg(test)]
            notified: Vec::new(),
            system_dark: false,
            theme: Theme::Light,
            #[cfg(test)]
            opened: Vec::new(),
        };
        app.refresh_theme();
        if let Some(target) = target {
            app.connect(target);
        }
        let system = system::theme().map(|mode| Message::SystemTheme(is_dark(mode)));
        (app, Task::batch([login::Login::focus(), system]))
    }

    /// The Chat screen, once logged in.
    pub fn chat_screen(&self) -> Option<&chat::Chat> {
        match &self.screen {
            Screen::Chat(chat) => Some(chat),
            Screen::Login(_) => None,
        }
    }

    /// The Chat screen, to change, if it is shown (for tests).
    #[cfg(test)]
    pub fn chat_screen_mut(&mut self) -> Option<&mut chat::Chat> {
        match &mut self.screen {
            Screen::Chat(chat) => Some(chat),
            Screen::Login(_) => None,
        }
    }

    /// The remembered settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The window title.
    pub fn title(&self) -> String {
        match &self.screen {
            Screen::Login(_) => "Chat — log in".into(),
            Screen::Chat(chat) => match (&self.target, chat.room()) {
                (Some((target, _)), Some(room)) => {
                    let shown = if crate::model::direct_with(&room.name).is_some() {
                        room.name.clone()
                    } else {
                        format!("#{}", room.name)
                    };
                    format!("{shown} — {} on {}", target.name, target.server)
                }
                (Some((target, _)), None) => format!("Chat — {} on {}", target.name, target.server),
                (None, _) => match &self.ended {
                    Some((name, server)) => format!("Chat — {name} on {server}, disconnected"),
                    None => "Chat".into(),
                },
            },
        }
    }

    /// The theme: the one chosen, or the desktop's.
    pub fn theme(&self) -> Theme {
        self.theme.clone()
    }

    fn refresh_theme(&mut self) {
        let dark = match self.settings.theme {
            ThemeChoice::System => self.system_dark,
            ThemeChoice::Light => false,
            ThemeChoice::Dark => true,
        };
        self.theme = if dark { Theme::Dark } else { Theme::Light };
    }

    /// Handles a message.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Login(message) => {
                let Screen::Login(login) = &mut self.screen else {
                    return Task::none();
                };
                match login.update(message) {
                    login::Action::Connect(target) => self.connect(target),
                    login::Action::Trust { target } => {
                        if let Some(fingerprint) = &target.trusted {
                            self.trusted.trust(&target.server, fingerprint);
                            self.trusted.save();
                        }
                        self.connect(target);
                    }
                    login::Action::Cancel => self.disconnect(),
                    login::Action::None => {}
                }
                Task::none()
            }
            Message::Chat(message) => self.chat(message),
            Message::Connection(event) => self.connection(event),
            Message::Key(key) => self.key(key),
            Message::SystemTheme(dark) => {
                self.system_dark = dark;
                self.refresh_theme();
                Task::none()
            }
            Message::Focused(focused) => {
                self.focused = focused;
                if let Screen::Chat(chat) = &mut self.screen {
                    chat.focused(focused);
                }
                Task::none()
            }
            Message::CloseRequested => {
                self.remember();
                match (&self.handle, self.quitting) {
                    (Some(handle), false) => {
                        // Say bye and wait, bounded, until it is written and acknowledged.
                        handle.bye();
                        self.quitting = true;
                        Task::perform(smol::Timer::after(QUIT_WAIT), |_| Message::Exit)
                    }
                    _ => iced::exit(),
                }
            }
            Message::Exit => iced::exit(),
        }
    }

    fn chat(&mut self, message: chat::Message) -> Task<Message> {
        let Screen::Chat(chat) = &mut self.screen else {
            return Task::none();
        };
        let (task, action) = chat.update(message);
        match action {
            chat::Action::None => {}
            chat::Action::OpenLink(url) => self.open_link(&url),
            chat::Action::Remember => self.remember(),
            chat::Action::LogInAgain => self.back_to_login(|_| {}),
            chat::Action::LogOut { switch } => self.log_out(switch),
            chat::Action::Change(change) => {
                match change {
                    chat::SettingChange::ToggleMembers => {
                        self.settings.show_members = !self.settings.show_members;
                    }
                    chat::SettingChange::Theme(choice) => self.settings.theme = choice,
                    chat::SettingChange::HidePresenceAbove(members) => {
                        self.settings.hide_presence_above = members;
                    }
                }
                self.settings.save();
                self.refresh_theme();
            }
        }
        task.map(Message::Chat)
    }

    /// A key no widget took: Tab between the Login fields, Escape to cancel; in the chat,
    /// typing goes to the input, Ctrl+C copies the log's selection, paging keys scroll.
    fn key(
        &mut self,
        Key {
            key,
            modifiers,
            text,
            captured,
        }: Key,
    ) -> Task<Message> {
        use keyboard::Key::Named;
        match &mut self.screen {
            // Only Escape comes through captured, and only the Login screen and the search
            // box want it: the field that let go of the focus must not cost a second press
            // to cancel.
            Screen::Chat(chat) if captured => {
                if chat.searching() && key == Named(key::Named::Escape) {
                    return self.chat(chat::Message::Search(chat::search::Message::Close));
                }
                Task::none()
            }
            Screen::Login(login) => match key {
                Named(key::Named::Tab) if modifiers.shift() => operation::focus_previous(),
                Named(key::Named::Tab) => operation::focus_next(),
                Named(key::Named::Escape) => {
                    if login.update(login::Message::Cancel) == login::Action::Cancel {
                        self.disconnect();
                    }
                    Task::none()
                }
                // Enter submits the form wherever the focus is on it (a field submits
                // by itself; after a click on a checkbox nothing has the focus).
                Named(key::Named::Enter) if !captured => {
                    Task::done(Message::Login(login::Message::Submit))
                }
                _ => Task::none(),
            },
            Screen::Chat(chat) => {
                let chat_message = match key.as_ref() {
                    Named(key::Named::Escape) => Some(chat::Message::Escape),
                    Named(key::Named::Tab) if chat.searching() => {
                        Some(chat::Message::Search(chat::search::Message::Complete))
                    }
                    Named(key::Named::ArrowUp) if modifiers.alt() => Some(chat::Message::Step(-1)),
                    Named(key::Named::ArrowDown) if modifiers.alt() => Some(chat::Message::Step(1)),
                    Named(key::Named::F1) => Some(chat::Message::Help(true)),
                    Named(key::Named::PageUp) => Some(chat::Message::ScrollLog(
                        crate::widget::viewport::Scroll::Pages(-1.0),
                    )),
                    Named(key::Named::PageDown) => Some(chat::Message::ScrollLog(
                        crate::widget::viewport::Scroll::Pages(1.0),
                    )),
                    Named(key::Named::Home) if modifiers.command() => Some(
                        chat::Message::ScrollLog(crate::widget::viewport::Scroll::Top),
                    ),
                    Named(key::Named::End) if modifiers.command() => Some(
                        chat::Message::ScrollLog(crate::widget::viewport::Scroll::Bottom),
                    ),
                    Named(key::Named::Enter | key::Named::Backspace) => Some(chat::Message::Focus),
                    keyboard::Key::Character(c) if modifiers.command() => {
                        match c.to_lowercase().as_str() {
                            "c" => Some(chat::Message::Copy),
                            "v" => Some(chat::Message::Paste),
                            "k" | "f" => Some(chat::Message::Search(chat::search::Message::Open)),
                            _ => None,
                        }
                    }
                    _ if modifiers.command() || modifiers.alt() || modifiers.logo() => None,
                    _ => text
                        .filter(|t| !t.is_empty() && !t.chars().any(char::is_control))
                        .map(chat::Message::TypeAhead),
                };
                match chat_message {
                    Some(message) => self.chat(message),
                    None => Task::none(),
                }
            }
        }
    }

    /// Opens a web address with the system's opener (in unit tests: remembers it).
    #[cfg_attr(not(test), allow(clippy::unused_self))]
    fn open_link(&mut self, url: &str) {
        #[cfg(test)]
        self.opened.push(url.to_string());
        #[cfg(not(test))]
        if let Err(err) = open::that_detached(url) {
            tracing::warn!("cannot open {url}: {err}");
        }
    }

    /// Starts a connection to `target`, from where the user was there last time, trusting
    /// the certificate trusted for it before.
    fn connect(&mut self, mut target: Target) {
        if target.trusted.is_none() {
            target.trusted = self.trusted.get(&target.server).map(str::to_string);
        }
        let resume = self
            .visits
            .get(&target.server, &target.name)
            .map(|visit| Resume {
                epoch: visit.epoch.clone(),
                default_room: visit.default_room.clone(),
                rooms: Some(visit.rooms.clone()),
            })
            .unwrap_or_default();
        self.target = Some((target, resume));
    }

    /// After a login with a password: into the keyring with "Remember me" (or, if there is
    /// no keyring, a word saying it was not remembered), out of it without.
    fn keep_password(&mut self) {
        let (Some((target, _)), Screen::Chat(chat)) = (&self.target, &mut self.screen) else {
            return;
        };
        let Some(password) = &target.password else {
            return;
        };
        if !target.remember {
            crate::remember::forget(&target.server, &target.name);
            return;
        }
        if let Err(err) = crate::remember::store(&target.server, &target.name, password) {
            tracing::info!("password not remembered: {err}");
            chat.notice(
                "There is no keyring on this computer, so your password was not remembered.",
            );
        }
    }

    fn disconnect(&mut self) {
        self.target = None;
        self.handle = None;
    }

    /// Remembers the rooms the user is in and where, for the next run.
    fn remember(&mut self) {
        let (Screen::Chat(chat), Some((target, _))) = (&self.screen, &self.target) else {
            return;
        };
        let visit = chat.visit(self.epoch.clone());
        self.visits.set(&target.server, &target.name, visit);
        self.visits.save();
    }

    /// Tells the user outside the window that someone mentioned them. Without a
    /// notification service (no desktop session, no daemon) nothing shows, and that is
    /// fine.
    #[cfg_attr(not(test), allow(clippy::unused_self))]
    fn notify(&mut self, notify: &Notify) -> Task<Message> {
        #[cfg(test)]
        {
            self.notified.push(notify.clone());
            Task::none()
        }
        #[cfg(not(test))]
        {
            let summary = if crate::model::direct_with(&notify.room).is_some() {
                format!("{} (direct message)", notify.from)
            } else {
                format!("{} in #{}", notify.from, notify.room)
            };
            let body: String = notify.text.chars().take(200).collect();
            Task::future(smol::unblock(move || {
                if let Err(err) = notify_rust::Notification::new()
                    .summary(&summary)
                    .body(&body)
                    .appname("Chat")
                    .show()
                {
                    tracing::debug!("no desktop notification: {err}");
                }
            }))
            .discard()
        }
    }

    /// Logged in from the Login screen: on to the Chat screen.
    fn logged_in(&mut self, session: crate::model::Session) -> Task<Message> {
        let (Some(handle), Some((target, _))) = (&self.handle, &self.target) else {
            return Task::none();
        };
        let visit = self.visits.get(&target.server, &target.name);
        self.screen = Screen::Chat(Box::new(chat::Chat::new(
            &target.server,
            &session,
            handle.clone(),
            visit,
        )));
        let last = crate::settings::LastLogin {
            name: session.name.clone(),
            server: target.address(),
        };
        self.epoch = Some(session.epoch);
        if self.settings.last_login.as_ref() != Some(&last) {
            self.settings.last_login = Some(last);
            self.settings.save();
        }
        self.remember();
        self.keep_password();
        chat::Chat::focus().map(Message::Chat)
    }

    fn connection(&mut self, event: Event) -> Task<Message> {
        match (&mut self.screen, event) {
            (_, Event::Ready(handle)) => self.handle = Some(handle),
            (_, Event::Closed) => {
                self.disconnect();
                if self.quitting {
                    return iced::exit();
                }
            }
            (Screen::Login(login), Event::Connecting { attempt }) => login.connecting(attempt),
            (
                Screen::Login(login),
                Event::Offline {
                    attempt, retry_in, ..
                },
            ) => login.offline(attempt, retry_in),
            (Screen::Login(login), Event::Rejected { code, message }) => {
                login.rejected(code, message);
                self.disconnect();
            }
            (Screen::Login(login), Event::Untrusted { fingerprint }) => {
                login.untrusted(fingerprint);
                self.disconnect();
            }
            (Screen::Login(login), Event::CertificateChanged { expected, got }) => {
                login.certificate_changed(expected, got);
                self.disconnect();
            }
            (Screen::Chat(_), Event::Untrusted { fingerprint }) => {
                self.back_to_login(|login| login.untrusted(fingerprint));
            }
            (Screen::Chat(_), Event::CertificateChanged { expected, got }) => {
                self.back_to_login(|login| login.certificate_changed(expected, got));
            }
            (Screen::Login(login), Event::Ended { reason }) => {
                login.refused(reason);
                self.disconnect();
            }
            (Screen::Login(_), Event::LoggedIn(session)) => return self.logged_in(session),
            (
                Screen::Login(_),
                Event::Frame(_)
                | Event::History { .. }
                | Event::Context { .. }
                | Event::Disconnected { .. },
            ) => {}
            (Screen::Chat(chat), Event::LoggedIn(session)) => {
                chat.logged_in(&session);
                self.epoch = Some(session.epoch);
                self.remember();
            }
            (Screen::Chat(chat), Event::Frame(frame)) => {
                let notify = chat.received(frame, self.focused);
                chat.mark_read();
                let next = chat.follow_up().map(Message::Chat);
                if let Some(notify) = notify {
                    return Task::batch([next, self.notify(&notify)]);
                }
                return next;
            }
            (Screen::Chat(chat), Event::Context { room, seq, frames }) => {
                return chat.context(&room, seq, frames).map(Message::Chat);
            }
            (
                Screen::Chat(chat),
                Event::History {
                    room,
                    before,
                    frames,
                },
            ) => return chat.history(&room, before, frames).map(Message::Chat),
            (Screen::Chat(chat), Event::Disconnected { closing, .. }) => {
                chat.reconnecting(closing);
            }
            (Screen::Chat(chat), Event::Connecting { .. }) => chat.reconnecting(None),
            (
                Screen::Chat(chat),
                Event::Offline {
                    attempt, retry_in, ..
                },
            ) => chat.offline(attempt, retry_in),
            (Screen::Chat(chat), Event::Ended { reason }) => {
                chat.ended(reason);
                self.ended = self
                    .target
                    .as_ref()
                    .map(|(t, _)| (t.name.clone(), t.address()));
                self.disconnect();
            }
            (Screen::Chat(_), Event::Rejected { code, message }) => {
                // Refused on a reconnect (the name was taken meanwhile): back to the form.
                self.back_to_login(|login| login.rejected(code, message));
            }
        }
        Task::none()
    }

    /// Log out: the rooms are remembered, the server hears `bye` (the connection ends
    /// by itself once it is said: its [`Event::Closed`] drops it), and the Login screen
    /// shows the server and, unless switching accounts, the name (and its remembered
    /// password).
    fn log_out(&mut self, switch: bool) {
        self.remember();
        let Some((target, _)) = &self.target else {
            return self.back_to_login(|_| {});
        };
        let (name, server) = if switch {
            (String::new(), target.address())
        } else {
            (target.name.clone(), target.address())
        };
        if let Some(handle) = &self.handle {
            handle.bye();
        }
        let mut login = login::Login::new(&name, &server);
        if let Some(password) =
            crate::remember::load(server.trim_start_matches("tls://"), &name).filter(|_| !switch)
        {
            login.remembered(&password);
        }
        self.screen = Screen::Login(Box::new(login));
    }

    /// Back to the Login screen, filled in as before, with what `then` says there.
    fn back_to_login(&mut self, then: impl FnOnce(&mut login::Login)) {
        let (name, server) = self
            .target
            .as_ref()
            .map(|(t, _)| (t.name.clone(), t.address()))
            .or_else(|| self.ended.take())
            .unwrap_or_default();
        let mut login = login::Login::new(&name, &server);
        then(&mut login);
        self.screen = Screen::Login(Box::new(login));
        self.disconnect();
    }

    /// The screen.
    pub fn view(&self) -> Element<'_, Message> {
        match &self.screen {
            Screen::Login(login) => login.view().map(Message::Login),
            Screen::Chat(chat) => chat.view(&self.theme, &self.settings).map(Message::Chat),
        }
    }

    /// The connection (while there should be one), keys no widget took, the desktop's
    /// theme, and close requests.
    pub fn subscription(&self) -> Subscription<Message> {
        let connection = match &self.target {
            Some(target) => {
                Subscription::run_with(target.clone(), connect).map(Message::Connection)
            }
            None => Subscription::none(),
        };
        // A second's tick while chatting: "… is typing" ends, a read marker held back goes.
        let tick = match &self.screen {
            Screen::Chat(_) => iced::time::every(std::time::Duration::from_secs(1))
                .map(|_| Message::Chat(chat::Message::Life(chat::life::Message::Tick))),
            Screen::Login(_) => Subscription::none(),
        };
        Subscription::batch([
            connection,
            tick,
            event::listen_with(unclaimed_key),
            event::listen_with(focus),
            system::theme_changes().map(|mode| Message::SystemTheme(is_dark(mode))),
            window::close_requests().map(|_| Message::CloseRequested),
        ])
    }
}

fn is_dark(mode: iced::theme::Mode) -> bool {
    matches!(mode, iced::theme::Mode::Dark)
}

/// The window getting or losing the focus.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature `listen_with` wants"
)]
fn focus(event: iced::Event, _: event::Status, _: window::Id) -> Option<Message> {
    match event {
        iced::Event::Window(window::Event::Focused) => Some(Message::Focused(true)),
        iced::Event::Window(window::Event::Unfocused) => Some(Message::Focused(false)),
        _ => None,
    }
}

/// Key presses no widget captured, and Escape.
pub(crate) fn unclaimed_key(
    event: iced::Event,
    status: event::Status,
    _: window::Id,
) -> Option<Message> {
    let iced::Event::Keyboard(keyboard::Event::KeyPressed {
        key,
        modifiers,
        text,
        ..
    }) = event
    else {
        return None;
    };
    let captured = status == event::Status::Captured;
    if captured && key != keyboard::Key::Named(key::Named::Escape) {
        return None;
    }
    Some(Message::Key(Key {
        key,
        modifiers,
        text: text.map(|t| t.to_string()),
        captured,
    }))
}

/// The connection to `target` as a stream of events: the same target keeps it running, a
/// new one restarts it.
fn connect((target, resume): &(Target, Resume)) -> impl Stream<Item = Event> + use<> {
    let (target, resume) = (target.clone(), resume.clone());
    iced::stream::channel(64, async move |mut output| {
        let (events, received) = async_channel::bounded(64);
        let forward = async {
            while let Ok(event) = received.recv().await {
                if output.send(event).await.is_err() {
                    break;
                }
            }
        };
        futures_lite::future::zip(connection::run(target, resume, events), forward).await;
    })
}
