//! Cluster mode: server processes (`chat-server`) that share a Redis of the test's own
//! (`redis-server` on a free port, AOF with `appendfsync always`), with nodes killed and
//! Redis restarted under load. Every node runs with `--port 0 --redis URL --rate 0
//! --max-per-ip 0` (flood control off) and `--lease 1` unless a test says otherwise.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chat_client::connection::{Event, Resume, Target};
use chat_shared::{ClientFrame, ErrorCode, LeaveReason, PROTOCOL_VERSION, ServerFrame};
use chat_tests::{
    Client, Headless, Proxy, Redis, ServerProcess, hello_v2, run_for, say, server_binary,
};

const LIMIT: Duration = Duration::from_secs(90);

/// A node of the cluster on `redis`, with `lease` seconds.
async fn node(redis: &Redis, lease: &str) -> ServerProcess {
    let url = redis.url();
    ServerProcess::start(
        &server_binary(),
        &[
            "--port",
            "0",
            "--redis",
            &url,
            "--rate",
            "0",
            "--max-per-ip",
            "0",
            "--lease",
            lease,
        ],
    )
    .await
}

/// The messages among `frames`: seq, sender, text.
fn messages(frames: &[ServerFrame]) -> Vec<(u64, String, String)> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::Message {
                seq, from, text, ..
            } => Some((*seq, from.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

/// Reads until `count` messages with `marker` in their text have come; returns every frame.
async fn read_messages(client: &mut Client, marker: &str, count: usize) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    let mut seen = 0;
    while seen < count {
        let frame = client.recv().await;
        if matches!(&frame, ServerFrame::Message { text, .. } if text.contains(marker)) {
            seen += 1;
        }
        frames.push(frame);
    }
    frames
}

/// The whole history of the default room, by seq.
async fn whole_history(client: &mut Client) -> BTreeMap<u64, ServerFrame> {
    chat_tests::whole_history(client)
        .await
        .into_iter()
        .filter_map(|frame| frame.seq().map(|seq| (seq, frame)))
        .collect()
}

/// Flags: three nodes. Six clients, two on each node, post 30 messages each at once: every
/// client sees all 180, in the same seq order, none twice.
#[test]
fn three_nodes_one_room_one_order() {
    run_for(LIMIT, async {
        let redis = Redis::start();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(node(&redis, "1").await);
        }
        let mut clients = Vec::new();
        for i in 0..6 {
            let (client, _) = Client::login_v2(nodes[i % 3].addr, &format!("c{i}")).await;
            clients.push(client);
        }
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut client)| {
                smol::spawn(async move {
                    for k in 0..30 {
                        client
                            .send(&say(&format!("post c{i}-{k}"), &format!("c{i}-{k}")))
                            .await;
                    }
                    messages(&read_messages(&mut client, "post ", 180).await)
                })
            })
            .collect();
        let mut views = Vec::new();
        for task in tasks {
            views.push(task.await);
        }
        let first = &views[0];
        assert_eq!(first.len(), 180);
        let texts: HashSet<&str> = first.iter().map(|(_, _, t)| t.as_str()).collect();
        assert_eq!(texts.len(), 180, "none twice");
        assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "in seq order");
        for view in &views[1..] {
            assert_eq!(
                view, first,
                "every node delivers the same events in the same order"
            );
        }
    });
}

/// A `hello` that resumes a session: its token, and the room after `since`.
fn resume(name: &str, token: &str, since: u64, epoch: &str) -> ClientFrame {
    ClientFrame::Hello {
        password: None,
        register: false,
        protocol: PROTOCOL_VERSION,
        name: name.into(),
        since: Some(since),
        epoch: Some(epoch.into()),
        token: Some(token.into()),
    }
}

