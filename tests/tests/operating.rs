//! What an operator does to a running server: backups through the control socket (and of a
//! stopped server's store), `server admin`, and JSON logs. Each test states the flags it
//! passes to `chat-server` (this crate's copy of `server`).

use std::collections::BTreeMap;
use std::time::Duration;

use chat_shared::{ClientFrame, Password, RejectCode, ServerFrame};
use chat_tests::{
    Client, ServerProcess, TempDir, assert_closing, hello_account, run_for, run_server_output, say,
    say_to, server_binary,
};

const LIMIT: Duration = Duration::from_secs(60);

/// Runs `server` with `args` off the test's executor; returns exit code, stdout, stderr.
async fn command(args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    smol::unblock(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_server_output(&args)
    })
    .await
}

/// The default room's messages of a server's whole history, by seq, as `client` reads
/// them with `history` pages of 200.
async fn all_messages(client: &mut Client) -> BTreeMap<u64, ServerFrame> {
    all_messages_in(client, None).await
}

/// [`all_messages`] of `room` (`None`: the default room).
async fn all_messages_in(client: &mut Client, room: Option<&str>) -> BTreeMap<u64, ServerFrame> {
    let mut messages = BTreeMap::new();
    let mut after = 0;
    loop {
        client
            .send(&ClientFrame::History {
                room: room.map(Into::into),
                with: None,
                before: None,
                after: Some(after),
                limit: Some(200),
            })
            .await;
        let page = client
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        let Some(ServerFrame::HistoryEnd { count, .. }) = page.last() else {
            unreachable!("recv_until ends with what it waited for");
        };
        if *count == 0 {
            return messages;
        }
        for frame in page {
            match &frame {
                ServerFrame::Message { seq, .. } => {
                    after = after.max(*seq);
                    messages.insert(*seq, frame);
                }
                ServerFrame::Joined { seq, .. } | ServerFrame::Left { seq, .. } => {
                    after = after.max(*seq);
                }
                _ => {}
            }
        }
    }
}

/// Flags: `--port 0 --rate 0 --data <dir>` (flood control off), then `--port 0 --data
/// <the backup>`. A backup taken with `server backup --data <dir> <dest>` while a client
/// posts 600 messages holds a history equal to what the client received up to some seq:
/// every message there as it was received, none missing below it, none above it. A
/// second backup, of the stopped server's store, holds all 600. Each copy has an epoch of
/// its own.
#[test]
fn a_backup_taken_under_load_holds_what_clients_received() {
    let data = TempDir::new("backup-data");
    let dest = TempDir::new("backup-dest");
    let running = dest.path().join("running");
    let stopped = dest.path().join("stopped");
    let (running, stopped) = (
        running.to_str().expect("UTF-8").to_owned(),
        stopped.to_str().expect("UTF-8").to_owned(),
    );
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(
            &server_binary(),
            &["--port", "0", "--rate", "0", "--data", data.arg()],
        )
        .await;
        let (mut ann, welcome) = Client::login_v3(server.addr, "ann").await;
        let epoch_of = |welcome: &ServerFrame| match welcome {
            ServerFrame::Welcome { epoch, .. } => epoch.clone(),
            other => panic!("not a welcome: {other:?}"),
        };
        let original = epoch_of(&welcome);
        let mut received = BTreeMap::new();
        let mut backup = None;
        for i in 0..600 {
            ann.send(&say(&format!("message {i}"), &format!("m{i}")))
                .await;
            if i % 20 == 19 {
                // Read as a client does, while posting.
                let echoes = ann
                    .recv_until(|f| {
                        matches!(f, ServerFrame::Message { id: Some(id), .. } if *id == format!("m{i}"))
                    })
                    .await;
                for frame in echoes {
                    if let ServerFrame::Message { seq, .. } = &frame {
                        received.insert(*seq, frame);
                    }
                }
            }
            if i == 100 {
                let args = vec!["backup", "--data", data.arg(), running.as_str()];
                let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
                backup = Some(smol::spawn(async move {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    command(&args).await
                }));
            }
        }
        let (code, out, err) = backup.expect("started").await;
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("the running server"), "{out}");
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(5)).await, Some(0));
        assert_eq!(received.len(), 600);

        let (code, out, err) = command(&["backup", "--data", data.arg(), &stopped]).await;
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("stopped server"), "{out}");

        let mut first_seen = None;
        for (copy, whole) in [(&running, false), (&stopped, true)] {
            let server =
                ServerProcess::start(&server_binary(), &["--port", "0", "--data", copy]).await;
            let (mut bob, welcome) = Client::login_v3(server.addr, "bob").await;
            assert_ne!(
                epoch_of(&welcome),
                original,
                "a copy is a history of its own"
            );
            let held = all_messages(&mut bob).await;
            let newest = *held.keys().next_back().expect("messages in the copy");
            let expected: BTreeMap<u64, ServerFrame> = received
                .iter()
                .filter(|(seq, _)| **seq <= newest)
                .map(|(seq, frame)| (*seq, frame.clone()))
                .collect();
            assert_eq!(
                held, expected,
                "{copy}: the history as received, up to {newest}"
            );
            if whole {
                assert_eq!(held.len(), 600);
            } else {
                first_seen = Some(held.len());
            }
        }
        let running_held = first_seen.expect("the running copy was read");
        assert!(
            running_held >= 100,
            "posted before the backup began: {running_held}"
        );
    });
}

