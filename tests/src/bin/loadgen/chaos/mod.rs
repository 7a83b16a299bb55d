//! `loadgen chaos`: many clients doing everything at once while the server is killed
//! and started again on its store, then a check that nothing was lost, repeated or
//! changed (see tests/BENCHMARKS.md, "Chaos").
//!
//! It starts the server itself (`chat-server` beside this binary, or `--server`) on a free
//! port with `--max-per-ip 0 --data DIR --admins chaos-admin --replay-max 100000`, flood
//! control on (the defaults), and kills it every `--kill-every` seconds. With `--cluster`
//! it starts a Redis (`redis-server`, AOF with `appendfsync always`) and two nodes on it
//! (`--redis URL --lease 2` instead of `--data`), each client connecting to either node
//! each time it connects; every `--kill-every` seconds comes the next fault in turn: a
//! node killed (SIGKILL) and started again, Redis killed (SIGKILL) and started again
//! from its append-only file, a node paused with SIGSTOP for 4 s (twice its lease) and
//! resumed. The clients:
//! - ordinary ones ([`user`]), a quarter of them accounts (password log-ins, direct
//!   messages within a circle of friends, edits and deletions), one the administrator
//!   (topics, mutes, removals), spread over `--rooms` rooms and the default one;
//! - misbehaving ones ([`hostile`]): garbage, oversize lines, floods, slow readers.
//!
//! At the end every client settles (its posts acknowledged, every stream caught up) and
//! leaves; then every stream's history is read back and compared ([`check`]), the server's
//! memory and sockets are read, and it is stopped with SIGTERM. The invariants and what
//! breaks them are in [`ledger::Breach`]; any breach makes the run fail.

mod check;
mod hostile;
mod ledger;
mod server;
mod tally;
mod user;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use argh::FromArgs;
use serde::Serialize;
use smol::Timer;

use self::hostile::{Misdeed, misbehave};
use self::ledger::{Breach, Ledger};
use self::server::{ADMIN, Supervised};
use self::tally::Tally;
use self::user::{Identity, User, World};
use crate::spawn;

#[derive(FromArgs)]
#[argh(subcommand, name = "chaos")]
/// Many clients doing everything at once while the server is killed and restarted on its
/// store; then checks that nothing was lost, repeated or changed.
pub(crate) struct ChaosArgs {
    /// the server binary (default: chat-server beside this one)
    #[argh(option)]
    server: Option<PathBuf>,
    /// ordinary clients (default: 500)
    #[argh(option, default = "500")]
    clients: usize,
    /// rooms besides the default one (default: 50)
    #[argh(option, default = "50")]
    rooms: usize,
    /// misbehaving clients (default: 8)
    #[argh(option, default = "8")]
    hostile: usize,
    /// seconds of chaos, fractions allowed (default: 60)
    #[argh(option, default = "60.0")]
    duration: f64,
    /// seconds between SIGKILLs of the server, 0 for none (default: 20)
    #[argh(option, default = "20.0")]
    kill_every: f64,
    /// seconds between one client's actions, on average (default: 2)
    #[argh(option, default = "2.0")]
    pace: f64,
    /// clients connected per second at the start (default: 200)
    #[argh(option, default = "200.0")]
    ramp: f64,
    /// the seed of the clients' choices (default: from the clock)
    #[argh(option)]
    seed: Option<u64>,
    /// write every frame this client (a name, or `all`) sends and receives to stderr
    #[argh(option)]
    trace: Option<String>,
    /// print the report as one JSON object
    #[argh(switch)]
    json: bool,
    /// two nodes sharing a Redis instead of one server with its own store; the faults
    /// take turns: a node killed and started again, Redis killed and started again from its
    /// append-only file, a node paused (SIGSTOP) for longer than its lease
    #[argh(switch)]
    cluster: bool,
}

/// A cluster's nodes: their lease (`--lease`), and how long a paused node stays paused.
const LEASE: Duration = Duration::from_secs(2);
const PAUSE: Duration = Duration::from_secs(4);

