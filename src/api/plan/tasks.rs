//! The answers to a plan's questions: `POST /plan/{plan_id}/tasks/{task_id}/confirm`
//! (`{"approve": true}` or `{"approve": false, "reason": "…"}`) and `…/input`
//! (`{"text": "…"}`), by the caller that started the plan, on any instance. 202 when the task
//! was waiting for that answer; 404 for a plan of another caller or a task the plan never had;
//! 409 when the task is not waiting (answered, timed out, or its plan has ended).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::http::body;
use crate::api::http::caller::Caller;
use crate::api::http::error::ApiError;
use crate::planner::ask::{AskKind, Reply};
use crate::planner::validate::Issue;
use crate::run::ask::AnswerRefused;
use crate::state::AppState;

/// The longest `reason` or `text` taken (the model or the peer reads it).
const MAX_ANSWER_CHARS: usize = 16 * 1024;

/// `POST /plan/{plan_id}/tasks/{task_id}/confirm`.
pub async fn confirm(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((plan, task)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        &state,
        &caller,
        &plan,
        &task,
        AskKind::Confirm,
        &headers,
        body,
    )
    .await
}

/// `POST /plan/{plan_id}/tasks/{task_id}/input`.
pub async fn input(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((plan, task)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(
        &state,
        &caller,
        &plan,
        &task,
        AskKind::Input,
        &headers,
        body,
    )
    .await
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    plan: &str,
    task: &str,
    kind: AskKind,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let raw = body::read(&state.config().server, headers, body).await?;
        let value: Value = serde_json::from_slice(&raw)
            .map_err(|e| ApiError::InvalidJson(format!("body is not JSON: {e}")))?;
        let reply = reply_of(&value, kind)?;
        state
            .runs()
            .asks()
            .answer(caller.owner(), plan, task, kind, reply)
            .await
            .map_err(|refused| match refused {
                AnswerRefused::Unknown => {
                    ApiError::NotFound(format!("no task {task:?} of a plan {plan:?} of yours"))
                }
                AnswerRefused::NotWaiting(why) => ApiError::NotWaiting(format!(
                    "task {task:?} does not wait for {}: {why}",
                    match kind {
                        AskKind::Confirm => "a confirmation",
                        AskKind::Input => "input",
                    }
                )),
                AnswerRefused::Store(e) => ApiError::StoreUnavailable(e),
            })
    };
    match result.await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"plan_id": plan, "task_id": task, "accepted": true}).to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The answer in a body, or a 400 naming the field.
fn reply_of(value: &Value, kind: AskKind) -> Result<Reply, ApiError> {
    let field = |name: &str, message: String| {
        ApiError::invalid(vec![Issue {
            path: name.to_owned(),
            message,
        }])
    };
    let Some(obj) = value.as_object() else {
        return Err(field("", "the body must be a JSON object".to_owned()));
    };
    let text = |name: &str, required: bool| -> Result<Option<String>, ApiError> {
        match obj.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= MAX_ANSWER_CHARS => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(field(
                name,
                format!("at most {MAX_ANSWER_CHARS} characters"),
            )),
            _ => Err(field(name, "expected a string".to_owned())),
        }
    };
    match kind {
        AskKind::Confirm => match obj.get("approve") {
            Some(Value::Bool(true)) => Ok(Reply::Approve),
            Some(Value::Bool(false)) => {
                Ok(Reply::Decline(text("reason", false)?.unwrap_or_default()))
            }
            _ => Err(field(
                "approve",
                "expected true or false (with an optional \"reason\" when false)".to_owned(),
            )),
        },
        AskKind::Input => Ok(Reply::Text(text("text", true)?.unwrap_or_default())),
    }
}
