//! Building and laying out the Chat view with 1,000, 10,000 and 100,000 messages held:
//! what a frame costs when the chat changes. Run with
//! `ICED_TEST_BACKEND=tiny-skia cargo bench -p chat-client`; the budget is 16 ms a frame.

use chat_client::connection::{Handle, Session};
use chat_client::screen::chat::Chat;
use chat_shared::{Limits, ServerFrame};
use divan::Bencher;

fn main() {
    divan::main();
}

fn chat_with(messages: u64) -> Chat {
    let users: Vec<String> = (0..200).map(|i| format!("user{i}")).collect();
    let session = Session {
        name: "me".into(),
        users,
        seq: 0,
        limits: Limits::default(),
        resumed: false,
        missed: false,
        new_epoch: false,
    };
    let (handle, _) = Handle::detached();
    let mut chat = Chat::new("127.0.0.1:60000", &session, handle);
    for seq in 1..=messages {
        chat.received(ServerFrame::Message {
            seq,
            time: 1_764_000_000_000 + seq * 1000,
            from: format!("user{}", seq % 200),
            text: format!(
                "message {seq}: a line of ordinary chat, long enough to wrap once in a narrow window"
            ),
            id: None,
        });
    }
    chat
}

/// `view()` plus a full layout of the result at the default window size.
#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 30)]
fn view_and_layout(bencher: Bencher, messages: u64) {
    let chat = chat_with(messages);
    bencher.bench_local(|| {
        let ui = iced_test::simulator(chat.view());
        divan::black_box(ui);
    });
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
