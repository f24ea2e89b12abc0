//! The MCP door's sessions: which token opened each, when it was last used, and the calls
//! running in it (so `notifications/cancelled` and `DELETE` can cancel them). Bounded in count
//! (`mcp.max_sessions`, least recently used first) and idle time (`mcp.session_ttl_secs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::McpConfig;
use crate::planner::{AbortReason, PlanAbort};

/// One client's session.
#[derive(Debug)]
struct Session {
    owner: String,
    last_used: Instant,
    /// Running `tools/call`s by request id (for `notifications/cancelled`).
    running: HashMap<String, Arc<PlanAbort>>,
}

/// The door's sessions, bounded in count and idle time.
#[derive(Debug)]
pub struct McpSessions {
    sessions: Mutex<HashMap<String, Session>>,
    config: McpConfig,
}

/// Why a request's session cannot be used.
pub(crate) enum SessionProblem {
    Missing,
    Unknown,
}

impl McpSessions {
    #[must_use]
    pub fn new(config: &McpConfig) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            config: config.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn open(&self, owner: &str) -> String {
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
        let id = uuid::Uuid::new_v4().simple().to_string();
        sessions.insert(
            id.clone(),
            Session {
                owner: owner.to_owned(),
                last_used: now,
                running: HashMap::new(),
            },
        );
        id
    }

    /// Marks the caller's session used (another token's session is unknown).
    pub(crate) fn touch(&self, owner: &str, id: Option<&str>) -> Result<String, SessionProblem> {
        let id = id.ok_or(SessionProblem::Missing)?;
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

    pub(crate) fn close(&self, owner: &str, id: &str) -> bool {
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
