//! A scripted A2A v0.3 peer: card at `/.well-known/agent.json`, JSON-RPC at `POST /`, a per-task
//! state machine advanced by each `tasks/get`. Records every request with its headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// How the peer answers every message.
#[derive(Debug, Clone)]
pub(crate) enum Script {
    /// `submitted`, then `working` for this many polls, then `completed` with `echo: <input>`.
    Complete { working_polls: usize },
    /// The send answers a Message `reply: <input>`.
    Message,
    /// `input-required` on the first poll, with the question in `status.message`.
    InputRequired(String),
    /// `failed` on the first poll with a status message.
    Fail,
    /// `working` on every poll, forever.
    WorkForever,
    /// The send never answers.
    HangOnSend,
    /// Every request answers this HTTP status and body.
    Http(u16, String),
    /// Every send answers this JSON-RPC error (HTTP 200).
    RpcError(i64, String),
    /// 200 with a body that is not a JSON-RPC envelope.
    BadEnvelope,
    /// Polls fail with HTTP 503 (no JSON-RPC error).
    PollsUnavailable,
    /// `completed` on the first poll with one artifact holding these parts.
    Artifact(Value),
}

#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) body: Value,
    /// The exact bytes received.
    pub(crate) raw: String,
    pub(crate) headers: HeaderMap,
}

struct PeerState {
    script: Script,
    card: Value,
    requests: Mutex<Vec<Recorded>>,
    /// task id → (polls so far, input text)
    tasks: Mutex<HashMap<String, (usize, String)>>,
}

pub(crate) struct FakePeer {
    pub(crate) url: String,
    state: Arc<PeerState>,
}

fn ok(id: &Value, result: Value) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn task(id: &str, state: &str, extra: Value) -> Value {
    let mut t = json!({"kind": "task", "id": id, "contextId": "ctx", "status": {"state": state}});
    if let (Some(obj), Value::Object(extra)) = (t.as_object_mut(), extra) {
        for (k, v) in extra {
            obj.insert(k, v);
        }
    }
    t
}

async fn rpc(State(state): State<Arc<PeerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = req["method"].as_str().unwrap_or("").to_owned();
    state.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        body: req.clone(),
        raw: String::from_utf8_lossy(&body).into_owned(),
        headers,
    });
    let id = req["id"].clone();
    if let Script::Http(code, body) = &state.script {
        return (StatusCode::from_u16(*code).unwrap(), body.clone()).into_response();
    }
    match method.as_str() {
        "message/send" => {
            let input = req["params"]["message"]["parts"][0]["text"].as_str().unwrap_or("").to_owned();
            let task_id = req["params"]["message"]["taskId"].as_str().unwrap_or("server-task").to_owned();
            match &state.script {
                Script::RpcError(code, message) => {
                    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})).into_response()
                }
                Script::BadEnvelope => axum::Json(json!([1, 2, 3])).into_response(),
                Script::Message => ok(&id, json!({"kind": "message", "role": "agent", "messageId": "m1",
                    "parts": [{"kind": "text", "text": format!("reply: {input}")}]})),
                Script::HangOnSend => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    StatusCode::GATEWAY_TIMEOUT.into_response()
                }
                _ => {
                    state.tasks.lock().unwrap().insert(task_id.clone(), (0, input));
                    ok(&id, task(&task_id, "submitted", json!({})))
                }
            }
        }
        "tasks/get" => {
            let task_id = req["params"]["taskId"].as_str().or(req["params"]["id"].as_str()).unwrap_or("").to_owned();
            let mut tasks = state.tasks.lock().unwrap();
            let Some((polls, input)) = tasks.get_mut(&task_id) else {
                return axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32001, "message": "Task not found"}})).into_response();
            };
            *polls += 1;
            let result = match &state.script {
                Script::Complete { working_polls } if *polls <= *working_polls => task(&task_id, "working", json!({})),
                Script::Complete { .. } => task(&task_id, "completed", json!({"artifacts": [{"artifactId": "a1",
                    "parts": [{"kind": "text", "text": format!("echo: {input}")}]}]})),
                Script::InputRequired(q) => task(&task_id, "input-required", json!({"status": {"state": "input-required",
                    "message": {"role": "agent", "parts": [{"kind": "text", "text": q}]}}})),
                Script::Fail => task(&task_id, "failed", json!({"status": {"state": "failed",
                    "message": {"role": "agent", "parts": [{"kind": "text", "text": "it broke"}]}}})),
                Script::PollsUnavailable => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
                Script::Artifact(parts) => task(&task_id, "completed", json!({"artifacts": [{"artifactId": "a1", "parts": parts}]})),
                _ => task(&task_id, "working", json!({})),
            };
            ok(&id, result)
        }
        "tasks/cancel" => {
            let task_id = req["params"]["taskId"].as_str().unwrap_or("").to_owned();
            ok(&id, task(&task_id, "canceled", json!({})))
        }
        _ => axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}})).into_response(),
    }
}

impl FakePeer {
    pub(crate) async fn start(script: Script) -> Self {
        Self::start_with_card(
            script,
            json!({"name": "fake", "capabilities": {"streaming": false}}),
        )
        .await
    }

    pub(crate) async fn start_with_card(script: Script, card: Value) -> Self {
        let state = Arc::new(PeerState {
            script,
            card,
            requests: Mutex::new(Vec::new()),
            tasks: Mutex::new(HashMap::new()),
        });
        let card_state = Arc::clone(&state);
        let app = Router::new()
            .route("/", post(rpc))
            .route(
                "/.well-known/agent.json",
                get(move || {
                    let card = card_state.card.clone();
                    async move { axum::Json(card) }
                }),
            )
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        #[expect(clippy::disallowed_methods, reason = "fake server lives for the test")]
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub(crate) fn count(&self, method: &str) -> usize {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// An agent entry for this peer with one default-schema skill.
    pub(crate) fn agent(&self, name: &str, skill: &str) -> Value {
        json!({"name": name, "endpoint": self.url, "skills": [{"id": skill, "description": format!("The {skill} skill")}]})
    }
}
