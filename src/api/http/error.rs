//! The one error table: the rejections of a request before its answer starts (spec §1.3–1.6,
//! §2.4), whichever door it came through.
//!
//! Policy: library code returns typed errors (`ConfigError`, `A2aError`, `LlmError`, …). A
//! rejection is an [`ApiError`]; its status, `Retry-After` and `WWW-Authenticate` are decided
//! here, in exhaustive `match`es, and nowhere else. Each door only chooses the body: `/plan` and
//! the operator routes answer `{"error","detail"}` ([`IntoResponse`] below), the OpenAI door its
//! error object, the A2A and MCP doors a JSON-RPC error ([`super::jsonrpc::rejection`]), all
//! through [`ApiError::respond`]. A door-specific refusal (a JSON-RPC method error, an MCP
//! session problem) is the door's own type. After the first SSE byte nothing here is used:
//! failures become `error` events.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::planner::validate::Issue;
use crate::run::Refused;

/// A rejection of a request, the same for every door.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Attachments over one of the `files.*` limits (the text names it).
    #[error("{0}")]
    AttachmentsTooLarge(String),
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
    /// A JWT cannot be checked: the identity provider's keys cannot be fetched.
    #[error("{0}")]
    AuthUnavailable(String),
    /// Another plan of the conversation is running (server-side sessions).
    #[error("session {0:?} has a plan running; send the next turn after its `done` frame")]
    SessionBusy(String),
    /// The caller keeps `sessions.max_per_token` conversations.
    #[error(
        "this token keeps {0} sessions (sessions.max_per_token); DELETE /sessions/{{session_id}} one, or wait for one to expire (sessions.ttl_secs)"
    )]
    TooManySessions(usize),
    /// The memory backend holds `sessions.max_bytes`.
    #[error(
        "stored sessions fill sessions.max_bytes ({0} bytes); raise it, or use GATEWAY_REDIS_URL"
    )]
    SessionsFull(usize),
    /// No such thing for this caller.
    #[error("{0}")]
    NotFound(String),
    /// A plan's task that does not wait for this answer.
    #[error("{0}")]
    NotWaiting(String),
    /// The caller's key may not use this catalog, door or ad-hoc `agents`.
    #[error("{0}")]
    Forbidden(String),
    /// The caller's key is over `requests_per_minute` or `max_concurrent_plans`.
    #[error("{why}; retry in {seconds} s")]
    RateLimited { why: String, seconds: u64 },
    /// The caller's key has spent its `llm_tokens_per_day`.
    #[error("{why}; its day ends in {seconds} s")]
    BudgetExhausted { why: String, seconds: u64 },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of each rejection.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } | Self::AttachmentsTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::InvalidJson(_) | Self::Invalid { .. } | Self::ToolIdCollision(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::ShuttingDown
            | Self::Overloaded
            | Self::StoreUnavailable(_)
            | Self::AuthUnavailable(_)
            | Self::SessionsFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::SessionBusy(_) | Self::NotWaiting(_) => StatusCode::CONFLICT,
            Self::TooManySessions(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } | Self::BudgetExhausted { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds a client should wait before retrying: the same for every door.
    #[must_use]
    pub fn retry_after(&self) -> Option<String> {
        match self {
            // Places free up as plans end: try again soon (spec §1.1).
            Self::Overloaded => Some("1".to_owned()),
            // Another instance takes over, or the store comes back.
            Self::ShuttingDown | Self::StoreUnavailable(_) | Self::AuthUnavailable(_) => {
                Some("5".to_owned())
            }
            // When the key's window ends, or a slot frees up: a retry after it is admitted.
            Self::RateLimited { seconds, .. } | Self::BudgetExhausted { seconds, .. } => {
                Some(seconds.to_string())
            }
            Self::Unauthorized
            | Self::SessionBusy(_)
            | Self::TooManySessions(_)
            | Self::SessionsFull(_)
            | Self::NotFound(_)
            | Self::NotWaiting(_)
            | Self::Forbidden(_)
            | Self::PayloadTooLarge { .. }
            | Self::AttachmentsTooLarge(_)
            | Self::BodyTimeout { .. }
            | Self::InvalidJson(_)
            | Self::Invalid { .. }
            | Self::ToolIdCollision(_)
            | Self::Internal(_) => None,
        }
    }

    /// The machine-readable name of the rejection (`/plan`'s `error`, OpenAI's `code`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::PayloadTooLarge { .. } | Self::AttachmentsTooLarge(_) => "payload_too_large",
            Self::BodyTimeout { .. } => "request_timeout",
            Self::InvalidJson(_) | Self::Invalid { .. } | Self::ToolIdCollision(_) => {
                "invalid_request"
            }
            Self::ShuttingDown => "shutting_down",
            Self::Overloaded => "overloaded",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::AuthUnavailable(_) => "auth_unavailable",
            Self::SessionBusy(_) => "session_busy",
            Self::TooManySessions(_) => "too_many_sessions",
            Self::SessionsFull(_) => "sessions_full",
            Self::NotFound(_) => "not_found",
            Self::NotWaiting(_) => "not_waiting",
            Self::Forbidden(_) => "forbidden",
            Self::RateLimited { .. } => "rate_limited",
            Self::BudgetExhausted { .. } => "budget_exhausted",
            Self::Internal(_) => "internal_error",
        }
    }

    /// A door's body for this rejection, with the table's status and headers.
    #[must_use]
    pub fn respond(&self, mut response: Response) -> Response {
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        if matches!(self, Self::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after()
            && let Ok(value) = HeaderValue::from_str(&seconds)
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
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

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::ShuttingDown => Self::ShuttingDown,
            Refused::Overloaded => Self::Overloaded,
            Refused::KeyBusy => Self::RateLimited {
                why: "this key runs its max_concurrent_plans plans already".to_owned(),
                seconds: 1,
            },
            Refused::StoreUnavailable => Self::StoreUnavailable(refused.to_string()),
        }
    }
}

