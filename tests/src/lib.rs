//! Test support for the end-to-end suites and the load generator: a headless protocol
//! client with timeouts, and ways to start the real server (in-process on port 0, or as a
//! process that can be killed and restarted).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_rustls::rustls;

use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{
    ClientFrame, Frame, FrameReader, PROTOCOL_VERSION, ReadError, Reader, ServerFrame, Writer,
};
use futures_lite::{AsyncWriteExt, future};
use smol::Timer;
use smol::net::TcpStream;

pub mod irc;

pub use chat_server::{Config, Running, Storage};

/// How long a test waits for any one thing before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Server settings for tests: port 0, two threads, the history in memory only
/// (`--memory`), and the flag defaults otherwise. Every test states the flags it changes
/// from these.
pub fn test_config() -> Config {
    Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 2,
        storage: Storage::Memory,
        ..Config::default()
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory whose name starts with `name`.
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chat-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Its path as a command-line argument.
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server under test, in-process: one server, or the nodes of a cluster that share a
/// Redis of their own, each client going to the next node in turn.
pub struct Deployment {
    nodes: Vec<Running>,
    next: std::sync::atomic::AtomicUsize,
    /// The Redis of the nodes (kept running as long as they are).
    pub redis: Option<Redis>,
    durable: bool,
}

impl Deployment {
    /// Where the next client connects: the nodes in turn.
    pub fn addr(&self) -> SocketAddr {
        let next = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.nodes[next % self.nodes.len()].addr()
    }

    /// Every node's IRC port (`Config::irc` must be set).
    pub fn irc_addrs(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .map(|node| node.irc_addr().expect("the IRC port is on"))
            .collect()
    }

    /// Every node's IRC port over TLS (`Config::irc_tls` must be set).
    pub fn irc_tls_addrs(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .map(|node| node.irc_tls_addr().expect("the IRC TLS port is on"))
            .collect()
    }

    /// Every node's address.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Running::addr).collect()
    }

    /// Whether the history is all kept (a store, or a cluster's Redis), not only the
    /// window the server holds in memory (`--memory`).
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// Shuts every node down as SIGTERM would, and waits until they have.
    pub fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
    }
}

/// Starts the server in-process with `config`.
pub fn start(config: Config) -> Deployment {
    let durable = !matches!(config.storage, Storage::Memory);
    Deployment {
        nodes: vec![Running::start(config).expect("server starts")],
        next: 0.into(),
        redis: None,
        durable,
    }
}

/// Starts `nodes` nodes of a cluster in-process: `config`, with everything kept in a Redis
/// of their own (`--redis`) instead of `config.storage`.
pub fn start_cluster(config: Config, nodes: usize) -> Deployment {
    let redis = Redis::start();
    let config = Config {
        storage: Storage::Redis(redis.url()),
        ..config
    };
    let nodes = (0..nodes)
        .map(|_| Running::start(config.clone()).expect("node starts"))
        .collect();
    Deployment {
        nodes,
        next: 0.into(),
        redis: Some(redis),
        durable: true,
    }
}

/// A Redis server of the tests' own: a free port, a temporary directory, and the
/// persistence the cluster's guarantees need (AOF, `appendfsync always`). Killed when
/// dropped.
pub struct Redis {
    child: Option<std::process::Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: TempDir,
}

impl Redis {
    /// Starts `redis-server` (installed by `.ci/deps`) and waits until it accepts
    /// connections.
    pub fn start() -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir: TempDir::new("redis"),
        };
        redis.run();
        redis
    }

    fn run(&mut self) {
        use std::io::BufRead;
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--dir", self.dir.arg(), "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            // Its files are written uncompressed, so that a test can read them for a text.
            .args(["--rdbcompression", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (installed by .ci/deps)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("redis-server says it is ready")
                .expect("stdout readable");
            if line.contains("Ready to accept connections") {
                break;
            }
        }
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// Its directory, where its append-only file is.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs `redis-cli` against it with `args`; returns what it printed (`--raw`).
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli runs (installed with redis-server by .ci/deps)")
            .stdout
    }

    /// Its URL for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it at once (SIGKILL): what it acknowledged is in its append-only file.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, from its append-only file.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a future to completion, failing the test if it takes longer than `limit`.
pub fn run_for<T>(limit: Duration, fut: impl Future<Output = T>) -> T {
    smol::block_on(future::or(fut, async {
        Timer::after(limit).await;
        panic!("test took longer than {limit:?}");
    }))
}

/// Awaits `fut` for at most [`WAIT`], panicking with `what` otherwise.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    future::or(fut, async {
        Timer::after(WAIT).await;
        panic!("timed out waiting for {what}");
    })
    .await
}

