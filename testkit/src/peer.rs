//! A scripted A2A peer in both dialects: card at `/.well-known/agent.json` (or
//! `agent-card.json`), JSON-RPC at `POST /` answering v0.3 names (`message/send`, …) and v1.0 names
//! (`SendMessage`, …, results wrapped and states spelled `TASK_STATE_*`), a per-task state machine
//! advanced by each poll. Records every request with its headers unless told to stay quiet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
pub enum Script {
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
    /// `completed` on the first poll, no artifact, a status message holding these parts.
    StatusParts(Value),
    /// The send answers `input-required` at once with this question; a later send on that task
    /// (its `taskId`) answers `completed` with `echo: <the answer>`.
    AskOnce(String),
    /// Streaming methods answer these SSE events (`{id}` in strings is replaced by the task id),
    /// 30 ms apart, then close; polls of the task answer `completed` with `echo: <input>`.
    Stream(Vec<Value>),
    /// A client-chosen `taskId` is answered -32001 (a2a-sdk); without one, a server id is used.
    RejectClientTaskId,
    /// The send answers a `completed` task with `echo: <input>` at once (no polls).
    Instant,
    /// The inner script after a precise wait on the send, logged under the input text.
    Delayed(Duration, Box<Script>),
    /// `submitted`, then `working` until this long after the send, then `completed`.
    CompleteAfter(Duration),
    /// Like `Stream`, each event after its own pause.
    StreamTimed(Vec<(Duration, Value)>),
    /// A script per skill id (`metadata.skillId` of the message), `otherwise` for the rest.
    PerSkill {
        skills: Vec<(String, Script)>,
        otherwise: Box<Script>,
    },
}

impl Script {
    /// The script that answers a message to `skill`.
    fn for_skill(&self, skill: &str) -> &Self {
        match self {
            Self::PerSkill { skills, otherwise } => skills
                .iter()
                .find(|(id, _)| id == skill)
                .map_or(otherwise.as_ref(), |(_, s)| s)
                .for_skill(skill),
            other => other,
        }
    }
}

/// Options beyond the script.
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    pub card: Option<Value>,
    /// v0.3 method names answer -32601 (or `v03_refusal_code`).
    pub v1_only: bool,
    /// The code a `v1_only` peer refuses v0.3 names with (-32601 when unset; the JS SDK: -32009).
    pub v03_refusal_code: Option<i64>,
    /// The card routes answer 404.
    pub no_card: bool,
    /// The card is served only to requests carrying `A2A-Version: 1.x`; others get HTTP 400
    /// (the JS SDK with v0.3 compatibility on and a card that lists only 1.0 interfaces).
    pub card_needs_v1_header: bool,
    /// Requests are counted but not recorded (benchmarks: memory stays flat).
    pub quiet: bool,
}

/// When a task was sent and first polled.
#[derive(Debug, Clone, Copy)]
pub struct TaskTiming {
    pub sent: Instant,
    pub first_poll: Option<Instant>,
}

/// What the peer keeps of one task.
struct TaskRecord {
    polls: usize,
    input: String,
    script: Script,
    timing: TaskTiming,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub body: Value,
    /// The exact bytes received.
    pub raw: String,
    pub headers: HeaderMap,
}

struct PeerState {
    script: Script,
    card: Value,
    options: PeerOptions,
    requests: Mutex<Vec<Recorded>>,
    /// Requests per method (kept when quiet too).
    counts: Mutex<HashMap<String, usize>>,
    tasks: Mutex<HashMap<String, TaskRecord>>,
    delays: Arc<crate::DelayLog>,
    /// Tasks left `input-required` by `AskOnce`.
    asked: Mutex<std::collections::HashSet<String>>,
}

