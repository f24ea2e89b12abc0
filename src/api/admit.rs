//! Admission: the one gate every door's request passes, in this order.
//!
//! 1. **Who calls** — here, before the door runs: the bearer token is checked once
//!    ([`crate::access`]); a stranger (or an expired key) gets 401 in the door's own body, with
//!    the status and `WWW-Authenticate` of the one error table; a key that may not use this door
//!    403, one over its `requests_per_minute` 429 with `Retry-After`. The door receives the
//!    [`Caller`] with what its key lets it use.
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

use std::sync::Arc;

use crate::access::keys::Door;
use crate::access::limits::{KeyBudget, Over};
use crate::access::{Identity, Refusal};
use crate::api::http::caller::{Caller, Permissions};
use crate::api::http::error::{ApiError, PlanRefused, refused};
use crate::planner::TokenBudget;
use crate::state::AppState;
use crate::telemetry::metrics::PlanOutcome;

/// How one door answers a core rejection (its own body).
pub(crate) type Reject = fn(ApiError) -> Response;

/// Admission for the routes of one door.
#[derive(Clone)]
pub(crate) struct Gate {
    state: AppState,
    reject: Reject,
    /// The door these routes belong to (a key may be limited to some doors).
    door: Door,
    /// Every request on these routes would start a plan: a 401 counts as a refused plan.
    starts_plans: bool,
}

impl Gate {
    /// A gate for routes where only some requests start plans (JSON-RPC doors, resume routes).
    pub(crate) fn new(state: &AppState, door: Door, reject: Reject) -> Self {
        Self {
            state: state.clone(),
            reject,
            door,
            starts_plans: false,
        }
    }

    /// A gate for routes where every request starts a plan (`POST /plan`, chat completions).
    pub(crate) fn starting_plans(state: &AppState, door: Door, reject: Reject) -> Self {
        Self {
            starts_plans: true,
            ..Self::new(state, door, reject)
        }
    }

    /// Who calls, and whether its key lets it in through this door now.
    async fn admit(&self, identity: Result<Identity, Refusal>) -> Result<Caller, ApiError> {
        let identity = identity.map_err(|refusal| match refusal {
            Refusal::Unknown => ApiError::Unauthorized,
            Refusal::Unavailable(why) => ApiError::AuthUnavailable(why),
        })?;
        let Some(key) = identity.policy else {
            return Ok(Caller::with(
                identity.owner,
                identity.label,
                Permissions::default(),
            ));
        };
        if !key.opens(self.door) {
            let doors: Vec<&str> = key.doors.iter().map(|d| d.as_str()).collect();
            return Err(ApiError::Forbidden(format!(
                "key {:?} may not use the {} door (its doors: {})",
                key.name,
                self.door.as_str(),
                doors.join(", ")
            )));
        }
        let limits = self.state.auth().limits();
        limits.request(&key).await.map_err(|over| match over {
            Over::Wait(wait) => ApiError::RateLimited {
                why: format!(
                    "key {:?} is over requests_per_minute ({})",
                    key.name,
                    key.requests_per_minute.unwrap_or_default()
                ),
                seconds: wait.seconds,
            },
            Over::Store(e) => ApiError::StoreUnavailable(e),
        })?;
        limits.budget(&key).await.map_err(|over| match over {
            Over::Wait(wait) => ApiError::BudgetExhausted {
                why: format!(
                    "key {:?} has spent its llm_tokens_per_day ({})",
                    key.name,
                    key.llm_tokens_per_day.unwrap_or_default()
                ),
                seconds: wait.seconds,
            },
            Over::Store(e) => ApiError::StoreUnavailable(e),
        })?;
        let budget = KeyBudget::of(limits, &key).map(|b| Arc::new(b) as Arc<dyn TokenBudget>);
        let permissions = Permissions {
            key: Some(key.name.clone()),
            catalogs: key.catalogs.as_ref().map(|c| c.clone().into()),
            ad_hoc_agents: key.ad_hoc_agents,
            max_concurrent_plans: key.max_concurrent_plans,
        };
        Ok(Caller::with(identity.owner, identity.label, permissions).spending(budget))
    }
}

/// The admission middleware: authenticates, hands the door its [`Caller`], counts refusals.
pub(crate) async fn admission(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let identity = gate.state.auth().authenticate(req.headers()).await;
    let label = identity
        .as_ref()
        .map_or_else(|_| "unknown".to_owned(), |i| i.label.clone());
    let response = match gate.admit(identity).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let why = e.to_string();
            let response = (gate.reject)(e);
            if gate.starts_plans {
                refused(response, why)
            } else {
                response
            }
        }
    };
    if let Some(PlanRefused(why)) = response.extensions().get::<PlanRefused>() {
        tracing::warn!(status = %response.status(), error = %why, "plan request rejected");
        gate.state
            .metrics()
            .plan_counted(PlanOutcome::Rejected, &label);
    }
    response
}
