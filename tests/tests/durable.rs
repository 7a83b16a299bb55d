//! The durable history: what survives restarts and crashes, paging through all of it, a
//! store that cannot be used, and a store that fails while the server runs. Each test
//! states the server flags it uses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_client::connection::Event;
use chat_server::log::memory::MemoryLog;
use chat_server::log::{EventLog, LogError, NewEvent, Span, StreamId};
use chat_shared::{ClientFrame, ErrorCode, RejectCode, ServerFrame};
use chat_tests::{
    Client, Headless, ServerProcess, TempDir, free_port, hello, run_for, run_server_command, say,
    server_binary, test_config, whole_history,
};

const LIMIT: Duration = Duration::from_secs(120);

fn welcome_of(frame: &ServerFrame) -> (u64, u64, String) {
    match frame {
        ServerFrame::Welcome {
            seq, oldest, epoch, ..
        } => (*seq, *oldest, epoch.clone()),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Flags: `--data <dir> --history 100 --rate 0 --store-cache 1`, restarted once with
/// SIGTERM. After 1,000 posts and a restart, `history` reaches back to seq 1 both ways:
/// `after` from 0 and `before` from the newest, 200 at a time, with the store behind a
/// window of 100 and its own cache held to 1 MiB.
#[test]
fn history_pages_before_and_after_through_the_whole_store() {
    let data = TempDir::new("paging");
    let args = [
        "--port",
        "0",
        "--data",
        data.arg(),
        "--history",
        "100",
        "--rate",
        "0",
        "--store-cache",
        "1",
    ];
    run_for(LIMIT, async {
        let mut server = ServerProcess::start(&server_binary(), &args).await;
        let (mut poster, welcome) = Client::login(server.addr, "poster").await;
        let (newest, oldest, epoch) = welcome_of(&welcome);
        assert_eq!(
            (newest, oldest),
            (0, 0),
            "a new store holds nothing before this login"
        );
        for i in 1..=1000 {
            poster
                .send(&say(&format!("post {i}"), &format!("p{i}")))
                .await;
        }
        poster
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "post 1000"))
            .await;
        server.signal("TERM");
        assert_eq!(server.wait_exit(Duration::from_secs(5)).await, Some(0));
        let args = ["--port", "0", "--data", data.arg(), "--history", "100"];
        let server = ServerProcess::start(&server_binary(), &args).await;
        let (mut reader, welcome) = Client::login(server.addr, "reader").await;
        let (newest, oldest, again) = welcome_of(&welcome);
        assert_eq!(again, epoch, "the epoch lives with the store");
        assert_eq!(oldest, 1, "history reaches back to the first event");
        // poster joined (1), 1,000 posts (no `left` on shutdown), reader joined (1,002).
        assert_eq!(newest, 1001);
        let forward = whole_history(&mut reader).await;
        let seqs: Vec<u64> = forward.iter().filter_map(ServerFrame::seq).collect();
        assert_eq!(seqs, (1..=1002).collect::<Vec<_>>());
        let texts: Vec<&str> = forward
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Message { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts.len(), 1000);
        assert!(
            texts
                .iter()
                .enumerate()
                .all(|(i, t)| *t == format!("post {}", i + 1))
        );
        // Backwards from the newest + 1 (a history with neither before nor after).
        let mut backward = Vec::new();
        let mut before: Option<u64> = None;
        loop {
            reader
                .send(&ClientFrame::History {
                    with: None,
                    room: None,
                    before,
                    after: None,
                    limit: Some(200),
                })
                .await;
            let mut page = reader
                .recv_until(|f| matches!(f, ServerFrame::HistoryEnd { .. }))
                .await;
            let Some(ServerFrame::HistoryEnd {
                before: Some(end),
                count,
                ..
            }) = page.pop()
            else {
                panic!("history_end says before");
            };
            if let Some(asked) = before {
                assert_eq!(end, asked);
            } else {
                assert_eq!(end, 1003, "neither: before = newest + 1");
            }
            let answer: Vec<ServerFrame> = page
                .into_iter()
                .filter(|f| f.seq().is_some_and(|s| s < end))
                .collect();
            assert_eq!(answer.len(), count as usize);
            let Some(first) = answer.first().and_then(ServerFrame::seq) else {
                break;
            };
            backward.splice(0..0, answer);
            before = Some(first);
        }
        assert_eq!(backward, forward, "the same events both ways");
    });
}

