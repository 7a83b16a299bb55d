//! Accounts, direct messages and TLS (protocol version 2), over real sockets. Every test
//! runs twice: over plain TCP (loopback, where passwords are allowed) and over TLS with the
//! server's self-signed certificate (`--tls-self-signed` in a temporary data directory).
//! Flags: `test_config()` (the flag defaults, two threads, `--memory`, flood control on
//! at `--rate 5 --burst 20`), unless a test says otherwise.

use std::time::Duration;

use chat_shared::{
    ClientFrame, CloseCode, Conversation, ErrorCode, Password, RejectCode, ServerFrame,
};
use chat_tests::{
    Client, Config, Deployment, Endpoint, ServerProcess, TempDir, hello_v2, run_for, say_to,
    server_binary, test_config,
};

use super::start;

const LIMIT: Duration = Duration::from_secs(90);

/// A server of `config`, and where to reach it: plain, or TLS with a self-signed
/// certificate kept in `dir`.
fn serve(config: Config, tls: bool, dir: &TempDir) -> (Deployment, Endpoint) {
    if !tls {
        let server = start(config);
        let endpoint = Endpoint::plain_to(server.addrs());
        return (server, endpoint);
    }
    let server = start(Config {
        tls: Some(chat_server::TlsSetup::SelfSigned(dir.path().to_path_buf())),
        ..config
    });
    let endpoint = Endpoint::tls_to(
        server.addrs(),
        &dir.path().join(chat_server::tls::SELF_SIGNED_CERT),
    );
    (server, endpoint)
}

/// Runs `test` against a plain server and against a TLS one.
fn both<F: Future<Output = ()>>(name: &str, config: &Config, test: impl Fn(Endpoint) -> F) {
    for tls in [false, true] {
        let dir = TempDir::new(&format!("accounts-{name}-{tls}"));
        let (_server, endpoint) = serve(config.clone(), tls, &dir);
        run_for(LIMIT, test(endpoint));
    }
}

fn hello(name: &str, password: Option<&str>, register: bool) -> ClientFrame {
    let ClientFrame::Hello {
        protocol,
        since,
        epoch,
        token,
        ..
    } = hello_v2(name)
    else {
        unreachable!("hello_v2 is a hello")
    };
    ClientFrame::Hello {
        protocol,
        name: name.into(),
        since,
        epoch,
        token,
        password: password.map(Password::new),
        register,
    }
}

/// Logs in (or registers) and expects a welcome.
async fn account(
    endpoint: &Endpoint,
    name: &str,
    password: &str,
    register: bool,
) -> (Client, ServerFrame) {
    Client::login_at(endpoint, &hello(name, Some(password), register)).await
}

/// Logs in with the password while the account is online elsewhere: a takeover, so no
/// `joined` follows the welcome.
async fn take_over(endpoint: &Endpoint, name: &str, password: &str) -> (Client, ServerFrame) {
    let mut client = Client::connect_to(endpoint).await;
    client.send(&hello(name, Some(password), false)).await;
    let welcome = client.recv().await;
    assert!(
        matches!(welcome, ServerFrame::Welcome { .. }),
        "{welcome:?}"
    );
    (client, welcome)
}

/// Sends `hello` on a new connection and expects `rejected` with `code`; returns it.
async fn refused(endpoint: &Endpoint, hello: &ClientFrame, code: RejectCode) -> ServerFrame {
    let mut client = Client::connect_to(endpoint).await;
    client.send(hello).await;
    let frames = client.recv_to_end().await;
    match frames.first() {
        Some(frame @ ServerFrame::Rejected { code: got, .. }) if *got == code => frame.clone(),
        other => panic!("expected rejected {code:?}, got {other:?}"),
    }
}

fn direct_history(with: &str, after: Option<u64>) -> ClientFrame {
    ClientFrame::History {
        room: None,
        with: Some(with.into()),
        before: None,
        after,
        limit: None,
    }
}

/// The next direct message this client receives: (with, from, text, seq).
async fn next_direct(client: &mut Client) -> (String, String, String, u64) {
    let frames = client
        .recv_until(|f| matches!(f, ServerFrame::Message { with: Some(_), .. }))
        .await;
    match frames.last() {
        Some(ServerFrame::Message {
            with: Some(with),
            from,
            text,
            seq,
            ..
        }) => (with.clone(), from.clone(), text.clone(), *seq),
        _ => unreachable!("recv_until returns the match last"),
    }
}

