//! The Login screen: a name, a server address, and what happens while connecting.

use std::time::Duration;

use chat_shared::{Name, RejectCode};
use iced::widget::{button, column, container, row, text, text_input};
use iced::{Element, Fill, Task};

use crate::connection::Target;
use crate::screen::style::unique_style;

/// The id of the name field, focused at start.
pub const NAME_INPUT: &str = "login-name";
/// The id of the server address field.
pub const SERVER_INPUT: &str = "login-server";

/// The Login screen's state.
#[derive(Debug, Clone)]
pub struct Login {
    name: String,
    server: String,
    name_problem: Option<String>,
    server_problem: Option<String>,
    phase: Phase,
}

/// Where the login stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Filling in the form, perhaps after a refusal.
    Form {
        /// Why the last try failed, in words.
        problem: Option<String>,
    },
    /// Connecting.
    Connecting {
        /// Which try.
        attempt: u32,
    },
    /// The server cannot be reached; trying again soon.
    Offline {
        /// Which try failed.
        attempt: u32,
        /// Whole seconds until the next.
        retry_in: u64,
    },
}

/// What the user did on the Login screen.
#[derive(Debug, Clone)]
pub enum Message {
    /// Typed in the name field.
    NameChanged(String),
    /// Typed in the server field.
    ServerChanged(String),
    /// Pressed Enter or the Login button.
    Submit,
    /// Pressed Cancel while connecting.
    Cancel,
}

/// What the app must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Connect to this target.
    Connect(Target),
    /// Stop trying to connect.
    Cancel,
}

impl Login {
    /// A form pre-filled with `name` and `server`.
    pub fn new(name: &str, server: &str) -> Self {
        Self {
            name: name.into(),
            server: server.into(),
            name_problem: None,
            server_problem: None,
            phase: Phase::Form { problem: None },
        }
    }

    /// Puts the cursor in the name field.
    pub fn focus<T>() -> Task<T> {
        iced::widget::operation::focus(NAME_INPUT)
    }

    /// Checks the form; on success the app connects to the returned target.
    pub fn submit(&mut self) -> Action {
        if !matches!(self.phase, Phase::Form { .. }) {
            return Action::None;
        }
        let name = Name::parse(&self.name);
        self.name_problem = name.as_ref().err().map(ToString::to_string);
        self.server_problem = check_server(&self.server).err();
        match name {
            Ok(name) if self.server_problem.is_none() => {
                self.phase = Phase::Connecting { attempt: 1 };
                Action::Connect(Target {
                    server: self.server.trim().to_string(),
                    name: name.to_string(),
                })
            }
            _ => Action::None,
        }
    }

