//! The ids of recent posts, per poster, with the message each produced: a `say` whose id
//! is remembered is answered with the original, never posted twice.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chat_shared::Frame;
use chat_shared::limits::REMEMBERED_IDS;

use crate::registry::Registry;

/// How long post ids are kept in memory at least, after the name's last post (the log may
/// remember them for longer).
const REMEMBER_FOR: Duration = Duration::from_secs(10 * 60);

/// The ids of one name's recent posts, with the message each produced.
#[derive(Default)]
struct Recent {
    by_id: HashMap<Box<str>, Frame>,
    order: VecDeque<Box<str>>,
    last_post: Option<Instant>,
}

/// Every poster's recent post ids, by case-folded name. Only names with posts to remember
/// have an entry: an idle connection costs none.
#[derive(Default)]
pub struct PostIds {
    by_poster: HashMap<String, Recent>,
}

impl PostIds {
    /// The message a post with this id produced, if it is remembered.
    pub fn original(&self, poster: &str, id: &str) -> Option<&Frame> {
        self.by_poster.get(poster)?.by_id.get(id)
    }

    /// Remembers the message a post with this id produced (the oldest of a poster's
    /// [`REMEMBERED_IDS`] goes).
    pub fn remember(&mut self, poster: &str, id: &str, frame: Frame) {
        let recent = self.by_poster.entry(poster.to_string()).or_default();
        if recent.by_id.contains_key(id) {
            return;
        }
        if recent.order.len() == REMEMBERED_IDS
            && let Some(oldest) = recent.order.pop_front()
        {
            recent.by_id.remove(&oldest);
        }
        recent.order.push_back(id.into());
        recent.by_id.insert(id.into(), frame);
    }

    /// A remembered post was deleted: a copy sent again gets it as it is now.
    pub fn erase(&mut self, poster: &str, id: &str, frame: Frame) {
        if let Some(kept) = self
            .by_poster
            .get_mut(poster)
            .and_then(|recent| recent.by_id.get_mut(id))
        {
            *kept = frame;
        }
    }

    /// A poster just posted with an id: its ids are kept at least [`REMEMBER_FOR`] from
    /// now.
    pub fn posted(&mut self, poster: &str, now: Instant) {
        self.by_poster
            .entry(poster.to_string())
            .or_default()
            .last_post = Some(now);
    }

    /// Forgets the ids of names that are not online and have not posted for
    /// [`REMEMBER_FOR`] (the log still has them, for their next login).
    pub fn sweep(&mut self, now: Instant, registry: &Registry) {
        self.by_poster.retain(|folded, recent| {
            registry.is_online(folded)
                || recent
                    .last_post
                    .is_some_and(|t| now.duration_since(t) < REMEMBER_FOR)
        });
    }
}
