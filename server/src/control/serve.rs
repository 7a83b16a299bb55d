//! The server's side of the control socket.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, future};
use smol::{Async, Executor, Timer};

use super::{MAX_REQUEST, Reply, Request};
use crate::hub::command::Command;
use crate::log::store::Store;

/// How long a peer has to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The bound control socket.
pub struct ControlSocket {
    listener: Async<UnixListener>,
    file: SocketFile,
}

/// The socket's file, removed when this is dropped (kept by the server, not the task that
/// serves the socket: a task cancelled at the end is not always dropped before the
/// process exits).
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl ControlSocket {
    /// Binds the socket at `path`, readable and writable by this user only. A socket file
    /// left by a server that is gone is replaced; one that a running server answers on is
    /// an error.
    pub fn bind(path: &Path) -> io::Result<Self> {
        if std::fs::symlink_metadata(path).is_ok() {
            match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "another server answers on it",
                    ));
                }
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)?;
                }
                Err(err) => return Err(err),
            }
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let file = SocketFile(path.to_path_buf());
        Ok(Self {
            listener: Async::new(listener)?,
            file,
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.file.0
    }

    /// The listener, to serve, and the file, to remove once it is no longer served.
    pub fn split(self) -> (Async<UnixListener>, SocketFile) {
        (self.listener, self.file)
    }
}

/// What the control socket's requests are served with.
pub struct Operator {
    /// The store, for backups (none with `--memory` or in a cluster).
    pub store: Option<Arc<Store>>,
    /// The hub, for everything about accounts and bans.
    pub hub: Sender<Command>,
}

/// Serves the control socket until dropped.
pub async fn serve(
    listener: Async<UnixListener>,
    operator: Arc<Operator>,
    ex: Arc<Executor<'static>>,
) {
    let me = rustix::process::geteuid();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(%err, "control socket: accept failed");
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        // The file's mode keeps others out; the peer's user id is checked as well.
        let peer = rustix::net::sockopt::socket_peercred(stream.get_ref()).map(|cred| cred.uid);
        if !peer.is_ok_and(|uid| uid == me || uid.is_root()) {
            tracing::warn!("control socket: a peer of another user was turned away");
            continue;
        }
        ex.spawn(answer(stream, operator.clone())).detach();
    }
}

/// Reads one request, answers it, closes.
async fn answer(stream: Async<UnixStream>, operator: Arc<Operator>) {
    let mut line = String::new();
    let mut reader = futures_lite::io::BufReader::new((&stream).take(MAX_REQUEST as u64));
    let read = future::or(
        async { reader.read_line(&mut line).await.map(Some) },
        async {
            Timer::after(REQUEST_TIMEOUT).await;
            Ok(None)
        },
    )
    .await;
    let reply = match read {
        Ok(Some(_)) => match serde_json::from_str::<Request>(&line) {
            Ok(request) => {
                tracing::info!(?request, "control socket");
                operator.handle(request).await
            }
            Err(err) => Reply::failed(format!("not a request: {err}")),
        },
        Ok(None) => return,
        Err(err) => Reply::failed(format!("cannot read the request: {err}")),
    };
    let mut out = serde_json::to_string(&reply).expect("a reply is JSON");
    out.push('\n');
    let _ = (&stream).write_all(out.as_bytes()).await;
}

impl Operator {
    async fn handle(&self, request: Request) -> Reply {
        match request {
            Request::Backup { to } => {
                let Some(store) = self.store.clone() else {
                    return Reply::failed(
                        "this server keeps no store of its own (--memory, or a cluster on Redis: back up Redis instead)",
                    );
                };
                match smol::unblock(move || store.backup(&to)).await {
                    Ok(copied) => {
                        tracing::info!(path = %copied.path.display(), events = copied.events, "backup made");
                        Reply::BackedUp(copied)
                    }
                    Err(err) => Reply::failed(err.to_string()),
                }
            }
            request => {
                let (reply, answer) = async_channel::bounded(1);
                if self
                    .hub
                    .try_send(Command::Operator { request, reply })
                    .is_err()
                {
                    return Reply::failed("the server is shutting down");
                }
                answer
                    .recv()
                    .await
                    .unwrap_or_else(|_| Reply::failed("the server is shutting down"))
            }
        }
    }
}
