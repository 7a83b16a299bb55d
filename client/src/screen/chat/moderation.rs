//! Moderation on the Chat screen: the topic under the room's title (edited in place by
//! owners and ops), a member's menu (remove, ban, mute, roles, and for administrators a
//! server ban), a message's actions (delete, after a confirmation), the room's settings
//! (invite-only, invitations, bans and mutes), invitations to other rooms, and the
//! moderators' slash commands. Each action is offered only to those allowed; the server
//! checks again.

use std::collections::BTreeMap;

use chat_shared::{ClientFrame, Name, Restriction, Role};
use iced::widget::{
    Column, button, checkbox, column, container, pick_list, row, scrollable, text, text_input,
    toggler,
};
use iced::{Center, Element, Fill, Task};

use super::{Chat, Message as ChatMessage, Status};
use crate::model::command::Step;
use crate::model::text::{now_millis, until_words};
use crate::model::{Joined, Moderation, Power, Tone};
use crate::screen::style::{bold, muted, unique_style};

/// The id of the topic's field while it is edited.
pub const TOPIC: &str = "topic-input";
/// The id of the reason's field of a ban or a mute.
pub const REASON: &str = "restrict-reason";
/// What the invite-only switch says.
pub const INVITE_ONLY: &str = "Invite-only: only the invited, and those with a role, may join";
/// The id of the field that invites an account, in the room's settings.
pub const INVITE: &str = "settings-invite";
/// The id of the settings' input of how many days the room keeps its history.
pub const RETAIN: &str = "settings-retain";

/// What the user did about moderation.
#[derive(Debug, Clone)]
pub enum Message {
    /// Clicked the topic (or "Set a topic"): edit it in place.
    EditTopic,
    /// Typed in the topic.
    TopicChanged(String),
    /// Enter in the topic: set it.
    SaveTopic,
    /// Opened (or closed, `None`) a member's menu.
    MemberMenu(Option<String>),
    /// Put a member out of the room.
    Remove(String),
    /// Opened the form that bans or mutes a name.
    Restrict(Kind, String),
    /// Typed the reason.
    Reason(String),
    /// Chose how long.
    Length(Length),
    /// Ticked "ban the address too".
    Address(bool),
    /// Confirmed the ban or the mute.
    ConfirmRestrict,
    /// Gave a role.
    SetRole(String, Role),
    /// Lifted a ban.
    Unban(String),
    /// Lifted a mute.
    Unmute(String),
    /// The pointer came over a message.
    Hover(u64),
    /// The pointer left a message.
    Unhover(u64),
    /// Opened (or closed) a message's actions.
    MessageMenu(Option<u64>),
    /// "Delete" on a message: asks to confirm.
    AskDelete(u64),
    /// Confirmed the deletion.
    ConfirmDelete,
    /// Opened or closed the room's settings.
    RoomSettings(bool),
    /// Switched invite-only.
    InviteOnly(bool),
    /// Typed how many days the room keeps its history.
    RetainDays(String),
    /// Set it (empty: as long as the server keeps it).
    Retain,
    /// Typed the name to invite.
    InviteName(String),
    /// Invited it.
    Invite,
    /// Joined a room from its invitation, or one the user was put out of.
    Join(String),
    /// Forgot an invitation.
    DismissInvitation(String),
    /// Closed a dialog.
    Close,
}

/// What a restriction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ban from the room.
    Ban,
    /// Mute in the room.
    Mute,
    /// Ban from the whole server (administrators).
    ServerBan,
}

/// How long a ban or a mute lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// An hour.
    Hour,
    /// A day.
    Day,
    /// Until lifted.
    Forever,
}

impl Length {
    const ALL: [Length; 3] = [Length::Hour, Length::Day, Length::Forever];

    fn minutes(self) -> Option<u64> {
        match self {
            Length::Hour => Some(60),
            Length::Day => Some(24 * 60),
            Length::Forever => None,
        }
    }
}

impl std::fmt::Display for Length {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Length::Hour => "1 hour",
            Length::Day => "1 day",
            Length::Forever => "until lifted",
        })
    }
}

