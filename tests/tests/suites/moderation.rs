//! Moderation (protocol version 3): roles, topics, remove, ban, mute, invite-only rooms,
//! deleting messages and server bans, every permission rule and refusal code, over real
//! sockets. Each test states the server flags it uses (`test_config()`: the flag
//! defaults, two threads, `--memory`, flood control on at `--rate 5 --burst 20`), and
//! where the suite runs on a cluster, who is on which node.

use std::net::SocketAddr;
use std::time::Duration;

use chat_shared::{
    ClientFrame, CloseCode, ErrorCode, LeaveReason, PROTOCOL_VERSION, Password, RejectCode, Role,
    RoomState, RoomUsers, ServerFrame,
};
use chat_tests::{Client, Config, assert_closing, assert_rejected, run_for, test_config};
use smol::Timer;

use super::start;

const LIMIT: Duration = Duration::from_secs(60);

/// A version-3 `hello`, as a guest or (with a password) an account.
pub(super) fn hello(name: &str, password: Option<&str>, register: bool) -> ClientFrame {
    ClientFrame::Hello {
        protocol: PROTOCOL_VERSION,
        name: name.into(),
        since: None,
        epoch: None,
        token: None,
        password: password.map(Password::new),
        register,
    }
}

/// Every account's password in these tests.
pub(super) fn password(name: &str) -> String {
    format!("the password of {name}")
}

/// Registers an account and logs it in; returns it with its `welcome`.
pub(super) async fn account(addr: SocketAddr, name: &str) -> (Client, ServerFrame) {
    Client::login_with(addr, &hello(name, Some(&password(name)), true)).await
}

/// Logs in to an account registered before.
pub(super) async fn again(addr: SocketAddr, name: &str) -> (Client, ServerFrame) {
    Client::login_with(addr, &hello(name, Some(&password(name)), false)).await
}

/// Says `bye` and waits until the server closed the connection: the name is free again.
pub(super) async fn quit(mut client: Client) {
    client.send(&ClientFrame::Bye).await;
    client.recv_to_end().await;
}

/// Logs in a guest.
pub(super) async fn guest(addr: SocketAddr, name: &str) -> Client {
    Client::login_with(addr, &hello(name, None, false)).await.0
}

pub(super) fn join(room: &str) -> ClientFrame {
    ClientFrame::Join {
        room: room.into(),
        since: None,
    }
}

/// Joins a room: its `room` answer, once the client's own `joined` came too.
pub(super) async fn enter(client: &mut Client, room: &str) -> ServerFrame {
    client.send(&join(room)).await;
    let answer = client
        .recv_until(|f| matches!(f, ServerFrame::Room { .. } | ServerFrame::Error { .. }))
        .await
        .pop()
        .expect("the answer");
    let ServerFrame::Room { seq, .. } = &answer else {
        panic!("{}: join {room} answered {answer:?}", client.name);
    };
    let (me, seq) = (client.name.clone(), *seq);
    client
        .recv_until(|f| matches!(f, ServerFrame::Joined { name, room: Some(r), seq: s, .. } if *name == me && r == room && *s > seq))
        .await;
    answer
}

/// Waits until `client` has seen `name` join `room`: on a cluster each node takes an event
/// in when its tail brings it, and a moderator acts on the room as its node knows it.
pub(super) async fn sees_join(client: &mut Client, room: &str, name: &str) {
    client
        .recv_until(|f| matches!(f, ServerFrame::Joined { name: n, room: Some(r), .. } if n == name && r == room))
        .await;
}

/// Waits until `client` has seen `event` (as recorded).
pub(super) async fn sees(client: &mut Client, event: &ServerFrame) {
    client.recv_until(|f| f == event).await;
}

/// Sends a frame and returns the `error` that answers it.
pub(super) async fn refused(client: &mut Client, frame: &ClientFrame) -> ServerFrame {
    client.send(frame).await;
    client
        .recv_until(|f| matches!(f, ServerFrame::Error { .. }))
        .await
        .pop()
        .expect("the error")
}

/// Sends a frame that must be refused with `want`.
async fn expect_refusal(client: &mut Client, frame: &ClientFrame, want: ErrorCode) {
    assert_eq!(code(&refused(client, frame).await), want, "{frame:?}");
}

/// The code of an `error`.
pub(super) fn code(frame: &ServerFrame) -> ErrorCode {
    match frame {
        ServerFrame::Error { code, .. } => *code,
        other => panic!("not an error: {other:?}"),
    }
}

/// Sends a moderation frame and waits for the event it records in `room` (by this
/// client, of the frame's kind); an `error` on the way fails the test.
pub(super) async fn recorded(client: &mut Client, frame: &ClientFrame, room: &str) -> ServerFrame {
    client.send(frame).await;
    let me = client.name.clone();
    let frames = client
        .recv_until(|f| {
            matches!(f, ServerFrame::Error { .. })
                || (f.room() == Some(room) && records(frame, f, &me))
        })
        .await;
    let last = frames.last().cloned().expect("a frame");
    assert!(
        !matches!(last, ServerFrame::Error { .. }),
        "{}: {frame:?} answered {last:?}",
        client.name
    );
    last
}