    /// Handles a message.
    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::NameChanged(name) => {
                self.name = name;
                self.name_problem = None;
                self.clear_refusal();
                Action::None
            }
            Message::ServerChanged(server) => {
                self.server = server;
                self.server_problem = None;
                self.clear_refusal();
                Action::None
            }
            Message::Submit => self.submit(),
            Message::Cancel if matches!(self.phase, Phase::Form { .. }) => Action::None,
            Message::Cancel => {
                self.phase = Phase::Form { problem: None };
                Action::Cancel
            }
        }
    }

    fn clear_refusal(&mut self) {
        if let Phase::Form { problem } = &mut self.phase {
            *problem = None;
        }
    }

    /// The connection is trying.
    pub fn connecting(&mut self, attempt: u32) {
        self.phase = Phase::Connecting { attempt };
    }

    /// The server is offline; the next try comes in `retry_in`.
    pub fn offline(&mut self, attempt: u32, retry_in: Duration) {
        self.phase = Phase::Offline {
            attempt,
            retry_in: retry_in.as_secs_f64().ceil() as u64,
        };
    }

    /// The login was refused: back to the form, fields kept, the reason shown (under
    /// the name when it is about the name).
    pub fn refused(&mut self, reason: String) {
        self.phase = Phase::Form {
            problem: Some(reason),
        };
    }

    /// The server refused the login with `code`.
    pub fn rejected(&mut self, code: RejectCode, message: String) {
        match code {
            RejectCode::NameTaken | RejectCode::InvalidName => {
                self.phase = Phase::Form { problem: None };
                self.name_problem = Some(message);
            }
            _ => self.refused(message),
        }
    }

    /// The screen. Every line has its place whether it has something to say or not, so
    /// nothing moves under the pointer when a problem appears or goes.
    pub fn view(&self) -> Element<'_, Message> {
        let editing = matches!(self.phase, Phase::Form { .. });
        let field =
            |placeholder: &str, value: &str, id: &'static str, on_input: fn(String) -> Message| {
                text_input(placeholder, value)
                    .id(id)
                    .padding(8)
                    .on_input_maybe(editing.then_some(on_input))
                    .on_submit_maybe(editing.then_some(Message::Submit))
            };
        let problem = |p: &Option<String>| {
            container(
                text(p.clone().unwrap_or_default())
                    .size(13)
                    .style(text::danger),
            )
            .height(18)
        };
        let (status, action): (String, Element<'_, Message>) = match &self.phase {
            Phase::Form { problem } => (
                problem.clone().unwrap_or_default(),
                button("Log in")
                    .on_press(Message::Submit)
                    .padding([8, 24])
                    .into(),
            ),
            Phase::Connecting { attempt } => (
                format!(
                    "Connecting to {}…{}",
                    self.server,
                    if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    }
                ),
                cancel(),
            ),
            Phase::Offline { attempt, retry_in } => (
                format!("Server offline, retrying in {retry_in}s (attempt {attempt})"),
                cancel(),
            ),
        };
        let status = text(status.clone()).size(14).style(unique_style(
            match self.phase {
                Phase::Form { .. } => text::danger,
                _ => text::default,
            },
            &status,
        ));
        let form = column![
            text("Chat").size(32),
            text("Your name").size(14),
            field("e.g. alice", &self.name, NAME_INPUT, Message::NameChanged),
            problem(&self.name_problem),
            text("Server").size(14),
            field(
                "host:port",
                &self.server,
                SERVER_INPUT,
                Message::ServerChanged,
            ),
            problem(&self.server_problem),
            row![action],
            container(status).height(40),
        ]
        .spacing(8)
        .max_width(360);
        container(form).center(Fill).padding(24).into()
    }
}

fn cancel<'a>() -> Element<'a, Message> {
    button("Cancel")
        .on_press(Message::Cancel)
        .style(button::secondary)
        .padding([8, 24])
        .into()
}

