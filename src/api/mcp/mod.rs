//! The MCP door: an MCP server at `/mcp` over the Streamable HTTP transport (the `initialize`
//! handshake of protocol revisions 2025-03-26 to 2025-11-25), so MCP clients can ask the agent
//! fleet a question as a tool call.
//!
//! - [`transport`]: `POST` (one JSON-RPC message), `DELETE` (end the session), `GET` (no server
//!   stream), the `Origin` check against DNS rebinding, protocol versions, method dispatch.
//! - [`sessions`]: `initialize` opens a session (`Mcp-Session-Id`) of the caller's; later
//!   requests must carry it (400 without, 404 for an unknown or expired one).
//! - [`tools`]: `ask` (`question`, optional `catalog`) → the plan's answer as text (`isError`
//!   with the message when the plan fails), and `list_catalogs`. With a `progressToken`, each
//!   peer call started and finished is a `notifications/progress` message on the call's SSE
//!   stream. Like every door, a call is a plan with `/plan`'s limits, and a client that goes
//!   away (or sends `notifications/cancelled`) cancels it.
//! - [`error`]: the door's refusals, each mapped to its status once.

pub mod error;
pub mod sessions;
pub mod tools;
pub mod transport;
