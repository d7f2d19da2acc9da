//! The one event every answered request ends with, whichever path served
//! it: counted for `/metrics` and, with `access_log`, one log line. The
//! path is logged without its query, which carries the token.

use std::net::IpAddr;
use std::time::Instant;

use crate::proxy::shared::Shared;

/// Counts the answer and logs it; `started` is `Some` when `access_log` is on.
pub fn answered(
    shared: &Shared,
    peer: IpAddr,
    alias: &str,
    method: &str,
    path: &str,
    status: u16,
    started: Option<Instant>,
) {
    shared.metrics.request(status);
    if let Some(started) = started {
        tracing::info!(
            %peer,
            alias,
            method,
            path = path.split('?').next().unwrap_or(""),
            status,
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
    }
}

/// When a request started, if the access log will want to know.
pub fn start(shared: &Shared) -> Option<Instant> {
    shared.config.access_log.then(Instant::now)
}
