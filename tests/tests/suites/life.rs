//! A message's life (protocol version 3): replies, edits, reactions, deletion of one's own
//! messages, typing indicators and read markers, in rooms and direct conversations, over
//! real sockets; each seen the same live, after `since` and in `history`. Each test states
//! the server flags it uses (`test_config()`: the flag defaults, two threads, `--memory`,
//! flood control on at `--rate 5 --burst 20`); where the suite runs on a cluster, each
//! client connects to the next node in turn.

use std::net::SocketAddr;
use std::time::Duration;

use chat_shared::{ClientFrame, ErrorCode, Reaction, ServerFrame};
use chat_tests::{Client, run_for, test_config};

use super::moderation::{account, again, code, enter, guest, post, quit, refused, say_in};
use super::start;

const LIMIT: Duration = Duration::from_secs(60);

fn edit(room: &str, seq: u64, text: &str) -> ClientFrame {
    ClientFrame::Edit {
        room: Some(room.into()),
        with: None,
        seq,
        text: text.into(),
    }
}

fn react(room: &str, seq: u64, emoji: &str, on: bool) -> ClientFrame {
    ClientFrame::React {
        room: Some(room.into()),
        with: None,
        seq,
        emoji: emoji.into(),
        on,
    }
}

/// Sends a frame and waits for the event it records (`edited`, `reaction`, `deleted` or
/// `mute` from this client); an `error` on the way fails.
async fn done(client: &mut Client, frame: &ClientFrame) -> ServerFrame {
    client.send(frame).await;
    let me = client.name.clone();
    let last = client
        .recv_until(|f| match f {
            ServerFrame::Error { .. } => true,
            ServerFrame::Edited { from, .. } | ServerFrame::Reaction { from, .. } => *from == me,
            ServerFrame::Deleted { by, .. } | ServerFrame::Mute { by, .. } => *by == me,
            _ => false,
        })
        .await
        .pop()
        .expect("a frame");
    assert!(
        !matches!(last, ServerFrame::Error { .. }),
        "{}: {frame:?} answered {last:?}",
        client.name
    );
    last
}

/// Sends a frame that must change nothing and be answered with nothing: a `ping` sent
/// after it comes back with nothing recorded before its `pong`.
async fn nothing(client: &mut Client, frame: &ClientFrame) {
    client.send(frame).await;
    client
        .send(&ClientFrame::Ping {
            token: Some("after".into()),
        })
        .await;
    let frames = client
        .recv_until(|f| matches!(f, ServerFrame::Pong { token: Some(t) } if t == "after"))
        .await;
    let me = client.name.clone();
    assert!(
        !frames.iter().any(|f| match f {
            ServerFrame::Error { .. } => true,
            ServerFrame::Reaction { from, .. } | ServerFrame::Edited { from, .. } => *from == me,
            _ => false,
        }),
        "{frame:?} did something: {frames:?}"
    );
}

/// Posts in a room: every frame the poster got until its echo, the echo last.
async fn post_seeing(client: &mut Client, room: &str, text: &str) -> Vec<ServerFrame> {
    let id = format!("{}-{text}", client.name);
    client.send(&say_in(room, text, &id)).await;
    client
        .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(i), .. } if *i == id))
        .await
}

fn typing_in(frames: &[ServerFrame]) -> bool {
    frames
        .iter()
        .any(|f| matches!(f, ServerFrame::Typing { .. }))
}

/// A room's (or, with `with`, a conversation's) newest events, oldest first.
pub(super) async fn history(
    client: &mut Client,
    room: Option<&str>,
    with: Option<&str>,
) -> Vec<ServerFrame> {
    client
        .send(&ClientFrame::History {
            room: room.map(Into::into),
            with: with.map(Into::into),
            before: None,
            after: None,
            limit: Some(200),
        })
        .await;
    let mut frames = client
        .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
        .await;
    frames.pop();
    frames.retain(|f| f.seq().is_some() && (room.is_none() || f.room() == room));
    frames
}

/// The message at `seq` among `frames`.
pub(super) fn message_at(frames: &[ServerFrame], seq: u64) -> ServerFrame {
    frames
        .iter()
        .find(|f| matches!(f, ServerFrame::Message { seq: s, .. } if *s == seq))
        .cloned()
        .unwrap_or_else(|| panic!("no message {seq} in {frames:?}"))
}

