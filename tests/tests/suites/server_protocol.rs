//! Every rule and code of the protocol, and every server flag, over real sockets.
//!
//! Each test starts its own server on port 0 with `test_config()` (the flag defaults, two
//! threads, flood control on at `--rate 5 --burst 20`) and states the flags it changes.

use std::time::Duration;

use chat_shared::{
    ClientFrame, CloseCode, ErrorCode, LeaveReason, PROTOCOL_VERSION, RejectCode, ServerFrame,
};
use chat_tests::{Client, assert_closing, assert_rejected, hello, run_for, say, test_config};

use super::start;

const LIMIT: Duration = Duration::from_secs(30);

fn welcome_fields(welcome: &ServerFrame) -> (u64, u64, String, String, Vec<String>) {
    match welcome {
        ServerFrame::Welcome {
            seq,
            oldest,
            epoch,
            token,
            users,
            ..
        } => (*seq, *oldest, epoch.clone(), token.clone(), users.clone()),
        other => panic!("not a welcome: {other:?}"),
    }
}

/// Flags: defaults. A session as the protocol describes it (shared/README.md): welcome, own joined, message echoed with id.
#[test]
fn login_say_and_bye() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, welcome) = Client::login(server.addr(), " alice ").await;
        let (seq, oldest, _, _, users) = welcome_fields(&welcome);
        assert_eq!((seq, oldest), (0, 0));
        assert_eq!(users, ["alice"]);
        assert_eq!(alice.name, "alice", "trimmed");
        let (mut bob, welcome) = Client::login(server.addr(), "bob").await;
        assert_eq!(welcome_fields(&welcome).4, ["alice", "bob"]);
        alice
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "bob"))
            .await;
        bob.send(&say("hi alice", "id-1")).await;
        for client in [&mut alice, &mut bob] {
            let frame = client.recv().await;
            assert!(
                matches!(&frame, ServerFrame::Message { seq: 3, from, text, id: Some(id), .. }
                    if from == "bob" && text == "hi alice" && id == "id-1"),
                "{frame:?}"
            );
        }
        bob.send(&ClientFrame::Bye).await;
        assert!(
            bob.recv_to_end().await.is_empty(),
            "bye is acknowledged by the close"
        );
        let left = alice.recv().await;
        assert!(
            matches!(&left, ServerFrame::Left { seq: 4, name, reason: LeaveReason::Quit, .. } if name == "bob"),
            "{left:?}"
        );
    });
}

/// Flags: defaults. `users` is sorted by case-folded name; `from` is the accepted name.
#[test]
fn users_sorted_case_insensitively() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let _b = Client::login(server.addr(), "bravo").await;
        let _a = Client::login(server.addr(), "Alpha").await;
        let (_c, welcome) = Client::login(server.addr(), "charlie").await;
        assert_eq!(welcome_fields(&welcome).4, ["Alpha", "bravo", "charlie"]);
    });
}

/// Flags: defaults. `name_taken` for the same name, another case, and confusables.
#[test]
fn rejected_name_taken() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (_alice, _) = Client::login(server.addr(), "alice").await;
        for twin in ["alice", "ALICE", "A1ice", "AIice", "\u{0430}lice"] {
            let mut c = Client::connect(server.addr()).await;
            c.send(&hello(twin)).await;
            let frames = c.recv_to_end().await;
            assert_rejected(&frames, RejectCode::NameTaken);
        }
    });
}

/// Flags: defaults. `invalid_name` says which rule failed.
#[test]
fn rejected_invalid_name() {
    let server = start(test_config());
    run_for(LIMIT, async {
        for (name, words) in [
            ("", "empty"),
            ("a\u{202E}b", "formatting"),
            ("a\u{0007}b", "control"),
            ("a  b", "two spaces"),
            (&"x".repeat(33), "at most 32"),
            ("a!", "use letters"),
        ] {
            let mut c = Client::connect(server.addr()).await;
            c.send(&hello(name)).await;
            let frames = c.recv_to_end().await;
            let message = assert_rejected(&frames, RejectCode::InvalidName);
            assert!(message.contains(words), "{name:?}: {message}");
        }
    });
}

