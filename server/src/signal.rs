//! A one-way signal that many tasks can wait for: the server's shutdown, a send queue's
//! close, the last connection gone.

use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

/// A one-way signal that many tasks can wait for.
#[derive(Debug, Default)]
pub struct Signal {
    raised: AtomicBool,
    event: Event,
}

impl Signal {
    /// Raises the signal, waking every waiter.
    pub fn raise(&self) {
        if !self.raised.swap(true, Ordering::AcqRel) {
            self.event.notify(usize::MAX);
        }
    }

    /// Whether it was raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Resolves once the signal is raised.
    pub async fn wait(&self) {
        loop {
            if self.is_raised() {
                return;
            }
            let listener = self.event.listen();
            if self.is_raised() {
                return;
            }
            listener.await;
        }
    }
}