#[derive(Serialize)]
struct Report {
    seed: u64,
    clients: usize,
    hostile: usize,
    rooms: usize,
    duration_s: f64,
    nodes: usize,
    server_starts: u32,
    /// Each node's exit code at SIGTERM.
    server_exit_codes: Vec<Option<i32>>,
    server_panics: usize,
    /// Each node's resident memory in each of its lives, after warm-up and at its end.
    rss_by_life: Vec<Life>,
    sockets_at_start: usize,
    sockets_at_the_end: usize,
    descriptors_at_start: usize,
    descriptors_at_the_end: usize,
    checked: check::Checked,
    counts: BTreeMap<String, u64>,
    breaches: BTreeMap<Breach, u64>,
    examples: Vec<String>,
}

/// The server's memory after the run (clients gone, queues written) may be at most this
/// many times the most it held after a warm-up (its caches fill as the history grows; a
/// leak grows without bound), plus [`INDEX_MIB`].
const RSS_BOUND: f64 = 1.5;

/// What the search index holds once it has indexed for a while, whatever the load: its
/// 16 MiB indexing arena, segment readers and merges, which a 5-s warm-up has not reached
/// yet (runs with `--no-search` stay within 1.1× of their warm-up; with the index, a
/// 36-s run ends some 20-30 MiB higher). A cluster node keeps its index in a scratch
/// directory: kept in memory, its files held pages of the writer's short-lived threads and
/// ended runs over two minutes past this bound (tests/BENCHMARKS.md, "Chaos").
const INDEX_MIB: f64 = 32.0;

/// The most of a server's warnings and errors printed after a run that broke a promise.
const WARNINGS_SHOWN: usize = 300;

/// Prints what the servers warned of in all their lives, to read beside a breach.
fn show_warnings(nodes: &[Supervised]) {
    for (node, server) in nodes.iter().enumerate() {
        let lines = server.log_lines(|line| line.contains(" WARN ") || line.contains(" ERROR "));
        let skipped = lines.len().saturating_sub(WARNINGS_SHOWN);
        eprintln!(
            "node {}: {} warnings and errors, the last {}:",
            node + 1,
            lines.len(),
            lines.len() - skipped
        );
        for line in &lines[skipped..] {
            eprintln!("  {line}");
        }
    }
}

/// Everyone in and busy (and, after a restart, back): then memory is measured.
const WARM_UP: Duration = Duration::from_secs(5);

/// A node's resident memory in one of its lives (between two SIGKILLs).
#[derive(Serialize)]
struct Life {
    node: usize,
    after_warm_up_mib: f64,
    at_its_end_mib: f64,
}

impl Life {
    fn warm(node: usize, server: &Supervised) -> Self {
        Self {
            node,
            after_warm_up_mib: mib(server.rss().unwrap_or(0)),
            at_its_end_mib: 0.0,
        }
    }

