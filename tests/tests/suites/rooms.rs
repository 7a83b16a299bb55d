//! Rooms (protocol version 2): join, part, resume, limits, names, the room list, and
//! version-1 clients beside them, over real sockets. Each test states the server flags it
//! uses (`test_config()`: the flag defaults, two threads, `--memory`, flood control on at
//! `--rate 5 --burst 20`).

use std::time::Duration;

use chat_shared::{ClientFrame, ErrorCode, Frame, LeaveReason, RoomUsers, ServerFrame};
use chat_tests::{
    Client, ServerProcess, TempDir, free_port, run_for, say, server_binary, test_config,
};

use super::start;

const LIMIT: Duration = Duration::from_secs(60);

fn join(room: &str, since: Option<u64>) -> ClientFrame {
    ClientFrame::Join {
        room: room.into(),
        since,
    }
}

fn say_in(room: &str, text: &str, id: &str) -> ClientFrame {
    ClientFrame::Say {
        to: None,
        room: Some(room.into()),
        text: text.into(),
        id: Some(id.into()),
        me: false,
        reply_to: None,
    }
}

/// What a `join` answered: the `room` frame and the replay that followed it.
struct Answer {
    room: String,
    users: Vec<String>,
    seq: u64,
    oldest: u64,
    replay: Vec<ServerFrame>,
}

/// Joins a room the client is not in yet: waits for the answer, its replay and the
/// client's own `joined`.
async fn enter(client: &mut Client, room: &str) -> Answer {
    client.send(&join(room, None)).await;
    let answer = answer(client, None).await;
    let (me, room) = (client.name.clone(), answer.room.clone());
    client
        .recv_until(|f| {
            matches!(f, ServerFrame::Joined { name, room: Some(r), seq, .. } if *name == me && *r == room && *seq > answer.seq)
        })
        .await;
    answer
}

/// Reads a `join`'s answer: the `room` frame, then the replay (the room's events after
/// `since`, up to the answer's `seq`).
async fn answer(client: &mut Client, since: Option<u64>) -> Answer {
    let frames = client
        .recv_until(|f| matches!(f, ServerFrame::Room { .. } | ServerFrame::Error { .. }))
        .await;
    let Some(ServerFrame::Room {
        room,
        users,
        seq,
        oldest,
        ..
    }) = frames.last().cloned()
    else {
        panic!("{}: join answered {:?}", client.name, frames.last());
    };
    let mut replay = Vec::new();
    if seq > since.unwrap_or(0) {
        replay = client
            .recv_until(|f| f.room() == Some(room.as_str()) && f.seq() == Some(seq))
            .await;
        replay.retain(|f| f.room() == Some(room.as_str()));
    }
    Answer {
        room,
        users,
        seq,
        oldest,
        replay,
    }
}

/// Posts in a room and waits for the echo; returns its seq.
async fn post(client: &mut Client, room: &str, text: &str) -> u64 {
    let id = format!("{}-{text}", client.name);
    client.send(&say_in(room, text, &id)).await;
    let frames = client
        .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(i), .. } if *i == id))
        .await;
    let Some(ServerFrame::Message { room: r, seq, .. }) = frames.last() else {
        unreachable!()
    };
    assert_eq!(r.as_deref(), Some(room), "the echo names its room");
    *seq
}

/// The next frame of `room`. Frames of other rooms may come first: each room pushes to
/// its members on beats of its own, and in a cluster each room's events come from a tail
/// of their own, so there is no order between rooms (Bob's `joined` in general can reach
/// alice after her own `room` answer for rust).
async fn next_in(client: &mut Client, room: &str) -> ServerFrame {
    let mut frames = client.recv_until(|f| f.room() == Some(room)).await;
    frames.pop().expect("the frame that matched")
}

/// Frames until the message with `text`, which must come: everything queued for this
/// client before it.
async fn until_text(client: &mut Client, text: &str) -> Vec<ServerFrame> {
    client
        .recv_until(|f| matches!(f, ServerFrame::Message { text: t, .. } if t == text))
        .await
}

