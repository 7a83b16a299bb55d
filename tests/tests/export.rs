//! `server export` and `server import`: a chat moved from the embedded store to a cluster's
//! Redis and back keeps its history, seqs, epoch, accounts, room state, conversations and
//! search. Each test states the flags it passes to `chat-server` (this crate's copy of
//! `server`); Redis comes from `.ci/deps`.

use std::path::Path;
use std::time::Duration;

use chat_shared::{ClientFrame, ServerFrame};
use chat_tests::{
    Client, Redis, ServerProcess, TempDir, hello_account, run_for, run_server_output, say, say_to,
    server_binary, whole_history,
};

const LIMIT: Duration = Duration::from_secs(90);

/// A version-3 `hello` of `name`'s account (registering it if `register`); its password
/// is the name's case-folded spelling and " password", which no export may hold.
fn hello_with(name: &str, register: bool) -> ClientFrame {
    hello_account(name, &format!("{} password", name.to_lowercase()), register)
}

/// Sends `frame` and returns what came until the echo of a message with `id`.
async fn until_message(client: &mut Client, frame: ClientFrame, id: &str) -> Vec<ServerFrame> {
    client.send(&frame).await;
    client
        .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(got), .. } if got == id))
        .await
}

/// The seq of the message with `id` among `frames`.
fn seq_of(frames: &[ServerFrame], id: &str) -> u64 {
    frames
        .iter()
        .find_map(|f| match f {
            ServerFrame::Message {
                id: Some(got), seq, ..
            } if got == id => Some(*seq),
            _ => None,
        })
        .expect("the message came")
}

/// Fills a chat: two accounts, messages in the default room (one edited, one reacted to,
/// one deleted, one replying), a room with an owner and a topic, a direct conversation,
/// a read marker.
async fn fill(addr: std::net::SocketAddr) {
    let (mut ann, _) = Client::login_with(addr, &hello_with("Ann", true)).await;
    let (mut bob, _) = Client::login_with(addr, &hello_with("bob", true)).await;
    let mut seen = Vec::new();
    for i in 0..3 {
        seen.extend(
            until_message(
                &mut ann,
                say(&format!("hello {i}"), &format!("a{i}")),
                &format!("a{i}"),
            )
            .await,
        );
    }
    let (first, second, third) = (
        seq_of(&seen, "a0"),
        seq_of(&seen, "a1"),
        seq_of(&seen, "a2"),
    );
    let room = None;
    for frame in [
        ClientFrame::Edit {
            room: room.clone(),
            with: None,
            seq: first,
            text: "hello 0, edited".into(),
        },
        ClientFrame::Delete {
            room: room.clone(),
            with: None,
            seq: third,
        },
    ] {
        ann.send(&frame).await;
    }
    bob.send(&ClientFrame::React {
        room: None,
        with: None,
        seq: second,
        emoji: "👍".into(),
        on: true,
    })
    .await;
    bob.send(&ClientFrame::Read {
        room: None,
        with: None,
        seq: second,
    })
    .await;
    let reply = ClientFrame::Say {
        room: None,
        to: None,
        text: "an answer".into(),
        id: Some("b0".into()),
        me: false,
        reply_to: Some(first),
    };
    until_message(&mut bob, reply, "b0").await;
    ann.send(&ClientFrame::Join {
        room: "Plans".into(),
        since: None,
    })
    .await;
    ann.send(&ClientFrame::Topic {
        room: "Plans".into(),
        text: "ship it".into(),
    })
    .await;
    let planned = ClientFrame::Say {
        room: Some("Plans".into()),
        to: None,
        text: "the plan".into(),
        id: Some("p0".into()),
        me: false,
        reply_to: None,
    };
    until_message(&mut ann, planned, "p0").await;
    until_message(&mut ann, say_to("bob", "a secret", Some("d0")), "d0").await;
    // bob's marker and reaction were sent before his reply, so they are in.
}

