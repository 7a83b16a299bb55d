//! The durable log: one redb file in the data directory. Each batch is one write
//! transaction, committed with an fsync before [`EventLog::append`] returns; redb's
//! copy-on-write pages and checksums mean a crash (even a power loss) leaves the last
//! committed batch intact and nothing half-written.
//!
//! Tables: `events` ((stream, seq) → the encoded frame, exactly as members got it),
//! `streams` (stream → newest seq), `posts` ((poster, id) → (stream, seq)) with
//! `post_order` and `posters` keeping only each poster's last 256 ids, `rooms` (stream →
//! the room's name as first spelled), `accounts` (case-folded name → (name as registered,
//! Argon2id hash in PHC form)), `conversations` ((account, other account) → (the other's
//! name, newest seq, its time)), `room_state` ((stream, field) → value: a room's topic,
//! roles, settings, bans, mutes and invitations, see [`super::state`]), `server_bans`
//! (key → what the ban holds), and `meta` (the format and the epoch, created with the
//! store and never changed). A direct conversation is a stream like a room's.
//!
//! A deleted message is stored anew without its text in the same transaction as its
//! `deleted` event. redb copies pages on write, so the old text would live on in freed
//! pages of the file; after a commit that erased a text the store is compacted, which
//! moves live pages over the freed ones and truncates the rest: at once when the last
//! compaction was over [`super::scrub::SCRUB_EVERY`] ago, else once that much time has passed (see
//! [`EventLog::tidy`]), and always when the store is closed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use chat_shared::limits::REMEMBERED_IDS;
use chat_shared::{Conversation, Frame};
use hdrhistogram::Histogram;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::amend::{Aside, Refusal, change_of, decide, erased};
use super::scrub::Scrub;
use super::state::{FieldOp, changes, invitee, inviter};
use super::{
    Body, Event, EventLog, Head, LogError, NewEvent, ReadMark, Seq, Span, StreamId, frame,
    latest_first,
};

pub(super) const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
pub(super) const STREAMS: TableDefinition<&str, u64> = TableDefinition::new("streams");
pub(super) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
pub(super) const POSTS: TableDefinition<(&str, &str), (&str, u64)> = TableDefinition::new("posts");
pub(super) const POST_ORDER: TableDefinition<(&str, u64), &str> =
    TableDefinition::new("post_order");
pub(super) const POSTERS: TableDefinition<&str, u64> = TableDefinition::new("posters");
pub(super) const ROOMS: TableDefinition<&str, &str> = TableDefinition::new("rooms");
pub(super) const ACCOUNTS: TableDefinition<&str, (&str, &str)> = TableDefinition::new("accounts");
pub(super) const CONVERSATIONS: TableDefinition<(&str, &str), (&str, u64, u64)> =
    TableDefinition::new("conversations");
pub(super) const ROOM_STATE: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("room_state");
pub(super) const SERVER_BANS: TableDefinition<&str, &str> = TableDefinition::new("server_bans");
pub(super) const INVITES_OF: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("invites_of");
/// What is kept beside a message (see [`Aside`]): (stream, its seq) to the aside.
pub(super) const ASIDES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("asides");
/// Read markers: (account, stream) to the newest seq the account has seen there.
pub(super) const READ: TableDefinition<(&str, &str), u64> = TableDefinition::new("read");

