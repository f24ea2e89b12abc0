//! Streaming peers (spec §5.8): `message/stream` / `SendStreamingMessage` read as SSE. Task
//! snapshots, status updates and artifact chunks are merged as they arrive; intermediate states
//! go out as `task.status`. A stream that ends early falls back to polling the same task; a peer
//! that does not stream falls back to send + poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};

use crate::a2a::call::{CallProgress, Exchange, StatusSender, StatusUpdate};
use crate::a2a::client::A2aClient;
use crate::a2a::error::A2aError;
use crate::a2a::http::{self, read_limited};
use crate::a2a::jsonrpc::{self, IdShape};
use crate::a2a::wire::{self, Artifact, Message, Reply, Task, TaskState};

/// The task as assembled from stream events.
#[derive(Debug, Default)]
struct Snapshot {
    /// Bytes of the events that built the current artifacts, and their cap
    /// (`a2a.max_response_bytes`): appended chunks cannot grow without bound.
    artifact_bytes: usize,
    artifact_limit: usize,
    id: Option<String>,
    state: Option<TaskState>,
    status_message: Option<Message>,
    artifacts: Vec<Artifact>,
    history: Vec<Message>,
    context_id: Option<String>,
    /// Last `(state, message)` reported, to skip repeats.
    last_reported: Option<(TaskState, Option<String>)>,
    /// File parts of status messages seen on the way (a later status replaces the message,
    /// not the files it carried).
    status_files: Vec<wire::Part>,
}

/// Why the byte stream under the SSE parser stopped.
#[derive(Debug)]
enum StreamFailure {
    Http(reqwest::Error),
    /// One event grew past `a2a.max_response_bytes`.
    TooLarge,
}

impl std::fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(e) => write!(f, "{e}"),
            Self::TooLarge => f.write_str("event too large"),
        }
    }
}

/// What one event did.
enum EventEffect {
    Continue,
    Message(Message),
}

fn get<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

