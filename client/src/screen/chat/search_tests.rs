//! Search on the Chat screen, in a headless window (see `crate::testing`): the box and
//! its keys, what is sent, `from:`/`in:` completion, results and "Load more", the errors
//! the server gives, and opening a result: held in the log, or shown in its context
//! apart from the live log until "Jump to latest".

use chat_shared::{ClientFrame, ErrorCode, ServerFrame};
use iced::keyboard::{self, key};

use crate::app::Message as AppMessage;
use crate::connection::{Command, Event as ConnectionEvent};
use crate::testing::{Window, direct_message, room_message, session_in};

/// "me", an account, in general and rust, which hold nothing yet.
fn logged_in() -> Window {
    let mut session = session_in(&["general", "rust"]);
    session.account = true;
    Window::chat(&session)
}

/// "me", an account, in general (bob's messages at seqs 1 to 3) and in rust.
fn chatting() -> Window {
    let mut window = logged_in();
    window.receive([
        room_message("general", 1, "bob", "anyone up for lunch?"),
        room_message("general", 2, "bob", "the borrow checker again"),
        room_message("general", 3, "me", "ok"),
    ]);
    window.all_commands_sent();
    window
}

fn chat(window: &Window) -> &super::Chat {
    window.app.chat_screen().expect("on the Chat screen")
}

/// Opens the box with Ctrl+K, types `query` and presses Enter.
fn search_for(window: &mut Window, query: &str) {
    window.key(
        keyboard::Key::Character("k".into()),
        keyboard::Modifiers::CTRL,
        None,
    );
    window.type_text(query);
    window.press(key::Named::Enter);
}

/// The searches sent since the last look: query and cursor.
fn searches(window: &Window) -> Vec<(String, Option<String>)> {
    window
        .commands_sent()
        .into_iter()
        .filter_map(|command| match command {
            Command::Send(ClientFrame::Search { query, cursor, .. }) => Some((query, cursor)),
            _ => None,
        })
        .collect()
}

/// Searches for `query`, is answered with `found` alone, and opens it with a click on
/// its sender's name (`from`).
fn open_found(window: &mut Window, query: &str, found: ServerFrame, from: &str) {
    search_for(window, query);
    searches(window);
    window.receive([results(query, vec![found], None)]);
    window.click_on(from);
}

fn results(query: &str, found: Vec<ServerFrame>, cursor: Option<&str>) -> ServerFrame {
    ServerFrame::SearchResults {
        query: query.into(),
        results: found,
        cursor: cursor.map(Into::into),
    }
}

#[test]
fn ctrl_k_opens_the_box_and_enter_searches_all_rooms() {
    let mut window = chatting();
    assert!(!window.shows("Enter searches · Tab completes from: and in: · Esc closes"));
    search_for(&mut window, "borrow chec");
    assert!(chat(&window).searching());
    assert_eq!(searches(&window), [("borrow chec".to_string(), None)]);
    assert!(window.shows("Searching…"));
    window.press(key::Named::Escape);
    assert!(!chat(&window).searching(), "Escape closes the box");
    // The header's button opens it too, with what was typed before.
    window.click_on("Search");
    assert!(chat(&window).searching());
    assert_eq!(chat(&window).search.query(), "borrow chec");
}

