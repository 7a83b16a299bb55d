//! What every connection of a server shares: the configuration, the hub's inbox, the event
//! log, the shutdown signal, and the connection caps (`--max-clients`, `--max-per-ip`)
//! with the place each connection holds in them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_channel::Sender;
use chat_shared::RejectCode;

use crate::Config;
use crate::accounts::AccountNames;
use crate::bans::AddressBans;
use crate::hub::command::Command;
use crate::log::EventLog;
use crate::signal::Signal;

/// What every session of a server shares.
pub struct Context {
    /// The server's configuration.
    pub config: Config,
    /// The hub's inbox.
    pub hub: Sender<Command>,
    /// The event log.
    pub log: Arc<dyn EventLog>,
    /// Raised when the server shuts down.
    pub shutdown: Signal,
    /// The accounts' keys (the hub keeps them up to date).
    pub accounts: Arc<AccountNames>,
    /// The addresses banned from the server (the hub keeps them up to date).
    address_bans: Arc<AddressBans>,
    /// Raised when the last connection is gone after shutdown.
    all_closed: Signal,
    connections: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_conn: AtomicU64,
}

/// A connection's place in the caps; given back when dropped.
pub struct Place {
    context: Arc<Context>,
    ip: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let context = &self.context;
        if context.config.max_per_ip > 0
            && let Ok(mut per_ip) = context.per_ip.lock()
            && let Some(count) = per_ip.get_mut(&self.ip)
        {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
        let left = context.connections.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 && context.shutdown.is_raised() {
            context.all_closed.raise();
        }
    }
}

impl Context {
    /// The context of a server with no connection yet.
    pub fn new(
        config: Config,
        hub: Sender<Command>,
        log: Arc<dyn EventLog>,
        address_bans: Arc<AddressBans>,
        accounts: Arc<AccountNames>,
    ) -> Self {
        Self {
            config,
            hub,
            log,
            shutdown: Signal::default(),
            accounts,
            address_bans,
            all_closed: Signal::default(),
            connections: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Takes a place for a new connection, or says why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Place, RejectCode> {
        let config = &self.config;
        if self.address_bans.refuses(ip, crate::wire::now_millis()) {
            return Err(RejectCode::Banned);
        }
        if self.connections.fetch_add(1, Ordering::AcqRel) >= config.max_clients {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return Err(RejectCode::ServerFull);
        }
        // From here on the place's drop gives it back.
        let place = Place {
            context: self.clone(),
            ip,
        };
        if config.max_per_ip > 0 {
            let mut per_ip = self.per_ip.lock().map_err(|_| RejectCode::ServerFull)?;
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= config.max_per_ip {
                drop(per_ip);
                // Not counted for this ip: undo the global count only.
                std::mem::forget(place);
                self.connections.fetch_sub(1, Ordering::AcqRel);
                return Err(RejectCode::TooManyConnections);
            }
            *count += 1;
        }
        Ok(place)
    }

    /// A new connection's id: never used before by this server.
    pub fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// How many connections hold a place.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Resolves once the last connection is gone after shutdown.
    pub async fn all_closed(&self) {
        self.all_closed.wait().await;
    }
}