/// A version-1 `hello` for `name` with no resume and no token: the protocol suites are
/// version-1 clients, so they show that those keep working.
pub fn hello(name: &str) -> ClientFrame {
    ClientFrame::Hello {
        password: None,
        register: false,
        protocol: 1,
        name: name.into(),
        since: None,
        epoch: None,
        token: None,
    }
}

/// A version-2 `hello` for `name` with no resume and no token: the suites of rooms and
/// accounts are version-2 clients, so they show that those keep working.
pub fn hello_v2(name: &str) -> ClientFrame {
    ClientFrame::Hello {
        password: None,
        register: false,
        protocol: 2,
        name: name.into(),
        since: None,
        epoch: None,
        token: None,
    }
}

/// A `hello` of the newest version for `name` with no resume and no token.
pub fn hello_v3(name: &str) -> ClientFrame {
    ClientFrame::Hello {
        password: None,
        register: false,
        protocol: PROTOCOL_VERSION,
        name: name.into(),
        since: None,
        epoch: None,
        token: None,
    }
}

/// A version-3 `hello` of an account: a log-in with `password`, or (`register`) its
/// registration.
pub fn hello_account(name: &str, password: &str, register: bool) -> ClientFrame {
    ClientFrame::Hello {
        password: Some(chat_shared::Password::new(password)),
        register,
        protocol: PROTOCOL_VERSION,
        name: name.into(),
        since: None,
        epoch: None,
        token: None,
    }
}

/// A direct message to the account `to`, with an id if given.
pub fn say_to(to: &str, text: &str, id: Option<&str>) -> ClientFrame {
    ClientFrame::Say {
        room: None,
        to: Some(to.into()),
        text: text.into(),
        id: id.map(Into::into),
        me: false,
        reply_to: None,
    }
}

/// A `say` with an id.
pub fn say(text: &str, id: &str) -> ClientFrame {
    ClientFrame::Say {
        to: None,
        room: None,
        text: text.into(),
        me: false,
        reply_to: None,
        id: Some(id.into()),
    }
}

/// Asserts that the server's last frame was `closing` with `want`.
pub fn assert_closing(frames: &[ServerFrame], want: chat_shared::CloseCode) {
    assert!(
        matches!(frames.last(), Some(ServerFrame::Closing { code, .. }) if *code == want),
        "wanted closing {want:?}, got {:?}",
        frames.last()
    );
}

/// Asserts that the whole answer was one `rejected` with `want` (and a `retry_after` when
/// the code says to retry); returns its message.
pub fn assert_rejected(frames: &[ServerFrame], want: chat_shared::RejectCode) -> &str {
    match frames {
        [
            ServerFrame::Rejected {
                code,
                message,
                retry_after,
            },
        ] if *code == want && (retry_after.is_some() || !want.is_transient()) => message,
        other => panic!("wanted only rejected {want:?}, got {other:?}"),
    }
}

/// `n` encoded `say` frames with ids `0..n`, as one buffer to send at once.
pub fn burst_of_says(n: usize, text: &str) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            Frame::encode(&say(text, &i.to_string()))
                .as_bytes()
                .to_vec()
        })
        .collect()
}

