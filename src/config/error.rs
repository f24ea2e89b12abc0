//! Why a configuration cannot be used: every error names the environment variable or the TOML
//! key (with the file and line it was written on) and what is wrong with it.

/// Where a TOML key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    /// 1-based.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// ` (at file:line)` when the place is known.
fn at(location: Option<&Location>) -> String {
    location.map_or_else(String::new, |l| format!(" (at {l})"))
}

/// A configuration the gateway cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable's value cannot be used.
    #[error("config: {var} {problem}")]
    Env { var: String, problem: String },
    /// A TOML key's value cannot be used (wrong type, out of range).
    #[error("config: {key} {problem}{}", at(.location.as_ref()))]
    Key {
        key: String,
        problem: String,
        location: Option<Location>,
    },
    /// The TOML file has a key the gateway does not know (a typo never falls back to a default).
    #[error("config: unknown key \"{key}\"{}", at(.location.as_ref()))]
    UnknownKey {
        key: String,
        location: Option<Location>,
    },
    /// The TOML file cannot be read or is not TOML.
    #[error("config: {problem}{}", at(.location.as_ref()))]
    File {
        problem: String,
        location: Option<Location>,
    },
    /// The planner file cannot be read or its frontmatter is invalid.
    #[error("planner: {0}")]
    Planner(String),
    /// Settings that only work together are partly set, or a setting this build refuses.
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    /// A bad environment variable.
    pub(crate) fn env(var: &str, problem: impl Into<String>) -> Self {
        Self::Env {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}
