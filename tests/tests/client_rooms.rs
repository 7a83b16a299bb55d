//! The client's connection module in several rooms, against the real server (in-process
//! on port 0), through a proxy that cuts connections like a network fault: every room
//! resumes with no gap and no duplicate, a restarted client re-joins where it left off,
//! a refused join is not tried again. Each test states the server flags it uses.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chat_client::connection::{Event, Resume, new_post_id};
use chat_shared::{ClientFrame, ErrorCode, LeaveReason, ServerFrame};
use chat_tests::{Client, Config, Headless, Proxy, run_for, start, test_config};

const LIMIT: Duration = Duration::from_secs(60);

fn say_in(room: &str, text: &str) -> ClientFrame {
    ClientFrame::Say {
        to: None,
        room: Some(room.into()),
        text: text.into(),
        id: Some(new_post_id()),
        me: false,
        reply_to: None,
    }
}

async fn enter(client: &mut Client, room: &str) {
    client
        .send(&ClientFrame::Join {
            room: room.into(),
            since: None,
        })
        .await;
    let me = client.name.clone();
    client
        .recv_until(|f| matches!(f, ServerFrame::Joined { name, room: Some(r), .. } if *name == me && r == room))
        .await;
}

/// Waits until the headless client has the `room` answer of each of `rooms`.
async fn answered(client: &Headless, rooms: &[&str]) -> Vec<Event> {
    let mut left: HashSet<String> = rooms.iter().map(ToString::to_string).collect();
    let mut seen = Vec::new();
    while !left.is_empty() {
        let event = client.next().await;
        if let Event::Frame(ServerFrame::Room { room, .. }) = &event {
            left.remove(room);
        }
        seen.push(event);
    }
    seen
}

/// Room events by room: (seq, text or "joined"/"left").
fn by_room(events: &[Event]) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut rooms: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for event in events {
        let Event::Frame(frame) = event else { continue };
        let (Some(seq), Some(room)) = (frame.seq(), frame.room()) else {
            continue;
        };
        let what = match frame {
            ServerFrame::Message { text, .. } => text.clone(),
            ServerFrame::Joined { name, .. } => format!("{name} joined"),
            ServerFrame::Left { name, .. } => format!("{name} left"),
            _ => continue,
        };
        rooms.entry(room.to_string()).or_default().push((seq, what));
    }
    rooms
}

fn contiguous(seqs: &[(u64, String)]) -> bool {
    seqs.windows(2).all(|w| w[1].0 == w[0].0 + 1)
}

