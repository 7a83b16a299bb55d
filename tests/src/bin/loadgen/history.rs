//! `loadgen history`: optionally fills the history with N posts, then times `history`
//! pages of 200 at random places in it (the server's store is behind its window of recent
//! events for all but the newest).

use std::net::SocketAddr;
use std::time::Instant;

use argh::FromArgs;
use chat_shared::{ClientFrame, Frame, FrameReader, Reader, ServerFrame, Writer};
use futures_lite::{AsyncWriteExt, future};
use serde::Serialize;

use crate::clients::login;
use crate::default_addr;
use crate::measure::{Percentiles, histogram, progress, report};

#[derive(FromArgs, Clone)]
#[argh(subcommand, name = "history")]
/// Fill the history, then time pages of it read back.
pub(crate) struct HistoryArgs {
    /// server address (default: 127.0.0.1:60000)
    #[argh(option, default = "default_addr()")]
    addr: SocketAddr,
    /// posts to add first, as fast as the server takes them (default: 0)
    #[argh(option, default = "0")]
    fill: usize,
    /// bytes of text per post (default: 100)
    #[argh(option, default = "100")]
    text_size: usize,
    /// history pages of 200 to read and time (default: 1000)
    #[argh(option, default = "1000")]
    pages: usize,
    /// print the summary as one JSON object
    #[argh(switch)]
    json: bool,
}

#[derive(Serialize)]
struct HistorySummary {
    filled: usize,
    fill_per_s: Option<f64>,
    newest: u64,
    pages: usize,
    events_read: u64,
    page_latency_ms: Percentiles,
}

/// Fills the history with `--fill` posts, then reads `--pages` pages of 200 at random
/// places, one after the other, timing each round trip.
pub(crate) async fn history(args: HistoryArgs) -> Result<(), String> {
    let (mut stream, mut reader) = login(usize::MAX / 2, args.addr, 1, None).await?;
    let fill_per_s = if args.fill > 0 {
        Some(fill(&mut stream, &mut reader, &args).await?)
    } else {
        None
    };
    // Where the history ends now.
    let ask = |before: Option<u64>| {
        Frame::encode(&ClientFrame::History {
            with: None,
            room: None,
            before,
            after: None,
            limit: Some(200),
        })
    };
    stream
        .write_all(ask(None).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let newest = loop {
        match reader.next().await {
            Some(Ok(ServerFrame::HistoryEnd {
                before: Some(b), ..
            })) => break b - 1,
            Some(Ok(_)) => {}
            other => return Err(format!("no history_end: {other:?}")),
        }
    };
    let mut latency = histogram();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut events_read = 0;
    for _ in 0..args.pages {
        let before = rng.u64(1..=newest.max(1)) + 1;
        let t0 = Instant::now();
        stream
            .write_all(ask(Some(before)).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match reader.next().await {
                Some(Ok(ServerFrame::HistoryEnd { count, .. })) => {
                    events_read += u64::from(count);
                    break;
                }
                Some(Ok(_)) => {}
                other => return Err(format!("no history_end: {other:?}")),
            }
        }
        latency.saturating_record(t0.elapsed().as_nanos() as u64);
    }
    let summary = HistorySummary {
        filled: args.fill,
        fill_per_s,
        newest,
        pages: args.pages,
        events_read,
        page_latency_ms: Percentiles::of(&latency),
    };
    report(&summary, args.json, print_history)?;
    Ok(())
}

/// Posts `--fill` messages, written while their echoes are read; returns posts a second.
async fn fill(
    writer: &mut Writer,
    reader: &mut FrameReader<Reader, ServerFrame>,
    args: &HistoryArgs,
) -> Result<f64, String> {
    let text = "x".repeat(args.text_size);
    let bar = progress(args.fill, "filling");
    let t0 = Instant::now();
    let fill = args.fill;
    // Write everything while reading the echoes, so neither side waits for the other.
    let writing = async move {
        let mut buf = Vec::with_capacity(256 * 1024);
        for i in 0..fill {
            chat_shared::codec::encode_into(
                &ClientFrame::Say {
                    to: None,
                    me: false,
                    reply_to: None,
                    room: None,
                    text: text.clone(),
                    id: Some(format!("fill-{i}")),
                },
                &mut buf,
            );
            if buf.len() > 200 * 1024 || i + 1 == fill {
                writer.write_all(&buf).await.map_err(|e| e.to_string())?;
                writer.flush().await.map_err(|e| e.to_string())?;
                buf.clear();
            }
        }
        Ok::<(), String>(())
    };
    let reading = async {
        let mut echoed = 0;
        while echoed < args.fill {
            match reader.next().await {
                Some(Ok(ServerFrame::Message { id: Some(id), .. })) if id.starts_with("fill-") => {
                    echoed += 1;
                    if echoed % 1000 == 0 {
                        bar.set_position(echoed as u64);
                    }
                }
                Some(Ok(ServerFrame::Error { code, message, .. })) => {
                    return Err(format!("the server refused a post: {code:?}: {message}"));
                }
                Some(Ok(_)) => {}
                other => return Err(format!("connection ended while filling: {other:?}")),
            }
        }
        Ok(())
    };
    let (written, read) = future::zip(writing, reading).await;
    written?;
    read?;
    bar.finish_and_clear();
    Ok(args.fill as f64 / t0.elapsed().as_secs_f64())
}

fn print_history(summary: &HistorySummary) {
    if let Some(rate) = summary.fill_per_s {
        println!(
            "filled                {} posts, {rate:.0} a second",
            summary.filled
        );
    }
    println!("history holds         {} events", summary.newest);
    let p = &summary.page_latency_ms;
    println!(
        "page of 200           p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} pages, {} events)",
        p.p50, p.p99, p.max, summary.pages, summary.events_read
    );
}
