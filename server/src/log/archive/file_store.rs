//! Export from the embedded store, and import into a new one (see [`super`]).
//!
//! An export reads one read transaction: the store as of one instant. An import writes a
//! new store file beside its final place (`chat.redb.partial`), in transactions of
//! [`ROWS_PER_COMMIT`] rows made durable together at the end, renames it into place and
//! opens it as a server would, checking its epoch and what it holds, before it counts.

use std::fs;
use std::io::{BufRead, Write};
use std::path::Path;

use redb::{
    Database, Durability, Key, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, Value,
};

use super::{ArchiveError, Counts, Item, Record, Writer, read};
use crate::log::amend::Aside;
use crate::log::state::{invitee, inviter};
use crate::log::store::{
    ACCOUNTS, ASIDES, CONVERSATIONS, EVENTS, FILE, INVITES_OF, POST_ORDER, POSTERS, POSTS, READ,
    ROOM_STATE, ROOMS, SERVER_BANS, STREAMS, Store, fields_of,
};
use crate::log::{EventLog, Seq};

/// Rows written per transaction of an import: each transaction's pages stay in memory
/// until it commits.
const ROWS_PER_COMMIT: usize = 50_000;

fn source(err: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Source(format!("the store: {err}"))
}

/// A table of the snapshot, `None` when it was never made (a store from before it).
fn optional<K: Key + 'static, V: Value + 'static>(
    read: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, ArchiveError> {
    match read.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(err) => Err(source(err)),
    }
}

/// Calls `each` with every row of a table of the snapshot (none when the table was never
/// made).
fn rows<K: Key + 'static, V: Value + 'static>(
    read: &ReadTransaction,
    table: TableDefinition<K, V>,
    mut each: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let Some(table) = optional(read, table)? else {
        return Ok(());
    };
    for row in table.iter().map_err(source)? {
        let (key, value) = row.map_err(source)?;
        each(key.value(), value.value())?;
    }
    Ok(())
}

/// Writes the whole store, as of one instant, to `out`.
pub fn export(store: &Store, out: impl Write) -> Result<Counts, ArchiveError> {
    let db = store.db()?;
    let read = db.begin_read().map_err(source)?;
    let mut writer = Writer::new(out, store.epoch())?;
    rows(&read, ACCOUNTS, |key, (name, hash)| {
        writer.put(&Record::Account {
            key: key.to_string(),
            name: name.to_string(),
            hash: hash.to_string(),
        })
    })?;
    rows(&read, SERVER_BANS, |key, value| {
        writer.put(&Record::ServerBan {
            key: key.to_string(),
            value: value.to_string(),
        })
    })?;
    let mut streams = Vec::new();
    rows(&read, STREAMS, |key, newest| {
        streams.push((key.to_string(), newest));
        Ok(())
    })?;
    let rooms = read.open_table(ROOMS).map_err(source)?;
    let events = read.open_table(EVENTS).map_err(source)?;
    let asides = optional(&read, ASIDES)?;
    let state = optional(&read, ROOM_STATE)?;
    for (key, newest) in streams {
        let fields = match &state {
            Some(state) => fields_of(state, &key)?.into_iter().collect(),
            None => std::collections::BTreeMap::new(),
        };
        writer.put(&Record::Stream {
            room: rooms
                .get(key.as_str())
                .map_err(source)?
                .map(|name| name.value().to_string()),
            key: key.clone(),
            newest,
            state: fields,
        })?;
        for row in events
            .range((key.as_str(), 0)..=(key.as_str(), Seq::MAX))
            .map_err(source)?
        {
            let (at, frame) = row.map_err(source)?;
            let seq = at.value().1;
            let aside = match &asides {
                Some(asides) => asides
                    .get((key.as_str(), seq))
                    .map_err(source)?
                    .map(|kept| Aside::decode(kept.value())),
                None => None,
            };
            writer.put(&Record::event(seq, frame.value(), aside)?)?;
        }
    }
    rows(&read, CONVERSATIONS, |(owner, with), (name, seq, time)| {
        writer.put(&Record::Conversation {
            owner: owner.to_string(),
            with: with.to_string(),
            name: name.to_string(),
            seq,
            time,
        })
    })?;
    let posts = read.open_table(POSTS).map_err(source)?;
    rows(&read, POST_ORDER, |(poster, _), id| {
        let Some(at) = posts.get((poster, id)).map_err(source)? else {
            return Ok(());
        };
        let (stream, seq) = at.value();
        writer.put(&Record::Post {
            poster: poster.to_string(),
            id: id.to_string(),
            stream: stream.to_string(),
            seq,
        })
    })?;
    rows(&read, READ, |(account, stream), seq| {
        writer.put(&Record::Read {
            account: account.to_string(),
            stream: stream.to_string(),
            seq,
        })
    })?;
    writer.finish()
}