/// Flags: `--replay-max 5` (a bounded replay, so a room that missed more is filled with
/// `history after`), `--rate 0` (flood control off for the burst), through a proxy. The
/// connection is cut while others talk in three rooms and the client types in one: after
/// it comes back, each room has everything once, in order, and the post went out once.
#[test]
fn every_room_resumes_after_a_cut() {
    let server = start(Config {
        replay_max: 5,
        rate: 0,
        ..test_config()
    });
    run_for(LIMIT, async {
        let proxy = Proxy::start(server.addr()).await;
        let client = Headless::start(proxy.addr, "roamer").await;
        client.until(|e| matches!(e, Event::LoggedIn(_))).await;
        client.handle.join("rust");
        client.handle.join("go");
        answered(&client, &["rust", "go"]).await;
        let (mut other, _) = Client::login_v2(server.addr(), "other").await;
        enter(&mut other, "rust").await;
        enter(&mut other, "go").await;
        other.send(&say_in("rust", "before")).await;
        let before = client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "before"))
            .await;
        let last_before = before.last().and_then(|e| match e {
            Event::Frame(frame) => frame.seq(),
            _ => None,
        });

        proxy.set_down(true);
        proxy.cut();
        client
            .until(|e| matches!(e, Event::Disconnected { .. }))
            .await;
        client
            .handle
            .say(Some("go"), new_post_id(), "typed while away".into(), false);
        for i in 0..12 {
            other.send(&say_in("rust", &format!("rust {i}"))).await;
        }
        for i in 0..3 {
            other.send(&say_in("go", &format!("go {i}"))).await;
        }
        other.send(&say_in("general", "general 0")).await;
        other
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "general 0"))
            .await;
        proxy.set_down(false);

        let mut events = Vec::new();
        let mut waiting: HashSet<&str> = ["rust 11", "go 2", "general 0", "typed while away"]
            .into_iter()
            .collect();
        while !waiting.is_empty() {
            let event = client.next().await;
            if let Event::Frame(ServerFrame::Message { text, .. }) = &event {
                waiting.remove(text.as_str());
            }
            events.push(event);
        }
        let rooms = by_room(&events);
        let rust = &rooms["rust"];
        assert_eq!(
            rust.first().map(|(seq, _)| Some(*seq)),
            Some(last_before.map(|s| s + 1))
        );
        // The cut closed the old connection on the server too: the client left and came
        // back, and sees that in the replay; the messages are what matters here.
        let texts: Vec<&str> = rust
            .iter()
            .map(|(_, t)| t.as_str())
            .filter(|t| t.starts_with("rust "))
            .collect();
        assert_eq!(
            texts,
            (0..12).map(|i| format!("rust {i}")).collect::<Vec<_>>(),
            "all of it, beyond the replay of 5"
        );
        for (room, seqs) in &rooms {
            assert!(contiguous(seqs), "{room}: gap or duplicate: {seqs:?}");
        }
        let go: Vec<&str> = rooms["go"].iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(go.iter().filter(|t| **t == "typed while away").count(), 1);
        let go_messages: Vec<&str> = go
            .iter()
            .copied()
            .filter(|t| t.starts_with("go "))
            .collect();
        assert_eq!(go_messages, ["go 0", "go 1", "go 2"]);
        let heard = other
            .recv_until(
                |f| matches!(f, ServerFrame::Message { text, .. } if text == "typed while away"),
            )
            .await;
        assert!(
            matches!(heard.last(), Some(ServerFrame::Message { room: Some(r), .. }) if r == "go")
        );
    });
}

/// Flags: defaults. A client that starts again from what an earlier run remembered (the
/// epoch, its rooms and the newest seq seen in each) re-joins them and gets only what it
/// missed; a default room it had left, it leaves again.
#[test]
fn a_restarted_client_rejoins_where_it_left_off() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let client = Headless::start(server.addr(), "sleeper").await;
        let events = client.until(|e| matches!(e, Event::LoggedIn(_))).await;
        let Some(Event::LoggedIn(session)) = events.last() else {
            unreachable!()
        };
        let epoch = session.epoch.clone();
        client.handle.join("rust");
        answered(&client, &["rust"]).await;
        let (mut other, _) = Client::login_v2(server.addr(), "other").await;
        enter(&mut other, "rust").await;
        other.send(&say_in("rust", "seen")).await;
        let seen = client
            .until(
                |e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "seen"),
            )
            .await;
        let Some(Event::Frame(ServerFrame::Message { seq, .. })) = seen.last() else {
            unreachable!()
        };
        let seen_seq = *seq;
        client.handle.bye();
        client.until(|e| matches!(e, Event::Closed)).await;
        for i in 0..3 {
            other.send(&say_in("rust", &format!("missed {i}"))).await;
        }
        other.send(&say_in("general", "in general")).await;
        other
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "in general"))
            .await;

        // Back, remembering only rust (general was left): rust resumes after `seen`.
        let again = Headless::resume(
            server.addr(),
            "sleeper",
            Resume {
                epoch: Some(epoch),
                default_room: Some("general".into()),
                rooms: Some(vec![("rust".into(), seen_seq)]),
            },
        )
        .await;
        let events = again
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "missed 2"))
            .await;
        let session = events.iter().find_map(|e| match e {
            Event::LoggedIn(s) => Some(s.clone()),
            _ => None,
        });
        assert_eq!(session.map(|s| s.rooms), Some(vec!["rust".to_string()]));
        let rooms = by_room(&events);
        assert!(!rooms.contains_key("general"), "not in general: {rooms:?}");
        let rust: Vec<&str> = rooms["rust"]
            .iter()
            .map(|(_, t)| t.as_str())
            .filter(|t| t.starts_with("missed") || *t == "seen")
            .collect();
        assert_eq!(
            rust,
            ["missed 0", "missed 1", "missed 2"],
            "only what was missed"
        );
        // The server put the new connection in general; the client left it again.
        let frames = other
            .recv_until(|f| matches!(f, ServerFrame::Left { name, room: Some(r), .. } if name == "sleeper" && r == "general"))
            .await;
        assert!(matches!(
            frames.last(),
            Some(ServerFrame::Left {
                reason: LeaveReason::Part,
                ..
            })
        ));
    });
}