/// The tables that remember each poster's last post ids.
struct PostTables<'a, 'txn> {
    posts: &'a mut redb::Table<'txn, (&'static str, &'static str), (&'static str, u64)>,
    order: &'a mut redb::Table<'txn, (&'static str, u64), &'static str>,
    posters: &'a mut redb::Table<'txn, &'static str, u64>,
}

impl PostTables<'_, '_> {
    /// Remembers a post's id with where its message is; only a poster's last
    /// [`REMEMBERED_IDS`] are kept.
    fn remember(&mut self, poster: &str, id: &str, at: (&str, Seq)) -> Result<(), LogError> {
        let n = self
            .posters
            .get(poster)
            .map_err(store_error)?
            .map_or(0, |v| v.value());
        self.posts.insert((poster, id), at).map_err(store_error)?;
        self.order.insert((poster, n), id).map_err(store_error)?;
        self.posters.insert(poster, n + 1).map_err(store_error)?;
        if let Some(old) = n.checked_sub(REMEMBERED_IDS as u64)
            && let Some(old_id) = self
                .order
                .remove((poster, old))
                .map_err(store_error)?
                .map(|v| v.value().to_string())
        {
            self.posts
                .remove((poster, old_id.as_str()))
                .map_err(store_error)?;
        }
        Ok(())
    }
}

/// The rows of a field table (keyed (owner, field)) whose owner is `owner`: each field
/// and its value.
pub(super) fn fields_of(
    table: &impl ReadableTable<(&'static str, &'static str), &'static str>,
    owner: &str,
) -> Result<Vec<(String, String)>, LogError> {
    let mut fields = Vec::new();
    for row in table.range((owner, "")..).map_err(store_error)? {
        let (key, value) = row.map_err(store_error)?;
        let (who, field) = key.value();
        if who != owner {
            break;
        }
        fields.push((field.to_string(), value.value().to_string()));
    }
    Ok(fields)
}

/// Removes the rows of a table keyed (owner, …) whose owner is `owner`.
fn remove_owned<V: redb::Value + 'static>(
    table: &mut redb::Table<'_, (&'static str, &'static str), V>,
    owner: &str,
) -> Result<(), LogError> {
    let keys: Vec<String> = table
        .range((owner, "")..)
        .map_err(store_error)?
        .map_while(|row| {
            let (key, _) = row.ok()?;
            let (who, rest) = key.value();
            (who == owner).then(|| rest.to_string())
        })
        .collect();
    for rest in keys {
        table.remove((owner, rest.as_str())).map_err(store_error)?;
    }
    Ok(())
}

/// The definition of a field table.
type FieldDefinition = TableDefinition<'static, (&'static str, &'static str), &'static str>;

/// A field table of the store: (stream or account, field) to value.
type FieldTable<'txn> = redb::Table<'txn, (&'static str, &'static str), &'static str>;

/// Applies a change to a room's fields in the store, and to the index of invitations by
/// account.
fn apply(
    table: &mut FieldTable<'_>,
    invites: &mut FieldTable<'_>,
    stream: &str,
    op: &FieldOp,
) -> Result<(), LogError> {
    let fields: Vec<String> = match op {
        FieldOp::Set(field, value) => {
            table
                .insert((stream, field.as_str()), value.as_str())
                .map_err(store_error)?;
            if let Some(who) = invitee(field) {
                invites
                    .insert((who, stream), inviter(value))
                    .map_err(store_error)?;
            }
            return Ok(());
        }
        FieldOp::Remove(field) => vec![field.clone()],
        FieldOp::RemovePrefix(prefix) => table
            .range((stream, prefix.as_str())..)
            .map_err(store_error)?
            .map_while(|entry| {
                let (key, _) = entry.ok()?;
                let (owner, field) = key.value();
                (owner == stream && field.starts_with(prefix.as_str())).then(|| field.to_string())
            })
            .collect(),
    };
    for field in fields {
        table
            .remove((stream, field.as_str()))
            .map_err(store_error)?;
        if let Some(who) = invitee(&field) {
            invites.remove((who, stream)).map_err(store_error)?;
        }
    }
    Ok(())
}

/// A key of `events`, as redb hands it out.
type EventKey<'a> = redb::AccessGuard<'a, (&'static str, u64)>;
/// A value of `events`, as redb hands it out.
type EventValue<'a> = redb::AccessGuard<'a, &'static [u8]>;

/// What `meta.format` holds in a store this code can read.
const FORMAT: &str = "chat-store-1";
/// The store's file in the data directory.
pub const FILE: &str = "chat.redb";

/// Why a store cannot be used: always names the file.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the store {path}: {cause}")]
pub struct OpenError {
    path: PathBuf,
    cause: String,
}

/// What a store did since it was opened.
pub struct Activity {
    /// Events recorded.
    pub events: u64,
    /// How long each commit took, in microseconds.
    pub commit_times: Histogram<u64>,
}

impl std::fmt::Display for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let times = &self.commit_times;
        let ms = |micros: u64| micros as f64 / 1000.0;
        write!(
            f,
            "recorded {} events in {} commits; a commit took {:.2} ms on average, \
             p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.events,
            times.len(),
            times.mean() / 1000.0,
            ms(times.value_at_quantile(0.5)),
            ms(times.value_at_quantile(0.99)),
            ms(times.value_at_quantile(0.999)),
            ms(times.max()),
        )
    }
}

