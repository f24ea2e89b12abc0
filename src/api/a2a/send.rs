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
use super::wire::{IncomingMessage, Role as Speaker};
use crate::a2a::TaskState;
use crate::api::http::error::ApiError;
use crate::api::http::jsonrpc::{RpcError, code};
use crate::api::http::request_id::request_id;
use crate::api::http::sse::door_stream;
use crate::planner::ask::{AskKind, Reply};
use crate::planner::event::PlanEvent;
use crate::planner::request::{HistoryTurn, PlanRequest, Role};
use crate::run::answer::{Answer, CallLabels, NO_ANSWER};
use crate::run::ask::AnswerRefused;
use crate::run::{PlanGuard, StartInfo};
use crate::state::AppState;

/// `message/send`: blocking, the finished task; with `blocking: false` /
/// `returnImmediately: true`, the task at once while the plan goes on.
pub(crate) async fn send(call: &Call<'_>, params: &Value) -> Result<Response, Failure> {
    let immediately = call.dialect.returns_immediately(params);
    let message = read_message(call, params)?;
    if let Some(task) = answer_if_waiting(call, &message).await? {
        if !immediately {
            follow_to_rest(&task).await;
        }
        let data = task.data();
        return Ok(call.result(&call.dialect.task_result(&data.view(&task))));
    }
    let (task, mut driver) = open_task(call, message).await?;
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
    // Blocking: the caller waits for the end, or for a question to it (the plan goes on
    // without the caller then); a caller that goes away before cancels the plan.
    loop {
        match driver.next().await {
            None | Some(Update::Final) => break,
            Some(Update::Interrupted) => {
                background(call.state, driver);
                break;
            }
            Some(Update::Status | Update::Artifact) => {}
        }
    }
    let data = task.data();
    Ok(call.result(&call.dialect.task_result(&data.view(&task))))
}

/// Runs the rest of a plan whose caller was asked a question: its answer comes in another
/// request.
fn background(state: &AppState, mut driver: Driver) {
    state
        .runs()
        .tracker()
        .spawn(async move { while driver.next().await.is_some_and(|u| u != Update::Final) {} });
}