/// Client settings for TLS that trust the certificate in the PEM file `cert`, and nothing
/// else.
pub fn trust(cert: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(cert)
        .map_err(|err| format!("{}: {err}", cert.display()))?
    {
        roots
            .add(cert.map_err(|err| err.to_string())?)
            .map_err(|err| err.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Connects to `addr` from `source` (any address of this machine when `None`), over TLS
/// with `tls`: the TCP socket (to close it abruptly) and the halves to read and write.
pub async fn open(
    addr: SocketAddr,
    source: Option<std::net::Ipv4Addr>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(TcpStream, Reader, Writer), String> {
    let stream = if let Some(source) = source {
        let source = SocketAddr::new(source.into(), 0);
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .map_err(|err| err.to_string())?;
        socket
            .bind(&source.into())
            .map_err(|err| format!("bind {source}: {err}"))?;
        // Loopback connects complete at once; blocking here costs microseconds.
        socket
            .connect(&addr.into())
            .map_err(|err| err.to_string())?;
        let std: std::net::TcpStream = socket.into();
        TcpStream::try_from(std).map_err(|err| err.to_string())?
    } else {
        TcpStream::connect(addr)
            .await
            .map_err(|err| format!("connect {addr}: {err}"))?
    };
    stream.set_nodelay(true).map_err(|err| err.to_string())?;
    let Some(tls) = tls else {
        return Ok((stream.clone(), Box::new(stream.clone()), Box::new(stream)));
    };
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = futures_rustls::TlsConnector::from(tls.clone())
        .connect(name, stream.clone())
        .await
        .map_err(|err| format!("TLS: {err}"))?;
    let (reader, writer) = futures_lite::io::split(tls);
    Ok((stream, Box::new(reader), Box::new(writer)))
}

/// Where a test client connects: a server's address, over plain TCP or over TLS trusting
/// one certificate.
#[derive(Clone)]
pub struct Endpoint {
    /// The server's addresses (a cluster's nodes): each connection goes to the next.
    pub addrs: Vec<SocketAddr>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    /// For TLS: the client settings (trusting the server's certificate).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Endpoint {
    /// Plain TCP.
    pub fn plain(addr: SocketAddr) -> Self {
        Self::plain_to(vec![addr])
    }

    /// Plain TCP to several nodes in turn.
    pub fn plain_to(addrs: Vec<SocketAddr>) -> Self {
        Self {
            addrs,
            next: Arc::default(),
            tls: None,
        }
    }

    /// Where the next connection goes.
    pub fn addr(&self) -> SocketAddr {
        let next = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.addrs[next % self.addrs.len()]
    }

    /// TLS to several nodes in turn, trusting the certificate in the PEM file `cert`.
    pub fn tls_to(addrs: Vec<SocketAddr>, cert: &std::path::Path) -> Self {
        Self {
            addrs,
            ..Self::tls(SocketAddr::from(([127, 0, 0, 1], 0)), cert)
        }
    }

    /// TLS, trusting the certificate in the PEM file `cert` (and nothing else).
    pub fn tls(addr: SocketAddr, cert: &std::path::Path) -> Self {
        Self {
            addrs: vec![addr],
            next: Arc::default(),
            tls: Some(trust(cert).expect("the server's certificate")),
        }
    }
}

/// A headless protocol client.
pub struct Client {
    reader: FrameReader<Reader, ServerFrame>,
    writer: Writer,
    tcp: TcpStream,
    /// The name the server accepted, once logged in.
    pub name: String,
}

impl Client {
    /// Connects without logging in.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_to(&Endpoint::plain(addr)).await
    }

    /// Connects to `endpoint` (over TLS if it says so) without logging in.
    pub async fn connect_to(endpoint: &Endpoint) -> Self {
        let (tcp, reader, writer) = within(
            "connecting",
            open(endpoint.addr(), None, endpoint.tls.as_ref()),
        )
        .await
        .expect("connected");
        Self {
            reader: FrameReader::new(reader, MAX_SERVER_FRAME),
            writer,
            tcp,
            name: String::new(),
        }
    }

    /// Connects and logs in; returns the client and its `welcome`, having read the replay
    /// up to and including its own `joined`.
    pub async fn login(addr: SocketAddr, name: &str) -> (Self, ServerFrame) {
        Self::login_with(addr, &hello(name)).await
    }

    /// [`Client::login`] as a version-2 client.
    pub async fn login_v2(addr: SocketAddr, name: &str) -> (Self, ServerFrame) {
        Self::login_with(addr, &hello_v2(name)).await
    }

    /// [`Client::login`] as a client of the newest version.
    pub async fn login_v3(addr: SocketAddr, name: &str) -> (Self, ServerFrame) {
        Self::login_with(addr, &hello_v3(name)).await
    }

    /// Sends `hello` on a new connection to `addr`, which must be answered only with
    /// `rejected` `want`; returns its message.
    pub async fn refused(
        addr: SocketAddr,
        hello: &ClientFrame,
        want: chat_shared::RejectCode,
    ) -> String {
        let mut client = Self::connect(addr).await;
        client.send(hello).await;
        assert_rejected(&client.recv_to_end().await, want).to_owned()
    }

    /// Connects and logs in with `hello` (a fresh login: it waits for its own `joined`).
    pub async fn login_with(addr: SocketAddr, hello: &ClientFrame) -> (Self, ServerFrame) {
        Self::login_at(&Endpoint::plain(addr), hello).await
    }

    /// [`Client::login_with`] at `endpoint`.
    pub async fn login_at(endpoint: &Endpoint, hello: &ClientFrame) -> (Self, ServerFrame) {
        let mut client = Self::connect_to(endpoint).await;
        let name = match hello {
            ClientFrame::Hello { name, .. } => name.clone(),
            other => panic!("not a hello: {other:?}"),
        };
        client.send(hello).await;
        let welcome = client.recv().await;
        let ServerFrame::Welcome {
            name: accepted,
            seq: replayed,
            ..
        } = &welcome
        else {
            panic!("{name}: expected welcome, got {welcome:?}");
        };
        client.name.clone_from(accepted);
        let (me, replayed) = (accepted.clone(), *replayed);
        // Its own `joined` is the first live event (a replay may hold an earlier one).
        client
            .recv_until(|f| {
                matches!(f, ServerFrame::Joined { name, seq, .. } if *name == me && *seq > replayed)
            })
            .await;
        (client, welcome)
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_raw(Frame::encode(frame).as_bytes()).await;
    }

    /// Sends raw bytes; errors are ignored (the server may have closed on purpose).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes).await;
        let _ = self.writer.flush().await;
    }

    /// Tries to send raw bytes, reporting a failure.
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// The next frame; panics on timeout, end of stream or a bad frame.
    pub async fn recv(&mut self) -> ServerFrame {
        match self.next().await {
            Some(Ok(frame)) => frame,
            other => panic!("{}: expected a frame, got {other:?}", self.name),
        }
    }

    /// The next frame, `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Result<ServerFrame, ReadError>> {
        within("a frame", self.reader.next()).await
    }

    /// Frames until one matches; returns all of them, the match last.
    pub async fn recv_until(&mut self, want: impl Fn(&ServerFrame) -> bool) -> Vec<ServerFrame> {
        let mut seen = Vec::new();
        loop {
            let frame = self.recv().await;
            let done = want(&frame);
            seen.push(frame);
            if done {
                return seen;
            }
        }
    }

    /// Frames until an `error`; returns its code.
    pub async fn next_error(&mut self) -> chat_shared::ErrorCode {
        match self
            .recv_until(|f| matches!(f, ServerFrame::Error { .. }))
            .await
            .pop()
        {
            Some(ServerFrame::Error { code, .. }) => code,
            _ => unreachable!("recv_until returns the match last"),
        }
    }

    /// Frames until a `left`; returns who left and why.
    pub async fn next_left(&mut self) -> (String, chat_shared::LeaveReason) {
        match self
            .recv_until(|f| matches!(f, ServerFrame::Left { .. }))
            .await
            .pop()
        {
            Some(ServerFrame::Left { name, reason, .. }) => (name, reason),
            _ => unreachable!("recv_until returns the match last"),
        }
    }

    /// Every frame until the server closes the connection (a reset counts as a close).
    pub async fn recv_to_end(&mut self) -> Vec<ServerFrame> {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                Some(Ok(frame)) => seen.push(frame),
                None | Some(Err(ReadError::Io(_) | ReadError::Truncated)) => return seen,
                Some(Err(err)) => panic!("{}: bad frame from server: {err}", self.name),
            }
        }
    }

    /// The underlying stream, for tests that close it abruptly.
    pub fn stream(&self) -> &TcpStream {
        &self.tcp
    }
}