/// Flags: three nodes, `--lease 1`. Under load (bea on node B posts 150 messages), node A
/// is killed (SIGKILL): ann, on A, comes back on B with its token and `since` and misses nothing
/// and sees nothing twice; abe, on A, does not come back and everyone else sees it `lost`
/// once, when A's lease has run out; nobody sees ann leave. Everything anyone received is
/// in the history. Meanwhile rex, on C, reacts to the load (and takes some back) and edits a
/// note of its own: ann ends with every message as the history has it, edits and
/// reactions and all.
#[test]
fn a_killed_node_s_clients_resume_on_another() {
    run_for(LIMIT, async {
        let redis = Redis::start();
        let mut a = node(&redis, "1").await;
        let b = node(&redis, "1").await;
        let c = node(&redis, "1").await;
        let (mut cid, _) = Client::login_v2(c.addr, "cid").await;
        let (mut ann, welcome) = Client::login_v2(a.addr, "ann").await;
        let ServerFrame::Welcome { token, epoch, .. } = welcome else {
            unreachable!("login_v2 returns the welcome");
        };
        let (abe, _) = Client::login_v2(a.addr, "abe").await;
        let rex_hello = ClientFrame::Hello {
            protocol: PROTOCOL_VERSION,
            name: "rex".into(),
            since: None,
            epoch: None,
            token: None,
            password: Some(chat_shared::Password::new("rex's password")),
            register: true,
        };
        let (rex, _) = Client::login_with(c.addr, &rex_hello).await;
        let (mut bea, _) = Client::login_v2(b.addr, "bea").await;
        // ann's view so far: up to its own joined at least.
        let mut ann_seen = ann
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "bea"))
            .await;
        let poster = smol::spawn(async move {
            for k in 0..150 {
                bea.send(&say(&format!("load {k}"), &format!("b{k}"))).await;
                smol::Timer::after(Duration::from_millis(5)).await;
            }
            read_messages(&mut bea, "load ", 150).await;
            bea
        });
        let reactor = smol::spawn(react_to_the_load(rex));
        // Some of the load reaches ann on A, then A dies.
        ann_seen.extend(read_messages(&mut ann, "load ", 20).await);
        a.kill().await;
        drop(abe);
        while let Some(Ok(frame)) = ann.next().await {
            ann_seen.push(frame);
        }
        let last = ann_seen
            .iter()
            .filter_map(ServerFrame::seq)
            .max()
            .expect("seqs");
        let mut back = Client::connect(b.addr).await;
        back.send(&resume("ann", &token, last, &epoch)).await;
        let ServerFrame::Welcome { name, .. } = back.recv().await else {
            panic!("ann is welcomed back on B");
        };
        assert_eq!(name, "ann");
        let mut ann_after = Vec::new();
        // Everything up to the last post, and abe's `lost` once A's lease ran out.
        loop {
            let frame = back.recv().await;
            let done = matches!(&frame, ServerFrame::Left { name, .. } if name == "abe");
            ann_after.push(frame);
            if done {
                break;
            }
        }
        let bea = poster.await;
        let (rex, last_reaction) = reactor.await;
        let all_posted = |frames: &[ServerFrame]| {
            frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Message { text, .. } if text == "load 149"))
        };
        if !all_posted(&ann_after) {
            ann_after.extend(read_messages(&mut back, "load 149", 1).await);
        }
        if ann_after.iter().filter_map(ServerFrame::seq).max() < Some(last_reaction) {
            ann_after.extend(back.recv_until(|f| f.seq() == Some(last_reaction)).await);
        }
        let seqs: Vec<u64> = ann_seen
            .iter()
            .chain(&ann_after)
            .filter_map(ServerFrame::seq)
            .collect();
        let first = seqs[0];
        let expected: Vec<u64> = (first..first + seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "ann misses nothing and sees nothing twice");
        assert!(
            !ann_after
                .iter()
                .any(|f| matches!(f, ServerFrame::Joined { name, .. } | ServerFrame::Left { name, .. } if name == "ann")),
            "ann's takeover is silent"
        );

        // cid, on C, saw abe lost once and ann never leave.
        let cid_seen = abe_lost_once(&mut cid).await;

        // Everything anyone received is in the history, as received; a message as ann
        // ends with it (the reactions it saw applied) is as the history has it.
        let history = whole_history(&mut cid).await;
        ends_as_history(ann_seen.iter().chain(&ann_after), &history);
        let others = ann_seen.iter().chain(&ann_after).chain(&cid_seen);
        for frame in others.filter(|f| !matches!(f, ServerFrame::Message { .. })) {
            if let Some(seq) = frame.seq() {
                assert_eq!(history.get(&seq), Some(frame), "seq {seq} as received");
            }
        }
        drop((bea, rex));
    });
}

