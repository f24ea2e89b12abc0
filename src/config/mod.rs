//! Gateway configuration: read once at boot from an environment map and an optional TOML file
//! into typed values (`Duration`s, `SecretString`s), validated, with every boot error naming the
//! variable or key and what is wrong (spec §7).
//!
//! Precedence per setting: non-empty environment variable > TOML key > built-in default. The
//! environment is always passed in as a map, never read here, so tests build their own.

mod error;
mod file;
mod planner_file;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::recipe::Action;
pub use error::{ConfigError, Location};
pub use file::FileConfig;
pub use planner_file::PlannerFile;

pub const ENV_CONFIG: &str = "GATEWAY_CONFIG";
pub const ENV_HOSTNAME: &str = "GATEWAY_HOSTNAME";
pub const ENV_PORT: &str = "GATEWAY_PORT";
pub const ENV_AUTH_MODE: &str = "GATEWAY_AUTH_MODE";
pub const ENV_API_KEY: &str = "GATEWAY_API_KEY";
pub const ENV_KEYS_FILE: &str = "GATEWAY_KEYS_FILE";
/// The JWKS that verifies JWT callers (with the issuer and audience below).
pub const ENV_JWT_JWKS_URL: &str = "GATEWAY_JWT_JWKS_URL";
pub const ENV_JWT_ISSUER: &str = "GATEWAY_JWT_ISSUER";
pub const ENV_JWT_AUDIENCE: &str = "GATEWAY_JWT_AUDIENCE";
/// How long a fetched JWKS is used before it is fetched again.
pub const DEFAULT_JWT_JWKS_CACHE_SECS: u64 = 300;
/// The least time between two fetches of the JWKS for a `kid` it does not hold.
pub const DEFAULT_JWT_JWKS_REFETCH_SECS: u64 = 30;
pub const ENV_LLM_BASE_URL: &str = "GATEWAY_LLM_BASE_URL";
pub const ENV_LLM_API_KEY: &str = "GATEWAY_LLM_API_KEY";
pub const ENV_OPENROUTER_API_KEY: &str = "OPENROUTER_API_KEY";
pub const ENV_FALLBACK_MODELS: &str = "OPENROUTER_FALLBACK_MODELS";
pub const ENV_PLANNER_MODEL: &str = "GATEWAY_PLANNER_MODEL";
pub const ENV_PLANNER_FILE: &str = "GATEWAY_PLANNER_FILE";
pub const ENV_TOOL_DISCOVERY_THRESHOLD: &str = "GATEWAY_TOOL_DISCOVERY_THRESHOLD";
pub const ENV_LLM_CACHE_CONTROL: &str = "GATEWAY_LLM_CACHE_CONTROL";
pub const ENV_RECIPES_DIR: &str = "GATEWAY_RECIPES_DIR";
pub const ENV_RECIPES_DENY: &str = "GATEWAY_RECIPES_DENY";
pub const ENV_PEER_ENV_ALLOWLIST: &str = "GATEWAY_PEER_ENV_ALLOWLIST";
pub const ENV_SSE_KEEPALIVE_SECS: &str = "GATEWAY_SSE_KEEPALIVE_SECS";
pub const ENV_METRICS: &str = "GATEWAY_METRICS";
pub const ENV_PLAYGROUND: &str = "GATEWAY_PLAYGROUND";
pub const ENV_CATALOG: &str = "GATEWAY_CATALOG";
pub const ENV_PUBLIC_URL: &str = "GATEWAY_PUBLIC_URL";
pub const ENV_SSE_RESUME: &str = "GATEWAY_SSE_RESUME";
pub const ENV_SESSIONS: &str = "GATEWAY_SESSIONS";
pub const ENV_REDIS_URL: &str = "GATEWAY_REDIS_URL";
pub const ENV_RESUME_GRACE_SECS: &str = "GATEWAY_RESUME_GRACE_SECS";
pub const ENV_CORS_ORIGINS: &str = "GATEWAY_CORS_ORIGINS";
pub const ENV_LOG_FORMAT: &str = "GATEWAY_LOG_FORMAT";
pub const ENV_WORKER_THREADS: &str = "GATEWAY_WORKER_THREADS";
pub const ENV_NODE_ENV: &str = "NODE_ENV";
pub const ENV_DID_SEED: &str = "BINDU_GATEWAY_DID_SEED";
pub const ENV_DID_AUTHOR: &str = "BINDU_GATEWAY_AUTHOR";
pub const ENV_DID_NAME: &str = "BINDU_GATEWAY_NAME";
pub const ENV_HYDRA_ADMIN_URL: &str = "BINDU_GATEWAY_HYDRA_ADMIN_URL";
pub const ENV_HYDRA_TOKEN_URL: &str = "BINDU_GATEWAY_HYDRA_TOKEN_URL";
pub const ENV_HYDRA_SCOPE: &str = "BINDU_GATEWAY_HYDRA_SCOPE";
pub const DEFAULT_HYDRA_SCOPE: &str = "openid offline agent:read agent:write";
/// Variables of the reference gateway that plangate does not support; a warning is logged.
pub const UNSUPPORTED_ENV: [&str; 4] = [
    "BINDU_COMMS_URL",
    "BINDU_GATEWAY_AUTH_FILE",
    "SUPABASE_URL",
    "SUPABASE_SERVICE_ROLE_KEY",
];

pub const DEFAULT_HOSTNAME: &str = "0.0.0.0";
pub const DEFAULT_PORT: u16 = 3774;
pub const DEFAULT_LLM_BASE_URL: &str = "https://openrouter.ai/api/v1";
pub const DEFAULT_PLANNER_MODEL: &str = "openrouter/anthropic/claude-sonnet-4.6";
pub const DEFAULT_PLANNER_FILE: &str = "agents/planner.md";
pub const DEFAULT_RECIPES_DIR: &str = "recipes";
pub const DEFAULT_MAX_BODY_BYTES: usize = 16_777_216;
/// JSON values a `/plan` body may hold: a catalog of 256 agents with rich skill schemas fits;
/// at ~80 bytes a value, the parsed request stays within ~20 MB.
pub const DEFAULT_MAX_JSON_VALUES: usize = 250_000;
/// Nesting depth of a `/plan` body (skill schemas are rarely deeper than 10).
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
/// Open client connections (SSE streams included). Above the 10 000 open plans the gateway is
/// sized for (spec §9), below a typical raised descriptor limit (the project's machines: 20 000).
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Catalog entries per request.
pub const DEFAULT_MAX_AGENTS: usize = 256;
/// How long the A2A door keeps a task after it ended.
pub const DEFAULT_A2A_TASK_TTL_SECS: u64 = 3600;
/// Tasks the A2A door keeps at most (running or ended; the oldest ended go first).
pub const DEFAULT_A2A_MAX_TASKS: usize = 10_000;
/// Earlier turns of a context the A2A door carries into a new message's plan.
pub const DEFAULT_A2A_MAX_CONTEXT_TURNS: usize = 20;
/// Text bytes one A2A message may carry.
pub const DEFAULT_A2A_MAX_MESSAGE_BYTES: usize = 262_144;
/// Bytes of system messages the OpenAI door passes to the planner.
pub const DEFAULT_OPENAI_MAX_SYSTEM_BYTES: usize = 16_384;
/// How long an instance's lease on a running plan lives without a refresh.
pub const DEFAULT_LEASE_MS: u64 = 3000;
/// How long a resumable plan whose client left keeps running, waiting for a reconnect.
pub const DEFAULT_RESUME_GRACE_SECS: u64 = 30;
/// How long a finished plan stays replayable.
pub const DEFAULT_RESUME_RETENTION_SECS: u64 = 300;
/// Bytes of frames kept for replay over all plans (finished plans are forgotten first).
pub const DEFAULT_RESUME_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Plans kept for replay (running or finished).
pub const DEFAULT_RESUME_MAX_PLANS: usize = 10_000;
pub const DEFAULT_SESSIONS_TTL_SECS: u64 = 7 * 24 * 3600;
pub const DEFAULT_SESSIONS_MAX_TURNS: usize = 50;
pub const DEFAULT_SESSIONS_MAX_PER_TOKEN: usize = 1_000;
pub const DEFAULT_SESSIONS_MAX_BYTES: usize = 64 * 1024 * 1024;
/// MCP sessions kept at once.
pub const DEFAULT_MCP_MAX_SESSIONS: usize = 10_000;
/// An MCP session unused this long is forgotten.
pub const DEFAULT_MCP_SESSION_TTL_SECS: u64 = 3600;
/// Skills per request, over all agents (each becomes one tool).
pub const DEFAULT_MAX_SKILLS: usize = 1024;
/// Peer calls one plan runs at the same time.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 32;
pub const DEFAULT_PLAN_TIMEOUT_MS: u64 = 1_800_000;
/// The request schema's upper bound for `timeout_ms` (6 hours).
pub const MAX_PLAN_TIMEOUT_MS: u64 = 21_600_000;
/// How long a question of a plan waits for its client by default (`plan.confirm_timeout_ms`).
pub const DEFAULT_CONFIRM_TIMEOUT_MS: u64 = 120_000;
/// The request schema's lower bound for `timeout_ms`.
pub const MIN_PLAN_TIMEOUT_MS: u64 = 1_000;
pub const DEFAULT_SSE_KEEPALIVE_SECS: u64 = 15;
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_LLM_MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Sampling temperature without a planner file (spec §7.4).
pub const DEFAULT_TEMPERATURE: f64 = 0.3;
/// Skills in a plan above which the planner finds skills on demand (`find_skills`).
pub const DEFAULT_TOOL_DISCOVERY_THRESHOLD: usize = 24;
pub const DEFAULT_IDEMPOTENCY_TTL_SECS: u64 = 300;
pub const DEFAULT_A2A_REQUEST_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_A2A_CALL_BUDGET_MS: u64 = 600_000;
pub const DEFAULT_A2A_CARD_BUDGET_MS: u64 = 2_000;
pub const DEFAULT_A2A_CARD_TTL_SECS: u64 = 300;
pub const DEFAULT_A2A_CARD_FAILURE_TTL_SECS: u64 = 30;
pub const DEFAULT_A2A_DID_RESOLVE_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_A2A_CANCEL_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_A2A_STREAM_GRACE_MS: u64 = 2_000;
pub const DEFAULT_A2A_MAX_RESPONSE_BYTES: usize = 8_388_608;
/// `files.max_file_bytes`: 10 MiB.
pub const DEFAULT_FILES_MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// `files.max_plan_bytes`: 50 MiB.
pub const DEFAULT_FILES_MAX_PLAN_BYTES: usize = 50 * 1024 * 1024;
/// `files.retention_secs`: an hour.
pub const DEFAULT_FILES_RETENTION_SECS: u64 = 3600;
/// `files.max_total_bytes`: 256 MiB.
pub const DEFAULT_FILES_MAX_TOTAL_BYTES: usize = 256 * 1024 * 1024;
/// `files.max_attachments`.
pub const DEFAULT_FILES_MAX_ATTACHMENTS: usize = 10;
/// `files.inline_answer_bytes`: 1 MiB.
pub const DEFAULT_FILES_INLINE_ANSWER_BYTES: usize = 1024 * 1024;
pub const DEFAULT_A2A_MAX_OUTPUT_CHARS: usize = 200_000;
/// Peer requests in flight, gateway-wide: well under the descriptor limit once raised, with
/// room for clients.
pub const DEFAULT_A2A_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_ENVIRONMENT: &str = "development";
pub const ENV_TLS_CERT: &str = "BINDU_GATEWAY_TLS_CERT";
pub const ENV_TLS_KEY: &str = "BINDU_GATEWAY_TLS_KEY";
pub const ENV_TLS_CA: &str = "BINDU_GATEWAY_TLS_CA";

