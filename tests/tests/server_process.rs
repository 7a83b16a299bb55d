//! The server as a process: its command line, signals, and restarting on the same port.
//! Each test states the flags it passes to `chat-server` (this crate's copy of `server`).

use std::time::{Duration, Instant};

use chat_shared::{CloseCode, ServerFrame};
use chat_tests::{
    Client, ServerProcess, TempDir, run_for, run_server_command, run_server_output, say,
    server_binary,
};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn help_lists_every_flag_with_its_default() {
    let out = std::process::Command::new(server_binary())
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, default) in [
        ("--host", "127.0.0.1"),
        ("--port", "60000"),
        ("--max-clients", "10000"),
        ("--max-per-ip", "64"),
        ("--data", "~/.local/share/chat-server"),
        ("--history", "1000"),
        ("--replay", "50"),
        ("--replay-max", "1000"),
        ("--login-timeout", "10"),
        ("--idle-timeout", "60"),
        ("--rate", "5"),
        ("--burst", "20"),
        ("--send-queue", "1024"),
        ("--max-frame", "16384"),
        ("--max-text", "4096"),
        ("--lease", "5"),
        ("--store-cache", "1024"),
        ("--log-format", "text"),
        ("--retain-days", "keep forever"),
    ] {
        // argh wraps long lines: read the help as one line of words.
        let options = &help[help.find("Options:").expect("an Options section")..];
        let flat = options.split_whitespace().collect::<Vec<_>>().join(" ");
        let start = flat
            .find(&format!("{flag} "))
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{help}"));
        let rest = &flat[start + flag.len()..];
        let doc = &rest[..rest.find(" --").unwrap_or(rest.len())];
        assert!(
            doc.contains(&format!("(default: {default})")),
            "{flag}: {doc}"
        );
    }
}

