//! The door's tools: `ask` (a plan over a server-side catalog; its answer, or its failure with
//! `isError`) and `list_catalogs`. An `ask` is answered with JSON, or as an SSE stream of
//! `notifications/progress` then the result when the client accepts `text/event-stream`.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::McpError;
use super::sessions::{Elicit, McpSessions};
use crate::api::http::body;
use crate::api::http::caller::Caller;
use crate::api::http::error::{ApiError, refused};
use crate::api::http::jsonrpc;
use crate::api::http::request_id::request_id;
use crate::api::http::sse::door_stream;
use crate::planner::ask::{AskKind, Reply};
use crate::planner::event::PlanEvent;
use crate::planner::request::PlanRequest;
use crate::run::answer::{Answer, CallLabels, NO_ANSWER};
use crate::run::{PlanGuard, StartInfo};
use crate::state::AppState;

/// `tools/list`.
pub(crate) fn list(state: &AppState) -> Value {
    let names: Vec<&str> = state.catalogs().iter().map(|c| c.name.as_str()).collect();
    json!({"tools": [
        {"name": "ask",
         "title": "Ask the agent fleet",
         "description": "Plans over a catalog of remote A2A agents and returns the answer assembled from their work.",
         "inputSchema": {"type": "object", "properties": {
            "question": {"type": "string", "description": "The question or task"},
            "catalog": {"type": "string", "enum": names, "description": "Which catalog to plan over (default: \"default\")"}},
          "required": ["question"]}},
        {"name": "list_catalogs",
         "title": "List the catalogs",
         "description": "The server-side catalogs `ask` can plan over, with their descriptions and agents.",
         "inputSchema": {"type": "object", "properties": {}}},
    ]})
}

/// A tool result holding one text.
fn text_result(text: &str, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

/// One `tools/call` in a session.
pub(crate) struct ToolCall<'a> {
    pub(crate) state: &'a AppState,
    pub(crate) caller: &'a Caller,
    pub(crate) sessions: &'a Arc<McpSessions>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) session: &'a str,
    pub(crate) id: &'a Value,
    pub(crate) params: &'a Value,
}

impl ToolCall<'_> {
    fn answer(&self, text: &str, is_error: bool) -> Response {
        body::json(
            StatusCode::OK,
            &jsonrpc::result(self.id, &text_result(text, is_error)),
        )
    }
}

/// `tools/call`.
pub(crate) async fn call(call: &ToolCall<'_>) -> Result<Response, McpError> {
    match call.params.get("name").and_then(Value::as_str) {
        Some("list_catalogs") => {
            let list: Vec<Value> = call
                .state
                .catalogs()
                .iter()
                .map(|c| {
                    json!({"name": c.name, "description": c.description,
                    "agents": c.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>()})
                })
                .collect();
            let text = serde_json::to_string_pretty(&list).unwrap_or_default();
            Ok(call.answer(&text, false))
        }
        Some("ask") => Ok(ask(call).await),
        other => Err(McpError::UnknownTool(
            other.unwrap_or("(no name)").to_owned(),
        )),
    }
}

