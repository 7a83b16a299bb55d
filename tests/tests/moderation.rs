//! Moderation, a message's life and search (protocol version 3) against one server: the
//! suites in `suites/moderation.rs`, `suites/life.rs` and `suites/search.rs`, then what
//! only a server with a store of its own shows: that everything moderation keeps, and what
//! a message became (edits, reactions) and read markers, survive a restart, that a deleted
//! message's text is gone from the store's file, and that the search index is kept, and
//! rebuilt from the store when it is damaged or gone.

use chat_tests::{Config, Deployment};

/// Where the suite's servers run: one server, as configured.
fn start(config: Config) -> Deployment {
    chat_tests::start(config)
}

#[path = "suites/moderation.rs"]
mod moderation;

#[path = "suites/life.rs"]
mod life;

#[path = "suites/search.rs"]
mod search;

use std::time::Duration;

use chat_shared::{ClientFrame, ErrorCode, Name, RejectCode, Role, RoomState, ServerFrame};
use chat_tests::{Client, Storage, TempDir, assert_rejected, run_for, test_config};
use moderation::{
    account, again, ban, code, enter, guest, hello, next_recorded, post, quit, recorded, refused,
    role, topic,
};

const LIMIT: Duration = Duration::from_secs(60);

/// `test_config()` with a store in `dir` (`--data DIR`) and `--admins root`.
fn durable(dir: &TempDir) -> Config {
    Config {
        storage: Storage::Dir(dir.path().to_path_buf()),
        admins: vec![Name::parse("root").expect("a name")],
        ..test_config()
    }
}

/// Alice makes rust and sets everything moderation keeps there: a topic, Bob as op, a
/// timed ban of troll, a mute of carol, invite-only, an invitation of dave; root bans
/// spammer from the server. Returns when the ban of troll ends.
async fn moderate_everything(addr: std::net::SocketAddr) -> u64 {
    let (mut alice, _) = account(addr, "alice").await;
    let (bob, _) = account(addr, "bob").await;
    let (dave, _) = account(addr, "dave").await;
    let (mut root, _) = account(addr, "root").await;
    drop((bob, dave));
    enter(&mut alice, "rust").await;
    next_recorded(&mut alice, "rust").await; // owner
    recorded(&mut alice, &topic("rust", "Rust talk"), "rust").await;
    recorded(&mut alice, &role("rust", "bob", Role::Op), "rust").await;
    let banned = recorded(
        &mut alice,
        &ban(Some("rust"), "troll", Some("spam"), Some(600)),
        "rust",
    )
    .await;
    let mute = ClientFrame::Mute {
        room: "rust".into(),
        name: "carol".into(),
        minutes: None,
    };
    recorded(&mut alice, &mute, "rust").await;
    let settings = ClientFrame::Settings {
        room: "rust".into(),
        invite_only: true,
        retain_days: None,
    };
    recorded(&mut alice, &settings, "rust").await;
    let invite = ClientFrame::Invite {
        room: "rust".into(),
        name: "dave".into(),
    };
    recorded(&mut alice, &invite, "rust").await;
    root.send(&ban(None, "spammer", Some("no ads"), None)).await;
    root.recv_until(|f| matches!(f, ServerFrame::Ban { room: None, .. }))
        .await;
    match banned {
        ServerFrame::Ban {
            until: Some(until), ..
        } => until,
        other => panic!("{other:?}"),
    }
}

/// Flags: `test_config()` with a store (`--data DIR`), `--admins root`; the server is
/// stopped and started again on the same store. A room's topic, roles, settings, bans
/// (with when they end), mutes and invitations, and the server's bans, survive the
/// restart: the `room` answer shows them, and they refuse as before.
#[test]
fn what_moderation_keeps_survives_a_restart() {
    let dir = TempDir::new("moderation-restart");
    let mut server = start(durable(&dir));
    let until = run_for(LIMIT, moderate_everything(server.addr()));
    server.stop();
    drop(server);

    let server = start(durable(&dir));
    run_for(LIMIT, async {
        let (mut alice, _) = again(server.addr(), "alice").await;
        alice
            .send(&ClientFrame::Join {
                room: "rust".into(),
                since: None,
            })
            .await;
        let answer = alice
            .recv_until(|f| matches!(f, ServerFrame::Room { .. }))
            .await
            .pop();
        let Some(ServerFrame::Room {
            state:
                RoomState {
                    topic,
                    roles,
                    invite_only,
                    retain_days,
                    bans,
                    mutes,
                    invites,
                },
            ..
        }) = answer
        else {
            unreachable!()
        };
        assert_eq!(topic.as_deref(), Some("Rust talk"));
        assert_eq!(roles.get("alice"), Some(&Role::Owner));
        assert_eq!(roles.get("bob"), Some(&Role::Op));
        assert!(invite_only);
        assert_eq!(retain_days, None, "no retention of its own");
        assert_eq!(bans.len(), 1);
        assert_eq!(
            (bans[0].name.as_str(), bans[0].until),
            ("troll", Some(until))
        );
        assert_eq!(mutes.len(), 1);
        assert_eq!(mutes[0].name, "carol");
        assert_eq!(invites, ["dave"]);

        let mut troll = guest(server.addr(), "troll").await;
        let refusal = refused(&mut troll, &moderation::join("rust")).await;
        assert!(
            matches!(&refusal, ServerFrame::Error { code: ErrorCode::Banned, until: Some(u), .. } if *u == until),
            "{refusal:?}"
        );
        let mut carol = guest(server.addr(), "carol").await;
        assert_eq!(
            code(&refused(&mut carol, &moderation::join("rust")).await),
            ErrorCode::InviteOnly
        );
        let (_, welcome) = again(server.addr(), "dave").await;
        assert!(
            matches!(&welcome, ServerFrame::Welcome { invites, .. } if invites.len() == 1 && invites[0].room == "rust"),
            "{welcome:?}"
        );
        let mut spammer = Client::connect(server.addr()).await;
        spammer.send(&hello("spammer", None, false)).await;
        let frames = spammer.recv_to_end().await;
        assert_eq!(assert_rejected(&frames, RejectCode::Banned), "no ads");
    });
}