/// Flags: `--port 0 --data <dir>`, with the store file: random bytes; a real store whose
/// first page was overwritten; a directory in its place. The server exits non-zero with
/// one line naming the file, and leaves the file as it was.
#[test]
fn a_store_that_cannot_be_used_stops_the_server_and_is_left_alone() {
    run_for(LIMIT, async {
        // A real store to damage: start a server once so it creates one.
        let real = TempDir::new("real");
        let server =
            ServerProcess::start(&server_binary(), &["--port", "0", "--data", real.arg()]).await;
        drop(server);
        let store = std::fs::read(real.path().join("chat.redb")).expect("a store was made");
        let mut damaged = store.clone();
        for byte in &mut damaged[..64] {
            *byte ^= 0x5a;
        }
        let junk: Vec<u8> = (0..50_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for (what, contents) in [("junk", junk), ("damaged", damaged)] {
            let data = TempDir::new(what);
            let file = data.path().join("chat.redb");
            std::fs::write(&file, &contents).expect("write");
            let (code, stderr) = run_server_command(&["--port", "0", "--data", data.arg()]);
            assert!(matches!(code, Some(c) if c != 0), "{what}: exit {code:?}");
            assert_eq!(stderr.trim().lines().count(), 1, "{what}: {stderr}");
            assert!(
                stderr.contains(&file.display().to_string()),
                "{what}: {stderr}"
            );
            assert_eq!(
                std::fs::read(&file).expect("read"),
                contents,
                "{what}: touched"
            );
        }
        let data = TempDir::new("dir");
        std::fs::create_dir(data.path().join("chat.redb")).expect("mkdir");
        let (code, stderr) = run_server_command(&["--port", "0", "--data", data.arg()]);
        assert!(matches!(code, Some(c) if c != 0), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("chat.redb"), "{stderr}");
    });
}

/// Flags: `--port <fixed> --data <dir>`, killed with SIGKILL and started again. A post whose echo
/// a client never got (here: got, then lost with the crash) is sent again with the same id
/// after the restart: the server answers with the original message and records nothing.
#[test]
fn a_post_sent_again_after_a_crash_is_not_recorded_twice() {
    let data = TempDir::new("resend");
    run_for(LIMIT, async {
        let port = free_port().to_string();
        let args = ["--port", port.as_str(), "--data", data.arg()];
        let mut server = ServerProcess::start(&server_binary(), &args).await;
        let (mut alice, _) = Client::login(server.addr, "alice").await;
        alice.send(&say("only once", "resend-1")).await;
        let original = alice
            .recv_until(|f| matches!(f, ServerFrame::Message { .. }))
            .await
            .pop()
            .expect("the echo");
        server.kill().await;
        let server = ServerProcess::start(&server_binary(), &args).await;
        let (mut watcher, _) = Client::login(server.addr, "watcher").await;
        let (mut alice, _) = Client::login(server.addr, "alice").await;
        watcher.recv().await; // alice joined
        alice.send(&say("only once", "resend-1")).await;
        alice.send(&say("and this is new", "resend-2")).await;
        let answers = alice
            .recv_until(
                |f| matches!(f, ServerFrame::Message { text, .. } if text == "and this is new"),
            )
            .await;
        assert_eq!(answers[0], original, "the original, same seq and time");
        let seen = watcher
            .recv_until(|f| matches!(f, ServerFrame::Message { .. }))
            .await;
        assert!(
            matches!(seen.as_slice(), [ServerFrame::Message { text, .. }] if text == "and this is new"),
            "the re-sent post was not broadcast again: {seen:?}"
        );
    });
}

/// Flags: `--port 0 --data <dir> --rate 0 --send-queue 300`. One client pipelines 5,000
/// posts while the store commits: they are recorded in batches no bigger than a member's
/// queue can take, so the readers get every post and nobody is closed as too slow.
#[test]
fn a_burst_while_the_store_is_busy_reaches_everyone() {
    let data = TempDir::new("burst");
    let args = [
        "--port",
        "0",
        "--data",
        data.arg(),
        "--rate",
        "0",
        "--send-queue",
        "300",
    ];
    run_for(LIMIT, async {
        let server = ServerProcess::start(&server_binary(), &args).await;
        let (mut reader, _) = Client::login(server.addr, "reader").await;
        let (mut poster, _) = Client::login(server.addr, "poster").await;
        reader.recv().await; // poster joined
        poster
            .send_raw(&chat_tests::burst_of_says(5000, "burst"))
            .await;
        let mut count = 0;
        while count < 5000 {
            match reader.recv().await {
                ServerFrame::Message { .. } => count += 1,
                other => panic!("the reader got {other:?}"),
            }
        }
        let mut echoes = 0;
        while echoes < 5000 {
            match poster.recv().await {
                ServerFrame::Message { .. } => echoes += 1,
                other => panic!("the poster got {other:?}"),
            }
        }
    });
}

/// What each crash-test client saw.
#[derive(Default)]
struct Seen {
    epochs: Vec<String>,
    /// Every room event, in the order passed on, with its seq.
    events: Vec<(u64, ServerFrame)>,
    /// The ids of its own posts the server echoed.
    echoed: HashSet<String>,
    /// The newest message it saw, to react to.
    newest_message: u64,
}

/// Flags: `--port <fixed for the test> --data <dir> --max-per-ip 0` (flood control on at
/// its defaults; clients post 3 a second). Four headless clients built on the GUI
/// client's connection module post with ids while the server is killed (SIGKILL) at random
/// moments, 20 times, and started again on the same directory each time. Afterwards:
/// every event any client received is in the history with the same seq, time, sender,
/// text and id; seqs run from 1 without a gap or a reuse; the epoch never changed; each
/// client saw a gapless run of seqs, nothing twice; every post is in the history once.
/// The clients also react to the newest message they saw (and take some back), guests
/// as they are, once at each login and every other post: each ends with every message as
/// the history shows it, reactions and all.
#[test]
fn twenty_kill_nines_lose_nothing_anyone_saw() {
    const CLIENTS: usize = 4;
    const KILLS: usize = 20;
    let data = TempDir::new("crash");
    run_for(Duration::from_secs(300), async {
        let port = free_port().to_string();
        let args = [
            "--port",
            port.as_str(),
            "--data",
            data.arg(),
            "--max-per-ip",
            "0",
        ];
        let mut server = ServerProcess::start(&server_binary(), &args).await;
        let posting = Arc::new(AtomicBool::new(true));
        let (logins_tx, logins) = async_channel::unbounded::<usize>();
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            clients.push(CrashClient::start(server.addr, c, &posting, &logins_tx).await);
        }
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..KILLS {
            // Every client is back in and posting, then the kill comes at a random moment.
            let mut back = HashSet::new();
            while back.len() < CLIENTS {
                back.insert(logins.recv().await.expect("a login"));
            }
            smol::Timer::after(Duration::from_millis(rng.u64(50..900))).await;
            server.kill().await;
            server = ServerProcess::start(&server_binary(), &args).await;
        }
        // Posting stops; every post must come back once everyone is in again.
        smol::Timer::after(Duration::from_secs(1)).await;
        posting.store(false, Ordering::Relaxed);
        smol::Timer::after(Duration::from_millis(400)).await;
        let (mut auditor, welcome) = Client::login(server.addr, "auditor").await;
        let (_, _, epoch) = welcome_of(&welcome);
        let deadline = Instant::now() + Duration::from_secs(90);
        let history = loop {
            let history = whole_history(&mut auditor).await;
            let ids: HashSet<&str> = history
                .iter()
                .filter_map(|f| match f {
                    ServerFrame::Message { id: Some(id), .. } => Some(id.as_str()),
                    _ => None,
                })
                .collect();
            // Every post made it: into the history, and back to its sender.
            let settled = clients.iter().all(|client| {
                let seen = client.seen.lock().expect("seen");
                client
                    .posted()
                    .iter()
                    .all(|id| ids.contains(id.as_str()) && seen.echoed.contains(id))
            });
            // And every client has seen all of it (the reactions came with the posts).
            let newest = history
                .iter()
                .filter_map(ServerFrame::seq)
                .max()
                .unwrap_or(0);
            let caught_up = clients.iter().all(|client| {
                let seen = client.seen.lock().expect("seen");
                seen.events.last().is_some_and(|(seq, _)| *seq >= newest)
            });
            if (settled && caught_up) || Instant::now() > deadline {
                break history;
            }
            smol::Timer::after(Duration::from_millis(500)).await;
        };
        check_after_the_crashes(&history, &clients, &epoch);
    });
}

