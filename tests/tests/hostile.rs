//! Hostile input. Each case asserts three things: the offender gets the documented code, a
//! second connected client keeps receiving every event in order while it happens, and a new
//! client can still log in afterwards.
//!
//! Flags: `test_config()` (flag defaults, flood control on at `--rate 5 --burst 20`) unless
//! a case says otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use chat_shared::{ClientFrame, CloseCode, ErrorCode, LeaveReason, RejectCode, ServerFrame};
use chat_tests::{
    Client, Config, assert_closing, assert_rejected, hello, run_for, say, start, test_config,
};
use futures_lite::future;
use smol::Timer;

const LIMIT: Duration = Duration::from_secs(60);
/// Messages the talker posts while the offence goes on (within the default burst).
const TALK: usize = 15;

/// Runs `offence` while a talker chats with an observer, then checks that the observer
/// received every event in order and that a newcomer can log in.
fn survives(config: Config, offence: impl AsyncFnOnce(SocketAddr)) {
    let server = start(config);
    let addr = server.addr();
    run_for(LIMIT, async {
        let (mut observer, _) = Client::login(addr, "observer").await;
        let (mut talker, welcome) = Client::login(addr, "talker").await;
        let ServerFrame::Welcome { seq: start, .. } = welcome else {
            unreachable!()
        };
        let talk = async {
            // One post per echo, so the posts spread over the whole offence.
            for i in 0..TALK {
                let text = format!("t{i}");
                talker.send(&say(&text, &text)).await;
                talker
                    .recv_until(|f| matches!(f, ServerFrame::Message { text: t, .. } if *t == text))
                    .await;
            }
        };
        let observe = async {
            let mut last = start + 1; // the talker's own joined
            let mut heard = Vec::new();
            while heard.len() < TALK {
                let frame = observer.recv().await;
                if let Some(seq) = frame.seq() {
                    if seq <= start + 1 {
                        continue;
                    }
                    assert_eq!(seq, last + 1, "a gap or a reorder: {frame:?}");
                    last = seq;
                }
                match frame {
                    ServerFrame::Message { from, text, .. } if from == "talker" => heard.push(text),
                    ServerFrame::Ping { token } => {
                        observer.send(&ClientFrame::Pong { token }).await;
                    }
                    _ => {}
                }
            }
            let want: Vec<String> = (0..TALK).map(|i| format!("t{i}")).collect();
            assert_eq!(heard, want);
        };
        future::zip(offence(addr), future::zip(talk, observe)).await;
        newcomer(addr).await;
    });
}

/// A new client logs in; like a real client it retries a `server_full` after `retry_after`.
async fn newcomer(addr: SocketAddr) {
    for _ in 0..20 {
        let mut c = Client::connect(addr).await;
        c.send(&hello("newcomer")).await;
        match c.recv().await {
            ServerFrame::Welcome { .. } => return,
            ServerFrame::Rejected {
                code: RejectCode::ServerFull,
                ..
            } => Timer::after(Duration::from_millis(100)).await,
            other => panic!("newcomer: {other:?}"),
        };
    }
    panic!("the newcomer never got in");
}

fn random_line(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut line: Vec<u8> = (0..rng.usize(10..200))
        .map(|_| rng.u8(..))
        .filter(|b| *b != b'\n')
        .collect();
    line.insert(0, b'#'); // never blank, never JSON
    line.push(b'\n');
    line
}

#[test]
fn random_bytes() {
    survives(test_config(), async |addr| {
        let mut rng = fastrand::Rng::with_seed(7);
        let (mut bad, _) = Client::login(addr, "bad").await;
        let lines: Vec<u8> = (0..3).flat_map(|_| random_line(&mut rng)).collect();
        bad.send_raw(&lines).await;
        let frames = bad.recv_to_end().await;
        assert!(frames.iter().any(|f| matches!(
            f,
            ServerFrame::Error {
                code: ErrorCode::BadFrame,
                ..
            }
        )));
        assert_closing(&frames, CloseCode::BadFrame);
    });
}

#[test]
fn random_bytes_before_hello() {
    survives(test_config(), async |addr| {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut bad = Client::connect(addr).await;
        let lines: Vec<u8> = (0..3).flat_map(|_| random_line(&mut rng)).collect();
        bad.send_raw(&lines).await;
        let frames = bad.recv_to_end().await;
        assert_closing(&frames, CloseCode::BadFrame);
    });
}

