//! The send queue of one connection: encoded frames waiting for its writer.
//!
//! The queue is an async-channel of one slot, with what is pushed while the slot is taken
//! kept in order in an overflow list beside it, and the limit enforced by counters. A
//! channel of one slot is a few words; a channel of more is two cache-padded positions and
//! a block of slots kept once used (1.2 KB for every idle connection). A writer keeps up
//! almost always, so the slot is usually all there is. Pushing never waits: over the limit
//! the push fails, and the caller closes the connection as a slow reader.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chat_shared::{CloseCode, Frame};
use futures_lite::{AsyncWrite, AsyncWriteExt, future};
use smol::Timer;

use crate::signal::Signal;
use crate::wire::closing;

/// Limits of one send queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Most frames queued.
    pub frames: usize,
    /// Most bytes queued.
    pub bytes: usize,
}

/// The state state by the pushing side and the writer.
#[derive(Debug, Default)]
struct State {
    frames: AtomicUsize,
    bytes: AtomicUsize,
    /// Bytes of replies queued (they are outside the limit, see [`SendQueue::push_unmetered`]).
    replies: AtomicUsize,
    /// Closed for asking for replies faster than it read them.
    replies_overflowed: AtomicBool,
    closed: Signal,
    /// Closed for being too slow: what is queued is dropped, only the last word is written.
    aborted: AtomicBool,
    /// What was pushed while the channel's slot was taken, oldest first: all of it newer
    /// than what is in the slot. While it holds anything, pushes go here, not to the slot.
    overflow: Mutex<Vec<Item>>,
}

impl State {
    fn overflow(&self) -> MutexGuard<'_, Vec<Item>> {
        // A push or a take cannot leave the list half-changed.
        self.overflow.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Frames on their way to one or more connections, and how many of them count against
/// each one's limit. A batch of a room's events is one `Batch` state by all its members.
/// One pointer wide, so the block of slots an idle connection's channel keeps once it has
/// carried anything is half the size a `(Frame, u32)` would make it.
#[derive(Debug, Clone)]
pub struct Batch(Arc<Queued>);

#[derive(Debug)]
struct Queued {
    frame: Frame,
    count: u32,
    kind: Kind,
    /// Its frames in another wire form, made by the first writer that needs it.
    prepared: Prepared,
}

/// A queued item's frames prepared once for every connection of another wire form that
/// writes them (the IRC port's lines of a room's events): the first writer to need them
/// makes them, the others of its kind reuse them, so an event is rendered once per wire
/// form in a room rather than once per member.
pub type Prepared = std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>;

/// What a queued item is to the queue's accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Counted against the limit by its frame count (events).
    Counted,
    /// A reply the connection asked for: outside the limit, but its bytes are counted.
    Reply,
    /// The last word before a close: written even when the backlog is dropped.
    LastWord,
}

impl Batch {
    /// `frame`, which holds `count` frames that count against the limit (0: none do).
    pub fn new(frame: Frame, count: usize) -> Self {
        Self(Arc::new(Queued {
            frame,
            count: u32::try_from(count).unwrap_or(u32::MAX),
            kind: Kind::Counted,
            prepared: Prepared::new(),
        }))
    }

