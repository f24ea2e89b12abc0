//! The composition root: builds the live services (HTTP clients, peer client, key resolver,
//! LLM client, recipes, prompts, identity, Hydra tokens) from a [`Config`] once, then binds.
//! Everything else receives what it needs from here; nothing reaches for globals.
//!
//! Boot failures that are not configuration have their own [`BootError`] variant and exit code
//! (README, "Exit codes"): 1 configuration (spec §7.1), 2 command-line usage (clap), 3 recipes,
//! 4 Hydra, 5 bind, 6 anything else.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::a2a::A2aClient;
use crate::a2a::guard::Guard;
use crate::access::Authenticator;
use crate::catalog::{CatalogError, Catalogs};
use crate::config::{Config, ConfigError};
use crate::identity::hydra::{HydraSettings, TokenProvider};
use crate::identity::verify::KeyResolver;
use crate::identity::{Identity, IdentityError};
use crate::llm::{LlmClient, LlmSettings};
use crate::planner::{PlannerDeps, prompt, render};
use crate::recipe::{Permissions, RecipeBook, RecipeError};
use crate::run::registry::Resumable;
use crate::run::{RunLimits, Runs};
use crate::state::{AppState, Inner};
use crate::store::events::{EventLogs, LogLimits};
use crate::store::idempotency::Idempotency;
use crate::telemetry::metrics::Metrics;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A setting is missing, malformed or contradicts another (exit code 1, spec §7.1).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The DID identity settings do not make an identity (exit code 1: configuration).
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The server-side catalog file cannot be used (exit code 1: configuration).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The keys file cannot be used (exit code 1: configuration).
    #[error(transparent)]
    Keys(#[from] crate::access::keys::KeysError),
    /// Redis (`GATEWAY_REDIS_URL`) cannot be reached (exit code 7).
    #[error("store: cannot use Redis at GATEWAY_REDIS_URL: {0}")]
    Store(#[from] crate::store::redis::StoreError),
    /// The recipes folder cannot be loaded (exit code 3).
    #[error("{0}")]
    Recipes(#[from] RecipeError),
    /// Hydra refused the gateway's registration (exit code 4).
    #[error("{0}")]
    Hydra(String),
    /// The listen address cannot be bound (exit code 5).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// Anything else the process needs and could not get (exit code 6).
    #[error("{0}")]
    Internal(String),
}

impl BootError {
    /// The process exit code of this failure.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Identity(_) | Self::Catalog(_) | Self::Keys(_) => 1,
            Self::Recipes(_) => 3,
            Self::Hydra(_) => 4,
            Self::Bind { .. } => 5,
            Self::Internal(_) => 6,
            Self::Store(_) => 7,
        }
    }
}

/// The live identity of a configuration, if any.
///
/// # Errors
/// A seed that is not 32 bytes of base64, or an author/name with `:` or whitespace.
pub fn identity(config: &Config) -> Result<Option<Arc<Identity>>, IdentityError> {
    use secrecy::ExposeSecret as _;
    config
        .identity
        .as_ref()
        .map(|i| Identity::new(i.seed.expose_secret(), &i.author, &i.name).map(Arc::new))
        .transpose()
}

fn hydra_settings(config: &Config) -> Option<HydraSettings> {
    config.hydra.as_ref().map(|h| HydraSettings {
        admin_url: h.admin_url.clone(),
        token_url: h.token_url.clone(),
        scopes: h.scopes.clone(),
    })
}

/// Builds the shared state from a validated configuration (no network).
///
/// # Errors
/// An invalid identity, recipes that do not load, an HTTP client that cannot be built.
pub fn build(config: Config) -> Result<AppState, BootError> {
    build_with(config, None)
}

