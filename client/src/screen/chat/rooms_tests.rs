//! Rooms on the Chat screen, in a headless window (see `crate::testing`): the sidebar,
//! what is new and what mentions you, each room's place and draft, the slash commands,
//! the list of rooms, and notifications.

use chat_shared::{ClientFrame, RoomUsers, ServerFrame};
use iced::Point;
use iced::keyboard::{self, key};

use crate::app::Message as AppMessage;
use crate::connection::{Command, Event};
use crate::model::Notify;
use crate::testing::{Window, direct_message, room_message, session_in};

fn answer(room: &str, seq: u64) -> ServerFrame {
    ServerFrame::Room {
        room: room.into(),
        users: vec!["me".into(), "bob".into(), "carol".into()],
        seq,
        oldest: u64::from(seq > 0),
        state: chat_shared::RoomState::default(),
        read: 0,
    }
}

fn receive(window: &mut Window, frames: impl IntoIterator<Item = ServerFrame>) {
    window.receive(frames);
}

/// Logged in, in `general` (40 live messages) and `rust` (40 replayed on joining).
fn two_rooms() -> Window {
    let mut window = Window::chat(&session_in(&["general", "rust"]));
    receive(&mut window, [answer("rust", 40)]);
    receive(
        &mut window,
        (1..=40).map(|i| room_message("general", i, "bob", &format!("g{i}"))),
    );
    receive(
        &mut window,
        (1..=40).map(|i| room_message("rust", i, "carol", &format!("r{i}"))),
    );
    window.commands_sent();
    window
}

fn chat(window: &Window) -> &super::Chat {
    window.app.chat_screen().expect("on the Chat screen")
}

fn shown_room(window: &Window) -> String {
    chat(window)
        .room()
        .map(|room| room.name.clone())
        .unwrap_or_default()
}

fn counts(window: &Window, room: &str) -> (usize, usize) {
    chat(window)
        .rooms()
        .get(room)
        .map(|j| (j.unread, j.mentions))
        .expect("a room of mine")
}

/// Types a line in the input and presses Enter.
fn enter(window: &mut Window, line: &str) {
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text(line);
    window.press(key::Named::Enter);
}

#[test]
fn the_sidebar_switches_rooms_and_each_keeps_its_place_and_draft() {
    let mut window = two_rooms();
    assert_eq!(shown_room(&window), "general");
    assert!(window.shows("g40") && !window.shows("r40"));
    // Read back in general, and leave a draft there.
    window.point_at(Point::new(450.0, 300.0));
    window.wheel(8.0);
    assert!(chat(&window).away_from_latest());
    let reading = window.bounds_of("g20").expect("reading around g20");
    enter(&mut window, "");
    window.type_text("half a thought");
    window.click_on("rust");
    assert_eq!(shown_room(&window), "rust");
    assert!(window.shows("r40"), "the other room, at its newest line");
    assert!(!window.shows("g20"));
    assert_eq!(chat(&window).input(), "", "its own (empty) draft");
    assert!(!chat(&window).away_from_latest());
    window.type_text("for rust");
    window.click_on("general");
    assert_eq!(chat(&window).input(), "half a thought");
    assert!(chat(&window).away_from_latest(), "still reading back");
    let back = window.bounds_of("g20").expect("the same lines");
    assert!(
        (back.y - reading.y).abs() < 1.0,
        "at the same place: {back:?} vs {reading:?}"
    );
    // Alt+Down: the room below.
    window.key(
        keyboard::Key::Named(key::Named::ArrowDown),
        keyboard::Modifiers::ALT,
        None,
    );
    assert_eq!(shown_room(&window), "rust");
    assert_eq!(chat(&window).input(), "for rust");
}

