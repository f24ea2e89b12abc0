//! Runs: a running plan's lifecycle, whichever door started it, and nothing of HTTP.
//!
//! - [`place`]: one of `server.max_concurrent_plans` places, as a guard that gives it back when
//!   dropped ([`Place`]); refused while draining or at the cap ([`Refused`]).
//! - [`start`]: a plan started on the gateway's task tracker, or handed to its door to drive
//!   (the `/plan` body polls it), its events on a bounded channel; dropping the door's
//!   [`start::PlanGuard`] aborts the plan and gives its place back.
//! - [`registry`]: the resumable plans running here (owner, abort switch, readers), and
//!   [`pump`]: each one's events written to its event log (memory or Redis), its lease renewed.
//! - [`session`]: a plan's turn of a server-side conversation, joined before it starts and
//!   saved before its `done`.
//! - [`answer`]: the one answer every door returns, assembled from the plan's events, and the
//!   one-line progress texts of peer calls.
//!
//! A door builds a [`PlanRequest`], takes a [`Place`], starts the plan with [`Runs::start`] and
//! maps the [`crate::planner::event::PlanEvent`]s to its own frames.

pub mod answer;
pub mod ask;
pub mod files;
mod place;
pub mod pump;
pub mod registry;
pub mod session;
pub mod start;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::planner::PlannerDeps;
use crate::planner::request::PlanRequest;
use crate::telemetry::metrics::Metrics;

pub use self::place::{Place, Refused};
pub use self::start::{DrivenPlan, Launched, PlanGuard};
/// The shared store's small records, which doors keep their own state in (MCP sessions).
pub use crate::store::records::SharedRecords;

/// The limits a run is started with (from `server.*`, `plan.*` and `a2a.*`).
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// `server.max_concurrent_plans` (0: no cap).
    pub max_concurrent_plans: usize,
    /// `plan.default_timeout_ms`: the deadline of a plan without `preferences.timeout_ms`.
    pub default_timeout: Duration,
    /// `a2a.card_budget_ms`: how long a plan's first calls wait for the agent cards.
    pub card_budget: Duration,
    /// `plan.max_concurrent_calls`: peer calls one plan runs at once.
    pub max_concurrent_calls: usize,
    /// `plan.confirm_timeout_ms`: how long a plan's question waits for its client.
    pub confirm_timeout: Duration,
    /// How long the tasks of an ended plan answer 409 rather than 404 (`resume.retention_secs`).
    pub ask_retention: Duration,
    /// `files.max_file_bytes` and `files.max_plan_bytes`.
    pub file_caps: crate::planner::files::FileCaps,
    /// `files.retention_secs`: how long an ended plan's files stay.
    pub file_retention: Duration,
    /// `files.max_total_bytes`: files kept over all plans.
    pub max_total_file_bytes: usize,
}

/// Starts and owns the gateway's plans; cheap to share (`Arc` fields).
#[derive(Debug)]
pub struct Runs {
    deps: Arc<PlannerDeps>,
    limits: RunLimits,
    tracker: TaskTracker,
    draining: CancellationToken,
    hard_stop: CancellationToken,
    places: place::Places,
    metrics: Arc<Metrics>,
    resumable: Option<Arc<registry::Resumable>>,
    /// Server-side conversations (`GATEWAY_SESSIONS=on`).
    sessions: Option<Arc<crate::store::sessions::Sessions>>,
    /// `sessions.max_turns`.
    max_turns: usize,
    /// The A2A door's `contextId` conversations on the shared store (with `GATEWAY_REDIS_URL`).
    shared_contexts: Option<Arc<crate::store::contexts::SharedContexts>>,
    /// The MCP door's sessions on the shared store.
    mcp_sessions: Option<Arc<SharedRecords>>,
    /// Keys' running plans counted on the shared store, for every instance.
    key_plans: Option<crate::store::counters::SharedCounters>,
    /// The questions of running plans and the answers to them.
    asks: Arc<ask::Asks>,
    /// Store listeners running on the tracker for the gateway's life.
    listeners: std::sync::atomic::AtomicUsize,
    /// Plans' files (memory, or the shared store).
    files: Arc<crate::store::files::Files>,
}