/// Posts a marker in the default room and reads up to it: everything sent to this client
/// before the marker has arrived.
async fn settle(client: &mut Client, marker: &str) -> Vec<ServerFrame> {
    client.send(&chat_tests::say(marker, marker)).await;
    client
        .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == marker))
        .await
}

#[test]
fn register_log_in_and_every_rejection_code() {
    both("codes", &test_config(), |at| async move {
        let (mut alice, welcome) = account(&at, "Alice", "correct horse", true).await;
        assert!(
            matches!(&welcome, ServerFrame::Welcome { name, account: true, conversations: Some(c), .. } if name == "Alice" && c.is_empty()),
            "{welcome:?}"
        );
        // The account's name and its look-alikes are the account's, online or not.
        for name in ["Alice", "alice", "ALICE", "A1ice", "\u{0430}lice"] {
            refused(&at, &hello(name, None, false), RejectCode::NameRegistered).await;
        }
        refused(
            &at,
            &hello("alice", Some("correct horse"), true),
            RejectCode::NameRegistered,
        )
        .await;
        refused(
            &at,
            &hello("A1ice", Some("another one"), true),
            RejectCode::NameRegistered,
        )
        .await;
        // A guest online holds its name against a registration.
        let (_bob, _) = Client::login_at(&at, &hello_v2("bob")).await;
        refused(
            &at,
            &hello("BOB", Some("bob's password"), true),
            RejectCode::NameTaken,
        )
        .await;
        // Weak passwords: short, the name itself, none at all, too long.
        for (name, password) in [
            ("carol", Some("short")),
            ("carol", Some("CAROL")),
            ("carol", None),
        ] {
            refused(&at, &hello(name, password, true), RejectCode::WeakPassword).await;
        }
        let long = "x".repeat(129);
        refused(
            &at,
            &hello("carol", Some(&long), true),
            RejectCode::WeakPassword,
        )
        .await;
        refused(
            &at,
            &hello("bad\u{7}name", Some("correct horse"), true),
            RejectCode::InvalidName,
        )
        .await;
        // Logging in: no such account, a wrong password, one too long to be right.
        refused(
            &at,
            &hello("nobody", Some("correct horse"), false),
            RejectCode::NoAccount,
        )
        .await;
        refused(
            &at,
            &hello("alice", Some("wrong horse"), false),
            RejectCode::BadPassword,
        )
        .await;
        refused(
            &at,
            &hello("alice", Some(&long), false),
            RejectCode::BadPassword,
        )
        .await;
        // The right one takes the session over, under the account's own spelling.
        let (_again, welcome) = take_over(&at, "ALICE", "correct horse").await;
        assert!(
            matches!(&welcome, ServerFrame::Welcome { name, account: true, .. } if name == "Alice"),
            "{welcome:?}"
        );
        let end = alice.recv_to_end().await;
        chat_tests::assert_closing(&end, CloseCode::Replaced);
    });
}

#[test]
fn registration_closed_refuses_new_accounts_first() {
    let config = Config {
        registration: false,
        ..test_config()
    };
    both("closed", &config, |at| async move {
        // Closed comes before every other rule, even a bad name.
        refused(
            &at,
            &hello("bad\u{7}", Some("correct horse"), true),
            RejectCode::RegistrationClosed,
        )
        .await;
        refused(
            &at,
            &hello("dave", Some("correct horse"), true),
            RejectCode::RegistrationClosed,
        )
        .await;
        // Guests still come in.
        Client::login_at(&at, &hello_v2("dave")).await;
    });
}

