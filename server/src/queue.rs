//! The send queue of one connection: encoded frames waiting for its writer.
//!
//! The queue is an unbounded channel with the limit enforced by counters, because
//! `async_channel::bounded(n)` allocates all `n` slots up front, which idle connections
//! cannot afford. Pushing never waits: over the limit the push fails, and the caller closes
//! the connection as a slow reader.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chat_shared::Frame;
use futures_lite::{AsyncWrite, AsyncWriteExt, future};
use smol::Timer;

use crate::server::Signal;

/// Limits of one send queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Most frames queued.
    pub frames: usize,
    /// Most bytes queued.
    pub bytes: usize,
}

/// The state shared by the pushing side and the writer.
#[derive(Debug, Default)]
struct Shared {
    frames: AtomicUsize,
    bytes: AtomicUsize,
    closed: Signal,
    /// Closed for being too slow: what is queued is dropped, only the last word is written.
    aborted: AtomicBool,
}

/// Frames on their way to one or more connections, and how many of them count against
/// each one's limit. A batch of a room's events is one `Batch` shared by all its members.
/// One pointer wide, so the block of slots an idle connection's channel keeps once it has
/// carried anything is half the size a `(Frame, u32)` would make it.
#[derive(Debug, Clone)]
pub struct Batch(Arc<Queued>);

#[derive(Debug)]
struct Queued {
    frame: Frame,
    count: u32,
}

impl Batch {
    /// `frame`, which holds `count` frames that count against the limit (0: none do).
    pub fn new(frame: Frame, count: usize) -> Self {
        Self(Arc::new(Queued {
            frame,
            count: u32::try_from(count).unwrap_or(u32::MAX),
        }))
    }

    fn bytes(&self) -> &[u8] {
        self.0.frame.as_bytes()
    }

    fn count(&self) -> usize {
        self.0.count as usize
    }
}

type Item = Batch;

/// The pushing side of a connection's send queue; clones push to the same queue.
#[derive(Debug, Clone)]
pub struct SendQueue {
    tx: async_channel::Sender<Item>,
    shared: Arc<Shared>,
    limits: QueueLimits,
}

/// The queue was over its limit; the connection reads too slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Creates a queue and the receiving side its writer drains.
pub fn send_queue(limits: QueueLimits) -> (SendQueue, QueueReceiver) {
    let (tx, rx) = async_channel::unbounded();
    let shared = Arc::new(Shared::default());
    (
        SendQueue {
            tx,
            shared: shared.clone(),
            limits,
        },
        QueueReceiver { rx, shared },
    )
}

impl SendQueue {
    /// Queues `batch` against the limit.
    pub fn push(&self, batch: &Batch) -> Result<(), Overflow> {
        let (count, len) = (batch.count(), batch.bytes().len());
        let frames = self.shared.frames.fetch_add(count, Ordering::Relaxed) + count;
        let bytes = self.shared.bytes.fetch_add(len, Ordering::Relaxed) + len;
        if frames > self.limits.frames || bytes > self.limits.bytes {
            return Err(Overflow);
        }
        // A closed queue belongs to a connection on its way out; dropping is right.
        let _ = self.tx.try_send(batch.clone());
        Ok(())
    }

    /// Queues `frame` outside the limit: replies the connection asked for (its welcome and
    /// replay, history) and the last word before a close.
    pub fn push_unmetered(&self, frame: Frame) {
        let _ = self.tx.try_send(Batch::new(frame, 0));
    }

    /// Queues a last frame, then closes: the writer flushes what is queued and stops.
    pub fn close_with(&self, last: Option<Frame>) {
        if let Some(frame) = last {
            self.push_unmetered(frame);
        }
        self.tx.close();
        self.shared.closed.raise();
    }

    /// Closes a connection that cannot keep up: the backlog it was not reading is dropped
    /// and only `last` is written, so the peer learns why as soon as it reads again.
    pub fn abort_with(&self, last: Frame) {
        self.shared.aborted.store(true, Ordering::Release);
        self.close_with(Some(last));
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_raised()
    }
}

/// The writer's side of a send queue.
#[derive(Debug)]
pub struct QueueReceiver {
    rx: async_channel::Receiver<Item>,
    shared: Arc<Shared>,
}

/// Most queued items written with one system call.
const MAX_BATCH: usize = 64;

impl QueueReceiver {
    /// Writes everything queued to `out` until the queue is closed and drained, gathering
    /// whatever is waiting into one vectored write. Once the queue is closed, a write the
    /// peer does not take within `linger` fails with `TimedOut`.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        mut out: W,
        linger: Duration,
    ) -> io::Result<()> {
        while let Ok(first) = self.rx.recv().await {
            // Sized for what waits, and dropped once written: an idle connection keeps no
            // buffer of the size its busiest moment needed.
            let mut batch: Vec<Item> = Vec::with_capacity((self.rx.len() + 1).min(MAX_BATCH));
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            if self.shared.aborted.load(Ordering::Acquire) {
                batch.retain(|item| item.count() == 0);
            }
            // The first poll of the write is the first thing done: a write the socket
            // takes at once never watches the queue (nor allocates a listener to).
            future::or(
                async {
                    write_all(&mut out, &batch).await?;
                    // TLS may hold back what did not fit the socket; plain TCP holds nothing.
                    out.flush().await
                },
                // Boxed, so that its timer is not part of every connection's task.
                async {
                    Box::pin(async {
                        self.shared.closed.wait().await;
                        Timer::after(linger).await;
                        Err(io::ErrorKind::TimedOut.into())
                    })
                    .await
                },
            )
            .await?;
            let (frames, bytes) = batch
                .iter()
                .filter(|item| item.count() > 0)
                .fold((0, 0), |(f, b), item| {
                    (f + item.count(), b + item.bytes().len())
                });
            self.shared.frames.fetch_sub(frames, Ordering::Relaxed);
            self.shared.bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
        out.flush().await
    }
}

#[cfg(test)]
impl QueueReceiver {
    /// What is queued now, one entry per push, as text.
    pub fn queued(&self) -> Vec<String> {
        std::iter::from_fn(|| self.rx.try_recv().ok())
            .map(|batch| String::from_utf8_lossy(batch.bytes()).into_owned())
            .collect()
    }
}

/// Writes every frame of `batch`, in as few system calls as the socket allows.
async fn write_all<W: AsyncWrite + Unpin>(out: &mut W, batch: &[Item]) -> io::Result<()> {
    if let [item] = batch {
        return out.write_all(item.bytes()).await;
    }
    let (mut index, mut offset) = (0, 0);
    while index < batch.len() {
        // On the heap, and only while writing: an idle connection's task stays small.
        let slices: Vec<IoSlice<'_>> = batch[index..]
            .iter()
            .enumerate()
            .map(|(i, item)| IoSlice::new(&item.bytes()[if i == 0 { offset } else { 0 }..]))
            .collect();
        let mut written = out.write_vectored(&slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while index < batch.len() {
            let left = batch[index].bytes().len() - offset;
            if written < left {
                offset += written;
                break;
            }
            written -= left;
            index += 1;
            offset = 0;
        }
    }
    Ok(())
}
