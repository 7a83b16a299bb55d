//! The event log in a shared Redis (`--redis`): every node started with the same Redis is
//! the same chat.
//!
//! One Redis Stream per room and per direct conversation, entry id `<seq>-1`; a seq is
//! taken and its event appended by one Lua script (`cluster.lua`), so every node sees the
//! same order, and a batch of any number of events is one round trip (the recorder's group
//! commit). The same script claims and releases names and reaps dead nodes for
//! [`crate::cluster`]. Redis must persist with AOF and `appendfsync always` for "nothing
//! acknowledged is ever lost" (README "Cluster").
//!
//! The trait's methods block (the hub calls them from its recorder thread and the blocking
//! pool); they drive the redis crate's smol connection with `smol::block_on`.

use std::time::{Duration, Instant};

use chat_shared::limits::REMEMBERED_IDS;
use chat_shared::{Conversation, Frame, Name};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, ScriptInvocation, Value};

use std::sync::Arc;

use futures_lite::future;

use super::amend::{Aside, Refusal, change_of, decide};
use super::scrub::Scrub;
use super::state::{FieldOp, changes};
use super::{
    Body, Event, EventLog, Head, LogError, NewEvent, Note, ReadMark, Remembered, Seq, Snapshot,
    Span, StreamId, frame, latest_first,
};
use crate::metrics::Metrics;

/// The key prefix of everything the chat keeps in Redis.
pub const PREFIX: &str = "chat:";
/// The seq written into a frame so that the script can put the real one there.
const PLACEHOLDER: u64 = u64::MAX;

impl From<RedisError> for LogError {
    fn from(err: RedisError) -> Self {
        LogError::Store(format!("redis: {err}"))
    }
}

