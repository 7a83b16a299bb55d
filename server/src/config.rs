//! The server's settings, and the command line that fills them.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use argh::FromArgs;
use chat_shared::{Name, RoomName, limits};
use serde::{Deserialize, Serialize};

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

/// The control socket's file name in the data directory (see [`crate::control`]).
pub const CONTROL_SOCKET: &str = "control.sock";

impl Storage {
    /// The data directory used when none is given: `$XDG_DATA_HOME/chat-server`
    /// (`~/.local/share/chat-server` on Linux), else `./chat-data`.
    pub fn default_dir() -> PathBuf {
        dirs::data_dir().map_or_else(|| PathBuf::from("chat-data"), |d| d.join("chat-server"))
    }

    /// Where the control socket is unless `--control` says otherwise: in the data
    /// directory; nowhere without one.
    pub fn control_socket(&self) -> Option<PathBuf> {
        match self {
            Storage::Dir(dir) => Some(dir.join(CONTROL_SOCKET)),
            Storage::Memory | Storage::Redis(_) => None,
        }
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
    /// Where to serve the metrics over HTTP (`GET /metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Where IRC clients connect in plain TCP (`--irc-port`), if anywhere.
    pub irc: Option<SocketAddr>,
    /// Where IRC clients connect over TLS (`--irc-tls-port`, with the server's
    /// certificate), if anywhere.
    pub irc_tls: Option<SocketAddr>,
    /// The name the server gives itself on IRC (the source of its own lines).
    pub irc_name: String,
    /// How the `server` command writes its log lines.
    pub log_format: LogFormat,
    /// Messages older than this are deleted (from the log and the search index) by a
    /// sweep in the background; `None`: kept forever.
    pub retain: Option<Duration>,
    /// Where the control socket for `server backup` and `server admin` listens, if
    /// anywhere (see [`crate::control`]).
    pub control: Option<PathBuf>,
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
            metrics: None,
            irc: None,
            irc_tls: None,
            irc_name: "chat".into(),
            log_format: LogFormat::Text,
            retain: None,
            control: None,
        }
    }
}

