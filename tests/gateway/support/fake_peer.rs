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
use futures::StreamExt;
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
    /// Streaming methods answer these SSE events (`{id}` in strings is replaced by the task id),
    /// 30 ms apart, then close; polls of the task answer `completed` with `echo: <input>`.
    Stream(Vec<Value>),
    /// A client-chosen `taskId` is answered -32001 (a2a-sdk); without one, a server id is used.
    RejectClientTaskId,
}

/// Options beyond the script.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerOptions {
    pub(crate) card: Option<Value>,
    /// v0.3 method names answer -32601 (or `v03_refusal_code`).
    pub(crate) v1_only: bool,
    /// The code a `v1_only` peer refuses v0.3 names with (-32601 when unset; the JS SDK: -32009).
    pub(crate) v03_refusal_code: Option<i64>,
    /// The card routes answer 404.
    pub(crate) no_card: bool,
    /// The card is served only to requests carrying `A2A-Version: 1.x`; others get HTTP 400
    /// (the JS SDK with v0.3 compatibility on and a card that lists only 1.0 interfaces).
    pub(crate) card_needs_v1_header: bool,
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
    options: PeerOptions,
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

fn fill(v: &Value, task_id: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{id}", task_id)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, task_id)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill(x, task_id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn stream_response(events: Vec<Value>) -> Response {
    let stream = futures::stream::iter(events).then(|e| async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok::<Bytes, std::convert::Infallible>(Bytes::from(format!("data: {e}\n\n")))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from_stream(stream))
        .unwrap()
}

/// Rewrites a v0.3 task into its v1.0 spelling (states, no `kind`).
fn to_v1(mut t: Value) -> Value {
    if let Some(o) = t.as_object_mut() {
        o.remove("kind");
    }
    if let Some(state) = t["status"]["state"].as_str() {
        t["status"]["state"] = json!(format!(
            "TASK_STATE_{}",
            state.to_uppercase().replace('-', "_")
        ));
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
    let v1 = matches!(
        method.as_str(),
        "SendMessage" | "SendStreamingMessage" | "GetTask" | "CancelTask"
    );
    if state.options.v1_only && !v1 {
        let code = state.options.v03_refusal_code.unwrap_or(-32601);
        return axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": "Method not found or version not supported"}})).into_response();
    }
    let method = match method.as_str() {
        "SendMessage" => "message/send".to_owned(),
        "SendStreamingMessage" => "message/stream".to_owned(),
        "GetTask" => "tasks/get".to_owned(),
        "CancelTask" => "tasks/cancel".to_owned(),
        other => other.to_owned(),
    };
    let response = rpc_v03(&state, &method, &req, id.clone()).await;
    if !v1 {
        return response;
    }
    // v1.0: wrap send results as {"task": …} and spell states TASK_STATE_*.
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    if v.get("result").is_some_and(|r| r.get("status").is_some()) {
        let task = to_v1(v["result"].take());
        v["result"] = if method == "message/send" {
            json!({"task": task})
        } else {
            task
        };
    }
    axum::Json(v).into_response()
}

async fn rpc_v03(state: &Arc<PeerState>, method: &str, req: &Value, id: Value) -> Response {
    match method {
        "message/send" => {
            let input = req["params"]["message"]["parts"][0]["text"].as_str().unwrap_or("").to_owned();
            let client_task_id = req["params"]["message"]["taskId"].as_str().map(str::to_owned);
            if matches!(state.script, Script::RejectClientTaskId) && let Some(t) = &client_task_id {
                return axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32001, "message": format!("Task {t} not found")}})).into_response();
            }
            let task_id = client_task_id.unwrap_or_else(|| format!("server-{}", uuid::Uuid::new_v4()));
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
        "message/stream" => {
            let input = req["params"]["message"]["parts"][0]["text"].as_str().unwrap_or("").to_owned();
            let client_task_id = req["params"]["message"]["taskId"].as_str().map(str::to_owned);
            if matches!(state.script, Script::RejectClientTaskId) && let Some(t) = &client_task_id {
                return axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32001, "message": format!("Task {t} not found")}})).into_response();
            }
            let task_id = client_task_id.unwrap_or_else(|| format!("server-{}", uuid::Uuid::new_v4()));
            match &state.script {
                Script::RejectClientTaskId => stream_response(vec![
                    json!({"kind": "artifact-update", "taskId": task_id, "artifact": {"artifactId": "a1", "parts": [{"kind": "text", "text": format!("echo: {input}")}]}}),
                    json!({"kind": "status-update", "taskId": task_id, "status": {"state": "completed"}, "final": true}),
                ]),
                Script::Stream(events) => {
                    state.tasks.lock().unwrap().insert(task_id.clone(), (0, input));
                    stream_response(events.iter().map(|e| fill(e, &task_id)).collect())
                }
                _ => axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32004, "message": "streaming is not supported"}})).into_response(),
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
                Script::Stream(_) | Script::RejectClientTaskId => task(&task_id, "completed", json!({"artifacts": [{"artifactId": "a1",
                    "parts": [{"kind": "text", "text": format!("echo: {input}")}]}]})),
                _ => task(&task_id, "working", json!({})),
            };
            ok(&id, result)
        }
        "tasks/cancel" => {
            let task_id = req["params"]["taskId"].as_str().or(req["params"]["id"].as_str()).unwrap_or("").to_owned();
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
        Self::start_with(
            script,
            PeerOptions {
                card: Some(card),
                ..PeerOptions::default()
            },
        )
        .await
    }

    pub(crate) async fn start_with(script: Script, options: PeerOptions) -> Self {
        let card = options
            .card
            .clone()
            .unwrap_or_else(|| json!({"name": "fake", "capabilities": {"streaming": false}}));
        let state = Arc::new(PeerState {
            script,
            card,
            options,
            requests: Mutex::new(Vec::new()),
            tasks: Mutex::new(HashMap::new()),
        });
        let card_state = Arc::clone(&state);
        let serve_card = move |headers: HeaderMap| {
            let card = card_state.card.clone();
            let options = card_state.options.clone();
            async move {
                let v1 = headers
                    .get("a2a-version")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("1."));
                if options.no_card {
                    StatusCode::NOT_FOUND.into_response()
                } else if options.card_needs_v1_header && !v1 {
                    (StatusCode::BAD_REQUEST, axum::Json(json!({"code": -32009,
                        "message": "AgentCard must have at least one interface with a protocol version in [0.3, 1.0)."})))
                        .into_response()
                } else {
                    axum::Json(card).into_response()
                }
            }
        };
        let card_path = if state.options.card_needs_v1_header {
            "/.well-known/agent-card.json"
        } else {
            "/.well-known/agent.json"
        };
        let app = Router::new()
            .route("/", post(rpc))
            .route(card_path, get(serve_card))
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
