//! The client's connection module against the real server (in-process on port 0, or as a
//! process to kill), through a proxy that cuts connections like a network fault.
//! Flags: `test_config()` (flag defaults, flood control on) unless a test says otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use chat_client::connection::{Event, new_post_id};
use chat_shared::{RejectCode, ServerFrame};
use chat_tests::{
    Client, Config, Headless, Proxy, ServerProcess, free_port, run_for, say, server_binary, start,
    test_config,
};

const LIMIT: Duration = Duration::from_secs(60);

fn logged_in(event: &Event) -> bool {
    matches!(event, Event::LoggedIn(_))
}

fn message_texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(ServerFrame::Message { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(frame) => frame.seq(),
            _ => None,
        })
        .collect()
}

/// Flags: `--port <a free port> --memory`, started only after the client is already trying.
#[test]
fn offline_at_start_then_the_server_appears() {
    run_for(LIMIT, async {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let client = Headless::start(addr, "early").await;
        let events = client.until(|e| matches!(e, Event::Offline { .. })).await;
        let Some(Event::Offline {
            attempt, retry_in, ..
        }) = events.last()
        else {
            unreachable!()
        };
        assert_eq!(*attempt, 1);
        assert!(*retry_in <= Duration::from_secs(2));
        let _server =
            ServerProcess::start(&server_binary(), &["--port", &port.to_string(), "--memory"])
                .await;
        let events = client.until(logged_in).await;
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Connecting { attempt: 2.. }))
        );
    });
}

/// Flags: defaults, through a proxy. A cut connection comes back by itself and resumes
/// from `since`: what was said meanwhile arrives once, in order, with no gap.
#[test]
fn a_cut_connection_resumes_without_gap_or_duplicate() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let proxy = Proxy::start(server.addr()).await;
        let client = Headless::start(proxy.addr, "roamer").await;
        client.until(logged_in).await;
        let (mut other, _) = Client::login(server.addr(), "other").await;
        other.send(&say("before", "b")).await;
        client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "before"))
            .await;
        proxy.set_down(true);
        proxy.cut();
        client
            .until(|e| matches!(e, Event::Disconnected { .. }))
            .await;
        for i in 0..5 {
            other
                .send(&say(&format!("while away {i}"), &format!("w{i}")))
                .await;
        }
        other
            .recv_until(
                |f| matches!(f, ServerFrame::Message { text, .. } if text == "while away 4"),
            )
            .await;
        proxy.set_down(false);
        let events = client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "while away 4"))
            .await;
        let session = events.iter().find_map(|e| match e {
            Event::LoggedIn(s) => Some(s.clone()),
            _ => None,
        });
        let session = session.expect("logged in again");
        assert!(session.resumed && !session.missed, "{session:?}");
        let texts = message_texts(&events);
        assert_eq!(
            texts,
            (0..5)
                .map(|i| format!("while away {i}"))
                .collect::<Vec<_>>()
        );
        let seqs = seqs(&events);
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "gap or duplicate: {seqs:?}"
        );
    });
}

/// Flags: defaults, through a proxy. Posts made while the connection is down wait in the
/// outbox and are posted exactly once when it is back, even if a cut loses the echo.
#[test]
fn outbox_posts_exactly_once() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let proxy = Proxy::start(server.addr()).await;
        let client = Headless::start(proxy.addr, "writer").await;
        client.until(logged_in).await;
        let (mut watcher, _) = Client::login(server.addr(), "watcher").await;
        proxy.set_down(true);
        proxy.cut();
        client
            .until(|e| matches!(e, Event::Disconnected { .. }))
            .await;
        let ids: Vec<String> = (0..3).map(|_| new_post_id()).collect();
        for (i, id) in ids.iter().enumerate() {
            client
                .handle
                .say(None, id.clone(), format!("typed offline {i}"), false);
        }
        proxy.set_down(false);
        client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "typed offline 2"))
            .await;
        // Now lose the connection right after a post, so its echo may be lost and it is
        // re-sent after the reconnect: the server must drop the copy.
        client
            .handle
            .say(None, new_post_id(), "racing the cut".into(), false);
        proxy.cut();
        client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "racing the cut"))
            .await;
        let seen = watcher
            .recv_until(
                |f| matches!(f, ServerFrame::Message { text, .. } if text == "racing the cut"),
            )
            .await;
        // Once the client has its echo it sends no more copies; any copy the room
        // broadcast is ordered before a post made now.
        watcher.send(&say("sentinel", "sentinel")).await;
        let later = watcher
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "sentinel"))
            .await;
        let texts: Vec<String> = seen
            .into_iter()
            .chain(later)
            .filter_map(|f| match f {
                ServerFrame::Message { text, .. } => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            [
                "typed offline 0",
                "typed offline 1",
                "typed offline 2",
                "racing the cut",
                "sentinel"
            ]
        );
    });
}

