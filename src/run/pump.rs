//! The event-log pump of a resumable plan: it takes the plan's events off its channel, writes
//! them as numbered frames (`id: <plan_id>:<seq>`) to the plan's log — in memory, or a Redis
//! stream any instance can read — and renews the plan's lease on the shared store while it runs.
//! It holds what must live as long as the plan (the door's guards) and ends with the plan.
//! Which frames an event becomes is the door's vocabulary, handed in as [`Frames`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::registry::Resumable;
use super::{Launched, Runs};
use crate::planner::AbortReason;
use crate::planner::event::PlanEvent;
use crate::store::events::EventLogs;
use crate::store::redis::{RedisStore, StoreError};

/// The `(event name, payload)` frames of an event, in the door's vocabulary.
pub type Frames = fn(&PlanEvent) -> Vec<(&'static str, Value)>;

/// Where a pump writes a plan's log.
#[derive(Debug)]
pub struct LogTarget {
    /// The shared store, else this instance's memory.
    pub store: Option<RedisStore>,
    /// How long the log is kept after the plan ends (`resume.retention_secs`).
    pub retention: Duration,
}

/// Writes a plan's frames, with their `id:` lines, to its log.
struct Writer<'a> {
    plan: &'a str,
    seq: usize,
    store: Option<&'a RedisStore>,
    logs: &'a EventLogs,
    retention: Duration,
    frames: Frames,
}

impl Writer<'_> {
    async fn write(&mut self, event: &PlanEvent) -> Result<(), StoreError> {
        let last = event.is_done();
        for (name, payload) in (self.frames)(event) {
            self.seq += 1;
            let frame = Bytes::from(format!(
                "id: {}:{}\nevent: {name}\ndata: {payload}\n\n",
                self.plan, self.seq
            ));
            match self.store {
                Some(store) => {
                    store
                        .append(self.plan, self.seq, &frame, last, self.retention)
                        .await?;
                }
                None => {
                    self.logs.append(self.plan, frame, last);
                }
            }
        }
        Ok(())
    }
}

impl Runs {
    /// Registers the resumable plan `plan` of `owner` and spawns its pump, which holds `hold`
    /// until the plan ends. `false` when resumable streams are off.
    pub fn pump<G: Send + 'static>(
        &self,
        plan: &str,
        owner: &str,
        launched: Launched,
        hold: G,
        target: LogTarget,
        frames: Frames,
    ) -> bool {
        let Some(registry) = self.resumable.clone() else {
            return false;
        };
        registry.register(plan, owner, launched.guard.abort_handle());
        let plan = plan.to_owned();
        self.tracker.spawn(async move {
            let Launched { events, guard } = launched;
            let _holds = (hold, guard);
            run(&registry, &plan, events, target, frames).await;
            registry.unregister(&plan);
        });
        true
    }
}

/// The pump's loop: every event to the log until `done` (or an `error` + `done` of its own when
/// the planner vanished); a store that fails aborts the plan, since nobody could read it.
async fn run(
    registry: &Arc<Resumable>,
    plan: &str,
    mut events: tokio::sync::mpsc::Receiver<Box<PlanEvent>>,
    target: LogTarget,
    frames: Frames,
) {
    let store = target.store;
    let mut writer = Writer {
        plan,
        seq: 0,
        store: store.as_ref(),
        logs: &registry.logs,
        retention: target.retention,
        frames,
    };
    let lease = store
        .as_ref()
        .map_or(Duration::from_secs(3600), |s| s.lease / 3);
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + lease, lease);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = renew.tick(), if store.is_some() => {
                if let Some(store) = &store
                    && let Err(e) = store.renew_lease(plan).await
                {
                    tracing::warn!(session_id = %plan, error = %e, "cannot renew the plan's lease");
                }
                continue;
            }
        };
        // The planner vanished without `done`: the log still ends properly.
        let vanished = event.is_none();
        let event = event.unwrap_or_else(|| {
            Box::new(PlanEvent::Error {
                message: "internal error: planner stopped unexpectedly".to_owned(),
                code: "internal",
            })
        });
        let mut written = writer.write(&event).await;
        if vanished && written.is_ok() {
            written = writer.write(&PlanEvent::Done).await;
        }
        if let Err(e) = written {
            // Nobody can read the plan any more: stop it (its readers see the outage).
            tracing::error!(session_id = %plan, error = %e, "the store failed; plan aborted");
            if let Some(abort) = registry.abort_any(plan) {
                abort.abort(AbortReason::Signal);
            }
            return;
        }
        if vanished || event.is_done() {
            return;
        }
    }
}