/// The shared Redis, as an event log and as the cluster's register of who is where.
pub struct RedisLog {
    client: redis::Client,
    conn: Timed<ConnectionManager>,
    script: Script,
    epoch: String,
    url: String,
    /// Texts erased and perhaps still in Redis's append-only file.
    scrub: Scrub,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A connection whose requests are timed, and failures counted, in the metrics
/// (`redis_seconds`, `redis_errors_total`). A script not loaded yet (`NOSCRIPT`, answered
/// by loading it) is not a failure.
#[derive(Clone)]
pub struct Timed<C>(C);

impl<C> Timed<C> {
    fn observe<T>(started: Instant, result: &redis::RedisResult<T>) {
        let metrics = crate::metrics::get();
        Metrics::time(&metrics.redis_seconds, started.elapsed());
        if let Err(err) = result
            && err.code() != Some("NOSCRIPT")
        {
            metrics.redis_errors.inc();
        }
    }
}

impl<C: redis::aio::ConnectionLike + Send> redis::aio::ConnectionLike for Timed<C> {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.0.req_packed_command(cmd).await;
            Self::observe(started, &result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.0.req_packed_commands(pipeline, offset, count).await;
            Self::observe(started, &result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}

impl RedisLog {
    /// Connects to `url` (`redis://HOST:PORT[/DB]`); the epoch is the one every node
    /// shares, made with `new_epoch` by the first node ever.
    pub fn connect(url: &str, new_epoch: impl FnOnce() -> String) -> Result<Self, LogError> {
        let client = redis::Client::open(url)?;
        // A request fails after 2 s rather than waiting for Redis; the connection is made
        // again in the background, with back-off, while it is away.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(2));
        let conn = Timed(smol::block_on(ConnectionManager::new_with_config(
            client.clone(),
            config,
        ))?);
        let mut log = Self {
            client,
            conn,
            script: Script::new(include_str!("cluster.lua")),
            epoch: String::new(),
            url: url.to_string(),
            scrub: Scrub::default(),
        };
        let epoch: String = log.run_blocking(log.op("epoch").arg(new_epoch()))?;
        log.epoch = epoch;
        Ok(log)
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client, for connections of their own (the tail's blocking reads, pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A connection for commands (cheap to clone; shared).
    pub fn connection(&self) -> Timed<ConnectionManager> {
        self.conn.clone()
    }

    /// A connection of its own for blocking reads (`XREAD BLOCK`): no response timeout,
    /// the read waits until something comes or its own block time ends.
    pub async fn blocking_connection(&self) -> Result<redis::aio::MultiplexedConnection, LogError> {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// The script, ready for an operation's arguments.
    pub fn op(&self, name: &str) -> ScriptInvocation<'_> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(name);
        invocation
    }

    /// Runs an operation of the script.
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, LogError> {
        let mut conn = self.conn.clone();
        Ok(invocation.invoke_async(&mut conn).await?)
    }

    fn run_blocking<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, LogError> {
        smol::block_on(self.run(invocation))
    }

    fn query_blocking<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, LogError> {
        let mut conn = self.conn.clone();
        Ok(smol::block_on(cmd.query_async(&mut conn))?)
    }

    /// A room as of its newest event, for a node that starts following it.
    async fn snapshot_of(&self, stream: &StreamId) -> Result<Snapshot, LogError> {
        type Reply = (
            u64,
            u64,
            String,
            Vec<(String, String)>,
            Vec<(String, String)>,
        );
        let mut invocation = self.op("snapshot");
        invocation.arg(stream.as_str());
        let (newest, oldest, name, members, state): Reply = self.run(&invocation).await?;
        Ok(Snapshot {
            head: Head { oldest, newest },
            name,
            members: Some(members),
            state,
        })
    }

    /// The account `folded` as stored: its name and hash.
    pub async fn account(&self, folded: &str) -> Result<Option<(String, String)>, LogError> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = redis::cmd("HGET")
            .arg(key("acct"))
            .arg(folded)
            .query_async(&mut conn)
            .await?;
        Ok(stored.as_deref().and_then(split_account))
    }

    /// Every room's key and name.
    pub async fn room_names(&self) -> Result<Vec<(String, String)>, LogError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGETALL")
            .arg(key("rooms"))
            .query_async(&mut conn)
            .await?)
    }

    /// Every account: name and hash.
    pub async fn all_accounts(&self) -> Result<Vec<(String, String)>, LogError> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(key("acct"))
            .query_async(&mut conn)
            .await?;
        Ok(all
            .iter()
            .filter_map(|(_, stored)| split_account(stored))
            .collect())
    }
}

/// A key under the chat's prefix.
pub fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// A stream's key.
pub fn stream_key(stream: &str) -> String {
    format!("{PREFIX}s:{stream}")
}

/// "name\nhash" as stored for an account.
pub(super) fn split_account(stored: &str) -> Option<(String, String)> {
    stored
        .split_once('\n')
        .map(|(name, hash)| (name.to_string(), hash.to_string()))
}

/// The seq of a stream entry id (`<seq>-1`).
pub fn entry_seq(id: &str) -> Option<Seq> {
    id.split_once('-').and_then(|(seq, _)| seq.parse().ok())
}

/// A frame cut where its seq goes: the script joins the two halves around the seq it
/// takes.
fn halves(event: &NewEvent) -> (Vec<u8>, Vec<u8>) {
    let whole = frame(PLACEHOLDER, event);
    let bytes = whole.as_bytes();
    // `"seq":` with the quote unescaped can only be the key: a quote inside a string is
    // always escaped.
    let marker = format!("\"seq\":{PLACEHOLDER}");
    let at = memchr::memmem::find(bytes, marker.as_bytes()).expect("every event's frame has a seq");
    let cut = at + "\"seq\":".len();
    (bytes[..cut].to_vec(), bytes[at + marker.len()..].to_vec())
}

/// What a recorded event changes in its room's state (see [`super::state`]), from the two
/// halves of its frame, as the script takes it: a JSON list of `["s", field, value]`,
/// `["r", field]` and `["p", prefix]`; empty when it changes nothing.
fn state_ops(prefix: &[u8], suffix: &[u8]) -> String {
    let mut whole = prefix.to_vec();
    whole.extend_from_slice(b"1");
    whole.extend_from_slice(suffix);
    let changes = changes(&whole);
    let ops: Vec<Vec<&str>> = changes
        .iter()
        .map(|op| match op {
            FieldOp::Set(field, value) => vec!["s", field.as_str(), value.as_str()],
            FieldOp::Remove(field) => vec!["r", field.as_str()],
            FieldOp::RemovePrefix(prefix) => vec!["p", prefix.as_str()],
        })
        .collect();
    if ops.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&ops).unwrap_or_default()
    }
}

