//! `/did/resolve` (and `/a2a/did/resolve`): the gateway's DID document for its own DID, as a
//! Bindu agent answers, so a verifying caller finds the key of the DID on the card.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::api::http::body;
use crate::api::http::jsonrpc::{RpcError, code};
use crate::state::AppState;

fn resolve(state: &AppState, did: Option<&str>) -> Response {
    match (state.identity(), did) {
        (Some(identity), Some(did)) if did == identity.did() => (
            [(header::CONTENT_TYPE, "application/json")],
            identity.document().to_owned(),
        )
            .into_response(),
        (_, did) => body::json(
            StatusCode::NOT_FOUND,
            &RpcError::new(
                code::INTERNAL_ERROR,
                format!("DID '{}' not found", did.unwrap_or("")),
            )
            .response(&Value::Null),
        ),
    }
}

/// `GET /did/resolve?did=…`.
pub async fn resolve_query(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    resolve(&state, query.get("did").map(String::as_str))
}

/// `POST /did/resolve` with `{"did": …}`.
pub async fn resolve_body(State(state): State<AppState>, body: Bytes) -> Response {
    let did: Option<String> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("did").and_then(Value::as_str).map(str::to_owned));
    resolve(&state, did.as_deref())
}
