//! The account menu's one form: changing the password. The new one is checked as the
//! server will check it before anything is sent; the server's answer (`password_changed`,
//! or why not) shows in the form.

use chat_shared::{ErrorCode, Password, check_password};
use iced::widget::{button, column, row, space, text, text_input};
use iced::{Element, Fill};

use super::Message as ChatMessage;
use crate::screen::style::bold;

/// The id of the current password's field, focused when the form opens.
pub const CURRENT: &str = "password-current";

/// What the user does in the form.
#[derive(Debug, Clone)]
pub enum Message {
    /// Typed the current password.
    Current(String),
    /// Typed the new one.
    New(String),
    /// Typed it again.
    Confirm(String),
    /// Pressed Enter or "Change password".
    Submit,
}

/// The form's state. Its `Debug` shows nothing of the passwords.
#[derive(Clone, Default)]
pub struct PasswordForm {
    current: String,
    new: String,
    confirm: String,
    problem: Option<String>,
    /// Sent; waiting for the server's answer.
    waiting: bool,
    /// Opened because the password is a temporary one the server's operator set.
    reset: bool,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm")
            .field("problem", &self.problem)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

impl PasswordForm {
    /// The form as it opens by itself after a log-in with a temporary password.
    pub fn after_reset() -> Self {
        Self {
            reset: true,
            ..Self::default()
        }
    }

    /// Handles a message; returns the passwords to send (current, new) once the form is
    /// complete and the new one acceptable for the account `me`.
    pub fn update(&mut self, message: Message, me: &str) -> Option<(Password, Password)> {
        match message {
            Message::Current(current) => self.current = current,
            Message::New(new) => self.new = new,
            Message::Confirm(confirm) => self.confirm = confirm,
            Message::Submit if self.waiting => {}
            Message::Submit => {
                self.problem = if self.current.is_empty() {
                    Some("Type your current password.".into())
                } else if let Err(weak) = check_password(me, &self.new) {
                    Some(format!("The new password: {weak}."))
                } else if self.new != self.confirm {
                    Some("The two new passwords differ.".into())
                } else {
                    None
                };
                if self.problem.is_none() {
                    self.waiting = true;
                    return Some((
                        Password::new(self.current.clone()),
                        Password::new(self.new.clone()),
                    ));
                }
                return None;
            }
        }
        self.problem = None;
        None
    }

    /// Whether it waits for the server's answer.
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// The server refused the change (or could not make it): say why, and let the user
    /// try again. Only the codes a `set_password` is answered with are taken.
    pub fn refused(&mut self, code: ErrorCode, message: &str) -> bool {
        if !self.waiting
            || !matches!(
                code,
                ErrorCode::BadPassword
                    | ErrorCode::WeakPassword
                    | ErrorCode::TooManyAttempts
                    | ErrorCode::AccountRequired
                    | ErrorCode::Unavailable
            )
        {
            return false;
        }
        self.waiting = false;
        self.problem = Some(match code {
            ErrorCode::BadPassword => "The current password is wrong.".into(),
            _ => message.to_string(),
        });
        true
    }

    /// The form.
    pub fn view(&self) -> Element<'_, ChatMessage> {
        let field = |placeholder: &'static str, value: &str, on_input: fn(String) -> Message| {
            text_input(placeholder, value)
                .secure(true)
                .padding(6)
                .size(14)
                .on_input(move |s| ChatMessage::Password(on_input(s)))
                .on_submit(ChatMessage::Password(Message::Submit))
        };
        let status = match (&self.problem, self.waiting) {
            (Some(problem), _) => text(problem.clone()).size(13).style(text::danger),
            (None, true) => text("Changing…").size(13),
            (None, false) => text("").size(13),
        };
        let why = self.reset.then(|| {
            text(
                "The server's operator gave you a temporary password. Choose your own now: \
                 the temporary one stops working within a day.",
            )
            .size(13)
        });
        column![
            text("Change your password").size(16).font(bold()),
            why,
            field("current password", &self.current, Message::Current).id(CURRENT),
            field(
                "new password, 8 characters or more",
                &self.new,
                Message::New
            ),
            field("the new password again", &self.confirm, Message::Confirm),
            status,
            row![
                space::horizontal(),
                button(text("Cancel").size(13))
                    .on_press(ChatMessage::Account(false))
                    .style(button::secondary),
                button(text("Change password").size(13)).on_press_maybe(
                    (!self.waiting).then_some(ChatMessage::Password(Message::Submit))
                ),
            ]
            .spacing(8),
        ]
        .spacing(10)
        .width(Fill)
        .max_width(380)
        .into()
    }
}
