//! `message/send` / `SendMessage` and `message/stream` / `SendStreamingMessage`: a message
//! becomes a task and a plan over the server-side catalog its `metadata.skillId` names (else
//! `default`). The task goes `submitted` → `working` (a status message per peer call started and
//! finished) → `completed` with one artifact holding the answer (signed with the gateway's key
//! when it has a DID), or `failed` with the plan's error.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::context::{Call, Failure};
use super::store::{CreateError, DoorTask, TaskStore};
use crate::a2a::TaskState;
use crate::api::http::error::ApiError;
use crate::api::http::jsonrpc::{RpcError, code};
use crate::api::http::request_id::request_id;
use crate::api::http::sse::door_stream;
use crate::planner::event::PlanEvent;
use crate::planner::request::{HistoryTurn, PlanRequest, Role};
use crate::run::answer::{Answer, CallLabels, NO_ANSWER};
use crate::run::{PlanGuard, StartInfo};
use crate::state::AppState;

/// `message/send`: blocking, the finished task; with `blocking: false` /
/// `returnImmediately: true`, the task at once while the plan goes on.
pub(crate) async fn send(call: &Call<'_>, params: &Value) -> Result<Response, Failure> {
    let immediately = call.dialect.returns_immediately(params);
    let (task, mut driver) = open_task(call, params).await?;
    if immediately {
        let response = {
            let data = task.data();
            call.result(&call.dialect.task_result(&data.view(&task)))
        };
        call.state
            .runs()
            .tracker()
            .spawn(async move { while driver.next().await.is_some_and(|u| u != Update::Final) {} });
        return Ok(response);
    }
    // Blocking: the caller waits for the end; a caller that goes away cancels the plan.
    while driver.next().await.is_some_and(|u| u != Update::Final) {}
    let data = task.data();
    Ok(call.result(&call.dialect.task_result(&data.view(&task))))
}

/// `message/stream`: the task, then its updates, as SSE events each holding one JSON-RPC
/// response; `: keep-alive` comments while nothing happens.
pub(crate) async fn stream(call: &Call<'_>, params: &Value) -> Result<Response, Failure> {
    let (task, driver) = open_task(call, params).await?;
    let (dialect, id) = (call.dialect, call.id.clone());
    let frame = |id: &Value, result: Value| {
        Bytes::from(format!(
            "data: {}\n\n",
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        ))
    };
    let first = {
        let data = task.data();
        frame(&id, dialect.task_result(&data.view(&task)))
    };
    let updates = futures::stream::unfold(Some(driver), move |driver| {
        let id = id.clone();
        async move {
            let mut driver = driver?;
            let update = driver.next().await?;
            let bytes = {
                let task = Arc::clone(&driver.task);
                let data = task.data();
                let view = data.view(&task);
                match update {
                    Update::Status => frame(&id, dialect.status_update(&view, false)),
                    Update::Final => frame(&id, dialect.status_update(&view, true)),
                    Update::Artifact => match &view.artifact {
                        Some(artifact) => frame(&id, dialect.artifact_update(&view, artifact)),
                        None => Bytes::new(),
                    },
                }
            };
            Some((bytes, (update != Update::Final).then_some(driver)))
        }
    });
    let body = futures::stream::once(std::future::ready(first)).chain(updates);
    let keepalive = call.state.config().server.sse_keepalive;
    Ok(door_stream(
        "text/event-stream; charset=utf-8",
        body,
        keepalive,
    ))
}

/// A `taskId` the caller chose: printable, at most 128 characters, and not one of its tasks.
fn check_task_id(tasks: &TaskStore, owner: &str, task_id: &str) -> Result<(), RpcError> {
    if task_id.len() > 128 || task_id.chars().any(char::is_control) {
        return Err(RpcError::params(
            "params.message.taskId: at most 128 printable characters",
        ));
    }
    if let Some(existing) = tasks.get(owner, task_id) {
        let data = existing.data();
        let why = if data.is_terminal() {
            format!(
                "Task {task_id} is in terminal state: {}",
                data.state.as_str()
            )
        } else {
            format!(
                "Task {task_id} is still running; wait for it or send a new message without taskId"
            )
        };
        return Err(RpcError::new(code::UNSUPPORTED_OPERATION, why));
    }
    Ok(())
}