#[test]
fn bad_flags_exit_non_zero_with_one_clear_line() {
    for args in [
        &["--port", "seventy"][..],
        &["--no-such-flag"],
        &["--login-timeout", "-1"],
        &["--idle-timeout", "soon"],
        &["--send-queue", "0"],
        &["--host", "not an address", "--port", "0", "--memory"],
        &["--data", "/tmp/x", "--memory"],
        &["--memory", "--store-cache", "64", "--port", "0"],
        &["--store-cache", "0", "--port", "0"],
        &["--metrics", "nowhere", "--port", "0", "--memory"],
        &["--log-format", "xml", "--port", "0", "--memory"],
        &["--irc-tls-port", "6697", "--port", "0", "--memory"],
        &["--irc-name", "bad name", "--port", "0", "--memory"],
        &["--retain-days", "0", "--port", "0", "--memory"],
        &["--retain-days", "-1", "--port", "0", "--memory"],
        &[
            "--retain-days",
            "30",
            "--redis",
            "redis://127.0.0.1:1",
            "--port",
            "0",
        ],
        &[
            "--control",
            "/nonexistent/dir/c.sock",
            "--port",
            "0",
            "--memory",
        ],
        &["backup"],
        &["admin", "--control", "/nonexistent/c.sock", "accounts"],
        &["admin", "--data", "/nonexistent", "frobnicate"],
        &["--redis", "nonsense", "--port", "0"],
        &[
            "--redis",
            "redis://127.0.0.1:6379",
            "--memory",
            "--port",
            "0",
        ],
        &[
            "--redis",
            "redis://127.0.0.1:6379",
            "--lease",
            "0.1",
            "--port",
            "0",
        ],
    ] {
        let (code, stderr) = run_server_command(args);
        assert!(
            matches!(code, Some(c) if c != 0),
            "{args:?} exited {code:?}"
        );
        assert!(!stderr.trim().is_empty(), "{args:?} said nothing");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Flags: `--port 0 --redis redis://127.0.0.1:<a port nobody listens on>`: the node
/// cannot join its cluster; it says so in one line and exits 1.
#[test]
fn an_unreachable_redis_is_one_line_and_non_zero() {
    let url = format!("redis://127.0.0.1:{}", chat_tests::free_port());
    let (code, stderr) = run_server_command(&["--port", "0", "--redis", &url]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot join the cluster at"), "{stderr}");
}

/// Flags: `--port 0 --memory`, then `--port <that port> --memory` while it is taken.
#[test]
fn busy_port_is_one_line_and_non_zero() {
    run_for(LIMIT, async {
        let first = ServerProcess::start(&server_binary(), &["--port", "0", "--memory"]).await;
        let port = first.addr.port().to_string();
        let (code, stderr) = run_server_command(&["--port", &port, "--memory"]);
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("cannot listen"), "{stderr}");
    });
}

/// Flags: `--port 0 --data <a new directory>` then the same port and directory again right
/// after a SIGTERM, with a client that was connected (so the old socket sits in
/// `TIME_WAIT`): the restart must bind, and finds the store where it was.
#[test]
fn signals_close_everyone_and_restart_binds_at_once() {
    run_for(LIMIT, async {
        for signal in ["TERM", "INT"] {
            let data = TempDir::new("signals");
            let mut server =
                ServerProcess::start(&server_binary(), &["--port", "0", "--data", data.arg()])
                    .await;
            let addr = server.addr;
            let (mut a, _) = Client::login(addr, "a").await;
            let (mut b, _) = Client::login(addr, "b").await;
            a.recv().await; // b joined
            let asked = Instant::now();
            server.signal(signal);
            for client in [&mut a, &mut b] {
                let frames = client.recv_to_end().await;
                assert!(
                    matches!(
                        frames.last(),
                        Some(ServerFrame::Closing {
                            code: CloseCode::Shutdown,
                            ..
                        })
                    ),
                    "{signal}: {frames:?}"
                );
                assert!(
                    !frames.iter().any(|f| matches!(f, ServerFrame::Left { .. })),
                    "no left on shutdown: {frames:?}"
                );
            }
            assert_eq!(
                server.wait_exit(Duration::from_secs(2)).await,
                Some(0),
                "{signal}"
            );
            assert!(asked.elapsed() < Duration::from_secs(2));
            let port = addr.port().to_string();
            let again =
                ServerProcess::start(&server_binary(), &["--port", &port, "--data", data.arg()])
                    .await;
            assert_eq!(again.addr, addr);
            let (_c, _) = Client::login(addr, "c").await;
        }
    });
}

/// Flags: `--port 0 --rate 0 --data <a new directory>`. A client that does not read at
/// all does not hold up the shutdown.
#[test]
fn shutdown_is_bounded_with_a_stalled_client() {
    run_for(LIMIT, async {
        let data = TempDir::new("stalled");
        let mut server = ServerProcess::start(
            &server_binary(),
            &["--port", "0", "--rate", "0", "--data", data.arg()],
        )
        .await;
        let (_stalled, _) = Client::login(server.addr, "stalled").await;
        let (mut talker, _) = Client::login(server.addr, "talker").await;
        let text = "q".repeat(4000);
        for i in 0..300 {
            talker.send(&chat_tests::say(&text, &i.to_string())).await;
        }
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(2)).await, Some(0));
    });
}

