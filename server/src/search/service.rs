//! The search index's owner: opens or creates the index, starts its thread (and in a
//! cluster the feed's), and stops them when dropped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use tantivy::schema::Schema;
use tantivy::{Index, ReloadPolicy};

use super::indexer::{Feed, Indexer};
use super::{FORMAT, Place, SearchError, SearchIndex, follow, schema, tokenizer};
use crate::log::EventLog;

/// The search index and its thread; dropping it stops the thread (after a last commit).
pub struct Search {
    shared: Arc<SearchIndex>,
    feed: Feed,
    stop: Arc<AtomicBool>,
    /// The indexer's thread, and in a cluster the feed's.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Search {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.feed.wake();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Search {
    /// Opens (or creates) the index and starts its thread, which catches up with `log`
    /// and then takes what is sent to [`Search::feed`].
    pub fn start(place: &Place, log: Arc<dyn EventLog>) -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        let index = match place {
            Place::Memory | Place::Cluster(_) => Index::create_in_ram(schema),
            Place::Dir(dir) => open_dir(dir, schema)?,
        };
        let manager = index.tokenizers();
        manager.register(tokenizer::INDEXING, tokenizer::analyzer(false));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let shared = Arc::new(SearchIndex {
            index,
            reader,
            fields,
            ready: AtomicBool::new(false),
            streams_left: AtomicU64::new(0),
            invite_only: RwLock::default(),
            pinned: Mutex::default(),
        });
        let (sender, receiver) = mpsc::channel();
        let feed = Feed::new(sender);
        let stop = Arc::new(AtomicBool::new(false));
        let indexer = Indexer::new(shared.clone())?;
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map_err(|err| SearchError::Index(err.to_string()))
        };
        let mut threads = Vec::new();
        // In a cluster the feed is read from where Redis's stream ends now, before the
        // indexer catches up: what comes meanwhile waits in the channel.
        if let Place::Cluster(redis) = place {
            let after = follow::end(redis).map_err(|err| SearchError::Index(err.to_string()))?;
            let (redis, feed, stop) = (redis.clone(), feed.clone(), stop.clone());
            threads.push(spawn(
                "chat-search-feed",
                Box::new(move || follow::run(&redis, after, &feed, &stop)),
            )?);
        }
        let indexing = stop.clone();
        threads.push(spawn(
            "chat-search",
            Box::new(move || indexer.run(&*log, &receiver, &indexing)),
        )?);
        Ok(Self {
            shared,
            feed,
            stop,
            threads,
        })
    }

    /// Where committed events go to be indexed.
    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    /// The index, to search.
    pub fn index(&self) -> Arc<SearchIndex> {
        self.shared.clone()
    }
}

/// Opens the index in `dir/search`, or starts a new one there when there is none, when it
/// is of another format, or when it cannot be opened (it is derived data: the log has it
/// all).
fn open_dir(dir: &Path, schema: Schema) -> Result<Index, SearchError> {
    let path = dir.join("search");
    let format = path.join("format");
    let same_format = std::fs::read_to_string(&format).is_ok_and(|f| f.trim() == FORMAT);
    if same_format {
        match tantivy::directory::MmapDirectory::open(&path)
            .map_err(|err| err.to_string())
            .and_then(|d| Index::open(d).map_err(|err| err.to_string()))
        {
            Ok(index) if index.schema() == schema => return Ok(index),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "the search index has another layout; rebuilding it");
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "the search index cannot be opened; rebuilding it");
            }
        }
    } else if path.exists() {
        tracing::warn!(path = %path.display(), "the search index is of another format; rebuilding it");
    }
    let io = |err: std::io::Error| SearchError::Index(format!("{}: {err}", path.display()));
    if path.exists() {
        std::fs::remove_dir_all(&path).map_err(io)?;
    }
    std::fs::create_dir_all(&path).map_err(io)?;
    let directory = tantivy::directory::MmapDirectory::open(&path)
        .map_err(|err| SearchError::Index(err.to_string()))?;
    let index = Index::create(directory, schema, tantivy::IndexSettings::default())?;
    std::fs::write(&format, format!("{FORMAT}\n")).map_err(io)?;
    Ok(index)
}