/// `ask`: a plan; a refusal is a tool error (bad arguments) or a JSON-RPC error (no place),
/// counted as a refused plan either way.
async fn ask(call: &ToolCall<'_>) -> Response {
    let arguments = call.params.get("arguments").cloned().unwrap_or_default();
    let Some(question) = arguments
        .get("question")
        .and_then(Value::as_str)
        .filter(|q| !q.trim().is_empty())
    else {
        let why = "arguments.question: expected a non-empty string";
        return refused(call.answer(why, true), why);
    };
    let name = arguments.get("catalog").and_then(Value::as_str);
    let catalog = match call.state.catalogs().find(name) {
        Ok(catalog) => catalog,
        Err(unknown) => {
            let why = format!("arguments.catalog: {}", unknown.describe("catalog"));
            return refused(call.answer(&why, true), why);
        }
    };
    if let Err(e) = call.caller.may_use_catalog(&catalog.name) {
        let why = format!("arguments.catalog: {e}");
        return refused(call.answer(&why, true), why);
    }
    let runs = call.state.runs();
    let lease = crate::run::Runs::hold_lease(runs.limits().default_timeout);
    let place = match runs.place_for_caller(call.caller.plan_limit(), lease).await {
        Ok(place) => place,
        Err(e) => {
            let e = McpError::Api(ApiError::from(e));
            return refused(e.respond(call.id), &e);
        }
    };
    let accepts_sse = call
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    // A client that declared `elicitation` is asked on the call's stream.
    let elicit = accepts_sse && call.sessions.can_elicit(call.session);
    let mut request = PlanRequest::question(question.to_owned(), catalog.agents.clone());
    request.preferences.interactive = elicit;
    let info = StartInfo {
        budget: call.caller.budget(),
        asking: if elicit {
            crate::run::Asking::Owner(call.caller.owner().to_owned())
        } else {
            crate::run::Asking::CannotAsk("this client cannot be asked")
        },
        owner: call.caller.owner().to_owned(),
        ..StartInfo::fresh(runs, request_id(call.headers), call.caller.label())
    };
    let plan_id = info.plan_id.clone();
    let launched = runs.start(place, request, info);
    let request_key = call
        .id
        .as_str()
        .map_or_else(|| call.id.to_string(), str::to_owned);
    call.sessions.running(
        call.session,
        &request_key,
        Some(launched.guard.abort_handle()),
    );
    let running = Running {
        sessions: Arc::clone(call.sessions),
        session: call.session.to_owned(),
        request_key,
        id: call.id.clone(),
        events: launched.events,
        _guard: launched.guard,
        progress_token: call
            .params
            .get("_meta")
            .and_then(|m| m.get("progressToken"))
            .filter(|t| t.is_string() || t.is_number())
            .cloned(),
        progress: 0,
        answer: Answer::default(),
        labels: CallLabels::default(),
        plan_id,
        files: Vec::new(),
        base_url: crate::api::http::links::base_url(
            call.state.config().a2a_server.public_url.as_deref(),
            call.headers,
        ),
    };
    if accepts_sse {
        stream(call.state, running)
    } else {
        let mut running = running;
        loop {
            if let Step::Result(value) = running.next().await {
                return body::json(StatusCode::OK, &value);
            }
        }
    }
}

/// One running `ask`.
struct Running {
    sessions: Arc<McpSessions>,
    session: String,
    request_key: String,
    id: Value,
    events: mpsc::Receiver<Box<PlanEvent>>,
    _guard: PlanGuard,
    progress_token: Option<Value>,
    progress: u64,
    answer: Answer,
    labels: CallLabels,
    /// The plan's id (its questions are answered under it).
    plan_id: String,
    /// The plan's files, given as resource links with the answer.
    files: Vec<crate::planner::files::PlanFile>,
    /// The gateway's URL as the client reached it.
    base_url: String,
}

/// What the client gets next.
enum Step {
    /// A message before the result: `notifications/progress`, or an `elicitation/create`
    /// request.
    Progress(Value),
    /// The call's JSON-RPC response: nothing follows.
    Result(Value),
}

impl Running {
    fn progress(&mut self, message: &str) -> Option<Step> {
        let token = self.progress_token.clone()?;
        self.progress += 1;
        Some(Step::Progress(
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": token, "progress": self.progress, "message": message}}),
        ))
    }

    /// An `elicitation/create` request for the plan's question on task `task`, remembered in
    /// the session so the client's response finds it.
    fn elicit(&mut self, task: String, kind: AskKind, message: &str, schema: &Value) -> Step {
        let request = format!("elicit-{}", uuid::Uuid::new_v4().simple());
        self.sessions.elicit(
            &self.session,
            &request,
            Elicit {
                plan: self.plan_id.clone(),
                task,
                kind,
            },
        );
        Step::Progress(
            json!({"jsonrpc": "2.0", "id": request, "method": "elicitation/create",
            "params": {"mode": "form", "message": message, "requestedSchema": schema}}),
        )
    }

    /// The answer, then a `resource_link` per file of the plan (kept files at the gateway's
    /// files route, which takes the caller's token; links as the agent gave them).
    fn answer_with_files(&self) -> Step {
        let mut content = vec![json!({"type": "text", "text": self.answer.text()})];
        for f in &self.files {
            let (uri, size) = match (&f.source_url, &f.url) {
                (Some(link), _) => (link.clone(), None),
                (None, Some(url)) => (format!("{}{url}", self.base_url), f.size),
                (None, None) => continue,
            };
            let mut link = json!({"type": "resource_link", "uri": uri, "name": f.name,
                "mimeType": f.media_type});
            if let Some(size) = size {
                link["size"] = json!(size);
            }
            content.push(link);
        }
        Step::Result(jsonrpc::result(
            &self.id,
            &json!({"content": content, "isError": false}),
        ))
    }