/// Checks a send, creates its task and starts its plan.
async fn open_task(call: &Call<'_>, params: &Value) -> Result<(Arc<DoorTask>, Driver), Failure> {
    let state = call.state;
    let max_bytes = state.config().a2a_server.max_message_bytes;
    let message = call.dialect.read_message(params, max_bytes)?;
    let catalog = state
        .catalogs()
        .find(message.skill_id.as_deref())
        .map_err(|unknown| {
            RpcError::params(format!(
                "params.message.metadata.skillId: {}",
                unknown.describe("skill")
            ))
        })?;
    if let Some(task_id) = &message.task_id {
        check_task_id(call.tasks, call.owner, task_id)?;
    }
    call.caller.may_use_catalog(&catalog.name)?;
    let runs = state.runs();
    let place = runs
        .place_for_caller(
            call.caller.plan_limit(),
            crate::run::Runs::hold_lease(runs.limits().default_timeout),
        )
        .await
        .map_err(ApiError::from)?;
    let context_id = message
        .context_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (task, history) = call
        .tasks
        .create(
            call.owner,
            message.task_id.clone(),
            context_id,
            (message.message_id.clone(), message.text.clone()),
        )
        .map_err(|e| {
            let code = match e {
                CreateError::NotFound(_) => code::TASK_NOT_FOUND,
                CreateError::Exists(_) => code::UNSUPPORTED_OPERATION,
                CreateError::Full(_) => code::INTERNAL_ERROR,
            };
            RpcError::new(code, e.to_string())
        })?;
    // With a shared store the context's turns live there, so any instance continues it.
    let history = match state.runs().shared_contexts() {
        Some(shared) => shared
            .history(call.owner, &task.context_id)
            .await
            .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?
            .into_iter()
            .map(|spoken| HistoryTurn {
                role: if spoken.role == "user" {
                    Role::User
                } else {
                    Role::Assistant
                },
                parts: vec![spoken.text],
            })
            .collect(),
        None => history,
    };
    let request = PlanRequest {
        session_id: Some(task.context_id.clone()),
        history,
        ..PlanRequest::question(message.text.clone(), catalog.agents.clone())
    };
    tracing::info!(task_id = %task.id, catalog = %catalog.name, "a2a task started");
    let runs = state.runs();
    let info = StartInfo {
        budget: call.caller.budget(),
        asking: crate::run::Asking::CannotAsk("this client cannot be asked"),
        ..StartInfo::fresh(runs, request_id(call.headers), call.caller.label())
    };
    let launched = runs.start(place, request, info);
    task.data().abort = Some(launched.guard.abort_handle());
    let driver = Driver {
        state: state.clone(),
        tasks: Arc::clone(call.tasks),
        task: Arc::clone(&task),
        events: launched.events,
        _guard: launched.guard,
        question: message.text,
        owner: call.owner.to_owned(),
        labels: CallLabels::default(),
        answer: Answer::default(),
        ended: false,
    };
    Ok((task, driver))
}

/// What a plan event changed, for a streaming caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Update {
    /// The status (state or status message) changed.
    Status,
    /// The answer artifact is there.
    Artifact,
    /// The task ended: nothing follows.
    Final,
}

/// Turns one plan's events into its task's updates. Dropping it before the end (the caller of a
/// blocking or streaming send went away) cancels the plan and the task.
struct Driver {
    state: AppState,
    tasks: Arc<TaskStore>,
    task: Arc<DoorTask>,
    events: mpsc::Receiver<Box<PlanEvent>>,
    _guard: PlanGuard,
    question: String,
    /// The caller (its contexts are its own).
    owner: String,
    labels: CallLabels,
    answer: Answer,
    ended: bool,
}

impl Driver {
    /// The next update, or `None` once the task ended.
    async fn next(&mut self) -> Option<Update> {
        if self.ended {
            return None;
        }
        loop {
            let Some(event) = self.events.recv().await else {
                return Some(self.end());
            };
            if matches!(*event, PlanEvent::Final { .. }) {
                self.remember_shared().await;
            }
            if let Some(update) = self.apply(*event) {
                return Some(update);
            }
        }
    }

    /// On a shared store, the exchange joins its context before the task shows as completed:
    /// a caller's next message, on any instance, sees it.
    async fn remember_shared(&self) {
        let Some(shared) = self.state.runs().shared_contexts() else {
            return;
        };
        if self.task.data().is_terminal() {
            return;
        }
        if let Err(e) = shared
            .remember(
                &self.owner,
                &self.task.context_id,
                &self.question,
                self.answer.text(),
            )
            .await
        {
            tracing::warn!(task_id = %self.task.id, error = %e, "cannot keep the exchange in its shared context");
        }
    }

    /// What one event does to the task.
    fn apply(&mut self, event: PlanEvent) -> Option<Update> {
        let mut data = self.task.data();
        if data.is_terminal() && !event.is_done() {
            // Canceled meanwhile: the rest of the plan is not shown.
            return None;
        }
        match event {
            PlanEvent::Plan { .. } => {
                data.status_text = None;
                data.set_state(TaskState::Working);
                Some(Update::Status)
            }
            PlanEvent::TaskStarted { subject, skill, .. } => {
                data.status_text = Some(self.labels.started(subject, &skill));
                data.set_state(TaskState::Working);
                Some(Update::Status)
            }
            PlanEvent::TaskEnded { subject, outcome } => {
                data.status_text = Some(self.labels.ended(subject, &outcome));
                data.set_state(TaskState::Working);
                Some(Update::Status)
            }
            PlanEvent::TextDelta { part_id, delta, .. } => {
                self.answer.push(&part_id, &delta);
                None
            }
            PlanEvent::Final { .. } => {
                let answer = self.answer.take();
                let signature = self
                    .state
                    .identity()
                    .map(|identity| identity.sign_base58(answer.as_bytes()));
                data.artifact = Some((uuid::Uuid::new_v4().to_string(), answer.clone(), signature));
                data.status_text = None;
                data.set_state(TaskState::Completed);
                drop(data);
                if self.state.runs().shared_contexts().is_none() {
                    self.tasks
                        .remember(&self.task, std::mem::take(&mut self.question), answer);
                }
                Some(Update::Artifact)
            }
            PlanEvent::Error { message, code } => {
                data.status_text = Some(format!("{message} ({code})"));
                data.set_state(TaskState::Failed);
                None
            }
            PlanEvent::Done => {
                drop(data);
                Some(self.end())
            }
            _ => None,
        }
    }

    /// The end of the plan: a task that is not terminal yet failed.
    fn end(&mut self) -> Update {
        self.ended = true;
        let mut data = self.task.data();
        if !data.is_terminal() {
            data.status_text = Some(NO_ANSWER.to_owned());
            data.set_state(TaskState::Failed);
        }
        Update::Final
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let mut data = self.task.data();
        if !data.is_terminal() {
            data.status_text = Some("canceled: the caller went away".to_owned());
            data.set_state(TaskState::Canceled);
        }
    }
}
