//! The `server` command line, shared by the `server` binary and the copy the tests run.

use std::process::ExitCode;

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::{Args, Server, run_blocking};

/// Log lines on stderr, filtered by `RUST_LOG` (default: info), as text or as JSON
/// objects (each with the fields of the connection it is about, under `span`).
fn start_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => lines
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// The `server` command: flags from the command line over a config file (`--config`),
/// logs on stderr, runs until SIGINT or SIGTERM. Exit codes: 0 after a clean shutdown (or
/// `--print-config`), 1 when it cannot listen, 2 for bad flags or a bad config file.
pub fn main() -> ExitCode {
    let mut args: Args = argh::from_env();
    if args.version {
        println!("chat-server {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let print_config = args.print_config;
    let command = args.command.take();
    let config = match args.resolve() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("server: {err}");
            return ExitCode::from(2);
        }
    };
    start_logging(config.log_format);
    if let Some(command) = command {
        return crate::operate::run(command, &config);
    }
    if print_config {
        return match Args::of(&config).to_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("server: cannot print the settings: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let mut signals = match Signals::new([Signal::Int, Signal::Term]) {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("server: cannot handle signals: {err}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("server: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("{}", server.describe_storage());
    if let Some(tls) = server.describe_tls() {
        tracing::info!("{tls}");
    }
    match server.metrics_addr() {
        Some(Ok(addr)) => tracing::info!("metrics on http://{addr}/metrics"),
        Some(Err(err)) => tracing::info!("metrics served ({err})"),
        None => {}
    }
    if let Some(path) = server.control_path() {
        tracing::info!("control socket {}", path.display());
    }
    let (irc, irc_tls) = server.irc_addrs();
    for (addr, kind) in [(irc, "IRC"), (irc_tls, "IRC over TLS")] {
        if let Some(addr) = addr {
            tracing::info!("{kind} on {addr}");
        }
    }
    match server.local_addr() {
        Ok(local) => tracing::info!("listening on {local}"),
        Err(err) => tracing::info!("listening ({err})"),
    }
    run_blocking(server, async move {
        let _ = signals.next().await;
    });
    ExitCode::SUCCESS
}