/// A ban or a mute being filled in.
#[derive(Debug, Clone)]
struct Restrict {
    kind: Kind,
    name: String,
    reason: String,
    length: Length,
    address: bool,
}

/// A dialog of moderation over the screen.
#[derive(Debug, Clone)]
enum Dialog {
    Restrict(Restrict),
    /// The room, the message's seq, and what it says (for the confirmation).
    Delete(String, u64, String),
    Settings,
}

/// The screen's moderation state.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The topic being edited, if it is.
    topic: Option<String>,
    member_menu: Option<String>,
    hovered: Option<u64>,
    message_menu: Option<u64>,
    dialog: Option<Dialog>,
    invite_name: String,
    /// The days typed in the settings, and why they are not a number of days, if not.
    retain_days: String,
    retain_hint: Option<String>,
}

impl State {
    /// Whether a dialog of its own is open.
    pub fn has_dialog(&self) -> bool {
        self.dialog.is_some()
    }

    /// Escape: closes what is open (a dialog, a menu, the topic's field); says whether
    /// something was.
    pub fn escape(&mut self) -> bool {
        let open = self.dialog.is_some()
            || self.topic.is_some()
            || self.member_menu.is_some()
            || self.message_menu.is_some();
        self.dialog = None;
        self.topic = None;
        self.member_menu = None;
        self.message_menu = None;
        open
    }

    /// Closes a message's actions (one of them was chosen).
    pub fn close_message_menu(&mut self) {
        self.message_menu = None;
    }

    /// Another room is shown: nothing of the last one stays open.
    pub fn shown_changed(&mut self) {
        self.escape();
        self.hovered = None;
    }

    /// The member whose menu is open.
    pub fn member_menu(&self) -> Option<&str> {
        self.member_menu.as_deref()
    }

    /// The message whose actions show: the one under the pointer, or whose menu is open.
    pub fn message_shown(&self) -> (Option<u64>, Option<u64>) {
        (self.hovered, self.message_menu)
    }
}

impl Chat {
    /// What the user may do in the room shown.
    pub(super) fn power(&self) -> Power {
        self.rooms.active().map_or(Power::Member, |joined| {
            joined
                .room
                .moderation
                .power(self.rooms.me(), self.account, self.admin)
        })
    }

    /// What the user may do to a member of the room shown, as menu entries.
    pub(super) fn member_actions(&self, name: &str) -> Vec<(String, ChatMessage)> {
        let Some(joined) = self.rooms.active() else {
            return Vec::new();
        };
        let room = &joined.room.moderation;
        let power = self.power();
        let me = chat_shared::fold(self.rooms.me()) == chat_shared::fold(name);
        let mut actions = Vec::new();
        let act = |m: Message| ChatMessage::Moderation(m);
        if !me && room.may_act_on(power, name) {
            actions.push(("Remove".to_string(), act(Message::Remove(name.into()))));
            actions.push((
                "Ban…".into(),
                act(Message::Restrict(Kind::Ban, name.into())),
            ));
            if room.mute_of(name, now_millis()).is_some() {
                actions.push(("Unmute".into(), act(Message::Unmute(name.into()))));
            } else {
                actions.push((
                    "Mute…".into(),
                    act(Message::Restrict(Kind::Mute, name.into())),
                ));
            }
        }
        if power >= Power::Owner && !me {
            match room.role(name) {
                Role::Op => actions.push((
                    "Remove op".into(),
                    act(Message::SetRole(name.into(), Role::Member)),
                )),
                Role::Owner => actions.push((
                    "Remove owner".into(),
                    act(Message::SetRole(name.into(), Role::Member)),
                )),
                Role::Member | Role::Unknown => {
                    actions.push((
                        "Make op".into(),
                        act(Message::SetRole(name.into(), Role::Op)),
                    ));
                    actions.push((
                        "Make owner".into(),
                        act(Message::SetRole(name.into(), Role::Owner)),
                    ));
                }
            }
        }
        if self.admin && !me {
            actions.push((
                "Ban from server…".into(),
                act(Message::Restrict(Kind::ServerBan, name.into())),
            ));
        }
        actions
    }