/// The durable log.
pub struct Store {
    /// Shared by every read and the recorder's writes; taken whole only to compact.
    db: RwLock<Database>,
    /// Texts erased by commits and not yet from the file.
    scrub: Scrub,
    path: PathBuf,
    epoch: String,
    /// The newest committed seq of each stream: only [`Store::append`] changes it.
    newest: Mutex<HashMap<StreamId, Seq>>,
    created: bool,
    appended: AtomicU64,
    /// How long each commit took, in microseconds (the fsync included).
    commit_times: Mutex<Histogram<u64>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

type Table<'t, K, V> = redb::Table<'t, K, V>;

/// Decides an event about a message (see [`super::amend`]) against the message as the
/// store holds it, in the commit that records the event (at `seq`): stores the message
/// anew, and when it is deleted, the texts of its edits go too. `Ok(Err(_))`: not to be
/// recorded.
fn amend(
    events: &mut Table<'_, (&'static str, u64), &'static [u8]>,
    asides: &mut Table<'_, (&'static str, u64), &'static [u8]>,
    new: &NewEvent,
    seq: Seq,
) -> Result<Result<(), Refusal>, LogError> {
    let Some((target, change)) = change_of(&new.body) else {
        return Ok(Ok(()));
    };
    let stream = new.stream.as_str();
    let Some(current) = events
        .get((stream, target))
        .map_err(store_error)?
        .map(|frame| Frame::from_encoded(frame.value()))
    else {
        return Ok(Err(Refusal::NoSuchMessage));
    };
    let mut aside = asides
        .get((stream, target))
        .map_err(store_error)?
        .map(|kept| Aside::decode(kept.value()))
        .unwrap_or_default();
    let before = aside.clone();
    let amended = match decide(&current, &mut aside, &change, seq, new.time) {
        Ok(amended) => amended,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if let Some(frame) = amended {
        events
            .insert((stream, target), frame.as_bytes())
            .map_err(store_error)?;
    }
    if matches!(new.body, Body::Deleted { .. }) {
        for edit in std::mem::take(&mut aside.edits) {
            let Some(kept) = events
                .get((stream, edit))
                .map_err(store_error)?
                .map(|frame| Frame::from_encoded(frame.value()))
            else {
                continue;
            };
            events
                .insert((stream, edit), erased(&kept).as_bytes())
                .map_err(store_error)?;
        }
    }
    if aside != before {
        match aside.encode() {
            Some(bytes) => asides.insert((stream, target), bytes.as_slice()),
            None => asides.remove((stream, target)),
        }
        .map_err(store_error)?;
    }
    Ok(Ok(()))
}

fn store_error(err: impl std::fmt::Display) -> LogError {
    LogError::Store(err.to_string())
}

impl Store {
    /// Opens the store in `dir`, creating the directory and a new store (with a new
    /// epoch) when there is none. An existing file that is not a store of this format, or
    /// is damaged, is an error and is left as it is.
    pub fn open(dir: &Path, epoch: impl FnOnce() -> String) -> Result<Self, OpenError> {
        let cache = crate::config::DEFAULT_STORE_CACHE_MIB << 20;
        Self::open_with_cache(dir, cache, epoch)
    }

    /// [`Store::open`], with the store's own cache holding at most `cache` bytes of its
    /// file.
    pub fn open_with_cache(
        dir: &Path,
        cache: usize,
        epoch: impl FnOnce() -> String,
    ) -> Result<Self, OpenError> {
        let path = dir.join(FILE);
        let fail = |cause: String| OpenError {
            path: path.clone(),
            cause,
        };
        std::fs::create_dir_all(dir).map_err(|err| fail(err.to_string()))?;
        let exists = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => true,
            Ok(_) => return Err(fail("it is not a file".into())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
            Err(err) => return Err(fail(err.to_string())),
        };
        // Never create on top of an existing file: `open` fails where `create` would
        // initialise.
        let mut builder = Database::builder();
        builder.set_cache_size(cache);
        let db = if exists {
            builder.open(&path)
        } else {
            builder.create(&path)
        }
        .map_err(|err| fail(err.to_string()))?;
        let read = db.begin_read().map_err(|err| fail(err.to_string()))?;
        let tables = read
            .list_tables()
            .map_err(|err| fail(err.to_string()))?
            .count();
        let format_and_epoch = match read.open_table(META) {
            Ok(meta) => {
                let get = |key: &str| -> Result<Option<String>, OpenError> {
                    Ok(meta
                        .get(key)
                        .map_err(|err| fail(err.to_string()))?
                        .map(|v| v.value().to_string()))
                };
                Some((get("format")?, get("epoch")?))
            }
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(err) => return Err(fail(err.to_string())),
        };
        drop(read);
        let (epoch, created) = match format_and_epoch {
            Some((Some(format), Some(epoch))) if format == FORMAT => (epoch, false),
            Some((format, _)) => {
                return Err(fail(format!(
                    "it is not a chat store of this version (format {})",
                    format.as_deref().unwrap_or("missing")
                )));
            }
            // No table at all: a store created a moment before a crash, or a new one.
            None if tables == 0 => (Self::initialise(&db, &epoch()).map_err(fail)?, true),
            None => return Err(fail("it holds tables, but is not a chat store".into())),
        };
        let newest = {
            let read = db.begin_read().map_err(|err| fail(err.to_string()))?;
            let streams = read
                .open_table(STREAMS)
                .map_err(|err| fail(err.to_string()))?;
            let mut newest = HashMap::new();
            for entry in streams.iter().map_err(|err| fail(err.to_string()))? {
                let (stream, seq) = entry.map_err(|err| fail(err.to_string()))?;
                newest.insert(StreamId::new(stream.value()), seq.value());
            }
            newest
        };
        Ok(Self {
            db: RwLock::new(db),
            scrub: Scrub::default(),
            path,
            epoch,
            newest: Mutex::new(newest),
            created,
            appended: AtomicU64::new(0),
            commit_times: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 2).expect("constant, valid bounds"),
            ),
        })
    }

    /// Creates the tables and records the format and the epoch.
    pub(super) fn initialise(db: &Database, epoch: &str) -> Result<String, String> {
        let write = db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut meta = write.open_table(META).map_err(|e| e.to_string())?;
            meta.insert("format", FORMAT).map_err(|e| e.to_string())?;
            meta.insert("epoch", epoch).map_err(|e| e.to_string())?;
            for table in [STREAMS, POSTERS] {
                write.open_table(table).map_err(|e| e.to_string())?;
            }
            write.open_table(EVENTS).map_err(|e| e.to_string())?;
            write.open_table(POSTS).map_err(|e| e.to_string())?;
            write.open_table(POST_ORDER).map_err(|e| e.to_string())?;
            write.open_table(ROOMS).map_err(|e| e.to_string())?;
            write.open_table(ACCOUNTS).map_err(|e| e.to_string())?;
            write.open_table(CONVERSATIONS).map_err(|e| e.to_string())?;
        }
        write.commit().map_err(|e| e.to_string())?;
        Ok(epoch.to_string())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this run created it.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Events held, all streams together.
    pub fn events(&self) -> u64 {
        self.newest.lock().map_or(0, |newest| newest.values().sum())
    }

    /// [`fields_of`] `owner` in `table`, read now (none when the table was never made).
    fn owned_fields(
        &self,
        table: FieldDefinition,
        owner: &str,
    ) -> Result<Vec<(String, String)>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        match read.open_table(table) {
            Ok(table) => fields_of(&table, owner),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(err) => Err(store_error(err)),
        }
    }

    /// The database, for a read or a write transaction.
    pub(super) fn db(&self) -> Result<RwLockReadGuard<'_, Database>, LogError> {
        self.db.read().map_err(store_error)
    }

    /// Compacts the file if a commit erased a text (see [`Scrub`]).
    fn scrub(&self, force: bool) -> bool {
        self.scrub.run(force, "the store's file", || {
            // Never waits: a backup holds a read of the whole store for as long as it
            // copies, and the recorder's thread (which runs this) must not wait for it. A
            // scrub that finds the store busy is tried again later.
            let mut db = match self.db.try_write() {
                Ok(db) => db,
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err("the store is being read whole (a backup); later".into());
                }
                Err(std::sync::TryLockError::Poisoned(err)) => return Err(err.to_string()),
            };
            // Each pass moves what it can; the last finds nothing more to move.
            while db.compact().map_err(|err| err.to_string())? {}
            Ok(())
        })
    }

    /// Since it was opened: the events recorded and how long their commits took.
    pub fn activity(&self) -> Activity {
        let times = self.commit_times.lock().map_or_else(
            |poisoned| poisoned.into_inner().clone(),
            |times| times.clone(),
        );
        Activity {
            events: self.appended.load(Ordering::Relaxed),
            commit_times: times,
        }
    }
}

