//! `loadgen`: drives a chat server with many real connections and measures it.
//!
//! - `fanout`: N clients, S of them posting at a total rate for a duration; reports
//!   deliveries per second, lost and duplicated deliveries (must be 0), delivery latency
//!   percentiles (each post carries its send time), and with `--server-pid` the server's CPU
//!   time per delivery and its peak memory.
//! - `idle`: opens and logs in N connections, holds them, and reports the server's memory
//!   per connection.
//! - `history`: optionally fills the history with N posts, then times `history` pages of
//!   200 at random places in it (the server's store is behind its window of recent
//!   events for all but the newest).
//!
//! Connections ramp at `--ramp` per second. Past ~25,000 connections it spreads them over
//! source addresses 127.0.0.2, 127.0.0.3, ... (one address has only ~28,000 ephemeral
//! ports), and it raises its open-file limit itself. Run the server with `--max-per-ip 0`,
//! and with `--rate 0` unless flood control is part of the test.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use memchr::memmem;
use std::time::{Duration, Instant};

use argh::FromArgs;
use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{ClientFrame, Frame, FrameReader, ReadError, ServerFrame};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use futures_rustls::rustls;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use smol::net::TcpStream;
use smol::{Executor, Timer};

/// What a client reads from: a socket, or the reading half of a TLS connection.
type Reader = Box<dyn futures_lite::AsyncRead + Unpin + Send>;
/// What a client writes to.
type Writer = Box<dyn futures_lite::AsyncWrite + Unpin + Send>;

/// With `--tls CERT`: every connection is TLS, trusting that certificate.
static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Client settings that trust the certificate in the PEM file `cert`.
fn trust(cert: &std::path::Path) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
    {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let _ = TLS.set(Arc::new(config));
    Ok(())
}

/// Drive a chat server with many connections and measure it.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    mode: Mode,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Mode {
    Fanout(FanoutArgs),
    Idle(IdleArgs),
    History(HistoryArgs),
    Takeover(TakeoverArgs),
}

#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "takeover")]
/// Log N accounts in with their passwords, then reconnect all of them at once with their
/// tokens (as after a network change): times both, with the server's CPU time.
struct TakeoverArgs {
    /// server address (default: 127.0.0.1:60000)
    #[argh(option, default = "default_addr()")]
    addr: SocketAddr,
    /// accounts (registered first if new) (default: 1000)
    #[argh(option, default = "1000")]
    accounts: usize,
    /// the server's process id, to report its CPU time
    #[argh(option)]
    server_pid: Option<u32>,
    /// print the summary as one JSON object
    #[argh(switch)]
    json: bool,
}

#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "history")]
/// Fill the history, then time pages of it read back.
struct HistoryArgs {
    /// server address (default: 127.0.0.1:60000)
    #[argh(option, default = "default_addr()")]
    addr: SocketAddr,
    /// posts to add first, as fast as the server takes them (default: 0)
    #[argh(option, default = "0")]
    fill: usize,
    /// bytes of text per post (default: 100)
    #[argh(option, default = "100")]
    text_size: usize,
    /// history pages of 200 to read and time (default: 1000)
    #[argh(option, default = "1000")]
    pages: usize,
    /// print the summary as one JSON object
    #[argh(switch)]
    json: bool,
}

/// Common options.
#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "fanout")]
/// N clients, S of them posting at a total rate; measures delivery.
struct FanoutArgs {
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
    threads: usize,
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

#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "idle")]
/// Open and log in N connections, hold them, report server memory per connection.
struct IdleArgs {
    /// server address (default: 127.0.0.1:60000)
    #[argh(option, default = "default_addr()")]
    addr: SocketAddr,
    /// connections to open (default: 10000)
    #[argh(option, default = "10000")]
    clients: usize,
    /// connections opened per second (default: 500)
    #[argh(option, default = "500.0")]
    ramp: f64,
    /// seconds to hold them once all are in (default: 5)
    #[argh(option, default = "5.0")]
    hold: f64,
    /// the server's process id, to read its memory (required for the figure)
    #[argh(option)]
    server_pid: Option<u32>,
    /// connect over TLS, trusting the certificate in this PEM file
    #[argh(option)]
    tls: Option<std::path::PathBuf>,
    /// worker threads; 0 means one per core (default: 0)
    #[argh(option, default = "0")]
    threads: usize,
    /// print the summary as one JSON object
    #[argh(switch)]
    json: bool,
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], chat_shared::limits::DEFAULT_PORT))
}

/// How often an idle connection pings (the server's default idle timeout is 60 s).
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Connections per source address before moving to the next one.
const PER_SOURCE: usize = 25_000;

static EPOCH: OnceLock<Instant> = OnceLock::new();
/// The Unix time of [`EPOCH`] in nanoseconds, to compare with the server's `time`.
static EPOCH_UNIX_NS: OnceLock<u64> = OnceLock::new();
static EXECUTOR: OnceLock<Executor<'static>> = OnceLock::new();

