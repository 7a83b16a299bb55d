//! The Login screen: a name, a password for an account (or to create one), a server
//! address with a TLS switch, what happens while connecting, and the questions TLS may ask
//! (trust a certificate nobody vouches for; a certificate that changed).

use std::time::Duration;

use chat_shared::{Name, Password, RejectCode, check_password};
use iced::widget::{button, checkbox, column, container, row, space, text, text_input};
use iced::{Element, Fill, Font, Task};

use crate::connection::Target;
use crate::screen::style::unique_style;

/// The id of the name field, focused at start.
pub const NAME_INPUT: &str = "login-name";
/// The id of the server address field.
pub const SERVER_INPUT: &str = "login-server";
/// The id of the password field.
pub const PASSWORD_INPUT: &str = "login-password";
/// The id of the password confirmation field (creating an account).
pub const CONFIRM_INPUT: &str = "login-confirm";

/// The Login screen's state. Its `Debug` shows nothing of the passwords.
#[derive(Clone)]
pub struct Login {
    name: String,
    password: String,
    confirm: String,
    create: bool,
    remember: bool,
    server: String,
    secure: bool,
    name_problem: Option<String>,
    password_problem: Option<String>,
    server_problem: Option<String>,
    phase: Phase,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("secure", &self.secure)
            .field("create", &self.create)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
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
    /// The server's certificate is vouched for by nobody: trust it?
    Trust {
        /// Its SHA-256 fingerprint.
        fingerprint: String,
    },
    /// The server's certificate is not the one trusted before: refused.
    Changed {
        /// The fingerprint trusted before.
        expected: String,
        /// The one it shows now.
        got: String,
    },
}

/// What the user did on the Login screen.
#[derive(Debug, Clone)]
pub enum Message {
    /// Typed in the name field.
    NameChanged(String),
    /// Typed in the server field.
    ServerChanged(String),
    /// Typed in the password field.
    PasswordChanged(String),
    /// Typed in the confirmation field.
    ConfirmChanged(String),
    /// Ticked or cleared "Create account".
    CreateToggled(bool),
    /// Switched TLS on or off.
    SecureToggled(bool),
    /// Ticked or cleared "Remember me".
    RememberToggled(bool),
    /// Pressed Enter or the Login button.
    Submit,
    /// Pressed Cancel while connecting (or in a TLS question).
    Cancel,
    /// Chose to trust the certificate shown.
    Trust,
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
    /// Trust this fingerprint for this server from now on, and connect.
    Trust {
        /// The target, with the fingerprint it trusts.
        target: Target,
    },
}

impl Login {
    /// A form pre-filled with `name` and `server` (`tls://host:port` switches TLS on).
    pub fn new(name: &str, server: &str) -> Self {
        let (server, secure) = split_scheme(server);
        Self {
            name: name.into(),
            password: String::new(),
            confirm: String::new(),
            create: false,
            remember: false,
            server,
            secure,
            name_problem: None,
            password_problem: None,
            server_problem: None,
            phase: Phase::Form { problem: None },
        }
    }

    /// A password remembered in the keyring for the name: filled in, "Remember me" ticked.
    pub fn remembered(&mut self, password: &Password) {
        self.password = password.expose().to_string();
        self.remember = true;
    }

