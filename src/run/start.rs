//! Starting a plan, the same for every door: the agent cards fetched in the background, the
//! planner spawned on the gateway's task tracker (or handed to the door to drive,
//! [`Runs::start_driven`]), its events on a bounded channel the door reads. What the door does
//! with the events, and when it gives up on them, is the door's business: dropping the
//! [`Launched`] plan's guard aborts it and gives its place back.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::place::Place;
use super::{Runs, StartInfo};
use crate::planner::event::PlanEvent;
use crate::planner::request::PlanRequest;
use crate::planner::{AbortReason, Emitter, Plan, PlanAbort, PlanStart};

/// Events buffered between the planner and a slow reader before the planner waits.
const CHANNEL_CAPACITY: usize = 64;

/// A running plan as its door holds it.
#[derive(Debug)]
pub struct Launched {
    pub events: mpsc::Receiver<Box<PlanEvent>>,
    pub guard: PlanGuard,
}

/// Aborts the plan (as a client disconnect) and gives its place back when dropped; a no-op abort
/// once the plan has finished.
#[derive(Debug)]
pub struct PlanGuard {
    abort: Arc<PlanAbort>,
    /// Given back after the abort (fields drop after `drop`).
    _place: Place,
}

impl PlanGuard {
    /// The plan's abort switch (for a door's own cancel).
    #[must_use]
    pub fn abort_handle(&self) -> Arc<PlanAbort> {
        Arc::clone(&self.abort)
    }
}

impl Drop for PlanGuard {
    fn drop(&mut self) {
        self.abort.abort(AbortReason::Signal);
    }
}

/// A plan's whole run, for whoever drives it.
type PlanRun = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A plan its door drives (polls) itself. A fallback task on the tracker takes the plan over
/// when the door may no longer be polling it: on an abort (the client went away, a cancel), at
/// the deadline and at shutdown. A client that stops reading stops its connection from polling
/// the response body, and the plan must still end at its deadline and unwind (peer cancels).
pub struct DrivenPlan {
    slot: Arc<std::sync::Mutex<Option<PlanRun>>>,
    finished: CancellationToken,
}

impl std::fmt::Debug for DrivenPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrivenPlan").finish_non_exhaustive()
    }
}

impl DrivenPlan {
    /// Polls the plan while the door drives it; ready once it has finished or the fallback has
    /// taken it over (either way the door stops polling it).
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
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

impl Runs {
    /// Starts a plan that holds `place` on the gateway's task tracker.
    pub fn start(&self, place: Place, request: PlanRequest, info: StartInfo) -> Launched {
        let (launched, run) = self.prepare(place, request, info);
        self.tracker.spawn(run);
        launched
    }

    /// Like [`Runs::start`], but the door drives the plan: the `/plan` door polls it inside the
    /// response body, so a relayed token is read, framed and written in one task instead of
    /// being handed from the planner's task to the connection's.
    pub fn start_driven(
        &self,
        place: Place,
        request: PlanRequest,
        info: StartInfo,
    ) -> (Launched, DrivenPlan) {
        let deadline = self.deadline_of(&request);
        let (launched, run) = self.prepare(place, request, info);
        let slot = Arc::new(std::sync::Mutex::new(Some(run)));
        let finished = CancellationToken::new();
        let fallback = {
            let (slot, finished) = (Arc::clone(&slot), finished.clone());
            let aborted = launched.guard.abort.token.clone();
            let hard_stop = self.hard_stop.clone();
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
        self.tracker.spawn(fallback);
        (launched, DrivenPlan { slot, finished })
    }

    /// Builds a plan that holds `place`; returns it with its run for a driver.
    fn prepare(&self, place: Place, request: PlanRequest, info: StartInfo) -> (Launched, PlanRun) {
        // Agent cards load in the background and never delay the first event.
        let mut seen = HashSet::new();
        for agent in &request.agents {
            if seen.insert(agent.endpoint.as_str()) {
                self.deps
                    .a2a
                    .prefetch_card(&agent.endpoint, self.limits.card_budget);
            }
        }
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        if let Some(first) = info.first {
            let _ = tx.try_send(Box::new(first));
        }
        let abort = Arc::new(PlanAbort::default());
        let deadline = self.deadline_of(&request);
        let asker: Arc<dyn crate::planner::ask::Asker> = match info.asking {
            super::Asking::Owner(owner) => {
                Arc::new(self.asks.plan(&info.plan_id, &owner, deadline))
            }
            super::Asking::CannotAsk(why) => Arc::new(crate::planner::ask::CannotAsk(why)),
        };
        let kept = Arc::new(super::files::KeptFiles {
            store: Arc::clone(&self.files),
            plan_id: info.plan_id.clone(),
            owner: info.owner,
            lease: deadline + self.limits.file_retention + std::time::Duration::from_secs(30),
            kept: std::sync::atomic::AtomicBool::new(false),
        });
        let keeper: Arc<dyn crate::planner::files::FileKeeper> = Arc::clone(&kept) as _;
        let plan = Plan::new(
            PlanStart {
                session_id: info.session_id,
                plan_id: info.plan_id,
                request,
                deadline,
                card_deadline: info.card_deadline,
                max_concurrent_calls: self.limits.max_concurrent_calls,
                request_id: info.request_id,
                caller: info.caller,
                budget: info.budget,
                asker,
                confirm_timeout: self.limits.confirm_timeout,
                files: (keeper, self.limits.file_caps),
            },
            &self.deps,
            Emitter::observed(tx, info.observer),
            Arc::clone(&abort),
        );
        self.metrics.plan_started();
        // The plan counts as one of the tracker's tasks however it is driven (shutdown waits for
        // it, `live_tasks` shows it).
        let tracked = self.tracker.token();
        let deps = Arc::clone(&self.deps);
        let hard_stop = self.hard_stop.clone();
        // The plan runs in the request's span: its log lines carry the request id.
        let run = Box::pin(
            async move {
                let _tracked = tracked;
                plan.run(deps, hard_stop).await;
                // From now on the plan's files are kept `files.retention_secs`.
                kept.finish().await;
            }
            .instrument(tracing::Span::current()),
        );
        let launched = Launched {
            events: rx,
            guard: PlanGuard {
                abort,
                _place: place,
            },
        };
        (launched, run)
    }
}