/// The poster (case-folded) and post id of a message's frame, empty when it has no id.
fn poster_and_id(frame: &Frame) -> (String, String) {
    match chat_shared::decode_line::<chat_shared::ServerFrame>(frame.as_bytes().trim_ascii_end()) {
        Ok(chat_shared::ServerFrame::Message {
            from, id: Some(id), ..
        }) => (chat_shared::fold(&from), id),
        _ => (String::new(), String::new()),
    }
}

/// A stream entry as read: its seq, its frame if the entry holds it (streams written
/// before frames moved to `fr:<stream>` do), and what else it says.
#[derive(Debug)]
pub struct Entry {
    /// Its seq.
    pub seq: Seq,
    /// Its frame, if the entry holds it.
    pub frame: Option<Frame>,
    /// What it changes in the room's member list, or the post it is.
    pub note: Option<Note>,
}

/// Reads a stream's entries (`XRANGE`/`XREVRANGE` reply).
pub fn entries_of(reply: &Value) -> Vec<Entry> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries.iter().filter_map(entry_of).collect()
}

/// One stream entry (`[id, [field, value, ...]]`).
pub fn entry_of(entry: &Value) -> Option<Entry> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let seq = entry_seq(&text(id)?)?;
    let mut frame = None;
    let (mut joined, mut name, mut left, mut poster, mut id) = (None, None, None, None, None);
    for pair in fields.chunks(2) {
        let [field, value] = pair else { continue };
        match bytes(field) {
            Some(b"f") => frame = bytes(value).map(Frame::from_encoded),
            Some(b"j") => joined = text(value),
            Some(b"n") => name = text(value),
            Some(b"l") => left = text(value),
            Some(b"p") => poster = text(value),
            Some(b"i") => id = text(value),
            _ => {}
        }
    }
    let note = match (joined, name, left, poster, id) {
        (Some(member), Some(name), ..) => Some(Note::Joined(member, name)),
        (_, _, Some(member), ..) => Some(Note::Left(member)),
        (.., Some(poster), Some(id)) => Some(Note::Posted(poster, id)),
        _ => None,
    };
    Some(Entry { seq, frame, note })
}

/// The frames of events by stream and seq, from `fr:<stream>` (one `HMGET` per stream, all
/// in one round trip): for each stream, its frames in the order asked (`None`: none there).
pub async fn frames_of(
    conn: &mut impl redis::aio::ConnectionLike,
    wanted: &[(&str, Vec<Seq>)],
) -> Result<Vec<Vec<Option<Frame>>>, LogError> {
    let wanted_any = wanted.iter().any(|(_, seqs)| !seqs.is_empty());
    if !wanted_any {
        return Ok(wanted.iter().map(|_| Vec::new()).collect());
    }
    // A stream with no seq asked is left out of the pipeline.
    let mut pipe = redis::pipe();
    for (stream, seqs) in wanted.iter().filter(|(_, seqs)| !seqs.is_empty()) {
        let get = pipe.cmd("HMGET").arg(key(&format!("fr:{stream}")));
        for seq in seqs {
            get.arg(seq);
        }
    }
    let replies: Vec<Vec<Option<Vec<u8>>>> = pipe.query_async(conn).await?;
    let mut replies = replies.into_iter();
    Ok(wanted
        .iter()
        .map(|(_, seqs)| {
            if seqs.is_empty() {
                return Vec::new();
            }
            replies
                .next()
                .unwrap_or_default()
                .into_iter()
                .map(|frame| frame.map(|bytes| Frame::from_encoded(&bytes)))
                .collect()
        })
        .collect())
}

