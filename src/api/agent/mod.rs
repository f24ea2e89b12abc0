//! The A2A door: plangate as an A2A agent, so other agents and gateways call it the way it calls
//! its peers. JSON-RPC at `POST /a2a` (and `/a2a/`) in both dialects, chosen by the `A2A-Version`
//! header as the a2a-sdk server chooses; agent cards at `/.well-known/agent-card.json` (1.0) and
//! `/.well-known/agent.json` (v0.3); the gateway's DID document at `/did/resolve`.
//!
//! A message becomes a plan over the server-side catalog its `metadata.skillId` names (else
//! `default`): the task goes `submitted` → `working` (a status message per peer call started and
//! finished) → `completed` with one artifact holding the answer (signed with the gateway's key
//! when it has a DID), or `failed` with the plan's error. The door is an adapter: the request
//! becomes a `PlanRequest`, the planner's `PlanEvent`s become task updates.

pub mod card;
pub mod tasks;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use self::tasks::{CreateError, DoorTask};
use crate::a2a::TaskState;
use crate::a2a::jsonrpc::Dialect;
use crate::a2a::serve::{Method, RpcError, code};
use crate::api::catalog::DEFAULT_CATALOG;
use crate::api::error::ApiError;
use crate::api::launch::{self, PlanGuard};
use crate::api::state::AppState;
use crate::api::{body, not_found};
use crate::config::AuthMode;
use crate::planner::AbortReason;
use crate::planner::event::PlanEvent;
use crate::planner::request::PlanRequest;

/// The door's routes.
pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route(
            "/.well-known/agent-card.json",
            get(card_v10).fallback(not_found),
        )
        .route("/.well-known/agent.json", get(card_v03).fallback(not_found))
        .route("/a2a", post(rpc).fallback(not_found))
        .route("/a2a/", post(rpc).fallback(not_found))
        .route(
            "/did/resolve",
            get(resolve_query).post(resolve_body).fallback(not_found),
        )
        .route(
            "/a2a/did/resolve",
            get(resolve_query).post(resolve_body).fallback(not_found),
        )
}

/// The gateway's URL as this caller reached it: `a2a_server.public_url`, else `http://<Host>`.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config().a2a_server.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn card_inputs<'a>(state: &'a AppState, base_url: &'a str) -> card::CardInputs<'a> {
    card::CardInputs {
        base_url,
        catalogs: state.catalogs(),
        identity: state.identity().map(AsRef::as_ref),
        bearer: state.config().auth.mode == AuthMode::Bearer,
    }
}

async fn card_v10(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    body::json(StatusCode::OK, &card::v10(&card_inputs(&state, &base)))
}

async fn card_v03(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    body::json(StatusCode::OK, &card::v03(&card_inputs(&state, &base)))
}

/// `/did/resolve`: the gateway's DID document, as a Bindu agent answers for its own DID.
fn resolve(state: &AppState, did: Option<&str>) -> Response {
    match (state.identity(), did) {
        (Some(identity), Some(did)) if did == identity.did() => (
            [(header::CONTENT_TYPE, "application/json")],
            identity.document().to_owned(),
        )
            .into_response(),
        (_, did) => body::json(
            StatusCode::NOT_FOUND,
            &RpcError::new(
                code::INTERNAL_ERROR,
                format!("DID '{}' not found", did.unwrap_or("")),
            )
            .response(&Value::Null),
        ),
    }
}

async fn resolve_query(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    resolve(&state, query.get("did").map(String::as_str))
}

async fn resolve_body(State(state): State<AppState>, body: Bytes) -> Response {
    let did: Option<String> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("did").and_then(Value::as_str).map(str::to_owned));
    resolve(&state, did.as_deref())
}

/// A refusal: the JSON-RPC error and the HTTP status it travels with.
struct Failure {
    status: StatusCode,
    error: RpcError,
}

impl From<RpcError> for Failure {
    fn from(error: RpcError) -> Self {
        Self {
            status: StatusCode::OK,
            error,
        }
    }
}

