//! Counters the proxy keeps and their Prometheus text rendering. Updating a
//! metric is one relaxed atomic add, so the request path can afford it; the
//! per-state session counts are computed from the table at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::api::SessionState;

use crate::proxy::store::Store;

/// Upper bounds (seconds) of the activation-latency histogram buckets.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Default)]
pub struct Metrics {
    /// Index 0..5 = 1xx..5xx.
    requests: [AtomicU64; 5],
    upstream_errors: AtomicU64,
    open_websockets: AtomicI64,
    open_connections: AtomicI64,
    activation_buckets: [AtomicU64; BUCKETS.len()],
    activation_count: AtomicU64,
    activation_sum_us: AtomicU64,
}

impl Metrics {
    pub fn request(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[class].fetch_add(1, Relaxed);
    }

    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Relaxed);
    }

    pub fn websocket_opened(&self) {
        self.open_websockets.fetch_add(1, Relaxed);
    }

    pub fn websocket_closed(&self) {
        self.open_websockets.fetch_sub(1, Relaxed);
    }

    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Relaxed);
    }

    /// Time from a register call arriving to its route being live.
    pub fn activation(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.activation_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.activation_count.fetch_add(1, Relaxed);
        self.activation_sum_us
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn render(&self, store: &Store) -> String {
        let mut by_state = [0u64; 3];
        for s in store.all() {
            by_state[match s.state {
                SessionState::Pending => 0,
                SessionState::Ready => 1,
                SessionState::Ended => 2,
            }] += 1;
        }
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP jrps_sessions Sessions known to the proxy, by state.\n");
        out.push_str("# TYPE jrps_sessions gauge\n");
        for (state, n) in ["pending", "ready", "ended"].iter().zip(by_state) {
            let _ = writeln!(out, "jrps_sessions{{state=\"{state}\"}} {n}");
        }
        out.push_str("# HELP jrps_requests_total Answered requests, by status class.\n");
        out.push_str("# TYPE jrps_requests_total counter\n");
        for (i, n) in self.requests.iter().enumerate() {
            let _ = writeln!(
                out,
                "jrps_requests_total{{class=\"{}xx\"}} {}",
                i + 1,
                n.load(Relaxed)
            );
        }
        let _ = write!(
            out,
            "# HELP jrps_upstream_errors_total Requests whose backend could not be reached.\n\
             # TYPE jrps_upstream_errors_total counter\n\
             jrps_upstream_errors_total {}\n\
             # HELP jrps_open_websockets WebSocket tunnels open now.\n\
             # TYPE jrps_open_websockets gauge\n\
             jrps_open_websockets {}\n\
             # HELP jrps_open_connections Client connections open now.\n\
             # TYPE jrps_open_connections gauge\n\
             jrps_open_connections {}\n\
             # HELP jrps_state_database_up Whether the last call to the state database succeeded.\n\
             # TYPE jrps_state_database_up gauge\n\
             jrps_state_database_up {}\n\
             # HELP jrps_duty Whether this replica runs the sweeps and health checks now.\n\
             # TYPE jrps_duty gauge\n\
             jrps_duty {}\n\
             # HELP jrps_duty_lapse_seconds How long no replica has held duty, when too long (else 0).\n\
             # TYPE jrps_duty_lapse_seconds gauge\n\
             jrps_duty_lapse_seconds {}\n",
            self.upstream_errors.load(Relaxed),
            self.open_websockets.load(Relaxed),
            self.open_connections.load(Relaxed),
            u8::from(store.database_up()),
            u8::from(store.has_duty()),
            store.duty_lapse(crate::clock::unix_now()).unwrap_or(0),
        );
        out.push_str(
            "# HELP jrps_activation_seconds From a register call arriving to its route being live.\n",
        );
        out.push_str("# TYPE jrps_activation_seconds histogram\n");
        for (bound, bucket) in BUCKETS.iter().zip(&self.activation_buckets) {
            let _ = writeln!(
                out,
                "jrps_activation_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.activation_count.load(Relaxed);
        let _ = writeln!(
            out,
            "jrps_activation_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             jrps_activation_seconds_sum {}\n\
             jrps_activation_seconds_count {count}",
            self.activation_sum_us.load(Relaxed) as f64 / 1e6
        );
        out
    }
}
