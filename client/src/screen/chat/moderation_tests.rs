//! Moderation on the Chat screen, in a headless window (see `crate::testing`): the topic
//! bar, the menus offered only to those allowed, the ban form, the room's settings, each
//! slash command, deleting, and what the moderated see.

use std::collections::BTreeMap;

use chat_shared::{ClientFrame, Days, ErrorCode, LeaveReason, Restriction, Role, ServerFrame};
use iced::keyboard::key;

use super::moderation::{self, INVITE, INVITE_ONLY, Kind, RETAIN, TOPIC};
use crate::app::Message as AppMessage;
use crate::connection::Command;
use crate::testing::{NOON, Window, room_message, session_in};

/// "me", logged in to an account (or, with `admin`, an administrator's), in general,
/// where `roles` hold and troll, bob and alice are online with a message from troll.
fn moderated(roles: &[(&str, Role)], admin: bool) -> Window {
    let mut session = session_in(&["general"]);
    session.account = true;
    session.admin = admin;
    let mut window = Window::chat(&session);
    window.receive([
        answer(roles, "Rust talk", Vec::new()),
        room_message("general", 1, "troll", "buy cheap pills"),
    ]);
    window.commands_sent();
    window
}

/// The `room` answer for general.
fn answer(roles: &[(&str, Role)], topic: &str, bans: Vec<Restriction>) -> ServerFrame {
    ServerFrame::Room {
        room: "general".into(),
        users: ["me", "alice", "bob", "troll"].map(String::from).to_vec(),
        seq: 0,
        oldest: 0,
        state: chat_shared::RoomState {
            topic: (!topic.is_empty()).then(|| topic.to_string()),
            roles: roles
                .iter()
                .map(|(name, role)| ((*name).to_string(), *role))
                .collect::<BTreeMap<_, _>>(),
            bans,
            ..chat_shared::RoomState::default()
        },
        read: 0,
    }
}

fn act(window: &mut Window, message: moderation::Message) {
    window.message(AppMessage::Chat(super::Message::Moderation(message)));
}

/// The frames the app sent.
fn sent(window: &Window) -> Vec<ClientFrame> {
    window
        .commands_sent()
        .into_iter()
        .filter_map(|command| match command {
            Command::Send(frame) => Some(frame),
            _ => None,
        })
        .collect()
}

/// Types a line in the input and presses Enter.
fn enter(window: &mut Window, line: &str) {
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text(line);
    window.press(key::Named::Enter);
}

/// Clicks the invite-only switch, left of what it says.
fn click_switch(window: &mut Window) {
    let label = window.bounds_of(INVITE_ONLY).expect("the switch's words");
    window.point_at(iced::Point::new(label.x - 20.0, label.center_y()));
    window.click();
}

fn chat(window: &Window) -> &super::Chat {
    window.app.chat_screen().expect("on the Chat screen")
}

#[test]
fn the_topic_is_under_the_title_and_owners_and_ops_edit_it_in_place() {
    let mut window = moderated(&[("me", Role::Op)], false);
    assert!(window.shows("Rust talk"));
    window.click_on("Rust talk");
    assert!(
        window.find(iced_test::selector::id(TOPIC)).is_some(),
        "a field now"
    );
    window.click_on(iced_test::selector::id(TOPIC));
    window.press(key::Named::End);
    for _ in 0.."Rust talk".len() {
        window.press(key::Named::Backspace);
    }
    window.type_text("Borrow checker Q&A");
    window.press(key::Named::Enter);
    assert_eq!(
        sent(&window),
        [ClientFrame::Topic {
            room: "general".into(),
            text: "Borrow checker Q&A".into()
        }]
    );
    window.receive([ServerFrame::Topic {
        room: "general".into(),
        seq: 2,
        time: NOON + 2000,
        by: "me".into(),
        text: "Borrow checker Q&A".into(),
    }]);
    assert!(window.shows("me set the topic: Borrow checker Q&A"));
    assert!(
        window.find(iced_test::selector::id(TOPIC)).is_none(),
        "saved"
    );

    // A member sees the topic and cannot edit it; with none, nothing shows.
    let mut window = moderated(&[], false);
    window.click_on("Rust talk");
    assert!(window.find(iced_test::selector::id(TOPIC)).is_none());
    window.receive([ServerFrame::Topic {
        room: "general".into(),
        seq: 2,
        time: NOON + 2000,
        by: "alice".into(),
        text: String::new(),
    }]);
    assert!(!window.shows("Set a topic"), "only for those who may");
}

