//! Presence in Redis: a login's claim of its name (one script call, so two nodes never
//! both hand out a name), its release, and which of this node's members are still its own.

use chat_shared::LeaveReason;

use crate::hub::command::{Claim, Login, News};
use crate::log::LogError;
use crate::log::redis::{RedisLog, key};
use crate::wire::now_millis;

/// The members whose session Redis gives to another token now, or no longer knows.
pub(super) async fn verify(log: &RedisLog, members: Vec<(String, String)>) -> Vec<News> {
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

pub(super) async fn claim(
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

pub(super) async fn release(
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
        LeaveReason::Removed => "removed",
        LeaveReason::Banned => "banned",
        LeaveReason::Lost | LeaveReason::Unknown => "lost",
    }
}