    fn result(&self, text: &str, is_error: bool) -> Step {
        Step::Result(jsonrpc::result(&self.id, &text_result(text, is_error)))
    }

    async fn next(&mut self) -> Step {
        let mut failure: Option<String> = None;
        loop {
            let Some(event) = self.events.recv().await else {
                let text = failure.unwrap_or_else(|| "the plan was canceled".to_owned());
                return self.result(&text, true);
            };
            match *event {
                PlanEvent::TaskStarted { subject, skill, .. } => {
                    let text = self.labels.started(subject, &skill);
                    if let Some(step) = self.progress(&text) {
                        return step;
                    }
                }
                PlanEvent::TaskEnded { subject, outcome } => {
                    self.files.extend(outcome.files.iter().cloned());
                    let text = self.labels.ended(subject, &outcome);
                    if let Some(step) = self.progress(&text) {
                        return step;
                    }
                }
                PlanEvent::TextDelta { part_id, delta, .. } => {
                    self.answer.push(&part_id, &delta);
                }
                PlanEvent::TaskConfirm {
                    subject,
                    skill,
                    input,
                    ..
                } => {
                    let message = format!(
                        "{}/{skill} wants to run with {input}. Approve?",
                        subject.agent
                    );
                    let schema = json!({"type": "object", "properties": {
                        "approve": {"type": "boolean", "title": "Approve", "description": "Let the call go ahead"},
                        "reason": {"type": "string", "title": "Reason", "description": "Why not (when declining)"}},
                        "required": ["approve"]});
                    return self.elicit(subject.task_id, AskKind::Confirm, &message, &schema);
                }
                PlanEvent::TaskInputRequired {
                    task_id,
                    agent,
                    prompt,
                    ..
                } => {
                    let message = format!("{agent} asks: {prompt}");
                    let schema = json!({"type": "object", "properties": {
                        "answer": {"type": "string", "title": "Answer"}},
                        "required": ["answer"]});
                    return self.elicit(task_id, AskKind::Input, &message, &schema);
                }
                PlanEvent::Final { .. } => return self.answer_with_files(),
                PlanEvent::Error { message, code } => {
                    failure = Some(format!("the plan failed: {message} ({code})"));
                }
                PlanEvent::Done => {
                    let text = failure.take().unwrap_or_else(|| NO_ANSWER.to_owned());
                    return self.result(&text, true);
                }
                _ => {}
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.sessions
            .running(&self.session, &self.request_key, None);
    }
}

/// The call as an SSE stream: progress notifications, then the response.
fn stream(state: &AppState, running: Running) -> Response {
    let frame = |value: &Value| Bytes::from(format!("event: message\ndata: {value}\n\n"));
    let body = futures::stream::unfold(Some(running), move |running| async move {
        let mut running = running?;
        match running.next().await {
            Step::Progress(p) => Some((frame(&p), Some(running))),
            Step::Result(r) => Some((frame(&r), None)),
        }
    });
    door_stream(
        "text/event-stream",
        body,
        state.config().server.sse_keepalive,
    )
}

/// The client's response to an `elicitation/create`: its answer goes to the plan's question.
/// Accepted content answers it; a decline, a cancel or an error declines a confirmation and
/// leaves a peer's question unanswered (its call ends `input-required`).
pub(crate) async fn elicited(
    state: &AppState,
    owner: &str,
    asked: Elicit,
    response: &serde_json::Map<String, Value>,
) {
    let result = response.get("result");
    let action = result
        .and_then(|r| r.get("action"))
        .and_then(Value::as_str)
        .unwrap_or("cancel");
    let content = result.and_then(|r| r.get("content"));
    let reply = match (asked.kind, action) {
        (AskKind::Confirm, "accept") => {
            if content
                .and_then(|c| c.get("approve"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                Reply::Approve
            } else {
                Reply::Decline(
                    content
                        .and_then(|c| c.get("reason"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                )
            }
        }
        (AskKind::Confirm, other) => Reply::Decline(format!("the MCP client answered {other}")),
        (AskKind::Input, "accept") => Reply::Text(
            content
                .and_then(|c| c.get("answer"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ),
        // No text for the peer: the plan stops waiting, the call ends as the peer left it.
        (AskKind::Input, other) => Reply::Decline(format!("the MCP client answered {other}")),
    };
    if let Err(refused) = state
        .runs()
        .asks()
        .answer(owner, &asked.plan, &asked.task, asked.kind, reply)
        .await
    {
        tracing::info!(
            ?refused,
            "an elicitation answer came too late for its question"
        );
    }
}
