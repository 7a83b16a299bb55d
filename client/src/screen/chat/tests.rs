//! The Chat screen in a headless window (see `crate::testing`): scrolling, focus, the
//! log's folding and fetching, selection, links, the keyboard and the member list.

use chat_shared::{CloseCode, LeaveReason, Limits, ServerFrame};
use iced::Point;
use iced::keyboard::{self, key};

use crate::app::Message as AppMessage;
use crate::connection::{Command, Event};
use crate::model::Session;
use crate::testing::{NOON, Window};

fn session(seq: u64, users: &[&str]) -> Session {
    Session {
        account: false,
        conversations: Vec::new(),
        conversations_read: Vec::new(),
        name: "me".into(),
        users: users.iter().map(ToString::to_string).collect(),
        seq,
        oldest: u64::from(seq > 0),
        epoch: "e".into(),
        limits: Limits::default(),
        resumed: false,
        missed: false,
        new_epoch: false,
        default_room: "general".into(),
        rooms: vec!["general".into()],
        admin: false,
        password_reset: false,
        invites: Vec::new(),
    }
}

fn message(seq: u64, from: &str, text: &str) -> ServerFrame {
    ServerFrame::Message {
        with: None,
        me: false,
        room: None,
        seq,
        time: NOON + seq * 1000,
        from: from.into(),
        text: text.into(),
        id: None,
        deleted: false,
        reply_to: None,
        edited: None,
        reactions: Vec::new(),
    }
}

fn joined(seq: u64, name: &str) -> ServerFrame {
    ServerFrame::Joined {
        room: None,
        seq,
        time: NOON + seq * 1000,
        name: name.into(),
    }
}

/// Hands frames to the app without drawing in between, then draws once.
fn receive(window: &mut Window, frames: impl IntoIterator<Item = ServerFrame>) {
    for frame in frames {
        let _ = window
            .app
            .update(AppMessage::Connection(Event::Frame(frame)));
    }
    window.frame();
}

/// A chat where bob said `count` numbered messages ("m1" …).
fn busy_chat(count: u64) -> Window {
    let mut window = Window::chat(&session(0, &["me", "bob", "alice"]));
    receive(
        &mut window,
        (1..=count).map(|i| message(i, "bob", &format!("m{i}"))),
    );
    window
}

/// Whether a line is where it was, give or take the rounding of a fractional pixel.
fn same_place(now: Option<iced::Rectangle>, before: iced::Rectangle) -> bool {
    now.is_some_and(|now| (now.y - before.y).abs() < 1.0 && (now.x - before.x).abs() < 1.0)
}

fn chat(window: &Window) -> &super::Chat {
    window.app.chat_screen().expect("on the Chat screen")
}

fn away(window: &Window) -> bool {
    chat(window).away_from_latest()
}

/// Points at the middle of the log and turns the wheel up.
fn scroll_up(window: &mut Window, lines: f32) {
    window.point_at(Point::new(300.0, 250.0));
    window.wheel(lines);
}