/// A server process, started from the `chat-server` binary of this crate.
pub struct ServerProcess {
    child: smol::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// The path of this crate's copy of the server command.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // Test binaries live in target/<profile>/deps; the binaries one level up.
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("chat-server")
}

impl ServerProcess {
    /// Starts `chat-server` with `args` (add `--port 0` for a free port) and waits for its
    /// "listening on" line.
    pub async fn start(bin: &std::path::Path, args: &[&str]) -> Self {
        Self::start_logging(bin, args, "info").await
    }

    /// [`ServerProcess::start`] with the log filter `filter` (`RUST_LOG`); every line it
    /// logs is kept ([`ServerProcess::log`]).
    pub async fn start_logging(bin: &std::path::Path, args: &[&str], filter: &str) -> Self {
        use futures_lite::{AsyncBufReadExt, StreamExt};
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut child = smol::process::Command::new(bin)
            .args(args)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("server process starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = futures_lite::io::BufReader::new(stderr).lines();
        let addr = within("the server's address", async {
            loop {
                let line = lines
                    .next()
                    .await
                    .expect("server printed its address")
                    .expect("stderr readable");
                log.lock().expect("log").push(line.clone());
                // As text or inside a JSON log line (`--log-format json`).
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split(['"', ' ']).next().unwrap_or(rest);
                    break addr.trim().parse().expect("an address");
                }
            }
        })
        .await;
        // Keep draining stderr so the server never blocks on a full pipe.
        let kept = log.clone();
        smol::spawn(async move {
            while let Some(Ok(line)) = lines.next().await {
                kept.lock().expect("log").push(line);
            }
        })
        .detach();
        Self { child, addr, log }
    }

