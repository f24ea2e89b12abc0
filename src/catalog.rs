//! Server-side catalogs (`GATEWAY_CATALOG`): named agent lists the operator keeps in one file, so
//! callers name a catalog instead of shipping endpoints and credentials in every request.
//!
//! ```json
//! {"catalogs": {"default": {"description": "…", "agents": [<the /plan agents format>]}}}
//! ```
//!
//! The file is JSON, or TOML with the same structure when its name ends in `.toml`. Every
//! catalog is validated at boot with the rules of a `/plan` request (fields, tool-name
//! collisions, `plan.max_agents` / `plan.max_skills`), and peer credentials may only be named by
//! environment variable (`bearer_env`, `did_signed.tokenEnvVar`): a literal token in the file is a
//! boot error, so the file holds no secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::PlanConfig;
use crate::planner::request::Agent;
use crate::planner::tools::check_collisions;
use crate::planner::validate::{Issue, validate_agents};

/// The name of the catalog used when a caller names none (A2A, OpenAI and MCP doors).
pub const DEFAULT_CATALOG: &str = "default";

/// One named catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub name: String,
    pub description: String,
    pub agents: Vec<Agent>,
}

/// Every catalog of the file, by name (sorted).
#[derive(Debug, Clone, Default)]
pub struct Catalogs {
    by_name: BTreeMap<String, Catalog>,
}

/// Why the catalog file cannot be used; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("catalog: {path} is not valid {format}: {message}")]
    Syntax {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("catalog: {path}: {}", render(issues))]
    Invalid { path: PathBuf, issues: Vec<Issue> },
}