    /// Whether the user may delete a message of the room shown: their own (from an
    /// account), or anyone's as an owner or op (not an owner's, as an op).
    pub(super) fn may_delete(&self, message: &crate::model::ChatMessage) -> bool {
        if message.deleted {
            return false;
        }
        let Some(joined) = self.rooms.active() else {
            return false;
        };
        if message.mine {
            return self.account;
        }
        !joined.is_direct()
            && joined
                .room
                .moderation
                .may_act_on(self.power(), &message.from)
    }

    /// Sends a frame about the room shown, if connected; says whether it went.
    fn send_step(&mut self, frame: impl FnOnce(String) -> ClientFrame) -> bool {
        let Some(room) = self.rooms.active().map(|joined| joined.room.name.clone()) else {
            return false;
        };
        if self.status != Status::Online {
            self.rooms
                .notice("Not connected: try again once reconnected.", Tone::Problem);
            return false;
        }
        self.handle.send(frame(room));
        true
    }

    /// A moderator's slash command (the room shown).
    pub(super) fn moderate(&mut self, step: Step) {
        let room_only = self.rooms.active().is_some_and(Joined::is_direct);
        if room_only {
            self.hint = Some("That works in rooms, not in direct conversations.".into());
            return;
        }
        self.composer.take();
        self.hint = None;
        let invite_only = self.invite_only_now();
        self.send_step(|room| frame_of(room, invite_only, step));
    }

    /// Sets the retention typed in the room's settings, or says why it is not one.
    fn set_retention(&mut self) {
        let asked = crate::model::command::retention(&self.moderation_state.retain_days);
        match asked {
            Ok(days) => {
                let invite_only = self.invite_only_now();
                self.send_step(|room| frame_of(room, invite_only, Step::Retain(days)));
            }
            Err(hint) => self.moderation_state.retain_hint = Some(hint),
        }
    }

    /// Whether the room shown is invite-only (a `settings` frame says it, whatever else
    /// it changes).
    fn invite_only_now(&self) -> bool {
        self.rooms
            .active()
            .is_some_and(|joined| joined.room.moderation.invite_only)
    }

    /// Handles a moderation message.
    pub(super) fn moderation(&mut self, message: Message) -> Task<ChatMessage> {
        match message {
            Message::EditTopic => {
                let topic = self
                    .rooms
                    .active()
                    .map(|joined| joined.room.moderation.topic.clone())
                    .unwrap_or_default();
                self.moderation_state.topic = Some(topic);
                return iced::widget::operation::focus(TOPIC);
            }
            Message::TopicChanged(topic) => {
                if self.moderation_state.topic.is_some() {
                    self.moderation_state.topic = Some(topic);
                }
            }
            Message::SaveTopic => {
                if let Some(topic) = self.moderation_state.topic.take() {
                    self.send_step(|room| ClientFrame::Topic {
                        room,
                        text: topic.trim().to_string(),
                    });
                }
                return iced::widget::operation::focus(super::INPUT);
            }
            Message::MemberMenu(name) => self.moderation_state.member_menu = name,
            Message::Remove(name) => {
                self.moderation_state.member_menu = None;
                self.send_step(|room| ClientFrame::Remove {
                    room,
                    name,
                    message: None,
                });
            }
            Message::SetRole(name, role) => {
                self.moderation_state.member_menu = None;
                self.send_step(|room| ClientFrame::Role { room, name, role });
            }
            Message::Unban(name) => {
                self.send_step(|room| ClientFrame::Unban {
                    room: Some(room),
                    name,
                });
            }
            Message::Unmute(name) => {
                self.moderation_state.member_menu = None;
                self.send_step(|room| ClientFrame::Unmute { room, name });
            }
            Message::Hover(seq) => self.moderation_state.hovered = Some(seq),
            Message::Unhover(seq) => {
                if self.moderation_state.hovered == Some(seq) {
                    self.moderation_state.hovered = None;
                }
            }
            Message::MessageMenu(seq) => {
                self.moderation_state.message_menu = seq;
                if seq.is_some()
                    && let Some((joined, view)) = self.active_mut()
                {
                    view.log.hold(&joined.room.timeline);
                }
            }
            Message::Join(room) => {
                self.join(&room);
                return iced::widget::operation::focus(super::INPUT);
            }
            Message::DismissInvitation(room) => self.rooms.dismiss_invitation(&room),
            message => return self.moderation_dialog_message(message),
        }
        Task::none()
    }