    /// `frame` outside the frame limit, as `kind`.
    fn outside(frame: Frame, kind: Kind) -> Self {
        Self(Arc::new(Queued {
            frame,
            count: 0,
            kind,
            prepared: Prepared::new(),
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
    state: Arc<State>,
    limits: QueueLimits,
}

/// The queue was over its limit; the connection reads too slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Creates a queue and the receiving side its writer drains.
pub fn send_queue(limits: QueueLimits) -> (SendQueue, QueueReceiver) {
    let (tx, rx) = async_channel::bounded(1);
    let state = Arc::new(State::default());
    (
        SendQueue {
            tx,
            state: state.clone(),
            limits,
        },
        QueueReceiver { rx, state },
    )
}

impl SendQueue {
    /// Queues `batch` against the limit.
    pub fn push(&self, batch: &Batch) -> Result<(), Overflow> {
        let (count, len) = (batch.count(), batch.bytes().len());
        let frames = self.state.frames.fetch_add(count, Ordering::Relaxed) + count;
        let bytes = self.state.bytes.fetch_add(len, Ordering::Relaxed) + len;
        if frames > self.limits.frames || bytes > self.limits.bytes {
            return Err(Overflow);
        }
        self.send(batch.clone());
        Ok(())
    }

    /// Queues `frame` outside the limit: a reply the connection asked for (its welcome and
    /// replay, history, search). One reply of any size goes; but a connection that keeps
    /// asking while the replies it has not read already exceed the byte limit is a slow
    /// reader like any other: it is closed with `send_queue_full` (see
    /// [`SendQueue::replies_overflowed`]), its backlog dropped.
    pub fn push_unmetered(&self, frame: Frame) {
        let len = frame.as_bytes().len();
        let unread = self.state.replies.fetch_add(len, Ordering::Relaxed);
        if unread > self.limits.bytes {
            self.state.replies_overflowed.store(true, Ordering::Release);
            self.abort_with(closing(CloseCode::SendQueueFull));
            return;
        }
        self.send(Batch::outside(frame, Kind::Reply));
    }

    /// Whether the queue closed itself: replies asked for faster than they were read.
    pub fn replies_overflowed(&self) -> bool {
        self.state.replies_overflowed.load(Ordering::Acquire)
    }

    /// Puts `item` in the slot, or after what overflowed it. A closed queue belongs to a
    /// connection on its way out; dropping is right.
    fn send(&self, item: Item) {
        let mut overflow = self.state.overflow();
        if self.tx.is_closed() {
            return;
        }
        if overflow.is_empty() {
            match self.tx.try_send(item) {
                Ok(()) | Err(async_channel::TrySendError::Closed(_)) => {}
                Err(async_channel::TrySendError::Full(item)) => overflow.push(item),
            }
        } else {
            overflow.push(item);
        }
    }

    /// Queues a last frame, then closes: the writer flushes what is queued and stops.
    pub fn close_with(&self, last: Option<Frame>) {
        if let Some(frame) = last {
            self.send(Batch::outside(frame, Kind::LastWord));
        }
        self.tx.close();
        self.state.closed.raise();
    }

    /// Closes a connection that cannot keep up: the backlog it was not reading is dropped
    /// and only `last` is written, so the peer learns why as soon as it reads again.
    pub fn abort_with(&self, last: Frame) {
        self.state.aborted.store(true, Ordering::Release);
        self.close_with(Some(last));
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.state.closed.is_raised()
    }
}

/// The writer's side of a send queue.
#[derive(Debug)]
pub struct QueueReceiver {
    rx: async_channel::Receiver<Item>,
    state: Arc<State>,
}

/// What turns a queued item (its frames, and their form prepared for every connection
/// like this one) into the bytes written (see [`QueueReceiver::write_rendered`]).
pub type Render<'a> = dyn FnMut(&[u8], &Prepared, &mut String) + Send + 'a;

/// Most queued items written with one system call.
const MAX_BATCH: usize = 64;

impl QueueReceiver {
    /// [`QueueReceiver::write_rendered`] with nothing to render (NDJSON).
    #[cfg(test)]
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        out: W,
        linger: Duration,
    ) -> io::Result<()> {
        self.write_rendered(out, linger, None).await
    }

    /// Writes everything queued to `out` until the queue is closed and drained, gathering
    /// whatever is waiting into one vectored write. Once the queue is closed, a write the
    /// peer does not take within `linger` fails with `TimedOut`. With `render`, what is
    /// queued is turned into the connection's wire form as it is written (the IRC port's
    /// lines): `render` appends what one queued item becomes.
    pub async fn write_rendered<W: AsyncWrite + Unpin>(
        &self,
        mut out: W,
        linger: Duration,
        mut render: Option<&mut Render<'_>>,
    ) -> io::Result<()> {
        loop {
            let mut batch = self.take(None);
            if batch.is_empty() {
                // Once closed, what overflowed before the close is still to go.
                batch = self.take(self.rx.recv().await.ok());
                if batch.is_empty() {
                    break;
                }
            }
            if self.state.aborted.load(Ordering::Acquire) {
                batch.retain(|item| item.0.kind == Kind::LastWord);
            }
            // Boxed: only a connection being written to needs room for the write.
            // TLS may hold back what did not fit the socket; plain TCP holds nothing: so
            // each write is followed by a flush.
            match render.as_deref_mut() {
                None => {
                    let write = async {
                        write_all(&mut out, &batch).await?;
                        out.flush().await
                    };
                    Box::pin(self.lingering(write, linger)).await?;
                }
                Some(render) => {
                    let mut text = String::new();
                    for item in &batch {
                        render(item.bytes(), &item.0.prepared, &mut text);
                    }
                    let write = async {
                        out.write_all(text.as_bytes()).await?;
                        out.flush().await
                    };
                    Box::pin(self.lingering(write, linger)).await?;
                }
            }
            let (frames, bytes) = batch
                .iter()
                .filter(|item| item.count() > 0)
                .fold((0, 0), |(f, b), item| {
                    (f + item.count(), b + item.bytes().len())
                });
            let replies = batch
                .iter()
                .filter(|item| item.0.kind == Kind::Reply)
                .map(|item| item.bytes().len())
                .sum();
            let metrics = crate::metrics::get();
            metrics.deliveries.inc_by(frames as u64);
            metrics.written_bytes.inc_by(bytes as u64);
            let depth = self.state.frames.fetch_sub(frames, Ordering::Relaxed);
            metrics.send_queue_depth.observe(depth as f64);
            self.state.bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.state.replies.fetch_sub(replies, Ordering::Relaxed);
        }
        out.flush().await
    }
}

impl QueueReceiver {
    /// Runs `write`; once the queue is closed, fails if the peer does not take what it
    /// writes within `linger`.
    async fn lingering(
        &self,
        write: impl Future<Output = io::Result<()>>,
        linger: Duration,
    ) -> io::Result<()> {
        // The first poll of the write is the first thing done: a write the socket takes at
        // once never watches the queue (nor allocates a listener to).
        future::or(write, async {
            self.state.closed.wait().await;
            Timer::after(linger).await;
            Err(io::ErrorKind::TimedOut.into())
        })
        .await
    }

    /// What waits, oldest first, up to [`MAX_BATCH`] items: `first` (just received from
    /// the slot), what is in the slot now, what overflowed. Pushes decide between the slot
    /// and the overflow under the same lock, so under it the slot holds the oldest. Sized
    /// for what waits, and dropped once written: an idle connection keeps no buffer of the
    /// size its busiest moment needed.
    fn take(&self, first: Option<Item>) -> Vec<Item> {
        let mut overflow = self.state.overflow();
        let slot = self.rx.try_recv().ok();
        let count = overflow.len().min(MAX_BATCH - 2);
        let mut batch = Vec::with_capacity(count + 2);
        batch.extend(first);
        batch.extend(slot);
        batch.extend(overflow.drain(..count));
        if overflow.is_empty() {
            *overflow = Vec::new();
        }
        batch
    }

    /// What is queued now, one entry per push, as text.
    #[cfg(test)]
    pub fn queued(&self) -> Vec<String> {
        std::iter::from_fn(|| Some(self.take(None)).filter(|b| !b.is_empty()))
            .flatten()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue that holds `frames` frames, and as many bytes as they can need.
    fn queue_of(frames: usize) -> (SendQueue, QueueReceiver) {
        send_queue(QueueLimits {
            frames,
            bytes: frames * 16,
        })
    }

    fn numbered(n: usize) -> Batch {
        Batch::new(Frame::from_encoded(format!("{n}\n").as_bytes()), 1)
    }

    /// What `write_to` wrote, as numbers.
    fn written(out: &[u8]) -> Vec<usize> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|line| line.parse().expect("a number"))
            .collect()
    }

    #[test]
    fn what_overflows_the_slot_is_written_after_it_in_order() {
        let (queue, receiver) = queue_of(1_000);
        for n in 0..200 {
            queue.push(&numbered(n)).expect("under the limit");
        }
        queue.close_with(Some(Frame::from_encoded(b"200\n")));
        queue.push(&numbered(201)).expect("dropped, not refused");
        let mut out = Vec::new();
        smol::block_on(receiver.write_to(&mut out, Duration::from_secs(1))).expect("written");
        assert_eq!(written(&out), (0..=200).collect::<Vec<_>>());
        assert!(receiver.state.overflow().capacity() == 0, "nothing kept");
    }

    #[test]
    fn pushes_racing_the_writer_keep_their_order() {
        let (queue, receiver) = queue_of(1_000_000);
        let pusher = std::thread::spawn(move || {
            for n in 0..20_000 {
                queue.push(&numbered(n)).expect("under the limit");
                if n % 1_000 == 0 {
                    std::thread::yield_now();
                }
            }
            queue.close_with(None);
        });
        let mut out = Vec::new();
        smol::block_on(receiver.write_to(&mut out, Duration::from_secs(1))).expect("written");
        pusher.join().expect("pushed");
        assert_eq!(written(&out), (0..20_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_reader_that_asks_for_more_than_it_reads_is_closed_as_too_slow() {
        // A byte limit of 160. One reply of any size goes, and replies read are forgotten.
        let (queue, receiver) = queue_of(10);
        let reply = Frame::from_encoded(format!("{}\n", "7".repeat(299)).as_bytes());
        queue.push_unmetered(reply.clone());
        queue.close_with(None);
        let mut out = Vec::new();
        smol::block_on(receiver.write_to(&mut out, Duration::from_secs(1))).expect("written");
        assert_eq!(out.len(), 300);
        assert_eq!(receiver.state.replies.load(Ordering::Relaxed), 0);
        // Asking again while the unread replies exceed the limit: closed, the backlog
        // dropped, the last word written.
        let (queue, receiver) = queue_of(10);
        queue.push_unmetered(reply.clone());
        queue.push(&numbered(1)).expect("under the limit");
        assert!(!queue.replies_overflowed());
        queue.push_unmetered(reply);
        assert!(queue.replies_overflowed() && queue.is_closed());
        let mut out = Vec::new();
        smol::block_on(receiver.write_to(&mut out, Duration::from_secs(1))).expect("written");
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.starts_with("{\"type\":\"closing\",\"code\":\"send_queue_full\""),
            "only the last word: {out}"
        );
        assert_eq!(out.lines().count(), 1, "{out}");
    }
}