/// What ann finds on a server: its epoch, the default room's whole history (but its joins
/// and parts, which each look adds to), the room Plans's, the conversation with bob, and
/// what a search for "hello" finds.
async fn view(addr: std::net::SocketAddr) -> Vec<String> {
    let (mut ann, welcome) = Client::login_with(addr, &hello_with("ann", false)).await;
    let ServerFrame::Welcome { epoch, .. } = &welcome else {
        panic!("ann logs in with her password: {welcome:?}");
    };
    let mut seen = vec![format!("epoch {epoch}")];
    seen.extend(
        whole_history(&mut ann)
            .await
            .iter()
            .filter(|f| !matches!(f, ServerFrame::Joined { .. } | ServerFrame::Left { .. }))
            .map(|f| format!("{f:?}")),
    );
    for (room, with) in [(Some("plans"), None), (None, Some("bob"))] {
        ann.send(&ClientFrame::History {
            room: room.map(Into::into),
            with: with.map(Into::into),
            before: None,
            after: Some(0),
            limit: Some(200),
        })
        .await;
        let page = ann
            .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        seen.extend(
            page.iter()
                .filter(|f| !matches!(f, ServerFrame::Joined { name, .. } if name == "ann"))
                .map(|f| format!("{f:?}")),
        );
    }
    // A server still building its index says when to ask again.
    let found = loop {
        ann.send(&ClientFrame::Search {
            query: "hello".into(),
            room: None,
            with: None,
            limit: Some(50),
            cursor: None,
        })
        .await;
        let answer = ann
            .recv_until(|f| {
                matches!(
                    f,
                    ServerFrame::SearchResults { .. } | ServerFrame::Error { .. }
                )
            })
            .await;
        match answer.last() {
            Some(ServerFrame::Error {
                retry_after: Some(wait),
                ..
            }) => smol::Timer::after(Duration::from_millis(*wait)).await,
            _ => break answer,
        };
    };
    seen.push(format!("{:?}", found.last()));
    seen
}

/// `server` with `args`, which must succeed; its standard output.
fn succeed(args: &[&str]) -> String {
    let (code, out, err) = run_server_output(args);
    assert_eq!(code, Some(0), "server {args:?}: {out}{err}");
    out
}

/// `server` with `args`, which must fail with one line on standard error; that line.
fn refuse(args: &[&str]) -> String {
    let (code, _, err) = run_server_output(args);
    assert_eq!(code, Some(1), "server {args:?} must fail: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Flags: `--port 0 --rate 0 --data <dir>` (flood control off), then `--port 0 --redis
/// <url>` (one node), then `--port 0 --data <new dir>`. The chat exported from the store,
/// imported into an empty Redis and exported again is the same export, byte for byte;
/// imported from there into a new store it is again. On every one of the three servers ann
/// logs in with her password and sees the same epoch, history, room, conversation and
/// search results.
#[test]
fn a_chat_moves_from_the_store_to_redis_and_back_unchanged() {
    let first = TempDir::new("export-first");
    let last = TempDir::new("export-last");
    let files = TempDir::new("export-files");
    let (a, b, c) = (
        files.path().join("a.ndjson"),
        files.path().join("b.ndjson"),
        files.path().join("c.ndjson"),
    );
    let redis = Redis::start();
    let url = redis.url();
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(
            &server_binary(),
            &["--port", "0", "--rate", "0", "--data", first.arg()],
        )
        .await;
        fill(server.addr).await;
        // The live index takes in new messages within a second or so; a moved chat's is
        // built whole before it answers.
        let before = loop {
            let seen = view(server.addr).await;
            if seen.last().is_some_and(|found| found.contains("hello 1")) {
                break seen;
            }
            smol::Timer::after(Duration::from_millis(200)).await;
        };
        let running = refuse(&["export", "--data", first.arg()]);
        assert!(running.contains("running"), "{running}");
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(10)).await, Some(0));

        let exported = succeed(&["export", "--data", first.arg()]);
        std::fs::write(&a, &exported).expect("written");
        assert!(
            exported.starts_with("{\"chat_export\":{\"version\":1,"),
            "{exported}"
        );
        assert!(!exported.contains("ann password"), "hashes only");
        succeed(&["import", "--redis", &url, path(&a)]);
        let again = refuse(&["import", "--redis", &url, path(&a)]);
        assert!(again.contains("holds a chat already"), "{again}");
        let from_redis = succeed(&["export", "--redis", &url]);
        std::fs::write(&b, &from_redis).expect("written");
        assert_eq!(
            exported, from_redis,
            "store → Redis → export is the same export"
        );

        let mut node =
            ServerProcess::start(&server_binary(), &["--port", "0", "--redis", &url]).await;
        assert_eq!(view(node.addr).await, before, "the chat on the Redis node");
        let live = refuse(&["export", "--redis", &url]);
        assert!(live.contains("running"), "{live}");
        node.signal("TERM");
        assert_eq!(node.wait_exit(Duration::from_secs(10)).await, Some(0));

        let out = succeed(&["import", "--data", last.arg(), path(&b)]);
        assert!(out.contains("2 accounts"), "{out}");
        let round = succeed(&["export", "--data", last.arg()]);
        std::fs::write(&c, &round).expect("written");
        assert_eq!(round, exported, "store → Redis → store is the same export");
        let server =
            ServerProcess::start(&server_binary(), &["--port", "0", "--data", last.arg()]).await;
        assert_eq!(view(server.addr).await, before, "the chat in the new store");
    });
}

