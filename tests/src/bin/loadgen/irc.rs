//! `loadgen irc`: the fan-out load over IRC, against our IRC port or any IRC server
//! (`InspIRCd`, for comparison). N clients register as guests and join one channel; S of
//! them post at a total rate for a duration, each post carrying its sender, its number and
//! its send time. Reports deliveries per second, lost and duplicated deliveries (must be
//! 0), delivery latency percentiles, and with `--server-pid` the server's CPU time per
//! delivery. Senders do not get their own posts back (no `echo-message`), so a post is
//! `clients - 1` deliveries.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argh::FromArgs;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use smol::Timer;
use smol::net::TcpStream;

use crate::measure::{Percentiles, cpu_seconds, histogram, progress, report};
use crate::{now_ns, spawn};

/// The fan-out load over IRC.
#[derive(FromArgs)]
#[argh(subcommand, name = "irc")]
pub(crate) struct IrcArgs {
    /// the IRC server's address (default: 127.0.0.1:6667)
    #[argh(option, default = "SocketAddr::from(([127, 0, 0, 1], 6667))")]
    addr: SocketAddr,
    /// clients to connect (default: 200)
    #[argh(option, default = "200")]
    clients: usize,
    /// how many of them post (default: all)
    #[argh(option)]
    senders: Option<usize>,
    /// posts per second, all senders together (default: 1000)
    #[argh(option, default = "1000.0")]
    rate: f64,
    /// seconds of posting; fractions allowed (default: 10)
    #[argh(option, default = "10.0")]
    duration: f64,
    /// bytes of text per post (default: 100)
    #[argh(option, default = "100")]
    text_size: usize,
    /// connections opened per second (default: 200)
    #[argh(option, default = "200.0")]
    ramp: f64,
    /// seconds to wait after everyone joined before posting (default: 1)
    #[argh(option, default = "1.0")]
    settle: f64,
    /// the channel (default: #bench)
    #[argh(option, default = "String::from(\"#bench\")")]
    channel: String,
    /// the server's process id, to report its CPU time
    #[argh(option)]
    server_pid: Option<u32>,
    /// worker threads; 0 means one per core (default: 0)
    #[argh(option, default = "0")]
    pub(crate) threads: usize,
    /// print the summary as one JSON object
    #[argh(switch)]
    json: bool,
}

#[derive(Serialize)]
struct IrcSummary {
    clients: usize,
    senders: usize,
    target_rate: f64,
    posts: u64,
    deliveries: u64,
    expected: u64,
    lost: u64,
    duplicated: u64,
    deliveries_per_sec: f64,
    latency_ms: Percentiles,
    server_cpu_seconds: Option<f64>,
    server_cpu_us_per_delivery: Option<f64>,
    /// The load generator's own CPU time over the run, as a share of one core.
    loadgen_cpu_share: Option<f64>,
}

/// What the readers count, shared (latencies each reader keeps, merged at the end).
struct Tally {
    deliveries: AtomicU64,
    duplicated: AtomicU64,
}