/// What a plan starts with, besides its request.
#[derive(Debug)]
pub struct StartInfo {
    /// The conversation's internal id (the `session_id` of the `/plan` `session` frame).
    pub session_id: String,
    /// The plan's id (the `plan_id` of the `plan` frame; resumable plans are keyed by it).
    pub plan_id: String,
    /// The request id its log lines carry.
    pub request_id: String,
    /// Until when the first calls wait for agent cards.
    pub card_deadline: Instant,
    /// A door's own first event, queued before anything the planner says.
    pub first: Option<crate::planner::event::PlanEvent>,
    /// Follows the plan's events (a conversation's turn being recorded).
    pub observer: Option<Arc<dyn crate::planner::event::PlanObserver>>,
    /// The caller's name in logs (its key's name; never a token or its hash).
    pub caller: String,
    /// The caller's LLM token budget (a key with `llm_tokens_per_day`).
    pub budget: Option<Arc<dyn crate::planner::TokenBudget>>,
    /// Whether the plan's client can be asked (confirmations, peers' questions).
    pub asking: Asking,
    /// Who may fetch the plan's files (the caller's owner).
    pub owner: String,
}

/// Whether a plan's client can answer its questions.
#[derive(Debug, Clone)]
pub enum Asking {
    /// Through the plan's task routes, by this owner (on any instance).
    Owner(String),
    /// Not through this door: confirmations are declined with this reason.
    CannotAsk(&'static str),
}

impl StartInfo {
    /// A fresh session and plan id, the cards' budget from now, no first event, for the caller
    /// named `caller` in logs (set `owner` for the plan's files to be fetchable).
    #[must_use]
    pub fn fresh(runs: &Runs, request_id: String, caller: &str) -> Self {
        Self {
            session_id: uuid::Uuid::new_v4().to_string(),
            plan_id: uuid::Uuid::new_v4().to_string(),
            request_id,
            card_deadline: Instant::now() + runs.limits.card_budget,
            first: None,
            observer: None,
            caller: caller.to_owned(),
            budget: None,
            asking: Asking::CannotAsk("this door cannot ask"),
            owner: String::new(),
        }
    }
}

impl Runs {
    /// The gateway's runner. `tracker` owns every task it spawns; `draining` refuses new places;
    /// `hard_stop` aborts running plans at the end of the shutdown grace.
    #[must_use]
    pub fn new(
        deps: Arc<PlannerDeps>,
        limits: RunLimits,
        tracker: TaskTracker,
        metrics: Arc<Metrics>,
        resumable: Option<registry::Resumable>,
        sessions: Option<(crate::store::sessions::Sessions, usize)>,
    ) -> Self {
        let (sessions, max_turns) = match sessions {
            Some((s, max_turns)) => (Some(Arc::new(s)), max_turns),
            None => (None, usize::MAX),
        };
        Self {
            sessions,
            max_turns,
            shared_contexts: None,
            mcp_sessions: None,
            key_plans: None,
            asks: Arc::new(ask::Asks::new(limits.ask_retention, None)),
            listeners: std::sync::atomic::AtomicUsize::new(0),
            files: Arc::new(crate::store::files::Files::memory(
                limits.max_total_file_bytes,
                limits.file_retention,
            )),
            deps,
            limits,
            tracker,
            draining: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            places: place::Places::new(limits.max_concurrent_plans),
            metrics,
            resumable: resumable.map(Arc::new),
        }
    }

    /// Takes one of the `server.max_concurrent_plans` places, unless the gateway is draining.
    ///
    /// # Errors
    /// [`Refused::ShuttingDown`] or [`Refused::Overloaded`].
    pub fn place(&self) -> Result<Place, Refused> {
        self.place_for(None)
    }

    /// Like [`Runs::place`], for a caller whose key runs at most `key.1` plans at once (`key.0`
    /// is its name).
    ///
    /// # Errors
    /// [`Refused::ShuttingDown`], [`Refused::Overloaded`] or [`Refused::KeyBusy`].
    pub fn place_for(&self, key: Option<(&str, u32)>) -> Result<Place, Refused> {
        if self.draining.is_cancelled() {
            return Err(Refused::ShuttingDown);
        }
        self.places.take(key)
    }

    /// Like [`Runs::place_for`], with the key's plans counted on the shared store when there
    /// is one (a hold that ends by itself `lease` from now: the plan's deadline and some grace,
    /// should this instance die holding it).
    ///
    /// # Errors
    /// As [`Runs::place_for`], and [`Refused::StoreUnavailable`].
    pub async fn place_for_caller(
        &self,
        key: Option<(&str, u32)>,
        lease: Duration,
    ) -> Result<Place, Refused> {
        let (Some(counters), Some((name, most))) = (&self.key_plans, key) else {
            return self.place_for(key);
        };
        let place = self.place_for(None)?;
        let id = uuid::Uuid::new_v4().to_string();
        match counters.hold(name, most, lease, &id).await {
            Ok(true) => Ok(place.holding(place::SharedSlot {
                counters: counters.clone(),
                tracker: self.tracker.clone(),
                name: name.to_owned(),
                id,
            })),
            Ok(false) => Err(Refused::KeyBusy),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count a key's plans in the store");
                Err(Refused::StoreUnavailable)
            }
        }
    }

