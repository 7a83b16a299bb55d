//! Cluster mode (`--redis`): several nodes that share one Redis behave as one chat.
//!
//! Each node keeps its connections and its rooms' fan-out as it would alone; Redis is the
//! log every node appends to ([`RedisLog`]) and the register of who is online where. This
//! module is what a node runs beside its hub:
//! - the tail: one connection blocked in `XREAD` on the streams of the rooms this node has
//!   in memory and on the stream of direct messages; what it reads goes to the hub, which
//!   fans it out locally exactly as it would its own batches, in seq order;
//! - presence: claims and releases of names (one script call each, so two nodes never
//!   both hand out a name), in the order the hub asks for them;
//! - the lease: the node refreshes its lease; a node whose lease ran out is reaped by one
//!   of the others, which records its members' `left` (`lost`) once;
//! - pub/sub: a takeover on another node (`replace`), accounts and rooms made elsewhere,
//!   wrong passwords counted elsewhere.
//!
//! Redis being away: requests fail after a moment (posts `unavailable`, logins
//! `unavailable` with a retry), every task reconnects with back-off, and the tail resumes
//! from the last entry it read.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use chat_shared::{Frame, LeaveReason, RoomUsers, ServerFrame};
use event_listener::Event as Notify;
use futures_lite::{StreamExt, future};
use redis::Value;
use smol::{Executor, Timer};

use crate::hub::command::{Claim, Claimed, Command, Counted, DirectMessage, Login, News};
use crate::hub::peers::{NameClaim, Peers};
use crate::log::redis::{self as store, RedisLog, entry_event, key};
use crate::log::{LogError, Seq, Tailed};
use crate::queue::SendQueue;
use crate::wire::{now_millis, random_hex};

/// The most events one read of the tail takes from each stream.
const TAIL_COUNT: usize = 1000;
/// How long the tail's read blocks before it asks again (it is woken at once when the
/// streams it follows change).
const TAIL_BLOCK_MS: u64 = 5000;
/// The longest wait between two attempts to reach Redis again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Members one reaping call takes offline (a dead node with thousands is reaped in steps,
/// so Redis is never blocked for long).
const REAP_STEP: i64 = 500;
/// The most rooms a `room_list` names.
const ROOM_LIST_MAX: usize = 500;

/// What the hub asks of the cluster, served in order by [`serve`].
#[derive(Debug)]
enum Request {
    /// Claim a name for a login.
    Claim(NameClaim),
    /// Take a member offline: its `left`s in all its rooms, its name free.
    Release {
        /// Case-folded name.
        member: String,
        /// Its session token (nothing happens if another session holds it now).
        token: String,
        /// Why it went.
        reason: LeaveReason,
    },
    /// Answer a `rooms` request with the rooms in use on every node.
    ListRooms {
        /// Where the answer goes.
        queue: SendQueue,
    },
    /// Find which of these members (case-folded name, token) are no longer this node's.
    Verify(Vec<(String, String)>),
    /// Count a wrong password on every node.
    Fail {
        /// The account.
        account: String,
        /// The address.
        ip: IpAddr,
    },
}

/// The streams the tail follows, each with the newest seq the hub has of it.
#[derive(Debug, Default)]
struct Following {
    streams: Mutex<HashMap<Arc<str>, Seq>>,
    changed: Notify,
}

/// This node's part of the cluster.
pub struct Cluster {
    node: Arc<str>,
    log: Arc<RedisLog>,
    lease: Duration,
    requests: Sender<Request>,
    inbox: Option<Receiver<Request>>,
    following: Arc<Following>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Joins the cluster of `log`'s Redis as a new node with a lease of `lease`.
    pub fn join(log: Arc<RedisLog>, lease: Duration) -> Result<Self, LogError> {
        let node: Arc<str> = random_hex(8)
            .map_err(|err| LogError::Store(err.to_string()))?
            .into();
        smol::block_on(async {
            let mut join = log.op("join_cluster");
            join.arg(&*node).arg(lease.as_millis() as u64);
            log.run::<i64>(&join).await
        })?;
        let (requests, inbox) = async_channel::unbounded();
        Ok(Self {
            node,
            log,
            lease,
            requests,
            inbox: Some(inbox),
            following: Arc::default(),
        })
    }