/// A crash-test client: a headless client, what it saw, and how many posts it made.
struct CrashClient {
    number: usize,
    seen: Arc<Mutex<Seen>>,
    sent: Arc<AtomicUsize>,
    _tasks: Vec<smol::Task<()>>,
}

impl CrashClient {
    /// Starts client `c`, recording what it sees and posting every 330 ms while `posting`;
    /// each login is reported on `logins`.
    async fn start(
        addr: std::net::SocketAddr,
        c: usize,
        posting: &Arc<AtomicBool>,
        logins: &async_channel::Sender<usize>,
    ) -> Self {
        let client = Headless::start(addr, &format!("crash{c}")).await;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sent = Arc::new(AtomicUsize::new(0));
        let handle = client.handle.clone();
        let events = client.events.clone();
        let (record, logins) = (seen.clone(), logins.clone());
        let watching = smol::spawn(async move {
            // Owned whole: the connection lives as long as this task.
            let client = client;
            while let Ok(event) = events.recv().await {
                let mut seen = record.lock().expect("seen");
                match event {
                    Event::LoggedIn(session) => {
                        seen.epochs.push(session.epoch);
                        // A reaction as soon as it is back in, to the newest message it
                        // saw before: each life records some, however soon the kill comes.
                        let lives = seen.epochs.len();
                        if seen.newest_message > 0 {
                            client.handle.send(ClientFrame::React {
                                room: None,
                                with: None,
                                seq: seen.newest_message,
                                emoji: ["👍", "🎉", "🚀"][lives % 3].into(),
                                on: true,
                            });
                        }
                        let _ = logins.try_send(c);
                    }
                    Event::Frame(frame) => {
                        if let ServerFrame::Message {
                            id: Some(id), from, ..
                        } = &frame
                            && from == &format!("crash{c}")
                        {
                            seen.echoed.insert(id.clone());
                        }
                        if let ServerFrame::Message { seq, .. } = &frame {
                            seen.newest_message = *seq;
                        }
                        if let Some(seq) = frame.seq() {
                            seen.events.push((seq, frame));
                        }
                    }
                    _ => {}
                }
            }
        });
        let (posting, count, newest) = (posting.clone(), sent.clone(), seen.clone());
        let talking = smol::spawn(async move {
            while posting.load(Ordering::Relaxed) {
                let k = count.load(Ordering::Relaxed);
                handle.say(
                    None,
                    format!("c{c}-{k}"),
                    format!("crash{c} says {k}"),
                    false,
                );
                // A reaction to the newest message seen, every other turn: added, or taken
                // back (not kept while offline: a reaction is not acknowledged).
                let target = newest.lock().expect("seen").newest_message;
                if k % 2 == 1 && target > 0 {
                    handle.send(ClientFrame::React {
                        room: None,
                        with: None,
                        seq: target,
                        emoji: ["👍", "🎉", "🚀"][k % 3].into(),
                        on: k % 4 != 3,
                    });
                }
                count.store(k + 1, Ordering::Relaxed);
                smol::Timer::after(Duration::from_millis(330)).await;
            }
        });
        Self {
            number: c,
            seen,
            sent,
            _tasks: vec![watching, talking],
        }
    }