    /// A message of a moderation dialog: the form of a ban or a mute, the confirmation
    /// of a deletion, the room's settings.
    fn moderation_dialog_message(&mut self, message: Message) -> Task<ChatMessage> {
        match message {
            Message::Restrict(kind, name) => {
                self.moderation_state.member_menu = None;
                self.moderation_state.dialog = Some(Dialog::Restrict(Restrict {
                    kind,
                    name,
                    reason: String::new(),
                    length: if kind == Kind::Mute {
                        Length::Hour
                    } else {
                        Length::Day
                    },
                    address: false,
                }));
                return iced::widget::operation::focus(REASON);
            }
            Message::Reason(reason) => {
                if let Some(Dialog::Restrict(form)) = &mut self.moderation_state.dialog {
                    form.reason = reason;
                }
            }
            Message::Length(length) => {
                if let Some(Dialog::Restrict(form)) = &mut self.moderation_state.dialog {
                    form.length = length;
                }
            }
            Message::Address(address) => {
                if let Some(Dialog::Restrict(form)) = &mut self.moderation_state.dialog {
                    form.address = address;
                }
            }
            Message::ConfirmRestrict => return self.confirm_restrict(),
            Message::AskDelete(seq) => {
                self.moderation_state.message_menu = None;
                if let Some((room, preview)) = self.message_preview(seq) {
                    self.moderation_state.dialog = Some(Dialog::Delete(room, seq, preview));
                }
            }
            Message::ConfirmDelete => {
                if let Some(Dialog::Delete(room, seq, _)) = self.moderation_state.dialog.take() {
                    let direct = crate::model::direct_with(&room).map(str::to_string);
                    self.send_step(|_| match direct {
                        Some(with) => ClientFrame::Delete {
                            room: None,
                            with: Some(with),
                            seq,
                        },
                        None => ClientFrame::Delete {
                            room: Some(room),
                            with: None,
                            seq,
                        },
                    });
                }
                return iced::widget::operation::focus(super::INPUT);
            }
            Message::RoomSettings(open) => {
                self.moderation_state.dialog = open.then_some(Dialog::Settings);
                self.moderation_state.invite_name.clear();
                self.moderation_state.retain_days = self
                    .rooms
                    .active()
                    .and_then(|joined| joined.room.moderation.retain_days)
                    .map(|days| days.to_string())
                    .unwrap_or_default();
                self.moderation_state.retain_hint = None;
            }
            Message::InviteOnly(invite_only) => {
                self.send_step(|room| ClientFrame::Settings {
                    room,
                    invite_only,
                    retain_days: None,
                });
            }
            Message::RetainDays(days) => {
                self.moderation_state.retain_days = days;
                self.moderation_state.retain_hint = None;
            }
            Message::Retain => self.set_retention(),
            Message::InviteName(name) => self.moderation_state.invite_name = name,
            Message::Invite => {
                let name = self.moderation_state.invite_name.trim().to_string();
                if Name::parse(&name).is_ok() {
                    self.moderation_state.invite_name.clear();
                    self.send_step(|room| ClientFrame::Invite { room, name });
                }
                return iced::widget::operation::focus(INVITE);
            }
            _ => {
                self.moderation_state.dialog = None;
                return iced::widget::operation::focus(super::INPUT);
            }
        }
        Task::none()
    }

    /// A message of the room shown, for the confirmation of its deletion: the room, and
    /// "from: text".
    fn message_preview(&self, seq: u64) -> Option<(String, String)> {
        let joined = self.rooms.active()?;
        let timeline = &joined.room.timeline;
        timeline
            .range(timeline.start()..timeline.end())
            .rev()
            .find_map(|(_, entry)| match entry {
                crate::model::Entry::Message(m) if m.seq == seq => {
                    Some((joined.room.name.clone(), format!("{}: {}", m.from, m.text)))
                }
                _ => None,
            })
    }

