//! plangate: an HTTP gateway that answers one question with the help of many remote A2A agents.
//!
//! # Layout — one planner core, many doors
//!
//! Each module is a room that owns its types; imports run one way (`layout.json` in the shared
//! folder, checked by `layers.py`):
//!
//! - [`api`]: the route table and [`api::admit`], the one admission every door passes (who
//!   calls, counted refusals), then one room per door, each knowing only its wire:
//!   [`api::plan`] (`/plan` into a [`planner::request::PlanRequest`], idempotency, SSE frames,
//!   resume), [`api::a2a`] (plangate as an A2A agent), [`api::openai`] (`/v1/chat/completions`,
//!   `/v1/models`), [`api::mcp`] (`/mcp`) and [`api::ops`] (health, ready, metrics, DID
//!   document, OpenAPI, playground). What the doors share is [`api::http`]: body limits, the one
//!   error table, event streams, the JSON-RPC envelope.
//! - [`run`]: a running plan's lifecycle for every door, without HTTP: capacity places as guards,
//!   start (spawned or driven by its door), the resumable plans' registry, and the one answer
//!   every door returns ([`run::answer`]).
//! - [`access`]: who a caller is. [`catalog`]: the server-side catalogs, plain data.
//! - [`planner`]: owns a plan from `plan` to `done`: the LLM step loop or the fan-out, tool calls
//!   through [`planner::dispatch`] (one [`planner::event::ToolOutcome`] per call), compaction,
//!   every text written into the model's context ([`planner::render`]), and the request's rules
//!   ([`planner::validate`]).
//! - [`llm`]: the OpenAI-compatible client; typed [`llm::Message`]s out, lenient chunks in.
//! - [`a2a`]: the peer client: an [`a2a::Peer`] in, send/poll/stream/cancel in both dialects,
//!   [`a2a::TaskState`] normalised once, cards, credentials, the address guard.
//! - [`identity`]: the gateway DID, request signing, verifying signed texts, Hydra.
//! - [`recipe`]: recipes as data. [`config`]: env + TOML into plain typed settings.
//!   [`store`]: what requests share across time or instances (idempotency, event logs; memory or
//!   Redis).
//! - [`boot`] builds the live services from a [`config::Config`] into the [`AppState`]
//!   ([`state`]); [`server`] binds, serves and drains on shutdown. [`telemetry`] is a leaf.
//!
//! Every stream ends with `done`. The contract is `spec/gateway.md` in the shared folder.

pub mod a2a;
pub mod access;
pub mod api;
pub mod boot;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod demo;
pub mod example_agent;
pub mod identity;
pub mod llm;
pub mod planner;
pub mod recipe;
pub mod run;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;

pub use server::{serve_on, shutdown_signal};
pub use state::AppState;