fn reactions(message: &ServerFrame) -> Vec<Reaction> {
    match message {
        ServerFrame::Message { reactions, .. } => reactions.clone(),
        other => panic!("not a message: {other:?}"),
    }
}

/// Flags: defaults. A reply names the message it answers; a reply to a seq that is no
/// message of the room, or to a deleted one, is refused `no_such_message` with the post's
/// id (nothing recorded).
#[test]
fn replies() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        enter(&mut alice, "rust").await;
        enter(&mut bob, "rust").await;
        let question = post(&mut alice, "rust", "what is a borrow?").await;
        let mut reply = say_in("rust", "a reference", "r1");
        if let ClientFrame::Say { reply_to, .. } = &mut reply {
            *reply_to = Some(question);
        }
        bob.send(&reply).await;
        let seen = alice
            .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(i), .. } if i == "r1"))
            .await
            .pop();
        assert!(
            matches!(&seen, Some(ServerFrame::Message { reply_to: Some(q), .. }) if *q == question),
            "{seen:?}"
        );
        // Not a message (alice's `joined`), past the newest, and 0.
        for target in [1, 999, 0] {
            let mut bad = say_in("rust", "to nothing", &format!("bad{target}"));
            if let ClientFrame::Say { reply_to, .. } = &mut bad {
                *reply_to = Some(target);
            }
            let refusal = refused(&mut bob, &bad).await;
            assert!(
                matches!(&refusal, ServerFrame::Error { code: ErrorCode::NoSuchMessage, id: Some(id), .. } if *id == format!("bad{target}")),
                "reply to {target}: {refusal:?}"
            );
        }
        let gone = post(&mut alice, "rust", "soon gone").await;
        done(
            &mut alice,
            &ClientFrame::Delete {
                room: Some("rust".into()),
                with: None,
                seq: gone,
            },
        )
        .await;
        let mut late = say_in("rust", "too late", "late");
        if let ClientFrame::Say { reply_to, .. } = &mut late {
            *reply_to = Some(gone);
        }
        assert_eq!(
            code(&refused(&mut bob, &late).await),
            ErrorCode::NoSuchMessage
        );
        let kept = history(&mut bob, Some("rust"), None).await;
        assert!(
            matches!(message_at(&kept, question + 1), ServerFrame::Message { reply_to: Some(q), .. } if q == question)
        );
    });
}

/// Flags: defaults. Only the author edits, and only from an account (`account_required`
/// for a guest, `not_permitted` for anyone else); everyone sees `edited`, and history and
/// a resume with `since` show the message as edited; a deleted message cannot be edited
/// (`no_such_message`), and an edit keeps the text rules of `say`.
#[test]
fn edits() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        let mut gus = guest(server.addr(), "gus").await;
        for client in [&mut alice, &mut bob, &mut gus] {
            enter(client, "rust").await;
        }
        let typo = post(&mut alice, "rust", "helo").await;
        let by_gus = post(&mut gus, "rust", "mine").await;
        assert_eq!(
            code(&refused(&mut gus, &edit("rust", by_gus, "mine!")).await),
            ErrorCode::AccountRequired
        );
        assert_eq!(
            code(&refused(&mut bob, &edit("rust", typo, "hijacked")).await),
            ErrorCode::NotPermitted
        );
        assert_eq!(
            code(&refused(&mut alice, &edit("rust", typo, " ")).await),
            ErrorCode::Empty
        );
        assert_eq!(
            code(&refused(&mut alice, &edit("rust", by_gus, "not mine")).await),
            ErrorCode::NotPermitted
        );
        let edited = done(&mut alice, &edit("rust", typo, "hello")).await;
        let ServerFrame::Edited {
            seq, time, target, ..
        } = edited.clone()
        else {
            panic!("{edited:?}");
        };
        assert_eq!(target, typo);
        let seen = bob
            .recv_until(|f| matches!(f, ServerFrame::Edited { .. }))
            .await
            .pop();
        assert_eq!(seen.as_ref(), Some(&edited), "everyone sees the same edit");
        let kept = history(&mut bob, Some("rust"), None).await;
        assert!(
            matches!(message_at(&kept, typo), ServerFrame::Message { text, edited: Some(at), .. } if text == "hello" && at == time),
            "{kept:?}"
        );
        assert!(kept.contains(&edited), "the edit keeps its own seq {seq}");
        // A resume after the message finds it as it is now, and the edit after it.
        bob.send(&ClientFrame::Part {
            room: "rust".into(),
        })
        .await;
        bob.recv_until(|f| matches!(f, ServerFrame::Left { name, .. } if name == "bob"))
            .await;
        bob.send(&ClientFrame::Join {
            room: "rust".into(),
            since: Some(typo - 1),
        })
        .await;
        let replay = bob.recv_until(|f| *f == edited).await;
        assert!(
            replay.iter().any(|f| matches!(f, ServerFrame::Message { seq, text, .. } if *seq == typo && text == "hello")),
            "{replay:?}"
        );
        done(
            &mut alice,
            &ClientFrame::Delete {
                room: Some("rust".into()),
                with: None,
                seq: typo,
            },
        )
        .await;
        assert_eq!(
            code(&refused(&mut alice, &edit("rust", typo, "again")).await),
            ErrorCode::NoSuchMessage
        );
        let kept = history(&mut bob, Some("rust"), None).await;
        assert!(
            matches!(message_at(&kept, typo), ServerFrame::Message { text, deleted: true, edited: None, .. } if text.is_empty())
        );
        assert!(
            kept.iter().any(|f| matches!(f, ServerFrame::Edited { seq: s, text, .. } if *s == seq && text.is_empty())),
            "the edit's text went with the message: {kept:?}"
        );
    });
}

