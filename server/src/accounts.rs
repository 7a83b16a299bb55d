//! Accounts: who owns which names, their password hashes, the counters that throttle
//! guessing, and the pool of threads that hashes and checks passwords.
//!
//! Argon2id is slow on purpose (tens of milliseconds and 19 MiB a hash), so it never runs
//! on the threads that serve connections: [`Hasher`] owns a few threads of its own, at a
//! lower priority, behind a bounded queue. A storm of wrong passwords fills that queue and
//! is turned away (`unavailable`, retry later) instead of delaying anybody's messages.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chat_shared::limits::{ATTEMPT_WINDOW_SECS, MAX_ACCOUNT_FAILURES, MAX_ADDRESS_FAILURES};
use chat_shared::{Name, NameKeys, Password};

use crate::cpu;
use crate::metrics::Metrics;

/// A password hash in PHC form (`$argon2id$v=19$m=19456,t=2,p=1$…`), or the hash of a
/// temporary password an operator gave (`server admin reset-password`), stored as
/// `temporary:UNTIL:PHC`: it logs in until the time UNTIL (milliseconds since the Unix
/// epoch), and its welcome asks for a new password. An account the operator deleted keeps
/// its row as `deleted:WHEN`, which matches no password: its name is not given out again
/// (someone new under it would read the conversations it had). Its `Debug` shows nothing
/// of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

/// What begins the stored form of a temporary password's hash.
const TEMPORARY: &str = "temporary:";

/// What the stored form of a deleted account's hash is, followed by when.
const DELETED: &str = "deleted:";

/// How long a temporary password logs in.
pub const TEMPORARY_FOR: Duration = Duration::from_secs(24 * 60 * 60);

impl PasswordHash {
    /// A hash as stored.
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    /// The hash of a temporary password, good until `until` (ms since the Unix epoch).
    pub fn temporary(hash: &Self, until: u64) -> Self {
        Self(format!("{TEMPORARY}{until}:{}", hash.phc()))
    }

    /// What a deleted account keeps instead of a hash (`at`: when, ms since the Unix epoch).
    pub fn deleted(at: u64) -> Self {
        Self(format!("{DELETED}{at}"))
    }

    /// Whether the account was deleted.
    pub fn is_deleted(&self) -> bool {
        self.0.starts_with(DELETED)
    }

    /// The stored form.
    pub fn as_stored(&self) -> &str {
        &self.0
    }

    /// Until when a temporary password logs in; `None` for an account's own password.
    pub fn temporary_until(&self) -> Option<u64> {
        let rest = self.0.strip_prefix(TEMPORARY)?;
        rest.split_once(':')?.0.parse().ok()
    }

