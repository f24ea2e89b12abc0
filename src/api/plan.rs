//! `POST /plan` (spec §1.4): authenticate, read and validate the body, check the catalog, admit
//! (idempotency, shutdown, overload), then open the SSE stream and hand the plan to the planner.
//! No planner logic lives here.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::launch;
use super::{request, sse};
use crate::api::state::AppState;
use crate::planner::event::PlanEvent;
use crate::planner::tools::check_collisions;
use crate::store::idempotency::{Admission, Idempotency, Ticket};
use crate::telemetry::metrics::PlanOutcome;

/// Lives as long as the plan's stream: its drop ends the idempotency entry's flight. Paired with
/// the plan guard, which then aborts the plan if it still runs (a disconnect) and gives its place
/// back.
struct StreamGuard {
    state: AppState,
    ticket: Entry,
}

/// Where the plan's idempotency entry lives.
enum Entry {
    Local(Ticket),
    /// On Redis: the scoped key, the plan, and whether it is a header key (it lingers).
    Shared {
        key: String,
        session_id: String,
        header: bool,
    },
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        match &self.ticket {
            Entry::Local(ticket) => self.state.inner().idempotency.end(ticket),
            Entry::Shared {
                key,
                session_id,
                header,
            } => {
                let Some(store) = self.state.inner().redis.clone() else {
                    return;
                };
                let linger = header.then_some(self.state.config().plan.idempotency_ttl);
                let (key, session_id) = (key.clone(), session_id.clone());
                self.state.inner().tracker.spawn(async move {
                    if let Err(e) = store.end_key(&key, &session_id, linger).await {
                        tracing::warn!(error = %e, "cannot end the idempotency entry in the store");
                    }
                });
            }
        }
    }
}

/// The request id the middleware settled on (its span carries it too).
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// `POST /plan`.
pub async fn plan(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match admit(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(status = %e.status(), error = %e, "plan request rejected");
            state.metrics().plan_counted(PlanOutcome::Rejected);
            e.into_response()
        }
    }
}

/// Catalog limits (`plan.max_agents`, `plan.max_skills`): one request cannot ask for thousands
/// of tools or fan out to thousands of peers.
fn check_catalog_size(
    request: &crate::planner::request::PlanRequest,
    limits: &crate::config::PlanConfig,
) -> Result<(), ApiError> {
    let agents = request.agents.len();
    let skills: usize = request.agents.iter().map(|a| a.skills.len()).sum();
    let mut issues = Vec::new();
    if agents > limits.max_agents {
        issues.push(request::Issue {
            path: "agents".to_owned(),
            message: format!(
                "Too big: at most {} agents per request (plan.max_agents), got {agents}",
                limits.max_agents
            ),
        });
    }
    if skills > limits.max_skills {
        issues.push(request::Issue {
            path: "agents".to_owned(),
            message: format!(
                "Too big: at most {} skills per request over all agents (plan.max_skills), got {skills}",
                limits.max_skills
            ),
        });
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(issues))
    }
}

/// The request with the agents of the catalog it names (if any) before its own.
///
/// # Errors
/// An unknown catalog (400 naming the known ones).
pub(crate) fn with_catalog(
    state: &AppState,
    body: request::PlanBody,
) -> Result<crate::planner::request::PlanRequest, ApiError> {
    let request::PlanBody {
        mut request,
        catalog,
    } = body;
    if let Some(name) = catalog {
        let catalogs = state.catalogs();
        let catalog = catalogs
            .get(&name)
            .ok_or_else(|| ApiError::invalid(vec![catalogs.unknown("catalog", &name)]))?;
        let own = std::mem::take(&mut request.agents);
        request.agents = catalog.agents.iter().cloned().chain(own).collect();
    }
    Ok(request)
}

async fn admit(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let scope = state
        .inner()
        .auth
        .authenticate(headers)
        .ok_or(ApiError::Unauthorized)?;
    let raw = super::body::read(state, headers, body).await?;
    let value = super::body::parse(state, &raw, &super::json::PLAN_FIELDS)?;
    let body = request::validate_body(&value).map_err(ApiError::invalid)?;
    drop(value);
    let request = with_catalog(state, body)?;
    check_catalog_size(&request, &state.inner().config.plan)?;
    let card_deadline = Instant::now() + state.inner().config.a2a.card_budget;
    check_collisions(&request.agents).map_err(ApiError::ToolIdCollision)?;

    let idem_header = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let key = Idempotency::key(&scope, idem_header, &raw);
    let session_id = uuid::Uuid::new_v4().to_string();
    let admission = match &state.inner().redis {
        None => match state
            .inner()
            .idempotency
            .admit(&key, &session_id, || launch::take_place(state))
        {
            Admission::Duplicate {
                session_id,
                in_flight,
            } => Admission::Duplicate {
                session_id,
                in_flight,
            },
            Admission::Refused(e) => Admission::Refused(e),
            Admission::Registered(ticket) => Admission::Registered(Entry::Local(ticket)),
        },
        Some(store) => match store.admit(&key, &session_id).await {
            Ok(Some(duplicate)) => Admission::Duplicate {
                session_id: duplicate.session_id,
                in_flight: duplicate.in_flight,
            },
            Ok(None) => match launch::take_place(state) {
                Ok(()) => Admission::Registered(Entry::Shared {
                    key: key.clone(),
                    session_id: session_id.clone(),
                    header: idem_header.is_some_and(|h| !h.is_empty()),
                }),
                Err(e) => {
                    let _ = store.end_key(&key, &session_id, None).await;
                    Admission::Refused(e)
                }
            },
            Err(e) => Admission::Refused(ApiError::StoreUnavailable(e.to_string())),
        },
    };
    let ticket = match admission {
        Admission::Duplicate {
            session_id,
            in_flight,
        } => {
            let message = if in_flight {
                "Plan with identical body is in flight; not re-running."
            } else {
                "Plan with identical body recently completed (within idempotency TTL)."
            };
            return Ok(sse::fixed(&[
                PlanEvent::Session {
                    session_id: session_id.clone(),
                    external_session_id: request.session_id.clone(),
                    created: false,
                },
                PlanEvent::Duplicate {
                    session_id,
                    in_flight,
                    message: message.to_owned(),
                },
                PlanEvent::Done,
            ]));
        }
        Admission::Refused(e) => return Err(e),
        Admission::Registered(ticket) => ticket,
    };

    let resume = state.config().resume.enabled;
    let ticket = StreamGuard {
        state: state.clone(),
        ticket,
    };
    if resume && let Err(e) = super::resume::open_log(state, &session_id, &scope).await {
        // Dropping the guard ends the idempotency entry.
        drop(ticket);
        launch::give_place_back(state);
        return Err(e);
    }
    let session = PlanEvent::Session {
        session_id: session_id.clone(),
        external_session_id: request.session_id.clone(),
        created: true,
    };
    let guard = ticket;
    if resume {
        // A resumable plan outlives its first reader: it runs on the tracker.
        let launched = launch::start(
            state,
            session_id.clone(),
            request,
            request_id(headers),
            card_deadline,
            Some(session),
        );
        return Ok(super::resume::respond(
            state,
            &session_id,
            &scope,
            launched,
            guard,
        ));
    }
    let (launched, driven) = launch::start_driven(
        state,
        session_id,
        request,
        request_id(headers),
        card_deadline,
        Some(session),
    );
    Ok(sse::response(
        launched.events,
        state.inner().config.server.sse_keepalive,
        (guard, launched.guard),
        driven,
    ))
}
