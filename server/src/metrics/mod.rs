//! What the server counts, for operators: process-wide counters, gauges and histograms in
//! the Prometheus text format, served over HTTP with `--metrics ADDR` ([`http`]).
//!
//! Counting is always on (an atomic add where it happens; a histogram is a few); it is
//! done where work is already batched, so that it costs the fan-out nothing it would
//! notice: deliveries and bytes once per write of a send queue, commit sizes once per
//! group commit. The figures are the process's: servers embedded in one process (tests)
//! share them.

pub mod http;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The server's metrics (see [`get`]).
pub struct Metrics {
    registry: Registry,
    /// Open connections over plain TCP (the NDJSON protocol).
    pub connections_tcp: IntGauge,
    /// Open connections over TLS (the NDJSON protocol).
    pub connections_tls: IntGauge,
    /// Connections accepted since start.
    pub accepted: IntCounter,
    /// Logins welcomed.
    pub logins: IntCounter,
    rejections: IntCounterVec,
    closings: IntCounterVec,
    /// Messages (`say`) recorded, in rooms and direct conversations.
    pub posts: IntCounter,
    /// Frames written to connections that count against their send queue: events (one
    /// per event per member it reached), and the server's pings and errors.
    pub deliveries: IntCounter,
    /// Bytes written to connections.
    pub written_bytes: IntCounter,
    /// Frames waiting in a send queue when its writer takes them (one sample per write).
    pub send_queue_depth: Histogram,
    /// How long one group commit of the event log took.
    pub commit_seconds: Histogram,
    /// Events in one group commit.
    pub commit_events: Histogram,
    /// `history` requests answered.
    pub history_reads: IntCounter,
    /// Passwords waiting to be hashed or checked.
    pub hash_queue: IntGauge,
    /// How long hashing or checking one password took.
    pub hash_seconds: Histogram,
    /// How long one request to Redis took, answered or not (cluster).
    pub redis_seconds: Histogram,
    /// Requests to Redis that failed (cluster).
    pub redis_errors: IntCounter,
    /// Rooms held in memory (with members, or kept for their recent history).
    pub rooms: IntGauge,
}

/// The metrics of this process.
pub fn get() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Buckets of durations from 50 µs to about 6.5 s, doubling.
fn duration_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.000_05, 2.0, 18).expect("constant, valid buckets")
}

/// Buckets of counts from 1 to 4096, doubling.
fn count_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(1.0, 2.0, 13).expect("constant, valid buckets")
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("chat".into()), None)
            .expect("a valid prefix of metric names");
        let counter = |name: &str, help: &str| {
            registered(
                &registry,
                IntCounter::new(name, help).expect("valid metric"),
            )
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let opts = HistogramOpts::new(name, help).buckets(buckets);
            registered(&registry, Histogram::with_opts(opts).expect("valid metric"))
        };
        let gauge = |name: &str, help: &str| {
            registered(&registry, IntGauge::new(name, help).expect("valid metric"))
        };
        let labelled = |name: &str, help: &str, label: &str| {
            let opts = Opts::new(name, help);
            registered(
                &registry,
                IntCounterVec::new(opts, &[label]).expect("valid metric"),
            )
        };
        let connections = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "connections",
                    "Open connections, by protocol and transport.",
                ),
                &["protocol", "transport"],
            )
            .expect("valid metric"),
        );
        let build = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new("build_info", "The server's version; always 1."),
                &["version"],
            )
            .expect("valid metric"),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Self {
            connections_tcp: connections.with_label_values(&["ndjson", "tcp"]),
            connections_tls: connections.with_label_values(&["ndjson", "tls"]),
            accepted: counter("accepted_total", "Connections accepted."),
            logins: counter("logins_total", "Logins welcomed."),
            rejections: labelled(
                "rejections_total",
                "Logins and connections refused, by code.",
                "code",
            ),
            closings: labelled(
                "closings_total",
                "Connections the server closed, by the closing code (evictions).",
                "code",
            ),
            posts: counter("posts_total", "Messages recorded."),
            deliveries: counter(
                "deliveries_total",
                "Frames written to connections that count against their send queue \
                 (events, pings, errors), one per frame per connection.",
            ),
            written_bytes: counter("written_bytes_total", "Bytes written to connections."),
            send_queue_depth: histogram(
                "send_queue_depth",
                "Frames in a send queue when its writer takes them.",
                count_buckets(),
            ),
            commit_seconds: histogram(
                "commit_seconds",
                "Duration of one group commit of the event log.",
                duration_buckets(),
            ),
            commit_events: histogram(
                "commit_events",
                "Events in one group commit of the event log.",
                count_buckets(),
            ),
            history_reads: counter("history_reads_total", "History requests answered."),
            hash_queue: gauge("hash_queue", "Passwords waiting to be hashed."),
            hash_seconds: histogram(
                "hash_seconds",
                "Duration of hashing or checking one password.",
                duration_buckets(),
            ),
            redis_seconds: histogram(
                "redis_seconds",
                "Duration of one request to Redis (cluster).",
                duration_buckets(),
            ),
            redis_errors: counter("redis_errors_total", "Requests to Redis that failed."),
            rooms: gauge("rooms", "Rooms held in memory."),
            registry: registry.clone(),
        }
    }

    /// Counts a refusal with its wire code (`rejected`).
    pub fn rejected(&self, code: &str) {
        self.rejections.with_label_values(&[code]).inc();
    }

    /// Counts a connection the server closed with its wire code (`closing`).
    pub fn closed(&self, code: &str) {
        self.closings.with_label_values(&[code]).inc();
    }

    /// Sets `gauge` to a count.
    pub fn set(gauge: &IntGauge, count: usize) {
        gauge.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Records one duration in `histogram`.
    pub fn time(histogram: &Histogram, took: Duration) {
        histogram.observe(took.as_secs_f64());
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * 1024);
        // Writing to a Vec fails only on an invalid metric, which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// `metric`, registered in `registry` (a clone shares its values).
fn registered<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric registered once");
    metric
}

/// A connection counted in [`Metrics`] as open while this lives.
pub struct OpenConnection(&'static IntGauge);

impl OpenConnection {
    /// Counts a connection as open (TLS or plain TCP) until dropped.
    pub fn new(tls: bool) -> Self {
        let metrics = get();
        metrics.accepted.inc();
        let gauge = if tls {
            &metrics.connections_tls
        } else {
            &metrics.connections_tcp
        };
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
