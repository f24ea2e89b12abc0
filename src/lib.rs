//! plangate: an HTTP gateway that answers one question with the help of many remote A2A agents.
//!
//! # Layout — one request, end to end
//!
//! 1. [`api::plan`] authenticates `POST /plan`, validates the body ([`api::request`]), checks the
//!    catalog for tool-id collisions, admits it ([`api::idempotency`]) and opens the SSE response
//!    ([`api::sse`]) fed by one ordered channel.
//! 2. [`planner::Plan::run`] owns the plan: in LLM mode it streams steps from [`llm`], runs each
//!    step's tool calls concurrently through [`planner::dispatch`], and feeds the results back;
//!    without an LLM key it fans the question out to every skill.
//! 3. [`a2a`] talks to the peers: JSON-RPC send, polling on the fast ladder, cancel on abort,
//!    tolerant parsing of both A2A dialects, agent cards with a shared TTL cache.
//! 4. Every frame is a [`planner::event::PlanEvent`]; the stream always ends with `done`.
//!
//! [`state::AppState`] holds what requests share; [`server`] binds and drains on shutdown.
//! The contract is `spec/gateway.md` in the shared folder.

pub mod a2a;
pub mod api;
pub mod boot;
pub mod config;
pub mod demo;
pub mod example_agent;
pub mod identity;
pub mod llm;
pub mod planner;
pub mod recipe;
pub mod server;
pub mod state;
pub mod telemetry;

pub use server::{serve_on, shutdown_signal};
pub use state::AppState;