/// A chat server: rooms, NDJSON over TCP. The history survives restarts in a store in
/// the data directory; an event counts as saved once it is committed there (with an
/// fsync), which happens before anyone receives it. Every flag but --config and
/// --print-config is also a key of the config file, by the same name.
///
/// Each field is unset unless given, so that the command line can be laid over a config
/// file and the defaults filled in last (`Config::default()` holds them).
#[derive(FromArgs, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Args {
    /// read settings from this TOML file: one key per flag, by the flag's name
    /// (max-clients = 500); the flags given on the command line win over it
    #[argh(option)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// print the settings the server would run with, as a config file, and exit
    #[argh(switch)]
    #[serde(skip)]
    pub print_config: bool,
    /// print the version and exit
    #[argh(switch)]
    #[serde(skip)]
    pub version: bool,
    /// an operator's command, instead of serving
    #[argh(subcommand)]
    #[serde(skip)]
    pub command: Option<crate::commands::Tool>,
    /// address to listen on (default: 127.0.0.1)
    #[argh(option)]
    pub host: Option<String>,
    /// TCP port; 0 picks a free one (default: 60000)
    #[argh(option)]
    pub port: Option<u16>,
    /// most connections at once (default: 10000)
    #[argh(option)]
    pub max_clients: Option<usize>,
    /// most connections at once from one IP address; 0 means no cap (default: 64)
    #[argh(option)]
    pub max_per_ip: Option<usize>,
    /// directory of the store that keeps the history, the epoch and the post ids across
    /// restarts, created on first start; $XDG_DATA_HOME/chat-server when that is set
    /// (default: ~/.local/share/chat-server)
    #[argh(option)]
    pub data: Option<PathBuf>,
    /// keep nothing on disk: a restart forgets the history and starts a new epoch
    #[argh(switch)]
    pub memory: Option<bool>,
    /// join a cluster: keep everything in this Redis (redis://HOST:PORT[/DB]), shared by
    /// every node started with it, which together are one chat
    #[argh(option)]
    pub redis: Option<String>,
    /// in a cluster, seconds a node that stopped answering counts as alive before its
    /// members are taken offline (default: 5)
    #[argh(option)]
    pub lease: Option<Seconds>,
    /// the room every connection is in after logging in (default: general)
    #[argh(option)]
    pub room: Option<String>,
    /// the most rooms one connection may be in, the default room included (default: 100)
    #[argh(option)]
    pub max_joined: Option<usize>,
    /// the most rooms that may have members at once (default: 10000)
    #[argh(option)]
    pub max_rooms: Option<usize>,
    /// newest events of the room kept in memory for replay and recent history (older ones
    /// are read from the store) (default: 1000)
    #[argh(option)]
    pub history: Option<usize>,
    /// events replayed to a login without `since` (default: 50)
    #[argh(option)]
    pub replay: Option<usize>,
    /// the most events replayed to a login with `since`; clients fetch the rest with
    /// history (default: 1000)
    #[argh(option)]
    pub replay_max: Option<usize>,
    /// seconds from connect to login before the connection is closed (default: 10)
    #[argh(option)]
    pub login_timeout: Option<Seconds>,
    /// seconds of silence before a ping; closed after as long again (default: 60)
    #[argh(option)]
    pub idle_timeout: Option<Seconds>,
    /// posts per second per client; 0 turns flood control off (default: 5)
    #[argh(option)]
    pub rate: Option<u32>,
    /// posts allowed in a burst above the rate (default: 20)
    #[argh(option)]
    pub burst: Option<u32>,
    /// frames queued per client before it is closed as too slow (default: 1024)
    #[argh(option)]
    pub send_queue: Option<usize>,
    /// longest client frame in bytes, newline included (default: 16384)
    #[argh(option)]
    pub max_frame: Option<usize>,
    /// longest message text in bytes (default: 4096)
    #[argh(option)]
    pub max_text: Option<usize>,
    /// worker threads; 0 means one per core (default: 0)
    #[argh(option)]
    pub threads: Option<usize>,
    /// milliseconds a room may gather events into one write per client under load; the
    /// server stretches it, up to 50, while its cores are over 85% busy (default: 5)
    #[argh(option, from_str_fn(parse_millis))]
    pub coalesce_ms: Option<Millis>,
    /// TLS on every connection: the certificate chain (PEM), with --tls-key
    #[argh(option)]
    pub tls_cert: Option<PathBuf>,
    /// TLS on every connection: the certificate's private key (PEM), with --tls-cert
    #[argh(option)]
    pub tls_key: Option<PathBuf>,
    /// TLS on every connection with a certificate the server makes once and keeps in its
    /// data directory; its SHA-256 fingerprint is logged at every start
    #[argh(switch)]
    pub tls_self_signed: Option<bool>,
    /// whether new accounts may register: open or closed (default: open)
    #[argh(option)]
    pub registration: Option<Registration>,
    /// threads that hash passwords, at a lower priority than chat; 0 means one per two
    /// cores (default: 0)
    #[argh(option)]
    pub hashers: Option<usize>,
    /// the server's administrators, accounts that may act as owners in every room and
    /// ban from the whole server: NAME,NAME,... (default: none)
    #[argh(option)]
    pub admins: Option<String>,
    /// mebibytes of the store's file kept in its own cache, beside the kernel's page
    /// cache; for a store of this server's own, not with memory or Redis (default: 1024)
    #[argh(option)]
    pub store_cache: Option<usize>,
    /// keep no full-text index: `search` is answered `unavailable`, and no time or disk
    /// goes to indexing
    #[argh(switch)]
    pub no_search: Option<bool>,
    /// serve the server's metrics in the Prometheus text format at
    /// http://HOST:PORT/metrics (port 0 picks a free one, logged) (default: off)
    #[argh(option)]
    pub metrics: Option<String>,
    /// serve IRC clients (irssi, `WeeChat`, bots) in plain TCP on this port, on --host, in
    /// the same chat: rooms are #channels (default: 0, off)
    #[argh(option)]
    pub irc_port: Option<u16>,
    /// serve IRC clients over TLS on this port (6697 by convention), with the
    /// certificate of --tls-cert or --tls-self-signed (default: 0, off)
    #[argh(option)]
    pub irc_tls_port: Option<u16>,
    /// the name the server gives itself on IRC, as an IRC server's name (letters,
    /// digits, '.', '-') (default: chat)
    #[argh(option)]
    pub irc_name: Option<String>,
    /// delete messages older than this many days (fractions allowed) from the history
    /// and the search index, in the background, a room at a time; not in a cluster
    /// (default: keep forever)
    #[argh(option)]
    pub retain_days: Option<f64>,
    /// log lines as text, or as JSON objects one a line for log shippers: text or json
    /// (default: text)
    #[argh(option)]
    pub log_format: Option<LogFormat>,
    /// the control socket (a Unix socket, this user only) that `server backup` and
    /// `server admin` talk to (default: control.sock in the data directory; none with
    /// --memory or --redis)
    #[argh(option)]
    pub control: Option<PathBuf>,
}

