//! A consistent copy of a store, made while the server runs (or from a stopped one).
//!
//! The copy is read from one read transaction, a snapshot of the last commit that redb keeps
//! intact however much is written meanwhile, so it is exactly the history as it was at one
//! instant: every event a client had received by then, nothing half-recorded. It is written
//! table by table into a new store file beside its final place, made durable, renamed into
//! place, and then opened like any store and compared with the snapshot before it counts.
//!
//! The copy gets an epoch of its own. A server restored from it has lost what came after
//! the backup, and would hand out those seqs again; clients that saw them must not take
//! the new events for ones they had. With a new epoch they know the history changed and
//! read it again (the seqs, times and ids of what the copy holds are unchanged).

use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, Key, ReadTransaction, ReadableDatabase, TableDefinition, Value};

use super::store::{
    ACCOUNTS, ASIDES, CONVERSATIONS, EVENTS, FILE, INVITES_OF, META, POST_ORDER, POSTERS, POSTS,
    READ, ROOM_STATE, ROOMS, SERVER_BANS, STREAMS, Store,
};
use super::{EventLog, StreamId};

/// Rows written per transaction of the copy: each transaction's pages stay in memory until
/// it commits.
const ROWS_PER_COMMIT: u64 = 100_000;

/// What a backup holds, checked against the new store by opening it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Copied {
    /// The new store's file.
    pub path: PathBuf,
    /// The copy's epoch (a new one).
    pub epoch: String,
    /// Rooms and direct conversations.
    pub streams: u64,
    /// Events, all streams together.
    pub events: u64,
    /// Accounts.
    pub accounts: u64,
    /// Rows of every table together.
    pub rows: u64,
}

/// Why a backup was not made. Whatever was written is removed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination is there and is not an empty directory.
    #[error("{0}: already there and not an empty directory; name a new one")]
    Exists(PathBuf),
    /// Reading the store or writing the copy failed.
    #[error("{0}")]
    Io(String),
    /// The copy, opened, does not hold what was copied.
    #[error("the copy in {0} does not open as the same store: {1}")]
    Verify(PathBuf, String),
}

fn io(err: impl std::fmt::Display) -> BackupError {
    BackupError::Io(err.to_string())
}

impl Store {
    /// Copies the store, as of now, into `dest`: a new data directory (it must not exist,
    /// or be empty) holding a store that a server can be started on.
    pub fn backup(&self, dest: &Path) -> Result<Copied, BackupError> {
        match fs::read_dir(dest) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(BackupError::Exists(dest.to_path_buf()));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(dest).map_err(|err| io(format!("{}: {err}", dest.display())))?;
            }
            Err(_) => return Err(BackupError::Exists(dest.to_path_buf())),
        }
        let partial = dest.join(format!("{FILE}.partial"));
        let made = self.copy_to(&partial).and_then(|copied| {
            let path = dest.join(FILE);
            fs::rename(&partial, &path).map_err(io)?;
            fs::File::open(dest)
                .and_then(|dir| dir.sync_all())
                .map_err(io)?;
            verify(&path, copied)
        });
        if made.is_err() {
            let _ = fs::remove_file(&partial);
            let _ = fs::remove_file(dest.join(FILE));
        }
        made
    }

    /// Writes a snapshot of every table into a new store file at `path`.
    fn copy_to(&self, path: &Path) -> Result<Copied, BackupError> {
        let db = self.db().map_err(io)?;
        let read = db.begin_read().map_err(io)?;
        let out = Database::create(path).map_err(|err| io(format!("{}: {err}", path.display())))?;
        let epoch = crate::wire::random_hex(16).map_err(io)?;
        let mut copied = Copied {
            path: path.with_file_name(FILE),
            epoch: epoch.clone(),
            streams: count(&read, STREAMS)?,
            events: count(&read, EVENTS)?,
            accounts: count(&read, ACCOUNTS)?,
            rows: 0,
        };
        copied.rows += copy(&read, &out, META)?;
        let write = out.begin_write().map_err(io)?;
        write
            .open_table(META)
            .map_err(io)?
            .insert("epoch", epoch.as_str())
            .map_err(io)?;
        write.commit().map_err(io)?;
        copied.rows += copy(&read, &out, STREAMS)?;
        copied.rows += copy(&read, &out, EVENTS)?;
        copied.rows += copy(&read, &out, POSTS)?;
        copied.rows += copy(&read, &out, POST_ORDER)?;
        copied.rows += copy(&read, &out, POSTERS)?;
        copied.rows += copy(&read, &out, ROOMS)?;
        copied.rows += copy(&read, &out, ACCOUNTS)?;
        copied.rows += copy(&read, &out, CONVERSATIONS)?;
        copied.rows += copy(&read, &out, ROOM_STATE)?;
        copied.rows += copy(&read, &out, SERVER_BANS)?;
        copied.rows += copy(&read, &out, INVITES_OF)?;
        copied.rows += copy(&read, &out, ASIDES)?;
        copied.rows += copy(&read, &out, READ)?;
        // The copy's transactions were not made durable one by one; this one makes all of
        // them so.
        let mut last = out.begin_write().map_err(io)?;
        last.set_durability(Durability::Immediate).map_err(io)?;
        last.commit().map_err(io)?;
        Ok(copied)
    }
}

