//! The server's figures for `GET /metrics`, in the Prometheus text format
//! (version 0.0.4).
//!
//! Plain relaxed atomics and a small renderer rather than a metrics crate:
//! every label set here is closed and known at compile time (request kinds,
//! error codes, connection states), so each series is one array slot and
//! counting is one relaxed `fetch_add`, with no hashing, lock or allocation
//! on the hot path; the gauges that describe the hub (deliveries, bytes
//! queued in outboxes) are read from it when scraped rather than kept in
//! step. See ARCHITECTURE.md for the comparison with `prometheus-client`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chatus_protocol::{ErrorCode, Request};

use crate::state::State;

/// A connection's state, for the connection gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// A WebSocket that has not logged in yet (or a connection whose first
    /// request is still being read).
    PreLogin,
    /// A logged-in WebSocket.
    LoggedIn,
    /// A plain HTTP connection (served by hyper).
    Http,
}

impl ConnState {
    const ALL: [ConnState; 3] = [ConnState::PreLogin, ConnState::LoggedIn, ConnState::Http];

    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            ConnState::PreLogin => "pre_login",
            ConnState::LoggedIn => "logged_in",
            ConnState::Http => "http",
        }
    }
}

const REFUSALS: [crate::admission::Refusal; 3] = [
    crate::admission::Refusal::PerAddr,
    crate::admission::Refusal::PreLoginPerAddr,
    crate::admission::Refusal::Full,
];

/// Commit latency bounds, in microseconds (100 µs to 1 s).
const COMMIT_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];
/// Batch size bounds, in messages (1 to the sequencer's 1024).
const BATCH: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/// Login wait bounds, in microseconds (1 ms to 30 s).
/// These are the hashing pool's own bounds
/// ([`crate::service::accounts::hashing::WAIT_BUCKETS`]), in microseconds.
pub(crate) const LOGIN_WAIT_US: &[u64] = &[
    10_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A histogram over fixed bounds, counted with relaxed atomics.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [u64],
    /// One per bound, then one for everything larger.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistogramSnapshot {
    /// Upper bounds of the buckets (in the histogram's unit).
    pub(crate) bounds: &'static [u64],
    /// Observations per bucket (not cumulative), the last above every bound.
    pub(crate) buckets: Vec<u64>,
    /// Sum of the observations.
    pub(crate) sum: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (increasing).
    pub(crate) fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub(crate) fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|&b| b < v);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// Records a duration, in microseconds.
    pub(crate) fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

impl HistogramSnapshot {
    /// Number of observations.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// Figures the login service keeps, read at each scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginFigures {
    /// Login attempts waiting for a password check.
    pub(crate) queue_depth: u64,
    /// How long attempts waited for their check to start, in microseconds
    /// (over [`LOGIN_WAIT_US`]).
    pub(crate) wait: HistogramSnapshot,
    /// Failed login attempts: wrong password or unknown name, bad token.
    pub(crate) auth_failures: u64,
}

/// The login service's figures for `/metrics`: its queue depth and wait
/// histogram come from the hashing pool, failures from the service's own
/// count (wrong passwords, unknown names, bad tokens).
pub(crate) fn login_figures(state: &State) -> LoginFigures {
    let accounts = state.accounts();
    let pool = accounts.pool_stats();
    // The pool counts cumulatively; a snapshot holds each bucket's own.
    let mut buckets = Vec::with_capacity(pool.wait_buckets.len());
    let mut below = 0;
    for &c in &pool.wait_buckets {
        buckets.push(c.saturating_sub(below));
        below = c;
    }
    LoginFigures {
        queue_depth: pool.queue_depth as u64,
        wait: HistogramSnapshot {
            bounds: LOGIN_WAIT_US,
            buckets,
            sum: (pool.wait_sum_secs * 1e6) as u64,
        },
        auth_failures: accounts.auth_failures(),
    }
}

/// The server's counters and histograms. Shared as `Arc<Metrics>`.
#[derive(Debug)]
pub(crate) struct Metrics {
    conns: [AtomicI64; 3],
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    refused: [AtomicU64; 3],
    requests: [AtomicU64; Request::TYPES.len()],
    errors: [AtomicU64; ErrorCode::ALL.len()],
    messages_stored: AtomicU64,
    lagging: AtomicU64,
    commit_seconds: Histogram,
    commit_batch: Histogram,
    commit_failures: AtomicU64,
    store_failing: AtomicBool,
    connection_limit: AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            conns: Default::default(),
            accepted: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            refused: Default::default(),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            messages_stored: AtomicU64::new(0),
            lagging: AtomicU64::new(0),
            commit_seconds: Histogram::new(COMMIT_US),
            commit_batch: Histogram::new(BATCH),
            commit_failures: AtomicU64::new(0),
            store_failing: AtomicBool::new(false),
            connection_limit: AtomicUsize::new(0),
        }
    }
}

