//! Export from a cluster's Redis, and import into an empty one (see [`super`]).
//!
//! Both refuse while a node holds a lease: an export must not miss what nodes write
//! meanwhile, and an import must not race them. The keys written are those the nodes'
//! script writes (`cluster.lua`); what exists only while nodes run (who is online, the
//! streams nodes follow for delivery and search) is not.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use chat_shared::{Name, ServerFrame, decode_line, fold};
use redis::aio::MultiplexedConnection;

use super::{ArchiveError, Counts, Item, Record, Writer, read};
use crate::log::amend::Aside;
use crate::log::redis::{entries_of, key, split_account, stream_key, with_frames};
use crate::log::state::{invitee, inviter};
use crate::log::{Seq, StreamId};

/// Events read, and commands sent, per round trip.
const PAGE: usize = 5_000;

fn source(err: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Source(format!("redis: {err}"))
}

/// A connection to the Redis at `url`, and its epoch if it holds a chat.
async fn connect(url: &str) -> Result<(MultiplexedConnection, Option<String>), ArchiveError> {
    let client = redis::Client::open(url).map_err(source)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(source)?;
    let epoch: Option<String> = redis::cmd("GET")
        .arg(key("epoch"))
        .query_async(&mut conn)
        .await
        .map_err(source)?;
    // A node that is running holds a lease; one that died is reaped by the others, or its
    // lease runs out.
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(key("nodes"))
        .query_async(&mut conn)
        .await
        .map_err(source)?;
    for node in nodes {
        let alive: bool = redis::cmd("EXISTS")
            .arg(key(&format!("node:{node}")))
            .query_async(&mut conn)
            .await
            .map_err(source)?;
        if alive {
            return Err(ArchiveError::NotEmpty(format!(
                "node {node} of this Redis is running: stop the cluster's nodes first"
            )));
        }
    }
    Ok((conn, epoch))
}