    /// Sends the ban or mute the form describes.
    fn confirm_restrict(&mut self) -> Task<ChatMessage> {
        let Some(Dialog::Restrict(form)) = self.moderation_state.dialog.take() else {
            return Task::none();
        };
        let reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
        let minutes = form.length.minutes();
        match form.kind {
            Kind::Ban => self.send_step(|room| ClientFrame::Ban {
                room: Some(room),
                name: form.name,
                message: reason,
                minutes,
                address: false,
            }),
            Kind::Mute => self.send_step(|room| ClientFrame::Mute {
                room,
                name: form.name,
                minutes,
            }),
            Kind::ServerBan => self.send_step(|_| ClientFrame::Ban {
                room: None,
                name: form.name,
                message: reason,
                minutes,
                address: form.address,
            }),
        };
        iced::widget::operation::focus(super::INPUT)
    }

    /// The topic under the room's title: the topic (a button to edit it, for those who
    /// may), its field while edited, or "Set a topic" for those who may and none.
    pub(super) fn topic_line(&self, joined: &Joined) -> Option<Element<'_, ChatMessage>> {
        if joined.is_direct() {
            return None;
        }
        let act = ChatMessage::Moderation;
        if let Some(topic) = &self.moderation_state.topic {
            return Some(
                text_input("Topic (empty clears it)", topic)
                    .id(TOPIC)
                    .on_input(move |t| act(Message::TopicChanged(t)))
                    .on_submit(act(Message::SaveTopic))
                    .size(13)
                    .padding(4)
                    .into(),
            );
        }
        let topic = joined.room.moderation.topic.clone();
        let may = self.power() >= Power::Op && joined.room.out.is_none();
        let words = match (topic.is_empty(), may) {
            (true, false) => return None,
            (true, true) => "Set a topic".to_string(),
            (false, _) => topic,
        };
        let line = text(words.clone())
            .size(13)
            .style(unique_style(muted, &words));
        Some(if may {
            button(line)
                .on_press(act(Message::EditTopic))
                .style(button::text)
                .padding(0)
                .into()
        } else {
            line.into()
        })
    }

    /// The header's button to the room's settings, for owners and ops.
    pub(super) fn settings_button(&self, joined: &Joined) -> Option<Element<'_, ChatMessage>> {
        (!joined.is_direct() && joined.room.out.is_none() && self.power() >= Power::Op).then(|| {
            button(text("Room settings").size(13))
                .on_press(ChatMessage::Moderation(Message::RoomSettings(true)))
                .style(button::text)
                .padding([2, 6])
                .into()
        })
    }

    /// The open moderation dialog, if any.
    pub(super) fn moderation_dialog(&self) -> Option<Element<'_, ChatMessage>> {
        let act = ChatMessage::Moderation;
        Some(match self.moderation_state.dialog.as_ref()? {
            Dialog::Restrict(form) => restrict_card(form),
            Dialog::Delete(_, _, preview) => column![
                text("Delete this message?").size(16).font(bold()),
                text(preview.clone())
                    .size(13)
                    .style(unique_style(muted, preview)),
                text("Its text is erased for everyone; this cannot be undone.").size(13),
                row![
                    button(text("Delete").size(13))
                        .on_press(act(Message::ConfirmDelete))
                        .style(button::danger),
                    button(text("Cancel").size(13))
                        .on_press(act(Message::Close))
                        .style(button::secondary),
                ]
                .spacing(8),
            ]
            .spacing(10)
            .width(420)
            .into(),
            Dialog::Settings => self.settings_card()?,
        })
    }

    /// The room's settings: invite-only (owners), invitations, bans and mutes.
    fn settings_card(&self) -> Option<Element<'_, ChatMessage>> {
        let joined = self.rooms.active()?;
        let room: &Moderation = &joined.room.moderation;
        let act = ChatMessage::Moderation;
        let power = self.power();
        let mut card = Column::new().spacing(10).width(440).push(
            text(format!("#{} settings", joined.room.name))
                .size(16)
                .font(bold()),
        );
        let switch = toggler(room.invite_only);
        let switch = if power >= Power::Owner {
            switch.on_toggle(move |on| act(Message::InviteOnly(on)))
        } else {
            switch
        };
        card = card.push(
            row![switch, text(INVITE_ONLY).size(13).width(Fill),]
                .spacing(8)
                .align_y(Center),
        );
        card = card.push(text("History").size(13).font(bold())).push(
            text(format!(
                "The room keeps {}.",
                crate::model::moderation::retention_words(room.retain_days)
            ))
            .size(13)
            .style(muted),
        );
        if power >= Power::Owner {
            card = card.push(
                row![
                    text_input(
                        "Days (empty: all the server keeps)",
                        &self.moderation_state.retain_days
                    )
                    .id(RETAIN)
                    .on_input(move |d| act(Message::RetainDays(d)))
                    .on_submit(act(Message::Retain))
                    .size(13)
                    .padding(4),
                    button(text("Set").size(13)).on_press(act(Message::Retain)),
                ]
                .spacing(8)
                .align_y(Center),
            );
            if let Some(hint) = &self.moderation_state.retain_hint {
                card = card.push(text(hint).size(12).style(muted));
            }
        }
        card = card.push(text("Invitations").size(13).font(bold())).push(
            row![
                text_input("Account name", &self.moderation_state.invite_name)
                    .id(INVITE)
                    .on_input(move |n| act(Message::InviteName(n)))
                    .on_submit(act(Message::Invite))
                    .size(13)
                    .padding(4),
                button(text("Invite").size(13)).on_press(act(Message::Invite)),
            ]
            .spacing(8)
            .align_y(Center),
        );
        for name in room.invites.values() {
            card = card.push(text(format!("{name}, invited")).size(13).style(muted));
        }
        card = card
            .push(restrictions("Banned", &room.bans, "Unban", Message::Unban))
            .push(restrictions(
                "Muted",
                &room.mutes,
                "Unmute",
                Message::Unmute,
            ));
        card = card.push(
            container(
                button(text("Close").size(13))
                    .on_press(act(Message::RoomSettings(false)))
                    .style(button::secondary),
            )
            .align_right(Fill),
        );
        Some(scrollable(card).into())
    }

    /// Under the input: why the user cannot post in the room shown, if they cannot.
    pub(super) fn cannot_post(&self) -> Option<String> {
        let joined = self.rooms.active()?;
        if let Some(out) = &joined.room.out {
            return Some(format!("{out}. Join it again to post."));
        }
        let mute = joined
            .room
            .moderation
            .mute_of(self.rooms.me(), now_millis())?;
        Some(format!(
            "You are muted in #{} {}: you may read, not post.",
            joined.room.name,
            until_words(mute.until, now_millis())
        ))
    }

    /// The invitations, for the sidebar: the room, who invited, and buttons.
    pub(super) fn invitations_view(&self) -> Option<Element<'_, ChatMessage>> {
        let invitations = self.rooms.invitations();
        if invitations.is_empty() {
            return None;
        }
        let act = ChatMessage::Moderation;
        let mut list = Column::new()
            .spacing(4)
            .push(text("Invitations").size(12).font(bold()).style(muted));
        for (room, by) in invitations {
            let words = format!("#{room} from {by}");
            list = list.push(
                column![
                    text(words.clone())
                        .size(13)
                        .style(unique_style(text::default, &words)),
                    row![
                        button(text("Join").size(12))
                            .on_press(act(Message::Join(room.clone())))
                            .padding([2, 8]),
                        button(text("Dismiss").size(12))
                            .on_press(act(Message::DismissInvitation(room.clone())))
                            .style(button::text)
                            .padding([2, 6]),
                    ]
                    .spacing(4),
                ]
                .spacing(2),
            );
        }
        Some(container(list).padding([6, 8]).into())
    }
}

