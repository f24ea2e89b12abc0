//! plangate: an HTTP gateway that answers one question with the help of many remote A2A agents.
//!
//! # Layout — one planner core, many doors
//!
//! Each module is a room that owns its types; imports run one way (`layout.json` in the shared
//! folder, checked by `layers.py`):
//!
//! - [`api`] (doors): `/plan` validates its wire into a [`planner::request::PlanRequest`],
//!   admits it ([`store::idempotency`]) and frames the plan's [`planner::event::PlanEvent`]s as
//!   SSE ([`api::frames`], [`api::sse`]); `/health`, `did.json`.
//! - [`planner`]: owns a plan from `plan` to `done`: the LLM step loop or the fan-out, tool calls
//!   through [`planner::dispatch`] (one [`planner::event::ToolOutcome`] per call), compaction,
//!   and every text written into the model's context ([`planner::render`]).
//! - [`llm`]: the OpenAI-compatible client; typed [`llm::Message`]s out, lenient chunks in.
//! - [`a2a`]: the peer client: an [`a2a::Peer`] in, send/poll/stream/cancel in both dialects,
//!   [`a2a::TaskState`] normalised once, cards, credentials, the address guard.
//! - [`identity`]: the gateway DID, request signing, verifying signed texts, Hydra.
//! - [`recipe`]: recipes as data. [`config`]: env + TOML into plain typed settings.
//!   [`store`]: what requests share across time (idempotency).
//! - [`boot`] builds the live services from a [`config::Config`] into the doors' [`AppState`];
//!   [`server`] binds, serves and drains on shutdown. [`telemetry`] is a leaf.
//!
//! Every stream ends with `done`. The contract is `spec/gateway.md` in the shared folder.

pub mod a2a;
pub mod api;
pub mod boot;
pub mod cli;
pub mod config;
pub mod demo;
pub mod example_agent;
pub mod identity;
pub mod llm;
pub mod planner;
pub mod recipe;
pub mod server;
pub mod store;
pub mod telemetry;

pub use api::state::AppState;
pub use server::{serve_on, shutdown_signal};
