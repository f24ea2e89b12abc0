//! A fake OpenAI-compatible Chat Completions server. Scripted: turns are consumed in order and an
//! unscripted turn answers 500 (failing the test that reads it). By policy: every request is
//! answered by a function of its body (benchmarks, where nothing is recorded).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Turn {
    /// Streamed text, then `finish_reason: stop`.
    Text(String),
    /// Optional narration, then tool calls `(id, name, arguments)` with split argument deltas.
    Tools(String, Vec<(String, String, String)>),
    /// An HTTP error with this body.
    Status(u16, String),
    /// HTTP 429 with this `Retry-After` value.
    RetryAfter(String),
    /// A recorded SSE body, served verbatim.
    Replay(String),
    /// Some text, then an in-stream `error` object.
    MidstreamError(String),
    /// One chunk, then silence until the client goes away.
    Hang,
    /// A non-streaming completion with this text, answered after the delay.
    Completion(String, std::time::Duration),
    /// The inner turn after a precise wait, recorded in the delay log under the request's
    /// first user text (a benchmark's plan tag).
    Delayed(std::time::Duration, Box<Turn>),
    /// SSE events written one by one, `gap` apart (a provider streaming token by token); when the
    /// event at `mark` is handed to the server, the time is recorded ([`FakeLlm::marks`]).
    Paced {
        events: Arc<Vec<Bytes>>,
        gap: std::time::Duration,
        mark: Option<usize>,
    },
}

impl Turn {
    pub fn text(t: &str) -> Self {
        Self::Text(t.to_owned())
    }

    pub fn call(id: &str, name: &str, args: Value) -> Self {
        Self::Tools(
            String::new(),
            vec![(id.to_owned(), name.to_owned(), args.to_string())],
        )
    }

    pub fn calls(calls: &[(&str, &str, Value)]) -> Self {
        Self::Tools(
            String::new(),
            calls
                .iter()
                .map(|(i, n, a)| ((*i).to_owned(), (*n).to_owned(), a.to_string()))
                .collect(),
        )
    }
}

/// Answers a request (its raw body) with a turn.
pub type Policy = Box<dyn Fn(&[u8]) -> Turn + Send + Sync>;

struct LlmState {
    turns: Mutex<VecDeque<Turn>>,
    policy: Option<Policy>,
    /// Whether requests are recorded (off for benchmarks).
    record: bool,
    delays: Arc<crate::DelayLog>,
    requests: Mutex<Vec<Value>>,
    /// When each request arrived.
    arrivals: Mutex<Vec<std::time::Instant>>,
    headers: Mutex<Vec<axum::http::HeaderMap>>,
    served: AtomicUsize,
    /// When the marked event of each [`Turn::Paced`] went out.
    marks: Arc<Mutex<Vec<std::time::Instant>>>,
    /// Streams whose client went away before the end.
    dropped: Arc<AtomicUsize>,
}

pub struct FakeLlm {
    pub url: String,
    state: Arc<LlmState>,
}

fn chunk(v: &Value) -> String {
    format!("data: {v}\n\n")
}

fn delta(d: Value) -> String {
    chunk(
        &json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake",
        "choices": [{"index": 0, "delta": d, "finish_reason": null}]}),
    )
}

fn finish(reason: &str) -> String {
    chunk(
        &json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake",
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}),
    )
}

fn usage() -> String {
    chunk(
        &json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake",
        "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 2}}}),
    )
}

fn split3(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len().div_ceil(3).max(1);
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

struct DropCounter(Arc<AtomicUsize>, bool);
impl Drop for DropCounter {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn sse(chunks: Vec<String>) -> Response {
    let body = Body::from_stream(futures::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<Bytes, Infallible>(Bytes::from(c))),
    ));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .unwrap()
}

