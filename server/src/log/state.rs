//! A room's state: its topic, the roles of its accounts, its settings, its bans, mutes and
//! invitations. It changes only through recorded events, in the same step as the event:
//! [`changes`] says what an event's frame changes, as operations on fields (string keys
//! to string values) that every log keeps beside the room's events (a table of the store,
//! a hash in Redis, a map in memory) and that [`KeptState`] reads.
//!
//! One function derives the changes from the frame, so the log that records an event, the
//! hub that takes it in, and every node that tails it all come to the same state.

use std::collections::BTreeMap;

use chat_shared::{Name, Restriction, Role, ServerFrame, decode_line, fold};
use serde::{Deserialize, Serialize};

/// A change of one field of a room's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldOp {
    /// Set a field.
    Set(String, String),
    /// Remove a field.
    Remove(String),
    /// Remove every field whose key starts with this.
    RemovePrefix(String),
}

impl FieldOp {
    /// Applies the change to a room's fields.
    pub fn apply_to(&self, fields: &mut BTreeMap<String, String>) {
        match self {
            FieldOp::Set(key, value) => {
                fields.insert(key.clone(), value.clone());
            }
            FieldOp::Remove(key) => {
                fields.remove(key);
            }
            FieldOp::RemovePrefix(prefix) => fields.retain(|key, _| !key.starts_with(prefix)),
        }
    }
}

/// A ban or a mute as a field keeps it: the restriction and the name's skeleton, so that a
/// name that looks like the banned one is banned too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The restriction.
    #[serde(flatten)]
    pub restriction: Restriction,
    /// The collision skeleton of its name.
    pub skeleton: String,
}

impl Kept {
    /// Whether it is still in force at `now` (ms since the Unix epoch).
    pub fn in_force(&self, now: u64) -> bool {
        self.restriction.until.is_none_or(|until| now < until)
    }
}

/// A room's state as the log keeps it, from its fields (what a member is told of it is
/// [`chat_shared::RoomState`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptState {
    /// The topic (empty: none).
    pub topic: String,
    /// Whether only the invited (and those with a role) may join.
    pub invite_only: bool,
    /// How many days it keeps its history, if it has a limit of its own.
    pub retain_days: Option<chat_shared::Days>,
    /// Accounts with a role other than member: case-folded name to (name, role).
    pub roles: BTreeMap<String, (String, Role)>,
    /// Bans by case-folded name (some may have ended).
    pub bans: BTreeMap<String, Kept>,
    /// Mutes by case-folded name (some may have ended).
    pub mutes: BTreeMap<String, Kept>,
    /// Invitations not used yet: case-folded account to (name, who invited).
    pub invites: BTreeMap<String, (String, String)>,
}

const TOPIC: &str = "topic";
const INVITE_ONLY: &str = "invite_only";
/// The field of a room's own retention (a number of days).
pub const RETAIN_DAYS: &str = "retain_days";
const ROLE: &str = "role:";
const BAN: &str = "ban:";
const MUTE: &str = "mute:";
const INVITE: &str = "invite:";

