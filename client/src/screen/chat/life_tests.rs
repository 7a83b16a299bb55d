//! A message's life on the Chat screen, in a headless window (see `crate::testing`):
//! each action of a message, the emoji picker, the reactions under a message, "(edited)",
//! the typing line, the jump to the message a reply answers, Up to edit, and the reading
//! position staying put while an edit above it changes its height.

use chat_shared::{ClientFrame, Reaction, ServerFrame};
use iced::keyboard::key;

use super::life;
use super::moderation;
use crate::app::Message as AppMessage;
use crate::connection::Command;
use crate::testing::{NOON, Window, room_message, session_in};

/// "me", an account, in general with bob's message at seq 1 and its own at seq 2.
fn chatting() -> Window {
    let mut session = session_in(&["general"]);
    session.account = true;
    let mut window = Window::chat(&session);
    window.receive([
        room_message("general", 1, "bob", "anyone up for lunch?"),
        room_message("general", 2, "me", "helo"),
    ]);
    window.all_commands_sent();
    window
}

const EDITING: &str = "Editing your message · Enter saves, Escape cancels";

fn act(window: &mut Window, message: life::Message) {
    window.message(AppMessage::Chat(super::Message::Life(message)));
}

fn open_actions(window: &mut Window, seq: u64) {
    window.message(AppMessage::Chat(super::Message::Moderation(
        moderation::Message::MessageMenu(Some(seq)),
    )));
}

/// The frames the app sent (typing and read markers aside).
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

fn enter(window: &mut Window, line: &str) {
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text(line);
    window.press(key::Named::Enter);
}

fn chat(window: &Window) -> &super::Chat {
    window.app.chat_screen().expect("on the Chat screen")
}

#[test]
fn reply_quotes_the_message_and_the_post_answers_it() {
    let mut window = chatting();
    open_actions(&mut window, 1);
    window.click_on("Reply");
    assert!(window.shows("Replying to bob: anyone up for lunch?"));
    enter(&mut window, "count me in");
    let posted = window.commands_sent();
    assert!(
        matches!(posted.as_slice(), [Command::Say { text, reply_to: Some(1), .. }] if text == "count me in"),
        "{posted:?}"
    );
    assert!(!window.shows("Replying to"), "the bar goes with the post");
    let mut echo = room_message("general", 3, "me", "count me in");
    if let ServerFrame::Message { reply_to, .. } = &mut echo {
        *reply_to = Some(1);
    }
    window.receive([echo]);
    assert!(window.shows("↪ bob: anyone up for lunch?"));
    // Escape stops a reply.
    act(&mut window, life::Message::Reply(1));
    window.press(key::Named::Escape);
    assert!(!window.shows("Replying to"));
}

#[test]
fn edits_go_through_the_input_and_show_edited_in_place() {
    let mut window = chatting();
    // Bob's message offers no Edit; one's own does.
    open_actions(&mut window, 1);
    assert!(!window.shows("Edit"));
    open_actions(&mut window, 2);
    window.click_on("Edit");
    assert_eq!(chat(&window).input(), "helo");
    assert!(window.shows(EDITING));
    window.press(key::Named::End);
    window.press(key::Named::Backspace);
    window.type_text("lo");
    window.press(key::Named::Enter);
    assert_eq!(
        sent(&window),
        [ClientFrame::Edit {
            room: Some("general".into()),
            with: None,
            seq: 2,
            text: "hello".into()
        }]
    );
    assert_eq!(chat(&window).input(), "", "the input is emptied");
    window.receive([ServerFrame::Edited {
        room: Some("general".into()),
        with: None,
        seq: 3,
        time: NOON + 3000,
        from: "me".into(),
        target: 2,
        text: "hello".into(),
    }]);
    assert!(window.shows("hello"));
    assert!(window.shows("(edited)"));
    assert!(!window.shows("helo"));
    // Up in the empty input edits the newest own message; Escape gives up.
    window.click_on(iced_test::selector::id(super::INPUT));
    window.press(key::Named::ArrowUp);
    assert_eq!(chat(&window).input(), "hello");
    window.press(key::Named::Escape);
    assert_eq!(chat(&window).input(), "");
    assert!(!window.shows(EDITING));
    assert!(sent(&window).is_empty(), "nothing sent");
}

