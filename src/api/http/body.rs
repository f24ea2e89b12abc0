//! What every door does with a request body and a JSON answer: read the body within
//! `server.body_read_timeout_ms` and `server.max_body_bytes`, parse it under
//! `server.max_json_values` / `max_json_depth` keeping only the fields the door reads, and write
//! a JSON response. Each door turns the [`ApiError`]s into its own error shape.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::Value;

use super::error::ApiError;
use super::json::{JsonLimits, parse_body_with};
use crate::config::ServerConfig;

/// Reads the request body: at most `server.max_body_bytes`, within `server.body_read_timeout_ms`.
///
/// # Errors
/// `PayloadTooLarge`, `BodyTimeout`, or `InvalidJson` when the body cannot be read.
pub async fn read(
    server: &ServerConfig,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    tokio::time::timeout(
        server.body_read_timeout,
        read_limited(body, server.max_body_bytes, headers),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout {
        ms: server.body_read_timeout.as_millis(),
    })?
}

async fn read_limited(body: Body, limit: usize, headers: &HeaderMap) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidJson(format!("cannot read body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    crate::telemetry::memory::large_payload(out.len());
    Ok(out)
}

/// Parses a body, keeping the top-level `fields` of an object, under the JSON limits.
///
/// # Errors
/// `InvalidJson` with the parser's message (or the limit hit).
pub fn parse(server: &ServerConfig, raw: &[u8], fields: &[&str]) -> Result<Value, ApiError> {
    let limits = JsonLimits {
        max_values: server.max_json_values,
        max_depth: server.max_json_depth,
    };
    parse_body_with(raw, limits, fields).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// A JSON response.
pub fn json(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}
