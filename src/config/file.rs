//! The optional TOML configuration file (spec §7.3). Every key is optional; unknown keys are boot
//! failures that name the dotted key, so a typo never silently falls back to a default.

use std::path::Path;

use serde::Deserialize;

use super::error::{ConfigError, Location};

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
            "metrics",
            "playground",
            "cors_origins",
        ],
    ),
    (
        "auth",
        &[
            "mode",
            "tokens",
            "keys_file",
            "jwt_jwks_url",
            "jwt_issuer",
            "jwt_audience",
            "jwt_jwks_cache_secs",
            "jwt_jwks_refetch_secs",
        ],
    ),
    (
        "llm",
        &[
            "base_url",
            "api_key",
            "fallback_models",
            "max_response_bytes",
            "cache_control",
        ],
    ),
    (
        "planner",
        &[
            "model",
            "file",
            "context_window",
            "instructions",
            "tool_discovery_threshold",
        ],
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
            "confirm_timeout_ms",
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
    ("catalog", &["file"]),
    (
        "a2a_server",
        &[
            "task_ttl_secs",
            "max_tasks",
            "max_context_turns",
            "max_message_bytes",
            "public_url",
        ],
    ),
    (
        "resume",
        &[
            "enabled",
            "grace_secs",
            "retention_secs",
            "max_bytes",
            "max_plans",
        ],
    ),
    (
        "sessions",
        &[
            "enabled",
            "ttl_secs",
            "max_turns",
            "max_per_token",
            "max_bytes",
        ],
    ),
    ("store", &["redis_url", "lease_ms"]),
    (
        "files",
        &[
            "max_file_bytes",
            "max_plan_bytes",
            "retention_secs",
            "max_total_bytes",
            "max_attachments",
            "inline_answer_bytes",
        ],
    ),
    ("openai", &["max_system_bytes"]),
    ("mcp", &["max_sessions", "session_ttl_secs"]),
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
    pub catalog: CatalogSection,
    pub a2a_server: A2aServerSection,
    pub openai: OpenAiSection,
    pub mcp: McpSection,
    pub resume: ResumeSection,
    pub sessions: SessionsSection,
    pub store: StoreSection,
    pub files: FilesSection,
    pub identity: IdentitySection,
    pub hydra: HydraSection,
    pub tls: TlsSection,
    /// Where each key was written (for error messages).
    #[serde(skip)]
    pub index: KeyIndex,
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
    pub metrics: Option<bool>,
    pub playground: Option<bool>,
    pub cors_origins: Option<Vec<String>>,
}

/// `[auth]`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AuthSection {
    pub mode: Option<String>,
    pub tokens: Option<Vec<String>>,
    pub keys_file: Option<String>,
    pub jwt_jwks_url: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub jwt_jwks_cache_secs: Option<i64>,
    pub jwt_jwks_refetch_secs: Option<i64>,
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
    /// `auto` (Anthropic models), `on` or `off`: cache breakpoints in planner requests.
    pub cache_control: Option<String>,
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
    /// Skills above which the planner finds skills on demand (`0` = never).
    pub tool_discovery_threshold: Option<i64>,
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
    pub confirm_timeout_ms: Option<i64>,
}

/// `[catalog]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CatalogSection {
    pub file: Option<String>,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StoreSection {
    pub redis_url: Option<String>,
    pub lease_ms: Option<i64>,
}

/// `[resume]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResumeSection {
    pub enabled: Option<bool>,
    pub grace_secs: Option<i64>,
    pub retention_secs: Option<i64>,
    pub max_bytes: Option<i64>,
    pub max_plans: Option<i64>,
}

/// `[files]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FilesSection {
    pub max_file_bytes: Option<i64>,
    pub max_plan_bytes: Option<i64>,
    pub retention_secs: Option<i64>,
    pub max_total_bytes: Option<i64>,
    pub max_attachments: Option<i64>,
    pub inline_answer_bytes: Option<i64>,
}

/// `[sessions]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionsSection {
    pub enabled: Option<bool>,
    pub ttl_secs: Option<i64>,
    pub max_turns: Option<i64>,
    pub max_per_token: Option<i64>,
    pub max_bytes: Option<i64>,
}

/// `[openai]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OpenAiSection {
    pub max_system_bytes: Option<i64>,
}

/// `[mcp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct McpSection {
    pub max_sessions: Option<i64>,
    pub session_ttl_secs: Option<i64>,
}

