//! The `/plan` door (spec §1.4): read and validate the body into a [`PlanRequest`] (the catalog
//! it names before its own agents, the catalog limits, tool-name collisions), admit it
//! ([`idempotency`], which takes the place), then open the SSE stream ([`stream`], frames in
//! [`frames`]) or, with resumable streams, the event log ([`resume`]). No planner logic lives
//! here.

pub mod files;
pub mod frames;
pub mod idempotency;
pub mod resume;
pub mod sessions;
pub mod stream;
pub mod tasks;

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use self::idempotency::Admitted;
use crate::api::http::body;
use crate::api::http::caller::Caller;
use crate::api::http::error::{ApiError, refused};
use crate::api::http::request_id::request_id;
use crate::planner::event::{PlanEvent, PlanObserver};
use crate::planner::request::PlanRequest;
use crate::planner::tools::check_collisions;
use crate::planner::validate::{self, Issue, PLAN_FIELDS};
use crate::run::{Runs, StartInfo};
use crate::state::AppState;
use crate::store::sessions::BeginError;

/// The door's body for a core rejection: `{"error", "detail"}`.
pub(crate) fn reject(e: ApiError) -> Response {
    e.into_response()
}

/// `POST /plan`.
pub async fn plan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match open(&state, &caller, &headers, body).await {
        Ok(response) => response,
        Err(e) => {
            let why = e.to_string();
            refused(e.into_response(), why)
        }
    }
}

/// Catalog limits (`plan.max_agents`, `plan.max_skills`): one request cannot ask for thousands
/// of tools or fan out to thousands of peers.
fn check_catalog_size(
    request: &PlanRequest,
    limits: &crate::config::PlanConfig,
) -> Result<(), ApiError> {
    let agents = request.agents.len();
    let skills: usize = request.agents.iter().map(|a| a.skills.len()).sum();
    let mut issues = Vec::new();
    if agents > limits.max_agents {
        issues.push(Issue {
            path: "agents".to_owned(),
            message: format!(
                "Too big: at most {} agents per request (plan.max_agents), got {agents}",
                limits.max_agents
            ),
        });
    }
    if skills > limits.max_skills {
        issues.push(Issue {
            path: "agents".to_owned(),
            message: format!(
                "Too big: at most {} skills per request over all agents (plan.max_skills), got {skills}",
                limits.max_skills
            ),
        });
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(issues))
    }
}

/// Attachment limits: `files.max_attachments` of them, each within `files.max_file_bytes`,
/// all within `files.max_plan_bytes` (413 naming the limit).
fn check_attachments(
    request: &PlanRequest,
    limits: &crate::config::FilesConfig,
) -> Result<(), ApiError> {
    use crate::planner::files::AttachmentContent;
    let count = request.attachments.len();
    if count > limits.max_attachments {
        return Err(ApiError::AttachmentsTooLarge(format!(
            "attachments: at most {} per request (files.max_attachments), got {count}",
            limits.max_attachments
        )));
    }
    let mut total = 0usize;
    for (i, a) in request.attachments.iter().enumerate() {
        if let AttachmentContent::Bytes(bytes) = &a.content {
            if bytes.len() > limits.max_file_bytes {
                return Err(ApiError::AttachmentsTooLarge(format!(
                    "attachments.{i}.data: {} bytes, over files.max_file_bytes ({})",
                    bytes.len(),
                    limits.max_file_bytes
                )));
            }
            total += bytes.len();
        }
    }
    if total > limits.max_plan_bytes {
        return Err(ApiError::AttachmentsTooLarge(format!(
            "attachments: {total} bytes in all, over files.max_plan_bytes ({})",
            limits.max_plan_bytes
        )));
    }
    Ok(())
}

/// The longest `session_id` that names a stored conversation (with sessions on).
const MAX_SESSION_ID_CHARS: usize = 256;

/// With sessions on, a `session_id` is a key of the store: bounded and printable.
fn check_session_id(session_id: Option<&str>) -> Result<(), ApiError> {
    match session_id {
        Some(id)
            if id.is_empty()
                || id.chars().count() > MAX_SESSION_ID_CHARS
                || id.chars().any(char::is_control) =>
        {
            Err(ApiError::invalid(vec![Issue {
                path: "session_id".to_owned(),
                message: format!(
                    "with GATEWAY_SESSIONS=on a session_id names a conversation: 1 to {MAX_SESSION_ID_CHARS} printable characters"
                ),
            }]))
        }
        _ => Ok(()),
    }
}