/// `--log-format`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text each, for people.
    Text,
    /// One JSON object each, for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{s:?}: say text or json")),
        }
    }
}

/// `--registration`: whether new accounts may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
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

/// A duration in seconds as typed on the command line or in the config file; fractions
/// allowed.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Seconds(pub f64);

impl TryFrom<f64> for Seconds {
    type Error = String;
    fn try_from(secs: f64) -> Result<Self, String> {
        Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{secs} is not a duration (0 or more seconds)"))?;
        Ok(Self(secs))
    }
}

impl From<Seconds> for f64 {
    fn from(secs: Seconds) -> f64 {
        secs.0
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let secs: f64 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        Self::try_from(secs).map_err(|_| format!("{s:?} is not a duration (0 or more seconds)"))
    }
}

impl Seconds {
    fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

/// A duration in milliseconds (`--coalesce-ms`); fractions allowed.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Millis(pub f64);

impl TryFrom<f64> for Millis {
    type Error = String;
    fn try_from(ms: f64) -> Result<Self, String> {
        Duration::try_from_secs_f64(ms / 1000.0)
            .map_err(|_| format!("{ms} is not a duration (0 or more milliseconds)"))?;
        Ok(Self(ms))
    }
}

impl From<Millis> for f64 {
    fn from(ms: Millis) -> f64 {
        ms.0
    }
}

fn parse_millis(s: &str) -> Result<Millis, String> {
    let ms: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of milliseconds"))?;
    Millis::try_from(ms).map_err(|_| format!("{s:?} is not a duration (0 or more milliseconds)"))
}

impl Millis {
    fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0 / 1000.0)
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
    /// `--retain-days` is not a time to keep messages for.
    #[error("--retain-days {0}: say a number of days above 0 (fractions allowed)")]
    BadRetain(f64),
    /// `--retain-days` in a cluster.
    #[error("--retain-days: a cluster keeps its history in Redis, where retention is not done yet")]
    RetainInCluster,
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
    /// `--irc-name` is not a server's name.
    #[error("--irc-name {0:?}: a server's name is letters, digits, '.' and '-'")]
    BadIrcName(String),
    /// `--irc-tls-port` without a certificate.
    #[error("--irc-tls-port needs a certificate: --tls-cert and --tls-key, or --tls-self-signed")]
    IrcTlsWithoutTls,
    /// `--metrics` does not name an address.
    #[error("--metrics {0:?}: say HOST:PORT, for instance 127.0.0.1:9100")]
    BadMetrics(String),
    /// The config file cannot be read.
    #[error("cannot read the config file {}: {err}", .path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        err: std::io::Error,
    },
    /// The config file is not TOML of the right keys and values.
    #[error("{}:{line}: {message}", .path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Its line (from 1) where the trouble is.
        line: usize,
        /// What is wrong there.
        message: String,
    },
}

