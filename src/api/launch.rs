//! Starting a plan, the same for every door: room for it (draining, `server.max_concurrent_plans`),
//! the agent cards fetched in the background, the planner spawned on the gateway's task tracker
//! (or handed to the door to drive, [`start_driven`]), its events on a bounded channel the door
//! reads. What the door does with the events, and when it gives up on them, is the door's
//! business: dropping the [`Launched`] plan's guard aborts it.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::HeaderMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::planner::event::PlanEvent;
use crate::planner::request::PlanRequest;
use crate::planner::{AbortReason, Emitter, Plan, PlanAbort, PlanStart};

/// Events buffered between the planner and a slow reader before the planner waits.
const CHANNEL_CAPACITY: usize = 64;

/// Takes one of the `server.max_concurrent_plans` places, unless the gateway is draining.
///
/// # Errors
/// 503 `shutting_down` or `overloaded`.
pub(crate) fn take_place(state: &AppState) -> Result<(), ApiError> {
    let inner = state.inner();
    if inner.draining.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let max = inner.config.server.max_concurrent_plans;
    if max > 0 && inner.open_plans.load(Ordering::SeqCst) >= max {
        return Err(ApiError::Overloaded);
    }
    inner.open_plans.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Gives back a place taken with [`take_place`] for a plan that was not started after all.
pub(crate) fn give_place_back(state: &AppState) {
    state.inner().open_plans.fetch_sub(1, Ordering::SeqCst);
}

/// A running plan as its door holds it.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) events: mpsc::Receiver<Box<PlanEvent>>,
    pub(crate) guard: PlanGuard,
}

/// Aborts the plan (as a client disconnect) and gives its place back when dropped; a no-op abort
/// once the plan has finished.
#[derive(Debug)]
pub(crate) struct PlanGuard {
    state: AppState,
    abort: Arc<PlanAbort>,
}

impl PlanGuard {
    /// The plan's abort switch (for a door's own cancel).
    pub(crate) fn abort_handle(&self) -> Arc<PlanAbort> {
        Arc::clone(&self.abort)
    }
}