#[test]
fn unread_and_mentions_show_in_the_sidebar_until_the_room_is_shown() {
    let mut window = two_rooms();
    receive(
        &mut window,
        [
            room_message("rust", 41, "carol", "anyone?"),
            room_message("rust", 42, "carol", "me, are you there?"),
            room_message("general", 41, "bob", "here, me"),
        ],
    );
    assert_eq!(counts(&window, "rust"), (2, 1));
    assert_eq!(
        counts(&window, "general"),
        (0, 0),
        "shown: nothing is unread"
    );
    assert!(
        window.shows("2") && window.shows("@1"),
        "badges in the sidebar"
    );
    assert!(
        chat(&window)
            .room()
            .is_some_and(|room| room.timeline.last().is_some()),
        "general's mention is highlighted in place"
    );
    window.click_on("rust");
    assert_eq!(counts(&window, "rust"), (0, 0));
    assert!(!window.shows("@1"));
    // Replayed on the first visit of a room: old conversation, not unread.
    enter(&mut window, "/join #go");
    receive(
        &mut window,
        [answer("go", 3)]
            .into_iter()
            .chain((1..=3).map(|i| room_message("go", i, "bob", &format!("old {i}, me")))),
    );
    window.click_on("rust");
    assert_eq!(counts(&window, "go"), (0, 0));
}

#[test]
fn slash_commands() {
    let mut window = two_rooms();
    // /join: the room is made, shown, and the join goes out.
    enter(&mut window, "/join #Games");
    assert_eq!(shown_room(&window), "Games");
    assert_eq!(
        window.commands_sent(),
        [Command::Join {
            room: "Games".into()
        }]
    );
    assert!(window.shows("#Games"), "the header names it");
    // /join of a room I am in: just shown.
    enter(&mut window, "/join RUST");
    assert_eq!(shown_room(&window), "rust");
    assert!(window.commands_sent().is_empty());
    // /me: an action.
    enter(&mut window, "/me waves");
    assert!(matches!(
        window.commands_sent().as_slice(),
        [Command::Say { room: Some(room), text, me: true, .. }] if room == "rust" && text == "waves"
    ));
    assert!(window.shows("* waves"), "the pending action reads as one");
    // //: a line that starts with /.
    enter(&mut window, "//slash");
    assert!(matches!(
        window.commands_sent().as_slice(),
        [Command::Say { text, me: false, .. }] if text == "/slash"
    ));
    // Unknown: a hint, nothing sent, the line stays to be fixed.
    enter(&mut window, "/jion #x");
    assert!(window.commands_sent().is_empty());
    assert_eq!(chat(&window).input(), "/jion #x");
    assert!(chat(&window).hint().is_some_and(|h| h.contains("/help")));
    assert!(
        window.shows(
            chat(&window)
                .hint()
                .unwrap_or_default()
                .to_string()
                .as_str()
        )
    );
    // /part of a room I am not in: a hint.
    let _ = window.app.update(AppMessage::Chat(super::Message::Edit(
        iced::widget::text_editor::Action::SelectAll,
    )));
    window.press(key::Named::Backspace);
    enter(&mut window, "/part #nowhere");
    assert!(window.commands_sent().is_empty());
    assert_eq!(chat(&window).hint(), Some("You are not in #nowhere."));
    // /part: the room shown goes, the next one is shown.
    let _ = window.app.update(AppMessage::Chat(super::Message::Edit(
        iced::widget::text_editor::Action::SelectAll,
    )));
    window.press(key::Named::Backspace);
    enter(&mut window, "/part");
    assert_eq!(
        window.commands_sent(),
        [Command::Part {
            room: "rust".into()
        }]
    );
    assert!(chat(&window).rooms().get("rust").is_none());
    assert_eq!(shown_room(&window), "Games", "the room shown before");
    // /help: the commands and the keys.
    enter(&mut window, "/help");
    assert!(window.shows("Commands") && window.shows("/join #room"));
    window.press(key::Named::Escape);
    assert!(!window.shows("Commands"));
}

