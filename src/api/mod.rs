//! The HTTP surface (spec §1): the route table, with everything else answered `404 Not Found`
//! as plain text (also a wrong method on a known path).

pub mod agent;
pub mod auth;
pub mod body;
pub mod catalog;
pub mod error;
pub mod frames;
pub mod health;
pub mod json;
pub mod launch;
pub mod mcp;
pub mod openai;
pub mod openapi;
pub mod plan;
pub mod playground;
pub mod progress;
pub mod request;
pub mod resume;
pub mod sse;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument as _;

use crate::api::state::AppState;
use crate::config::CorsOrigins;
use crate::telemetry::is_sane_request_id;

/// `X-Request-Id`: taken from the request when sane, else generated; on every response.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route template that answered a request (set after routing, read by [`observe`]).
#[derive(Debug, Clone)]
struct RouteTemplate(String);

/// The gateway's router: the routes, then (outermost first) CORS when configured, request ids,
/// and one span and one HTTP metric per request.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/plan", post(plan::plan).fallback(not_found))
        .route(
            "/health",
            get(health::health).head(not_found).fallback(not_found),
        )
        .route("/ready", get(ready).fallback(not_found));
    router = agent::routes(router);
    router = openai::routes(router);
    router = mcp::routes(router);
    if state.config().resume.enabled {
        router = resume::routes(router);
    }
    match openapi::bundled() {
        Ok(document) => {
            router = router.route(
                "/openapi.json",
                get(move || async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        document.clone(),
                    )
                })
                .fallback(not_found),
            );
        }
        Err(e) => tracing::error!(error = %e, "GET /openapi.json is not served"),
    }
    if state.config().server.playground {
        let page = playground::Playground::new();
        router = router.route(
            "/playground",
            get(move || async move { page.response() }).fallback(not_found),
        );
    }
    if state.metrics().is_enabled() {
        router = router.route("/metrics", get(metrics).fallback(not_found));
    }
    // The DID document exists only when an identity is loaded (spec §1.2).
    if state.inner().identity.is_some() {
        router = router.route(
            "/.well-known/did.json",
            get(did_document).fallback(not_found),
        );
    }
    let cors = state.config().server.cors.as_ref().map(cors_layer);
    router
        .route_layer(middleware::from_fn(mark_route))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .option_layer(cors)
                .layer(middleware::map_request(drop_insane_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(state.clone(), observe)),
        )
        .with_state(state)
}

/// CORS for browser frontends on other origins (`GATEWAY_CORS_ORIGINS`).
fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let allow = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
            REQUEST_ID,
        ])
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600))
}

/// A client's `X-Request-Id` that is not sane is dropped (a fresh one is generated).
async fn drop_insane_request_id(mut req: Request) -> Request {
    let insane = req
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|v| !v.to_str().is_ok_and(is_sane_request_id));
    if insane {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// Remembers the matched route template on the response (runs after routing).
async fn mark_route(matched: MatchedPath, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    response
        .extensions_mut()
        .insert(RouteTemplate(matched.as_str().to_owned()));
    response
}

/// Runs the request in a span carrying its id (every log line of the request has it) and
/// counts the response by route template and status.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(req).instrument(span).await;
    if state.inner().draining.is_cancelled() {
        // Draining: answer, then let the client go elsewhere.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or("unmatched", |r| r.0.as_str());
    state
        .metrics()
        .http_response(route, response.status().as_u16());
    response
}

/// `GET /ready`: 200 while plans are accepted; 503 with `Retry-After` while draining or at
/// `server.max_concurrent_plans`.
async fn ready(State(state): State<AppState>) -> Response {
    if state.is_ready() {
        (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ready":true}"#,
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::RETRY_AFTER, "5"),
            ],
            r#"{"ready":false}"#,
        )
            .into_response()
    }
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(State(state): State<AppState>) -> Response {
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

pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "404 Not Found",
    )
        .into_response()
}