/// Spawns on the loadgen's executor, whose threads also drive the reactor: a task woken by
/// a socket runs on the thread that saw the event, with no hop to another thread.
fn spawn<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> smol::Task<T> {
    EXECUTOR.get_or_init(Executor::new).spawn(fut)
}

/// Nanoseconds since the loadgen started: the clock posts carry.
fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn main() {
    let args: Args = argh::from_env();
    EPOCH.get_or_init(Instant::now);
    EPOCH_UNIX_NS.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let result = match args.mode {
        Mode::Fanout(a) => run(a.threads, fanout(a)),
        Mode::Idle(a) => run(a.threads, idle(a)),
        Mode::History(a) => run(0, history(a)),
        Mode::Takeover(a) => run(0, takeover(a)),
    };
    if let Err(err) = result {
        eprintln!("loadgen: {err}");
        std::process::exit(1);
    }
}

/// The executor's threads: `threads`, or one per core the process may run on when 0.
fn worker_threads(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    }
}

fn run<T: Send + 'static>(
    threads: usize,
    fut: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    // Every connection is a file descriptor.
    let _ = rlimit::increase_nofile_limit(1 << 20);
    let threads = worker_threads(threads);
    let ex: &'static Executor<'static> = EXECUTOR.get_or_init(Executor::new);
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    for _ in 1..threads {
        let stop = stop_rx.clone();
        std::thread::spawn(move || smol::block_on(ex.run(stop.recv())));
    }
    let out = smol::block_on(ex.run(async { ex.spawn(fut).await }));
    drop(stop_tx);
    out
}

/// Connects client `i`, from a source address of its own once one address is not enough
/// (over TLS with `--tls`).
async fn connect(i: usize, addr: SocketAddr, total: usize) -> Result<(Reader, Writer), String> {
    let source = (total > PER_SOURCE && addr.ip().is_loopback())
        .then(|| Ipv4Addr::new(127, 0, 0, 2 + (i / PER_SOURCE) as u8));
    connect_from(source, addr).await
}

/// Connects from `source` (any address of this machine when `None`).
async fn connect_from(
    source: Option<Ipv4Addr>,
    addr: SocketAddr,
) -> Result<(Reader, Writer), String> {
    let stream = if let Some(source) = source {
        let source = SocketAddr::new(IpAddr::V4(source), 0);
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .map_err(|e| e.to_string())?;
        socket
            .bind(&source.into())
            .map_err(|e| format!("bind {source}: {e}"))?;
        // Loopback connects complete at once; blocking here costs microseconds.
        socket.connect(&addr.into()).map_err(|e| e.to_string())?;
        let std: std::net::TcpStream = socket.into();
        TcpStream::try_from(std).map_err(|e| e.to_string())?
    } else {
        TcpStream::connect(addr).await.map_err(|e| e.to_string())?
    };
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let Some(tls) = TLS.get() else {
        return Ok((Box::new(stream.clone()), Box::new(stream)));
    };
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = futures_rustls::TlsConnector::from(tls.clone())
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (reader, writer) = futures_lite::io::split(tls);
    Ok((Box::new(reader), Box::new(writer)))
}

/// The room of client `i` when the clients are spread over `rooms` rooms.
fn room_of(i: usize, rooms: usize) -> Option<String> {
    (rooms > 0).then(|| format!("lg-room-{}", i % rooms))
}

