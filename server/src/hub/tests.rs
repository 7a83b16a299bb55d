//! The hub's jobs driven by commands in-process, with no socket and no task: each test
//! hands the hub what sessions would send and reads what it queued for each connection.
//!
//! The hub runs alone over a log in memory. Its batches are recorded and pushed at once
//! ([`Harness::settle`] plays the beats forward); what it does off its task (hashing
//! passwords, reading a room back) is awaited where a test needs it, bounded by [`WAIT`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::Receiver;
use chat_shared::{
    CloseCode, Conversation, ErrorCode, LeaveReason, Name, Password, RejectCode, RoomName,
    ServerFrame, decode_line,
};
use futures_lite::future;

use crate::Config;
use crate::accounts::Hasher;
use crate::log::memory::MemoryLog;
use crate::queue::{QueueLimits, QueueReceiver, SendQueue, send_queue};
use crate::registry::ConnId;

use super::Hub;
use super::command::{Auth, Command, Login, Said};
use super::peers::Alone;

/// How long a test waits for what the hub does off its task.
const WAIT: Duration = Duration::from_secs(10);

/// `future`, or an error once `limit` has passed.
async fn within<T, E>(
    limit: Duration,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    future::or(
        async { future.await.map_err(|_| "closed".to_string()) },
        async {
            smol::Timer::after(limit).await;
            Err(format!("nothing within {limit:?}"))
        },
    )
    .await
}

/// A connection as a session holds it: its id, its queue, what the hub queued for it.
struct Conn {
    id: ConnId,
    queue: SendQueue,
    rx: QueueReceiver,
}

impl Conn {
    /// Everything queued for it since the last look, frame by frame.
    fn frames(&self) -> Vec<ServerFrame> {
        self.rx
            .queued()
            .iter()
            .flat_map(|push| push.lines().map(str::to_string).collect::<Vec<_>>())
            .map(|line| decode_line(line.as_bytes()).expect("the hub queues valid frames"))
            .collect()
    }
}

/// A hub and what it sends itself (the hashing threads' answers).
struct Harness {
    hub: Hub,
    inbox: Receiver<Command>,
    next_conn: ConnId,
}

impl Harness {
    /// A hub over a log in memory, with `config` (its storage is not looked at).
    fn new(config: Config) -> Self {
        let log = Arc::new(MemoryLog::new("epoch".into()));
        let hasher = Hasher::start(1).expect("a hashing thread");
        let (inbox_tx, inbox) = async_channel::unbounded();
        let hub = Hub::new(config, log, hasher, inbox_tx, Box::new(Alone), None).expect("a hub");
        Self {
            hub,
            inbox,
            next_conn: 1,
        }
    }

    fn connect(&mut self) -> Conn {
        let (queue, rx) = send_queue(QueueLimits {
            frames: 1024,
            bytes: 1 << 20,
        });
        self.next_conn += 1;
        Conn {
            id: self.next_conn,
            queue,
            rx,
        }
    }

    /// What a session sends when a `hello` passed its checks; returns whether the hub
    /// accepted it (once a password, if any, is checked).
    fn hello(&mut self, conn: &Conn, name: &str, auth: Auth, token: Option<String>) -> bool {
        let hashed = !matches!(auth, Auth::Guest);
        let accepted = self.hello_unsettled(conn, name, auth, token);
        self.settle();
        if hashed && accepted.is_empty() {
            self.hashed();
        }
        accepted.try_recv() == Ok(Ok(()))
    }