/// Flags: none (the commands only). An import checks every line and keeps nothing when
/// one is wrong, in a store or in Redis (where pages were sent before the bad line); it
/// never writes over a store; an export needs a store.
#[test]
fn a_bad_export_is_refused_and_leaves_nothing_behind() {
    let dir = TempDir::new("import-bad");
    let files = TempDir::new("import-bad-files");
    let header = r#"{"chat_export":{"version":1,"epoch":"e1"}}"#;
    let stream = r#"{"stream":{"key":"lobby","room":"lobby","newest":2}}"#;
    let event = |seq: u64| {
        format!(
            r#"{{"event":{{"seq":{seq},"frame":{{"type":"message","room":"lobby","seq":{seq},"time":1,"from":"ann","text":"hi"}}}}}}"#
        )
    };
    let cases = [
        (format!("{stream}\n"), "line 1", "header"),
        (
            format!("{header}\n{}\n", event(1)),
            "line 2",
            "before any stream",
        ),
        (
            format!("{header}\n{stream}\n{}\n{}\n", event(2), event(1)),
            "line 4",
            "above",
        ),
        (
            format!("{header}\n{stream}\n{}\n", event(3)),
            "line 3",
            "newest",
        ),
        (
            format!("{header}\n{stream}\nnot json\n"),
            "line 3",
            "not a record",
        ),
        (
            format!("{header}\n{{\"nonsense\":{{}}}}\n"),
            "line 2",
            "not a record",
        ),
        (
            r#"{"chat_export":{"version":9,"epoch":"e"}}"#.to_string(),
            "line 1",
            "version 9",
        ),
        ("\n\n".to_string(), "line 1", "empty"),
    ];
    for (n, (text, line, why)) in cases.iter().enumerate() {
        let file = files.path().join(format!("bad{n}.ndjson"));
        std::fs::write(&file, text).expect("written");
        let err = refuse(&["import", "--data", dir.arg(), path(&file)]);
        assert!(err.contains(line) && err.contains(why), "case {n}: {err}");
        assert!(
            std::fs::read_dir(dir.path()).map_or(true, |mut d| d.next().is_none()),
            "case {n}: nothing left in the data directory"
        );
    }
    let good = files.path().join("good.ndjson");
    std::fs::write(
        &good,
        format!("{header}\n{stream}\n{}\n{}\n", event(1), event(2)),
    )
    .expect("written");
    let out = succeed(&["import", "--data", dir.arg(), path(&good)]);
    assert!(out.contains("2 events"), "{out}");
    let exported = succeed(&["export", "--data", dir.arg()]);
    assert_eq!(exported, std::fs::read_to_string(&good).expect("read"));
    let twice = refuse(&["import", "--data", dir.arg(), path(&good)]);
    assert!(twice.contains("exists"), "{twice}");
    // Into Redis, a bad line after many pages of good ones: what was sent is taken back.
    let redis = Redis::start();
    let mut text = format!(
        "{header}\n{{\"stream\":{{\"key\":\"lobby\",\"room\":\"lobby\",\"newest\":20000}}}}\n"
    );
    for seq in 1..=12_000 {
        text.push_str(&event(seq));
        text.push('\n');
    }
    text.push_str("{\"read\":{}}\n");
    let big = files.path().join("big.ndjson");
    std::fs::write(&big, text).expect("written");
    let err = refuse(&["import", "--redis", &redis.url(), path(&big)]);
    assert!(err.contains("line 12003"), "{err}");
    assert_eq!(redis.cli(&["DBSIZE"]), b"0\n", "nothing left in Redis");
    let empty = TempDir::new("export-empty");
    let none = refuse(&["export", "--data", empty.arg()]);
    assert!(none.contains("no store"), "{none}");
}
