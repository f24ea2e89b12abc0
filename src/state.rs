//! Gateway-wide state shared by every request: configuration, the planner's collaborators, the
//! idempotency table and the shutdown switches. Cloning [`AppState`] clones an `Arc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::a2a::A2aClient;
use crate::a2a::guard::Guard;
use crate::api::auth::Authenticator;
use crate::api::idempotency::Idempotency;
use crate::config::{Config, ConfigError};
use crate::identity::hydra::TokenProvider;
use crate::identity::verify::KeyResolver;
use crate::llm::{LlmClient, LlmSettings};
use crate::planner::{PlannerDeps, prompt};
use crate::recipe::{Permissions, RecipeBook};

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    pub deps: Arc<PlannerDeps>,
    pub auth: Authenticator,
    pub idempotency: Idempotency,
    /// Set when shutdown begins: new plans get 503.
    pub draining: CancellationToken,
    /// Fires when the shutdown grace period is over: running plans are aborted.
    pub hard_stop: CancellationToken,
    /// Owns every task the gateway spawns (plans, card fetches, cancels).
    pub tracker: TaskTracker,
    /// Plans whose streams are open.
    pub open_plans: AtomicUsize,
    pub started: Instant,
    /// Hydra registration succeeded at boot.
    pub hydra_integrated: AtomicBool,
    /// The shared HTTP client.
    pub http: reqwest::Client,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Counters for leak checks and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub open_plans: usize,
    pub idempotency_entries: usize,
    pub live_tasks: usize,
}

impl AppState {
    /// Builds the state from a validated configuration.
    ///
    /// # Errors
    /// A boot failure (HTTP client construction).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let client = || {
            reqwest::Client::builder()
                .user_agent(concat!("plangate/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(60))
                // Thousands of polling plans must not keep thousands of idle sockets and buffers.
                .pool_max_idle_per_host(256)
        };
        // Operator-configured services (LLM, Hydra).
        let http = client()
            .build()
            .map_err(|e| ConfigError(format!("http client: {e}")))?;
        // Addresses a request body names (peers, their cards and DID documents): the SSRF guard
        // checks every resolution at connect time, and redirects are not followed.
        let guard = Guard {
            block_private: config.a2a.block_private_endpoints,
        };
        let peer_http = client()
            .dns_resolver(guard.resolver())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError(format!("http client: {e}")))?;
        let tracker = TaskTracker::new();
        let tokens = match (&config.identity, &config.hydra) {
            (Some(identity), Some(hydra)) => {
                Some(Arc::new(TokenProvider::new(http.clone(), identity, hydra)))
            }
            _ => None,
        };
        let a2a = Arc::new(
            A2aClient::new(
                peer_http.clone(),
                config.a2a.clone(),
                config.peer_env.clone(),
                tracker.clone(),
            )
            .with_identity(config.identity.clone(), tokens),
        );
        let keys = KeyResolver::new(
            peer_http,
            config.a2a.did_resolve_timeout,
            config.a2a.max_response_bytes,
        );
        let llm = config.llm.api_key.clone().map(|api_key| {
            LlmClient::new(
                http.clone(),
                LlmSettings {
                    max_response_bytes: config.llm.max_response_bytes,
                    base_url: config.llm.base_url.clone(),
                    api_key,
                    model: config.planner.model.clone(),
                    fallback_models: config.llm.fallback_models.clone(),
                    temperature: config.planner.temperature,
                    top_p: config.planner.top_p,
                },
            )
        });
        let permissions = Permissions::new(&config.planner.recipe_rules, &config.recipes.deny);
        let recipes = RecipeBook::load(
            &config.recipes.dir,
            config.recipes.dir_explicit,
            &permissions,
        )
        .map_err(|e| ConfigError(e.to_string()))?;
        let system_prompt = prompt::system_prompt(
            config
                .planner
                .prompt
                .as_deref()
                .unwrap_or(prompt::BUILTIN_PROMPT),
            recipes.prompt_block().as_deref(),
            &config.planner.instructions,
        );
        let (system_message, closing_system_message) =
            crate::planner::system_messages(&system_prompt)
                .map_err(|e| ConfigError(format!("system prompt: {e}")))?;
        let deps = Arc::new(PlannerDeps {
            a2a,
            keys,
            llm,
            recipes,
            system_message,
            closing_system_message,
            default_steps: config.planner.steps,
            context_window: config.planner.context_window,
        });
        Ok(Self(Arc::new(Inner {
            auth: Authenticator::new(config.auth.mode, &config.auth.tokens),
            idempotency: Idempotency::new(config.plan.idempotency_ttl),
            config,
            deps,
            draining: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            tracker,
            open_plans: AtomicUsize::new(0),
            started: Instant::now(),
            hydra_integrated: AtomicBool::new(false),
            http,
        })))
    }

    /// Registers the gateway with Hydra when identity and Hydra are configured (spec §6.5).
    ///
    /// # Errors
    /// A boot failure from the Hydra admin API.
    pub async fn register_hydra(&self) -> Result<(), ConfigError> {
        match (&self.config.identity, &self.config.hydra) {
            (Some(identity), Some(hydra)) => {
                let integrated = crate::identity::hydra::register(&self.http, identity, hydra)
                    .await
                    .map_err(ConfigError)?;
                self.hydra_integrated.store(integrated, Ordering::SeqCst);
                Ok(())
            }
            (None, Some(_)) => {
                tracing::warn!(
                    "Hydra is configured but there is no gateway identity; ignoring Hydra"
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Current counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            open_plans: self.open_plans.load(Ordering::SeqCst),
            idempotency_entries: self.idempotency.len(),
            live_tasks: self.tracker.len(),
        }
    }
}
