//! The server's settings, and the command line that fills them.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;
use chat_shared::{Name, RoomName, limits};

use crate::tls::TlsSetup;

/// MiB of the store's file kept in its own cache unless `--store-cache` says otherwise
/// (the store's own default).
pub const DEFAULT_STORE_CACHE_MIB: usize = 1024;

/// Where the server keeps its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory only: a restart forgets everything and starts a new epoch (`--memory`).
    Memory,
    /// In a store in this directory (`--data DIR`), created on first start.
    Dir(PathBuf),
    /// In a shared Redis (`--redis URL`): every node started with the same Redis is the
    /// same chat.
    Redis(String),
}

impl Storage {
    /// The data directory used when none is given: `$XDG_DATA_HOME/chat-server`
    /// (`~/.local/share/chat-server` on Linux), else `./chat-data`.
    pub fn default_dir() -> PathBuf {
        dirs::data_dir().map_or_else(|| PathBuf::from("chat-data"), |d| d.join("chat-server"))
    }
}

/// Everything the server can be told; `Config::default()` matches the flag defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Where the history is kept.
    pub storage: Storage,
    /// The room every connection is in after its welcome.
    pub room: RoomName,
    /// The most rooms one connection may be in (the default room included).
    pub max_joined: usize,
    /// The most rooms that may have members at once (the default room always counts).
    pub max_rooms: usize,
    /// Most connections at once (logged in or not).
    pub max_clients: usize,
    /// Most connections at once from one IP address; 0 means no cap.
    pub max_per_ip: usize,
    /// Events kept in memory for replay and `history`.
    pub history: usize,
    /// Events replayed to a login without `since`.
    pub replay: usize,
    /// The most events replayed to a login with `since`; a client fetches the rest with
    /// `history`.
    pub replay_max: usize,
    /// Time from accept to `welcome`.
    pub login_timeout: Duration,
    /// Silence before a `ping`; as long again before `closing`/`idle_timeout`.
    pub idle_timeout: Duration,
    /// Posts per second per client; 0 turns flood control off.
    pub rate: u32,
    /// Posts in a burst above the rate.
    pub burst: u32,
    /// Frames queued for one client before it is closed with `send_queue_full`.
    pub send_queue: usize,
    /// Bytes queued for one client before it is closed with `send_queue_full`.
    pub send_queue_bytes: usize,
    /// Longest client frame, newline included.
    pub max_frame: usize,
    /// Longest `say` text in bytes.
    pub max_text: usize,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// The least time between two writes of a room's events to one member, so that one
    /// write carries what came meanwhile (longer in rooms of more than 225, to stay near
    /// 45,000 writes a second, up to 30 ms; and while the cores are busy, up to 50 ms); a
    /// lone event after a quiet spell goes out at once. A big room's members are written
    /// on beats spread over the window (see `FanOut`).
    pub coalesce: Duration,
    /// How long a closing connection may take to flush what was queued for it.
    pub linger: Duration,
    /// TLS for every connection, or none.
    pub tls: Option<TlsSetup>,
    /// Whether new accounts may register.
    pub registration: bool,
    /// Threads that hash passwords; 0 means one per two cores (at least one).
    pub hashers: usize,
    /// In a cluster: how long a node that stops refreshing its lease counts as alive
    /// before another node takes its members offline.
    pub lease: Duration,
    /// The server's administrators (accounts; names that look like them count too).
    pub admins: Vec<Name>,
    /// Whether messages are indexed for `search` (else searches are `unavailable`).
    pub search: bool,
    /// Bytes of the store's file its own cache may hold (with `Storage::Dir`).
    pub store_cache: usize,
    /// How long a `minutes` of a timed ban or mute lasts: a minute, shorter in tests.
    pub minute: Duration,
}