/// Flags: `--port 0 --rate 0 --data <dir> --admins root`. `server admin` lists the
/// accounts, and lists and lifts a server ban an administrator set; lifting one that is not
/// there is one line and exit 1.
#[test]
fn admin_lists_accounts_and_lifts_bans() {
    let data = TempDir::new("admin-data");
    let dir = data.arg();
    run_for(LIMIT, async {
        let server = ServerProcess::start(
            &server_binary(),
            &[
                "--port", "0", "--rate", "0", "--data", dir, "--admins", "root",
            ],
        )
        .await;
        let addr = server.addr;
        let (mut root, _) =
            Client::login_with(addr, &hello_account("root", "root password", true)).await;
        let (_ann, _) = Client::login_with(addr, &hello_account("Ann", "ann password", true)).await;
        root.send(&ClientFrame::Ban {
            room: None,
            name: "troll".into(),
            message: Some("spam".into()),
            minutes: None,
            address: false,
        })
        .await;
        root.recv_until(|f| matches!(f, ServerFrame::Ban { room: None, .. }))
            .await;

        let (code, out, err) = command(&["admin", "--data", dir, "accounts"]).await;
        assert_eq!(code, Some(0), "{err}");
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(rows, ["Ann\tyes\t-", "root\tyes\t-"], "{out}");

        let (code, out, err) = command(&["admin", "--data", dir, "bans"]).await;
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("name:troll\ttroll\troot\tlifted by hand\tspam")),
            "{out}"
        );
        let (code, out, err) = command(&["admin", "--data", dir, "unban", "TROLL"]).await;
        assert_eq!((code, out.trim()), (Some(0), "lifted: name:troll"), "{err}");
        let (_, out, _) = command(&["admin", "--data", dir, "bans"]).await;
        assert_eq!(out.lines().count(), 1, "only the header: {out}");
        let (code, _, err) = command(&["admin", "--data", dir, "unban", "troll"]).await;
        assert_eq!(code, Some(1));
        assert_eq!(err.trim(), "server: troll is not banned from the server");
    });
}