    /// The hub takes a `hello` in, and nothing more is done yet (no batch is recorded);
    /// the answer comes on the channel returned.
    fn hello_unsettled(
        &mut self,
        conn: &Conn,
        name: &str,
        auth: Auth,
        token: Option<String>,
    ) -> Receiver<Result<(), RejectCode>> {
        let (reply, accepted) = async_channel::bounded(1);
        self.hub.handle(Command::Login(Login {
            conn: conn.id,
            protocol: 2,
            name: Name::parse(name).expect("a valid name"),
            since: None,
            epoch: None,
            token,
            queue: conn.queue.clone(),
            reply,
            recent: Vec::new(),
            auth,
            ip: IpAddr::from([127, 0, 0, 1]),
            conversations: Vec::new(),
            session: None,
            invites: Vec::new(),
            read: Vec::new(),
            joins_default: true,
        }));
        accepted
    }

    /// A guest login that must be accepted; its welcome and first events are read.
    fn guest(&mut self, name: &str) -> Conn {
        let conn = self.connect();
        assert!(self.hello(&conn, name, Auth::Guest, None), "{name} logs in");
        conn
    }

    /// Hands the hub a command and lets it finish what follows.
    fn command(&mut self, command: Command) {
        self.hub.handle(command);
        self.settle();
    }

    /// Lets the hub finish what it started: rooms read back are awaited (bounded by
    /// [`WAIT`]); every batch is recorded and pushed to its members as if all their beats
    /// had come.
    fn settle(&mut self) {
        loop {
            self.hub.submit(Instant::now() + Duration::from_secs(3600));
            if self.hub.rooms.any_busy() {
                continue;
            }
            if let Ok(loaded) = self.hub.loaded.1.try_recv() {
                self.hub.room_loaded(loaded);
            } else if self.hub.rooms.any_loading() {
                let loaded = self.hub.loaded.1.clone();
                let loaded = smol::block_on(within(WAIT, loaded.recv()));
                self.hub.room_loaded(loaded.expect("the room is read back"));
            } else {
                return;
            }
        }
    }

    /// Waits for the hashing threads' answer to what the hub asked them, and lets the hub
    /// act on it.
    fn hashed(&mut self) {
        let inbox = self.inbox.clone();
        let answer = smol::block_on(within(WAIT, inbox.recv()));
        self.command(answer.expect("the hashing threads answer"));
    }

    fn join(&mut self, conn: &Conn, room: &str) {
        let room = RoomName::parse(room).expect("a valid room name");
        self.command(Command::Join {
            conn: conn.id,
            room,
            since: None,
        });
    }

    fn part(&mut self, conn: &Conn, room: &str) {
        let room = RoomName::parse(room).expect("a valid room name");
        self.command(Command::Part {
            conn: conn.id,
            room,
        });
    }

    fn say(&mut self, conn: &Conn, room: &str, text: &str) {
        let room = Some(RoomName::parse(room).expect("a valid room name"));
        self.command(Command::Post {
            conn: conn.id,
            room,
            said: Said {
                text: text.into(),
                id: Some(format!("{}-{text}", conn.id)),
                me: false,
                reply_to: None,
            },
        });
    }

    /// The connection went, as its session tells the hub.
    fn gone(&mut self, conn: &Conn, reason: LeaveReason) {
        conn.queue.close_with(None);
        self.command(Command::Leave {
            conn: conn.id,
            reason,
        });
    }
}