/// A stream's entries with their frames: those the entries do not hold come from
/// `fr:<stream>`; an entry with no frame anywhere is left out.
pub async fn with_frames(
    conn: &mut impl redis::aio::ConnectionLike,
    stream: &str,
    entries: Vec<Entry>,
) -> Result<super::Tailed, LogError> {
    let missing: Vec<Seq> = entries
        .iter()
        .filter(|entry| entry.frame.is_none())
        .map(|entry| entry.seq)
        .collect();
    let mut found = frames_of(conn, &[(stream, missing)])
        .await?
        .pop()
        .unwrap_or_default()
        .into_iter();
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            let frame = match entry.frame {
                Some(frame) => Some(frame),
                None => found.next().flatten(),
            };
            Some((
                Event {
                    seq: entry.seq,
                    frame: frame?,
                },
                entry.note,
            ))
        })
        .collect())
}

/// The bytes of a bulk string.
pub fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

/// A bulk string as text.
pub fn text(value: &Value) -> Option<String> {
    bytes(value).and_then(|b| std::str::from_utf8(b).ok().map(str::to_string))
}

/// The id of the newest entry of the stream at `key` ("0-0" when it has none): where a
/// reader that wants only what comes from now on starts.
pub async fn stream_end(
    conn: &mut impl redis::aio::ConnectionLike,
    key: &str,
) -> Result<String, LogError> {
    let last: Value = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(match &last {
        Value::Array(entries) => entries
            .first()
            .and_then(|entry| match entry {
                Value::Array(parts) => parts.first().and_then(text),
                _ => None,
            })
            .unwrap_or_else(|| "0-0".into()),
        _ => "0-0".into(),
    })
}

impl EventLog for RedisLog {
    fn epoch(&self) -> &str {
        &self.epoch
    }

    fn durable(&self) -> bool {
        true
    }

    fn retains(&self) -> bool {
        false
    }

    fn snapshot(&self, stream: &StreamId) -> Result<Snapshot, LogError> {
        smol::block_on(self.snapshot_of(stream))
    }

    fn head(&self, stream: &StreamId) -> Result<Head, LogError> {
        // Not a snapshot: a history request needs the ends only, not a big room's members.
        let mut invocation = self.op("head");
        invocation.arg(stream.as_str());
        let (newest, oldest): (u64, u64) = self.run_blocking(&invocation)?;
        Ok(Head { oldest, newest })
    }

