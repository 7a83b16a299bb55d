//! `loadgen fanout`: N clients, S of them posting at a total rate for a duration; reports
//! deliveries per second, lost and duplicated deliveries (must be 0), delivery latency
//! percentiles, and each measured process's CPU time per delivery.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argh::FromArgs;
use chat_shared::{ClientFrame, Frame, Writer};
use futures_lite::AsyncWriteExt;
use serde::Serialize;
use smol::Timer;

use crate::accounts::register_accounts;
use crate::clients::{ACCOUNTS_BELOW, QUIET_ROOMS, ramp_up, room_of, use_tls};
use crate::measure::{Percentiles, cpu_seconds, progress, report, spent, status_bytes};
use crate::moderation::moderate_rooms;
use crate::reading::{Latencies, NEWEST_OF, Received, read_messages};
use crate::storm::{StormSummary, storm};
use crate::{default_addr, now_ns, spawn, worker_threads};

/// Common options.
#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "fanout")]
/// N clients, S of them posting at a total rate; measures delivery.
pub(crate) struct FanoutArgs {
    /// server address (default: 127.0.0.1:60000)
    #[argh(option, default = "default_addr()")]
    addr: SocketAddr,
    /// clients to connect (default: 200)
    #[argh(option, default = "200")]
    clients: usize,
    /// how many of them post (default: 20)
    #[argh(option, default = "20")]
    senders: usize,
    /// posts per second, all senders together (default: 1000)
    #[argh(option, default = "1000.0")]
    rate: f64,
    /// seconds of posting; fractions allowed (default: 10)
    #[argh(option, default = "10.0")]
    duration: f64,
    /// bytes of text per post (default: 100)
    #[argh(option, default = "100")]
    text_size: usize,
    /// extra clients that log in and then never read (default: 0)
    #[argh(option, default = "0")]
    stalled: usize,
    /// rooms to spread the clients over, each leaving the default room (default: 0, all
    /// in the default room); client i is in room i mod rooms, so --clients must be a
    /// multiple of it
    #[argh(option, default = "0")]
    rooms: usize,
    /// connections opened per second (default: 500)
    #[argh(option, default = "500.0")]
    ramp: f64,
    /// seconds to wait after connecting before posting (default: 1)
    #[argh(option, default = "1.0")]
    settle: f64,
    /// the server's process id, to report its CPU time and memory
    #[argh(option)]
    server_pid: Option<u32>,
    /// worker threads; 0 means one per core (default: 0)
    #[argh(option, default = "0")]
    pub(crate) threads: usize,
    /// wrong-password logins sent while posting, spread over the run, each address
    /// (127.1.x.y) sending at most 20 (default: 0)
    #[argh(option, default = "0")]
    storm: usize,
    /// accounts registered before the run for the storm to guess at, each guessed at
    /// most 5 times (default: 200)
    #[argh(option, default = "200")]
    storm_accounts: usize,
    /// connect over TLS, trusting the certificate in this PEM file
    #[argh(option)]
    tls: Option<std::path::PathBuf>,
    /// rooms besides its own that each client is in, out of 100 where nobody posts (at
    /// most 10, so they are distinct) (default: 0)
    #[argh(option, default = "0")]
    quiet_rooms: usize,
    /// another node of the same cluster (repeat for more): client i connects to node
    /// i mod nodes, --addr being node 0
    #[argh(option)]
    node: Vec<SocketAddr>,
    /// the process id of each --node, in order, to report each node's CPU time
    #[argh(option)]
    node_pid: Vec<u32>,
    /// the cluster's Redis process id, to report its CPU time
    #[argh(option)]
    redis_pid: Option<u32>,
    /// give the rooms 20 ops, 50 bans and 50 mutes first, as an administrator (run the
    /// server with --admins lg-admin)
    #[argh(switch)]
    moderated: bool,
    /// every other turn of a sender edits its previous post instead of posting (the
    /// senders log in to accounts they register: run against a fresh store)
    #[argh(switch)]
    edits: bool,
    /// how many of the senders also send `typing` to their room, once a second before a
    /// post (default: 0)
    #[argh(option, default = "0")]
    typists: usize,
    /// print the summary as one JSON object
    #[argh(switch)]
    json: bool,
}