/// Connects and logs in; with `room`, joins it and leaves the default room. Returns the
/// stream and a reader positioned after the welcome (and the answers to that).
async fn login(
    i: usize,
    addr: SocketAddr,
    total: usize,
    room: Option<String>,
) -> Result<(Writer, FrameReader<Reader, ServerFrame>), String> {
    let (reader, mut stream) = connect(i, addr, total).await?;
    let hello = Frame::encode(&ClientFrame::Hello {
        password: None,
        register: false,
        protocol: chat_shared::PROTOCOL_VERSION,
        name: format!("lg{i}"),
        since: None,
        epoch: None,
        token: None,
    });
    stream
        .write_all(hello.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let (answer, mut reader) = first_line(reader)
        .await
        .map_err(|e| format!("client {i}: no welcome: {e}"))?;
    // The welcome lists everyone online: decoding it whole, name by name, was most of the
    // load generator's work in a login storm. Only the rooms are read, and only if needed.
    if !answer.starts_with(b"{\"type\":\"welcome\"") {
        return Err(
            match chat_shared::decode_line::<ServerFrame>(answer.trim_ascii_end()) {
                Ok(ServerFrame::Rejected { code, message, .. }) => {
                    format!("client {i} rejected: {code:?}: {message}")
                }
                other => format!("client {i}: no welcome: {other:?}"),
            },
        );
    }
    join_quiet_rooms(i, &mut stream, &mut reader).await?;
    let default_room = if room.is_some() {
        #[derive(serde::Deserialize)]
        struct Rooms {
            rooms: Vec<String>,
        }
        serde_json::from_slice::<Rooms>(&answer)
            .map_err(|e| format!("client {i}: bad welcome: {e}"))?
            .rooms
            .into_iter()
            .next()
    } else {
        None
    };
    let (Some(room), Some(default_room)) = (room, default_room) else {
        return Ok((stream, reader));
    };
    let mut frames = Frame::encode(&ClientFrame::Join { room, since: None })
        .as_bytes()
        .to_vec();
    frames.extend_from_slice(
        Frame::encode(&ClientFrame::Part {
            room: default_room.clone(),
        })
        .as_bytes(),
    );
    stream.write_all(&frames).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let (mut joined, mut parted) = (false, false);
    let me = format!("lg{i}");
    while !(joined && parted) {
        match reader.next().await {
            Some(Ok(ServerFrame::Room { .. })) => joined = true,
            Some(Ok(ServerFrame::Left {
                name,
                room: Some(r),
                ..
            })) if name == me && r == default_room => {
                parted = true;
            }
            Some(Ok(ServerFrame::Error { code, message, .. })) => {
                return Err(format!("client {i}: {code:?}: {message}"));
            }
            Some(Ok(_) | Err(ReadError::Decode(_))) => {}
            other => return Err(format!("client {i}: no answer to join: {other:?}")),
        }
    }
    Ok((stream, reader))
}

/// The first line the server sends, raw, and a frame reader for what follows it.
async fn first_line(
    mut reader: Reader,
) -> Result<(Vec<u8>, FrameReader<Reader, ServerFrame>), String> {
    let mut line = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    loop {
        if let Some(at) = memchr::memchr(b'\n', &line) {
            let rest = line.split_off(at + 1);
            return Ok((
                line,
                FrameReader::from_parts(reader, MAX_SERVER_FRAME, rest),
            ));
        }
        if line.len() > MAX_SERVER_FRAME {
            return Err("first frame too long".into());
        }
        match reader.read(&mut chunk).await {
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// With `--quiet-rooms K`: how many rooms besides its own each client is in.
static QUIET_ROOMS: OnceLock<usize> = OnceLock::new();

/// Quiet rooms there are, for `--quiet-rooms`.
const QUIET_ROOM_COUNT: usize = 100;

/// Joins client `i`'s quiet rooms (`--quiet-rooms`): K of 100 rooms where nobody posts,
/// so each has about clients × K / 100 members; waits for every answer.
async fn join_quiet_rooms(
    i: usize,
    stream: &mut Writer,
    reader: &mut FrameReader<Reader, ServerFrame>,
) -> Result<(), String> {
    let k = QUIET_ROOMS.get().copied().unwrap_or(0);
    if k == 0 {
        return Ok(());
    }
    let mut frames = Vec::new();
    for j in 0..k {
        // Distinct for j < 10: i, i + 10, i + 20, ... modulo 100.
        let room = format!(
            "lg-quiet-{}",
            (i + j * (QUIET_ROOM_COUNT / k.max(1))) % QUIET_ROOM_COUNT
        );
        chat_shared::codec::encode_into(&ClientFrame::Join { room, since: None }, &mut frames);
    }
    stream.write_all(&frames).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut answered = 0;
    while answered < k {
        match reader.next().await {
            Some(Ok(ServerFrame::Room { .. })) => answered += 1,
            Some(Ok(ServerFrame::Error { code, message, .. })) => {
                return Err(format!("client {i}: {code:?}: {message}"));
            }
            Some(Ok(_) | Err(ReadError::Decode(_))) => {}
            other => return Err(format!("client {i}: no answer to a join: {other:?}")),
        }
    }
    Ok(())
}

/// Opens `n` connections at `ramp` per second, named from `first` on. Each logs in and then
/// goes straight on with `job` in a task of its own (so nobody sits unread while the others
/// join). Returns once every login is done, with the tasks.
#[allow(clippy::too_many_arguments, reason = "a ramp's settings")]
async fn ramp_up<T, F, Fut>(
    first: usize,
    n: usize,
    ramp: f64,
    addrs: &[SocketAddr],
    rooms: usize,
    bar: &ProgressBar,
    job: F,
) -> Result<Vec<smol::Task<T>>, String>
where
    T: Send + 'static,
    F: Fn(usize, Writer, FrameReader<Reader, ServerFrame>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let (logged_in, logins) = async_channel::unbounded::<Result<(), String>>();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        Timer::at(t0 + Duration::from_secs_f64(i as f64 / ramp.max(1.0))).await;
        let (job, logged_in, bar) = (job.clone(), logged_in.clone(), bar.clone());
        let addr = addrs[(first + i) % addrs.len()];
        tasks.push(spawn(async move {
            match login(first + i, addr, first + n, room_of(first + i, rooms)).await {
                Ok((stream, reader)) => {
                    bar.inc(1);
                    let _ = logged_in.send(Ok(())).await;
                    Some(job(first + i, stream, reader).await)
                }
                Err(err) => {
                    let _ = logged_in.send(Err(err)).await;
                    None
                }
            }
        }));
    }
    for _ in 0..n {
        logins.recv().await.map_err(|e| e.to_string())??;
    }
    Ok(tasks
        .into_iter()
        .map(|task| spawn(async move { task.await.expect("logged in") }))
        .collect())
}

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar =
        ProgressBar::with_draw_target(Some(len as u64), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // The kernel reports in clock ticks, 100 a second on Linux.
    Some((utime + stime) / 100.0)
}

/// CPU seconds spent between two readings of the same processes.
fn spent(before: Vec<Option<f64>>, after: Vec<Option<f64>>) -> Vec<Option<f64>> {
    before
        .into_iter()
        .zip(after)
        .map(|(a, b)| a.zip(b).map(|(a, b)| b - a))
        .collect()
}

/// A `VmRSS`/`VmHWM` style field of /proc/PID/status, in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The latencies every receiving client records into: one set for the whole load
/// generator, locked once per read, so that recording stays in cache (a set per client
/// made the load generator miss it on nearly every delivery).
struct Latencies {
    latency: Histogram<u64>,
    /// From the post's send time to the server's `time` on it (when the room took it).
    to_room: Histogram<u64>,
    /// From the server's `time` to the delivery.
    from_room: Histogram<u64>,
}

impl Latencies {
    fn new() -> Self {
        Self {
            latency: histogram(),
            to_room: histogram(),
            from_room: histogram(),
        }
    }
}

/// What each receiving client counted.
struct Received {
    seen: Vec<u64>,
    unique: u64,
    duplicates: u64,
    rate_limited: u64,
}

impl Received {
    fn new() -> Self {
        Self {
            seen: Vec::new(),
            unique: 0,
            duplicates: 0,
            rate_limited: 0,
        }
    }

    /// A `message` whose text starts with `p<post> <sent> ` (see [`scan_line`]).
    fn message(
        &mut self,
        latencies: &mut Latencies,
        post: u64,
        sent: u64,
        fields: &[u8],
        now: u64,
    ) {
        let post = post as usize;
        let (word, bit) = (post / 64, post % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        let _ = latencies
            .latency
            .record(now.saturating_sub(sent).max(1_000));
        // One post in eight is split in two at the server's stamp: plenty for percentiles,
        // and it keeps the load generator's own work small.
        if !post.is_multiple_of(8) {
            return;
        }
        if let (Some(time), Some(epoch)) = (server_time(fields), EPOCH_UNIX_NS.get()) {
            // The server's clock counts whole milliseconds: each part is ±1 ms.
            let time = (time * 1_000_000).saturating_sub(*epoch);
            let _ = latencies
                .to_room
                .record(time.saturating_sub(sent).max(1_000));
            let _ = latencies
                .from_room
                .record(now.saturating_sub(time).max(1_000));
        }
    }
}

/// The server's `time` (milliseconds) among a `message`'s fields.
fn server_time(fields: &[u8]) -> Option<u64> {
    static TIME: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("\"time\":"));
    let at = TIME.find(fields)? + TIME.needle().len();
    let (time, _) = leading_number(&fields[at..])?;
    Some(time)
}

/// The decimal number at the start of `bytes`, and what follows it.
fn leading_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    if end == 0 || end > 19 {
        return None;
    }
    let value = bytes[..end]
        .iter()
        .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
    Some((value, &bytes[end..]))
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 120_000_000_000, 3).expect("valid histogram bounds")
}

#[derive(Serialize)]
struct FanoutSummary {
    clients: usize,
    rooms: usize,
    senders: usize,
    stalled: usize,
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

/// What the wrong-password storm got back.
#[derive(Serialize, Default, Debug, Clone)]
struct StormSummary {
    sent: usize,
    /// Checked and found wrong: each cost the server a hash.
    bad_password: usize,
    /// Turned away unchecked because the hashing queue was full.
    unavailable: usize,
    /// Refused unchecked by the throttle.
    too_many_attempts: usize,
    other: usize,
}

fn account_name(k: usize) -> String {
    format!("lg-acct-{k}")
}

/// A source address for storm connection `j`: 20 to an address, as the throttle allows.
fn storm_source(j: usize) -> Ipv4Addr {
    let a = j / 20;
    Ipv4Addr::new(127, 1, (a / 250) as u8, 1 + (a % 250) as u8)
}

/// Sends one `hello` from `source` and returns the code of the answer (`welcome` for a
/// welcome).
async fn one_hello(
    source: Option<Ipv4Addr>,
    addr: SocketAddr,
    hello: &ClientFrame,
) -> Result<String, String> {
    match say_hello(source, addr, hello).await?.2 {
        ServerFrame::Welcome { .. } => Ok("welcome".into()),
        ServerFrame::Rejected { code, .. } => Ok(format!("{code:?}")),
        other => Err(format!("no answer to hello: {other:?}")),
    }
}

/// Connects from `source`, sends `hello`, and returns the connection with the first frame
/// the server answered.
async fn say_hello(
    source: Option<Ipv4Addr>,
    addr: SocketAddr,
    hello: &ClientFrame,
) -> Result<(Writer, FrameReader<Reader, ServerFrame>, ServerFrame), String> {
    let (reader, mut writer) = connect_from(source, addr).await?;
    writer
        .write_all(Frame::encode(hello).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    writer.flush().await.map_err(|e| e.to_string())?;
    let mut reader = FrameReader::<_, ServerFrame>::new(reader, MAX_SERVER_FRAME);
    match reader.next().await {
        Some(Ok(frame)) => Ok((writer, reader, frame)),
        other => Err(format!("no answer to hello: {other:?}")),
    }
}

fn account_hello(name: String, password: String, register: bool) -> ClientFrame {
    ClientFrame::Hello {
        password: Some(chat_shared::Password::new(password)),
        register,
        protocol: chat_shared::PROTOCOL_VERSION,
        name,
        since: None,
        epoch: None,
        token: None,
    }
}

/// Registers the accounts the storm guesses at (existing ones are fine), eight at a time.
async fn register_accounts(args: &FanoutArgs) -> Result<(), String> {
    let bar = progress(args.storm_accounts, "registering");
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (next, bar, addr, n) = (next.clone(), bar.clone(), args.addr, args.storm_accounts);
            spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if k >= n {
                        return Ok::<(), String>(());
                    }
                    let hello =
                        account_hello(account_name(k), format!("loadgen password {k}"), true);
                    loop {
                        match one_hello(None, addr, &hello).await?.as_str() {
                            "welcome" | "NameRegistered" => break,
                            // The hashing queue was full: a moment later.
                            "Unavailable" => Timer::after(Duration::from_millis(100)).await,
                            other => return Err(format!("registering {k}: {other}")),
                        };
                    }
                    bar.inc(1);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Sends `--storm` wrong-password logins, evenly over the posting time, and tallies the
/// answers.
async fn storm(args: FanoutArgs) -> Result<StormSummary, String> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.storm)
        .map(|j| {
            let at =
                started + Duration::from_secs_f64(args.duration * j as f64 / args.storm as f64);
            let hello = account_hello(
                account_name(j % args.storm_accounts.max(1)),
                format!("a wrong guess {j}"),
                false,
            );
            let addr = args.addr;
            spawn(async move {
                Timer::at(at).await;
                one_hello(Some(storm_source(j)), addr, &hello).await
            })
        })
        .collect();
    let mut summary = StormSummary::default();
    for task in tasks {
        summary.sent += 1;
        match task.await?.as_str() {
            "BadPassword" => summary.bad_password += 1,
            "Unavailable" => summary.unavailable += 1,
            "TooManyAttempts" => summary.too_many_attempts += 1,
            _ => summary.other += 1,
        }
    }
    Ok(summary)
}

#[derive(Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Percentiles {
    /// In milliseconds, from a histogram of nanoseconds.
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        Self {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: h.max() as f64 / 1e6,
        }
    }
}

