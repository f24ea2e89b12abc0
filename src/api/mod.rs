//! The HTTP surface (spec §1): the route table of every door, with everything else answered
//! `404 Not Found` as plain text (also a wrong method on a known path).
//!
//! Each door lives in its own room and knows only its wire: [`plan`] (`/plan` and its resume
//! routes), [`a2a`] (plangate as an A2A agent), [`openai`] (`/v1/…`), [`mcp`] (`/mcp`) and
//! [`ops`] (health, readiness, metrics, DID document, OpenAPI, playground). What doors share is
//! below them: [`http`] (body limits, the one error table, event streams, JSON-RPC) and
//! [`crate::run`] (a plan's lifecycle and its answer). No door imports another, this table or
//! [`admit`], the one admission every door's routes pass through.

pub mod a2a;
pub mod admit;
pub mod http;
pub mod mcp;
pub mod openai;
pub mod ops;
pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument as _;

use self::admit::{Gate, admission};
use self::http::error::not_found;
use self::http::request_id::{REQUEST_ID, drop_insane};
use crate::access::keys::Door;
use crate::config::CorsOrigins;
use crate::state::AppState;

/// The route template that answered a request (set after routing, read by [`observe`]).
#[derive(Debug, Clone)]
struct RouteTemplate(String);

/// The gateway's router: the routes, then (outermost first) CORS when configured, request ids,
/// and one span and one HTTP metric per request.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .merge(plan_routes(&state))
        .merge(a2a_routes(&state))
        .merge(openai_routes(&state))
        .merge(mcp_routes(&state))
        .merge(ops_routes(&state));
    let cors = state.config().server.cors.as_ref().map(cors_layer);
    router
        .route_layer(middleware::from_fn(mark_route))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .option_layer(cors)
                .layer(middleware::map_request(drop_insane))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(state.clone(), observe)),
        )
        .with_state(state)
}

/// `POST /plan`; with resumable streams, `GET /plan/{id}/events` and `DELETE /plan/{id}`; with
/// sessions, `GET /sessions`, `GET /sessions/{id}` and `DELETE /sessions/{id}`.
fn plan_routes(state: &AppState) -> Router<AppState> {
    let starting = Gate::starting_plans(state, Door::Plan, plan::reject);
    let gate = Gate::new(state, Door::Plan, plan::reject);
    let mut router = Router::new().route(
        "/plan",
        post(plan::plan)
            .layer(middleware::from_fn_with_state(starting, admission))
            .fallback(not_found),
    );
    if state.config().resume.enabled {
        router = router
            .route(
                "/plan/{plan_id}/events",
                get(plan::resume::events)
                    .layer(middleware::from_fn_with_state(gate.clone(), admission))
                    .fallback(not_found),
            )
            .route(
                "/plan/{plan_id}",
                delete(plan::resume::cancel)
                    .layer(middleware::from_fn_with_state(gate.clone(), admission))
                    .fallback(not_found),
            );
    }
    router = router
        .route(
            "/plan/{plan_id}/tasks/{task_id}/confirm",
            post(plan::tasks::confirm)
                .layer(middleware::from_fn_with_state(gate.clone(), admission))
                .fallback(not_found),
        )
        .route(
            "/plan/{plan_id}/tasks/{task_id}/input",
            post(plan::tasks::input)
                .layer(middleware::from_fn_with_state(gate.clone(), admission))
                .fallback(not_found),
        )
        .route(
            "/plan/{plan_id}/files/{file_id}",
            get(plan::files::get)
                .layer(middleware::from_fn_with_state(gate.clone(), admission))
                .fallback(not_found),
        );
    if state.config().sessions.enabled {
        router = router
            .route(
                "/sessions",
                get(plan::sessions::list)
                    .layer(middleware::from_fn_with_state(gate.clone(), admission))
                    .fallback(not_found),
            )
            .route(
                "/sessions/{session_id}",
                get(plan::sessions::show)
                    .delete(plan::sessions::delete)
                    .layer(middleware::from_fn_with_state(gate, admission))
                    .fallback(not_found),
            );
    }
    router
}

/// The A2A door: JSON-RPC at `/a2a` (and `/a2a/`), its cards, `/did/resolve`.
fn a2a_routes(state: &AppState) -> Router<AppState> {
    let gate = Gate::new(state, Door::A2a, a2a::rpc::reject);
    let tasks = Arc::new(a2a::store::TaskStore::new(&state.config().a2a_server));
    let rpc = || {
        post(a2a::rpc::rpc)
            .layer(middleware::from_fn_with_state(gate.clone(), admission))
            .fallback(not_found)
    };
    let resolve = || {
        get(a2a::did::resolve_query)
            .post(a2a::did::resolve_body)
            .fallback(not_found)
    };
    Router::new()
        .route(
            "/.well-known/agent-card.json",
            get(a2a::card::card_v10).fallback(not_found),
        )
        .route(
            "/.well-known/agent.json",
            get(a2a::card::card_v03).fallback(not_found),
        )
        .route("/a2a", rpc())
        .route("/a2a/", rpc())
        .route("/did/resolve", resolve())
        .route("/a2a/did/resolve", resolve())
        .layer(Extension(tasks))
}

