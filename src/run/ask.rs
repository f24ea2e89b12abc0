//! The questions running plans ask their clients (`task.confirm`, `task.input_required`) and
//! the answers to them (`POST /plan/{plan_id}/tasks/{task_id}/confirm|input`), whichever
//! instance the answer arrives at.
//!
//! Each plan that can ask registers here with its owner; each of its tasks is known (an answer
//! to it is 409 "not waiting" rather than 404); a task that asks waits on a one-shot channel
//! until the answer, its timeout or the plan's end. A closed question, and every task of a plan
//! that ended, answer 409 for `retention` (the resume retention), then 404.
//!
//! With a shared store the same facts are kept on Redis (`crate::store::asks`): an answer that
//! arrives at another instance is checked and claimed there by one script and published; the
//! plan's instance hands it to the waiting task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::planner::ask::{AskKind, Asker, Reply};
use crate::store::asks::{Claim, SharedAsks};

/// A reply as the store carries it between instances.
fn reply_value(reply: &Reply) -> serde_json::Value {
    match reply {
        Reply::Approve => serde_json::json!({"approve": true}),
        Reply::Decline(reason) => serde_json::json!({"approve": false, "reason": reason}),
        Reply::Text(text) => serde_json::json!({"text": text}),
    }
}

fn reply_of(value: &serde_json::Value) -> Option<Reply> {
    if let Some(text) = value.get("text").and_then(serde_json::Value::as_str) {
        return Some(Reply::Text(text.to_owned()));
    }
    match value.get("approve").and_then(serde_json::Value::as_bool)? {
        true => Some(Reply::Approve),
        false => Some(Reply::Decline(
            value
                .get("reason")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )),
    }
}

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerRefused {
    /// No such plan of this caller, or no such task of it (404).
    Unknown,
    /// The task does not wait for this answer now (409), and why.
    NotWaiting(String),
    /// The shared store does not answer.
    Store(String),
}

#[derive(Debug)]
enum TaskAsk {
    /// A task of the plan that asks nothing now.
    Known,
    Waiting {
        kind: AskKind,
        tx: oneshot::Sender<Reply>,
    },
    /// Its question was answered or timed out.
    Closed,
}

#[derive(Debug)]
struct PlanAsks {
    owner: String,
    tasks: HashMap<String, TaskAsk>,
    /// When the plan ended (its entry is dropped `retention` later).
    ended: Option<Instant>,
    /// Whether it asked anything: the entry of a plan that never asked goes when it ends (its
    /// tasks are then unknown here, 404), so plans that ask nothing cost nothing after their end.
    asked: bool,
}

#[derive(Debug, Default)]
struct Table {
    plans: HashMap<String, PlanAsks>,
    /// Ended entries are swept when the table has doubled since the last sweep.
    sweep_at: usize,
}

/// Every plan's questions on this instance.
#[derive(Debug)]
pub struct Asks {
    table: Mutex<Table>,
    retention: Duration,
    shared: Option<SharedAsks>,
}

