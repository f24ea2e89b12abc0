//! The A2A door: plangate as an A2A agent, so other agents and gateways call it the way it calls
//! its peers. JSON-RPC at `POST /a2a` (and `/a2a/`) in both dialects ([`rpc`]; methods in
//! [`send`] and [`tasks`]); agent cards at `/.well-known/agent-card.json` (1.0) and
//! `/.well-known/agent.json` (v0.3) ([`card`]); the gateway's DID document at `/did/resolve`
//! ([`did`]). Its tasks and conversations are its own ([`store`]); the server half of the A2A
//! wire is [`wire`].
//!
//! The door is an adapter: a message becomes a `PlanRequest`, the planner's `PlanEvent`s become
//! task updates, and the answer artifact is the one answer every door gives
//! ([`crate::run::answer::Answer`]).

pub mod card;
pub mod context;
pub mod did;
pub mod rpc;
pub mod send;
pub mod store;
pub mod tasks;
pub mod wire;
