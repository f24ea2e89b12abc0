//! What requests share across time (and, later, across instances): the idempotency table of
//! `/plan`, the event logs of resumable plans and server-side conversations. The store keeps keys and bytes; it does not plan.

pub mod contexts;
pub mod counters;
pub mod events;
pub mod idempotency;
pub mod records;
pub mod redis;
pub mod sessions;