/// Whether `event` is what `frame`, sent by `me`, records.
fn records(frame: &ClientFrame, event: &ServerFrame, me: &str) -> bool {
    match (frame, event) {
        (ClientFrame::Topic { .. }, ServerFrame::Topic { by, .. })
        | (ClientFrame::Role { .. }, ServerFrame::Role { by, .. })
        | (ClientFrame::Ban { .. }, ServerFrame::Ban { by, .. })
        | (ClientFrame::Unban { .. }, ServerFrame::Unban { by, .. })
        | (ClientFrame::Mute { .. }, ServerFrame::Mute { by, .. })
        | (ClientFrame::Unmute { .. }, ServerFrame::Unmute { by, .. })
        | (ClientFrame::Settings { .. }, ServerFrame::Settings { by, .. })
        | (ClientFrame::Invite { .. }, ServerFrame::Invite { by, .. })
        | (ClientFrame::Delete { .. }, ServerFrame::Deleted { by, .. })
        | (ClientFrame::Remove { .. }, ServerFrame::Left { by: Some(by), .. }) => by == me,
        _ => false,
    }
}

/// The next recorded event of `room` (frames of other rooms, and answers, may come
/// first); an `error` on the way fails the test.
pub(super) async fn next_recorded(client: &mut Client, room: &str) -> ServerFrame {
    let frames = client
        .recv_until(|f| {
            matches!(f, ServerFrame::Error { .. }) || (f.room() == Some(room) && f.seq().is_some())
        })
        .await;
    let last = frames.last().cloned().expect("a frame");
    assert!(
        !matches!(last, ServerFrame::Error { .. }),
        "{}: {last:?}",
        client.name
    );
    last
}

/// Posts in a room and waits for the echo: its seq.
pub(super) async fn post(client: &mut Client, room: &str, text: &str) -> u64 {
    let id = format!("{}-{text}", client.name);
    client
        .send(&ClientFrame::Say {
            room: Some(room.into()),
            to: None,
            text: text.into(),
            id: Some(id.clone()),
            me: false,
            reply_to: None,
        })
        .await;
    let frames = client
        .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(i), .. } | ServerFrame::Error { id: Some(i), .. } if *i == id))
        .await;
    match frames.last() {
        Some(ServerFrame::Message { seq, .. }) => *seq,
        other => panic!("{}: {text:?} answered {other:?}", client.name),
    }
}

pub(super) fn say_in(room: &str, text: &str, id: &str) -> ClientFrame {
    ClientFrame::Say {
        room: Some(room.into()),
        to: None,
        text: text.into(),
        id: Some(id.into()),
        me: false,
        reply_to: None,
    }
}

pub(super) fn topic(room: &str, text: &str) -> ClientFrame {
    ClientFrame::Topic {
        room: room.into(),
        text: text.into(),
    }
}

pub(super) fn role(room: &str, name: &str, role: Role) -> ClientFrame {
    ClientFrame::Role {
        room: room.into(),
        name: name.into(),
        role,
    }
}

pub(super) fn ban(
    room: Option<&str>,
    name: &str,
    message: Option<&str>,
    minutes: Option<u64>,
) -> ClientFrame {
    ClientFrame::Ban {
        room: room.map(Into::into),
        name: name.into(),
        message: message.map(Into::into),
        minutes,
        address: false,
    }
}

/// `test_config()` with `--admins root`.
fn with_root() -> Config {
    Config {
        admins: vec![chat_shared::Name::parse("root").expect("a name")],
        ..test_config()
    }
}

/// An account that makes `room` (and so owns it): logged in, in the room, its `role`
/// event read.
pub(super) async fn owner_of(addr: SocketAddr, name: &str, room: &str) -> Client {
    let (mut owner, _) = account(addr, name).await;
    enter(&mut owner, room).await;
    let role = next_recorded(&mut owner, room).await;
    assert!(
        matches!(&role, ServerFrame::Role { by, name: n, role: Role::Owner, .. } if by == name && n == name),
        "the creator owns the room: {role:?}"
    );
    owner
}

