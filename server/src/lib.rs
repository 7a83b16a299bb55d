//! The chat server: rooms, NDJSON over TCP, on smol executors across all cores; its
//! events are recorded by an event log (in memory, or durable on disk) before anyone
//! receives them.
//!
//! `main.rs` only turns flags into a [`Config`]; tests start the same server in-process with
//! [`Running::start`] on port 0.

pub mod accounts;
pub mod cli;
mod cluster;
mod config;
mod context;
mod cpu;
mod hub;
mod limits;
pub mod log;
#[cfg(test)]
mod module_graph;
mod pressure;
mod queue;
mod registry;
mod room;
mod server;
mod session;
mod signal;
pub mod tls;
mod transport;
mod wire;

pub use config::{Args, Config, ConfigError, Registration, Seconds, Storage};
pub use server::{Running, Server, StartError, run_blocking};
pub use tls::TlsSetup;