    /// The URL of the Redis it shares.
    pub fn url(&self) -> &str {
        self.log.url()
    }

    /// Asks something of the cluster; answers come to the hub as [`News`].
    fn ask(&self, request: Request) {
        let _ = self.requests.try_send(request);
    }
}

impl Peers for Cluster {
    fn start(&mut self, executor: &Executor<'static>, hub: &Sender<Command>) {
        let Some(requests) = self.inbox.take() else {
            return;
        };
        let (log, node) = (self.log.clone(), self.node.clone());
        executor
            .spawn(serve(log.clone(), node.clone(), requests, hub.clone()))
            .detach();
        executor
            .spawn(keep_lease(
                log.clone(),
                node.clone(),
                self.lease,
                hub.clone(),
            ))
            .detach();
        executor
            .spawn(listen(log.clone(), node, hub.clone()))
            .detach();
        executor
            .spawn(tail(log, self.following.clone(), hub.clone()))
            .detach();
    }

    fn node(&self) -> &str {
        &self.node
    }

    fn claim(&self, claim: NameClaim) -> Option<Claimed> {
        self.ask(Request::Claim(claim));
        None
    }

    fn release(&self, member: String, token: String, reason: LeaveReason) {
        self.ask(Request::Release {
            member,
            token,
            reason,
        });
    }

    fn tails(&self) -> bool {
        true
    }

    fn follow(&self, key: &Arc<str>, seq: Seq) {
        self.following
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), seq);
        self.following.changed.notify(usize::MAX);
    }

    fn unfollow(&self, key: &str) {
        let removed = self
            .following
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        if removed.is_some() {
            self.following.changed.notify(usize::MAX);
        }
    }

    fn list_rooms(&self, queue: SendQueue) -> Option<SendQueue> {
        self.ask(Request::ListRooms { queue });
        None
    }

    fn count_failure(&self, account: &str, ip: IpAddr) {
        self.ask(Request::Fail {
            account: account.to_string(),
            ip,
        });
    }

    fn verify(&self, members: Vec<(String, String)>) {
        self.ask(Request::Verify(members));
    }
}