/// Flags: `--port 0 --data <dir>`. `server admin reset-password` gives an account a
/// temporary password: the old one stops working, the temporary one logs in with
/// `password_reset`, and once the account changes it the new one logs in without. An
/// unknown account, and any command once the server stopped, are one line and exit 1.
#[test]
fn admin_resets_a_password_to_a_temporary_one() {
    let data = TempDir::new("reset-data");
    let dir = data.arg();
    run_for(LIMIT, async {
        let mut server =
            ServerProcess::start(&server_binary(), &["--port", "0", "--data", dir]).await;
        let addr = server.addr;
        let (mut ann, _) =
            Client::login_with(addr, &hello_account("Ann", "ann password", true)).await;
        ann.send(&ClientFrame::Bye).await;
        ann.recv_to_end().await;
        let (code, out, err) = command(&["admin", "--data", dir, "reset-password", "ann"]).await;
        assert_eq!(code, Some(0), "{err}");
        let temporary = out
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("temporary password for Ann: "))
            .expect("the temporary password, printed once")
            .to_owned();
        let (code, _, err) = command(&["admin", "--data", dir, "reset-password", "nobody"]).await;
        assert_eq!(
            (code, err.trim()),
            (Some(1), "server: there is no account nobody")
        );

        let mut old = Client::connect(addr).await;
        old.send(&hello_account("ann", "ann password", false)).await;
        assert!(
            matches!(
                old.recv().await,
                ServerFrame::Rejected {
                    code: RejectCode::BadPassword,
                    ..
                }
            ),
            "the old password no longer logs in"
        );
        let (mut ann, welcome) =
            Client::login_with(addr, &hello_account("ann", &temporary, false)).await;
        assert!(
            matches!(
                welcome,
                ServerFrame::Welcome {
                    password_reset: true,
                    ..
                }
            ),
            "{welcome:?}"
        );
        let (_, out, _) = command(&["admin", "--data", dir, "accounts"]).await;
        assert!(out.contains("Ann\tyes\tvalid 23h59m"), "{out}");
        ann.send(&ClientFrame::SetPassword {
            password: Password::new(temporary.as_str()),
            new_password: Password::new("ann's new password"),
        })
        .await;
        ann.recv_until(|f| matches!(f, ServerFrame::PasswordChanged))
            .await;
        ann.send(&ClientFrame::Bye).await;
        ann.recv_to_end().await;
        let (_ann, welcome) =
            Client::login_with(addr, &hello_account("ann", "ann's new password", false)).await;
        assert!(
            matches!(
                welcome,
                ServerFrame::Welcome {
                    password_reset: false,
                    ..
                }
            ),
            "{welcome:?}"
        );

        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(5)).await, Some(0));
        assert!(
            !data.path().join("control.sock").exists(),
            "the socket's file goes with the server"
        );
        let (code, _, err) = command(&["admin", "--data", dir, "accounts"]).await;
        assert_eq!(code, Some(1));
        assert!(err.starts_with("server: no server answers on "), "{err}");
    });
}

/// Flags: `--port 0 --memory --log-format json`. Every log line is a JSON object; the
/// lines about a connection carry its id, and after its login its name, in `span`.
#[test]
fn json_logs_name_the_connection_and_its_user() {
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(
            &server_binary(),
            &["--port", "0", "--memory", "--log-format", "json"],
        )
        .await;
        let (mut ann, _) = Client::login_v3(server.addr, "ann").await;
        ann.send(&ClientFrame::Bye).await;
        ann.recv_to_end().await;
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(5)).await, Some(0));
        let lines: Vec<serde_json::Value> = server
            .log()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{line}: {err}")))
            .collect();
        let find = |message: &str| {
            lines
                .iter()
                .find(|line| line["fields"]["message"] == message)
                .unwrap_or_else(|| panic!("{message}: {lines:?}"))
        };
        let connected = find("connected");
        let (logged_in, gone) = (find("logged in"), find("disconnected"));
        let id = &connected["span"]["id"];
        assert!(id.is_u64(), "{connected}");
        assert!(connected["span"]["user"].is_null(), "not logged in yet");
        for line in [logged_in, gone] {
            assert_eq!(&line["span"]["id"], id, "{line}");
            assert_eq!(line["span"]["user"], "ann", "{line}");
        }
    });
}

