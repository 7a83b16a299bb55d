//! The load generator's connections: one per simulated client, from a source address of
//! its own past 25,000, logged in, moved to its room and its quiet rooms, opened at a
//! steady ramp.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{ClientFrame, Frame, FrameReader, ReadError, Reader, ServerFrame, Writer};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::rustls;
use indicatif::ProgressBar;
use smol::Timer;

use crate::spawn;

/// With `--tls CERT`: every connection is TLS, trusting that certificate.
static TLS: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// Connections per source address before moving to the next one.
const PER_SOURCE: usize = 25_000;

/// Connects client `i`, from a source address of its own once one address is not enough
/// (over TLS with `--tls`).
async fn connect(i: usize, addr: SocketAddr, total: usize) -> Result<(Reader, Writer), String> {
    let source = (total > PER_SOURCE && addr.ip().is_loopback())
        .then(|| Ipv4Addr::new(127, 0, 0, 2 + (i / PER_SOURCE) as u8));
    connect_from(source, addr).await
}

/// Connects from `source` (any address of this machine when `None`), over TLS with
/// `--tls`.
pub(crate) async fn connect_from(
    source: Option<Ipv4Addr>,
    addr: SocketAddr,
) -> Result<(Reader, Writer), String> {
    let (_, reader, writer) = chat_tests::open(addr, source, TLS.get()).await?;
    Ok((reader, writer))
}

/// Every connection from now on is TLS, trusting the certificate in the PEM file `cert`.
pub(crate) fn use_tls(cert: &std::path::Path) -> Result<(), String> {
    let _ = TLS.set(chat_tests::trust(cert)?);
    Ok(())
}

/// The room of client `i` when the clients are spread over `rooms` rooms.
pub(crate) fn room_of(i: usize, rooms: usize) -> Option<String> {
    (rooms > 0).then(|| format!("lg-room-{}", i % rooms))
}