/// How `/plan` callers authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// `Authorization: Bearer <token>` checked against the configured tokens.
    Bearer,
    /// Every request is accepted; the idempotency scope is `anonymous`.
    None,
}

/// Fully resolved, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub llm: LlmConfig,
    pub planner: PlannerConfig,
    pub recipes: RecipesConfig,
    pub plan: PlanConfig,
    pub a2a: A2aConfig,
    /// The server-side catalogs file (`GATEWAY_CATALOG`, `catalog.file`); loaded at boot.
    pub catalog_file: Option<PathBuf>,
    /// The A2A door's task store.
    pub a2a_server: A2aServerConfig,
    /// The OpenAI-compatible door.
    pub openai: OpenAiConfig,
    /// The MCP door.
    pub mcp: McpConfig,
    /// Resumable `/plan` streams (`GATEWAY_SSE_RESUME`).
    pub resume: ResumeConfig,
    /// Conversations kept on the server (`GATEWAY_SESSIONS`).
    pub sessions: SessionsConfig,
    /// Where shared state lives: this instance's memory, or Redis.
    pub store: StoreConfig,
    /// Files of plans: agents' and clients' (`[files]`).
    pub files: FilesConfig,
    /// `NODE_ENV`, trimmed; reported in `/health` only.
    pub environment: String,
    /// Environment variables whose names are on the peer allow-list, captured at boot.
    pub peer_env: HashMap<String, SecretString>,
    /// The gateway's DID identity settings, when all three are set (spec §6.1); the live
    /// identity is built at boot.
    pub identity: Option<IdentityConfig>,
    /// Hydra endpoints, when both URLs are set (spec §6.5).
    pub hydra: Option<HydraConfig>,
}

/// The gateway's DID identity as configured: seed (base64), author and name.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub seed: SecretString,
    pub author: String,
    pub name: String,
}

/// Hydra's admin and token endpoints and the scopes the gateway asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HydraConfig {
    pub admin_url: String,
    pub token_url: String,
    pub scopes: Vec<String>,
}

/// Listener and HTTP server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hostname: String,
    pub port: u16,
    /// `None` disables keep-alive comments.
    pub sse_keepalive: Option<Duration>,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// 0 = unlimited.
    pub max_concurrent_plans: usize,
    /// JSON values a `/plan` body may hold (unknown top-level fields are skipped, not counted).
    pub max_json_values: usize,
    /// How deep a `/plan` body may nest.
    pub max_json_depth: usize,
    /// A connection that has not sent a request's full headers this long after it opened (or
    /// after its previous response, on keep-alive) is closed.
    pub header_read_timeout: Duration,
    /// A request body must arrive within this time (408 otherwise).
    pub body_read_timeout: Duration,
    /// A write to a client that makes no progress this long closes the connection (its plan is
    /// then aborted like on a disconnect).
    pub write_timeout: Duration,
    /// Open client connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Whether `GET /metrics` is served (and metrics recorded).
    pub metrics: bool,
    /// Whether `GET /playground` is served.
    pub playground: bool,
    /// Origins browsers may call from (`None` = no CORS headers at all).
    pub cors: Option<CorsOrigins>,
}

/// Which browser origins get CORS headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin.
    Any,
    /// Exact origins (`scheme://host[:port]`).
    List(Vec<String>),
}

/// Inbound authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub tokens: Vec<SecretString>,
    /// The keys file (`GATEWAY_KEYS_FILE`, `auth.keys_file`): callers with scopes and limits.
    pub keys_file: Option<PathBuf>,
    /// JWT callers (`GATEWAY_JWT_JWKS_URL`, `auth.jwt_jwks_url`).
    pub jwt: Option<JwtConfig>,
}

/// How bearer JWTs are verified: against the issuer's JWKS, for this issuer and audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub jwks_url: url::Url,
    pub issuer: String,
    pub audience: String,
    /// How long a fetched JWKS is used (`auth.jwt_jwks_cache_secs`).
    pub jwks_cache: Duration,
    /// The least time between two fetches for an unknown `kid` (`auth.jwt_jwks_refetch_secs`).
    pub jwks_refetch: Duration,
}

/// The OpenAI-compatible planner LLM.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Bytes one LLM response (a step's whole stream, an error body) may have.
    pub max_response_bytes: usize,
    pub base_url: String,
    /// No key means fan-out mode (spec §3.1).
    pub api_key: Option<SecretString>,
    pub fallback_models: Vec<String>,
    /// Cache breakpoints in planner requests (`llm.cache_control`).
    pub cache_control: CacheControl,
}

/// `llm.cache_control`: where planner requests mark cache breakpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheControl {
    /// Anthropic models only (the model name says `anthropic/` or `claude`).
    #[default]
    Auto,
    On,
    Off,
}

/// Planner settings (spec §7.3–7.4).
#[derive(Debug, Clone)]
pub struct PlannerConfig {
    pub model: String,
    pub file: Option<PathBuf>,
    pub context_window: Option<u64>,
    pub instructions: Vec<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub steps: Option<u32>,
    /// Skills above which the planner is offered `find_skills` instead of every skill (`0` =
    /// never).
    pub tool_discovery_threshold: usize,
    /// The planner file's body; `None` = the built-in prompt.
    pub prompt: Option<String>,
    /// The planner file's `permission.recipe` rules, in order.
    pub recipe_rules: Vec<(String, Action)>,
}

/// Recipe folder settings (spec §4).
#[derive(Debug, Clone)]
pub struct RecipesConfig {
    pub dir: PathBuf,
    /// Whether `dir` was named explicitly (a missing explicit folder is a boot failure).
    pub dir_explicit: bool,
    pub deny: Vec<String>,
}

