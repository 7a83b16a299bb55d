//! The clients that misbehave, each again and again while the run lasts: garbage lines,
//! a line over the frame limit, a flood of frames, and a reader too slow for its rooms.
//! Each must be closed with its misdeed's code (unless the server went down meanwhile);
//! the ordinary clients must not notice them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::limits::MAX_SERVER_FRAME;
use chat_shared::{ClientFrame, CloseCode, Frame, FrameReader, Reader, ServerFrame, Writer};
use futures_lite::{AsyncWriteExt, future};
use smol::Timer;

use super::ledger::Breach;
use super::user::World;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Misdeed {
    /// Three lines that are no JSON.
    Garbage,
    /// One line of 20,000 bytes.
    Oversize,
    /// 2,000 frames at once.
    Flood,
    /// Joins rooms and stops reading, with a 4 KiB receive buffer, but keeps asking for
    /// history.
    SlowReader,
}

impl Misdeed {
    pub(crate) const ALL: [Self; 4] =
        [Self::Garbage, Self::Oversize, Self::Flood, Self::SlowReader];

    fn expected(self) -> CloseCode {
        match self {
            Self::Garbage => CloseCode::BadFrame,
            Self::Oversize => CloseCode::FrameTooLong,
            Self::Flood => CloseCode::Flood,
            Self::SlowReader => CloseCode::SendQueueFull,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Garbage => "garbage",
            Self::Oversize => "oversize line",
            Self::Flood => "flood",
            Self::SlowReader => "slow reader",
        }
    }
}

/// Misbehaves as `misdeed` until the run ends.
pub(crate) async fn misbehave(i: usize, misdeed: Misdeed, world: Arc<World>) {
    let name = format!("hostile{i}");
    while world.acting.load(std::sync::atomic::Ordering::Relaxed) {
        let outcome = match once(&name, misdeed, &world).await {
            Ok(Some(code)) if code == misdeed.expected() => "closed as expected",
            Ok(Some(code)) => {
                world.ledger.breach(Breach::WrongClosing, || {
                    format!("{name} ({}) closed with {code:?}", misdeed.word())
                });
                "closed otherwise"
            }
            Ok(None) => "still open at the end",
            Err(_) => "cut off (server down)",
        };
        world.tally.add(&format!("{}: {outcome}", misdeed.word()));
        Timer::after(Duration::from_millis(500 + fastrand::u64(0..1500))).await;
    }
}

/// One misdeed on a new connection: the closing code it ended with, `None` if the run
/// ended first; an error if the connection failed otherwise.
async fn once(name: &str, misdeed: Misdeed, world: &World) -> Result<Option<CloseCode>, String> {
    // Misbehaving clients are not part of the seeded mix.
    let addr = world.addr(&mut fastrand::Rng::new());
    let (reader, mut writer) = if matches!(misdeed, Misdeed::SlowReader) {
        slow_connection(addr)?
    } else {
        let (_, reader, writer) = chat_tests::open(addr, None, None).await?;
        (reader, writer)
    };
    let mut frames = FrameReader::new(reader, MAX_SERVER_FRAME);
    let hello = ClientFrame::Hello {
        protocol: chat_shared::PROTOCOL_VERSION,
        name: name.to_owned(),
        since: None,
        epoch: None,
        token: None,
        password: None,
        register: false,
    };
    write(&mut writer, Frame::encode(&hello).as_bytes()).await?;
    match frames.next().await {
        Some(Ok(ServerFrame::Welcome { .. })) => {}
        other => return Err(format!("no welcome: {other:?}")),
    }
    match misdeed {
        Misdeed::Garbage => write(&mut writer, b"hello?\n{not json\n\xff\xfe\n").await?,
        Misdeed::Oversize => {
            write(&mut writer, &[b"x".repeat(20_000), b"\n".to_vec()].concat()).await?;
        }
        Misdeed::Flood => {
            let ping = Frame::encode(&ClientFrame::Ping { token: None });
            let burst: Vec<u8> = ping.as_bytes().repeat(2_000);
            // The server may close before it has read it all.
            let _ = write(&mut writer, &burst).await;
        }
        Misdeed::SlowReader => {
            for room in world.rooms.iter().take(5) {
                let join = ClientFrame::Join {
                    room: room.clone(),
                    since: None,
                };
                write(&mut writer, Frame::encode(&join).as_bytes()).await?;
            }
            // Reads nothing while the run lasts, or for two minutes, but keeps asking for the
            // default room's history (within flood control): the answers pile up.
            let history = Frame::encode(&ClientFrame::History {
                room: Some(world.general.clone()),
                with: None,
                before: None,
                after: None,
                limit: Some(200),
            });
            let until = Instant::now() + Duration::from_secs(120);
            while world.acting.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until
            {
                if write(&mut writer, history.as_bytes()).await.is_err() {
                    break;
                }
                Timer::after(Duration::from_millis(250)).await;
            }
        }
    }
    closing(&mut frames).await
}

/// Reads to the `closing` (or the end), at most a few seconds.
async fn closing(
    frames: &mut FrameReader<Reader, ServerFrame>,
) -> Result<Option<CloseCode>, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    future::or(
        async {
            loop {
                match frames.next().await {
                    Some(Ok(ServerFrame::Closing { code, .. })) => return Ok(Some(code)),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return Err(err.to_string()),
                    None => return Err("ended without closing".into()),
                }
            }
        },
        async {
            Timer::at(deadline).await;
            Ok(None)
        },
    )
    .await
}

/// A connection with a 4 KiB receive buffer, so that the server's queue for it fills.
fn slow_connection(addr: std::net::SocketAddr) -> Result<(Reader, Writer), String> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|err| err.to_string())?;
    socket
        .set_recv_buffer_size(4096)
        .map_err(|err| err.to_string())?;
    // Loopback connects complete at once.
    socket
        .connect(&addr.into())
        .map_err(|err| err.to_string())?;
    let stream = smol::net::TcpStream::try_from(std::net::TcpStream::from(socket))
        .map_err(|err| err.to_string())?;
    Ok((Box::new(stream.clone()), Box::new(stream)))
}

async fn write(writer: &mut Writer, bytes: &[u8]) -> Result<(), String> {
    writer
        .write_all(bytes)
        .await
        .map_err(|err| err.to_string())?;
    writer.flush().await.map_err(|err| err.to_string())
}