impl EventLog for Store {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn durable(&self) -> bool {
        true
    }

    fn head(&self, stream: &StreamId) -> Result<Head, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let events = read.open_table(EVENTS).map_err(store_error)?;
        let first = events
            .range((stream.as_str(), 0)..=(stream.as_str(), u64::MAX))
            .map_err(store_error)?
            .next()
            .transpose()
            .map_err(store_error)?
            .map_or(0, |(key, _)| key.value().1);
        let newest = self
            .newest
            .lock()
            .map_err(store_error)?
            .get(stream)
            .copied()
            .unwrap_or(0);
        Ok(Head {
            oldest: first,
            newest,
        })
    }

    fn append(&self, batch: &[NewEvent]) -> Result<Vec<Event>, LogError> {
        let started = std::time::Instant::now();
        let mut newest = self.newest.lock().map_err(store_error)?;
        // Seqs are taken from a copy: if the commit fails, nothing was used.
        let mut next: HashMap<StreamId, Seq> = HashMap::new();
        let mut events = Vec::with_capacity(batch.len());
        let mut erased = false;
        let db = self.db()?;
        let write = db.begin_write().map_err(store_error)?;
        {
            let mut table = write.open_table(EVENTS).map_err(store_error)?;
            let mut posts = write.open_table(POSTS).map_err(store_error)?;
            let mut order = write.open_table(POST_ORDER).map_err(store_error)?;
            let mut posters = write.open_table(POSTERS).map_err(store_error)?;
            let mut rooms = write.open_table(ROOMS).map_err(store_error)?;
            let mut conversations = write.open_table(CONVERSATIONS).map_err(store_error)?;
            let mut state = write.open_table(ROOM_STATE).map_err(store_error)?;
            let mut invites = write.open_table(INVITES_OF).map_err(store_error)?;
            let mut asides = write.open_table(ASIDES).map_err(store_error)?;
            for new in batch {
                let seq = next
                    .entry(new.stream.clone())
                    .or_insert_with(|| newest.get(&new.stream).copied().unwrap_or(0));
                if *seq == 0 && new.direct.is_none() {
                    // A new room: remember how it was spelled.
                    rooms
                        .insert(new.stream.as_str(), &*new.room)
                        .map_err(store_error)?;
                }
                if let Err(refusal) = amend(&mut table, &mut asides, new, *seq + 1)? {
                    events.push(Event::unrecorded(refusal.answer_to(new)));
                    continue;
                }
                erased |= matches!(new.body, Body::Deleted { .. });
                *seq += 1;
                let seq = *seq;
                let frame = frame(seq, new);
                table
                    .insert((new.stream.as_str(), seq), frame.as_bytes())
                    .map_err(store_error)?;
                for op in changes(frame.as_bytes()) {
                    apply(&mut state, &mut invites, new.stream.as_str(), &op)?;
                }
                if let (Some(direct), Body::Message { from, .. }) = (&new.direct, &new.body) {
                    conversations
                        .insert(
                            (direct.from_key.as_str(), direct.to_key.as_str()),
                            (direct.to.as_str(), seq, new.time),
                        )
                        .map_err(store_error)?;
                    conversations
                        .insert(
                            (direct.to_key.as_str(), direct.from_key.as_str()),
                            (from.as_str(), seq, new.time),
                        )
                        .map_err(store_error)?;
                }
                if let (Some(poster), Body::Message { id: Some(id), .. }) = (&new.poster, &new.body)
                {
                    let mut ids = PostTables {
                        posts: &mut posts,
                        order: &mut order,
                        posters: &mut posters,
                    };
                    ids.remember(poster, id, (new.stream.as_str(), seq))?;
                }
                events.push(Event { seq, frame });
            }
            let mut streams = write.open_table(STREAMS).map_err(store_error)?;
            for (stream, seq) in &next {
                streams.insert(stream.as_str(), *seq).map_err(store_error)?;
            }
        }
        write.commit().map_err(store_error)?;
        // A compaction (below) takes the database whole.
        drop(db);
        newest.extend(next);
        if let Ok(mut times) = self.commit_times.lock() {
            times.saturating_record(started.elapsed().as_micros() as u64);
        }
        self.appended
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if erased {
            self.scrub.erased();
            self.scrub(false);
        }
        Ok(events)
    }

    fn tidy(&self) -> bool {
        self.scrub(false)
    }

    fn room_state(&self, stream: &StreamId) -> Result<Vec<(String, String)>, LogError> {
        self.owned_fields(ROOM_STATE, stream.as_str())
    }

    fn invites_of(&self, account: &str) -> Result<Vec<(String, String)>, LogError> {
        self.owned_fields(INVITES_OF, account)
    }

    fn server_bans(&self) -> Result<Vec<(String, String)>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let table = match read.open_table(SERVER_BANS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(store_error(err)),
        };
        table
            .iter()
            .map_err(store_error)?
            .map(|entry| {
                entry
                    .map_err(store_error)
                    .map(|(k, v)| (k.value().to_string(), v.value().to_string()))
            })
            .collect()
    }

    fn set_server_ban(&self, key: &str, value: Option<&str>) -> Result<(), LogError> {
        let db = self.db()?;
        let write = db.begin_write().map_err(store_error)?;
        {
            let mut table = write.open_table(SERVER_BANS).map_err(store_error)?;
            match value {
                Some(value) => {
                    table.insert(key, value).map_err(store_error)?;
                }
                None => {
                    table.remove(key).map_err(store_error)?;
                }
            }
        }
        write.commit().map_err(store_error)
    }

    fn read(&self, stream: &StreamId, span: Span, limit: usize) -> Result<Vec<Event>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let table = read.open_table(EVENTS).map_err(store_error)?;
        let key = stream.as_str();
        let to_event = |entry: Result<(EventKey<'_>, EventValue<'_>), redb::StorageError>| {
            entry.map_err(store_error).map(|(k, v)| Event {
                seq: k.value().1,
                frame: Frame::from_encoded(v.value()),
            })
        };
        match span {
            Span::Before(before) => {
                let mut events = table
                    .range((key, 0)..(key, before))
                    .map_err(store_error)?
                    .rev()
                    .take(limit)
                    .map(to_event)
                    .collect::<Result<Vec<_>, _>>()?;
                events.reverse();
                Ok(events)
            }
            Span::After(after) => table
                .range((key, after.saturating_add(1))..=(key, u64::MAX))
                .map_err(store_error)?
                .take(limit)
                .map(to_event)
                .collect(),
        }
    }

    fn read_markers(&self, account: &str) -> Result<Vec<(String, Seq)>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let table = match read.open_table(READ) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(store_error(err)),
        };
        let mut marks = Vec::new();
        for entry in table.range((account, "")..).map_err(store_error)? {
            let (key, seq) = entry.map_err(store_error)?;
            let (owner, stream) = key.value();
            if owner != account {
                break;
            }
            marks.push((stream.to_string(), seq.value()));
        }
        Ok(marks)
    }

    fn set_read(&self, marks: &[ReadMark]) -> Result<(), LogError> {
        let db = self.db()?;
        let write = db.begin_write().map_err(store_error)?;
        {
            let mut table = write.open_table(READ).map_err(store_error)?;
            for mark in marks {
                let key = (mark.account.as_str(), mark.stream.as_str());
                let kept = table
                    .get(key)
                    .map_err(store_error)?
                    .map_or(0, |s| s.value());
                if mark.seq > kept {
                    table.insert(key, mark.seq).map_err(store_error)?;
                }
            }
        }
        write.commit().map_err(store_error)
    }

    fn streams(&self) -> Result<Vec<StreamId>, LogError> {
        let mut streams: Vec<StreamId> = self
            .newest
            .lock()
            .map_err(store_error)?
            .keys()
            .cloned()
            .collect();
        streams.sort_unstable();
        Ok(streams)
    }

    fn rooms(&self) -> Result<Vec<(StreamId, String)>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let rooms = match read.open_table(ROOMS) {
            Ok(rooms) => rooms,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(store_error(err)),
        };
        rooms
            .iter()
            .map_err(store_error)?
            .map(|entry| {
                entry
                    .map_err(store_error)
                    .map(|(key, name)| (StreamId::new(key.value()), name.value().to_string()))
            })
            .collect()
    }

    fn accounts(&self) -> Result<Vec<(String, String)>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let accounts = match read.open_table(ACCOUNTS) {
            Ok(accounts) => accounts,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(store_error(err)),
        };
        accounts
            .iter()
            .map_err(store_error)?
            .map(|entry| {
                entry.map_err(store_error).map(|(_, value)| {
                    let (name, hash) = value.value();
                    (name.to_string(), hash.to_string())
                })
            })
            .collect()
    }

    fn create_account(&self, folded: &str, name: &str, hash: &str) -> Result<bool, LogError> {
        let db = self.db()?;
        let write = db.begin_write().map_err(store_error)?;
        let created = {
            let mut accounts = write.open_table(ACCOUNTS).map_err(store_error)?;
            if accounts.get(folded).map_err(store_error)?.is_some() {
                false
            } else {
                accounts.insert(folded, (name, hash)).map_err(store_error)?;
                true
            }
        };
        write.commit().map_err(store_error)?;
        Ok(created)
    }

    fn set_password(&self, folded: &str, hash: &str) -> Result<(), LogError> {
        let db = self.db()?;
        let write = db.begin_write().map_err(store_error)?;
        {
            let mut accounts = write.open_table(ACCOUNTS).map_err(store_error)?;
            let name = accounts
                .get(folded)
                .map_err(store_error)?
                .map(|value| value.value().0.to_string())
                .ok_or_else(|| LogError::Store(format!("no account {folded:?}")))?;
            accounts
                .insert(folded, (name.as_str(), hash))
                .map_err(store_error)?;
        }
        write.commit().map_err(store_error)
    }

    fn forget_account(&self, folded: &str) -> Result<(), LogError> {
        let db = self.db()?;
        let write = db.begin_write().map_err(store_error)?;
        {
            remove_owned(&mut write.open_table(READ).map_err(store_error)?, folded)?;
            remove_owned(
                &mut write.open_table(CONVERSATIONS).map_err(store_error)?,
                folded,
            )?;
            remove_owned(
                &mut write.open_table(INVITES_OF).map_err(store_error)?,
                folded,
            )?;
            remove_owned(&mut write.open_table(POSTS).map_err(store_error)?, folded)?;
            write
                .open_table(POST_ORDER)
                .map_err(store_error)?
                .retain_in((folded, 0)..=(folded, u64::MAX), |_, _| false)
                .map_err(store_error)?;
            write
                .open_table(POSTERS)
                .map_err(store_error)?
                .remove(folded)
                .map_err(store_error)?;
        }
        write.commit().map_err(store_error)
    }

    fn conversations(&self, owner: &str, limit: usize) -> Result<Vec<Conversation>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let table = match read.open_table(CONVERSATIONS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(store_error(err)),
        };
        let mut all: Vec<(u64, Conversation)> = Vec::new();
        for entry in table.range((owner, "")..).map_err(store_error)? {
            let (key, value) = entry.map_err(store_error)?;
            if key.value().0 != owner {
                break;
            }
            let (with, seq, time) = value.value();
            all.push((
                time,
                Conversation {
                    with: with.to_string(),
                    seq,
                    read: 0,
                },
            ));
        }
        Ok(latest_first(all, limit))
    }

    fn forget_before(
        &self,
        stream: &StreamId,
        time: u64,
        max: usize,
    ) -> Result<Option<std::ops::Range<Seq>>, LogError> {
        let db = self.db()?;
        let write = db.begin_write().map_err(store_error)?;
        let gone = {
            let mut events = write.open_table(EVENTS).map_err(store_error)?;
            let mut asides = write.open_table(ASIDES).map_err(store_error)?;
            let key = stream.as_str();
            let mut old = Vec::new();
            for entry in events
                .range((key, 0)..=(key, u64::MAX))
                .map_err(store_error)?
                .take(max)
            {
                let (at, frame) = entry.map_err(store_error)?;
                let frame = Frame::from_encoded(frame.value());
                // Events are recorded in time order: the first one young enough ends it.
                if super::time_of(&frame).is_none_or(|at| at >= time) {
                    break;
                }
                old.push(at.value().1);
            }
            for &seq in &old {
                events.remove((key, seq)).map_err(store_error)?;
                asides.remove((key, seq)).map_err(store_error)?;
            }
            old.first()
                .zip(old.last())
                .map(|(first, last)| *first..*last + 1)
        };
        if gone.is_none() {
            return Ok(None);
        }
        write.commit().map_err(store_error)?;
        // Their texts live on in freed pages until the file is compacted.
        self.scrub.erased();
        Ok(gone)
    }

    fn recent_posts(&self, poster: &str) -> Result<Vec<(String, Frame)>, LogError> {
        let db = self.db()?;
        let read = db.begin_read().map_err(store_error)?;
        let order = read.open_table(POST_ORDER).map_err(store_error)?;
        let posts = read.open_table(POSTS).map_err(store_error)?;
        let events = read.open_table(EVENTS).map_err(store_error)?;
        let mut recent = Vec::new();
        for entry in order
            .range((poster, 0)..=(poster, u64::MAX))
            .map_err(store_error)?
        {
            let (_, id) = entry.map_err(store_error)?;
            let id = id.value().to_string();
            let Some(at) = posts.get((poster, id.as_str())).map_err(store_error)? else {
                continue;
            };
            let (stream, seq) = at.value();
            if let Some(frame) = events.get((stream, seq)).map_err(store_error)? {
                recent.push((id, Frame::from_encoded(frame.value())));
            }
        }
        Ok(recent)
    }
}