/// A second log-in with the password takes the session over: it keeps its rooms, the old
/// connection hears `replaced`, and nobody else sees anything.
#[test]
fn a_takeover_by_password_keeps_the_rooms_silently() {
    both("takeover", &test_config(), |at| async move {
        let (mut erin, _) = account(&at, "erin", "erin's secret", true).await;
        erin.send(&ClientFrame::Join {
            room: "rust".into(),
            since: None,
        })
        .await;
        erin.recv_until(|f| matches!(f, ServerFrame::Joined { room: Some(r), name, .. } if r == "rust" && name == "erin")).await;
        let (mut watcher, _) = Client::login_at(&at, &hello_v2("watcher")).await;
        let mut phone = Client::connect_to(&at).await;
        phone
            .send(&hello("erin", Some("erin's secret"), false))
            .await;
        let welcome = phone.recv().await;
        assert!(
            matches!(&welcome, ServerFrame::Welcome { rooms, account: true, .. } if rooms.iter().any(|r| r == "rust")),
            "{welcome:?}"
        );
        chat_tests::assert_closing(&erin.recv_to_end().await, CloseCode::Replaced);
        let seen = settle(&mut watcher, "after the takeover").await;
        assert!(
            !seen.iter().any(|f| matches!(f, ServerFrame::Joined { name, .. } | ServerFrame::Left { name, .. } if name == "erin")),
            "others saw the takeover: {seen:?}"
        );
        // The new connection speaks for erin in #rust.
        phone
            .send(&ClientFrame::Say {
                room: Some("rust".into()),
                to: None,
                text: "still here".into(),
                id: None,
                me: false,
                reply_to: None,
            })
            .await;
        phone
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "still here"))
            .await;
    });
}

/// After 5 wrong passwords the account refuses even the right one for a while.
#[test]
fn five_wrong_passwords_lock_the_account() {
    both("lock", &test_config(), |at| async move {
        drop(account(&at, "frank", "frank's secret", true).await);
        for _ in 0..5 {
            refused(
                &at,
                &hello("frank", Some("guess"), false),
                RejectCode::BadPassword,
            )
            .await;
        }
        let rejection = refused(
            &at,
            &hello("frank", Some("frank's secret"), false),
            RejectCode::TooManyAttempts,
        )
        .await;
        assert!(
            matches!(rejection, ServerFrame::Rejected { retry_after: Some(ms), .. } if ms > 9 * 60 * 1000),
            "{rejection:?}"
        );
        // Another account is not locked.
        account(&at, "grace", "grace's secret", true).await;
    });
}

#[test]
fn set_password_changes_it_and_says_what_went_wrong() {
    both("set", &test_config(), |at| async move {
        let (mut heidi, _) = account(&at, "heidi", "first secret", true).await;
        let set = |old: &str, new: &str| ClientFrame::SetPassword {
            password: Password::new(old),
            new_password: Password::new(new),
        };
        heidi.send(&set("first secret", "heidi")).await;
        assert_eq!(heidi.next_error().await, ErrorCode::WeakPassword);
        heidi.send(&set("wrong secret", "second secret")).await;
        assert_eq!(heidi.next_error().await, ErrorCode::BadPassword);
        heidi.send(&set("first secret", "second secret")).await;
        heidi
            .recv_until(|f| matches!(f, ServerFrame::PasswordChanged))
            .await;
        refused(
            &at,
            &hello("heidi", Some("first secret"), false),
            RejectCode::BadPassword,
        )
        .await;
        take_over(&at, "heidi", "second secret").await;
        // A guest has no password to change.
        let (mut guest, _) = Client::login_at(&at, &hello_v2("ivan")).await;
        guest.send(&set("anything at all", "something else")).await;
        assert_eq!(guest.next_error().await, ErrorCode::AccountRequired);
    });
}

