//! Encode/decode throughput for a typical ~100-byte `say` and `message` frame.
//! Run with `cargo bench -p chat-shared`; frames/s per core = 1 / median time.

use chat_shared::{ClientFrame, Decoder, Frame, ServerFrame};
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

fn say() -> ClientFrame {
    ClientFrame::Say {
        to: None,
        me: false,
        reply_to: None,
        room: None,
        text: "hello everyone, this is a fairly ordinary chat line".into(),
        id: Some("5b1e0c9a7d3f2e84".into()),
    }
}

fn message() -> ServerFrame {
    ServerFrame::Message {
        with: None,
        me: false,
        room: None,
        seq: 123_456,
        time: 1_764_000_000_000,
        from: "alice".into(),
        text: "hello everyone, this is a fairly ordinary chat".into(),
        id: None,
        deleted: false,
        reply_to: None,
        edited: None,
        reactions: Vec::new(),
    }
}

/// Decoding one `say` line from a read buffer, as the server does for every post.
#[divan::bench(sample_count = 500, sample_size = 200)]
fn decode_say(bencher: Bencher) {
    let line = Frame::encode(&say());
    let mut decoder = Decoder::<ClientFrame>::new(16 * 1024);
    bencher
        .counter(divan::counter::BytesCount::new(line.len()))
        .bench_local(|| {
            let mut input = black_box(line.as_bytes());
            decoder.next_frame(&mut input)
        });
}

/// Decoding one `message` line, as a client does for every delivery.
#[divan::bench(sample_count = 500, sample_size = 200)]
fn decode_message(bencher: Bencher) {
    let line = Frame::encode(&message());
    let mut decoder = Decoder::<ServerFrame>::new(1024 * 1024);
    bencher
        .counter(divan::counter::BytesCount::new(line.len()))
        .bench_local(|| {
            let mut input = black_box(line.as_bytes());
            decoder.next_frame(&mut input)
        });
}

/// Encoding one `message`, which the server does once per post whatever the room's size.
#[divan::bench]
fn encode_message(bencher: Bencher) {
    let frame = message();
    bencher.bench_local(|| Frame::encode(black_box(&frame)));
}

/// Encoding one `say`, as a client does for every post.
#[divan::bench]
fn encode_say(bencher: Bencher) {
    let frame = say();
    bencher.bench_local(|| Frame::encode(black_box(&frame)));
}