#[test]
fn the_picker_reacts_and_a_reaction_toggles() {
    let mut window = chatting();
    open_actions(&mut window, 1);
    window.click_on("React");
    assert!(window.shows("👍") && window.shows("🎉"), "the common emoji");
    window.click_on("🎉");
    assert_eq!(
        sent(&window),
        [ClientFrame::React {
            room: Some("general".into()),
            with: None,
            seq: 1,
            emoji: "🎉".into(),
            on: true
        }]
    );
    assert_eq!(
        chat(&window).life.offered()[0],
        "🎉",
        "recently used come first"
    );
    window.receive([ServerFrame::Reaction {
        room: Some("general".into()),
        with: None,
        seq: 3,
        time: NOON + 3000,
        from: "me".into(),
        target: 1,
        emoji: "🎉".into(),
        on: true,
    }]);
    let joined = chat(&window).rooms.active().expect("general");
    let (_, message) = joined.room.timeline.message(1).expect("bob's");
    assert_eq!(
        message.reactions,
        [Reaction {
            emoji: "🎉".into(),
            count: 1,
            names: vec!["me".into()]
        }]
    );
    // A click on one's own reaction takes it back.
    window.click_on("🎉 1");
    assert_eq!(
        sent(&window),
        [ClientFrame::React {
            room: Some("general".into()),
            with: None,
            seq: 1,
            emoji: "🎉".into(),
            on: false
        }]
    );
}

#[test]
fn the_typing_line_names_who_types_and_goes_at_their_message() {
    let mut window = chatting();
    let typing = |name: &str| ServerFrame::Typing {
        room: Some("general".into()),
        with: None,
        name: name.into(),
    };
    window.receive([typing("bob")]);
    assert!(window.shows("bob is typing…"));
    window.receive([typing("carol")]);
    assert!(window.shows("bob and carol are typing…"));
    window.receive([typing("dave")]);
    assert!(window.shows("Several people are typing…"));
    window.receive([room_message("general", 3, "bob", "done")]);
    assert!(window.shows("carol and dave are typing…"));
    // The client says it types, at most every 3 s, never for a command.
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text("hi");
    assert_eq!(
        window.signals_sent(),
        [ClientFrame::Typing {
            room: Some("general".into()),
            to: None
        }],
        "once for both letters"
    );
    window.press(key::Named::Enter);
    window.all_commands_sent();
    window.type_text("/join #rust");
    assert!(window.signals_sent().is_empty(), "a command is no message");
}

#[test]
fn a_reply_to_a_message_not_loaded_fetches_the_history_it_is_in() {
    let mut session = session_in(&["general"]);
    session.account = true;
    session.oldest = 1;
    let mut window = Window::chat(&session);
    window.receive((30..70).map(|i| room_message("general", i, "bob", &format!("line {i}"))));
    let mut answer = room_message("general", 70, "bob", "as I said");
    if let ServerFrame::Message { reply_to, .. } = &mut answer {
        *reply_to = Some(5);
    }
    window.receive([answer]);
    window.all_commands_sent();
    assert!(window.shows("↪ an earlier message"));
    window.click_on("↪ an earlier message");
    let asked = window.commands_sent();
    let [Command::History { before, .. }] = asked.as_slice() else {
        panic!("{asked:?}");
    };
    assert_eq!(*before, 30);
    window.connection(crate::connection::Event::History {
        room: "general".into(),
        before: 30,
        frames: (1..30)
            .map(|i| room_message("general", i, "bob", &format!("line {i}")))
            .collect(),
    });
    assert!(chat(&window).away_from_latest(), "reading where it is");
    assert!(window.shows("line 5"), "the message answered is on screen");
    let joined = chat(&window).rooms.active().expect("general");
    let five = joined.room.timeline.message(5).map(|(pos, _)| pos);
    let log = &chat(&window).views[&joined.key].log;
    assert_eq!(log.flashing(), five, "it stands out for a moment");
    // "Jump to latest" goes back to the reply, which quotes it now.
    window.click_on("Jump to latest ↓");
    assert!(window.shows("↪ bob: line 5"));
}

