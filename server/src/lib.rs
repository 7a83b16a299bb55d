//! The chat server: rooms, accounts and direct messages, NDJSON over TCP or TLS, on smol
//! executors across all cores. Its events are recorded by an event log before anyone
//! receives them: in memory (`--memory`), in an embedded store on disk (the default), or in
//! a Redis that several nodes share as one chat (`--redis`, see `cluster`).
//!
//! The layers, lowest first (no module imports one above it, which
//! `tests/tests/module_graph.rs` checks): leaves (`signal`, `cpu`, `wire`, `limits`, `tls`, `transport`, `config`), the log
//! (`log`), a connection's queue and who is online (`queue`, `registry`), rooms (`room`),
//! the hub that owns them (`hub`, with the other nodes behind `hub::peers`), the cluster
//! (`cluster`, which implements them), the connections (`context`, `request`, `session`, and the IRC port `irc`), and the
//! server that starts it all (`server`, `cli`).
//!
//! `main.rs` only turns flags into a [`Config`]; tests start the same server in-process with
//! [`Running::start`] on port 0.

pub mod accounts;
mod bans;
pub mod cli;
mod cluster;
pub mod commands;
mod config;
mod context;
pub mod control;
mod cpu;
mod hub;
mod irc;
mod limits;
pub mod log;
mod metrics;
pub mod operate;
mod pressure;
mod queue;
mod registry;
mod request;
mod room;
pub mod search;
mod server;
mod session;
mod signal;
mod step;
pub mod tls;
mod transport;
mod wire;

pub use config::{Args, Config, ConfigError, LogFormat, Registration, Seconds, Storage};
pub use server::{Running, Server, StartError, run_blocking};
pub use tls::TlsSetup;

/// The allocator every build of the server command uses (`main.rs`, and the copy the
/// tests start as a process): mimalloc returns freed memory to the system where glibc's
/// allocator keeps it in per-thread arenas. After a burst of logins or a restart's
/// reconnect storm (big welcome frames, queues briefly backed up) glibc left the server
/// at several times its steady-state memory.
pub type Allocator = mimalloc::MiMalloc;

/// The one [`Allocator`], for `#[global_allocator]`.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;
