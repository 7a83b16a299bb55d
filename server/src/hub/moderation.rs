//! Moderation: who may do what in a room (its roles, and the server's administrators),
//! the steps owners and ops take (topic, roles, remove, ban, mute, settings, invitations),
//! deleting messages, who may join or post, and server bans.
//!
//! Every check reads the room's state as of its newest recorded event, and a step that
//! passes is recorded as an event of the room like any other (so it is ordered with the
//! chat, replayed, and kept as the room's audit trail); what it changes takes effect when
//! it arrives in the room (see [`crate::room::Room::record`]). A step that would change
//! nothing records nothing.

use std::sync::Arc;

use chat_shared::{
    CloseCode, ErrorCode, Frame, LeaveReason, NameKeys, Restriction, Role, RoomName, RoomState,
    ServerFrame, decode_line, fold,
};

use crate::bans::{Banned, ServerBan};
use crate::log::amend::erased;
use crate::log::state::Kept;
use crate::log::{Body, Event, LogError, Seq, Span, StreamId};
use crate::registry::{ConnId, Member};
use crate::room::table::{Deferred, Lookup};
use crate::room::{Effect, Pending, Room};
use crate::wire::now_millis;

use super::Hub;
use super::command::{BanAnswer, Command, Place, Retention, Step};
use super::direct::direct_event;
use crate::control::Reply;

/// What someone may do in a room, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Power {
    /// Post, and delete one's own messages (accounts).
    Member,
    /// Set the topic, remove, ban, mute, invite, delete anyone's message.
    Op,
    /// And give roles and change the settings.
    Owner,
    /// An owner in every room, whom only another administrator can act on.
    Admin,
}

impl Power {
    fn of(role: Role) -> Self {
        match role {
            Role::Owner => Power::Owner,
            Role::Op => Power::Op,
            Role::Member | Role::Unknown => Power::Member,
        }
    }
}

/// A refusal: the `error` code and its words.
type Refusal = (ErrorCode, String);

/// Someone taking a step in a room.
struct Acting<'a> {
    power: Power,
    /// Their name.
    by: String,
    room: &'a Room,
}

impl Acting<'_> {
    /// Refuses unless they have at least `least`.
    fn need(&self, least: Power) -> Result<(), Refusal> {
        if self.power >= least {
            return Ok(());
        }
        let who = if least == Power::Op {
            "owners and ops"
        } else {
            "owners"
        };
        Err(not_permitted(format!(
            "only the {who} of {} may do that",
            self.room.name()
        )))
    }
}

fn not_permitted(message: impl Into<String>) -> Refusal {
    (ErrorCode::NotPermitted, message.into())
}

impl Hub {
    /// Whether a name (its keys) is one of the server's administrators', or looks like
    /// one.
    pub(super) fn is_admin_name(&self, keys: &NameKeys) -> bool {
        self.admins
            .iter()
            .any(|admin| admin.folded == keys.folded || admin.skeleton == keys.skeleton)
    }

    /// Whether a member is one of the server's administrators (an account).
    pub(super) fn is_admin(&self, member: &Member) -> bool {
        member.account && self.is_admin_name(&member.keys)
    }

    /// What a member may do in a room.
    pub(super) fn power(&self, member: &Member, room: &Room) -> Power {
        if !member.account {
            Power::Member
        } else if self.is_admin(member) {
            Power::Admin
        } else {
            // A step sent right behind the join that made the room counts that join's
            // role, recorded or not: frames are taken in the order they came.
            Power::of(room.role_underway(&member.keys.folded))
        }
    }

    /// Whether someone with `power` may act on the name with `keys` in `room`: nobody but
    /// an administrator on an administrator, no op on an owner.
    fn may_act_on(&self, power: Power, keys: &NameKeys, room: &Room) -> Result<(), Refusal> {
        let admin = self.is_admin_name(keys) && self.accounts.colliding(keys).is_some();
        if admin && power < Power::Admin {
            return Err(not_permitted(
                "nobody but an administrator can act on an administrator",
            ));
        }
        if power == Power::Op && room.state().role(&keys.folded) == Role::Owner {
            return Err(not_permitted("an op cannot act on an owner"));
        }
        Ok(())
    }

