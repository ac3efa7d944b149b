//! Prometheus text-format metrics: requests by route and status, submissions accepted and
//! refused by reason, log size, snapshot version and expiry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::log::Published;

/// Counters kept by the server.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    accepted: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    resign_failures: AtomicU64,
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts one request.
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_owned(), status)).or_default() += 1;
        }
    }

    /// Counts an accepted submission.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused submission.
    pub fn refused(&self, reason: &'static str) {
        if let Ok(mut m) = self.refused.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Counts a failed scheduled re-signing.
    pub fn resign_failed(&self) {
        self.resign_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, published: &Published) -> String {
        let mut out = String::new();
        out.push_str("# HELP weightseal_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE weightseal_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "weightseal_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP weightseal_submissions_accepted_total Submissions appended to the log.\n");
        out.push_str("# TYPE weightseal_submissions_accepted_total counter\n");
        let _ = writeln!(
            out,
            "weightseal_submissions_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        out.push_str("# HELP weightseal_submissions_refused_total Submissions refused, by reason.\n");
        out.push_str("# TYPE weightseal_submissions_refused_total counter\n");
        if let Ok(m) = self.refused.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(out, "weightseal_submissions_refused_total{{reason=\"{reason}\"}} {n}");
            }
        }
        out.push_str("# HELP weightseal_resign_failures_total Scheduled snapshot re-signings that failed.\n");
        out.push_str("# TYPE weightseal_resign_failures_total counter\n");
        let _ = writeln!(
            out,
            "weightseal_resign_failures_total {}",
            self.resign_failures.load(Ordering::Relaxed)
        );
        out.push_str("# HELP weightseal_log_size Entries in the published log.\n");
        out.push_str("# TYPE weightseal_log_size gauge\n");
        let _ = writeln!(out, "weightseal_log_size {}", published.size);
        out.push_str("# HELP weightseal_snapshot_version Version of the published snapshot.\n");
        out.push_str("# TYPE weightseal_snapshot_version gauge\n");
        let _ = writeln!(out, "weightseal_snapshot_version {}", published.version);
        out.push_str("# HELP weightseal_snapshot_issued_timestamp_seconds When the published snapshot was signed.\n");
        out.push_str("# TYPE weightseal_snapshot_issued_timestamp_seconds gauge\n");
        let _ = writeln!(out, "weightseal_snapshot_issued_timestamp_seconds {}", published.issued);
        out.push_str("# HELP weightseal_snapshot_expires_timestamp_seconds When the published snapshot expires.\n");
        out.push_str("# TYPE weightseal_snapshot_expires_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "weightseal_snapshot_expires_timestamp_seconds {}",
            published.expires
        );
        out
    }
}
