//! Accounts of the load generator (`lg-acct-K`, with password `loadgen password K`): their
//! registration, and one `hello` answered.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{ClientFrame, Frame, FrameReader, Reader, ServerFrame, Writer};
use futures_lite::AsyncWriteExt;
use smol::Timer;

use crate::clients::connect_from;
use crate::measure::progress;
use crate::spawn;

pub(crate) fn account_name(k: usize) -> String {
    format!("lg-acct-{k}")
}

pub(crate) fn account_hello(name: String, password: String, register: bool) -> ClientFrame {
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

/// Sends one `hello` from `source` and returns the code of the answer (`welcome` for a
/// welcome).
pub(crate) async fn one_hello(
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
pub(crate) async fn say_hello(
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

/// Registers `count` accounts (existing ones are fine), eight at a time.
pub(crate) async fn register_accounts(addr: SocketAddr, count: usize) -> Result<(), String> {
    let bar = progress(count, "registering");
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (next, bar, n) = (next.clone(), bar.clone(), count);
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