/// Flags: `--port 0 --memory --max-per-ip 0 --rate 0 --coalesce-ms 400`. 150 clients log in
/// at once, so the room's members are two groups written on beats 200 ms apart. A post
/// reaches one group; the server is told to stop as soon as anyone has it: everyone still
/// gets it before their `closing` (the other group was owed it for up to 200 ms more).
#[test]
fn a_shutdown_delivers_what_was_recorded_before_closing() {
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(
            &server_binary(),
            &[
                "--port",
                "0",
                "--memory",
                "--max-per-ip",
                "0",
                "--rate",
                "0",
                "--coalesce-ms",
                "400",
            ],
        )
        .await;
        let addr = server.addr;
        let logins: Vec<_> = (0..150)
            .map(|i| smol::spawn(async move { Client::login(addr, &format!("c{i:03}")).await }))
            .collect();
        let mut clients = Vec::new();
        for login in logins {
            clients.push(login.await.0);
        }
        let is = |text: &'static str| move |frame: &ServerFrame| matches!(frame, ServerFrame::Message { text: t, .. } if t == text);
        clients[0].send(&say("first", "1")).await;
        for client in &mut clients {
            client.recv_until(is("first")).await;
        }
        clients[0].send(&say("second", "2")).await;
        let (got, first_got) = smol::channel::unbounded();
        let readers: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                let got = got.clone();
                smol::spawn(async move {
                    let mut frames = Vec::new();
                    while let Some(Ok(frame)) = client.next().await {
                        if is("second")(&frame) {
                            let _ = got.try_send(());
                        }
                        frames.push(frame);
                    }
                    frames
                })
            })
            .collect();
        first_got.recv().await.expect("someone got it");
        server.signal("TERM");
        for (i, reader) in readers.into_iter().enumerate() {
            let frames = reader.await;
            let second = frames.iter().position(is("second"));
            let closing = frames.iter().position(|f| {
                matches!(
                    f,
                    ServerFrame::Closing {
                        code: CloseCode::Shutdown,
                        ..
                    }
                )
            });
            assert!(
                second.is_some() && second < closing,
                "client {i}: {frames:?}"
            );
        }
        assert_eq!(server.wait_exit(Duration::from_secs(2)).await, Some(0));
    });
}

/// A config file of its own, written into `dir`.
fn config_file(dir: &TempDir, text: &str) -> String {
    let path = dir.path().join("chat.toml");
    std::fs::write(&path, text).expect("config file written");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// Flags: `--config <file: port 0, memory, room lobby, max-text 100>`: the server runs with
/// the file's settings (a login is welcomed into `lobby`), and `--print-config` shows them,
/// with a flag given beside the file (`--max-text 200`) winning over the file's key.
#[test]
fn a_config_file_sets_what_the_flags_set_and_flags_win() {
    let dir = TempDir::new("config");
    let file = config_file(
        &dir,
        "# a comment\nport = 0\nmemory = true\nroom = \"lobby\"\nmax-text = 100\nlogin-timeout = 2.5\n",
    );
    let (code, printed, stderr) =
        run_server_output(&["--config", &file, "--max-text", "200", "--print-config"]);
    assert_eq!(code, Some(0), "{stderr}");
    for line in [
        "port = 0",
        "memory = true",
        "room = \"lobby\"",
        "max-text = 200",
        "login-timeout = 2.5",
        "max-clients = 10000",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line}:\n{printed}");
    }
    run_for(LIMIT, async {
        let server = ServerProcess::start(&server_binary(), &["--config", &file]).await;
        let (_client, welcome) = Client::login(server.addr, "ann").await;
        assert!(format!("{welcome:?}").contains("lobby"), "{welcome:?}");
    });
}