/// The wait before a task's next attempt to reach Redis: it doubles while Redis stays
/// away, up to [`MAX_BACKOFF`], and is short again after an attempt that lasted (it was
/// connected).
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);

    fn new() -> Self {
        Self(Self::FIRST)
    }

    /// After an attempt that began at `started` and ended with `result`: says why, waits.
    async fn wait(&mut self, what: &str, started: Instant, result: Result<(), LogError>) {
        if let Err(err) = result {
            tracing::warn!(%err, "{what}: cannot reach Redis; trying again");
        }
        if started.elapsed() > MAX_BACKOFF {
            self.0 = Self::FIRST;
        }
        Timer::after(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
}

async fn tell(hub: &Sender<Command>, news: News) {
    let _ = hub.send(Command::Cluster(news)).await;
}

/// Serves the hub's requests in order (a release is done before a later claim of the same
/// name). A release that fails (Redis away) is tried again until it is done: the name
/// must not stay taken.
async fn serve(
    log: Arc<RedisLog>,
    node: Arc<str>,
    requests: Receiver<Request>,
    hub: Sender<Command>,
) {
    let mut unreleased: VecDeque<(String, String, LeaveReason)> = VecDeque::new();
    loop {
        let request = if unreleased.is_empty() {
            match requests.recv().await {
                Ok(request) => Some(request),
                Err(_) => return,
            }
        } else {
            future::or(async { requests.recv().await.ok() }, async {
                Timer::after(Duration::from_secs(1)).await;
                None
            })
            .await
        };
        while let Some((member, token, reason)) = unreleased.pop_front() {
            if let Err(err) = release(&log, &member, &token, reason).await {
                tracing::warn!(%err, member, "cannot release a name yet; will try again");
                unreleased.push_front((member, token, reason));
                break;
            }
        }
        let Some(request) = request else { continue };
        match request {
            Request::Claim(NameClaim {
                login,
                next,
                token,
                proven,
                account,
                ..
            }) => {
                let outcome = claim(&log, &node, &login, &token, proven, account).await;
                tell(
                    &hub,
                    News::Claimed(Claimed {
                        login,
                        next,
                        outcome,
                    }),
                )
                .await;
            }
            Request::Release {
                member,
                token,
                reason,
            } => {
                if !unreleased.is_empty() {
                    unreleased.push_back((member, token, reason));
                } else if let Err(err) = release(&log, &member, &token, reason).await {
                    tracing::warn!(%err, member, "cannot release a name yet; will try again");
                    unreleased.push_back((member, token, reason));
                }
            }
            Request::ListRooms { queue } => match list_rooms(&log).await {
                Ok(rooms) => queue.push_unmetered(Frame::encode(&ServerFrame::RoomList { rooms })),
                Err(err) => {
                    tracing::error!(%err, "cannot list the rooms");
                    queue.push_unmetered(Frame::encode(&ServerFrame::Error {
                        room: None,
                        code: chat_shared::ErrorCode::Unavailable,
                        message: "the rooms cannot be listed now; try again later".into(),
                        id: None,
                        retry_after: None,
                    }));
                }
            },
            Request::Verify(members) => {
                for news in verify(&log, members).await {
                    tell(&hub, news).await;
                }
            }
            Request::Fail { account, ip } => {
                let mut fail = log.op("fail");
                fail.arg(&account)
                    .arg(ip.to_string())
                    .arg(now_millis())
                    .arg(chat_shared::limits::ATTEMPT_WINDOW_SECS * 1000)
                    .arg(&*node);
                if let Err(err) = log.run::<i64>(&fail).await {
                    tracing::warn!(%err, "a wrong password was counted on this node only");
                }
            }
        }
    }
}

/// The members whose session Redis gives to another token now, or no longer knows.
async fn verify(log: &RedisLog, members: Vec<(String, String)>) -> Vec<News> {
    let mut pipe = redis::pipe();
    for (member, _) in &members {
        pipe.cmd("HGET")
            .arg(key(&format!("m:{member}")))
            .arg("token");
    }
    let mut conn = log.connection();
    let tokens: Vec<Option<String>> = match pipe.query_async(&mut conn).await {
        Ok(tokens) => tokens,
        Err(err) => {
            tracing::warn!(%err, "cannot check this node's sessions");
            return Vec::new();
        }
    };
    members
        .into_iter()
        .zip(tokens)
        .filter_map(|((member, token), now)| match now {
            Some(now) if now == token => None,
            Some(_) => Some(News::Replaced { member, token }),
            None => Some(News::Orphaned { member, token }),
        })
        .collect()
}

async fn claim(
    log: &RedisLog,
    node: &str,
    login: &Login,
    token: &str,
    proven: bool,
    account: bool,
) -> Result<Claim, LogError> {
    let keys = login.name.keys();
    let mut claim = log.op("claim");
    claim
        .arg(&keys.folded)
        .arg(&keys.skeleton)
        .arg(login.name.as_str())
        .arg(node)
        .arg(token)
        .arg(login.token.as_deref().unwrap_or(""))
        .arg(if proven { "1" } else { "0" })
        .arg(if account { "1" } else { "0" });
    let answer: Vec<String> = log.run(&claim).await?;
    let mut answer = answer.into_iter();
    Ok(match answer.next().as_deref() {
        Some("free") => Claim::Free,
        Some("taken") => Claim::Taken(answer.next().unwrap_or_default()),
        Some("looks") => Claim::LooksLike(answer.next().unwrap_or_default()),
        Some("takeover") => Claim::Takeover {
            node: answer.next().unwrap_or_default(),
            name: answer.next().unwrap_or_default(),
            account: answer.next().as_deref() == Some("1"),
            rooms: answer.collect(),
        },
        other => return Err(LogError::Store(format!("claim answered {other:?}"))),
    })
}

async fn release(
    log: &RedisLog,
    member: &str,
    token: &str,
    reason: LeaveReason,
) -> Result<(), LogError> {
    let mut release = log.op("release");
    release
        .arg(member)
        .arg(token)
        .arg(reason_word(reason))
        .arg(now_millis());
    log.run::<i64>(&release).await.map(|_| ())
}

/// A `left` reason as the protocol spells it.
fn reason_word(reason: LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Quit => "quit",
        LeaveReason::Timeout => "timeout",
        LeaveReason::Kicked => "kicked",
        LeaveReason::Part => "part",
        LeaveReason::Lost | LeaveReason::Unknown => "lost",
    }
}