/// Direct messages: live to both parties, stored while the recipient is away and caught
/// up with `history with … after`, never seen by a third account or a guest.
#[test]
fn direct_messages_live_stored_and_private() {
    both("dm", &test_config(), |at| async move {
        let (mut judy, _) = account(&at, "Judy", "judy's secret", true).await;
        let (mut karl, _) = account(&at, "karl", "karl's secret", true).await;
        let (mut mallory, _) = account(&at, "mallory", "mallory's secret", true).await;

        judy.send(&say_to("KARL", "psst", Some("j1"))).await;
        assert_eq!(
            next_direct(&mut judy).await,
            ("karl".into(), "Judy".into(), "psst".into(), 1)
        );
        assert_eq!(
            next_direct(&mut karl).await,
            ("Judy".into(), "Judy".into(), "psst".into(), 1)
        );
        karl.send(&say_to("judy", "yes?", Some("k1"))).await;
        assert_eq!(
            next_direct(&mut judy).await,
            ("karl".into(), "karl".into(), "yes?".into(), 2)
        );
        // A re-sent copy is not a second message.
        judy.send(&say_to("karl", "psst", Some("j1"))).await;
        assert_eq!(next_direct(&mut judy).await.3, 1, "the original comes back");

        // Karl goes away; Judy writes on.
        karl.send(&ClientFrame::Bye).await;
        karl.recv_to_end().await;
        for i in 0..3 {
            let id = format!("j{}", i + 2);
            let text = format!("while away {i}");
            judy.send(&say_to("karl", &text, Some(&id))).await;
            next_direct(&mut judy).await;
        }
        let (mut karl, welcome) = account(&at, "karl", "karl's secret", false).await;
        let ServerFrame::Welcome {
            conversations: Some(conversations),
            ..
        } = welcome
        else {
            panic!("no conversations in {welcome:?}");
        };
        assert_eq!(
            conversations,
            [Conversation {
                with: "Judy".into(),
                seq: 5,
                read: 0
            }]
        );
        karl.send(&direct_history("judy", Some(2))).await;
        let answer = karl
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        let texts: Vec<&str> = answer
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Message {
                    with: Some(with),
                    text,
                    ..
                } if with == "Judy" => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["while away 0", "while away 1", "while away 2"]);
        assert!(
            matches!(answer.last(), Some(ServerFrame::HistoryEnd { with: Some(w), count: 3, .. }) if w == "Judy")
        );

        // Notes to self: one copy.
        judy.send(&say_to("judy", "note", Some("j9"))).await;
        assert_eq!(
            next_direct(&mut judy).await,
            ("Judy".into(), "Judy".into(), "note".into(), 1)
        );

        // Mallory's conversation with Judy is empty; she received nothing of theirs.
        mallory.send(&direct_history("judy", None)).await;
        let answer = mallory
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        assert!(
            matches!(
                answer.last(),
                Some(ServerFrame::HistoryEnd { count: 0, .. })
            ),
            "{answer:?}"
        );
        let seen = settle(&mut mallory, "mallory's marker").await;
        assert!(
            !seen
                .iter()
                .any(|f| matches!(f, ServerFrame::Message { with: Some(_), .. })),
            "{seen:?}"
        );
    });
}

/// Direct messages are between accounts: a guest can neither send nor read them, and
/// nobody can write to a name that is not an account.
#[test]
fn direct_messages_need_accounts() {
    both("dm-guest", &test_config(), |at| async move {
        let (mut judy, _) = account(&at, "Judy", "judy's secret", true).await;
        let (mut guest, _) = Client::login_at(&at, &hello_v2("guest")).await;
        // A guest can neither send nor read; nobody can write to a name without an account.
        guest.send(&say_to("judy", "hi", Some("g1"))).await;
        assert_eq!(guest.next_error().await, ErrorCode::AccountRequired);
        guest.send(&direct_history("judy", None)).await;
        assert_eq!(guest.next_error().await, ErrorCode::AccountRequired);
        let seen = settle(&mut guest, "guest's marker").await;
        assert!(
            !seen
                .iter()
                .any(|f| matches!(f, ServerFrame::Message { with: Some(_), .. })),
            "{seen:?}"
        );
        judy.send(&say_to("guest", "hi", Some("j10"))).await;
        assert_eq!(judy.next_error().await, ErrorCode::NoAccount);
        // A say with both a room and a recipient is a bad frame.
        judy.send(&ClientFrame::Say {
            room: Some("general".into()),
            to: Some("karl".into()),
            text: "?".into(),
            id: None,
            me: false,
            reply_to: None,
        })
        .await;
        assert_eq!(judy.next_error().await, ErrorCode::BadFrame);
    });
}

/// A version-1 connection of an account receives only the echo of its own direct
/// messages: it could not tell one from a room message.
#[test]
fn a_version_1_account_gets_only_its_own_echo() {
    both("v1", &test_config(), |at| async move {
        drop(account(&at, "olivia", "olivia's secret", true).await);
        let mut v1 = hello("olivia", Some("olivia's secret"), false);
        if let ClientFrame::Hello { protocol, .. } = &mut v1 {
            *protocol = 1;
        }
        let (mut olivia, _) = Client::login_at(&at, &v1).await;
        let (mut peggy, _) = account(&at, "peggy", "peggy's secret", true).await;
        peggy.send(&say_to("olivia", "for v1", Some("p1"))).await;
        next_direct(&mut peggy).await;
        olivia.send(&say_to("peggy", "from v1", Some("o1"))).await;
        assert_eq!(next_direct(&mut olivia).await.2, "from v1");
        let seen = settle(&mut olivia, "olivia's marker").await;
        assert!(
            !seen
                .iter()
                .any(|f| matches!(f, ServerFrame::Message { text, .. } if text == "for v1")),
            "{seen:?}"
        );
    });
}

