//! `loadgen`: drives a chat server with many real connections and measures it.
//!
//! - `fanout`: N clients, S of them posting at a total rate for a duration; reports
//!   deliveries per second, lost and duplicated deliveries (must be 0), delivery latency
//!   percentiles (each post carries its send time), and with `--server-pid` the server's CPU
//!   time per delivery and its peak memory; `--moderated` gives the rooms ops, bans and
//!   mutes first.
//! - `idle`: opens and logs in N connections, holds them, and reports the server's memory
//!   per connection.
//! - `history`: optionally fills the history with N posts, then times `history` pages of
//!   200 at random places in it (the server's store is behind its window of recent
//!   events for all but the newest).
//! - `takeover`: logs N accounts in with their passwords, then again all at once with
//!   their tokens.
//! - `irc`: the fan-out load over IRC, against our IRC port or another IRC server.
//! - `chaos`: starts the server itself and kills it again and again while hundreds of
//!   clients do everything at once (and a few misbehave); then checks that nothing was
//!   lost, repeated or changed.
//!
//! Connections ramp at `--ramp` per second. Past ~25,000 connections it spreads them over
//! source addresses 127.0.0.2, 127.0.0.3, ... (one address has only ~28,000 ephemeral
//! ports), and it raises its open-file limit itself. Run the server with `--max-per-ip 0`,
//! and with `--rate 0` unless flood control is part of the test.

mod accounts;
mod chaos;
mod clients;
mod fanout;
mod history;
mod idle;
mod irc;
mod measure;
mod moderation;
mod reading;
mod storm;
mod takeover;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use argh::FromArgs;
use smol::Executor;

use crate::chaos::{ChaosArgs, chaos};
use crate::fanout::{FanoutArgs, fanout};
use crate::history::{HistoryArgs, history};
use crate::idle::{IdleArgs, idle};
use crate::irc::{IrcArgs, irc};
use crate::takeover::{TakeoverArgs, takeover};

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
    Chaos(ChaosArgs),
    Irc(IrcArgs),
}

pub(crate) fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], chat_shared::limits::DEFAULT_PORT))
}

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The Unix time of [`EPOCH`] in nanoseconds, to compare with the server's `time`.
pub(crate) static EPOCH_UNIX_NS: OnceLock<u64> = OnceLock::new();

static EXECUTOR: OnceLock<Executor<'static>> = OnceLock::new();

/// Spawns on the loadgen's executor, whose threads also drive the reactor: a task woken by
/// a socket runs on the thread that saw the event, with no hop to another thread.
pub(crate) fn spawn<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> smol::Task<T> {
    EXECUTOR.get_or_init(Executor::new).spawn(fut)
}

/// Nanoseconds since the loadgen started: the clock posts carry.
pub(crate) fn now_ns() -> u64 {
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
        Mode::Chaos(a) => run(0, chaos(a)),
        Mode::Irc(a) => run(a.threads, irc(a)),
    };
    if let Err(err) = result {
        eprintln!("loadgen: {err}");
        std::process::exit(1);
    }
}

/// The executor's threads: `threads`, or one per core the process may run on when 0.
pub(crate) fn worker_threads(threads: usize) -> usize {
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
