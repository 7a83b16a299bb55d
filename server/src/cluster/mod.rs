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

mod backoff;
mod lease;
mod listen;
mod names;
mod tail;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use chat_shared::{Frame, LeaveReason, RoomUsers, ServerFrame};
use futures_lite::future;
use smol::{Executor, Timer};

use crate::hub::command::{Claimed, Command, News, Typing};
use crate::hub::peers::{NameClaim, Peers, Seer};
use crate::log::redis::{RedisLog, key};
use crate::log::{LogError, Seq};
use crate::queue::SendQueue;
use crate::wire::{now_millis, random_hex};

use lease::keep_lease;
use listen::listen;
use names::{claim, release, verify};
use tail::{Following, tail};

/// The most rooms a `room_list` names.
const ROOM_LIST_MAX: usize = 500;

/// What the hub asks of the cluster, served in order by [`serve`].
#[derive(Debug)]
enum Request {
    /// Claim a name for a login.
    Claim(NameClaim),
    /// Tell every other node that someone is typing: the sender (case-folded), and to whom.
    Typing(String, Box<Typing>),
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
        /// Who asks.
        seer: Seer,
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
        self.following.follow(key, seq);
    }

    fn unfollow(&self, key: &str) {
        self.following.unfollow(key);
    }

    fn list_rooms(&self, queue: SendQueue, seer: Seer) -> Option<(SendQueue, Seer)> {
        self.ask(Request::ListRooms { queue, seer });
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

    fn typing(&self, sender: String, typing: Typing) {
        self.ask(Request::Typing(sender, Box::new(typing)));
    }
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
                let answer = Claimed {
                    login,
                    next,
                    outcome,
                };
                News::Claimed(answer).send_to(&hub).await;
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
            Request::ListRooms { queue, seer } => match list_rooms(&log, &seer).await {
                Ok(rooms) => queue.push_unmetered(Frame::encode(&ServerFrame::RoomList { rooms })),
                Err(err) => {
                    tracing::error!(%err, "cannot list the rooms");
                    queue.push_unmetered(Frame::encode(&ServerFrame::Error {
                        room: None,
                        code: chat_shared::ErrorCode::Unavailable,
                        message: "the rooms cannot be listed now; try again later".into(),
                        id: None,
                        retry_after: None,
                        until: None,
                    }));
                }
            },
            Request::Verify(members) => {
                for news in verify(&log, members).await {
                    news.send_to(&hub).await;
                }
            }
            Request::Typing(sender, typing) => publish_typing(&log, &node, &sender, &typing).await,
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

/// Tells the other nodes that `sender` is typing (they relay it to their members); lost
/// if Redis is away, as a typing indicator may be.
async fn publish_typing(log: &RedisLog, node: &str, sender: &str, typing: &Typing) {
    let (kind, to, frame) = match typing {
        Typing::Room(key, frame) => ("r", key.to_string(), frame),
        Typing::Direct(to, frame) => ("d", to.clone(), frame),
    };
    let frame = Frame::encode(frame);
    let line = String::from_utf8_lossy(frame.as_bytes().trim_ascii_end());
    let payload = format!("typing\n{node}\n{kind}\n{to}\n{sender}\n{line}");
    let mut conn = log.connection();
    let sent: Result<i64, _> = redis::cmd("PUBLISH")
        .arg(key("events"))
        .arg(payload)
        .query_async(&mut conn)
        .await;
    if let Err(err) = sent {
        tracing::debug!(%err, "a typing indicator stayed on this node");
    }
}

/// The rooms with members on any node, fullest first.
async fn list_rooms(log: &RedisLog, seer: &Seer) -> Result<Vec<RoomUsers>, LogError> {
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
    // Which of them are invite-only.
    let mut private = redis::pipe();
    for (room, _) in &sizes {
        private
            .cmd("HEXISTS")
            .arg(key(&format!("st:{room}")))
            .arg("invite_only");
    }
    let (names, private): (Vec<Option<String>>, Vec<bool>) = if sizes.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            names.query_async(&mut conn).await.map_err(LogError::from)?,
            private
                .query_async(&mut conn)
                .await
                .map_err(LogError::from)?,
        )
    };
    let mut rooms: Vec<RoomUsers> = sizes
        .into_iter()
        .zip(names)
        .zip(private)
        .filter(|(((key, _), _), private)| !private || seer.sees(key))
        .map(|(((key, users), name), _)| RoomUsers {
            room: name.unwrap_or(key),
            users,
        })
        .collect();
    rooms.sort_by(|a, b| b.users.cmp(&a.users).then_with(|| a.room.cmp(&b.room)));
    rooms.truncate(ROOM_LIST_MAX);
    Ok(rooms)
}