    fn append(&self, events: &[NewEvent]) -> Result<Vec<Event>, LogError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // The messages the events are about are decided on here, then written with the
        // frame they were decided against, which the script compares: if another node
        // changed one meanwhile, nothing is written and all is decided again.
        for _ in 0..AMEND_TRIES {
            let amended = smol::block_on(self.amendments(events))?;
            if let Some(recorded) = self.append_decided(events, &amended)? {
                return Ok(recorded);
            }
        }
        Err(LogError::Store(
            "a message changed on other nodes too often to change it here".into(),
        ))
    }

    fn read(&self, stream: &StreamId, span: Span, limit: usize) -> Result<Vec<Event>, LogError> {
        // Entry ids are `<seq>-1`: "(S-0" excludes seq S and above, "(S-1" S and below.
        let (command, from, to) = match span {
            Span::Before(0) => return Ok(Vec::new()),
            Span::Before(before) => ("XREVRANGE", format!("({before}-0"), "-"),
            Span::After(after) => ("XRANGE", format!("({after}-1"), "+"),
        };
        let mut conn = self.conn.clone();
        smol::block_on(async {
            let reply: Value = redis::cmd(command)
                .arg(stream_key(stream.as_str()))
                .arg(from)
                .arg(to)
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut conn)
                .await?;
            let mut entries = entries_of(&reply);
            entries.sort_unstable_by_key(|entry| entry.seq);
            let events = with_frames(&mut conn, stream.as_str(), entries).await?;
            Ok(events.into_iter().map(|(event, _)| event).collect())
        })
    }

    /// Has Redis rewrite its append-only file (in the background) once texts were erased:
    /// the old file still holds them (see [`Scrub`]).
    fn tidy(&self) -> bool {
        self.scrub.run(false, "Redis's append-only file", || {
            match self.query_blocking::<String>(&redis::cmd("BGREWRITEAOF")) {
                Ok(_) => Ok(()),
                // One under way may have started before the erasure: try again later.
                Err(err) => Err(err.to_string()),
            }
        })
    }

    fn room_state(&self, stream: &StreamId) -> Result<Vec<(String, String)>, LogError> {
        self.query_blocking(redis::cmd("HGETALL").arg(key(&format!("st:{}", stream.as_str()))))
    }

    fn server_bans(&self) -> Result<Vec<(String, String)>, LogError> {
        self.query_blocking(redis::cmd("HGETALL").arg(key("sbans")))
    }

    fn invites_of(&self, account: &str) -> Result<Vec<(String, String)>, LogError> {
        smol::block_on(self.invites_of_async(account))
    }

    fn set_server_ban(&self, ban: &str, value: Option<&str>) -> Result<(), LogError> {
        let mut invocation = self.op("server_ban");
        invocation.arg(ban).arg(value.unwrap_or(""));
        self.run_blocking::<i64>(&invocation).map(|_| ())
    }

    fn recent_posts(&self, poster: &str) -> Result<Vec<(String, Frame)>, LogError> {
        smol::block_on(self.posts_of(poster))
    }

    fn streams(&self) -> Result<Vec<StreamId>, LogError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> =
            smol::block_on(redis::cmd("HKEYS").arg(key("seq")).query_async(&mut conn))?;
        Ok(keys.iter().map(|k| StreamId::new(k)).collect())
    }

    fn rooms(&self) -> Result<Vec<(StreamId, String)>, LogError> {
        Ok(smol::block_on(self.room_names())?
            .into_iter()
            .map(|(key, name)| (StreamId::new(&key), name))
            .collect())
    }

    fn accounts(&self) -> Result<Vec<(String, String)>, LogError> {
        smol::block_on(self.all_accounts())
    }

    fn create_account(&self, folded: &str, name: &str, hash: &str) -> Result<bool, LogError> {
        let skeleton =
            Name::parse(name).map_or_else(|_| folded.to_string(), |name| name.keys().skeleton);
        let mut invocation = self.op("register");
        invocation.arg(folded).arg(skeleton).arg(name).arg(hash);
        let created: u32 = self.run_blocking(&invocation)?;
        Ok(created == 1)
    }

    fn set_password(&self, folded: &str, hash: &str) -> Result<(), LogError> {
        let mut invocation = self.op("set_password");
        invocation.arg(folded).arg(hash);
        match self.run_blocking::<u32>(&invocation)? {
            1 => Ok(()),
            _ => Err(LogError::Store(format!("no account {folded:?}"))),
        }
    }

    fn forget_account(&self, folded: &str) -> Result<(), LogError> {
        let mut del = redis::cmd("DEL");
        for kind in ["rd", "conv", "invof", "posts", "pi"] {
            del.arg(key(&format!("{kind}:{folded}")));
        }
        self.query_blocking::<i64>(&del).map(|_| ())
    }

    fn conversations(&self, owner: &str, limit: usize) -> Result<Vec<Conversation>, LogError> {
        smol::block_on(self.conversations_of(owner, limit))
    }

    fn remembered(
        self: Arc<Self>,
        poster: String,
        limit: usize,
    ) -> future::Boxed<Result<Remembered, LogError>> {
        // Two round trips to Redis, no thread: a login storm would otherwise grow the
        // blocking pool by a thread per waiting login.
        Box::pin(async move {
            Ok(Remembered {
                posts: self.posts_of(&poster).await?,
                conversations: self.conversations_of(&poster, limit).await?,
                invites: self.invites_of_async(&poster).await?,
                read: self.read_markers_async(&poster).await?,
            })
        })
    }

    fn read_markers(&self, account: &str) -> Result<Vec<(String, Seq)>, LogError> {
        smol::block_on(self.read_markers_async(account))
    }

    fn set_read(&self, marks: &[ReadMark]) -> Result<(), LogError> {
        let mut invocation = self.op("read");
        invocation.arg(marks.len());
        for mark in marks {
            invocation
                .arg(&mark.account)
                .arg(mark.stream.as_str())
                .arg(mark.seq);
        }
        self.run_blocking::<i64>(&invocation).map(|_| ())
    }
}

