//! Admission: the one gate every door's request passes, in this order.
//!
//! 1. **Who calls** — here, before the door runs: the bearer token is checked once
//!    ([`crate::access`]); a stranger gets 401 in the door's own body, with the status and
//!    `WWW-Authenticate` of the one error table. The door receives the [`Caller`].
//! 2. **What it may use** — the catalog the request names, looked up once
//!    ([`crate::catalog::Catalogs::find`], which names the known ones).
//! 3. **Limits** — the request's own (body size and time, JSON budget, catalog size), read by
//!    the door with [`crate::api::http::body`].
//! 4. **Capacity** — a place among `server.max_concurrent_plans`, taken only by what starts a
//!    plan ([`crate::run::Runs::place`]; an MCP `initialize`, a card or `/health` never need
//!    one), held as a guard for the plan's life.
//!
//! Steps 2 to 4 need the door's parsed request, so the door makes them; its refusals go through
//! the one error table and are marked ([`refused`]). Every marked refusal — and a 401 on a route
//! that only starts plans — is counted here, once, in `plangate_plans_total{outcome="rejected"}`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::http::caller::Caller;
use crate::api::http::error::{ApiError, PlanRefused, refused};
use crate::state::AppState;
use crate::telemetry::metrics::PlanOutcome;

/// How one door answers a core rejection (its own body).
pub(crate) type Reject = fn(ApiError) -> Response;

/// Admission for the routes of one door.
#[derive(Clone)]
pub(crate) struct Gate {
    state: AppState,
    reject: Reject,
    /// Every request on these routes would start a plan: a 401 counts as a refused plan.
    starts_plans: bool,
}

impl Gate {
    /// A gate for routes where only some requests start plans (JSON-RPC doors, resume routes).
    pub(crate) fn new(state: &AppState, reject: Reject) -> Self {
        Self {
            state: state.clone(),
            reject,
            starts_plans: false,
        }
    }

    /// A gate for routes where every request starts a plan (`POST /plan`, chat completions).
    pub(crate) fn starting_plans(state: &AppState, reject: Reject) -> Self {
        Self {
            starts_plans: true,
            ..Self::new(state, reject)
        }
    }
}

/// The admission middleware: authenticates, hands the door its [`Caller`], counts refusals.
pub(crate) async fn admission(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let response = match gate.state.auth().authenticate(req.headers()) {
        Some(owner) => {
            req.extensions_mut().insert(Caller::new(owner));
            next.run(req).await
        }
        None => {
            let response = (gate.reject)(ApiError::Unauthorized);
            if gate.starts_plans {
                refused(response, ApiError::Unauthorized)
            } else {
                response
            }
        }
    };
    if let Some(PlanRefused(why)) = response.extensions().get::<PlanRefused>() {
        tracing::warn!(status = %response.status(), error = %why, "plan request rejected");
        gate.state.metrics().plan_counted(PlanOutcome::Rejected);
    }
    response
}