/// Flags: `--port 0 --memory` (a process), killed with SIGKILL and started again on the
/// same port. The client comes back by itself in a new epoch, and posts typed meanwhile get
/// through.
#[test]
fn server_killed_and_restarted() {
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(&server_binary(), &["--port", "0", "--memory"]).await;
        let addr = server.addr;
        let client = Headless::start(addr, "survivor").await;
        client.until(logged_in).await;
        server.kill().await;
        client
            .until(|e| matches!(e, Event::Disconnected { .. }))
            .await;
        client.until(|e| matches!(e, Event::Offline { .. })).await;
        client.handle.say(
            None,
            new_post_id(),
            "said while the server was down".into(),
            false,
        );
        let _server = ServerProcess::start(
            &server_binary(),
            &["--port", &addr.port().to_string(), "--memory"],
        )
        .await;
        let events = client.until(logged_in).await;
        let Some(Event::LoggedIn(session)) = events.last() else {
            unreachable!()
        };
        assert!(session.new_epoch && !session.resumed, "{session:?}");
        client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "said while the server was down"))
            .await;
        // A newcomer's replay holds everything said so far: the post must be there once.
        let mut watcher = Client::connect(addr).await;
        watcher.send(&chat_tests::hello("watcher")).await;
        let frames = watcher
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "watcher"))
            .await;
        let posted = frames
            .iter()
            .filter(|f| matches!(f, ServerFrame::Message { text, .. } if text == "said while the server was down"))
            .count();
        assert_eq!(posted, 1);
    });
}

/// Flags: defaults. Refusals for good end the connection with the server's reason.
#[test]
fn rejections_are_reported() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (_alice, _) = Client::login(server.addr(), "alice").await;
        for (name, want) in [
            ("ALICE", RejectCode::NameTaken),
            ("bad\u{202E}name", RejectCode::InvalidName),
        ] {
            let client = Headless::start(server.addr(), name).await;
            let events = client.until(|e| matches!(e, Event::Rejected { .. })).await;
            let Some(Event::Rejected { code, message }) = events.last() else {
                unreachable!()
            };
            assert_eq!(*code, want);
            assert!(!message.is_empty());
            assert!(client.events.recv().await.is_err(), "the connection ended");
        }
    });
}

/// Flags: `--max-clients 1`. `server_full` is retried like an offline server, and the
/// client gets in once there is room.
#[test]
fn server_full_is_retried() {
    let server = start(Config {
        max_clients: 1,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (first, _) = Client::login(server.addr(), "first").await;
        let client = Headless::start(server.addr(), "second").await;
        let events = client.until(|e| matches!(e, Event::Offline { .. })).await;
        assert!(
            matches!(events.last(), Some(Event::Offline { reason, .. }) if reason.contains("full"))
        );
        drop(first);
        client.until(logged_in).await;
    });
}

/// Flags: defaults. `bye` is written and acknowledged by the close: the others see `quit`.
#[test]
fn bye_is_quit() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut watcher, _) = Client::login(server.addr(), "watcher").await;
        let client = Headless::start(server.addr(), "leaver").await;
        client.until(logged_in).await;
        client.handle.bye();
        client.until(|e| matches!(e, Event::Closed)).await;
        let frames = watcher
            .recv_until(|f| matches!(f, ServerFrame::Left { .. }))
            .await;
        assert!(matches!(
            frames.last(),
            Some(ServerFrame::Left {
                reason: chat_shared::LeaveReason::Quit,
                ..
            })
        ));
    });
}
