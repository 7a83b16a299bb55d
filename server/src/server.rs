//! The listening socket, the accept loop with its connection caps, shutdown, and the
//! executor threads.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_channel::Sender;
use chat_shared::RejectCode;
use futures_lite::{AsyncWriteExt, future};
use smol::{Async, Executor, Timer};

use crate::Config;
use crate::accounts::Hasher;
use crate::cluster::Cluster;
use crate::config::Storage;
use crate::context::Context;
use crate::control::serve::{ControlSocket, Operator};
use crate::hub::command::Command;
use crate::hub::peers::{Alone, Peers};
use crate::hub::{Hub, Searching};
use crate::log::memory::MemoryLog;
use crate::log::redis::RedisLog;
use crate::log::store::{OpenError, Store};
use crate::log::{EventLog, LogError};
use crate::search::service::Search;
use crate::search::{self, SearchError};
use crate::session::{self, Dialect};
use crate::tls::Tls;
use crate::transport::Transport;
use crate::wire::{random_hex, rejected};

/// A bound server, ready to run.
pub struct Server {
    listener: Async<TcpListener>,
    /// Where IRC clients connect: in plain TCP, and over TLS.
    irc: Option<Async<TcpListener>>,
    irc_tls: Option<Async<TcpListener>>,
    context: Arc<Context>,
    hub: Option<(Hub, async_channel::Receiver<Command>)>,
    store: Option<Arc<Store>>,
    tls: Option<Tls>,
    /// In a cluster: this node's id and the Redis it shares.
    node: Option<(String, String)>,
    /// The search index and its thread (stopped when the server is dropped, after the
    /// hub).
    search: Option<Search>,
    /// Where scrapers get the metrics (`--metrics`).
    metrics: Option<Async<TcpListener>>,
    /// Where `server backup` and `server admin` reach it (`--control`).
    control: Option<ControlSocket>,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address cannot be listened on.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, io::Error),
    /// The control socket cannot be made.
    #[error("cannot make the control socket {0}: {1}")]
    Control(std::path::PathBuf, io::Error),
    /// The metrics' address cannot be listened on.
    #[error("cannot serve the metrics on {0}: {1}")]
    Metrics(SocketAddr, io::Error),
    /// The store cannot be opened.
    #[error("{0}")]
    Store(#[from] OpenError),
    /// The event log cannot be read.
    #[error("cannot read the history: {0}")]
    Log(#[from] LogError),
    /// The cluster's Redis cannot be reached or used.
    #[error("cannot join the cluster at {0}: {1}")]
    Cluster(String, LogError),
    /// The operating system gives no random bytes, so tokens could be guessed.
    #[error("no random bytes from the operating system ({0}); tokens would be guessable")]
    NoRandomness(getrandom::Error),
    /// The password hashing threads cannot start.
    #[error("cannot start the password hashing threads: {0}")]
    Threads(io::Error),
    /// The TLS certificate or key cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The search index cannot be opened or created.
    #[error("{0}")]
    Search(#[from] SearchError),
}

/// How long a refused connection gets to read why.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// When a refused client should try again.
const RETRY_AFTER_MS: u64 = 2000;
/// The longest a shutdown waits for connections to flush (the process must exit in 2 s).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// How long a shutdown waits for the hub to push what it owes before closing connections
/// (part of [`SHUTDOWN_GRACE`]).
const FLUSH_LIMIT: Duration = Duration::from_millis(300);

impl Server {
    /// Opens the event log and binds the listening socket (with `SO_REUSEADDR`, so a
    /// restart right after a stop works).
    pub fn bind(config: Config) -> Result<Self, StartError> {
        let epoch = random_hex(16).map_err(StartError::NoRandomness)?;
        let (log, store): (Arc<dyn EventLog>, _) = match &config.storage {
            Storage::Memory => (Arc::new(MemoryLog::new(epoch)), None),
            Storage::Dir(dir) => {
                let store = Arc::new(Store::open_with_cache(dir, config.store_cache, || epoch)?);
                (store.clone(), Some(store))
            }
            Storage::Redis(url) => {
                let joined = RedisLog::connect(url, || epoch).and_then(|redis| {
                    let redis = Arc::new(redis);
                    Ok((Cluster::join(redis.clone(), config.lease)?, redis))
                });
                let (cluster, redis) =
                    joined.map_err(|err| StartError::Cluster(url.clone(), err))?;
                let place = search::Place::Cluster(redis.clone());
                return Self::bind_with(config, redis, Some(cluster), &place);
            }
        };
        let place = match &config.storage {
            Storage::Dir(dir) => search::Place::Dir(dir.clone()),
            _ => search::Place::Memory,
        };
        let mut server = Self::bind_with(config, log, None, &place)?;
        server.store = store;
        Ok(server)
    }

    /// Binds with an event log of the caller's (for tests and embedding; `config.storage`
    /// is not looked at).
    pub fn bind_with_log(config: Config, log: Arc<dyn EventLog>) -> Result<Self, StartError> {
        Self::bind_with(config, log, None, &search::Place::Memory)
    }

    /// Binds with `log`, as a node of `cluster` if given, with the search index in
    /// `place`.
    fn bind_with(
        config: Config,
        log: Arc<dyn EventLog>,
        cluster: Option<Cluster>,
        place: &search::Place,
    ) -> Result<Self, StartError> {
        let node = cluster
            .as_ref()
            .map(|cluster| (cluster.node().to_string(), cluster.url().to_string()));
        let peers: Box<dyn Peers> = match cluster {
            Some(cluster) => Box::new(cluster),
            None => Box::new(Alone),
        };
        let listener = Async::<TcpListener>::bind(config.addr)
            .map_err(|err| StartError::Listen(config.addr, err))?;
        let bind = |addr: Option<SocketAddr>| {
            addr.map(|addr| {
                Async::<TcpListener>::bind(addr).map_err(|err| StartError::Listen(addr, err))
            })
            .transpose()
        };
        let (irc, irc_tls) = (bind(config.irc)?, bind(config.irc_tls)?);
        let metrics = match config.metrics {
            Some(addr) => Some(
                Async::<TcpListener>::bind(addr).map_err(|err| StartError::Metrics(addr, err))?,
            ),
            None => None,
        };
        let control = match &config.control {
            Some(path) => Some(
                ControlSocket::bind(path).map_err(|err| StartError::Control(path.clone(), err))?,
            ),
            None => None,
        };
        let (hub_tx, hub_rx) = async_channel::unbounded();
        let hasher = Hasher::start(config.hasher_threads()).map_err(StartError::Threads)?;
        let tls = match &config.tls {
            Some(setup) => {
                Some(Tls::load(setup, &config.addr.ip().to_string()).map_err(StartError::Tls)?)
            }
            None => None,
        };
        let search = if config.search {
            Some(Search::start(place, log.clone())?)
        } else {
            None
        };
        let searching = search.as_ref().map(|search| Searching {
            index: search.index(),
            // A cluster's nodes feed their indexes from Redis, where every node's events are.
            feed: (!matches!(place, search::Place::Cluster(_))).then(|| search.feed()),
        });
        let hub = Hub::new(
            config.clone(),
            log.clone(),
            hasher,
            hub_tx.clone(),
            peers,
            searching,
        )?;
        let context = Arc::new(Context::new(
            config,
            hub_tx,
            log,
            hub.address_bans(),
            hub.account_names(),
        ));
        Ok(Self {
            listener,
            irc,
            irc_tls,
            context,
            hub: Some((hub, hub_rx)),
            store: None,
            tls,
            node,
            search,
            metrics,
            control,
        })
    }

    /// Where the history is kept, in words for the log: the store's file and what it
    /// holds, or "memory".
    pub fn describe_storage(&self) -> String {
        match &self.store {
            Some(store) if store.created() => format!(
                "store {} (new, epoch {})",
                store.path().display(),
                store.epoch()
            ),
            Some(store) => format!(
                "store {} (epoch {}, {} events)",
                store.path().display(),
                store.epoch(),
                store.events()
            ),
            None => match &self.node {
                Some((node, url)) => format!(
                    "cluster node {node} on {url} (epoch {})",
                    self.context.log.epoch()
                ),
                None => format!(
                    "history in memory only (epoch {}; a restart starts a new one)",
                    self.context.log.epoch()
                ),
            },
        }
    }

    /// What it encrypts with, in words for the log: the certificate and its SHA-256
    /// fingerprint, or `None` for plain TCP.
    pub fn describe_tls(&self) -> Option<String> {
        self.tls.as_ref().map(|tls| {
            format!(
                "TLS with {}, SHA-256 fingerprint {}",
                tls.source, tls.fingerprint
            )
        })
    }

    /// The SHA-256 fingerprint of its TLS certificate, if it speaks TLS.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.tls.as_ref().map(|tls| tls.fingerprint.as_str())
    }

    /// The address it listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// Where IRC clients connect, in plain TCP and over TLS (the real ports), if they do.
    pub fn irc_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let addr = |listener: &Option<Async<TcpListener>>| {
            listener
                .as_ref()
                .and_then(|listener| listener.get_ref().local_addr().ok())
        };
        (addr(&self.irc), addr(&self.irc_tls))
    }

    /// Where the metrics are served (the real port when asked for port 0), if they are.
    pub fn metrics_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.metrics
            .as_ref()
            .map(|listener| listener.get_ref().local_addr())
    }

    /// Where the control socket listens, if it does.
    pub fn control_path(&self) -> Option<&std::path::Path> {
        self.control.as_ref().map(ControlSocket::path)
    }

    /// Serves on `ex` until `stop` resolves, then closes every connection with
    /// `closing`/`shutdown`, gives them a moment to flush, and returns.
    pub async fn serve(mut self, ex: Arc<Executor<'static>>, stop: impl Future<Output = ()>) {
        let hub = self
            .hub
            .take()
            .map(|(hub, inbox)| ex.spawn(hub.run(inbox, ex.clone())));
        // Dropped at shutdown, which stops the scrapes.
        let _metrics = self
            .metrics
            .take()
            .map(|listener| ex.spawn(crate::metrics::http::serve(listener, ex.clone())));
        let context = self.context.clone();
        // The task ends at shutdown; the socket's file goes when this function returns.
        let (_control, _control_file) = self
            .control
            .take()
            .map(|socket| {
                let operator = Operator {
                    store: self.store.clone(),
                    hub: context.hub.clone(),
                };
                let (listener, file) = socket.split();
                let task = ex.spawn(crate::control::serve::serve(
                    listener,
                    Arc::new(operator),
                    ex.clone(),
                ));
                (task, file)
            })
            .unzip();
        let acceptor = self
            .tls
            .as_ref()
            .map(|tls| futures_rustls::TlsAcceptor::from(tls.config.clone()));
        let accept = future::or(
            self.accept(
                &ex,
                Some(&self.listener),
                Dialect::Ndjson,
                acceptor.as_ref(),
            ),
            future::or(
                self.accept(&ex, self.irc.as_ref(), Dialect::Irc, None),
                self.accept(&ex, self.irc_tls.as_ref(), Dialect::Irc, acceptor.as_ref()),
            ),
        );
        future::or(accept, stop).await;
        tracing::info!("shutting down");
        drop(self.listener);
        drop(self.irc.take());
        drop(self.irc_tls.take());
        let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
        // What was recorded reaches everyone before their `closing`: a room writes to a
        // member at most once a window, so some of it may still be owed.
        let (flushed, done) = async_channel::bounded(1);
        if context.hub.try_send(Command::Flush(flushed)).is_ok() {
            future::or(
                async {
                    let _ = done.recv().await;
                },
                async {
                    Timer::after(FLUSH_LIMIT).await;
                },
            )
            .await;
        }
        context.shutdown.raise();
        if context.connections() > 0 {
            future::or(context.all_closed(), async {
                Timer::at(deadline).await;
            })
            .await;
        }
        // What was accepted goes to the store before the process ends.
        let _ = context.hub.try_send(Command::Shutdown);
        if let Some(hub) = hub {
            future::or(hub, async {
                Timer::at(deadline.max(std::time::Instant::now() + Duration::from_millis(300)))
                    .await;
            })
            .await;
        }
        // The index commits what it took in; its thread holds the log until it ends.
        drop(self.search.take());
        if let Some(store) = &self.store {
            tracing::info!("stopped; {}", store.activity());
        }
    }

    /// Accepts connections on `listener` (if there is one) speaking `dialect`, for good.
    async fn accept(
        &self,
        ex: &Executor<'static>,
        listener: Option<&Async<TcpListener>>,
        dialect: Dialect,
        tls: Option<&futures_rustls::TlsAcceptor>,
    ) {
        let Some(listener) = listener else {
            return future::pending().await;
        };
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => self.admit(ex, stream, peer, tls, dialect),
                Err(err) => {
                    // Out of file descriptors, most likely: let some close.
                    tracing::warn!(%err, "accept failed");
                    Timer::after(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn admit(
        &self,
        ex: &Executor<'static>,
        stream: Async<std::net::TcpStream>,
        peer: SocketAddr,
        tls: Option<&futures_rustls::TlsAcceptor>,
        dialect: Dialect,
    ) {
        // Latency matters more than packet count; the room batches writes itself.
        let _ = stream.get_ref().set_nodelay(true);
        match self.context.admit(peer.ip()) {
            Ok(place) => {
                let conn = self.context.next_conn();
                let context = self.context.clone();
                match tls {
                    None => ex.spawn(async move {
                        session::run(context, Transport::Plain(stream), conn, peer.ip(), dialect)
                            .await;
                        drop(place);
                    }),
                    Some(acceptor) => {
                        let accepting = acceptor.accept(stream);
                        ex.spawn(async move {
                            // The handshake counts against the login timeout.
                            let limit = context.config.login_timeout;
                            let done = future::or(async { Some(accepting.await) }, async {
                                Timer::after(limit).await;
                                None
                            })
                            .await;
                            match done {
                                Some(Ok(tls)) => {
                                    let transport = Transport::Tls(Box::new(Mutex::new(tls)));
                                    session::run(context, transport, conn, peer.ip(), dialect)
                                        .await;
                                }
                                Some(Err(err)) => {
                                    tracing::debug!(conn, %peer, %err, "TLS handshake failed");
                                }
                                None => tracing::debug!(conn, %peer, "TLS handshake timed out"),
                            }
                            drop(place);
                        })
                    }
                }
                .detach();
            }
            Err(code) => {
                ex.spawn(refuse(stream, code, dialect)).detach();
            }
        }
    }
}

/// Tells a connection there is no room for it, then closes it.
async fn refuse(stream: Async<std::net::TcpStream>, code: RejectCode, dialect: Dialect) {
    let message = match code {
        RejectCode::TooManyConnections => "too many connections from your address",
        RejectCode::Banned => "your address is banned from this server",
        _ => "the server is full",
    };
    let bytes = match dialect {
        Dialect::Ndjson => rejected(
            code,
            message.into(),
            code.is_transient().then_some(RETRY_AFTER_MS),
        )
        .as_bytes()
        .to_vec(),
        Dialect::Irc => format!("ERROR :{message}\r\n").into_bytes(),
    };
    let mut stream = stream;
    future::or(
        async {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
        },
        async {
            Timer::after(REFUSAL_TIMEOUT).await;
        },
    )
    .await;
}

/// Runs `server` on `threads` threads (0: one per core) until `stop` resolves.
pub fn run_blocking(server: Server, stop: impl Future<Output = ()>) {
    let threads = server.context.config.worker_threads();
    let ex = Arc::new(Executor::new());
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    let workers: Vec<_> = (1..threads)
        .map(|i| {
            let ex = ex.clone();
            let done = done_rx.clone();
            std::thread::Builder::new()
                .name(format!("chat-worker-{i}"))
                .spawn(move || smol::block_on(ex.run(done.recv())))
        })
        .collect();
    smol::block_on(ex.run(server.serve(ex.clone(), stop)));
    drop(done_tx);
    for worker in workers.into_iter().flatten() {
        let _ = worker.join();
    }
}

/// A server running on its own threads, for tests and embedding: stops when dropped.
pub struct Running {
    addr: SocketAddr,
    irc: (Option<SocketAddr>, Option<SocketAddr>),
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Binds and starts a server in the background.
    pub fn start(config: Config) -> Result<Self, StartError> {
        Self::run(Server::bind(config)?)
    }

    /// Binds and starts a server in the background with an event log of the caller's.
    pub fn start_with_log(config: Config, log: Arc<dyn EventLog>) -> Result<Self, StartError> {
        Self::run(Server::bind_with_log(config, log)?)
    }

    fn run(server: Server) -> Result<Self, StartError> {
        let addr = server
            .local_addr()
            .map_err(|err| StartError::Listen(SocketAddr::from(([0, 0, 0, 0], 0)), err))?;
        let irc = server.irc_addrs();
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("chat-server".into())
            .spawn(move || {
                run_blocking(server, async move {
                    let _ = stop_rx.recv().await;
                });
            })
            .map_err(|err| StartError::Listen(addr, err))?;
        Ok(Self {
            addr,
            irc,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where IRC clients connect in plain TCP, if they do.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.irc.0
    }

    /// Where IRC clients connect over TLS, if they do.
    pub fn irc_tls_addr(&self) -> Option<SocketAddr> {
        self.irc.1
    }

    /// Shuts the server down as SIGTERM would, and waits until it has.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}