/// Checks that `server` looks like `host:port`.
fn check_server(server: &str) -> Result<(), String> {
    let server = server.trim();
    let Some((host, port)) = server.rsplit_once(':') else {
        return Err("give the server as host:port, e.g. 127.0.0.1:60000".into());
    };
    if host.is_empty() {
        return Err("the server address has no host".into());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{port:?} is not a port number (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_test::simulator;

    fn type_and_enter(login: &mut Login, field: &'static str, text: &str) -> Vec<Action> {
        let mut ui = simulator(login.view());
        ui.click(iced_test::selector::id(field))
            .expect("field exists");
        let _ = ui.typewrite(text);
        let _ = ui.tap_key(iced::keyboard::key::Named::Enter);
        ui.into_messages().map(|m| login.update(m)).collect()
    }

    #[test]
    fn typing_a_name_and_pressing_enter_logs_in() {
        let mut login = Login::new("", "127.0.0.1:60000");
        let actions = type_and_enter(&mut login, NAME_INPUT, "alice");
        assert_eq!(
            actions.last(),
            Some(&Action::Connect(Target {
                server: "127.0.0.1:60000".into(),
                name: "alice".into()
            }))
        );
        let mut ui = simulator(login.view());
        assert!(ui.find("Connecting to 127.0.0.1:60000…").is_ok());
    }

    #[test]
    fn enter_in_the_server_field_logs_in_too() {
        let mut login = Login::new("bob", "");
        let actions = type_and_enter(&mut login, SERVER_INPUT, "localhost:6000");
        assert!(matches!(actions.last(), Some(Action::Connect(t)) if t.server == "localhost:6000"));
    }

    #[test]
    fn an_invalid_name_shows_its_reason() {
        let mut login = Login::new("", "127.0.0.1:60000");
        let actions = type_and_enter(&mut login, NAME_INPUT, "al  ice");
        assert!(!actions.iter().any(|a| matches!(a, Action::Connect(_))));
        let mut ui = simulator(login.view());
        assert!(ui.find("name contains two spaces in a row").is_ok());
    }

    #[test]
    fn offline_and_refusal_are_shown_in_words() {
        let mut login = Login::new("carol", "127.0.0.1:60000");
        assert!(matches!(login.submit(), Action::Connect(_)));
        login.offline(3, Duration::from_millis(1500));
        let mut ui = simulator(login.view());
        assert!(
            ui.find("Server offline, retrying in 2s (attempt 3)")
                .is_ok()
        );
        let _ = ui.click("Cancel");
        let actions: Vec<_> = ui.into_messages().map(|m| login.update(m)).collect();
        assert_eq!(actions, [Action::Cancel]);
        login.refused("carol is already online".into());
        let mut ui = simulator(login.view());
        assert!(ui.find("carol is already online").is_ok());
        assert!(ui.find("Log in").is_ok(), "back to the form");
    }

    #[test]
    fn tab_moves_between_the_fields_and_escape_cancels_connecting() {
        use crate::testing::Window;
        use iced::keyboard::key::Named;
        let mut window = Window::new(false);
        window.type_text("x");
        window.press(Named::Tab);
        window.type_text("9");
        window.key(
            iced::keyboard::Key::Named(Named::Tab),
            iced::keyboard::Modifiers::SHIFT,
            None,
        );
        window.type_text("y");
        assert!(window.find("mexy").is_some(), "name field: me + x + y");
        assert!(window.find("127.0.0.1:600009").is_some(), "server field");
        window.press(Named::Tab);
        window.press(Named::Backspace);
        window.press(Named::Enter);
        assert!(window.shows("Cancel"));
        window.press(Named::Escape);
        assert!(window.shows("Log in"), "Escape went back to the form");
    }

    #[test]
    fn a_refusal_clears_when_the_name_is_edited_and_nothing_moves() {
        let mut login = Login::new("alice", "127.0.0.1:60000");
        let button = |login: &Login| {
            let mut ui = simulator(login.view());
            ui.find("Log in").expect("the button").bounds()
        };
        let before = button(&login);
        assert!(matches!(login.submit(), Action::Connect(_)));
        login.rejected(RejectCode::NameTaken, "alice is already online".into());
        let mut ui = simulator(login.view());
        assert!(ui.find("alice is already online").is_ok());
        drop(ui);
        assert_eq!(button(&login), before, "the form did not move");
        let _ = login.update(Message::NameChanged("alice2".into()));
        let mut ui = simulator(login.view());
        assert!(ui.find("alice is already online").is_err());
        drop(ui);
        login.refused("server_full".into());
        let _ = login.update(Message::ServerChanged("127.0.0.1:60001".into()));
        let mut ui = simulator(login.view());
        assert!(ui.find("server_full").is_err());
    }

    #[test]
    fn a_bad_server_address_is_explained() {
        let mut login = Login::new("dave", "nohost");
        assert_eq!(login.submit(), Action::None);
        let mut ui = simulator(login.view());
        assert!(
            ui.find("give the server as host:port, e.g. 127.0.0.1:60000")
                .is_ok()
        );
    }
}