/// What `client` finds for `query` (one page of at most 50).
async fn search(client: &mut Client, query: &str) -> Vec<ServerFrame> {
    client
        .send(&ClientFrame::Search {
            query: query.into(),
            room: None,
            with: None,
            limit: Some(50),
            cursor: None,
        })
        .await;
    let answer = client
        .recv_until(|f| matches!(f, ServerFrame::SearchResults { .. }))
        .await;
    match answer.into_iter().last() {
        Some(ServerFrame::SearchResults { results, .. }) => results,
        _ => unreachable!("recv_until ends with what it waited for"),
    }
}

/// The texts of messages.
fn texts(messages: impl IntoIterator<Item = ServerFrame>) -> Vec<String> {
    messages
        .into_iter()
        .filter_map(|frame| match frame {
            ServerFrame::Message { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

/// Posts "WORD 0" to "WORD 4" and waits for their echoes.
async fn post_five(client: &mut Client, word: &str) {
    post_five_in(client, None, word).await;
}

/// [`post_five`] in `room` (`None`: the default room).
async fn post_five_in(client: &mut Client, room: Option<&str>, word: &str) {
    for i in 0..5 {
        client
            .send(&ClientFrame::Say {
                room: room.map(Into::into),
                to: None,
                text: format!("{word} {i}"),
                id: Some(format!("{word}{i}{}", room.unwrap_or_default())),
                me: false,
                reply_to: None,
            })
            .await;
    }
    let last = format!("{word} 4");
    client
        .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if *text == last))
        .await;
}

/// Flags: `--port 0 --rate 0 --retain-days 0.00007` (about 6 s; flood control off) with
/// `--data <dir>`, then with `--memory`. Five messages posted 3 s before five others: a
/// sweep deletes exactly the first five (and the events before them) from the history and
/// from search, while the later five are all still there, and a new login's `oldest` is
/// the first of those.
#[test]
fn retention_deletes_exactly_what_is_older_also_from_search() {
    let data = TempDir::new("retention-data");
    for storage in [&["--data", data.arg()][..], &["--memory"]] {
        retention_case(storage);
    }
}

fn retention_case(storage: &[&str]) {
    let mut args = vec!["--port", "0", "--rate", "0", "--retain-days", "0.00007"];
    args.extend_from_slice(storage);
    run_for(LIMIT, async {
        let server = ServerProcess::start(&server_binary(), &args).await;
        let (mut ann, _) = Client::login_v3(server.addr, "ann").await;
        post_five(&mut ann, "alpha").await;
        // The age of the first five is what is tested: 3 s between the two.
        smol::Timer::after(Duration::from_secs(3)).await;
        post_five(&mut ann, "bravo").await;
        let bravo: Vec<String> = (0..5).map(|i| format!("bravo {i}")).collect();
        let held = loop {
            let held = texts(all_messages(&mut ann).await.into_values());
            if !held.iter().any(|text| text.starts_with("alpha")) {
                break held;
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        };
        assert_eq!(held, bravo, "the younger five stay, all of them");
        let mut found = loop {
            if search(&mut ann, "alpha").await.is_empty() {
                break texts(search(&mut ann, "bravo").await);
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        };
        found.sort();
        assert_eq!(found, bravo, "search finds the younger five only");
        let (_bob, welcome) = Client::login_v3(server.addr, "bob").await;
        let first_bravo = all_messages(&mut ann)
            .await
            .into_keys()
            .next()
            .expect("bravo 0");
        assert!(
            matches!(welcome, ServerFrame::Welcome { oldest, .. } if oldest == first_bravo),
            "{welcome:?}, {first_bravo}"
        );
    });
}

/// `settings` of `room` with `retain_days`, as its owner sends it.
fn retain(room: &str, days: f64) -> ClientFrame {
    let days = chat_shared::Days::limit(days).ok().flatten();
    ClientFrame::Settings {
        room: room.into(),
        invite_only: false,
        retain_days: Some(chat_shared::Days::asked(days)),
    }
}

/// Flags: `--port 0 --rate 0` (flood control off, no `--retain-days`) with `--data <dir>`,
/// then with `--memory`. The owner of the room short gives it a retention of its own,
/// about 6 s: five messages posted there 3 s before five others go (from the history and
/// from search), the later five stay, and the default room, which has no limit, keeps
/// messages as old. Taking the limit away is a `settings` without `retain_days`; a
/// negative one is `bad_frame`, one from a member who is not an owner `not_permitted`.
#[test]
fn a_room_keeps_its_history_for_its_own_retention() {
    let data = TempDir::new("room-retention-data");
    for storage in [&["--data", data.arg()][..], &["--memory"]] {
        room_retention_case(storage);
    }
}

fn room_retention_case(storage: &[&str]) {
    let mut args = vec!["--port", "0", "--rate", "0"];
    args.extend_from_slice(storage);
    run_for(LIMIT, async {
        let server = ServerProcess::start(&server_binary(), &args).await;
        let (mut ann, _) =
            Client::login_with(server.addr, &hello_account("ann", "ann password", true)).await;
        let (mut bob, _) = Client::login_v3(server.addr, "bob").await;
        for client in [&mut ann, &mut bob] {
            client
                .send(&ClientFrame::Join {
                    room: "short".into(),
                    since: None,
                })
                .await;
            client
                .recv_until(|f| matches!(f, ServerFrame::Room { .. }))
                .await;
        }
        bob.send(&retain("short", 1.0)).await;
        assert_eq!(bob.next_error().await, chat_shared::ErrorCode::NotPermitted);
        ann.send_raw(b"{\"type\":\"settings\",\"room\":\"short\",\"invite_only\":false,\"retain_days\":-1}\n")
            .await;
        assert_eq!(ann.next_error().await, chat_shared::ErrorCode::BadFrame);
        ann.send(&retain("short", 0.00007)).await;
        let set = ann
            .recv_until(|f| matches!(f, ServerFrame::Settings { .. }))
            .await;
        assert!(
            matches!(set.last(), Some(ServerFrame::Settings { retain_days, .. }) if *retain_days == chat_shared::Days::limit(0.00007).ok().flatten()),
            "{set:?}"
        );
        post_five_in(&mut ann, Some("short"), "alpha").await;
        post_five(&mut ann, "alpha").await;
        // The age of the first five is what is tested: 3 s between the two.
        smol::Timer::after(Duration::from_secs(3)).await;
        post_five_in(&mut ann, Some("short"), "bravo").await;
        let bravo: Vec<String> = (0..5).map(|i| format!("bravo {i}")).collect();
        let held = loop {
            let held = texts(all_messages_in(&mut ann, Some("short")).await.into_values());
            if !held.iter().any(|text| text.starts_with("alpha")) {
                break held;
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        };
        assert_eq!(held, bravo, "the younger five stay, all of them");
        let alpha: Vec<String> = (0..5).map(|i| format!("alpha {i}")).collect();
        assert_eq!(
            texts(all_messages(&mut ann).await.into_values()),
            alpha,
            "the default room keeps what is as old"
        );
        let found = loop {
            let found = search(&mut ann, "alpha").await;
            if found.len() == 5 {
                break found;
            }
            smol::Timer::after(Duration::from_millis(100)).await;
        };
        assert!(
            found.iter().all(
                |f| matches!(f, ServerFrame::Message { room: Some(room), .. } if room != "short")
            ),
            "search finds the default room's only: {found:?}"
        );
        ann.send(&retain("short", 0.0)).await;
        let cleared = ann
            .recv_until(|f| matches!(f, ServerFrame::Settings { .. }))
            .await;
        assert!(
            matches!(
                cleared.last(),
                Some(ServerFrame::Settings {
                    retain_days: None,
                    ..
                })
            ),
            "{cleared:?}"
        );
    });
}

/// A direct message from `from` to `to`, answered by its echo; returns its seq.
async fn direct(from: &mut Client, to: &str, text: &str) -> u64 {
    from.send(&say_to(to, text, Some(text))).await;
    let echo = from
        .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(id), .. } if id == text))
        .await;
    echo.last().and_then(ServerFrame::seq).expect("an echo")
}

/// The messages of `client`'s conversation with `with`: (seq, text, deleted).
async fn conversation(client: &mut Client, with: &str) -> Vec<(u64, String, bool)> {
    client
        .send(&ClientFrame::History {
            room: None,
            with: Some(with.into()),
            before: None,
            after: Some(0),
            limit: Some(200),
        })
        .await;
    client
        .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
        .await
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Message {
                seq,
                text,
                deleted,
                with: Some(_),
                ..
            } => Some((seq, text, deleted)),
            _ => None,
        })
        .collect()
}