#[test]
fn invalid_utf8() {
    survives(test_config(), async |addr| {
        let (mut bad, _) = Client::login(addr, "bad").await;
        bad.send_raw(b"{\"type\":\"say\",\"text\":\"\xff\xfe\xc0\"}\n")
            .await;
        assert_eq!(bad.next_error().await, ErrorCode::BadFrame);
        // The connection is still good.
        bad.send(&ClientFrame::Ping { token: None }).await;
        bad.recv_until(|f| matches!(f, ServerFrame::Pong { .. }))
            .await;
    });
}

#[test]
fn one_mebibyte_line_without_newline() {
    survives(test_config(), async |addr| {
        let (mut bad, _) = Client::login(addr, "bad").await;
        let huge = vec![b'a'; 1024 * 1024];
        // The server closes long before the end; the write may fail, that is fine.
        let _ = bad.try_send_raw(&huge).await;
        let frames = bad.recv_to_end().await;
        assert_closing(&frames, CloseCode::FrameTooLong);
    });
}

#[test]
fn json_nesting_bomb() {
    survives(test_config(), async |addr| {
        let (mut bad, _) = Client::login(addr, "bad").await;
        let mut bomb = br#"{"type":"say","text":"#.to_vec();
        bomb.extend(std::iter::repeat_n(b'[', 10_000));
        bomb.push(b'\n');
        bad.send_raw(&bomb).await;
        assert_eq!(bad.next_error().await, ErrorCode::BadFrame);
        // Deeper than a frame may be long: closed.
        let mut bomb = b"[".repeat(20_000);
        bomb.push(b'\n');
        bad.send_raw(&bomb).await;
        assert_closing(&bad.recv_to_end().await, CloseCode::FrameTooLong);
    });
}

#[test]
fn wrong_field_types() {
    survives(test_config(), async |addr| {
        let (mut bad, _) = Client::login(addr, "bad").await;
        for line in [
            &br#"{"type":"say","text":["a"]}"#[..],
            br#"{"type":"history","before":"yesterday"}"#,
        ] {
            bad.send_raw(&[line, b"\n"].concat()).await;
            assert_eq!(bad.next_error().await, ErrorCode::BadFrame);
        }
        bad.send_raw(b"{\"type\":7}\n").await;
        assert_closing(&bad.recv_to_end().await, CloseCode::BadFrame);
    });
}

#[test]
fn say_before_hello() {
    survives(test_config(), async |addr| {
        let mut bad = Client::connect(addr).await;
        bad.send(&say("me first", "x")).await;
        let frames = bad.recv_to_end().await;
        assert_rejected(&frames, RejectCode::ExpectedHello);
    });
}

#[test]
fn hello_twice() {
    survives(test_config(), async |addr| {
        let (mut bad, _) = Client::login(addr, "bad").await;
        bad.send(&hello("bad")).await;
        assert_eq!(bad.next_error().await, ErrorCode::BadFrame);
    });
}

#[test]
fn duplicate_and_confusable_names() {
    survives(test_config(), async |addr| {
        for twin in [
            "observer",
            "Observer",
            "0bserver",
            "\u{043E}bserver",
            "TALKER",
            "ta1ker",
        ] {
            let mut bad = Client::connect(addr).await;
            bad.send(&hello(twin)).await;
            let frames = bad.recv_to_end().await;
            assert_rejected(&frames, RejectCode::NameTaken);
        }
    });
}

#[test]
fn names_with_control_or_bidi_characters() {
    survives(test_config(), async |addr| {
        for name in [
            "ev\u{0000}e",
            "ev\u{001B}[31me",
            "\u{202E}evil",
            "ev\u{2066}e",
            "e\u{200B}ve",
            "eve\u{FEFF}",
        ] {
            let mut bad = Client::connect(addr).await;
            bad.send(&hello(name)).await;
            let frames = bad.recv_to_end().await;
            assert_rejected(&frames, RejectCode::InvalidName);
        }
    });
}