/// The OpenAI-compatible door (`/v1/chat/completions`).
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Bytes of system (and developer) messages passed to the planner; more is a 400.
    pub max_system_bytes: usize,
}

/// The shared store: `redis_url` set = Redis (several instances), else memory (one instance).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `redis://…` (`GATEWAY_REDIS_URL`); a secret when it holds a password, so kept out of logs.
    pub redis_url: Option<SecretString>,
    /// How long an instance's lease on a running plan lives without a refresh.
    pub lease: Duration,
}

/// Resumable `/plan` streams: `id:` lines, `GET /plan/{id}/events`, a grace period after a
/// disconnect, replay of finished plans.
#[derive(Debug, Clone)]
pub struct ResumeConfig {
    pub enabled: bool,
    /// A plan whose client left keeps running this long for a reconnect.
    pub grace: Duration,
    /// A finished plan stays replayable this long.
    pub retention: Duration,
    /// Frame bytes kept over all plans.
    pub max_bytes: usize,
    /// Plans kept.
    pub max_plans: usize,
}

/// Files of plans: what agents return and clients attach, kept outside the LLM's context.
#[derive(Debug, Clone, Copy)]
pub struct FilesConfig {
    /// One file's bytes (decoded).
    pub max_file_bytes: usize,
    /// One plan's files, attachments included.
    pub max_plan_bytes: usize,
    /// How long a plan's files stay fetchable after it ends.
    pub retention: Duration,
    /// Bytes kept over all plans; the oldest files are evicted first.
    pub max_total_bytes: usize,
    /// Attachments one request may carry.
    pub max_attachments: usize,
    /// Files up to this size go inline (as bytes) in the A2A door's answers; larger ones as
    /// the gateway's URL.
    pub inline_answer_bytes: usize,
}

impl FilesConfig {
    /// The base64 text of `n` bytes is this long: what a peer's answer may carry beyond
    /// `a2a.max_response_bytes` for its inline files.
    #[must_use]
    pub fn base64_len(n: usize) -> usize {
        n.div_ceil(3).saturating_mul(4)
    }
}

/// Server-side conversations: a `/plan` `session_id` continues the caller's stored
/// conversation.
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    pub enabled: bool,
    /// A conversation untouched this long is forgotten.
    pub ttl: Duration,
    /// Turns kept verbatim; older ones are folded into the conversation's summary.
    pub max_turns: usize,
    /// Conversations one caller may keep.
    pub max_per_token: usize,
    /// Bytes of conversations kept in memory over all callers (memory backend).
    pub max_bytes: usize,
}

/// The MCP door (`/mcp`).
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// Sessions kept at once (the least recently used goes first).
    pub max_sessions: usize,
    /// A session unused this long is forgotten (its client gets 404 and starts a new one).
    pub session_ttl: Duration,
}

/// The A2A door (`POST /a2a`): what it keeps and accepts.
#[derive(Debug, Clone)]
pub struct A2aServerConfig {
    /// How long a task stays readable (`tasks/get`) after it ended.
    pub task_ttl: Duration,
    /// Tasks kept at most; at the limit the oldest ended task goes, and a new message is
    /// refused while every kept task is still running.
    pub max_tasks: usize,
    /// Earlier turns of a `contextId` carried into the next plan (the oldest drop first).
    pub max_context_turns: usize,
    /// Text bytes one message may carry.
    pub max_message_bytes: usize,
    /// The gateway's URL as callers reach it (agent cards); `None` = from each request's `Host`.
    pub public_url: Option<String>,
}

/// Per-plan limits.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    pub default_timeout: Duration,
    pub idempotency_ttl: Duration,
    /// Catalog entries per request.
    pub max_agents: usize,
    /// Skills per request, over all agents.
    pub max_skills: usize,
    /// Peer calls one plan runs at the same time (the rest wait their turn).
    pub max_concurrent_calls: usize,
    /// How long a call marked `confirm` waits for the client's yes (never past the plan's
    /// deadline); then it is declined with reason `no answer`. The same for a peer's question in
    /// an interactive plan.
    pub confirm_timeout: Duration,
}

/// A2A client settings (spec §5).
#[derive(Debug, Clone)]
pub struct A2aConfig {
    pub env_allowlist: Vec<String>,
    pub request_timeout: Duration,
    pub call_budget: Duration,
    pub card_budget: Duration,
    pub card_ttl: Duration,
    pub card_failure_ttl: Duration,
    pub did_resolve_timeout: Duration,
    pub cancel_timeout: Duration,
    pub stream_grace: Duration,
    pub block_private_endpoints: bool,
    /// Bytes of one answer (or one stream event) besides the inline files it carries.
    pub max_response_bytes: usize,
    /// What an answer may carry on top of `max_response_bytes` as inline files' base64 text:
    /// the base64 length of `files.max_plan_bytes` (set from `[files]`). Those bytes are then
    /// held to the file caps, so a 10 MiB file (~13.4 MiB of base64) is not refused as a
    /// too-large answer.
    pub file_allowance: usize,
    pub max_output_chars: usize,
    /// Requests to peers in flight at once, gateway-wide (sends, polls, streams, cards, cancels).
    pub max_connections: usize,
}

impl Config {
    /// Loads the configuration from an environment map and, when named (argument or
    /// `GATEWAY_CONFIG`), a TOML file.
    ///
    /// # Errors
    /// Returns a [`ConfigError`] naming the variable or key for every invalid value.
    pub fn load(env: &HashMap<String, String>, file: Option<&Path>) -> Result<Self, ConfigError> {
        let env = Env(env);
        let file_path = file
            .map(Path::to_path_buf)
            .or_else(|| env.get(ENV_CONFIG).map(PathBuf::from));
        let file = match file_path {
            Some(path) => FileConfig::read(&path)?,
            None => FileConfig::default(),
        };
        Self::resolve(&env, &file)
    }

    /// A configuration for tests: loopback, auth off, short timeouts left at defaults.
    #[must_use]
    pub fn test_default() -> Self {
        let mut env = HashMap::new();
        env.insert(ENV_HOSTNAME.to_owned(), "127.0.0.1".to_owned());
        env.insert(ENV_AUTH_MODE.to_owned(), "none".to_owned());
        env.insert(ENV_RECIPES_DIR.to_owned(), String::new());
        let mut config = Self::resolve(&Env(&env), &FileConfig::default())
            .unwrap_or_else(|_| unreachable_default());
        config.recipes.dir_explicit = false;
        config.recipes.dir = PathBuf::from("does-not-exist-plangate-recipes");
        config.planner.file = None;
        config
    }

    fn resolve(env: &Env<'_>, file: &FileConfig) -> Result<Self, ConfigError> {
        let src = Sources { env, file };
        let mut a2a = src.a2a()?;
        let files = src.files()?;
        a2a.file_allowance = FilesConfig::base64_len(files.max_plan_bytes);
        let peer_env = peer_env(env, &a2a.env_allowlist);
        src.refuse_tls()?;
        Ok(Self {
            server: src.server()?,
            auth: src.auth()?,
            llm: src.llm()?,
            planner: src.planner()?,
            recipes: src.recipes(),
            plan: src.plan()?,
            a2a,
            catalog_file: env
                .get(ENV_CATALOG)
                .map(str::to_owned)
                .or_else(|| file.catalog.file.clone())
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from),
            a2a_server: src.a2a_server()?,
            openai: OpenAiConfig {
                max_system_bytes: src.count(
                    file.openai.max_system_bytes,
                    "openai.max_system_bytes",
                    DEFAULT_OPENAI_MAX_SYSTEM_BYTES,
                )?,
            },
            resume: src.resume()?,
            sessions: src.sessions()?,
            files,
            store: StoreConfig {
                redis_url: env
                    .get(ENV_REDIS_URL)
                    .map(str::to_owned)
                    .or_else(|| file.store.redis_url.clone())
                    .filter(|u| !u.trim().is_empty())
                    .map(|u| SecretString::from(u.trim().to_owned())),
                lease: src.millis(file.store.lease_ms, "store.lease_ms", DEFAULT_LEASE_MS)?,
            },
            mcp: McpConfig {
                max_sessions: src.count(
                    file.mcp.max_sessions,
                    "mcp.max_sessions",
                    DEFAULT_MCP_MAX_SESSIONS,
                )?,
                session_ttl: Duration::from_secs(
                    src.positive(file.mcp.session_ttl_secs, "mcp.session_ttl_secs")?
                        .unwrap_or(DEFAULT_MCP_SESSION_TTL_SECS),
                ),
            },
            environment: env
                .get(ENV_NODE_ENV)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned()),
            peer_env,
            identity: src.identity()?,
            hydra: src.hydra()?,
        })
    }

    /// Whether an LLM key is configured (LLM mode) or not (fan-out mode).
    #[must_use]
    pub fn is_llm_mode(&self) -> bool {
        self.llm.api_key.is_some()
    }

    /// Names of unsupported reference-gateway variables that are set (for a boot warning).
    #[must_use]
    pub fn unsupported_vars(env: &HashMap<String, String>) -> Vec<&'static str> {
        UNSUPPORTED_ENV
            .into_iter()
            .filter(|name| env.get(*name).is_some_and(|v| !v.is_empty()))
            .collect()
    }

    /// The value of an allow-listed peer-auth variable, if set and non-empty.
    #[must_use]
    pub fn peer_env_value(&self, name: &str) -> Option<&str> {
        self.peer_env
            .get(name)
            .map(ExposeSecret::expose_secret)
            .filter(|v| !v.is_empty())
    }
}