/// Reads an export into a new store in `dir` (a data directory without a store). Returns
/// what it holds, checked by opening it.
pub fn import(dir: &Path, input: impl BufRead) -> Result<Counts, ArchiveError> {
    let path = dir.join(FILE);
    if path.exists() {
        return Err(ArchiveError::NotEmpty(format!(
            "{} exists: an import makes a new store; name a data directory without one",
            path.display()
        )));
    }
    fs::create_dir_all(dir).map_err(|err| source(format!("{}: {err}", dir.display())))?;
    let partial = dir.join(format!("{FILE}.partial"));
    let _ = fs::remove_file(&partial);
    let made = write_new(&partial, input).and_then(|(epoch, counts)| {
        fs::rename(&partial, &path).map_err(source)?;
        fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(source)?;
        verify(dir, &epoch, counts)
    });
    if made.is_err() {
        let _ = fs::remove_file(&partial);
        let _ = fs::remove_file(&path);
    }
    made
}

/// Writes the store file at `path` from the export; returns its epoch and what it read.
fn write_new(path: &Path, input: impl BufRead) -> Result<(String, Counts), ArchiveError> {
    let mut db =
        Database::create(path).map_err(|err| source(format!("{}: {err}", path.display())))?;
    let mut epoch = String::new();
    let mut batch = Vec::with_capacity(ROWS_PER_COMMIT);
    let mut posters = std::collections::HashMap::<String, u64>::new();
    let counts = read(input, |item| {
        if let Item::Epoch(said) = &item {
            Store::initialise(&db, said).map_err(source)?;
            epoch.clone_from(said);
        } else {
            batch.push(item);
        }
        if batch.len() == ROWS_PER_COMMIT {
            commit(&db, &mut batch, &mut posters)?;
        }
        Ok(())
    })?;
    commit(&db, &mut batch, &mut posters)?;
    // The import's transactions were not made durable one by one; this one makes all of
    // them so.
    let mut last = db.begin_write().map_err(source)?;
    last.set_durability(Durability::Immediate).map_err(source)?;
    last.commit().map_err(source)?;
    // The batches' transactions leave pages behind; the new store starts compact.
    db.compact().map_err(source)?;
    Ok((epoch, counts))
}

