//! The server under chaos: a child process on a fixed port with its store (a data
//! directory of its own, or a Redis that nodes share), killed (SIGKILL) and started again
//! on the same store, or paused (SIGSTOP) and resumed; its memory and descriptors read from
//! /proc, its log kept across its lives and read for panics.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_tests::ServerProcess;

/// The administrator account of the run (the moderation steps are its).
pub(crate) const ADMIN: &str = "chaos-admin";

pub(crate) struct Supervised {
    bin: PathBuf,
    args: Vec<String>,
    process: Option<ServerProcess>,
    /// Lines logged by the server's earlier lives.
    earlier_logs: Vec<String>,
    pub(crate) addr: SocketAddr,
    pub(crate) starts: u32,
}

impl Supervised {
    /// Starts the server on a free port with its store as `store` says (`--data DIR`, or
    /// `--redis URL …`), flood control on (the defaults), `--max-per-ip 0` (every client
    /// is 127.0.0.1) and [`ADMIN`] as its administrator.
    pub(crate) async fn start(bin: &Path, store: &[String]) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("no free port: {err}"))?
            .port();
        let mut args = [
            "--port",
            &port.to_string(),
            "--max-per-ip",
            "0",
            "--admins",
            ADMIN,
            // A client that was away through a restart catches up in one replay.
            "--replay-max",
            "100000",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend_from_slice(store);
        let mut server = Self {
            bin: bin.to_owned(),
            args,
            process: None,
            earlier_logs: Vec::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            starts: 0,
        };
        server.launch().await?;
        Ok(server)
    }

    async fn launch(&mut self) -> Result<(), String> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let process = ServerProcess::start(&self.bin, &args).await;
        if process.addr != self.addr {
            return Err(format!(
                "the server listens on {} instead of {}",
                process.addr, self.addr
            ));
        }
        self.process = Some(process);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL, as a crash or a power cut would, then a start on the same store.
    pub(crate) async fn crash_and_restart(&mut self) -> Result<(), String> {
        if let Some(mut process) = self.process.take() {
            process.kill().await;
            self.earlier_logs.extend(process.log());
        }
        self.launch().await
    }

    /// SIGSTOP for `pause`, then SIGCONT: a node that stops answering (a long GC pause, a
    /// machine swapping) while the others go on.
    pub(crate) async fn pause(&self, pause: Duration) {
        let Some(process) = &self.process else { return };
        process.signal("STOP");
        smol::Timer::after(pause).await;
        process.signal("CONT");
    }

    /// SIGTERM, and its exit code.
    pub(crate) async fn stop(&mut self) -> Option<i32> {
        let mut process = self.process.take()?;
        process.signal("TERM");
        let code = process.wait_exit(Duration::from_secs(30)).await;
        self.earlier_logs.extend(process.log());
        code
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Resident memory now, in bytes.
    pub(crate) fn rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Open file descriptors now: all of them, and the sockets among them but those
    /// connected to port `besides` (a cluster's Redis: a node keeps as many connections
    /// to it as it needs at the moment).
    pub(crate) fn descriptors(&self, besides: Option<u16>) -> Option<(usize, usize)> {
        let dir = std::fs::read_dir(format!("/proc/{}/fd", self.pid()?)).ok()?;
        let to_redis = besides.map(connected_to).unwrap_or_default();
        let (mut all, mut sockets) = (0, 0);
        for entry in dir.flatten() {
            all += 1;
            let Ok(to) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let to = to.to_string_lossy();
            if let Some(inode) = to
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                && !to_redis.iter().any(|other| other == inode)
            {
                sockets += 1;
            }
        }
        Some((all, sockets))
    }

    /// Every line of every life of the server that reports a panic.
    pub(crate) fn panics(&self) -> Vec<String> {
        self.log_lines(|line| line.contains("panicked"))
    }

    /// The lines of every life of the server that `keep` keeps.
    pub(crate) fn log_lines(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let current = self
            .process
            .as_ref()
            .map(ServerProcess::log)
            .unwrap_or_default();
        self.earlier_logs
            .iter()
            .chain(&current)
            .filter(|line| keep(line))
            .cloned()
            .collect()
    }
}

/// The inodes of the loopback TCP sockets connected to `port` (from /proc/net/tcp: the
/// remote address is the third column, `HEXIP:HEXPORT`; the inode the tenth).
fn connected_to(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            (columns.get(2)?.ends_with(&remote)).then(|| columns.get(9).map(|c| (*c).to_owned()))?
        })
        .collect()
}