    /// A moderation step from a session.
    pub(super) fn moderate(&mut self, conn: ConnId, step: Step) {
        let Some(member) = self.registry.get(conn).filter(|m| m.online) else {
            return;
        };
        let Some(named) = step.room().cloned() else {
            return self.server_step(conn, step);
        };
        let Some(key) = self.room_of_member(conn, &named) else {
            return;
        };
        if self.rooms.is_loading(&key) {
            let _ = self.rooms.defer(&key, Deferred::Step(conn, Box::new(step)));
            return;
        }
        let Some(room) = self.rooms.get(&key) else {
            return;
        };
        match self.check(member, room, &step, now_millis()) {
            Ok(bodies) => {
                for body in bodies {
                    if let Body::Settings {
                        retain_days: Some(days),
                        ..
                    } = &body
                    {
                        self.sweep_within(days.duration());
                    }
                    self.push(&key, body, None, Effect::Step { conn });
                }
            }
            Err((code, message)) => {
                let name = room.name().to_string();
                self.error(conn, code, message, None, Some(&name));
            }
        }
    }

    /// The key of a room a frame names that the connection is in; else it is answered
    /// (`not_member`, `invalid_room`).
    pub(super) fn room_of_member(&self, conn: ConnId, named: &RoomName) -> Option<Arc<str>> {
        let member = self.registry.get(conn)?;
        match self.resolve(conn, Some(named), None)? {
            Lookup::Existing(key) if member.rooms.contains(&key) => Some(key),
            _ => {
                self.error(
                    conn,
                    ErrorCode::NotMember,
                    format!("you are not in {named}; join it first"),
                    None,
                    Some(named.as_str()),
                );
                None
            }
        }
    }

    /// Whether `actor` may take `step` in `room` at `now`, and if so the events it records
    /// (none when it would change nothing).
    fn check(
        &self,
        actor: &Member,
        room: &Room,
        step: &Step,
        now: u64,
    ) -> Result<Vec<Body>, Refusal> {
        let acting = Acting {
            power: self.power(actor, room),
            by: actor.name.to_string(),
            room,
        };
        match step {
            Step::Topic { .. }
            | Step::Role { .. }
            | Step::Settings { .. }
            | Step::Invite { .. } => self.check_room_step(&acting, step),
            _ => self.check_member_step(&acting, step, now),
        }
    }

    /// The steps that change the room: its topic, roles, settings and invitations.
    fn check_room_step(&self, acting: &Acting<'_>, step: &Step) -> Result<Vec<Body>, Refusal> {
        let (room, by) = (acting.room, acting.by.clone());
        let state = room.state();
        let account = |keys: &NameKeys| {
            self.accounts
                .get(&keys.folded)
                .map(|account| account.name.to_string())
                .ok_or_else(|| {
                    (
                        ErrorCode::NoAccount,
                        "there is no account by that name".to_string(),
                    )
                })
        };
        Ok(match step {
            Step::Topic { text, .. } => {
                acting.need(Power::Op)?;
                if *text == state.topic {
                    return Ok(Vec::new());
                }
                vec![Body::Topic {
                    by,
                    text: text.clone(),
                }]
            }
            Step::Role { name, role, .. } => {
                acting.need(Power::Owner)?;
                let keys = name.keys();
                let name = account(&keys)?;
                self.may_act_on(acting.power, &keys, room)?;
                let now_role = state.role(&keys.folded);
                if now_role == *role {
                    return Ok(Vec::new());
                }
                if now_role == Role::Owner && state.owners() == 1 {
                    return Err(not_permitted(format!(
                        "{name} is the only owner of {}: make someone else owner first",
                        room.name()
                    )));
                }
                vec![Body::Role {
                    by,
                    name,
                    role: *role,
                }]
            }
            Step::Settings {
                invite_only,
                retain_days,
                ..
            } => {
                acting.need(Power::Owner)?;
                let retain_days = match retain_days {
                    Retention::AsItIs => state.retain_days,
                    Retention::NoLimit => None,
                    Retention::Limit(days) => Some(*days),
                };
                if retain_days.is_some() && !self.log.retains() {
                    return Err(not_permitted(
                        "this server is a cluster, whose history is in Redis: a room cannot have a retention of its own there yet",
                    ));
                }
                if *invite_only == state.invite_only && retain_days == state.retain_days {
                    return Ok(Vec::new());
                }
                vec![Body::Settings {
                    by,
                    invite_only: *invite_only,
                    retain_days,
                }]
            }
            Step::Invite { name, .. } => {
                acting.need(Power::Op)?;
                let keys = name.keys();
                let name = account(&keys)?;
                if state.invites.contains_key(&keys.folded)
                    || room.has_member(&keys.folded, &self.registry)
                {
                    return Ok(Vec::new());
                }
                vec![Body::Invite { by, name }]
            }
            _ => Vec::new(),
        })
    }