/// What cid saw up to the end of the load and abe's `left`: abe lost once, nobody else
/// leaving.
async fn abe_lost_once(cid: &mut Client) -> Vec<ServerFrame> {
    let abe_left = |f: &ServerFrame| matches!(f, ServerFrame::Left { name, .. } if name == "abe");
    let mut cid_seen = read_messages(cid, "load 149", 1).await;
    if !cid_seen.iter().any(abe_left) {
        cid_seen.extend(cid.recv_until(abe_left).await);
    }
    let lefts: Vec<(&str, LeaveReason)> = cid_seen
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Left { name, reason, .. } => Some((name.as_str(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(lefts, [("abe", LeaveReason::Lost)]);
    cid_seen
}

/// rex (an account) reacts to every fifth message of the load as it comes (and takes
/// every other reaction back), and at every tenth edits the note it posted first, until
/// "load 149"; then waits for all of it to be recorded. Returns itself (still online) and
/// the seq of its last reaction or edit.
async fn react_to_the_load(mut rex: Client) -> (Client, u64) {
    rex.send(&say("rex's note", "note")).await;
    let note = rex
        .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(id), .. } if id == "note"))
        .await
        .pop()
        .and_then(|f| f.seq())
        .expect("the note");
    let (mut sent, mut recorded, mut last, mut done) = (0, 0, 0, false);
    while !done || recorded < sent {
        match rex.recv().await {
            ServerFrame::Message { seq, text, .. } if text.starts_with("load ") => {
                let k: u64 = text["load ".len()..].parse().unwrap_or(0);
                let react = |on| ClientFrame::React {
                    room: None,
                    with: None,
                    seq,
                    emoji: "👍".into(),
                    on,
                };
                if k.is_multiple_of(5) {
                    rex.send(&react(true)).await;
                    sent += 1;
                }
                if k.is_multiple_of(10) {
                    rex.send(&react(false)).await;
                    rex.send(&ClientFrame::Edit {
                        room: None,
                        with: None,
                        seq: note,
                        text: format!("rex's note, as of load {k}"),
                    })
                    .await;
                    sent += 2;
                }
                done |= k == 149;
            }
            ServerFrame::Reaction { seq, from, .. } | ServerFrame::Edited { seq, from, .. }
                if from == "rex" =>
            {
                recorded += 1;
                last = last.max(seq);
            }
            _ => {}
        }
    }
    (rex, last)
}

/// Every message a client received, with the reactions and edits it received after it
/// applied, is as the history has it now.
fn ends_as_history<'a>(
    received: impl Iterator<Item = &'a ServerFrame>,
    history: &BTreeMap<u64, ServerFrame>,
) {
    let view = chat_tests::messages_as_seen(received);
    for (seq, message) in &view {
        assert_eq!(history.get(seq), Some(message), "message {seq} at the end");
    }
    assert!(
        history
            .values()
            .any(|f| matches!(f, ServerFrame::Message { reactions, .. } if !reactions.is_empty())),
        "some reactions stayed"
    );
}

/// What a post came to: its echo (id, seq), or `unavailable` (with its id).
async fn answer(client: &mut Client) -> Result<(String, u64), Option<String>> {
    loop {
        match client.recv().await {
            ServerFrame::Message {
                id: Some(id), seq, ..
            } => return Ok((id, seq)),
            ServerFrame::Error {
                code: ErrorCode::Unavailable,
                id,
                ..
            } => return Err(id),
            _ => {}
        }
    }
}

/// Receives until the client has seen messages with all these ids, noting each id's seq.
async fn receive_all<'a>(
    client: &mut Client,
    seen: &mut HashMap<String, u64>,
    ids: impl Iterator<Item = &'a String> + Clone,
) {
    while !ids.clone().all(|id| seen.contains_key(id)) {
        if let ServerFrame::Message {
            id: Some(id), seq, ..
        } = client.recv().await
        {
            seen.insert(id, seq);
        }
    }
}

/// A login at `addr` is refused for now (`unavailable`, with `retry_after`).
async fn refused_for_now(addr: std::net::SocketAddr) {
    let mut late = Client::connect(addr).await;
    late.send(&hello_v2("late")).await;
    let frames = late.recv_to_end().await;
    chat_tests::assert_rejected(&frames, chat_shared::RejectCode::Unavailable);
    assert!(
        matches!(
            frames.last(),
            Some(ServerFrame::Rejected {
                retry_after: Some(_),
                ..
            })
        ),
        "{frames:?}"
    );
}

