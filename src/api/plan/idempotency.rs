//! `/plan`'s idempotency (spec §1.6): one plan per body (or `Idempotency-Key`) per caller while it
//! runs and for `plan.idempotency_ttl` after, on this instance or, with `GATEWAY_REDIS_URL`, on
//! every instance. The place among `server.max_concurrent_plans` is taken in the same step, so
//! a duplicate never needs one.

use axum::http::HeaderMap;

use crate::api::http::caller::Caller;
use crate::api::http::error::ApiError;
use crate::run::Place;
use crate::state::AppState;
use crate::store::idempotency::{Admission, Idempotency, Ticket};

/// What the table says of a request.
pub(crate) enum Admitted {
    /// The same plan runs, or ran recently.
    Duplicate { session_id: String, in_flight: bool },
    /// A new plan, holding its place; its entry ends when the guard is dropped.
    New { entry: EntryGuard, place: Place },
}

/// Lives as long as the plan's stream: its drop ends the idempotency entry's flight.
pub(crate) struct EntryGuard {
    state: AppState,
    entry: Entry,
}

/// Where the plan's idempotency entry lives.
enum Entry {
    Local(Ticket),
    /// On Redis: the scoped key, the plan, and whether it is a header key (it lingers).
    Shared {
        key: String,
        session_id: String,
        header: bool,
    },
}

impl Drop for EntryGuard {
    fn drop(&mut self) {
        match &self.entry {
            Entry::Local(ticket) => self.state.idempotency().end(ticket),
            Entry::Shared {
                key,
                session_id,
                header,
            } => {
                let Some(store) = self.state.redis().cloned() else {
                    return;
                };
                let linger = header.then_some(self.state.config().plan.idempotency_ttl);
                let (key, session_id) = (key.clone(), session_id.clone());
                self.state.runs().tracker().spawn(async move {
                    if let Err(e) = store.end_key(&key, &session_id, linger).await {
                        tracing::warn!(error = %e, "cannot end the idempotency entry in the store");
                    }
                });
            }
        }
    }
}

/// Looks the request up without registering it: the duplicate's session id and whether it still
/// runs.
///
/// # Errors
/// The shared store does not answer.
pub(crate) async fn peek(
    state: &AppState,
    owner: &str,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<Option<(String, bool)>, ApiError> {
    let key = Idempotency::key(owner, header_key(headers), raw);
    match state.redis() {
        None => Ok(state.idempotency().peek(&key)),
        Some(store) => store
            .peek_key(&key)
            .await
            .map(|d| d.map(|d| (d.session_id, d.in_flight)))
            .map_err(|e| ApiError::StoreUnavailable(e.to_string())),
    }
}

fn header_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
}

/// Looks the request up; a new one registers `session_id` and takes a place.
///
/// # Errors
/// No place (503 `shutting_down` / `overloaded`), or the shared store does not answer.
pub(crate) async fn admit(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    raw: &[u8],
    session_id: &str,
    lease: std::time::Duration,
) -> Result<Admitted, ApiError> {
    let owner = caller.owner();
    let place = || state.runs().place_for(caller.plan_limit());
    let header = header_key(headers);
    let key = Idempotency::key(owner, header, raw);
    let entry = match state.redis() {
        None => match state.idempotency().admit(&key, session_id, place) {
            Admission::Duplicate {
                session_id,
                in_flight,
            } => {
                return Ok(Admitted::Duplicate {
                    session_id,
                    in_flight,
                });
            }
            Admission::Refused(refused) => return Err(refused.into()),
            Admission::Registered((ticket, place)) => (Entry::Local(ticket), place),
        },
        Some(store) => match store.admit(&key, session_id).await {
            Ok(Some(duplicate)) => {
                return Ok(Admitted::Duplicate {
                    session_id: duplicate.session_id,
                    in_flight: duplicate.in_flight,
                });
            }
            // With a shared store, the key's plans are counted there, for every instance.
            Ok(None) => match state
                .runs()
                .place_for_caller(caller.plan_limit(), lease)
                .await
            {
                Ok(place) => (
                    Entry::Shared {
                        key,
                        session_id: session_id.to_owned(),
                        header: header.is_some(),
                    },
                    place,
                ),
                Err(refused) => {
                    let _ = store.end_key(&key, session_id, None).await;
                    return Err(refused.into());
                }
            },
            Err(e) => return Err(ApiError::StoreUnavailable(e.to_string())),
        },
    };
    let (entry, place) = entry;
    Ok(Admitted::New {
        entry: EntryGuard {
            state: state.clone(),
            entry,
        },
        place,
    })
}