#[test]
fn member_menus_are_offered_only_to_those_allowed() {
    // A member: no menu anywhere, no room settings, no message actions.
    let mut window = moderated(&[("alice", Role::Owner)], false);
    assert!(window.find("…").is_none(), "no menu for a member");
    assert!(!window.shows("Room settings"));
    assert!(chat(&window).member_actions("troll").is_empty());

    // An op: on troll, not on the owner; no roles to give.
    let mut window = moderated(&[("alice", Role::Owner), ("me", Role::Op)], false);
    assert!(window.shows("owner") && window.shows("op"), "the badges");
    let labels = |window: &Window, name: &str| -> Vec<String> {
        chat(window)
            .member_actions(name)
            .into_iter()
            .map(|(label, _)| label)
            .collect()
    };
    assert_eq!(labels(&window, "troll"), ["Remove", "Ban…", "Mute…"]);
    assert!(labels(&window, "alice").is_empty(), "an op on an owner");
    assert!(labels(&window, "me").is_empty(), "not on oneself");
    act(
        &mut window,
        moderation::Message::MemberMenu(Some("troll".into())),
    );
    assert!(window.shows("Ban…"));
    window.click_on("Remove");
    assert_eq!(
        sent(&window),
        [ClientFrame::Remove {
            room: "general".into(),
            name: "troll".into(),
            message: None
        }]
    );

    // An owner gives roles; an administrator may ban from the server.
    let window = moderated(&[("me", Role::Owner), ("bob", Role::Op)], false);
    assert!(labels(&window, "bob").contains(&"Remove op".to_string()));
    assert!(labels(&window, "troll").contains(&"Make op".to_string()));
    assert!(!labels(&window, "troll").contains(&"Ban from server…".to_string()));
    let window = moderated(&[], true);
    assert!(labels(&window, "troll").contains(&"Ban from server…".to_string()));
    assert!(labels(&window, "alice").contains(&"Make owner".to_string()));
}

#[test]
fn the_ban_form_sends_the_reason_and_how_long() {
    let mut window = moderated(&[("me", Role::Op)], false);
    act(
        &mut window,
        moderation::Message::Restrict(Kind::Ban, "troll".into()),
    );
    assert!(window.shows("Ban troll from the room"));
    window.type_text("spam");
    window.click_on("Ban");
    assert_eq!(
        sent(&window),
        [ClientFrame::Ban {
            room: Some("general".into()),
            name: "troll".into(),
            message: Some("spam".into()),
            minutes: Some(24 * 60),
            address: false
        }]
    );
    assert!(!window.shows("Ban troll from the room"), "closed");

    // A server ban, with the address.
    let mut window = moderated(&[], true);
    act(
        &mut window,
        moderation::Message::Restrict(Kind::ServerBan, "troll".into()),
    );
    act(
        &mut window,
        moderation::Message::Length(moderation::Length::Forever),
    );
    window.click_on("Ban the address they connect from too");
    window.click_on("Ban");
    assert_eq!(
        sent(&window),
        [ClientFrame::Ban {
            room: None,
            name: "troll".into(),
            message: None,
            minutes: None,
            address: true
        }]
    );
}

#[test]
fn the_rooms_settings_for_owners_and_ops() {
    let ban = Restriction {
        name: "troll".into(),
        by: "alice".into(),
        message: Some("spam".into()),
        until: None,
    };
    let mut window = moderated(&[("me", Role::Owner)], false);
    window.receive([answer(&[("me", Role::Owner)], "", vec![ban])]);
    window.click_on("Room settings");
    assert!(window.shows("#general settings"));
    assert!(window.shows("troll for good (by alice): spam"));
    window.click_on("Unban");
    window.click_on(iced_test::selector::id(INVITE));
    window.type_text("dave");
    window.click_on("Invite");
    click_switch(&mut window);
    assert_eq!(
        sent(&window),
        [
            ClientFrame::Unban {
                room: Some("general".into()),
                name: "troll".into()
            },
            ClientFrame::Invite {
                room: "general".into(),
                name: "dave".into()
            },
            ClientFrame::Settings {
                room: "general".into(),
                invite_only: true,
                retain_days: None,
            },
        ]
    );
    // An op invites and lifts bans, but the switch is the owners'.
    let mut window = moderated(&[("me", Role::Op)], false);
    window.click_on("Room settings");
    click_switch(&mut window);
    assert!(sent(&window).is_empty());
}

