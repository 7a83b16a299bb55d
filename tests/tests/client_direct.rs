//! The client's connection with direct messages, against the real server (flags:
//! `test_config()`: loopback, so passwords go without TLS): live both ways, caught up
//! after being away (from where the client left off, or the newest page for a client that
//! never saw the conversation), each message once and in order.

use std::time::Duration;

use chat_client::connection::{Event, Resume, Target};
use chat_shared::{Password, ServerFrame};
use chat_tests::{Headless, run_for, start, test_config};

const LIMIT: Duration = Duration::from_secs(60);

fn account(server: std::net::SocketAddr, name: &str, register: bool) -> Target {
    Target {
        server: server.to_string(),
        name: name.into(),
        password: Some(Password::new(format!("{name}'s password"))),
        register,
        ..Target::default()
    }
}

/// Waits for the login; returns its epoch.
async fn logged_in(client: &Headless) -> String {
    match client
        .until(|e| matches!(e, Event::LoggedIn(_) | Event::Rejected { .. }))
        .await
        .pop()
    {
        Some(Event::LoggedIn(session)) => {
            assert!(session.account);
            session.epoch
        }
        other => panic!("not logged in: {other:?}"),
    }
}

/// The direct messages among `events`: (with, seq, text).
fn directs(events: &[Event]) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(ServerFrame::Message {
                with: Some(with),
                seq,
                text,
                ..
            }) => Some((with.clone(), *seq, text.clone())),
            _ => None,
        })
        .collect()
}

async fn until_text(client: &Headless, text: &str) -> Vec<Event> {
    client
        .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text: t, .. }) if t == text))
        .await
}

#[test]
fn direct_messages_live_and_caught_up() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let judy = Headless::connect(account(server.addr(), "Judy", true), Resume::default()).await;
        logged_in(&judy).await;
        let karl = Headless::connect(account(server.addr(), "karl", true), Resume::default()).await;
        let epoch = logged_in(&karl).await;

        judy.handle
            .say(Some("@karl"), "j1".into(), "psst".into(), false);
        let got = directs(&until_text(&karl, "psst").await);
        assert_eq!(got, [("Judy".into(), 1, "psst".into())]);
        let echo = directs(&until_text(&judy, "psst").await);
        assert_eq!(echo, [("karl".into(), 1, "psst".into())]);
        karl.handle
            .say(Some("@Judy"), "k1".into(), "yes?".into(), false);
        until_text(&judy, "yes?").await;

        // Karl goes away; Judy writes on.
        karl.handle.bye();
        karl.until(|e| matches!(e, Event::Closed)).await;
        for i in 0..3 {
            let text = format!("while away {i}");
            judy.handle
                .say(Some("@karl"), format!("j{}", i + 2), text.clone(), false);
            until_text(&judy, &text).await;
        }

        // Back, from where he left off (seq 2 seen): the three, once, in order.
        let resume = Resume {
            epoch: Some(epoch),
            default_room: Some("general".into()),
            rooms: Some(vec![("general".into(), 0), ("@Judy".into(), 2)]),
        };
        let karl = Headless::connect(account(server.addr(), "karl", false), resume).await;
        logged_in(&karl).await;
        let got = directs(&until_text(&karl, "while away 2").await);
        assert_eq!(
            got,
            [
                ("Judy".into(), 3, "while away 0".into()),
                ("Judy".into(), 4, "while away 1".into()),
                ("Judy".into(), 5, "while away 2".into()),
            ]
        );

        // A new device that never saw the conversation gets its newest page.
        let fresh =
            Headless::connect(account(server.addr(), "karl", false), Resume::default()).await;
        logged_in(&fresh).await;
        let got = directs(&until_text(&fresh, "while away 2").await);
        assert_eq!(
            got.iter().map(|(_, seq, _)| *seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    });
}