/// Builds the live services, with the shared Redis store when one is connected.
///
/// # Errors
/// As [`build`].
pub fn build_with(
    config: Config,
    redis: Option<crate::store::redis::RedisStore>,
) -> Result<AppState, BootError> {
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
        .map_err(|e| BootError::Internal(format!("http client: {e}")))?;
    // Addresses a request body names (peers, their cards and DID documents): the SSRF guard
    // checks every resolution at connect time, and redirects are not followed.
    let guard = Guard {
        block_private: config.a2a.block_private_endpoints,
    };
    let peer_http = client()
        .dns_resolver(guard.resolver())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| BootError::Internal(format!("http client: {e}")))?;
    let identity = identity(&config)?;
    let tracker = TaskTracker::new();
    let tokens = match (&identity, hydra_settings(&config)) {
        (Some(identity), Some(hydra)) => {
            Some(Arc::new(TokenProvider::new(http.clone(), identity, &hydra)))
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
        .with_identity(identity.clone(), tokens),
    );
    let keys = KeyResolver::new(
        peer_http,
        config.a2a.did_resolve_timeout,
        config.a2a.max_response_bytes,
    );
    let metrics = Arc::new(if config.server.metrics {
        Metrics::enabled()
    } else {
        Metrics::disabled()
    });
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
                cache_breakpoints: match config.llm.cache_control {
                    crate::config::CacheControl::Auto => {
                        crate::llm::is_anthropic(&config.planner.model)
                    }
                    crate::config::CacheControl::On => true,
                    crate::config::CacheControl::Off => false,
                },
            },
        )
        .with_metrics(Arc::clone(&metrics))
    });
    let permissions = Permissions::new(&config.planner.recipe_rules, &config.recipes.deny);
    let recipes = RecipeBook::load(
        &config.recipes.dir,
        config.recipes.dir_explicit,
        &permissions,
    )?;
    let system_prompt = prompt::system_prompt(
        config
            .planner
            .prompt
            .as_deref()
            .unwrap_or(prompt::BUILTIN_PROMPT),
        render::recipe_block(&recipes).as_deref(),
        &config.planner.instructions,
    );
    let (system_message, closing_system_message) = crate::planner::system_messages(&system_prompt)
        .map_err(|e| BootError::Internal(format!("system prompt: {e}")))?;
    let discovery_system_messages =
        crate::planner::system_messages(&crate::planner::discovery_prompt(&system_prompt))
            .map_err(|e| BootError::Internal(format!("system prompt: {e}")))?;
    let deps = Arc::new(PlannerDeps {
        a2a,
        keys,
        llm,
        recipes,
        system_message,
        closing_system_message,
        discovery_system_messages,
        tool_discovery_threshold: config.planner.tool_discovery_threshold,
        skill_indexes: crate::planner::discovery::IndexCache::default(),
        system_prompt,
        default_steps: config.planner.steps,
        context_window: config.planner.context_window,
        metrics: Arc::clone(&metrics),
    });
    let catalogs = match &config.catalog_file {
        Some(path) => Catalogs::load(path, &config.plan)?,
        None => Catalogs::default(),
    };
    let keys = match &config.auth.keys_file {
        Some(path) => {
            let names: Vec<String> = catalogs.iter().map(|c| c.name.clone()).collect();
            let keys = crate::access::keys::KeyBook::load(path, &names)?;
            if keys.has_jwt_block() && config.auth.jwt.is_none() {
                return Err(crate::access::keys::KeysError::Invalid {
                    path: path.clone(),
                    message: "jwt: JWT callers are off; set GATEWAY_JWT_JWKS_URL, GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE, or remove the [jwt] block".to_owned(),
                }
                .into());
            }
            keys
        }
        None => crate::access::keys::KeyBook::default(),
    };
    let resumable = config.resume.enabled.then(|| {
        Resumable::new(EventLogs::new(LogLimits {
            retention: config.resume.retention,
            max_bytes: config.resume.max_bytes,
            max_plans: config.resume.max_plans,
        }))
    });
    let sessions = config.sessions.enabled.then(|| {
        let bounds = crate::store::sessions::Bounds {
            ttl: config.sessions.ttl,
            max_per_token: config.sessions.max_per_token,
            max_bytes: config.sessions.max_bytes,
        };
        let sessions = match &redis {
            Some(store) => crate::store::sessions::Sessions::on_redis(bounds, store.clone()),
            None => crate::store::sessions::Sessions::in_memory(bounds),
        };
        (sessions, config.sessions.max_turns)
    });
    let runs = Runs::new(
        deps,
        RunLimits {
            max_concurrent_plans: config.server.max_concurrent_plans,
            default_timeout: config.plan.default_timeout,
            card_budget: config.a2a.card_budget,
            max_concurrent_calls: config.plan.max_concurrent_calls,
            confirm_timeout: config.plan.confirm_timeout,
            ask_retention: config.resume.retention,
            file_caps: crate::planner::files::FileCaps {
                max_file_bytes: config.files.max_file_bytes,
                max_plan_bytes: config.files.max_plan_bytes,
            },
            file_retention: config.files.retention,
            max_total_file_bytes: config.files.max_total_bytes,
        },
        tracker,
        Arc::clone(&metrics),
        resumable,
        sessions,
    );
    let runs = match &redis {
        Some(store) => runs
            .with_shared_contexts(crate::store::contexts::SharedContexts::new(
                store.clone(),
                config.a2a_server.max_context_turns,
                config.a2a_server.task_ttl,
            ))
            .with_mcp_sessions(crate::store::records::SharedRecords::new(
                store.clone(),
                "mcp-session",
                config.mcp.session_ttl,
            ))
            .with_shared_key_plans(crate::store::counters::SharedCounters::new(store.clone()))
            .with_shared_asks(crate::store::asks::SharedAsks::new(store.clone()))
            .with_shared_files(store.clone()),
        None => runs,
    };
    let auth = Authenticator::with_keys(config.auth.mode, &config.auth.tokens, keys);
    let auth = match &config.auth.jwt {
        Some(jwt) => auth.with_jwt(
            crate::access::jwt::JwtVerifier::new(jwt.clone()).map_err(BootError::Internal)?,
        ),
        None => auth,
    };
    let auth = match &redis {
        Some(store) => {
            auth.with_shared_counters(crate::store::counters::SharedCounters::new(store.clone()))
        }
        None => auth,
    };
    Ok(AppState::from_inner(Inner {
        catalogs: Arc::new(catalogs),
        redis,
        runs,
        auth,
        idempotency: Idempotency::new(config.plan.idempotency_ttl),
        config,
        identity,
        started: Instant::now(),
        hydra_integrated: AtomicBool::new(false),
        http,
        metrics,
    }))
}

