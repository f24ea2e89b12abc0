//! What requests share across time (and, later, across instances): today the idempotency
//! table of `/plan`. The store keeps keys and bytes; it does not plan.

pub mod idempotency;
