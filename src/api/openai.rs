//! The OpenAI-compatible door: `POST /v1/chat/completions` and `GET /v1/models`, so any OpenAI SDK
//! client can use the agent fleet as if it were one model. Model `plangate` is the `default`
//! server-side catalog, `plangate/<name>` the catalog `<name>`. The last user message is the
//! question, the earlier user and assistant messages the history, and system (or developer)
//! messages are the plan's extra instructions, at most `openai.max_system_bytes`.
//!
//! Streaming answers `chat.completion.chunk`s with the answer's text deltas; peer activity rides
//! along in a `plangate` field on chunks with an empty delta (`{"event": "task.started", …}`),
//! which clients that do not know it ignore. The door is an adapter: request → `PlanRequest`,
//! `PlanEvent`s → chunks; limits, deadlines, disconnect cancellation and metrics are `/plan`'s.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::api::catalog::DEFAULT_CATALOG;
use crate::api::error::ApiError;
use crate::api::launch::{self, PlanGuard};
use crate::api::state::AppState;
use crate::api::{body, not_found};
use crate::planner::event::PlanEvent;
use crate::planner::request::{HistoryTurn, PlanRequest, Role};

/// The model name of the default catalog; `plangate/<catalog>` names the others.
pub const MODEL_PREFIX: &str = "plangate";

/// Top-level fields read from a request (others are skipped unread).
const FIELDS: [&str; 10] = [
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "n",
    "user",
];

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/v1/chat/completions", post(chat).fallback(not_found))
        .route("/v1/models", get(models).fallback(not_found))
}

/// An OpenAI-shaped error: `{"error": {"message", "type", "param", "code"}}`.
struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl OpenAiError {
    fn invalid(param: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param),
            code: Some(code),
        }
    }

    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "Incorrect or missing API key: send Authorization: Bearer <one of the gateway's tokens>".to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }

    /// A `/plan`-style rejection in OpenAI terms.
    fn from_api(e: &ApiError) -> Self {
        let (status, kind, code) = match e {
            ApiError::Unauthorized => return Self::unauthorized(),
            ApiError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "payload_too_large",
            ),
            ApiError::BodyTimeout { .. } => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "body_timeout",
            ),
            ApiError::InvalidJson(_) | ApiError::Invalid { .. } | ApiError::ToolIdCollision(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
            ),
            ApiError::Overloaded => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "overloaded",
            ),
            ApiError::StoreUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "store_unavailable",
            ),
            ApiError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "shutting_down",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal_error",
            ),
        };
        Self {
            status,
            message: e.to_string(),
            kind,
            param: None,
            code: Some(code),
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body().to_string(),
        )
            .into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
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
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The catalog a model names.
fn catalog_of(model: &str) -> Option<&str> {
    match model.strip_prefix(MODEL_PREFIX)? {
        "" => Some(DEFAULT_CATALOG),
        rest => rest.strip_prefix('/').filter(|c| !c.is_empty()),
    }
}

/// `GET /v1/models`: `plangate` (when a default catalog exists) and `plangate/<catalog>` each.
async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.inner().auth.authenticate(&headers).is_none() {
        return OpenAiError::unauthorized().into_response();
    }
    let created = unix_now();
    let model = |id: String| json!({"id": id, "object": "model", "created": created, "owned_by": "plangate"});
    let mut data = Vec::new();
    if state.catalogs().get(DEFAULT_CATALOG).is_some() {
        data.push(model(MODEL_PREFIX.to_owned()));
    }
    data.extend(
        state
            .catalogs()
            .iter()
            .map(|c| model(format!("{MODEL_PREFIX}/{}", c.name))),
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"object": "list", "data": data}).to_string(),
    )
        .into_response()
}

/// What a chat request asks, once checked.
struct Chat {
    model: String,
    catalog: String,
    question: String,
    history: Vec<HistoryTurn>,
    instructions: Option<String>,
    stream: bool,
    include_usage: bool,
}