/// Flags: defaults. The account whose join makes a room owns it: a `role` event right
/// after its `joined`, and the `room` answer names it in `roles`; a guest's room has no
/// owner, and neither has the default room.
#[test]
fn the_account_that_makes_a_room_owns_it() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, welcome) = account(server.addr(), "alice").await;
        assert!(
            matches!(
                welcome,
                ServerFrame::Welcome {
                    admin: false,
                    protocol: 3,
                    ..
                }
            ),
            "{welcome:?}"
        );
        enter(&mut alice, "rust").await;
        let owned = next_recorded(&mut alice, "rust").await;
        assert!(
            matches!(&owned, ServerFrame::Role { seq: 2, by, name, role: Role::Owner, .. } if by == "alice" && name == "alice"),
            "{owned:?}"
        );
        let (mut bob, _) = account(server.addr(), "bob").await;
        let answer = enter(&mut bob, "rust").await;
        let ServerFrame::Room {
            state:
                RoomState {
                    roles,
                    topic: None,
                    invite_only: false,
                    bans,
                    ..
                },
            ..
        } = &answer
        else {
            panic!("{answer:?}");
        };
        assert_eq!(roles.get("alice"), Some(&Role::Owner));
        assert!(bans.is_empty(), "only those who may lift them see the bans");
        let mut gus = guest(server.addr(), "gus").await;
        let answer = enter(&mut gus, "guests").await;
        assert!(
            matches!(&answer, ServerFrame::Room { state: RoomState { roles, .. }, .. } if roles.is_empty())
        );
        bob.send(&join("general")).await;
        let answer = bob
            .recv_until(|f| matches!(f, ServerFrame::Room { .. }))
            .await
            .pop();
        assert!(
            matches!(&answer, Some(ServerFrame::Room { state: RoomState { roles, .. }, .. }) if roles.is_empty())
        );
    });
}

/// Flags: defaults. Topic and roles: owners and ops set the topic, only owners give roles
/// (to accounts: `no_account` else), the last owner stays one (`not_permitted`), a step
/// that changes nothing records nothing, and everyone in the room sees each step as
/// recorded.
#[test]
fn topics_and_roles() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let mut alice = owner_of(server.addr(), "alice", "rust").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        let mut gus = guest(server.addr(), "gus").await;
        enter(&mut bob, "rust").await;
        enter(&mut gus, "rust").await;
        assert_eq!(
            code(&refused(&mut bob, &topic("rust", "mine")).await),
            ErrorCode::NotPermitted
        );
        let set = recorded(&mut alice, &topic("rust", "Rust talk"), "rust").await;
        assert!(
            matches!(&set, ServerFrame::Topic { by, text, .. } if by == "alice" && text == "Rust talk")
        );
        sees(&mut bob, &set).await; // as recorded
        alice.send(&topic("rust", "Rust talk")).await;
        let next = post(&mut alice, "rust", "after the same topic").await;
        assert_eq!(
            Some(next),
            set.seq().map(|seq| seq + 1),
            "the same topic: nothing"
        );

        let made = recorded(&mut alice, &role("rust", "BOB", Role::Op), "rust").await;
        assert!(
            matches!(&made, ServerFrame::Role { name, role: Role::Op, .. } if name == "bob"),
            "the account's own spelling: {made:?}"
        );
        sees(&mut bob, &made).await;
        recorded(&mut bob, &topic("rust", "ops may"), "rust").await;
        expect_refusal(
            &mut bob,
            &role("rust", "bob", Role::Owner),
            ErrorCode::NotPermitted,
        )
        .await;
        expect_refusal(
            &mut alice,
            &role("rust", "gus", Role::Op),
            ErrorCode::NoAccount,
        )
        .await;
        expect_refusal(
            &mut alice,
            &role("rust", "alice", Role::Member),
            ErrorCode::NotPermitted,
        )
        .await;
        // With a second owner, the first may step down.
        recorded(&mut alice, &role("rust", "bob", Role::Owner), "rust").await;
        recorded(&mut alice, &role("rust", "alice", Role::Op), "rust").await;
        gus.send(&join("rust")).await;
        let answer = gus
            .recv_until(|f| matches!(f, ServerFrame::Room { .. }))
            .await
            .pop();
        assert!(
            matches!(&answer, Some(ServerFrame::Room { state: RoomState { roles, topic: Some(t), .. }, .. })
                if roles.get("bob") == Some(&Role::Owner) && roles.get("alice") == Some(&Role::Op) && t == "ops may"),
            "{answer:?}"
        );
    });
}

/// Flags: defaults, `--admins root`. What is refused before anything is looked up: a
/// room name that is none (`invalid_room`), a name that is none (`no_account` for a role,
/// `bad_frame` for a ban), a topic too long (`too_long`) or of two lines (`bad_text`),
/// `minutes` 0 (`bad_frame`); then a room one is not in (`not_member`), and a server ban
/// by someone who is no administrator (`not_permitted`).
#[test]
fn frames_refused_before_the_room_is_asked() {
    let server = start(with_root());
    run_for(LIMIT, async {
        let mut bob = owner_of(server.addr(), "bob", "rust").await;
        for (frame, want) in [
            (topic("!!!", "x"), ErrorCode::InvalidRoom),
            (role("rust", " ", Role::Op), ErrorCode::NoAccount),
            (ban(Some("rust"), " ", None, None), ErrorCode::BadFrame),
            (topic("rust", &"x".repeat(513)), ErrorCode::TooLong),
            (topic("rust", "a\nb"), ErrorCode::BadText),
            (ban(Some("rust"), "gus", None, Some(0)), ErrorCode::BadFrame),
            (topic("elsewhere", "x"), ErrorCode::NotMember),
            (ban(None, "gus", None, None), ErrorCode::NotPermitted),
        ] {
            assert_eq!(code(&refused(&mut bob, &frame).await), want, "{frame:?}");
        }
        post(&mut bob, "rust", "still connected").await;
    });
}