impl Failure {
    fn respond(self, id: &Value) -> Response {
        let mut response = body::json(self.status, &self.error.response(id));
        match self.status {
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }

    /// A `/plan`-style rejection in JSON-RPC terms.
    fn from_api(e: &ApiError) -> Self {
        let code = match e {
            ApiError::InvalidJson(_) => code::PARSE_ERROR,
            ApiError::ShuttingDown | ApiError::Overloaded | ApiError::Internal(_) => {
                code::INTERNAL_ERROR
            }
            _ => code::INVALID_REQUEST,
        };
        let status = match e {
            ApiError::InvalidJson(_) => StatusCode::OK,
            other => other.status(),
        };
        Self {
            status,
            error: RpcError::new(code, e.to_string()),
        }
    }
}

/// `POST /a2a`.
async fn rpc(State(state): State<AppState>, headers: HeaderMap, request_body: Body) -> Response {
    let Some(scope) = state.inner().auth.authenticate(&headers) else {
        return Failure {
            status: StatusCode::UNAUTHORIZED,
            error: RpcError::new(
                code::INVALID_REQUEST,
                "unauthorized: send Authorization: Bearer <token>",
            ),
        }
        .respond(&Value::Null);
    };
    let raw = match body::read(&state, &headers, request_body).await {
        Ok(raw) => raw,
        Err(e) => return Failure::from_api(&e).respond(&Value::Null),
    };
    let value = match body::parse(&state, &raw, &crate::api::json::JSON_RPC_FIELDS) {
        Ok(v) => v,
        Err(e) => {
            return Failure::from(RpcError::new(
                code::PARSE_ERROR,
                format!("Parse error: {e}"),
            ))
            .respond(&Value::Null);
        }
    };
    drop(raw);
    let id = match value.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    };
    match call(&state, &scope, &headers, &value, &id).await {
        Ok(response) => response,
        Err(failure) => failure.respond(&id),
    }
}

fn result(id: &Value, result: &Value) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result});
    body::json(StatusCode::OK, &body)
}

async fn call(
    state: &AppState,
    scope: &str,
    headers: &HeaderMap,
    request: &Value,
    id: &Value,
) -> Result<Response, Failure> {
    let invalid =
        |what: &str| RpcError::new(code::INVALID_REQUEST, format!("Invalid Request: {what}"));
    let Some(envelope) = request.as_object() else {
        return Err(invalid("expected a JSON-RPC 2.0 request object").into());
    };
    if envelope.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid("\"jsonrpc\" must be \"2.0\"").into());
    }
    if id.is_null() {
        return Err(invalid(
            "\"id\" must be a string or a number (notifications are not supported)",
        )
        .into());
    }
    let Some(name) = envelope.get("method").and_then(Value::as_str) else {
        return Err(invalid("\"method\" must be a string").into());
    };
    let version = headers.get("a2a-version").and_then(|v| v.to_str().ok());
    let dialect = Dialect::of_request(version)?;
    let method = dialect.method(name)?;
    let params = match envelope.get("params") {
        Some(p @ Value::Object(_)) => p.clone(),
        None => json!({}),
        Some(_) => return Err(RpcError::params("params: expected an object").into()),
    };
    match method {
        Method::Send => {
            let immediately = dialect.returns_immediately(&params);
            let (task, mut driver) = start(state, scope, headers, dialect, &params)?;
            if immediately {
                let response = {
                    let data = task.data();
                    result(id, &dialect.task_result(&data.view(&task)))
                };
                state.inner().tracker.spawn(async move {
                    while driver.next().await.is_some_and(|u| u != Update::Final) {}
                });
                return Ok(response);
            }
            // Blocking: the caller waits for the end; a caller that goes away cancels the plan.
            while driver.next().await.is_some_and(|u| u != Update::Final) {}
            let data = task.data();
            Ok(result(id, &dialect.task_result(&data.view(&task))))
        }
        Method::Stream => {
            let (task, driver) = start(state, scope, headers, dialect, &params)?;
            Ok(stream(state, dialect, id.clone(), &task, driver))
        }
        Method::Get => {
            let task = find(state, scope, dialect, &params)?;
            let data = task.data();
            Ok(result(id, &dialect.task(&data.view(&task))))
        }
        Method::Cancel => {
            let task = find(state, scope, dialect, &params)?;
            let mut data = task.data();
            if data.is_terminal() {
                return Err(
                    RpcError::new(code::TASK_NOT_CANCELABLE, "Task cannot be canceled").into(),
                );
            }
            if let Some(abort) = data.abort.take() {
                abort.abort(AbortReason::Signal);
            }
            data.status_text = Some("canceled by the caller".to_owned());
            data.set_state(TaskState::Canceled);
            tracing::info!(task_id = %task.id, "a2a task canceled");
            Ok(result(id, &dialect.task(&data.view(&task))))
        }
    }
}