/// Flags: defaults. `unsupported_protocol` and `expected_hello`.
#[test]
fn rejected_protocol_and_expected_hello() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let mut c = Client::connect(server.addr()).await;
        c.send(&ClientFrame::Hello {
            password: None,
            register: false,
            protocol: PROTOCOL_VERSION + 1,
            name: "x".into(),
            since: None,
            epoch: None,
            token: None,
        })
        .await;
        assert_rejected(&c.recv_to_end().await, RejectCode::UnsupportedProtocol);
        let mut c = Client::connect(server.addr()).await;
        c.send(&say("before hello", "1")).await;
        assert_rejected(&c.recv_to_end().await, RejectCode::ExpectedHello);
    });
}

/// Flags: `--max-clients 2`. The third connection gets `server_full` with `retry_after`.
#[test]
fn rejected_server_full() {
    let server = start(chat_tests::Config {
        max_clients: 2,
        ..test_config()
    });
    // The limits are a server's (in a cluster, each node's): every connection to one.
    let addr = server.addr();
    run_for(LIMIT, async {
        let _a = Client::login(addr, "a").await;
        let b = Client::connect(addr).await;
        let mut c = Client::connect(addr).await;
        let frames = c.recv_to_end().await;
        assert_rejected(&frames, RejectCode::ServerFull);
        drop(b);
        // The place is given back once the connection is gone; like a client, retry after
        // a pause while the server is still full.
        let mut ok = None;
        for _ in 0..100 {
            let mut d = Client::connect(addr).await;
            d.send(&hello("d")).await;
            if let ServerFrame::Welcome { .. } = d.recv().await {
                ok = Some(d);
                break;
            }
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        assert!(ok.is_some(), "a place frees up after a disconnect");
    });
}

/// Flags: `--max-per-ip 2`. The third connection from 127.0.0.1 gets `too_many_connections`.
#[test]
fn rejected_too_many_connections() {
    let server = start(chat_tests::Config {
        max_per_ip: 2,
        ..test_config()
    });
    // The limits are a server's (in a cluster, each node's): every connection to one.
    let addr = server.addr();
    run_for(LIMIT, async {
        let _a = Client::connect(addr).await;
        let _b = Client::connect(addr).await;
        let mut c = Client::connect(addr).await;
        let frames = c.recv_to_end().await;
        assert_rejected(&frames, RejectCode::TooManyConnections);
    });
}

/// Flags: `--max-per-ip 0` (no cap). Many connections from one address are fine.
#[test]
fn max_per_ip_zero_means_no_cap() {
    let server = start(chat_tests::Config {
        max_per_ip: 0,
        ..test_config()
    });
    run_for(LIMIT, async {
        let mut clients = Vec::new();
        for i in 0..80 {
            clients.push(Client::login(server.addr(), &format!("u{i}")).await.0);
        }
    });
}

/// Flags: defaults. `error` codes: `bad_frame`, `unknown_type`, `too_long`, `empty`,
/// `bad_text`; each carries the say's `id` and has no effect.
#[test]
fn error_codes() {
    let server = start(chat_tests::Config {
        max_text: 10,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut a, _) = Client::login(server.addr(), "a").await;
        let expect = async |a: &mut Client, bytes: &[u8], want: ErrorCode, id: Option<&str>| {
            a.send_raw(bytes).await;
            match a.recv().await {
                ServerFrame::Error { code, id: got, .. } => {
                    assert_eq!(code, want, "{}", String::from_utf8_lossy(bytes));
                    assert_eq!(got.as_deref(), id);
                }
                other => panic!("{other:?}"),
            }
        };
        expect(
            &mut a,
            b"{\"type\":\"say\",\"text\":5}\n",
            ErrorCode::BadFrame,
            None,
        )
        .await;
        expect(
            &mut a,
            b"{\"type\":\"wave\"}\n",
            ErrorCode::UnknownType,
            None,
        )
        .await;
        // --max-text 10: eleven bytes are too long, ten are fine.
        expect(
            &mut a,
            b"{\"type\":\"say\",\"text\":\"0123456789a\",\"id\":\"t\"}\n",
            ErrorCode::TooLong,
            Some("t"),
        )
        .await;
        expect(
            &mut a,
            b"{\"type\":\"say\",\"text\":\" \\n\\t \",\"id\":\"e\"}\n",
            ErrorCode::Empty,
            Some("e"),
        )
        .await;
        expect(
            &mut a,
            b"{\"type\":\"say\",\"text\":\"a\\u0007\",\"id\":\"c\"}\n",
            ErrorCode::BadText,
            Some("c"),
        )
        .await;
        a.send(&say("0123456789", "ok")).await;
        let frame = a.recv().await;
        assert!(
            matches!(frame, ServerFrame::Message { seq: 2, .. }),
            "nothing before had an effect: {frame:?}"
        );
    });
}

