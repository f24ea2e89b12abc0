//! The event-log pump of a resumable plan: it takes the plan's events off its channel, writes
//! them as numbered frames (`id: <plan_id>:<seq>`) to the plan's logs — when there is a shared
//! store, a Redis stream any instance can read, in pipelined batches (what the plan queued
//! meanwhile goes in one round trip), then this instance's memory log, which the local readers
//! follow without a store read per frame — and renews the plan's lease while it runs. A frame a
//! local reader has seen is in the store. A write or a lease renewal that fails ends the plan
//! (`store_unavailable` for its local readers).
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

/// Events a pump writes in one batch at most (one pipelined round trip to the store).
const BATCH: usize = 64;

/// Writes a plan's frames, with their `id:` lines, to its logs: to the shared store first (one
/// pipelined round trip per batch), then to this instance's memory log, which the plan's local
/// readers follow without a store read per frame.
struct Writer<'a> {
    plan: &'a str,
    seq: usize,
    store: Option<&'a RedisStore>,
    /// The memory log holds the plan's `done`: nothing more goes there.
    ended: bool,
    logs: &'a EventLogs,
    retention: Duration,
    frames: Frames,
}

impl Writer<'_> {
    /// Writes a batch of events: to the store in one pipelined round trip, then to this
    /// instance's memory log (so a frame a local reader has seen is in the store too); `true`
    /// when it held `done`.
    async fn write(&mut self, events: &[Box<PlanEvent>]) -> Result<bool, StoreError> {
        let mut batch = Vec::new();
        let mut done = false;
        for event in events {
            done |= event.is_done();
            self.number(event, &mut batch);
        }
        if let Some(store) = self.store {
            store
                .append(self.plan, &batch, done, self.retention)
                .await?;
        }
        self.keep(batch, done);
        Ok(done)
    }

    /// The frames of `event`, numbered on from the last, with their `id:` lines.
    fn number(&mut self, event: &PlanEvent, batch: &mut Vec<(usize, Bytes)>) {
        for (name, payload) in (self.frames)(event) {
            self.seq += 1;
            let frame = Bytes::from(format!(
                "id: {}:{}\nevent: {name}\ndata: {payload}\n\n",
                self.plan, self.seq
            ));
            batch.push((self.seq, frame));
        }
    }

    fn keep(&mut self, batch: Vec<(usize, Bytes)>, done: bool) {
        if self.ended {
            return;
        }
        self.ended = done;
        let count = batch.len();
        for (i, (_, frame)) in batch.into_iter().enumerate() {
            self.logs.append(self.plan, frame, done && i + 1 == count);
        }
    }

    /// The store failed: the local readers still get an end (`error` then `done`).
    fn fail(&mut self, error: &StoreError) {
        let ending = [
            PlanEvent::Error {
                message: format!("store unavailable: {error}"),
                code: "store_unavailable",
            },
            PlanEvent::Done,
        ];
        let mut batch = Vec::new();
        for event in &ending {
            self.number(event, &mut batch);
        }
        self.keep(batch, true);
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
        ended: false,
        logs: &registry.logs,
        retention: target.retention,
        frames,
    };
    let lease = store
        .as_ref()
        .map_or(Duration::from_secs(3600), |s| s.lease / 3);
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + lease, lease);
    let mut batch: Vec<Box<PlanEvent>> = Vec::with_capacity(BATCH);
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = renew.tick(), if store.is_some() => {
                let renewed = match &store {
                    Some(store) => store.renew_lease(plan).await,
                    None => Ok(()),
                };
                match renewed {
                    Ok(()) => continue,
                    // The lease lapses: other instances will call the plan lost, so it ends
                    // here too, as when a write fails.
                    Err(e) => {
                        stop(registry, plan, &mut writer, &e);
                        return;
                    }
                }
            }
        };
        // What the plan has queued meanwhile goes in the same batch.
        let vanished = event.is_none();
        batch.extend(event);
        while !vanished && batch.len() < BATCH && !batch.last().is_some_and(|e| e.is_done()) {
            match events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        if vanished {
            // The planner vanished without `done`: the log still ends properly.
            batch.push(Box::new(PlanEvent::Error {
                message: "internal error: planner stopped unexpectedly".to_owned(),
                code: "internal",
            }));
            batch.push(Box::new(PlanEvent::Done));
        }
        match writer.write(&batch).await {
            Ok(true) => return,
            Ok(false) => batch.clear(),
            Err(e) => {
                stop(registry, plan, &mut writer, &e);
                return;
            }
        }
    }
}

/// The store failed: nobody elsewhere can read the plan any more, so it is aborted, and its
/// local readers get the outage as its end.
fn stop(registry: &Resumable, plan: &str, writer: &mut Writer<'_>, e: &StoreError) {
    tracing::error!(session_id = %plan, error = %e, "the store failed; plan aborted");
    writer.fail(e);
    if let Some(abort) = registry.abort_any(plan) {
        abort.abort(AbortReason::Signal);
    }
}