/// `[a2a_server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct A2aServerSection {
    pub task_ttl_secs: Option<i64>,
    pub max_tasks: Option<i64>,
    pub max_context_turns: Option<i64>,
    pub max_message_bytes: Option<i64>,
    pub public_url: Option<String>,
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
    /// Missing or unreadable file, invalid TOML, unknown keys and wrongly typed values, each
    /// with the file and line.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            problem: format!("cannot read {}: {e}", path.display()),
            location: None,
        })?;
        Self::parse_named(&text, &path.display().to_string())
    }

    /// Parses TOML text, rejecting unknown keys by their dotted name.
    ///
    /// # Errors
    /// Invalid TOML, unknown keys and wrongly typed values.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_named(text, "(inline)")
    }

    fn parse_named(text: &str, file: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                problem: format!("invalid TOML: {}", e.message().trim()),
                location: e
                    .span()
                    .map(|span| KeyIndex::new(file, text).location_of_offset(span.start)),
            })?;
        let index = KeyIndex::new(file, text);
        for (section, value) in &table {
            let Some((_, keys)) = KNOWN_KEYS.iter().find(|(name, _)| name == section) else {
                return Err(ConfigError::UnknownKey {
                    key: section.clone(),
                    location: index.location(section),
                });
            };
            let Some(inner) = value.as_table() else {
                return Err(ConfigError::Key {
                    key: section.clone(),
                    problem: "must be a table".to_owned(),
                    location: index.location(section),
                });
            };
            if let Some(key) = inner.keys().find(|k| !keys.contains(&k.as_str())) {
                let dotted = format!("{section}.{key}");
                return Err(ConfigError::UnknownKey {
                    location: index.location(&dotted),
                    key: dotted,
                });
            }
        }
        let mut parsed: Self = toml::from_str(text).map_err(|e: toml::de::Error| {
            let offset = e.span().map(|s| s.start);
            match offset.and_then(|o| index.key_at(o)) {
                Some(key) => ConfigError::Key {
                    key: key.to_owned(),
                    problem: format!("has the wrong type: {}", e.message().trim()),
                    location: index.location(key),
                },
                None => ConfigError::File {
                    problem: e.message().trim().to_owned(),
                    location: offset.map(|o| index.location_of_offset(o)),
                },
            }
        })?;
        parsed.index = index;
        Ok(parsed)
    }

    /// Where a dotted key (`server.port`) was written, if it was.
    #[must_use]
    pub fn location(&self, key: &str) -> Option<Location> {
        self.index.location(key)
    }
}

/// Where each key of a TOML file was written: dotted key → (line of the key, span of its value).
#[derive(Debug, Default, Clone)]
pub struct KeyIndex {
    file: String,
    lines: Vec<usize>,
    keys: Vec<(String, usize, std::ops::Range<usize>)>,
}

impl KeyIndex {
    /// Indexes `text` (already known to parse).
    fn new(file: &str, text: &str) -> Self {
        let lines = text
            .char_indices()
            .filter(|(_, c)| *c == '\n')
            .map(|(i, _)| i)
            .collect();
        let mut index = Self {
            file: file.to_owned(),
            lines,
            keys: Vec::new(),
        };
        if let Ok(table) = toml::de::DeTable::parse(text) {
            for (section, value) in table.get_ref() {
                let name: &str = section.get_ref();
                let line = index.line_at(section.span().start);
                index.keys.push((name.to_owned(), line, value.span()));
                if let Some(inner) = value.get_ref().as_table() {
                    for (key, v) in inner {
                        let inner_name: &str = key.get_ref();
                        let line = index.line_at(key.span().start);
                        index
                            .keys
                            .push((format!("{name}.{inner_name}"), line, v.span()));
                    }
                }
            }
        }
        index
    }

    /// The 1-based line of a byte offset.
    fn line_at(&self, offset: usize) -> usize {
        self.lines.partition_point(|&nl| nl < offset) + 1
    }

    /// Where a dotted key was written.
    #[must_use]
    pub fn location(&self, key: &str) -> Option<Location> {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, line, _)| Location {
                file: self.file.clone(),
                line: *line,
            })
    }

    /// The innermost key whose value holds a byte offset.
    fn key_at(&self, offset: usize) -> Option<&str> {
        self.keys
            .iter()
            .filter(|(_, _, span)| span.contains(&offset))
            .min_by_key(|(_, _, span)| span.len())
            .map(|(k, _, _)| k.as_str())
    }

    fn location_of_offset(&self, offset: usize) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line_at(offset),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../gateway.example.toml");

    #[test]
    fn the_example_file_names_every_key_and_loads() {
        for (section, keys) in KNOWN_KEYS {
            assert!(
                EXAMPLE.contains(&format!("[{section}]")),
                "[{section}] missing"
            );
            for key in *keys {
                let set = format!("\n{key} = ");
                let commented = format!("\n# {key} = ");
                assert!(
                    EXAMPLE.contains(&set) || EXAMPLE.contains(&commented),
                    "{section}.{key} is missing from gateway.example.toml"
                );
            }
        }
        let parsed = FileConfig::parse(EXAMPLE).unwrap();
        assert_eq!(parsed.server.port, Some(3774));
    }
}