/// Flags: defaults. Reactions: guests may react; one per person and emoji (again, or
/// taking back one not given, records and answers nothing); counts and names in the order
/// the emoji were first used; a 21st emoji is `too_many_reactions`; not an emoji is
/// `bad_text` naming the room; history shows the message as it is now.
#[test]
fn reactions_count_each_person_once() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let mut gus = guest(server.addr(), "gus").await;
        enter(&mut alice, "rust").await;
        enter(&mut gus, "rust").await;
        let seq = post(&mut alice, "rust", "ship it").await;
        done(&mut gus, &react("rust", seq, "👍", true)).await;
        done(&mut alice, &react("rust", seq, "🎉", true)).await;
        done(&mut alice, &react("rust", seq, "👍", true)).await;
        nothing(&mut gus, &react("rust", seq, "👍", true)).await;
        nothing(&mut gus, &react("rust", seq, "🎉", false)).await;
        // The refusal names the room, as the hub's errors about a room do.
        let bad = refused(&mut gus, &react("rust", seq, "+1", true)).await;
        assert_eq!(code(&bad), ErrorCode::BadText);
        assert!(
            matches!(&bad, ServerFrame::Error { room: Some(room), .. } if room == "rust"),
            "{bad:?}"
        );
        assert_eq!(
            code(&refused(&mut gus, &react("rust", seq + 100, "👍", true)).await),
            ErrorCode::NoSuchMessage
        );
        let kept = history(&mut gus, Some("rust"), None).await;
        let want = vec![
            Reaction {
                emoji: "👍".into(),
                count: 2,
                names: vec!["gus".into(), "alice".into()],
            },
            Reaction {
                emoji: "🎉".into(),
                count: 1,
                names: vec!["alice".into()],
            },
        ];
        assert_eq!(reactions(&message_at(&kept, seq)), want);
        done(&mut gus, &react("rust", seq, "👍", false)).await;
        // Up to 20 emoji; the 21st is refused. (Shared out: each may post 20 at once.)
        for (n, emoji) in ('\u{1F600}'..='\u{1F611}').map(String::from).enumerate() {
            let who = if n % 2 == 0 { &mut alice } else { &mut gus };
            done(who, &react("rust", seq, &emoji, true)).await;
        }
        let refusal = refused(&mut gus, &react("rust", seq, "🚀", true)).await;
        assert_eq!(code(&refusal), ErrorCode::TooManyReactions, "{refusal:?}");
        let kept = history(&mut alice, Some("rust"), None).await;
        let now = reactions(&message_at(&kept, seq));
        assert_eq!(now.len(), 20);
        assert_eq!(
            now[0],
            Reaction {
                emoji: "👍".into(),
                count: 1,
                names: vec!["alice".into()],
            }
        );
    });
}