/// Flags: two nodes, `--lease 5`. Redis is killed (SIGKILL) while alice (node 1) posts, and
/// started again once five posts were refused: posts during the outage get `unavailable`,
/// and so does a login (with `retry_after`); once Redis is back both nodes carry
/// on; every post alice had acknowledged (its echo) reached bob on node 2 and is in the
/// history; the refused ones, sent again with their ids, are posted once each.
#[test]
fn a_redis_restart_loses_nothing_acknowledged() {
    run_for(LIMIT, async {
        let mut redis = Redis::start();
        let one = node(&redis, "5").await;
        let two = node(&redis, "5").await;
        let (mut alice, _) = Client::login_v2(one.addr, "alice").await;
        let (mut bob, _) = Client::login_v2(two.addr, "bob").await;
        alice
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "bob"))
            .await;
        let mut acknowledged: HashMap<String, u64> = HashMap::new();
        let (mut refused, mut after_restart) = (0, 0);
        let mut refused_ids = Vec::new();
        let mut k = 0;
        let mut phase = 0; // 0: before, 1: outage, 2: after
        while phase < 2 || after_restart < 10 {
            if phase == 0 && k == 20 {
                redis.kill();
                phase = 1;
            }
            alice
                .send(&say(&format!("post {k}"), &format!("p{k}")))
                .await;
            k += 1;
            match answer(&mut alice).await {
                Ok((id, seq)) => {
                    acknowledged.insert(id, seq);
                    after_restart += usize::from(phase == 2);
                }
                Err(id) => {
                    refused += 1;
                    refused_ids.extend(id);
                    // Down for five posts, then back; meanwhile a login is refused for
                    // now, to come back later.
                    if phase == 1 && refused == 5 {
                        refused_for_now(two.addr).await;
                        redis.restart();
                        phase = 2;
                    }
                }
            }
        }
        assert!(refused > 0, "posts during the outage were refused");
        assert!(
            acknowledged.keys().any(|id| id == &format!("p{}", k - 1)),
            "posts after the restart are acknowledged"
        );
        // bob, on the other node, gets every acknowledged post.
        let mut seen: HashMap<String, u64> = HashMap::new();
        receive_all(&mut bob, &mut seen, acknowledged.keys()).await;
        for (id, seq) in &acknowledged {
            assert_eq!(
                seen.get(id),
                Some(seq),
                "{id} reached bob with the same seq"
            );
        }
        // What was refused goes again under the same ids, as the client's outbox does:
        // each is posted once (one may have been recorded before Redis went away).
        for id in &refused_ids {
            let k = &id[1..];
            alice.send(&say(&format!("post {k}"), id)).await;
            alice
                .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(i), .. } if i == id))
                .await;
        }
        // bob's node serves the history it has: wait until the posts sent again reached it.
        receive_all(&mut bob, &mut seen, refused_ids.iter()).await;
        let history = whole_history(&mut bob).await;
        for (id, seq) in &acknowledged {
            assert!(
                matches!(history.get(seq), Some(ServerFrame::Message { id: Some(i), .. }) if i == id),
                "{id} (seq {seq}) is in the history"
            );
        }
        let mut ids: Vec<&str> = history
            .values()
            .filter_map(|f| match f {
                ServerFrame::Message { id: Some(id), .. } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let all = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all, "no post is in the history twice");
        let missing: Vec<String> = (0..k)
            .map(|k| format!("p{k}"))
            .filter(|id| !ids.contains(&id.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "every post is in the history: {missing:?} are not"
        );
        assert_eq!(all, k, "every post is in the history once");
    });
}

/// Flags: two nodes, `--lease 1`. A name online on one node is taken on the other (and
/// one that looks the same); a token takeover on the other node closes the old session
/// with `replaced` and nobody sees it.
#[test]
fn names_and_takeovers_across_nodes() {
    run_for(LIMIT, async {
        let redis = Redis::start();
        let one = node(&redis, "1").await;
        let two = node(&redis, "1").await;
        let (mut alice, welcome) = Client::login_v2(one.addr, "alice").await;
        let ServerFrame::Welcome {
            token, epoch, seq, ..
        } = welcome
        else {
            unreachable!("login_v2 returns the welcome");
        };
        let (mut bob, _) = Client::login_v2(two.addr, "bob").await;
        for taken in ["alice", "ALICE", "aIice"] {
            let mut other = Client::connect(two.addr).await;
            other.send(&hello_v2(taken)).await;
            let frames = other.recv_to_end().await;
            chat_tests::assert_rejected(&frames, chat_shared::RejectCode::NameTaken);
        }
        let mut again = Client::connect(two.addr).await;
        again.send(&resume("alice", &token, seq, &epoch)).await;
        assert!(matches!(again.recv().await, ServerFrame::Welcome { .. }));
        let old = alice.recv_to_end().await;
        chat_tests::assert_closing(&old, chat_shared::CloseCode::Replaced);
        again.send(&say("still me", "s1")).await;
        let frames = bob
            .recv_until(|f| matches!(f, ServerFrame::Message { text, .. } if text == "still me"))
            .await;
        assert!(
            !frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Left { name, .. } | ServerFrame::Joined { name, .. } if name == "alice")),
            "nobody sees a takeover: {frames:?}"
        );
    });
}