    /// The ids of every post it made.
    fn posted(&self) -> Vec<String> {
        (0..self.sent.load(Ordering::Relaxed))
            .map(|k| format!("c{}-{k}", self.number))
            .collect()
    }
}

/// The history after the crashes, against what each client saw.
fn check_after_the_crashes(history: &[ServerFrame], clients: &[CrashClient], epoch: &str) {
    eprintln!(
        "crash test: {} events recorded; posts per client {:?}; logins per client {:?}",
        history.len(),
        clients.iter().map(|c| c.posted().len()).collect::<Vec<_>>(),
        clients
            .iter()
            .map(|c| c.seen.lock().expect("seen").epochs.len())
            .collect::<Vec<_>>()
    );
    let by_seq: BTreeMap<u64, &ServerFrame> = history
        .iter()
        .map(|f| (f.seq().expect("an event"), f))
        .collect();
    assert_eq!(by_seq.len(), history.len(), "a seq used twice");
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=history.len() as u64).collect::<Vec<_>>(),
        "seqs from 1 without a gap"
    );
    let mut ids = HashMap::new();
    for frame in history {
        if let ServerFrame::Message { id: Some(id), .. } = frame {
            *ids.entry(id.clone()).or_insert(0) += 1;
        }
    }
    assert!(ids.values().all(|&n| n == 1), "a post recorded twice");
    for client in clients {
        let c = client.number;
        let seen = client.seen.lock().expect("seen");
        assert!(
            seen.epochs.len() > 1,
            "crash{c} logged in again after the kills"
        );
        assert!(
            seen.epochs.iter().all(|e| e == epoch),
            "crash{c}: the epoch changed: {:?}",
            seen.epochs
        );
        // A message changes after it is seen (reactions): its final state is checked
        // below; every other event is as the history holds it.
        for (seq, frame) in &seen.events {
            if matches!(frame, ServerFrame::Message { .. }) {
                continue;
            }
            assert_eq!(
                by_seq.get(seq),
                Some(&frame),
                "crash{c} saw seq {seq} as something the history does not hold"
            );
        }
        let seqs: Vec<u64> = seen.events.iter().map(|(s, _)| *s).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "crash{c}: a gap or a repeat in {seqs:?}"
        );
        let posted = client.posted();
        for id in &posted {
            assert_eq!(ids.get(id), Some(&1), "crash{c}: {id} not recorded once");
            assert!(seen.echoed.contains(id), "crash{c}: {id} never came back");
        }
        assert!(posted.len() > 20, "crash{c} posted through the kills");
        same_messages(c, &seen.events, &by_seq);
    }
    let reacted = history
        .iter()
        .filter(|f| matches!(f, ServerFrame::Reaction { .. }))
        .count();
    assert!(
        reacted > 20,
        "reactions recorded through the kills: {reacted}"
    );
}