    /// The steps that act on a name: remove, ban, mute, and lifting a ban or a mute.
    fn check_member_step(
        &self,
        acting: &Acting<'_>,
        step: &Step,
        now: u64,
    ) -> Result<Vec<Body>, Refusal> {
        let (room, by) = (acting.room, acting.by.clone());
        let state = room.state();
        acting.need(Power::Op)?;
        let until = |minutes: Option<u64>| {
            let minute = self.config.minute.as_millis() as u64;
            minutes.map(|m| now.saturating_add(m.saturating_mul(minute)))
        };
        Ok(match step {
            Step::Remove { name, message, .. } => {
                let keys = name.keys();
                self.may_act_on(acting.power, &keys, room)?;
                let Some(present) = room.member_name(&keys.folded, &self.registry) else {
                    return Err((
                        ErrorCode::NotMember,
                        format!("{name} is not in {}", room.name()),
                    ));
                };
                vec![Body::Left {
                    name: present,
                    reason: LeaveReason::Removed,
                    by: Some(by),
                    message: message.clone(),
                }]
            }
            Step::Ban {
                name,
                message,
                minutes,
                ..
            } => {
                let keys = name.keys();
                self.may_act_on(acting.power, &keys, room)?;
                let mut bodies = vec![Body::Ban {
                    by: by.clone(),
                    name: name.to_string(),
                    message: message.clone(),
                    until: until(*minutes),
                }];
                // A banned member is put out at once.
                if let Some(present) = room.member_name(&keys.folded, &self.registry) {
                    bodies.push(Body::Left {
                        name: present,
                        reason: LeaveReason::Banned,
                        by: Some(by),
                        message: message.clone(),
                    });
                }
                bodies
            }
            Step::Mute { name, minutes, .. } => {
                self.may_act_on(acting.power, &name.keys(), room)?;
                vec![Body::Mute {
                    by,
                    name: name.to_string(),
                    until: until(*minutes),
                }]
            }
            // The ban or mute of that name or of one it looks like, ended or not.
            Step::Unban { name, .. } => {
                let keys = name.keys();
                match state.ban_of(&keys.folded, &keys.skeleton, 0) {
                    Some(kept) => vec![Body::Unban {
                        by,
                        name: kept.restriction.name.clone(),
                    }],
                    None => Vec::new(),
                }
            }
            Step::Unmute { name, .. } => {
                let keys = name.keys();
                match state.mute_of(&keys.folded, &keys.skeleton, 0) {
                    Some(kept) => vec![Body::Unmute {
                        by,
                        name: kept.restriction.name.clone(),
                    }],
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        })
    }

    /// Whether a member may join a room: not if a ban holds its name there, nor, for an
    /// invite-only room, without an invitation, a role there, or being an administrator.
    /// The refusal is an `error` frame (`banned` carries the ban's reason as its message,
    /// and its `until`).
    pub(super) fn admission(&self, member: &Member, room: &Room, now: u64) -> Result<(), Frame> {
        let state = room.state();
        let name = room.name().to_string();
        let keys = &member.keys;
        if let Some(ban) = state.ban_of(&keys.folded, &keys.skeleton, now)
            && !self.is_admin(member)
        {
            let message = ban
                .restriction
                .message
                .clone()
                .unwrap_or_else(|| format!("you are banned from {name}"));
            return Err(Frame::encode(&ServerFrame::Error {
                room: Some(name),
                code: ErrorCode::Banned,
                message,
                id: None,
                retry_after: None,
                until: ban.restriction.until,
            }));
        }
        let admitted = !state.invite_only
            || (member.account
                && (state.invites.contains_key(&keys.folded)
                    || state.role(&keys.folded) != Role::Member
                    || self.is_admin(member)));
        if !admitted {
            return Err(Frame::encode(&ServerFrame::Error {
                message: format!("{name} is invite-only: ask one of its owners or ops"),
                room: Some(name),
                code: ErrorCode::InviteOnly,
                id: None,
                retry_after: None,
                until: None,
            }));
        }
        Ok(())
    }

    /// The mute in force on a member in a room, as the `error` its post gets.
    pub(super) fn muted(member: &Member, room: &Room, id: Option<String>) -> Option<Frame> {
        let keys = &member.keys;
        let mute = room
            .state()
            .mute_of(&keys.folded, &keys.skeleton, now_millis())?;
        let name = room.name().to_string();
        Some(Frame::encode(&ServerFrame::Error {
            message: format!("you are muted in {name}: you may read, not post"),
            room: Some(name),
            code: ErrorCode::Muted,
            id,
            retry_after: None,
            until: mute.restriction.until,
        }))
    }

    /// What the `room` answer tells a member of the room's state: its topic, roles and
    /// settings, and for those who may lift them, its bans, mutes and invitations.
    pub(super) fn described(&self, member: &Member, room: &Room) -> RoomState {
        let state = room.state();
        let now = now_millis();
        let moderator = self.power(member, room) >= Power::Op;
        let in_force = |kept: &std::collections::BTreeMap<String, Kept>| -> Vec<Restriction> {
            if !moderator {
                return Vec::new();
            }
            kept.values()
                .filter(|k| k.in_force(now))
                .map(|k| k.restriction.clone())
                .collect()
        };
        RoomState {
            topic: (!state.topic.is_empty()).then(|| state.topic.clone()),
            roles: state.roles.values().cloned().collect(),
            invite_only: state.invite_only,
            retain_days: state.retain_days,
            bans: in_force(&state.bans),
            mutes: in_force(&state.mutes),
            invites: if moderator {
                state
                    .invites
                    .values()
                    .map(|(name, _)| name.clone())
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// A `delete`: the message is looked up (in the room's window, or read from the log
    /// off this task), then checked and deleted.
    pub(super) fn delete(&mut self, conn: ConnId, place: Place, seq: Seq) {
        if self.registry.get(conn).is_none_or(|m| !m.online) {
            return;
        }
        let stream = match &place {
            Place::Room(named) => {
                let Some(key) = self.room_of_member(conn, named) else {
                    return;
                };
                if self.rooms.is_loading(&key) {
                    let _ = self
                        .rooms
                        .defer(&key, Deferred::Delete(conn, named.clone(), seq));
                    return;
                }
                let Some(room) = self.rooms.get(&key) else {
                    return;
                };
                if seq == 0 || seq > room.newest() {
                    return self.no_such_message(conn, &place, seq);
                }
                if let Some(event) = room.event_at(seq) {
                    let event = event.clone();
                    return self.delete_found(conn, &place, &event);
                }
                StreamId::new(&key)
            }
            Place::With(with) => match self.account_named(conn, with) {
                Ok((me, other)) => StreamId::direct(&me.keys.folded, &other.keys.folded),
                Err(code) => return self.account_error(conn, code, with, None),
            },
        };
        // Older than the window, or a direct message: read off this task.
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        smol::unblock(move || {
            let read = log
                .read(&stream, Span::After(seq.saturating_sub(1)), 1)
                .map(|events| {
                    events
                        .into_iter()
                        .find(|event| event.seq == seq)
                        .map(|event| event.frame)
                });
            let _ = inbox.try_send(Command::Found {
                conn,
                place,
                seq,
                read,
            });
        })
        .detach();
    }

    /// A message to delete, as read from the log.
    pub(super) fn found(
        &mut self,
        conn: ConnId,
        place: &Place,
        seq: Seq,
        read: Result<Option<Frame>, LogError>,
    ) {
        match read {
            Ok(Some(frame)) => self.delete_found(conn, place, &Event { seq, frame }),
            Ok(None) => self.no_such_message(conn, place, seq),
            Err(err) => {
                tracing::error!(%err, "cannot read a message to delete");
                self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "the message cannot be read now; try again later".into(),
                    None,
                    place_room(place),
                );
            }
        }
    }

    fn no_such_message(&self, conn: ConnId, place: &Place, seq: Seq) {
        self.error(
            conn,
            ErrorCode::NoSuchMessage,
            format!("{seq} is not a message there, or it is deleted already"),
            None,
            place_room(place),
        );
    }

    /// Deletes a message found at its seq, if it is one and the member may.
    fn delete_found(&mut self, conn: ConnId, place: &Place, event: &Event) {
        let Ok(ServerFrame::Message {
            from,
            id,
            deleted: false,
            ..
        }) = decode_line::<ServerFrame>(event.frame.as_bytes().trim_ascii_end())
        else {
            return self.no_such_message(conn, place, event.seq);
        };
        let author = match chat_shared::Name::parse(&from) {
            Ok(name) => name.keys(),
            Err(_) => NameKeys {
                folded: fold(&from),
                skeleton: fold(&from),
            },
        };
        let erased_frame = erased(&event.frame);
        let deleted = match place {
            Place::Room(named) => self.delete_in_room(conn, named, event, &author),
            Place::With(with) => self.delete_direct(conn, with, event, &author),
        };
        // A post sent again with its id gets the message as it is now.
        if deleted && let Some(id) = id {
            self.posts.erase(&author.folded, &id, erased_frame);
        }
    }

    /// Deletes a room's message, if the member is its author (an account) or may delete
    /// the author's messages there; says whether it did.
    fn delete_in_room(
        &mut self,
        conn: ConnId,
        named: &RoomName,
        message: &Event,
        author: &NameKeys,
    ) -> bool {
        let Some(key) = self.room_of_member(conn, named) else {
            return false;
        };
        let (Some(member), Some(room)) = (self.registry.get(conn), self.rooms.get(&key)) else {
            return false;
        };
        let own = author.folded == member.keys.folded;
        let power = self.power(member, room);
        let allowed = if own && member.account {
            Ok(())
        } else if power >= Power::Op {
            self.may_act_on(power, author, room)
        } else if own {
            Err((
                ErrorCode::AccountRequired,
                "only an account can delete its messages: a guest name may be someone else's tomorrow"
                    .to_string(),
            ))
        } else {
            Err(not_permitted(format!(
                "only its author and the owners and ops of {} may delete it",
                room.name()
            )))
        };
        if let Err((code, words)) = allowed {
            let name = room.name().to_string();
            self.error(conn, code, words, None, Some(&name));
            return false;
        }
        let by = member.name.to_string();
        self.rooms.update(&key, |room| {
            let target = message.seq;
            let event = room.event(now_millis(), Body::Deleted { by, target }, None, None);
            room.push(Pending {
                event,
                effect: Effect::Step { conn },
            });
        });
        true
    }

    /// Deletes a direct message, if the member wrote it; says whether it did.
    fn delete_direct(
        &mut self,
        conn: ConnId,
        with: &str,
        message: &Event,
        author: &NameKeys,
    ) -> bool {
        let (me, other) = match self.account_named(conn, with) {
            Ok(pair) => pair,
            Err(code) => {
                self.account_error(conn, code, with, None);
                return false;
            }
        };
        if author.folded != me.keys.folded {
            self.error(
                conn,
                ErrorCode::NotPermitted,
                "only its author can delete a direct message".into(),
                None,
                None,
            );
            return false;
        }
        let body = Body::Deleted {
            by: me.name.to_string(),
            target: message.seq,
        };
        let deletion = direct_event(&me, &other, body);
        self.record_direct(deletion, conn);
        true
    }

    /// A server-wide ban or unban, from an administrator: stored off this task, then in
    /// force (see [`Hub::server_ban_stored`]).
    fn server_step(&mut self, conn: ConnId, step: Step) {
        let Some(admin) = self.registry.get(conn).filter(|m| self.is_admin(m)) else {
            return self.error(
                conn,
                ErrorCode::NotPermitted,
                "only the server's administrators may ban from the whole server".into(),
                None,
                None,
            );
        };
        let by = admin.name.to_string();
        let time = now_millis();
        let (changes, answer) = match step {
            Step::Ban {
                name,
                message,
                minutes,
                address,
                ..
            } => {
                let keys = name.keys();
                let minute = self.config.minute.as_millis() as u64;
                let until = minutes.map(|m| time.saturating_add(m.saturating_mul(minute)));
                let ban = ServerBan {
                    name: name.to_string(),
                    skeleton: keys.skeleton.clone(),
                    by: by.clone(),
                    message: message.clone(),
                    until,
                    address,
                };
                let value = serde_json::to_string(&ban).unwrap_or_default();
                let answer = ServerFrame::Ban {
                    room: None,
                    seq: 0,
                    time,
                    by,
                    name: name.to_string(),
                    message,
                    until,
                };
                (vec![(Banned::Name(keys.folded).key(), Some(value))], answer)
            }
            Step::Unban { name, .. } => {
                let lifted = self.server_bans.lifted_by(&name.keys());
                if lifted.is_empty() {
                    return;
                }
                let answer = ServerFrame::Unban {
                    room: None,
                    seq: 0,
                    time,
                    by,
                    name: name.to_string(),
                };
                (lifted.into_iter().map(|key| (key, None)).collect(), answer)
            }
            _ => return,
        };
        self.store_server_bans(Some(BanAnswer::Member(conn, answer)), changes);
    }

    /// Stores server bans off this task; the hub puts them in force once they are stored
    /// (and answers `answer`, if given).
    pub(super) fn store_server_bans(
        &self,
        answer: Option<BanAnswer>,
        changes: Vec<(String, Option<String>)>,
    ) {
        let (log, inbox) = (self.log.clone(), self.inbox.clone());
        smol::unblock(move || {
            let result = changes
                .iter()
                .try_for_each(|(key, value)| log.set_server_ban(key, value.as_deref()));
            let _ = inbox.try_send(Command::ServerBanStored {
                answer: answer.map(Box::new),
                changes,
                result,
            });
        })
        .detach();
    }

    /// Server bans were stored (or could not be).
    pub(super) fn server_ban_stored(
        &mut self,
        answer: Option<Box<BanAnswer>>,
        changes: Vec<(String, Option<String>)>,
        result: Result<(), LogError>,
    ) {
        if let Err(err) = result {
            tracing::error!(%err, "cannot store a server ban");
            match answer.map(|answer| *answer) {
                Some(BanAnswer::Member(conn, _)) => self.error(
                    conn,
                    ErrorCode::Unavailable,
                    "the ban cannot be stored now; try again later".into(),
                    None,
                    None,
                ),
                Some(BanAnswer::Operator(reply, _)) => {
                    let _ = reply.try_send(Reply::failed(format!("cannot store it: {err}")));
                }
                None => {}
            }
            return;
        }
        match answer.map(|answer| *answer) {
            Some(BanAnswer::Member(conn, frame)) => {
                match &frame {
                    ServerFrame::Ban {
                        by,
                        name,
                        message,
                        until,
                        ..
                    } => tracing::info!(conn, by, name, ?message, ?until, "server ban set"),
                    ServerFrame::Unban { by, name, .. } => {
                        tracing::info!(conn, by, name, "server ban lifted");
                    }
                    _ => {}
                }
                self.tell(conn, &frame);
            }
            Some(BanAnswer::Operator(reply, keys)) => {
                tracing::info!(?keys, "server ban lifted by the operator");
                let _ = reply.try_send(Reply::Unbanned { keys });
            }
            None => {}
        }
        for (key, value) in changes {
            self.server_ban_changed(&key, value.as_deref());
        }
    }

    /// A server ban was set or lifted (here, or on another node): it is in force from now
    /// on, and the sessions here it bans are closed (`closing` `banned`); a name banned
    /// with its address bans the address of its session here too.
    pub(super) fn server_ban_changed(&mut self, key: &str, value: Option<&str>) {
        let Some((banned, ban)) = self.server_bans.apply(key, value) else {
            return;
        };
        let now = now_millis();
        if !ban.in_force(now) {
            return;
        }
        let closed: Vec<ConnId> = match banned {
            Banned::Name(_) => {
                let keys = match chat_shared::Name::parse(&ban.name) {
                    Ok(name) => name.keys(),
                    Err(_) => return,
                };
                self.registry
                    .holder(&keys)
                    .map(|(conn, _)| conn)
                    .into_iter()
                    .collect()
            }
            Banned::Address(ip) => self
                .registry
                .sorted()
                .filter(|(_, member)| member.ip == ip)
                .map(|(conn, _)| conn)
                .collect(),
        };
        for conn in closed {
            let Some(ip) = self.registry.get(conn).map(|m| m.ip) else {
                continue;
            };
            if ban.address && self.server_bans.of_address(ip, now).is_none() {
                let value = serde_json::to_string(&ban).unwrap_or_default();
                self.server_bans
                    .apply(&Banned::Address(ip).key(), Some(&value));
                self.store_server_bans(None, vec![(Banned::Address(ip).key(), Some(value))]);
            }
            self.close_banned(conn, &ban);
        }
    }

    /// Closes a session a server ban holds: `closing` `banned`, and it leaves its rooms.
    fn close_banned(&mut self, conn: ConnId, ban: &ServerBan) {
        let message = ban
            .message
            .clone()
            .unwrap_or_else(|| "you are banned from this server".into());
        let closing = Frame::encode(&ServerFrame::Closing {
            code: CloseCode::Banned,
            message,
        });
        self.close_member(conn, closing, LeaveReason::Banned);
    }

    /// Every server ban as stored, read again (a node that subscribes again may have
    /// missed changes): those in force hold from now on.
    pub(super) fn server_bans_read(&mut self, stored: Vec<(String, String)>) {
        let lifted: Vec<String> = self
            .server_bans
            .keys()
            .filter(|key| !stored.iter().any(|(stored, _)| stored == key))
            .collect();
        for key in lifted {
            self.server_bans.apply(&key, None);
        }
        for (key, value) in stored {
            self.server_ban_changed(&key, Some(&value));
        }
    }

    /// Sends `invited` to an account's connection here.
    pub(super) fn tell_invited(&self, folded: &str, key: &Arc<str>, by: String) {
        if let Some(conn) = self.registry.online_conn(folded) {
            let room = self.rooms.name(key).to_string();
            self.tell(conn, &ServerFrame::Invited { room, by });
        }
    }
}

/// The room a place names, for an `error`.
pub(super) fn place_room(place: &Place) -> Option<&str> {
    match place {
        Place::Room(room) => Some(room.as_str()),
        Place::With(_) => None,
    }
}
