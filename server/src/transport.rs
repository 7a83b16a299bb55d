//! What a session reads from and writes to: a plain TCP socket, or TLS over one.
//!
//! A session's reader and writer run in one task and share the connection by reference.
//! The plain path reads straight from the socket into the thread's scratch buffer, so an
//! idle connection holds no buffer; TLS (rustls, through futures-rustls) keeps its state
//! behind a mutex that only this task ever takes, so it costs only the connections that
//! use it.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite, future};
use futures_rustls::server::TlsStream;
use smol::Async;

/// Bytes read from a socket at once, into a buffer that belongs to the thread, so an idle
/// connection holds no read buffer of its own.
const SCRATCH: usize = 64 * 1024;

/// Plaintext gathered into one TLS write at most.
const TLS_GATHER: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A connection's byte stream.
pub enum Transport {
    /// Plain TCP.
    Plain(Async<TcpStream>),
    /// TLS, once its handshake is done.
    Tls(Box<Mutex<TlsStream<Async<TcpStream>>>>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only the connection's own task takes it; a panic there ends the connection anyway.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

impl Transport {
    /// Whether it is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// Waits for input and hands what arrived to `take`. `Ok(None)`: woken for nothing;
    /// the end of the stream is an `UnexpectedEof` error.
    pub async fn read_with<R>(&self, take: impl FnOnce(&[u8]) -> R) -> io::Result<Option<R>> {
        match self {
            Self::Plain(stream) => {
                // The one waker the socket keeps for its reader: `readable()` would keep a
                // table of them in every connection.
                future::poll_fn(|cx| stream.poll_readable(cx)).await?;
                SCRATCH_BUF.with_borrow_mut(|buf| match stream.get_ref().read(buf) {
                    Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => Ok(Some(take(&buf[..n]))),
                    Err(err) if transient(&err) => Ok(None),
                    Err(err) => Err(err),
                })
            }
            Self::Tls(tls) => {
                let mut take = Some(take);
                future::poll_fn(|cx| {
                    SCRATCH_BUF.with_borrow_mut(|buf| {
                        match Pin::new(&mut *lock(tls)).poll_read(cx, buf) {
                            Poll::Pending => Poll::Pending,
                            Poll::Ready(Ok(0)) => {
                                Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()))
                            }
                            Poll::Ready(Ok(n)) => {
                                Poll::Ready(Ok(take.take().map(|take| take(&buf[..n]))))
                            }
                            Poll::Ready(Err(err)) if transient(&err) => Poll::Ready(Ok(None)),
                            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                        }
                    })
                })
                .await
            }
        }
    }

    /// Where the writer writes.
    pub fn writer(&self) -> Writer<'_> {
        Writer(self)
    }

    /// Ends what this side sends: TLS's `close_notify`, then FIN.
    pub async fn close_write(&self) {
        match self {
            Self::Plain(stream) => {
                let _ = stream.get_ref().shutdown(Shutdown::Write);
            }
            Self::Tls(tls) => {
                let _ = future::poll_fn(|cx| Pin::new(&mut *lock(tls)).poll_close(cx)).await;
            }
        }
    }

    /// Closes the socket both ways.
    pub fn shutdown(&self) {
        let _ = match self {
            Self::Plain(stream) => stream.get_ref().shutdown(Shutdown::Both),
            Self::Tls(tls) => lock(tls).get_ref().0.get_ref().shutdown(Shutdown::Both),
        };
    }
}

/// The writing side of a [`Transport`].
pub struct Writer<'a>(&'a Transport);

impl AsyncWrite for Writer<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0 {
            Transport::Plain(stream) => Pin::new(&mut &*stream).poll_write(cx, buf),
            Transport::Tls(tls) => Pin::new(&mut *lock(tls)).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.0 {
            Transport::Plain(stream) => Pin::new(&mut &*stream).poll_write_vectored(cx, bufs),
            Transport::Tls(tls) => {
                // One TLS write for what is queued, rather than a record and a system call
                // per frame: the plaintext is copied once here (encryption copies anyway).
                let mut gathered =
                    Vec::with_capacity(bufs.iter().map(|b| b.len()).sum::<usize>().min(TLS_GATHER));
                for buf in bufs {
                    let room = TLS_GATHER - gathered.len();
                    gathered.extend_from_slice(&buf[..buf.len().min(room)]);
                    if gathered.len() == TLS_GATHER {
                        break;
                    }
                }
                Pin::new(&mut *lock(tls)).poll_write(cx, &gathered)
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {
            Transport::Plain(stream) => Pin::new(&mut &*stream).poll_flush(cx),
            Transport::Tls(tls) => Pin::new(&mut *lock(tls)).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {
            Transport::Plain(stream) => Pin::new(&mut &*stream).poll_close(cx),
            Transport::Tls(tls) => Pin::new(&mut *lock(tls)).poll_close(cx),
        }
    }
}