/// What a fan-out client does once logged in: read until told to stop, measuring.
///
/// The stream is read as raw lines: a `message` is known by its first bytes and only the
/// post number and send time at the start of its text are parsed; every line read at
/// once counts as arrived at that read. One core can then take in a million deliveries a
/// second, so the load generator measures the server instead of its own decoding.
async fn read_messages(
    reader: FrameReader<Reader, ServerFrame>,
    stopped: async_channel::Receiver<()>,
    delivered: Arc<AtomicU64>,
    latencies: Arc<Mutex<Latencies>>,
) -> Received {
    let (mut stream, mut buf) = reader.into_parts();
    let mut got = Received::new();
    let mut end = buf.len();
    buf.resize(end.max(READ_CHUNK) + READ_CHUNK, 0);
    loop {
        let now = now_ns();
        let mut lines = &buf[..end];
        let mut messages = 0;
        {
            let mut latencies = latencies.lock().expect("no reader panics");
            while let Some(at) = memchr::memchr(b'\n', lines) {
                match scan_line(&lines[..at]) {
                    Scanned::Message { post, sent, fields } => {
                        got.message(&mut latencies, post, sent, fields, now);
                        messages += 1;
                    }
                    Scanned::RateLimited => got.rate_limited += 1,
                    Scanned::Other => {}
                }
                lines = &lines[at + 1..];
            }
        }
        delivered.fetch_add(messages, Ordering::Relaxed);
        // Keep the partial line, and room for a long one (a `welcome` or `room` answer).
        let partial = lines.len();
        buf.copy_within(end - partial..end, 0);
        end = partial;
        if buf.len() - end < READ_CHUNK {
            buf.resize(buf.len() * 2, 0);
        }
        // A closed channel stops the readers: no timer per read, timers cost the reactor.
        let read = future::or(async { Some(stream.read(&mut buf[end..]).await) }, async {
            let _ = stopped.recv().await;
            None
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => end += n,
            _ => return got,
        }
    }
}

/// Bytes a fan-out client reads at once, at least.
const READ_CHUNK: usize = 16 * 1024;

/// What a line from the server is, as far as the load generator cares.
enum Scanned<'a> {
    /// A `message` whose text starts `p<post> <sent> `, and the fields before its text
    /// (where the server's `time` is).
    Message {
        post: u64,
        sent: u64,
        fields: &'a [u8],
    },
    /// An `error` `rate_limited`.
    RateLimited,
    Other,
}

