//! The keys file (`GATEWAY_KEYS_FILE`, TOML or JSON): one entry per caller, found by the SHA-256
//! of its token (the file never holds a token), with what it may use and how much. Validated at
//! boot like the catalogs: an unknown field or a bad value stops the boot naming the key and the
//! field. A past `expires_at` is accepted (that key is then refused with 401).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

/// A door a key may be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Plan,
    A2a,
    OpenAi,
    Mcp,
}

impl Door {
    /// Every door, in the keys file's spelling.
    pub const ALL: [Self; 4] = [Self::Plan, Self::A2a, Self::OpenAi, Self::Mcp];

    /// The keys file's name of the door.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::A2a => "a2a",
            Self::OpenAi => "openai",
            Self::Mcp => "mcp",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

/// What one key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The key's name in the file: its owner id and its label in metrics and logs.
    pub name: String,
    /// Server-side catalogs it may name; `None` = every one (`["*"]`, the default).
    pub catalogs: Option<Vec<String>>,
    /// Whether its requests may bring their own `agents` (default `true`).
    pub ad_hoc_agents: bool,
    /// Doors it may use (default: all).
    pub doors: Vec<Door>,
    pub requests_per_minute: Option<u32>,
    pub max_concurrent_plans: Option<u32>,
    pub llm_tokens_per_day: Option<u64>,
    pub expires_at: Option<SystemTime>,
}

impl KeyPolicy {
    /// Whether the key has expired.
    #[must_use]
    pub fn expired(&self) -> bool {
        self.expires_at.is_some_and(|t| t <= SystemTime::now())
    }

    /// Whether the key may use `door`.
    #[must_use]
    pub fn opens(&self, door: Door) -> bool {
        self.doors.contains(&door)
    }
}

/// The keys of the file, each with the digest of its token, and the `[jwt]` block.
#[derive(Debug, Clone, Default)]
pub struct KeyBook {
    pub(crate) keys: Vec<([u8; 32], Arc<KeyPolicy>)>,
    /// What every JWT caller may do (its catalogs come from its token; counters per `sub`).
    pub(crate) jwt: Option<KeyPolicy>,
}

/// Why the keys file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("GATEWAY_KEYS_FILE {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("GATEWAY_KEYS_FILE {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    keys: BTreeMap<String, Entry>,
    jwt: Option<JwtEntry>,
}

/// The `[jwt]` block: a key's fields without its token, catalogs (the token's claims say
/// those) and expiry (the token's `exp`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtEntry {
    ad_hoc_agents: Option<bool>,
    doors: Option<Vec<String>>,
    requests_per_minute: Option<u32>,
    max_concurrent_plans: Option<u32>,
    llm_tokens_per_day: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    sha256: String,
    catalogs: Option<Vec<String>>,
    ad_hoc_agents: Option<bool>,
    doors: Option<Vec<String>>,
    requests_per_minute: Option<u32>,
    max_concurrent_plans: Option<u32>,
    llm_tokens_per_day: Option<u64>,
    expires_at: Option<String>,
}