/// The request of a body: validated, with the agents of the catalog it names (if any) before
/// its own, within the catalog limits and free of tool-name collisions.
fn read_request(state: &AppState, caller: &Caller, raw: &[u8]) -> Result<PlanRequest, ApiError> {
    let value = body::parse(&state.config().server, raw, &PLAN_FIELDS)?;
    let validate::PlanBody {
        mut request,
        catalog,
    } = validate::validate_body(&value).map_err(ApiError::invalid)?;
    drop(value);
    // What the caller's key lets it use: the catalog it names, its own agents.
    if let Some(name) = &catalog {
        caller.may_use_catalog(name)?;
    }
    if !request.agents.is_empty() {
        caller.may_bring_agents()?;
    }
    if let Some(name) = catalog {
        let catalog = state.catalogs().find(Some(&name)).map_err(|unknown| {
            ApiError::invalid(vec![Issue {
                path: "catalog".to_owned(),
                message: unknown.describe("catalog"),
            }])
        })?;
        let own = std::mem::take(&mut request.agents);
        request.agents = catalog.agents.iter().cloned().chain(own).collect();
    }
    // `preferences.skills` narrows what the catalog (already narrowed by its own filter) and
    // the request's agents offer, before any tool is made.
    let filter = std::mem::take(&mut request.preferences.skills);
    filter.apply(&mut request.agents);
    check_catalog_size(&request, &state.config().plan)?;
    check_attachments(&request, &state.config().files)?;
    check_collisions(&request.agents).map_err(ApiError::ToolIdCollision)?;
    Ok(request)
}

async fn open(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw = body::read(&state.config().server, headers, body).await?;
    let mut request = read_request(state, caller, &raw)?;
    if state.runs().sessions().is_some() {
        check_session_id(request.session_id.as_deref())?;
    }
    let card_deadline = Instant::now() + state.runs().limits().card_budget;
    // Minted before the first frame: a resumable plan's log and routes, and a conversation's
    // turn, are keyed by it.
    let plan_id = uuid::Uuid::new_v4().to_string();
    // With server-side sessions, the plan takes its conversation first (dropping `joined` on an
    // error gives it back).
    let joined = match state
        .runs()
        .join(caller.owner(), &plan_id, &mut request)
        .await
    {
        Ok(joined) => joined,
        Err(BeginError::Busy) => {
            // A retried request of the running plan keeps its duplicate answer.
            if let Some((session_id, in_flight)) =
                idempotency::peek(state, caller.owner(), headers, &raw).await?
            {
                return Ok(duplicate(session_id, in_flight, &request));
            }
            return Err(ApiError::SessionBusy(
                request.session_id.clone().unwrap_or_default(),
            ));
        }
        Err(BeginError::TooMany(limit)) => return Err(ApiError::TooManySessions(limit)),
        Err(BeginError::Full(limit)) => return Err(ApiError::SessionsFull(limit)),
        Err(BeginError::Store(e)) => return Err(ApiError::StoreUnavailable(e.to_string())),
    };
    let (session_id, created, observer) = match joined {
        Some(j) => (
            j.session_id,
            j.created,
            Some(j.recorder as Arc<dyn PlanObserver>),
        ),
        None => (uuid::Uuid::new_v4().to_string(), true, None),
    };
    let lease = Runs::hold_lease(state.runs().deadline_of(&request));
    let (entry, place) =
        match idempotency::admit(state, caller, headers, &raw, &session_id, lease).await? {
            Admitted::Duplicate {
                session_id,
                in_flight,
            } => return Ok(duplicate(session_id, in_flight, &request)),
            Admitted::New { entry, place } => (entry, place),
        };
    drop(raw);
    let resume = state.config().resume.enabled;
    // Dropping the entry guard on an error ends the idempotency entry; the place goes back.
    if resume {
        resume::open_log(state, &plan_id, caller.owner()).await?;
    }
    let info = StartInfo {
        first: Some(PlanEvent::Session {
            session_id: session_id.clone(),
            external_session_id: request.session_id.clone(),
            created,
        }),
        session_id,
        plan_id: plan_id.clone(),
        request_id: request_id(headers),
        card_deadline,
        observer,
        caller: caller.label().to_owned(),
        budget: caller.budget(),
        asking: crate::run::Asking::Owner(caller.owner().to_owned()),
        owner: caller.owner().to_owned(),
    };
    if resume {
        // A resumable plan outlives its first reader: it runs on the tracker.
        let launched = state.runs().start(place, request, info);
        return Ok(resume::respond(
            state,
            &plan_id,
            caller.owner(),
            launched,
            entry,
        ));
    }
    let (launched, driven) = state.runs().start_driven(place, request, info);
    Ok(stream::response(
        launched.events,
        state.config().server.sse_keepalive,
        (entry, launched.guard),
        driven,
    ))
}

/// The stream of a duplicate: the running (or recent) plan's id, and nothing is re-run.
fn duplicate(session_id: String, in_flight: bool, request: &PlanRequest) -> Response {
    let message = if in_flight {
        "Plan with identical body is in flight; not re-running."
    } else {
        "Plan with identical body recently completed (within idempotency TTL)."
    };
    stream::fixed(&[
        PlanEvent::Session {
            session_id: session_id.clone(),
            external_session_id: request.session_id.clone(),
            created: false,
        },
        PlanEvent::Duplicate {
            session_id,
            in_flight,
            message: message.to_owned(),
        },
        PlanEvent::Done,
    ])
}