    /// Every line the process logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Sends a signal (`INT`, `TERM`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`; returns its exit code (`None` when
    /// it did not exit in time or died of a signal).
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        future::or(
            async { self.child.status().await.ok().and_then(|s| s.code()) },
            async {
                Timer::after(limit).await;
                None
            },
        )
        .await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.status().await;
    }
}

/// Runs a server command to its end with `args`; returns its exit code and stderr.
pub fn run_server_command(args: &[&str]) -> (Option<i32>, String) {
    let (code, _, stderr) = run_server_output(args);
    (code, stderr)
}

/// Runs a server command to its end with `args`; returns its exit code, stdout and stderr.
pub fn run_server_output(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(server_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("server command runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A TCP proxy in front of a server, whose connections a test can cut as a network fault
/// would, and which can refuse connections for a while (the server looks offline).
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
    _accept: smol::Task<()>,
}

#[derive(Default)]
struct ProxyState {
    live: Vec<TcpStream>,
    down: bool,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free port.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let shared = state.clone();
        let accept = smol::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let down = shared.lock().expect("proxy state").down;
                if down {
                    continue; // dropped: the client sees the connection close at once
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                shared
                    .lock()
                    .expect("proxy state")
                    .live
                    .extend([client.clone(), server.clone()]);
                smol::spawn(async move {
                    let _ = future::zip(
                        futures_lite::io::copy(client.clone(), server.clone()),
                        futures_lite::io::copy(server, client),
                    )
                    .await;
                })
                .detach();
            }
        });
        Self {
            addr,
            state,
            _accept: accept,
        }
    }

    /// Cuts every connection going through the proxy now.
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("proxy state");
        for stream in state.live.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Refuses (accepts and drops) new connections while `down`.
    pub fn set_down(&self, down: bool) {
        self.state.lock().expect("proxy state").down = down;
    }
}

/// A headless client built on the GUI client's connection module.
pub struct Headless {
    /// Talks to the connection.
    pub handle: chat_client::connection::Handle,
    /// Hears from it.
    pub events: async_channel::Receiver<chat_client::connection::Event>,
    _task: smol::Task<()>,
}