/// The caller's task named by a get or cancel.
fn find(
    state: &AppState,
    scope: &str,
    dialect: Dialect,
    params: &Value,
) -> Result<Arc<DoorTask>, RpcError> {
    let id = dialect.read_task_id(params)?;
    state
        .inner()
        .tasks
        .get(scope, &id)
        .ok_or_else(|| RpcError::new(code::TASK_NOT_FOUND, "Task not found"))
}

/// Checks a send, creates its task and starts its plan.
fn start(
    state: &AppState,
    scope: &str,
    headers: &HeaderMap,
    dialect: Dialect,
    params: &Value,
) -> Result<(Arc<DoorTask>, Driver), Failure> {
    let config = &state.inner().config;
    let message = dialect.read_message(params, config.a2a_server.max_message_bytes)?;
    let catalogs = state.catalogs();
    let catalog = match &message.skill_id {
        Some(skill) => catalogs.get(skill).ok_or_else(|| {
            RpcError::params(format!(
                "params.message.metadata.skillId: unknown skill \"{skill}\"; known: {}",
                catalogs.known()
            ))
        })?,
        None => catalogs.get(DEFAULT_CATALOG).ok_or_else(|| {
            RpcError::params(format!(
                "params.message.metadata.skillId: no skill named and no \"{DEFAULT_CATALOG}\" catalog; known: {}",
                catalogs.known()
            ))
        })?,
    };
    if let Some(task_id) = &message.task_id {
        if task_id.len() > 128 || task_id.chars().any(char::is_control) {
            return Err(RpcError::params(
                "params.message.taskId: at most 128 printable characters",
            )
            .into());
        }
        if let Some(existing) = state.inner().tasks.get(scope, task_id) {
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
            return Err(RpcError::new(code::UNSUPPORTED_OPERATION, why).into());
        }
    }
    launch::take_place(state).map_err(|e| Failure::from_api(&e))?;
    let context_id = message
        .context_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let created = state.inner().tasks.create(
        scope,
        message.task_id.clone(),
        context_id,
        (message.message_id.clone(), message.text.clone()),
    );
    let (task, history) = match created {
        Ok(created) => created,
        Err(e) => {
            launch::give_place_back(state);
            let code = match e {
                CreateError::NotFound(_) => code::TASK_NOT_FOUND,
                CreateError::Exists(_) => code::UNSUPPORTED_OPERATION,
                CreateError::Full(_) => code::INTERNAL_ERROR,
            };
            return Err(RpcError::new(code, e.to_string()).into());
        }
    };
    let request = PlanRequest {
        session_id: Some(task.context_id.clone()),
        history,
        ..PlanRequest::question(message.text.clone(), catalog.agents.clone())
    };
    tracing::info!(task_id = %task.id, catalog = %catalog.name, "a2a task started");
    let launched = launch::start_for(state, headers, request);
    task.data().abort = Some(launched.guard.abort_handle());
    let driver = Driver {
        state: state.clone(),
        task: Arc::clone(&task),
        events: launched.events,
        _guard: launched.guard,
        question: message.text,
        labels: crate::api::progress::CallLabels::default(),
        part: None,
        answer: String::new(),
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
    task: Arc<DoorTask>,
    events: mpsc::Receiver<Box<PlanEvent>>,
    _guard: PlanGuard,
    question: String,
    labels: crate::api::progress::CallLabels,
    /// The `part_id` whose text is being collected: the answer is the last step's text.
    part: Option<String>,
    answer: String,
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
            let mut data = self.task.data();
            if data.is_terminal() && !event.is_done() {
                // Canceled meanwhile: the rest of the plan is not shown.
                continue;
            }
            match *event {
                PlanEvent::Plan { .. } => {
                    data.status_text = None;
                    data.set_state(TaskState::Working);
                    return Some(Update::Status);
                }
                PlanEvent::TaskStarted { subject, skill, .. } => {
                    data.status_text = Some(self.labels.started(subject, &skill));
                    data.set_state(TaskState::Working);
                    return Some(Update::Status);
                }
                PlanEvent::TaskEnded { subject, outcome } => {
                    data.status_text = Some(self.labels.ended(subject, &outcome));
                    data.set_state(TaskState::Working);
                    return Some(Update::Status);
                }
                PlanEvent::TextDelta { part_id, delta, .. } => {
                    if self.part.as_deref() != Some(part_id.as_str()) {
                        self.part = Some(part_id);
                        self.answer.clear();
                    }
                    self.answer.push_str(&delta);
                }
                PlanEvent::Final { .. } => {
                    let answer = std::mem::take(&mut self.answer);
                    let signature = self
                        .state
                        .identity()
                        .map(|identity| identity.sign_base58(answer.as_bytes()));
                    data.artifact =
                        Some((uuid::Uuid::new_v4().to_string(), answer.clone(), signature));
                    data.status_text = None;
                    data.set_state(TaskState::Completed);
                    drop(data);
                    self.state.inner().tasks.remember(
                        &self.task,
                        std::mem::take(&mut self.question),
                        answer,
                    );
                    return Some(Update::Artifact);
                }
                PlanEvent::Error { message, code } => {
                    data.status_text = Some(format!("{message} ({code})"));
                    data.set_state(TaskState::Failed);
                }
                PlanEvent::Done => {
                    drop(data);
                    return Some(self.end());
                }
                _ => {}
            }
        }
    }

    /// The end of the plan: a task that is not terminal yet failed.
    fn end(&mut self) -> Update {
        self.ended = true;
        let mut data = self.task.data();
        if !data.is_terminal() {
            data.status_text = Some("the plan ended without an answer".to_owned());
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

/// `message/stream` / `SendStreamingMessage`: the task, then its updates, as SSE events each
/// holding one JSON-RPC response; `: keep-alive` comments while nothing happens.
fn stream(
    state: &AppState,
    dialect: Dialect,
    id: Value,
    task: &DoorTask,
    driver: Driver,
) -> Response {
    let frame = |id: &Value, result: Value| {
        Bytes::from(format!(
            "data: {}\n\n",
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        ))
    };
    let first = {
        let data = task.data();
        frame(&id, dialect.task_result(&data.view(task)))
    };
    let ticker = crate::api::sse::keepalive_ticker(state.config().server.sse_keepalive);
    let updates = futures::stream::unfold(Some((driver, ticker)), move |st| {
        let id = id.clone();
        async move {
            let (mut driver, mut ticker) = st?;
            tokio::select! {
                update = driver.next() => {
                    let update = update?;
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
                    let next = (update != Update::Final).then_some((driver, ticker));
                    Some((Ok::<_, Infallible>(bytes), next))
                }
                _ = ticker.tick() => Some((Ok(Bytes::from_static(crate::api::sse::KEEP_ALIVE)), Some((driver, ticker)))),
            }
        }
    });
    let body = futures::stream::once(async move { Ok::<_, Infallible>(first) }).chain(updates);
    crate::api::sse::door_stream("text/event-stream; charset=utf-8", body)
}