    /// The PHC string.
    fn phc(&self) -> &str {
        match self.0.strip_prefix(TEMPORARY) {
            Some(rest) => rest.split_once(':').map_or(rest, |(_, phc)| phc),
            None => &self.0,
        }
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// The Argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const PASSES: u32 = 2;
/// Argon2id lanes.
pub const LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with a fresh salt from the operating system.
pub fn hash(password: &Password) -> Result<PasswordHash, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|err| format!("no randomness for a salt: {err}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|err| err.to_string())?;
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|hash| PasswordHash(hash.to_string()))
        .map_err(|err| err.to_string())
}

/// Whether `password` is the one `hash` was made from (and, for a temporary password,
/// still good). A hash that cannot be read matches nothing.
pub fn verify(hash: &PasswordHash, password: &Password) -> bool {
    if hash.is_deleted() {
        return false;
    }
    if hash
        .temporary_until()
        .is_some_and(|until| crate::wire::now_millis() > until)
    {
        return false;
    }
    let Ok(parsed) = argon2::password_hash::PasswordHash::new(hash.phc()) else {
        tracing::error!("a stored password hash cannot be read");
        return false;
    };
    // The parameters come from the hash itself, so older hashes keep working.
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

/// An account.
#[derive(Debug, Clone)]
pub struct Account {
    /// The name as registered: how everyone sees it.
    pub name: Name,
    /// Its collision keys.
    pub keys: NameKeys,
    /// Its password's hash.
    pub hash: PasswordHash,
}

/// Every account, by both collision keys, and the names being registered right now.
#[derive(Debug, Default)]
pub struct Directory {
    by_folded: HashMap<String, Account>,
    by_skeleton: HashMap<String, String>,
    /// Names whose registration is being hashed and stored: taken already.
    registering: HashMap<String, String>,
    /// The accounts' keys (deleted ones left out), for the connections to read.
    names: Arc<AccountNames>,
}

/// The keys (case-folded names) of the accounts there are, deleted ones left out: what the
/// IRC port's writers read to tag an account's lines (`account-tag`, `extended-join`). A
/// name that is an account's is that account's own: nobody else may use it.
#[derive(Debug, Default)]
pub struct AccountNames(RwLock<HashSet<String>>);

impl AccountNames {
    /// Whether `folded` is an account's key.
    pub fn contains(&self, folded: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(folded)
    }

    fn set(&self, folded: &str, live: bool) {
        let mut names = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if live {
            names.insert(folded.to_string());
        } else {
            names.remove(folded);
        }
    }
}

impl Directory {
    /// The accounts' keys, as the connections read them.
    pub fn names(&self) -> Arc<AccountNames> {
        self.names.clone()
    }

    /// Adds an account (at start, or once its registration is stored).
    pub fn insert(&mut self, account: Account) {
        self.names
            .set(&account.keys.folded, !account.hash.is_deleted());
        self.registering.remove(&account.keys.folded);
        self.by_skeleton
            .insert(account.keys.skeleton.clone(), account.keys.folded.clone());
        self.by_folded.insert(account.keys.folded.clone(), account);
    }

    /// Every account, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.by_folded.values()
    }

    /// The account with this case-folded name.
    pub fn get(&self, folded: &str) -> Option<&Account> {
        self.get_any(folded)
            .filter(|account| !account.hash.is_deleted())
    }

    /// The account `folded`, deleted or not.
    pub fn get_any(&self, folded: &str) -> Option<&Account> {
        self.by_folded.get(folded)
    }

    /// The account (registered or being registered) a name collides with, by its name.
    pub fn colliding(&self, keys: &NameKeys) -> Option<&str> {
        if let Some(account) = self.by_folded.get(&keys.folded) {
            return Some(account.name.as_str());
        }
        if let Some(account) = self
            .by_skeleton
            .get(&keys.skeleton)
            .and_then(|folded| self.by_folded.get(folded))
        {
            return Some(account.name.as_str());
        }
        self.registering
            .iter()
            .find(|(folded, skeleton)| **folded == keys.folded || **skeleton == keys.skeleton)
            .map(|(folded, _)| folded.as_str())
    }

    /// Holds a name while its registration is hashed and stored.
    pub fn reserve(&mut self, keys: &NameKeys) {
        self.registering
            .insert(keys.folded.clone(), keys.skeleton.clone());
    }

    /// Lets a reserved name go: its registration failed.
    pub fn release(&mut self, folded: &str) {
        self.registering.remove(folded);
    }

    /// A new hash for an account.
    pub fn set_hash(&mut self, folded: &str, hash: PasswordHash) {
        if let Some(account) = self.by_folded.get_mut(folded) {
            self.names.set(folded, !hash.is_deleted());
            account.hash = hash;
        }
    }
}

/// Wrong passwords lately, per account and per address: after 5 for an account or 20
/// from an address within 10 minutes, further attempts are refused unchecked until the
/// oldest of them is 10 minutes old.
#[derive(Debug, Default)]
pub struct Throttle {
    accounts: HashMap<String, VecDeque<Instant>>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
}

const WINDOW: Duration = Duration::from_secs(ATTEMPT_WINDOW_SECS);

/// Adds a failure at `at` to a list kept in time order, keeping the newest `max` within
/// the window.
fn counted(list: &mut VecDeque<Instant>, at: Instant, max: usize) {
    let place = list.partition_point(|t| *t <= at);
    list.insert(place, at);
    let newest = list.back().copied().unwrap_or(at);
    while list.len() > max
        || list
            .front()
            .is_some_and(|t| newest.duration_since(*t) >= WINDOW)
    {
        list.pop_front();
    }
}

fn wait(failures: Option<&VecDeque<Instant>>, max: usize, now: Instant) -> Option<Duration> {
    let failures = failures?;
    let recent: Vec<&Instant> = failures
        .iter()
        .filter(|at| now.duration_since(**at) < WINDOW)
        .collect();
    if recent.len() < max {
        return None;
    }
    // Allowed again when all but `max - 1` of them have aged out.
    let oldest_that_counts = recent[recent.len() - max];
    Some(WINDOW.saturating_sub(now.duration_since(*oldest_that_counts)))
}

impl Throttle {
    /// `Err(wait)` if attempts for this account or from this address are refused now.
    pub fn check(&self, folded: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let account = wait(self.accounts.get(folded), MAX_ACCOUNT_FAILURES, now);
        let address = wait(self.addresses.get(&ip), MAX_ADDRESS_FAILURES, now);
        match account.max(address) {
            Some(wait) => Err(wait.max(Duration::from_millis(1))),
            None => Ok(()),
        }
    }