    fn end(&mut self, server: &Supervised) {
        self.at_its_end_mib = mib(server.rss().unwrap_or(0));
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub(crate) async fn chaos(args: ChaosArgs) -> Result<(), String> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let data = chat_tests::TempDir::new("chaos");
    let (mut redis, mut nodes) = start_servers(&args, &data).await?;
    let redis_port = redis.as_ref().map(|redis| redis.port);
    let baseline: Vec<(usize, usize)> = nodes
        .iter()
        .map(|node| node.descriptors(redis_port).unwrap_or_default())
        .collect();
    let world = Arc::new(World {
        addrs: nodes.iter().map(|node| node.addr).collect(),
        ledger: Ledger::default(),
        tally: Tally::default(),
        rooms: (0..args.rooms.max(1))
            .map(|i| format!("chaos-{i}"))
            .collect(),
        general: "general".into(),
        names: (1..args.clients).map(name_of).collect(),
        pace: Duration::from_secs_f64(args.pace),
        acting: AtomicBool::new(true),
        trace: args.trace.clone(),
    });
    let passwords: HashMap<String, String> = (0..args.clients)
        .filter(|i| is_account(*i))
        .map(|i| (name_of(i), format!("chaos password {i}")))
        .collect();
    let started = Instant::now();
    let (users, hostile) = start_clients(&args, &world, &passwords, seed).await;
    let mut lives = faults(&mut nodes, &mut redis, &world, &args, started).await?;
    world.acting.store(false, Ordering::Relaxed);
    for user in users {
        user.await;
    }
    for task in hostile {
        task.await;
    }
    let settled = after_the_run(&nodes, &baseline, redis_port, &mut lives).await;
    let checked = match check::check(nodes[0].addr, &world.ledger, &passwords, &world.general).await
    {
        Ok(checked) => checked,
        Err(err) => {
            world.ledger.breach(Breach::Unchecked, || err);
            check::Checked::default()
        }
    };
    let panics: Vec<String> = nodes.iter().flat_map(Supervised::panics).collect();
    let mut exits = Vec::new();
    for server in &mut nodes {
        exits.push(server.stop().await);
    }
    let ledger = &world.ledger;
    let total =
        |counts: &[(usize, usize)]| counts.iter().fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    let ((descriptors_at_start, sockets_at_start), (descriptors_at_the_end, sockets_at_the_end)) =
        (total(&baseline), total(&settled));
    judge(
        ledger,
        &panics,
        &exits,
        &lives,
        (sockets_at_start, sockets_at_the_end),
    );
    let (breaches, examples) = ledger.breaches();
    if !breaches.is_empty() {
        show_warnings(&nodes);
    }
    let report = Report {
        seed,
        clients: args.clients,
        hostile: args.hostile,
        rooms: args.rooms,
        duration_s: args.duration,
        nodes: nodes.len(),
        server_starts: nodes.iter().map(|node| node.starts).sum(),
        server_exit_codes: exits,
        server_panics: panics.len(),
        rss_by_life: lives,
        sockets_at_start,
        sockets_at_the_end,
        descriptors_at_start,
        descriptors_at_the_end,
        checked,
        counts: world.tally.counts(),
        breaches,
        examples,
    };
    print_report(&report, args.json)?;
    if report.breaches.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} broken promises (see the report)",
            report.breaches.values().sum::<u64>()
        ))
    }
}

/// Each node once the clients are gone: its descriptors and sockets (back to
/// `baseline`, see [`settled_sockets`]) and, once what was queued for them is written and
/// freed, its memory as its newest life's end: memory after the run, not in its last burst.
async fn after_the_run(
    nodes: &[Supervised],
    baseline: &[(usize, usize)],
    redis_port: Option<u16>,
    lives: &mut [Life],
) -> Vec<(usize, usize)> {
    let mut settled = Vec::new();
    for (server, (_, sockets)) in nodes.iter().zip(baseline) {
        settled.push(settled_sockets(server, *sockets, redis_port).await);
    }
    Timer::after(WARM_UP).await;
    for (node, server) in nodes.iter().enumerate() {
        if let Some(life) = lives.iter_mut().rev().find(|life| life.node == node) {
            life.end(server);
        }
    }
    settled
}

/// The server (`--server`, or `chat-server` beside this binary) on its store in `data`;
/// with `--cluster`, a Redis and two nodes on it.
async fn start_servers(
    args: &ChaosArgs,
    data: &chat_tests::TempDir,
) -> Result<(Option<chat_tests::Redis>, Vec<Supervised>), String> {
    let bin = match &args.server {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()
            .map_err(|err| err.to_string())?
            .with_file_name("chat-server"),
    };
    if !bin.is_file() {
        return Err(format!(
            "no server at {} (build it: cargo build --release -p chat-tests --bin chat-server; or pass --server)",
            bin.display()
        ));
    }
    let redis = args.cluster.then(chat_tests::Redis::start);
    let store = match &redis {
        Some(redis) => vec![
            "--redis".into(),
            redis.url(),
            "--lease".into(),
            LEASE.as_secs_f64().to_string(),
        ],
        None => vec!["--data".into(), data.path().display().to_string()],
    };
    let mut nodes = Vec::new();
    for _ in 0..if args.cluster { 2 } else { 1 } {
        nodes.push(Supervised::start(&bin, &store).await?);
    }
    Ok((redis, nodes))
}