impl Drop for PlanGuard {
    fn drop(&mut self) {
        self.abort.abort(AbortReason::Signal);
        self.state.inner().open_plans.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts a plan for a door other than `/plan`: a fresh session id, the request's id, the agent
/// cards' budget from now, no frame of the door's own first.
pub(crate) fn start_for(state: &AppState, headers: &HeaderMap, request: PlanRequest) -> Launched {
    start(
        state,
        uuid::Uuid::new_v4().to_string(),
        request,
        crate::api::plan::request_id(headers),
        Instant::now() + state.config().a2a.card_budget,
        None,
    )
}

/// A plan's whole run, for whoever drives it.
pub(crate) type PlanRun = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a plan that already holds a place ([`take_place`]) on the gateway's task tracker.
/// `first` is queued before anything the planner says (the `/plan` door's `session` frame).
pub(crate) fn start(
    state: &AppState,
    session_id: String,
    request: PlanRequest,
    request_id: String,
    card_deadline: Instant,
    first: Option<PlanEvent>,
) -> Launched {
    let (launched, run) = prepare(state, session_id, request, request_id, card_deadline, first);
    state.inner().tracker.spawn(run);
    launched
}

/// A plan its door drives (polls) itself. A fallback task on the tracker takes the plan over
/// when the door may no longer be polling it: on an abort (the client went away, a cancel), at
/// the deadline and at shutdown. A client that stops reading stops its connection from polling
/// the response body, and the plan must still end at its deadline and unwind (peer cancels).
pub(crate) struct DrivenPlan {
    slot: Arc<std::sync::Mutex<Option<PlanRun>>>,
    finished: CancellationToken,
}

impl DrivenPlan {
    /// Polls the plan while the door drives it; ready once it has finished or the fallback has
    /// taken it over (either way the door stops polling it).
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        // Busy only while the fallback takes the plan.
        let Ok(mut slot) = self.slot.try_lock() else {
            return Poll::Pending;
        };
        let Some(run) = slot.as_mut() else {
            return Poll::Ready(());
        };
        if run.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        *slot = None;
        self.finished.cancel();
        Poll::Ready(())
    }
}

impl Drop for DrivenPlan {
    fn drop(&mut self) {
        // The door stopped driving: if the plan has not finished, the door's guard aborts it
        // and the fallback unwinds it.
        if self.slot.lock().map_or(true, |slot| slot.is_none()) {
            self.finished.cancel();
        }
    }
}

/// Like [`start`], but the door drives the plan: the `/plan` door polls it inside the response
/// body, so a relayed token is read, framed and written in one task instead of being handed from
/// the planner's task to the connection's (see `sse.rs`).
pub(crate) fn start_driven(
    state: &AppState,
    session_id: String,
    request: PlanRequest,
    request_id: String,
    card_deadline: Instant,
    first: Option<PlanEvent>,
) -> (Launched, DrivenPlan) {
    let deadline = plan_deadline(state, &request);
    let (launched, run) = prepare(state, session_id, request, request_id, card_deadline, first);
    let inner = state.inner();
    let slot = Arc::new(std::sync::Mutex::new(Some(run)));
    let finished = CancellationToken::new();
    let fallback = {
        let (slot, finished) = (Arc::clone(&slot), finished.clone());
        let aborted = launched.guard.abort.token.clone();
        let hard_stop = inner.hard_stop.clone();
        async move {
            tokio::select! {
                biased;
                () = finished.cancelled() => return,
                () = aborted.cancelled() => {}
                () = hard_stop.cancelled() => {}
                () = tokio::time::sleep(deadline) => {}
            }
            let run = slot.lock().ok().and_then(|mut slot| slot.take());
            if let Some(run) = run {
                run.await;
            }
        }
    };
    inner.tracker.spawn(fallback);
    (launched, DrivenPlan { slot, finished })
}

/// The plan's deadline: `preferences.timeout_ms`, else `plan.default_timeout`.
fn plan_deadline(state: &AppState, request: &PlanRequest) -> std::time::Duration {
    request.preferences.timeout_ms.map_or(
        state.inner().config.plan.default_timeout,
        std::time::Duration::from_millis,
    )
}

/// Builds a plan that already holds a place; returns it with its run for a driver.
fn prepare(
    state: &AppState,
    session_id: String,
    request: PlanRequest,
    request_id: String,
    card_deadline: Instant,
    first: Option<PlanEvent>,
) -> (Launched, PlanRun) {
    let inner = state.inner();
    // Agent cards load in the background and never delay the first event.
    let mut seen = HashSet::new();
    for agent in &request.agents {
        if seen.insert(agent.endpoint.as_str()) {
            inner
                .deps
                .a2a
                .prefetch_card(&agent.endpoint, inner.config.a2a.card_budget);
        }
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    if let Some(first) = first {
        let _ = tx.try_send(Box::new(first));
    }
    let abort = Arc::new(PlanAbort::default());
    let deadline = plan_deadline(state, &request);
    let plan = Plan::new(
        PlanStart {
            session_id,
            request,
            deadline,
            card_deadline,
            max_concurrent_calls: inner.config.plan.max_concurrent_calls,
            request_id,
        },
        &inner.deps,
        Emitter::new(tx),
        Arc::clone(&abort),
    );
    // The plan runs in the request's span: its log lines carry the request id.
    inner.metrics.plan_started();
    // The plan counts as one of the tracker's tasks however it is driven (shutdown waits for it,
    // `live_tasks` shows it).
    let tracked = inner.tracker.token();
    let deps = Arc::clone(&inner.deps);
    let hard_stop = inner.hard_stop.clone();
    let run = Box::pin(
        async move {
            let _tracked = tracked;
            plan.run(deps, hard_stop).await;
        }
        .instrument(tracing::Span::current()),
    );
    let launched = Launched {
        events: rx,
        guard: PlanGuard {
            state: state.clone(),
            abort,
        },
    };
    (launched, run)
}