/// Waits until the task ends or asks its caller again.
async fn follow_to_rest(task: &DoorTask) {
    let mut changes = task.changes.subscribe();
    loop {
        {
            let data = task.data();
            if data.is_terminal() || data.question.is_some() {
                return;
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// A send on a task of the caller that waits for its answer (`input-required` with a question
/// of the plan): the answer is handed to the plan and the task goes on; `None` for any other
/// send.
async fn answer_if_waiting(
    call: &Call<'_>,
    message: &IncomingMessage,
) -> Result<Option<Arc<DoorTask>>, Failure> {
    let Some(task) = message
        .task_id
        .as_deref()
        .and_then(|id| call.tasks.get(call.owner, id))
    else {
        return Ok(None);
    };
    let question = {
        let data = task.data();
        if data.state != TaskState::InputRequired {
            return Ok(None);
        }
        data.question.clone()
    };
    let Some((plan, plan_task, kind)) = question else {
        return Ok(None);
    };
    let reply = reply_of(message, kind)?;
    call.state
        .runs()
        .asks()
        .answer(call.owner, &plan, &plan_task, kind, reply)
        .await
        .map_err(|refused| match refused {
            AnswerRefused::Unknown | AnswerRefused::NotWaiting(_) => Failure::from(RpcError::new(
                code::UNSUPPORTED_OPERATION,
                format!("Task {} no longer waits for an answer", task.id),
            )),
            AnswerRefused::Store(e) => Failure::from(ApiError::StoreUnavailable(e)),
        })?;
    {
        let mut data = task.data();
        data.history.push((
            Speaker::User,
            message.message_id.clone(),
            message.text.clone(),
        ));
        data.question = None;
        data.status_data = None;
        data.status_text = None;
        data.set_state(TaskState::Working);
    }
    task.changes.send_modify(|n| *n += 1);
    tracing::info!(task_id = %task.id, "a2a task answered");
    Ok(Some(task))
}

/// The answer a caller's message gives: to a confirmation, a data part `{"approve": bool,
/// "reason"?}` (or the text `yes` / `no`); to a question, its text.
fn reply_of(message: &IncomingMessage, kind: AskKind) -> Result<Reply, RpcError> {
    if kind == AskKind::Input {
        return Ok(Reply::Text(message.text.clone()));
    }
    if let Some(approve) = message
        .data
        .as_ref()
        .and_then(|d| d.get("approve"))
        .and_then(Value::as_bool)
    {
        let reason = message
            .data
            .as_ref()
            .and_then(|d| d.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Ok(if approve {
            Reply::Approve
        } else {
            Reply::Decline(reason.to_owned())
        });
    }
    match message.text.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "approve" => Ok(Reply::Approve),
        "no" | "n" | "decline" => Ok(Reply::Decline(String::new())),
        _ => Err(RpcError::params(
            "params.message.parts: answer the confirmation with a data part {\"approve\": true} or {\"approve\": false, \"reason\": \"…\"}",
        )),
    }
}

/// `message/stream`: the task, then its updates, as SSE events each holding one JSON-RPC
/// response; `: keep-alive` comments while nothing happens.
pub(crate) async fn stream(call: &Call<'_>, params: &Value) -> Result<Response, Failure> {
    let message = read_message(call, params)?;
    if let Some(task) = answer_if_waiting(call, &message).await? {
        return Ok(follow_stream(call, task));
    }
    let (task, driver) = open_task(call, message).await?;
    let state = call.state.clone();
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
        let state = state.clone();
        async move {
            let mut driver = driver?;
            let update = driver.next().await?;
            let bytes = {
                let task = Arc::clone(&driver.task);
                let data = task.data();
                let view = data.view(&task);
                match update {
                    Update::Status => frame(&id, dialect.status_update(&view, false)),
                    // A question ends this stream; the answer is a new send on the task.
                    Update::Final | Update::Interrupted => {
                        frame(&id, dialect.status_update(&view, true))
                    }
                    Update::Artifact => match &view.artifact {
                        Some(artifact) => frame(&id, dialect.artifact_update(&view, artifact)),
                        None => Bytes::new(),
                    },
                }
            };
            match update {
                Update::Final => Some((bytes, None)),
                Update::Interrupted => {
                    background(&state, driver);
                    Some((bytes, None))
                }
                Update::Status | Update::Artifact => Some((bytes, Some(driver))),
            }
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

/// The stream of a task after its caller answered: the task, then its updates until it ends
/// or asks again.
fn follow_stream(call: &Call<'_>, task: Arc<DoorTask>) -> Response {
    let (dialect, id) = (call.dialect, call.id.clone());
    let frame = move |result: Value| {
        Bytes::from(format!(
            "data: {}\n\n",
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        ))
    };
    let first = {
        let data = task.data();
        frame(dialect.task_result(&data.view(&task)))
    };
    let changes = task.changes.subscribe();
    let updates = futures::stream::unfold(Some((task, changes, false)), move |following| {
        let frame = frame.clone();
        async move {
            let (task, mut changes, mut artifact_sent) = following?;
            if changes.changed().await.is_err() {
                return None;
            }
            let (bytes, last) = {
                let data = task.data();
                let view = data.view(&task);
                let last = data.is_terminal() || data.question.is_some();
                let mut bytes = Vec::new();
                if let (Some(artifact), false) = (&view.artifact, artifact_sent) {
                    bytes.extend_from_slice(&frame(dialect.artifact_update(&view, artifact)));
                    artifact_sent = true;
                }
                bytes.extend_from_slice(&frame(dialect.status_update(&view, last)));
                (Bytes::from(bytes), last)
            };
            Some((bytes, (!last).then_some((task, changes, artifact_sent))))
        }
    });
    let body = futures::stream::once(std::future::ready(first)).chain(updates);
    door_stream(
        "text/event-stream; charset=utf-8",
        body,
        call.state.config().server.sse_keepalive,
    )
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

/// `params.message` of a send, read once (an answer to a waiting task, or a new task).
fn read_message(call: &Call<'_>, params: &Value) -> Result<IncomingMessage, RpcError> {
    let max_bytes = call.state.config().a2a_server.max_message_bytes;
    call.dialect.read_message(params, max_bytes)
}

/// Checks a send, creates its task and starts its plan.
async fn open_task(
    call: &Call<'_>,
    message: IncomingMessage,
) -> Result<(Arc<DoorTask>, Driver), Failure> {
    let state = call.state;
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
    let mut request = PlanRequest {
        session_id: Some(task.context_id.clone()),
        history,
        ..PlanRequest::question(message.text.clone(), catalog.agents.clone())
    };
    // An A2A caller answers questions on its task: a peer's question is passed on to it.
    request.preferences.interactive = true;
    tracing::info!(task_id = %task.id, catalog = %catalog.name, "a2a task started");
    let runs = state.runs();
    let info = StartInfo {
        budget: call.caller.budget(),
        // A question becomes the task's `input-required`; the answer is a send on the task.
        asking: crate::run::Asking::Owner(call.owner.to_owned()),
        owner: call.owner.to_owned(),
        ..StartInfo::fresh(runs, request_id(call.headers), call.caller.label())
    };
    let plan_id = info.plan_id.clone();
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
        plan_id,
        queued: std::collections::VecDeque::new(),
        files: Vec::new(),
        base_url: super::card::base_url(state, call.headers),
        answer_files: Vec::new(),
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
    /// The plan asks the caller (the task is `input-required`): a blocking send returns, a
    /// stream ends; the plan goes on.
    Interrupted,
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
    /// The plan's id (its questions are answered under it).
    plan_id: String,
    /// Questions that came while another one waited, shown in turn.
    queued: std::collections::VecDeque<PlanEvent>,
    /// The plan's files so far, and the gateway's URL as the caller reached it (for those
    /// given as links).
    files: Vec<crate::planner::files::PlanFile>,
    base_url: String,
    /// The files as the answer artifact gives them (read before the answer is set).
    answer_files: Vec<crate::a2a::OutgoingFile>,
}

impl Driver {
    /// The next update, or `None` once the task ended.
    async fn next(&mut self) -> Option<Update> {
        if self.ended {
            return None;
        }
        loop {
            // A question that waited for the one before it, once that one is over.
            let queued = if self.task.data().question.is_none() {
                self.queued.pop_front()
            } else {
                None
            };
            let event = match queued {
                Some(event) => event,
                None => match self.events.recv().await {
                    Some(event) => *event,
                    None => {
                        let update = self.end();
                        self.task.changes.send_modify(|n| *n += 1);
                        return Some(update);
                    }
                },
            };
            if matches!(event, PlanEvent::Final { .. }) {
                self.remember_shared().await;
                self.answer_files = self.answer_files().await;
            }
            let update = self.apply(event);
            self.task.changes.send_modify(|n| *n += 1);
            if let Some(update) = update {
                return Some(update);
            }
        }
    }

    /// A question of the plan: the task waits for its caller (`input-required`, with a
    /// message and a data part saying what is asked); one at a time.
    fn ask(&mut self, event: PlanEvent) -> Option<Update> {
        let mut data = self.task.data();
        if data.question.is_some() {
            drop(data);
            self.queued.push_back(event);
            return None;
        }
        let (plan_task, kind, text, about) = match event {
            PlanEvent::TaskConfirm {
                subject,
                skill,
                input,
                timeout_ms,
            } => (
                subject.task_id.clone(),
                AskKind::Confirm,
                format!(
                    "{}/{skill} waits for your yes: answer on this task with a data part {{\"approve\": true}} or {{\"approve\": false, \"reason\": \"…\"}}",
                    subject.agent
                ),
                json!({"confirm": {"task_id": subject.task_id, "agent": subject.agent,
                    "skill": skill, "input": input, "timeout_ms": timeout_ms}}),
            ),
            PlanEvent::TaskInputRequired {
                task_id,
                agent,
                prompt,
                timeout_ms,
            } => (
                task_id.clone(),
                AskKind::Input,
                format!("{agent} asks: {prompt}"),
                json!({"input": {"task_id": task_id, "agent": agent, "prompt": prompt,
                    "timeout_ms": timeout_ms}}),
            ),
            _ => return None,
        };
        data.status_text = Some(text);
        data.status_data = Some(about);
        data.question = Some((self.plan_id.clone(), plan_task, kind));
        data.set_state(TaskState::InputRequired);
        Some(Update::Interrupted)
    }

    /// Whether the call `task_id` is the one whose question the task shows (it is over now).
    fn settles_question(&self, task_id: &str) -> bool {
        let mut data = self.task.data();
        if data
            .question
            .as_ref()
            .is_some_and(|(_, asked, _)| asked == task_id)
        {
            data.question = None;
            data.status_data = None;
            return true;
        }
        data.question.is_none()
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

    /// The plan's files as the answer gives them: up to `files.inline_answer_bytes` inline,
    /// larger ones as the gateway's URL, links as they came.
    async fn answer_files(&self) -> Vec<crate::a2a::OutgoingFile> {
        use crate::a2a::{OutgoingContent, OutgoingFile};
        let inline = self.state.config().files.inline_answer_bytes;
        let mut out = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let content = match (&f.source_url, &f.url) {
                (Some(link), _) => OutgoingContent::Uri(link.clone()),
                (None, Some(url)) => {
                    let small = f.size.is_some_and(|s| s <= inline as u64);
                    let bytes = if small {
                        self.state
                            .runs()
                            .files()
                            .get(&self.plan_id, &f.file_id)
                            .await
                            .ok()
                            .flatten()
                            .map(|stored| stored.bytes)
                    } else {
                        None
                    };
                    match bytes {
                        Some(bytes) => OutgoingContent::Bytes(bytes),
                        None => OutgoingContent::Uri(format!("{}{url}", self.base_url)),
                    }
                }
                (None, None) => continue,
            };
            out.push(OutgoingFile {
                name: f.name.clone(),
                media_type: f.media_type.clone(),
                content,
            });
        }
        out
    }

    /// What one event does to the task.
    fn apply(&mut self, event: PlanEvent) -> Option<Update> {
        if let PlanEvent::TaskEnded { outcome, .. } = &event {
            self.files.extend(outcome.files.iter().cloned());
        }
        match &event {
            PlanEvent::TaskConfirm { .. } | PlanEvent::TaskInputRequired { .. } => {
                return self.ask(event);
            }
            // While a question waits, other calls' progress does not replace it on the task.
            PlanEvent::TaskStarted { subject, .. } | PlanEvent::TaskEnded { subject, .. }
                if !self.settles_question(&subject.task_id) =>
            {
                if let PlanEvent::TaskStarted { subject, skill, .. } = event {
                    self.labels.started(subject, &skill);
                }
                return None;
            }
            _ => {}
        }
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
                data.question = None;
                data.status_data = None;
                let answer = self.answer.take();
                let signature = self
                    .state
                    .identity()
                    .map(|identity| identity.sign_base58(answer.as_bytes()));
                data.artifact = Some((uuid::Uuid::new_v4().to_string(), answer.clone(), signature));
                data.files = std::mem::take(&mut self.answer_files);
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
                data.question = None;
                data.status_data = None;
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