/// Environment lookups where an empty value counts as unset (spec §7.1).
struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Where settings come from (environment over file over default), with the checks every
/// numeric key shares. Each `[section]` is resolved by its own method.
struct Sources<'a> {
    env: &'a Env<'a>,
    file: &'a FileConfig,
}

impl Sources<'_> {
    /// A bad TOML value, located in the file.
    fn key_error(&self, key: &str, problem: String) -> ConfigError {
        ConfigError::Key {
            key: key.to_owned(),
            problem,
            location: self.file.location(key),
        }
    }

    /// A TOML integer that must be above 0.
    fn positive(&self, v: Option<i64>, key: &str) -> Result<Option<u64>, ConfigError> {
        match v {
            Some(v) if v > 0 => Ok(Some(v.unsigned_abs())),
            Some(v) => {
                Err(self.key_error(key, format!("must be an integer greater than 0 (got {v})")))
            }
            None => Ok(None),
        }
    }

    /// A TOML integer that may be 0.
    fn non_negative(&self, v: Option<i64>, key: &str) -> Result<Option<u64>, ConfigError> {
        match v {
            Some(v) if v >= 0 => Ok(Some(v.unsigned_abs())),
            Some(v) => {
                Err(self.key_error(key, format!("must be an integer of at least 0 (got {v})")))
            }
            None => Ok(None),
        }
    }

    /// A positive count, or its default.
    fn count(&self, v: Option<i64>, key: &str, default: usize) -> Result<usize, ConfigError> {
        Ok(self.positive(v, key)?.map_or(default, to_usize))
    }

    /// A positive number of milliseconds, or its default.
    fn millis(&self, v: Option<i64>, key: &str, default_ms: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(
            self.positive(v, key)?.unwrap_or(default_ms),
        ))
    }

    /// An environment variable, else a TOML value (empty counts as unset).
    fn pick(&self, var: &str, toml: Option<&String>) -> Option<String> {
        self.env
            .get(var)
            .map(str::to_owned)
            .or_else(|| toml.cloned())
            .filter(|v| !v.is_empty())
    }

    /// A comma-separated environment list, else a TOML array.
    fn list(&self, var: &str, toml: Option<&Vec<String>>) -> Vec<String> {
        match self.env.get(var) {
            Some(raw) => split_list(raw),
            None => toml.cloned().unwrap_or_default(),
        }
    }

    fn server(&self) -> Result<ServerConfig, ConfigError> {
        let s = &self.file.server;
        let port = match self.env.get(ENV_PORT) {
            Some(raw) => parse_port(raw)?,
            None => match s.port {
                Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                    self.key_error(
                        "server.port",
                        format!("must be an integer between 1 and 65535 (got {p})"),
                    )
                })?,
                None => DEFAULT_PORT,
            },
        };
        let keepalive_secs = match self.env.get(ENV_SSE_KEEPALIVE_SECS) {
            Some(raw) => raw.trim().parse::<u64>().map_err(|_| {
                ConfigError::env(
                    ENV_SSE_KEEPALIVE_SECS,
                    format!("must be a non-negative integer (got \"{raw}\")"),
                )
            })?,
            None => self
                .non_negative(s.sse_keepalive_secs, "server.sse_keepalive_secs")?
                .unwrap_or(DEFAULT_SSE_KEEPALIVE_SECS),
        };
        Ok(ServerConfig {
            hostname: self
                .pick(ENV_HOSTNAME, s.hostname.as_ref())
                .unwrap_or_else(|| DEFAULT_HOSTNAME.to_owned()),
            port,
            sse_keepalive: (keepalive_secs > 0).then(|| Duration::from_secs(keepalive_secs)),
            max_body_bytes: self.count(
                s.max_body_bytes,
                "server.max_body_bytes",
                DEFAULT_MAX_BODY_BYTES,
            )?,
            shutdown_grace: Duration::from_secs(
                self.non_negative(s.shutdown_grace_secs, "server.shutdown_grace_secs")?
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            ),
            max_concurrent_plans: self
                .non_negative(s.max_concurrent_plans, "server.max_concurrent_plans")?
                .map_or(0, to_usize),
            max_json_values: self.count(
                s.max_json_values,
                "server.max_json_values",
                DEFAULT_MAX_JSON_VALUES,
            )?,
            max_json_depth: self.count(
                s.max_json_depth,
                "server.max_json_depth",
                DEFAULT_MAX_JSON_DEPTH,
            )?,
            header_read_timeout: self.millis(
                s.header_read_timeout_ms,
                "server.header_read_timeout_ms",
                DEFAULT_HEADER_READ_TIMEOUT_MS,
            )?,
            body_read_timeout: self.millis(
                s.body_read_timeout_ms,
                "server.body_read_timeout_ms",
                DEFAULT_BODY_READ_TIMEOUT_MS,
            )?,
            write_timeout: self.millis(
                s.write_timeout_ms,
                "server.write_timeout_ms",
                DEFAULT_WRITE_TIMEOUT_MS,
            )?,
            max_connections: self.count(
                s.max_connections,
                "server.max_connections",
                DEFAULT_MAX_CONNECTIONS,
            )?,
            metrics: self.switch(ENV_METRICS, s.metrics, true)?,
            playground: self.switch(ENV_PLAYGROUND, s.playground, true)?,
            cors: self.cors()?,
        })
    }

    /// An on/off switch: the variable (`on`/`off`) wins over the TOML boolean.
    fn switch(&self, var: &str, file: Option<bool>, default: bool) -> Result<bool, ConfigError> {
        match self.env.get(var) {
            Some(raw) => parse_switch(raw).ok_or_else(|| {
                ConfigError::env(var, format!("must be \"on\" or \"off\" (got \"{raw}\")"))
            }),
            None => Ok(file.unwrap_or(default)),
        }
    }

    fn cors(&self) -> Result<Option<CorsOrigins>, ConfigError> {
        let from_env = self.env.get(ENV_CORS_ORIGINS).is_some();
        let origins = self.list(ENV_CORS_ORIGINS, self.file.server.cors_origins.as_ref());
        if origins.is_empty() {
            return Ok(None);
        }
        if origins.iter().any(|o| o == "*") {
            return Ok(Some(CorsOrigins::Any));
        }
        for origin in &origins {
            let exact = url::Url::parse(origin).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.origin().ascii_serialization() == *origin
                    && !origin.ends_with('/')
            });
            if exact.is_none() {
                let problem = format!(
                    "must list exact origins like https://app.example.com (scheme, host, optional port; no path), or * (got \"{origin}\")"
                );
                return Err(if from_env {
                    ConfigError::env(ENV_CORS_ORIGINS, problem)
                } else {
                    self.key_error("server.cors_origins", problem)
                });
            }
        }
        Ok(Some(CorsOrigins::List(origins)))
    }

    fn auth(&self) -> Result<AuthConfig, ConfigError> {
        let a = &self.file.auth;
        let mode = match self.env.get(ENV_AUTH_MODE) {
            Some(raw) => parse_auth_mode(raw.trim()).ok_or_else(|| {
                ConfigError::env(
                    ENV_AUTH_MODE,
                    format!("must be \"bearer\" or \"none\" (got \"{}\")", raw.trim()),
                )
            })?,
            None => match a.mode.as_deref() {
                Some(raw) => parse_auth_mode(raw.trim()).ok_or_else(|| {
                    self.key_error(
                        "auth.mode",
                        format!("must be \"bearer\" or \"none\" (got \"{}\")", raw.trim()),
                    )
                })?,
                None => AuthMode::Bearer,
            },
        };
        let keys_file = self
            .pick(ENV_KEYS_FILE, a.keys_file.as_ref())
            .map(PathBuf::from);
        if keys_file.is_some() && mode == AuthMode::None {
            return Err(ConfigError::env(
                ENV_KEYS_FILE,
                "a keys file needs bearer auth: unset GATEWAY_AUTH_MODE=none (auth.mode)"
                    .to_owned(),
            ));
        }
        let jwt = self.jwt()?;
        if jwt.is_some() && mode == AuthMode::None {
            return Err(ConfigError::env(
                ENV_JWT_JWKS_URL,
                "JWT callers need bearer auth: unset GATEWAY_AUTH_MODE=none (auth.mode)".to_owned(),
            ));
        }
        Ok(AuthConfig {
            mode,
            tokens: self
                .list(ENV_API_KEY, a.tokens.as_ref())
                .into_iter()
                .map(SecretString::from)
                .collect(),
            keys_file,
            jwt,
        })
    }

    /// The JWT settings: all three of the JWKS url, the issuer and the audience, or none. The
    /// JWKS is fetched over https (http only on a loopback host, for a local identity provider).
    fn jwt(&self) -> Result<Option<JwtConfig>, ConfigError> {
        let a = &self.file.auth;
        let url = self.pick(ENV_JWT_JWKS_URL, a.jwt_jwks_url.as_ref());
        let issuer = self.pick(ENV_JWT_ISSUER, a.jwt_issuer.as_ref());
        let audience = self.pick(ENV_JWT_AUDIENCE, a.jwt_audience.as_ref());
        let (url, issuer, audience) = match (url, issuer, audience) {
            (None, None, None) => return Ok(None),
            (Some(url), Some(issuer), Some(audience)) => (url, issuer, audience),
            (url, issuer, _) => {
                let missing = if url.is_none() {
                    ENV_JWT_JWKS_URL
                } else if issuer.is_none() {
                    ENV_JWT_ISSUER
                } else {
                    ENV_JWT_AUDIENCE
                };
                return Err(ConfigError::env(
                    missing,
                    "JWT callers need all of GATEWAY_JWT_JWKS_URL, GATEWAY_JWT_ISSUER and GATEWAY_JWT_AUDIENCE (auth.jwt_jwks_url, auth.jwt_issuer, auth.jwt_audience); a token is only accepted from that issuer for that audience".to_owned(),
                ));
            }
        };
        let jwks_url = url::Url::parse(&url)
            .ok()
            .filter(|u| match u.scheme() {
                "https" => true,
                "http" => match u.host() {
                    Some(url::Host::Domain(d)) => d == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                },
                _ => false,
            })
            .ok_or_else(|| {
                ConfigError::env(
                    ENV_JWT_JWKS_URL,
                    format!(
                        "must be an https URL of the issuer's JWKS (http only on a loopback host) (got \"{url}\")"
                    ),
                )
            })?;
        Ok(Some(JwtConfig {
            jwks_url,
            issuer,
            audience,
            jwks_cache: Duration::from_secs(
                self.positive(a.jwt_jwks_cache_secs, "auth.jwt_jwks_cache_secs")?
                    .unwrap_or(DEFAULT_JWT_JWKS_CACHE_SECS),
            ),
            jwks_refetch: Duration::from_secs(
                self.non_negative(a.jwt_jwks_refetch_secs, "auth.jwt_jwks_refetch_secs")?
                    .unwrap_or(DEFAULT_JWT_JWKS_REFETCH_SECS),
            ),
        }))
    }

    fn llm(&self) -> Result<LlmConfig, ConfigError> {
        let l = &self.file.llm;
        let base_url = self
            .pick(ENV_LLM_BASE_URL, l.base_url.as_ref())
            .unwrap_or_else(|| DEFAULT_LLM_BASE_URL.to_owned());
        if url::Url::parse(&base_url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            let problem = format!("must be an absolute http or https URL (got \"{base_url}\")");
            return Err(if self.env.get(ENV_LLM_BASE_URL).is_some() {
                ConfigError::env(ENV_LLM_BASE_URL, problem)
            } else {
                self.key_error("llm.base_url", problem)
            });
        }
        let api_key = self
            .env
            .get(ENV_LLM_API_KEY)
            .or_else(|| self.env.get(ENV_OPENROUTER_API_KEY))
            .map(str::to_owned)
            .or_else(|| l.api_key.clone())
            .filter(|k| !k.trim().is_empty())
            .map(SecretString::from);
        let fallback_models = self
            .list(ENV_FALLBACK_MODELS, l.fallback_models.as_ref())
            .into_iter()
            .map(|m| {
                m.strip_prefix("openrouter/")
                    .map(str::to_owned)
                    .unwrap_or(m)
            })
            .collect();
        Ok(LlmConfig {
            max_response_bytes: self.count(
                l.max_response_bytes,
                "llm.max_response_bytes",
                DEFAULT_LLM_MAX_RESPONSE_BYTES,
            )?,
            base_url,
            api_key,
            fallback_models,
            cache_control: self.cache_control()?,
        })
    }

    fn cache_control(&self) -> Result<CacheControl, ConfigError> {
        let from_env = self.env.get(ENV_LLM_CACHE_CONTROL).is_some();
        let Some(raw) = self.pick(ENV_LLM_CACHE_CONTROL, self.file.llm.cache_control.as_ref())
        else {
            return Ok(CacheControl::Auto);
        };
        match raw.trim() {
            "auto" => Ok(CacheControl::Auto),
            "on" => Ok(CacheControl::On),
            "off" => Ok(CacheControl::Off),
            other => {
                let problem = format!("must be \"auto\", \"on\" or \"off\" (got \"{other}\")");
                Err(if from_env {
                    ConfigError::env(ENV_LLM_CACHE_CONTROL, problem)
                } else {
                    self.key_error("llm.cache_control", problem)
                })
            }
        }
    }

    fn tool_discovery_threshold(&self) -> Result<usize, ConfigError> {
        match self.env.get(ENV_TOOL_DISCOVERY_THRESHOLD) {
            Some(raw) => raw.trim().parse::<usize>().map_err(|_| {
                ConfigError::env(
                    ENV_TOOL_DISCOVERY_THRESHOLD,
                    format!(
                        "must be a whole number of skills, 0 to turn discovery off (got \"{raw}\")"
                    ),
                )
            }),
            None => Ok(self
                .non_negative(
                    self.file.planner.tool_discovery_threshold,
                    "planner.tool_discovery_threshold",
                )?
                .map_or(DEFAULT_TOOL_DISCOVERY_THRESHOLD, to_usize)),
        }
    }

    fn planner(&self) -> Result<PlannerConfig, ConfigError> {
        let p = &self.file.planner;
        let explicit_model = self.pick(ENV_PLANNER_MODEL, p.model.as_ref());
        let file = match self.pick(ENV_PLANNER_FILE, p.file.as_ref()) {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    let problem = format!("names a file that does not exist: {}", path.display());
                    return Err(if self.env.get(ENV_PLANNER_FILE).is_some() {
                        ConfigError::env(ENV_PLANNER_FILE, problem)
                    } else {
                        self.key_error("planner.file", problem)
                    });
                }
                Some(path)
            }
            None => Some(PathBuf::from(DEFAULT_PLANNER_FILE)).filter(|p| p.is_file()),
        };
        let settings = file.as_deref().map(PlannerFile::read).transpose()?;
        let context_window = match p.context_window {
            Some(w) if w > 16_000 => Some(w.unsigned_abs()),
            Some(w) => {
                return Err(self.key_error(
                    "planner.context_window",
                    format!("must be an integer above 16000 (got {w})"),
                ));
            }
            None => None,
        };
        Ok(PlannerConfig {
            model: explicit_model
                .or_else(|| settings.as_ref().and_then(|s| s.model.clone()))
                .unwrap_or_else(|| DEFAULT_PLANNER_MODEL.to_owned()),
            file,
            context_window,
            instructions: p.instructions.clone().unwrap_or_default(),
            // Without a planner file: temperature 0.3, top_p unset, 10 steps (spec §7.4).
            temperature: match &settings {
                Some(s) => s.temperature,
                None => Some(DEFAULT_TEMPERATURE),
            },
            top_p: settings.as_ref().and_then(|s| s.top_p),
            steps: settings.as_ref().and_then(|s| s.steps),
            tool_discovery_threshold: self.tool_discovery_threshold()?,
            recipe_rules: settings
                .as_ref()
                .map(|s| s.recipe_rules.clone())
                .unwrap_or_default(),
            prompt: settings.map(|s| s.prompt),
        })
    }

    fn recipes(&self) -> RecipesConfig {
        let r = &self.file.recipes;
        let (dir, dir_explicit) = match self
            .env
            .get(ENV_RECIPES_DIR)
            .map(str::to_owned)
            .or_else(|| r.dir.clone())
        {
            Some(dir) => (PathBuf::from(dir), true),
            None => (PathBuf::from(DEFAULT_RECIPES_DIR), false),
        };
        RecipesConfig {
            dir,
            dir_explicit,
            deny: self.list(ENV_RECIPES_DENY, r.deny.as_ref()),
        }
    }

    fn resume(&self) -> Result<ResumeConfig, ConfigError> {
        let r = &self.file.resume;
        let grace_secs = match self.env.get(ENV_RESUME_GRACE_SECS) {
            Some(raw) => raw.trim().parse::<u64>().map_err(|_| {
                ConfigError::env(
                    ENV_RESUME_GRACE_SECS,
                    format!("must be a whole number of seconds (got \"{raw}\")"),
                )
            })?,
            None => self
                .non_negative(r.grace_secs, "resume.grace_secs")?
                .unwrap_or(DEFAULT_RESUME_GRACE_SECS),
        };
        Ok(ResumeConfig {
            enabled: self.switch(ENV_SSE_RESUME, r.enabled, false)?,
            grace: Duration::from_secs(grace_secs),
            retention: Duration::from_secs(
                self.non_negative(r.retention_secs, "resume.retention_secs")?
                    .unwrap_or(DEFAULT_RESUME_RETENTION_SECS),
            ),
            max_bytes: self.count(r.max_bytes, "resume.max_bytes", DEFAULT_RESUME_MAX_BYTES)?,
            max_plans: self.count(r.max_plans, "resume.max_plans", DEFAULT_RESUME_MAX_PLANS)?,
        })
    }

    fn files(&self) -> Result<FilesConfig, ConfigError> {
        let f = &self.file.files;
        let max_file_bytes = self.count(
            f.max_file_bytes,
            "files.max_file_bytes",
            DEFAULT_FILES_MAX_FILE_BYTES,
        )?;
        Ok(FilesConfig {
            max_file_bytes,
            max_plan_bytes: self.count(
                f.max_plan_bytes,
                "files.max_plan_bytes",
                DEFAULT_FILES_MAX_PLAN_BYTES,
            )?,
            retention: Duration::from_secs(
                self.non_negative(f.retention_secs, "files.retention_secs")?
                    .unwrap_or(DEFAULT_FILES_RETENTION_SECS),
            ),
            max_total_bytes: self.count(
                f.max_total_bytes,
                "files.max_total_bytes",
                DEFAULT_FILES_MAX_TOTAL_BYTES,
            )?,
            max_attachments: self
                .non_negative(f.max_attachments, "files.max_attachments")?
                .map_or(DEFAULT_FILES_MAX_ATTACHMENTS, to_usize),
            inline_answer_bytes: self
                .non_negative(f.inline_answer_bytes, "files.inline_answer_bytes")?
                .map_or(DEFAULT_FILES_INLINE_ANSWER_BYTES, to_usize),
        })
    }

    fn sessions(&self) -> Result<SessionsConfig, ConfigError> {
        let s = &self.file.sessions;
        Ok(SessionsConfig {
            enabled: self.switch(ENV_SESSIONS, s.enabled, false)?,
            ttl: Duration::from_secs(
                self.positive(s.ttl_secs, "sessions.ttl_secs")?
                    .unwrap_or(DEFAULT_SESSIONS_TTL_SECS),
            ),
            max_turns: self.count(
                s.max_turns,
                "sessions.max_turns",
                DEFAULT_SESSIONS_MAX_TURNS,
            )?,
            max_per_token: self.count(
                s.max_per_token,
                "sessions.max_per_token",
                DEFAULT_SESSIONS_MAX_PER_TOKEN,
            )?,
            max_bytes: self.count(
                s.max_bytes,
                "sessions.max_bytes",
                DEFAULT_SESSIONS_MAX_BYTES,
            )?,
        })
    }

    fn a2a_server(&self) -> Result<A2aServerConfig, ConfigError> {
        let a = &self.file.a2a_server;
        Ok(A2aServerConfig {
            task_ttl: Duration::from_secs(
                self.non_negative(a.task_ttl_secs, "a2a_server.task_ttl_secs")?
                    .unwrap_or(DEFAULT_A2A_TASK_TTL_SECS),
            ),
            max_tasks: self.count(a.max_tasks, "a2a_server.max_tasks", DEFAULT_A2A_MAX_TASKS)?,
            max_context_turns: match self
                .non_negative(a.max_context_turns, "a2a_server.max_context_turns")?
            {
                Some(n) => to_usize(n),
                None => DEFAULT_A2A_MAX_CONTEXT_TURNS,
            },
            max_message_bytes: self.count(
                a.max_message_bytes,
                "a2a_server.max_message_bytes",
                DEFAULT_A2A_MAX_MESSAGE_BYTES,
            )?,
            public_url: self.public_url()?,
        })
    }

    fn public_url(&self) -> Result<Option<String>, ConfigError> {
        let (raw, from_env) = match self.env.get(ENV_PUBLIC_URL) {
            Some(v) => (v.trim().to_owned(), true),
            None => match &self.file.a2a_server.public_url {
                Some(v) => (v.trim().to_owned(), false),
                None => return Ok(None),
            },
        };
        if raw.is_empty() {
            return Ok(None);
        }
        let valid = url::Url::parse(&raw)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !valid {
            let problem = format!(
                "must be an absolute http(s) URL such as https://gateway.example.com (got \"{raw}\")"
            );
            return Err(if from_env {
                ConfigError::env(ENV_PUBLIC_URL, problem)
            } else {
                self.key_error("a2a_server.public_url", problem)
            });
        }
        Ok(Some(raw.trim_end_matches('/').to_owned()))
    }

    fn plan(&self) -> Result<PlanConfig, ConfigError> {
        let p = &self.file.plan;
        let default_timeout_ms = match p.default_timeout_ms {
            Some(v)
                if u64::try_from(v)
                    .is_ok_and(|v| (MIN_PLAN_TIMEOUT_MS..=MAX_PLAN_TIMEOUT_MS).contains(&v)) =>
            {
                v.unsigned_abs()
            }
            Some(v) => {
                return Err(self.key_error(
                    "plan.default_timeout_ms",
                    format!(
                        "must be between {MIN_PLAN_TIMEOUT_MS} and {MAX_PLAN_TIMEOUT_MS} (got {v})"
                    ),
                ));
            }
            None => DEFAULT_PLAN_TIMEOUT_MS,
        };
        Ok(PlanConfig {
            default_timeout: Duration::from_millis(default_timeout_ms),
            idempotency_ttl: Duration::from_secs(
                self.non_negative(p.idempotency_ttl_secs, "plan.idempotency_ttl_secs")?
                    .unwrap_or(DEFAULT_IDEMPOTENCY_TTL_SECS),
            ),
            max_agents: self.count(p.max_agents, "plan.max_agents", DEFAULT_MAX_AGENTS)?,
            max_skills: self.count(p.max_skills, "plan.max_skills", DEFAULT_MAX_SKILLS)?,
            max_concurrent_calls: self.count(
                p.max_concurrent_calls,
                "plan.max_concurrent_calls",
                DEFAULT_MAX_CONCURRENT_CALLS,
            )?,
            confirm_timeout: self.millis(
                p.confirm_timeout_ms,
                "plan.confirm_timeout_ms",
                DEFAULT_CONFIRM_TIMEOUT_MS,
            )?,
        })
    }

    fn a2a(&self) -> Result<A2aConfig, ConfigError> {
        let a = &self.file.a2a;
        let secs = |v: Option<i64>, key: &str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(
                self.non_negative(v, key)?.unwrap_or(default),
            ))
        };
        Ok(A2aConfig {
            env_allowlist: self.list(ENV_PEER_ENV_ALLOWLIST, a.env_allowlist.as_ref()),
            request_timeout: self.millis(
                a.request_timeout_ms,
                "a2a.request_timeout_ms",
                DEFAULT_A2A_REQUEST_TIMEOUT_MS,
            )?,
            call_budget: self.millis(
                a.call_budget_ms,
                "a2a.call_budget_ms",
                DEFAULT_A2A_CALL_BUDGET_MS,
            )?,
            card_budget: self.millis(
                a.card_budget_ms,
                "a2a.card_budget_ms",
                DEFAULT_A2A_CARD_BUDGET_MS,
            )?,
            card_ttl: secs(
                a.card_ttl_secs,
                "a2a.card_ttl_secs",
                DEFAULT_A2A_CARD_TTL_SECS,
            )?,
            card_failure_ttl: secs(
                a.card_failure_ttl_secs,
                "a2a.card_failure_ttl_secs",
                DEFAULT_A2A_CARD_FAILURE_TTL_SECS,
            )?,
            did_resolve_timeout: self.millis(
                a.did_resolve_timeout_ms,
                "a2a.did_resolve_timeout_ms",
                DEFAULT_A2A_DID_RESOLVE_TIMEOUT_MS,
            )?,
            cancel_timeout: self.millis(
                a.cancel_timeout_ms,
                "a2a.cancel_timeout_ms",
                DEFAULT_A2A_CANCEL_TIMEOUT_MS,
            )?,
            stream_grace: Duration::from_millis(
                self.non_negative(a.stream_grace_ms, "a2a.stream_grace_ms")?
                    .unwrap_or(DEFAULT_A2A_STREAM_GRACE_MS),
            ),
            block_private_endpoints: a.block_private_endpoints.unwrap_or(false),
            max_response_bytes: self.count(
                a.max_response_bytes,
                "a2a.max_response_bytes",
                DEFAULT_A2A_MAX_RESPONSE_BYTES,
            )?,
            file_allowance: 0,
            max_output_chars: self.count(
                a.max_output_chars,
                "a2a.max_output_chars",
                DEFAULT_A2A_MAX_OUTPUT_CHARS,
            )?,
            max_connections: self.count(
                a.max_connections,
                "a2a.max_connections",
                DEFAULT_A2A_MAX_CONNECTIONS,
            )?,
        })
    }

    fn identity(&self) -> Result<Option<IdentityConfig>, ConfigError> {
        let i = &self.file.identity;
        match (
            self.pick(ENV_DID_SEED, i.did_seed.as_ref()),
            self.pick(ENV_DID_AUTHOR, i.author.as_ref()),
            self.pick(ENV_DID_NAME, i.name.as_ref()),
        ) {
            (None, None, None) => Ok(None),
            (Some(seed), Some(author), Some(name)) => Ok(Some(IdentityConfig {
                seed: SecretString::from(seed),
                author,
                name,
            })),
            (seed, author, name) => Err(ConfigError::Conflict(format!(
                "Partial DID identity config — set all three or none: {ENV_DID_SEED}, {ENV_DID_AUTHOR}, {ENV_DID_NAME}. Got: seed={}, author={}, name={}",
                set_or_missing(seed.as_ref()),
                set_or_missing(author.as_ref()),
                set_or_missing(name.as_ref())
            ))),
        }
    }

    fn hydra(&self) -> Result<Option<HydraConfig>, ConfigError> {
        let h = &self.file.hydra;
        match (
            self.pick(ENV_HYDRA_ADMIN_URL, h.admin_url.as_ref()),
            self.pick(ENV_HYDRA_TOKEN_URL, h.token_url.as_ref()),
        ) {
            (None, None) => Ok(None),
            (Some(admin_url), Some(token_url)) => Ok(Some(HydraConfig {
                admin_url,
                token_url,
                scopes: self
                    .pick(ENV_HYDRA_SCOPE, h.scope.as_ref())
                    .unwrap_or_else(|| DEFAULT_HYDRA_SCOPE.to_owned())
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            })),
            (admin, token) => Err(ConfigError::Conflict(format!(
                "Partial Hydra config — set both or neither: {ENV_HYDRA_ADMIN_URL}, {ENV_HYDRA_TOKEN_URL}. Got: admin={}, token={}",
                set_or_missing(admin.as_ref()),
                set_or_missing(token.as_ref())
            ))),
        }
    }

    /// TLS (spec §1.1, §5.15) is not built in: refuse to start rather than silently serve plain
    /// HTTP to someone who asked for HTTPS.
    fn refuse_tls(&self) -> Result<(), ConfigError> {
        let t = &self.file.tls;
        let tls = [
            (ENV_TLS_CERT, self.pick(ENV_TLS_CERT, t.cert.as_ref())),
            (ENV_TLS_KEY, self.pick(ENV_TLS_KEY, t.key.as_ref())),
            (ENV_TLS_CA, self.pick(ENV_TLS_CA, t.ca.as_ref())),
        ];
        let set = tls.iter().filter(|(_, v)| v.is_some()).count();
        if set > 0 && set < 3 {
            return Err(ConfigError::Conflict(format!(
                "Partial TLS config — set all three or none: {ENV_TLS_CERT}, {ENV_TLS_KEY}, {ENV_TLS_CA}"
            )));
        }
        if let Some((_, Some(path))) = tls
            .iter()
            .find(|(_, v)| v.as_ref().is_some_and(|p| !Path::new(p).exists()))
        {
            return Err(ConfigError::Conflict(format!("TLS file not found: {path}")));
        }
        if set == 3 {
            return Err(ConfigError::Conflict(format!(
                "config: {ENV_TLS_CERT}/KEY/CA are set, but this build of plangate does not terminate TLS; put a TLS proxy in front of it and unset them"
            )));
        }
        Ok(())
    }
}