impl Metrics {
    /// A connection was accepted.
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// `accept` failed (out of file descriptors, usually).
    pub(crate) fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was refused at accept time.
    pub(crate) fn refused(&self, why: crate::admission::Refusal) {
        if let Some(i) = REFUSALS.iter().position(|r| *r == why) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The connection cap in force (after the file-descriptor limit).
    pub(crate) fn set_connection_limit(&self, n: usize) {
        self.connection_limit.store(n, Ordering::Relaxed);
    }

    pub(crate) fn conn_opened(&self, s: ConnState) {
        self.conns[s.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn conn_moved(&self, from: ConnState, to: ConnState) {
        self.conns[from.index()].fetch_sub(1, Ordering::Relaxed);
        self.conns[to.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn conn_closed(&self, s: ConnState) {
        self.conns[s.index()].fetch_sub(1, Ordering::Relaxed);
    }

    /// Open connections in state `s`.
    pub(crate) fn connections(&self, s: ConnState) -> i64 {
        self.conns[s.index()].load(Ordering::Relaxed)
    }

    /// A request of `kind` (its wire `type`) was decoded.
    pub(crate) fn request(&self, kind: &str) {
        if let Some(i) = Request::TYPES.iter().position(|t| *t == kind) {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request was answered with an error `code`.
    pub(crate) fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection was closed as lagging.
    pub(crate) fn lagging(&self) {
        self.lagging.fetch_add(1, Ordering::Relaxed);
    }

    /// The sequencer appended a batch of `size` messages in `took`;
    /// `stored` of them were new (the rest retries), or the append failed.
    pub(crate) fn committed(&self, took: Duration, size: usize, stored: Option<usize>) {
        self.commit_seconds.observe_duration(took);
        self.commit_batch
            .observe(u64::try_from(size).unwrap_or(u64::MAX));
        match stored {
            Some(n) => {
                self.messages_stored
                    .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
                self.store_failing.store(false, Ordering::Relaxed);
            }
            None => {
                self.commit_failures.fetch_add(1, Ordering::Relaxed);
                self.store_failing.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Whether the last append failed (the store refuses writes).
    pub(crate) fn store_failing(&self) -> bool {
        self.store_failing.load(Ordering::Relaxed)
    }

    /// Renders every figure in the Prometheus text format.
    pub(crate) fn render(&self, state: &State) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let w = &mut out;
        family(
            w,
            "chatus_connections",
            "gauge",
            "Open connections by state.",
        );
        for s in ConnState::ALL {
            sample(
                w,
                "chatus_connections",
                &[("state", s.label())],
                self.connections(s),
            );
        }
        family(
            w,
            "chatus_connection_limit",
            "gauge",
            "Most connections served at once (max_connections, kept below the open-file limit).",
        );
        sample(
            w,
            "chatus_connection_limit",
            &[],
            self.connection_limit.load(Ordering::Relaxed),
        );
        counter(
            w,
            "chatus_connections_accepted_total",
            "Connections accepted.",
            &self.accepted,
        );
        counter(
            w,
            "chatus_accept_errors_total",
            "Failed accepts (out of file descriptors, usually); the server backs off and retries.",
            &self.accept_errors,
        );
        family(
            w,
            "chatus_connections_refused_total",
            "counter",
            "Connections refused at accept time, by reason.",
        );
        for (r, n) in REFUSALS.iter().zip(&self.refused) {
            sample(
                w,
                "chatus_connections_refused_total",
                &[("reason", r.label())],
                n.load(Ordering::Relaxed),
            );
        }
        family(
            w,
            "chatus_requests_total",
            "counter",
            "Requests decoded, by type.",
        );
        for (t, n) in Request::TYPES.iter().zip(&self.requests) {
            sample(
                w,
                "chatus_requests_total",
                &[("type", t)],
                n.load(Ordering::Relaxed),
            );
        }
        family(
            w,
            "chatus_errors_total",
            "counter",
            "Error replies, by code.",
        );
        for (c, n) in ErrorCode::ALL.iter().zip(&self.errors) {
            sample(
                w,
                "chatus_errors_total",
                &[("code", c.as_str())],
                n.load(Ordering::Relaxed),
            );
        }
        counter(
            w,
            "chatus_messages_stored_total",
            "Messages stored (retries of stored messages not counted).",
            &self.messages_stored,
        );
        family(
            w,
            "chatus_deliveries_total",
            "counter",
            "Message and event frames pushed to connections by fan-out.",
        );
        sample(w, "chatus_deliveries_total", &[], state.hub().delivered());
        let queued: usize = state
            .hub()
            .connections()
            .iter()
            .map(|c| c.outbox.pending_bytes())
            .sum();
        family(
            w,
            "chatus_outbox_bytes",
            "gauge",
            "Bytes queued towards connections and not yet written, all connections.",
        );
        sample(w, "chatus_outbox_bytes", &[], queued);
        let files = &state.files().counts;
        counter(
            w,
            "chatus_uploads_created_total",
            "File uploads created (tus POST).",
            &files.created,
        );
        counter(
            w,
            "chatus_uploads_finished_total",
            "File uploads whose last byte arrived and that were stored.",
            &files.finished,
        );
        counter(
            w,
            "chatus_upload_bytes_total",
            "Upload bytes stored (discarded chunks not counted).",
            &files.bytes_in,
        );
        counter(
            w,
            "chatus_download_bytes_total",
            "File bytes answered to downloads, counted as each response starts.",
            &files.bytes_out,
        );
        counter(
            w,
            "chatus_lagging_disconnects_total",
            "Connections closed because they read too slowly (code 4000).",
            &self.lagging,
        );
        histogram(
            w,
            "chatus_commit_seconds",
            "Time to store one batch of messages (one transaction).",
            &self.commit_seconds.snapshot(),
            1e-6,
        );
        histogram(
            w,
            "chatus_commit_batch_messages",
            "Messages per stored batch.",
            &self.commit_batch.snapshot(),
            1.0,
        );
        counter(
            w,
            "chatus_commit_failures_total",
            "Batches the store failed to append.",
            &self.commit_failures,
        );
        let login = login_figures(state);
        family(
            w,
            "chatus_login_queue_depth",
            "gauge",
            "Login attempts waiting for a password check.",
        );
        sample(w, "chatus_login_queue_depth", &[], login.queue_depth);
        histogram(
            w,
            "chatus_login_wait_seconds",
            "Time login attempts waited for their password check to start.",
            &login.wait,
            1e-6,
        );
        family(
            w,
            "chatus_auth_failures_total",
            "counter",
            "Failed login attempts (wrong password or name, bad token).",
        );
        sample(w, "chatus_auth_failures_total", &[], login.auth_failures);
        out
    }
}

fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(w: &mut String, name: &str, labels: &[(&str, &str)], v: impl std::fmt::Display) {
    w.push_str(name);
    if !labels.is_empty() {
        w.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                w.push(',');
            }
            // Label values here are fixed identifiers: nothing to escape.
            let _ = write!(w, "{k}=\"{val}\"");
        }
        w.push('}');
    }
    let _ = writeln!(w, " {v}");
}

fn counter(w: &mut String, name: &str, help: &str, n: &AtomicU64) {
    family(w, name, "counter", help);
    sample(w, name, &[], n.load(Ordering::Relaxed));
}

fn histogram(w: &mut String, name: &str, help: &str, h: &HistogramSnapshot, scale: f64) {
    family(w, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0;
    for (bound, n) in h.bounds.iter().zip(&h.buckets) {
        cumulative += n;
        #[expect(clippy::cast_precision_loss, reason = "bounds are small")]
        let le = format!("{}", *bound as f64 * scale);
        sample(w, &bucket, &[("le", &le)], cumulative);
    }
    let count = h.count();
    sample(w, &bucket, &[("le", "+Inf")], count);
    #[expect(clippy::cast_precision_loss, reason = "a sum for display")]
    let sum = h.sum as f64 * scale;
    sample(w, &format!("{name}_sum"), &[], sum);
    sample(w, &format!("{name}_count"), &[], count);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The login wait histogram is the hashing pool's, bucket for bucket.
    #[test]
    fn login_wait_bounds_are_the_pools() {
        let pool = crate::service::accounts::hashing::WAIT_BUCKETS;
        assert_eq!(LOGIN_WAIT_US.len(), pool.len());
        for (us, secs) in LOGIN_WAIT_US.iter().zip(pool) {
            assert_eq!(*us, (secs * 1e6).round() as u64);
        }
    }

    #[test]
    fn histograms_count_into_the_right_bucket() {
        let h = Histogram::new(&[10, 20]);
        for v in [0, 10, 11, 20, 21, 1000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![2, 2, 2]);
        assert_eq!(s.sum, 1062);
        let mut out = String::new();
        histogram(&mut out, "x", "An x.", &s, 1.0);
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"20\"} 4\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 6\n"), "{out}");
        assert!(out.contains("x_count 6\n"), "{out}");
    }

    #[test]
    fn every_request_type_and_error_code_has_a_series() {
        let m = Metrics::default();
        for t in Request::TYPES {
            m.request(t);
        }
        for c in ErrorCode::ALL {
            m.error(*c);
        }
        assert!(m.requests.iter().all(|n| n.load(Ordering::Relaxed) == 1));
        assert!(m.errors.iter().all(|n| n.load(Ordering::Relaxed) == 1));
    }
}