impl FanoutArgs {
    /// Every node clients connect to: `--addr`, then each `--node`.
    fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr)
            .chain(self.node.clone())
            .collect()
    }

    /// The processes whose CPU time is measured: the server (node 0), each other node,
    /// and Redis.
    fn pids(&self) -> Vec<u32> {
        self.server_pid
            .into_iter()
            .chain(self.node_pid.clone())
            .chain(self.redis_pid)
            .collect()
    }
}

#[derive(Serialize)]
struct FanoutSummary {
    clients: usize,
    rooms: usize,
    senders: usize,
    stalled: usize,
    /// The rooms had ops, bans and mutes (`--moderated`).
    moderated: bool,
    /// Every other turn of a sender was an edit (`--edits`).
    edits: bool,
    /// Senders that sent `typing` once a second (`--typists`).
    typists: usize,
    target_rate: f64,
    duration_s: f64,
    text_size: usize,
    posts_sent: u64,
    posts_rate_limited: u64,
    deliveries_expected: u64,
    deliveries_received: u64,
    lost: u64,
    duplicated: u64,
    deliveries_per_s: f64,
    latency_ms: Percentiles,
    /// The latency in two parts, at the server's `time` stamp (±1 ms): from the post's
    /// send to the room taking it, and from there to the delivery.
    to_room_ms: Percentiles,
    from_room_ms: Percentiles,
    /// Every node's CPU time together (one server: its own).
    server_cpu_s: Option<f64>,
    server_cpu_us_per_delivery: Option<f64>,
    /// With several nodes: each one's CPU time and the deliveries to its clients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    nodes: Vec<NodeSummary>,
    /// The cluster's Redis, with `--redis-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_cpu_us_per_delivery: Option<f64>,
    server_peak_rss_mib: Option<f64>,
    /// Share of its cores the load generator itself used while posting: near 1, its
    /// own queueing is part of the latencies measured.
    loadgen_cpu_share: Option<f64>,
    tls: bool,
    storm: Option<StormSummary>,
}

/// One node of a cluster under load.
#[derive(Serialize, Debug, Clone)]
struct NodeSummary {
    cpu_s: Option<f64>,
    /// Deliveries to the clients connected to it.
    deliveries: u64,
    cpu_us_per_delivery: Option<f64>,
}