fn error_of(frame: Option<&ServerFrame>) -> (ErrorCode, String) {
    match frame {
        Some(ServerFrame::Error { code, message, .. }) => (*code, message.clone()),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The room an `error` names: the one of the frame it answers.
fn error_room(frame: &ServerFrame) -> Option<&str> {
    match frame {
        ServerFrame::Error { room, .. } => room.as_deref(),
        _ => None,
    }
}

/// Flags: defaults. A room's events reach its members and nobody else; every event names
/// its room; each room counts its own seqs from 1; the `room` answer lists the members,
/// the newcomer included, sorted by case-folded name; a version-1 client in the default
/// room chats as before.
#[test]
fn events_reach_only_the_rooms_members() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut carol, welcome) = Client::login(server.addr(), "carol").await;
        assert!(
            matches!(&welcome, ServerFrame::Welcome { protocol: 1, rooms, .. } if rooms == &["general"]),
            "{welcome:?}"
        );
        let (mut alice, welcome) = Client::login_v2(server.addr(), "alice").await;
        assert!(matches!(&welcome, ServerFrame::Welcome { protocol: 2, .. }));
        let (mut bob, _) = Client::login_v2(server.addr(), "Bob").await;

        let first = enter(&mut alice, "rust").await;
        assert_eq!(
            (first.room.as_str(), first.users, first.seq, first.oldest),
            ("rust", vec!["alice".to_string()], 0, 0)
        );
        let second = enter(&mut bob, "Rust").await;
        assert_eq!(second.room, "rust", "the spelling of the first join");
        assert_eq!(second.users, ["alice", "Bob"]);
        assert_eq!(second.seq, 1, "alice's joined was the room's first event");
        let joined = next_in(&mut alice, "rust").await;
        assert!(
            matches!(&joined, ServerFrame::Joined { room: Some(r), seq: 2, name, .. } if r == "rust" && name == "Bob"),
            "{joined:?}"
        );

        assert_eq!(post(&mut alice, "rust", "in rust").await, 3);
        let heard = next_in(&mut bob, "rust").await;
        assert!(
            matches!(&heard, ServerFrame::Message { room: Some(r), seq: 3, from, .. } if r == "rust" && from == "alice"),
            "{heard:?}"
        );
        // The version-1 client says what it always said: it goes to the default room.
        carol.send(&say("in general", "c-1")).await;
        let seen = until_text(&mut carol, "in general").await;
        assert!(
            seen.iter().all(|f| f.room() != Some("rust")),
            "carol is not in rust: {seen:?}"
        );
        let Some(ServerFrame::Message { room, seq, .. }) = seen.last() else {
            unreachable!()
        };
        assert_eq!((room.as_deref(), *seq), (Some("general"), 4));
        for client in [&mut alice, &mut bob] {
            let seen = until_text(client, "in general").await;
            assert!(seen.iter().all(|f| f.room() == Some("general")), "{seen:?}");
        }
    });
}