/// `remove` of a name from a room.
/// The `left` a member put out of a room sees, for this reason.
fn put_out(frame: &ServerFrame, why: LeaveReason) -> bool {
    matches!(frame, ServerFrame::Left { reason, .. } if *reason == why)
}

fn remove(name: &str, message: Option<&str>) -> ClientFrame {
    ClientFrame::Remove {
        room: "rust".into(),
        name: name.into(),
        message: message.map(Into::into),
    }
}

/// Alice owns rust, Bob is an op there, root (an administrator) is in it: logged in,
/// with `others` (guests) in the room too.
async fn moderated_rust(
    addr: SocketAddr,
    others: &[&str],
) -> (Client, Client, Client, Vec<Client>) {
    let mut alice = owner_of(addr, "alice", "rust").await;
    let (mut bob, _) = account(addr, "bob").await;
    let (mut root, welcome) = account(addr, "root").await;
    assert!(matches!(welcome, ServerFrame::Welcome { admin: true, .. }));
    enter(&mut bob, "rust").await;
    enter(&mut root, "rust").await;
    let mut guests = Vec::new();
    for name in others {
        let mut client = guest(addr, name).await;
        enter(&mut client, "rust").await;
        guests.push(client);
    }
    let made = recorded(&mut alice, &role("rust", "bob", Role::Op), "rust").await;
    // Bob's node has taken in everyone's joins once it has this.
    sees(&mut bob, &made).await;
    (alice, bob, root, guests)
}

/// Flags: defaults, `--admins root`. Remove: members act on nobody, ops not on owners,
/// nobody on an administrator but another one (`not_permitted`); a name not in the room
/// is `not_member`. The `left` `removed` names who and why; the removed sees it, is out
/// (`not_member`), and may come back.
#[test]
fn remove_and_who_may() {
    let server = start(with_root());
    run_for(LIMIT, async {
        let (mut alice, mut bob, _root, mut guests) =
            moderated_rust(server.addr(), &["troll"]).await;
        let mut troll = guests.remove(0);
        expect_refusal(&mut troll, &remove("bob", None), ErrorCode::NotPermitted).await;
        expect_refusal(&mut bob, &remove("alice", None), ErrorCode::NotPermitted).await;
        expect_refusal(&mut alice, &remove("root", None), ErrorCode::NotPermitted).await;
        expect_refusal(&mut bob, &remove("nobody", None), ErrorCode::NotMember).await;
        let left = recorded(&mut bob, &remove("troll", Some("calm down")), "rust").await;
        assert!(
            matches!(&left, ServerFrame::Left { name, reason: LeaveReason::Removed, by: Some(by), message: Some(m), .. }
                if name == "troll" && by == "bob" && m == "calm down"),
            "{left:?}"
        );
        let seen = troll
            .recv_until(|f| put_out(f, LeaveReason::Removed))
            .await
            .pop();
        assert_eq!(seen, Some(left), "the removed sees its own left");
        assert_eq!(
            code(&refused(&mut troll, &say_in("rust", "still here?", "t-1")).await),
            ErrorCode::NotMember
        );
        enter(&mut troll, "rust").await;
    });
}

/// Flags: defaults, `--admins root`. Ban: the `ban` event, then the banned one put out (a
/// `left` `banned` with `by`); joining again is refused with `error` `banned` (the reason
/// as its message, and its `until`); a name that looks like the banned one is banned too;
/// an op's `room` answer lists the bans; an unban by the look-alike name lifts it.
#[test]
fn ban_and_unban() {
    let server = start(with_root());
    run_for(LIMIT, async {
        let (_alice, mut bob, _root, mut guests) = moderated_rust(server.addr(), &["troll"]).await;
        let mut troll = guests.remove(0);
        let banned = recorded(
            &mut bob,
            &ban(Some("rust"), "troll", Some("spam"), Some(60)),
            "rust",
        )
        .await;
        let ServerFrame::Ban {
            until: Some(until),
            message: Some(why),
            ..
        } = &banned
        else {
            panic!("{banned:?}");
        };
        assert_eq!(why, "spam");
        let out = next_recorded(&mut bob, "rust").await;
        assert!(
            matches!(&out, ServerFrame::Left { name, reason: LeaveReason::Banned, by: Some(by), .. } if name == "troll" && by == "bob"),
            "{out:?}"
        );
        troll.recv_until(|f| put_out(f, LeaveReason::Banned)).await;
        let refusal = refused(&mut troll, &join("rust")).await;
        assert!(
            matches!(&refusal, ServerFrame::Error { code: ErrorCode::Banned, message, until: Some(u), room: Some(r), .. }
                if message == "spam" && u == until && r == "rust"),
            "{refusal:?}"
        );
        quit(troll).await;
        let mut look_alike = guest(server.addr(), "TR0LL").await;
        assert_eq!(
            code(&refused(&mut look_alike, &join("rust")).await),
            ErrorCode::Banned
        );
        // The `room` answer shows an op the bans in force (asked again: how a client
        // resumes a room it is in).
        bob.send(&join("rust")).await;
        let answer = bob
            .recv_until(|f| matches!(f, ServerFrame::Room { .. }))
            .await
            .pop();
        assert!(
            matches!(&answer, Some(ServerFrame::Room { state: RoomState { bans, .. }, .. }) if bans.len() == 1 && bans[0].name == "troll"),
            "{answer:?}"
        );
        let unban = ClientFrame::Unban {
            room: Some("rust".into()),
            name: "tr0ll".into(),
        };
        let lifted = recorded(&mut bob, &unban, "rust").await;
        assert!(matches!(&lifted, ServerFrame::Unban { name, .. } if name == "troll"));
        enter(&mut look_alike, "rust").await;
    });
}

