//! HTTP-facing errors of `/plan` before its stream opens (spec §1.3–1.6, §2.4).
//!
//! Policy: library code returns typed errors (`ConfigError`, `A2aError`, `LlmError`, …); only
//! [`ApiError`] turns into a response, and its status is decided in one exhaustive `match`.
//! `anyhow` is allowed in `main.rs` and tests only. After the first SSE byte nothing here is used:
//! failures become `error` events.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::request::Issue;

/// A rejection of a `/plan` request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within `server.body_read_timeout_ms`.
    #[error("request body not received within {ms} ms (server.body_read_timeout_ms)")]
    BodyTimeout { ms: u128 },
    /// The body is not JSON (or not UTF-8).
    #[error("{0}")]
    InvalidJson(String),
    /// Schema validation failed.
    #[error("{detail}")]
    Invalid { detail: String, issues: Vec<Issue> },
    /// Two catalog entries produce the same tool id.
    #[error("{0}")]
    ToolIdCollision(String),
    #[error("gateway is shutting down")]
    ShuttingDown,
    #[error("too many plans in flight")]
    Overloaded,
    /// The shared store (Redis) does not answer.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of each rejection.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidJson(_) | Self::Invalid { .. } | Self::ToolIdCollision(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::ShuttingDown | Self::Overloaded | Self::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Builds the `Invalid` error from validation issues.
    #[must_use]
    pub fn invalid(issues: Vec<Issue>) -> Self {
        let detail = issues
            .iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self::Invalid { detail, issues }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            Self::Unauthorized => json!({"error": "unauthorized"}),
            Self::PayloadTooLarge { .. } => {
                json!({"error": "payload_too_large", "detail": self.to_string()})
            }
            Self::BodyTimeout { .. } => {
                json!({"error": "request_timeout", "detail": self.to_string()})
            }
            Self::InvalidJson(d) | Self::ToolIdCollision(d) => {
                json!({"error": "invalid_request", "detail": d})
            }
            Self::Invalid { detail, issues } => {
                json!({"error": "invalid_request", "detail": detail, "issues": issues})
            }
            Self::ShuttingDown => json!({"error": "shutting_down", "detail": self.to_string()}),
            Self::Overloaded => json!({"error": "overloaded", "detail": self.to_string()}),
            Self::StoreUnavailable(_) => {
                json!({"error": "store_unavailable", "detail": self.to_string()})
            }
            Self::Internal(d) => json!({"error": "internal_error", "detail": d}),
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::ShuttingDown | Self::StoreUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::PayloadTooLarge { .. }
            | Self::BodyTimeout { .. }
            | Self::InvalidJson(_)
            | Self::Invalid { .. }
            | Self::ToolIdCollision(_)
            | Self::Internal(_) => {}
        }
        response
    }
}
