//! The MCP door's refusals, each with its HTTP status and JSON-RPC code decided here once; a
//! core rejection keeps the status and headers of the one error table.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::sessions::SessionProblem;
use crate::api::http::error::ApiError;
use crate::api::http::jsonrpc::{self, RpcError, code};

/// Why the door refuses a message.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// A browser page on another site (DNS rebinding).
    #[error("Origin not allowed")]
    OriginNotAllowed,
    #[error("Parse error: {0}")]
    Parse(String),
    #[error("Invalid Request: one JSON-RPC message per POST (no batches)")]
    NotOneMessage,
    #[error("Invalid Request: \"method\" must be a string")]
    NoMethod,
    #[error("unsupported MCP-Protocol-Version {version}; supported: {supported}")]
    UnsupportedVersion { version: String, supported: String },
    #[error("Method not found")]
    MethodNotFound,
    #[error("Bad Request: Mcp-Session-Id header is required (send initialize first)")]
    MissingSession,
    #[error("Session not found: initialize a new one")]
    UnknownSession,
    #[error("Unknown tool: {0}")]
    UnknownTool(String),
    /// A core rejection: the body could not be read, or no place for the plan.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<SessionProblem> for McpError {
    fn from(problem: SessionProblem) -> Self {
        match problem {
            SessionProblem::Missing => Self::MissingSession,
            SessionProblem::Unknown => Self::UnknownSession,
            SessionProblem::Store(e) => Self::Api(ApiError::StoreUnavailable(e)),
        }
    }
}

impl McpError {
    /// The JSON-RPC error response to request `id`.
    #[must_use]
    pub fn respond(&self, id: &Value) -> Response {
        let (status, code) = match self {
            Self::OriginNotAllowed => (StatusCode::FORBIDDEN, code::INVALID_REQUEST),
            Self::Parse(_) => (StatusCode::BAD_REQUEST, code::PARSE_ERROR),
            Self::NotOneMessage
            | Self::NoMethod
            | Self::UnsupportedVersion { .. }
            | Self::MissingSession => (StatusCode::BAD_REQUEST, code::INVALID_REQUEST),
            Self::UnknownSession => (StatusCode::NOT_FOUND, code::INVALID_REQUEST),
            Self::MethodNotFound => (StatusCode::OK, code::METHOD_NOT_FOUND),
            Self::UnknownTool(_) => (StatusCode::OK, code::INVALID_PARAMS),
            Self::Api(e) => return jsonrpc::rejection(e, id),
        };
        jsonrpc::error_response(status, id, &RpcError::new(code, self.to_string()))
    }
}

/// The door's body for a core rejection (admission's 401): a JSON-RPC error.
pub(crate) fn reject(e: ApiError) -> Response {
    McpError::Api(e).respond(&Value::Null)
}