/// The rooms with members on any node, fullest first.
async fn list_rooms(log: &RedisLog) -> Result<Vec<RoomUsers>, LogError> {
    let mut conn = log.connection();
    let sizes: Vec<(String, u32)> = redis::cmd("ZRANGE")
        .arg(key("size"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .map_err(LogError::from)?;
    // The names of these rooms only, not of every room there ever was.
    let mut names = redis::cmd("HMGET");
    names.arg(key("rooms"));
    for (room, _) in &sizes {
        names.arg(room);
    }
    let names: Vec<Option<String>> = if sizes.is_empty() {
        Vec::new()
    } else {
        names.query_async(&mut conn).await.map_err(LogError::from)?
    };
    let mut rooms: Vec<RoomUsers> = sizes
        .into_iter()
        .zip(names)
        .map(|((key, users), name)| RoomUsers {
            room: name.unwrap_or(key),
            users,
        })
        .collect();
    rooms.sort_by(|a, b| b.users.cmp(&a.users).then_with(|| a.room.cmp(&b.room)));
    rooms.truncate(ROOM_LIST_MAX);
    Ok(rooms)
}

/// Refreshes the node's lease; once it has been reachable for a whole lease, reaps nodes
/// whose lease ran out (before that, another node's lease may have run out only because
/// Redis was away for everyone).
async fn keep_lease(log: Arc<RedisLog>, node: Arc<str>, lease: Duration, hub: Sender<Command>) {
    let ms = lease.as_millis() as u64;
    let mut reachable_since: Option<Instant> = Some(Instant::now());
    loop {
        Timer::after(lease / 4).await;
        let mut refresh = log.op("lease");
        refresh.arg(&*node).arg(ms);
        match log.run::<i64>(&refresh).await {
            Ok(1) => {
                reachable_since.get_or_insert_with(Instant::now);
            }
            Ok(_) => {
                tracing::error!(
                    "this node was cut off from Redis longer than its lease; its connections start over"
                );
                tell(&hub, News::CutOff).await;
                let mut join = log.op("join_cluster");
                join.arg(&*node).arg(ms);
                let _ = log.run::<i64>(&join).await;
                reachable_since = None;
                continue;
            }
            Err(err) => {
                if reachable_since.take().is_some() {
                    tracing::warn!(%err, "cannot reach Redis to keep this node's lease");
                }
                continue;
            }
        }
        if reachable_since.is_some_and(|since| since.elapsed() >= lease)
            && let Err(err) = reap(&log, &node).await
        {
            tracing::warn!(%err, "cannot reap dead nodes now");
        }
    }
}

/// Takes the members of every node whose lease ran out offline, once.
async fn reap(log: &RedisLog, me: &str) -> Result<(), LogError> {
    let mut conn = log.connection();
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(key("nodes"))
        .query_async(&mut conn)
        .await
        .map_err(LogError::from)?;
    for dead in nodes.iter().filter(|n| n.as_str() != me) {
        loop {
            let mut reap = log.op("reap");
            reap.arg(dead).arg(me).arg(now_millis()).arg(REAP_STEP);
            let reaped: i64 = log.run(&reap).await?;
            if reaped > 0 {
                tracing::info!(node = dead, members = reaped, "a dead node's members left");
            }
            if reaped < REAP_STEP {
                break;
            }
        }
    }
    Ok(())
}

/// Listens to this node's channel and to every node's; after each (re)connection reads
/// the accounts and rooms again (what was published meanwhile is lost).
async fn listen(log: Arc<RedisLog>, node: Arc<str>, hub: Sender<Command>) {
    let (mut first, mut backoff) = (true, Backoff::new());
    loop {
        let started = Instant::now();
        let result = listen_once(&log, &node, &hub, &mut first).await;
        backoff.wait("pub/sub", started, result).await;
    }
}

async fn listen_once(
    log: &RedisLog,
    node: &str,
    hub: &Sender<Command>,
    first: &mut bool,
) -> Result<(), LogError> {
    let mut pubsub = log.client().get_async_pubsub().await?;
    pubsub.subscribe(key(&format!("ctl:{node}"))).await?;
    pubsub.subscribe(key("events")).await?;
    tell(hub, News::Subscribed).await;
    let accounts = log.all_accounts().await?;
    tell(hub, News::Accounts(accounts)).await;
    tell(hub, News::Rooms(log.room_names().await?)).await;
    if *first {
        // Once, at start: later, this node has counted them itself as they were published
        // (some may be missed while it was cut off; none is counted twice).
        tell(hub, News::Failures(failures(log).await?)).await;
        *first = false;
    }
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: Vec<u8> = message.get_payload_bytes().to_vec();
        let Ok(payload) = String::from_utf8(payload) else {
            continue;
        };
        let mut parts = payload.split('\n');
        let news = match (parts.next(), parts.next(), parts.next()) {
            (Some("replace"), Some(member), Some(token)) => Some(News::Replaced {
                member: member.into(),
                token: token.into(),
            }),
            (Some("account"), Some(account), _) => match log.account(account).await {
                Ok(Some(stored)) => Some(News::Accounts(vec![stored])),
                Ok(None) => None,
                Err(err) => {
                    tracing::warn!(%err, "cannot read an account changed elsewhere");
                    None
                }
            },
            (Some("room"), Some(key), Some(name)) => {
                Some(News::Rooms(vec![(key.into(), name.into())]))
            }
            // Counted here already when this node published it.
            (Some("fail"), Some(account), Some(ip)) if parts.next() != Some(node) => {
                ip.parse().ok().map(|ip| News::Failed {
                    account: account.into(),
                    ip,
                })
            }
            _ => None,
        };
        if let Some(news) = news {
            tell(hub, news).await;
        }
    }
    Ok(())
}

/// Every wrong password Redis counts (within the window: older ones expire there).
async fn failures(log: &RedisLog) -> Result<Vec<(Counted, u64)>, LogError> {
    let mut conn = log.connection();
    let pattern = key("fails:*");
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let (accounts, addresses) = (key("fails:a:"), key("fails:ip:"));
    let mut all = Vec::new();
    for name in keys {
        let counted = if let Some(account) = name.strip_prefix(&accounts) {
            Counted::Account(account.to_string())
        } else if let Some(Ok(ip)) = name.strip_prefix(&addresses).map(str::parse) {
            Counted::Address(ip)
        } else {
            continue;
        };
        let times: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&name)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        all.extend(
            times
                .into_iter()
                .map(|(_, at)| (counted.clone(), at as u64)),
        );
    }
    Ok(all)
}