    /// The lease of a key's plan hold for a plan of `deadline`: the deadline, the time its
    /// last frames may take, and a margin.
    #[must_use]
    pub fn hold_lease(deadline: Duration) -> Duration {
        deadline + Duration::from_secs(30)
    }

    /// Whether a new plan would get a place now.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        !self.draining.is_cancelled() && self.places.has_room()
    }

    /// Plans holding a place now.
    #[must_use]
    pub fn open_plans(&self) -> usize {
        self.places.taken()
    }

    /// The plan's deadline: `preferences.timeout_ms`, else `plan.default_timeout_ms`.
    #[must_use]
    pub fn deadline_of(&self, request: &PlanRequest) -> Duration {
        request
            .preferences
            .timeout_ms
            .map_or(self.limits.default_timeout, Duration::from_millis)
    }

    /// What every plan uses (peer client, LLM, recipes, prompts).
    #[must_use]
    pub fn deps(&self) -> &PlannerDeps {
        &self.deps
    }

    /// The limits runs start with.
    #[must_use]
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    /// The task tracker that owns every task the gateway spawns.
    #[must_use]
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Set when shutdown begins: no new places.
    #[must_use]
    pub fn draining(&self) -> &CancellationToken {
        &self.draining
    }

    /// Fires when the shutdown grace is over: running plans are aborted.
    #[must_use]
    pub fn hard_stop(&self) -> &CancellationToken {
        &self.hard_stop
    }

    /// Starts this instance's listeners on the shared store: cancels (`DELETE` on any instance,
    /// when plans are resumable) and answers to plans' questions.
    pub fn listen_for_cancels(&self, store: crate::store::redis::RedisStore) {
        use std::sync::atomic::Ordering;
        if let Some(registry) = &self.resumable {
            registry.listen_for_cancels(store, &self.tracker, self.hard_stop.clone());
            self.listeners.fetch_add(1, Ordering::SeqCst);
        }
        if self.asks.listen(&self.tracker, self.hard_stop.clone()) {
            self.listeners.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Store listeners running for the gateway's life (not counted as requests' tasks).
    #[must_use]
    pub fn listeners(&self) -> usize {
        self.listeners.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Keeps the A2A door's `contextId` conversations on the shared store, so any instance
    /// continues them.
    #[must_use]
    pub fn with_shared_contexts(
        mut self,
        contexts: crate::store::contexts::SharedContexts,
    ) -> Self {
        self.shared_contexts = Some(Arc::new(contexts));
        self
    }

    /// Keeps plans' questions on the shared store, so an answer may arrive at any instance.
    #[must_use]
    pub fn with_shared_asks(mut self, shared: crate::store::asks::SharedAsks) -> Self {
        self.asks = Arc::new(ask::Asks::new(self.limits.ask_retention, Some(shared)));
        self
    }

    /// The questions of running plans (answers come through [`ask::Asks::answer`]).
    #[must_use]
    pub fn asks(&self) -> &Arc<ask::Asks> {
        &self.asks
    }

    /// Counts keys' running plans (`max_concurrent_plans`) on the shared store, so the limit
    /// holds across instances.
    #[must_use]
    pub fn with_shared_key_plans(
        mut self,
        counters: crate::store::counters::SharedCounters,
    ) -> Self {
        self.key_plans = Some(counters);
        self
    }

    /// Keeps plans' files on the shared store, so the files route answers on any instance.
    #[must_use]
    pub fn with_shared_files(mut self, store: crate::store::redis::RedisStore) -> Self {
        self.files = Arc::new(crate::store::files::Files::redis(
            store,
            self.limits.max_total_file_bytes,
            self.limits.file_retention,
        ));
        self
    }

    /// Plans' files (the files route reads them).
    #[must_use]
    pub fn files(&self) -> &Arc<crate::store::files::Files> {
        &self.files
    }

    /// Keeps the MCP door's sessions on the shared store.
    #[must_use]
    pub fn with_mcp_sessions(mut self, records: SharedRecords) -> Self {
        self.mcp_sessions = Some(Arc::new(records));
        self
    }

    /// The MCP door's sessions on the shared store, when there is one.
    #[must_use]
    pub fn mcp_sessions(&self) -> Option<&Arc<SharedRecords>> {
        self.mcp_sessions.as_ref()
    }

    /// The A2A door's conversations on the shared store, when there is one.
    #[must_use]
    pub fn shared_contexts(&self) -> Option<&Arc<crate::store::contexts::SharedContexts>> {
        self.shared_contexts.as_ref()
    }

    /// The resumable plans running here (`GATEWAY_SSE_RESUME=on`).
    #[must_use]
    pub fn resumable(&self) -> Option<&Arc<registry::Resumable>> {
        self.resumable.as_ref()
    }
}
