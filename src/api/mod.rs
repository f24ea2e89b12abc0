//! The HTTP surface (spec §1): the route table, with everything else answered `404 Not Found`
//! as plain text (also a wrong method on a known path).

pub mod auth;
pub mod error;
pub mod frames;
pub mod health;
pub mod json;
pub mod plan;
pub mod request;
pub mod sse;
pub mod state;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::state::AppState;

/// The gateway's router.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/plan", post(plan::plan).fallback(not_found))
        .route(
            "/health",
            get(health::health).head(not_found).fallback(not_found),
        );
    // The DID document exists only when an identity is loaded (spec §1.2).
    if state.inner().identity.is_some() {
        router = router.route(
            "/.well-known/did.json",
            get(did_document).fallback(not_found),
        );
    }
    router.fallback(not_found).with_state(state)
}

/// `GET /.well-known/did.json`: the bytes serialised at boot.
async fn did_document(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match &state.inner().identity {
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

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "404 Not Found",
    )
        .into_response()
}
