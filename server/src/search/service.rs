//! The search index's owner: opens or creates the index, starts its thread (and in a
//! cluster the feed's), and stops them when dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use tantivy::schema::Schema;
use tantivy::{Index, ReloadPolicy};

use super::indexer::{Feed, Indexer};
use super::unsynced::Unsynced;
use super::{FORMAT, Place, SearchError, SearchIndex, follow, schema, tokenizer};
use crate::log::EventLog;

/// The search index and its thread; dropping it stops the thread (after a last commit).
pub struct Search {
    shared: Arc<SearchIndex>,
    feed: Feed,
    stop: Arc<AtomicBool>,
    /// The indexer's thread, and in a cluster the feed's.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The index's directory in the data directory, kept from one start to the next.
    kept: Option<PathBuf>,
    /// A cluster node's own directory, removed when dropped (after the threads stopped).
    _scratch: Option<Scratch>,
}

impl Drop for Search {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.feed.wake();
        let mut stopped = true;
        for thread in self.threads.drain(..) {
            stopped &= thread.join().is_ok();
        }
        // An index whose writer never started is not this server's to call whole.
        if let Some(dir) = &self.kept
            && stopped
            && self.shared.failed.get().is_none()
        {
            // Everything is committed and written: no check needed at the next start.
            let _ = std::fs::write(dir.join(CLEAN), b"");
        }
    }
}

/// The file that says the index was stopped cleanly (its files are whole).
const CLEAN: &str = "clean";

/// The file that names the index's layout ([`FORMAT`]).
const FORMAT_FILE: &str = "format";

impl Search {
    /// Opens (or creates) the index and starts its thread, which catches up with `log`
    /// and then takes what is sent to [`Search::feed`].
    pub fn start(place: &Place, log: Arc<dyn EventLog>) -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        let (index, kept, scratch) = match place {
            Place::Memory => (Index::create_in_ram(schema), None, None),
            Place::Dir(dir) => (open_dir(dir, schema)?, Some(dir.join("search")), None),
            Place::Cluster(_) => {
                // Removed again if the start goes no further.
                let scratch = Scratch::new();
                let index = create_in(scratch.path(), schema)?;
                (index, None, Some(scratch))
            }
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
            failed: std::sync::OnceLock::new(),
            streams_left: AtomicU64::new(0),
            invite_only: RwLock::default(),
            pinned: Mutex::default(),
        });
        let (sender, receiver) = mpsc::channel();
        let feed = Feed::new(sender);
        let stop = Arc::new(AtomicBool::new(false));
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
        let writing = shared.clone();
        threads.push(spawn(
            "chat-search",
            Box::new(move || {
                // Indexing yields to the chat: this thread, and the writer's threads that it
                // starts (they inherit it), run only on what the chat leaves of the cores.
                // So the start does not wait for it: on a busy machine that could take
                // seconds. Until it has caught up, searches are answered "try again".
                idle_priority();
                match Indexer::new(writing.clone()) {
                    Ok(indexer) => indexer.run(&*log, &receiver, &indexing),
                    Err(err) => {
                        tracing::error!(%err, "the search index cannot be written: search is off");
                        writing.fail(&err);
                    }
                }
            }),
        )?);
        Ok(Self {
            shared,
            feed,
            stop,
            threads,
            kept,
            _scratch: scratch,
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
    let format = path.join(FORMAT_FILE);
    let same_format = std::fs::read_to_string(&format).is_ok_and(|f| f.trim() == FORMAT);
    if same_format {
        match Unsynced::open(&path)
            .map_err(|err| err.to_string())
            .and_then(|d| Index::open(d).map_err(|err| err.to_string()))
        {
            Ok(index) if index.schema() == schema => {
                // Stopped cleanly, or else checked: the files are not synced (see
                // `unsynced`), and a machine that died may have left them damaged.
                let clean = std::fs::remove_file(path.join(CLEAN)).is_ok();
                match index.validate_checksum() {
                    _ if clean => return Ok(index),
                    Ok(damaged) if damaged.is_empty() => return Ok(index),
                    Ok(damaged) => tracing::warn!(
                        path = %path.display(),
                        files = damaged.len(),
                        "the search index's files are damaged; rebuilding it"
                    ),
                    Err(err) => tracing::warn!(
                        path = %path.display(),
                        %err,
                        "the search index cannot be checked; rebuilding it"
                    ),
                }
            }
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
    create_in(&path, schema)
}

/// A new, empty index in `path` (whatever was there goes).
fn create_in(path: &Path, schema: Schema) -> Result<Index, SearchError> {
    let io = |err: std::io::Error| SearchError::Index(format!("{}: {err}", path.display()));
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(io)?;
    }
    std::fs::create_dir_all(path).map_err(io)?;
    let directory = Unsynced::open(path).map_err(|err| SearchError::Index(err.to_string()))?;
    let index = Index::create(directory, schema, tantivy::IndexSettings::default())?;
    std::fs::write(path.join(FORMAT_FILE), format!("{FORMAT}\n")).map_err(io)?;
    Ok(index)
}

/// Scratch indexes this process started: several servers may run in one process (tests,
/// embedding), each with its own.
static SCRATCHES: AtomicU64 = AtomicU64::new(0);

/// What a cluster node's scratch directory is called: the node's process id follows, then
/// a count of the indexes the process started.
const SCRATCH: &str = "chat-search-";

/// A cluster node's index directory, `chat-search-PID-N` under the system's temporary
/// directory (`TMPDIR`), removed when dropped; a node killed leaves its own, which the
/// next one started on the machine removes. (On disk rather than in memory: the index's
/// files are written by threads its writer starts and ends at every commit, and in memory
/// each file kept the allocator's pages of a thread long gone.)
pub(super) struct Scratch(PathBuf);

impl Scratch {
    /// Names a new one, after removing those of nodes no longer running (whether a
    /// process runs is read from /proc: without it, nothing is removed).
    pub(super) fn new() -> Self {
        let tmp = std::env::temp_dir();
        let running = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
        if Path::new("/proc/self").exists()
            && let Ok(entries) = std::fs::read_dir(&tmp)
        {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let pid = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(SCRATCH))
                    .map(|rest| rest.split_once('-').map_or(rest, |(pid, _)| pid));
                if pid
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(|pid| !running(pid))
                {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let nth = SCRATCHES.fetch_add(1, Ordering::Relaxed);
        Self(tmp.join(format!("{SCRATCH}{}-{nth}", std::process::id())))
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Puts the calling thread (and the threads it starts from now on) at idle priority: it
/// runs when no other thread of the machine wants the core. Where that is not available,
/// nothing changes.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if let Err(err) =
            set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle)
        {
            tracing::debug!(?err, "indexing keeps its priority");
        }
    }
}
