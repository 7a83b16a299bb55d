//! The chat server: one room, NDJSON over TCP, on smol executors across all cores.
//!
//! `main.rs` only turns flags into a [`Config`]; tests start the same server in-process with
//! [`Running::start`] on port 0.

pub mod cli;
mod config;
mod limits;
mod queue;
mod room;
mod server;
mod session;

pub use config::{Args, Config, ConfigError, Seconds};
pub use server::{Running, Server, run_blocking};
