//! Ops: what operators and their tooling read, without a token: `/health`, `/ready`,
//! `/metrics`, the gateway's DID document, `/openapi.json` and the playground page.

pub mod health;
pub mod openapi;
pub mod playground;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::api::http::error::{ApiError, not_found};
use crate::state::AppState;

/// `GET /ready`: 200 while plans are accepted; 503 with the table's `Retry-After` while
/// draining or at `server.max_concurrent_plans`.
pub async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = if state.is_draining() {
        Some(ApiError::ShuttingDown)
    } else if state.is_ready() {
        None
    } else {
        Some(ApiError::Overloaded)
    };
    match not_ready {
        None => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ready":true}"#,
        )
            .into_response(),
        Some(e) => e.respond(
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"ready":false}"#,
            )
                .into_response(),
        ),
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

/// `GET /.well-known/did.json`: the bytes serialised at boot.
pub async fn did_document(State(state): State<AppState>) -> Response {
    match state.identity() {
        Some(identity) => (
            [
                (header::CONTENT_TYPE, "application/did+json"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            identity.document().to_owned(),
        )
            .into_response(),
        None => not_found().await,
    }
}