/// Writes a batch of records as one transaction (not yet durable).
fn commit(
    db: &Database,
    batch: &mut Vec<Item>,
    posters: &mut std::collections::HashMap<String, u64>,
) -> Result<(), ArchiveError> {
    let mut write = db.begin_write().map_err(source)?;
    write.set_durability(Durability::None).map_err(source)?;
    {
        let mut accounts = write.open_table(ACCOUNTS).map_err(source)?;
        let mut bans = write.open_table(SERVER_BANS).map_err(source)?;
        let mut streams = write.open_table(STREAMS).map_err(source)?;
        let mut rooms = write.open_table(ROOMS).map_err(source)?;
        let mut state = write.open_table(ROOM_STATE).map_err(source)?;
        let mut invites = write.open_table(INVITES_OF).map_err(source)?;
        let mut events = write.open_table(EVENTS).map_err(source)?;
        let mut asides = write.open_table(ASIDES).map_err(source)?;
        let mut conversations = write.open_table(CONVERSATIONS).map_err(source)?;
        let mut posts = write.open_table(POSTS).map_err(source)?;
        let mut order = write.open_table(POST_ORDER).map_err(source)?;
        let mut post_counts = write.open_table(POSTERS).map_err(source)?;
        let mut read = write.open_table(READ).map_err(source)?;
        for item in batch.drain(..) {
            match item {
                Item::Event {
                    stream,
                    seq,
                    frame,
                    aside,
                } => {
                    events
                        .insert((stream.as_str(), seq), frame.as_bytes())
                        .map_err(source)?;
                    if let Some(kept) = aside.as_ref().and_then(Aside::encode) {
                        asides
                            .insert((stream.as_str(), seq), kept.as_slice())
                            .map_err(source)?;
                    }
                }
                Item::Plain(Record::Account { key, name, hash }) => {
                    accounts
                        .insert(key.as_str(), (name.as_str(), hash.as_str()))
                        .map_err(source)?;
                }
                Item::Plain(Record::ServerBan { key, value }) => {
                    bans.insert(key.as_str(), value.as_str()).map_err(source)?;
                }
                Item::Plain(Record::Stream {
                    key,
                    room,
                    newest,
                    state: fields,
                }) => {
                    streams.insert(key.as_str(), newest).map_err(source)?;
                    if let Some(room) = room {
                        rooms.insert(key.as_str(), room.as_str()).map_err(source)?;
                    }
                    put_state(&mut state, &mut invites, &key, &fields)?;
                }
                Item::Plain(Record::Conversation {
                    owner,
                    with,
                    name,
                    seq,
                    time,
                }) => {
                    conversations
                        .insert((owner.as_str(), with.as_str()), (name.as_str(), seq, time))
                        .map_err(source)?;
                }
                Item::Plain(Record::Post {
                    poster,
                    id,
                    stream,
                    seq,
                }) => {
                    let n = posters.entry(poster.clone()).or_default();
                    posts
                        .insert((poster.as_str(), id.as_str()), (stream.as_str(), seq))
                        .map_err(source)?;
                    order
                        .insert((poster.as_str(), *n), id.as_str())
                        .map_err(source)?;
                    *n += 1;
                    post_counts.insert(poster.as_str(), *n).map_err(source)?;
                }
                Item::Plain(Record::Read {
                    account,
                    stream,
                    seq,
                }) => {
                    read.insert((account.as_str(), stream.as_str()), seq)
                        .map_err(source)?;
                }
                Item::Epoch(_) | Item::Plain(Record::ChatExport { .. } | Record::Event { .. }) => {}
            }
        }
    }
    write.commit().map_err(source)
}

/// A room's state, and its invitations in the index by account.
fn put_state(
    state: &mut redb::Table<'_, (&'static str, &'static str), &'static str>,
    invites: &mut redb::Table<'_, (&'static str, &'static str), &'static str>,
    stream: &str,
    fields: &std::collections::BTreeMap<String, String>,
) -> Result<(), ArchiveError> {
    for (field, value) in fields {
        state
            .insert((stream, field.as_str()), value.as_str())
            .map_err(source)?;
        if let Some(who) = invitee(field) {
            invites
                .insert((who, stream), inviter(value))
                .map_err(source)?;
        }
    }
    Ok(())
}

/// Opens the new store as a server would and checks it holds what was read.
fn verify(dir: &Path, epoch: &str, counts: Counts) -> Result<Counts, ArchiveError> {
    let fail = |why: String| {
        ArchiveError::Source(format!(
            "the new store in {} does not open as what was read: {why}",
            dir.display()
        ))
    };
    let store = Store::open(dir, String::new).map_err(|err| fail(err.to_string()))?;
    if store.epoch() != epoch {
        return Err(fail(format!("its epoch is {}", store.epoch())));
    }
    let db = store.db().map_err(|err| fail(err.to_string()))?;
    let read = db.begin_read().map_err(|err| fail(err.to_string()))?;
    let len = |table: TableDefinition<'_, &str, u64>| -> Result<u64, ArchiveError> {
        read.open_table(table)
            .and_then(|t| t.len().map_err(Into::into))
            .map_err(|err| fail(err.to_string()))
    };
    let events = read
        .open_table(EVENTS)
        .map_err(|err| fail(err.to_string()))?
        .len()
        .map_err(|err| fail(err.to_string()))?;
    let accounts = read
        .open_table(ACCOUNTS)
        .map_err(|err| fail(err.to_string()))?
        .len()
        .map_err(|err| fail(err.to_string()))?;
    let found = (len(STREAMS)?, events, accounts);
    if found != (counts.streams, counts.events, counts.accounts) {
        return Err(fail(format!(
            "it holds {found:?} streams, events and accounts, not {:?}",
            (counts.streams, counts.events, counts.accounts)
        )));
    }
    Ok(counts)
}
