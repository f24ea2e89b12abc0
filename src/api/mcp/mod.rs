//! The MCP door: an MCP server at `/mcp` over the Streamable HTTP transport (the `initialize`
//! handshake of protocol revisions 2025-03-26 to 2025-11-25), so MCP clients can ask the agent
//! fleet a question as a tool call. Tools: `ask` (`question`, optional `catalog`) → the plan's
//! answer as text (`isError` with the message when the plan fails), and `list_catalogs`. With a
//! `progressToken`, each peer call started and finished is a `notifications/progress` message on
//! the call's SSE stream. `initialize` opens a session (`Mcp-Session-Id`); later requests must
//! carry it (400 without, 404 for an unknown or expired one); `DELETE` ends it. Sessions belong to
//! the token that opened them. Like every door, a call is a plan with `/plan`'s limits, and a
//! client that goes away (or sends `notifications/cancelled`) cancels it.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::a2a::serve::{RpcError, code};
use crate::api::catalog::DEFAULT_CATALOG;
use crate::api::launch::{self, PlanGuard};
use crate::api::state::AppState;
use crate::api::{body, not_found};
use crate::planner::event::PlanEvent;
use crate::planner::request::PlanRequest;

/// Protocol revisions served, newest first (the handshake era of the MCP specification).
const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

pub mod sessions;

use self::sessions::SessionProblem;

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router.route(
        "/mcp",
        post(handle)
            .delete(end_session)
            .get(no_stream)
            .fallback(not_found),
    )
}

fn rpc_error(status: StatusCode, id: &Value, error: &RpcError) -> Response {
    body::json(status, &error.response(id))
}

fn result(id: &Value, result: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// `GET /mcp`: no server-initiated stream is offered.
async fn no_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST, DELETE")],
        "this MCP server sends messages only in answer to requests",
    )
        .into_response()
}

/// `DELETE /mcp`: ends the session (and any call still running in it).
async fn end_session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(owner) = state.inner().auth.authenticate(&headers) else {
        return unauthorized();
    };
    let id = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    match id {
        Some(id) if state.inner().mcp.close(&owner, id) => StatusCode::NO_CONTENT.into_response(),
        Some(_) => StatusCode::NOT_FOUND.into_response(),
        None => (StatusCode::BAD_REQUEST, "Mcp-Session-Id header is required").into_response(),
    }
}

fn unauthorized() -> Response {
    let mut response = rpc_error(
        StatusCode::UNAUTHORIZED,
        &Value::Null,
        &RpcError::new(
            code::INVALID_REQUEST,
            "unauthorized: send Authorization: Bearer <token>",
        ),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// A browser page on another site must not reach the door (DNS rebinding): an `Origin` is
/// accepted when CORS allows it, or when it names this very host.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    match &state.config().server.cors {
        Some(crate::config::CorsOrigins::Any) => true,
        Some(crate::config::CorsOrigins::List(list)) if list.iter().any(|o| o == origin) => true,
        _ => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = url::Url::parse(origin).ok().map(|u| match u.port() {
                Some(port) => format!("{}:{port}", u.host_str().unwrap_or("")),
                None => u.host_str().unwrap_or("").to_owned(),
            });
            host.is_some() && origin_host.as_deref() == host
        }
    }
}

