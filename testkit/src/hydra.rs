//! A fake Ory Hydra: admin API (`/health/alive`, `/admin/clients[/{id}]`) and token endpoint.
//! Records requests; the stored client and token lifetime are scripted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

pub struct HydraState {
    /// The client Hydra already knows (None → 404).
    pub stored: Mutex<Option<Value>>,
    /// Status answered to POST/PUT of clients.
    pub write_status: u16,
    pub expires_in: u64,
    pub requests: Mutex<Vec<(String, String, String)>>,
    pub tokens_issued: AtomicUsize,
}

pub struct FakeHydra {
    pub url: String,
    pub state: Arc<HydraState>,
}

async fn alive() -> &'static str {
    "ok"
}

async fn client(
    State(s): State<Arc<HydraState>>,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    s.requests.lock().unwrap().push((
        method.to_string(),
        format!("/admin/clients/{id}"),
        String::from_utf8_lossy(&body).into(),
    ));
    if method == Method::GET {
        return match s.stored.lock().unwrap().clone() {
            Some(c) => axum::Json(c).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                "{\"error\":\"Unable to locate the resource\"}",
            )
                .into_response(),
        };
    }
    let code = StatusCode::from_u16(s.write_status).unwrap();
    if code.is_success() {
        *s.stored.lock().unwrap() = serde_json::from_slice(&body).ok();
    }
    (code, "{}").into_response()
}

async fn create(State(s): State<Arc<HydraState>>, body: Bytes) -> Response {
    s.requests.lock().unwrap().push((
        "POST".into(),
        "/admin/clients".into(),
        String::from_utf8_lossy(&body).into(),
    ));
    let code = StatusCode::from_u16(s.write_status).unwrap();
    if code.is_success() {
        *s.stored.lock().unwrap() = serde_json::from_slice(&body).ok();
    }
    (code, "{\"error\":\"scripted\"}").into_response()
}

async fn token(State(s): State<Arc<HydraState>>, body: Bytes) -> Response {
    s.requests.lock().unwrap().push((
        "POST".into(),
        "/oauth2/token".into(),
        String::from_utf8_lossy(&body).into(),
    ));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let n = s.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(json!({"access_token": format!("hydra-token-{n}"), "expires_in": s.expires_in, "token_type": "bearer"})).into_response()
}

impl FakeHydra {
    pub async fn start(stored: Option<Value>, write_status: u16, expires_in: u64) -> Self {
        let state = Arc::new(HydraState {
            stored: Mutex::new(stored),
            write_status,
            expires_in,
            requests: Mutex::new(Vec::new()),
            tokens_issued: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/health/alive", get(alive))
            .route("/admin/clients", post(create))
            .route("/admin/clients/{id}", any(client))
            .route("/oauth2/token", post(token))
            .with_state(Arc::clone(&state));
        let url = crate::serve(app).await;
        Self { url, state }
    }

    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.state.requests.lock().unwrap().clone()
    }
}
