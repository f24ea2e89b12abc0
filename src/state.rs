//! The gateway's live services, built once by [`crate::boot`] and handed to the route table:
//! configuration, the runner of plans ([`Runs`]), who may call ([`Authenticator`]), the
//! idempotency store, the shared store on Redis, the server-side catalogs and the gateway
//! identity. Cloning [`AppState`] clones an `Arc`; its fields are private and read through the
//! methods below. What a single door keeps (the A2A door's tasks, the MCP door's sessions) is
//! that door's own state, built with its routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::access::Authenticator;
use crate::catalog::Catalogs;
use crate::config::Config;
use crate::identity::Identity;
use crate::run::Runs;
use crate::store::idempotency::Idempotency;
use crate::store::redis::RedisStore;
use crate::telemetry::metrics::Metrics;

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// The live services of one gateway.
#[derive(Debug)]
pub(crate) struct Inner {
    /// The validated configuration (plain data).
    pub(crate) config: Config,
    /// Starts and owns every plan: capacity, the task tracker, shutdown switches.
    pub(crate) runs: Runs,
    /// Bearer tokens accepted by the doors.
    pub(crate) auth: Authenticator,
    /// Which request bodies (per token) are in flight or recently done.
    pub(crate) idempotency: Idempotency,
    /// The gateway's DID identity, when configured: signs peer requests, serves `did.json`.
    pub(crate) identity: Option<Arc<Identity>>,
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
    /// The shared store on Redis (`GATEWAY_REDIS_URL`), when configured.
    pub(crate) redis: Option<RedisStore>,
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

    /// The configuration the gateway runs with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The runner of plans.
    #[must_use]
    pub fn runs(&self) -> &Runs {
        &self.0.runs
    }

    /// Who may call.
    #[must_use]
    pub fn auth(&self) -> &Authenticator {
        &self.0.auth
    }

    /// The idempotency table of this instance.
    #[must_use]
    pub fn idempotency(&self) -> &Idempotency {
        &self.0.idempotency
    }

    /// The shared store on Redis, when configured.
    #[must_use]
    pub fn redis(&self) -> Option<&RedisStore> {
        self.0.redis.as_ref()
    }

    /// The gateway identity, when configured.
    #[must_use]
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.0.identity.as_ref()
    }

    /// When the gateway was built (`/health` uptime).
    #[must_use]
    pub fn started(&self) -> Instant {
        self.0.started
    }

    /// The HTTP client for operator-configured services.
    #[must_use]
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Whether the gateway registered with Hydra at boot.
    #[must_use]
    pub fn hydra_integrated(&self) -> bool {
        self.0.hydra_integrated.load(Ordering::SeqCst)
    }

    pub(crate) fn set_hydra_integrated(&self, integrated: bool) {
        self.0.hydra_integrated.store(integrated, Ordering::SeqCst);
    }

    /// Whether every door will answer 401 (bearer auth on, no token configured).
    #[must_use]
    pub fn rejects_everyone(&self) -> bool {
        self.0.auth.rejects_everyone()
    }

    /// Starts draining: new plans get 503 while running ones go on (shutdown's first step).
    pub fn begin_draining(&self) {
        self.0.runs.draining().cancel();
    }

    /// Whether shutdown has begun.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.0.runs.draining().is_cancelled()
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
        self.0.runs.is_ready()
    }

    /// Current counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            open_plans: self.0.runs.open_plans(),
            idempotency_entries: self.0.idempotency.len(),
            // The store listeners live as long as the gateway; they are not requests' tasks.
            live_tasks: self
                .0
                .runs
                .tracker()
                .len()
                .saturating_sub(self.0.runs.listeners()),
        }
    }
}
