//! The HTTP surface (spec §1): the route table, with everything else answered `404 Not Found`
//! as plain text (also a wrong method on a known path).

pub mod auth;
pub mod health;
pub mod idempotency;
pub mod plan;
pub mod request;
pub mod sse;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// The gateway's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/plan", post(plan::plan).fallback(not_found))
        .route("/health", get(health::health).fallback(not_found))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "404 Not Found",
    )
        .into_response()
}