#[test]
fn the_rooms_dialog_lists_rooms_and_joins_them() {
    let mut window = two_rooms();
    enter(&mut window, "/rooms");
    assert_eq!(window.commands_sent(), [Command::Send(ClientFrame::Rooms)]);
    assert!(window.shows("Asking the server…"));
    receive(
        &mut window,
        [ServerFrame::RoomList {
            rooms: vec![
                RoomUsers {
                    room: "general".into(),
                    users: 40,
                },
                RoomUsers {
                    room: "music".into(),
                    users: 7,
                },
                RoomUsers {
                    room: "rust".into(),
                    users: 1,
                },
            ],
        }],
    );
    assert!(window.shows("#music") && window.shows("7 people") && window.shows("1 person"));
    assert!(window.shows("Open"), "rooms I am in open instead");
    // Filter, then join with the button.
    window.type_text("mus");
    assert!(!window.shows("40 people"));
    window.click_on("Join");
    assert_eq!(
        window.commands_sent(),
        [Command::Join {
            room: "music".into()
        }]
    );
    assert_eq!(shown_room(&window), "music");
    assert!(!window.shows("7 people"), "the dialog closed");
    // A name nobody uses yet can be made from the field.
    window.click_on("Browse rooms…");
    window.commands_sent();
    window.type_text("brand-new");
    assert!(window.shows("#brand-new"));
    window.press(key::Named::Enter);
    assert_eq!(
        window.commands_sent(),
        [Command::Join {
            room: "brand-new".into()
        }]
    );
    assert_eq!(shown_room(&window), "brand-new");
}

#[test]
fn a_refused_join_takes_the_room_away_with_the_reason() {
    let mut window = two_rooms();
    enter(&mut window, "/join #full");
    receive(
        &mut window,
        [ServerFrame::Error {
            code: chat_shared::ErrorCode::TooManyRooms,
            message: "you are in 2 rooms already; part one first".into(),
            id: None,
            room: Some("full".into()),
            retry_after: None,
            until: None,
        }],
    );
    assert!(chat(&window).rooms().get("full").is_none());
    assert_eq!(
        shown_room(&window),
        "general",
        "back where the join was typed"
    );
    assert!(window.shows("Cannot join #full: You are in 2 rooms already; part one first"));
}

#[test]
fn mentions_notify_only_live_from_others_while_the_window_is_away() {
    let mut window = two_rooms();
    let _ = window.app.update(AppMessage::Focused(false));
    receive(
        &mut window,
        [
            room_message("rust", 41, "carol", "me: look"),
            room_message("rust", 42, "me", "me myself"),
            room_message("general", 41, "bob", "no mention here"),
        ],
    );
    assert_eq!(
        window.app.notified,
        [Notify {
            room: "rust".into(),
            from: "carol".into(),
            text: "me: look".into()
        }]
    );
    // Replayed after a reconnect: counted, never notified.
    window.connection(Event::LoggedIn(session_in(&["general", "rust"])));
    receive(
        &mut window,
        [
            answer("rust", 44),
            room_message("rust", 43, "carol", "me, again"),
        ],
    );
    assert_eq!(window.app.notified.len(), 1);
    assert_eq!(counts(&window, "rust").1, 2);
    // Focused again: no notification, the sidebar says it.
    let _ = window.app.update(AppMessage::Focused(true));
    receive(&mut window, [room_message("rust", 45, "carol", "me?")]);
    assert_eq!(window.app.notified.len(), 1);
}