/// Flags: `--max-joined 2`, through a proxy. A join the server refuses comes back as an
/// error naming the room, and the connection does not try it again after a reconnect.
#[test]
fn a_refused_join_is_not_retried() {
    let server = start(Config {
        max_joined: 2,
        ..test_config()
    });
    run_for(LIMIT, async {
        let proxy = Proxy::start(server.addr()).await;
        let client = Headless::start(proxy.addr, "greedy").await;
        client.until(|e| matches!(e, Event::LoggedIn(_))).await;
        client.handle.join("one");
        answered(&client, &["one"]).await;
        client.handle.join("two");
        let events = client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Error { .. })))
            .await;
        assert!(matches!(
            events.last(),
            Some(Event::Frame(ServerFrame::Error { code: ErrorCode::TooManyRooms, room: Some(r), .. })) if r == "two"
        ));
        proxy.cut();
        let events = client.until(|e| matches!(e, Event::LoggedIn(_))).await;
        let Some(Event::LoggedIn(session)) = events.last() else {
            unreachable!()
        };
        assert_eq!(session.rooms, ["general", "one"]);
        answered(&client, &["one"]).await;
    });
}

/// Flags: `--rate 0` (flood control off for the burst). The events around an old message
/// come as one `Context` answer, while the room's live events go on arriving once each,
/// in order: none is taken into the answer, none repeats.
#[test]
fn the_context_of_an_old_message_comes_apart_from_the_live_events() {
    let server = start(Config {
        rate: 0,
        ..test_config()
    });
    run_for(LIMIT, async {
        let client = Headless::start(server.addr(), "reader").await;
        client.handle.join("rust");
        answered(&client, &["rust"]).await;
        let (mut other, _) = Client::login_v2(server.addr(), "writer").await;
        enter(&mut other, "rust").await;
        for i in 0..60 {
            other.send(&say_in("rust", &format!("old {i}"))).await;
        }
        let events = client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "old 59"))
            .await;
        let rust = by_room(&events);
        let first = rust["rust"]
            .iter()
            .find(|(_, t)| t == "old 0")
            .map(|(s, _)| *s);
        let first = first.expect("old 0 arrived");
        let wanted = first + 30;
        client.handle.context("rust", wanted);
        for i in 0..5 {
            other.send(&say_in("rust", &format!("live {i}"))).await;
        }
        let mut events = client.until(|e| matches!(e, Event::Context { .. })).await;
        let live_4 = |e: &Event| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "live 4");
        if !events.iter().any(live_4) {
            events.extend(client.until(live_4).await);
        }
        let mut context = None;
        let mut live = Vec::new();
        for event in &events {
            match event {
                Event::Context { room, seq, frames } => {
                    assert_eq!((room.as_str(), *seq), ("rust", wanted));
                    context = Some(
                        frames
                            .iter()
                            .filter_map(ServerFrame::seq)
                            .collect::<Vec<_>>(),
                    );
                }
                Event::Frame(frame) if frame.room() == Some("rust") => {
                    if let Some(seq) = frame.seq() {
                        live.push(seq);
                    }
                }
                _ => {}
            }
        }
        let context = context.expect("the context came");
        let around: Vec<u64> = (wanted - 20..=wanted + 20).collect();
        assert_eq!(context, around, "twenty before and twenty after, in order");
        assert_eq!(live.len(), 5, "each live event once: {live:?}");
        assert!(live.windows(2).all(|w| w[1] == w[0] + 1), "{live:?}");
    });
}