    /// The target the form describes, if it is valid; the problems are shown otherwise.
    fn target(&mut self) -> Option<Target> {
        let (server, secure) = split_scheme(&self.server);
        self.secure |= secure;
        self.server = server;
        let name = Name::parse(&self.name);
        self.name_problem = name.as_ref().err().map(ToString::to_string);
        self.server_problem = check_server(&self.server).err();
        self.password_problem = None;
        let name = name.ok()?;
        let password = (self.create || !self.password.is_empty()).then(|| self.password.clone());
        if self.create {
            if let Err(weak) = check_password(name.as_str(), &self.password) {
                self.password_problem = Some(weak.to_string());
            } else if self.confirm != self.password {
                self.password_problem = Some("the two passwords differ".into());
            }
        }
        if password.is_some()
            && !self.secure
            && self.password_problem.is_none()
            && !is_loopback(&self.server)
        {
            self.password_problem =
                Some("a password goes only over TLS: switch on Secure (TLS)".into());
        }
        if self.server_problem.is_some() || self.password_problem.is_some() {
            return None;
        }
        Some(Target {
            server: self.server.trim().to_string(),
            name: name.to_string(),
            tls: self.secure,
            password: password.map(Password::new),
            register: self.create,
            trusted: None,
            remember: self.remember,
        })
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
        match self.target() {
            Some(target) => {
                self.phase = Phase::Connecting { attempt: 1 };
                Action::Connect(target)
            }
            None => Action::None,
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
            Message::PasswordChanged(password) => {
                self.password = password;
                self.password_problem = None;
                self.clear_refusal();
                Action::None
            }
            Message::ConfirmChanged(confirm) => {
                self.confirm = confirm;
                self.password_problem = None;
                Action::None
            }
            Message::CreateToggled(create) => {
                self.create = create;
                self.password_problem = None;
                Action::None
            }
            Message::RememberToggled(remember) => {
                self.remember = remember;
                Action::None
            }
            Message::SecureToggled(secure) => {
                self.secure = secure;
                self.password_problem = None;
                self.server_problem = None;
                Action::None
            }
            Message::Submit => self.submit(),
            Message::Trust => {
                let Phase::Trust { fingerprint } = &self.phase else {
                    return Action::None;
                };
                let fingerprint = fingerprint.clone();
                let Some(target) = self.target() else {
                    self.phase = Phase::Form { problem: None };
                    return Action::None;
                };
                self.phase = Phase::Connecting { attempt: 1 };
                Action::Trust {
                    target: Target {
                        trusted: Some(fingerprint),
                        ..target
                    },
                }
            }
            Message::Cancel
                if matches!(self.phase, Phase::Trust { .. } | Phase::Changed { .. }) =>
            {
                self.phase = Phase::Form { problem: None };
                Action::None
            }
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

    /// The server refused the login with `code`: shown under the field it is about.
    pub fn rejected(&mut self, code: RejectCode, message: String) {
        match code {
            RejectCode::NameTaken
            | RejectCode::InvalidName
            | RejectCode::NameRegistered
            | RejectCode::NoAccount
            | RejectCode::RegistrationClosed => {
                self.phase = Phase::Form { problem: None };
                self.name_problem = Some(message);
            }
            RejectCode::BadPassword
            | RejectCode::WeakPassword
            | RejectCode::TooManyAttempts
            | RejectCode::TlsRequired => {
                self.phase = Phase::Form { problem: None };
                self.password_problem = Some(message);
            }
            _ => self.refused(message),
        }
    }

    /// The server's certificate is vouched for by nobody: ask whether to trust it.
    pub fn untrusted(&mut self, fingerprint: String) {
        self.phase = Phase::Trust { fingerprint };
    }

    /// The server's certificate changed since it was trusted: refuse, and say so.
    pub fn certificate_changed(&mut self, expected: String, got: String) {
        self.phase = Phase::Changed { expected, got };
    }

    /// The screen. Every line has its place whether it has something to say or not, so
    /// nothing moves under the pointer when a problem appears or goes.
    pub fn view(&self) -> Element<'_, Message> {
        match &self.phase {
            Phase::Trust { fingerprint } => return self.trust_view(fingerprint),
            Phase::Changed { expected, got } => return self.changed_view(expected, got),
            _ => {}
        }
        let editing = matches!(self.phase, Phase::Form { .. });
        let field =
            |placeholder: &str, value: &str, id: &'static str, on_input: fn(String) -> Message| {
                text_input(placeholder, value)
                    .id(id)
                    .padding(8)
                    .on_input_maybe(editing.then_some(on_input))
                    .on_submit_maybe(editing.then_some(Message::Submit))
            };
        // A problem has a line of its own whether there is one or not, so that a
        // one-line problem moves nothing; a longer one takes the lines it needs and
        // pushes the form down rather than drawing over the next field.
        let problem = |p: &Option<String>| {
            row![
                space().height(18),
                text(p.clone().unwrap_or_default())
                    .size(13)
                    .width(Fill)
                    .style(text::danger),
            ]
        };
        let (status, action): (String, Element<'_, Message>) = match &self.phase {
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
            Phase::Form { problem } => (
                problem.clone().unwrap_or_default(),
                button(if self.create {
                    "Create account"
                } else {
                    "Log in"
                })
                .on_press(Message::Submit)
                .padding([8, 24])
                .into(),
            ),
            Phase::Trust { .. } | Phase::Changed { .. } => (String::new(), cancel()),
        };
        let status = text(status.clone()).size(14).style(unique_style(
            match self.phase {
                Phase::Form { .. } => text::danger,
                _ => text::default,
            },
            &status,
        ));
        let passwords = self.password_fields(editing);
        let form = column![
            text("Chat").size(32),
            text("Your name").size(14),
            field("e.g. alice", &self.name, NAME_INPUT, Message::NameChanged),
            problem(&self.name_problem),
            row![
                text("Password").size(14).width(Fill),
                checkbox(self.create)
                    .label("Create account")
                    .on_toggle_maybe(editing.then_some(Message::CreateToggled))
                    .size(14)
                    .text_size(13),
            ],
            passwords,
            problem(&self.password_problem),
            row![
                text("Server").size(14).width(Fill),
                checkbox(self.secure)
                    .label("Secure (TLS)")
                    .on_toggle_maybe(editing.then_some(Message::SecureToggled))
                    .size(14)
                    .text_size(13),
            ],
            field(
                "host:port (a cluster: several, comma-separated)",
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

    /// The password field (masked), creating an account its confirmation (which keeps its
    /// place when hidden, so the form does not jump), and "Remember me".
    fn password_fields(&self, editing: bool) -> Element<'_, Message> {
        let masked = |placeholder: &'static str, value: &str, id: &'static str, on_input| {
            text_input(placeholder, value)
                .id(id)
                .padding(8)
                .secure(true)
                .on_input_maybe(editing.then_some(on_input))
                .on_submit_maybe(editing.then_some(Message::Submit))
        };
        let password = masked(
            if self.create {
                "a new password, 8 characters or more"
            } else {
                "only for an account"
            },
            &self.password,
            PASSWORD_INPUT,
            Message::PasswordChanged as fn(String) -> Message,
        );
        let confirm: Element<'_, Message> = if self.create {
            masked(
                "the same password again",
                &self.confirm,
                CONFIRM_INPUT,
                Message::ConfirmChanged,
            )
            .into()
        } else {
            container(text("")).height(37).into()
        };
        column![
            password,
            confirm,
            checkbox(self.remember)
                .label("Remember me (in this computer's keyring)")
                .on_toggle_maybe(editing.then_some(Message::RememberToggled))
                .size(14)
                .text_size(13),
        ]
        .spacing(8)
        .into()
    }

    fn trust_view(&self, fingerprint: &str) -> Element<'_, Message> {
        let dialog = column![
            text("Trust this server?").size(24),
            text(format!(
                "No authority this computer trusts vouches for the certificate of {}. \
                 That is normal for a server with a self-signed certificate.",
                self.server
            ))
            .size(14),
            text("Its SHA-256 fingerprint:").size(14),
            text(in_lines(fingerprint)).size(13).font(Font::MONOSPACE),
            text(
                "Compare it with the fingerprint the server's operator gives you (the \
                 server logs it at every start). Trust it only if they are the same: it \
                 will be remembered, and a different one refused."
            )
            .size(13),
            row![
                button("Trust this server")
                    .on_press(Message::Trust)
                    .padding([8, 24]),
                cancel(),
            ]
            .spacing(12),
        ]
        .spacing(12)
        .max_width(480);
        container(dialog).center(Fill).padding(24).into()
    }