#[test]
fn direct_messages_have_their_place_in_the_sidebar() {
    let mut session = session_in(&["general"]);
    session.account = true;
    session.conversations = vec![("@Judy".into(), 3)];
    let mut window = Window::chat(&session);
    assert!(window.shows("Direct messages"), "a section under the rooms");
    assert!(window.shows("Judy"));
    // Someone new writes while the window is not focused: the conversation appears,
    // counts as unread and notifies.
    let _ = window.app.update(AppMessage::Focused(false));
    receive(&mut window, [direct_message("Karl", 1, "are you there?")]);
    assert!(window.shows("Karl"));
    assert_eq!(counts(&window, "@Karl"), (1, 0));
    assert_eq!(
        window.app.notified,
        [Notify {
            room: "@Karl".into(),
            from: "Karl".into(),
            text: "are you there?".into()
        }]
    );
    // Opening it reads it; the header names the person; what is typed goes to them.
    window.click_on("Karl");
    assert_eq!(shown_room(&window), "@Karl");
    assert_eq!(counts(&window, "@Karl"), (0, 0));
    assert!(window.shows("Karl is in no room you share"));
    assert!(
        !window.shows("Hide members"),
        "a conversation has no member list"
    );
    window.commands_sent();
    enter(&mut window, "yes!");
    assert!(matches!(
        window.commands_sent().as_slice(),
        [Command::Say { room: Some(room), text, .. }] if room == "@Karl" && text == "yes!"
    ));
    // /msg opens (or makes) a conversation and sends.
    enter(&mut window, "/msg Lena hello Lena");
    assert_eq!(shown_room(&window), "@Lena");
    assert!(matches!(
        window.commands_sent().as_slice(),
        [Command::Say { room: Some(room), text, .. }] if room == "@Lena" && text == "hello Lena"
    ));
    // Remembered for the next run, beside the rooms.
    let names: Vec<String> = chat(&window)
        .rooms()
        .positions()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["general", "@Judy", "@Karl", "@Lena"]);
}

#[test]
fn a_guest_is_told_that_direct_messages_need_an_account() {
    let mut window = Window::chat(&session_in(&["general"]));
    enter(&mut window, "/msg Judy hi");
    assert!(window.shows("Only an account can send direct messages: log in with a password."));
    assert!(
        window
            .commands_sent()
            .iter()
            .all(|c| !matches!(c, Command::Say { .. }))
    );
    assert!(!window.shows("Direct messages"));
}

#[test]
fn an_account_changes_its_password_from_the_sidebar() {
    use chat_shared::{ErrorCode, Password};
    let mut session = session_in(&["general"]);
    session.account = true;
    let mut window = Window::chat(&session);
    // In the menu under the name.
    window.click_on("me ▾");
    window.click_on("Change password…");
    assert!(window.shows("Change your password"));
    window.type_text("old secret");
    let _ = window.app.update(AppMessage::Chat(super::Message::Password(
        super::account::Message::New("short".into()),
    )));
    window.frame();
    window.click_on("Change password");
    assert!(window.shows("The new password: a password needs at least 8 bytes."));
    for message in [
        super::account::Message::New("new secret".into()),
        super::account::Message::Confirm("new secret".into()),
    ] {
        let _ = window
            .app
            .update(AppMessage::Chat(super::Message::Password(message)));
    }
    window.frame();
    window.commands_sent();
    window.click_on("Change password");
    assert_eq!(
        window.commands_sent(),
        [Command::Send(ClientFrame::SetPassword {
            password: Password::new("old secret"),
            new_password: Password::new("new secret"),
        })]
    );
    assert!(window.shows("Changing…"));
    receive(
        &mut window,
        [ServerFrame::Error {
            code: ErrorCode::BadPassword,
            message: "the current password is wrong".into(),
            id: None,
            room: None,
            retry_after: None,
            until: None,
        }],
    );
    assert!(window.shows("The current password is wrong."));
    window.click_on("Change password");
    assert_eq!(window.commands_sent().len(), 1, "sent again");
    receive(&mut window, [ServerFrame::PasswordChanged]);
    assert!(!window.shows("Change your password"), "the form closed");
    assert!(window.shows("Your password was changed."));
}

#[test]
fn a_log_in_with_a_temporary_password_opens_the_form_to_change_it() {
    let mut session = session_in(&["general"]);
    session.account = true;
    let mut plain = Window::chat(&session);
    assert!(!plain.shows("Change your password"));
    session.password_reset = true;
    let mut window = Window::chat(&session);
    assert!(window.shows("Change your password"));
    assert!(window.shows(
        "The server's operator gave you a temporary password. Choose your own now: the \
         temporary one stops working within a day."
    ));
    window.click_on("Cancel");
    assert!(!window.shows("Change your password"));
}