/// Flags: `--port 0 --rate 0 --data <dir>` (flood control off), started twice on the same
/// store. `server admin delete-account ann --erase-direct` closes ann's session (`closing`
/// `account_deleted`), deletes the direct messages she wrote (bob, online, gets each
/// `deleted`; his own message to her stays), and from then on, also after a restart, her
/// password, a registration and a guest under her name are refused, and nobody can write
/// to her. `delete-account bob` without `--erase-direct` keeps what he wrote to cat.
#[test]
fn admin_deletes_an_account_with_or_without_its_direct_messages() {
    let data = TempDir::new("delete-data");
    let dir = data.arg();
    let flags = ["--port", "0", "--rate", "0", "--data", dir];
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(&server_binary(), &flags).await;
        let addr = server.addr;
        let (mut ann, _) =
            Client::login_with(addr, &hello_account("ann", "ann password", true)).await;
        let (mut bob, _) =
            Client::login_with(addr, &hello_account("bob", "bob password", true)).await;
        let (mut cat, _) =
            Client::login_with(addr, &hello_account("cat", "cat password", true)).await;
        let a1 = direct(&mut ann, "bob", "a1").await;
        let a2 = direct(&mut ann, "bob", "a2").await;
        let b1 = direct(&mut bob, "ann", "b1").await;
        direct(&mut bob, "cat", "k1").await;

        let (code, out, err) = command(&[
            "admin",
            "--data",
            dir,
            "delete-account",
            "ANN",
            "--erase-direct",
        ])
        .await;
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.contains(
                "deleted the account ann: 1 sessions closed here, 2 direct messages erased"
            ),
            "{out}"
        );
        let end = ann
            .recv_until(|f| matches!(f, ServerFrame::Closing { .. }))
            .await;
        assert_closing(&end, chat_shared::CloseCode::AccountDeleted);
        let mut erased = Vec::new();
        while erased.len() < 2 {
            if let ServerFrame::Deleted { with, target, .. } = bob.recv().await {
                assert_eq!(with.as_deref(), Some("ann"));
                erased.push(target);
            }
        }
        assert_eq!(erased, [a1, a2]);
        let kept = vec![
            (a1, String::new(), true),
            (a2, String::new(), true),
            (b1, "b1".to_string(), false),
        ];
        assert_eq!(conversation(&mut bob, "ann").await, kept);
        bob.send(&say_to("ann", "hello?", None)).await;
        assert_eq!(bob.next_error().await, chat_shared::ErrorCode::NoAccount);

        let (code, out, _) = command(&["admin", "--data", dir, "delete-account", "bob"]).await;
        assert_eq!(code, Some(0));
        assert!(out.contains("0 direct messages erased"), "{out}");
        assert_eq!(conversation(&mut cat, "bob").await[0].1, "k1");
        let (_, out, _) = command(&["admin", "--data", dir, "accounts"]).await;
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(
            rows,
            ["ann\tdeleted\t-", "bob\tdeleted\t-", "cat\tyes\t-"],
            "{out}"
        );
        drop((bob, cat));
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(10)).await, Some(0));

        let server = ServerProcess::start(&server_binary(), &flags).await;
        let hello = hello_account("ann", "ann password", false);
        let message = Client::refused(server.addr, &hello, RejectCode::NoAccount).await;
        assert!(message.contains("deleted"), "{message}");
        let hello = hello_account("Ann", "another password", true);
        Client::refused(server.addr, &hello, RejectCode::NameRegistered).await;
        let hello = chat_tests::hello_v3("ann");
        let message = Client::refused(server.addr, &hello, RejectCode::NameRegistered).await;
        assert!(message.contains("not given out again"), "{message}");
        let (code, _, err) = command(&["admin", "--data", dir, "delete-account", "ann"]).await;
        assert_eq!(
            (code, err.trim()),
            (Some(1), "server: there is no account ann")
        );
    });
}

