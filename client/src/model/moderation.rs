//! A room's moderation as the client knows it: its topic, who is owner or op, whether it
//! is invite-only, and (for those who may lift them) its bans, mutes and invitations; what
//! the user may do there, and each moderation event in words.

use std::collections::BTreeMap;

use chat_shared::{Days, LeaveReason, Restriction, Role, RoomState, ServerFrame, fold};

use super::text::until_words;

/// What someone may do in a room, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Power {
    /// Post (and delete one's own messages, from an account).
    Member,
    /// Set the topic, remove, ban, mute, invite, delete anyone's message.
    Op,
    /// And give roles and change the settings.
    Owner,
    /// An owner in every room (a server administrator).
    Admin,
}

/// A room's topic, roles, settings, bans, mutes and invitations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moderation {
    /// The topic (empty: none).
    pub topic: String,
    /// Accounts with a role other than member: case-folded name to (name, role).
    pub roles: BTreeMap<String, (String, Role)>,
    /// Whether only the invited may join.
    pub invite_only: bool,
    /// How many days the room keeps its history, if it has a limit of its own.
    pub retain_days: Option<Days>,
    /// Bans by case-folded name (known to those who may lift them, and from the events
    /// seen).
    pub bans: BTreeMap<String, Restriction>,
    /// Mutes by case-folded name.
    pub mutes: BTreeMap<String, Restriction>,
    /// Accounts invited who have not joined yet, by case-folded name.
    pub invites: BTreeMap<String, String>,
}