#[test]
fn a_guest_has_no_password_to_change() {
    let mut window = Window::chat(&session_in(&["general"]));
    assert!(!window.shows("Change password…"));
}

#[test]
fn remember_me_without_a_keyring_says_so() {
    use crate::screen::login;
    let mut window = Window::new(false);
    for message in [
        login::Message::PasswordChanged("my secret pw".into()),
        login::Message::RememberToggled(true),
        login::Message::Submit,
    ] {
        window.message(AppMessage::Login(message));
    }
    window.connection(Event::Ready(window.handle.clone()));
    let mut session = session_in(&["general"]);
    session.account = true;
    window.connection(Event::LoggedIn(session));
    let notice = "There is no keyring on this computer, so your password was not remembered.";
    assert!(window.shows(notice));
    // What arrives afterwards (the replay, the catch-up) goes above it: the word stays
    // where the person looks, never among the messages.
    receive(
        &mut window,
        [room_message("general", 288, "bob", "newer than the notice")],
    );
    let message = window
        .bounds_of("newer than the notice")
        .expect("the message");
    let banner = window.bounds_of(notice).expect("the notice");
    assert!(
        banner.y > message.y,
        "the notice ({banner:?}) is below the newest message ({message:?})"
    );
    window.click_on("Close");
    assert!(!window.shows(notice), "closed");
}

#[test]
fn a_session_taken_over_says_so_and_offers_to_log_in_again() {
    let mut window = Window::chat(&session_in(&["general"]));
    window.connection(Event::Ended {
        reason: "your session was taken over by another log-in".into(),
    });
    assert!(window.shows("Disconnected: your session was taken over by another log-in"));
    assert_eq!(
        window.title(),
        "Chat — me on 127.0.0.1:60000, disconnected",
        "the title still says who and where"
    );
    // What is typed is not queued for a connection that will never come: it stays.
    let sent = window.commands_sent().len();
    window.type_text("still here");
    window.press(key::Named::Enter);
    assert_eq!(window.commands_sent().len(), sent, "nothing sent or queued");
    assert!(window.shows("Not sent: this session has ended. Log in again to send it."));
    assert_eq!(
        window.app.chat_screen().expect("the Chat screen").input(),
        "still here",
        "the text stays in the input"
    );
    window.click_on("Log in again");
    assert_eq!(window.title(), "Chat — log in");
    assert!(window.shows("me"), "the form is filled in with the name");
}

#[test]
fn a_narrow_window_keeps_the_log_wide_and_opens_the_panels_over_it() {
    let mut window = two_rooms();
    let long = "a line long enough to show how much of a narrow window the log really gets";
    receive(&mut window, [room_message("general", 41, "bob", long)]);
    let members = |window: &mut Window| {
        let count = chat(window).room().map_or(0, |room| room.members.len());
        window.shows(&format!("Online — {count}"))
    };
    assert!(members(&mut window), "a wide window shows the member list");
    assert!(window.shows("rust"), "and the rooms");

    window.resize(iced::Size::new(520.0, 600.0));
    assert!(!members(&mut window), "no room for the member list");
    assert!(!window.shows("rust"), "nor for the rooms");
    for label in ["☰ Rooms", "● online", "Members", "Settings", "?"] {
        let bounds = window.bounds_of(label).expect(label);
        assert!(
            bounds.x + bounds.width <= 520.0,
            "{label} is cut off: {bounds:?}"
        );
    }
    let line = window.bounds_of(long).expect("the message");
    // Fira Sans at 15 px is about 7 px a character: 30 of them need 210.
    assert!(line.width >= 300.0, "the log has the width: {line:?}");

    // The rooms open over the log; picking one closes them.
    window.click_on("☰ Rooms");
    assert!(window.shows("rust"));
    window.click_on("rust");
    assert_eq!(shown_room(&window), "rust");
    assert!(!window.shows("general"), "closed once a room is picked");
    // The members too; Escape closes them.
    window.click_on("Members");
    assert!(members(&mut window));
    window.press(key::Named::Escape);
    assert!(!members(&mut window));

    // Wide again: both stay.
    window.resize(iced::Size::new(1000.0, 600.0));
    assert!(members(&mut window) && window.shows("general"));
}