/// Flags: defaults, `--admins root`. Mute: the muted may stay and read but not post (its
/// post is refused `muted`, with its id); unmute lets it post again; lifting what is not
/// there records nothing.
#[test]
fn mute_and_unmute() {
    let server = start(with_root());
    run_for(LIMIT, async {
        let (mut alice, mut bob, _root, mut guests) =
            moderated_rust(server.addr(), &["loud"]).await;
        let mut loud = guests.remove(0);
        let mute = ClientFrame::Mute {
            room: "rust".into(),
            name: "LOUD".into(),
            minutes: None,
        };
        let muted = recorded(&mut bob, &mute, "rust").await;
        sees(&mut loud, &muted).await;
        let refusal = refused(&mut loud, &say_in("rust", "let me speak", "m-1")).await;
        assert!(
            matches!(&refusal, ServerFrame::Error { code: ErrorCode::Muted, id: Some(id), until: None, .. } if id == "m-1"),
            "{refusal:?}"
        );
        let seq = post(&mut alice, "rust", "the muted can read this").await;
        let heard = loud
            .recv_until(|f| matches!(f, ServerFrame::Message { seq: s, .. } if *s == seq))
            .await;
        assert!(
            heard
                .iter()
                .all(|f| !matches!(f, ServerFrame::Message { from, .. } if from == "loud"))
        );
        let unmute = ClientFrame::Unmute {
            room: "rust".into(),
            name: "loud".into(),
        };
        let unmuted = recorded(&mut bob, &unmute, "rust").await;
        sees(&mut loud, &unmuted).await;
        post(&mut loud, "rust", "thank you").await;
        bob.send(&unmute).await;
        let next = post(&mut bob, "rust", "nothing between").await;
        assert_eq!(next, seq + 3, "the unmute, thank you, then this");
    });
}

/// Flags: defaults, a minute of 1 s (`Config::minute`, for tests). A ban and a mute with
/// `minutes` end by themselves at their `until`, with nothing recorded then.
#[test]
fn timed_bans_and_mutes_end_by_themselves() {
    let server = start(Config {
        minute: Duration::from_secs(1),
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let mut troll = guest(server.addr(), "troll").await;
        enter(&mut alice, "rust").await;
        enter(&mut troll, "rust").await;
        sees_join(&mut alice, "rust", "troll").await;
        let mute = ClientFrame::Mute {
            room: "rust".into(),
            name: "troll".into(),
            minutes: Some(1),
        };
        let muted = recorded(&mut alice, &mute, "rust").await;
        sees(&mut troll, &muted).await;
        let ServerFrame::Mute {
            until: Some(until),
            time,
            ..
        } = muted
        else {
            panic!("{muted:?}");
        };
        assert!((999..=1000).contains(&(until - time)), "one minute of 1 s");
        assert_eq!(
            code(&refused(&mut troll, &say_in("rust", "early", "e-1")).await),
            ErrorCode::Muted
        );
        wait_until(until).await;
        post(&mut troll, "rust", "on time").await;

        let banned = recorded(
            &mut alice,
            &ban(Some("rust"), "troll", None, Some(2)),
            "rust",
        )
        .await;
        let ServerFrame::Ban {
            until: Some(until), ..
        } = banned
        else {
            panic!("{banned:?}");
        };
        troll.recv_until(|f| put_out(f, LeaveReason::Banned)).await;
        let refusal = refused(&mut troll, &join("rust")).await;
        assert!(
            matches!(&refusal, ServerFrame::Error { code: ErrorCode::Banned, until: Some(u), .. } if *u == until),
            "{refusal:?}"
        );
        wait_until(until).await;
        enter(&mut troll, "rust").await;
    });
}