/// The text of a message's `content`: a string, or an array of text parts.
fn content_text(content: Option<&Value>, i: usize) -> Result<String, OpenAiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for part in parts {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("text"), Some(text)) => out.push(text),
                    _ => {
                        return Err(OpenAiError::invalid(
                            "messages",
                            "unsupported_content",
                            format!(
                                "messages[{i}].content: only text parts ({{\"type\": \"text\", \"text\": …}}) are supported"
                            ),
                        ));
                    }
                }
            }
            Ok(out.join("\n"))
        }
        Some(_) => Err(OpenAiError::invalid(
            "messages",
            "invalid_type",
            format!("messages[{i}].content: expected a string or an array of text parts"),
        )),
    }
}

fn check(state: &AppState, body: &Value) -> Result<Chat, OpenAiError> {
    let Some(body) = body.as_object() else {
        return Err(OpenAiError::invalid(
            "messages",
            "invalid_type",
            "the body must be a JSON object",
        ));
    };
    for tools in ["tools", "functions", "tool_choice", "function_call"] {
        if body.get(tools).is_some_and(|v| !v.is_null()) {
            return Err(OpenAiError::invalid(
                "tools",
                "tools_not_supported",
                format!(
                    "\"{tools}\" is not supported: plangate answers with its agent fleet, which is the tool set; remove \"{tools}\""
                ),
            ));
        }
    }
    if body
        .get("n")
        .is_some_and(|n| !n.is_null() && n.as_u64() != Some(1))
    {
        return Err(OpenAiError::invalid(
            "n",
            "invalid_value",
            "n: only 1 choice is supported",
        ));
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            OpenAiError::invalid(
                "model",
                "invalid_type",
                "model: expected a string such as \"plangate\" (GET /v1/models lists them)",
            )
        })?
        .to_owned();
    let catalogs = state.catalogs();
    let catalog = catalog_of(&model)
        .filter(|c| catalogs.get(c).is_some())
        .ok_or_else(|| OpenAiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "The model `{model}` does not exist. Models: plangate (the default catalog) and plangate/<catalog>; catalogs: {}",
                catalogs.known()
            ),
            kind: "invalid_request_error",
            param: Some("model"),
            code: Some("model_not_found"),
        })?
        .to_owned();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            OpenAiError::invalid(
                "messages",
                "invalid_type",
                "messages: expected a non-empty array",
            )
        })?;
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let text = content_text(message.get("content"), i)?;
        match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => system.push(text),
            Some("user") => turns.push((Role::User, text)),
            Some("assistant") => turns.push((Role::Assistant, text)),
            Some("tool" | "function") => {}
            _ => {
                return Err(OpenAiError::invalid(
                    "messages",
                    "invalid_value",
                    format!(
                        "messages[{i}].role: expected system, developer, user, assistant or tool"
                    ),
                ));
            }
        }
    }
    let last_is_user = messages
        .last()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("user");
    let question = match turns.pop() {
        Some((Role::User, q)) if last_is_user && !q.trim().is_empty() => q,
        _ => {
            return Err(OpenAiError::invalid(
                "messages",
                "invalid_value",
                "messages: the last message must be a user message with text (it is the question)",
            ));
        }
    };
    let instructions = system.join("\n\n");
    let limit = state.config().openai.max_system_bytes;
    if instructions.len() > limit {
        return Err(OpenAiError::invalid(
            "messages",
            "system_too_long",
            format!(
                "messages: the system messages carry {} bytes, at most {limit} are passed to the planner (openai.max_system_bytes)",
                instructions.len()
            ),
        ));
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(OpenAiError::invalid(
                "stream",
                "invalid_type",
                "stream: expected a boolean",
            ));
        }
    };
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Chat {
        model,
        catalog,
        question,
        history: turns
            .into_iter()
            .filter(|(_, text)| !text.is_empty())
            .map(|(role, text)| HistoryTurn {
                role,
                parts: vec![text],
            })
            .collect(),
        instructions: (!instructions.trim().is_empty()).then_some(instructions),
        stream,
        include_usage,
    })
}

