//! `POST /a2a`: the JSON-RPC envelope, the dialect (the `A2A-Version` header, as the a2a-sdk
//! server decides it) and the method, then one file per method group: [`super::send`] (send,
//! stream) and [`super::tasks`] (get, cancel).

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::context::{Call, Failure};
use super::store::TaskStore;
use super::wire::{Dialect, Method};
use super::{send, tasks};
use crate::api::http::body;
use crate::api::http::caller::Caller;
use crate::api::http::error::{ApiError, refused};
use crate::api::http::json::JSON_RPC_FIELDS;
use crate::api::http::jsonrpc::{self, RpcError, code};
use crate::state::AppState;

/// The door's body for a core rejection: a JSON-RPC error.
pub(crate) fn reject(e: ApiError) -> Response {
    Failure::Api(e).respond(&Value::Null)
}

/// `POST /a2a`.
pub async fn rpc(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(tasks): Extension<Arc<TaskStore>>,
    headers: HeaderMap,
    request_body: Body,
) -> Response {
    let raw = match body::read(&state.config().server, &headers, request_body).await {
        Ok(raw) => raw,
        Err(e) => return reject(e),
    };
    let value = match body::parse(&state.config().server, &raw, &JSON_RPC_FIELDS) {
        Ok(v) => v,
        Err(e) => {
            let error = RpcError::new(code::PARSE_ERROR, format!("Parse error: {e}"));
            return jsonrpc::error_response(StatusCode::OK, &Value::Null, &error);
        }
    };
    drop(raw);
    let id = jsonrpc::request_id(&value);
    let (dialect, method, params) = match envelope(&headers, &value, &id) {
        Ok(parts) => parts,
        Err(error) => return jsonrpc::error_response(StatusCode::OK, &id, &error),
    };
    let call = Call {
        state: &state,
        owner: caller.owner(),
        caller: &caller,
        tasks: &tasks,
        headers: &headers,
        dialect,
        id: &id,
    };
    let answer = match method {
        Method::Send => send::send(&call, &params).await,
        Method::Stream => send::stream(&call, &params).await,
        Method::Get => tasks::get(&call, &params),
        Method::Cancel => tasks::cancel(&call, &params),
    };
    match answer {
        Ok(response) => response,
        // A send that starts no plan is a refused plan.
        Err(failure) if matches!(method, Method::Send | Method::Stream) => {
            refused(failure.respond(&id), failure.message())
        }
        Err(failure) => failure.respond(&id),
    }
}

/// The envelope of a request: JSON-RPC 2.0, an id (no notifications), a method of the
/// caller's dialect, params as an object.
fn envelope(
    headers: &HeaderMap,
    request: &Value,
    id: &Value,
) -> Result<(Dialect, Method, Value), RpcError> {
    let invalid =
        |what: &str| RpcError::new(code::INVALID_REQUEST, format!("Invalid Request: {what}"));
    let Some(envelope) = request.as_object() else {
        return Err(invalid("expected a JSON-RPC 2.0 request object"));
    };
    if envelope.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid("\"jsonrpc\" must be \"2.0\""));
    }
    if id.is_null() {
        return Err(invalid(
            "\"id\" must be a string or a number (notifications are not supported)",
        ));
    }
    let Some(name) = envelope.get("method").and_then(Value::as_str) else {
        return Err(invalid("\"method\" must be a string"));
    };
    let version = headers.get("a2a-version").and_then(|v| v.to_str().ok());
    let dialect = Dialect::of_request(version)?;
    let method = dialect.method(name)?;
    let params = match envelope.get("params") {
        Some(p @ Value::Object(_)) => p.clone(),
        None => json!({}),
        Some(_) => return Err(RpcError::params("params: expected an object")),
    };
    Ok((dialect, method, params))
}