pub struct FakePeer {
    pub url: String,
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

fn stream_response(events: Vec<(Duration, Value)>) -> Response {
    let stream = futures::stream::iter(events).then(|(pause, e)| async move {
        tokio::time::sleep(pause).await;
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
    *state
        .counts
        .lock()
        .unwrap()
        .entry(method.clone())
        .or_default() += 1;
    if !state.options.quiet {
        state.requests.lock().unwrap().push(Recorded {
            method: method.clone(),
            body: req.clone(),
            raw: String::from_utf8_lossy(&body).into_owned(),
            headers,
        });
    }
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

fn rpc_error(id: &Value, code: i64, message: &str) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
        .into_response()
}

fn echo_artifacts(input: &str) -> Value {
    json!({"artifacts": [{"artifactId": "a1", "parts": [{"kind": "text", "text": format!("echo: {input}")}]}]})
}

async fn rpc_v03(state: &Arc<PeerState>, method: &str, req: &Value, id: Value) -> Response {
    let message = &req["params"]["message"];
    let skill = message["metadata"]["skillId"].as_str().unwrap_or("");
    match method {
        "message/send" | "message/stream" => {
            let mut script = state.script.for_skill(skill);
            let input = message["parts"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            while let Script::Delayed(d, inner) = script {
                let took = crate::precise_sleep(*d).await;
                state.delays.add(&input, took);
                script = inner.for_skill(skill);
            }
            let client_task_id = message["taskId"].as_str().map(str::to_owned);
            if matches!(script, Script::RejectClientTaskId)
                && let Some(t) = &client_task_id
            {
                return rpc_error(&id, -32001, &format!("Task {t} not found"));
            }
            let task_id =
                client_task_id.unwrap_or_else(|| format!("server-{}", uuid::Uuid::new_v4()));
            if method == "message/stream" {
                return stream(state, script, &id, task_id, input);
            }
            match script {
                Script::RpcError(code, message) => rpc_error(&id, *code, message),
                Script::BadEnvelope => axum::Json(json!([1, 2, 3])).into_response(),
                Script::Message => ok(
                    &id,
                    json!({"kind": "message", "role": "agent", "messageId": "m1",
                    "parts": [{"kind": "text", "text": format!("reply: {input}")}]}),
                ),
                Script::HangOnSend => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    StatusCode::GATEWAY_TIMEOUT.into_response()
                }
                Script::Instant => ok(&id, task(&task_id, "completed", echo_artifacts(&input))),
                Script::AskOnce(question) => {
                    if state.asked.lock().unwrap().remove(&task_id) {
                        ok(&id, task(&task_id, "completed", echo_artifacts(&input)))
                    } else {
                        state.asked.lock().unwrap().insert(task_id.clone());
                        ok(
                            &id,
                            task(
                                &task_id,
                                "input-required",
                                json!({"status": {"state": "input-required",
                                "message": {"role": "agent", "parts": [{"kind": "text", "text": question}]}}}),
                            ),
                        )
                    }
                }
                _ => {
                    state.tasks.lock().unwrap().insert(
                        task_id.clone(),
                        TaskRecord {
                            polls: 0,
                            input,
                            script: script.clone(),
                            timing: TaskTiming {
                                sent: Instant::now(),
                                first_poll: None,
                            },
                        },
                    );
                    ok(&id, task(&task_id, "submitted", json!({})))
                }
            }
        }
        "tasks/get" => {
            let task_id = req["params"]["taskId"]
                .as_str()
                .or(req["params"]["id"].as_str())
                .unwrap_or("")
                .to_owned();
            let mut tasks = state.tasks.lock().unwrap();
            let Some(t) = tasks.get_mut(&task_id) else {
                return rpc_error(&id, -32001, "Task not found");
            };
            t.polls += 1;
            t.timing.first_poll.get_or_insert_with(Instant::now);
            let input = &t.input;
            let result = match &t.script {
                Script::Complete { working_polls } if t.polls <= *working_polls => {
                    task(&task_id, "working", json!({}))
                }
                Script::Complete { .. } => task(&task_id, "completed", echo_artifacts(input)),
                Script::CompleteAfter(after) if t.timing.sent.elapsed() < *after => {
                    task(&task_id, "working", json!({}))
                }
                Script::CompleteAfter(_) => task(&task_id, "completed", echo_artifacts(input)),
                Script::InputRequired(q) => task(
                    &task_id,
                    "input-required",
                    json!({"status": {"state": "input-required",
                    "message": {"role": "agent", "parts": [{"kind": "text", "text": q}]}}}),
                ),
                Script::Fail => task(
                    &task_id,
                    "failed",
                    json!({"status": {"state": "failed",
                    "message": {"role": "agent", "parts": [{"kind": "text", "text": "it broke"}]}}}),
                ),
                Script::PollsUnavailable => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
                Script::Artifact(parts) => task(
                    &task_id,
                    "completed",
                    json!({"artifacts": [{"artifactId": "a1", "parts": parts}]}),
                ),
                Script::StatusParts(parts) => task(
                    &task_id,
                    "completed",
                    json!({"status": {"state": "completed",
                        "message": {"role": "agent", "parts": parts}}}),
                ),
                Script::Stream(_) | Script::StreamTimed(_) | Script::RejectClientTaskId => {
                    task(&task_id, "completed", echo_artifacts(input))
                }
                _ => task(&task_id, "working", json!({})),
            };
            ok(&id, result)
        }
        "tasks/cancel" => {
            let task_id = req["params"]["taskId"]
                .as_str()
                .or(req["params"]["id"].as_str())
                .unwrap_or("")
                .to_owned();
            ok(&id, task(&task_id, "canceled", json!({})))
        }
        _ => rpc_error(&id, -32601, "Method not found"),
    }
}

/// The answer to a streaming send.
fn stream(
    state: &Arc<PeerState>,
    script: &Script,
    id: &Value,
    task_id: String,
    input: String,
) -> Response {
    let events: Vec<(Duration, Value)> = match script {
        Script::RejectClientTaskId => vec![
            (
                Duration::from_millis(30),
                json!({"kind": "artifact-update", "taskId": task_id, "artifact": {"artifactId": "a1", "parts": [{"kind": "text", "text": format!("echo: {input}")}]}}),
            ),
            (
                Duration::from_millis(30),
                json!({"kind": "status-update", "taskId": task_id, "status": {"state": "completed"}, "final": true}),
            ),
        ],
        Script::Stream(events) => events
            .iter()
            .map(|e| (Duration::from_millis(30), fill(e, &task_id)))
            .collect(),
        Script::StreamTimed(events) => events
            .iter()
            .map(|(d, e)| (*d, fill(e, &task_id)))
            .collect(),
        _ => return rpc_error(id, -32004, "streaming is not supported"),
    };
    if !matches!(script, Script::RejectClientTaskId) {
        state.tasks.lock().unwrap().insert(
            task_id,
            TaskRecord {
                polls: 0,
                input,
                script: script.clone(),
                timing: TaskTiming {
                    sent: Instant::now(),
                    first_poll: None,
                },
            },
        );
    }
    stream_response(events)
}

impl FakePeer {
    pub async fn start(script: Script) -> Self {
        Self::start_with_card(
            script,
            json!({"name": "fake", "capabilities": {"streaming": false}}),
        )
        .await
    }

    pub async fn start_with_card(script: Script, card: Value) -> Self {
        Self::start_with(
            script,
            PeerOptions {
                card: Some(card),
                ..PeerOptions::default()
            },
        )
        .await
    }

    pub async fn start_with(script: Script, options: PeerOptions) -> Self {
        Self::start_logged(script, options, Arc::default()).await
    }

    /// Like [`FakePeer::start_with`], logging deliberate waits ([`Script::Delayed`]) in
    /// `delays`.
    pub async fn start_logged(
        script: Script,
        options: PeerOptions,
        delays: Arc<crate::DelayLog>,
    ) -> Self {
        let card = options
            .card
            .clone()
            .unwrap_or_else(|| json!({"name": "fake", "capabilities": {"streaming": false}}));
        let state = Arc::new(PeerState {
            script,
            card,
            options,
            requests: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
            delays,
            asked: Mutex::default(),
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
            // Messages with files are as big as real peers take (axum's default is 2 MB).
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(Arc::clone(&state));
        let url = crate::serve(app).await;
        Self { url, state }
    }

    /// The requests received so far (none when quiet).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests received with this JSON-RPC method name.
    pub fn count(&self, method: &str) -> usize {
        self.state
            .counts
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// When each task still known was sent and first polled.
    pub fn task_timings(&self) -> Vec<TaskTiming> {
        self.state
            .tasks
            .lock()
            .unwrap()
            .values()
            .map(|t| t.timing)
            .collect()
    }

    /// Forgets every task (and so its timings).
    pub fn forget_tasks(&self) {
        self.state.tasks.lock().unwrap().clear();
    }

    /// An agent entry for this peer with one default-schema skill.
    pub fn agent(&self, name: &str, skill: &str) -> Value {
        json!({"name": name, "endpoint": self.url, "skills": [{"id": skill, "description": format!("The {skill} skill")}]})
    }
}