/// Flags: defaults. `hello` twice is a bad frame; three bad frames in a row close with
/// `closing`/`bad_frame`, and the others see `left`/`kicked`.
#[test]
fn bad_frames_in_a_row_close() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut watcher, _) = Client::login(server.addr(), "watcher").await;
        let (mut a, _) = Client::login(server.addr(), "a").await;
        a.send(&hello("a")).await;
        assert!(matches!(
            a.recv().await,
            ServerFrame::Error {
                code: ErrorCode::BadFrame,
                ..
            }
        ));
        // A good frame breaks the row.
        a.send(&ClientFrame::Ping { token: None }).await;
        assert!(matches!(a.recv().await, ServerFrame::Pong { .. }));
        a.send_raw(b"{\n\xff\xfe\n[1,2]\n").await;
        let frames = a.recv_to_end().await;
        assert_eq!(frames.len(), 3, "{frames:?}");
        assert_closing(&frames, CloseCode::BadFrame);
        assert_eq!(watcher.next_left().await.1, LeaveReason::Kicked);
    });
}

/// Flags: `--max-frame 100`. A longer frame closes with `frame_too_long`.
#[test]
fn frame_too_long_closes() {
    let server = start(chat_tests::Config {
        max_frame: 100,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut a, _) = Client::login(server.addr(), "a").await;
        // Exactly 100 bytes with the newline is fine.
        let text = "x".repeat(100 - r#"{"type":"say","text":""}"#.len() - 1);
        a.send(&ClientFrame::Say {
            to: None,
            me: false,
            reply_to: None,
            room: None,
            text,
            id: None,
        })
        .await;
        assert!(matches!(a.recv().await, ServerFrame::Message { .. }));
        a.send_raw(format!("{{\"type\":\"say\",\"text\":\"{}\"}}\n", "y".repeat(100)).as_bytes())
            .await;
        let frames = a.recv_to_end().await;
        assert_closing(&frames, CloseCode::FrameTooLong);
    });
}

/// Flags: `--rate 1 --burst 2`. Over the limit: `rate_limited` with the id and
/// `retry_after`; the post had no effect.
#[test]
fn rate_limited() {
    let server = start(chat_tests::Config {
        rate: 1,
        burst: 2,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut a, _) = Client::login(server.addr(), "a").await;
        for i in 0..3 {
            a.send(&say("x", &format!("p{i}"))).await;
        }
        // The error goes straight back while posts pass through the room: any order.
        let mut frames = [a.recv().await, a.recv().await, a.recv().await];
        frames.sort_by_key(|f| matches!(f, ServerFrame::Error { .. }));
        assert!(matches!(&frames[0], ServerFrame::Message { id: Some(id), .. } if id != "p2"));
        assert!(matches!(&frames[1], ServerFrame::Message { id: Some(id), .. } if id != "p2"));
        match &frames[2] {
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                id,
                retry_after: Some(ms),
                ..
            } => {
                assert_eq!(id.as_deref(), Some("p2"));
                assert!(*ms > 0 && *ms <= 1001, "{ms}");
            }
            other => panic!("{other:?}"),
        }
    });
}

