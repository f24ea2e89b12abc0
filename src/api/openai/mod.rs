//! The OpenAI-compatible door: `POST /v1/chat/completions` and `GET /v1/models`, so any OpenAI SDK
//! client can use the agent fleet as if it were one model. Model `plangate` is the `default`
//! server-side catalog, `plangate/<name>` the catalog `<name>`. The request is typed serde
//! ([`wire`]); system (or developer) messages are the plan's extra instructions, at most
//! `openai.max_system_bytes`. The answer is the one every door gives
//! ([`crate::run::answer::Answer`]), relayed as chunks or as one completion ([`relay`]); errors
//! are OpenAI error objects ([`error`]). The door is an adapter: request → `PlanRequest`,
//! `PlanEvent`s → chunks; limits, deadlines, disconnect cancellation and metrics are the runs'.

pub mod error;
pub mod relay;
pub mod wire;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use self::error::OpenAiError;
use self::relay::Relay;
use self::wire::{Chat, ChatRequest, FIELDS};
use crate::api::http::body;
use crate::api::http::caller::Caller;
use crate::api::http::error::{ApiError, refused};
use crate::api::http::request_id::request_id;
use crate::catalog::DEFAULT_CATALOG;
use crate::planner::request::PlanRequest;
use crate::run::StartInfo;
use crate::run::answer::Answer;
use crate::state::AppState;

/// The model name of the default catalog; `plangate/<catalog>` names the others.
pub const MODEL_PREFIX: &str = "plangate";

/// The door's body for a core rejection: an OpenAI error object.
pub(crate) fn reject(e: ApiError) -> Response {
    OpenAiError::Api(e).into_response()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The catalog a model names.
fn catalog_of(model: &str) -> Option<&str> {
    match model.strip_prefix(MODEL_PREFIX)? {
        "" => Some(DEFAULT_CATALOG),
        rest => rest.strip_prefix('/').filter(|c| !c.is_empty()),
    }
}

/// `GET /v1/models`: `plangate` (when a default catalog exists) and `plangate/<catalog>` each.
pub async fn models(State(state): State<AppState>) -> Response {
    let created = unix_now();
    let model = |id: String| json!({"id": id, "object": "model", "created": created, "owned_by": "plangate"});
    let mut data = Vec::new();
    if state.catalogs().get(DEFAULT_CATALOG).is_some() {
        data.push(model(MODEL_PREFIX.to_owned()));
    }
    data.extend(
        state
            .catalogs()
            .iter()
            .map(|c| model(format!("{MODEL_PREFIX}/{}", c.name))),
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"object": "list", "data": data}).to_string(),
    )
        .into_response()
}

/// `POST /v1/chat/completions`.
pub async fn chat(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match open(&state, &caller, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            let why = e.message();
            refused(e.into_response(), why)
        }
    }
}

/// Reads and checks the request, then starts its plan.
async fn open(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request_body: Body,
) -> Result<Response, OpenAiError> {
    let server = &state.config().server;
    let raw = body::read(server, headers, request_body).await?;
    let value = body::parse(server, &raw, &FIELDS).map_err(|e| {
        OpenAiError::invalid(
            "messages",
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    drop(raw);
    let chat = Chat::try_from(ChatRequest::from_value(value)?)?;
    let catalogs = state.catalogs();
    let catalog = catalog_of(&chat.model)
        .and_then(|name| catalogs.find(Some(name)).ok())
        .ok_or_else(|| OpenAiError::ModelNotFound {
            message: format!(
                "The model `{}` does not exist. Models: plangate (the default catalog) and plangate/<catalog>; catalogs: {}",
                chat.model,
                catalogs.known()
            ),
        })?;
    let limit = state.config().openai.max_system_bytes;
    if chat.instructions.len() > limit {
        return Err(OpenAiError::invalid(
            "messages",
            "system_too_long",
            format!(
                "messages: the system messages carry {} bytes, at most {limit} are passed to the planner (openai.max_system_bytes)",
                chat.instructions.len()
            ),
        ));
    }
    caller.may_use_catalog(&catalog.name)?;
    let runs = state.runs();
    let place = runs
        .place_for_caller(
            caller.plan_limit(),
            crate::run::Runs::hold_lease(runs.limits().default_timeout),
        )
        .await
        .map_err(ApiError::from)?;
    let request = PlanRequest {
        history: chat.history,
        instructions: (!chat.instructions.trim().is_empty()).then_some(chat.instructions),
        ..PlanRequest::question(chat.question, catalog.agents.clone())
    };
    let launched = runs.start(
        place,
        request,
        StartInfo {
            budget: caller.budget(),
            // Chat completions have no way to ask the user mid-answer.
            asking: crate::run::Asking::CannotAsk("this door cannot ask for approval"),
            owner: caller.owner().to_owned(),
            ..StartInfo::fresh(runs, request_id(headers), caller.label())
        },
    );
    let relay = Relay {
        events: launched.events,
        _guard: launched.guard,
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: unix_now(),
        model: chat.model,
        answer: Answer::default(),
        labels: HashMap::new(),
        files: Vec::new(),
        base_url: crate::api::http::links::base_url(
            state.config().a2a_server.public_url.as_deref(),
            headers,
        ),
        after_links: None,
    };
    if chat.stream {
        Ok(relay::stream(
            relay,
            chat.include_usage,
            state.config().server.sse_keepalive,
        ))
    } else {
        Ok(relay::complete(relay).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_name_catalogs() {
        assert_eq!(catalog_of("plangate"), Some("default"));
        assert_eq!(catalog_of("plangate/ops"), Some("ops"));
        assert_eq!(catalog_of("plangate/"), None);
        assert_eq!(catalog_of("gpt-4o"), None);
        assert_eq!(catalog_of("plangate/x"), Some("x"));
        assert_eq!(catalog_of("plangateway"), None);
    }
}