#[test]
fn results_show_where_who_and_the_words_found_and_load_more_goes_on() {
    let mut window = chatting();
    search_for(&mut window, "lunch");
    searches(&window);
    window.receive([results(
        "lunch",
        vec![
            room_message("rust", 40, "carol", "lunch at noon?"),
            direct_message("dave", 7, "skip lunch"),
        ],
        Some("c1"),
    )]);
    assert!(window.shows("#rust"));
    assert!(window.shows("carol"));
    assert!(window.shows("@dave"));
    assert!(!window.shows("Searching…"));
    window.click_on("Load more");
    assert_eq!(
        searches(&window),
        [("lunch".to_string(), Some("c1".to_string()))]
    );
    window.receive([results(
        "lunch",
        vec![room_message("general", 1, "bob", "anyone up for lunch?")],
        None,
    )]);
    let page = chat(&window).search.results();
    assert_eq!(
        page.iter()
            .map(|f| (f.place.as_str(), f.seq))
            .collect::<Vec<_>>(),
        [("rust", 40), ("@dave", 7), ("general", 1)],
        "the second page goes under the first"
    );
    assert!(!window.shows("Load more"), "no cursor: no more");
    // An answer to an older query is not shown over the newer one's.
    window.receive([results(
        "lunc",
        vec![room_message("rust", 9, "x", "lunc")],
        None,
    )]);
    assert_eq!(chat(&window).search.results().len(), 3);
}

#[test]
fn tab_completes_from_and_in() {
    let mut window = chatting();
    search_for(&mut window, "checker from:b");
    searches(&window);
    window.press(key::Named::Tab);
    assert_eq!(chat(&window).search.query(), "checker from:bob ");
    window.type_text("In:ru");
    assert!(window.shows("rust"), "the rooms are offered");
    window.press(key::Named::Tab);
    assert_eq!(chat(&window).search.query(), "checker from:bob In:rust ");
}

#[test]
fn a_bad_query_is_said_and_not_sent_and_an_index_being_built_is_asked_again() {
    let mut window = chatting();
    search_for(&mut window, "\"unclosed");
    assert!(searches(&window).is_empty());
    assert!(window.shows("A quote in the query is not closed."));
    window.press(key::Named::Escape);
    window.press(key::Named::Escape);
    let mut window = chatting();
    search_for(&mut window, "lunch");
    searches(&window);
    let refusal = |code, retry_after| ServerFrame::Error {
        code,
        message: "the search index is being built".into(),
        id: None,
        room: None,
        retry_after,
        until: None,
    };
    // Asked again by itself after retry_after.
    window.connection(ConnectionEvent::Frame(refusal(
        ErrorCode::Unavailable,
        Some(5),
    )));
    assert_eq!(searches(&window), [("lunch".to_string(), None)]);
    window.receive([refusal(ErrorCode::BadQuery, None)]);
    assert!(window.shows("The search index is being built."));
    assert!(searches(&window).is_empty());
}

#[test]
fn a_result_the_log_holds_is_shown_where_it_is() {
    let mut window = chatting();
    window.receive([room_message("general", 4, "dana", "borrow it")]);
    window.message(AppMessage::Chat(super::Message::Switch("rust".into())));
    open_found(
        &mut window,
        "borrow",
        room_message("general", 4, "dana", "borrow it"),
        "dana",
    );
    let chat = chat(&window);
    assert!(!chat.searching(), "the box closes");
    assert_eq!(chat.room().map(|room| room.name.as_str()), Some("general"));
    let view = &chat.views["general"];
    assert!(view.context.is_none());
    let held = chat
        .room()
        .and_then(|room| room.timeline.message(4))
        .map(|(pos, _)| pos);
    assert_eq!(view.log.flashing(), held, "the message stands out");
    assert!(window.commands_sent().is_empty(), "nothing to fetch");
}

