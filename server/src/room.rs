//! A room: its stream in the log, the window of its newest events kept in memory (replay
//! and recent history come from there), its members' fan-out, and its events on their way
//! to the log.
//!
//! Events wait in `pending` until the room submits them as one batch; while the log
//! records a batch, the next one gathers. Nothing reaches a member before its batch is
//! recorded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chat_shared::Frame;

use crate::fanout::FanOut;
use crate::log::{Event, Head, NewEvent, Seq, Span, StreamId};
use crate::queue::SendQueue;
use crate::registry::ConnId;

/// Member writes per second a room aims to stay under when it is busy: in a big room the
/// window between two batches grows (members / budget), so a join storm or a busy room of
/// thousands costs a bounded number of system calls instead of one per member per event.
const WRITE_BUDGET: f64 = 100_000.0;

/// An event waiting for the log, with what to do once it is recorded (or not).
#[derive(Debug)]
pub struct Pending {
    /// The event.
    pub event: NewEvent,
    /// What it means for its author.
    pub effect: Effect,
}

/// What follows when an event is recorded.
#[derive(Debug)]
pub enum Effect {
    /// Nothing more than its fan-out.
    None,
    /// A fresh login's `joined`: the member gets its welcome and joins the fan-out.
    Welcome(Box<Welcome>),
    /// A post: if it cannot be recorded, its sender hears so.
    Post {
        /// The sender.
        conn: ConnId,
        /// Its id, echoed in the error.
        id: Option<String>,
    },
}

/// A login waiting for its `joined` to be recorded.
#[derive(Debug)]
pub struct Welcome {
    /// The connection.
    pub conn: ConnId,
    /// Resume after this seq.
    pub since: Option<Seq>,
    /// The epoch `since` counts in.
    pub epoch: Option<String>,
    /// Where its frames go.
    pub queue: SendQueue,
    /// Told whether the login went through.
    pub reply: async_channel::Sender<bool>,
}

/// A room's state.
#[derive(Debug)]
pub struct Room {
    /// Its stream in the log.
    pub stream: StreamId,
    /// The newest recorded events, oldest first, seqs contiguous.
    window: VecDeque<Event>,
    capacity: usize,
    /// The ends of the stream in the log.
    pub head: Head,
    /// Its members.
    pub fanout: FanOut,
    pending: Vec<Pending>,
    in_flight: Option<Vec<Pending>>,
    last_submit: Instant,
}

impl Room {
    /// A room whose log stream ends at `head`, with `recent` (its newest events) in
    /// memory and at most `capacity` kept there.
    pub fn new(stream: StreamId, head: Head, recent: Vec<Event>, capacity: usize) -> Self {
        let now = Instant::now();
        let mut window: VecDeque<Event> = recent.into();
        while window.len() > capacity {
            window.pop_front();
        }
        Self {
            stream,
            window,
            capacity: capacity.max(1),
            head,
            fanout: FanOut::default(),
            pending: Vec::new(),
            in_flight: None,
            last_submit: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
        }
    }

    /// The oldest seq the server holds: the log's, or the window's when the log keeps
    /// nothing itself (0 when there is none).
    pub fn oldest(&self, durable: bool) -> Seq {
        if durable {
            self.head.oldest
        } else {
            self.window.front().map_or(0, |e| e.seq)
        }
    }

    /// Queues an event for the next batch.
    pub fn push(&mut self, pending: Pending) {
        self.pending.push(pending);
    }

    /// Whether an event is waiting or being recorded for this poster's post id.
    pub fn has_post(&self, poster: &str, id: &str) -> bool {
        let matches = |p: &Pending| {
            p.event.poster.as_deref() == Some(poster)
                && matches!(&p.event.body, crate::log::Body::Message { id: Some(i), .. } if i == id)
        };
        self.pending.iter().any(matches) || self.in_flight.iter().flatten().any(matches)
    }

    /// The least time between two batches: the configured window, longer in big rooms.
    fn window_length(&self, coalesce: Duration) -> Duration {
        let by_size = Duration::from_secs_f64(self.fanout.len() as f64 / WRITE_BUDGET);
        coalesce.max(by_size)
    }

    /// When the next batch may go, if one waits and none is being recorded.
    pub fn next_submit(&self, coalesce: Duration) -> Option<Instant> {
        (!self.pending.is_empty() && self.in_flight.is_none())
            .then(|| self.last_submit + self.window_length(coalesce))
    }

    /// The batch to record now, if one is due: the events leave `pending` and are in
    /// flight until [`Room::finish`].
    pub fn take_batch(&mut self, now: Instant, coalesce: Duration) -> Option<Vec<NewEvent>> {
        if self.next_submit(coalesce).is_none_or(|due| now < due) {
            return None;
        }
        self.last_submit = now;
        let batch = std::mem::take(&mut self.pending);
        let events = batch.iter().map(|p| p.event.clone()).collect();
        self.in_flight = Some(batch);
        Some(events)
    }

    /// The batch in flight is done: its events with what each meant.
    pub fn finish(&mut self) -> Vec<Pending> {
        self.in_flight.take().unwrap_or_default()
    }

    /// Whether events wait.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Keeps a recorded event in the window and gathers it for the members.
    pub fn record(&mut self, event: Event) {
        self.head.newest = event.seq;
        if self.head.oldest == 0 {
            self.head.oldest = event.seq;
        }
        if self.window.len() == self.capacity {
            self.window.pop_front();
        }
        self.fanout.gather(event.frame.clone());
        self.window.push_back(event);
    }

    /// What a login replays: after `since` when it counts in `epoch`, all of the window
    /// for another epoch, the newest `fresh` without `since`; never more than `max`.
    pub fn replay(
        &self,
        since: Option<Seq>,
        same_epoch: bool,
        fresh: usize,
        max: usize,
    ) -> Vec<Frame> {
        let after = match since {
            Some(since) if same_epoch => since,
            Some(_) => 0,
            None => self.head.newest.saturating_sub(fresh as Seq),
        };
        let newer = self.window.iter().filter(|e| e.seq > after);
        let count = newer.clone().count();
        newer
            .skip(count.saturating_sub(max))
            .map(|e| e.frame.clone())
            .collect()
    }

    /// A history answer from the window, if the window holds all of it (with a log that
    /// keeps nothing, `durable` false, the window is all there is).
    pub fn read_window(&self, span: Span, limit: usize, durable: bool) -> Option<Vec<Frame>> {
        let first = self.window.front().map_or(self.head.newest + 1, |e| e.seq);
        let frames: Vec<Frame> = match span {
            Span::Before(before) => {
                let older: Vec<&Event> = self.window.iter().filter(|e| e.seq < before).collect();
                let complete = older.len() >= limit
                    || first <= self.head.oldest.max(1)
                    || before <= self.head.oldest;
                if durable && !complete {
                    return None;
                }
                older[older.len().saturating_sub(limit)..]
                    .iter()
                    .map(|e| e.frame.clone())
                    .collect()
            }
            Span::After(after) => {
                if durable && after + 1 < first && after < self.head.newest {
                    return None;
                }
                self.window
                    .iter()
                    .filter(|e| e.seq > after)
                    .take(limit)
                    .map(|e| e.frame.clone())
                    .collect()
            }
        };
        Some(frames)
    }
}
