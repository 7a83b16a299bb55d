//! A moderation step as a session hands it on to the hub (its texts and names already
//! checked), and where a message to delete is.

use chat_shared::limits::MAX_TOPIC;
use chat_shared::{ClientFrame, ErrorCode, Name, Role, RoomName, check_line};

/// What a `settings` asks of a room's own retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Leave it as it is (no `retain_days`).
    AsItIs,
    /// No limit of its own (`retain_days: 0`).
    NoLimit,
    /// Keep the history so many days.
    Limit(chat_shared::Days),
}

impl Retention {
    /// What `retain_days` asks; an error for a number that is no limit.
    fn asked(days: Option<chat_shared::Days>) -> Result<Self, String> {
        Ok(match days {
            None => Self::AsItIs,
            Some(days) => match chat_shared::Days::limit(days.get())? {
                None => Self::NoLimit,
                Some(days) => Self::Limit(days),
            },
        })
    }
}

/// A moderation step, as a session hands it on.
#[derive(Debug, Clone)]
pub enum Step {
    /// Set the topic (empty: clear it).
    Topic {
        /// The room.
        room: RoomName,
        /// The topic.
        text: String,
    },
    /// Give a role.
    Role {
        /// The room.
        room: RoomName,
        /// The account.
        name: Name,
        /// The role.
        role: Role,
    },
    /// Put a member out.
    Remove {
        /// The room.
        room: RoomName,
        /// Who.
        name: Name,
        /// Why.
        message: Option<String>,
    },
    /// Ban a name from a room, or (`room` absent) from the server.
    Ban {
        /// The room, or the server.
        room: Option<RoomName>,
        /// The name.
        name: Name,
        /// Why.
        message: Option<String>,
        /// For how long.
        minutes: Option<u64>,
        /// A server ban: the address too.
        address: bool,
    },
    /// Lift a ban.
    Unban {
        /// The room, or the server.
        room: Option<RoomName>,
        /// The name.
        name: Name,
    },
    /// Mute a name.
    Mute {
        /// The room.
        room: RoomName,
        /// The name.
        name: Name,
        /// For how long.
        minutes: Option<u64>,
    },
    /// Lift a mute.
    Unmute {
        /// The room.
        room: RoomName,
        /// The name.
        name: Name,
    },
    /// Change the settings.
    Settings {
        /// The room.
        room: RoomName,
        /// Invite-only.
        invite_only: bool,
        /// Its own retention.
        retain_days: Retention,
    },
    /// Invite an account.
    Invite {
        /// The room.
        room: RoomName,
        /// The account.
        name: Name,
    },
}

/// Where a message is: a room, or the direct conversation with an account.
#[derive(Debug, Clone)]
pub enum Place {
    /// A room.
    Room(RoomName),
    /// The direct conversation with this account (as the frame named it).
    With(String),
}

impl Step {
    /// The room it is taken in (`None`: a server-wide ban or unban).
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            Step::Topic { room, .. }
            | Step::Role { room, .. }
            | Step::Remove { room, .. }
            | Step::Mute { room, .. }
            | Step::Unmute { room, .. }
            | Step::Settings { room, .. }
            | Step::Invite { room, .. } => Some(room),
            Step::Ban { room, .. } | Step::Unban { room, .. } => room.as_ref(),
        }
    }
}

/// Why a moderation frame was refused before it reached the hub: the `error` to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The code.
    pub code: ErrorCode,
    /// In words.
    pub message: String,
    /// The room the frame named, if it named one.
    pub room: Option<String>,
}

