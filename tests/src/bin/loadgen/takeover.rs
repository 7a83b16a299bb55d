//! `loadgen takeover`: logs N accounts in with their passwords, then reconnects all of
//! them at once with their tokens (as after a network change): times both, with the
//! server's CPU time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use argh::FromArgs;
use chat_shared::{ClientFrame, ServerFrame};
use serde::Serialize;
use smol::Timer;

use crate::accounts::{account_hello, account_name, register_accounts, say_hello};
use crate::measure::{cpu_seconds, report};
use crate::{default_addr, spawn};

#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "takeover")]
/// Log N accounts in with their passwords, then reconnect all of them at once with their
/// tokens (as after a network change): times both, with the server's CPU time.
pub(crate) struct TakeoverArgs {
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

pub(crate) async fn takeover(args: TakeoverArgs) -> Result<(), String> {
    let n = args.accounts;
    register_accounts(args.addr, n).await?;
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
    report(&summary, args.json, print_takeover)?;
    Ok(())
}

fn print_takeover(summary: &TakeoverSummary) {
    let n = summary.accounts;
    println!(
        "{n} password logins in {:.2} s (server cpu {:?} s); {n} token takeovers in {:.3} s (server cpu {:?} s)",
        summary.password_logins_s,
        summary.password_server_cpu_s,
        summary.token_logins_s,
        summary.token_server_cpu_s
    );
}
