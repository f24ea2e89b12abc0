//! The JSON-RPC 2.0 envelope the A2A and MCP doors answer with: error objects with their codes,
//! results, and the `id` a request carries.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::body;
use super::error::ApiError;

/// The JSON-RPC error codes the doors answer (2.0's own, then A2A's).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    pub const TASK_NOT_FOUND: i64 = -32001;
    pub const TASK_NOT_CANCELABLE: i64 = -32002;
    pub const UNSUPPORTED_OPERATION: i64 = -32004;
    pub const VERSION_NOT_SUPPORTED: i64 = -32009;
}

/// A JSON-RPC error to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    #[must_use]
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `-32602` naming the parameter and what is wrong with it.
    #[must_use]
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// The JSON-RPC error response for request `id`.
    #[must_use]
    pub fn response(&self, id: &Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": self.code, "message": self.message}})
    }

    /// A core rejection in JSON-RPC terms: a body that is not JSON is a parse error, an overload
    /// or an internal failure an internal error, anything else an invalid request.
    #[must_use]
    pub fn from_api(e: &ApiError) -> Self {
        let code = match e {
            ApiError::InvalidJson(_) => code::PARSE_ERROR,
            ApiError::ShuttingDown
            | ApiError::Overloaded
            | ApiError::StoreUnavailable(_)
            | ApiError::AuthUnavailable(_)
            | ApiError::SessionsFull(_)
            | ApiError::Internal(_) => code::INTERNAL_ERROR,
            ApiError::Unauthorized
            | ApiError::SessionBusy(_)
            | ApiError::TooManySessions(_)
            | ApiError::NotFound(_)
            | ApiError::NotWaiting(_)
            | ApiError::Forbidden(_)
            | ApiError::RateLimited { .. }
            | ApiError::BudgetExhausted { .. }
            | ApiError::PayloadTooLarge { .. }
            | ApiError::AttachmentsTooLarge(_)
            | ApiError::BodyTimeout { .. }
            | ApiError::Invalid { .. }
            | ApiError::ToolIdCollision(_) => code::INVALID_REQUEST,
        };
        let message = match e {
            ApiError::Unauthorized => "unauthorized: send Authorization: Bearer <token>".to_owned(),
            other => other.to_string(),
        };
        Self::new(code, message)
    }
}

/// A JSON-RPC result for request `id`.
#[must_use]
pub fn result(id: &Value, result: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// The `id` of a request: a string or a number, else `null`.
#[must_use]
pub fn request_id(message: &Value) -> Value {
    match message.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    }
}

/// An error response with `status`.
#[must_use]
pub fn error_response(status: StatusCode, id: &Value, error: &RpcError) -> Response {
    body::json(status, &error.response(id))
}

/// A core rejection as a JSON-RPC error, with the status and headers of the one error table.
#[must_use]
pub fn rejection(e: &ApiError, id: &Value) -> Response {
    e.respond(body::json(e.status(), &RpcError::from_api(e).response(id)))
}
