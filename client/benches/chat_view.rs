//! Building and laying out the Chat view with 50 rooms joined (each with a few unread
//! messages in the sidebar) and 1,000, 10,000 and 100,000 entries held in the room shown,
//! with what a busy room has: links, mentions, runs of joins and leaves (folded), and
//! text that can be selected. What a frame costs when the chat changes. Run with
//! `ICED_TEST_BACKEND=tiny-skia cargo bench -p chat-client`; the budget is 16 ms a frame.

use chat_client::connection::Handle;
use chat_client::model::Session;
use chat_client::screen::chat::Chat;
use chat_client::settings::Settings;
use chat_shared::{LeaveReason, Limits, ServerFrame};
use divan::Bencher;

fn main() {
    divan::main();
}

/// Rooms joined.
const ROOMS: usize = 50;

/// The session of "me", a guest, in `rooms` with `users` in the default room.
fn session_of(users: &[String], rooms: &[String]) -> Session {
    Session {
        account: false,
        conversations: Vec::new(),
        conversations_read: Vec::new(),
        name: "me".into(),
        users: users.to_vec(),
        seq: 0,
        oldest: 0,
        epoch: "e".into(),
        limits: Limits::default(),
        resumed: false,
        missed: false,
        new_epoch: false,
        default_room: "general".into(),
        rooms: rooms.to_vec(),
        admin: false,
        password_reset: false,
        invites: Vec::new(),
    }
}

fn chat_with(events: u64) -> Chat {
    let users: Vec<String> = (0..200).map(|i| format!("user{i}")).collect();
    let rooms: Vec<String> = (0..ROOMS)
        .map(|i| match i {
            0 => "general".to_string(),
            i => format!("room-{i}"),
        })
        .collect();
    let session = session_of(&users, &rooms);
    let (handle, _) = Handle::detached();
    let mut chat = Chat::new("127.0.0.1:60000", &session, handle, None);
    for room in &rooms[1..] {
        chat.received(
            ServerFrame::Room {
                room: room.clone(),
                users: users[..20].to_vec(),
                seq: 0,
                oldest: 0,
                state: chat_shared::RoomState::default(),
                read: 0,
            },
            true,
        );
        for seq in 1..=3 {
            chat.received(
                ServerFrame::Message {
                    with: None,
                    room: Some(room.clone()),
                    seq,
                    time: 1_764_000_000_000,
                    from: "user1".into(),
                    text: format!("unread {seq} in {room}"),
                    id: None,
                    me: false,
                    deleted: false,
                    reply_to: None,
                    edited: None,
                    reactions: Vec::new(),
                },
                true,
            );
        }
    }
    for seq in 1..=events {
        let time = 1_764_000_000_000 + seq * 1000;
        let from = format!("user{}", seq % 200);
        // Every tenth event someone comes or goes; every seventh message has a link,
        // every thirteenth mentions "me".
        let frame = match seq % 10 {
            0 => ServerFrame::Joined {
                room: None,
                seq,
                time,
                name: from,
            },
            5 => ServerFrame::Left {
                room: None,
                seq,
                time,
                name: from,
                reason: LeaveReason::Quit,
                by: None,
                message: None,
            },
            _ => ServerFrame::Message {
                with: None,
                me: false,
                room: None,
                seq,
                time,
                from,
                text: match seq % 91 {
                    n if n % 7 == 0 => format!(
                        "message {seq}: see https://example.com/page/{seq} for the details of it"
                    ),
                    n if n % 13 == 0 => format!("message {seq}: me, what do you think of this?"),
                    _ => format!(
                        "message {seq}: a line of ordinary chat, long enough to wrap once in a narrow window"
                    ),
                },
                id: None,
                deleted: false,
                reply_to: None,
                edited: None,
                reactions: Vec::new(),
            },
        };
        chat.received(frame, true);
    }
    chat
}

/// The first frame: `view()` plus a full layout from nothing (every text shaped anew) at
/// the default window size.
#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 30)]
fn view_and_layout(bencher: Bencher, events: u64) {
    let chat = chat_with(events);
    let theme = iced::Theme::Light;
    let settings = Settings::default();
    bencher.bench_local(|| {
        let ui = iced_test::simulator(chat.view(&theme, &settings));
        divan::black_box(ui);
    });
}

/// A frame of a running chat: one more message arrives, and the view is built, diffed
/// against the last frame's widgets (which keep their laid-out text) and laid out again.
#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 100)]
fn frame_after_a_message(bencher: Bencher, events: u64) {
    use iced_test::runtime::user_interface::{Cache, UserInterface};
    let mut chat = chat_with(events);
    let theme = iced::Theme::Light;
    let settings = Settings::default();
    let mut renderer = {
        use iced::advanced::renderer::Headless;
        let backend = std::env::var("ICED_TEST_BACKEND").ok();
        futures_lite::future::block_on(<iced::Renderer as Headless>::new(
            iced::Font::with_name("Fira Sans"),
            iced::Pixels(16.0),
            backend.as_deref(),
        ))
        .expect("a headless renderer")
    };
    let size = iced::Size::new(900.0, 620.0);
    let mut cache = Some(Cache::default());
    let mut seq = events;
    let mut frame = |chat: &mut Chat, cache: &mut Option<Cache>, renderer: &mut iced::Renderer| {
        seq += 1;
        chat.received(
            ServerFrame::Message {
                with: None,
                me: false,
                room: None,
                seq,
                time: 1_764_000_000_000 + seq * 1000,
                from: format!("user{}", seq % 200),
                text: format!("message {seq}: one more line arrives while the room is busy"),
                id: None,
                deleted: false,
                reply_to: None,
                edited: None,
                reactions: Vec::new(),
            },
            true,
        );
        let mut ui = UserInterface::build(
            chat.view(&theme, &settings),
            size,
            cache.take().unwrap_or_default(),
            renderer,
        );
        let mut messages = Vec::new();
        let _ = ui.update(
            &[iced::Event::Window(iced::window::Event::RedrawRequested(
                std::time::Instant::now(),
            ))],
            iced::mouse::Cursor::Unavailable,
            renderer,
            &mut iced::advanced::clipboard::Null,
            &mut messages,
        );
        *cache = Some(ui.into_cache());
    };
    // Warm up: the first frame lays everything out from nothing.
    frame(&mut chat, &mut cache, &mut renderer);
    bencher.bench_local(|| frame(&mut chat, &mut cache, &mut renderer));
}

/// The same simulator around an empty view: what creating the headless renderer costs,
/// to subtract from the figures above.
#[divan::bench(sample_count = 30)]
fn baseline_empty_view(bencher: Bencher) {
    bencher.bench_local(|| {
        let empty: iced::Element<'_, ()> = iced::widget::Space::new().into();
        let ui = iced_test::simulator(empty);
        divan::black_box(ui);
    });
}