/// A result older than the log holds: its context is asked for and shown apart, kept up
/// to date, until "Jump to latest".
#[test]
fn an_old_result_is_shown_in_its_context_until_jump_to_latest() {
    // general holds seqs 100 to 102.
    let mut window = logged_in();
    window.receive((100..=102).map(|seq| room_message("general", seq, "bob", "lately")));
    window.all_commands_sent();
    open_found(
        &mut window,
        "deploy",
        room_message("general", 30, "carol", "deploy on friday"),
        "carol",
    );
    let asked = window.commands_sent();
    assert!(
        asked.contains(&Command::Context {
            room: "general".into(),
            seq: 30
        }),
        "{asked:?}"
    );
    let around = (10..=50).map(|seq| {
        if seq == 30 {
            room_message("general", seq, "carol", "deploy on friday")
        } else {
            room_message("general", seq, "bob", &format!("back then {seq}"))
        }
    });
    window.connection(ConnectionEvent::Context {
        room: "general".into(),
        seq: 30,
        frames: around.collect(),
    });
    assert!(
        chat(&window).views["general"].context.is_some(),
        "{:?}",
        chat(&window).search
    );
    assert!(window.shows("back then 31"), "the messages after it");
    assert!(window.shows("deploy on friday"));
    assert!(window.shows("Jump to latest"));
    {
        let chat = chat(&window);
        let context = chat.views["general"].context.as_ref().expect("a context");
        let pos = context.room.timeline.message(30).map(|(pos, _)| pos);
        assert_eq!(context.log.flashing(), pos);
        assert!(chat.away_from_latest());
    }
    // The live log goes on underneath, and an edit shows in the context too.
    window.receive([
        room_message("general", 103, "bob", "newest"),
        ServerFrame::Edited {
            room: Some("general".into()),
            with: None,
            seq: 104,
            time: crate::testing::NOON + 104_000,
            from: "carol".into(),
            target: 30,
            text: "deploy on monday".into(),
        },
    ]);
    assert!(window.shows("deploy on monday"));
    assert!(
        !window.shows("newest"),
        "the live log is not shown meanwhile"
    );
    window.click_on("Jump to latest");
    let chat = chat(&window);
    assert!(chat.views["general"].context.is_none());
    assert!(!chat.away_from_latest());
    assert!(window.shows("newest"));
}

#[test]
fn a_result_in_a_room_the_user_is_not_in_joins_it_first() {
    let mut window = chatting();
    open_found(
        &mut window,
        "gc",
        room_message("golang", 5, "erin", "gc pauses are short"),
        "erin",
    );
    let asked = window.commands_sent();
    assert!(
        asked.contains(&Command::Join {
            room: "golang".into()
        }),
        "{asked:?}"
    );
    assert!(
        !asked.iter().any(|c| matches!(c, Command::Context { .. })),
        "not before it is in"
    );
    window.receive([
        ServerFrame::Room {
            room: "golang".into(),
            users: vec!["erin".into(), "me".into()],
            seq: 60,
            oldest: 1,
            state: chat_shared::RoomState::default(),
            read: 0,
        },
        room_message("golang", 60, "erin", "latest"),
    ]);
    let asked = window.commands_sent();
    assert!(
        asked.contains(&Command::Context {
            room: "golang".into(),
            seq: 5
        }),
        "{asked:?}"
    );
}

/// A search the connection lost before its answer is asked again once logged in.
#[test]
fn a_search_lost_with_the_connection_is_asked_again() {
    let mut window = chatting();
    search_for(&mut window, "lunch");
    searches(&window);
    window.connection(ConnectionEvent::Disconnected {
        reason: "gone".into(),
        closing: None,
    });
    let mut session = session_in(&["general", "rust"]);
    session.account = true;
    session.resumed = true;
    window.connection(ConnectionEvent::LoggedIn(session));
    assert_eq!(searches(&window), [("lunch".to_string(), None)]);
}

/// A page refused for coming too fast is asked again as it was: the same query, the same
/// cursor, appended under the first page.
#[test]
fn a_page_refused_for_coming_too_fast_is_asked_again_as_it_was() {
    let mut window = chatting();
    search_for(&mut window, "lunch");
    searches(&window);
    window.receive([results(
        "lunch",
        vec![room_message("rust", 40, "carol", "lunch at noon?")],
        Some("c1"),
    )]);
    window.click_on("Load more");
    searches(&window);
    window.connection(ConnectionEvent::Frame(ServerFrame::Error {
        code: ErrorCode::RateLimited,
        message: "too fast; wait a moment".into(),
        id: None,
        room: None,
        retry_after: Some(5),
        until: None,
    }));
    assert_eq!(
        searches(&window),
        [("lunch".to_string(), Some("c1".to_string()))]
    );
}