/// Waits until the server's clock (ms since the Unix epoch) is past `until`: a timed ban
/// or mute ends then, and nothing announces it.
async fn wait_until(until: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64;
    Timer::after(Duration::from_millis(until.saturating_sub(now) + 20)).await;
}

/// `settings` of secret.
fn invite_only(on: bool) -> ClientFrame {
    ClientFrame::Settings {
        room: "secret".into(),
        invite_only: on,
        retain_days: None,
    }
}

/// `invite` to secret.
fn invite(name: &str) -> ClientFrame {
    ClientFrame::Invite {
        room: "secret".into(),
        name: name.into(),
    }
}

/// Flags: defaults, `--admins root`. An invite-only room refuses a join without an
/// invitation (`invite_only`), is not listed by `rooms` but to its members and to
/// administrators, and its history is for its members (`not_permitted`); an
/// administrator joins it anyway.
#[test]
fn invite_only_rooms_are_closed_and_hidden() {
    let server = start(with_root());
    run_for(LIMIT, async {
        let mut alice = owner_of(server.addr(), "alice", "secret").await;
        let (mut carol, _) = account(server.addr(), "carol").await;
        let (mut root, _) = account(server.addr(), "root").await;
        let mut gus = guest(server.addr(), "gus").await;
        let closed = recorded(&mut alice, &invite_only(true), "secret").await;
        assert!(matches!(
            closed,
            ServerFrame::Settings {
                invite_only: true,
                ..
            }
        ));
        assert_eq!(
            code(&refused(&mut carol, &join("secret")).await),
            ErrorCode::InviteOnly
        );
        assert_eq!(
            code(&refused(&mut gus, &join("secret")).await),
            ErrorCode::InviteOnly
        );
        let history = ClientFrame::History {
            room: Some("secret".into()),
            with: None,
            before: None,
            after: None,
            limit: None,
        };
        assert_eq!(
            code(&refused(&mut carol, &history).await),
            ErrorCode::NotPermitted
        );
        for (client, sees) in [(&mut carol, false), (&mut root, true), (&mut alice, true)] {
            client.send(&ClientFrame::Rooms).await;
            let list = client
                .recv_until(|f| matches!(f, ServerFrame::RoomList { .. }))
                .await
                .pop();
            let Some(ServerFrame::RoomList { rooms }) = list else {
                unreachable!()
            };
            let listed = rooms.iter().any(|RoomUsers { room, .. }| room == "secret");
            assert_eq!(listed, sees, "{}: {rooms:?}", client.name);
        }
        enter(&mut root, "secret").await;
    });
}

/// Flags: defaults. Invitations to an invite-only room: to accounts only (`no_account`);
/// the invitee hears of it (`invited`), or, away, in `welcome.invites` at its next
/// log-in; the join it lets in uses it; opening the room ends every invitation.
#[test]
fn invitations() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let mut alice = owner_of(server.addr(), "alice", "secret").await;
        let (mut carol, _) = account(server.addr(), "carol").await;
        let (dave, _) = account(server.addr(), "dave").await;
        quit(dave).await;
        let mut gus = guest(server.addr(), "gus").await;
        recorded(&mut alice, &invite_only(true), "secret").await;
        assert_eq!(
            code(&refused(&mut alice, &invite("gus")).await),
            ErrorCode::NoAccount
        );
        let invited = recorded(&mut alice, &invite("Carol"), "secret").await;
        assert!(
            matches!(&invited, ServerFrame::Invite { name, by, .. } if name == "carol" && by == "alice")
        );
        let note = carol
            .recv_until(|f| matches!(f, ServerFrame::Invited { .. }))
            .await
            .pop();
        assert!(
            matches!(&note, Some(ServerFrame::Invited { room, by }) if room == "secret" && by == "alice"),
            "{note:?}"
        );
        enter(&mut carol, "secret").await;
        carol
            .send(&ClientFrame::Part {
                room: "secret".into(),
            })
            .await;
        carol
            .recv_until(|f| matches!(f, ServerFrame::Left { name, .. } if name == "carol"))
            .await;
        assert_eq!(
            code(&refused(&mut carol, &join("secret")).await),
            ErrorCode::InviteOnly,
            "the invitation was used"
        );
        recorded(&mut alice, &invite("dave"), "secret").await;
        let (mut dave, welcome) = again(server.addr(), "dave").await;
        let ServerFrame::Welcome { invites, .. } = &welcome else {
            unreachable!()
        };
        assert_eq!(invites.len(), 1, "{welcome:?}");
        assert_eq!(
            (invites[0].room.as_str(), invites[0].by.as_str()),
            ("secret", "alice")
        );
        recorded(&mut alice, &invite_only(false), "secret").await;
        enter(&mut gus, "secret").await;
        recorded(&mut alice, &invite_only(true), "secret").await;
        assert_eq!(
            code(&refused(&mut dave, &join("secret")).await),
            ErrorCode::InviteOnly,
            "the invitation ended when the room was opened"
        );
    });
}

