//! The running resumable plans of this gateway: who started each, its abort switch, and how many
//! clients read it now (a plan nobody reads is aborted after the grace period).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::planner::{AbortReason, PlanAbort};
use crate::store::events::EventLogs;
use crate::store::redis::RedisStore;

#[derive(Debug)]
struct Control {
    owner: String,
    abort: Arc<PlanAbort>,
    readers: usize,
    /// Bumped each time the last reader leaves: a grace timer acts only if it is still current.
    detached: u64,
    /// Fires when the plan ends (its grace timers stop waiting).
    ended: CancellationToken,
}

/// Resumable plans and their event logs.
#[derive(Debug)]
pub struct Resumable {
    running: Mutex<HashMap<String, Control>>,
    pub(crate) logs: Arc<EventLogs>,
}

impl Resumable {
    #[must_use]
    pub fn new(logs: EventLogs) -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
            logs: Arc::new(logs),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Control>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn register(&self, plan: &str, owner: &str, abort: Arc<PlanAbort>) {
        self.lock().insert(
            plan.to_owned(),
            Control {
                owner: owner.to_owned(),
                abort,
                readers: 0,
                detached: 0,
                ended: CancellationToken::new(),
            },
        );
    }

    pub(crate) fn unregister(&self, plan: &str) {
        if let Some(control) = self.lock().remove(plan) {
            control.ended.cancel();
        }
    }

    pub(crate) fn attach(&self, plan: &str) {
        if let Some(c) = self.lock().get_mut(plan) {
            c.readers += 1;
        }
    }

    /// One reader left; when it was the last, the detach generation to hand the grace timer and
    /// the token that fires when the plan ends.
    pub(crate) fn detach(&self, plan: &str) -> Option<(u64, CancellationToken)> {
        let mut running = self.lock();
        let c = running.get_mut(plan)?;
        c.readers = c.readers.saturating_sub(1);
        (c.readers == 0).then(|| {
            c.detached += 1;
            (c.detached, c.ended.clone())
        })
    }

    /// The abort switch, when the plan still has no reader since detach generation `generation`.
    pub(crate) fn abandoned(&self, plan: &str, generation: u64) -> Option<Arc<PlanAbort>> {
        self.lock()
            .get(plan)
            .filter(|c| c.readers == 0 && c.detached == generation)
            .map(|c| Arc::clone(&c.abort))
    }

    /// The abort switch of `owner`'s running plan.
    pub(crate) fn abort_handle(&self, plan: &str, owner: &str) -> Option<Arc<PlanAbort>> {
        self.lock()
            .get(plan)
            .filter(|c| c.owner == owner)
            .map(|c| Arc::clone(&c.abort))
    }

    /// The abort switch of a plan running here, whoever started it (a cancel that came through
    /// the store, whose sender checked the owner).
    pub(crate) fn abort_any(&self, plan: &str) -> Option<Arc<PlanAbort>> {
        self.lock().get(plan).map(|c| Arc::clone(&c.abort))
    }

    /// Running resumable plans (for leak checks).
    #[must_use]
    pub fn running(&self) -> usize {
        self.lock().len()
    }
}

impl Resumable {
    /// Listens for cancels sent through the shared store (`DELETE` on any instance) on
    /// `tracker` until `stop`, aborting the named plans that run here.
    pub(crate) fn listen_for_cancels(
        self: &Arc<Self>,
        store: RedisStore,
        tracker: &tokio_util::task::TaskTracker,
        stop: CancellationToken,
    ) {
        let registry = Arc::clone(self);
        tracker.spawn(async move {
            store
                .listen_for_cancels(stop, |plan| {
                    if let Some(abort) = registry.abort_any(plan) {
                        tracing::info!(session_id = %plan, "plan canceled through the store");
                        abort.abort(AbortReason::Canceled);
                    }
                })
                .await;
        });
    }
}
