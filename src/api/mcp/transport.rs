//! The Streamable HTTP transport of `/mcp`: one JSON-RPC message per `POST`, answered with JSON
//! or, for a tool call that accepts it, an SSE stream; `DELETE` ends the session; `GET` offers
//! no server-initiated stream. Notifications and responses from the client are accepted with
//! 202. Every request but `initialize` must name a session of the caller's.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::McpError;
use super::sessions::McpSessions;
use super::tools;
use crate::api::http::body;
use crate::api::http::caller::Caller;
use crate::api::http::jsonrpc;
use crate::config::CorsOrigins;
use crate::state::AppState;

/// Protocol revisions served, newest first (the handshake era of the MCP specification).
const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
const SESSION_HEADER: &str = "mcp-session-id";
/// The fields of a message the door reads: a request's, and a response's to its own
/// `elicitation/create`.
const MESSAGE_FIELDS: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];
const VERSION_HEADER: &str = "mcp-protocol-version";

/// What a client may ask once it has a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Ping,
    ListTools,
    CallTool,
}

impl Method {
    fn parse(name: &str) -> Result<Self, McpError> {
        match name {
            "ping" => Ok(Self::Ping),
            "tools/list" => Ok(Self::ListTools),
            "tools/call" => Ok(Self::CallTool),
            _ => Err(McpError::MethodNotFound),
        }
    }
}

/// `GET /mcp`: no server-initiated stream is offered.
pub async fn no_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST, DELETE")],
        "this MCP server sends messages only in answer to requests",
    )
        .into_response()
}

/// `DELETE /mcp`: ends the session (and any call still running in it).
pub async fn end_session(
    Extension(caller): Extension<Caller>,
    Extension(sessions): Extension<Arc<McpSessions>>,
    headers: HeaderMap,
) -> Response {
    let id = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    let Some(id) = id else {
        return (StatusCode::BAD_REQUEST, "Mcp-Session-Id header is required").into_response();
    };
    match sessions.close(caller.owner(), id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => McpError::from(e).respond(&Value::Null),
    }
}

/// A browser page on another site must not reach the door (DNS rebinding): an `Origin` is
/// accepted when CORS allows it, or when it names this very host.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    match &state.config().server.cors {
        Some(CorsOrigins::Any) => true,
        Some(CorsOrigins::List(list)) if list.iter().any(|o| o == origin) => true,
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
pub async fn handle(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(sessions): Extension<Arc<McpSessions>>,
    headers: HeaderMap,
    request_body: Body,
) -> Response {
    let message = match read(&state, &headers, request_body).await {
        Ok(message) => message,
        Err(e) => return e.respond(&Value::Null),
    };
    let method = message.get("method").and_then(Value::as_str);
    let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
    let session = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    // A response or notification from the client: accepted, nothing to answer.
    let Some(id) = message
        .get("id")
        .filter(|i| i.is_string() || i.is_number())
        .cloned()
    else {
        if method == Some("notifications/cancelled")
            && let (Some(session), Some(request)) = (session, params.get("requestId"))
        {
            let request = request
                .as_str()
                .map_or_else(|| request.to_string(), str::to_owned);
            sessions.cancel(session, &request);
        }
        return StatusCode::ACCEPTED.into_response();
    };
    // A response of the client to our `elicitation/create`: the answer to a plan's question.
    if method.is_none()
        && let Some(session) = session
        && (message.contains_key("result") || message.contains_key("error"))
    {
        let request = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
        if let Some(asked) = sessions.answered(caller.owner(), session, &request) {
            tools::elicited(&state, caller.owner(), asked, &message).await;
            return StatusCode::ACCEPTED.into_response();
        }
    }
    let owner = caller.owner();
    let answer = match method {
        None => Err(McpError::NoMethod),
        Some("initialize") => initialize(&sessions, owner, &id, &params).await,
        Some(name) => match open(&headers, &sessions, owner, name).await {
            Ok((Method::Ping, _)) => Ok(body::json(
                StatusCode::OK,
                &jsonrpc::result(&id, &json!({})),
            )),
            Ok((Method::ListTools, _)) => Ok(body::json(
                StatusCode::OK,
                &jsonrpc::result(&id, &tools::list(&state)),
            )),
            Ok((Method::CallTool, session)) => {
                let call = tools::ToolCall {
                    state: &state,
                    caller: &caller,
                    sessions: &sessions,
                    headers: &headers,
                    session: &session,
                    id: &id,
                    params: &params,
                };
                tools::call(&call).await
            }
            Err(e) => Err(e),
        },
    };
    answer.unwrap_or_else(|e| e.respond(&id))
}

/// The one JSON-RPC message of a `POST`, from an allowed origin.
async fn read(
    state: &AppState,
    headers: &HeaderMap,
    request_body: Body,
) -> Result<Map<String, Value>, McpError> {
    if !origin_allowed(state, headers) {
        return Err(McpError::OriginNotAllowed);
    }
    let server = &state.config().server;
    let raw = body::read(server, headers, request_body).await?;
    match body::parse(server, &raw, &MESSAGE_FIELDS) {
        Ok(Value::Object(message)) => Ok(message),
        Ok(_) => Err(McpError::NotOneMessage),
        Err(e) => Err(McpError::Parse(e.to_string())),
    }
}

/// A method other than `initialize`: a supported protocol version, a known method, the
/// caller's live session.
async fn open(
    headers: &HeaderMap,
    sessions: &McpSessions,
    owner: &str,
    name: &str,
) -> Result<(Method, String), McpError> {
    if let Some(version) = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok())
        && !PROTOCOL_VERSIONS.contains(&version)
    {
        return Err(McpError::UnsupportedVersion {
            version: version.to_owned(),
            supported: PROTOCOL_VERSIONS.join(", "),
        });
    }
    let method = Method::parse(name)?;
    let header = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    let session = sessions.touch(owner, header).await?;
    Ok((method, session))
}

/// `initialize`: the newest revision both sides speak, and a new session of the caller's.
async fn initialize(
    sessions: &McpSessions,
    owner: &str,
    id: &Value,
    params: &Value,
) -> Result<Response, McpError> {
    let requested = params.get("protocolVersion").and_then(Value::as_str);
    let version = requested
        .filter(|v| PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    let elicitation = params
        .get("capabilities")
        .and_then(|c| c.get("elicitation"))
        .is_some_and(Value::is_object);
    let session = sessions.open(owner, elicitation).await?;
    let body = jsonrpc::result(
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
    Ok(response)
}