/// `POST /mcp`.
async fn handle(State(state): State<AppState>, headers: HeaderMap, request_body: Body) -> Response {
    let Some(owner) = state.inner().auth.authenticate(&headers) else {
        return unauthorized();
    };
    if !origin_allowed(&state, &headers) {
        return rpc_error(
            StatusCode::FORBIDDEN,
            &Value::Null,
            &RpcError::new(code::INVALID_REQUEST, "Origin not allowed"),
        );
    }
    let raw = match body::read(&state, &headers, request_body).await {
        Ok(raw) => raw,
        Err(e) => {
            return rpc_error(
                e.status(),
                &Value::Null,
                &RpcError::new(code::INVALID_REQUEST, e.to_string()),
            );
        }
    };
    let message = match body::parse(&state, &raw, &crate::api::json::JSON_RPC_FIELDS) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                &RpcError::new(
                    code::INVALID_REQUEST,
                    "Invalid Request: one JSON-RPC message per POST (no batches)",
                ),
            );
        }
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                &RpcError::new(code::PARSE_ERROR, format!("Parse error: {e}")),
            );
        }
    };
    drop(raw);
    let method = message.get("method").and_then(Value::as_str);
    let id = message.get("id").cloned();
    let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
    let session_header = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());

    // A response or notification from the client: accepted, nothing to answer.
    let Some(id) = id.filter(|i| i.is_string() || i.is_number()) else {
        if method == Some("notifications/cancelled")
            && let (Some(session), Some(request)) = (session_header, params.get("requestId"))
        {
            let request = request
                .as_str()
                .map_or_else(|| request.to_string(), str::to_owned);
            state.inner().mcp.cancel(session, &request);
        }
        return StatusCode::ACCEPTED.into_response();
    };
    let Some(method) = method else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            &RpcError::new(
                code::INVALID_REQUEST,
                "Invalid Request: \"method\" must be a string",
            ),
        );
    };
    if method == "initialize" {
        return initialize(&state, &owner, &id, &params);
    }
    if let Some(version) = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok())
        && !PROTOCOL_VERSIONS.contains(&version)
    {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            &id,
            &RpcError::new(
                code::INVALID_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version {version}; supported: {}",
                    PROTOCOL_VERSIONS.join(", ")
                ),
            ),
        );
    }
    if !matches!(method, "ping" | "tools/list" | "tools/call") {
        return rpc_error(
            StatusCode::OK,
            &id,
            &RpcError::new(code::METHOD_NOT_FOUND, "Method not found"),
        );
    }
    let session = match state.inner().mcp.touch(&owner, session_header) {
        Ok(session) => session,
        Err(SessionProblem::Missing) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                &id,
                &RpcError::new(
                    code::INVALID_REQUEST,
                    "Bad Request: Mcp-Session-Id header is required (send initialize first)",
                ),
            );
        }
        Err(SessionProblem::Unknown) => {
            return rpc_error(
                StatusCode::NOT_FOUND,
                &id,
                &RpcError::new(
                    code::INVALID_REQUEST,
                    "Session not found: initialize a new one",
                ),
            );
        }
    };
    match method {
        "ping" => body::json(StatusCode::OK, &result(&id, &json!({}))),
        "tools/list" => body::json(StatusCode::OK, &result(&id, &tools(&state))),
        _ => call_tool(&state, &headers, &session, &id, &params).await,
    }
}