/// Flags: defaults. `part`: the `left` (reason `part`) is the answer and the others see it;
/// then posting there is `not_member`, and so is parting again. The default room may be
/// parted too. A connection that ends leaves every room it is in, with its reason.
#[test]
fn part_and_leaving_every_room() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login_v2(server.addr(), "alice").await;
        let (mut bob, _) = Client::login_v2(server.addr(), "bob").await;
        enter(&mut alice, "rust").await;
        enter(&mut bob, "rust").await;
        enter(&mut alice, "go").await;
        enter(&mut bob, "go").await;

        bob.send(&ClientFrame::Part {
            room: "rust".into(),
        })
        .await;
        for client in [&mut bob, &mut alice] {
            let frames = client
                .recv_until(|f| matches!(f, ServerFrame::Left { .. }))
                .await;
            assert!(
                matches!(frames.last(), Some(ServerFrame::Left { room: Some(r), name, reason: LeaveReason::Part, .. }) if r == "rust" && name == "bob"),
                "{frames:?}"
            );
        }
        bob.send(&say_in("rust", "still here?", "b-1")).await;
        let (code, _) = error_of(
            bob.recv_until(|f| matches!(f, ServerFrame::Error { .. }))
                .await
                .last(),
        );
        assert_eq!(code, ErrorCode::NotMember);
        bob.send(&ClientFrame::Part {
            room: "rust".into(),
        })
        .await;
        assert_eq!(bob.next_error().await, ErrorCode::NotMember);
        post(&mut alice, "rust", "after bob left").await;

        // Parting the default room: posts without a room are then refused.
        bob.send(&ClientFrame::Part {
            room: "general".into(),
        })
        .await;
        bob.recv_until(|f| matches!(f, ServerFrame::Left { room: Some(r), .. } if r == "general"))
            .await;
        bob.send(&say("to general", "b-2")).await;
        let frames = bob
            .recv_until(|f| matches!(f, ServerFrame::Error { .. }))
            .await;
        assert!(
            frames.iter().all(|f| f.room() != Some("rust")),
            "bob left rust and hears nothing of it: {frames:?}"
        );
        let (code, message) = error_of(frames.last());
        assert_eq!(code, ErrorCode::NotMember);
        assert!(message.contains("general"), "{message}");
        post(&mut bob, "go", "still in go").await;

        // alice goes: a `left` in each of her rooms, with the reason.
        alice.send(&ClientFrame::Bye).await;
        alice.recv_to_end().await;
        let frames = bob
            .recv_until(|f| matches!(f, ServerFrame::Left { name, .. } if name == "alice"))
            .await;
        assert!(
            matches!(frames.last(), Some(ServerFrame::Left { room: Some(r), reason: LeaveReason::Quit, .. }) if r == "go"),
            "bob is only in go now: {frames:?}"
        );
        let (mut carol, _) = Client::login_v2(server.addr(), "carol").await;
        carol
            .send(&ClientFrame::History {
                with: None,
                room: Some("rust".into()),
                before: None,
                after: None,
                limit: Some(2),
            })
            .await;
        let frames = carol
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        assert!(
            matches!(&frames[frames.len() - 2], ServerFrame::Left { name, reason: LeaveReason::Quit, .. } if name == "alice"),
            "history of a room carol is not in: {frames:?}"
        );
        assert!(
            matches!(frames.last(), Some(ServerFrame::HistoryEnd { room: Some(r), count: 2, .. }) if r == "rust")
        );
    });
}

/// Flags: defaults. A `join` of a room the connection is in answers again with the events
/// after `since` and records nothing; a `join` with `since` of a room it is not in replays
/// what it missed before its `joined`.
#[test]
fn join_resumes_a_room() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login_v2(server.addr(), "alice").await;
        let (mut bob, _) = Client::login_v2(server.addr(), "bob").await;
        enter(&mut alice, "rust").await;
        enter(&mut bob, "rust").await;
        let mut seqs = Vec::new();
        for i in 0..5 {
            seqs.push(post(&mut alice, "rust", &format!("m{i}")).await);
        }
        until_text(&mut bob, "m4").await;
        bob.send(&join("rust", Some(seqs[2]))).await;
        let again = answer(&mut bob, Some(seqs[2])).await;
        assert_eq!(again.users, ["alice", "bob"]);
        assert_eq!(again.seq, seqs[4]);
        let got: Vec<u64> = again.replay.iter().filter_map(ServerFrame::seq).collect();
        assert_eq!(got, [seqs[3], seqs[4]]);
        // Nothing was recorded: alice's next post is the very next seq.
        assert_eq!(post(&mut alice, "rust", "next").await, seqs[4] + 1);

        // bob parts, misses two posts, and comes back with `since`.
        bob.send(&ClientFrame::Part {
            room: "rust".into(),
        })
        .await;
        let frames = bob
            .recv_until(|f| matches!(f, ServerFrame::Left { .. }))
            .await;
        let Some(ServerFrame::Left { seq: parted, .. }) = frames.last() else {
            unreachable!()
        };
        let parted = *parted;
        post(&mut alice, "rust", "missed 1").await;
        post(&mut alice, "rust", "missed 2").await;
        bob.send(&join("rust", Some(parted))).await;
        let back = answer(&mut bob, Some(parted)).await;
        let texts: Vec<&str> = back
            .replay
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Message { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["missed 1", "missed 2"]);
        assert_eq!(
            back.replay.first().and_then(ServerFrame::seq),
            Some(parted + 1)
        );
    });
}