/// The values of allow-listed peer-auth variables, captured at boot. `NAME@host[:port]` binds
/// NAME to one peer; the value is read by NAME.
fn peer_env(env: &Env<'_>, allowlist: &[String]) -> HashMap<String, SecretString> {
    allowlist
        .iter()
        .map(|entry| {
            entry
                .split_once('@')
                .map_or(entry.as_str(), |(name, _)| name)
        })
        .filter_map(|name| {
            env.get(name)
                .map(|v| (name.to_owned(), SecretString::from(v.to_owned())))
        })
        .collect()
}

fn set_or_missing(v: Option<&String>) -> &'static str {
    if v.is_some() { "set" } else { "missing" }
}

/// `on`/`off` (also `true`/`false`, `1`/`0`).
fn parse_switch(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Some(true),
        "off" | "false" | "0" => Some(false),
        _ => None,
    }
}

fn parse_auth_mode(raw: &str) -> Option<AuthMode> {
    match raw {
        "bearer" => Some(AuthMode::Bearer),
        "none" => Some(AuthMode::None),
        _ => None,
    }
}

#[expect(
    clippy::panic,
    reason = "the built-in defaults are valid; covered by a unit test"
)]
fn unreachable_default() -> Config {
    panic!("built-in test configuration is invalid")
}

