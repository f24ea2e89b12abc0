//! A plan's events as a chat completion: the whole answer in one `chat.completion`, or
//! `chat.completion.chunk`s with the answer's text deltas, peer activity riding along in a
//! `plangate` field on chunks with an empty delta (`{"event": "task.started", …}`), which
//! clients that do not know it ignore.

use std::collections::HashMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::error::plan_failure;
use crate::api::http::sse::door_stream;
use crate::planner::event::PlanEvent;
use crate::run::PlanGuard;
use crate::run::answer::{Answer, NO_ANSWER, file_links};

/// What one plan event means for a chat client.
pub(crate) enum Out {
    /// Answer text.
    Text(String),
    /// Peer activity (the `plangate` extension).
    Activity(Value),
    /// The plan succeeded: finish reason and usage.
    Finished { reason: &'static str, usage: Value },
    /// The plan failed.
    Failed { message: String, code: &'static str },
    /// The plan is over.
    Done,
}

/// Reads one plan's events.
pub(crate) struct Relay {
    pub(crate) events: mpsc::Receiver<Box<PlanEvent>>,
    pub(crate) _guard: PlanGuard,
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
    /// Where each step's text starts: a new step starts after a blank line.
    pub(crate) answer: Answer,
    /// Tool call id → skill.
    pub(crate) labels: HashMap<String, String>,
    /// The plan's files, linked after the answer.
    pub(crate) files: Vec<crate::planner::files::PlanFile>,
    /// The gateway's URL as the client reached it.
    pub(crate) base_url: String,
    /// What comes after the links.
    pub(crate) after_links: Option<Out>,
}

impl Relay {
    async fn next(&mut self) -> Out {
        if let Some(out) = self.after_links.take() {
            return out;
        }
        loop {
            let Some(event) = self.events.recv().await else {
                return Out::Done;
            };
            match *event {
                PlanEvent::TextDelta { part_id, delta, .. } => {
                    let text = match self.answer.separator(&part_id) {
                        "" => delta,
                        separator => format!("{separator}{delta}"),
                    };
                    return Out::Text(text);
                }
                PlanEvent::TaskStarted { subject, skill, .. } => {
                    self.labels.insert(subject.task_id.clone(), skill.clone());
                    return Out::Activity(
                        json!({"event": "task.started", "task_id": subject.task_id,
                        "agent": subject.agent, "skill": skill}),
                    );
                }
                PlanEvent::TaskEnded { subject, outcome } => {
                    self.files.extend(outcome.files.iter().cloned());
                    let mut activity = json!({"event": "task.finished", "task_id": subject.task_id,
                        "agent": subject.agent, "skill": self.labels.get(&subject.task_id),
                        "state": outcome.finished_state()});
                    if let Some(error) = &outcome.error {
                        activity["error"] = json!(error);
                    }
                    return Out::Activity(activity);
                }
                PlanEvent::Final {
                    stop_reason, usage, ..
                } => {
                    let reason = match stop_reason.as_str() {
                        "length" => "length",
                        "content-filter" => "content_filter",
                        _ => "stop",
                    };
                    let finished = Out::Finished {
                        reason,
                        usage: json!({"prompt_tokens": usage.input_tokens,
                            "completion_tokens": usage.output_tokens,
                            "total_tokens": usage.total_tokens,
                            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens}}),
                    };
                    // The plan's files close the answer as Markdown links.
                    let links = file_links(&self.files, &self.base_url);
                    if links.is_empty() {
                        return finished;
                    }
                    self.after_links = Some(finished);
                    return Out::Text(links);
                }
                PlanEvent::Error { message, code } => return Out::Failed { message, code },
                PlanEvent::Done => return Out::Done,
                _ => {}
            }
        }
    }

    fn chunk(&self, delta: &Value, finish: Option<&str>) -> Map<String, Value> {
        let mut chunk = Map::new();
        chunk.insert("id".into(), json!(self.id));
        chunk.insert("object".into(), json!("chat.completion.chunk"));
        chunk.insert("created".into(), json!(self.created));
        chunk.insert("model".into(), json!(self.model));
        chunk.insert(
            "choices".into(),
            json!([{"index": 0, "delta": delta, "finish_reason": finish}]),
        );
        chunk
    }
}

/// `stream: false`: the whole answer in one `chat.completion`.
pub(crate) async fn complete(mut relay: Relay) -> Response {
    let mut answer = String::new();
    let mut activity = Vec::new();
    let mut finished = None;
    loop {
        match relay.next().await {
            Out::Text(text) => answer.push_str(&text),
            Out::Activity(a) => activity.push(a),
            Out::Finished { reason, usage } => finished = Some((reason, usage)),
            Out::Failed { message, code } => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "application/json")],
                    plan_failure(&message, code).to_string(),
                )
                    .into_response();
            }
            Out::Done => break,
        }
    }
    let Some((reason, usage)) = finished else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json")],
            plan_failure(NO_ANSWER, "internal").to_string(),
        )
            .into_response();
    };
    let body = json!({
        "id": relay.id, "object": "chat.completion", "created": relay.created, "model": relay.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
            "finish_reason": reason}],
        "usage": usage,
        "plangate": {"tasks": activity},
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn sse(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(format!(
        "data: {}\n\n",
        serde_json::to_string(value).unwrap_or_default()
    ))
}

/// `stream: true`: chunks, `[DONE]` last; keep-alive comments while nothing happens.
pub(crate) fn stream(
    relay: Relay,
    include_usage: bool,
    keepalive: Option<std::time::Duration>,
) -> Response {
    let first = sse(&relay.chunk(&json!({"role": "assistant", "content": ""}), None));
    let chunks = futures::stream::unfold(Some(relay), move |relay| async move {
        let mut relay = relay?;
        let bytes = match relay.next().await {
            Out::Text(text) => sse(&relay.chunk(&json!({"content": text}), None)),
            Out::Activity(activity) => {
                let mut chunk = relay.chunk(&json!({}), None);
                chunk.insert("plangate".into(), activity);
                sse(&chunk)
            }
            Out::Finished { reason, usage } => {
                let mut bytes = sse(&relay.chunk(&json!({}), Some(reason))).to_vec();
                if include_usage {
                    let mut chunk = relay.chunk(&json!({}), None);
                    chunk.insert("choices".into(), json!([]));
                    chunk.insert("usage".into(), usage);
                    bytes.extend_from_slice(&sse(&chunk));
                }
                Bytes::from(bytes)
            }
            Out::Failed { message, code } => sse(&plan_failure(&message, code)),
            Out::Done => return Some((Bytes::from_static(b"data: [DONE]\n\n"), None)),
        };
        Some((bytes, Some(relay)))
    });
    let body = futures::stream::once(std::future::ready(first)).chain(chunks);
    door_stream("text/event-stream; charset=utf-8", body, keepalive)
}