/// A list of bans or mutes in force, each with the button that lifts it.
fn restrictions<'a>(
    title: &'static str,
    kept: &BTreeMap<String, Restriction>,
    lift: &'static str,
    message: fn(String) -> Message,
) -> Column<'a, ChatMessage> {
    let now = now_millis();
    let mut column = Column::new()
        .spacing(4)
        .push(text(title).size(13).font(bold()));
    let in_force: Vec<&Restriction> = kept
        .values()
        .filter(|r| r.until.is_none_or(|until| now < until))
        .collect();
    if in_force.is_empty() {
        column = column.push(text("None").size(13).style(muted));
    }
    for r in in_force {
        let why = r
            .message
            .as_deref()
            .map_or_else(String::new, |m| format!(": {m}"));
        let words = format!(
            "{} {} (by {}){why}",
            r.name,
            until_words(r.until, now),
            r.by
        );
        column = column.push(
            row![
                text(words).size(13).width(Fill),
                button(text(lift).size(12))
                    .on_press(ChatMessage::Moderation(message(r.name.clone())))
                    .style(button::secondary)
                    .padding([2, 6]),
            ]
            .spacing(8)
            .align_y(Center),
        );
    }
    column
}

/// The frame a slash command sends about `room` (invite-only now, or not).
fn frame_of(room: String, invite_only: bool, step: Step) -> ClientFrame {
    let name = |name: Name| name.as_str().to_string();
    match step {
        Step::Topic(text) => ClientFrame::Topic { room, text },
        Step::Kick(who, message) => ClientFrame::Remove {
            room,
            name: name(who),
            message,
        },
        Step::Ban(who, minutes, message) => ClientFrame::Ban {
            room: Some(room),
            name: name(who),
            message,
            minutes,
            address: false,
        },
        Step::Unban(who) => ClientFrame::Unban {
            room: Some(room),
            name: name(who),
        },
        Step::Mute(who, minutes) => ClientFrame::Mute {
            room,
            name: name(who),
            minutes,
        },
        Step::Unmute(who) => ClientFrame::Unmute {
            room,
            name: name(who),
        },
        Step::Role(who, role) => ClientFrame::Role {
            room,
            name: name(who),
            role,
        },
        Step::Invite(who) => ClientFrame::Invite {
            room,
            name: name(who),
        },
        Step::Private(invite_only) => ClientFrame::Settings {
            room,
            invite_only,
            retain_days: None,
        },
        Step::Retain(days) => ClientFrame::Settings {
            room,
            invite_only,
            retain_days: Some(chat_shared::Days::asked(days)),
        },
    }
}

