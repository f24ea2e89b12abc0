//! Starting a plan, the same for every door: room for it (draining, `server.max_concurrent_plans`),
//! the agent cards fetched in the background, the planner spawned on the gateway's task tracker,
//! its events on a bounded channel the door reads. What the door does with the events, and when it
//! gives up on them, is the door's business: dropping the [`Launched`] plan's guard aborts it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::http::HeaderMap;
use tokio::sync::mpsc;
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

/// Starts a plan that already holds a place ([`take_place`]). `first` is queued before anything
/// the planner says (the `/plan` door's `session` frame).
pub(crate) fn start(
    state: &AppState,
    session_id: String,
    request: PlanRequest,
    request_id: String,
    card_deadline: Instant,
    first: Option<PlanEvent>,
) -> Launched {
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
    let deadline = request.preferences.timeout_ms.map_or(
        inner.config.plan.default_timeout,
        std::time::Duration::from_millis,
    );
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
    inner.tracker.spawn(
        plan.run(Arc::clone(&inner.deps), inner.hard_stop.clone())
            .instrument(tracing::Span::current()),
    );
    Launched {
        events: rx,
        guard: PlanGuard {
            state: state.clone(),
            abort,
        },
    }
}