/// Flags: `test_config()` with a store (`--data DIR`). A deleted message's text is gone
/// from the store's file, not only hidden: read raw once the server has stopped, the file
/// holds a message that was kept and not the one that was deleted.
#[test]
fn a_deleted_text_is_gone_from_the_store_file() {
    let dir = TempDir::new("moderation-erase");
    let mut server = start(durable(&dir));
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        enter(&mut alice, "rust").await;
        post(&mut alice, "rust", "kept for the record 7781").await;
        // (The helper's ids hold the text; a post's id outlives its deletion.)
        alice
            .send(&moderation::say_in(
                "rust",
                "my passport is X99 41 1234",
                "p-77",
            ))
            .await;
        let echo = alice
            .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(id), .. } if id == "p-77"))
            .await
            .pop();
        let Some(ServerFrame::Message { seq: secret, .. }) = echo else {
            unreachable!()
        };
        let delete = ClientFrame::Delete {
            room: Some("rust".into()),
            with: None,
            seq: secret,
        };
        recorded(&mut alice, &delete, "rust").await;
        post(&mut alice, "rust", "after the deletion 5527").await;
    });
    server.stop();
    drop(server);
    let file = std::fs::read(dir.path().join("chat.redb")).expect("the store's file");
    let holds = |text: &str| file.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(holds("kept for the record 7781"), "the file is read raw");
    assert!(holds("after the deletion 5527"));
    assert!(
        !holds("X99 41 1234"),
        "the deleted text is still in the file"
    );
}

/// Flags: `test_config()` with a store (`--data DIR`); the server is stopped and started
/// again on the same store. A message's edit and reactions, and an account's read marker,
/// are what they were before the restart.
#[test]
fn what_a_message_became_survives_a_restart() {
    let dir = TempDir::new("life-restart");
    let config = || Config {
        storage: Storage::Dir(dir.path().to_path_buf()),
        ..test_config()
    };
    let mut server = start(config());
    let (seq, before) = run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        enter(&mut alice, "rust").await;
        let seq = post(&mut alice, "rust", "helo").await;
        for frame in [
            ClientFrame::Edit {
                room: Some("rust".into()),
                with: None,
                seq,
                text: "hello".into(),
            },
            ClientFrame::React {
                room: Some("rust".into()),
                with: None,
                seq,
                emoji: "👋".into(),
                on: true,
            },
        ] {
            alice.send(&frame).await;
        }
        alice
            .recv_until(|f| matches!(f, ServerFrame::Reaction { .. }))
            .await;
        alice
            .send(&ClientFrame::Read {
                room: Some("rust".into()),
                with: None,
                seq: seq + 2,
            })
            .await;
        let before = life::message_at(&life::history(&mut alice, Some("rust"), None).await, seq);
        quit(alice).await;
        (seq, before)
    });
    server.stop();
    drop(server);

    let server = start(config());
    run_for(LIMIT, async {
        let (mut alice, _) = again(server.addr(), "alice").await;
        let answer = enter(&mut alice, "rust").await;
        assert!(
            matches!(answer, ServerFrame::Room { read, .. } if read == seq + 2),
            "{answer:?}"
        );
        let after = life::message_at(&life::history(&mut alice, Some("rust"), None).await, seq);
        assert_eq!(after, before);
        assert!(
            matches!(&after, ServerFrame::Message { text, edited: Some(_), reactions, .. } if text == "hello" && reactions.len() == 1),
            "{after:?}"
        );
    });
}

