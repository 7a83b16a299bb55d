//! `loadgen idle`: opens and logs in N connections, holds them, and reports the server's
//! memory per connection.

use std::net::SocketAddr;
use std::time::Duration;

use argh::FromArgs;
use chat_shared::{ClientFrame, Frame};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};
use serde::Serialize;
use smol::Timer;

use crate::clients::{ramp_up, use_tls};
use crate::default_addr;
use crate::measure::{progress, report, status_bytes};

#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "idle")]
/// Open and log in N connections, hold them, report server memory per connection.
pub(crate) struct IdleArgs {
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
    pub(crate) threads: usize,
    /// print the summary as one JSON object
    #[argh(switch)]
    json: bool,
}

/// How often an idle connection pings (the server's default idle timeout is 60 s).
const KEEP_ALIVE: Duration = Duration::from_secs(20);

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

pub(crate) async fn idle(args: IdleArgs) -> Result<(), String> {
    if let Some(cert) = &args.tls {
        use_tls(cert)?;
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
    report(&summary, args.json, print_idle)?;
    Ok(())
}

fn print_idle(summary: &IdleSummary) {
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
