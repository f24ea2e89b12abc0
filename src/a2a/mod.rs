//! Talks to remote agents over A2A JSON-RPC: send, then poll on the fast ladder until the task
//! settles, cancel on abort (spec §5). Owns per-call budgets and retries of single requests, never
//! retries of a plan. The dialect (v0.3 / v1.0) only changes request bodies and headers, so the
//! caller sees one [`A2aClient::call`] whatever the peer speaks.
//!
//! - [`peer`]: the [`Peer`] a caller hands in (endpoint, dialect, auth);
//! - [`client`]: the shared client, single JSON-RPC requests, agent cards;
//! - [`call`]: one call end to end; `poll` and `stream`: how it waits for the task;
//! - [`auth`]: credentials and the env allow-list; [`guard`]: which addresses may be reached;
//! - [`wire`] and [`jsonrpc`]: both dialects on the wire, [`wire::TaskState`] normalised once.

pub mod auth;
pub mod call;
pub mod card;
pub mod client;
pub mod error;
pub mod guard;
mod http;
pub mod jsonrpc;
pub mod peer;
mod poll;

mod stream;
pub mod wire;

pub use call::{CallOutcome, PeerCall, StatusSender, StatusUpdate};
pub use client::{A2aClient, rpc_url};
pub use error::A2aError;
pub use peer::{DialectChoice, Peer, PeerAuth};
pub use wire::{OutgoingContent, OutgoingFile, Reply, TaskState};

/// Decodes a peer's SSE stream from raw bytes without a network (fuzzing entry point).
///
/// # Errors
/// What the stream's events would fail the call with.
#[doc(hidden)]
pub fn decode_stream_for_fuzzing(bytes: &[u8], limit: usize) -> Result<Reply, A2aError> {
    stream::decode_events(bytes, limit)
}