fn parse_port(raw: &str) -> Result<u16, ConfigError> {
    raw.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            ConfigError::env(
                ENV_PORT,
                format!("must be an integer between 1 and 65535 (got \"{raw}\")"),
            )
        })
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::load(&env(&[]), None).unwrap();
        assert_eq!(c.server.hostname, "0.0.0.0");
        assert_eq!(c.server.port, 3774);
        assert_eq!(c.server.sse_keepalive, Some(Duration::from_secs(15)));
        assert_eq!(c.auth.mode, AuthMode::Bearer);
        assert!(c.auth.tokens.is_empty());
        assert!(!c.is_llm_mode());
        assert_eq!(c.planner.model, DEFAULT_PLANNER_MODEL);
        assert_eq!(c.a2a.call_budget, Duration::from_secs(600));
        assert_eq!(c.environment, "development");
        assert_eq!(c.planner.temperature, Some(0.3));
        assert!(c.planner.prompt.is_none());
        let _ = Config::test_default();
    }

    #[test]
    fn jwt_callers_need_all_three_settings_and_an_https_jwks() {
        let full = [
            (
                "GATEWAY_JWT_JWKS_URL",
                "https://id.example.com/.well-known/jwks.json",
            ),
            ("GATEWAY_JWT_ISSUER", "https://id.example.com/"),
            ("GATEWAY_JWT_AUDIENCE", "plangate"),
        ];
        let jwt = Config::load(&env(&full), None).unwrap().auth.jwt.unwrap();
        assert_eq!(jwt.audience, "plangate");
        assert_eq!(
            jwt.jwks_cache,
            Duration::from_secs(DEFAULT_JWT_JWKS_CACHE_SECS)
        );
        let err = Config::load(&env(&full[..2]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GATEWAY_JWT_AUDIENCE"), "{err}");
        let err = Config::load(&env(&full[1..]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GATEWAY_JWT_JWKS_URL"), "{err}");
        let mut plain = full;
        plain[0].1 = "http://id.example.com/jwks.json";
        let err = Config::load(&env(&plain), None).unwrap_err().to_string();
        assert!(err.contains("must be an https URL"), "{err}");
        plain[0].1 = "http://127.0.0.1:9000/jwks.json";
        assert!(Config::load(&env(&plain), None).is_ok());
        let mut none = full.to_vec();
        none.push(("GATEWAY_AUTH_MODE", "none"));
        let err = Config::load(&env(&none), None).unwrap_err().to_string();
        assert!(err.contains("need bearer auth"), "{err}");
    }

    #[test]
    fn bad_port_names_the_variable() {
        let err = Config::load(&env(&[("GATEWAY_PORT", "abc")]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: GATEWAY_PORT must be an integer between 1 and 65535 (got \"abc\")"
        );
        assert!(Config::load(&env(&[("GATEWAY_PORT", "0")]), None).is_err());
        assert!(Config::load(&env(&[("GATEWAY_PORT", "65536")]), None).is_err());
    }

    #[test]
    fn api_keys_split_trim_and_drop_empties() {
        let c = Config::load(&env(&[("GATEWAY_API_KEY", " a, b ,,c ")]), None).unwrap();
        let t: Vec<_> = c
            .auth
            .tokens
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(t, ["a", "b", "c"]);
    }

    #[test]
    fn llm_key_falls_back_to_openrouter_and_empty_counts_as_unset() {
        let c = Config::load(
            &env(&[("GATEWAY_LLM_API_KEY", ""), ("OPENROUTER_API_KEY", "k")]),
            None,
        )
        .unwrap();
        assert!(c.is_llm_mode());
        let c = Config::load(
            &env(&[("OPENROUTER_FALLBACK_MODELS", "openrouter/a/b, c/d,")]),
            None,
        )
        .unwrap();
        assert_eq!(c.llm.fallback_models, ["a/b", "c/d"]);
    }

    #[test]
    fn identity_and_hydra_settings_are_all_or_none() {
        let seed = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let c = Config::load(
            &env(&[
                ("BINDU_GATEWAY_DID_SEED", seed),
                ("BINDU_GATEWAY_AUTHOR", "ops@example.com"),
                ("BINDU_GATEWAY_NAME", "gateway"),
            ]),
            None,
        )
        .unwrap();
        let identity = c.identity.unwrap();
        assert_eq!(
            (identity.author.as_str(), identity.name.as_str()),
            ("ops@example.com", "gateway")
        );
        let err = Config::load(&env(&[("BINDU_GATEWAY_AUTHOR", "a")]), None).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("Got: seed=missing, author=set, name=missing")
        );
        let err =
            Config::load(&env(&[("BINDU_GATEWAY_HYDRA_TOKEN_URL", "http://t")]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Partial Hydra config — set both or neither: BINDU_GATEWAY_HYDRA_ADMIN_URL, BINDU_GATEWAY_HYDRA_TOKEN_URL. Got: admin=missing, token=set"
        );
        let c = Config::load(
            &env(&[
                ("BINDU_GATEWAY_HYDRA_TOKEN_URL", "http://t"),
                ("BINDU_GATEWAY_HYDRA_ADMIN_URL", "http://a"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            c.hydra.unwrap().scopes,
            ["openid", "offline", "agent:read", "agent:write"]
        );
    }

    #[test]
    fn tls_settings_are_refused_instead_of_ignored() {
        let err = Config::load(&env(&[("BINDU_GATEWAY_TLS_CERT", "/x")]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Partial TLS config — set all three or none: BINDU_GATEWAY_TLS_CERT, BINDU_GATEWAY_TLS_KEY, BINDU_GATEWAY_TLS_CA"
        );
        let all = [
            ("BINDU_GATEWAY_TLS_CERT", "/nope/c.pem"),
            ("BINDU_GATEWAY_TLS_KEY", "/nope/k.pem"),
            ("BINDU_GATEWAY_TLS_CA", "/nope/ca.pem"),
        ];
        assert_eq!(
            Config::load(&env(&all), None).unwrap_err().to_string(),
            "TLS file not found: /nope/c.pem"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = Config::load(
            &env(&[
                ("GATEWAY_API_KEY", "tok-secret-1"),
                ("GATEWAY_LLM_API_KEY", "sk-secret-2"),
                (
                    "BINDU_GATEWAY_DID_SEED",
                    "c2VjcmV0LXNlZWQtc2VjcmV0LXNlZWQtc2VjcmV0LXM=",
                ),
                ("BINDU_GATEWAY_AUTHOR", "a"),
                ("BINDU_GATEWAY_NAME", "b"),
            ]),
            None,
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("tok-secret-1"));
        assert!(!dbg.contains("sk-secret-2"));
        assert!(!dbg.contains("c2VjcmV0") && !dbg.contains("secret-seed"));
        assert!(dbg.contains("author: \"a\""), "{dbg}");
    }

    #[test]
    fn planner_file_sets_the_model_below_env_and_toml() {
        let dir = std::env::temp_dir().join(format!("plangate-planner-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("planner.md");
        std::fs::write(&path, "---\nmodel: from-file\nsteps: 3\n---\nMy prompt").unwrap();
        let p = path.to_str().unwrap();
        let c = Config::load(&env(&[("GATEWAY_PLANNER_FILE", p)]), None).unwrap();
        assert_eq!(c.planner.model, "from-file");
        assert_eq!(c.planner.steps, Some(3));
        assert_eq!(
            c.planner.temperature, None,
            "a planner file without temperature leaves it unset"
        );
        assert_eq!(c.planner.prompt.as_deref(), Some("My prompt"));
        let c = Config::load(
            &env(&[
                ("GATEWAY_PLANNER_FILE", p),
                ("GATEWAY_PLANNER_MODEL", "from-env"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.planner.model, "from-env");
        let err =
            Config::load(&env(&[("GATEWAY_PLANNER_FILE", "/nope/planner.md")]), None).unwrap_err();
        assert!(err.to_string().contains("GATEWAY_PLANNER_FILE"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn discovery_threshold_and_cache_control_from_env_and_toml() {
        let c = Config::load(&env(&[]), None).unwrap();
        assert_eq!(c.planner.tool_discovery_threshold, 24);
        assert_eq!(c.llm.cache_control, CacheControl::Auto);
        let c = Config::load(
            &env(&[
                ("GATEWAY_TOOL_DISCOVERY_THRESHOLD", "0"),
                ("GATEWAY_LLM_CACHE_CONTROL", "on"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.planner.tool_discovery_threshold, 0);
        assert_eq!(c.llm.cache_control, CacheControl::On);
        let err = Config::load(&env(&[("GATEWAY_TOOL_DISCOVERY_THRESHOLD", "-1")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GATEWAY_TOOL_DISCOVERY_THRESHOLD"), "{err}");
        let err = Config::load(&env(&[("GATEWAY_LLM_CACHE_CONTROL", "yes")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"auto\", \"on\" or \"off\""), "{err}");
        let dir = std::env::temp_dir().join(format!("plangate-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            "[planner]\ntool_discovery_threshold = 50\n[llm]\ncache_control = \"off\"\n",
        )
        .unwrap();
        let c = Config::load(&env(&[]), Some(&path)).unwrap();
        assert_eq!(c.planner.tool_discovery_threshold, 50);
        assert_eq!(c.llm.cache_control, CacheControl::Off);
        std::fs::write(&path, "[planner]\ntool_discovery_threshold = -3\n").unwrap();
        let err = Config::load(&env(&[]), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("planner.tool_discovery_threshold"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn toml_file_is_read_and_env_wins() {
        let dir = std::env::temp_dir().join(format!("plangate-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            "[server]\nport = 4000\nmax_concurrent_plans = 3\n[auth]\ntokens = [\"x\"]\n[a2a]\ncall_budget_ms = 1234\n",
        )
        .unwrap();
        let c = Config::load(&env(&[("GATEWAY_PORT", "5000")]), Some(&path)).unwrap();
        assert_eq!(c.server.port, 5000);
        assert_eq!(c.server.max_concurrent_plans, 3);
        assert_eq!(c.auth.tokens.len(), 1);
        assert_eq!(c.a2a.call_budget, Duration::from_millis(1234));

        std::fs::write(&path, "[server]\nbogus = 1\n").unwrap();
        let err = Config::load(&env(&[]), Some(&path)).unwrap_err();
        let shown = path.display();
        assert_eq!(
            err.to_string(),
            format!("config: unknown key \"server.bogus\" (at {shown}:2)")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_example_file_states_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.toml");
        let from_file = Config::load(&env(&[]), Some(&example)).unwrap();
        let built_in = Config::load(&env(&[]), None).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{built_in:?}"));
    }

    #[test]
    fn toml_errors_name_the_key_and_its_line() {
        let typed =
            FileConfig::parse("# ops\n[server]\nhostname = \"h\"\nport = \"3775\"\n").unwrap_err();
        assert!(
            matches!(&typed, ConfigError::Key { key, location: Some(l), .. } if key == "server.port" && l.line == 4),
            "{typed:?}"
        );
        assert!(
            typed.to_string().starts_with(
                "config: server.port has the wrong type: invalid type: string \"3775\""
            ),
            "{typed}"
        );
        let f = FileConfig::parse("[plan]\n\nmax_agents = 0\n").unwrap();
        let err = Config::resolve(&Env(&HashMap::new()), &f).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: plan.max_agents must be an integer greater than 0 (got 0) (at (inline):3)"
        );
        let err = FileConfig::parse("[a2a]\ncall_budget_ms = \n").unwrap_err();
        assert!(
            matches!(&err, ConfigError::File { location: Some(l), .. } if l.line == 2),
            "{err:?}"
        );
        let err = Config::load(&env(&[("GATEWAY_AUTH_MODE", "basic")]), None).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Env {
                var: "GATEWAY_AUTH_MODE".into(),
                problem: "must be \"bearer\" or \"none\" (got \"basic\")".into()
            }
        );
    }
}