/// The form of a ban or a mute: why, for how long, and for a server ban the address.
fn restrict_card(form: &Restrict) -> Element<'_, ChatMessage> {
    let act = ChatMessage::Moderation;
    let title = match form.kind {
        Kind::Ban => format!("Ban {} from the room", form.name),
        Kind::Mute => format!("Mute {}", form.name),
        Kind::ServerBan => format!("Ban {} from the server", form.name),
    };
    let mut card = column![text(title).size(16).font(bold())]
        .spacing(10)
        .width(400);
    if form.kind != Kind::Mute {
        card = card.push(
            text_input("Reason (shown to them)", &form.reason)
                .id(REASON)
                .on_input(move |r| act(Message::Reason(r)))
                .on_submit(act(Message::ConfirmRestrict))
                .size(13)
                .padding(4),
        );
    }
    card = card.push(
        row![
            text("For").size(13),
            pick_list(Length::ALL, Some(form.length), move |l| act(
                Message::Length(l)
            ))
            .text_size(13),
        ]
        .spacing(8)
        .align_y(Center),
    );
    if form.kind == Kind::ServerBan {
        card = card.push(
            checkbox(form.address)
                .label("Ban the address they connect from too")
                .on_toggle(move |on| act(Message::Address(on)))
                .text_size(13),
        );
    }
    let verb = if form.kind == Kind::Mute {
        "Mute"
    } else {
        "Ban"
    };
    card.push(
        row![
            button(text(verb).size(13))
                .on_press(act(Message::ConfirmRestrict))
                .style(button::danger),
            button(text("Cancel").size(13))
                .on_press(act(Message::Close))
                .style(button::secondary),
        ]
        .spacing(8),
    )
    .into()
}