/// Every key that matches `pattern`, sorted.
async fn keys(
    conn: &mut MultiplexedConnection,
    pattern: &str,
) -> Result<Vec<String>, redis::RedisError> {
    let mut cursor: u64 = 0;
    let mut found = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        found.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

/// What follows `kind:` in the chat's keys that start with it (the accounts that have
/// conversations, for `conv`), sorted.
async fn scan(conn: &mut MultiplexedConnection, kind: &str) -> Result<Vec<String>, ArchiveError> {
    let prefix = key(&format!("{kind}:"));
    Ok(keys(conn, &format!("{prefix}*"))
        .await
        .map_err(source)?
        .iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
        .collect())
}

/// A hash, sorted by field.
async fn hash(
    conn: &mut MultiplexedConnection,
    name: &str,
) -> Result<BTreeMap<String, String>, ArchiveError> {
    redis::cmd("HGETALL")
        .arg(key(name))
        .query_async(conn)
        .await
        .map_err(source)
}

/// Writes the chat the Redis at `url` holds to `out`, in the order an export of the store
/// has (every table by key), so that the two can be compared line by line.
pub fn export(url: &str, out: impl Write) -> Result<Counts, ArchiveError> {
    smol::block_on(async {
        let (mut conn, epoch) = connect(url).await?;
        let epoch = epoch.ok_or_else(|| source("it holds no chat (no chat:epoch)"))?;
        let mut writer = Writer::new(out, &epoch)?;
        for (account, stored) in hash(&mut conn, "acct").await? {
            let (name, hash) = split_account(&stored)
                .ok_or_else(|| source(format!("account {account:?} is not name and hash")))?;
            writer.put(&Record::Account {
                key: account,
                name,
                hash,
            })?;
        }
        for (ban, value) in hash(&mut conn, "sbans").await? {
            writer.put(&Record::ServerBan { key: ban, value })?;
        }
        let rooms = hash(&mut conn, "rooms").await?;
        for (stream, newest) in hash(&mut conn, "seq").await? {
            let newest: Seq = newest
                .parse()
                .map_err(|_| source(format!("the newest seq of {stream:?} is {newest:?}")))?;
            writer.put(&Record::Stream {
                room: rooms.get(&stream).cloned(),
                state: hash(&mut conn, &format!("st:{stream}")).await?,
                key: stream.clone(),
                newest,
            })?;
            export_events(&mut conn, &stream, &mut writer).await?;
        }
        for owner in scan(&mut conn, "conv").await? {
            for (with, last) in hash(&mut conn, &format!("conv:{owner}")).await? {
                let mut parts = last.splitn(3, '\n');
                let (Some(time), Some(seq), Some(name)) = (
                    parts.next().and_then(|t| t.parse().ok()),
                    parts.next().and_then(|s| s.parse().ok()),
                    parts.next(),
                ) else {
                    return Err(source(format!("conversation {owner:?}/{with:?}: {last:?}")));
                };
                writer.put(&Record::Conversation {
                    owner: owner.clone(),
                    with,
                    name: name.to_string(),
                    seq,
                    time,
                })?;
            }
        }
        for poster in scan(&mut conn, "posts").await? {
            let kept: Vec<Vec<u8>> = redis::cmd("LRANGE")
                .arg(key(&format!("posts:{poster}")))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(source)?;
            let at = hash(&mut conn, &format!("pi:{poster}")).await?;
            // Newest first in Redis; oldest first in an export.
            for entry in kept.iter().rev() {
                let id = entry
                    .split(|b| *b == b'\n')
                    .next()
                    .and_then(|id| std::str::from_utf8(id).ok())
                    .unwrap_or_default();
                let Some((stream, seq)) = at.get(id).and_then(|at| at.rsplit_once('\n')) else {
                    continue;
                };
                writer.put(&Record::Post {
                    poster: poster.clone(),
                    id: id.to_string(),
                    stream: stream.to_string(),
                    seq: seq
                        .parse()
                        .map_err(|_| source(format!("post {id:?}: {seq:?}")))?,
                })?;
            }
        }
        for account in scan(&mut conn, "rd").await? {
            for (stream, seq) in hash(&mut conn, &format!("rd:{account}")).await? {
                writer.put(&Record::Read {
                    account: account.clone(),
                    stream,
                    seq: seq
                        .parse()
                        .map_err(|_| source(format!("read marker {seq:?}")))?,
                })?;
            }
        }
        writer.finish()
    })
}

/// Writes a stream's events, a page at a time, with what is kept beside its messages.
async fn export_events(
    conn: &mut MultiplexedConnection,
    stream: &str,
    writer: &mut Writer<impl Write>,
) -> Result<(), ArchiveError> {
    let asides = hash(conn, &format!("rx:{stream}")).await?;
    let edits = hash(conn, &format!("ed:{stream}")).await?;
    let mut after: Seq = 0;
    loop {
        let reply: redis::Value = redis::cmd("XRANGE")
            .arg(stream_key(stream))
            .arg(format!("({after}-1"))
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await
            .map_err(source)?;
        let entries = entries_of(&reply);
        let Some(last) = entries.last().map(|entry| entry.seq) else {
            return Ok(());
        };
        for (event, _) in with_frames(conn, stream, entries).await? {
            let seq = event.seq.to_string();
            let mut aside = asides
                .get(&seq)
                .map(|kept| Aside::decode(kept.as_bytes()))
                .unwrap_or_default();
            if let Some(listed) = edits.get(&seq) {
                aside.edits = listed.split(',').filter_map(|s| s.parse().ok()).collect();
            }
            let aside = (aside != Aside::default()).then_some(aside);
            writer.put(&Record::event(event.seq, event.frame.as_bytes(), aside)?)?;
        }
        after = last;
    }
}

/// Reads an export into the Redis at `url`, which must hold no chat yet (an epoch alone,
/// from a node that started and stopped, is replaced). Should a line be wrong or Redis
/// fail, what was written is removed again: the Redis is as empty as it was.
pub fn import(url: &str, input: impl BufRead) -> Result<Counts, ArchiveError> {
    let (conn, _) = smol::block_on(connect(url))?;
    let mut importer = Importer {
        conn,
        pipe: redis::pipe(),
        queued: 0,
        posts: BTreeMap::new(),
    };
    let held: u64 = importer.query(
        redis::cmd("EXISTS")
            .arg(key("seq"))
            .arg(key("acct"))
            .arg(key("rooms"))
            .arg(key("sbans")),
    )?;
    if held > 0 {
        return Err(ArchiveError::NotEmpty(
            "this Redis holds a chat already: an import needs one without (a new database number, or FLUSHDB)".into(),
        ));
    }
    let outcome = read(input, |item| importer.add(item))
        .and_then(|counts| importer.finish().map(|()| counts));
    if outcome.is_err() {
        importer.undo();
    }
    outcome
}

/// What an import writes, sent a page of commands at a time.
struct Importer {
    conn: MultiplexedConnection,
    /// Commands not sent yet.
    pipe: redis::Pipeline,
    /// Records (or posts) in `pipe`.
    queued: usize,
    /// Each poster's posts, oldest first: id, stream, seq (written last: Redis keeps each
    /// with its event's frame).
    posts: BTreeMap<String, Vec<(String, String, Seq)>>,
}

impl Importer {
    /// One command, answered.
    fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, ArchiveError> {
        smol::block_on(cmd.query_async(&mut self.conn)).map_err(source)
    }

    /// Sends the commands queued.
    fn flush(&mut self) -> Result<(), ArchiveError> {
        if self.queued == 0 {
            return Ok(());
        }
        let pipe = std::mem::replace(&mut self.pipe, redis::pipe());
        self.queued = 0;
        let _: redis::Value = smol::block_on(pipe.query_async(&mut self.conn)).map_err(source)?;
        Ok(())
    }

    /// Queues the commands of one record; sends them when a page is full.
    fn add(&mut self, item: Item) -> Result<(), ArchiveError> {
        self.queue(item);
        self.queued += 1;
        if self.queued >= PAGE {
            self.flush()?;
        }
        Ok(())
    }

    fn queue(&mut self, item: Item) {
        let pipe = &mut self.pipe;
        match item {
            Item::Event {
                stream,
                seq,
                frame,
                aside,
            } => queue_event(pipe, &stream, seq, &frame, aside),
            Item::Plain(Record::Account {
                key: account,
                name,
                hash,
            }) => {
                let skeleton = Name::parse(&name)
                    .map_or_else(|_| account.clone(), |name| name.keys().skeleton);
                pipe.cmd("HSET")
                    .arg(key("acct"))
                    .arg(&account)
                    .arg(format!("{name}\n{hash}"));
                pipe.cmd("HSET")
                    .arg(key("askel"))
                    .arg(skeleton)
                    .arg(account);
            }
            Item::Plain(Record::ServerBan { key: ban, value }) => {
                pipe.cmd("HSET").arg(key("sbans")).arg(ban).arg(value);
            }
            Item::Plain(Record::Stream {
                key: stream,
                room,
                newest,
                state,
            }) => {
                pipe.cmd("HSET").arg(key("seq")).arg(&stream).arg(newest);
                if let Some(room) = room {
                    pipe.cmd("HSET").arg(key("rooms")).arg(&stream).arg(room);
                }
                for (field, value) in &state {
                    pipe.cmd("HSET")
                        .arg(key(&format!("st:{stream}")))
                        .arg(field)
                        .arg(value);
                    if let Some(who) = invitee(field) {
                        pipe.cmd("HSET")
                            .arg(key(&format!("invof:{who}")))
                            .arg(&stream)
                            .arg(inviter(value));
                    }
                }
            }
            Item::Plain(Record::Conversation {
                owner,
                with,
                name,
                seq,
                time,
            }) => {
                pipe.cmd("HSET")
                    .arg(key(&format!("conv:{owner}")))
                    .arg(with)
                    .arg(format!("{time}\n{seq}\n{name}"));
            }
            Item::Plain(Record::Post {
                poster,
                id,
                stream,
                seq,
            }) => {
                self.posts
                    .entry(poster)
                    .or_default()
                    .push((id, stream, seq));
            }
            Item::Plain(Record::Read {
                account,
                stream,
                seq,
            }) => {
                pipe.cmd("HSET")
                    .arg(key(&format!("rd:{account}")))
                    .arg(stream)
                    .arg(seq);
            }
            Item::Epoch(epoch) => {
                pipe.cmd("SET").arg(key("epoch")).arg(epoch);
            }
            Item::Plain(Record::ChatExport { .. } | Record::Event { .. }) => {}
        }
    }

    /// Writes the posts (each with its event's frame, read back from what was written) and
    /// sends what is left.
    fn finish(&mut self) -> Result<(), ArchiveError> {
        self.flush()?;
        for (poster, posts) in std::mem::take(&mut self.posts) {
            for chunk in posts.chunks(PAGE) {
                let mut get = redis::pipe();
                for (_, stream, seq) in chunk {
                    get.cmd("HGET").arg(key(&format!("fr:{stream}"))).arg(*seq);
                }
                let frames: Vec<Option<Vec<u8>>> =
                    smol::block_on(get.query_async(&mut self.conn)).map_err(source)?;
                for ((id, stream, seq), frame) in chunk.iter().zip(frames) {
                    // A post whose event retention deleted is not remembered.
                    let Some(frame) = frame else { continue };
                    let mut entry = format!("{id}\n").into_bytes();
                    entry.extend_from_slice(&frame);
                    self.pipe
                        .cmd("LPUSH")
                        .arg(key(&format!("posts:{poster}")))
                        .arg(entry);
                    self.pipe
                        .cmd("HSET")
                        .arg(key(&format!("pi:{poster}")))
                        .arg(id)
                        .arg(format!("{stream}\n{seq}"));
                    self.queued += 1;
                }
                self.flush()?;
            }
        }
        self.flush()
    }

    /// Removes every key of the chat (the Redis held none before the import).
    fn undo(&mut self) {
        self.pipe = redis::pipe();
        let mut conn = self.conn.clone();
        let _ = smol::block_on(async {
            for chunk in keys(&mut conn, &key("*")).await?.chunks(PAGE) {
                let () = redis::cmd("UNLINK")
                    .arg(chunk)
                    .query_async(&mut conn)
                    .await?;
            }
            Ok::<(), redis::RedisError>(())
        });
    }
}

/// The commands that write one event: its frame, its stream entry (with what nodes that
/// follow the stream read there: who joined or left, a post's id) and what is kept beside
/// it.
fn queue_event(
    pipe: &mut redis::Pipeline,
    stream: &str,
    seq: Seq,
    frame: &chat_shared::Frame,
    aside: Option<Aside>,
) {
    pipe.cmd("HSET")
        .arg(key(&format!("fr:{stream}")))
        .arg(seq)
        .arg(frame.as_bytes());
    let add = pipe
        .cmd("XADD")
        .arg(stream_key(stream))
        .arg(format!("{seq}-1"));
    let direct = StreamId::parties_of(stream).is_some();
    match decode_line::<ServerFrame>(frame.as_bytes().trim_ascii_end()) {
        Ok(ServerFrame::Joined { name, .. }) => {
            add.arg("k")
                .arg("j")
                .arg("j")
                .arg(fold(&name))
                .arg("n")
                .arg(name);
        }
        Ok(ServerFrame::Left { name, .. }) => {
            add.arg("k").arg("l").arg("l").arg(fold(&name));
        }
        Ok(ServerFrame::Message { from, id, .. }) => {
            add.arg("k").arg(if direct { "d" } else { "m" });
            if let Some(id) = id {
                add.arg("p").arg(fold(&from)).arg("i").arg(id);
            }
        }
        _ => {
            add.arg("k").arg(if direct { "e" } else { "m" });
        }
    }
    if let Some(aside) = aside {
        let beyond = Aside {
            beyond: aside.beyond,
            edits: Vec::new(),
        };
        if let Some(kept) = beyond.encode() {
            pipe.cmd("HSET")
                .arg(key(&format!("rx:{stream}")))
                .arg(seq)
                .arg(kept);
        }
        if !aside.edits.is_empty() {
            let listed: Vec<String> = aside.edits.iter().map(ToString::to_string).collect();
            pipe.cmd("HSET")
                .arg(key(&format!("ed:{stream}")))
                .arg(seq)
                .arg(listed.join(","));
        }
    }
}