/// Flags: defaults. A takeover with the token keeps every room: the new connection's
/// `welcome.rooms` are the old one's, in the order joined, it hears them, and the others
/// see nobody leave or join. After the old connection had parted the default room, the
/// new one gets no replay of it.
#[test]
fn a_takeover_keeps_the_rooms() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, welcome) = Client::login_v2(server.addr(), "alice").await;
        let ServerFrame::Welcome { token, epoch, .. } = welcome else {
            unreachable!()
        };
        let (mut bob, _) = Client::login_v2(server.addr(), "bob").await;
        enter(&mut alice, "zeta").await;
        enter(&mut alice, "alpha").await;
        enter(&mut bob, "zeta").await;
        alice
            .send(&ClientFrame::Part {
                room: "general".into(),
            })
            .await;
        for client in [&mut alice, &mut bob] {
            client
                .recv_until(
                    |f| matches!(f, ServerFrame::Left { room: Some(r), .. } if r == "general"),
                )
                .await;
        }

        let mut again = Client::connect(server.addr()).await;
        again
            .send(&ClientFrame::Hello {
                password: None,
                register: false,
                protocol: 2,
                name: "alice".into(),
                since: Some(1),
                epoch: Some(epoch),
                token: Some(token),
            })
            .await;
        let welcome = again.recv().await;
        let ServerFrame::Welcome { rooms, .. } = &welcome else {
            panic!("{welcome:?}")
        };
        assert_eq!(rooms, &["zeta", "alpha"]);
        let old = alice.recv_to_end().await;
        assert!(
            matches!(old.last(), Some(ServerFrame::Closing { .. })),
            "{old:?}"
        );
        again.name = "alice".into();
        bob.send(&say_in("zeta", "hello again", "b-1")).await;
        let frames = until_text(&mut bob, "hello again").await;
        assert_eq!(
            frames.len(),
            1,
            "bob saw nothing of the takeover: {frames:?}"
        );
        let frames = until_text(&mut again, "hello again").await;
        assert_eq!(
            frames.len(),
            1,
            "no replay of general, nothing else: {frames:?}"
        );
        post(&mut again, "alpha", "still mine").await;
    });
}

/// Flags: `--max-joined 3 --max-rooms 4`. A connection in three rooms (the default one
/// included) cannot join a fourth; a fourth room with members cannot be opened, but the
/// rooms in use can still be joined; a room that empties frees its place.
#[test]
fn room_limits() {
    let server = start(chat_tests::Config {
        max_joined: 3,
        max_rooms: 4,
        ..test_config()
    });
    // The limits are a server's (in a cluster, each node's): both on one.
    let addr = server.addr();
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login_v2(addr, "alice").await;
        let (mut bob, _) = Client::login_v2(addr, "bob").await;
        enter(&mut alice, "a1").await;
        enter(&mut alice, "a2").await;
        alice.send(&join("a3", None)).await;
        let error = alice.recv().await;
        assert_eq!(
            error_room(&error),
            Some("a3"),
            "the error names the room asked for"
        );
        let (code, message) = error_of(Some(&error));
        assert_eq!(code, ErrorCode::TooManyRooms);
        assert!(message.contains('3'), "{message}");

        enter(&mut bob, "b1").await;
        bob.send(&join("b2", None)).await;
        let (code, message) = error_of(Some(&bob.recv().await));
        assert_eq!(
            code,
            ErrorCode::TooManyRooms,
            "general, a1, a2 and b1 are in use"
        );
        assert!(message.contains('4'), "{message}");
        let a1 = enter(&mut bob, "a1").await;
        assert_eq!(a1.users, ["alice", "bob"], "a room in use can be joined");

        bob.send(&ClientFrame::Part { room: "b1".into() }).await;
        bob.recv_until(|f| matches!(f, ServerFrame::Left { room: Some(r), .. } if r == "b1"))
            .await;
        bob.send(&ClientFrame::Part { room: "a1".into() }).await;
        bob.recv_until(|f| matches!(f, ServerFrame::Left { room: Some(r), .. } if r == "a1"))
            .await;
        enter(&mut bob, "b2").await;
    });
}