/// Flags: `--port 0 --rate 0 --redis <url>` for two nodes, the first also with `--control
/// <path>`. An account deleted through one node's control socket is deleted on the other:
/// its session there gets `closing` `account_deleted`, the other party there gets the
/// deletion of its direct message, and it cannot log in on either node.
#[test]
fn a_deleted_account_ends_on_every_node() {
    let redis = chat_tests::Redis::start();
    let url = redis.url();
    let sockets = TempDir::new("delete-cluster");
    let control = sockets.path().join("control.sock");
    let control = control.to_str().expect("UTF-8");
    run_for(LIMIT, async {
        let first = ServerProcess::start(
            &server_binary(),
            &[
                "--port",
                "0",
                "--rate",
                "0",
                "--redis",
                &url,
                "--control",
                control,
            ],
        )
        .await;
        let second = ServerProcess::start(
            &server_binary(),
            &["--port", "0", "--rate", "0", "--redis", &url],
        )
        .await;
        let (mut ann, _) =
            Client::login_with(second.addr, &hello_account("ann", "ann password", true)).await;
        let (mut bob, _) =
            Client::login_with(second.addr, &hello_account("bob", "bob password", true)).await;
        let a1 = direct(&mut ann, "bob", "a1").await;
        bob.recv_until(|f| matches!(f, ServerFrame::Message { seq, .. } if *seq == a1))
            .await;
        let (code, out, err) = command(&[
            "admin",
            "--control",
            control,
            "delete-account",
            "ann",
            "--erase-direct",
        ])
        .await;
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.contains("0 sessions closed here, 1 direct messages erased"),
            "{out}"
        );
        let end = ann
            .recv_until(|f| matches!(f, ServerFrame::Closing { .. }))
            .await;
        assert_closing(&end, chat_shared::CloseCode::AccountDeleted);
        let gone = bob
            .recv_until(|f| matches!(f, ServerFrame::Deleted { .. }))
            .await;
        assert!(
            matches!(gone.last(), Some(ServerFrame::Deleted { target, .. }) if *target == a1),
            "{gone:?}"
        );
        for addr in [first.addr, second.addr] {
            let hello = hello_account("ann", "ann password", false);
            Client::refused(addr, &hello, RejectCode::NoAccount).await;
        }
    });
}

