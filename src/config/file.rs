//! The optional TOML configuration file (spec §7.3). Every key is optional; unknown keys are boot
//! failures that name the dotted key, so a typo never silently falls back to a default.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// Keys accepted per section; anything else is `config: unknown key "<section.key>"`.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "server",
        &[
            "hostname",
            "port",
            "sse_keepalive_secs",
            "max_body_bytes",
            "shutdown_grace_secs",
            "max_concurrent_plans",
            "max_json_values",
            "max_json_depth",
            "header_read_timeout_ms",
            "body_read_timeout_ms",
            "write_timeout_ms",
            "max_connections",
        ],
    ),
    ("auth", &["mode", "tokens"]),
    (
        "llm",
        &[
            "base_url",
            "api_key",
            "fallback_models",
            "max_response_bytes",
        ],
    ),
    (
        "planner",
        &["model", "file", "context_window", "instructions"],
    ),
    ("recipes", &["dir", "deny"]),
    (
        "plan",
        &[
            "default_timeout_ms",
            "idempotency_ttl_secs",
            "max_agents",
            "max_skills",
            "max_concurrent_calls",
        ],
    ),
    (
        "a2a",
        &[
            "env_allowlist",
            "request_timeout_ms",
            "call_budget_ms",
            "card_budget_ms",
            "card_ttl_secs",
            "card_failure_ttl_secs",
            "did_resolve_timeout_ms",
            "cancel_timeout_ms",
            "stream_grace_ms",
            "block_private_endpoints",
            "max_response_bytes",
            "max_output_chars",
            "max_connections",
        ],
    ),
    ("identity", &["did_seed", "author", "name"]),
    ("hydra", &["admin_url", "token_url", "scope"]),
    ("tls", &["cert", "key", "ca"]),
];

/// The TOML file as written; merged into [`super::Config`] by `Config::load`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub server: ServerSection,
    pub auth: AuthSection,
    pub llm: LlmSection,
    pub planner: PlannerSection,
    pub recipes: RecipesSection,
    pub plan: PlanSection,
    pub a2a: A2aSection,
    pub identity: IdentitySection,
    pub hydra: HydraSection,
    pub tls: TlsSection,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ServerSection {
    pub hostname: Option<String>,
    pub port: Option<i64>,
    pub sse_keepalive_secs: Option<i64>,
    pub max_body_bytes: Option<i64>,
    pub shutdown_grace_secs: Option<i64>,
    pub max_concurrent_plans: Option<i64>,
    pub max_json_values: Option<i64>,
    pub max_json_depth: Option<i64>,
    pub header_read_timeout_ms: Option<i64>,
    pub body_read_timeout_ms: Option<i64>,
    pub write_timeout_ms: Option<i64>,
    pub max_connections: Option<i64>,
}

/// `[auth]`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AuthSection {
    pub mode: Option<String>,
    pub tokens: Option<Vec<String>>,
}

impl std::fmt::Debug for AuthSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSection")
            .field("mode", &self.mode)
            .field(
                "tokens",
                &self
                    .tokens
                    .as_ref()
                    .map(|t| format!("[{} redacted]", t.len())),
            )
            .finish()
    }
}

/// `[llm]`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LlmSection {
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub fallback_models: Option<Vec<String>>,
    pub max_response_bytes: Option<i64>,
}

impl std::fmt::Debug for LlmSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSection")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("fallback_models", &self.fallback_models)
            .finish()
    }
}

/// `[planner]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlannerSection {
    pub model: Option<String>,
    pub file: Option<String>,
    pub context_window: Option<i64>,
    pub instructions: Option<Vec<String>>,
}

/// `[recipes]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RecipesSection {
    pub dir: Option<String>,
    pub deny: Option<Vec<String>>,
}

/// `[plan]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PlanSection {
    pub default_timeout_ms: Option<i64>,
    pub idempotency_ttl_secs: Option<i64>,
    pub max_agents: Option<i64>,
    pub max_skills: Option<i64>,
    pub max_concurrent_calls: Option<i64>,
}

/// `[a2a]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct A2aSection {
    pub env_allowlist: Option<Vec<String>>,
    pub request_timeout_ms: Option<i64>,
    pub call_budget_ms: Option<i64>,
    pub card_budget_ms: Option<i64>,
    pub card_ttl_secs: Option<i64>,
    pub card_failure_ttl_secs: Option<i64>,
    pub did_resolve_timeout_ms: Option<i64>,
    pub cancel_timeout_ms: Option<i64>,
    pub stream_grace_ms: Option<i64>,
    pub block_private_endpoints: Option<bool>,
    pub max_response_bytes: Option<i64>,
    pub max_output_chars: Option<i64>,
    pub max_connections: Option<i64>,
}

/// `[identity]` (used by the DID identity feature).
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct IdentitySection {
    pub did_seed: Option<String>,
    pub author: Option<String>,
    pub name: Option<String>,
}

impl std::fmt::Debug for IdentitySection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySection")
            .field("did_seed", &self.did_seed.as_ref().map(|_| "[redacted]"))
            .field("author", &self.author)
            .field("name", &self.name)
            .finish()
    }
}

/// `[hydra]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HydraSection {
    pub admin_url: Option<String>,
    pub token_url: Option<String>,
    pub scope: Option<String>,
}

/// `[tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TlsSection {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub ca: Option<String>,
}

impl FileConfig {
    /// Reads and checks a TOML file.
    ///
    /// # Errors
    /// Missing or unreadable file, invalid TOML, unknown keys and wrongly typed values.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("config: cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| {
            if e.0.starts_with("config: unknown key") {
                e
            } else {
                ConfigError(format!("{} (in {})", e.0, path.display()))
            }
        })
    }

    /// Parses TOML text, rejecting unknown keys by their dotted name.
    ///
    /// # Errors
    /// Invalid TOML, unknown keys and wrongly typed values.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError(format!("config: invalid TOML: {}", e.message()))
        })?;
        for (section, value) in &table {
            let Some((_, keys)) = KNOWN_KEYS.iter().find(|(name, _)| name == section) else {
                return Err(ConfigError(format!("config: unknown key \"{section}\"")));
            };
            let Some(inner) = value.as_table() else {
                return Err(ConfigError(format!(
                    "config: \"{section}\" must be a table"
                )));
            };
            if let Some(key) = inner.keys().find(|k| !keys.contains(&k.as_str())) {
                return Err(ConfigError(format!(
                    "config: unknown key \"{section}.{key}\""
                )));
            }
        }
        toml::from_str(text)
            .map_err(|e: toml::de::Error| ConfigError(format!("config: {}", e.message())))
    }
}