/// Connects the ordinary clients at `--ramp` a second, then the misbehaving ones.
async fn start_clients(
    args: &ChaosArgs,
    world: &Arc<World>,
    passwords: &HashMap<String, String>,
    seed: u64,
) -> (Vec<smol::Task<()>>, Vec<smol::Task<()>>) {
    let mut users = Vec::new();
    for i in 0..args.clients {
        let identity = Identity {
            name: name_of(i),
            password: passwords.get(&name_of(i)).cloned(),
            friends: if is_account(i) {
                friends_of(i, args.clients)
            } else {
                Vec::new()
            },
            admin: i == 0,
        };
        users.push(spawn(
            User::new(identity, seed ^ (i as u64) << 20)
                .run(world.clone(), Duration::from_secs(60)),
        ));
        Timer::after(Duration::from_secs_f64(1.0 / args.ramp)).await;
    }
    let hostile = (0..args.hostile)
        .map(|i| {
            spawn(misbehave(
                i,
                Misdeed::ALL[i % Misdeed::ALL.len()],
                world.clone(),
            ))
        })
        .collect();
    (users, hostile)
}

/// The run's faults until its end, one every `--kill-every` seconds: alone, the server
/// killed (SIGKILL) and started again; in a cluster, in turn, a node killed (SIGKILL) and
/// started again, Redis killed (SIGKILL) and started again from its append-only file, a
/// node paused past its lease. Each node's memory in each of its lives, the newest ones' ends still to be
/// measured.
async fn faults(
    nodes: &mut [Supervised],
    redis: &mut Option<chat_tests::Redis>,
    world: &World,
    args: &ChaosArgs,
    started: Instant,
) -> Result<Vec<Life>, String> {
    // Warm-up: everyone in and chatting for a few seconds.
    Timer::after(WARM_UP).await;
    let mut lives: Vec<Life> = (0..nodes.len())
        .map(|node| Life::warm(node, &nodes[node]))
        .collect();
    let end = started + Duration::from_secs_f64(args.duration);
    let kill_every = Duration::from_secs_f64(args.kill_every);
    let mut next = (args.kill_every > 0.0).then(|| Instant::now() + kill_every);
    let mut turn = 0;
    while Instant::now() < end {
        match next {
            // Each life is warmed up before the run ends, so that its memory is measured.
            Some(at) if at + WARM_UP < end => {
                Timer::at(at).await;
                // Alone, always a kill; in a cluster, a kill, Redis, a pause, in turn.
                let node = (turn / 3) % nodes.len();
                let fault = if redis.is_some() { turn % 3 } else { 0 };
                match (fault, redis.take()) {
                    (1, Some(redis_server)) => {
                        // Its restart waits until it is ready: off the clients' threads.
                        let restarted = smol::unblock(move || {
                            let mut redis_server = redis_server;
                            redis_server.restart();
                            redis_server
                        });
                        *redis = Some(restarted.await);
                        world.tally.add("Redis killed and restarted");
                    }
                    (2, taken) => {
                        *redis = taken;
                        nodes[(node + 1) % nodes.len()].pause(PAUSE).await;
                        world.tally.add("a node paused past its lease");
                    }
                    (_, taken) => {
                        *redis = taken;
                        if let Some(life) = lives.iter_mut().rev().find(|life| life.node == node) {
                            life.end(&nodes[node]);
                        }
                        nodes[node].crash_and_restart().await?;
                        world.tally.add("server killed and restarted");
                        Timer::after(WARM_UP).await;
                        lives.push(Life::warm(node, &nodes[node]));
                    }
                }
                turn += 1;
                next = Some(at + kill_every);
            }
            _ => {
                Timer::at(end).await;
            }
        }
    }
    Ok(lives)
}

