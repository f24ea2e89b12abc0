//! The conversation routes of server-side sessions (`GATEWAY_SESSIONS=on`): `GET /sessions` (the
//! caller's conversations, newest first, paged with `?limit=` and `?before=`),
//! `GET /sessions/{session_id}` (its turns, oldest first) and `DELETE /sessions/{session_id}`.
//! A conversation of another token is answered 404, like one that does not exist.

use std::time::{Duration, UNIX_EPOCH};

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::http::caller::Caller;
use crate::api::http::error::ApiError;
use crate::planner::validate::Issue;
use crate::state::AppState;
use crate::store::sessions::{Conversation, Sessions};

/// Conversations a listing returns without `?limit=`.
const DEFAULT_LIMIT: usize = 50;
/// The most `?limit=` may ask for.
const MAX_LIMIT: usize = 500;

/// RFC 3339 with milliseconds, from unix milliseconds.
fn time(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn sessions(state: &AppState) -> Result<&Sessions, ApiError> {
    state
        .runs()
        .sessions()
        .map(AsRef::as_ref)
        .ok_or_else(|| ApiError::NotFound("sessions are off (GATEWAY_SESSIONS)".to_owned()))
}

fn unknown(session_id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no session {session_id:?} for this token (sessions expire sessions.ttl_secs after their last turn)"
    ))
}

fn bad_query(path: &str, message: String) -> ApiError {
    ApiError::invalid(vec![Issue {
        path: path.to_owned(),
        message,
    }])
}

/// `?limit=` and `?before=` of a listing.
fn paging(query: Option<&str>) -> Result<(usize, Option<u64>), ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad_query(
                            "limit",
                            format!("must be an integer from 1 to {MAX_LIMIT} (got {value:?})"),
                        )
                    })?;
            }
            "before" => {
                let at = humantime::parse_rfc3339_weak(&value).map_err(|_| {
                    bad_query(
                        "before",
                        format!(
                            "must be an RFC 3339 time such as a listing's `next_before` (got {value:?})"
                        ),
                    )
                })?;
                let ms = at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                before = Some(ms);
            }
            other => {
                return Err(bad_query(
                    other,
                    "unknown query parameter (known: limit, before)".to_owned(),
                ));
            }
        }
    }
    Ok((limit, before))
}

/// `GET /sessions`.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Response {
    let answer = async {
        let (limit, before) = paging(query.as_deref())?;
        let listed = sessions(&state)?
            .list(caller.owner(), before, limit)
            .await
            .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?;
        let next_before = (listed.len() == limit)
            .then(|| listed.last().map(|l| time(l.updated_at)))
            .flatten();
        let sessions: Vec<Value> = listed
            .iter()
            .map(|l| {
                json!({"session_id": l.session_id, "created_at": time(l.created_at),
                    "updated_at": time(l.updated_at), "turns": l.turns,
                    "first_question": l.first_question})
            })
            .collect();
        Ok::<_, ApiError>(json!({"sessions": sessions, "next_before": next_before}))
    };
    match answer.await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

/// A conversation as `GET /sessions/{session_id}` shows it.
fn shown(c: &Conversation) -> Value {
    let turns: Vec<Value> = c
        .turns
        .iter()
        .map(|t| {
            let calls: Vec<Value> = t
                .calls
                .iter()
                .map(|call| {
                    json!({"agent": call.agent, "skill": call.skill, "state": call.state,
                        "remote_task_id": call.remote_task_id, "remote_state": call.remote_state})
                })
                .collect();
            json!({"plan_id": t.plan_id, "question": t.question, "answer": t.answer,
                "tool_calls": calls, "usage": t.usage, "outcome": t.outcome,
                "started_at": time(t.started_at), "finished_at": time(t.finished_at)})
        })
        .collect();
    let agents: serde_json::Map<String, Value> = c
        .agents
        .iter()
        .map(|(name, m)| {
            (
                name.clone(),
                json!({"context_id": m.context_id, "waiting_task_id": m.waiting_task_id}),
            )
        })
        .collect();
    json!({"session_id": c.session_id, "internal_session_id": c.id,
        "created_at": time(c.created_at), "updated_at": time(c.updated_at),
        "summary": c.summary, "folded_turns": c.folded_turns, "agents": agents, "turns": turns})
}

/// `GET /sessions/{session_id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
) -> Response {
    let answer = async {
        sessions(&state)?
            .get(caller.owner(), &session_id)
            .await
            .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?
            .ok_or_else(|| unknown(&session_id))
    };
    match answer.await {
        Ok(c) => json_response(StatusCode::OK, &shown(&c)),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /sessions/{session_id}`: 204; the next plan with that id starts a new conversation.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(session_id): Path<String>,
) -> Response {
    let answer = async {
        let deleted = sessions(&state)?
            .delete(caller.owner(), &session_id)
            .await
            .map_err(|e| ApiError::StoreUnavailable(e.to_string()))?;
        if deleted {
            Ok(())
        } else {
            Err(unknown(&session_id))
        }
    };
    match answer.await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