fn initialize(state: &AppState, owner: &str, id: &Value, params: &Value) -> Response {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let version = requested
        .filter(|v| PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    let session = state.inner().mcp.open(owner);
    let body = result(
        id,
        &json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "plangate", "version": env!("CARGO_PKG_VERSION")},
            "instructions": "Ask the agent fleet a question with the `ask` tool; `list_catalogs` names the catalogs it can plan over.",
        }),
    );
    let mut response = body::json(StatusCode::OK, &body);
    if let Ok(value) = HeaderValue::from_str(&session) {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

fn tools(state: &AppState) -> Value {
    let names: Vec<&str> = state.catalogs().iter().map(|c| c.name.as_str()).collect();
    json!({"tools": [
        {"name": "ask",
         "title": "Ask the agent fleet",
         "description": "Plans over a catalog of remote A2A agents and returns the answer assembled from their work.",
         "inputSchema": {"type": "object", "properties": {
            "question": {"type": "string", "description": "The question or task"},
            "catalog": {"type": "string", "enum": names, "description": "Which catalog to plan over (default: \"default\")"}},
          "required": ["question"]}},
        {"name": "list_catalogs",
         "title": "List the catalogs",
         "description": "The server-side catalogs `ask` can plan over, with their descriptions and agents.",
         "inputSchema": {"type": "object", "properties": {}}},
    ]})
}

/// A tool result holding one text.
fn text_result(text: &str, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

async fn call_tool(
    state: &AppState,
    headers: &HeaderMap,
    session: &str,
    id: &Value,
    params: &Value,
) -> Response {
    let arguments = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    match params.get("name").and_then(Value::as_str) {
        Some("list_catalogs") => {
            let list: Vec<Value> = state
                .catalogs()
                .iter()
                .map(|c| {
                    json!({"name": c.name, "description": c.description,
                    "agents": c.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>()})
                })
                .collect();
            let text = serde_json::to_string_pretty(&list).unwrap_or_default();
            body::json(StatusCode::OK, &result(id, &text_result(&text, false)))
        }
        Some("ask") => ask(state, headers, session, id, params, &arguments).await,
        other => rpc_error(
            StatusCode::OK,
            id,
            &RpcError::params(format!("Unknown tool: {}", other.unwrap_or("(no name)"))),
        ),
    }
}

async fn ask(
    state: &AppState,
    headers: &HeaderMap,
    session: &str,
    id: &Value,
    params: &Value,
    arguments: &Value,
) -> Response {
    let Some(question) = arguments
        .get("question")
        .and_then(Value::as_str)
        .filter(|q| !q.trim().is_empty())
    else {
        return body::json(
            StatusCode::OK,
            &result(
                id,
                &text_result("arguments.question: expected a non-empty string", true),
            ),
        );
    };
    let name = arguments
        .get("catalog")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_CATALOG);
    let catalogs = state.catalogs();
    let Some(catalog) = catalogs.get(name) else {
        let message = format!(
            "arguments.catalog: unknown catalog \"{name}\"; known: {}",
            catalogs.known()
        );
        return body::json(StatusCode::OK, &result(id, &text_result(&message, true)));
    };
    if let Err(e) = launch::take_place(state) {
        let status = e.status();
        let mut response = rpc_error(
            status,
            id,
            &RpcError::new(code::INTERNAL_ERROR, e.to_string()),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    }
    let request = PlanRequest::question(question.to_owned(), catalog.agents.clone());
    let launched = launch::start_for(state, headers, request);
    let request_key = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
    state
        .inner()
        .mcp
        .running(session, &request_key, Some(launched.guard.abort_handle()));
    let call = Call {
        state: state.clone(),
        session: session.to_owned(),
        request_key,
        id: id.clone(),
        events: launched.events,
        _guard: launched.guard,
        progress_token: params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_number())
            .cloned(),
        progress: 0,
        answer: String::new(),
        part: None,
        labels: crate::api::progress::CallLabels::default(),
    };
    let accepts_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if accepts_sse {
        stream(state, call)
    } else {
        let mut call = call;
        loop {
            if let Step::Result(value) = call.next().await {
                return body::json(StatusCode::OK, &value);
            }
        }
    }
}

/// One running `ask`.
struct Call {
    state: AppState,
    session: String,
    request_key: String,
    id: Value,
    events: mpsc::Receiver<Box<PlanEvent>>,
    _guard: PlanGuard,
    progress_token: Option<Value>,
    progress: u64,
    answer: String,
    part: Option<String>,
    labels: crate::api::progress::CallLabels,
}

/// What the client gets next.
enum Step {
    /// A `notifications/progress` message.
    Progress(Value),
    /// The call's JSON-RPC response: nothing follows.
    Result(Value),
}

impl Call {
    fn progress(&mut self, message: &str) -> Option<Step> {
        let token = self.progress_token.clone()?;
        self.progress += 1;
        Some(Step::Progress(
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": token, "progress": self.progress, "message": message}}),
        ))
    }

    async fn next(&mut self) -> Step {
        let mut failure: Option<String> = None;
        loop {
            let Some(event) = self.events.recv().await else {
                let text = failure.unwrap_or_else(|| "the plan was canceled".to_owned());
                return Step::Result(result(&self.id, &text_result(&text, true)));
            };
            match *event {
                PlanEvent::TaskStarted { subject, skill, .. } => {
                    let text = self.labels.started(subject, &skill);
                    if let Some(step) = self.progress(&text) {
                        return step;
                    }
                }
                PlanEvent::TaskEnded { subject, outcome } => {
                    let text = self.labels.ended(subject, &outcome);
                    if let Some(step) = self.progress(&text) {
                        return step;
                    }
                }
                PlanEvent::TextDelta { part_id, delta, .. } => {
                    if self.part.as_deref() != Some(part_id.as_str()) {
                        if self.part.is_some() {
                            self.answer.push_str("\n\n");
                        }
                        self.part = Some(part_id);
                    }
                    self.answer.push_str(&delta);
                }
                PlanEvent::Final { .. } => {
                    return Step::Result(result(&self.id, &text_result(&self.answer, false)));
                }
                PlanEvent::Error { message, code } => {
                    failure = Some(format!("the plan failed: {message} ({code})"));
                }
                PlanEvent::Done => {
                    let text = failure
                        .take()
                        .unwrap_or_else(|| "the plan ended without an answer".to_owned());
                    return Step::Result(result(&self.id, &text_result(&text, true)));
                }
                _ => {}
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.state
            .inner()
            .mcp
            .running(&self.session, &self.request_key, None);
    }
}

/// The call as an SSE stream: progress notifications, then the response.
fn stream(state: &AppState, call: Call) -> Response {
    let ticker = crate::api::sse::keepalive_ticker(state.config().server.sse_keepalive);
    let frame = |value: &Value| Bytes::from(format!("event: message\ndata: {value}\n\n"));
    let body = futures::stream::unfold(Some((call, ticker)), move |st| async move {
        let (mut call, mut ticker) = st?;
        tokio::select! {
            step = call.next() => match step {
                Step::Progress(p) => Some((Ok::<_, Infallible>(frame(&p)), Some((call, ticker)))),
                Step::Result(r) => Some((Ok(frame(&r)), None)),
            },
            _ = ticker.tick() => Some((Ok(Bytes::from_static(crate::api::sse::KEEP_ALIVE)), Some((call, ticker)))),
        }
    });
    crate::api::sse::door_stream("text/event-stream", body)
}