#[test]
fn an_owner_sets_how_long_the_room_keeps_its_history() {
    let mut window = moderated(&[("me", Role::Owner)], false);
    window.click_on("Room settings");
    assert!(window.shows("The room keeps its history as long as the server does."));
    window.click_on(iced_test::selector::id(RETAIN));
    window.type_text("soon");
    window.click_on("Set");
    assert!(
        window.shows(crate::model::command::DAYS_HINT),
        "a hint, nothing sent"
    );
    assert!(sent(&window).is_empty());
    window.click_on(iced_test::selector::id(RETAIN));
    for _ in 0.."soon".len() {
        window.press(key::Named::Backspace);
    }
    window.type_text("0.5");
    window.click_on("Set");
    assert_eq!(
        sent(&window),
        [ClientFrame::Settings {
            room: "general".into(),
            invite_only: false,
            retain_days: Days::limit(0.5).ok().flatten(),
        }]
    );
    window.receive([ServerFrame::Settings {
        room: "general".into(),
        seq: 9,
        time: 1,
        by: "me".into(),
        invite_only: false,
        retain_days: Days::limit(0.5).ok().flatten(),
    }]);
    assert!(window.shows("The room keeps its history for 12.0 hours."));
    // The slash command says the same.
    for (line, days) in [
        ("/retain 30", Days::limit(30.0).ok().flatten()),
        ("/retain off", Some(Days::no_limit())),
    ] {
        enter(&mut window, line);
        let frame = ClientFrame::Settings {
            room: "general".into(),
            invite_only: false,
            retain_days: days,
        };
        assert_eq!(sent(&window), [frame], "{line}");
    }
    // A member sees it, and has nothing to set it with.
    let mut window = moderated(&[("me", Role::Op)], false);
    window.click_on("Room settings");
    assert!(!window.shows("Set"));
}

#[test]
fn each_moderators_command_sends_its_frame() {
    let mut window = moderated(&[("me", Role::Owner)], false);
    let room = || "general".to_string();
    for (line, frame) in [
        (
            "/topic Rust talk",
            ClientFrame::Topic {
                room: room(),
                text: "Rust talk".into(),
            },
        ),
        (
            "/kick troll calm down",
            ClientFrame::Remove {
                room: room(),
                name: "troll".into(),
                message: Some("calm down".into()),
            },
        ),
        (
            "/ban troll 60 spam",
            ClientFrame::Ban {
                room: Some(room()),
                name: "troll".into(),
                message: Some("spam".into()),
                minutes: Some(60),
                address: false,
            },
        ),
        (
            "/unban troll",
            ClientFrame::Unban {
                room: Some(room()),
                name: "troll".into(),
            },
        ),
        (
            "/mute troll 5",
            ClientFrame::Mute {
                room: room(),
                name: "troll".into(),
                minutes: Some(5),
            },
        ),
        (
            "/unmute troll",
            ClientFrame::Unmute {
                room: room(),
                name: "troll".into(),
            },
        ),
        (
            "/op bob",
            ClientFrame::Role {
                room: room(),
                name: "bob".into(),
                role: Role::Op,
            },
        ),
        (
            "/deop bob",
            ClientFrame::Role {
                room: room(),
                name: "bob".into(),
                role: Role::Member,
            },
        ),
        (
            "/invite dave",
            ClientFrame::Invite {
                room: room(),
                name: "dave".into(),
            },
        ),
        (
            "/private on",
            ClientFrame::Settings {
                room: room(),
                invite_only: true,
                retain_days: None,
            },
        ),
    ] {
        enter(&mut window, line);
        assert_eq!(sent(&window), [frame], "{line}");
        assert_eq!(chat(&window).input(), "", "{line}: the input is emptied");
    }
    // The help lists them.
    enter(&mut window, "/help");
    assert!(window.shows("/ban name [minutes] [reason]"));
}