/// Flags: defaults. In a direct conversation: both parties may react, the author edits and
/// deletes its own; each party sees every event with the other party in `with`, and the
/// conversation's history shows the message as it is now.
#[test]
fn a_direct_message_lives_too() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        alice
            .send(&ClientFrame::Say {
                room: None,
                to: Some("bob".into()),
                text: "lunch?".into(),
                id: Some("d1".into()),
                me: false,
                reply_to: None,
            })
            .await;
        let sent = bob
            .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(i), .. } if i == "d1"))
            .await
            .pop();
        let Some(ServerFrame::Message { seq, .. }) = sent else {
            panic!("{sent:?}");
        };
        bob.send(&ClientFrame::React {
            room: None,
            with: Some("alice".into()),
            seq,
            emoji: "👍".into(),
            on: true,
        })
        .await;
        let seen = alice
            .recv_until(|f| matches!(f, ServerFrame::Reaction { .. }))
            .await
            .pop();
        assert!(
            matches!(&seen, Some(ServerFrame::Reaction { with: Some(w), from, .. }) if w == "bob" && from == "bob"),
            "{seen:?}"
        );
        let refusal = refused(
            &mut bob,
            &ClientFrame::Edit {
                room: None,
                with: Some("alice".into()),
                seq,
                text: "no".into(),
            },
        )
        .await;
        assert_eq!(code(&refusal), ErrorCode::NotPermitted);
        alice
            .send(&ClientFrame::Edit {
                room: None,
                with: Some("bob".into()),
                seq,
                text: "lunch at noon?".into(),
            })
            .await;
        let seen = bob
            .recv_until(|f| matches!(f, ServerFrame::Edited { .. }))
            .await
            .pop();
        assert!(
            matches!(&seen, Some(ServerFrame::Edited { with: Some(w), text, .. }) if w == "alice" && text == "lunch at noon?"),
            "{seen:?}"
        );
        let kept = history(&mut bob, None, Some("alice")).await;
        let message = message_at(&kept, seq);
        assert!(
            matches!(&message, ServerFrame::Message { text, with: Some(w), edited: Some(_), .. } if text == "lunch at noon?" && w == "alice"),
            "{message:?}"
        );
        assert_eq!(reactions(&message)[0].names, ["bob"]);
    });
}

/// Flags: defaults. `typing` goes to the other members on protocol 3 only (a version-2
/// member gets none), at most once every 2 s per sender and room, never to the sender,
/// never from a muted member or a non-member; in a conversation, to the other party.
#[test]
fn typing_is_relayed_sparingly() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        let (mut old, _) = Client::login_v2(server.addr(), "old").await;
        let mut outsider = guest(server.addr(), "outsider").await;
        enter(&mut alice, "rust").await;
        enter(&mut bob, "rust").await;
        enter(&mut old, "rust").await;
        super::moderation::sees_join(&mut alice, "rust", "old").await;
        let typing = ClientFrame::Typing {
            room: Some("rust".into()),
            to: None,
        };
        bob.send(&typing).await;
        bob.send(&typing).await;
        let seen = alice
            .recv_until(|f| matches!(f, ServerFrame::Typing { .. }))
            .await
            .pop();
        assert_eq!(
            seen,
            Some(ServerFrame::Typing {
                room: Some("rust".into()),
                with: None,
                name: "bob".into(),
            })
        );
        outsider.send(&typing).await;
        let to_bob = post_seeing(&mut bob, "rust", "done typing").await;
        assert!(!typing_in(&to_bob), "back to its sender: {to_bob:?}");
        let between = alice
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "done typing"))
            .await;
        assert!(
            !typing_in(&between),
            "a second typing within 2 s, or one from a non-member: {between:?}"
        );
        let to_old = old
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "done typing"))
            .await;
        assert!(
            !typing_in(&to_old),
            "a version-2 member got a typing: {to_old:?}"
        );
        // In a conversation, the other party (named in `with`).
        alice
            .send(&ClientFrame::Typing {
                room: None,
                to: Some("bob".into()),
            })
            .await;
        let seen = bob
            .recv_until(|f| matches!(f, ServerFrame::Typing { .. }))
            .await
            .pop();
        assert!(
            matches!(&seen, Some(ServerFrame::Typing { room: None, with: Some(w), name }) if w == "alice" && name == "alice"),
            "{seen:?}"
        );
    });
}

