//! Resumable `/plan` streams (`GATEWAY_SSE_RESUME=on`, opt-in so the default stream stays
//! byte-compatible). Every frame carries `id: <plan_id>:<seq>` (`plan_id` is the `plan_id` of
//! the `plan` frame, minted before the first frame). The plan's events are written to its event log by a pump task; every
//! client — the one that started the plan, and any that come back with
//! `GET /plan/{plan_id}/events` (`Last-Event-ID` or `?after=<seq>`) — reads the log from its
//! position and then follows the live plan until `done`. A plan nobody reads any more runs on for
//! `resume.grace_secs` and is aborted after that, as a disconnect is without resume.
//! `DELETE /plan/{plan_id}` cancels a plan (its stream ends with `error` `canceled`, `done`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::frames::{frames, to_wire};
use super::stream::plan_stream;
use crate::api::http::caller::Caller;
use crate::api::http::error::ApiError;
use crate::api::http::sse::{KEEP_ALIVE, keepalive_period};
use crate::planner::AbortReason;
use crate::planner::event::PlanEvent;
use crate::run::Launched;
use crate::run::pump::LogTarget;
use crate::run::registry::Resumable;
use crate::state::AppState;
use crate::store::events::Follower;

fn resumable(state: &AppState) -> Option<&Resumable> {
    state.runs().resumable().map(AsRef::as_ref)
}

/// Opens the plan's event logs before the plan starts: on the shared store when there is one
/// (what other instances read), and in this instance's memory (what its local readers follow;
/// with a shared store, a full memory only sends them to the store).
///
/// # Errors
/// The store does not answer (503 `store_unavailable`); without one, the memory logs are full
/// of running plans (503 `overloaded`).
pub(crate) async fn open_log(state: &AppState, plan: &str, owner: &str) -> Result<(), ApiError> {
    let Some(r) = resumable(state) else {
        return Ok(());
    };
    let local = r.logs.create(plan, owner);
    match state.redis() {
        Some(store) => store
            .create_log(plan, owner)
            .await
            .map_err(|e| ApiError::StoreUnavailable(e.to_string())),
        None => local.map_err(|_| ApiError::Overloaded),
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
    let target = LogTarget {
        store: state.redis().cloned(),
        retention: state.config().resume.retention,
    };
    // The first reader follows this instance's memory log from the start (it exists already);
    // the store only when memory had no room for it.
    let follower = r.logs.follow(plan, owner, 0).map(Source::Memory);
    if !state
        .runs()
        .pump(plan, owner, launched, guard, target, frames)
    {
        return not_found_json();
    }
    let source = match follower {
        Some(source) => Some(source),
        None => state.redis().map(|store| Source::Redis {
            store: store.clone(),
            plan: plan.to_owned(),
            after: 0,
        }),
    };
    match source {
        Some(source) => follow(state, plan, source),
        None => not_found_json(),
    }
}

/// Where a reader takes a plan's frames from.
enum Source {
    Memory(Follower),
    /// A Redis stream (any instance), read after frame `after`.
    Redis {
        store: crate::store::redis::RedisStore,
        plan: String,
        after: usize,
    },
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
        self.state.runs().tracker().spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(grace) => {}
                    // The plan ended, or shutdown aborts it anyway.
                    () = ended.cancelled() => return,
                    () = state.runs().hard_stop().cancelled() => return,
                }
                let Some(abort) = resumable(&state).and_then(|r| r.abandoned(&plan, generation))
                else {
                    return;
                };
                // A client may be reading it through another instance.
                if let Some(store) = state.redis()
                    && store.recently_read(&plan).await.unwrap_or(false)
                {
                    continue;
                }
                tracing::info!(session_id = %plan, "no client came back within the resume grace; plan aborted");
                abort.abort(AbortReason::Signal);
                return;
            }
        });
    }
}

/// The SSE response that reads a plan's log from a position until `done`.
fn follow(state: &AppState, plan: &str, source: Source) -> Response {
    let reader = Reader::new(state, plan);
    let keepalive = keepalive_period(state.config().server.sse_keepalive);
    let grace = state.config().resume.grace;
    let body: futures::stream::BoxStream<'static, Result<Bytes, Infallible>> = match source {
        Source::Memory(follower) => Box::pin(futures::stream::unfold(
            Some((follower, reader)),
            move |st| async move {
                let (mut follower, reader) = st?;
                match tokio::time::timeout(keepalive, follower.next()).await {
                    Ok(Some((_, frame))) => Some((Ok(frame), Some((follower, reader)))),
                    Ok(None) => None,
                    Err(_) => Some((Ok(Bytes::from_static(KEEP_ALIVE)), Some((follower, reader)))),
                }
            },
        )),
        Source::Redis { store, plan, after } => {
            let block = keepalive.min(store.lease);
            Box::pin(futures::stream::unfold(
                RedisRead {
                    store,
                    plan,
                    after,
                    stream: None,
                    pending: std::collections::VecDeque::new(),
                    over: false,
                    _reader: reader,
                },
                move |mut st| async move {
                    let bytes = st.next(block, grace).await?;
                    Some((Ok(bytes), st))
                },
            ))
        }
    };
    plan_stream(axum::body::Body::from_stream(body))
}

