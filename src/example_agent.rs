//! A small, real A2A v0.3 agent for demos, tests and benchmarks (`plangate example-agent`).
//!
//! JSON-RPC at `POST /`, card at `/.well-known/agent.json` (and `agent-card.json`). Tasks are
//! created `submitted` and finish after `work_time`, evaluated lazily on `tasks/get`, so the agent
//! spawns nothing. Skills: `echo` (`echo: <text>`) and `shout` (upper case). Texts starting with
//! `fail` end `failed`; `ask:<question>` ends `input-required` with the question.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::{Value, json};

/// Tasks older than this are forgotten.
const TASK_RETENTION: Duration = Duration::from_secs(600);

struct TaskRecord {
    context_id: String,
    skill: String,
    text: String,
    created: Instant,
    canceled: bool,
}

struct AgentState {
    base_url: String,
    work_time: Duration,
    tasks: Mutex<HashMap<String, TaskRecord>>,
}

/// The agent's router; `base_url` is advertised in its card.
pub fn router(base_url: &str, work_time: Duration) -> Router {
    let state = Arc::new(AgentState {
        base_url: base_url.to_owned(),
        work_time,
        tasks: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", post(rpc))
        .route("/.well-known/agent.json", get(card))
        .route("/.well-known/agent-card.json", get(card))
        .with_state(state)
}

/// Serves the agent on `listener` until `shutdown` completes.
///
/// # Errors
/// The server failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    work_time: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let base = format!("http://{}", listener.local_addr()?);
    axum::serve(
        listener.tap_io(|tcp| {
            // Frames are small writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
            let _ = tcp.set_nodelay(true);
        }),
        router(&base, work_time),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn card(State(state): State<Arc<AgentState>>) -> Response {
    json_response(&json!({
        "name": "example-agent",
        "description": "plangate's built-in example agent: echoes or shouts the text it gets",
        "url": state.base_url,
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersion": "0.3.0",
        "capabilities": {"streaming": false, "pushNotifications": false},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {"id": "echo", "name": "echo", "description": "Repeats the request, prefixed with `echo: `.", "tags": ["demo"]},
            {"id": "shout", "name": "shout", "description": "Repeats the request in upper case.", "tags": ["demo"]}
        ]
    }))
}

fn json_response(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Response {
    json_response(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
}

fn result(id: &Value, result: &Value) -> Response {
    json_response(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn outcome(rec: &TaskRecord) -> (&'static str, String) {
    let text = rec.text.trim();
    if let Some(question) = text.strip_prefix("ask:") {
        return ("input-required", question.trim().to_owned());
    }
    if text.starts_with("fail") {
        return ("failed", format!("failed as requested: {text}"));
    }
    let answer = match rec.skill.as_str() {
        "shout" => text.to_uppercase(),
        _ => format!("echo: {text}"),
    };
    ("completed", answer)
}

fn snapshot(id: &str, rec: &TaskRecord, work_time: Duration) -> Value {
    let user = json!({"kind": "message", "role": "user", "messageId": uuid::Uuid::new_v4().to_string(),
        "parts": [{"kind": "text", "text": rec.text}]});
    let mut task = json!({"kind": "task", "id": id, "contextId": rec.context_id,
        "status": {"state": "working"}, "history": [user]});
    if rec.canceled {
        task["status"] = json!({"state": "canceled"});
    } else if rec.created.elapsed() >= work_time {
        let (state, text) = outcome(rec);
        let agent_msg = json!({"kind": "message", "role": "agent", "messageId": uuid::Uuid::new_v4().to_string(),
            "parts": [{"kind": "text", "text": text}]});
        match state {
            "completed" => {
                task["artifacts"] = json!([{"artifactId": uuid::Uuid::new_v4().to_string(), "name": "result",
                    "parts": [{"kind": "text", "text": text}]}]);
                task["status"] = json!({"state": state});
            }
            _ => task["status"] = json!({"state": state, "message": agent_msg}),
        }
    }
    task
}

async fn rpc(State(state): State<Arc<AgentState>>, body: axum::body::Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return rpc_error(&Value::Null, -32700, "Parse error");
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let params = req.get("params").cloned().unwrap_or(Value::Null);
    let task_param = || {
        params
            .get("taskId")
            .or_else(|| params.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut tasks = state
        .tasks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match req.get("method").and_then(Value::as_str) {
        Some("message/send") => {
            let Some(message) = params.get("message") else {
                return rpc_error(&id, -32602, "params.message is required");
            };
            let text = message
                .get("parts")
                .and_then(Value::as_array)
                .map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            let task_id = message
                .get("taskId")
                .and_then(Value::as_str)
                .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
            if tasks.contains_key(&task_id) {
                return rpc_error(&id, -32008, "Task is immutable");
            }
            tasks.retain(|_, t| t.created.elapsed() < TASK_RETENTION);
            let rec = TaskRecord {
                context_id: message
                    .get("contextId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                skill: message
                    .get("metadata")
                    .and_then(|m| m.get("skillId"))
                    .and_then(Value::as_str)
                    .unwrap_or("echo")
                    .to_owned(),
                text,
                created: Instant::now(),
                canceled: false,
            };
            let mut task = snapshot(&task_id, &rec, Duration::MAX);
            task["status"] = json!({"state": "submitted"});
            tasks.insert(task_id, rec);
            result(&id, &task)
        }
        Some("tasks/get") => match task_param()
            .and_then(|t| tasks.get(&t).map(|r| snapshot(&t, r, state.work_time)))
        {
            Some(task) => result(&id, &task),
            None => rpc_error(&id, -32001, "Task not found"),
        },
        Some("tasks/cancel") => {
            let Some(task_id) = task_param() else {
                return rpc_error(&id, -32602, "params.taskId is required");
            };
            match tasks.get_mut(&task_id) {
                None => rpc_error(&id, -32001, "Task not found"),
                Some(rec) if !rec.canceled && rec.created.elapsed() >= state.work_time => {
                    rpc_error(&id, -32002, "Task cannot be canceled")
                }
                Some(rec) => {
                    rec.canceled = true;
                    result(&id, &snapshot(&task_id, rec, state.work_time))
                }
            }
        }
        _ => rpc_error(&id, -32601, "Method not found"),
    }
}