/// The first user message's text: the tag a benchmark gives a plan.
fn first_user_text(request: &Value) -> &str {
    request["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
}

async fn completions(
    State(state): State<Arc<LlmState>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let n = state.served.fetch_add(1, Ordering::SeqCst);
    let turn = match &state.policy {
        // A policy reads the raw bytes: a benchmark's fake should cost next to nothing.
        Some(policy) => Some(policy(&body)),
        None => state.turns.lock().unwrap().pop_front(),
    };
    let parse = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let tag = if matches!(turn, Some(Turn::Delayed(..))) {
        first_user_text(&parse()).to_owned()
    } else {
        String::new()
    };
    if state.record {
        state.requests.lock().unwrap().push(parse());
        state
            .arrivals
            .lock()
            .unwrap()
            .push(std::time::Instant::now());
        state.headers.lock().unwrap().push(headers);
    }
    let Some(mut turn) = turn else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unscripted turn {n}"),
        )
            .into_response();
    };
    while let Turn::Delayed(d, inner) = turn {
        let took = crate::precise_sleep(d).await;
        state.delays.add(&tag, took);
        turn = *inner;
    }
    match turn {
        Turn::Delayed(..) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Turn::Text(t) => {
            let mut c = vec![delta(json!({"role": "assistant", "content": ""}))];
            c.extend(split3(&t).into_iter().map(|p| delta(json!({"content": p}))));
            c.push(finish("stop"));
            c.push(usage());
            c.push("data: [DONE]\n\n".to_owned());
            sse(c)
        }
        Turn::Tools(text, calls) => {
            let mut c = vec![delta(json!({"role": "assistant", "content": ""}))];
            if !text.is_empty() {
                c.extend(
                    split3(&text)
                        .into_iter()
                        .map(|p| delta(json!({"content": p}))),
                );
            }
            for (i, (id, name, args)) in calls.iter().enumerate() {
                c.push(delta(json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]})));
                for piece in split3(args) {
                    c.push(delta(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                    ));
                }
            }
            c.push(finish("tool_calls"));
            c.push(usage());
            c.push("data: [DONE]\n\n".to_owned());
            sse(c)
        }
        Turn::Completion(text, delay) => {
            tokio::time::sleep(delay).await;
            axum::Json(json!({"id": "chatcmpl-s", "object": "chat.completion", "created": 1, "model": "fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})).into_response()
        }
        Turn::Status(code, body) => (
            StatusCode::from_u16(code).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Turn::RetryAfter(value) => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("content-type", "application/json"),
                ("retry-after", value.as_str()),
            ],
            r#"{"error":{"message":"slow down"}}"#.to_owned(),
        )
            .into_response(),
        Turn::Replay(raw) => sse(vec![raw]),
        Turn::Paced { events, gap, mark } => {
            let marks = Arc::clone(&state.marks);
            let stream = futures::stream::iter(0..events.len()).then(move |i| {
                let (events, marks) = (Arc::clone(&events), Arc::clone(&marks));
                async move {
                    if i > 0 && !gap.is_zero() {
                        tokio::time::sleep(gap).await;
                    }
                    if mark == Some(i) {
                        marks.lock().unwrap().push(std::time::Instant::now());
                    }
                    Ok::<Bytes, Infallible>(events[i].clone())
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Turn::MidstreamError(t) => sse(vec![
            delta(json!({"role": "assistant", "content": t})),
            chunk(&json!({"error": {"code": 502, "message": "upstream exploded"}})),
            "data: [DONE]\n\n".to_owned(),
        ]),
        Turn::Hang => {
            let guard = DropCounter(Arc::clone(&state.dropped), false);
            let first = futures::stream::iter([Ok::<Bytes, Infallible>(Bytes::from(delta(
                json!({"role": "assistant", "content": "thinking"}),
            )))]);
            let rest = futures::stream::once(async move {
                let _g = guard;
                std::future::pending::<()>().await;
                Ok::<Bytes, Infallible>(Bytes::new())
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(first.chain(rest)))
                .unwrap()
        }
    }
}

impl FakeLlm {
    /// A server that answers `turns` in order and records every request.
    pub async fn start(turns: Vec<Turn>) -> Self {
        Self::start_inner(turns, None, true, Arc::default()).await
    }

    /// A server that answers every request by `policy`, records nothing, and logs its
    /// deliberate waits ([`Turn::Delayed`]) in `delays`.
    pub async fn with_policy(policy: Policy, delays: Arc<crate::DelayLog>) -> Self {
        Self::start_inner(Vec::new(), Some(policy), false, delays).await
    }

    /// A server that answers every request by `policy` and records every request (a test
    /// whose answers depend on what the gateway sent, such as ids it minted).
    pub async fn recording(policy: Policy) -> Self {
        Self::start_inner(Vec::new(), Some(policy), true, Arc::default()).await
    }

    async fn start_inner(
        turns: Vec<Turn>,
        policy: Option<Policy>,
        record: bool,
        delays: Arc<crate::DelayLog>,
    ) -> Self {
        let state = Arc::new(LlmState {
            turns: Mutex::new(turns.into()),
            policy,
            record,
            delays,
            requests: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
            headers: Mutex::new(Vec::new()),
            served: AtomicUsize::new(0),
            marks: Arc::default(),
            dropped: Arc::new(AtomicUsize::new(0)),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(Arc::clone(&state));
        let url = format!("{}/v1", crate::serve(app).await);
        Self { url, state }
    }

    /// Request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.state.arrivals.lock().unwrap().clone()
    }

    pub fn authorization(&self, i: usize) -> Option<String> {
        self.state.headers.lock().unwrap()[i]
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// When the marked event of each [`Turn::Paced`] answer went out, in order.
    pub fn marks(&self) -> Vec<std::time::Instant> {
        self.state.marks.lock().unwrap().clone()
    }

    /// Forgets the recorded marks.
    pub fn clear_marks(&self) {
        self.state.marks.lock().unwrap().clear();
    }

    /// Streams abandoned by the client before their end.
    pub fn dropped_streams(&self) -> usize {
        self.state.dropped.load(Ordering::SeqCst)
    }

    /// Turns not yet consumed.
    pub fn remaining(&self) -> usize {
        self.state.turns.lock().unwrap().len()
    }
}