/// Flags: defaults. Room names: `#` is not part of them, case does not make another room,
/// a name that looks like an existing room's is `invalid_room` naming that room, and names
/// that break the rules are `invalid_room` for every frame that carries them. History of a
/// room that does not exist is empty.
#[test]
fn room_names() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login_v2(server.addr(), "alice").await;
        let rust = enter(&mut alice, "#Rust").await;
        assert_eq!(rust.room, "Rust");
        alice.send(&join("RUST", None)).await;
        let again = answer(&mut alice, None).await;
        assert_eq!(again.room, "Rust", "the same room");
        assert_eq!(again.replay.len(), 1, "alice's joined, recorded once");

        // A Cyrillic "ѕ" looks like the Latin one.
        alice.send(&join("ruѕt", None)).await;
        let error = alice.recv().await;
        assert_eq!(
            error_room(&error),
            Some("ruѕt"),
            "the error names the room asked for"
        );
        let (code, message) = error_of(Some(&error));
        assert_eq!(code, ErrorCode::InvalidRoom);
        assert!(
            message.contains("Rust"),
            "names the existing room: {message}"
        );
        let too_long = "x".repeat(33);
        for bad in ["", "two words", too_long.as_str(), "a/b", "#"] {
            for frame in [
                join(bad, None),
                ClientFrame::Part { room: bad.into() },
                say_in(bad, "x", "id"),
                ClientFrame::History {
                    with: None,
                    room: Some(bad.into()),
                    before: None,
                    after: None,
                    limit: None,
                },
            ] {
                alice.send(&frame).await;
                let error = alice.recv().await;
                assert_eq!(
                    error_room(&error),
                    Some(bad),
                    "the error names the room asked for"
                );
                let (code, message) = error_of(Some(&error));
                assert_eq!(
                    code,
                    ErrorCode::InvalidRoom,
                    "{bad:?} in {frame:?}: {message}"
                );
            }
        }
        alice
            .send(&ClientFrame::History {
                with: None,
                room: Some("nowhere".into()),
                before: None,
                after: None,
                limit: None,
            })
            .await;
        let end = alice.recv().await;
        assert!(
            matches!(&end, ServerFrame::HistoryEnd { room: Some(r), count: 0, .. } if r == "nowhere"),
            "{end:?}"
        );
    });
}

/// Flags: defaults. `rooms` lists the rooms with members, most first (ties by name), with
/// their counts; a room everybody parted is not listed.
#[test]
fn the_room_list() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login_v2(server.addr(), "alice").await;
        let (mut bob, _) = Client::login_v2(server.addr(), "bob").await;
        enter(&mut alice, "rust").await;
        enter(&mut bob, "rust").await;
        enter(&mut alice, "go").await;
        enter(&mut bob, "empty").await;
        bob.send(&ClientFrame::Part {
            room: "empty".into(),
        })
        .await;
        bob.recv_until(|f| matches!(f, ServerFrame::Left { room: Some(r), .. } if r == "empty"))
            .await;
        bob.send(&ClientFrame::Rooms).await;
        let frames = bob
            .recv_until(|f| matches!(f, ServerFrame::RoomList { .. }))
            .await;
        let Some(ServerFrame::RoomList { rooms }) = frames.last() else {
            unreachable!()
        };
        let users = |room: &str, users: u32| RoomUsers {
            room: room.into(),
            users,
        };
        assert_eq!(
            rooms,
            &[users("general", 2), users("rust", 2), users("go", 1)]
        );
    });
}

/// Flags: defaults. A `say` whose id the server remembers is answered with the original,
/// even from a connection that is not in that room yet (a client re-joins, then flushes
/// its outbox); nobody sees it twice.
#[test]
fn a_remembered_post_outside_the_room() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login_v2(server.addr(), "alice").await;
        let (mut bob, _) = Client::login_v2(server.addr(), "bob").await;
        enter(&mut alice, "rust").await;
        enter(&mut bob, "rust").await;
        let seq = post(&mut alice, "rust", "once").await;
        alice.send(&ClientFrame::Bye).await;
        alice.recv_to_end().await;
        let (mut again, _) = Client::login_v2(server.addr(), "alice").await;
        again.send(&say_in("rust", "once", "alice-once")).await;
        let echo = again.recv().await;
        assert!(
            matches!(&echo, ServerFrame::Message { room: Some(r), seq: s, .. } if r == "rust" && *s == seq),
            "{echo:?}"
        );
        enter(&mut again, "rust").await;
        post(&mut again, "rust", "twice?").await;
        let frames = until_text(&mut bob, "twice?").await;
        let once = frames
            .iter()
            .filter(|f| matches!(f, ServerFrame::Message { text, .. } if text == "once"))
            .count();
        assert_eq!(once, 1, "{frames:?}");
    });
}

