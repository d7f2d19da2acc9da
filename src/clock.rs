//! The wall clock as every part of jrps records it: whole seconds since the
//! Unix epoch (session records, the proxy's expiries, its state file).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch; 0 for a clock set before 1970, which then reads
/// as "long ago" (expired) rather than failing.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