/// A client's view of every message (each as it came, live or replayed, changed by the
/// reactions and edits it saw after it) is the history's.
fn same_messages(c: usize, events: &[(u64, ServerFrame)], history: &BTreeMap<u64, &ServerFrame>) {
    let view = chat_tests::messages_as_seen(events.iter().map(|(_, frame)| frame));
    for (seq, message) in &view {
        assert_eq!(
            history.get(seq).copied(),
            Some(message),
            "crash{c} ends with message {seq} as the history does not hold it"
        );
    }
}

/// A log that fails while `failing` is set (a full disk, an I/O error).
struct Failing {
    inner: MemoryLog,
    failing: AtomicBool,
}

impl EventLog for Failing {
    fn epoch(&self) -> &str {
        self.inner.epoch()
    }
    fn durable(&self) -> bool {
        false
    }
    fn head(&self, stream: &StreamId) -> Result<chat_server::log::Head, LogError> {
        self.inner.head(stream)
    }
    fn append(&self, events: &[NewEvent]) -> Result<Vec<chat_server::log::Event>, LogError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(LogError::Store(
                "No space left on device (os error 28)".into(),
            ));
        }
        self.inner.append(events)
    }
    fn read(
        &self,
        stream: &StreamId,
        span: Span,
        limit: usize,
    ) -> Result<Vec<chat_server::log::Event>, LogError> {
        self.inner.read(stream, span, limit)
    }
    fn recent_posts(&self, poster: &str) -> Result<Vec<(String, chat_shared::Frame)>, LogError> {
        self.inner.recent_posts(poster)
    }
    fn rooms(&self) -> Result<Vec<(StreamId, String)>, LogError> {
        self.inner.rooms()
    }
    fn streams(&self) -> Result<Vec<StreamId>, LogError> {
        self.inner.streams()
    }
    fn accounts(&self) -> Result<Vec<(String, String)>, LogError> {
        self.inner.accounts()
    }
    fn create_account(&self, folded: &str, name: &str, hash: &str) -> Result<bool, LogError> {
        self.inner.create_account(folded, name, hash)
    }
    fn set_password(&self, folded: &str, hash: &str) -> Result<(), LogError> {
        self.inner.set_password(folded, hash)
    }
    fn forget_account(&self, folded: &str) -> Result<(), LogError> {
        self.inner.forget_account(folded)
    }
    fn conversations(
        &self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<chat_shared::Conversation>, LogError> {
        self.inner.conversations(owner, limit)
    }
    fn room_state(&self, stream: &StreamId) -> Result<Vec<(String, String)>, LogError> {
        self.inner.room_state(stream)
    }
    fn invites_of(&self, account: &str) -> Result<Vec<(String, String)>, LogError> {
        self.inner.invites_of(account)
    }
    fn server_bans(&self) -> Result<Vec<(String, String)>, LogError> {
        self.inner.server_bans()
    }
    fn set_server_ban(&self, key: &str, value: Option<&str>) -> Result<(), LogError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(LogError::Store(
                "No space left on device (os error 28)".into(),
            ));
        }
        self.inner.set_server_ban(key, value)
    }
    fn read_markers(&self, account: &str) -> Result<Vec<(String, u64)>, LogError> {
        self.inner.read_markers(account)
    }
    fn set_read(&self, marks: &[chat_server::log::ReadMark]) -> Result<(), LogError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(LogError::Store(
                "No space left on device (os error 28)".into(),
            ));
        }
        self.inner.set_read(marks)
    }
}