/// The script's arguments for one event of an append (see `cluster.lua`).
fn event_args(
    invocation: &mut ScriptInvocation<'_>,
    event: &NewEvent,
    amended: &Amended,
    prefix: &[u8],
    suffix: &[u8],
) {
    let (kind, member, name, token) = match &event.body {
        Body::Joined { name } => (
            "j",
            chat_shared::fold(name),
            name.as_str(),
            event.holder.as_deref().unwrap_or(""),
        ),
        Body::Left { name, .. } => (
            "l",
            chat_shared::fold(name),
            "",
            event.holder.as_deref().unwrap_or(""),
        ),
        Body::Message { .. } if event.direct.is_some() => ("d", String::new(), "", ""),
        _ if event.direct.is_some() => ("e", String::new(), "", ""),
        _ => ("m", String::new(), "", ""),
    };
    let ops = state_ops(prefix, suffix);
    let (rw_seq, expect, rw_frame) = amended.target.clone().unwrap_or_default();
    let (rw_poster, rw_id) = if rw_frame.is_empty() {
        (String::new(), String::new())
    } else {
        poster_and_id(&Frame::from_encoded(&rw_frame))
    };
    let life = match &event.body {
        Body::Edited { .. } => "edit",
        Body::Deleted { .. } => "erase",
        _ => "",
    };
    let (id, poster) = match (&event.body, &event.poster) {
        (Body::Message { id: Some(id), .. }, Some(poster)) => (id.as_str(), poster.as_str()),
        _ => ("", ""),
    };
    // Every direct event names its parties, for its delivery; a message also
    // updates the conversation (with the sender's name).
    let (from, to, to_name, from_name) = match (&event.direct, &event.body) {
        (Some(direct), body) => (
            direct.from_key.as_str(),
            direct.to_key.as_str(),
            direct.to.as_str(),
            match body {
                Body::Message { from, .. } => from.as_str(),
                _ => "",
            },
        ),
        _ => ("", "", "", ""),
    };
    invocation
        .arg(event.stream.as_str())
        .arg(&*event.room)
        .arg(prefix)
        .arg(suffix)
        .arg(kind)
        .arg(member)
        .arg(name)
        .arg(token)
        .arg(poster)
        .arg(id)
        .arg(from)
        .arg(to)
        .arg(to_name)
        .arg(from_name)
        .arg(event.time)
        .arg(ops)
        .arg(if amended.target.is_some() {
            rw_seq.to_string()
        } else {
            String::new()
        })
        .arg(rw_poster)
        .arg(rw_id)
        .arg(rw_frame)
        .arg(expect)
        .arg(amended.aside.as_str())
        .arg(life);
}

/// How many times an append whose messages other nodes changed meanwhile is decided again.
const AMEND_TRIES: usize = 16;

/// What becomes of an event about a message (see [`super::amend`]) in an append.
#[derive(Debug, Default)]
struct Amended {
    /// Not to be recorded, and why.
    refused: Option<Refusal>,
    /// The message's seq, the frame it was decided against (empty: not compared, an earlier
    /// event of the batch changed it already, or it is a reply), and the one to store (empty:
    /// unchanged).
    target: Option<(Seq, Vec<u8>, Vec<u8>)>,
    /// What is kept beside the message from now on (`-`: nothing; empty: unchanged).
    aside: String,
}