/// A reader of a plan's Redis stream: frames, keep-alives while it waits, and `error` + `done`
/// of its own when the plan's instance died or the store failed.
struct RedisRead {
    store: crate::store::redis::RedisStore,
    plan: String,
    after: usize,
    stream: Option<crate::store::redis::StreamReader>,
    pending: std::collections::VecDeque<crate::store::redis::Read>,
    over: bool,
    _reader: Reader,
}

impl RedisRead {
    fn ending(&mut self, message: String, code: &'static str) -> Bytes {
        self.over = true;
        let mut text = to_wire(&PlanEvent::Error { message, code });
        text.push_str(&to_wire(&PlanEvent::Done));
        Bytes::from(text)
    }

    async fn next(&mut self, block: Duration, grace: Duration) -> Option<Bytes> {
        use crate::store::redis::Read;
        if self.over {
            return None;
        }
        loop {
            if let Some(read) = self.pending.pop_front() {
                match read {
                    Read::Frame(_, frame) => return Some(frame),
                    Read::End => {
                        self.over = true;
                        return None;
                    }
                    Read::InstanceLost => {
                        return Some(self.ending(
                            "the instance running this plan stopped before it ended (its lease expired)".to_owned(),
                            "instance_lost",
                        ));
                    }
                }
            }
            if self.stream.is_none() {
                match self.store.reader(&self.plan, self.after).await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(e) => {
                        return Some(
                            self.ending(format!("store unavailable: {e}"), "store_unavailable"),
                        );
                    }
                }
            }
            let _ = self.store.mark_read(&self.plan, grace.max(block * 2)).await;
            let stream = self.stream.as_mut()?;
            match stream.next(block).await {
                Ok(reads) if reads.is_empty() => {
                    return Some(Bytes::from_static(KEEP_ALIVE));
                }
                Ok(reads) => self.pending.extend(reads),
                Err(e) => {
                    return Some(
                        self.ending(format!("store unavailable: {e}"), "store_unavailable"),
                    );
                }
            }
        }
    }
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
pub async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let owner = caller.owner();
    let after = match position(&plan, &headers, &query) {
        Ok(after) => after,
        Err(e) => return e.into_response(),
    };
    let Some(r) = resumable(&state) else {
        return not_found_json();
    };
    // A plan that runs (or ran) here is read from this instance's memory log.
    if let Some(follower) = r.logs.follow(&plan, owner, after) {
        return follow(&state, &plan, Source::Memory(follower));
    }
    match state.redis() {
        Some(store) => match store.owner(&plan).await {
            Ok(Some(o)) if o == owner => follow(
                &state,
                &plan,
                Source::Redis {
                    store: store.clone(),
                    plan: plan.clone(),
                    after,
                },
            ),
            Ok(_) => not_found_json(),
            Err(e) => ApiError::StoreUnavailable(e.to_string()).into_response(),
        },
        None => not_found_json(),
    }
}

/// `DELETE /plan/{plan_id}`.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(plan): Path<String>,
) -> Response {
    let owner = caller.owner();
    let Some(r) = resumable(&state) else {
        return not_found_json();
    };
    if let Some(store) = state.redis() {
        return match (store.owner(&plan).await, store.leased(&plan).await) {
            (Ok(Some(o)), Ok(true)) if o == owner => match store.publish_cancel(&plan).await {
                Ok(()) => canceling(&plan),
                Err(e) => ApiError::StoreUnavailable(e.to_string()).into_response(),
            },
            (Ok(Some(o)), Ok(false)) if o == owner => not_running(),
            (Err(e), _) | (_, Err(e)) => ApiError::StoreUnavailable(e.to_string()).into_response(),
            _ => not_found_json(),
        };
    }
    if let Some(abort) = r.abort_handle(&plan, owner) {
        abort.abort(AbortReason::Canceled);
        tracing::info!(session_id = %plan, "plan canceled by DELETE");
        return canceling(&plan);
    }
    match r.logs.state(&plan, owner) {
        Some(true) => not_running(),
        _ => not_found_json(),
    }
}

fn canceling(plan: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"plan_id": plan, "canceled": true}).to_string(),
    )
        .into_response()
}

fn not_running() -> Response {
    (
        StatusCode::CONFLICT,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": "not_running", "detail": "the plan has already ended"}).to_string(),
    )
        .into_response()
}