impl Headless {
    /// Starts a connection to `server` as `name`; waits for its handle.
    pub async fn start(server: SocketAddr, name: &str) -> Self {
        Self::resume(server, name, chat_client::connection::Resume::default()).await
    }

    /// Starts a connection to `server` as `name` from where an earlier run left off;
    /// waits for its handle.
    pub async fn resume(
        server: SocketAddr,
        name: &str,
        resume: chat_client::connection::Resume,
    ) -> Self {
        let target = chat_client::connection::Target {
            server: server.to_string(),
            name: name.into(),
            ..chat_client::connection::Target::default()
        };
        Self::connect(target, resume).await
    }

    /// Starts a connection to `target` (TLS, a password, a trusted fingerprint…) from
    /// `resume`; waits for its handle.
    pub async fn connect(
        target: chat_client::connection::Target,
        resume: chat_client::connection::Resume,
    ) -> Self {
        use chat_client::connection::{Event, run};
        let name = target.name.clone();
        let (tx, events) = async_channel::bounded(1024);
        let task = smol::spawn(run(target, resume, tx));
        let handle = match within("ready", events.recv()).await {
            Ok(Event::Ready(handle)) => handle,
            other => panic!("{name}: expected Ready, got {other:?}"),
        };
        Self {
            handle,
            events,
            _task: task,
        }
    }

    /// The next event.
    pub async fn next(&self) -> chat_client::connection::Event {
        within("an event", self.events.recv())
            .await
            .expect("the connection is running")
    }

    /// Events until one matches; returns them all, the match last.
    pub async fn until(
        &self,
        want: impl Fn(&chat_client::connection::Event) -> bool,
    ) -> Vec<chat_client::connection::Event> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let done = want(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

/// Every event of the default room's history, oldest first, paged with `history after`
/// 200 at a time.
pub async fn whole_history(client: &mut Client) -> Vec<ServerFrame> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        client
            .send(&ClientFrame::History {
                with: None,
                room: None,
                before: None,
                after: Some(after),
                limit: Some(200),
            })
            .await;
        let mut page = client
            .recv_until(
                |f| matches!(f, ServerFrame::HistoryEnd { after: Some(a), .. } if *a == after),
            )
            .await;
        let Some(ServerFrame::HistoryEnd { count, .. }) = page.pop() else {
            unreachable!()
        };
        // Live events may come in between; the answer is the events past `after`.
        let answer: Vec<ServerFrame> = page
            .into_iter()
            .filter(|f| f.seq().is_some_and(|s| s > after))
            .rev()
            .take(count as usize)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert_eq!(answer.len(), count as usize);
        let Some(last) = answer.last().and_then(ServerFrame::seq) else {
            return events;
        };
        events.extend(answer);
        after = last;
    }
}

/// A free port on 127.0.0.1 (bound and released), for a server that appears later.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Each message among `received` (a client's frames, in the order it got them) as that
/// client ends with it: as it came, live or replayed, changed by the reactions and edits
/// that came after it. What a client holds of each message, to compare with `history`.
pub fn messages_as_seen<'a>(
    received: impl IntoIterator<Item = &'a ServerFrame>,
) -> std::collections::BTreeMap<u64, ServerFrame> {
    let mut view = std::collections::BTreeMap::new();
    for frame in received {
        match frame {
            ServerFrame::Message { seq, .. } => {
                view.insert(*seq, frame.clone());
            }
            ServerFrame::Reaction {
                target,
                from,
                emoji,
                on,
                ..
            } => {
                if let Some(ServerFrame::Message { reactions, .. }) = view.get_mut(target) {
                    chat_shared::apply_reaction(reactions, from, emoji, *on);
                }
            }
            ServerFrame::Edited {
                target, text, time, ..
            } => {
                if let Some(ServerFrame::Message {
                    text: now, edited, ..
                }) = view.get_mut(target)
                {
                    now.clone_from(text);
                    *edited = Some(*time);
                }
            }
            _ => {}
        }
    }
    view
}