/// Flags: defaults. A muted member's `typing` goes to nobody, and neither does its
/// reaction (`muted`).
#[test]
fn the_muted_neither_type_nor_react() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let mut alice = super::moderation::owner_of(server.addr(), "alice", "rust").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        enter(&mut bob, "rust").await;
        let seq = post(&mut alice, "rust", "quiet please").await;
        done(
            &mut alice,
            &ClientFrame::Mute {
                room: "rust".into(),
                name: "bob".into(),
                minutes: None,
            },
        )
        .await;
        bob.recv_until(|f| matches!(f, ServerFrame::Mute { .. }))
            .await;
        bob.send(&ClientFrame::Typing {
            room: Some("rust".into()),
            to: None,
        })
        .await;
        assert_eq!(
            code(&refused(&mut bob, &react("rust", seq, "👍", true)).await),
            ErrorCode::Muted
        );
        let frames = post_seeing(&mut alice, "rust", "thanks").await;
        assert!(!typing_in(&frames), "{frames:?}");
    });
}

/// Logs `name` in again until its read markers are `want` in `room` (from the `room`
/// answer to joining it) and in its conversation with `with` (from `welcome`): a marker
/// said on one node is kept within a second, and another node reads it from the log. At
/// most 40 tries, 100 ms apart (nothing tells a client when a marker was kept).
async fn markers_seen(addr: SocketAddr, name: &str, room: (&str, u64), with: (&str, u64)) {
    for _ in 0..40 {
        let (mut client, welcome) = again(addr, name).await;
        let ServerFrame::Welcome { conversations, .. } = welcome else {
            unreachable!()
        };
        let conversation = conversations
            .unwrap_or_default()
            .iter()
            .find(|c| c.with == with.0)
            .map_or(0, |c| c.read);
        let ServerFrame::Room { read, .. } = enter(&mut client, room.0).await else {
            unreachable!()
        };
        quit(client).await;
        if (read, conversation) == (room.1, with.1) {
            return;
        }
        assert!(
            read <= room.1 && conversation <= with.1,
            "past what was said"
        );
        smol::Timer::after(Duration::from_millis(100)).await;
    }
    panic!("{name}'s markers never reached {room:?} and {with:?}");
}

/// Flags: defaults. Read markers: an account's highest `read` per room and conversation
/// comes back in the `room` answer and `welcome.conversations` at its next log-in (a
/// lower one is ignored, one past the newest is the newest); a guest's are ignored.
#[test]
fn read_markers_follow_the_account() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        enter(&mut alice, "rust").await;
        let first = post(&mut alice, "rust", "one").await;
        let second = post(&mut alice, "rust", "two").await;
        let read = |seq| ClientFrame::Read {
            room: Some("rust".into()),
            with: None,
            seq,
        };
        alice.send(&read(second)).await;
        alice.send(&read(first)).await;
        bob.send(&ClientFrame::Say {
            room: None,
            to: Some("alice".into()),
            text: "psst".into(),
            id: Some("p".into()),
            me: false,
            reply_to: None,
        })
        .await;
        let direct = alice
            .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(i), .. } if i == "p"))
            .await
            .pop();
        let Some(ServerFrame::Message { seq: psst, .. }) = direct else {
            panic!("{direct:?}");
        };
        alice
            .send(&ClientFrame::Read {
                room: None,
                with: Some("bob".into()),
                seq: psst,
            })
            .await;
        quit(alice).await;
        markers_seen(server.addr(), "alice", ("rust", second), ("bob", psst)).await;
        let mut gus = guest(server.addr(), "gus").await;
        gus.send(&ClientFrame::Read {
            room: Some("rust".into()),
            with: None,
            seq: 9999,
        })
        .await;
        let answer = enter(&mut gus, "rust").await;
        assert!(
            matches!(answer, ServerFrame::Room { read: 0, .. }),
            "{answer:?}"
        );
    });
}
