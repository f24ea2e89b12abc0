//! What requests share across time (and, later, across instances): the idempotency table of
//! `/plan` and the event logs of resumable plans. The store keeps keys and bytes; it does not plan.

pub mod events;
pub mod idempotency;
pub mod redis;
