//! A storm of wrong passwords while the fan-out runs: each address (127.1.x.y) guesses at
//! most 20 times, each account at most 5, as the throttle allows.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use smol::Timer;

use crate::accounts::{account_hello, account_name, one_hello};
use crate::spawn;

/// What the wrong-password storm got back.
#[derive(Serialize, Default, Debug, Clone)]
pub(crate) struct StormSummary {
    pub(crate) sent: usize,
    /// Checked and found wrong: each cost the server a hash.
    pub(crate) bad_password: usize,
    /// Turned away unchecked because the hashing queue was full.
    pub(crate) unavailable: usize,
    /// Refused unchecked by the throttle.
    pub(crate) too_many_attempts: usize,
    pub(crate) other: usize,
}

/// A source address for storm connection `j`: 20 to an address, as the throttle allows.
fn storm_source(j: usize) -> Ipv4Addr {
    let a = j / 20;
    Ipv4Addr::new(127, 1, (a / 250) as u8, 1 + (a % 250) as u8)
}

/// Sends `guesses` wrong-password logins at the first `accounts` accounts, evenly over
/// `seconds`, and tallies the answers.
pub(crate) async fn storm(
    addr: SocketAddr,
    guesses: usize,
    accounts: usize,
    seconds: f64,
) -> Result<StormSummary, String> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..guesses)
        .map(|j| {
            let at = started + Duration::from_secs_f64(seconds * j as f64 / guesses as f64);
            let hello = account_hello(
                account_name(j % accounts.max(1)),
                format!("a wrong guess {j}"),
                false,
            );
            spawn(async move {
                Timer::at(at).await;
                one_hello(Some(storm_source(j)), addr, &hello).await
            })
        })
        .collect();
    let mut summary = StormSummary::default();
    for task in tasks {
        summary.sent += 1;
        match task.await?.as_str() {
            "BadPassword" => summary.bad_password += 1,
            "Unavailable" => summary.unavailable += 1,
            "TooManyAttempts" => summary.too_many_attempts += 1,
            _ => summary.other += 1,
        }
    }
    Ok(summary)
}