/// The server's own promises: no panic, a clean exit at SIGTERM, memory after the run
/// within [`RSS_BOUND`] of its warm-ups (plus [`INDEX_MIB`]), its sockets back to where
/// they were.
fn judge(
    ledger: &Ledger,
    panics: &[String],
    exits: &[Option<i32>],
    lives: &[Life],
    (sockets_at_start, sockets_at_the_end): (usize, usize),
) {
    for line in panics {
        ledger.breach(Breach::ServerFailed, || line.clone());
    }
    for (node, exit) in exits.iter().enumerate() {
        if *exit != Some(0) {
            ledger.breach(Breach::ServerFailed, || {
                format!("node {}'s exit at SIGTERM: {exit:?}", node + 1)
            });
        }
    }
    // Each node after the run (its newest life's end) against the most it held after a
    // warm-up: a leak grows with the run; a burst (a reconnect storm's replays, queues
    // backed up behind a stalled reader) comes and goes within a life.
    for node in 0..exits.len() {
        let of_node = || lives.iter().filter(|life| life.node == node);
        let warm = of_node()
            .map(|life| life.after_warm_up_mib)
            .fold(0.0, f64::max);
        let Some(last) = of_node().next_back() else {
            continue;
        };
        if last.at_its_end_mib > RSS_BOUND * warm + INDEX_MIB {
            ledger.breach(Breach::ServerFailed, || {
                format!(
                    "node {}: RSS {:.1} MiB after the run, above {RSS_BOUND}× its {warm:.1} MiB after a warm-up + {INDEX_MIB} MiB",
                    node + 1,
                    last.at_its_end_mib,
                )
            });
        }
    }
    if sockets_at_the_end > sockets_at_start {
        ledger.breach(Breach::ServerFailed, || {
            format!("{sockets_at_the_end} sockets open at the end, {sockets_at_start} at the start")
        });
    }
}

/// The server's descriptors once the clients are gone: waits (up to 10 s) for its sockets
/// to come back down to `baseline`.
async fn settled_sockets(
    server: &Supervised,
    baseline: usize,
    besides: Option<u16>,
) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (all, sockets) = server.descriptors(besides).unwrap_or_default();
        if sockets <= baseline || Instant::now() > deadline {
            return (all, sockets);
        }
        Timer::after(Duration::from_millis(100)).await;
    }
}

fn print_report(report: &Report, json: bool) -> Result<(), String> {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).map_err(|err| err.to_string())?
        );
        return Ok(());
    }
    println!(
        "chaos: {} clients (+{} misbehaving) over {} rooms for {:.0} s, seed {}; {} started {} times",
        report.clients,
        report.hostile,
        report.rooms,
        report.duration_s,
        report.seed,
        if report.nodes > 1 {
            format!("{} nodes sharing a Redis", report.nodes)
        } else {
            "the server".to_owned()
        },
        report.server_starts
    );
    for (what, count) in &report.counts {
        println!("  {count:>9}  {what}");
    }
    let checked = &report.checked;
    println!(
        "checked: {} streams, {} events in history, {} received events compared ({} messages' state), {} acknowledged posts",
        checked.streams,
        checked.events_in_history,
        checked.events_received_compared,
        checked.messages_state_compared,
        checked.acknowledged_posts
    );
    let lives: Vec<String> = report
        .rss_by_life
        .iter()
        .map(|life| {
            let node = if report.nodes > 1 {
                format!("node {}: ", life.node + 1)
            } else {
                String::new()
            };
            format!(
                "{node}{:.1}→{:.1}",
                life.after_warm_up_mib, life.at_its_end_mib
            )
        })
        .collect();
    println!(
        "server: exit {:?}, {} panics, RSS in MiB after warm-up→at the end of each life {}, sockets {} at the start and {} at the end (descriptors {} and {})",
        report.server_exit_codes,
        report.server_panics,
        lives.join(", "),
        report.sockets_at_start,
        report.sockets_at_the_end,
        report.descriptors_at_start,
        report.descriptors_at_the_end
    );
    if report.breaches.is_empty() {
        println!("every promise held");
    }
    for (kind, count) in &report.breaches {
        println!("BROKEN {kind:?}: {count}");
    }
    for example in &report.examples {
        println!("  {example}");
    }
    Ok(())
}

fn name_of(i: usize) -> String {
    if i == 0 {
        ADMIN.to_owned()
    } else {
        format!("chaos{i}")
    }
}

/// Every fourth client is an account (the administrator too).
fn is_account(i: usize) -> bool {
    i.is_multiple_of(4)
}

/// The accounts an account writes to: its neighbours among the accounts.
fn friends_of(i: usize, clients: usize) -> Vec<String> {
    let accounts = clients.div_ceil(4);
    let me = i / 4;
    (1..=3)
        .flat_map(|d| [me + d, me + accounts - d])
        .map(|other| other % accounts)
        .filter(|other| *other != me)
        .map(|other| name_of(other * 4))
        .collect()
}