/// Flags: `--rate 0` turns flood control off: 300 posts at once all go through.
#[test]
fn rate_zero_turns_flood_control_off() {
    let server = start(chat_tests::Config {
        rate: 0,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut a, _) = Client::login(server.addr(), "a").await;
        let burst = chat_tests::burst_of_says(300, "x");
        a.send_raw(&burst).await;
        for _ in 0..300 {
            assert!(matches!(a.recv().await, ServerFrame::Message { .. }));
        }
    });
}

/// Flags: `--rate 5 --burst 20` (defaults). A client far over the rate is closed with
/// `flood`; the others see it `kicked`.
#[test]
fn flood_closes() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut watcher, _) = Client::login(server.addr(), "watcher").await;
        let (mut a, _) = Client::login(server.addr(), "a").await;
        let burst = chat_tests::burst_of_says(400, "x");
        a.send_raw(&burst).await;
        let frames = a.recv_to_end().await;
        assert_closing(&frames, CloseCode::Flood);
        assert!(frames.iter().any(|f| matches!(
            f,
            ServerFrame::Error {
                code: ErrorCode::RateLimited,
                ..
            }
        )));
        assert_eq!(watcher.next_left().await.1, LeaveReason::Kicked);
    });
}

/// Flags: `--login-timeout 0.2`. A silent connection gets `closing`/`login_timeout`.
#[test]
fn login_timeout() {
    let server = start(chat_tests::Config {
        login_timeout: Duration::from_millis(200),
        ..test_config()
    });
    run_for(LIMIT, async {
        let mut c = Client::connect(server.addr()).await;
        let started = std::time::Instant::now();
        let frames = c.recv_to_end().await;
        assert_closing(&frames, CloseCode::LoginTimeout);
        assert!(started.elapsed() >= Duration::from_millis(150));
    });
}

/// Flags: `--idle-timeout 0.3`. Silence: `ping`, then `closing`/`idle_timeout`, and the
/// others see `left`/`timeout`. Answering the ping keeps the connection.
#[test]
fn idle_timeout() {
    let server = start(chat_tests::Config {
        idle_timeout: Duration::from_millis(300),
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut alive, _) = Client::login(server.addr(), "alive").await;
        let (mut silent, _) = Client::login(server.addr(), "silent").await;
        alive
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "silent"))
            .await;
        let watch = async {
            // "alive" answers its pings, so it outlives "silent".
            loop {
                match alive.recv().await {
                    ServerFrame::Ping { token } => alive.send(&ClientFrame::Pong { token }).await,
                    ServerFrame::Left { name, reason, .. } => {
                        assert_eq!((name.as_str(), reason), ("silent", LeaveReason::Timeout));
                        break;
                    }
                    other => panic!("{other:?}"),
                }
            }
        };
        let (frames, ()) = futures_lite::future::zip(silent.recv_to_end(), watch).await;
        assert!(
            matches!(frames.first(), Some(ServerFrame::Ping { .. })),
            "{frames:?}"
        );
        assert_closing(&frames, CloseCode::IdleTimeout);
        alive
            .send(&ClientFrame::Ping {
                token: Some("still".into()),
            })
            .await;
        let frames = alive
            .recv_until(|f| matches!(f, ServerFrame::Pong { .. }))
            .await;
        assert!(
            matches!(frames.last(), Some(ServerFrame::Pong { token: Some(t) }) if t == "still")
        );
    });
}

/// Flags: defaults. A dropped connection is `left`/`lost`.
#[test]
fn left_lost() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut a, _) = Client::login(server.addr(), "a").await;
        let (b, _) = Client::login(server.addr(), "b").await;
        drop(b);
        assert_eq!(a.next_left().await.1, LeaveReason::Lost);
    });
}