impl Config {
    /// The worker threads the server runs: `threads`, or one per core the process may use.
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }

    /// The password hashing threads the server runs.
    pub fn hasher_threads(&self) -> usize {
        match self.hashers {
            0 => {
                (std::thread::available_parallelism().map_or(1, std::num::NonZero::get) / 2).max(1)
            }
            n => n,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], limits::DEFAULT_PORT)),
            storage: Storage::Dir(Storage::default_dir()),
            room: RoomName::parse("general").expect("a valid room name"),
            max_joined: 100,
            max_rooms: 10_000,
            max_clients: 10_000,
            max_per_ip: 64,
            history: 1000,
            replay: 50,
            replay_max: 1000,
            login_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            rate: limits::RATE,
            burst: limits::BURST,
            send_queue: 1024,
            send_queue_bytes: 4 * 1024 * 1024,
            max_frame: limits::MAX_FRAME,
            max_text: limits::MAX_TEXT,
            threads: 0,
            coalesce: Duration::from_millis(5),
            linger: Duration::from_secs(1),
            tls: None,
            registration: true,
            hashers: 0,
            lease: Duration::from_secs(5),
            admins: Vec::new(),
            search: true,
            store_cache: DEFAULT_STORE_CACHE_MIB << 20,
            minute: Duration::from_secs(60),
        }
    }
}

/// A chat server: rooms, NDJSON over TCP. The history survives restarts in a store in
/// the data directory; an event counts as saved once it is committed there (with an
/// fsync), which happens before anyone receives it.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// address to listen on (default: 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    pub host: String,
    /// TCP port; 0 picks a free one (default: 60000)
    #[argh(option, default = "limits::DEFAULT_PORT")]
    pub port: u16,
    /// most connections at once (default: 10000)
    #[argh(option, default = "10_000")]
    pub max_clients: usize,
    /// most connections at once from one IP address; 0 means no cap (default: 64)
    #[argh(option, default = "64")]
    pub max_per_ip: usize,
    /// directory of the store that keeps the history, the epoch and the post ids across
    /// restarts, created on first start; $XDG_DATA_HOME/chat-server when that is set
    /// (default: ~/.local/share/chat-server)
    #[argh(option)]
    pub data: Option<PathBuf>,
    /// keep nothing on disk: a restart forgets the history and starts a new epoch
    #[argh(switch)]
    pub memory: bool,
    /// join a cluster: keep everything in this Redis (redis://HOST:PORT[/DB]), shared by
    /// every node started with it, which together are one chat
    #[argh(option)]
    pub redis: Option<String>,
    /// in a cluster, seconds a node that stopped answering counts as alive before its
    /// members are taken offline (default: 5)
    #[argh(option, default = "Seconds(5.0)")]
    pub lease: Seconds,
    /// the room every connection is in after logging in (default: general)
    #[argh(option, default = "String::from(\"general\")")]
    pub room: String,
    /// the most rooms one connection may be in, the default room included (default: 100)
    #[argh(option, default = "100")]
    pub max_joined: usize,
    /// the most rooms that may have members at once (default: 10000)
    #[argh(option, default = "10_000")]
    pub max_rooms: usize,
    /// newest events of the room kept in memory for replay and recent history (older ones
    /// are read from the store) (default: 1000)
    #[argh(option, default = "1000")]
    pub history: usize,
    /// events replayed to a login without `since` (default: 50)
    #[argh(option, default = "50")]
    pub replay: usize,
    /// the most events replayed to a login with `since`; clients fetch the rest with
    /// history (default: 1000)
    #[argh(option, default = "1000")]
    pub replay_max: usize,
    /// seconds from connect to login before the connection is closed (default: 10)
    #[argh(option, default = "Seconds(10.0)")]
    pub login_timeout: Seconds,
    /// seconds of silence before a ping; closed after as long again (default: 60)
    #[argh(option, default = "Seconds(60.0)")]
    pub idle_timeout: Seconds,
    /// posts per second per client; 0 turns flood control off (default: 5)
    #[argh(option, default = "limits::RATE")]
    pub rate: u32,
    /// posts allowed in a burst above the rate (default: 20)
    #[argh(option, default = "limits::BURST")]
    pub burst: u32,
    /// frames queued per client before it is closed as too slow (default: 1024)
    #[argh(option, default = "1024")]
    pub send_queue: usize,
    /// longest client frame in bytes, newline included (default: 16384)
    #[argh(option, default = "limits::MAX_FRAME")]
    pub max_frame: usize,
    /// longest message text in bytes (default: 4096)
    #[argh(option, default = "limits::MAX_TEXT")]
    pub max_text: usize,
    /// worker threads; 0 means one per core (default: 0)
    #[argh(option, default = "0")]
    pub threads: usize,
    /// milliseconds a room may gather events into one write per client under load; the
    /// server stretches it, up to 50, while its cores are over 85% busy (default: 5)
    #[argh(option, default = "Seconds(0.005)", from_str_fn(parse_millis))]
    pub coalesce_ms: Seconds,
    /// TLS on every connection: the certificate chain (PEM), with --tls-key
    #[argh(option)]
    pub tls_cert: Option<PathBuf>,
    /// TLS on every connection: the certificate's private key (PEM), with --tls-cert
    #[argh(option)]
    pub tls_key: Option<PathBuf>,
    /// TLS on every connection with a certificate the server makes once and keeps in its
    /// data directory; its SHA-256 fingerprint is logged at every start
    #[argh(switch)]
    pub tls_self_signed: bool,
    /// whether new accounts may register: open or closed (default: open)
    #[argh(option, default = "Registration::Open")]
    pub registration: Registration,
    /// threads that hash passwords, at a lower priority than chat; 0 means one per two
    /// cores (default: 0)
    #[argh(option, default = "0")]
    pub hashers: usize,
    /// the server's administrators, accounts that may act as owners in every room and
    /// ban from the whole server: NAME,NAME,... (default: none)
    #[argh(option, default = "String::new()")]
    pub admins: String,
    /// mebibytes of the store's file kept in its own cache, beside the kernel's page
    /// cache; for a store of this server's own, not with memory or Redis (default: 1024)
    #[argh(option)]
    pub store_cache: Option<usize>,
    /// keep no full-text index: `search` is answered `unavailable`, and no time or disk
    /// goes to indexing
    #[argh(switch)]
    pub no_search: bool,
}