/// Flags: `--max-joined 30 --burst 2` (flood control on: a client is closed after 20 frames
/// beyond its rate). Right after its welcome a client may re-join its rooms and catch up
/// (2 × `--max-joined` `join` and `history` frames) without being closed; the same burst
/// of other frames is a flood.
#[test]
fn catching_up_is_not_a_flood() {
    let server = start(chat_tests::Config {
        max_joined: 30,
        burst: 2,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login_v2(server.addr(), "alice").await;
        let mut burst = Vec::new();
        for i in 0..29 {
            burst.extend_from_slice(
                chat_shared::Frame::encode(&join(&format!("r{i}"), None)).as_bytes(),
            );
            burst.extend_from_slice(
                chat_shared::Frame::encode(&ClientFrame::History {
                    with: None,
                    room: Some(format!("r{i}")),
                    before: None,
                    after: None,
                    limit: Some(10),
                })
                .as_bytes(),
            );
        }
        alice.send_raw(&burst).await;
        let mut rooms = 0;
        while rooms < 29 {
            match alice.recv().await {
                ServerFrame::Room { .. } => rooms += 1,
                ServerFrame::Closing { code, .. } => panic!("closed: {code:?}"),
                _ => {}
            }
        }
        post(&mut alice, "r28", "still here").await;

        let (mut bob, _) = Client::login_v2(server.addr(), "bob").await;
        let mut pings = Vec::new();
        for _ in 0..58 {
            pings.extend_from_slice(
                chat_shared::Frame::encode(&ClientFrame::Ping { token: None }).as_bytes(),
            );
        }
        bob.send_raw(&pings).await;
        let frames = bob.recv_to_end().await;
        chat_tests::assert_closing(&frames, chat_shared::CloseCode::Flood);
    });
}

/// Flags: `--data DIR` (durable), then a restart on the same directory. Rooms keep their
/// spelling, their seqs and their history across restarts; a room nobody is in leaves
/// memory and is read back when someone joins it.
#[test]
fn rooms_survive_a_restart() {
    run_for(LIMIT, async {
        let dir = TempDir::new("rooms");
        let port = free_port().to_string();
        let args = ["--port", port.as_str(), "--data", dir.arg()];
        let mut server = ServerProcess::start(&server_binary(), &args).await;
        let (mut alice, _) = Client::login_v2(server.addr, "alice").await;
        enter(&mut alice, "Café").await;
        let mut last = 0;
        for i in 0..3 {
            last = post(&mut alice, "Café", &format!("c{i}")).await;
        }
        // Parted, the room leaves memory: joining reads it back.
        alice
            .send(&ClientFrame::Part {
                room: "café".into(),
            })
            .await;
        alice
            .recv_until(|f| matches!(f, ServerFrame::Left { room: Some(r), .. } if r == "Café"))
            .await;
        let back = enter(&mut alice, "CAFÉ").await;
        assert_eq!(back.room, "Café");
        assert_eq!(back.seq, last + 1, "the part");
        assert!(
            back.replay
                .iter()
                .any(|f| matches!(f, ServerFrame::Message { text, .. } if text == "c2"))
        );
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(5)).await, Some(0));

        let server = ServerProcess::start(&server_binary(), &args).await;
        let (mut bob, _) = Client::login_v2(server.addr, "bob").await;
        // The join and a post right behind it, as a client re-sending its outbox does:
        // the room is still being read back when the post arrives, and it is not lost.
        let mut both = Frame::encode(&join("café", None)).as_bytes().to_vec();
        both.extend_from_slice(
            Frame::encode(&say_in("café", "after the restart", "b-1")).as_bytes(),
        );
        bob.send_raw(&both).await;
        let cafe = answer(&mut bob, None).await;
        assert_eq!(cafe.room, "Café");
        assert_eq!(cafe.oldest, 1);
        assert_eq!(cafe.users, ["bob"]);
        let frames = until_text(&mut bob, "after the restart").await;
        let Some(ServerFrame::Message { seq, .. }) = frames.last() else {
            unreachable!()
        };
        assert_eq!(*seq, cafe.seq + 2, "seqs go on: bob's joined, then this");
        bob.send(&ClientFrame::History {
            with: None,
            room: Some("café".into()),
            before: None,
            after: Some(0),
            limit: Some(200),
        })
        .await;
        let frames = bob
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        let texts: Vec<&str> = frames
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Message { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert!(texts.starts_with(&["c0", "c1", "c2"]), "{texts:?}");
    });
}
