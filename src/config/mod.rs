//! Gateway configuration: read once at boot from an environment map and an optional TOML file
//! into typed values (`Duration`s, `SecretString`s), validated, with every boot error naming the
//! variable or key and what is wrong (spec §7).
//!
//! Precedence per setting: non-empty environment variable > TOML key > built-in default. The
//! environment is always passed in as a map, never read here, so tests build their own.

mod file;
mod planner_file;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::recipe::Action;
pub use file::FileConfig;
pub use planner_file::PlannerFile;

pub const ENV_CONFIG: &str = "GATEWAY_CONFIG";
pub const ENV_HOSTNAME: &str = "GATEWAY_HOSTNAME";
pub const ENV_PORT: &str = "GATEWAY_PORT";
pub const ENV_AUTH_MODE: &str = "GATEWAY_AUTH_MODE";
pub const ENV_API_KEY: &str = "GATEWAY_API_KEY";
pub const ENV_LLM_BASE_URL: &str = "GATEWAY_LLM_BASE_URL";
pub const ENV_LLM_API_KEY: &str = "GATEWAY_LLM_API_KEY";
pub const ENV_OPENROUTER_API_KEY: &str = "OPENROUTER_API_KEY";
pub const ENV_FALLBACK_MODELS: &str = "OPENROUTER_FALLBACK_MODELS";
pub const ENV_PLANNER_MODEL: &str = "GATEWAY_PLANNER_MODEL";
pub const ENV_PLANNER_FILE: &str = "GATEWAY_PLANNER_FILE";
pub const ENV_RECIPES_DIR: &str = "GATEWAY_RECIPES_DIR";
pub const ENV_RECIPES_DENY: &str = "GATEWAY_RECIPES_DENY";
pub const ENV_PEER_ENV_ALLOWLIST: &str = "GATEWAY_PEER_ENV_ALLOWLIST";
pub const ENV_SSE_KEEPALIVE_SECS: &str = "GATEWAY_SSE_KEEPALIVE_SECS";
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
/// Skills per request, over all agents (each becomes one tool).
pub const DEFAULT_MAX_SKILLS: usize = 1024;
/// Peer calls one plan runs at the same time.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 32;
pub const DEFAULT_PLAN_TIMEOUT_MS: u64 = 1_800_000;
/// The request schema's upper bound for `timeout_ms` (6 hours).
pub const MAX_PLAN_TIMEOUT_MS: u64 = 21_600_000;
/// The request schema's lower bound for `timeout_ms`.
pub const MIN_PLAN_TIMEOUT_MS: u64 = 1_000;

/// A boot failure: the message names the variable or key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

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
}