fn posts(window: &Window) -> Vec<String> {
    std::iter::from_fn(|| window.commands.try_recv().ok())
        .filter_map(|c| match c {
            Command::Say { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

fn history_requests(window: &Window) -> Vec<u64> {
    std::iter::from_fn(|| window.commands.try_recv().ok())
        .filter_map(|c| match c {
            Command::History { before, .. } => Some(before),
            _ => None,
        })
        .collect()
}

#[test]
fn the_newest_message_is_on_screen_and_the_oldest_are_not() {
    let mut window = busy_chat(500);
    assert!(window.shows("m500"));
    assert!(
        !window.shows("m480"),
        "only the bottom of the log is on screen"
    );
    assert!(!away(&window));
}

#[test]
fn sending_after_reading_back_lands_on_the_newest() {
    let mut window = busy_chat(500);
    scroll_up(&mut window, 10.0);
    assert!(away(&window), "the wheel moved the log up");
    assert!(!window.shows("m500"));
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text("hello");
    window.press(key::Named::Enter);
    assert_eq!(posts(&window), ["hello"]);
    assert!(!away(&window));
    assert!(
        window.shows("m500"),
        "the newest message is on screen after a send"
    );
    assert!(window.shows("hello"), "and the pending post under it");
    assert!(!window.shows("Show older messages"));
}

#[test]
fn jump_to_latest_counts_what_arrived_and_lands_on_the_newest() {
    let mut window = busy_chat(300);
    scroll_up(&mut window, 10.0);
    receive(
        &mut window,
        (301..=530).map(|i| message(i, "bob", &format!("m{i}"))),
    );
    assert!(window.shows("230 new messages ↓"));
    window.click_on("230 new messages ↓");
    assert!(!away(&window));
    assert!(window.shows("m530"));
    assert!(!window.shows("m300"));
}

#[test]
fn reading_back_stays_on_the_same_lines_while_messages_arrive() {
    let mut window = busy_chat(300);
    scroll_up(&mut window, 10.0);
    let reading = (250..300)
        .map(|i| format!("m{i}"))
        .find(|text| window.shows(text))
        .expect("some message on screen");
    let before = window.bounds_of(&reading).expect("on screen");
    for i in 301..=350 {
        receive(&mut window, [message(i, "bob", &format!("m{i}"))]);
    }
    assert!(
        same_place(window.bounds_of(&reading), before),
        "{reading} moved"
    );
    assert!(window.shows("50 new messages ↓"));
    // Scrolling back down to the end follows again.
    window.point_at(Point::new(300.0, 250.0));
    for _ in 0..40 {
        window.wheel(-20.0);
        if !away(&window) {
            break;
        }
    }
    assert!(!away(&window), "at the end the log follows again");
    receive(&mut window, [message(351, "bob", "m351")]);
    assert!(window.shows("m351"));
}

/// Whether the input has the keyboard focus.
fn input_focused(window: &mut Window) -> bool {
    let input = iced::widget::Id::from(super::INPUT);
    window
        .find(iced_test::selector::is_focused())
        .is_some_and(|target| match target {
            iced_test::selector::Target::Focusable { id, .. }
            | iced_test::selector::Target::TextInput { id, .. } => id == Some(input),
            _ => false,
        })
}

#[test]
fn the_input_keeps_the_focus_when_the_jump_bar_comes_and_goes() {
    let mut window = busy_chat(300);
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text("ab");
    scroll_up(&mut window, 10.0);
    assert!(window.shows("Jump to latest ↓"));
    assert!(input_focused(&mut window), "still focused with the bar up");
    window.type_text("c");
    assert_eq!(chat(&window).input(), "abc");
    receive(&mut window, [message(301, "bob", "m301")]);
    window.press(key::Named::PageDown);
    window.key(
        keyboard::Key::Named(key::Named::End),
        keyboard::Modifiers::CTRL,
        None,
    );
    assert!(!window.shows("Jump to latest ↓"));
    assert!(
        input_focused(&mut window),
        "still focused with the bar gone"
    );
    window.type_text("d");
    assert_eq!(chat(&window).input(), "abcd");
}

#[test]
fn typing_after_a_click_in_the_log_goes_to_the_input() {
    let mut window = busy_chat(50);
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text("focus ");
    window.click_on("m49");
    window.type_text("test 2");
    assert_eq!(chat(&window).input(), "focus test 2");
    window.press(key::Named::Enter);
    assert_eq!(posts(&window), ["focus test 2"]);
}

#[test]
fn joins_and_leaves_fold_and_unfold() {
    let mut window = Window::chat(&session(0, &["me"]));
    receive(
        &mut window,
        (1..=12)
            .map(|i| joined(i, &format!("u{i}")))
            .chain((13..=15).map(|i| ServerFrame::Left {
                room: None,
                seq: i,
                time: NOON + i * 1000,
                name: format!("u{}", i - 12),
                reason: LeaveReason::Quit,
                by: None,
                message: None,
            })),
    );
    assert!(window.shows("u1, u2 and u3 joined and left, 9 joined"));
    assert!(!window.shows("u5 joined"));
    window.click_on("u1, u2 and u3 joined and left, 9 joined");
    assert!(window.shows("u5 joined"));
}

#[test]
fn own_reconnect_shows_nothing_and_shutdown_reads_as_a_restart() {
    let mut window = Window::chat(&session(4, &["me", "bob"]));
    receive(
        &mut window,
        [
            message(4, "bob", "hi"),
            ServerFrame::Left {
                room: None,
                seq: 5,
                time: NOON,
                name: "me".into(),
                reason: LeaveReason::Lost,
                by: None,
                message: None,
            },
            joined(6, "me"),
        ],
    );
    assert!(!window.shows("me joined"));
    assert!(!window.shows("me left (lost the connection)"));
    window.connection(Event::Disconnected {
        reason: "the server is shutting down".into(),
        closing: Some(CloseCode::Shutdown),
    });
    assert!(window.shows("The server is restarting; reconnecting…"));
    assert!(window.shows("Last seen online — 2"));
}

#[test]
fn a_thin_replay_fetches_older_history_and_it_goes_in_place() {
    let mut window = Window::chat(&session(300, &["me", "bob"]));
    receive(
        &mut window,
        (291..=300).map(|i| message(i, "bob", &format!("m{i}"))),
    );
    assert_eq!(
        history_requests(&window),
        [291],
        "too little conversation: ask for more"
    );
    let page: Vec<ServerFrame> = (191..=290)
        .map(|i| message(i, "bob", &format!("m{i}")))
        .collect();
    let newest = window.bounds_of("m300").expect("on screen");
    window.connection(Event::History {
        room: "general".into(),
        before: 291,
        frames: page,
    });
    assert!(
        same_place(window.bounds_of("m300"), newest),
        "the newest line stays put"
    );
    assert!(history_requests(&window).is_empty(), "enough now");
    // Reading back to the top asks for the page before the oldest held.
    window.press(key::Named::Escape);
    for _ in 0..40 {
        scroll_up(&mut window, 30.0);
        let asked = history_requests(&window);
        if !asked.is_empty() {
            assert_eq!(asked, [191]);
            break;
        }
    }
    scroll_up(&mut window, 30.0);
    assert!(window.shows("Loading older messages…"));
    assert!(history_requests(&window).is_empty(), "asked once");
    let reading = window.bounds_of("m191").expect("at the top");
    window.connection(Event::History {
        room: "general".into(),
        before: 191,
        frames: (1..=190)
            .map(|i| message(i, "bob", &format!("m{i}")))
            .collect(),
    });
    assert!(
        same_place(window.bounds_of("m191"), reading),
        "inserted without jumping"
    );
    for _ in 0..40 {
        scroll_up(&mut window, 30.0);
    }
    assert!(window.shows("Beginning of the history"));
    assert!(window.shows("m1"));
}

#[test]
fn a_drag_selects_across_messages_and_ctrl_c_copies_it() {
    let mut window = busy_chat(30);
    let first = window.bounds_of("m28").expect("on screen");
    let last = window.bounds_of("m30").expect("on screen");
    window.drag(
        Point::new(first.x, first.center_y()),
        Point::new(last.x + last.width, last.center_y()),
    );
    window.key(
        keyboard::Key::Character("c".into()),
        keyboard::Modifiers::CTRL,
        Some("c"),
    );
    let copied = window.clipboard().expect("something copied").to_string();
    let clock = crate::screen::style::clock(NOON + 29_000);
    assert_eq!(copied, format!("m28\n{clock} bob m29\n{clock} bob m30"));
}

#[test]
fn a_click_on_a_link_opens_it() {
    let mut window = Window::chat(&session(0, &["me", "bob"]));
    receive(
        &mut window,
        [message(
            1,
            "bob",
            "docs at https://example.com/guide and more",
        )],
    );
    let line = window
        .bounds_of("docs at https://example.com/guide and more")
        .expect("on screen");
    // "docs at " is eight characters: the link starts a little further in.
    window.point_at(Point::new(line.x + 90.0, line.center_y()));
    window.click();
    assert_eq!(window.app.opened, ["https://example.com/guide"]);
}

#[test]
fn tab_completes_names_up_recalls_and_shift_enter_breaks_the_line() {
    let mut window = Window::chat(&session(0, &["me", "alice", "bob"]));
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text("al");
    window.press(key::Named::Tab);
    assert_eq!(chat(&window).input(), "alice, ");
    window.type_text("look");
    window.key(
        keyboard::Key::Named(key::Named::Enter),
        keyboard::Modifiers::SHIFT,
        None,
    );
    window.type_text("here");
    window.press(key::Named::Enter);
    assert_eq!(posts(&window), ["alice, look\nhere"]);
    window.press(key::Named::ArrowUp);
    assert_eq!(chat(&window).input(), "alice, look\nhere");
}

#[test]
fn the_member_list_sorts_naturally_filters_and_shortens() {
    let mut names: Vec<String> = (1..=60).map(|i| format!("Ahmed_{i}")).collect();
    names.push("me".into());
    names.push("a_name_that_is_far_too_long_for_it".into());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut window = Window::chat(&session(0, &names));
    let y = |window: &mut Window, text: &str| window.bounds_of(text).map(|b| b.y);
    assert!(y(&mut window, "Ahmed_9") < y(&mut window, "Ahmed_10"));
    assert!(
        window
            .find(iced_test::selector::id(super::members::FILTER))
            .is_some()
    );
    assert!(
        !window.shows("a_name_that_is_far_too_long_for_it"),
        "a long name is shortened"
    );
    window.click_on(iced_test::selector::id(super::members::FILTER));
    window.type_text("ahmed_5");
    assert!(window.shows("Ahmed_5"));
    assert!(window.shows("Ahmed_50"));
    assert!(!window.shows("Ahmed_6"));
}

#[test]
fn day_separators_and_pending_posts() {
    let mut window = Window::chat(&session(0, &["me", "bob"]));
    let day = 24 * 3600 * 1000;
    receive(
        &mut window,
        [
            ServerFrame::Message {
                with: None,
                me: false,
                room: None,
                seq: 1,
                time: NOON - 3 * day,
                from: "bob".into(),
                text: "long ago".into(),
                id: None,
                deleted: false,
                reply_to: None,
                edited: None,
                reactions: Vec::new(),
            },
            message(2, "bob", "recent"),
        ],
    );
    let today = chrono::Local::now().date_naive();
    let then = crate::screen::style::local(NOON - 3 * day)
        .expect("a time")
        .date_naive();
    assert!(window.shows(&crate::screen::style::day_label(then, today)));
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text("on its way");
    window.press(key::Named::Enter);
    assert!(window.shows("sending…"));
    assert!(!window.shows("--:--"));
}

#[test]
fn a_pending_post_keeps_the_log_s_width_in_a_narrow_window() {
    let mut window = Window::chat(&session(0, &["me", "bob"]));
    window.resize(iced::Size::new(690.0, 620.0));
    receive(&mut window, [message(1, "bob", "one line")]);
    window.connection(Event::Offline {
        attempt: 1,
        retry_in: std::time::Duration::from_secs(2),
        reason: "connection refused".into(),
    });
    window.click_on(iced_test::selector::id(super::INPUT));
    window.type_text("typed while the server is down");
    window.press(key::Named::Enter);
    assert!(window.shows("waiting for the connection…"));
    let line = window.bounds_of("one line").expect("the message").height;
    let pending = window
        .bounds_of("typed while the server is down")
        .expect("the pending post")
        .height;
    assert!(pending < 1.5 * line, "{pending} against one line of {line}");
}

#[test]
fn page_keys_and_ctrl_end_scroll_the_log() {
    let mut window = busy_chat(300);
    window.click_on(iced_test::selector::id(super::INPUT));
    window.press(key::Named::PageUp);
    assert!(away(&window));
    window.key(
        keyboard::Key::Named(key::Named::End),
        keyboard::Modifiers::CTRL,
        None,
    );
    assert!(!away(&window));
    assert!(window.shows("m300"));
    window.key(
        keyboard::Key::Named(key::Named::Home),
        keyboard::Modifiers::CTRL,
        None,
    );
    assert!(window.shows("m1"), "the oldest held");
    assert!(window.shows("Beginning of the history"));
}

#[test]
fn the_scrollbar_moves_up_with_the_reader_and_keeps_its_size() {
    // 900 messages held, at most 400 rendered: the spaces stand for the rest.
    let mut window = busy_chat(900);
    let place = |window: &Window| {
        chat(window)
            .view_of_active()
            .and_then(|view| view.log.place())
            .expect("the list has moved")
    };
    scroll_up(&mut window, 3.0);
    let first = place(&window);
    let fraction = |p: super::log::Place| p.from_top / (p.height - p.page);
    assert!(fraction(first) > 0.9, "near the bottom: {first:?}");
    let mut last = fraction(first);
    let mut steps = 0;
    while last > 0.02 && steps < 400 {
        scroll_up(&mut window, 20.0);
        let now = place(&window);
        let f = fraction(now);
        // Going up never moves the thumb down, and its size holds from page to page.
        assert!(
            f <= last + 0.005,
            "the thumb went down: {last} then {f} ({now:?})"
        );
        assert!(
            (0.75..=1.33).contains(&(now.height / first.height)),
            "the list's height jumped from {} to {}",
            first.height,
            now.height
        );
        last = f;
        steps += 1;
    }
    assert!(
        last <= 0.02,
        "the top is reached: {last} after {steps} steps"
    );
    for _ in 0..5 {
        scroll_up(&mut window, 20.0);
    }
    assert!(window.shows("m1") || window.shows("Beginning of the history"));
}
