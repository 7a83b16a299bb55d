//! The application: which screen shows, the connection subscription, and quitting.

use iced::futures::{SinkExt, Stream};
use iced::{Element, Subscription, Task, window};

use crate::connection::{self, Event, Handle, Target};
use crate::screen::{chat, login};

/// How long closing the window waits for `bye` to be written and acknowledged.
pub const QUIT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The whole app.
pub struct App {
    screen: Screen,
    /// The connection that should be running: its identity keys the subscription.
    target: Option<Target>,
    handle: Option<Handle>,
    quitting: bool,
}

enum Screen {
    Login(login::Login),
    Chat(chat::Chat),
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
    /// The user asked to close the window.
    CloseRequested,
    /// Time to go.
    Exit,
}

impl App {
    /// Starts on the Login screen, pre-filled; with `connect`, logs in at once.
    pub fn new(name: &str, server: &str, connect: bool) -> (Self, Task<Message>) {
        let mut login = login::Login::new(name, server);
        let target = match connect.then(|| login.submit()) {
            Some(login::Action::Connect(target)) => Some(target),
            _ => None,
        };
        let app = Self {
            screen: Screen::Login(login),
            target,
            handle: None,
            quitting: false,
        };
        (app, login::Login::focus())
    }

    /// The window title.
    pub fn title(&self) -> String {
        match &self.screen {
            Screen::Login(_) => "Chat — log in".into(),
            Screen::Chat(_) => match &self.target {
                Some(target) => format!("Chat — {} on {}", target.name, target.server),
                None => "Chat".into(),
            },
        }
    }

    /// Handles a message.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Login(message) => {
                let Screen::Login(login) = &mut self.screen else {
                    return Task::none();
                };
                match login.update(message) {
                    login::Action::Connect(target) => self.target = Some(target),
                    login::Action::Cancel => self.disconnect(),
                    login::Action::None => {}
                }
                Task::none()
            }
            Message::Chat(message) => match &mut self.screen {
                Screen::Chat(chat) => chat.update(message).map(Message::Chat),
                Screen::Login(_) => Task::none(),
            },
            Message::Connection(event) => self.connection(event),
            Message::CloseRequested => {
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

    fn disconnect(&mut self) {
        self.target = None;
        self.handle = None;
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
            (
                Screen::Login(login),
                Event::Rejected { message, .. } | Event::Ended { reason: message },
            ) => {
                login.refused(message);
                self.disconnect();
            }
            (Screen::Login(_), Event::LoggedIn(session)) => {
                let (Some(handle), Some(target)) = (&self.handle, &self.target) else {
                    return Task::none();
                };
                self.screen =
                    Screen::Chat(chat::Chat::new(&target.server, &session, handle.clone()));
                return chat::Chat::focus().map(Message::Chat);
            }
            (Screen::Login(_), Event::Frame(_) | Event::Disconnected { .. }) => {}
            (Screen::Chat(chat), Event::LoggedIn(session)) => chat.logged_in(&session),
            (Screen::Chat(chat), Event::Frame(frame)) => chat.received(frame),
            (Screen::Chat(chat), Event::Disconnected { .. } | Event::Connecting { .. }) => {
                chat.reconnecting();
            }
            (
                Screen::Chat(chat),
                Event::Offline {
                    attempt, retry_in, ..
                },
            ) => chat.offline(attempt, retry_in),
            (Screen::Chat(chat), Event::Ended { reason }) => {
                chat.ended(reason);
                self.disconnect();
            }
            (Screen::Chat(_), Event::Rejected { message, .. }) => {
                // Refused on a reconnect (the name was taken meanwhile): back to the form.
                let (name, server) = self
                    .target
                    .as_ref()
                    .map(|t| (t.name.clone(), t.server.clone()))
                    .unwrap_or_default();
                let mut login = login::Login::new(&name, &server);
                login.refused(message);
                self.screen = Screen::Login(login);
                self.disconnect();
            }
        }
        Task::none()
    }

    /// The screen.
    pub fn view(&self) -> Element<'_, Message> {
        match &self.screen {
            Screen::Login(login) => login.view().map(Message::Login),
            Screen::Chat(chat) => chat.view().map(Message::Chat),
        }
    }

    /// The connection (while there should be one) and close requests.
    pub fn subscription(&self) -> Subscription<Message> {
        let connection = match &self.target {
            Some(target) => {
                Subscription::run_with(target.clone(), connect).map(Message::Connection)
            }
            None => Subscription::none(),
        };
        Subscription::batch([
            connection,
            window::close_requests().map(|_| Message::CloseRequested),
        ])
    }
}

/// The connection to `target` as a stream of events: the same target keeps it running, a
/// new one restarts it.
fn connect(target: &Target) -> impl Stream<Item = Event> + use<> {
    let target = target.clone();
    iced::stream::channel(64, async move |mut output| {
        let (events, received) = async_channel::bounded(64);
        let forward = async {
            while let Ok(event) = received.recv().await {
                if output.send(event).await.is_err() {
                    break;
                }
            }
        };
        futures_lite::future::zip(connection::run(target, events), forward).await;
    })
}