impl Moderation {
    /// As a `room` answer states it.
    pub fn answered(state: &RoomState) -> Self {
        let RoomState {
            topic,
            roles,
            invite_only,
            retain_days,
            bans,
            mutes,
            invites,
        } = state;
        let by_name = |list: &[Restriction]| {
            list.iter()
                .map(|r| (fold(&r.name), r.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        Self {
            topic: topic.clone().unwrap_or_default(),
            roles: roles
                .iter()
                .map(|(name, role)| (fold(name), (name.clone(), *role)))
                .collect(),
            invite_only: *invite_only,
            retain_days: *retain_days,
            bans: by_name(bans),
            mutes: by_name(mutes),
            invites: invites.iter().map(|n| (fold(n), n.clone())).collect(),
        }
    }

    /// The role of someone in the room.
    pub fn role(&self, name: &str) -> Role {
        self.roles
            .get(&fold(name))
            .map_or(Role::Member, |(_, r)| *r)
    }

    /// What someone may do here: `account` and `admin` say what the server knows of them.
    pub fn power(&self, name: &str, account: bool, admin: bool) -> Power {
        if !account {
            return Power::Member;
        }
        if admin {
            return Power::Admin;
        }
        match self.role(name) {
            Role::Owner => Power::Owner,
            Role::Op => Power::Op,
            Role::Member | Role::Unknown => Power::Member,
        }
    }

    /// Whether someone with `power` may remove, ban or mute `target` (an op not an
    /// owner; the server also refuses anyone on an administrator but another one).
    pub fn may_act_on(&self, power: Power, target: &str) -> bool {
        match power {
            Power::Member => false,
            Power::Op => self.role(target) != Role::Owner,
            Power::Owner | Power::Admin => true,
        }
    }

    /// The mute of a name in force at `now` (ms since the Unix epoch), if the client knows
    /// of one.
    pub fn mute_of(&self, name: &str, now: u64) -> Option<&Restriction> {
        self.mutes
            .get(&fold(name))
            .filter(|m| m.until.is_none_or(|until| now < until))
    }

    /// Applies a recorded event (live, or replayed: the answer states the room as of its
    /// seq, and what follows changes it).
    pub fn apply(&mut self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Topic { text, .. } => self.topic.clone_from(text),
            ServerFrame::Role { name, role, .. } => match role {
                Role::Owner | Role::Op => {
                    self.roles.insert(fold(name), (name.clone(), *role));
                }
                Role::Member | Role::Unknown => {
                    self.roles.remove(&fold(name));
                }
            },
            ServerFrame::Ban {
                name,
                by,
                message,
                until,
                ..
            } => {
                self.bans.insert(
                    fold(name),
                    Restriction {
                        name: name.clone(),
                        by: by.clone(),
                        message: message.clone(),
                        until: *until,
                    },
                );
            }
            ServerFrame::Unban { name, .. } => {
                self.bans.remove(&fold(name));
            }
            ServerFrame::Mute {
                name, by, until, ..
            } => {
                self.mutes.insert(
                    fold(name),
                    Restriction {
                        name: name.clone(),
                        by: by.clone(),
                        message: None,
                        until: *until,
                    },
                );
            }
            ServerFrame::Unmute { name, .. } => {
                self.mutes.remove(&fold(name));
            }
            ServerFrame::Settings {
                invite_only,
                retain_days,
                ..
            } => {
                self.invite_only = *invite_only;
                self.retain_days = *retain_days;
                if !invite_only {
                    self.invites.clear();
                }
            }
            ServerFrame::Invite { name, .. } => {
                self.invites.insert(fold(name), name.clone());
            }
            ServerFrame::Joined { name, .. } => {
                self.invites.remove(&fold(name));
            }
            _ => {}
        }
    }
}

/// A moderation event in words, as the log shows it: "alice set the topic: Rust talk",
/// "bob banned troll until 14:00 (spam)". `now` (ms since the Unix epoch) says which day
/// it is, for when a ban ends. `None` for frames that are not moderation events.
pub fn describe(frame: &ServerFrame, now: u64) -> Option<String> {
    let reason = |message: &Option<String>| {
        message
            .as_deref()
            .map_or_else(String::new, |m| format!(" ({m})"))
    };
    Some(match frame {
        ServerFrame::Topic { by, text, .. } if text.is_empty() => format!("{by} cleared the topic"),
        ServerFrame::Topic { by, text, .. } => format!("{by} set the topic: {text}"),
        ServerFrame::Role { by, name, role, .. } => match role {
            Role::Owner if by == name => format!("{name} made the room and owns it"),
            Role::Owner => format!("{by} made {name} an owner"),
            Role::Op => format!("{by} made {name} an op"),
            Role::Member | Role::Unknown => format!("{by} took {name}'s role"),
        },
        ServerFrame::Left {
            name,
            reason: LeaveReason::Removed,
            by,
            message,
            ..
        } => match by {
            Some(by) => format!("{by} removed {name}{}", reason(message)),
            None => format!("{name} was removed{}", reason(message)),
        },
        ServerFrame::Left {
            name,
            reason: LeaveReason::Banned,
            by,
            message,
            ..
        } => match by {
            Some(by) => format!("{by} put {name} out{}", reason(message)),
            None => format!("{name} left (banned){}", reason(message)),
        },
        ServerFrame::Ban {
            by,
            name,
            message,
            until,
            room: Some(_),
            ..
        } => format!(
            "{by} banned {name} {}{}",
            until_words(*until, now),
            reason(message)
        ),
        ServerFrame::Unban {
            by,
            name,
            room: Some(_),
            ..
        } => format!("{by} lifted the ban of {name}"),
        ServerFrame::Mute {
            by, name, until, ..
        } => format!("{by} muted {name} {}", until_words(*until, now)),
        ServerFrame::Unmute { by, name, .. } => format!("{by} let {name} speak again"),
        ServerFrame::Settings {
            by,
            invite_only,
            retain_days,
            ..
        } => {
            let access = if *invite_only {
                "invite-only"
            } else {
                "open to everyone"
            };
            format!(
                "{by} set the room {access}, {}",
                retention_words(*retain_days)
            )
        }
        ServerFrame::Invite { by, name, .. } => format!("{by} invited {name}"),
        _ => return None,
    })
}

/// What the user is told when a moderator puts them out of a room: "You were removed
/// from #rust by alice: spam".
pub fn put_out_words(room: &str, frame: &ServerFrame) -> Option<String> {
    let ServerFrame::Left {
        reason,
        by,
        message,
        ..
    } = frame
    else {
        return None;
    };
    let verb = match reason {
        LeaveReason::Removed => "removed from",
        LeaveReason::Banned => "banned from",
        _ => return None,
    };
    let by = by
        .as_deref()
        .map_or_else(String::new, |by| format!(" by {by}"));
    let why = message
        .as_deref()
        .map_or_else(String::new, |m| format!(": {m}"));
    Some(format!("You were {verb} #{room}{by}{why}"))
}

/// How long a room keeps its history, in words: "its history for 30 days".
pub fn retention_words(retain_days: Option<Days>) -> String {
    let Some(days) = retain_days.map(Days::get) else {
        return "its history as long as the server does".into();
    };
    let whole = (days - days.round()).abs() < 1e-9;
    if whole && (days - 1.0).abs() < 1e-9 {
        "its history for a day".into()
    } else if whole {
        format!("its history for {days} days")
    } else if days * 24.0 >= 1.0 {
        format!("its history for {:.1} hours", days * 24.0)
    } else {
        format!("its history for {:.0} seconds", days * 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(seq: u64, by: &str, name: &str, role: Role) -> ServerFrame {
        ServerFrame::Role {
            room: "rust".into(),
            seq,
            time: 0,
            by: by.into(),
            name: name.into(),
            role,
        }
    }

    #[test]
    fn events_change_what_the_room_says_and_who_may_do_what() {
        let mut room = Moderation::default();
        room.apply(&role(1, "alice", "alice", Role::Owner));
        room.apply(&role(2, "alice", "Bob", Role::Op));
        assert_eq!(room.power("alice", true, false), Power::Owner);
        assert_eq!(room.power("BOB", true, false), Power::Op);
        assert_eq!(room.power("bob", false, false), Power::Member, "a guest");
        assert_eq!(room.power("carol", true, true), Power::Admin);
        assert!(!room.may_act_on(Power::Op, "alice"), "an op on an owner");
        assert!(room.may_act_on(Power::Op, "troll"));
        assert!(!room.may_act_on(Power::Member, "troll"));
        room.apply(&ServerFrame::Mute {
            room: "rust".into(),
            seq: 3,
            time: 0,
            by: "bob".into(),
            name: "troll".into(),
            until: Some(100),
        });
        assert!(room.mute_of("Troll", 99).is_some());
        assert!(room.mute_of("troll", 100).is_none(), "ended");
        room.apply(&ServerFrame::Settings {
            room: "rust".into(),
            seq: 4,
            time: 0,
            by: "alice".into(),
            invite_only: true,
            retain_days: Days::limit(7.0).ok().flatten(),
        });
        assert_eq!(room.retain_days.map(Days::get), Some(7.0));
        room.apply(&ServerFrame::Invite {
            room: "rust".into(),
            seq: 5,
            time: 0,
            by: "alice".into(),
            name: "dave".into(),
        });
        assert_eq!(room.invites.len(), 1);
        room.apply(&ServerFrame::Joined {
            room: Some("rust".into()),
            seq: 6,
            time: 0,
            name: "Dave".into(),
        });
        assert!(room.invites.is_empty(), "used");
        room.apply(&role(7, "alice", "bob", Role::Member));
        assert_eq!(room.role("bob"), Role::Member);
    }

    #[test]
    fn moderation_in_words() {
        let left = ServerFrame::Left {
            room: Some("rust".into()),
            seq: 9,
            time: 0,
            name: "troll".into(),
            reason: LeaveReason::Removed,
            by: Some("alice".into()),
            message: Some("spam".into()),
        };
        assert_eq!(
            describe(&left, 0).as_deref(),
            Some("alice removed troll (spam)")
        );
        assert_eq!(
            put_out_words("rust", &left).as_deref(),
            Some("You were removed from #rust by alice: spam")
        );
        assert_eq!(
            describe(&role(1, "alice", "alice", Role::Owner), 0).as_deref(),
            Some("alice made the room and owns it")
        );
        let ban = ServerFrame::Ban {
            room: Some("rust".into()),
            seq: 2,
            time: 0,
            by: "bob".into(),
            name: "troll".into(),
            message: None,
            until: None,
        };
        assert_eq!(
            describe(&ban, 0).as_deref(),
            Some("bob banned troll for good")
        );
        assert_eq!(describe(&ServerFrame::Pong { token: None }, 0), None);
    }
}
