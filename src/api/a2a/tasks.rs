//! `tasks/get` / `GetTask` and `tasks/cancel` / `CancelTask`: the caller's own tasks only.

use std::sync::Arc;

use axum::response::Response;
use serde_json::Value;

use super::context::{Call, Failure};
use super::store::DoorTask;
use crate::a2a::TaskState;
use crate::api::http::jsonrpc::{RpcError, code};
use crate::planner::AbortReason;

/// The caller's task named by a get or cancel.
fn find(call: &Call<'_>, params: &Value) -> Result<Arc<DoorTask>, RpcError> {
    let id = call.dialect.read_task_id(params)?;
    call.tasks
        .get(call.owner, &id)
        .ok_or_else(|| RpcError::new(code::TASK_NOT_FOUND, "Task not found"))
}

/// `tasks/get`: the task as it is now.
pub(crate) fn get(call: &Call<'_>, params: &Value) -> Result<Response, Failure> {
    let task = find(call, params)?;
    let data = task.data();
    Ok(call.result(&call.dialect.task(&data.view(&task))))
}

/// `tasks/cancel`: a running task's plan is aborted and the task is `canceled`.
pub(crate) fn cancel(call: &Call<'_>, params: &Value) -> Result<Response, Failure> {
    let task = find(call, params)?;
    let mut data = task.data();
    if data.is_terminal() {
        return Err(RpcError::new(code::TASK_NOT_CANCELABLE, "Task cannot be canceled").into());
    }
    if let Some(abort) = data.abort.take() {
        abort.abort(AbortReason::Signal);
    }
    data.status_text = Some("canceled by the caller".to_owned());
    data.set_state(TaskState::Canceled);
    tracing::info!(task_id = %task.id, "a2a task canceled");
    Ok(call.result(&call.dialect.task(&data.view(&task))))
}