/// Inbound authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub tokens: Vec<SecretString>,
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
    pub max_response_bytes: usize,
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
        Self::resolve(&env, file)
    }

    /// A configuration for tests: loopback, auth off, short timeouts left at defaults.
    #[must_use]
    pub fn test_default() -> Self {
        let mut env = HashMap::new();
        env.insert(ENV_HOSTNAME.to_owned(), "127.0.0.1".to_owned());
        env.insert(ENV_AUTH_MODE.to_owned(), "none".to_owned());
        env.insert(ENV_RECIPES_DIR.to_owned(), String::new());
        let mut config = Self::resolve(&Env(&env), FileConfig::default())
            .unwrap_or_else(|_| unreachable_default());
        config.recipes.dir_explicit = false;
        config.recipes.dir = PathBuf::from("does-not-exist-plangate-recipes");
        config.planner.file = None;
        config
    }

    fn resolve(env: &Env<'_>, file: FileConfig) -> Result<Self, ConfigError> {
        let f = file;
        let hostname = env
            .get(ENV_HOSTNAME)
            .map(str::to_owned)
            .or(f.server.hostname)
            .unwrap_or_else(|| DEFAULT_HOSTNAME.to_owned());
        let port = match env.get(ENV_PORT) {
            Some(raw) => parse_port(raw)?,
            None => match f.server.port {
                Some(p) if (1..=65535).contains(&p) => u16::try_from(p).unwrap_or(DEFAULT_PORT),
                Some(p) => {
                    return Err(ConfigError(format!(
                        "config: server.port must be an integer between 1 and 65535 (got {p})"
                    )));
                }
                None => DEFAULT_PORT,
            },
        };
        let keepalive_secs = match env.get(ENV_SSE_KEEPALIVE_SECS) {
            Some(raw) => raw.trim().parse::<u64>().map_err(|_| {
                ConfigError(format!(
                    "config: {ENV_SSE_KEEPALIVE_SECS} must be a non-negative integer (got \"{raw}\")"
                ))
            })?,
            None => non_negative(f.server.sse_keepalive_secs, "server.sse_keepalive_secs")?
                .unwrap_or(15),
        };
        let max_body_bytes = positive(f.server.max_body_bytes, "server.max_body_bytes")?
            .map_or(DEFAULT_MAX_BODY_BYTES, to_usize);
        let shutdown_grace_secs =
            non_negative(f.server.shutdown_grace_secs, "server.shutdown_grace_secs")?.unwrap_or(10);
        let max_concurrent_plans =
            non_negative(f.server.max_concurrent_plans, "server.max_concurrent_plans")?
                .map_or(0, to_usize);
        let max_json_values = positive(f.server.max_json_values, "server.max_json_values")?
            .map_or(DEFAULT_MAX_JSON_VALUES, to_usize);
        let max_json_depth = positive(f.server.max_json_depth, "server.max_json_depth")?
            .map_or(DEFAULT_MAX_JSON_DEPTH, to_usize);
        let millis = |v: Option<i64>, key: &str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(positive(v, key)?.unwrap_or(default)))
        };
        let header_read_timeout = millis(
            f.server.header_read_timeout_ms,
            "server.header_read_timeout_ms",
            10_000,
        )?;
        let body_read_timeout = millis(
            f.server.body_read_timeout_ms,
            "server.body_read_timeout_ms",
            30_000,
        )?;
        let write_timeout = millis(f.server.write_timeout_ms, "server.write_timeout_ms", 30_000)?;
        let max_connections = positive(f.server.max_connections, "server.max_connections")?
            .map_or(DEFAULT_MAX_CONNECTIONS, to_usize);

        let mode_raw = env
            .get(ENV_AUTH_MODE)
            .map(str::to_owned)
            .or(f.auth.mode)
            .unwrap_or_else(|| "bearer".to_owned());
        let mode = match mode_raw.trim() {
            "bearer" => AuthMode::Bearer,
            "none" => AuthMode::None,
            other => {
                return Err(ConfigError(format!(
                    "config: {ENV_AUTH_MODE} must be \"bearer\" or \"none\" (got \"{other}\")"
                )));
            }
        };
        let tokens: Vec<SecretString> = match env.get(ENV_API_KEY) {
            Some(raw) => split_list(raw),
            None => f.auth.tokens.unwrap_or_default(),
        }
        .into_iter()
        .map(SecretString::from)
        .collect();

        let base_url = env
            .get(ENV_LLM_BASE_URL)
            .map(str::to_owned)
            .or(f.llm.base_url)
            .unwrap_or_else(|| DEFAULT_LLM_BASE_URL.to_owned());
        if url::Url::parse(&base_url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err(ConfigError(format!(
                "config: {ENV_LLM_BASE_URL} must be an absolute http or https URL (got \"{base_url}\")"
            )));
        }
        let api_key = env
            .get(ENV_LLM_API_KEY)
            .or_else(|| env.get(ENV_OPENROUTER_API_KEY))
            .map(str::to_owned)
            .or(f.llm.api_key)
            .filter(|k| !k.trim().is_empty())
            .map(SecretString::from);
        let max_response_bytes = positive(f.llm.max_response_bytes, "llm.max_response_bytes")?
            .map_or(32 * 1024 * 1024, to_usize);
        let fallback_models = match env.get(ENV_FALLBACK_MODELS) {
            Some(raw) => split_list(raw),
            None => f.llm.fallback_models.unwrap_or_default(),
        }
        .into_iter()
        .map(|m| {
            m.strip_prefix("openrouter/")
                .map(str::to_owned)
                .unwrap_or(m)
        })
        .collect();

        let explicit_model = env
            .get(ENV_PLANNER_MODEL)
            .map(str::to_owned)
            .or(f.planner.model);
        let planner_file = match env
            .get(ENV_PLANNER_FILE)
            .map(PathBuf::from)
            .or(f.planner.file.map(PathBuf::from))
        {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "config: {ENV_PLANNER_FILE} names a file that does not exist: {}",
                        path.display()
                    )));
                }
                Some(path)
            }
            None => Some(PathBuf::from(DEFAULT_PLANNER_FILE)).filter(|p| p.is_file()),
        };
        let planner_settings = planner_file.as_deref().map(PlannerFile::read).transpose()?;
        let model = explicit_model
            .or_else(|| planner_settings.as_ref().and_then(|p| p.model.clone()))
            .unwrap_or_else(|| DEFAULT_PLANNER_MODEL.to_owned());
        let context_window = match f.planner.context_window {
            Some(w) if w > 16_000 => Some(w.unsigned_abs()),
            Some(w) => {
                return Err(ConfigError(format!(
                    "config: planner.context_window must be an integer above 16000 (got {w})"
                )));
            }
            None => None,
        };

        let (recipes_dir, dir_explicit) = match env
            .get(ENV_RECIPES_DIR)
            .map(str::to_owned)
            .or(f.recipes.dir)
        {
            Some(dir) => (PathBuf::from(dir), true),
            None => (PathBuf::from(DEFAULT_RECIPES_DIR), false),
        };
        let deny = match env.get(ENV_RECIPES_DENY) {
            Some(raw) => split_list(raw),
            None => f.recipes.deny.unwrap_or_default(),
        };

        let default_timeout_ms = match f.plan.default_timeout_ms {
            Some(v) if (1_000..=21_600_000).contains(&v) => v.unsigned_abs(),
            Some(v) => {
                return Err(ConfigError(format!(
                    "config: plan.default_timeout_ms must be between 1000 and 21600000 (got {v})"
                )));
            }
            None => DEFAULT_PLAN_TIMEOUT_MS,
        };
        let idempotency_ttl_secs =
            non_negative(f.plan.idempotency_ttl_secs, "plan.idempotency_ttl_secs")?.unwrap_or(300);
        let max_agents =
            positive(f.plan.max_agents, "plan.max_agents")?.map_or(DEFAULT_MAX_AGENTS, to_usize);
        let max_skills =
            positive(f.plan.max_skills, "plan.max_skills")?.map_or(DEFAULT_MAX_SKILLS, to_usize);
        let max_concurrent_calls =
            positive(f.plan.max_concurrent_calls, "plan.max_concurrent_calls")?
                .map_or(DEFAULT_MAX_CONCURRENT_CALLS, to_usize);

        let env_allowlist = match env.get(ENV_PEER_ENV_ALLOWLIST) {
            Some(raw) => split_list(raw),
            None => f.a2a.env_allowlist.clone().unwrap_or_default(),
        };
        let a = &f.a2a;
        let ms = |v: Option<i64>, key: &str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(positive(v, key)?.unwrap_or(default)))
        };
        let a2a = A2aConfig {
            request_timeout: ms(a.request_timeout_ms, "a2a.request_timeout_ms", 60_000)?,
            call_budget: ms(a.call_budget_ms, "a2a.call_budget_ms", 600_000)?,
            card_budget: ms(a.card_budget_ms, "a2a.card_budget_ms", 2_000)?,
            card_ttl: Duration::from_secs(
                non_negative(a.card_ttl_secs, "a2a.card_ttl_secs")?.unwrap_or(300),
            ),
            card_failure_ttl: Duration::from_secs(
                non_negative(a.card_failure_ttl_secs, "a2a.card_failure_ttl_secs")?.unwrap_or(30),
            ),
            did_resolve_timeout: ms(
                a.did_resolve_timeout_ms,
                "a2a.did_resolve_timeout_ms",
                5_000,
            )?,
            cancel_timeout: ms(a.cancel_timeout_ms, "a2a.cancel_timeout_ms", 10_000)?,
            stream_grace: Duration::from_millis(
                non_negative(a.stream_grace_ms, "a2a.stream_grace_ms")?.unwrap_or(2_000),
            ),
            block_private_endpoints: a.block_private_endpoints.unwrap_or(false),
            max_response_bytes: positive(a.max_response_bytes, "a2a.max_response_bytes")?
                .map_or(8_388_608, to_usize),
            max_output_chars: positive(a.max_output_chars, "a2a.max_output_chars")?
                .map_or(200_000, to_usize),
            // Well under the default descriptor limit once raised, with room for clients.
            max_connections: positive(a.max_connections, "a2a.max_connections")?
                .map_or(1024, to_usize),
            env_allowlist,
        };
        let pick = |var: &str, toml: Option<String>| {
            env.get(var)
                .map(str::to_owned)
                .or(toml)
                .filter(|v| !v.is_empty())
        };
        let identity = match (
            pick(ENV_DID_SEED, f.identity.did_seed.clone()),
            pick(ENV_DID_AUTHOR, f.identity.author.clone()),
            pick(ENV_DID_NAME, f.identity.name.clone()),
        ) {
            (None, None, None) => None,
            (Some(seed), Some(author), Some(name)) => Some(IdentityConfig {
                seed: SecretString::from(seed),
                author,
                name,
            }),
            (seed, author, name) => {
                let word = |v: &Option<String>| if v.is_some() { "set" } else { "missing" };
                return Err(ConfigError(format!(
                    "Partial DID identity config — set all three or none: BINDU_GATEWAY_DID_SEED, BINDU_GATEWAY_AUTHOR, BINDU_GATEWAY_NAME. Got: seed={}, author={}, name={}",
                    word(&seed),
                    word(&author),
                    word(&name)
                )));
            }
        };
        let hydra = match (
            pick(ENV_HYDRA_ADMIN_URL, f.hydra.admin_url.clone()),
            pick(ENV_HYDRA_TOKEN_URL, f.hydra.token_url.clone()),
        ) {
            (None, None) => None,
            (Some(admin_url), Some(token_url)) => Some(HydraConfig {
                admin_url,
                token_url,
                scopes: pick(ENV_HYDRA_SCOPE, f.hydra.scope.clone())
                    .unwrap_or_else(|| DEFAULT_HYDRA_SCOPE.to_owned())
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            }),
            (admin, token) => {
                let word = |v: &Option<String>| if v.is_some() { "set" } else { "missing" };
                return Err(ConfigError(format!(
                    "Partial Hydra config — set both or neither: BINDU_GATEWAY_HYDRA_ADMIN_URL, BINDU_GATEWAY_HYDRA_TOKEN_URL. Got: admin={}, token={}",
                    word(&admin),
                    word(&token)
                )));
            }
        };
        // TLS (spec §1.1, §5.15) is not built in: refuse to start rather than silently serve
        // plain HTTP to someone who asked for HTTPS.
        let tls = [
            (
                "BINDU_GATEWAY_TLS_CERT",
                pick("BINDU_GATEWAY_TLS_CERT", f.tls.cert.clone()),
            ),
            (
                "BINDU_GATEWAY_TLS_KEY",
                pick("BINDU_GATEWAY_TLS_KEY", f.tls.key.clone()),
            ),
            (
                "BINDU_GATEWAY_TLS_CA",
                pick("BINDU_GATEWAY_TLS_CA", f.tls.ca.clone()),
            ),
        ];
        let set = tls.iter().filter(|(_, v)| v.is_some()).count();
        if set > 0 && set < 3 {
            return Err(ConfigError(
                "Partial TLS config — set all three or none: BINDU_GATEWAY_TLS_CERT, BINDU_GATEWAY_TLS_KEY, BINDU_GATEWAY_TLS_CA".to_owned(),
            ));
        }
        if let Some((_, Some(path))) = tls
            .iter()
            .find(|(_, v)| v.as_ref().is_some_and(|p| !Path::new(p).exists()))
        {
            return Err(ConfigError(format!("TLS file not found: {path}")));
        }
        if set == 3 {
            return Err(ConfigError(
                "config: BINDU_GATEWAY_TLS_CERT/KEY/CA are set, but this build of plangate does not terminate TLS; put a TLS proxy in front of it and unset them".to_owned(),
            ));
        }
        let peer_env = a2a
            .env_allowlist
            .iter()
            // `NAME@host[:port]` binds NAME to one peer; the value is read by NAME.
            .map(|entry| {
                entry
                    .split_once('@')
                    .map_or(entry.as_str(), |(name, _)| name)
            })
            .filter_map(|name| {
                env.get(name)
                    .map(|v| (name.to_owned(), SecretString::from(v.to_owned())))
            })
            .collect();

        Ok(Self {
            server: ServerConfig {
                hostname,
                port,
                sse_keepalive: (keepalive_secs > 0).then(|| Duration::from_secs(keepalive_secs)),
                max_body_bytes,
                shutdown_grace: Duration::from_secs(shutdown_grace_secs),
                max_concurrent_plans,
                max_json_values,
                max_json_depth,
                header_read_timeout,
                body_read_timeout,
                write_timeout,
                max_connections,
            },
            auth: AuthConfig { mode, tokens },
            llm: LlmConfig {
                max_response_bytes,
                base_url,
                api_key,
                fallback_models,
            },
            planner: PlannerConfig {
                model,
                file: planner_file,
                context_window,
                instructions: f.planner.instructions.unwrap_or_default(),
                // Without a planner file: temperature 0.3, top_p unset, 10 steps (spec §7.4).
                temperature: match &planner_settings {
                    Some(p) => p.temperature,
                    None => Some(0.3),
                },
                top_p: planner_settings.as_ref().and_then(|p| p.top_p),
                steps: planner_settings.as_ref().and_then(|p| p.steps),
                recipe_rules: planner_settings
                    .as_ref()
                    .map(|p| p.recipe_rules.clone())
                    .unwrap_or_default(),
                prompt: planner_settings.map(|p| p.prompt),
            },
            recipes: RecipesConfig {
                dir: recipes_dir,
                dir_explicit,
                deny,
            },
            plan: PlanConfig {
                default_timeout: Duration::from_millis(default_timeout_ms),
                idempotency_ttl: Duration::from_secs(idempotency_ttl_secs),
                max_agents,
                max_skills,
                max_concurrent_calls,
            },
            a2a,
            environment: env
                .get(ENV_NODE_ENV)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "development".to_owned()),
            peer_env,
            identity,
            hydra,
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
            ConfigError(format!(
                "config: {ENV_PORT} must be an integer between 1 and 65535 (got \"{raw}\")"
            ))
        })
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn positive(v: Option<i64>, key: &str) -> Result<Option<u64>, ConfigError> {
    match v {
        Some(v) if v > 0 => Ok(Some(v.unsigned_abs())),
        Some(v) => Err(ConfigError(format!(
            "config: {key} must be an integer greater than 0 (got {v})"
        ))),
        None => Ok(None),
    }
}

fn non_negative(v: Option<i64>, key: &str) -> Result<Option<u64>, ConfigError> {
    match v {
        Some(v) if v >= 0 => Ok(Some(v.unsigned_abs())),
        Some(v) => Err(ConfigError(format!(
            "config: {key} must be an integer of at least 0 (got {v})"
        ))),
        None => Ok(None),
    }
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
        assert_eq!(err.to_string(), "config: unknown key \"server.bogus\"");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
