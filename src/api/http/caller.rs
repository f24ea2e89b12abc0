//! The caller of a request, as the route table's admission settled it before the door runs: who
//! it is, and what its key lets it use (plain data; the keys themselves live in `access`).

use std::sync::Arc;

use super::error::ApiError;
use crate::planner::TokenBudget;

/// Who is calling: everything the request starts belongs to its owner.
#[derive(Debug, Clone)]
pub struct Caller {
    owner: String,
    label: String,
    permissions: Permissions,
    /// Its key's `llm_tokens_per_day`, which its plans spend.
    budget: Option<Arc<dyn TokenBudget>>,
}

/// What a caller's key lets it use beyond the door it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// The key's name, when it is a key of the keys file.
    pub key: Option<String>,
    /// Server-side catalogs it may name; `None` = every one.
    pub catalogs: Option<Arc<[String]>>,
    /// Whether requests may bring their own `agents`.
    pub ad_hoc_agents: bool,
    /// Plans of the key at once (`max_concurrent_plans`).
    pub max_concurrent_plans: Option<u32>,
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            key: None,
            catalogs: None,
            ad_hoc_agents: true,
            max_concurrent_plans: None,
        }
    }
}

impl Caller {
    /// A caller named `label` in metrics and logs, with its key's permissions.
    #[must_use]
    pub fn with(owner: String, label: String, permissions: Permissions) -> Self {
        Self {
            owner,
            label,
            permissions,
            budget: None,
        }
    }

    /// The same caller, its plans spending `budget`.
    #[must_use]
    pub fn spending(mut self, budget: Option<Arc<dyn TokenBudget>>) -> Self {
        self.budget = budget;
        self
    }

    /// The budget the caller's plans spend, when its key has one.
    #[must_use]
    pub fn budget(&self) -> Option<Arc<dyn TokenBudget>> {
        self.budget.clone()
    }

    /// The owner id (the idempotency scope, the owner of tasks, sessions and resumable plans).
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The caller's name in metrics and logs (never its token or the token's hash).
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What the caller's key lets it use.
    #[must_use]
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// The caller's key and its `max_concurrent_plans`, for [`crate::run::Runs::place_for`].
    #[must_use]
    pub fn plan_limit(&self) -> Option<(&str, u32)> {
        Some((
            self.permissions.key.as_deref()?,
            self.permissions.max_concurrent_plans?,
        ))
    }

    /// Whether the caller may plan over server-side catalog `name`.
    ///
    /// # Errors
    /// 403 naming the catalog.
    pub fn may_use_catalog(&self, name: &str) -> Result<(), ApiError> {
        match &self.permissions.catalogs {
            Some(allowed) if !allowed.iter().any(|c| c == name) => {
                Err(ApiError::Forbidden(format!(
                    "key {:?} may not use catalog {name:?} (its catalogs: {})",
                    self.label,
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether the caller's request may bring its own `agents`.
    ///
    /// # Errors
    /// 403 naming `agents`.
    pub fn may_bring_agents(&self) -> Result<(), ApiError> {
        if self.permissions.ad_hoc_agents {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "key {:?} may not bring its own agents (ad_hoc_agents = false): name a catalog instead",
                self.label
            )))
        }
    }
}