/// Reads the followed rooms' streams and the direct messages, and hands what it reads to
/// the hub. A change of what is followed wakes the blocked read (`CLIENT UNBLOCK` from
/// the command connection).
async fn tail(log: Arc<RedisLog>, following: Arc<Following>, hub: Sender<Command>) {
    // Where the direct messages were read up to: a new connection resumes there.
    let (mut direct_after, mut backoff) = (None, Backoff::new());
    loop {
        let started = Instant::now();
        let result = tail_once(&log, &following, &hub, &mut direct_after).await;
        backoff.wait("tail", started, result).await;
    }
}

async fn tail_once(
    log: &RedisLog,
    following: &Following,
    hub: &Sender<Command>,
    direct_after: &mut Option<String>,
) -> Result<(), LogError> {
    // No response timeout: the read blocks until something comes (or TAIL_BLOCK_MS).
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut conn = log
        .client()
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await?;
    let direct_key = key("direct");
    if direct_after.is_none() {
        // From now on: direct messages already recorded reach their readers by `history`.
        let last: Value = redis::cmd("XREVRANGE")
            .arg(&direct_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        *direct_after = Some(match &last {
            Value::Array(entries) => entries
                .first()
                .and_then(|entry| match entry {
                    Value::Array(parts) => parts.first().and_then(store::text),
                    _ => None,
                })
                .unwrap_or_else(|| "0-0".into()),
            _ => "0-0".into(),
        });
    }
    loop {
        let listener = following.changed.listen();
        let streams: Vec<(Arc<str>, Seq)> = following
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, seq)| (key.clone(), *seq))
            .collect();
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(TAIL_COUNT)
            .arg("BLOCK")
            .arg(TAIL_BLOCK_MS)
            .arg("STREAMS")
            .arg(&direct_key);
        for (key, _) in &streams {
            read.arg(store::stream_key(key));
        }
        read.arg(direct_after.as_deref().unwrap_or("0-0"));
        for (_, seq) in &streams {
            read.arg(format!("{seq}-1"));
        }
        let mut waker = log.connection();
        let reply: Value = future::or(read.query_async(&mut conn), async {
            listener.await;
            // Wake the read so that it starts again with the new streams; its (empty)
            // answer comes back on its own connection.
            let _: Result<i64, _> = redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(id)
                .query_async(&mut waker)
                .await;
            future::pending().await
        })
        .await?;
        let (rooms, direct) = sort_reply(&reply, &direct_key, following, direct_after);
        if !direct.is_empty() {
            tell(hub, News::Direct(direct)).await;
        }
        for (key, events) in rooms {
            tell(hub, News::Tailed { key, events }).await;
        }
    }
}

