//! The node's lease: refreshed while Redis can be reached; the members of a node whose
//! lease ran out are taken offline once, by one of the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::Sender;
use smol::Timer;

use crate::hub::command::{Command, News};
use crate::log::LogError;
use crate::log::redis::{RedisLog, key};
use crate::wire::now_millis;

/// Members one reaping call takes offline (a dead node with thousands is reaped in steps,
/// so Redis is never blocked for long).
const REAP_STEP: i64 = 500;

/// Refreshes the node's lease; once it has been reachable for a whole lease, reaps nodes
/// whose lease ran out (before that, another node's lease may have run out only because
/// Redis was away for everyone).
pub(super) async fn keep_lease(
    log: Arc<RedisLog>,
    node: Arc<str>,
    lease: Duration,
    hub: Sender<Command>,
) {
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
                News::CutOff.send_to(&hub).await;
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