#[test]
fn an_edit_above_keeps_the_reading_position() {
    let mut window = chatting();
    window.receive((3..80).map(|i| room_message("general", i, "bob", &format!("line {i}"))));
    window.point_at(iced::Point::new(450.0, 300.0));
    window.wheel(8.0);
    assert!(chat(&window).away_from_latest());
    let before = window.bounds_of("line 70");
    window.receive([ServerFrame::Edited {
        room: Some("general".into()),
        with: None,
        seq: 80,
        time: NOON,
        from: "bob".into(),
        target: 65,
        text: "a much longer line\nthat now takes\nthree lines".into(),
    }]);
    window.frame();
    let after = window.bounds_of("line 70");
    assert_eq!(
        before.map(|b| b.y),
        after.map(|b| b.y),
        "what is read stays where it was"
    );
}

#[test]
fn read_markers_go_when_the_newest_is_on_screen() {
    let mut session = session_in(&["general"]);
    session.account = true;
    let mut window = Window::chat(&session);
    window.receive([room_message("general", 1, "bob", "hi")]);
    let read = |seq| ClientFrame::Read {
        room: Some("general".into()),
        with: None,
        seq,
    };
    assert_eq!(window.signals_sent(), [read(1)], "the newest is on screen");
    // At most one a second: the next waits for a tick.
    window.receive([room_message("general", 2, "bob", "more")]);
    chat_mut(&mut window).mark_read();
    assert!(window.signals_sent().is_empty());
    // In a window in the background nothing is read; once it is looked at, it is.
    let mut window = Window::chat(&session);
    window.message(AppMessage::Focused(false));
    window.receive([room_message("general", 1, "bob", "hi")]);
    assert!(window.signals_sent().is_empty());
    window.message(AppMessage::Focused(true));
    assert_eq!(window.signals_sent(), [read(1)]);
    // A marker from another device: what came after it is new here too.
    let mut fresh = session_in(&["general", "rust"]);
    fresh.account = true;
    let mut window = Window::chat(&fresh);
    window.receive([ServerFrame::Room {
        room: "rust".into(),
        users: vec!["me".into(), "bob".into()],
        seq: 3,
        oldest: 1,
        state: chat_shared::RoomState::default(),
        read: 1,
    }]);
    window.receive([
        room_message("rust", 1, "bob", "seen elsewhere"),
        room_message("rust", 2, "bob", "not yet"),
        room_message("rust", 3, "bob", "nor this"),
    ]);
    let rust = chat(&window)
        .rooms
        .iter()
        .find(|joined| joined.room.name == "rust")
        .map(|joined| joined.unread);
    assert_eq!(rust, Some(2));
    // Shown, "New messages" stands before the first one not read elsewhere.
    window.click_on("rust");
    let joined = chat(&window).rooms.active().expect("rust");
    let left_off = joined.left_off.expect("a New messages line");
    let first_new = joined.room.timeline.message(2).map(|(pos, _)| pos);
    assert_eq!(Some(left_off), first_new);
}

fn chat_mut(window: &mut Window) -> &mut super::Chat {
    window.app.chat_screen_mut().expect("on the Chat screen")
}

#[test]
fn a_conversations_marker_from_another_device_counts_only_what_follows() {
    let mut session = session_in(&["general"]);
    session.account = true;
    session.conversations = vec![("@bob".into(), 3)];
    session.conversations_read = vec![("@bob".into(), 2)];
    let mut window = Window::chat(&session);
    window.receive((1..=3).map(|seq| crate::testing::direct_message("bob", seq, "psst")));
    let bob = chat(&window)
        .rooms
        .iter()
        .find(|joined| joined.room.name == "@bob")
        .map(|joined| joined.unread);
    assert_eq!(bob, Some(1), "read up to 2 elsewhere");
}

/// An edit, a reaction or a deletion in a direct conversation comes with `with`: it
/// changes the conversation's message, not the default room's message of the same seq.
#[test]
fn changes_in_a_conversation_go_to_the_conversation() {
    let mut window = chatting();
    window.receive([crate::testing::direct_message("dave", 1, "hi there")]);
    window.receive([ServerFrame::Edited {
        room: None,
        with: Some("dave".into()),
        seq: 2,
        time: NOON + 2000,
        from: "dave".into(),
        target: 1,
        text: "hi again".into(),
    }]);
    let chat = chat(&window);
    let text_of = |room: &str| {
        chat.rooms()
            .get(room)
            .and_then(|joined| joined.room.timeline.message(1))
            .map(|(_, message)| message.text.clone())
    };
    assert_eq!(text_of("@dave").as_deref(), Some("hi again"));
    assert_eq!(text_of("general").as_deref(), Some("anyone up for lunch?"));
}