/// `POST /v1/chat/completions`.
async fn chat(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match start(&state, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(status = %e.status, error = %e.message, "chat completion rejected");
            state
                .metrics()
                .plan_counted(crate::telemetry::metrics::PlanOutcome::Rejected);
            e.into_response()
        }
    }
}

async fn start(
    state: &AppState,
    headers: &HeaderMap,
    request_body: Body,
) -> Result<Response, OpenAiError> {
    if state.inner().auth.authenticate(headers).is_none() {
        return Err(OpenAiError::unauthorized());
    }
    let _config = &state.inner().config;
    let raw = body::read(state, headers, request_body)
        .await
        .map_err(|e| OpenAiError::from_api(&e))?;
    let value = body::parse(state, &raw, &FIELDS).map_err(|e| {
        OpenAiError::invalid(
            "messages",
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    drop(raw);
    let chat = check(state, &value)?;
    drop(value);
    let catalog = state
        .catalogs()
        .get(&chat.catalog)
        .ok_or_else(|| OpenAiError::from_api(&ApiError::Internal("catalog vanished".to_owned())))?;
    launch::take_place(state).map_err(|e| OpenAiError::from_api(&e))?;
    let request = PlanRequest {
        history: chat.history,
        instructions: chat.instructions,
        ..PlanRequest::question(chat.question, catalog.agents.clone())
    };
    let launched = launch::start_for(state, headers, request);
    let relay = Relay {
        events: launched.events,
        _guard: launched.guard,
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_now(),
        model: chat.model,
        part: None,
        labels: HashMap::new(),
    };
    if chat.stream {
        Ok(stream(state, relay, chat.include_usage))
    } else {
        complete(relay).await
    }
}

/// What one plan event means for a chat client.
enum Out {
    /// Answer text.
    Text(String),
    /// Peer activity (the `plangate` extension).
    Activity(Value),
    /// The plan succeeded: finish reason and usage.
    Finished { reason: &'static str, usage: Value },
    /// The plan failed.
    Failed { message: String, code: &'static str },
    /// The plan is over.
    Done,
}

/// Reads one plan's events.
struct Relay {
    events: mpsc::Receiver<Box<PlanEvent>>,
    _guard: PlanGuard,
    id: String,
    created: u64,
    model: String,
    /// The `part_id` of the text being relayed: a new part starts after a blank line.
    part: Option<String>,
    /// Tool call id → skill.
    labels: HashMap<String, String>,
}

impl Relay {
    async fn next(&mut self) -> Out {
        loop {
            let Some(event) = self.events.recv().await else {
                return Out::Done;
            };
            match *event {
                PlanEvent::TextDelta { part_id, delta, .. } => {
                    let text = match &self.part {
                        Some(p) if *p == part_id => delta,
                        Some(_) => format!("\n\n{delta}"),
                        None => delta,
                    };
                    self.part = Some(part_id);
                    return Out::Text(text);
                }
                PlanEvent::TaskStarted { subject, skill, .. } => {
                    self.labels.insert(subject.task_id.clone(), skill.clone());
                    return Out::Activity(
                        json!({"event": "task.started", "task_id": subject.task_id,
                        "agent": subject.agent, "skill": skill}),
                    );
                }
                PlanEvent::TaskEnded { subject, outcome } => {
                    let mut activity = json!({"event": "task.finished", "task_id": subject.task_id,
                        "agent": subject.agent, "skill": self.labels.get(&subject.task_id),
                        "state": outcome.finished_state()});
                    if let Some(error) = &outcome.error {
                        activity["error"] = json!(error);
                    }
                    return Out::Activity(activity);
                }
                PlanEvent::Final {
                    stop_reason, usage, ..
                } => {
                    let reason = match stop_reason.as_str() {
                        "length" => "length",
                        "content-filter" => "content_filter",
                        _ => "stop",
                    };
                    return Out::Finished {
                        reason,
                        usage: json!({"prompt_tokens": usage.input_tokens,
                            "completion_tokens": usage.output_tokens,
                            "total_tokens": usage.total_tokens,
                            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens}}),
                    };
                }
                PlanEvent::Error { message, code } => return Out::Failed { message, code },
                PlanEvent::Done => return Out::Done,
                _ => {}
            }
        }
    }

    fn chunk(&self, delta: &Value, finish: Option<&str>) -> Map<String, Value> {
        let mut chunk = Map::new();
        chunk.insert("id".into(), json!(self.id));
        chunk.insert("object".into(), json!("chat.completion.chunk"));
        chunk.insert("created".into(), json!(self.created));
        chunk.insert("model".into(), json!(self.model));
        chunk.insert(
            "choices".into(),
            json!([{"index": 0, "delta": delta, "finish_reason": finish}]),
        );
        chunk
    }
}

fn failure(message: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}})
}

/// `stream: false`: the whole answer in one `chat.completion`.
async fn complete(mut relay: Relay) -> Result<Response, OpenAiError> {
    let mut answer = String::new();
    let mut activity = Vec::new();
    let mut finished = None;
    loop {
        match relay.next().await {
            Out::Text(text) => answer.push_str(&text),
            Out::Activity(a) => activity.push(a),
            Out::Finished { reason, usage } => finished = Some((reason, usage)),
            Out::Failed { message, code } => {
                return Ok((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "application/json")],
                    failure(&message, code).to_string(),
                )
                    .into_response());
            }
            Out::Done => break,
        }
    }
    let Some((reason, usage)) = finished else {
        return Ok((
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            failure("the plan ended without an answer", "internal").to_string(),
        )
            .into_response());
    };
    let body = json!({
        "id": relay.id, "object": "chat.completion", "created": relay.created, "model": relay.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
            "finish_reason": reason}],
        "usage": usage,
        "plangate": {"tasks": activity},
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