/// Flags: `--history 5 --replay 2`. A login without `since` gets the newest 2 events; with
/// `since` and the epoch, exactly what came after; with another epoch, everything held;
/// `oldest` tells what the server still holds.
#[test]
fn history_replay_and_since() {
    let server = start(chat_tests::Config {
        history: 5,
        replay: 2,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut a, _) = Client::login(server.addr(), "a").await; // seq 1
        for i in 0..6 {
            a.send(&say(&format!("m{i}"), &format!("i{i}"))).await; // seqs 2..=7
            a.recv().await;
        }
        let mut c = Client::connect(server.addr()).await;
        c.send(&hello("c")).await;
        let (seq, oldest, epoch, _, _) = welcome_fields(&c.recv().await);
        // With `--memory` the server holds its window only; a durable log (a cluster's
        // Redis) holds everything.
        let held_from = if server.durable() { 1 } else { 3 };
        assert_eq!((seq, oldest), (7, held_from));
        let replay: Vec<u64> = vec![
            c.recv().await.seq().unwrap_or(0),
            c.recv().await.seq().unwrap_or(0),
        ];
        assert_eq!(replay, [6, 7]);
        assert!(matches!(c.recv().await, ServerFrame::Joined { seq: 8, .. }));
        let resume = async |name: &str, since: u64, epoch: &str| {
            let mut d = Client::connect(server.addr()).await;
            d.send(&ClientFrame::Hello {
                password: None,
                register: false,
                protocol: 1,
                name: name.into(),
                since: Some(since),
                epoch: Some(epoch.into()),
                token: None,
            })
            .await;
            d.recv().await;
            let frames = d
                .recv_until(|f| matches!(f, ServerFrame::Joined { name: n, .. } if n == name))
                .await;
            let seqs: Vec<_> = frames[..frames.len() - 1]
                .iter()
                .filter_map(ServerFrame::seq)
                .collect();
            (d, seqs)
        };
        let (_d1, seqs) = resume("d1", 5, &epoch).await;
        assert_eq!(seqs, [6, 7, 8], "after since, same epoch");
        let (_d2, seqs) = resume("d2", 9, "another").await;
        assert_eq!(seqs, [5, 6, 7, 8, 9], "everything held, another epoch");
        // `history` answers older events of the epoch, oldest first, then history_end.
        c.send(&ClientFrame::History {
            with: None,
            room: None,
            before: Some(8),
            after: None,
            limit: Some(2),
        })
        .await;
        let frames = c
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        // Live events (d1 and d2 joining) may come first; the answer is what precedes the end.
        let seqs: Vec<_> = frames[frames.len() - 3..]
            .iter()
            .filter_map(ServerFrame::seq)
            .collect();
        assert_eq!(seqs, [6, 7]);
        assert!(matches!(
            frames.last(),
            Some(ServerFrame::HistoryEnd {
                before: Some(8),
                after: None,
                count: 2,
                ..
            })
        ));
    });
}

/// Flags: defaults. A re-sent `id` is not broadcast again, across reconnects; the sender
/// gets the original message back.
#[test]
fn post_ids_are_deduplicated() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut watcher, _) = Client::login(server.addr(), "watcher").await;
        let (mut a, _) = Client::login(server.addr(), "a").await;
        a.send(&say("once", "same-id")).await;
        let original = a.recv().await;
        drop(a);
        // Until the server has noticed the drop, "a" is still online (name_taken).
        let mut seen = watcher
            .recv_until(|f| matches!(f, ServerFrame::Left { name, .. } if name == "a"))
            .await;
        let (mut a, _) = Client::login(server.addr(), "a").await;
        a.send(&say("once", "same-id")).await;
        assert_eq!(a.recv().await, original, "the original comes back");
        a.send(&say("next", "other-id")).await;
        a.recv().await;
        seen.extend(
            watcher
                .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "next"))
                .await,
        );
        let onces = seen
            .iter()
            .filter(|f| matches!(f, ServerFrame::Message { text, .. } if text == "once"))
            .count();
        assert_eq!(onces, 1);
    });
}

