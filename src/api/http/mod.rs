//! Http: the plumbing every door shares and no door owns.
//!
//! - [`body`]: a request body read within `server.body_read_timeout_ms` and
//!   `server.max_body_bytes`, parsed under the JSON budget ([`json`]), and JSON responses.
//! - [`error`]: the one error table. A core rejection ([`error::ApiError`]) decides its status,
//!   `Retry-After` and `WWW-Authenticate` here; each door only chooses its body.
//! - [`caller`]: who is calling, as admission settled it for the door.
//! - [`request_id`]: `X-Request-Id`, kept when sane, generated otherwise.
//! - [`sse`]: event-stream responses and their keep-alive.
//! - [`jsonrpc`]: the JSON-RPC 2.0 envelope the A2A and MCP doors answer with.
//! - [`links`]: the gateway's URL as a caller reached it (cards, links to files).

pub mod body;
pub mod caller;
pub mod error;
pub mod json;
pub mod jsonrpc;
pub mod links;
pub mod request_id;
pub mod sse;