impl RedisLog {
    /// Decides each event about a message against the message as Redis holds it, or as an
    /// earlier event of the batch left it.
    async fn amendments(&self, events: &[NewEvent]) -> Result<Vec<Amended>, LogError> {
        let targets: Vec<(&str, Seq)> = events
            .iter()
            .filter_map(|event| Some((event.stream.as_str(), change_of(&event.body)?.0)))
            .collect();
        if targets.is_empty() {
            return Ok(events.iter().map(|_| Amended::default()).collect());
        }
        let mut pipe = redis::pipe();
        for (stream, target) in &targets {
            pipe.cmd("HGET")
                .arg(key(&format!("fr:{stream}")))
                .arg(*target)
                .cmd("HGET")
                .arg(key(&format!("rx:{stream}")))
                .arg(*target);
        }
        let mut conn = self.conn.clone();
        let read: Vec<Option<Vec<u8>>> = pipe.query_async(&mut conn).await?;
        let mut held: std::collections::HashMap<(&str, Seq), (Frame, Aside, bool)> = targets
            .iter()
            .zip(read.chunks(2))
            .filter_map(|(at, pair)| {
                let frame = Frame::from_encoded(pair[0].as_deref()?);
                let aside = pair[1].as_deref().map(Aside::decode).unwrap_or_default();
                Some((*at, (frame, aside, false)))
            })
            .collect();
        Ok(events
            .iter()
            .map(|event| {
                let Some((target, change)) = change_of(&event.body) else {
                    return Amended::default();
                };
                let refused = |refusal: Refusal| Amended {
                    refused: Some(refusal),
                    ..Amended::default()
                };
                let Some((frame, aside, changed)) = held.get_mut(&(event.stream.as_str(), target))
                else {
                    return refused(Refusal::NoSuchMessage);
                };
                let mut next = aside.clone();
                match decide(frame, &mut next, &change, PLACEHOLDER, event.time) {
                    Err(refusal) => refused(refusal),
                    Ok(None) => Amended {
                        target: Some((target, Vec::new(), Vec::new())),
                        ..Amended::default()
                    },
                    Ok(Some(new)) => {
                        // Edits are listed by the script, which knows their seqs.
                        next.edits.clear();
                        let expect = if *changed {
                            Vec::new()
                        } else {
                            frame.as_bytes().to_vec()
                        };
                        let kept = if next == *aside {
                            String::new()
                        } else {
                            next.encode().map_or_else(
                                || "-".to_string(),
                                |b| String::from_utf8_lossy(&b).into(),
                            )
                        };
                        *frame = new.clone();
                        *aside = next;
                        *changed = true;
                        Amended {
                            refused: None,
                            target: Some((target, expect, new.as_bytes().to_vec())),
                            aside: kept,
                        }
                    }
                }
            })
            .collect())
    }

    /// Appends the events decided on (see [`RedisLog::amendments`]); `None` when a message
    /// changed meanwhile and nothing was written.
    fn append_decided(
        &self,
        events: &[NewEvent],
        amended: &[Amended],
    ) -> Result<Option<Vec<Event>>, LogError> {
        let mut invocation = self.op("append");
        let sent = amended.iter().filter(|a| a.refused.is_none()).count();
        invocation.arg(sent);
        let mut halves_of = Vec::with_capacity(sent);
        for (event, amended) in events.iter().zip(amended) {
            if amended.refused.is_some() {
                continue;
            }
            let (prefix, suffix) = halves(event);
            event_args(&mut invocation, event, amended, &prefix, &suffix);
            halves_of.push((prefix, suffix));
        }
        let seqs: Vec<Value> = if sent == 0 {
            Vec::new()
        } else {
            self.run_blocking(&invocation)?
        };
        if matches!(seqs.first(), Some(Value::Int(-1))) {
            return Ok(None);
        }
        if events
            .iter()
            .any(|event| matches!(event.body, Body::Deleted { .. }))
        {
            self.scrub.erased();
            let _ = self.tidy();
        }
        let mut recorded = seqs
            .into_iter()
            .zip(halves_of)
            .map(|(seq, (prefix, suffix))| {
                let seq = match seq {
                    Value::Int(seq) => seq.max(0).cast_unsigned(),
                    // A post sent again (to this node or another): the frame recorded for
                    // it answers it.
                    Value::BulkString(frame) => {
                        return Event::unrecorded(Some(Frame::from_encoded(&frame)));
                    }
                    _ => 0,
                };
                // A skipped event (its member gone meanwhile) has seq 0 and no frame.
                if seq == 0 {
                    return Event::unrecorded(None);
                }
                let mut bytes = prefix;
                bytes.extend_from_slice(seq.to_string().as_bytes());
                bytes.extend_from_slice(&suffix);
                Event {
                    seq,
                    frame: Frame::from_encoded(&bytes),
                }
            });
        Ok(Some(
            amended
                .iter()
                .zip(events)
                .map(|(amended, event)| match amended.refused {
                    Some(refusal) => Event::unrecorded(refusal.answer_to(event)),
                    None => recorded.next().unwrap_or_else(|| Event::unrecorded(None)),
                })
                .collect(),
        ))
    }