impl KeptState {
    /// The state its fields describe (fields it cannot read are skipped).
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut state = Self::default();
        for (key, value) in fields {
            state.set(key, value);
        }
        state
    }

    /// Applies one change.
    pub fn apply(&mut self, op: &FieldOp) {
        match op {
            FieldOp::Set(key, value) => self.set(key, value),
            FieldOp::Remove(key) => self.remove(key),
            FieldOp::RemovePrefix(prefix) if prefix == INVITE => self.invites.clear(),
            FieldOp::RemovePrefix(_) => {}
        }
    }

    fn set(&mut self, key: &str, value: &str) {
        if key == TOPIC {
            self.topic = value.to_string();
        } else if key == INVITE_ONLY {
            self.invite_only = value == "1";
        } else if key == RETAIN_DAYS {
            self.retain_days = retain_days(value);
        } else if let Some(folded) = key.strip_prefix(ROLE) {
            if let Some((role, name)) = value.split_once('\n') {
                self.roles
                    .insert(folded.into(), (name.into(), Role::from_word(role)));
            }
        } else if let Some(folded) = key.strip_prefix(BAN) {
            if let Ok(kept) = serde_json::from_str(value) {
                self.bans.insert(folded.into(), kept);
            }
        } else if let Some(folded) = key.strip_prefix(MUTE) {
            if let Ok(kept) = serde_json::from_str(value) {
                self.mutes.insert(folded.into(), kept);
            }
        } else if let Some(folded) = key.strip_prefix(INVITE)
            && let Some((by, name)) = value.split_once('\n')
        {
            self.invites.insert(folded.into(), (name.into(), by.into()));
        }
    }

    fn remove(&mut self, key: &str) {
        if key == TOPIC {
            self.topic.clear();
        } else if key == INVITE_ONLY {
            self.invite_only = false;
        } else if key == RETAIN_DAYS {
            self.retain_days = None;
        } else if let Some(folded) = key.strip_prefix(ROLE) {
            self.roles.remove(folded);
        } else if let Some(folded) = key.strip_prefix(BAN) {
            self.bans.remove(folded);
        } else if let Some(folded) = key.strip_prefix(MUTE) {
            self.mutes.remove(folded);
        } else if let Some(folded) = key.strip_prefix(INVITE) {
            self.invites.remove(folded);
        }
    }

    /// The role of an account (case-folded): member unless it was given another.
    pub fn role(&self, folded: &str) -> Role {
        self.roles
            .get(folded)
            .map_or(Role::Member, |(_, role)| *role)
    }

    /// How many owners the room has.
    pub fn owners(&self) -> usize {
        self.roles
            .values()
            .filter(|(_, role)| *role == Role::Owner)
            .count()
    }

    /// The ban in force at `now` on a name with these keys (its own, or one that looks
    /// like it).
    pub fn ban_of(&self, folded: &str, skeleton: &str, now: u64) -> Option<&Kept> {
        restriction_of(&self.bans, folded, skeleton, now)
    }

    /// The mute in force at `now` on a name with these keys.
    pub fn mute_of(&self, folded: &str, skeleton: &str, now: u64) -> Option<&Kept> {
        restriction_of(&self.mutes, folded, skeleton, now)
    }
}

fn restriction_of<'a>(
    kept: &'a BTreeMap<String, Kept>,
    folded: &str,
    skeleton: &str,
    now: u64,
) -> Option<&'a Kept> {
    kept.get(folded).filter(|k| k.in_force(now)).or_else(|| {
        kept.values()
            .find(|k| k.skeleton == skeleton && k.in_force(now))
    })
}

/// The case-folded form and the skeleton of a name as a frame carries it (a name the
/// server accepted, so it parses; else its folded form serves as both).
pub fn keys_of(name: &str) -> (String, String) {
    match Name::parse(name) {
        Ok(name) => {
            let keys = name.keys();
            (keys.folded, keys.skeleton)
        }
        Err(_) => (fold(name), fold(name)),
    }
}

/// The account (case-folded) an invitation field is for, if it is one.
pub fn invitee(field: &str) -> Option<&str> {
    field.strip_prefix(INVITE)
}

/// A room's own retention, from its field's value (`None`: not a limit).
pub fn retain_days(value: &str) -> Option<chat_shared::Days> {
    value
        .parse()
        .ok()
        .and_then(|days| chat_shared::Days::limit(days).ok().flatten())
}

/// Who invited, from an invitation field's value.
pub fn inviter(value: &str) -> &str {
    value.split_once('\n').map_or(value, |(by, _)| by)
}

/// The field of the ban of a name (by its case-folded form).
pub fn ban_field(folded: &str) -> String {
    format!("{BAN}{folded}")
}

/// The field of the mute of a name.
pub fn mute_field(folded: &str) -> String {
    format!("{MUTE}{folded}")
}

/// What a recorded event changes in its room's state, from its frame.
pub fn changes(frame: &[u8]) -> Vec<FieldOp> {
    unless_message(frame).map_or_else(Vec::new, |frame| changes_of(&frame))
}