#[test]
fn flooding() {
    survives(test_config(), async |addr| {
        let (mut bad, _) = Client::login(addr, "bad").await;
        let flood = chat_tests::burst_of_says(1000, "spam");
        let _ = bad.try_send_raw(&flood).await;
        let frames = bad.recv_to_end().await;
        assert!(frames.iter().any(|f| matches!(
            f,
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                ..
            }
        )));
        assert_closing(&frames, CloseCode::Flood);
    });
}

/// Flags: `--send-queue 64 --rate 0` (flood control off, so a bulk poster can fill queues).
#[test]
fn a_client_that_never_reads() {
    let config = Config {
        send_queue: 64,
        rate: 0,
        ..test_config()
    };
    survives(config, async |addr| {
        let (mut stalled, _) = Client::login(addr, "stalled").await;
        let (mut bulk, _) = Client::login(addr, "bulk").await;
        let text = "b".repeat(4000);
        let mut kicked = false;
        for i in 0..50_000 {
            bulk.send(&say(&text, &i.to_string())).await;
            for frame in bulk
                .recv_until(|f| matches!(f, ServerFrame::Message { from, .. } if from == "bulk"))
                .await
            {
                if matches!(&frame, ServerFrame::Left { name, reason: LeaveReason::Kicked, .. } if name == "stalled")
                {
                    kicked = true;
                }
            }
            if kicked {
                break;
            }
        }
        assert!(kicked);
        assert_closing(&stalled.recv_to_end().await, CloseCode::SendQueueFull);
    });
}

/// Flags: `--rate 0` (flood control off, so that it can ask as fast as it likes).
#[test]
fn a_client_that_asks_for_history_and_never_reads() {
    let config = Config {
        rate: 0,
        ..test_config()
    };
    survives(config, async |addr| {
        // A history of some 800 KB, then 200 requests for its newest 200 events, none read.
        let (mut bulk, _) = Client::login(addr, "bulk").await;
        let text = "h".repeat(4000);
        for i in 0..200 {
            bulk.send(&say(&text, &i.to_string())).await;
        }
        bulk.recv_until(|f| matches!(f, ServerFrame::Message { id: Some(id), .. } if id == "199"))
            .await;
        let (mut asker, _) = Client::login(addr, "asker").await;
        let ask = chat_shared::Frame::encode(&ClientFrame::History {
            room: None,
            with: None,
            before: None,
            after: None,
            limit: Some(200),
        });
        let _ = asker
            .try_send_raw(ask.as_bytes().repeat(200).as_slice())
            .await;
        assert_closing(&asker.recv_to_end().await, CloseCode::SendQueueFull);
    });
}

/// Flags: `--login-timeout 0.5`.
#[test]
fn a_client_that_connects_and_says_nothing() {
    let config = Config {
        login_timeout: Duration::from_millis(500),
        ..test_config()
    };
    survives(config, async |addr| {
        let mut silent = Client::connect(addr).await;
        assert_closing(&silent.recv_to_end().await, CloseCode::LoginTimeout);
    });
}

#[test]
fn connection_reset_in_the_middle_of_a_frame() {
    survives(test_config(), async |addr| {
        let (mut watcher, _) = Client::login(addr, "watcher").await;
        let (mut bad, _) = Client::login(addr, "bad").await;
        watcher
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "bad"))
            .await;
        bad.send_raw(br#"{"type":"say","te"#).await;
        socket2::SockRef::from(bad.stream())
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
        drop(bad); // SO_LINGER 0: the close is a reset
        let frames = watcher
            .recv_until(|f| matches!(f, ServerFrame::Left { .. }))
            .await;
        assert!(
            matches!(frames.last(), Some(ServerFrame::Left { name, reason: LeaveReason::Lost, .. }) if name == "bad"),
            "{frames:?}"
        );
    });
}

/// Flags: `--max-clients 6` (observer, talker and four more).
#[test]
fn more_connections_than_max_clients() {
    let config = Config {
        max_clients: 6,
        ..test_config()
    };
    survives(config, async |addr| {
        let mut extra = Vec::new();
        for i in 0..4 {
            extra.push(Client::login(addr, &format!("x{i}")).await.0);
        }
        for _ in 0..3 {
            let mut over = Client::connect(addr).await;
            let frames = over.recv_to_end().await;
            assert_rejected(&frames, RejectCode::ServerFull);
        }
    });
}