impl KeyBook {
    /// Reads and checks the keys file; `catalogs` are the server-side catalogs' names.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or a key has an unknown field or a bad value.
    pub fn load(path: &Path, catalogs: &[String]) -> Result<Self, KeysError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |message: String| KeysError::Invalid {
            path: path.to_owned(),
            message,
        };
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let value: serde_json::Value = if is_toml {
            toml::from_str::<toml::Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
                .map_err(|e| invalid(format!("not TOML: {e}")))?
        } else {
            serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?
        };
        Self::from_value(&value, catalogs).map_err(invalid)
    }

    /// Checks a parsed keys document.
    ///
    /// # Errors
    /// What is wrong, naming the key and the field.
    pub fn from_value(value: &serde_json::Value, catalogs: &[String]) -> Result<Self, String> {
        let shape: FileShape =
            serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string() {
                path if path == "." => e.inner().to_string(),
                path => format!("{path}: {}", e.inner()),
            })?;
        let mut keys = Vec::with_capacity(shape.keys.len());
        for (name, entry) in shape.keys {
            let field = |f: &str| format!("keys.{name}.{f}");
            let digest = parse_digest(&entry.sha256).ok_or_else(|| {
                format!(
                    "{}: must be the SHA-256 of the token in 64 lowercase hex digits (`plangate keys new {name}` prints one)",
                    field("sha256")
                )
            })?;
            if let Some((other, _)) = keys
                .iter()
                .find(|(d, _): &&([u8; 32], Arc<KeyPolicy>)| *d == digest)
                .map(|(_, p)| (p.name.clone(), ()))
            {
                return Err(format!(
                    "{}: the same token as keys.{other}",
                    field("sha256")
                ));
            }
            let catalogs = match entry.catalogs {
                None => None,
                Some(list) if list.iter().any(|c| c == "*") => None,
                Some(list) => {
                    if let Some(unknown) = list.iter().find(|c| !catalogs.contains(c)) {
                        return Err(format!(
                            "{}: unknown catalog {unknown:?} (known: {})",
                            field("catalogs"),
                            if catalogs.is_empty() {
                                "none; GATEWAY_CATALOG names none".to_owned()
                            } else {
                                catalogs.join(", ")
                            }
                        ));
                    }
                    Some(list)
                }
            };
            let doors = doors_of(entry.doors, &field)?;
            at_least_one(
                entry.requests_per_minute,
                entry.max_concurrent_plans,
                entry.llm_tokens_per_day,
                &field,
            )?;
            let expires_at = match entry.expires_at {
                None => None,
                Some(raw) => Some(humantime::parse_rfc3339_weak(&raw).map_err(|_| {
                    format!(
                        "{}: must be an RFC 3339 time such as 2027-06-30T00:00:00Z (got {raw:?})",
                        field("expires_at")
                    )
                })?),
            };
            keys.push((
                digest,
                Arc::new(KeyPolicy {
                    name,
                    catalogs,
                    ad_hoc_agents: entry.ad_hoc_agents.unwrap_or(true),
                    doors,
                    requests_per_minute: entry.requests_per_minute,
                    max_concurrent_plans: entry.max_concurrent_plans,
                    llm_tokens_per_day: entry.llm_tokens_per_day,
                    expires_at,
                }),
            ));
        }
        let jwt = match shape.jwt {
            None => None,
            Some(entry) => {
                let field = |f: &str| format!("jwt.{f}");
                let doors = doors_of(entry.doors, &field)?;
                at_least_one(
                    entry.requests_per_minute,
                    entry.max_concurrent_plans,
                    entry.llm_tokens_per_day,
                    &field,
                )?;
                Some(KeyPolicy {
                    name: "jwt".to_owned(),
                    catalogs: Some(Vec::new()),
                    ad_hoc_agents: entry.ad_hoc_agents.unwrap_or(true),
                    doors,
                    requests_per_minute: entry.requests_per_minute,
                    max_concurrent_plans: entry.max_concurrent_plans,
                    llm_tokens_per_day: entry.llm_tokens_per_day,
                    expires_at: None,
                })
            }
        };
        Ok(Self { keys, jwt })
    }

    /// Whether the file holds no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the file has a `[jwt]` block.
    #[must_use]
    pub fn has_jwt_block(&self) -> bool {
        self.jwt.is_some()
    }

    /// What a JWT caller `sub` may do: the `[jwt]` block (no limits without one), with the
    /// catalogs of its token (`None` = every one); its counters are its own.
    #[must_use]
    pub fn jwt_policy(&self, sub: &str, catalogs: Option<Vec<String>>) -> KeyPolicy {
        let template = self.jwt.clone().unwrap_or_else(|| KeyPolicy {
            name: String::new(),
            catalogs: None,
            ad_hoc_agents: true,
            doors: Door::ALL.to_vec(),
            requests_per_minute: None,
            max_concurrent_plans: None,
            llm_tokens_per_day: None,
            expires_at: None,
        });
        KeyPolicy {
            name: format!("jwt:{sub}"),
            catalogs,
            ..template
        }
    }
}

/// The `doors` of a key (default: all), each known.
fn doors_of(
    doors: Option<Vec<String>>,
    field: &dyn Fn(&str) -> String,
) -> Result<Vec<Door>, String> {
    match doors {
        None => Ok(Door::ALL.to_vec()),
        Some(list) => list
            .iter()
            .map(|d| {
                Door::parse(d).ok_or_else(|| {
                    format!(
                        "{}: unknown door {d:?} (known: plan, a2a, openai, mcp)",
                        field("doors")
                    )
                })
            })
            .collect(),
    }
}

/// A limit that is written is at least 1 (leaving it out means no limit).
fn at_least_one(
    requests_per_minute: Option<u32>,
    max_concurrent_plans: Option<u32>,
    llm_tokens_per_day: Option<u64>,
    field: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    for (f, v) in [
        ("requests_per_minute", requests_per_minute.map(u64::from)),
        ("max_concurrent_plans", max_concurrent_plans.map(u64::from)),
        ("llm_tokens_per_day", llm_tokens_per_day),
    ] {
        if v == Some(0) {
            return Err(format!(
                "{}: must be at least 1 (leave it out for no limit)",
                field(f)
            ));
        }
    }
    Ok(())
}

fn parse_digest(hex_text: &str) -> Option<[u8; 32]> {
    if hex_text.len() != 64
        || !hex_text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let bytes = hex::decode(hex_text).ok()?;
    bytes.try_into().ok()
}