pub(crate) async fn irc(args: IrcArgs) -> Result<(), String> {
    let senders = args.senders.unwrap_or(args.clients).min(args.clients);
    let tally = Arc::new(Tally {
        deliveries: AtomicU64::new(0),
        duplicated: AtomicU64::new(0),
    });
    // Closed when the run is over: the readers stop and give their latencies.
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let (writers, readers) = join_all(&args, &tally, &stopped).await?;
    Timer::after(Duration::from_secs_f64(args.settle)).await;

    let before = args.server_pid.and_then(cpu_seconds);
    let own_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let posts = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(senders as f64 / args.rate);
    let until = started + Duration::from_secs_f64(args.duration);
    let padding = "x".repeat(args.text_size.saturating_sub(40));
    let sending: Vec<_> = writers
        .iter()
        .take(senders)
        .enumerate()
        .map(|(i, writer)| {
            // Senders start spread over one interval, not all at once.
            let first = started + interval.mul_f64(i as f64 / senders as f64);
            let post = format!("PRIVMSG {} :{i}", args.channel);
            spawn(send(
                writer.clone(),
                post,
                padding.clone(),
                first,
                interval,
                until,
                posts.clone(),
            ))
        })
        .collect();
    for task in sending {
        task.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // What is on its way arrives within a second or two.
    let expected = posts.load(Ordering::Relaxed) * (args.clients as u64 - 1);
    let drain = Instant::now() + Duration::from_secs(5);
    while tally.deliveries.load(Ordering::Relaxed) < expected && Instant::now() < drain {
        Timer::after(Duration::from_millis(50)).await;
    }
    let after = args.server_pid.and_then(cpu_seconds);
    let own = own_before
        .zip(cpu_seconds(std::process::id()))
        .map(|(before, after)| (after - before) / started.elapsed().as_secs_f64());
    drop(stop);
    let deliveries = tally.deliveries.load(Ordering::Relaxed);
    let mut latency = histogram();
    for reader in readers {
        latency.add(reader.await).map_err(|err| err.to_string())?;
    }
    drop(writers);
    let cpu = before.zip(after).map(|(b, a)| a - b);
    let summary = IrcSummary {
        clients: args.clients,
        senders,
        target_rate: args.rate,
        posts: posts.load(Ordering::Relaxed),
        deliveries,
        expected,
        lost: expected.saturating_sub(deliveries - tally.duplicated.load(Ordering::Relaxed)),
        duplicated: tally.duplicated.load(Ordering::Relaxed),
        deliveries_per_sec: deliveries as f64 / elapsed,
        latency_ms: Percentiles::of(&latency),
        server_cpu_seconds: cpu,
        server_cpu_us_per_delivery: cpu.map(|cpu| cpu * 1e6 / deliveries.max(1) as f64),
        loadgen_cpu_share: own,
    };
    report(&summary, args.json, |s| {
        println!(
            "{} clients, {} senders: {} posts, {} of {} deliveries ({:.0}/s), {} lost, {} duplicated",
            s.clients,
            s.senders,
            s.posts,
            s.deliveries,
            s.expected,
            s.deliveries_per_sec,
            s.lost,
            s.duplicated
        );
        let l = &s.latency_ms;
        println!(
            "latency ms: p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
        if let Some(us) = s.server_cpu_us_per_delivery {
            println!("server CPU per delivery: {us:.2} µs");
        }
    })
}

/// Connects every client, registers it and joins it to the channel; returns their
/// sockets to write to, and their readers, which end (with their latencies) once
/// `stopped` closes.
async fn join_all(
    args: &IrcArgs,
    tally: &Arc<Tally>,
    stopped: &async_channel::Receiver<()>,
) -> Result<(Vec<TcpStream>, Vec<smol::Task<Histogram<u64>>>), String> {
    let bar = progress(args.clients, "joining");
    let (joined_tx, joined_rx) = async_channel::unbounded::<Result<(), String>>();
    let t0 = Instant::now();
    let mut writers = Vec::with_capacity(args.clients);
    let mut readers = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        Timer::at(t0 + Duration::from_secs_f64(i as f64 / args.ramp.max(1.0))).await;
        let stream = TcpStream::connect(args.addr)
            .await
            .map_err(|err| format!("client {i}: cannot connect to {}: {err}", args.addr))?;
        let _ = stream.set_nodelay(true);
        writers.push(stream.clone());
        let (tally, joined, bar, channel, stopped) = (
            tally.clone(),
            joined_tx.clone(),
            bar.clone(),
            args.channel.clone(),
            stopped.clone(),
        );
        let clients = args.clients;
        readers.push(spawn(async move {
            let mut latency = histogram();
            let reading = read(
                i,
                clients,
                stream,
                &channel,
                joined,
                &bar,
                &tally,
                &mut latency,
            );
            futures_lite::future::or(reading, async {
                let _ = stopped.recv().await;
            })
            .await;
            latency
        }));
    }
    for _ in 0..args.clients {
        joined_rx.recv().await.map_err(|err| err.to_string())??;
    }
    bar.finish_and_clear();
    Ok((writers, readers))
}

/// Sends `post`, numbered and with its send time, every `interval` from `first` until
/// `until`; counts what it sent in `posts`.
async fn send(
    mut writer: TcpStream,
    post: String,
    padding: String,
    first: Instant,
    interval: Duration,
    until: Instant,
    posts: Arc<AtomicU64>,
) {
    let (mut n, mut at) = (0u64, first);
    while at < until {
        Timer::at(at).await;
        let line = format!("{post} {n} {} {padding}\r\n", now_ns());
        if writer.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        n += 1;
        at += interval;
    }
    posts.fetch_add(n, Ordering::Relaxed);
}

/// Registers client `i`, joins `channel`, says so on `joined`, then reads every line
/// until the connection ends: each post from another sender counts once, and its latency
/// goes into `latency`.
///
/// Read as the protocol's fan-out clients read (`reading::read_messages`): in chunks, as
/// raw bytes, every line of a chunk arriving at its read, so that one core keeps up with
/// a million deliveries a second and the run measures the server, not the load generator.
#[allow(clippy::too_many_arguments, reason = "one client's part of the run")]
async fn read(
    i: usize,
    clients: usize,
    mut stream: TcpStream,
    channel: &str,
    joined: async_channel::Sender<Result<(), String>>,
    bar: &indicatif::ProgressBar,
    tally: &Tally,
    latency: &mut Histogram<u64>,
) {
    let mut writer = stream.clone();
    let hello = format!("NICK lg{i}\r\nUSER lg 0 * :load\r\n");
    if writer.write_all(hello.as_bytes()).await.is_err() {
        let _ = joined
            .send(Err(format!("client {i}: cannot register")))
            .await;
        return;
    }
    // The newest post number seen from each sender, to find repeats.
    let mut newest = vec![None::<u64>; clients];
    let mut in_channel = false;
    let post = format!(" PRIVMSG {channel} :");
    let post = memchr::memmem::Finder::new(post.as_bytes());
    let mut buf = vec![0u8; 2 * READ_CHUNK];
    let mut end = 0;
    loop {
        let now = now_ns();
        let mut lines = &buf[..end];
        let mut counted = 0;
        // What to send back (PONG, JOIN): written once the chunk is read.
        let mut answers = String::new();
        while let Some(at) = memchr::memchr(b'\n', lines) {
            let line = &lines[..at];
            lines = &lines[at + 1..];
            if let Some(at) = post.find(line) {
                let mut fields = line[at + post.needle().len()..].split(|byte| *byte == b' ');
                let mut number = || fields.next().and_then(parse_number);
                let (Some(sender), Some(n), Some(sent)) = (number(), number(), number()) else {
                    continue;
                };
                counted += 1;
                if let Some(seen) = newest.get_mut(sender as usize) {
                    if seen.is_some_and(|seen| n <= seen) {
                        tally.duplicated.fetch_add(1, Ordering::Relaxed);
                    }
                    *seen = Some(n);
                }
                let _ = latency.record(now.saturating_sub(sent).max(1_000));
                continue;
            }
            let line = String::from_utf8_lossy(line);
            let line = line.trim_end_matches('\r');
            let mut words = line.splitn(4, ' ');
            match (words.next(), words.next()) {
                (Some("PING"), token) => {
                    let _ = write!(answers, "PONG {}\r\n", token.unwrap_or(""));
                }
                // Registered (the end of the message of the day, or its absence).
                (_, Some("376" | "422")) if !in_channel => {
                    let _ = write!(answers, "JOIN {channel}\r\n");
                }
                (_, Some("366")) if !in_channel => {
                    in_channel = true;
                    bar.inc(1);
                    let _ = joined.send(Ok(())).await;
                }
                (_, Some("433" | "432" | "451" | "ERROR")) => {
                    let _ = joined.send(Err(format!("client {i}: {line}"))).await;
                    return;
                }
                _ => {}
            }
        }
        tally.deliveries.fetch_add(counted, Ordering::Relaxed);
        if !answers.is_empty() {
            let _ = writer.write_all(answers.as_bytes()).await;
        }
        // Keep the partial line, and room to read.
        let partial = lines.len();
        buf.copy_within(end - partial..end, 0);
        end = partial;
        if buf.len() - end < READ_CHUNK {
            buf.resize(buf.len() * 2, 0);
        }
        match stream.read(&mut buf[end..]).await {
            Ok(n) if n > 0 => end += n,
            _ => return,
        }
    }
}

/// Bytes a client reads at once, at least.
const READ_CHUNK: usize = 16 * 1024;

/// A decimal number written in ASCII digits.
fn parse_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, digit| {
        digit
            .is_ascii_digit()
            .then(|| n * 10 + u64::from(digit - b'0'))
    })
}