/// Flags: `test_config()` with an event log that fails on demand. While it fails, a post
/// is answered `error unavailable` with its id and nobody sees it, a login is `rejected
/// unavailable`, a join or a part `error unavailable` (and did not happen); the server keeps serving, and once the log works again the same post
/// goes through.
#[test]
fn a_failing_store_refuses_without_losing_anything() {
    let log = Arc::new(Failing {
        inner: MemoryLog::new("e".into()),
        failing: AtomicBool::new(false),
    });
    let server = chat_server::Running::start_with_log(test_config(), log.clone()).expect("server");
    run_for(LIMIT, async {
        let (mut alice, _) = Client::login(server.addr(), "alice").await;
        let (mut bob, _) = Client::login(server.addr(), "bob").await;
        alice.recv().await; // bob joined
        log.failing.store(true, Ordering::Relaxed);
        alice.send(&say("lost?", "a1")).await;
        let frames = alice
            .recv_until(|f| matches!(f, ServerFrame::Error { .. }))
            .await;
        assert!(
            matches!(frames.last(), Some(ServerFrame::Error { code: ErrorCode::Unavailable, id: Some(id), .. }) if id == "a1"),
            "{frames:?}"
        );
        let mut carol = Client::connect(server.addr()).await;
        carol.send(&hello("carol")).await;
        let answer = carol.recv_to_end().await;
        assert!(
            matches!(
                answer.as_slice(),
                [ServerFrame::Rejected {
                    code: RejectCode::Unavailable,
                    retry_after: Some(_),
                    ..
                }]
            ),
            "{answer:?}"
        );
        // A join and a part that cannot be recorded did not happen.
        alice
            .send(&ClientFrame::Join {
                room: "rust".into(),
                since: None,
            })
            .await;
        assert_eq!(alice.next_error().await, ErrorCode::Unavailable);
        alice
            .send(&ClientFrame::Part {
                room: "general".into(),
            })
            .await;
        assert_eq!(alice.next_error().await, ErrorCode::Unavailable);
        log.failing.store(false, Ordering::Relaxed);
        alice
            .send(&ClientFrame::Say {
                to: None,
                room: Some("rust".into()),
                text: "not in rust".into(),
                id: None,
                me: false,
                reply_to: None,
            })
            .await;
        assert_eq!(alice.next_error().await, ErrorCode::NotMember);
        alice.send(&say("lost?", "a1")).await;
        let said = bob
            .recv_until(|f| matches!(f, ServerFrame::Message { .. }))
            .await;
        assert!(
            matches!(said.as_slice(), [ServerFrame::Message { text, .. }] if text == "lost?"),
            "bob saw it once, only after it was recorded: {said:?}"
        );
        let (_dave, _) = Client::login(server.addr(), "dave").await;
    });
}