fn message_text(m: &Message) -> Option<String> {
    let texts: Vec<&str> = m
        .parts
        .iter()
        .filter_map(|p| match p {
            wire::Part::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n\n"))
}

impl Snapshot {
    fn new(artifact_limit: usize) -> Self {
        Self {
            artifact_limit,
            ..Self::default()
        }
    }

    fn into_task(self, fallback_id: Option<String>) -> Task {
        let mut status_message = self.status_message;
        let missing: Vec<wire::Part> = self
            .status_files
            .into_iter()
            .filter(|f| !status_message.as_ref().is_some_and(|m| m.parts.contains(f)))
            .collect();
        if !missing.is_empty() {
            status_message
                .get_or_insert_with(|| Message {
                    role: "agent".to_owned(),
                    parts: Vec::new(),
                    context_id: None,
                })
                .parts
                .extend(missing);
        }
        Task {
            id: self.id.or(fallback_id).unwrap_or_default(),
            state: self.state.unwrap_or(TaskState::Unknown),
            status_message,
            artifacts: self.artifacts,
            history: self.history,
            context_id: self.context_id,
        }
    }

    fn merge_artifact(&mut self, update: &Map<String, Value>) {
        let Some(artifact) = update.get("artifact").and_then(wire::parse_artifact) else {
            return;
        };
        let append = update
            .get("append")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let existing = artifact.artifact_id.as_ref().and_then(|id| {
            self.artifacts
                .iter_mut()
                .find(|a| a.artifact_id.as_ref() == Some(id))
        });
        match existing {
            Some(a) if append => a.parts.extend(artifact.parts),
            Some(a) => *a = artifact,
            None => self.artifacts.push(artifact),
        }
    }

    /// Applies one unwrapped event of `size` bytes; status updates are sent to `status`.
    fn apply(
        &mut self,
        event: &Value,
        size: usize,
        status_tx: Option<&StatusSender>,
    ) -> Result<EventEffect, A2aError> {
        let Value::Object(obj) = event else {
            return Err(A2aError::InvalidShape(
                "stream event is not an object".to_owned(),
            ));
        };
        let kind = obj.get("kind").and_then(Value::as_str);
        if let Some(context) = wire::context_id(obj) {
            self.context_id = Some(context);
        }
        if let Some(task) = obj
            .get("task")
            .filter(|t| t.is_object())
            .or((kind == Some("task")).then_some(event))
        {
            let t = wire::parse_task(task).map_err(A2aError::InvalidShape)?;
            self.id = Some(t.id);
            self.state = Some(t.state);
            self.status_message = t.status_message;
            if !t.artifacts.is_empty() {
                self.artifacts = t.artifacts;
                self.artifact_bytes = size;
            }
            self.history = t.history;
            if t.context_id.is_some() {
                self.context_id = t.context_id;
            }
            return Ok(EventEffect::Continue);
        }
        if let Some(m) = obj
            .get("message")
            .filter(|m| m.is_object())
            .or((kind == Some("message")).then_some(event))
        {
            return wire::parse_message(m)
                .map(EventEffect::Message)
                .map_err(A2aError::InvalidShape);
        }
        let status_update = get(obj, "statusUpdate", "status_update")
            .and_then(Value::as_object)
            .or((kind == Some("status-update")).then_some(obj));
        if let Some(update) = status_update {
            if let Some(id) = get(update, "taskId", "task_id").and_then(Value::as_str) {
                self.id.get_or_insert_with(|| id.to_owned());
            }
            if let Some(context) = wire::context_id(update) {
                self.context_id = Some(context);
            }
            let status = update.get("status").and_then(Value::as_object);
            if let Some(state) = status.and_then(|s| s.get("state")).and_then(Value::as_str) {
                let state = TaskState::parse(state);
                let message = status
                    .and_then(|s| s.get("message"))
                    .filter(|m| m.is_object())
                    .and_then(|m| wire::parse_message(m).ok());
                let text = message.as_ref().and_then(message_text);
                for part in message.iter().flat_map(|m| &m.parts) {
                    if matches!(part, wire::Part::File(_)) && !self.status_files.contains(part) {
                        self.status_files.push(part.clone());
                    }
                }
                self.state = Some(state.clone());
                if message.is_some() {
                    self.status_message = message;
                }
                let report = (state.clone(), text.clone());
                if self.last_reported.as_ref() != Some(&report) {
                    self.last_reported = Some(report);
                    if let Some(tx) = status_tx {
                        tx.send_replace(Some(StatusUpdate {
                            state,
                            message: text,
                        }));
                    }
                }
            }
            return Ok(EventEffect::Continue);
        }
        let artifact_update = get(obj, "artifactUpdate", "artifact_update")
            .and_then(Value::as_object)
            .or((kind == Some("artifact-update")).then_some(obj));
        if let Some(update) = artifact_update {
            if let Some(id) = get(update, "taskId", "task_id").and_then(Value::as_str) {
                self.id.get_or_insert_with(|| id.to_owned());
            }
            if let Some(context) = wire::context_id(update) {
                self.context_id = Some(context);
            }
            self.artifact_bytes = self.artifact_bytes.saturating_add(size);
            if self.artifact_bytes > self.artifact_limit {
                return Err(A2aError::transport(
                    format!("peer response exceeds {} bytes", self.artifact_limit),
                    false,
                ));
            }
            self.merge_artifact(update);
        }
        // Unknown events are skipped, never fatal.
        Ok(EventEffect::Continue)
    }
}

/// Feeds raw SSE bytes through the event decoder and the snapshot merger, as a stream read
/// would (the fuzzing entry point; no network).
pub(super) fn decode_events(bytes: &[u8], limit: usize) -> Result<Reply, A2aError> {
    let chunk = bytes::Bytes::copy_from_slice(bytes);
    let source = futures::stream::iter([Ok::<_, std::convert::Infallible>(chunk)]);
    let mut events = eventsource_stream::EventStream::new(source);
    let (tx, _rx) = tokio::sync::watch::channel(None);
    let mut snapshot = Snapshot::new(limit);
    futures::executor::block_on(async {
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            if event.data.trim().is_empty() {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            let value = unwrap_event(value)?;
            if let EventEffect::Message(m) = snapshot.apply(&value, event.data.len(), Some(&tx))? {
                return Ok(Reply::Message(m));
            }
        }
        Ok(Reply::Task(snapshot.into_task(None)))
    })
}

/// Unwraps a JSON-RPC envelope around a stream event (Bindu sends bare objects).
fn unwrap_event(value: Value) -> Result<Value, A2aError> {
    match value {
        Value::Object(mut obj)
            if obj.contains_key("jsonrpc")
                || obj.contains_key("result")
                || obj.contains_key("error") =>
        {
            if let Some(error) = obj.get("error").filter(|e| !e.is_null()) {
                return Err(jsonrpc::rpc_error(error));
            }
            Ok(obj.remove("result").unwrap_or(Value::Null))
        }
        other => Ok(other),
    }
}

impl A2aClient {
    /// Sends with the streaming method and reads the stream until the task settles.
    pub(crate) async fn stream_call(
        &self,
        x: &Exchange<'_, '_>,
        progress: &mut CallProgress,
    ) -> Result<Reply, A2aError> {
        let dialect = x.dialect;
        let chosen_task_id = x.chosen_task_id();
        let mut params = x.send_params(chosen_task_id.as_deref());
        progress.remote_task_id.clone_from(&chosen_task_id);
        loop {
            let (response, slot) = match self.open_stream(x, dialect.stream_body(params)).await {
                Ok(r) => r,
                Err(e) => {
                    progress.cancel = matches!(e, A2aError::Aborted);
                    return Err(self.budget_error(e, progress));
                }
            };
            let is_sse = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/event-stream"));
            if is_sse {
                let streamed = self.read_stream(x, progress, response, slot).await;
                match streamed {
                    // The same refusals can arrive as the stream's first event (a2a-sdk).
                    Err(A2aError::Rpc { code: -32001, .. })
                        if params.task_id.is_some() && progress.polls == 0 =>
                    {
                        x.remember_server_task_ids(self);
                        params.task_id = None;
                        progress.remote_task_id = None;
                        progress.last_state = None;
                        progress.cancel = false;
                        continue;
                    }
                    Err(A2aError::Rpc {
                        code: -32601 | -32004,
                        ..
                    }) if progress.last_state.is_none() => {
                        progress.remote_task_id = None;
                        progress.cancel = false;
                        return self.send_and_poll(x, progress).await;
                    }
                    other => return other,
                }
            }
            // Not a stream: a plain JSON-RPC answer (spec §5.8).
            let status = response.status();
            let limit = self.config.max_response_bytes;
            let body =
                read_limited(response, limit.saturating_add(self.config.file_allowance)).await?;
            drop(slot);
            let answer = jsonrpc::parse_response(status, &body).and_then(|answer| {
                http::check_answer_size(body.len(), &answer, limit).map(|()| answer)
            });
            match answer {
                Err(A2aError::Rpc {
                    code: -32601 | -32004,
                    ..
                }) => {
                    progress.remote_task_id = None;
                    return self.send_and_poll(x, progress).await;
                }
                Err(A2aError::Rpc { code: -32001, .. }) if params.task_id.is_some() => {
                    x.remember_server_task_ids(self);
                    params.task_id = None;
                    progress.remote_task_id = None;
                }
                Err(e) => {
                    progress.remote_task_id = None;
                    return Err(e);
                }
                Ok(result) => {
                    return match wire::parse_reply(&result) {
                        Ok(Reply::Message(m)) => {
                            progress.remote_task_id = None;
                            Ok(Reply::Message(m))
                        }
                        Ok(Reply::Task(t)) => {
                            progress.remote_task_id = Some(t.id.clone());
                            progress.last_state = Some(t.state.clone());
                            self.poll_until_settled(x, progress, t).await
                        }
                        Err(detail) => Err(A2aError::InvalidShape(detail)),
                    };
                }
            }
        }
    }

    /// POSTs a streaming request; the per-request timeout covers the wait for a connection slot
    /// and for the response headers. The slot is held for as long as the stream is read.
    async fn open_stream(
        &self,
        x: &Exchange<'_, '_>,
        body: Vec<u8>,
    ) -> Result<(reqwest::Response, tokio::sync::OwnedSemaphorePermit), A2aError> {
        let Exchange {
            call,
            dialect,
            url,
            auth,
            budget_end,
            ..
        } = *x;
        let timeout = http::request_window(self.config.request_timeout, budget_end)?;
        let request = self
            .request(url, dialect, auth, body)
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let open = async {
            let slot = Arc::clone(&self.connections).acquire_owned().await;
            request.send().await.map(|resp| (resp, slot))
        };
        tokio::select! {
            () = call.abort.cancelled() => Err(A2aError::Aborted),
            r = tokio::time::timeout(timeout, open) => match r {
                Ok(Ok((resp, Ok(slot)))) => Ok((resp, slot)),
                Ok(Ok((_, Err(_)))) => Err(A2aError::transport("connection slots closed".to_owned(), false)),
                Ok(Err(e)) => Err(http::send_error(&e)),
                Err(_) => Err(http::window_closed(budget_end)),
            },
        }
    }

    async fn read_stream(
        &self,
        x: &Exchange<'_, '_>,
        progress: &mut CallProgress,
        response: reqwest::Response,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<Reply, A2aError> {
        let Exchange {
            call,
            dialect,
            url,
            auth,
            budget_end,
            ..
        } = *x;
        let limit = self.config.max_response_bytes;
        // Bound the bytes buffered for a single event: count since the last event boundary
        // (its inline files may add up to the file allowance).
        let event_limit = limit.saturating_add(self.config.file_allowance);
        let mut pending = 0usize;
        let bytes = response.bytes_stream().map(move |chunk| {
            // The connection slot lives as long as the byte stream.
            let _slot = &slot;
            let chunk = chunk.map_err(StreamFailure::Http)?;
            pending = match chunk.windows(2).rposition(|w| w == b"\n\n") {
                Some(end) => chunk.len() - end - 2,
                None => pending + chunk.len(),
            };
            if pending > event_limit {
                return Err(StreamFailure::TooLarge);
            }
            Ok(chunk)
        });
        let mut events = Box::pin(eventsource_stream::EventStream::new(bytes));
        let mut snapshot = Snapshot::new(limit);
        let mut grace_until: Option<Instant> = None;
        let budget = tokio::time::sleep_until(budget_end.into());
        tokio::pin!(budget);
        loop {
            let grace = async {
                match grace_until {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                () = call.abort.cancelled() => {
                    progress.cancel = true;
                    return Err(A2aError::Aborted);
                }
                () = &mut budget => {
                    progress.cancel = true;
                    return Err(self.exhausted(progress));
                }
                () = grace => break,
                next = events.next() => next,
            };
            let event = match next {
                None => break,
                Some(Err(eventsource_stream::EventStreamError::Transport(
                    StreamFailure::TooLarge,
                ))) => {
                    progress.cancel = true;
                    return Err(A2aError::transport(
                        format!("peer response exceeds {limit} bytes"),
                        false,
                    ));
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "peer stream broke");
                    break;
                }
                Some(Ok(event)) => event,
            };
            if event.data.trim().is_empty() {
                continue;
            }
            let value: Value = match serde_json::from_str(&event.data) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "skipping a stream event that is not JSON");
                    continue;
                }
            };
            let value = unwrap_event(value)?;
            // Inline files answer to the file caps; the rest of an event to the limit.
            let size = event
                .data
                .len()
                .saturating_sub(wire::inline_file_len(&value));
            if size > limit {
                progress.cancel = true;
                return Err(http::too_large(limit));
            }
            crate::telemetry::memory::large_payload(event.data.len());
            let applied = snapshot.apply(&value, size, call.status);
            if let Some(id) = &snapshot.id {
                progress.remote_task_id = Some(id.clone());
            }
            match applied {
                Err(e) => {
                    // The task may still be running at the peer: cancel it.
                    progress.cancel = true;
                    return Err(e);
                }
                Ok(EventEffect::Message(m)) => {
                    progress.remote_task_id = None;
                    return Ok(Reply::Message(m));
                }
                Ok(EventEffect::Continue) => {}
            }
            if let Some(state) = &snapshot.state {
                progress.last_state = Some(state.clone());
                if state.is_settled() && grace_until.is_none() {
                    // Bindu sends the artifact after the final status: wait briefly for it.
                    grace_until = Some(Instant::now() + self.config.stream_grace);
                }
            }
        }
        // Release the stream (and its connection slot) before any poll below.
        drop(events);
        let settled = snapshot.state.as_ref().is_some_and(TaskState::is_settled);
        let task_id = snapshot
            .id
            .clone()
            .or_else(|| progress.remote_task_id.clone());
        if !settled {
            let Some(id) = task_id else {
                return Err(A2aError::transport(
                    "stream ended before the task finished".to_owned(),
                    false,
                ));
            };
            let task = snapshot.into_task(Some(id));
            return self.poll_until_settled(x, progress, task).await;
        }
        let mut task = snapshot.into_task(task_id);
        if !wire::has_direct_text(&task) && !task.id.is_empty() {
            // Bindu's stream carries no history, where its input-required prompt lives.
            let body = dialect.get_body(&task.id, IdShape::Both);
            let fetch = self.post(url, dialect, auth, body, call.abort, budget_end);
            if let Ok(Ok(Ok(Reply::Task(full)))) =
                tokio::time::timeout(Duration::from_secs(10), fetch)
                    .await
                    .map(|r| r.map(|v| wire::parse_reply(&v)))
            {
                if task.history.is_empty() {
                    task.history = full.history;
                }
                if task.status_message.is_none() {
                    task.status_message = full.status_message;
                }
                if task.artifacts.is_empty() {
                    task.artifacts = full.artifacts;
                }
            }
        }
        Ok(Reply::Task(task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replay(lines: &[Value]) -> (Snapshot, Vec<StatusUpdate>) {
        let (tx, mut rx) = tokio::sync::watch::channel(None);
        let mut s = Snapshot::new(usize::MAX);
        let mut updates = Vec::new();
        for l in lines {
            let v = unwrap_event(l.clone()).unwrap();
            let _ = s.apply(&v, l.to_string().len(), Some(&tx));
            if rx.has_changed().unwrap() {
                updates.extend(rx.borrow_and_update().clone());
            }
        }
        (s, updates)
    }

    #[test]
    fn streamed_artifacts_are_capped_in_total() {
        let chunk = |append: bool| {
            json!({"kind": "artifact-update", "taskId": "t", "append": append,
            "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": "x".repeat(1000)}]}})
        };
        let mut s = Snapshot::new(5_000);
        let mut failed_at = None;
        for i in 0..10 {
            let event = chunk(i > 0);
            if let Err(e) = s.apply(&event, event.to_string().len(), None) {
                failed_at = Some((i, e));
                break;
            }
        }
        let (i, e) = failed_at.expect("the cap fails the stream");
        assert_eq!(i, 4, "five 1 kB chunks pass the 5 kB cap");
        assert_eq!(e.to_string(), "transport: peer response exceeds 5000 bytes");
        // A task snapshot replaces the artifacts, and their count starts again.
        let mut s = Snapshot::new(5_000);
        for _ in 0..10 {
            let event = json!({"kind": "task", "id": "t", "status": {"state": "working"},
                "artifacts": [{"artifactId": "a", "parts": [{"kind": "text", "text": "x".repeat(1000)}]}]});
            assert!(s.apply(&event, event.to_string().len(), None).is_ok());
        }
    }

    #[test]
    fn bindu_bare_snake_case_events_with_artifact_after_final_status() {
        let (s, updates) = replay(&[
            json!({"kind": "status-update", "task_id": "t1", "status": {"state": "working"}, "final": false}),
            json!({"kind": "status-update", "task_id": "t1", "status": {"state": "working"}, "final": false}),
            json!({"kind": "status-update", "task_id": "t1", "status": {"state": "completed"}, "final": true}),
            json!({"kind": "artifact-update", "task_id": "t1", "artifact": {"artifact_id": "a", "parts": [{"kind": "text", "text": "echo: hi"}]}, "append": false, "last_chunk": false}),
        ]);
        assert_eq!(s.id.as_deref(), Some("t1"));
        assert_eq!(
            updates.iter().map(|u| u.state.as_str()).collect::<Vec<_>>(),
            ["working", "completed"],
            "repeats are skipped"
        );
        let task = s.into_task(None);
        assert_eq!(wire::output_text(&Reply::Task(task)), "echo: hi");
    }

    #[test]
    fn v1_envelopes_and_chunked_artifacts() {
        let (s, updates) = replay(&[
            json!({"jsonrpc": "2.0", "id": 1, "result": {"task": {"id": "t2", "status": {"state": "TASK_STATE_SUBMITTED"}}}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"statusUpdate": {"taskId": "t2", "status": {"state": "TASK_STATE_WORKING", "message": {"role": "ROLE_AGENT", "parts": [{"text": "thinking"}]}}}}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"artifactUpdate": {"taskId": "t2", "artifact": {"artifactId": "a", "parts": [{"text": "part one, "}]}}}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"artifactUpdate": {"taskId": "t2", "append": true, "lastChunk": true, "artifact": {"artifactId": "a", "parts": [{"text": "part two"}]}}}}),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"statusUpdate": {"taskId": "t2", "status": {"state": "TASK_STATE_COMPLETED"}}}}),
        ]);
        assert_eq!(
            updates[0],
            StatusUpdate {
                state: TaskState::Working,
                message: Some("thinking".into())
            }
        );
        assert_eq!(updates[1].state, TaskState::Completed);
        let task = s.into_task(None);
        assert_eq!(task.artifacts.len(), 1);
        assert_eq!(
            wire::output_text(&Reply::Task(task)),
            "part one, \n\npart two"
        );
    }

    #[test]
    fn errors_inside_the_stream_fail_the_call() {
        let e = unwrap_event(
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "boom"}}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "boom");
    }
}
