//! `GET /health` (spec §1.7): no auth, no I/O, the reference gateway's shape, plus
//! `runtime.capabilities` (what a client may use here: server-side sessions, resumable streams, the
//! server-side catalogs by name), a key of our own the reference's clients ignore.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::AppState;

/// The rustc that built us, e.g. `rustc 1.95.0` (set by `build.rs`).
const RUSTC: &str = env!("PLANGATE_RUSTC");

fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}

fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    }
}

/// The health document.
#[must_use]
pub fn document(state: &AppState) -> Value {
    let c = state.config();
    let planner = if c.is_llm_mode() {
        let model = &c.planner.model;
        let (provider, model_id) = match model.split_once('/') {
            Some((p, rest)) => (Some(p), rest),
            None => (None, model.as_str()),
        };
        json!({"model": model, "provider": provider, "model_id": model_id,
               "temperature": c.planner.temperature, "top_p": c.planner.top_p,
               "max_steps": c.planner.steps.unwrap_or(10)})
    } else {
        json!({"model": "fanout", "provider": "fanout", "model_id": null, "temperature": null, "top_p": null, "max_steps": null})
    };
    let did = state.identity().map(|i| i.did().to_owned());
    let (author, gateway_id) = did
        .as_deref()
        .map_or((None, None), crate::identity::health_parts);
    let uptime = (state.started().elapsed().as_secs_f64() * 100.0).round() / 100.0;
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "health": "healthy",
        "runtime": {
            "storage_backend": "stateless",
            "bus_backend": "tokio-mpsc",
            "planner": planner,
            "recipe_count": state.runs().deps().recipes.count(),
            "did_signing_enabled": state.identity().is_some(),
            "hydra_integrated": state.hydra_integrated(),
            "a2a_protocols": ["0.3", "1.0"],
            "a2a_transports": ["jsonrpc-poll", "jsonrpc-sse"],
            "capabilities": {
                "sessions": c.sessions.enabled,
                "resume": c.resume.enabled,
                "catalogs": state.catalogs().iter().map(|catalog| json!({
                    "name": catalog.name, "description": catalog.description,
                    "skills": catalog.agents.iter().map(|a| a.skills.len()).sum::<usize>()
                })).collect::<Vec<Value>>()
            }
        },
        "application": {
            "name": "plangate",
            "session_mode": "stateless",
            "gateway_did": did,
            "gateway_id": gateway_id,
            "author": author
        },
        "system": {
            "node_version": RUSTC,
            "platform": platform(),
            "architecture": architecture(),
            "environment": c.environment
        },
        "status": "ok",
        "ready": true,
        "uptime_seconds": uptime
    })
}

/// `GET /health`.
pub async fn health(axum::extract::State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document(&state).to_string(),
    )
        .into_response()
}
