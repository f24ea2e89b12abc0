//! What every door shares, built once by [`crate::boot`] and handed to the doors: configuration,
//! the planner's collaborators, the idempotency store, the gateway identity and the shutdown
//! switches. Cloning [`AppState`] clones an `Arc`; its fields are reached through methods.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::agent::tasks::TaskStore;
use crate::api::auth::Authenticator;
use crate::api::catalog::Catalogs;
use crate::config::Config;
use crate::identity::Identity;
use crate::planner::PlannerDeps;
use crate::store::idempotency::Idempotency;
use crate::telemetry::metrics::Metrics;

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// The live services of one gateway.
#[derive(Debug)]
pub(crate) struct Inner {
    /// The validated configuration (plain data).
    pub(crate) config: Config,
    /// What every plan uses: peer client, key resolver, LLM, recipes, prompts.
    pub(crate) deps: Arc<PlannerDeps>,
    /// Bearer tokens accepted by the doors.
    pub(crate) auth: Authenticator,
    /// Which request bodies (per token) are in flight or recently done.
    pub(crate) idempotency: Idempotency,
    /// The gateway's DID identity, when configured: signs peer requests, serves `did.json`.
    pub(crate) identity: Option<Arc<Identity>>,
    /// Set when shutdown begins: new plans get 503.
    pub(crate) draining: CancellationToken,
    /// Fires when the shutdown grace period is over: running plans are aborted.
    pub(crate) hard_stop: CancellationToken,
    /// Owns every task the gateway spawns (plans, card fetches, cancels).
    pub(crate) tracker: TaskTracker,
    /// Plans whose streams are open.
    pub(crate) open_plans: AtomicUsize,
    /// When the state was built (`/health` uptime).
    pub(crate) started: Instant,
    /// Hydra registration succeeded at boot.
    pub(crate) hydra_integrated: AtomicBool,
    /// The HTTP client for operator-configured services (LLM, Hydra).
    pub(crate) http: reqwest::Client,
    /// This gateway's metrics (shared with the planner and the LLM client).
    pub(crate) metrics: Arc<Metrics>,
    /// The server-side catalogs (`GATEWAY_CATALOG`).
    pub(crate) catalogs: Arc<Catalogs>,
    /// The A2A door's tasks and conversations.
    pub(crate) tasks: TaskStore,
    /// The MCP door's sessions.
    pub(crate) mcp: crate::api::mcp::sessions::McpSessions,
    /// The shared store on Redis (`GATEWAY_REDIS_URL`), when configured.
    pub(crate) redis: Option<crate::store::redis::RedisStore>,
    /// Resumable plans and their event logs (`GATEWAY_SSE_RESUME=on`).
    pub(crate) resumable: Option<crate::api::resume::registry::Resumable>,
}

/// Counters for leak checks and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub open_plans: usize,
    pub idempotency_entries: usize,
    pub live_tasks: usize,
}

impl AppState {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.0
    }

    /// The configuration the gateway runs with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The gateway identity, when configured.
    #[must_use]
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.0.identity.as_ref()
    }

    /// Whether the gateway registered with Hydra at boot.
    #[must_use]
    pub fn hydra_integrated(&self) -> bool {
        self.0.hydra_integrated.load(Ordering::SeqCst)
    }

    /// Whether every `/plan` request will get 401 (bearer auth on, no token configured).
    #[must_use]
    pub fn rejects_everyone(&self) -> bool {
        self.0.auth.rejects_everyone()
    }

    /// Starts draining: new plans get 503 while running ones go on (shutdown's first step).
    pub fn begin_draining(&self) {
        self.0.draining.cancel();
    }

    /// The server-side catalogs.
    #[must_use]
    pub fn catalogs(&self) -> &Catalogs {
        &self.0.catalogs
    }

    /// This gateway's metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Whether new plans are accepted now: not draining, and below `server.max_concurrent_plans`.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        let max = self.0.config.server.max_concurrent_plans;
        !self.0.draining.is_cancelled()
            && (max == 0 || self.0.open_plans.load(Ordering::SeqCst) < max)
    }

    /// Current counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            open_plans: self.0.open_plans.load(Ordering::SeqCst),
            idempotency_entries: self.0.idempotency.len(),
            live_tasks: self.0.tracker.len(),
        }
    }
}