/// `/plan`'s body (and the operator routes'): `{"error", "detail"}`, with `issues` for a request
/// that breaks the schema.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            Self::Unauthorized => json!({"error": "unauthorized"}),
            Self::InvalidJson(d) | Self::ToolIdCollision(d) | Self::Internal(d) => {
                json!({"error": self.code(), "detail": d})
            }
            Self::Invalid { detail, issues } => {
                json!({"error": self.code(), "detail": detail, "issues": issues})
            }
            Self::PayloadTooLarge { .. }
            | Self::AttachmentsTooLarge(_)
            | Self::BodyTimeout { .. }
            | Self::ShuttingDown
            | Self::Overloaded
            | Self::StoreUnavailable(_)
            | Self::AuthUnavailable(_)
            | Self::SessionBusy(_)
            | Self::TooManySessions(_)
            | Self::SessionsFull(_)
            | Self::NotFound(_)
            | Self::NotWaiting(_)
            | Self::Forbidden(_)
            | Self::RateLimited { .. }
            | Self::BudgetExhausted { .. } => {
                json!({"error": self.code(), "detail": self.to_string()})
            }
        };
        self.respond(
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response(),
        )
    }
}

/// Marks a response as the refusal of a request that would have started a plan; the route
/// table's admission counts it once in `plangate_plans_total{outcome="rejected"}`.
/// It carries why, for the log line.
#[derive(Debug, Clone)]
pub struct PlanRefused(pub String);

/// Marks `response` as a refused plan (see [`PlanRefused`]).
#[must_use]
pub fn refused(mut response: Response, why: impl std::fmt::Display) -> Response {
    response
        .extensions_mut()
        .insert(PlanRefused(why.to_string()));
    response
}

/// Every path and method the route table does not know: `404 Not Found` as plain text (spec §1).
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "404 Not Found",
    )
        .into_response()
}
