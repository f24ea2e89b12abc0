//! What requests share across time (and, later, across instances): the idempotency table of
//! `/plan`, the event logs of resumable plans and server-side conversations. The store keeps keys and bytes; it does not plan.

pub mod asks;
pub mod contexts;
pub mod counters;
pub mod events;
pub mod files;
pub mod idempotency;
pub mod records;
pub mod redis;
pub mod sessions;

/// A Redis key `plangate:<kind>:<hex SHA-256 of the parts>`: what callers name (owners, session
/// ids, key names) never appears in a key name, and parts cannot run into each other.
pub(crate) fn hashed_key(kind: &str, parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("plangate:{kind}:{}", hex::encode(h.finalize()))
}

/// Milliseconds of `d` for Redis expiries (`PX`, `PEXPIRE`): at least 1.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