/// What one read of the tail brought: the events of each room still followed (whose
/// position moves past them), and the direct messages (whose position moves too).
fn sort_reply(
    reply: &Value,
    direct_key: &str,
    following: &Following,
    direct_after: &mut Option<String>,
) -> (Vec<(Arc<str>, Tailed)>, Vec<DirectMessage>) {
    let mut rooms = Vec::new();
    let mut direct = Vec::new();
    let Value::Array(per_stream) = reply else {
        return (rooms, direct);
    };
    let prefix = format!("{}s:", store::PREFIX);
    for stream in per_stream {
        let Value::Array(parts) = stream else {
            continue;
        };
        let [name, Value::Array(entries)] = parts.as_slice() else {
            continue;
        };
        let Some(name) = store::text(name) else {
            continue;
        };
        if name == direct_key {
            for entry in entries {
                if let Some((id, message)) = direct_entry(entry) {
                    *direct_after = Some(id);
                    direct.extend(message);
                }
            }
            continue;
        }
        let Some(room) = name.strip_prefix(&prefix) else {
            continue;
        };
        let events: Tailed = entries.iter().filter_map(entry_event).collect();
        let Some(newest) = events.last().map(|(event, _)| event.seq) else {
            continue;
        };
        let mut streams = following
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Still followed: the hub wants these, and the next read starts after them.
        if let Some((key, seq)) = streams.get_key_value(room).map(|(k, s)| (k.clone(), *s)) {
            if newest > seq {
                streams.insert(key.clone(), newest);
            }
            drop(streams);
            rooms.push((key, events));
        }
    }
    (rooms, direct)
}

/// An entry of the direct-message stream: its id and (sender, recipient, frame).
fn direct_entry(entry: &Value) -> Option<(String, Option<DirectMessage>)> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let [id, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let id = store::text(id)?;
    let (mut frame, mut from, mut to) = (None, None, None);
    for pair in fields.chunks(2) {
        let [field, value] = pair else { continue };
        match store::bytes(field) {
            Some(b"f") => frame = store::bytes(value).map(Frame::from_encoded),
            Some(b"a") => from = store::text(value),
            Some(b"b") => to = store::text(value),
            _ => {}
        }
    }
    let message = match (from, to, frame) {
        (Some(from), Some(to), Some(frame)) => Some((from, to, frame)),
        _ => None,
    };
    Some((id, message))
}
