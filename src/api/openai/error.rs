//! The OpenAI error object, `{"error": {"message", "type", "param", "code"}}`, for the door's own
//! refusals and for core rejections (whose status and headers come from the one error table).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::http::error::ApiError;

/// A refusal in OpenAI's terms.
#[derive(Debug)]
pub(crate) enum OpenAiError {
    /// The request breaks the OpenAI wire or asks for what the door does not do (400).
    Invalid {
        param: &'static str,
        code: &'static str,
        message: String,
    },
    /// The model names no catalog (404, as OpenAI answers).
    ModelNotFound { message: String },
    /// A core rejection.
    Api(ApiError),
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl OpenAiError {
    pub(crate) fn invalid(
        param: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            param,
            code,
            message: message.into(),
        }
    }

    /// The message, for logs.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Invalid { message, .. } | Self::ModelNotFound { message } => message.clone(),
            Self::Api(e) => e.to_string(),
        }
    }

    fn body(&self) -> Value {
        let (message, kind, param, code) = match self {
            Self::Invalid {
                param,
                code,
                message,
            } => (
                message.clone(),
                "invalid_request_error",
                Some(*param),
                *code,
            ),
            Self::ModelNotFound { message } => (
                message.clone(),
                "invalid_request_error",
                Some("model"),
                "model_not_found",
            ),
            Self::Api(ApiError::Unauthorized) => (
                "Incorrect or missing API key: send Authorization: Bearer <one of the gateway's tokens>".to_owned(),
                "invalid_request_error",
                None,
                "invalid_api_key",
            ),
            Self::Api(e) => {
                let kind = if e.status().is_server_error() {
                    "server_error"
                } else {
                    "invalid_request_error"
                };
                (e.to_string(), kind, None, e.code())
            }
        };
        json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let response = (
            [(header::CONTENT_TYPE, "application/json")],
            self.body().to_string(),
        )
            .into_response();
        match &self {
            Self::Invalid { .. } => (StatusCode::BAD_REQUEST, response).into_response(),
            Self::ModelNotFound { .. } => (StatusCode::NOT_FOUND, response).into_response(),
            Self::Api(e) => e.respond(response),
        }
    }
}

/// The error object of a plan that failed after it started (status 500, or an SSE chunk).
pub(crate) fn plan_failure(message: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": "server_error", "param": null, "code": code}})
}