/// Flags: `--port 0 --data <dir>`. The desktop client's connection, logged in with a
/// password, ends for good when its account is deleted: `Ended` with the server's words,
/// and no attempt to come back.
#[test]
fn the_client_stops_when_its_account_is_deleted() {
    use chat_client::connection::{Event, Resume, Target};
    let data = TempDir::new("delete-client");
    let dir = data.arg();
    run_for(LIMIT, async {
        let server = ServerProcess::start(&server_binary(), &["--port", "0", "--data", dir]).await;
        let target = Target {
            server: server.addr.to_string(),
            name: "dan".into(),
            password: Some(Password::new("dan password")),
            register: true,
            ..Target::default()
        };
        let dan = chat_tests::Headless::connect(target, Resume::default()).await;
        dan.until(|e| matches!(e, Event::LoggedIn(_))).await;
        let (code, _, err) = command(&["admin", "--data", dir, "delete-account", "dan"]).await;
        assert_eq!(code, Some(0), "{err}");
        let seen = dan
            .until(|e| {
                matches!(
                    e,
                    Event::Ended { .. } | Event::Disconnected { .. } | Event::Connecting { .. }
                )
            })
            .await;
        match seen.last() {
            Some(Event::Ended { reason }) => assert!(reason.contains("deleted"), "{reason}"),
            other => panic!("the connection must end for good: {other:?}"),
        }
    });
}