    /// Forgets an account's wrong passwords: its operator gave it a new one.
    pub fn forget(&mut self, folded: &str) {
        self.accounts.remove(folded);
    }

    /// Counts a wrong password.
    pub fn fail(&mut self, folded: &str, ip: IpAddr, now: Instant) {
        self.fail_account(folded, now);
        self.fail_address(ip, now);
    }

    /// Counts a wrong password against an account only (as read back from a cluster's
    /// Redis, which counts accounts and addresses apart).
    pub fn fail_account(&mut self, folded: &str, at: Instant) {
        let list = self.accounts.entry(folded.to_string()).or_default();
        counted(list, at, MAX_ACCOUNT_FAILURES);
    }

    /// Counts a wrong password against an address only.
    pub fn fail_address(&mut self, ip: IpAddr, at: Instant) {
        counted(
            self.addresses.entry(ip).or_default(),
            at,
            MAX_ADDRESS_FAILURES,
        );
    }

    /// Forgets failures older than the window.
    pub fn sweep(&mut self, now: Instant) {
        self.accounts.retain(|_, list| {
            list.back()
                .is_some_and(|at| now.duration_since(*at) < WINDOW)
        });
        self.addresses.retain(|_, list| {
            list.back()
                .is_some_and(|at| now.duration_since(*at) < WINDOW)
        });
    }
}

/// A job for the hashing threads.
type Job = Box<dyn FnOnce() + Send>;

/// The threads that hash and check passwords, behind a bounded queue.
#[derive(Debug, Clone)]
pub struct Hasher {
    jobs: async_channel::Sender<Job>,
}

/// Password checks waiting at most, per hashing thread.
const QUEUE_PER_THREAD: usize = 32;

impl Hasher {
    /// Starts `threads` hashing threads (at least one), below the priority of the threads
    /// that serve connections.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, inbox) = async_channel::bounded::<Job>(threads * QUEUE_PER_THREAD);
        for i in 0..threads {
            let inbox = inbox.clone();
            std::thread::Builder::new()
                .name(format!("chat-hasher-{i}"))
                .spawn(move || {
                    lower_priority();
                    let metrics = crate::metrics::get();
                    while let Ok(job) = inbox.recv_blocking() {
                        Metrics::set(&metrics.hash_queue, inbox.len());
                        let (before, started) = (cpu::thread(), Instant::now());
                        job();
                        Metrics::time(&metrics.hash_seconds, started.elapsed());
                        cpu::count_hashing(cpu::thread().saturating_sub(before));
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `job` with `payload` on a hashing thread; when the queue is full, the payload
    /// comes back at once. (Only the hub submits, so nothing fills the queue between the
    /// look and the push.)
    pub fn submit<T: Send + 'static>(
        &self,
        payload: T,
        job: impl FnOnce(T) + Send + 'static,
    ) -> Result<(), T> {
        if self.jobs.is_full() {
            return Err(payload);
        }
        let _ = self.jobs.try_send(Box::new(move || job(payload)));
        Metrics::set(&crate::metrics::get().hash_queue, self.jobs.len());
        Ok(())
    }
}

/// Lowers the calling thread's priority (nice 19), so hashing yields to chatting when the
/// cores are busy. Best effort: a system that refuses leaves it as it was.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    let _ = rustix::process::setpriority_process(Some(tid), 19);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_password_logs_in_until_its_time_and_is_stored_as_such() {
        let password = Password::new("0123456789abcdef");
        let own = hash(&password).expect("hashed");
        assert_eq!(own.temporary_until(), None);
        let later = crate::wire::now_millis() + 60_000;
        let temporary = PasswordHash::temporary(&own, later);
        assert_eq!(temporary.temporary_until(), Some(later));
        let stored = PasswordHash::from_stored(temporary.as_stored().to_string());
        assert!(verify(&stored, &password));
        assert!(!verify(&stored, &Password::new("something else")));
        let ended = PasswordHash::temporary(&own, crate::wire::now_millis() - 1);
        assert!(!verify(&ended, &password), "no longer after its time");
    }

    #[test]
    fn failures_read_back_out_of_order_count_once_each_in_the_window() {
        let now = Instant::now();
        let mut throttle = Throttle::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        // Read back from Redis: an old one (outside the window), then four recent ones in
        // no particular order.
        throttle.fail_account("ann", now.checked_sub(WINDOW * 2).unwrap_or(now));
        for ago in [3, 1, 4, 2] {
            let at = now.checked_sub(Duration::from_secs(ago)).unwrap_or(now);
            throttle.fail_account("ann", at);
        }
        assert_eq!(
            throttle.check("ann", ip, now),
            Ok(()),
            "four count, the old one not"
        );
        throttle.fail("ann", ip, now);
        let wait = throttle.check("ann", ip, now).expect_err("five: throttled");
        assert!(wait + Duration::from_secs(5) > WINDOW, "{wait:?}");
    }

    #[test]
    fn a_hash_checks_its_password_only_and_hides_itself() {
        let password = Password::new("correct horse");
        let hash = hash(&password).expect("hash");
        assert!(
            hash.as_stored()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
        assert!(verify(&hash, &password));
        assert!(!verify(&hash, &Password::new("correct horse ")));
        assert!(!verify(
            &PasswordHash::from_stored("nonsense".into()),
            &password
        ));
        assert_eq!(format!("{hash:?}"), "PasswordHash(***)");
        assert_eq!(format!("{password:?}"), "Password(***)");
    }

    #[test]
    fn five_failures_throttle_an_account_and_twenty_an_address() {
        let mut throttle = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let start = Instant::now();
        for i in 0..5 {
            assert!(throttle.check("alice", a, start).is_ok());
            throttle.fail("alice", if i % 2 == 0 { a } else { b }, start);
        }
        let wait = throttle.check("alice", b, start).expect_err("throttled");
        assert!(wait <= WINDOW && wait + Duration::from_secs(1) > WINDOW);
        assert!(throttle.check("bob", a, start).is_ok(), "others are not");
        // Ten minutes later the account may try again.
        assert!(throttle.check("alice", a, start + WINDOW).is_ok());

        for i in 0..20 {
            throttle.fail(&format!("user{i}"), a, start);
        }
        assert!(throttle.check("carol", a, start).is_err(), "the address is");
        assert!(throttle.check("carol", b, start).is_ok());
        throttle.sweep(start + WINDOW);
        assert!(throttle.check("carol", a, start + WINDOW).is_ok());
    }

    #[test]
    fn registrations_in_progress_hold_their_names() {
        let mut directory = Directory::default();
        let keys = |s: &str| Name::parse(s).expect("valid").keys();
        directory.reserve(&keys("Alice"));
        assert!(directory.colliding(&keys("alice")).is_some());
        assert!(directory.colliding(&keys("A1ice")).is_some());
        directory.release("alice");
        assert!(directory.colliding(&keys("alice")).is_none());
        directory.insert(Account {
            name: Name::parse("Bob").expect("valid"),
            keys: keys("Bob"),
            hash: PasswordHash::from_stored(String::new()),
        });
        assert_eq!(directory.colliding(&keys("B0b")), Some("Bob"));
        assert!(directory.get("bob").is_some());
    }
}