/// Flags: defaults. A `hello` with the token of a session still online takes it over: the
/// old connection gets `closing`/`replaced`, the others see nothing.
#[test]
fn takeover_with_token() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut watcher, _) = Client::login(server.addr(), "watcher").await;
        let (mut old, welcome) = Client::login(server.addr(), "a").await;
        let token = welcome_fields(&welcome).3;
        watcher
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "a"))
            .await;
        // A wrong token is name_taken.
        let mut thief = Client::connect(server.addr()).await;
        thief
            .send(&ClientFrame::Hello {
                password: None,
                register: false,
                protocol: 1,
                name: "a".into(),
                since: None,
                epoch: None,
                token: Some("nope".into()),
            })
            .await;
        assert_rejected(&thief.recv_to_end().await, RejectCode::NameTaken);
        let mut new = Client::connect(server.addr()).await;
        new.send(&ClientFrame::Hello {
            password: None,
            register: false,
            protocol: 1,
            name: "a".into(),
            since: None,
            epoch: None,
            token: Some(token),
        })
        .await;
        let (_, _, _, _, users) = welcome_fields(&new.recv().await);
        assert_eq!(users, ["a", "watcher"]);
        let frames = old.recv_to_end().await;
        assert_closing(&frames, CloseCode::Replaced);
        new.send(&say("back", "b1")).await;
        let seen = watcher
            .recv_until(|f| matches!(f, ServerFrame::Message { .. }))
            .await;
        assert!(
            !seen
                .iter()
                .any(|f| matches!(f, ServerFrame::Left { .. } | ServerFrame::Joined { .. })),
            "{seen:?}"
        );
        assert!(matches!(seen.last(), Some(ServerFrame::Message { from, .. }) if from == "a"));
    });
}

/// Flags: `--send-queue 16`. A member that stops reading is closed with
/// `send_queue_full` once its queue overflows; it reads that as its last frame.
#[test]
fn send_queue_full() {
    let server = start(chat_tests::Config {
        send_queue: 16,
        rate: 0,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut watcher, _) = Client::login(server.addr(), "watcher").await;
        let (mut stalled, _) = Client::login(server.addr(), "stalled").await;
        let (mut talker, _) = Client::login(server.addr(), "talker").await;
        let text = "z".repeat(4000);
        let mut kicked = false;
        for i in 0..20_000 {
            talker.send(&say(&text, &i.to_string())).await;
            loop {
                match watcher.recv().await {
                    ServerFrame::Left { name, reason, .. } if name == "stalled" => {
                        assert_eq!(reason, LeaveReason::Kicked);
                        kicked = true;
                    }
                    ServerFrame::Message { .. } => break,
                    _ => {}
                }
            }
            if kicked {
                break;
            }
        }
        assert!(kicked, "the stalled member was closed");
        let frames = stalled.recv_to_end().await;
        assert_closing(&frames, CloseCode::SendQueueFull);
    });
}

/// Flags: `--coalesce-ms 0 --threads 1`. Without write coalescing, on one thread, events
/// still arrive in order.
#[test]
fn no_coalescing_one_thread() {
    let server = start(chat_tests::Config {
        coalesce: Duration::ZERO,
        threads: 1,
        rate: 0,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut a, _) = Client::login(server.addr(), "a").await;
        let (mut b, _) = Client::login(server.addr(), "b").await;
        a.recv().await;
        for i in 0..50 {
            a.send(&say(&i.to_string(), &i.to_string())).await;
        }
        for i in 0..50u64 {
            assert!(matches!(b.recv().await, ServerFrame::Message { seq, .. } if seq == 3 + i));
        }
    });
}