/// Accounts, their direct messages and the self-signed certificate survive a restart
/// (flags: `--port 0 --data DIR --tls-self-signed`, the server process restarted on the
/// same directory).
#[test]
fn accounts_and_conversations_survive_a_restart() {
    let dir = TempDir::new("accounts-restart");
    let args = ["--port", "0", "--data", dir.arg(), "--tls-self-signed"];
    let cert = dir.path().join(chat_server::tls::SELF_SIGNED_CERT);
    let fingerprint = |server: &ServerProcess| {
        let log = server.log();
        log.iter()
            .find_map(|line| {
                line.split("SHA-256 fingerprint ")
                    .nth(1)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no fingerprint logged: {log:?}"))
    };
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(&server_binary(), &args).await;
        let before = fingerprint(&server);
        let at = Endpoint::tls(server.addr, &cert);
        let (mut quinn, _) = account(&at, "quinn", "quinn's secret", true).await;
        drop(account(&at, "rupert", "rupert's secret", true).await);
        quinn
            .send(&say_to("rupert", "remember me", Some("q1")))
            .await;
        next_direct(&mut quinn).await;
        server.kill().await;

        let server = ServerProcess::start(&server_binary(), &args).await;
        assert_eq!(fingerprint(&server), before, "the same certificate");
        let at = Endpoint::tls(server.addr, &cert);
        let (mut rupert, welcome) = account(&at, "rupert", "rupert's secret", false).await;
        assert!(
            matches!(&welcome, ServerFrame::Welcome { conversations: Some(c), .. } if c == &[Conversation { with: "quinn".into(), seq: 1, read: 0 }]),
            "{welcome:?}"
        );
        rupert.send(&direct_history("quinn", None)).await;
        let answer = rupert
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        assert!(answer.iter().any(|f| matches!(f, ServerFrame::Message { text, with: Some(w), .. } if text == "remember me" && w == "quinn")));
        refused(
            &at,
            &hello("quinn", None, false),
            RejectCode::NameRegistered,
        )
        .await;
    });
}

/// Nothing the server logs, even at `debug`, holds a password (flags: `--port 0
/// --memory`, `RUST_LOG=debug`).
#[test]
fn no_password_reaches_the_log() {
    run_for(LIMIT, async {
        let server =
            ServerProcess::start_logging(&server_binary(), &["--port", "0", "--memory"], "debug")
                .await;
        let at = Endpoint::plain(server.addr);
        let secrets = ["s3cret-one-zebra", "s3cret-two-walrus", "s3cret-three-yak"];
        let (mut sybil, _) = account(&at, "sybil", secrets[0], true).await;
        refused(
            &at,
            &hello("sybil", Some(secrets[1]), false),
            RejectCode::BadPassword,
        )
        .await;
        sybil
            .send(&ClientFrame::SetPassword {
                password: Password::new(secrets[0]),
                new_password: Password::new(secrets[2]),
            })
            .await;
        sybil
            .recv_until(|f| matches!(f, ServerFrame::PasswordChanged))
            .await;
        // A bad frame carrying a password is logged by nobody either.
        sybil
            .send_raw(
                format!(
                    "{{\"type\":\"set_password\",\"password\":\"{}\"}}\n",
                    secrets[1]
                )
                .as_bytes(),
            )
            .await;
        sybil.next_error().await;
        settle(&mut sybil, "done").await;
        let log = server.log();
        assert!(
            log.iter().any(|l| l.contains("account registered")),
            "{log:?}"
        );
        for line in &log {
            for secret in secrets {
                assert!(!line.contains(secret), "a password in the log: {line}");
            }
            assert!(!line.contains("$argon2"), "a hash in the log: {line}");
        }
    });
}