impl Args {
    /// The settings these flags ask for, laid over those of the config file they name
    /// (if any), with the defaults filled in.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let args = match self.config.clone() {
            Some(path) => self.over(Self::read_file(&path)?),
            None => self,
        };
        args.into_config()
    }

    /// The settings of a config file (TOML, one key per flag); an unknown key or a value
    /// of the wrong kind names the file and its line.
    pub fn read_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::ReadFile {
            path: path.into(),
            err,
        })?;
        toml::from_str(&text).map_err(|err| {
            let at = err.span().map_or(0, |span| span.start);
            let line =
                1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..at.min(text.len())]).count();
            // toml names what it expected at length; the first line says what is wrong.
            let message = err.message().lines().next().unwrap_or("not TOML").trim();
            let message = match message.split_once(", expected one of") {
                Some((unknown, _)) => format!(
                    "{}: the keys are the flags' names (server --help)",
                    unknown.replace("unknown field", "unknown key")
                ),
                None => message.to_owned(),
            };
            // A value of the wrong kind: say whose.
            let key = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split_once('='))
                .map(|(key, _)| key.trim())
                .filter(|key| !key.is_empty() && !message.contains(key));
            let message = match key {
                Some(key) => format!("{key}: {message}"),
                None => message,
            };
            ConfigError::BadFile {
                path: path.into(),
                line,
                message,
            }
        })
    }

    /// These settings laid over `file`'s: each one given here wins. Where to keep the
    /// history (`data`, `memory`, `redis`) and where the certificate comes from
    /// (`tls-cert`, `tls-key`, `tls-self-signed`) are each one choice: a choice made here
    /// replaces the file's whole.
    #[must_use]
    pub fn over(self, mut file: Self) -> Self {
        if self.data.is_some() || self.memory.is_some() || self.redis.is_some() {
            (file.data, file.memory, file.redis) = (None, None, None);
        }
        if self.tls_cert.is_some() || self.tls_key.is_some() || self.tls_self_signed.is_some() {
            (file.tls_cert, file.tls_key, file.tls_self_signed) = (None, None, None);
        }
        macro_rules! over {
            ($($field:ident),* $(,)?) => {
                Self {
                    config: self.config,
                    print_config: self.print_config,
                    version: self.version,
                    command: self.command,
                    $($field: self.$field.or(file.$field),)*
                }
            };
        }
        over!(
            host,
            port,
            max_clients,
            max_per_ip,
            data,
            memory,
            redis,
            lease,
            room,
            max_joined,
            max_rooms,
            history,
            replay,
            replay_max,
            login_timeout,
            idle_timeout,
            rate,
            burst,
            send_queue,
            max_frame,
            max_text,
            threads,
            coalesce_ms,
            tls_cert,
            tls_key,
            tls_self_signed,
            registration,
            hashers,
            admins,
            store_cache,
            no_search,
            metrics,
            irc_port,
            irc_tls_port,
            irc_name,
            log_format,
            retain_days,
            control,
        )
    }

    /// Every setting of `config`, as the flags (and config file keys) that ask for it.
    pub fn of(config: &Config) -> Self {
        let (data, memory, redis, store_cache) = match &config.storage {
            Storage::Memory => (None, Some(true), None, None),
            Storage::Dir(dir) => (
                Some(dir.clone()),
                None,
                None,
                Some(config.store_cache >> 20),
            ),
            Storage::Redis(url) => (None, None, Some(url.clone()), None),
        };
        let (tls_cert, tls_key, tls_self_signed) = match &config.tls {
            None => (None, None, None),
            Some(TlsSetup::Files { cert, key }) => (Some(cert.clone()), Some(key.clone()), None),
            Some(TlsSetup::SelfSigned(_)) => (None, None, Some(true)),
        };
        let admins: Vec<&str> = config.admins.iter().map(Name::as_str).collect();
        Self {
            config: None,
            print_config: false,
            version: false,
            command: None,
            host: Some(config.addr.ip().to_string()),
            port: Some(config.addr.port()),
            max_clients: Some(config.max_clients),
            max_per_ip: Some(config.max_per_ip),
            data,
            memory,
            redis,
            lease: Some(Seconds(config.lease.as_secs_f64())),
            room: Some(config.room.as_str().to_owned()),
            max_joined: Some(config.max_joined),
            max_rooms: Some(config.max_rooms),
            history: Some(config.history),
            replay: Some(config.replay),
            replay_max: Some(config.replay_max),
            login_timeout: Some(Seconds(config.login_timeout.as_secs_f64())),
            idle_timeout: Some(Seconds(config.idle_timeout.as_secs_f64())),
            rate: Some(config.rate),
            burst: Some(config.burst),
            send_queue: Some(config.send_queue),
            max_frame: Some(config.max_frame),
            max_text: Some(config.max_text),
            threads: Some(config.threads),
            coalesce_ms: Some(Millis(config.coalesce.as_secs_f64() * 1000.0)),
            tls_cert,
            tls_key,
            tls_self_signed,
            registration: Some(if config.registration {
                Registration::Open
            } else {
                Registration::Closed
            }),
            hashers: Some(config.hashers),
            admins: Some(admins.join(",")),
            store_cache,
            no_search: Some(!config.search),
            metrics: config.metrics.map(|addr| addr.to_string()),
            irc_port: config.irc.map(|addr| addr.port()),
            irc_tls_port: config.irc_tls.map(|addr| addr.port()),
            irc_name: Some(config.irc_name.clone()),
            log_format: Some(config.log_format),
            retain_days: config.retain.map(|retain| retain.as_secs_f64() / DAY),
            // The default place follows the data directory, so it is not written out.
            control: config
                .control
                .clone()
                .filter(|control| Some(control) != config.storage.control_socket().as_ref()),
        }
    }

    /// These settings as a config file.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|err| err.to_string())
    }

    /// The settings these flags (already laid over the config file) ask for.
    pub fn into_config(mut self) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let (storage, store_cache, tls) = self.take_storage(&defaults)?;
        let host = self.host.unwrap_or_else(|| defaults.addr.ip().to_string());
        let port = self.port.unwrap_or(defaults.addr.port());
        let target = format!("{host}:{port}");
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or(ConfigError::BadAddress(target))?;
        let (irc, irc_tls) = irc_ports(self.irc_port, self.irc_tls_port, addr, tls.is_some())?;
        let lease = self.lease.map_or(defaults.lease, Seconds::duration);
        if lease < Duration::from_millis(500) {
            return Err(ConfigError::ShortLease);
        }
        let room = match self.room {
            Some(room) => RoomName::parse(&room).map_err(|err| ConfigError::BadRoom(room, err))?,
            None => defaults.room,
        };
        let control = self.control.or_else(|| storage.control_socket());
        let retain = retention(self.retain_days, &storage)?;
        let metrics = self
            .metrics
            .map(|target| first_address(&target).ok_or(ConfigError::BadMetrics(target)))
            .transpose()?;
        let admins = self
            .admins
            .unwrap_or_default()
            .split(',')
            .filter(|name| !name.trim().is_empty())
            .map(|name| Name::parse(name).map_err(|err| ConfigError::BadAdmin(name.into(), err)))
            .collect::<Result<Vec<Name>, ConfigError>>()?;
        Ok(Config {
            addr,
            storage,
            room,
            max_joined: at_least(
                "max-joined",
                self.max_joined.unwrap_or(defaults.max_joined),
                1,
            )?,
            max_rooms: at_least("max-rooms", self.max_rooms.unwrap_or(defaults.max_rooms), 1)?,
            max_clients: at_least(
                "max-clients",
                self.max_clients.unwrap_or(defaults.max_clients),
                1,
            )?,
            max_per_ip: self.max_per_ip.unwrap_or(defaults.max_per_ip),
            history: at_least("history", self.history.unwrap_or(defaults.history), 1)?,
            replay: self.replay.unwrap_or(defaults.replay),
            replay_max: at_least(
                "replay-max",
                self.replay_max.unwrap_or(defaults.replay_max),
                1,
            )?,
            login_timeout: self
                .login_timeout
                .map_or(defaults.login_timeout, Seconds::duration),
            idle_timeout: self
                .idle_timeout
                .map_or(defaults.idle_timeout, Seconds::duration),
            rate: self.rate.unwrap_or(defaults.rate),
            burst: u32::try_from(at_least(
                "burst",
                self.burst.unwrap_or(defaults.burst) as usize,
                1,
            )?)
            .unwrap_or(u32::MAX),
            send_queue: at_least(
                "send-queue",
                self.send_queue.unwrap_or(defaults.send_queue),
                1,
            )?,
            max_frame: at_least(
                "max-frame",
                self.max_frame.unwrap_or(defaults.max_frame),
                64,
            )?,
            max_text: at_least("max-text", self.max_text.unwrap_or(defaults.max_text), 1)?,
            threads: self.threads.unwrap_or(defaults.threads),
            coalesce: self.coalesce_ms.map_or(defaults.coalesce, Millis::duration),
            tls,
            registration: self
                .registration
                .map_or(defaults.registration, |r| r == Registration::Open),
            hashers: self.hashers.unwrap_or(defaults.hashers),
            lease,
            admins,
            search: !self.no_search.unwrap_or(false),
            store_cache,
            metrics,
            irc,
            irc_tls,
            irc_name: irc_name(self.irc_name, defaults.irc_name)?,
            log_format: self.log_format.unwrap_or(defaults.log_format),
            retain,
            control,
            ..defaults
        })
    }

    /// Where the history is kept, the store's cache in bytes and the TLS setup: the
    /// settings that only make sense together, taken out of `self`.
    fn take_storage(
        &mut self,
        defaults: &Config,
    ) -> Result<(Storage, usize, Option<TlsSetup>), ConfigError> {
        let memory = self.memory.unwrap_or(false);
        let data_dir = self.data.clone().unwrap_or_else(Storage::default_dir);
        if self.store_cache.is_some() && (memory || self.redis.is_some()) {
            return Err(ConfigError::CacheWithoutStore);
        }
        let store_cache = at_least(
            "store-cache",
            self.store_cache.unwrap_or(defaults.store_cache >> 20),
            1,
        )?;
        let storage = match (self.data.take(), memory, self.redis.take()) {
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
        // With --memory, a self-signed certificate still lives in the data directory: a
        // certificate that changed at every start would make every client warn.
        let tls = match (
            self.tls_cert.take(),
            self.tls_key.take(),
            self.tls_self_signed.unwrap_or(false),
        ) {
            (None, None, false) => None,
            (Some(cert), Some(key), false) => Some(TlsSetup::Files { cert, key }),
            (None, None, true) => Some(TlsSetup::SelfSigned(data_dir)),
            (_, _, true) => return Err(ConfigError::TlsTwice),
            _ => return Err(ConfigError::TlsHalf),
        };
        Ok((storage, store_cache.saturating_mul(1 << 20), tls))
    }
}