/// The OpenAI-compatible door.
fn openai_routes(state: &AppState) -> Router<AppState> {
    let starting = Gate::starting_plans(state, Door::OpenAi, openai::reject);
    let gate = Gate::new(state, Door::OpenAi, openai::reject);
    Router::new()
        .route(
            "/v1/chat/completions",
            post(openai::chat)
                .layer(middleware::from_fn_with_state(starting, admission))
                .fallback(not_found),
        )
        .route(
            "/v1/models",
            get(openai::models)
                .layer(middleware::from_fn_with_state(gate, admission))
                .fallback(not_found),
        )
}

/// The MCP door; `GET /mcp` (no server stream) needs no token.
fn mcp_routes(state: &AppState) -> Router<AppState> {
    let gate = Gate::new(state, Door::Mcp, mcp::error::reject);
    let sessions = Arc::new(mcp::sessions::McpSessions::new(
        &state.config().mcp,
        state.runs().mcp_sessions().cloned(),
    ));
    Router::new()
        .route(
            "/mcp",
            post(mcp::transport::handle)
                .delete(mcp::transport::end_session)
                .layer(middleware::from_fn_with_state(gate, admission))
                .get(mcp::transport::no_stream)
                .fallback(not_found),
        )
        .layer(Extension(sessions))
}

/// Health, readiness, metrics, the DID document, OpenAPI and the playground: no token.
fn ops_routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new()
        .route(
            "/health",
            get(ops::health::health).head(not_found).fallback(not_found),
        )
        .route("/ready", get(ops::ready).fallback(not_found));
    match ops::openapi::bundled() {
        Ok(document) => {
            router = router.route(
                "/openapi.json",
                get(move || std::future::ready(ops::openapi::serve(document.clone())))
                    .fallback(not_found),
            );
        }
        Err(e) => tracing::error!(error = %e, "GET /openapi.json is not served"),
    }
    if state.config().server.playground {
        let page = ops::playground::Playground::new();
        router = router.route(
            "/playground",
            get(move || async move { page.response() }).fallback(not_found),
        );
    }
    if state.metrics().is_enabled() {
        router = router.route("/metrics", get(ops::metrics).fallback(not_found));
    }
    // The DID document exists only when an identity is loaded (spec §1.2).
    if state.identity().is_some() {
        router = router.route(
            "/.well-known/did.json",
            get(ops::did_document).fallback(not_found),
        );
    }
    router
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
    let id = http::request_id::request_id(req.headers());
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(req).instrument(span).await;
    if state.is_draining() {
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::admit::Reject;
    use super::http::error::ApiError;
    use super::{a2a, mcp, openai, plan};

    fn every_rejection() -> Vec<ApiError> {
        vec![
            ApiError::Unauthorized,
            ApiError::PayloadTooLarge { limit: 10 },
            ApiError::BodyTimeout { ms: 5 },
            ApiError::InvalidJson("x".to_owned()),
            ApiError::invalid(vec![]),
            ApiError::ToolIdCollision("x".to_owned()),
            ApiError::ShuttingDown,
            ApiError::Overloaded,
            ApiError::StoreUnavailable("down".to_owned()),
            ApiError::AuthUnavailable("no JWKS".to_owned()),
            ApiError::Forbidden("x".to_owned()),
            ApiError::RateLimited {
                why: "x".to_owned(),
                seconds: 7,
            },
            ApiError::BudgetExhausted {
                why: "x".to_owned(),
                seconds: 9,
            },
            ApiError::Internal("x".to_owned()),
        ]
    }

    /// Each door chooses its body; the status, `Retry-After` and `WWW-Authenticate` of a core
    /// rejection come from the one table, whichever door answers.
    #[test]
    fn every_door_refuses_with_the_tables_status_and_headers() {
        let doors: [(&str, Reject); 4] = [
            ("/plan", plan::reject),
            ("a2a", a2a::rpc::reject),
            ("openai", openai::reject),
            ("mcp", mcp::error::reject),
        ];
        for (i, expected) in every_rejection().into_iter().enumerate() {
            for (door, reject) in doors {
                let response = reject(every_rejection().swap_remove(i));
                assert_eq!(response.status(), expected.status(), "{door}: {expected}");
                let header = |name| {
                    response
                        .headers()
                        .get(name)
                        .map(|v| v.to_str().unwrap_or("").to_owned())
                };
                assert_eq!(
                    header("retry-after"),
                    expected.retry_after(),
                    "{door}: {expected}"
                );
                assert_eq!(
                    header("www-authenticate").is_some(),
                    expected.status() == StatusCode::UNAUTHORIZED,
                    "{door}: {expected}"
                );
            }
        }
        assert_eq!(ApiError::Overloaded.retry_after().as_deref(), Some("1"));
        assert_eq!(
            ApiError::Overloaded.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
