//! The MCP door's sessions: which token opened each, when it was last used, and the calls
//! running in it (so `notifications/cancelled` and `DELETE` can cancel them). Bounded in count
//! (`mcp.max_sessions`, least recently used first) and idle time (`mcp.session_ttl_secs`).
//! With a shared store (`GATEWAY_REDIS_URL`) a session is also kept there, so the client's
//! `Mcp-Session-Id` works on every instance: an instance that does not know it adopts it from the
//! store. Running calls stay with the instance that runs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::McpConfig;
use crate::planner::{AbortReason, PlanAbort};
use crate::run::SharedRecords;

/// One client's session.
#[derive(Debug)]
struct Session {
    owner: String,
    last_used: Instant,
    /// Running `tools/call`s by request id (for `notifications/cancelled`).
    running: HashMap<String, Arc<PlanAbort>>,
    /// The client declared the `elicitation` capability at `initialize`.
    elicitation: bool,
    /// `elicitation/create` requests sent and not answered yet, by request id.
    elicits: HashMap<String, Elicit>,
}

/// What an `elicitation/create` request asked: a question of a running plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Elicit {
    pub(crate) plan: String,
    pub(crate) task: String,
    pub(crate) kind: crate::planner::ask::AskKind,
}

/// The door's sessions, bounded in count and idle time.
#[derive(Debug)]
pub struct McpSessions {
    sessions: Mutex<HashMap<String, Session>>,
    config: McpConfig,
    shared: Option<Arc<SharedRecords>>,
}

/// Why a request's session cannot be used.
pub(crate) enum SessionProblem {
    Missing,
    Unknown,
    /// The shared store does not answer.
    Store(String),
}

impl McpSessions {
    #[must_use]
    pub fn new(config: &McpConfig, shared: Option<Arc<SharedRecords>>) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            config: config.clone(),
            shared,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session of `owner`.
    ///
    /// # Errors
    /// The shared store does not answer.
    pub(crate) async fn open(
        &self,
        owner: &str,
        elicitation: bool,
    ) -> Result<String, SessionProblem> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if let Some(shared) = &self.shared {
            shared
                .put(&id, owner)
                .await
                .map_err(|e| SessionProblem::Store(e.to_string()))?;
        }
        self.keep(&id, owner, elicitation);
        Ok(id)
    }

    /// Whether session `id`'s client can be asked (`elicitation`). A session adopted from
    /// another instance is not known to be able to.
    pub(crate) fn can_elicit(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|s| s.elicitation)
    }

    /// An `elicitation/create` request `request` was sent in session `id`.
    pub(crate) fn elicit(&self, id: &str, request: &str, about: Elicit) {
        if let Some(s) = self.lock().get_mut(id) {
            s.elicits.insert(request.to_owned(), about);
        }
    }

    /// The question the client's response `request` in `owner`'s session `id` answers.
    pub(crate) fn answered(&self, owner: &str, id: &str, request: &str) -> Option<Elicit> {
        self.lock()
            .get_mut(id)
            .filter(|s| s.owner == owner)
            .and_then(|s| s.elicits.remove(request))
    }

    /// Keeps session `id` of `owner` here.
    fn keep(&self, id: &str, owner: &str, elicitation: bool) {
        let mut sessions = self.lock();
        let now = Instant::now();
        let ttl = self.config.session_ttl;
        sessions.retain(|_, s| now.duration_since(s.last_used) < ttl);
        if sessions.len() >= self.config.max_sessions {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.to_owned(),
            Session {
                owner: owner.to_owned(),
                last_used: now,
                running: HashMap::new(),
                elicitation,
                elicits: HashMap::new(),
            },
        );
    }

    /// Marks the caller's session used (another token's session is unknown); with a shared
    /// store, a session opened on another instance is adopted.
    pub(crate) async fn touch(
        &self,
        owner: &str,
        id: Option<&str>,
    ) -> Result<String, SessionProblem> {
        let id = id.ok_or(SessionProblem::Missing)?;
        if let Some(shared) = &self.shared {
            // The store keeps the idle time every instance sees.
            let stored = shared
                .touch(id)
                .await
                .map_err(|e| SessionProblem::Store(e.to_string()))?;
            if stored.as_deref() != Some(owner) {
                return Err(SessionProblem::Unknown);
            }
            let mut sessions = self.lock();
            if let Some(s) = sessions.get_mut(id).filter(|s| s.owner == owner) {
                s.last_used = Instant::now();
                return Ok(id.to_owned());
            }
            drop(sessions);
            self.keep(id, owner, false);
            return Ok(id.to_owned());
        }
        let mut sessions = self.lock();
        let now = Instant::now();
        match sessions.get_mut(id) {
            Some(s)
                if s.owner == owner
                    && now.duration_since(s.last_used) < self.config.session_ttl =>
            {
                s.last_used = now;
                Ok(id.to_owned())
            }
            _ => Err(SessionProblem::Unknown),
        }
    }

    /// Ends the caller's session `id` (and its running calls here); `false` when it has none.
    pub(crate) async fn close(&self, owner: &str, id: &str) -> Result<bool, SessionProblem> {
        if let Some(shared) = &self.shared {
            let stored = shared
                .touch(id)
                .await
                .map_err(|e| SessionProblem::Store(e.to_string()))?;
            if stored.as_deref() != Some(owner) {
                return Ok(false);
            }
            shared
                .delete(id)
                .await
                .map_err(|e| SessionProblem::Store(e.to_string()))?;
            self.forget(owner, id);
            return Ok(true);
        }
        Ok(self.forget(owner, id))
    }

    /// Drops the caller's session `id` here, canceling its running calls.
    fn forget(&self, owner: &str, id: &str) -> bool {
        let mut sessions = self.lock();
        if sessions.get(id).is_some_and(|s| s.owner == owner) {
            if let Some(session) = sessions.remove(id) {
                for abort in session.running.values() {
                    abort.abort(AbortReason::Signal);
                }
            }
            true
        } else {
            false
        }
    }

    pub(crate) fn running(&self, session: &str, request: &str, abort: Option<Arc<PlanAbort>>) {
        if let Some(s) = self.lock().get_mut(session) {
            match abort {
                Some(abort) => {
                    s.running.insert(request.to_owned(), abort);
                }
                None => {
                    s.running.remove(request);
                }
            }
        }
    }

    pub(crate) fn cancel(&self, session: &str, request: &str) {
        if let Some(abort) = self
            .lock()
            .get_mut(session)
            .and_then(|s| s.running.remove(request))
        {
            abort.abort(AbortReason::Signal);
        }
    }

    /// Sessions kept (for leak checks).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