/// Rows in a table of the snapshot (0 when the table was never made).
fn count<K: Key + 'static, V: Value + 'static>(
    read: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, BackupError> {
    match read.open_table(table) {
        Ok(table) => redb::ReadableTableMetadata::len(&table).map_err(io),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(err) => Err(io(err)),
    }
}

/// Copies one table of the snapshot into `out`; returns the rows copied.
fn copy<K: Key + 'static, V: Value + 'static>(
    read: &ReadTransaction,
    out: &Database,
    table: TableDefinition<K, V>,
) -> Result<u64, BackupError> {
    let source = match read.open_table(table) {
        Ok(source) => source,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(err) => return Err(io(err)),
    };
    let mut rows = redb::ReadableTable::iter(&source).map_err(io)?;
    let mut total = 0;
    loop {
        let mut write = out.begin_write().map_err(io)?;
        write.set_durability(Durability::None).map_err(io)?;
        let mut written = 0;
        {
            // Opened even when empty, so the copy has every table the original has.
            let mut target = write.open_table(table).map_err(io)?;
            for row in rows.by_ref() {
                let (key, value) = row.map_err(io)?;
                target.insert(key.value(), value.value()).map_err(io)?;
                written += 1;
                if written == ROWS_PER_COMMIT {
                    break;
                }
            }
        }
        write.commit().map_err(io)?;
        total += written;
        if written < ROWS_PER_COMMIT {
            return Ok(total);
        }
    }
}

/// Opens the copy as a server would and checks that it holds what was copied.
fn verify(path: &Path, copied: Copied) -> Result<Copied, BackupError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |why: String| BackupError::Verify(dir.to_path_buf(), why);
    let store = Store::open(dir, String::new).map_err(|err| fail(err.to_string()))?;
    if store.created() {
        return Err(fail("it is empty".into()));
    }
    if store.epoch() != copied.epoch {
        return Err(fail(format!("its epoch is {}", store.epoch())));
    }
    let db = store.db().map_err(|err| fail(err.to_string()))?;
    let read = db.begin_read().map_err(|err| fail(err.to_string()))?;
    let found = (
        count(&read, STREAMS)?,
        count(&read, EVENTS)?,
        count(&read, ACCOUNTS)?,
    );
    if found != (copied.streams, copied.events, copied.accounts) {
        return Err(fail(format!(
            "it holds {found:?} streams, events and accounts, not {:?}",
            (copied.streams, copied.events, copied.accounts)
        )));
    }
    // Every stream's newest event is there: the copy ends where the original did.
    let streams = read
        .open_table(STREAMS)
        .map_err(|err| fail(err.to_string()))?;
    for entry in redb::ReadableTable::iter(&streams).map_err(|err| fail(err.to_string()))? {
        let (stream, newest) = entry.map_err(|err| fail(err.to_string()))?;
        let stream = StreamId::new(stream.value());
        let head = store.head(&stream).map_err(|err| fail(err.to_string()))?;
        if head.newest != newest.value() {
            return Err(fail(format!("{stream} ends at {}", head.newest)));
        }
    }
    Ok(copied)
}