/// Posts `rate × duration` messages from the first `senders` writers, spread evenly over
/// time; returns how many were sent and how long it took.
async fn post(writers: Vec<Writer>, args: &FanoutArgs) -> (u64, f64) {
    let total = (args.rate * args.duration).round() as u64;
    let pad = "x".repeat(args.text_size.saturating_sub(24));
    let bar = progress(total as usize, "posting");
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let senders = args.senders as u64;
    let (rate, rooms, edits) = (args.rate, args.rooms, args.edits);
    let typists = args.typists;
    let posting: Vec<_> = writers
        .into_iter()
        .take(args.senders)
        .enumerate()
        .map(|(s, mut stream)| {
            let (sent, pad, bar) = (sent.clone(), pad.clone(), bar.clone());
            let room = room_of(s, rooms);
            let typing = (s < typists).then(|| {
                Frame::encode(&ClientFrame::Typing {
                    room: room.clone(),
                    to: None,
                })
            });
            spawn(async move {
                let mut typed: Option<Instant> = None;
                // Post n is due at n / rate, so the senders take turns instead of firing
                // together.
                let mut post = s as u64;
                while post < total {
                    Timer::at(started + Duration::from_secs_f64(post as f64 / rate)).await;
                    // A typist says it is typing once a second, before a post.
                    if let Some(typing) = &typing
                        && typed.is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
                    {
                        typed = Some(Instant::now());
                        if stream.write_all(typing.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    let text = format!("p{post} {} {pad}", now_ns());
                    let turn = post / senders;
                    let newest = NEWEST_OF
                        .get()
                        .and_then(|all| all.get(s))
                        .map_or(0, |seq| seq.load(Ordering::Relaxed));
                    let frame = Frame::encode(&if edits && turn % 2 == 1 && newest > 0 {
                        ClientFrame::Edit {
                            room: room.clone(),
                            with: None,
                            seq: newest,
                            text,
                        }
                    } else {
                        ClientFrame::Say {
                            to: None,
                            me: false,
                            reply_to: None,
                            room: room.clone(),
                            text,
                            id: None,
                        }
                    });
                    if stream.write_all(frame.as_bytes()).await.is_err()
                        || stream.flush().await.is_err()
                    {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    bar.inc(1);
                    post += senders;
                }
            })
        })
        .collect();
    for task in posting {
        task.await;
    }
    bar.finish_and_clear();
    (
        sent.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// Waits until `expected` deliveries arrived, or nothing more did for three seconds.
async fn drain(delivered: &AtomicU64, expected: u64) {
    let mut last = delivered.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while last < expected && quiet_since.elapsed() < Duration::from_secs(3) {
        Timer::after(Duration::from_millis(20)).await;
        let now = delivered.load(Ordering::Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
}

/// Checks a fan-out run's options and sets up what they ask for before it: TLS, the
/// accounts of a storm, quiet rooms.
async fn prepare(args: &FanoutArgs) -> Result<(), String> {
    if args.senders == 0 || args.senders > args.clients {
        return Err("--senders must be between 1 and --clients".into());
    }
    if args.rooms > 0 && !args.clients.is_multiple_of(args.rooms) {
        return Err("--clients must be a multiple of --rooms".into());
    }
    if args.quiet_rooms > 10 {
        return Err("--quiet-rooms is at most 10".into());
    }
    let _ = QUIET_ROOMS.set(args.quiet_rooms);
    if args.edits {
        let _ = ACCOUNTS_BELOW.set(args.senders);
        let _ = NEWEST_OF.set((0..args.senders).map(|_| AtomicU64::new(0)).collect());
    }
    if args.typists > args.senders {
        return Err("--typists is at most --senders".into());
    }
    if let Some(cert) = &args.tls {
        use_tls(cert)?;
    }
    if args.storm > 0 {
        register_accounts(args.addr, args.storm_accounts).await?;
    }
    if args.moderated {
        moderate_rooms(args.addr, args.rooms).await?;
    }
    Ok(())
}

pub(crate) async fn fanout(args: FanoutArgs) -> Result<(), String> {
    prepare(&args).await?;
    let bar = progress(args.clients + args.stalled, "connecting");
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Latencies::new()));
    let (writers_tx, writers_rx) = async_channel::unbounded();
    let readers = {
        let (stopped, delivered, latencies) =
            (stopped.clone(), delivered.clone(), latencies.clone());
        ramp_up(
            0,
            args.clients,
            args.ramp,
            &args.addrs(),
            args.rooms,
            &bar,
            move |i, stream, reader| {
                let _ = writers_tx.try_send((i, stream));
                read_messages(
                    reader,
                    stopped.clone(),
                    delivered.clone(),
                    latencies.clone(),
                )
            },
        )
        .await?
    };
    let mut writers: Vec<(usize, Writer)> =
        std::iter::from_fn(|| writers_rx.try_recv().ok()).collect();
    writers.sort_by_key(|(i, _)| *i);
    let writers: Vec<Writer> = writers.into_iter().map(|(_, s)| s).collect();
    // The stalled clients log in last and never read again.
    let stalled = ramp_up(
        args.clients,
        args.stalled,
        args.ramp,
        &args.addrs(),
        args.rooms,
        &bar,
        move |_, stream, _| {
            let stopped = stopped.clone();
            async move {
                let _ = stopped.recv().await;
                drop(stream);
            }
        },
    )
    .await?;
    bar.finish_and_clear();
    Timer::after(Duration::from_secs_f64(args.settle)).await;

    let cpu_before: Vec<Option<f64>> = args.pids().into_iter().map(cpu_seconds).collect();
    let own_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let storm = (args.storm > 0).then(|| {
        spawn(storm(
            args.addr,
            args.storm,
            args.storm_accounts,
            args.duration,
        ))
    });
    let (posts_sent, sending_time) = post(writers, &args).await;
    drain(&delivered, posts_sent * members(&args) as u64).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: Vec<Option<f64>> = args.pids().into_iter().map(cpu_seconds).collect();
    let own_after = cpu_seconds(std::process::id());
    let storm = match storm {
        Some(task) => Some(task.await?),
        None => None,
    };
    drop(stop);
    for task in stalled {
        task.await;
    }
    let mut results = Vec::with_capacity(readers.len());
    for task in readers {
        results.push(task.await);
    }
    let run = Run {
        posts_sent,
        sending_time,
        elapsed,
        cpu: spent(cpu_before, cpu_after),
        own_cpu: own_before.zip(own_after).map(|(a, b)| b - a),
        storm,
    };
    let latencies = latencies.lock().map_err(|e| e.to_string())?;
    let summary = summarize(&args, &run, &results, &latencies);
    report(&summary, args.json, print_fanout)?;
    if summary.lost > 0 || summary.duplicated > 0 {
        return Err(format!(
            "{} lost, {} duplicated",
            summary.lost, summary.duplicated
        ));
    }
    Ok(())
}

/// How many clients each post reaches: everyone, or the members of its room.
fn members(args: &FanoutArgs) -> usize {
    args.clients / args.rooms.max(1)
}

/// What a posting run measured, besides the readers.
struct Run {
    /// The load generator's own CPU time while posting, to tell whether it kept up.
    own_cpu: Option<f64>,
    posts_sent: u64,
    sending_time: f64,
    elapsed: f64,
    /// CPU seconds of each measured process while posting, as [`FanoutArgs::pids`].
    cpu: Vec<Option<f64>>,
    storm: Option<StormSummary>,
}

fn summarize(
    args: &FanoutArgs,
    run: &Run,
    results: &[Received],
    latencies: &Latencies,
) -> FanoutSummary {
    let Latencies {
        latency,
        to_room,
        from_room,
    } = latencies;
    let (mut received, mut duplicated, mut rate_limited) = (0, 0, 0);
    for r in results {
        received += r.unique;
        duplicated += r.duplicates;
        rate_limited += r.rate_limited;
    }
    let (posts_sent, elapsed) = (run.posts_sent, run.elapsed);
    let mut cpu = run.cpu.iter().copied();
    let server_cpu = args.server_pid.and_then(|_| cpu.next().flatten());
    let others: Vec<Option<f64>> = args.node_pid.iter().map(|_| cpu.next().flatten()).collect();
    let redis_cpu = args.redis_pid.and_then(|_| cpu.next().flatten());
    // Each node's deliveries: those to the clients connected to it.
    let nodes = args.addrs().len();
    let mut per_node = vec![0u64; nodes];
    for (i, r) in results.iter().enumerate() {
        per_node[i % nodes] += r.unique;
    }
    let node_summaries: Vec<NodeSummary> = if nodes > 1 {
        std::iter::once(server_cpu)
            .chain(others.iter().copied())
            .zip(&per_node)
            .map(|(cpu_s, deliveries)| NodeSummary {
                cpu_s,
                deliveries: *deliveries,
                cpu_us_per_delivery: cpu_s.map(|c| c * 1e6 / (*deliveries).max(1) as f64),
            })
            .collect()
    } else {
        Vec::new()
    };
    let per_delivery = |cpu: f64| cpu * 1e6 / per_node.iter().sum::<u64>().max(1) as f64;
    let all_nodes_cpu = if nodes > 1 {
        node_summaries.iter().map(|n| n.cpu_s).sum::<Option<f64>>()
    } else {
        server_cpu
    };
    let expected = posts_sent.saturating_sub(rate_limited) * members(args) as u64;
    FanoutSummary {
        clients: args.clients,
        rooms: args.rooms,
        moderated: args.moderated,
        edits: args.edits,
        typists: args.typists,
        senders: args.senders,
        stalled: args.stalled,
        target_rate: args.rate,
        duration_s: run.sending_time,
        text_size: args.text_size,
        posts_sent,
        posts_rate_limited: rate_limited,
        deliveries_expected: expected,
        deliveries_received: received,
        lost: expected.saturating_sub(received),
        duplicated,
        deliveries_per_s: received as f64 / elapsed,
        latency_ms: Percentiles::of(latency),
        to_room_ms: Percentiles::of(to_room),
        from_room_ms: Percentiles::of(from_room),
        server_cpu_s: all_nodes_cpu,
        server_cpu_us_per_delivery: all_nodes_cpu.map(per_delivery),
        nodes: node_summaries,
        redis_cpu_s: redis_cpu,
        redis_cpu_us_per_delivery: redis_cpu.map(per_delivery),
        server_peak_rss_mib: args
            .server_pid
            .and_then(|pid| status_bytes(pid, "VmHWM:"))
            .map(|b| b as f64 / (1024.0 * 1024.0)),
        loadgen_cpu_share: run
            .own_cpu
            .map(|cpu| cpu / elapsed / worker_threads(args.threads) as f64),
        tls: args.tls.is_some(),
        storm: run.storm.clone(),
    }
}

fn print_fanout(s: &FanoutSummary) {
    println!(
        "clients connected     {} ({} posting, {} stalled)",
        s.clients, s.senders, s.stalled
    );
    if s.rooms > 0 {
        println!(
            "rooms                 {} of {} members",
            s.rooms,
            s.clients / s.rooms
        );
    }
    println!(
        "posts sent            {} in {:.2} s (target {}/s), {} rate-limited",
        s.posts_sent, s.duration_s, s.target_rate, s.posts_rate_limited
    );
    println!("deliveries expected   {}", s.deliveries_expected);
    println!("deliveries received   {}", s.deliveries_received);
    println!("lost / duplicated     {} / {}", s.lost, s.duplicated);
    println!("deliveries per second {:.0}", s.deliveries_per_s);
    let l = &s.latency_ms;
    println!(
        "latency ms            p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        l.p50, l.p90, l.p99, l.p999, l.max
    );
    for (what, l) in [
        ("  post to room", &s.to_room_ms),
        ("  room to reader", &s.from_room_ms),
    ] {
        println!(
            "{what:<22}p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
    if let (Some(cpu), Some(per)) = (s.server_cpu_s, s.server_cpu_us_per_delivery) {
        println!("server cpu            {cpu:.2} s, {per:.3} us per delivery");
    }
    for (k, node) in s.nodes.iter().enumerate() {
        if let (Some(cpu), Some(per)) = (node.cpu_s, node.cpu_us_per_delivery) {
            println!(
                "node {k} cpu            {cpu:.2} s, {per:.3} us per delivery of its {}",
                node.deliveries
            );
        }
    }
    if let (Some(cpu), Some(per)) = (s.redis_cpu_s, s.redis_cpu_us_per_delivery) {
        println!("redis cpu             {cpu:.2} s, {per:.3} us per delivery");
    }
    if let Some(rss) = s.server_peak_rss_mib {
        println!("server peak rss       {rss:.1} MiB");
    }
    if let Some(share) = s.loadgen_cpu_share {
        let note = if share > 0.9 {
            " (saturated: its own queueing is in the latencies)"
        } else {
            ""
        };
        println!(
            "loadgen cpu           {:.0}% of its cores{note}",
            share * 100.0
        );
    }
    if let Some(storm) = &s.storm {
        println!(
            "password storm        {} sent: {} checked (wrong), {} turned away, {} throttled, {} other",
            storm.sent, storm.bad_password, storm.unavailable, storm.too_many_attempts, storm.other
        );
    }
}