fn scan_line(line: &[u8]) -> Scanned<'_> {
    const MESSAGE: &[u8] = b"{\"type\":\"message\"";
    const ERROR: &[u8] = b"{\"type\":\"error\"";
    static TEXT: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("\"text\":\"p"));
    static RATE_LIMITED: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("\"rate_limited\""));
    if line.starts_with(MESSAGE) {
        // "p<post> <sent> ...": digits, a space, digits, a space; no escapes in there.
        let Some(at) = TEXT.find(line) else {
            return Scanned::Other;
        };
        let text = &line[at + TEXT.needle().len()..];
        let Some((post, rest)) = leading_number(text) else {
            return Scanned::Other;
        };
        let Some((sent, _)) = rest.strip_prefix(b" ").and_then(leading_number) else {
            return Scanned::Other;
        };
        return Scanned::Message {
            post,
            sent,
            fields: &line[..at],
        };
    }
    if line.starts_with(ERROR) && RATE_LIMITED.find(line).is_some() {
        return Scanned::RateLimited;
    }
    Scanned::Other
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
    let (rate, rooms) = (args.rate, args.rooms);
    let posting: Vec<_> = writers
        .into_iter()
        .take(args.senders)
        .enumerate()
        .map(|(s, mut stream)| {
            let (sent, pad, bar) = (sent.clone(), pad.clone(), bar.clone());
            let room = room_of(s, rooms);
            spawn(async move {
                // Post n is due at n / rate, so the senders take turns instead of firing
                // together.
                let mut post = s as u64;
                while post < total {
                    Timer::at(started + Duration::from_secs_f64(post as f64 / rate)).await;
                    let frame = Frame::encode(&ClientFrame::Say {
                        to: None,
                        me: false,
                        room: room.clone(),
                        text: format!("p{post} {} {pad}", now_ns()),
                        id: None,
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
    if let Some(cert) = &args.tls {
        trust(cert)?;
    }
    if args.storm > 0 {
        register_accounts(args).await?;
    }
    Ok(())
}

async fn fanout(args: FanoutArgs) -> Result<(), String> {
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
    let storm = (args.storm > 0).then(|| spawn(storm(args.clone())));
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
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        );
    } else {
        print_fanout(&summary);
    }
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

#[derive(Serialize)]
struct IdleSummary {
    clients: usize,
    server_rss_before_mib: Option<f64>,
    /// As soon as the last connection is logged in.
    server_rss_after_ramp_mib: Option<f64>,
    /// After the hold.
    server_rss_after_mib: Option<f64>,
    server_bytes_per_connection_after_ramp: Option<f64>,
    server_bytes_per_connection: Option<f64>,
}

async fn idle(args: IdleArgs) -> Result<(), String> {
    if let Some(cert) = &args.tls {
        trust(cert)?;
    }
    let before = args.server_pid.and_then(|p| status_bytes(p, "VmRSS:"));
    let bar = progress(args.clients, "connecting");
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let tasks = ramp_up(
        0,
        args.clients,
        args.ramp,
        &[args.addr],
        0,
        &bar,
        move |_, stream, reader| {
            let stopped = stopped.clone();
            // Read and drop everything (the joins of everyone after us), without decoding,
            // and ping now and then as a live client would, or the server closes us as
            // idle. True if the connection was still open when told to stop.
            async move {
                let (mut reading, _) = reader.into_parts();
                let mut writing = stream;
                // Enough for a batch of joins; 10,000 of 64 KiB were the load generator's
                // own memory trouble.
                let mut buf = vec![0u8; 16 * 1024];
                let read = async {
                    while let Ok(1..) = reading.read(&mut buf).await {}
                    false
                };
                let keep_alive = async {
                    let ping = Frame::encode(&ClientFrame::Ping { token: None });
                    loop {
                        Timer::after(KEEP_ALIVE).await;
                        if writing.write_all(ping.as_bytes()).await.is_err()
                            || writing.flush().await.is_err()
                        {
                            return false;
                        }
                    }
                };
                future::or(future::or(read, keep_alive), async {
                    let _ = stopped.recv().await;
                    true
                })
                .await
            }
        },
    )
    .await?;
    bar.finish_and_clear();
    let after_ramp = args.server_pid.and_then(|p| status_bytes(p, "VmRSS:"));
    Timer::after(Duration::from_secs_f64(args.hold)).await;
    let after = args.server_pid.and_then(|p| status_bytes(p, "VmRSS:"));
    drop(stop);
    let mut alive = 0;
    for task in tasks {
        alive += usize::from(task.await);
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let per_connection = |after: Option<u64>| {
        before
            .zip(after)
            .map(|(b, a)| (a.saturating_sub(b)) as f64 / args.clients as f64)
    };
    let summary = IdleSummary {
        clients: alive,
        server_rss_before_mib: before.map(mib),
        server_rss_after_ramp_mib: after_ramp.map(mib),
        server_rss_after_mib: after.map(mib),
        server_bytes_per_connection_after_ramp: per_connection(after_ramp),
        server_bytes_per_connection: per_connection(after),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        );
    } else {
        println!("connections held      {}", summary.clients);
        if let (Some(b), Some(a), Some(per)) = (
            summary.server_rss_before_mib,
            summary.server_rss_after_mib,
            summary.server_bytes_per_connection,
        ) {
            println!("server rss            {b:.1} MiB before, {a:.1} MiB with them");
            println!("server memory         {per:.0} bytes per connection");
        }
        if let (Some(a), Some(per)) = (
            summary.server_rss_after_ramp_mib,
            summary.server_bytes_per_connection_after_ramp,
        ) {
            println!("right after the ramp  {a:.1} MiB, {per:.0} bytes per connection");
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct HistorySummary {
    filled: usize,
    fill_per_s: Option<f64>,
    newest: u64,
    pages: usize,
    events_read: u64,
    page_latency_ms: Percentiles,
}

/// Fills the history with `--fill` posts, then reads `--pages` pages of 200 at random
/// places, one after the other, timing each round trip.
async fn history(args: HistoryArgs) -> Result<(), String> {
    let (mut stream, mut reader) = login(usize::MAX / 2, args.addr, 1, None).await?;
    let fill_per_s = if args.fill > 0 {
        Some(fill(&mut stream, &mut reader, &args).await?)
    } else {
        None
    };
    // Where the history ends now.
    let ask = |before: Option<u64>| {
        Frame::encode(&ClientFrame::History {
            with: None,
            room: None,
            before,
            after: None,
            limit: Some(200),
        })
    };
    stream
        .write_all(ask(None).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let newest = loop {
        match reader.next().await {
            Some(Ok(ServerFrame::HistoryEnd {
                before: Some(b), ..
            })) => break b - 1,
            Some(Ok(_)) => {}
            other => return Err(format!("no history_end: {other:?}")),
        }
    };
    let mut latency =
        Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut events_read = 0;
    for _ in 0..args.pages {
        let before = rng.u64(1..=newest.max(1)) + 1;
        let t0 = Instant::now();
        stream
            .write_all(ask(Some(before)).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match reader.next().await {
                Some(Ok(ServerFrame::HistoryEnd { count, .. })) => {
                    events_read += u64::from(count);
                    break;
                }
                Some(Ok(_)) => {}
                other => return Err(format!("no history_end: {other:?}")),
            }
        }
        latency.saturating_record(t0.elapsed().as_nanos() as u64);
    }
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1e6;
    let summary = HistorySummary {
        filled: args.fill,
        fill_per_s,
        newest,
        pages: args.pages,
        events_read,
        page_latency_ms: Percentiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: latency.max() as f64 / 1e6,
        },
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        );
    } else {
        if let Some(rate) = summary.fill_per_s {
            println!(
                "filled                {} posts, {rate:.0} a second",
                summary.filled
            );
        }
        println!("history holds         {} events", summary.newest);
        let p = &summary.page_latency_ms;
        println!(
            "page of 200           p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} pages, {} events)",
            p.p50, p.p99, p.max, summary.pages, summary.events_read
        );
    }
    Ok(())
}

/// Posts `--fill` messages, written while their echoes are read; returns posts a second.
async fn fill(
    writer: &mut Writer,
    reader: &mut FrameReader<Reader, ServerFrame>,
    args: &HistoryArgs,
) -> Result<f64, String> {
    let text = "x".repeat(args.text_size);
    let bar = progress(args.fill, "filling");
    let t0 = Instant::now();
    let fill = args.fill;
    // Write everything while reading the echoes, so neither side waits for the other.
    let writing = async move {
        let mut buf = Vec::with_capacity(256 * 1024);
        for i in 0..fill {
            chat_shared::codec::encode_into(
                &ClientFrame::Say {
                    to: None,
                    me: false,
                    room: None,
                    text: text.clone(),
                    id: Some(format!("fill-{i}")),
                },
                &mut buf,
            );
            if buf.len() > 200 * 1024 || i + 1 == fill {
                writer.write_all(&buf).await.map_err(|e| e.to_string())?;
                writer.flush().await.map_err(|e| e.to_string())?;
                buf.clear();
            }
        }
        Ok::<(), String>(())
    };
    let reading = async {
        let mut echoed = 0;
        while echoed < args.fill {
            match reader.next().await {
                Some(Ok(ServerFrame::Message { id: Some(id), .. })) if id.starts_with("fill-") => {
                    echoed += 1;
                    if echoed % 1000 == 0 {
                        bar.set_position(echoed as u64);
                    }
                }
                Some(Ok(ServerFrame::Error { code, message, .. })) => {
                    return Err(format!("the server refused a post: {code:?}: {message}"));
                }
                Some(Ok(_)) => {}
                other => return Err(format!("connection ended while filling: {other:?}")),
            }
        }
        Ok(())
    };
    let (written, read) = future::zip(writing, reading).await;
    written?;
    read?;
    bar.finish_and_clear();
    Ok(args.fill as f64 / t0.elapsed().as_secs_f64())
}

#[derive(Serialize)]
struct TakeoverSummary {
    accounts: usize,
    password_logins_s: f64,
    password_server_cpu_s: Option<f64>,
    token_logins_s: f64,
    token_server_cpu_s: Option<f64>,
}

/// Logs `hello` in and returns its token and the connection (kept open, read in the
/// background so the server never waits on it).
async fn logged_in(
    addr: SocketAddr,
    hello: &ClientFrame,
) -> Result<(String, smol::Task<()>), String> {
    match say_hello(None, addr, hello).await? {
        (writer, mut reader, ServerFrame::Welcome { token, .. }) => {
            let drain = spawn(async move {
                let _writer = writer;
                while reader.next().await.is_some() {}
            });
            Ok((token, drain))
        }
        (_, _, other) => Err(format!("no welcome: {other:?}")),
    }
}

/// Fan-out settings that only register `accounts` accounts (for `takeover`).
fn accounts_only(addr: SocketAddr, accounts: usize) -> FanoutArgs {
    FanoutArgs {
        addr,
        clients: 1,
        senders: 1,
        rate: 1.0,
        duration: 1.0,
        text_size: 1,
        stalled: 0,
        rooms: 0,
        ramp: 1.0,
        settle: 0.0,
        server_pid: None,
        threads: 0,
        storm: 0,
        storm_accounts: accounts,
        tls: None,
        quiet_rooms: 0,
        node: Vec::new(),
        node_pid: Vec::new(),
        redis_pid: None,
        json: false,
    }
}

async fn takeover(args: TakeoverArgs) -> Result<(), String> {
    let n = args.accounts;
    let fanout = accounts_only(args.addr, n);
    register_accounts(&fanout).await?;
    // Password logins, eight at a time (the hashing queue holds a few dozen).
    let cpu = || args.server_pid.and_then(cpu_seconds);
    let (cpu0, t0) = (cpu(), Instant::now());
    let mut sessions = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let logins: Vec<_> = chunk
            .iter()
            .map(|k| {
                let hello = account_hello(account_name(*k), format!("loadgen password {k}"), false);
                let addr = args.addr;
                spawn(async move {
                    loop {
                        match logged_in(addr, &hello).await {
                            Ok(session) => return Ok::<_, String>(session),
                            Err(err) if err.contains("Unavailable") => {
                                Timer::after(Duration::from_millis(50)).await;
                            }
                            Err(err) => return Err(err),
                        }
                    }
                })
            })
            .collect();
        for login in logins {
            sessions.push(login.await?);
        }
    }
    let (password_s, password_cpu) = (
        t0.elapsed().as_secs_f64(),
        cpu().zip(cpu0).map(|(b, a)| b - a),
    );
    // Every one comes back at once with its token.
    let (cpu0, t0) = (cpu(), Instant::now());
    let again: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(k, (token, _))| {
            let hello = ClientFrame::Hello {
                password: None,
                register: false,
                protocol: chat_shared::PROTOCOL_VERSION,
                name: account_name(k),
                since: None,
                epoch: None,
                token: Some(token.clone()),
            };
            let addr = args.addr;
            spawn(async move { logged_in(addr, &hello).await })
        })
        .collect();
    let mut kept = Vec::with_capacity(n);
    for login in again {
        kept.push(login.await?);
    }
    let summary = TakeoverSummary {
        accounts: n,
        password_logins_s: password_s,
        password_server_cpu_s: password_cpu,
        token_logins_s: t0.elapsed().as_secs_f64(),
        token_server_cpu_s: cpu().zip(cpu0).map(|(b, a)| b - a),
    };
    drop(kept);
    drop(sessions);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{n} password logins in {:.2} s (server cpu {:?} s); {n} token takeovers in {:.3} s (server cpu {:?} s)",
            summary.password_logins_s,
            summary.password_server_cpu_s,
            summary.token_logins_s,
            summary.token_server_cpu_s
        );
    }
    Ok(())
}
