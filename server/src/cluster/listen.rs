//! Pub/sub: takeovers on other nodes, accounts, rooms and server bans made elsewhere,
//! wrong passwords counted elsewhere; read again after every reconnection.

use std::sync::Arc;
use std::time::Instant;

use async_channel::Sender;
use futures_lite::StreamExt;

use chat_shared::ServerFrame;

use crate::hub::command::{Command, Counted, News, Typing};
use crate::log::LogError;
use crate::log::redis::{RedisLog, key};

use super::backoff::Backoff;

/// Listens to this node's channel and to every node's; after each (re)connection reads
/// the accounts and rooms again (what was published meanwhile is lost).
pub(super) async fn listen(log: Arc<RedisLog>, node: Arc<str>, hub: Sender<Command>) {
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
    News::Subscribed.send_to(hub).await;
    let accounts = log.all_accounts().await?;
    News::Accounts(accounts).send_to(hub).await;
    News::Rooms(log.room_names().await?).send_to(hub).await;
    News::ServerBans(log.server_bans_async().await?)
        .send_to(hub)
        .await;
    if *first {
        // Once, at start: later, this node has counted them itself as they were published
        // (some may be missed while it was cut off; none is counted twice).
        News::Failures(failures(log).await?).send_to(hub).await;
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
            (Some("sban"), Some(ban), _) => match log.server_ban(ban).await {
                Ok(value) => Some(News::ServerBan(ban.into(), value)),
                Err(err) => {
                    tracing::warn!(%err, "cannot read a server ban set elsewhere");
                    None
                }
            },
            (Some("invited"), Some(account), Some(room)) => parts.next().map(|by| News::Invited {
                account: account.into(),
                room: room.into(),
                by: by.into(),
            }),
            (Some("typing"), Some(from), Some(kind)) if from != node => typing(kind, parts),
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
            news.send_to(hub).await;
        }
    }
    Ok(())
}

/// A `typing` another node relayed to its members (`r`: to a room's, by key; `d`: to an
/// account): the rest of the message is to whom, the sender (case-folded) and the frame.
fn typing<'a>(kind: &str, mut parts: impl Iterator<Item = &'a str>) -> Option<News> {
    let (to, sender, frame) = (parts.next()?, parts.next()?, parts.next()?);
    let frame = chat_shared::decode_line::<ServerFrame>(frame.as_bytes()).ok()?;
    let typing = match kind {
        "r" => Typing::Room(to.into(), frame),
        "d" => Typing::Direct(to.into(), frame),
        _ => return None,
    };
    Some(News::Typing {
        sender: sender.into(),
        typing,
    })
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