    /// The posts remembered for a poster, oldest first ([`EventLog::recent_posts`]),
    /// without a thread of the blocking pool.
    async fn posts_of(&self, poster: &str) -> Result<Vec<(String, Frame)>, LogError> {
        let mut conn = self.conn.clone();
        let kept: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(key(&format!("posts:{poster}")))
            .arg(0)
            .arg(REMEMBERED_IDS - 1)
            .query_async(&mut conn)
            .await?;
        Ok(kept
            .iter()
            .rev()
            .filter_map(|entry| {
                let at = memchr::memchr(b'\n', entry)?;
                let id = std::str::from_utf8(&entry[..at]).ok()?;
                Some((id.to_string(), Frame::from_encoded(&entry[at + 1..])))
            })
            .collect())
    }

    /// Every server ban ([`EventLog::server_bans`]), without a thread of the blocking
    /// pool.
    pub async fn server_bans_async(&self) -> Result<Vec<(String, String)>, LogError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGETALL")
            .arg(key("sbans"))
            .query_async(&mut conn)
            .await?)
    }

    /// One server ban, by its key (`None`: lifted).
    pub async fn server_ban(&self, ban: &str) -> Result<Option<String>, LogError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGET")
            .arg(key("sbans"))
            .arg(ban)
            .query_async(&mut conn)
            .await?)
    }

    /// An account's read markers ([`EventLog::read_markers`]), without a thread of the
    /// blocking pool.
    async fn read_markers_async(&self, account: &str) -> Result<Vec<(String, Seq)>, LogError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGETALL")
            .arg(key(&format!("rd:{account}")))
            .query_async(&mut conn)
            .await?)
    }

    /// The rooms an account is invited to ([`EventLog::invites_of`]), without a thread of
    /// the blocking pool.
    async fn invites_of_async(&self, account: &str) -> Result<Vec<(String, String)>, LogError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("HGETALL")
            .arg(key(&format!("invof:{account}")))
            .query_async(&mut conn)
            .await?)
    }

    /// An account's conversations, latest first ([`EventLog::conversations`]), without a
    /// thread of the blocking pool.
    async fn conversations_of(
        &self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<Conversation>, LogError> {
        let mut conn = self.conn.clone();
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(key(&format!("conv:{owner}")))
            .query_async(&mut conn)
            .await?;
        let all = all
            .iter()
            .filter_map(|(_, last)| {
                let mut parts = last.splitn(3, '\n');
                let time = parts.next()?.parse().ok()?;
                let seq = parts.next()?.parse().ok()?;
                let with = parts.next()?.to_string();
                Some((time, Conversation { with, seq, read: 0 }))
            })
            .collect();
        Ok(latest_first(all, limit))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_frame_is_cut_where_its_seq_goes_even_when_its_text_names_one() {
        let event = NewEvent {
            stream: StreamId::new("general"),
            room: Arc::from("general"),
            direct: None,
            time: 7,
            body: Body::Message {
                from: "ann".into(),
                text: format!("\"seq\":{PLACEHOLDER} and \"seq\":1"),
                id: None,
                me: false,
                reply_to: None,
            },
            poster: None,
            holder: None,
            base: None,
        };
        let (prefix, suffix) = halves(&event);
        let mut joined = prefix;
        joined.extend_from_slice(b"42");
        joined.extend_from_slice(&suffix);
        assert_eq!(joined, frame(42, &event).as_bytes());
    }

    #[test]
    fn entry_ids_carry_the_seq() {
        assert_eq!(entry_seq("42-1"), Some(42));
        assert_eq!(entry_seq("nonsense"), None);
    }
}
