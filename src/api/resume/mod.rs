//! Resumable `/plan` streams (`GATEWAY_SSE_RESUME=on`, opt-in so the default stream stays
//! byte-compatible). Every frame carries `id: <plan_id>:<seq>` (`plan_id` is the `session_id` of
//! the `session` frame). The plan's events are written to its event log by a pump task; every
//! client — the one that started the plan, and any that come back with
//! `GET /plan/{plan_id}/events` (`Last-Event-ID` or `?after=<seq>`) — reads the log from its
//! position and then follows the live plan until `done`. A plan nobody reads any more runs on for
//! `resume.grace_secs` and is aborted after that, as a disconnect is without resume.
//! `DELETE /plan/{plan_id}` cancels a plan (its stream ends with `error` `canceled`, `done`).

pub mod registry;

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::json;

use crate::api::error::ApiError;
use crate::api::frames::frames;
use crate::api::launch::Launched;
use crate::api::not_found;
use crate::api::state::AppState;
use crate::planner::AbortReason;
use crate::planner::event::PlanEvent;
use crate::store::events::Follower;

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/plan/{plan_id}/events", get(events).fallback(not_found))
        .route(
            "/plan/{plan_id}",
            axum::routing::delete(cancel).fallback(not_found),
        )
}

fn resumable(state: &AppState) -> Option<&registry::Resumable> {
    state.inner().resumable.as_ref()
}

/// Opens the plan's event log before the plan starts.
///
/// # Errors
/// The logs are full of running plans (503 overloaded).
pub(crate) fn open_log(state: &AppState, plan: &str, owner: &str) -> Result<(), ApiError> {
    match resumable(state) {
        Some(r) => r.logs.create(plan, owner).map_err(|_| ApiError::Overloaded),
        None => Ok(()),
    }
}

/// The `/plan` response of a resumable plan: a pump writes the plan's frames to its log (and
/// holds `guard` until the plan ends), the response follows the log from the start.
pub(crate) fn respond<G: Send + 'static>(
    state: &AppState,
    plan: &str,
    owner: &str,
    launched: Launched,
    guard: G,
) -> Response {
    let Some(r) = resumable(state) else {
        return not_found_json();
    };
    r.register(plan, owner, launched.guard.abort_handle());
    let follower = r.logs.follow(plan, owner, 0);
    let pump_state = state.clone();
    let pump_plan = plan.to_owned();
    let Launched {
        mut events,
        guard: plan_guard,
    } = launched;
    state.inner().tracker.spawn(async move {
        let _holds = (guard, plan_guard);
        let Some(r) = resumable(&pump_state) else {
            return;
        };
        let mut seq = 0usize;
        let mut write = |event: &PlanEvent| {
            for (name, payload) in frames(event) {
                seq += 1;
                let frame = format!("id: {pump_plan}:{seq}\nevent: {name}\ndata: {payload}\n\n");
                r.logs
                    .append(&pump_plan, Bytes::from(frame), event.is_done());
            }
        };
        loop {
            match events.recv().await {
                Some(event) => {
                    write(&event);
                    if event.is_done() {
                        break;
                    }
                }
                None => {
                    // The planner vanished without `done`: the log still ends properly.
                    write(&PlanEvent::Error {
                        message: "internal error: planner stopped unexpectedly".to_owned(),
                        code: "internal",
                    });
                    write(&PlanEvent::Done);
                    break;
                }
            }
        }
        r.unregister(&pump_plan);
    });
    match follower {
        Some(follower) => follow(state, follower),
        None => not_found_json(),
    }
}

fn not_found_json() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": "not_found", "detail": "no such plan for this token (finished plans are kept resume.retention_secs)"}).to_string(),
    )
        .into_response()
}

/// While a client reads a plan; the last one to leave starts the grace timer.
struct Reader {
    state: AppState,
    plan: String,
}

impl Reader {
    fn new(state: &AppState, plan: &str) -> Self {
        if let Some(r) = resumable(state) {
            r.attach(plan);
        }
        Self {
            state: state.clone(),
            plan: plan.to_owned(),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let Some(r) = resumable(&self.state) else {
            return;
        };
        let Some((generation, ended)) = r.detach(&self.plan) else {
            return;
        };
        let grace = self.state.config().resume.grace;
        let state = self.state.clone();
        let plan = std::mem::take(&mut self.plan);
        self.state.inner().tracker.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                // The plan ended, or shutdown aborts it anyway.
                () = ended.cancelled() => return,
                () = state.inner().hard_stop.cancelled() => return,
            }
            if let Some(abort) = resumable(&state).and_then(|r| r.abandoned(&plan, generation)) {
                tracing::info!(session_id = %plan, "no client came back within the resume grace; plan aborted");
                abort.abort(AbortReason::Signal);
            }
        });
    }
}

/// The SSE response that reads a plan's log from a follower's position until `done`.
fn follow(state: &AppState, follower: Follower) -> Response {
    let reader = Reader::new(state, follower.plan());
    let keepalive = state
        .config()
        .server
        .sse_keepalive
        .unwrap_or(Duration::from_secs(15));
    let body = futures::stream::unfold(Some((follower, reader)), move |st| async move {
        let (mut follower, reader) = st?;
        match tokio::time::timeout(keepalive, follower.next()).await {
            Ok(Some((_, frame))) => Some((Ok::<_, Infallible>(frame), Some((follower, reader)))),
            Ok(None) => None,
            Err(_) => Some((
                Ok(Bytes::from_static(b": keep-alive\n\n")),
                Some((follower, reader)),
            )),
        }
    });
    let mut response = Response::new(axum::body::Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The position to resume after: `Last-Event-ID: <plan_id>:<seq>`, else `?after=<seq>`, else 0.
fn position(
    plan: &str,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<usize, ApiError> {
    if let Some(last) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        return last
            .strip_prefix(plan)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|seq| seq.parse().ok())
            .ok_or_else(|| {
                ApiError::InvalidJson(format!(
                    "Last-Event-ID must be \"{plan}:<seq>\" (an id of this plan's frames), got \"{last}\""
                ))
            });
    }
    match query.get("after") {
        Some(after) => after.parse().map_err(|_| {
            ApiError::InvalidJson(format!("after must be a frame number, got \"{after}\""))
        }),
        None => Ok(0),
    }
}

/// `GET /plan/{plan_id}/events`.
async fn events(
    State(state): State<AppState>,
    Path(plan): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(owner) = state.inner().auth.authenticate(&headers) else {
        return ApiError::Unauthorized.into_response();
    };
    let after = match position(&plan, &headers, &query) {
        Ok(after) => after,
        Err(e) => return e.into_response(),
    };
    match resumable(&state).and_then(|r| r.logs.follow(&plan, &owner, after)) {
        Some(follower) => follow(&state, follower),
        None => not_found_json(),
    }
}

/// `DELETE /plan/{plan_id}`.
async fn cancel(
    State(state): State<AppState>,
    Path(plan): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(owner) = state.inner().auth.authenticate(&headers) else {
        return ApiError::Unauthorized.into_response();
    };
    let Some(r) = resumable(&state) else {
        return not_found_json();
    };
    if let Some(abort) = r.abort_handle(&plan, &owner) {
        abort.abort(AbortReason::Canceled);
        tracing::info!(session_id = %plan, "plan canceled by DELETE");
        return (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"plan_id": plan, "canceled": true}).to_string(),
        )
            .into_response();
    }
    match r.logs.state(&plan, &owner) {
        Some(true) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "not_running", "detail": "the plan has already ended"}).to_string(),
        )
            .into_response(),
        _ => not_found_json(),
    }
}
