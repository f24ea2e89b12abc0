//! Integration tests: a real gateway on loopback with a scripted fake LLM and fake A2A peers,
//! plus interop tests against the real Bindu echo agent (started by `scripts/test.sh`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_pass_by_value,
    reason = "test helpers fail loudly by design"
)]

mod a2a_door;
mod ask;
mod big_catalogs;
mod bindu;
mod cli;
mod clients;
mod conversation;
mod cross_door;
mod doors;
mod files;
mod hostile;
mod http_surface;
mod humans;
mod identity;
mod js_sdk;
mod jwt;
mod keys;
mod lifecycle;
mod operators;
mod otel;
mod plan_failures;
mod plan_stream;
mod playground;
mod recipes;
mod recordings;
mod resume;
mod sessions;
mod shared_store;
mod streaming;
mod support;