/// Connects and logs in; with `room`, joins it and leaves the default room. Returns the
/// stream and a reader positioned after the welcome (and the answers to that).
pub(crate) async fn login(
    i: usize,
    addr: SocketAddr,
    total: usize,
    room: Option<String>,
) -> Result<(Writer, FrameReader<Reader, ServerFrame>), String> {
    let (reader, mut stream) = connect(i, addr, total).await?;
    let account = i < ACCOUNTS_BELOW.get().copied().unwrap_or(0);
    let hello = Frame::encode(&ClientFrame::Hello {
        password: account.then(|| chat_shared::Password::new(format!("load generator {i}"))),
        register: account,
        protocol: chat_shared::PROTOCOL_VERSION,
        name: format!("lg{i}"),
        since: None,
        epoch: None,
        token: None,
    });
    stream
        .write_all(hello.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let (answer, mut reader) = first_line(reader)
        .await
        .map_err(|e| format!("client {i}: no welcome: {e}"))?;
    // The welcome lists everyone online: decoding it whole, name by name, was most of the
    // load generator's work in a login storm. Only the rooms are read, and only if needed.
    if !answer.starts_with(b"{\"type\":\"welcome\"") {
        return Err(
            match chat_shared::decode_line::<ServerFrame>(answer.trim_ascii_end()) {
                Ok(ServerFrame::Rejected { code, message, .. }) => {
                    format!("client {i} rejected: {code:?}: {message}")
                }
                other => format!("client {i}: no welcome: {other:?}"),
            },
        );
    }
    join_quiet_rooms(i, &mut stream, &mut reader).await?;
    let default_room = if room.is_some() {
        #[derive(serde::Deserialize)]
        struct Rooms {
            rooms: Vec<String>,
        }
        serde_json::from_slice::<Rooms>(&answer)
            .map_err(|e| format!("client {i}: bad welcome: {e}"))?
            .rooms
            .into_iter()
            .next()
    } else {
        None
    };
    let (Some(room), Some(default_room)) = (room, default_room) else {
        return Ok((stream, reader));
    };
    let mut frames = Frame::encode(&ClientFrame::Join { room, since: None })
        .as_bytes()
        .to_vec();
    frames.extend_from_slice(
        Frame::encode(&ClientFrame::Part {
            room: default_room.clone(),
        })
        .as_bytes(),
    );
    stream.write_all(&frames).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let (mut joined, mut parted) = (false, false);
    let me = format!("lg{i}");
    while !(joined && parted) {
        match reader.next().await {
            Some(Ok(ServerFrame::Room { .. })) => joined = true,
            Some(Ok(ServerFrame::Left {
                name,
                room: Some(r),
                ..
            })) if name == me && r == default_room => {
                parted = true;
            }
            Some(Ok(ServerFrame::Error { code, message, .. })) => {
                return Err(format!("client {i}: {code:?}: {message}"));
            }
            Some(Ok(_) | Err(ReadError::Decode(_))) => {}
            other => return Err(format!("client {i}: no answer to join: {other:?}")),
        }
    }
    Ok((stream, reader))
}

/// The first line the server sends, raw, and a frame reader for what follows it.
async fn first_line(
    mut reader: Reader,
) -> Result<(Vec<u8>, FrameReader<Reader, ServerFrame>), String> {
    let mut line = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    loop {
        if let Some(at) = memchr::memchr(b'\n', &line) {
            let rest = line.split_off(at + 1);
            return Ok((
                line,
                FrameReader::from_parts(reader, MAX_SERVER_FRAME, rest),
            ));
        }
        if line.len() > MAX_SERVER_FRAME {
            return Err("first frame too long".into());
        }
        match reader.read(&mut chunk).await {
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// With `--quiet-rooms K`: how many rooms besides its own each client is in.
pub(crate) static QUIET_ROOMS: OnceLock<usize> = OnceLock::new();

/// Clients numbered below this log in to accounts they register (`fanout --edits`: only an
/// account edits its messages).
pub(crate) static ACCOUNTS_BELOW: OnceLock<usize> = OnceLock::new();

/// Quiet rooms there are, for `--quiet-rooms`.
const QUIET_ROOM_COUNT: usize = 100;

/// Joins client `i`'s quiet rooms (`--quiet-rooms`): K of 100 rooms where nobody posts,
/// so each has about clients × K / 100 members; waits for every answer.
async fn join_quiet_rooms(
    i: usize,
    stream: &mut Writer,
    reader: &mut FrameReader<Reader, ServerFrame>,
) -> Result<(), String> {
    let k = QUIET_ROOMS.get().copied().unwrap_or(0);
    if k == 0 {
        return Ok(());
    }
    let mut frames = Vec::new();
    for j in 0..k {
        // Distinct for j < 10: i, i + 10, i + 20, ... modulo 100.
        let room = format!(
            "lg-quiet-{}",
            (i + j * (QUIET_ROOM_COUNT / k.max(1))) % QUIET_ROOM_COUNT
        );
        chat_shared::codec::encode_into(&ClientFrame::Join { room, since: None }, &mut frames);
    }
    stream.write_all(&frames).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut answered = 0;
    while answered < k {
        match reader.next().await {
            Some(Ok(ServerFrame::Room { .. })) => answered += 1,
            Some(Ok(ServerFrame::Error { code, message, .. })) => {
                return Err(format!("client {i}: {code:?}: {message}"));
            }
            Some(Ok(_) | Err(ReadError::Decode(_))) => {}
            other => return Err(format!("client {i}: no answer to a join: {other:?}")),
        }
    }
    Ok(())
}

/// Opens `n` connections at `ramp` per second, named from `first` on. Each logs in and then
/// goes straight on with `job` in a task of its own (so nobody sits unread while the others
/// join). Returns once every login is done, with the tasks.
#[allow(clippy::too_many_arguments, reason = "a ramp's settings")]
pub(crate) async fn ramp_up<T, F, Fut>(
    first: usize,
    n: usize,
    ramp: f64,
    addrs: &[SocketAddr],
    rooms: usize,
    bar: &ProgressBar,
    job: F,
) -> Result<Vec<smol::Task<T>>, String>
where
    T: Send + 'static,
    F: Fn(usize, Writer, FrameReader<Reader, ServerFrame>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let (logged_in, logins) = async_channel::unbounded::<Result<(), String>>();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        Timer::at(t0 + Duration::from_secs_f64(i as f64 / ramp.max(1.0))).await;
        let (job, logged_in, bar) = (job.clone(), logged_in.clone(), bar.clone());
        let addr = addrs[(first + i) % addrs.len()];
        tasks.push(spawn(async move {
            match login(first + i, addr, first + n, room_of(first + i, rooms)).await {
                Ok((stream, reader)) => {
                    bar.inc(1);
                    let _ = logged_in.send(Ok(())).await;
                    Some(job(first + i, stream, reader).await)
                }
                Err(err) => {
                    let _ = logged_in.send(Err(err)).await;
                    None
                }
            }
        }));
    }
    for _ in 0..n {
        logins.recv().await.map_err(|e| e.to_string())??;
    }
    Ok(tasks
        .into_iter()
        .map(|task| spawn(async move { task.await.expect("logged in") }))
        .collect())
}