impl Step {
    /// The step a moderation frame asks for, once its room, its name and its texts are
    /// checked: a room name that is none is `invalid_room`; a name that is none is
    /// `no_account` for a `role` or an `invite` (no account has it) and `bad_frame`
    /// otherwise; a topic or a reason longer than [`MAX_TOPIC`] bytes is `too_long`, one
    /// with a control character `bad_text`; `minutes` of 0 and a role nobody knows are
    /// `bad_frame`, and so is a `retain_days` below 0 or over
    /// [`chat_shared::limits::MAX_RETAIN_DAYS`]. An empty reason is no reason. Any other
    /// frame is `bad_frame`.
    pub fn from_frame(frame: ClientFrame) -> Result<Self, Refused> {
        let raw_room = room_of(&frame);
        let refuse = |code, message: String| Refused {
            code,
            message,
            room: raw_room.clone(),
        };
        let room = match raw_room.as_deref().map(RoomName::parse).transpose() {
            Ok(room) => room,
            Err(err) => {
                let raw = raw_room.clone().unwrap_or_default();
                return Err(refuse(ErrorCode::InvalidRoom, format!("{raw:?}: {err}")));
            }
        };
        let name = |raw: &str, code| {
            Name::parse(raw).map_err(|err| refuse(code, format!("{raw:?} is not a name: {err}")))
        };
        let line = |text| line(text).map_err(|(code, message)| refuse(code, message));
        let minutes = |minutes| {
            positive(minutes).map_err(|()| {
                refuse(
                    ErrorCode::BadFrame,
                    "minutes is at least 1 (leave it out for no end)".into(),
                )
            })
        };
        // Every frame but a server-wide ban or unban names its room.
        let in_room = |room: Option<RoomName>| {
            room.ok_or_else(|| refuse(ErrorCode::BadFrame, "no room".into()))
        };
        Ok(match frame {
            ClientFrame::Topic { text, .. } => Step::Topic {
                room: in_room(room)?,
                text: line(Some(text))?.unwrap_or_default(),
            },
            ClientFrame::Settings {
                invite_only,
                retain_days,
                ..
            } => Step::Settings {
                room: in_room(room)?,
                invite_only,
                retain_days: Retention::asked(retain_days)
                    .map_err(|why| refuse(ErrorCode::BadFrame, why))?,
            },
            ClientFrame::Role {
                role: Role::Unknown,
                ..
            } => {
                let message = "role is owner, op or member".into();
                return Err(refuse(ErrorCode::BadFrame, message));
            }
            ClientFrame::Role {
                name: raw, role, ..
            } => Step::Role {
                room: in_room(room)?,
                name: name(&raw, ErrorCode::NoAccount)?,
                role,
            },
            ClientFrame::Invite { name: raw, .. } => Step::Invite {
                room: in_room(room)?,
                name: name(&raw, ErrorCode::NoAccount)?,
            },
            ClientFrame::Remove {
                name: raw, message, ..
            } => Step::Remove {
                room: in_room(room)?,
                name: name(&raw, ErrorCode::BadFrame)?,
                message: line(message)?,
            },
            ClientFrame::Ban {
                name: raw,
                message,
                minutes: wanted,
                address,
                ..
            } => Step::Ban {
                name: name(&raw, ErrorCode::BadFrame)?,
                message: line(message)?,
                minutes: minutes(wanted)?,
                // Addresses are banned from the server only.
                address: address && room.is_none(),
                room,
            },
            ClientFrame::Unban { name: raw, .. } => Step::Unban {
                name: name(&raw, ErrorCode::BadFrame)?,
                room,
            },
            ClientFrame::Mute {
                name: raw,
                minutes: wanted,
                ..
            } => Step::Mute {
                room: in_room(room)?,
                name: name(&raw, ErrorCode::BadFrame)?,
                minutes: minutes(wanted)?,
            },
            ClientFrame::Unmute { name: raw, .. } => Step::Unmute {
                room: in_room(room)?,
                name: name(&raw, ErrorCode::BadFrame)?,
            },
            _ => return Err(refuse(ErrorCode::BadFrame, "not a moderation frame".into())),
        })
    }
}

/// A topic or a reason, checked: empty is none.
fn line(text: Option<String>) -> Result<Option<String>, (ErrorCode, String)> {
    match text.filter(|text| !text.is_empty()) {
        Some(text) => match check_line(&text, MAX_TOPIC) {
            Ok(()) => Ok(Some(text)),
            Err(problem) => Err((problem.code(), problem.to_string())),
        },
        None => Ok(None),
    }
}

/// `minutes`, if given, is at least 1.
fn positive(minutes: Option<u64>) -> Result<Option<u64>, ()> {
    if minutes == Some(0) {
        Err(())
    } else {
        Ok(minutes)
    }
}

/// The room a moderation frame names, as it names it.
fn room_of(frame: &ClientFrame) -> Option<String> {
    match frame {
        ClientFrame::Topic { room, .. }
        | ClientFrame::Settings { room, .. }
        | ClientFrame::Role { room, .. }
        | ClientFrame::Remove { room, .. }
        | ClientFrame::Mute { room, .. }
        | ClientFrame::Unmute { room, .. }
        | ClientFrame::Invite { room, .. } => Some(room.clone()),
        ClientFrame::Ban { room, .. } | ClientFrame::Unban { room, .. } => room.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(frame: ClientFrame) -> ErrorCode {
        Step::from_frame(frame).expect_err("refused").code
    }

    #[test]
    fn frames_become_steps_once_their_rooms_names_and_texts_are_checked() {
        let topic = |text: &str| ClientFrame::Topic {
            room: "rust".into(),
            text: text.into(),
        };
        assert!(matches!(
            Step::from_frame(topic("")),
            Ok(Step::Topic { text, .. }) if text.is_empty()
        ));
        assert_eq!(
            refused(topic(&"x".repeat(MAX_TOPIC + 1))),
            ErrorCode::TooLong
        );
        assert_eq!(refused(topic("two\nlines")), ErrorCode::BadText);
        assert_eq!(
            refused(ClientFrame::Topic {
                room: "no good!".into(),
                text: String::new()
            }),
            ErrorCode::InvalidRoom
        );
        assert_eq!(
            refused(ClientFrame::Invite {
                room: "rust".into(),
                name: "  ".into()
            }),
            ErrorCode::NoAccount
        );
        assert_eq!(
            refused(ClientFrame::Mute {
                room: "rust".into(),
                name: "troll".into(),
                minutes: Some(0)
            }),
            ErrorCode::BadFrame
        );
        assert_eq!(
            refused(ClientFrame::Role {
                room: "rust".into(),
                name: "bob".into(),
                role: Role::Unknown
            }),
            ErrorCode::BadFrame
        );
        // A room ban never bans an address; an empty reason is none.
        let ban = Step::from_frame(ClientFrame::Ban {
            room: Some("rust".into()),
            name: "troll".into(),
            message: Some(String::new()),
            minutes: None,
            address: true,
        });
        assert!(matches!(
            ban,
            Ok(Step::Ban {
                room: Some(_),
                message: None,
                address: false,
                ..
            })
        ));
        let server = Step::from_frame(ClientFrame::Ban {
            room: None,
            name: "troll".into(),
            message: Some("spam".into()),
            minutes: Some(60),
            address: true,
        });
        assert!(matches!(
            server,
            Ok(Step::Ban {
                room: None,
                address: true,
                minutes: Some(60),
                ..
            })
        ));
    }
}