/// A `say` in a room.
fn say_in(room: &str, text: &str, id: &str) -> ClientFrame {
    ClientFrame::Say {
        to: None,
        room: Some(room.into()),
        text: text.into(),
        me: false,
        reply_to: None,
        id: Some(id.into()),
    }
}

/// The texts of the messages of `room` (`None`: the default room, `general`) among `events`.
fn texts_in(events: &[Event], room: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(ServerFrame::Message { room: r, text, .. })
                if r.as_deref().unwrap_or("general") == room =>
            {
                Some(text.clone())
            }
            _ => None,
        })
        .collect()
}

/// Flags: two nodes, `--lease 1`, each behind a proxy. The desktop client's connection,
/// given both addresses (`PA,PB`), logs in through the first; when that node cannot be
/// reached it moves to the second at once (no 2 s wait) and resumes every room from
/// `since`: what was said meanwhile arrives once, in order, in the default room and in
/// another.
#[test]
fn the_client_moves_to_the_next_node() {
    run_for(LIMIT, async {
        let redis = Redis::start();
        let a = node(&redis, "1").await;
        let b = node(&redis, "1").await;
        let (pa, pb) = (Proxy::start(a.addr).await, Proxy::start(b.addr).await);
        let target = Target {
            server: format!("{},{}", pa.addr, pb.addr),
            name: "roamer".into(),
            ..Target::default()
        };
        let client = Headless::connect(target, Resume::default()).await;
        client.until(|e| matches!(e, Event::LoggedIn(_))).await;
        client.handle.join("side");
        let (mut other, _) = Client::login_v2(b.addr, "other").await;
        other
            .send(&ClientFrame::Join {
                room: "side".into(),
                since: None,
            })
            .await;
        other.send(&say("before", "b0")).await;
        other.send(&say_in("side", "before side", "b1")).await;
        client
            .until(|e| matches!(e, Event::Frame(ServerFrame::Message { text, .. }) if text == "before side"))
            .await;
        pa.set_down(true);
        pa.cut();
        client
            .until(|e| matches!(e, Event::Disconnected { .. }))
            .await;
        for i in 0..3 {
            other
                .send(&say(&format!("away {i}"), &format!("g{i}")))
                .await;
            other
                .send(&say_in("side", &format!("away side {i}"), &format!("s{i}")))
                .await;
        }
        let mut events = Vec::new();
        while !(texts_in(&events, "general").contains(&"away 2".to_string())
            && texts_in(&events, "side").contains(&"away side 2".to_string()))
        {
            let event = client.next().await;
            assert!(
                !matches!(event, Event::Offline { .. }),
                "the next node is tried at once: {event:?}"
            );
            events.push(event);
        }
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::LoggedIn(s) if s.resumed)),
            "logged in again, resuming"
        );
        assert_eq!(texts_in(&events, "general"), ["away 0", "away 1", "away 2"]);
        assert_eq!(
            texts_in(&events, "side"),
            ["away side 0", "away side 1", "away side 2"]
        );
    });
}