/// Flags: `--print-config`, then `--config <what it printed> --print-config`: what
/// `--print-config` prints is a config file that asks for the same settings. A storage
/// choice on the command line (`--data DIR`) replaces the file's (`memory = true`).
#[test]
fn print_config_prints_a_config_file_of_the_same_settings() {
    let dir = TempDir::new("config-round");
    let data = dir.path().join("store");
    let data = data.to_str().expect("a UTF-8 path");
    let (code, first, stderr) = run_server_output(&[
        "--print-config",
        "--data",
        data,
        "--admins",
        "root,ops",
        "--coalesce-ms",
        "2.5",
        "--registration",
        "closed",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let file = config_file(&dir, &first);
    let (code, second, stderr) = run_server_output(&["--config", &file, "--print-config"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(first, second);
    for line in [
        "admins = \"root,ops\"",
        "coalesce-ms = 2.5",
        "registration = \"closed\"",
        "store-cache = 1024",
    ] {
        assert!(first.lines().any(|l| l == line), "{line}:\n{first}");
    }
    let memory = config_file(&dir, "memory = true\n");
    let (code, printed, stderr) =
        run_server_output(&["--config", &memory, "--data", data, "--print-config"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!printed.contains("memory = true"), "{printed}");
    assert!(printed.contains(data), "{printed}");
}

/// Flags: `--config <file>` with a file that is wrong in one place: an unknown key, a
/// value of the wrong kind, a value out of range, a file that is not there. Each is one
/// line on stderr naming the file (and the line, when there is one) and exit 2.
#[test]
fn a_bad_config_file_is_one_line_naming_the_file_and_line() {
    let dir = TempDir::new("config-bad");
    for (text, line, says) in [
        (
            "port = 0\nmemory = true\nmax_clients = 5\n",
            Some(3),
            "max_clients",
        ),
        ("port = \"sixty\"\n", Some(1), "port"),
        ("memory = true\n\nport = 70000\n", Some(3), "70000"),
        ("memory = true\nlease = -1\n", Some(2), "duration"),
        (
            "memory = true\nregistration = \"maybe\"\n",
            Some(2),
            "registration",
        ),
        ("[server]\nport = 0\n", Some(1), "server"),
        ("memory = true\nsend-queue = 0\n", None, "send-queue"),
    ] {
        let file = config_file(&dir, text);
        let (code, stdout, stderr) = run_server_output(&["--config", &file]);
        assert_eq!(code, Some(2), "{text}: {stderr}");
        assert!(stdout.is_empty(), "{text}: {stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{text}: {stderr}");
        if let Some(line) = line {
            assert!(
                stderr.contains(&format!("{file}:{line}: ")),
                "{text}: {stderr}"
            );
        }
        assert!(stderr.contains(says), "{text}: {stderr}");
    }
    let missing = dir.path().join("nowhere.toml");
    let missing = missing.to_str().expect("a UTF-8 path");
    let (code, _, stderr) = run_server_output(&["--config", missing]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(missing), "{stderr}");
}

/// Flags: `--config <the README's example> --print-config`: the example an operator copies
/// is a config file the server takes, with its values.
#[test]
fn the_readme_config_example_is_taken() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    let example = readme
        .lines()
        .skip_while(|line| !line.starts_with("    # /etc/chat-server/chat.toml"))
        .take_while(|line| line.starts_with("    "))
        .map(|line| &line[4..])
        .collect::<Vec<_>>()
        .join("\n");
    assert!(example.contains("admins"), "no example in README.md");
    let dir = TempDir::new("config-readme");
    let file = config_file(&dir, &example);
    let (code, printed, stderr) = run_server_output(&["--config", &file, "--print-config"]);
    assert_eq!(code, Some(0), "{stderr}");
    for line in [
        "host = \"0.0.0.0\"",
        "store-cache = 256",
        "admins = \"alice,bob\"",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line}:\n{printed}");
    }
}

/// `GET /metrics` from `addr`, the body.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the metrics port answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: chat\r\nConnection: close\r\n\r\n")
        .expect("request written");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").expect("headers end");
    body.to_owned()
}

/// The value (a count) of the sample `name` (with its labels, as printed) in `text`.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .expect("a whole number")
}

/// Scrapes until `done` holds of the metrics (what a client saw may be counted a moment
/// later, after the write returned), for at most 10 s; returns the last scrape.
async fn scrape_until(addr: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(addr);
        if done(&text) || Instant::now() > deadline {
            return text;
        }
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

/// The newest `limit` events of the default room.
fn history(limit: u32) -> chat_shared::ClientFrame {
    chat_shared::ClientFrame::History {
        room: None,
        with: None,
        before: None,
        after: None,
        limit: Some(limit),
    }
}

/// Flags: `--port 0 --memory --rate 0 --metrics 127.0.1:0` (flood control off). Three
/// clients log in and each reads one page of history, one posts 20 messages, one asks for
/// history again, one leaves: the metrics count 3 logins, 20 posts, 60 deliveries of
/// them, four history reads, 2 connections left,
/// and `promtool check metrics` finds nothing wrong with them.
#[test]
fn metrics_count_a_known_run_and_promtool_takes_them() {
    run_for(LIMIT, async {
        let server = ServerProcess::start(
            &server_binary(),
            &[
                "--port",
                "0",
                "--memory",
                "--rate",
                "0",
                "--metrics",
                "127.0.1:0",
            ],
        )
        .await;
        let metrics = server
            .log()
            .iter()
            .find_map(|line| {
                let rest = line.split("metrics on http://").nth(1)?;
                Some(rest.trim().trim_end_matches("/metrics").to_owned())
            })
            .expect("the metrics' address is logged");
        let (mut ann, _) = Client::login_v3(server.addr, "ann").await;
        let (mut bob, _) = Client::login_v3(server.addr, "bob").await;
        let (mut cat, _) = Client::login_v3(server.addr, "cat").await;
        let joined = |f: &ServerFrame, who: &str| matches!(f, ServerFrame::Joined { name, .. } if name == who);
        ann.recv_until(|f| joined(f, "cat")).await;
        bob.recv_until(|f| joined(f, "cat")).await;
        // A writer counts a batch after writing it, so a frame can be read before it is
        // counted. A history answer counts no delivery and is written after every frame
        // a client has read, so once each client has one, the count is settled.
        for client in [&mut ann, &mut bob, &mut cat] {
            client.send(&history(1)).await;
            client
                .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
                .await;
        }
        let before = scrape(&metrics);
        assert_eq!(sample(&before, "chat_logins_total"), 3, "{before}");
        let connections = "chat_connections{protocol=\"ndjson\",transport=\"tcp\"}";
        assert_eq!(sample(&before, connections), 3, "{before}");
        let delivered = sample(&before, "chat_deliveries_total");
        for i in 0..20 {
            ann.send(&say(&format!("message {i}"), &format!("m{i}")))
                .await;
        }
        for client in [&mut ann, &mut bob, &mut cat] {
            client
                .recv_until(
                    |f| matches!(f, ServerFrame::Message { text, .. } if text == "message 19"),
                )
                .await;
        }
        let after = scrape_until(&metrics, |text| {
            sample(text, "chat_deliveries_total") >= delivered + 60
        })
        .await;
        assert_eq!(
            sample(&after, "chat_deliveries_total"),
            delivered + 60,
            "{after}"
        );
        assert_eq!(
            sample(&after, "chat_posts_total") - sample(&before, "chat_posts_total"),
            20
        );
        assert!(
            sample(&after, "chat_written_bytes_total")
                > sample(&before, "chat_written_bytes_total")
        );
        assert!(sample(&after, "chat_commit_events_count") >= 1, "{after}");
        bob.send(&history(5)).await;
        bob.recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
            .await;
        cat.send(&chat_shared::ClientFrame::Bye).await;
        cat.recv_to_end().await;
        let last = scrape_until(&metrics, |text| sample(text, connections) == 2).await;
        assert_eq!(sample(&last, connections), 2, "{last}");
        assert_eq!(sample(&last, "chat_history_reads_total"), 4, "{last}");
        assert_eq!(sample(&last, "chat_rooms"), 1, "{last}");
        let mut check = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool runs (.ci/deps installs Debian's prometheus)");
        std::io::Write::write_all(&mut check.stdin.take().expect("stdin"), last.as_bytes())
            .expect("metrics given to promtool");
        let out = check.wait_with_output().expect("promtool ends");
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}