fn welcome_token(frames: &[ServerFrame]) -> String {
    match frames.first() {
        Some(ServerFrame::Welcome { token, .. }) => token.clone(),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

fn rejection(frames: &[ServerFrame]) -> (RejectCode, String) {
    match frames.last() {
        Some(ServerFrame::Rejected { code, message, .. }) => (*code, message.clone()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The (seq, name) of every `joined` and `left` of `room` in `frames`, `left`s with their
/// reason.
fn presence(frames: &[ServerFrame], room: &str) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.room() == Some(room))
        .filter_map(|f| match f {
            ServerFrame::Joined { seq, name, .. } => Some(format!("{seq} +{name}")),
            ServerFrame::Left {
                seq, name, reason, ..
            } => Some(format!("{seq} -{name} {reason:?}")),
            _ => None,
        })
        .collect()
}

fn config() -> Config {
    Config {
        threads: 1,
        ..Config::default()
    }
}

#[test]
fn names_collide_by_case_and_by_look_and_accounts_keep_theirs() {
    let mut hub = Harness::new(config());
    let alice = hub.guest("alice");
    let welcome = alice.frames();
    assert!(
        matches!(&welcome[0], ServerFrame::Welcome { name, users, .. } if name == "alice" && users == &["alice"])
    );
    for (name, says) in [
        ("alice", "alice is already online"),
        ("ALICE", "alice is already online"),
        ("AIice", "alice is online, and AIice looks the same"),
        ("\u{430}lice", "looks the same"),
    ] {
        let other = hub.connect();
        assert!(!hub.hello(&other, name, Auth::Guest, None), "{name}");
        let (code, message) = rejection(&other.frames());
        assert_eq!(code, RejectCode::NameTaken, "{name}");
        assert!(message.contains(says), "{name}: {message}");
    }
    // An account's name (and one that looks like it) is the account's, online or not.
    let dana = hub.connect();
    let password = Password::new("correct horse");
    assert!(hub.hello(&dana, "Dana", Auth::Register(password.clone()), None));
    hub.gone(&dana, LeaveReason::Quit);
    for name in ["dana", "DANA"] {
        let guest = hub.connect();
        assert!(!hub.hello(&guest, name, Auth::Guest, None), "{name}");
        assert_eq!(
            rejection(&guest.frames()).0,
            RejectCode::NameRegistered,
            "{name}"
        );
    }
    let back = hub.connect();
    assert!(hub.hello(&back, "dana", Auth::Password(password), None));
    assert!(
        matches!(&back.frames()[0], ServerFrame::Welcome { name, account: true, .. } if name == "Dana"),
        "the account's own spelling"
    );
    // Nobody else saw any of the refused names.
    let seen = presence(&alice.frames(), "general");
    assert_eq!(seen, ["2 +Dana", "3 -Dana Quit", "4 +Dana"]);
}

#[test]
fn join_and_part_are_recorded_in_the_room_and_answered() {
    let mut hub = Harness::new(config());
    let alice = hub.guest("alice");
    let bob = hub.guest("bob");
    hub.join(&alice, "Rust");
    let frames = alice.frames();
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Room { room, users, seq: 0, oldest: 0, ..  } if room == "Rust" && users == &["alice"])),
        "{frames:?}"
    );
    assert_eq!(presence(&frames, "Rust"), ["1 +alice"]);
    // The room keeps the spelling of its first join; the answer names the newcomer.
    hub.join(&bob, "rust");
    let frames = bob.frames();
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Room { room, users, seq: 1, .. } if room == "Rust" && users == &["alice", "bob"])),
        "{frames:?}"
    );
    assert_eq!(
        presence(&frames, "Rust"),
        ["1 +alice", "2 +bob"],
        "replay, then its own"
    );
    hub.say(&alice, "rust", "hi bob");
    assert!(
        bob.frames()
            .iter()
            .any(|f| matches!(f, ServerFrame::Message { seq: 3, text, .. } if text == "hi bob"))
    );
    // A part: the `left` is the answer, and then the room is not the member's.
    hub.part(&bob, "RUST");
    assert_eq!(presence(&bob.frames(), "Rust"), ["4 -bob Part"]);
    assert_eq!(presence(&alice.frames(), "Rust"), ["2 +bob", "4 -bob Part"]);
    hub.say(&bob, "rust", "still here?");
    assert!(
        matches!(
            bob.frames().as_slice(),
            [ServerFrame::Error {
                code: ErrorCode::NotMember,
                ..
            }]
        ),
        "not a member any more"
    );
    assert!(alice.frames().is_empty(), "nothing reached the room");
    // A room whose name looks like an existing one is refused, naming it.
    hub.join(&bob, "Ru\u{455}t");
    match bob.frames().as_slice() {
        [
            ServerFrame::Error {
                code: ErrorCode::InvalidRoom,
                message,
                ..
            },
        ] => {
            assert!(message.contains("Rust"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_part_right_after_a_join_answers_both_and_records_one_left() {
    let mut hub = Harness::new(config());
    let alice = hub.guest("alice");
    let bob = hub.guest("bob");
    hub.join(&alice, "rust");
    let _ = (alice.frames(), bob.frames());
    // In a room in memory, and in one read back from the log meanwhile: the `part`
    // comes before the join's `joined` is recorded.
    for room in ["rust", "fresh"] {
        let name = RoomName::parse(room).expect("a valid room name");
        hub.hub.handle(Command::Join {
            conn: bob.id,
            room: name.clone(),
            since: None,
        });
        hub.hub.handle(Command::Part {
            conn: bob.id,
            room: name,
        });
        hub.settle();
        let frames = bob.frames();
        assert!(
            matches!(frames.first(), Some(ServerFrame::Room { room: answered, .. }) if answered == room),
            "the join is answered: {frames:?}"
        );
        let expected: &[&str] = if room == "rust" {
            &["1 +alice", "2 +bob", "3 -bob Part"]
        } else {
            &["1 +bob", "2 -bob Part"]
        };
        assert_eq!(
            presence(&frames, room),
            expected,
            "the replay with its `joined`, then the part's answer"
        );
        hub.say(&bob, room, "still here?");
        assert!(
            matches!(
                bob.frames().as_slice(),
                [ServerFrame::Error {
                    code: ErrorCode::NotMember,
                    ..
                }]
            ),
            "out of {room}"
        );
    }
    assert_eq!(
        presence(&alice.frames(), "rust"),
        ["2 +bob", "3 -bob Part"],
        "one `left`, and no other"
    );
}

#[test]
fn a_welcome_lists_the_conversations_that_moved_while_its_login_was_on_its_way() {
    let mut hub = Harness::new(config());
    let password = Password::new("correct horse");
    let dana = hub.connect();
    assert!(hub.hello(&dana, "Dana", Auth::Register(password.clone()), None));
    hub.gone(&dana, LeaveReason::Quit);
    let erin = hub.connect();
    assert!(hub.hello(&erin, "Erin", Auth::Register(password.clone()), None));
    hub.command(Command::Direct {
        conn: erin.id,
        to: "dana".into(),
        said: Said {
            text: "are you there?".into(),
            id: Some("e1".into()),
            me: false,
            reply_to: None,
        },
    });
    // Dana's session read its conversations before that (the harness hands the hub none):
    // the welcome has it anyway, so the client catches up.
    let back = hub.connect();
    assert!(hub.hello(&back, "dana", Auth::Password(password), None));
    match &back.frames()[0] {
        ServerFrame::Welcome {
            conversations: Some(conversations),
            ..
        } => assert_eq!(
            conversations,
            &[Conversation {
                with: "Erin".into(),
                seq: 1,
                read: 0
            }]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_member_that_goes_leaves_each_of_its_rooms_and_its_name() {
    let mut hub = Harness::new(config());
    let alice = hub.guest("alice");
    let bob = hub.guest("bob");
    hub.join(&alice, "rust");
    hub.join(&bob, "rust");
    alice.frames();
    hub.gone(&bob, LeaveReason::Lost);
    let frames = alice.frames();
    assert_eq!(presence(&frames, "general"), ["3 -bob Lost"]);
    assert_eq!(presence(&frames, "rust"), ["3 -bob Lost"]);
    // Its name is free again.
    let again = hub.connect();
    assert!(hub.hello(&again, "Bob", Auth::Guest, None));
}

#[test]
fn a_takeover_keeps_the_rooms_and_nobody_else_sees_it() {
    let mut hub = Harness::new(config());
    let alice = hub.guest("alice");
    let bob = hub.guest("bob");
    hub.join(&bob, "rust");
    hub.join(&alice, "rust");
    let token = welcome_token(&bob.frames());
    alice.frames();
    // A wrong token is no takeover.
    let stranger = hub.connect();
    assert!(!hub.hello(&stranger, "bob", Auth::Guest, Some("0".repeat(32))));
    assert_eq!(rejection(&stranger.frames()).0, RejectCode::NameTaken);
    let new = hub.connect();
    assert!(hub.hello(&new, "bob", Auth::Guest, Some(token)));
    match new.frames().first() {
        Some(ServerFrame::Welcome { rooms, users, .. }) => {
            assert_eq!(rooms, &["general", "rust"]);
            assert_eq!(users, &["alice", "bob"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            bob.frames().last(),
            Some(ServerFrame::Closing {
                code: CloseCode::Replaced,
                ..
            })
        ),
        "the old connection is told"
    );
    assert!(alice.frames().is_empty(), "nobody else sees anything");
    // The new connection is the member: it posts in the rooms, and gets what is said.
    hub.say(&new, "rust", "back");
    assert!(alice.frames().iter().any(
        |f| matches!(f, ServerFrame::Message { from, text, .. } if from == "bob" && text == "back")
    ));
    hub.say(&alice, "rust", "welcome back");
    assert!(
        new.frames()
            .iter()
            .any(|f| matches!(f, ServerFrame::Message { text, .. } if text == "welcome back"))
    );
    alice.frames();
    // The old connection's goodbye, arriving late, changes nothing.
    hub.gone(&bob, LeaveReason::Lost);
    assert!(alice.frames().is_empty());
}

#[test]
fn a_takeover_while_a_join_is_on_its_way_hands_the_join_to_the_new_connection() {
    let mut hub = Harness::new(config());
    let alice = hub.guest("alice");
    hub.join(&alice, "rust");
    // With and without the new connection asking for the room again (a resume) before
    // the join's `joined` is recorded.
    for (name, resume) in [("bob", false), ("carol", true)] {
        let old = hub.guest(name);
        let token = welcome_token(&old.frames());
        let _ = alice.frames();
        let rust = RoomName::parse("rust").expect("a valid room name");
        hub.hub.handle(Command::Join {
            conn: old.id,
            room: rust.clone(),
            since: None,
        });
        let new = hub.connect();
        let accepted = hub.hello_unsettled(&new, name, Auth::Guest, Some(token));
        if resume {
            hub.hub.handle(Command::Join {
                conn: new.id,
                room: rust,
                since: None,
            });
        }
        hub.settle();
        assert_eq!(accepted.try_recv(), Ok(Ok(())), "{name} takes over");
        let frames = new.frames();
        let answers = frames
            .iter()
            .filter(|f| matches!(f, ServerFrame::Room { room, .. } if room == "rust"))
            .count();
        // The new connection's welcome lists the room; it is answered if it asks.
        assert_eq!(
            answers,
            usize::from(resume),
            "answered once if asked again, on the new connection: {frames:?}"
        );
        let seen = presence(&alice.frames(), "rust");
        assert_eq!(seen.len(), 1, "{name} joined, and did not leave: {seen:?}");
        assert!(seen[0].ends_with(&format!("+{name}")), "{seen:?}");
        hub.say(&alice, "rust", &format!("hello {name}"));
        assert!(
            new.frames().iter().any(
                |f| matches!(f, ServerFrame::Message { text, .. } if *text == format!("hello {name}"))
            ),
            "{name} is a member on its new connection"
        );
    }
}

#[test]
fn a_login_whose_connection_went_while_its_password_was_checked_leaves_nobody_online() {
    let mut hub = Harness::new(config());
    let alice = hub.guest("alice");
    let dana = hub.connect();
    let password = Password::new("correct horse");
    assert!(hub.hello(&dana, "dana", Auth::Register(password.clone()), None));
    hub.gone(&dana, LeaveReason::Quit);
    alice.frames();
    // The password is being checked when the connection goes: its session tells the hub
    // before the hashing thread does.
    let (reply, _) = async_channel::bounded(1);
    let late = hub.connect();
    hub.hub.handle(Command::Login(Login {
        conn: late.id,
        protocol: 2,
        name: Name::parse("dana").expect("a name"),
        since: None,
        epoch: None,
        token: None,
        queue: late.queue.clone(),
        reply,
        recent: Vec::new(),
        auth: Auth::Password(password.clone()),
        ip: IpAddr::from([127, 0, 0, 1]),
        conversations: Vec::new(),
        session: None,
        invites: Vec::new(),
        read: Vec::new(),
        joins_default: true,
    }));
    hub.gone(&late, LeaveReason::Lost);
    hub.hashed();
    assert!(alice.frames().is_empty(), "it never joined");
    // Nobody holds the name: the account logs in as any other time.
    let back = hub.connect();
    assert!(hub.hello(&back, "dana", Auth::Password(password), None));
    assert_eq!(presence(&alice.frames(), "general"), ["4 +dana"]);
}

#[test]
fn too_many_rooms_are_refused_per_member_and_per_server() {
    let mut hub = Harness::new(Config {
        max_joined: 2,
        max_rooms: 3,
        ..config()
    });
    let alice = hub.guest("alice");
    let bob = hub.guest("bob");
    hub.join(&alice, "one");
    alice.frames();
    hub.join(&alice, "two");
    let frames = alice.frames();
    assert!(
        matches!(frames.as_slice(), [ServerFrame::Error { code: ErrorCode::TooManyRooms, message, .. }] if message.contains("2 rooms")),
        "{frames:?}"
    );
    hub.join(&bob, "two");
    bob.frames();
    // general, one and two are in use.
    let carol = hub.guest("carol");
    hub.join(&carol, "three");
    let frames = carol.frames();
    assert!(
        frames.iter().any(|f| matches!(f, ServerFrame::Error { code: ErrorCode::TooManyRooms, message, .. } if message.contains("3 rooms in use"))),
        "{frames:?}"
    );
    // An existing room can still be joined.
    hub.join(&carol, "one");
    assert!(
        carol
            .frames()
            .iter()
            .any(|f| matches!(f, ServerFrame::Room { room, .. } if room == "one"))
    );
}

#[test]
fn a_copy_sent_again_after_the_tail_brought_its_echo_is_answered_with_the_original() {
    // In a cluster the tail may bring a direct message's echo before the log's answer
    // reaches the node that recorded it; a copy sent in between is answered, not dropped.
    let mut hub = Harness::new(config());
    let password = Password::new("correct horse");
    let erin = hub.connect();
    assert!(hub.hello(&erin, "Erin", Auth::Register(password.clone()), None));
    let dana = hub.connect();
    assert!(hub.hello(&dana, "Dana", Auth::Register(password), None));
    let _ = erin.frames();
    let original = chat_shared::Frame::encode(&ServerFrame::Message {
        room: None,
        with: Some("Dana".into()),
        seq: 7,
        time: 1,
        from: "Erin".into(),
        text: "are you there?".into(),
        id: Some("e1".into()),
        me: false,
        deleted: false,
        reply_to: None,
        edited: None,
        reactions: Vec::new(),
    });
    hub.command(Command::Cluster(super::command::News::Direct(vec![(
        "erin".into(),
        "dana".into(),
        original,
    )])));
    hub.command(Command::Direct {
        conn: erin.id,
        to: "dana".into(),
        said: Said {
            text: "are you there?".into(),
            id: Some("e1".into()),
            me: false,
            reply_to: None,
        },
    });
    let seqs: Vec<Option<u64>> = erin.frames().iter().map(ServerFrame::seq).collect();
    assert_eq!(
        seqs,
        [Some(7), Some(7)],
        "the echo, then the original again"
    );
}