/// Searches until the answer is results (while the index is rebuilt at start the answer
/// is `unavailable` with `retry_after`, which is waited out): their texts, best first.
async fn results_after_rebuild(client: &mut Client, query: &str) -> Vec<String> {
    loop {
        match search::ask(client, &search::search(query)).await {
            ServerFrame::SearchResults { results, .. } => {
                return results
                    .iter()
                    .map(|f| match f {
                        ServerFrame::Message { text, .. } => text.clone(),
                        other => panic!("not a message: {other:?}"),
                    })
                    .collect();
            }
            ServerFrame::Error {
                code: ErrorCode::Unavailable,
                retry_after: Some(wait),
                ..
            } => {
                smol::Timer::after(Duration::from_millis(wait.min(200))).await;
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}

/// Flags: `test_config()` with a store (`--data DIR`) and `--rate 0`; the server is
/// stopped and started again on the same store four times: with its search index as it
/// left it, with the index damaged, with the index gone, and as a machine that died would
/// leave it (no mark of a clean stop, and a file of the index's torn: its files are not
/// synced, so the start checks them). Each time the same messages
/// are found, as they are now (edited, not deleted).
#[test]
fn the_search_index_is_kept_and_rebuilt_from_the_store() {
    let dir = TempDir::new("search-rebuild");
    let config = || Config {
        storage: Storage::Dir(dir.path().to_path_buf()),
        rate: 0,
        ..test_config()
    };
    let want = vec![
        "archive of the old wiki".to_string(),
        "the archive moved to the new server".to_string(),
    ];
    let mut server = start(config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        enter(&mut alice, "rust").await;
        post(&mut alice, "rust", "archive of the old wiki").await;
        let edited = post(&mut alice, "rust", "the archive movd").await;
        let deleted = post(&mut alice, "rust", "archive password is hunter2").await;
        for frame in [
            ClientFrame::Edit {
                room: Some("rust".into()),
                with: None,
                seq: edited,
                text: "the archive moved to the new server".into(),
            },
            ClientFrame::Delete {
                room: Some("rust".into()),
                with: None,
                seq: deleted,
            },
        ] {
            alice.send(&frame).await;
        }
        let texts: Vec<&str> = want.iter().map(String::as_str).collect();
        search::until_found(&mut alice, &search::search("archive"), &texts).await;
    });
    let index = dir.path().join("search");
    for damage in ["none", "damaged", "gone", "unclean"] {
        server.stop();
        drop(server);
        match damage {
            "damaged" => std::fs::write(index.join("meta.json"), b"{ not json").expect("damaged"),
            "gone" => std::fs::remove_dir_all(&index).expect("removed"),
            "unclean" => unclean_stop(&index),
            _ => {}
        }
        server = start(config());
        run_for(LIMIT, async {
            let (mut alice, _) = again(server.addr(), "alice").await;
            let mut found = results_after_rebuild(&mut alice, "archive").await;
            found.sort();
            assert_eq!(found, want, "the index {damage}");
            assert!(
                results_after_rebuild(&mut alice, "hunter2")
                    .await
                    .is_empty(),
                "a deleted message is not found ({damage})"
            );
        });
    }
}

/// Flags: `test_config()` with `--no-search`. Without an index, a search is `unavailable`
/// without `retry_after` (nothing to wait for), and chatting goes on.
#[test]
fn without_an_index_a_search_is_unavailable() {
    let server = start(Config {
        search: false,
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        alice.send(&search::search("anything")).await;
        let frames = alice
            .recv_until(|f| matches!(f, ServerFrame::Error { .. }))
            .await;
        assert!(
            matches!(
                frames.last(),
                Some(ServerFrame::Error {
                    code: ErrorCode::Unavailable,
                    retry_after: None,
                    ..
                })
            ),
            "{frames:?}"
        );
        post(&mut alice, "general", "still here").await;
    });
}

/// Leaves the index at `index` as a machine that died might: not marked as stopped
/// cleanly, and the middle of its biggest file zeroed.
fn unclean_stop(index: &std::path::Path) {
    std::fs::remove_file(index.join("clean")).expect("a clean stop was marked");
    let biggest = std::fs::read_dir(index)
        .expect("the index")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x != "json" && x != "lock"))
        .max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .expect("a segment file");
    let mut bytes = std::fs::read(&biggest).expect("read");
    let middle = bytes.len() / 2;
    let end = (middle + 64).min(bytes.len());
    bytes[middle..end].fill(0);
    std::fs::write(&biggest, bytes).expect("torn");
}

/// Server: `test_config()` (one server, in memory). Frames are taken in the order they
/// came: a `topic` sent right behind the `join` that makes a room is its owner's, though
/// the join's `role` event is not recorded yet when it arrives.
#[test]
fn a_step_right_behind_the_join_that_made_the_room_is_its_owners() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        alice
            .send(&ClientFrame::Join {
                room: "fresh".into(),
                since: None,
            })
            .await;
        alice.send(&topic("fresh", "set at once")).await;
        let seen = alice
            .recv_until(|f| matches!(f, ServerFrame::Topic { .. } | ServerFrame::Error { .. }))
            .await;
        assert!(
            matches!(seen.last(), Some(ServerFrame::Topic { text, .. }) if text == "set at once"),
            "{seen:?}"
        );
    });
}