/// An encoded event, decoded unless it is a message: messages change nothing in a room's
/// state and are most events, so they are not decoded.
pub fn unless_message(frame: &[u8]) -> Option<ServerFrame> {
    const MESSAGE: &[u8] = b"{\"type\":\"message\"";
    if frame.starts_with(MESSAGE) {
        return None;
    }
    decode_line::<ServerFrame>(frame.trim_ascii_end()).ok()
}

/// What a decoded event changes in its room's state.
pub fn changes_of(frame: &ServerFrame) -> Vec<FieldOp> {
    let restriction = |by: &str, name: &str, message: &Option<String>, until: &Option<u64>| {
        let (folded, skeleton) = keys_of(name);
        let kept = Kept {
            restriction: Restriction {
                name: name.to_string(),
                by: by.to_string(),
                message: message.clone(),
                until: *until,
            },
            skeleton,
        };
        (folded, serde_json::to_string(&kept).unwrap_or_default())
    };
    match frame {
        ServerFrame::Topic { text, .. } if text.is_empty() => vec![FieldOp::Remove(TOPIC.into())],
        ServerFrame::Topic { text, .. } => vec![FieldOp::Set(TOPIC.into(), text.clone())],
        ServerFrame::Role { name, role, .. } => {
            let field = format!("{ROLE}{}", keys_of(name).0);
            match role {
                Role::Owner | Role::Op => {
                    vec![FieldOp::Set(field, format!("{}\n{name}", role.word()))]
                }
                Role::Member | Role::Unknown => vec![FieldOp::Remove(field)],
            }
        }
        ServerFrame::Ban {
            room: Some(_),
            by,
            name,
            message,
            until,
            ..
        } => {
            let (folded, value) = restriction(by, name, message, until);
            vec![FieldOp::Set(ban_field(&folded), value)]
        }
        ServerFrame::Unban {
            room: Some(_),
            name,
            ..
        } => vec![FieldOp::Remove(ban_field(&keys_of(name).0))],
        ServerFrame::Mute {
            by, name, until, ..
        } => {
            let (folded, value) = restriction(by, name, &None, until);
            vec![FieldOp::Set(mute_field(&folded), value)]
        }
        ServerFrame::Unmute { name, .. } => vec![FieldOp::Remove(mute_field(&keys_of(name).0))],
        ServerFrame::Settings {
            invite_only,
            retain_days,
            ..
        } => {
            let mut ops = if *invite_only {
                vec![FieldOp::Set(INVITE_ONLY.into(), "1".into())]
            } else {
                // Invitations last until the room is open again.
                vec![
                    FieldOp::Remove(INVITE_ONLY.into()),
                    FieldOp::RemovePrefix(INVITE.into()),
                ]
            };
            ops.push(match retain_days {
                Some(days) => FieldOp::Set(RETAIN_DAYS.into(), days.to_string()),
                None => FieldOp::Remove(RETAIN_DAYS.into()),
            });
            ops
        }
        ServerFrame::Invite { by, name, .. } => vec![FieldOp::Set(
            format!("{INVITE}{}", keys_of(name).0),
            format!("{by}\n{name}"),
        )],
        // An invitation is used by the join it let in.
        ServerFrame::Joined { name, .. } => {
            vec![FieldOp::Remove(format!("{INVITE}{}", keys_of(name).0))]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::Frame;

    fn apply(state: &mut KeptState, frame: &ServerFrame) {
        for op in changes(Frame::encode(frame).as_bytes()) {
            state.apply(&op);
        }
    }

    /// What the state holds, as its fields would: applying the changes to a map of fields
    /// and reading them back gives the state that applying them directly gives.
    fn through_fields(frames: &[ServerFrame]) -> KeptState {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for frame in frames {
            for op in changes_of(frame) {
                op.apply_to(&mut fields);
            }
        }
        KeptState::from_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// Applies `frames` directly, checks that their fields give the same state, and
    /// returns it.
    fn check_through_fields(frames: &[ServerFrame]) -> KeptState {
        let mut direct = KeptState::default();
        for frame in frames {
            apply(&mut direct, frame);
        }
        assert_eq!(direct, through_fields(frames));
        direct
    }

    /// A room's steps: a topic, an op, a ban, a mute, invite-only, two invitations, one of
    /// them used.
    fn steps() -> Vec<ServerFrame> {
        let room = "rust".to_string();
        vec![
            ServerFrame::Topic {
                room: room.clone(),
                seq: 1,
                time: 1,
                by: "alice".into(),
                text: "Rust talk".into(),
            },
            ServerFrame::Role {
                room: room.clone(),
                seq: 2,
                time: 2,
                by: "alice".into(),
                name: "Bob".into(),
                role: Role::Op,
            },
            ServerFrame::Ban {
                room: Some(room.clone()),
                seq: 3,
                time: 3,
                by: "Bob".into(),
                name: "troll".into(),
                message: Some("spam".into()),
                until: Some(10_000),
            },
            ServerFrame::Mute {
                room: room.clone(),
                seq: 4,
                time: 4,
                by: "Bob".into(),
                name: "loud".into(),
                until: None,
            },
            ServerFrame::Settings {
                room: room.clone(),
                seq: 5,
                time: 5,
                by: "alice".into(),
                invite_only: true,
                retain_days: chat_shared::Days::limit(30.0).ok().flatten(),
            },
            ServerFrame::Invite {
                room: room.clone(),
                seq: 6,
                time: 6,
                by: "alice".into(),
                name: "Carol".into(),
            },
            ServerFrame::Invite {
                room: room.clone(),
                seq: 7,
                time: 7,
                by: "alice".into(),
                name: "Dave".into(),
            },
            ServerFrame::Joined {
                room: Some(room.clone()),
                seq: 8,
                time: 8,
                name: "Carol".into(),
            },
        ]
    }

    #[test]
    fn events_change_the_state_the_same_way_directly_and_through_fields() {
        let direct = check_through_fields(&steps());
        assert_eq!(direct.topic, "Rust talk");
        assert_eq!(direct.role("bob"), Role::Op);
        assert_eq!(direct.role("carol"), Role::Member);
        assert!(direct.invite_only);
        assert_eq!(direct.retain_days.map(chat_shared::Days::get), Some(30.0));
        assert_eq!(
            direct.invites.keys().collect::<Vec<_>>(),
            ["dave"],
            "carol used hers"
        );
        // A look-alike of the banned name is banned too, until the ban ends.
        assert!(
            direct
                .ban_of("tr\u{43e}ll", &keys_of("tr\u{43e}ll").1, 9_999)
                .is_some()
        );
        assert!(
            direct
                .ban_of("troll", &keys_of("troll").1, 10_000)
                .is_none()
        );
        assert!(
            direct
                .mute_of("loud", &keys_of("loud").1, u64::MAX)
                .is_some()
        );
    }

    #[test]
    fn opening_a_room_ends_its_invitations_and_taking_a_role_back_removes_it() {
        let room = "rust".to_string();
        let more = [
            ServerFrame::Settings {
                room: room.clone(),
                seq: 9,
                time: 9,
                by: "alice".into(),
                invite_only: false,
                retain_days: None,
            },
            ServerFrame::Role {
                room: room.clone(),
                seq: 10,
                time: 10,
                by: "alice".into(),
                name: "bob".into(),
                role: Role::Member,
            },
            ServerFrame::Topic {
                room: room.clone(),
                seq: 11,
                time: 11,
                by: "alice".into(),
                text: String::new(),
            },
        ];
        let all: Vec<ServerFrame> = steps().into_iter().chain(more).collect();
        let direct = check_through_fields(&all);
        assert!(!direct.invite_only && direct.invites.is_empty());
        assert_eq!(direct.retain_days, None);
        assert!(direct.roles.is_empty() && direct.topic.is_empty());
    }
}