/// Registers the gateway with Hydra when identity and Hydra are configured (spec §6.5).
///
/// # Errors
/// The Hydra admin API refused the registration.
pub async fn register_hydra(state: &AppState) -> Result<(), BootError> {
    match (state.identity(), hydra_settings(state.config())) {
        (Some(identity), Some(hydra)) => {
            let integrated = crate::identity::hydra::register(state.http(), identity, &hydra)
                .await
                .map_err(BootError::Hydra)?;
            state.set_hydra_integrated(integrated);
            Ok(())
        }
        (None, Some(_)) => {
            tracing::warn!("Hydra is configured but there is no gateway identity; ignoring Hydra");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// [`build`], then [`register_hydra`]: a state ready to serve.
///
/// # Errors
/// What either step fails with.
pub async fn start(config: Config) -> Result<AppState, BootError> {
    let redis = match &config.store.redis_url {
        Some(url) => {
            use secrecy::ExposeSecret as _;
            Some(
                crate::store::redis::RedisStore::connect(url.expose_secret(), config.store.lease)
                    .await?,
            )
        }
        None => None,
    };
    let state = build_with(config, redis)?;
    register_hydra(&state).await?;
    if let Some(store) = state.redis() {
        state.runs().listen_for_cancels(store.clone());
    }
    Ok(state)
}

/// Binds the configured address.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(state: &AppState) -> Result<TcpListener, BootError> {
    let server = &state.config().server;
    let addr = format!("{}:{}", server.hostname, server.port);
    TcpListener::bind(&addr)
        .await
        .map_err(|source| BootError::Bind { addr, source })
}