/// Seconds in a day, for `--retain-days`.
const DAY: f64 = 86_400.0;

/// How long messages are kept (`--retain-days`), if not forever.
fn retention(days: Option<f64>, storage: &Storage) -> Result<Option<Duration>, ConfigError> {
    let Some(days) = days else {
        return Ok(None);
    };
    if matches!(storage, Storage::Redis(_)) {
        return Err(ConfigError::RetainInCluster);
    }
    Duration::try_from_secs_f64(days * DAY)
        .ok()
        .filter(|retain| !retain.is_zero())
        .map(Some)
        .ok_or(ConfigError::BadRetain(days))
}

/// The first address `target` (HOST:PORT) names.
fn first_address(target: &str) -> Option<SocketAddr> {
    target.to_socket_addrs().ok()?.next()
}

/// `value` of the setting `flag`, if it is at least `min`.
fn at_least(flag: &'static str, value: usize, min: usize) -> Result<usize, ConfigError> {
    if value < min {
        Err(ConfigError::TooSmall(flag, min))
    } else {
        Ok(value)
    }
}

/// Where IRC clients connect, in plain TCP (`irc`) and over TLS (`irc_tls`), on `addr`'s
/// host. Port 0 is off here: an IRC port is one people are told, never picked at random.
fn irc_ports(
    irc: Option<u16>,
    irc_tls: Option<u16>,
    addr: SocketAddr,
    tls: bool,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), ConfigError> {
    let on = |port: Option<u16>| {
        port.filter(|port| *port > 0)
            .map(|port| SocketAddr::new(addr.ip(), port))
    };
    let (irc, irc_tls) = (on(irc), on(irc_tls));
    if irc_tls.is_some() && !tls {
        return Err(ConfigError::IrcTlsWithoutTls);
    }
    Ok((irc, irc_tls))
}

/// The IRC server name `--irc-name` gives (letters, digits, `.` and `-`), or `default`.
fn irc_name(name: Option<String>, default: String) -> Result<String, ConfigError> {
    match name {
        Some(name)
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')) =>
        {
            Ok(name)
        }
        Some(name) => Err(ConfigError::BadIrcName(name)),
        None => Ok(default),
    }
}