    fn changed_view(&self, expected: &str, got: &str) -> Element<'_, Message> {
        let path = crate::settings::TrustedServers::path().map_or_else(
            || "the trusted servers file".to_string(),
            |p| p.display().to_string(),
        );
        let warning = column![
            text("Warning: the server's certificate changed")
                .size(24)
                .style(text::danger),
            text(format!(
                "{} shows another certificate than the one you trusted. Someone may be \
                 intercepting the connection, so the client did not connect.",
                self.server
            ))
            .size(14),
            text("Trusted before:").size(14),
            text(in_lines(expected)).size(13).font(Font::MONOSPACE),
            text("Shown now:").size(14),
            text(in_lines(got)).size(13).font(Font::MONOSPACE),
            text(format!(
                "If the server's operator confirms the new fingerprint, remove the line \
                 for this server from {path} and connect again."
            ))
            .size(13),
            row![
                button("Back")
                    .on_press(Message::Cancel)
                    .style(button::secondary)
                    .padding([8, 24])
            ],
        ]
        .spacing(12)
        .max_width(480);
        container(warning).center(Fill).padding(24).into()
    }
}

/// A fingerprint in lines of 16 bytes: one long "word" would not wrap, and run off the
/// window before its end, which is what a person must compare.
fn in_lines(fingerprint: &str) -> String {
    let pairs: Vec<&str> = fingerprint.split(':').collect();
    pairs
        .chunks(16)
        .map(|line| line.join(":"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `tls://host:port` → (`host:port`, true); anything else as it is.
fn split_scheme(server: &str) -> (String, bool) {
    let trimmed = server.trim();
    match trimmed.strip_prefix("tls://") {
        Some(rest) => (rest.to_string(), true),
        None => (trimmed.to_string(), false),
    }
}

/// Whether `server` (`host:port`, or several comma-separated) is this machine, where the
/// server takes passwords without TLS.
fn is_loopback(server: &str) -> bool {
    server.split(',').map(str::trim).all(is_loopback_one)
}

fn is_loopback_one(server: &str) -> bool {
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn cancel<'a>() -> Element<'a, Message> {
    button("Cancel")
        .on_press(Message::Cancel)
        .style(button::secondary)
        .padding([8, 24])
        .into()
}

/// Checks that `server` looks like `host:port`, or several of them comma-separated (the
/// nodes of one cluster).
fn check_server(server: &str) -> Result<(), String> {
    server.split(',').try_for_each(check_one_server)
}

fn check_one_server(server: &str) -> Result<(), String> {
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
                name: "alice".into(),
                ..Target::default()
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
    fn a_cluster_is_several_addresses_each_checked() {
        let mut login = Login::new("", "127.0.0.1:60000");
        let _ = type_and_enter(&mut login, SERVER_INPUT, ", 127.0.0.1:60001");
        let actions = type_and_enter(&mut login, NAME_INPUT, "alice");
        assert_eq!(
            actions.last(),
            Some(&Action::Connect(Target {
                server: "127.0.0.1:60000, 127.0.0.1:60001".into(),
                name: "alice".into(),
                ..Target::default()
            }))
        );
        let target = Target {
            server: "127.0.0.1:60000, 127.0.0.1:60001".into(),
            ..Target::default()
        };
        assert_eq!(target.servers(), ["127.0.0.1:60000", "127.0.0.1:60001"]);
        assert!(is_loopback("127.0.0.1:1, localhost:2"));
        assert!(!is_loopback("127.0.0.1:1, chat.example.org:2"));
        let mut bad = Login::new("alice", "127.0.0.1:60000,chat.example.org");
        assert_eq!(bad.submit(), Action::None);
        let mut ui = simulator(bad.view());
        assert!(
            ui.find("give the server as host:port, e.g. 127.0.0.1:60000")
                .is_ok(),
            "the address without a port is named as the problem"
        );
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
        let back = |window: &mut Window| {
            window.key(
                iced::keyboard::Key::Named(Named::Tab),
                iced::keyboard::Modifiers::SHIFT,
                None,
            );
        };
        window.type_text("x");
        window.press(Named::Tab); // the password
        window.press(Named::Tab); // the server
        window.type_text("9");
        back(&mut window);
        back(&mut window);
        window.type_text("y");
        assert!(window.find("mexy").is_some(), "name field: me + x + y");
        assert!(window.find("127.0.0.1:600009").is_some(), "server field");
        window.press(Named::Tab);
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

    fn press(login: &mut Login, label: &str) -> Vec<Action> {
        let mut ui = simulator(login.view());
        ui.click(label).expect("the button");
        ui.into_messages().map(|m| login.update(m)).collect()
    }

    fn shows(login: &Login, text: &str) -> bool {
        simulator(login.view()).find(text).is_ok()
    }

    #[test]
    fn creating_an_account_checks_the_password_and_registers() {
        let mut login = Login::new("alice", "127.0.0.1:60000");
        let _ = press(&mut login, "Create account");
        assert!(shows(&login, "Create account"), "the button says so too");
        let _ = type_and_enter(&mut login, PASSWORD_INPUT, "short");
        assert!(shows(&login, "a password needs at least 8 bytes"));
        let _ = login.update(Message::PasswordChanged("correct horse".into()));
        let actions = type_and_enter(&mut login, CONFIRM_INPUT, "correct hors");
        assert!(actions.iter().all(|a| *a == Action::None));
        assert!(shows(&login, "the two passwords differ"));
        assert!(!shows(&login, "correct horse"), "the password is masked");
        let _ = login.update(Message::ConfirmChanged(String::new()));
        let actions = type_and_enter(&mut login, CONFIRM_INPUT, "correct horse");
        let Some(Action::Connect(target)) = actions.last() else {
            panic!("no connect: {actions:?}");
        };
        assert!(target.register);
        assert_eq!(target.password, Some(Password::new("correct horse")));
        assert!(!format!("{login:?} {target:?}").contains("correct horse"));
    }

    #[test]
    fn a_password_goes_only_over_tls_except_to_this_machine() {
        let mut login = Login::new("bob", "chat.example.org:60000");
        let _ = login.update(Message::PasswordChanged("bob's password".into()));
        assert_eq!(login.submit(), Action::None);
        assert!(shows(
            &login,
            "a password goes only over TLS: switch on Secure (TLS)"
        ));
        let _ = press(&mut login, "Secure (TLS)");
        let Action::Connect(target) = login.submit() else {
            panic!("no connect");
        };
        assert!(target.tls && !target.register && target.password.is_some());
        // tls:// in the address switches TLS on; loopback takes a password without.
        let mut login = Login::new("bob", "tls://chat.example.org:60000");
        assert!(
            matches!(login.submit(), Action::Connect(t) if t.tls && t.server == "chat.example.org:60000")
        );
        let mut login = Login::new("bob", "localhost:60000");
        let _ = login.update(Message::PasswordChanged("bob's password".into()));
        assert!(matches!(login.submit(), Action::Connect(t) if !t.tls));
    }

    #[test]
    fn rejections_show_under_their_field_and_nothing_moves() {
        let mut login = Login::new("carol", "127.0.0.1:60000");
        let button = |login: &Login| {
            let mut ui = simulator(login.view());
            ui.find("Log in").expect("the button").bounds()
        };
        let before = button(&login);
        for (code, message) in [
            (RejectCode::BadPassword, "wrong password"),
            (
                RejectCode::NameRegistered,
                "carol is an account: log in with its password",
            ),
            (
                RejectCode::TooManyAttempts,
                "too many wrong passwords; wait before trying again",
            ),
            (
                RejectCode::TlsRequired,
                "passwords are accepted only over TLS",
            ),
        ] {
            assert!(matches!(login.submit(), Action::Connect(_)));
            login.rejected(code, message.into());
            assert!(shows(&login, message), "{code:?}");
            assert_eq!(button(&login), before, "{code:?} moved the form");
        }
        let _ = login.update(Message::PasswordChanged("x".into()));
        assert!(
            !shows(&login, "passwords are accepted only over TLS"),
            "cleared on edit"
        );
    }

    #[test]
    fn a_long_rejection_takes_the_lines_it_needs_and_covers_nothing() {
        let message = "bob is an account: log in with its password, or choose another name";
        let mut login = Login::new("bob", "127.0.0.1:60000");
        assert!(matches!(login.submit(), Action::Connect(_)));
        login.rejected(RejectCode::NameRegistered, message.into());
        // The narrowest window the app allows, a small one, a wide one.
        for width in [520.0, 700.0, 1200.0] {
            let mut ui = iced_test::Simulator::with_size(
                iced_test::core::Settings::default(),
                iced::Size::new(width, 700.0),
                login.view(),
            );
            let said = ui.find(message).expect("the rejection").bounds();
            let label = ui.find("Password").expect("the label").bounds();
            assert!(
                said.height >= 30.0,
                "at {width} px the two lines have room: {said:?}"
            );
            assert!(
                said.y + said.height <= label.y,
                "at {width} px the rejection {said:?} covers the label {label:?}"
            );
        }
    }

    #[test]
    fn a_fingerprint_is_shown_in_lines_that_fit() {
        let fingerprint = (0..32)
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let lines = in_lines(&fingerprint);
        assert_eq!(lines.lines().count(), 2);
        assert_eq!(lines.replace('\n', ":"), fingerprint);
        let mut login = Login::new("dave", "tls://10.0.0.5:60000");
        login.untrusted(fingerprint.clone());
        let mut ui = simulator(login.view());
        let shown = ui.find(lines.as_str()).expect("the fingerprint").bounds();
        assert!(shown.width < 480.0, "it fits the dialog: {shown:?}");
    }

    #[test]
    fn the_trust_dialog_shows_the_fingerprint_and_remembers_the_choice() {
        let fingerprint = "AB:CD:EF:01:23";
        let mut login = Login::new("dave", "tls://10.0.0.5:60000");
        assert!(matches!(login.submit(), Action::Connect(_)));
        login.untrusted(fingerprint.into());
        assert!(shows(&login, "Trust this server?"));
        assert!(shows(&login, fingerprint));
        let actions = press(&mut login, "Trust this server");
        let Some(Action::Trust { target }) = actions.last() else {
            panic!("not trusted: {actions:?}");
        };
        assert_eq!(target.trusted.as_deref(), Some(fingerprint));
        assert!(target.tls);
        // Cancel goes back to the form and trusts nothing.
        login.untrusted(fingerprint.into());
        assert_eq!(press(&mut login, "Cancel"), [Action::None]);
        assert!(shows(&login, "Log in"));
    }

    #[test]
    fn a_changed_certificate_is_refused_with_both_fingerprints() {
        let mut login = Login::new("erin", "tls://10.0.0.5:60000");
        assert!(matches!(login.submit(), Action::Connect(_)));
        login.certificate_changed("AA:AA".into(), "BB:BB".into());
        assert!(shows(&login, "Warning: the server's certificate changed"));
        assert!(shows(&login, "AA:AA") && shows(&login, "BB:BB"));
        assert!(
            !shows(&login, "Trust this server"),
            "no way to accept it here"
        );
        assert_eq!(press(&mut login, "Back"), [Action::None]);
        assert!(shows(&login, "Log in"));
    }
}
