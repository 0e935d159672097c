//! The wall clock. Only the edges read it: expiry, leases, absorbed
//! records, the time limit of counted lines. The engine never does, so the
//! same records in the same order give the same decisions.

/// Wall-clock time in epoch milliseconds.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