/// `delete` of a message of rust.
fn delete(seq: u64) -> ClientFrame {
    ClientFrame::Delete {
        room: Some("rust".into()),
        with: None,
        seq,
    }
}

/// Flags: defaults. Deleting a room's message: its author (an account) or an owner or op
/// may; the `deleted` event; history shows the message in its place, deleted, with its
/// seq, time and sender and no text; a post sent again with its id gets it as it is now.
/// Refusals: a guest's own (`account_required`), someone else's by a member
/// (`not_permitted`), a seq that is no message, or deleted already (`no_such_message`).
#[test]
fn deleting_a_rooms_messages() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let mut alice = owner_of(server.addr(), "alice", "rust").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        let mut gus = guest(server.addr(), "gus").await;
        enter(&mut bob, "rust").await;
        enter(&mut gus, "rust").await;
        let own = post(&mut bob, "rust", "my passport number is 1234").await;
        let deleted = recorded(&mut bob, &delete(own), "rust").await;
        assert!(
            matches!(&deleted, ServerFrame::Deleted { target, room: Some(r), .. } if *target == own && r == "rust"),
            "{deleted:?}"
        );
        let guests = post(&mut gus, "rust", "a guest's words").await;
        expect_refusal(&mut bob, &delete(own), ErrorCode::NoSuchMessage).await;
        expect_refusal(&mut bob, &delete(1), ErrorCode::NoSuchMessage).await;
        expect_refusal(&mut bob, &delete(9_999), ErrorCode::NoSuchMessage).await;
        expect_refusal(&mut gus, &delete(guests), ErrorCode::AccountRequired).await;
        expect_refusal(&mut bob, &delete(guests), ErrorCode::NotPermitted).await;
        alice
            .recv_until(|f| matches!(f, ServerFrame::Message { seq, .. } if *seq == guests))
            .await;
        recorded(&mut alice, &delete(guests), "rust").await;
        // The same post sent again gets the message as it is now.
        let id = "bob-my passport number is 1234";
        bob.send(&say_in("rust", "my passport number is 1234", id))
            .await;
        let again = bob
            .recv_until(|f| matches!(f, ServerFrame::Message { seq, .. } if *seq == own))
            .await
            .pop();
        assert!(
            matches!(&again, Some(ServerFrame::Message { deleted: true, text, .. }) if text.is_empty()),
            "{again:?}"
        );
        gus.send(&ClientFrame::History {
            room: Some("rust".into()),
            with: None,
            before: None,
            after: None,
            limit: None,
        })
        .await;
        let frames = gus
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        let shown = frames
            .iter()
            .find(|f| matches!(f, ServerFrame::Message { seq, .. } if *seq == own))
            .expect("the deleted message is in the history");
        assert!(
            matches!(shown, ServerFrame::Message { deleted: true, text, from, .. } if text.is_empty() && from == "bob"),
            "{shown:?}"
        );
        assert!(
            frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Deleted { target, .. } if *target == own))
        );
    });
}

/// Flags: defaults. A direct message is deleted by its author only (`not_permitted` for
/// the other party, `account_required` for a guest), and both parties see `deleted`,
/// each with the other as `with`.
#[test]
fn deleting_a_direct_message() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let (mut bob, _) = account(server.addr(), "bob").await;
        let mut gus = guest(server.addr(), "gus").await;
        alice
            .send(&ClientFrame::Say {
                room: None,
                to: Some("bob".into()),
                text: "between us".into(),
                id: Some("dm-1".into()),
                me: false,
                reply_to: None,
            })
            .await;
        let echo = alice
            .recv_until(|f| matches!(f, ServerFrame::Message { with: Some(_), .. }))
            .await
            .pop();
        let Some(ServerFrame::Message { seq: dm, .. }) = echo else {
            unreachable!()
        };
        bob.recv_until(|f| matches!(f, ServerFrame::Message { with: Some(_), .. }))
            .await;
        let delete_dm = |with: &str| ClientFrame::Delete {
            room: None,
            with: Some(with.into()),
            seq: dm,
        };
        assert_eq!(
            code(&refused(&mut bob, &delete_dm("alice")).await),
            ErrorCode::NotPermitted
        );
        assert_eq!(
            code(&refused(&mut gus, &delete_dm("alice")).await),
            ErrorCode::AccountRequired
        );
        alice.send(&delete_dm("bob")).await;
        for (client, with) in [(&mut alice, "bob"), (&mut bob, "alice")] {
            let seen = client
                .recv_until(|f| matches!(f, ServerFrame::Deleted { .. }))
                .await
                .pop();
            assert!(
                matches!(&seen, Some(ServerFrame::Deleted { with: Some(w), target, by, .. }) if w == with && *target == dm && by == "alice"),
                "{}: {seen:?}",
                client.name
            );
        }
    });
}