impl Drop for Store {
    /// Erases from the file the texts deleted since the last compaction.
    fn drop(&mut self) {
        self.scrub(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::LeaveReason;

    use crate::log::Reach;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chat-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn message(stream: &StreamId, from: &str, text: &str, id: Option<&str>) -> NewEvent {
        NewEvent {
            stream: stream.clone(),
            room: stream.as_str().into(),
            direct: None,
            time: 1,
            body: Body::Message {
                from: from.into(),
                text: text.into(),
                id: id.map(Into::into),
                me: false,
                reply_to: None,
            },
            poster: id.map(|_| from.to_string()),
            holder: None,
            base: None,
        }
    }

    fn about(stream: &StreamId, body: Body) -> NewEvent {
        NewEvent {
            body,
            ..message(stream, "x", "x", None)
        }
    }

    #[test]
    fn steps_on_one_message_in_one_batch_each_see_the_one_before() {
        let dir = dir("amend");
        let general = StreamId::new("general");
        let store = Store::open(&dir, || "e".into()).expect("new store");
        store
            .append(&[message(&general, "alice", "hi", None)])
            .expect("append");
        let react = |from: &str, on| {
            about(
                &general,
                Body::Reaction {
                    from: from.into(),
                    target: 1,
                    emoji: "👍".into(),
                    on,
                },
            )
        };
        let events = store
            .append(&[
                react("bob", true),
                react("carol", true),
                react("Bob", true),
                react("dave", false),
                about(
                    &general,
                    Body::Edited {
                        from: "Alice".into(),
                        target: 1,
                        text: "hello".into(),
                    },
                ),
                about(
                    &general,
                    Body::Edited {
                        from: "bob".into(),
                        target: 1,
                        text: "mine".into(),
                    },
                ),
            ])
            .expect("append");
        let seqs: Vec<Seq> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            [2, 3, 0, 0, 4, 0],
            "the same twice, or nothing, is not recorded"
        );
        assert!(events[2].frame.is_empty(), "nothing said");
        assert!(String::from_utf8_lossy(events[5].frame.as_bytes()).contains("not_permitted"));
        let [message] = &store.read(&general, Span::After(0), 1).expect("read")[..] else {
            panic!("one message");
        };
        let text = String::from_utf8_lossy(message.frame.as_bytes()).to_string();
        assert!(text.contains(r#""text":"hello""#), "{text}");
        assert!(
            text.contains(r#""reactions":[{"emoji":"👍","count":2,"names":["bob","carol"]}]"#),
            "{text}"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_erased_text_leaves_the_file() {
        let dir = dir("erase");
        let general = StreamId::new("general");
        let secret = "a secret text 98121";
        {
            let store = Store::open(&dir, || "e".into()).expect("new store");
            let mut batch: Vec<NewEvent> = (0..300)
                .map(|i| message(&general, "alice", &format!("message number {i}"), None))
                .collect();
            batch.insert(150, message(&general, "alice", secret, Some("s1")));
            let events = store.append(&batch).expect("append");
            let target = events[150].seq;
            let edit = about(
                &general,
                Body::Edited {
                    from: "alice".into(),
                    target,
                    text: format!("{secret} edited"),
                },
            );
            let deletion = about(
                &general,
                Body::Deleted {
                    by: "alice".into(),
                    target,
                },
            );
            store.append(&[edit]).expect("append");
            store.append(&[deletion]).expect("append");
            let file = std::fs::read(dir.join("chat.redb")).expect("file");
            let holds = file.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!holds, "erased at once, the store still open");
        }
        let file = std::fs::read(dir.join("chat.redb")).expect("file");
        let holds = |text: &str| file.windows(text.len()).any(|w| w == text.as_bytes());
        assert!(holds("message number 299"));
        assert!(!holds(secret), "{} bytes", file.len());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn events_epoch_and_post_ids_survive_reopening() {
        let dir = dir("reopen");
        let general = StreamId::new("general");
        let epoch = {
            let store = Store::open(&dir, || "e1".into()).expect("new store");
            assert!(store.created());
            let events = store
                .append(&[
                    message(&general, "alice", "one", Some("a1")),
                    NewEvent {
                        stream: general.clone(),
                        room: "general".into(),
                        direct: None,
                        time: 2,
                        body: Body::Left {
                            name: "bob".into(),
                            reason: LeaveReason::Quit,
                            by: None,
                            message: None,
                        },
                        poster: None,
                        holder: None,
                        base: None,
                    },
                ])
                .expect("append");
            assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
            store.epoch().to_string()
        };
        let store = Store::open(&dir, || "e2".into()).expect("reopen");
        assert!(!store.created());
        assert_eq!(store.epoch(), epoch, "the epoch lives with the store");
        assert_eq!(
            store.head(&general).expect("head"),
            Head {
                oldest: 1,
                newest: 2
            }
        );
        let more = store
            .append(&[message(&general, "alice", "two", None)])
            .expect("append");
        assert_eq!(more[0].seq, 3, "seq goes on");
        let recent = store.recent_posts("alice").expect("recent");
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].0, "a1");
        assert!(String::from_utf8_lossy(recent[0].1.as_bytes()).contains("\"one\""));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_the_last_ids_of_a_poster_are_remembered() {
        let dir = dir("ids");
        let general = StreamId::new("general");
        let store = Store::open(&dir, || "e".into()).expect("store");
        let batch: Vec<NewEvent> = (0..REMEMBERED_IDS + 10)
            .map(|i| message(&general, "p", &i.to_string(), Some(&format!("id{i}"))))
            .collect();
        store.append(&batch).expect("append");
        let recent = store.recent_posts("p").expect("recent");
        assert_eq!(recent.len(), REMEMBERED_IDS);
        assert_eq!(recent[0].0, "id10");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn reads_page_before_and_after() {
        let dir = dir("read");
        let general = StreamId::new("general");
        let other = StreamId::new("other");
        let store = Store::open(&dir, || "e".into()).expect("store");
        let batch: Vec<NewEvent> = (1..=10)
            .flat_map(|i| {
                [
                    message(&general, "a", &i.to_string(), None),
                    message(&other, "b", &i.to_string(), None),
                ]
            })
            .collect();
        store.append(&batch).expect("append");
        let seqs = |events: Vec<Event>| events.into_iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(store.read(&general, Span::Before(6), 3).expect("read")),
            [3, 4, 5]
        );
        assert_eq!(
            seqs(store.read(&general, Span::After(8), 5).expect("read")),
            [9, 10]
        );
        assert_eq!(
            seqs(store.read(&general, Span::Before(1), 5).expect("read")),
            Vec::<u64>::new()
        );
        assert_eq!(
            store.head(&other).expect("head").newest,
            10,
            "streams count apart"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn times_are_found_by_a_binary_search_of_the_log() {
        let dir = dir("times");
        let general = StreamId::new("general");
        let store = Store::open(&dir, || "e".into()).expect("store");
        assert_eq!(store.first_at(&general, 5).expect("empty"), 1);
        // Seqs 1 to 40 at times 10, 10, 20, 20, … (two events in each 10 ms).
        let batch: Vec<NewEvent> = (0..40u64)
            .map(|i| NewEvent {
                time: 10 + i / 2 * 10,
                ..message(&general, "a", &i.to_string(), None)
            })
            .collect();
        store.append(&batch).expect("append");
        let first_at = |time| store.first_at(&general, time).expect("first_at");
        assert_eq!(first_at(0), 1, "before everything");
        assert_eq!(first_at(10), 1);
        assert_eq!(
            first_at(11),
            3,
            "between two times: the next one's first event"
        );
        assert_eq!(first_at(20), 3);
        assert_eq!(first_at(200), 39);
        assert_eq!(first_at(201), 41, "after everything: one past the newest");
        // What a time reaches: before it, after it, around it.
        let span = |reach: Reach| {
            reach
                .span(|time| store.first_at(&general, time))
                .expect("span")
        };
        assert_eq!(span(Reach::BeforeTime(20)), Span::Before(3));
        assert_eq!(span(Reach::AfterTime(20)), Span::After(4));
        assert_eq!(
            span(Reach::AroundTime { time: 50, back: 2 }),
            Span::After(6)
        );
        // Retention took the oldest: the search starts at the oldest kept.
        store.forget_before(&general, 60, 100).expect("forget");
        assert_eq!(first_at(0), 11);
        assert_eq!(first_at(61), 13);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
        let dir = dir("junk");
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join(FILE);
        let junk = b"this is not a database, and must stay exactly as it is".repeat(100);
        std::fs::write(&file, &junk).expect("write");
        let err = Store::open(&dir, || "e".into()).expect_err("refused");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        assert_eq!(std::fs::read(&file).expect("read"), junk);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_deleted_account_leaves_no_post_ids_or_read_markers_of_its_own() {
        let dir = dir("forget-account");
        let general = StreamId::new("general");
        let store = Store::open(&dir, || "e".into()).expect("store");
        let batch: Vec<NewEvent> = ["p", "q"]
            .iter()
            .flat_map(|who| (0..3).map(move |i| (who, i)))
            .map(|(who, i)| message(&general, who, "hi", Some(&format!("{who}{i}"))))
            .collect();
        store.append(&batch).expect("append");
        let mark = |account: &str| ReadMark {
            account: account.into(),
            stream: general.clone(),
            seq: 2,
        };
        store
            .set_read(&[mark("p"), mark("q")])
            .expect("read markers");
        store.forget_account("p").expect("forgotten");
        assert!(store.recent_posts("p").expect("posts").is_empty());
        assert!(store.read_markers("p").expect("markers").is_empty());
        assert_eq!(
            store.recent_posts("q").expect("posts").len(),
            3,
            "others keep theirs"
        );
        assert_eq!(store.read_markers("q").expect("markers").len(), 1);
        // Its ids counted from 0 again: a new post is remembered.
        store
            .append(&[message(&general, "p", "again", Some("p9"))])
            .expect("append");
        assert_eq!(store.recent_posts("p").expect("posts").len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