fn render(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("{}: {}", i.path, i.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Catalogs {
    /// Reads and validates the catalog file.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or a catalog breaks a rule (named with its field).
    pub fn load(path: &Path, limits: &PlanConfig) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let value: Value = if is_toml {
            toml::from_str::<toml::Value>(&text)
                .map_err(|e| e.to_string())
                .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
                .map_err(|message| CatalogError::Syntax {
                    path: path.to_owned(),
                    format: "TOML",
                    message,
                })?
        } else {
            serde_json::from_str(&text).map_err(|e| CatalogError::Syntax {
                path: path.to_owned(),
                format: "JSON",
                message: e.to_string(),
            })?
        };
        Self::from_value(&value, limits).map_err(|issues| CatalogError::Invalid {
            path: path.to_owned(),
            issues,
        })
    }

    /// Validates a parsed catalog document.
    ///
    /// # Errors
    /// Every problem found, with its path (`catalogs.<name>.agents.0.endpoint`).
    pub fn from_value(value: &Value, limits: &PlanConfig) -> Result<Self, Vec<Issue>> {
        let issue = |path: &str, message: String| Issue {
            path: path.to_owned(),
            message,
        };
        let Some(catalogs) = value.get("catalogs").and_then(Value::as_object) else {
            return Err(vec![issue(
                "catalogs",
                "expected an object of named catalogs: {\"catalogs\": {\"default\": {\"agents\": […]}}}"
                    .to_owned(),
            )]);
        };
        let mut issues = Vec::new();
        let mut by_name = BTreeMap::new();
        for (name, entry) in catalogs {
            let path = format!("catalogs.{name}");
            if !is_catalog_name(name) {
                issues.push(issue(
                    &path,
                    "a catalog name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit".to_owned(),
                ));
                continue;
            }
            let Some(entry) = entry.as_object() else {
                issues.push(issue(
                    &path,
                    "expected an object with \"agents\"".to_owned(),
                ));
                continue;
            };
            let description = match entry.get("description") {
                None => String::new(),
                Some(Value::String(d)) => d.clone(),
                Some(_) => {
                    issues.push(issue(
                        &format!("{path}.description"),
                        "expected a string".to_owned(),
                    ));
                    String::new()
                }
            };
            let mut filter = crate::planner::filter::SkillFilter::default();
            for (key, list) in [
                ("include", &mut filter.include),
                ("exclude", &mut filter.exclude),
            ] {
                match entry.get(key) {
                    None => {}
                    Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                        list.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                    Some(_) => issues.push(issue(
                        &format!("{path}.{key}"),
                        "expected an array of agent/skill globs".to_owned(),
                    )),
                }
            }
            let agents_path = format!("{path}.agents");
            let Some(raw_agents) = entry.get("agents") else {
                issues.push(issue(
                    &agents_path,
                    "Invalid input: expected array, received undefined".to_owned(),
                ));
                continue;
            };
            let secrets = literal_secrets(raw_agents, &agents_path);
            let found = secrets.len();
            issues.extend(secrets);
            match validate_agents(raw_agents, &agents_path) {
                Ok(mut agents) if found == 0 => {
                    // The catalog's own filter: no request can widen it.
                    filter.apply(&mut agents);
                    let mut problems = Vec::new();
                    let skills: usize = agents.iter().map(|a| a.skills.len()).sum();
                    if agents.len() > limits.max_agents {
                        problems.push(format!(
                            "at most {} agents per catalog (plan.max_agents), got {}",
                            limits.max_agents,
                            agents.len()
                        ));
                    }
                    if skills > limits.max_skills {
                        problems.push(format!(
                            "at most {} skills per catalog (plan.max_skills), got {skills}",
                            limits.max_skills
                        ));
                    }
                    if let Err(collision) = check_collisions(&agents) {
                        problems.push(collision);
                    }
                    if problems.is_empty() {
                        by_name.insert(
                            name.clone(),
                            Catalog {
                                name: name.clone(),
                                description,
                                agents,
                            },
                        );
                    } else {
                        issues.extend(problems.into_iter().map(|m| issue(&agents_path, m)));
                    }
                }
                Ok(_) => {}
                Err(found) => issues.extend(found),
            }
        }
        if issues.is_empty() {
            Ok(Self { by_name })
        } else {
            Err(issues)
        }
    }

    /// The catalog with this name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Catalog> {
        self.by_name.get(name)
    }

    /// Every catalog, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Catalog> {
        self.by_name.values()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The names, for "known catalogs: …" messages (`none` when there are none).
    #[must_use]
    pub fn known(&self) -> String {
        if self.by_name.is_empty() {
            "none (no catalog file: GATEWAY_CATALOG or catalog.file)".to_owned()
        } else {
            self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// The catalog a request names, else [`DEFAULT_CATALOG`]: the one lookup every door makes.
    ///
    /// # Errors
    /// No such catalog; the error names the known ones.
    pub fn find(&self, name: Option<&str>) -> Result<&Catalog, UnknownCatalog> {
        self.get(name.unwrap_or(DEFAULT_CATALOG))
            .ok_or_else(|| UnknownCatalog {
                name: name.map(str::to_owned),
                known: self.known(),
            })
    }
}

/// A request named a catalog that does not exist (or named none, and there is no default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCatalog {
    /// The name asked for; `None` when the request named none.
    pub name: Option<String>,
    /// The known names (see [`Catalogs::known`]).
    pub known: String,
}

impl UnknownCatalog {
    /// What went wrong, with `noun` for what the door calls a catalog (a catalog, an A2A skill):
    /// `unknown catalog "x"; known: a, b`.
    #[must_use]
    pub fn describe(&self, noun: &str) -> String {
        match &self.name {
            Some(name) => format!("unknown {noun} \"{name}\"; known: {}", self.known),
            None => format!(
                "no {noun} named and no \"{DEFAULT_CATALOG}\" catalog; known: {}",
                self.known
            ),
        }
    }
}

/// Catalog names become skill ids and model names (`plangate/<name>`).
fn is_catalog_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A literal credential in the file: `auth.type = "bearer"` (with its `token`).
fn literal_secrets(agents: &Value, path: &str) -> Vec<Issue> {
    agents
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, agent)| agent["auth"]["type"] == "bearer")
        .map(|(i, _)| Issue {
            path: format!("{path}.{i}.auth"),
            message: "a literal token cannot sit in the catalog file: name an environment variable \
                      with {\"type\":\"bearer_env\",\"envVar\":\"…\"} (listed in GATEWAY_PEER_ENV_ALLOWLIST)"
                .to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn limits() -> PlanConfig {
        crate::config::Config::test_default().plan
    }

    #[test]
    fn a_valid_file_gives_its_catalogs_by_name() {
        let catalogs = Catalogs::from_value(
            &json!({"catalogs": {
                "default": {"description": "Everything", "agents": [
                    {"name": "a", "endpoint": "http://127.0.0.1:1", "skills": [{"id": "s"}],
                     "auth": {"type": "bearer_env", "envVar": "A_TOKEN"}}]},
                "empty": {"agents": []}}}),
            &limits(),
        )
        .unwrap();
        assert_eq!(catalogs.known(), "default, empty");
        let default = catalogs.get(DEFAULT_CATALOG).unwrap();
        assert_eq!(default.description, "Everything");
        assert_eq!(default.agents[0].skills[0].id, "s");
    }

    #[test]
    fn a_catalogs_own_filter_narrows_it_and_a_request_cannot_widen_it() {
        let catalogs = Catalogs::from_value(
            &json!({"catalogs": {"default": {"include": ["*/*"], "exclude": ["pay/*"], "agents": [
                {"name": "docs", "endpoint": "http://127.0.0.1:1", "skills": [{"id": "search"}, {"id": "write"}]},
                {"name": "pay", "endpoint": "http://127.0.0.1:2", "skills": [{"id": "charge"}]}]},
                "bad": {"include": "docs/*", "agents": []}}}),
            &limits(),
        )
        .unwrap_err();
        assert_eq!(issues_paths(&catalogs), ["catalogs.bad.include"]);
        let catalogs = Catalogs::from_value(
            &json!({"catalogs": {"default": {"exclude": ["pay/*"], "agents": [
                {"name": "docs", "endpoint": "http://127.0.0.1:1", "skills": [{"id": "search"}, {"id": "write"}]},
                {"name": "pay", "endpoint": "http://127.0.0.1:2", "skills": [{"id": "charge"}]}]}}}),
            &limits(),
        )
        .unwrap();
        let mut agents = catalogs.get(DEFAULT_CATALOG).unwrap().agents.clone();
        assert_eq!(agents.len(), 1, "pay is excluded");
        // A request that includes pay/* gets nothing more; its own narrowing applies.
        crate::planner::filter::SkillFilter {
            include: vec!["pay/*".into(), "docs/search".into()],
            exclude: Vec::new(),
        }
        .apply(&mut agents);
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].skills.len(), 1);
        assert_eq!(agents[0].skills[0].id, "search");
    }

    fn issues_paths(issues: &[Issue]) -> Vec<String> {
        issues.iter().map(|i| i.path.clone()).collect()
    }

    #[test]
    fn every_problem_is_named_with_its_catalog_and_field() {
        let issues = Catalogs::from_value(
            &json!({"catalogs": {
                "x": {"agents": [{"name": "a", "endpoint": "ftp://nope", "skills": []}]},
                "secret": {"agents": [{"name": "b", "endpoint": "http://h", "auth": {"type": "bearer", "token": "t"}}]},
                "dup": {"agents": [
                    {"name": "a", "endpoint": "http://h", "skills": [{"id": "s"}]},
                    {"name": "a", "endpoint": "http://i", "skills": [{"id": "s"}]}]},
                "bad name!": {"agents": []},
                "noagents": {}}}),
            &limits(),
        )
        .unwrap_err();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert!(
            paths.contains(&"catalogs.x.agents.0.endpoint"),
            "{issues:?}"
        );
        assert!(
            paths.contains(&"catalogs.secret.agents.0.auth"),
            "{issues:?}"
        );
        assert!(paths.contains(&"catalogs.dup.agents"), "{issues:?}");
        assert!(paths.contains(&"catalogs.bad name!"), "{issues:?}");
        assert!(paths.contains(&"catalogs.noagents.agents"), "{issues:?}");
        let secret = issues.iter().find(|i| i.path.contains("secret")).unwrap();
        assert!(secret.message.contains("bearer_env"), "{secret:?}");
        assert!(!render(&issues).contains("\"t\""));
    }

    #[test]
    fn a_file_without_catalogs_says_what_is_expected() {
        let issues = Catalogs::from_value(&json!({"default": {}}), &limits()).unwrap_err();
        assert_eq!(issues[0].path, "catalogs");
    }
}