/// A fresh random token and the block of the keys file for it (`plangate keys new NAME`).
///
/// # Errors
/// The system's random source failed, or the name cannot be a TOML key as written.
pub fn new_key(name: &str) -> Result<(String, String), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{name:?}: a key name is letters, digits, '-' and '_'"
        ));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let token = format!("pg_{}", hex::encode(bytes));
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    let block = format!(
        "[keys.{name}]\nsha256 = \"{digest}\"\ncatalogs = [\"*\"]\nad_hoc_agents = true\n# doors = [\"plan\", \"a2a\", \"openai\", \"mcp\"]\n# requests_per_minute = 60\n# max_concurrent_plans = 4\n# llm_tokens_per_day = 200000\n# expires_at = \"2027-06-30T00:00:00Z\"\n"
    );
    Ok((token, block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn digest(t: &str) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()))
    }

    #[test]
    fn a_bad_field_is_named_with_its_key() {
        let known = vec!["ops".to_owned()];
        let err = |v: serde_json::Value| KeyBook::from_value(&v, &known).unwrap_err();
        let unknown = err(json!({"keys": {"app": {"sha256": digest("t"), "color": "red"}}}));
        assert!(
            unknown.starts_with("keys.app") && unknown.contains("unknown field `color`"),
            "{unknown}"
        );
        assert!(
            err(json!({"keys": {"app": {"sha256": "ABC"}}}))
                .starts_with("keys.app.sha256: must be")
        );
        assert!(
            err(json!({"keys": {"app": {"sha256": digest("t"), "catalogs": ["nope"]}}}))
                .contains("unknown catalog \"nope\" (known: ops)")
        );
        assert!(
            err(json!({"keys": {"app": {"sha256": digest("t"), "doors": ["ftp"]}}}))
                .starts_with("keys.app.doors: unknown door")
        );
        assert!(
            err(json!({"keys": {"app": {"sha256": digest("t"), "requests_per_minute": 0}}}))
                .starts_with("keys.app.requests_per_minute: must be at least 1")
        );
        assert!(
            err(json!({"keys": {"app": {"sha256": digest("t"), "requests_per_minute": "many"}}}))
                .starts_with("keys.app.requests_per_minute: invalid type")
        );
        assert!(
            err(json!({"keys": {"app": {"sha256": digest("t"), "expires_at": "soon"}}}))
                .starts_with("keys.app.expires_at: must be an RFC 3339 time")
        );
        assert!(
            err(json!({"keys": {"a": {"sha256": digest("t")}, "b": {"sha256": digest("t")}}}))
                .contains("the same token as keys.a")
        );
    }

    #[test]
    fn the_jwt_block_takes_limits_but_no_token_or_catalogs() {
        let err = |v: serde_json::Value| KeyBook::from_value(&v, &[]).unwrap_err();
        let with_token = err(json!({"jwt": {"sha256": digest("t")}}));
        assert!(
            with_token.starts_with("jwt") && with_token.contains("unknown field `sha256`"),
            "{with_token}"
        );
        assert!(err(json!({"jwt": {"catalogs": ["*"]}})).contains("unknown field `catalogs`"));
        assert!(
            err(json!({"jwt": {"llm_tokens_per_day": 0}}))
                .starts_with("jwt.llm_tokens_per_day: must be at least 1")
        );
        let book = KeyBook::from_value(
            &json!({"jwt": {"doors": ["plan"], "requests_per_minute": 5}}),
            &[],
        )
        .unwrap();
        let alice = book.jwt_policy("alice", Some(vec!["ops".into()]));
        assert_eq!(alice.name, "jwt:alice");
        assert_eq!(alice.catalogs, Some(vec!["ops".to_owned()]));
        assert_eq!(alice.doors, vec![Door::Plan]);
        assert_eq!(alice.requests_per_minute, Some(5));
        let open = KeyBook::default().jwt_policy("bob", None);
        assert_eq!((open.doors.len(), open.requests_per_minute), (4, None));
    }

    #[test]
    fn defaults_open_everything_and_a_past_expiry_loads() {
        let book = KeyBook::from_value(
            &json!({"keys": {"app": {"sha256": digest("t"), "expires_at": "2020-01-01T00:00:00Z"}}}),
            &[],
        )
        .unwrap();
        let policy = &book.keys[0].1;
        assert_eq!(policy.catalogs, None);
        assert!(policy.ad_hoc_agents);
        assert_eq!(policy.doors, Door::ALL.to_vec());
        assert!(policy.expired());
    }

    #[test]
    fn a_new_key_block_loads_and_matches_its_token() {
        let (token, block) = new_key("reporting-app").unwrap();
        let value: toml::Value = toml::from_str(&block).unwrap();
        let book = KeyBook::from_value(&serde_json::to_value(value).unwrap(), &[]).unwrap();
        let expected: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
        assert_eq!(book.keys[0].0, expected);
        assert_eq!(book.keys[0].1.name, "reporting-app");
        assert!(new_key("bad name").is_err());
    }
}