fn sse(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(format!(
        "data: {}\n\n",
        serde_json::to_string(value).unwrap_or_default()
    ))
}

/// `stream: true`: chunks, `[DONE]` last; keep-alive comments while nothing happens.
fn stream(state: &AppState, relay: Relay, include_usage: bool) -> Response {
    let first = sse(&relay.chunk(&json!({"role": "assistant", "content": ""}), None));
    let ticker = crate::api::sse::keepalive_ticker(state.config().server.sse_keepalive);
    let chunks = futures::stream::unfold(Some((relay, ticker)), move |st| async move {
        let (mut relay, mut ticker) = st?;
        let out = tokio::select! {
            out = relay.next() => out,
            _ = ticker.tick() => {
                return Some((Ok::<_, Infallible>(Bytes::from_static(crate::api::sse::KEEP_ALIVE)), Some((relay, ticker))));
            }
        };
        let bytes = match out {
            Out::Text(text) => sse(&relay.chunk(&json!({"content": text}), None)),
            Out::Activity(activity) => {
                let mut chunk = relay.chunk(&json!({}), None);
                chunk.insert("plangate".into(), activity);
                sse(&chunk)
            }
            Out::Finished { reason, usage } => {
                let mut bytes = sse(&relay.chunk(&json!({}), Some(reason))).to_vec();
                if include_usage {
                    let mut chunk = relay.chunk(&json!({}), None);
                    chunk.insert("choices".into(), json!([]));
                    chunk.insert("usage".into(), usage);
                    bytes.extend_from_slice(&sse(&chunk));
                }
                Bytes::from(bytes)
            }
            Out::Failed { message, code } => sse(&failure(&message, code)),
            Out::Done => return Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), None)),
        };
        Some((Ok(bytes), Some((relay, ticker))))
    });
    let body = futures::stream::once(async move { Ok::<_, Infallible>(first) }).chain(chunks);
    crate::api::sse::door_stream("text/event-stream; charset=utf-8", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_name_catalogs() {
        assert_eq!(catalog_of("plangate"), Some("default"));
        assert_eq!(catalog_of("plangate/ops"), Some("ops"));
        assert_eq!(catalog_of("plangate/"), None);
        assert_eq!(catalog_of("gpt-4o"), None);
        assert_eq!(catalog_of("plangateway"), None);
    }
}