#[test]
fn deleting_asks_first_and_the_message_reads_deleted_in_place() {
    let mut window = moderated(&[("me", Role::Op)], false);
    window.receive([room_message("general", 2, "me", "oops, my phone number")]);
    // Actions show on a right click (or "…" under the pointer).
    act(&mut window, moderation::Message::MessageMenu(Some(2)));
    // In a busy room the log holds still while the menu is open.
    window.receive((3..40).map(|i| room_message("general", i, "bob", &format!("busy {i}"))));
    assert!(
        chat(&window).away_from_latest(),
        "not following while a menu is open"
    );
    window.click_on("Delete");
    assert!(window.shows("Delete this message?"));
    assert!(sent(&window).is_empty(), "nothing before the confirmation");
    window.click_on("Delete");
    assert_eq!(
        sent(&window),
        [ClientFrame::Delete {
            room: Some("general".into()),
            with: None,
            seq: 2
        }]
    );
    window.receive([ServerFrame::Deleted {
        room: Some("general".into()),
        with: None,
        seq: 40,
        time: NOON + 40_000,
        by: "me".into(),
        target: 2,
    }]);
    assert!(window.shows("message deleted"));
    assert!(!window.shows("oops, my phone number"));
    // A member may delete only their own.
    let window = moderated(&[], false);
    let message = crate::model::ChatMessage {
        seq: 1,
        time: NOON,
        from: "troll".into(),
        text: "buy cheap pills".into(),
        links: Vec::new(),
        mine: false,
        mention: false,
        action: false,
        deleted: false,
        reply_to: None,
        edited: None,
        reactions: Vec::new(),
    };
    assert!(!chat(&window).may_delete(&message));
}

#[test]
fn what_the_moderated_see() {
    let mut window = moderated(&[("alice", Role::Owner)], false);
    // Muted: the post comes back to the input, and why shows under it.
    enter(&mut window, "let me speak");
    let id = window
        .commands_sent()
        .into_iter()
        .find_map(|command| match command {
            Command::Say { id, .. } => Some(id),
            _ => None,
        })
        .expect("posted");
    window.receive([ServerFrame::Error {
        room: Some("general".into()),
        code: ErrorCode::Muted,
        message: "you are muted in general: you may read, not post".into(),
        id: Some(id),
        retry_after: None,
        until: None,
    }]);
    assert_eq!(chat(&window).input(), "let me speak", "nothing lost");
    assert!(window.shows("You are muted in #general for good: you may read, not post."));
    window.press(key::Named::Enter);
    assert!(window.commands_sent().is_empty(), "not sent while muted");

    // Removed: the room stays, greyed, with a Join button, and says why.
    window.receive([ServerFrame::Left {
        room: Some("general".into()),
        seq: 2,
        time: NOON + 2000,
        name: "me".into(),
        reason: LeaveReason::Removed,
        by: Some("alice".into()),
        message: Some("spam".into()),
    }]);
    assert!(window.shows("You were removed from #general by alice: spam. Join it again to post."));
    assert!(window.shows("alice removed me (spam)"));
    window.click_on("Join");
    assert_eq!(
        window.commands_sent(),
        [Command::Join {
            room: "general".into()
        }]
    );
    // Banned when joining: why, and until when.
    window.receive([ServerFrame::Error {
        room: Some("general".into()),
        code: ErrorCode::Banned,
        message: "spam".into(),
        id: None,
        retry_after: None,
        until: None,
    }]);
    assert!(window.shows("You are banned from #general for good: spam"));

    // An invitation: in the sidebar, with Join.
    window.receive([ServerFrame::Invited {
        room: "secret".into(),
        by: "alice".into(),
    }]);
    assert!(window.shows("#secret from alice"));
    act(&mut window, moderation::Message::Join("secret".into()));
    assert!(window.commands_sent().iter().any(|command| matches!(
        command,
        Command::Join { room } if room == "secret"
    )));
    assert!(!window.shows("#secret from alice"), "used");
}

/// Put out, joined again, then banned: the room says so again.
#[test]
fn put_out_again_after_joining_again() {
    let mut window = moderated(&[("alice", Role::Owner)], false);
    let left = |seq: u64, reason| ServerFrame::Left {
        room: Some("general".into()),
        seq,
        time: NOON + seq * 1000,
        name: "me".into(),
        reason,
        by: Some("alice".into()),
        message: Some("spam".into()),
    };
    window.receive([left(2, LeaveReason::Removed)]);
    act(&mut window, moderation::Message::Join("general".into()));
    let mut again = answer(&[("alice", Role::Owner)], "", Vec::new());
    if let ServerFrame::Room { seq, .. } = &mut again {
        *seq = 2;
    }
    window.receive([
        again,
        ServerFrame::Joined {
            room: Some("general".into()),
            seq: 3,
            time: NOON + 3000,
            name: "me".into(),
        },
    ]);
    assert!(chat(&window).cannot_post().is_none());
    window.receive([left(4, LeaveReason::Banned)]);
    assert!(
        chat(&window)
            .cannot_post()
            .is_some_and(|why| why.starts_with("You were banned from #general by alice: spam")),
        "{:?}",
        chat(&window).room().map(|r| &r.out)
    );
}