/// One node, `--redis` as every node here, `--admins` none. A deleted message's text is
/// gone from Redis: from every key (the events' stream, the poster's remembered posts),
/// and from Redis's files once the rewrite of its append-only file that the deletion sets
/// off is done; a message that was kept is found in both places, so the search can fail.
#[test]
fn a_deleted_text_is_gone_from_redis() {
    let redis = Redis::start();
    run_for(LIMIT, async {
        let server = node(&redis, "1").await;
        let mut alice = Client::connect(server.addr).await;
        alice
            .send(&ClientFrame::Hello {
                protocol: PROTOCOL_VERSION,
                name: "alice".into(),
                since: None,
                epoch: None,
                token: None,
                password: Some(chat_shared::Password::new("alice's password")),
                register: true,
            })
            .await;
        alice
            .recv_until(|f| matches!(f, ServerFrame::Joined { name, .. } if name == "alice"))
            .await;
        alice.send(&say("kept for the record 7781", "k-1")).await;
        alice.send(&say("my passport is X99 41 1234", "s-1")).await;
        let echo = alice
            .recv_until(|f| matches!(f, ServerFrame::Message { id: Some(id), .. } if id == "s-1"))
            .await
            .pop();
        let Some(ServerFrame::Message { seq, .. }) = echo else {
            unreachable!()
        };
        let rewrites = |redis: &Redis| -> (u64, bool) {
            let info = String::from_utf8_lossy(&redis.cli(&["INFO", "persistence"])).to_string();
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            (
                field("aof_rewrites:"),
                field("aof_rewrite_in_progress:") == 0 && field("aof_rewrite_scheduled:") == 0,
            )
        };
        let before = rewrites(&redis).0;
        alice
            .send(&ClientFrame::Delete {
                room: None,
                with: None,
                seq,
            })
            .await;
        alice
            .recv_until(|f| matches!(f, ServerFrame::Deleted { target, .. } if *target == seq))
            .await;
        // Every key, as Redis dumps it.
        let mut dumped = Vec::new();
        for key in redis
            .cli(&["--scan"])
            .split(|b| *b == b'\n')
            .filter(|k| !k.is_empty())
        {
            let key = String::from_utf8_lossy(key).to_string();
            dumped.extend(redis.cli(&["DUMP", &key]));
        }
        let holds =
            |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
        assert!(
            holds(&dumped, "kept for the record 7781"),
            "the dump is read raw"
        );
        assert!(
            !holds(&dumped, "X99 41 1234"),
            "a key still holds the deleted text"
        );
        // Redis's files, once the rewrite set off by the deletion is over (nothing tells
        // when: its state is asked every 50 ms).
        loop {
            let (count, idle) = rewrites(&redis);
            if count > before && idle {
                break;
            }
            smol::Timer::after(Duration::from_millis(50)).await;
        }
        let mut files = Vec::new();
        let mut dirs = vec![redis.dir().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir)
                .expect("redis's directory")
                .flatten()
            {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.extend(std::fs::read(&path).unwrap_or_default());
                }
            }
        }
        assert!(
            holds(&files, "kept for the record 7781"),
            "the files are read raw"
        );
        assert!(
            !holds(&files, "X99 41 1234"),
            "Redis's files still hold the deleted text"
        );
    });
}

/// Flags: none (two logs on one Redis, as two nodes hold them). A post that reaches a
/// second node before that node knew of it (its client came back there while the first
/// node was recording it) is answered with the post as recorded, not recorded again: the
/// check is in the script that appends, which every node runs on the same Redis.
#[test]
fn a_post_sent_again_through_another_node_is_recorded_once() {
    use chat_server::log::redis::RedisLog;
    use chat_server::log::{Body, Direct, EventLog, NewEvent, StreamId};
    let redis = Redis::start();
    let first_node = RedisLog::connect(&redis.url(), || "epoch".into()).expect("a log");
    let second_node = RedisLog::connect(&redis.url(), || "other".into()).expect("a log");
    let post = |text: &str, id: &str| NewEvent {
        stream: StreamId::new("general"),
        room: "general".into(),
        direct: None,
        time: 1,
        body: Body::Message {
            from: "pat".into(),
            text: text.into(),
            id: Some(id.into()),
            me: false,
            reply_to: None,
        },
        poster: Some("pat".into()),
        holder: None,
        base: None,
    };
    let recorded = first_node.append(&[post("hello", "p1")]).expect("recorded");
    assert_eq!(recorded[0].seq, 1);
    let again = second_node
        .append(&[post("hello", "p1"), post("and more", "p2")])
        .expect("answered");
    assert_eq!(again[0].seq, 0, "not recorded twice");
    assert_eq!(
        again[0].frame, recorded[0].frame,
        "answered with the post as recorded"
    );
    assert_eq!(again[1].seq, 2, "a new id is a new post");
    // A direct message likewise (its stream's key holds a newline).
    let direct = NewEvent {
        stream: StreamId::direct("pat", "sam"),
        room: "".into(),
        direct: Some(Box::new(Direct {
            from_key: "pat".into(),
            to_key: "sam".into(),
            to: "sam".into(),
        })),
        ..post("psst", "d1")
    };
    let recorded = first_node
        .append(std::slice::from_ref(&direct))
        .expect("recorded");
    assert_eq!(recorded[0].seq, 1);
    let again = second_node.append(&[direct]).expect("answered");
    assert_eq!((again[0].seq, &again[0].frame), (0, &recorded[0].frame));
}