impl Asks {
    #[must_use]
    pub fn new(retention: Duration, shared: Option<SharedAsks>) -> Self {
        Self {
            table: Mutex::default(),
            retention,
            shared,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The asker of plan `plan` of `owner`, running until `deadline` from now; its questions
    /// close when it is dropped.
    pub(crate) fn plan(self: &Arc<Self>, plan: &str, owner: &str, deadline: Duration) -> PlanAsker {
        let mut table = self.table();
        if table.plans.len() >= table.sweep_at {
            let retention = self.retention;
            table
                .plans
                .retain(|_, p| p.ended.is_none_or(|at| at.elapsed() < retention));
            table.sweep_at = (table.plans.len() * 2).max(64);
        }
        table.plans.insert(
            plan.to_owned(),
            PlanAsks {
                owner: owner.to_owned(),
                tasks: HashMap::new(),
                ended: None,
                asked: false,
            },
        );
        PlanAsker {
            asks: Arc::clone(self),
            plan: plan.to_owned(),
            owner: owner.to_owned(),
            lifetime: deadline + self.retention,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Hands `reply` to task `task` of plan `plan` when `owner` started it and it waits for an
    /// answer of `kind`.
    ///
    /// # Errors
    /// Why not ([`AnswerRefused`]).
    pub async fn answer(
        &self,
        owner: &str,
        plan: &str,
        task: &str,
        kind: AskKind,
        reply: Reply,
    ) -> Result<(), AnswerRefused> {
        match self.answer_here(owner, plan, task, kind, reply.clone()) {
            Here::Delivered => {
                if let Some(shared) = &self.shared
                    && let Err(e) = shared.close(plan, task).await
                {
                    tracing::warn!(error = %e, "cannot mark an answered question in the store");
                }
                Ok(())
            }
            Here::Refused(refused) => Err(refused),
            Here::Elsewhere => match &self.shared {
                Some(shared) => match shared
                    .claim(owner, plan, task, kind.as_str(), &reply_value(&reply))
                    .await
                {
                    Ok(Claim::Claimed) => Ok(()),
                    Ok(Claim::Unknown) => Err(AnswerRefused::Unknown),
                    Ok(Claim::NotWaiting(why)) => Err(AnswerRefused::NotWaiting(why)),
                    Err(e) => Err(AnswerRefused::Store(e.to_string())),
                },
                None => Err(AnswerRefused::Unknown),
            },
        }
    }

    fn answer_here(
        &self,
        owner: &str,
        plan: &str,
        task: &str,
        kind: AskKind,
        reply: Reply,
    ) -> Here {
        let mut table = self.table();
        let Some(asks) = table.plans.get_mut(plan) else {
            return Here::Elsewhere;
        };
        if asks.owner != owner {
            return Here::Refused(AnswerRefused::Unknown);
        }
        let ended = asks.ended.is_some();
        let Some(state) = asks.tasks.get_mut(task) else {
            return Here::Refused(AnswerRefused::Unknown);
        };
        if ended {
            return Here::Refused(AnswerRefused::NotWaiting("its plan has ended".to_owned()));
        }
        match std::mem::replace(state, TaskAsk::Closed) {
            TaskAsk::Waiting { kind: waits, tx } if waits == kind => match tx.send(reply) {
                Ok(()) => Here::Delivered,
                Err(_) => Here::Refused(AnswerRefused::NotWaiting(
                    "its question timed out".to_owned(),
                )),
            },
            TaskAsk::Waiting { kind: waits, tx } => {
                *state = TaskAsk::Waiting { kind: waits, tx };
                Here::Refused(AnswerRefused::NotWaiting(format!(
                    "it waits for {}, not {}",
                    waits.as_str(),
                    kind.as_str()
                )))
            }
            TaskAsk::Known => {
                *state = TaskAsk::Known;
                Here::Refused(AnswerRefused::NotWaiting("it asks nothing".to_owned()))
            }
            TaskAsk::Closed => Here::Refused(AnswerRefused::NotWaiting(
                "it was answered, or its question timed out".to_owned(),
            )),
        }
    }

    /// Hands an answer claimed on another instance to the plan's waiting task here.
    fn deliver(&self, plan: &str, task: &str, reply: Reply) {
        let mut table = self.table();
        if let Some(state) = table
            .plans
            .get_mut(plan)
            .and_then(|p| p.tasks.get_mut(task))
            && let TaskAsk::Waiting { tx, .. } = std::mem::replace(state, TaskAsk::Closed)
        {
            let _ = tx.send(reply);
        }
    }

    /// Listens for answers claimed on other instances (with a shared store) on `tracker` until
    /// `stop`, handing them to this instance's waiting tasks; whether a listener was started.
    pub(crate) fn listen(
        self: &Arc<Self>,
        tracker: &tokio_util::task::TaskTracker,
        stop: tokio_util::sync::CancellationToken,
    ) -> bool {
        let Some(shared) = self.shared.clone() else {
            return false;
        };
        let asks = Arc::clone(self);
        tracker.spawn(async move {
            shared
                .listen(stop, |plan, task, reply| {
                    if let Some(reply) = reply_of(reply) {
                        asks.deliver(plan, task, reply);
                    }
                })
                .await;
        });
        true
    }

    /// Plans with an entry here (for leak checks).
    #[must_use]
    pub fn held(&self) -> usize {
        self.table().plans.len()
    }
}

enum Here {
    Delivered,
    Refused(AnswerRefused),
    /// The plan does not run (or ran) on this instance.
    Elsewhere,
}

/// One plan's way to ask (the planner's [`Asker`]).
#[derive(Debug)]
pub(crate) struct PlanAsker {
    asks: Arc<Asks>,
    plan: String,
    owner: String,
    /// How long the store keeps the plan's facts.
    lifetime: Duration,
    /// The receiving ends of the questions expected and not yet waited for.
    pending: Mutex<HashMap<String, oneshot::Receiver<Reply>>>,
}

impl PlanAsker {
    /// Sets a task's state; whether the plan had asked something before.
    fn set(&self, task: &str, state: TaskAsk) -> bool {
        let mut table = self.asks.table();
        let Some(asks) = table.plans.get_mut(&self.plan) else {
            return false;
        };
        let had_asked = asks.asked;
        asks.asked |= matches!(state, TaskAsk::Waiting { .. });
        asks.tasks.insert(task.to_owned(), state);
        had_asked
    }
}

impl Asker for PlanAsker {
    fn cannot_ask(&self) -> Option<&'static str> {
        None
    }

    fn task(&self, task_id: &str) -> BoxFuture<'_, ()> {
        // On the store only once the plan asks something (most plans never do).
        let asked = self.set(task_id, TaskAsk::Known);
        let task_id = task_id.to_owned();
        Box::pin(async move {
            if asked && let Some(shared) = &self.asks.shared {
                let tasks = [task_id];
                if let Err(e) = shared
                    .known(&self.owner, &self.plan, &tasks, self.lifetime)
                    .await
                {
                    tracing::warn!(error = %e, "cannot record a plan's task in the store");
                }
            }
        })
    }

    fn expect(&self, task_id: &str, kind: AskKind) -> BoxFuture<'_, ()> {
        let (tx, rx) = oneshot::channel();
        let first = !self.set(task_id, TaskAsk::Waiting { kind, tx });
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(task_id.to_owned(), rx);
        // The plan's first question puts the plan and every task it has so far on the store.
        let tasks: Vec<String> = if first {
            self.asks
                .table()
                .plans
                .get(&self.plan)
                .map(|p| p.tasks.keys().cloned().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let task_id = task_id.to_owned();
        Box::pin(async move {
            if let Some(shared) = &self.asks.shared {
                let recorded = if tasks.is_empty() {
                    Ok(())
                } else {
                    shared
                        .known(&self.owner, &self.plan, &tasks, self.lifetime)
                        .await
                };
                if let Err(e) = match recorded {
                    Ok(()) => shared.waiting(&self.plan, &task_id, kind.as_str()).await,
                    Err(e) => Err(e),
                } {
                    tracing::warn!(error = %e, "cannot record a question in the store; only this instance takes its answer");
                }
            }
        })
    }

    fn wait(&self, task_id: &str) -> BoxFuture<'_, Option<Reply>> {
        let rx = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(task_id);
        Box::pin(async move { rx?.await.ok() })
    }

    fn close(&self, task_id: &str) -> BoxFuture<'_, ()> {
        self.set(task_id, TaskAsk::Closed);
        let task_id = task_id.to_owned();
        Box::pin(async move {
            if let Some(shared) = &self.asks.shared
                && let Err(e) = shared.close(&self.plan, &task_id).await
            {
                tracing::warn!(error = %e, "cannot close a question in the store");
            }
        })
    }
}

impl Drop for PlanAsker {
    fn drop(&mut self) {
        // Its tasks answer 409 for the retention; the store's copy ends with its lifetime.
        let mut table = self.asks.table();
        if table.plans.get(&self.plan).is_some_and(|asks| !asks.asked) {
            table.plans.remove(&self.plan);
        } else if let Some(asks) = table.plans.get_mut(&self.plan) {
            asks.ended = Some(Instant::now());
            for state in asks.tasks.values_mut() {
                *state = TaskAsk::Closed;
            }
        }
    }
}