/// `--registration`: whether new accounts may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may register a free name.
    Open,
    /// Only existing accounts log in.
    Closed,
}

impl std::str::FromStr for Registration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            _ => Err(format!("{s:?}: say open or closed")),
        }
    }
}

/// A duration in seconds as typed on the command line; fractions allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub f64);

impl std::str::FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let secs: f64 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{s:?} is not a duration (0 or more seconds)"))?;
        Ok(Self(secs))
    }
}

fn parse_millis(s: &str) -> Result<Seconds, String> {
    let ms: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of milliseconds"))?;
    let secs = ms / 1000.0;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{s:?} is not a duration (0 or more milliseconds)"))?;
    Ok(Seconds(secs))
}

impl Seconds {
    fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--host`/`--port` do not name an address.
    #[error("cannot listen on {0}: not an address")]
    BadAddress(String),
    /// A limit that must be positive is 0.
    #[error("--{0} must be at least {1}")]
    TooSmall(&'static str, usize),
    /// Two flags that exclude each other.
    #[error("--data and --memory exclude each other")]
    DataAndMemory,
    /// `--redis` with a store of this node's own.
    #[error("--redis keeps everything in Redis: it excludes --data and --memory")]
    RedisAndStore,
    /// `--store-cache` without a store of this node's own.
    #[error(
        "--store-cache sizes the store's cache: it needs a store (--data), not --memory or --redis"
    )]
    CacheWithoutStore,
    /// `--redis` is not a Redis URL.
    #[error("--redis {0:?}: say redis://HOST:PORT or redis://HOST:PORT/DB")]
    BadRedis(String),
    /// `--lease` too short to be refreshed in time.
    #[error("--lease must be at least 0.5 seconds")]
    ShortLease,
    /// `--room` is not a room name.
    #[error("--room {0:?}: {1}")]
    BadRoom(String, chat_shared::NameError),
    /// One of `--tls-cert` and `--tls-key` without the other.
    #[error("--tls-cert and --tls-key go together")]
    TlsHalf,
    /// `--admins` names something that is not a name.
    #[error("--admins: {0:?}: {1}")]
    BadAdmin(String, chat_shared::NameError),
    /// Both ways of getting a certificate.
    #[error("--tls-self-signed excludes --tls-cert and --tls-key")]
    TlsTwice,
}

impl Args {
    /// The settings these flags ask for.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let target = format!("{}:{}", self.host, self.port);
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or(ConfigError::BadAddress(target))?;
        let at_least = |flag, value: usize, min| {
            if value < min {
                Err(ConfigError::TooSmall(flag, min))
            } else {
                Ok(value)
            }
        };
        let data_dir = self.data.clone().unwrap_or_else(Storage::default_dir);
        if self.store_cache.is_some() && (self.memory || self.redis.is_some()) {
            return Err(ConfigError::CacheWithoutStore);
        }
        let store_cache = at_least(
            "store-cache",
            self.store_cache.unwrap_or(DEFAULT_STORE_CACHE_MIB),
            1,
        )?;
        let storage = match (self.data, self.memory, self.redis) {
            (Some(_), true, _) => return Err(ConfigError::DataAndMemory),
            (Some(_), _, Some(_)) | (_, true, Some(_)) => return Err(ConfigError::RedisAndStore),
            (None, false, Some(url)) => {
                if redis::parse_redis_url(&url).is_none()
                    || !(url.starts_with("redis://") || url.starts_with("redis+unix://"))
                {
                    return Err(ConfigError::BadRedis(url));
                }
                Storage::Redis(url)
            }
            (Some(dir), false, None) => Storage::Dir(dir),
            (None, true, None) => Storage::Memory,
            (None, false, None) => Storage::Dir(Storage::default_dir()),
        };
        if self.lease.0 < 0.5 {
            return Err(ConfigError::ShortLease);
        }
        // With --memory, a self-signed certificate still lives in the data directory: a
        // certificate that changed at every start would make every client warn.
        let tls = match (self.tls_cert, self.tls_key, self.tls_self_signed) {
            (None, None, false) => None,
            (Some(cert), Some(key), false) => Some(TlsSetup::Files { cert, key }),
            (None, None, true) => Some(TlsSetup::SelfSigned(data_dir)),
            (_, _, true) => return Err(ConfigError::TlsTwice),
            _ => return Err(ConfigError::TlsHalf),
        };
        let room =
            RoomName::parse(&self.room).map_err(|err| ConfigError::BadRoom(self.room, err))?;
        let admins = self
            .admins
            .split(',')
            .filter(|name| !name.trim().is_empty())
            .map(|name| Name::parse(name).map_err(|err| ConfigError::BadAdmin(name.into(), err)))
            .collect::<Result<Vec<Name>, ConfigError>>()?;
        Ok(Config {
            addr,
            storage,
            room,
            max_joined: at_least("max-joined", self.max_joined, 1)?,
            max_rooms: at_least("max-rooms", self.max_rooms, 1)?,
            max_clients: at_least("max-clients", self.max_clients, 1)?,
            max_per_ip: self.max_per_ip,
            history: at_least("history", self.history, 1)?,
            replay: self.replay,
            replay_max: at_least("replay-max", self.replay_max, 1)?,
            login_timeout: self.login_timeout.duration(),
            idle_timeout: self.idle_timeout.duration(),
            rate: self.rate,
            burst: at_least("burst", self.burst as usize, 1)? as u32,
            send_queue: at_least("send-queue", self.send_queue, 1)?,
            max_frame: at_least("max-frame", self.max_frame, 64)?,
            max_text: at_least("max-text", self.max_text, 1)?,
            threads: self.threads,
            coalesce: self.coalesce_ms.duration(),
            tls,
            registration: self.registration == Registration::Open,
            hashers: self.hashers,
            lease: self.lease.duration(),
            admins,
            search: !self.no_search,
            store_cache: store_cache.saturating_mul(1 << 20),
            ..Config::default()
        })
    }
}