/// Flags: defaults, `--admins root`. A server ban by an administrator: the banned name's
/// session is closed (`closing` `banned`, with the reason), its `hello` and that of any
/// name that looks like it are refused (`rejected` `banned` with `retry_after` for a
/// timed one) until the ban is lifted; the administrator hears `ban`/`unban` back. With
/// `address`, the address the name was connected from is refused before any login.
#[test]
fn server_bans() {
    let server = start(Config {
        admins: ["root", "boss"]
            .iter()
            .map(|name| chat_shared::Name::parse(name).expect("a name"))
            .collect(),
        ..test_config()
    });
    run_for(LIMIT, async {
        let (mut root, _) = account(server.addr(), "root").await;
        let mut troll = guest(server.addr(), "troll").await;
        // A guest cannot take an administrator's name, even one not registered yet.
        let mut fake = Client::connect(server.addr()).await;
        fake.send(&hello("B0SS", None, false)).await;
        assert_rejected(&fake.recv_to_end().await, RejectCode::NameRegistered);

        root.send(&ban(None, "troll", Some("go away"), Some(60)))
            .await;
        let answer = root
            .recv_until(|f| matches!(f, ServerFrame::Ban { .. }))
            .await
            .pop();
        assert!(
            matches!(&answer, Some(ServerFrame::Ban { room: None, seq: 0, name, by, until: Some(_), .. }) if name == "troll" && by == "root"),
            "{answer:?}"
        );
        let frames = troll.recv_to_end().await;
        assert_closing(&frames, CloseCode::Banned);
        assert!(
            frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Closing { message, .. } if message == "go away")),
            "{frames:?}"
        );
        let (name, reason) = root.next_left().await;
        assert_eq!((name.as_str(), reason), ("troll", LeaveReason::Banned));
        for name in ["troll", "TR0LL"] {
            let mut again = Client::connect(server.addr()).await;
            again.send(&hello(name, None, false)).await;
            let frames = again.recv_to_end().await;
            assert_rejected(&frames, RejectCode::Banned);
            assert!(
                frames.iter().any(|f| matches!(f, ServerFrame::Rejected { retry_after: Some(ms), .. } if *ms <= 3_600_000)),
                "{frames:?}"
            );
        }
        root.send(&ClientFrame::Unban {
            room: None,
            name: "troll".into(),
        })
        .await;
        root.recv_until(|f| matches!(f, ServerFrame::Unban { room: None, .. }))
            .await;
        let troll_at = server.addr();
        let mut troll = guest(troll_at, "troll").await;

        // The address too: every connection from it is refused before its hello (here,
        // every test client's: the administrator's own session goes with it).
        root.send(&ClientFrame::Ban {
            room: None,
            name: "troll".into(),
            message: None,
            minutes: None,
            address: true,
        })
        .await;
        assert_closing(&troll.recv_to_end().await, CloseCode::Banned);
        // (On a cluster: the node the troll was on banned its address before closing it.)
        let mut from_there = Client::connect(troll_at).await;
        let frames = from_there.recv_to_end().await;
        assert_rejected(&frames, RejectCode::Banned);
    });
}

/// Flags: defaults. A removal racing a takeover: the member logs in again with its
/// password while an op removes it. Whichever comes first, the member ends up out of the
/// room on its new connection, the room's users do not name it, and nothing of it stays
/// behind (it can join again).
#[test]
fn a_removal_racing_a_takeover() {
    let server = start(test_config());
    run_for(LIMIT, async {
        let (mut alice, _) = account(server.addr(), "alice").await;
        let (mut troll, _) = account(server.addr(), "troll").await;
        enter(&mut alice, "rust").await;
        next_recorded(&mut alice, "rust").await;
        enter(&mut troll, "rust").await;
        sees_join(&mut alice, "rust", "troll").await;
        alice
            .send(&ClientFrame::Remove {
                room: "rust".into(),
                name: "troll".into(),
                message: None,
            })
            .await;
        let mut taken = Client::connect(server.addr()).await;
        taken
            .send(&hello("troll", Some(&password("troll")), false))
            .await;
        let welcome = taken.recv().await;
        assert!(
            matches!(welcome, ServerFrame::Welcome { .. }),
            "{welcome:?}"
        );
        taken.name = "troll".into();
        alice.recv_until(|f| put_out(f, LeaveReason::Removed)).await;
        // Out of the room on the new connection: posting there is not_member.
        taken.send(&say_in("rust", "am I in?", "t-1")).await;
        let answer = taken
            .recv_until(|f| matches!(f, ServerFrame::Error { .. } | ServerFrame::Message { .. }))
            .await
            .pop();
        assert!(
            matches!(
                answer,
                Some(ServerFrame::Error {
                    code: ErrorCode::NotMember,
                    ..
                })
            ),
            "{answer:?}"
        );
        let answer = enter(&mut taken, "rust").await;
        let ServerFrame::Room { users, .. } = answer else {
            unreachable!()
        };
        assert_eq!(
            users,
            ["alice", "troll"],
            "one troll, on its new connection"
        );
        post(&mut taken, "rust", "back").await;
    });
}