#[test]
fn enter_submits_the_login_form_wherever_the_focus_is() {
    let mut window = Window::new(false);
    // A click on a checkbox leaves no field with the focus.
    window.click_on("Secure (TLS)");
    window.click_on("Secure (TLS)");
    assert!(!window.shows("Connecting to 127.0.0.1:60000…"));
    window.press(key::Named::Enter);
    assert!(window.shows("Connecting to 127.0.0.1:60000…"), "submitted");
}

#[test]
fn the_menu_under_the_name_logs_out_or_switches_accounts() {
    for switch in [false, true] {
        let mut window = Window::chat(&session_in(&["general"]));
        window.commands_sent();
        assert!(!window.shows("Log out"), "the menu is closed");
        window.click_on("me ▾");
        assert!(window.shows("Switch account…"));
        window.click_on(if switch {
            "Switch account…"
        } else {
            "Log out"
        });
        assert!(
            window.commands_sent().contains(&Command::Bye),
            "the server hears bye"
        );
        assert_eq!(window.title(), "Chat — log in");
        assert_eq!(
            window.shows("me"),
            !switch,
            "the name is offered again unless switching"
        );
        assert!(window.shows("127.0.0.1:60000"), "the server is");
        // The connection ends by itself once bye is said.
        window.connection(Event::Closed);
        assert_eq!(window.title(), "Chat — log in");
    }
}

#[test]
fn a_room_opened_with_unread_messages_marks_where_one_left_off() {
    let mut window = two_rooms();
    receive(
        &mut window,
        (41..=45).map(|i| room_message("rust", i, "carol", &format!("r{i}"))),
    );
    assert_eq!(counts(&window, "rust").0, 5);
    window.click_on("rust");
    let line = window.bounds_of("New messages").expect("the line");
    let before = window.bounds_of("r40").expect("the last one seen");
    let after = window.bounds_of("r41").expect("the first new one");
    assert!(
        before.y < line.y && line.y < after.y,
        "between r40 {before:?} and r41 {after:?}: {line:?}"
    );
    // Nothing new the next time.
    window.click_on("general");
    assert!(!window.shows("New messages"));
    window.click_on("rust");
    assert!(!window.shows("New messages"));
}

#[test]
fn a_click_on_a_member_opens_a_card_with_a_way_to_write_to_them() {
    let mut session = session_in(&["general"]);
    session.account = true;
    let mut window = Window::chat(&session);
    let came = 1_764_000_000_000;
    receive(
        &mut window,
        [ServerFrame::Joined {
            room: Some("general".into()),
            seq: 1,
            time: came,
            name: "carol".into(),
        }],
    );
    window.click_on("carol");
    let since = format!("Online since {}", crate::screen::style::clock(came));
    assert!(window.shows(&since), "{since}");
    window.click_on("Message");
    assert_eq!(
        chat(&window).room().map(|room| room.name.clone()),
        Some("@carol".to_string()),
        "the conversation with carol is shown"
    );
    // A guest writes to nobody: no "Message" on the cards it opens.
    let mut window = Window::chat(&session_in(&["general"]));
    window.click_on("bob");
    assert!(window.shows("Online"));
    assert!(!window.shows("Message"));
}

#[test]
fn a_conversation_says_whether_the_other_is_online() {
    let mut session = session_in(&["general"]);
    session.account = true;
    let mut window = Window::chat(&session);
    enter(&mut window, "/msg bob");
    assert!(window.shows("● bob is online"), "bob is in general");
    enter(&mut window, "/msg zed");
    assert!(window.shows("zed is in no room you share"));
}
