//! The planner file (spec §7.4): markdown with YAML frontmatter whose body is the planner prompt
//! and whose keys tune the planner (`model`, `temperature`, `top_p`/`topP`, `steps`,
//! `permission.recipe`).

use std::path::Path;

use serde_json::Value;

use super::error::ConfigError;
use crate::recipe::Action;
use crate::recipe::frontmatter;

/// What a planner file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlannerFile {
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub steps: Option<u32>,
    /// `permission.recipe` rules in YAML order.
    pub recipe_rules: Vec<(String, Action)>,
    /// The body, trimmed.
    pub prompt: String,
}

impl PlannerFile {
    /// Reads and validates a planner file.
    ///
    /// # Errors
    /// `planner: invalid frontmatter in <path>: <detail>` and invalid permission actions.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Planner(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses planner-file text; `shown` names the file in errors.
    ///
    /// # Errors
    /// As [`PlannerFile::read`].
    pub fn parse(text: &str, shown: &str) -> Result<Self, ConfigError> {
        let invalid = |detail: &str| {
            ConfigError::Planner(format!("invalid frontmatter in {shown}: {detail}"))
        };
        let doc = frontmatter::split(text).map_err(|e| invalid(&e.detail))?;
        let map = frontmatter::parse_mapping(&doc.yaml).map_err(|e| invalid(&e.detail))?;
        let model = match map.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("model must be a string")),
        };
        let number = |key: &str| match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(invalid(&format!("{key} must be a number"))),
        };
        let temperature = number("temperature")?;
        let top_p = match number("top_p")? {
            Some(v) => Some(v),
            None => number("topP")?,
        };
        let steps = match map.get("steps") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_u64().and_then(|v| u32::try_from(v).ok()) {
                Some(v) if v > 0 => Some(v),
                _ => return Err(invalid("steps must be an integer greater than 0")),
            },
            Some(_) => return Err(invalid("steps must be an integer greater than 0")),
        };
        let mut recipe_rules = Vec::new();
        match map.get("permission") {
            None | Some(Value::Null) => {}
            Some(Value::Object(permission)) => match permission.get("recipe") {
                None | Some(Value::Null) => {}
                Some(Value::String(action)) => {
                    recipe_rules.push(("*".to_owned(), parse_action(action, "*")?))
                }
                Some(Value::Object(rules)) => {
                    for (pattern, action) in rules {
                        let action = action.as_str().unwrap_or_default();
                        recipe_rules.push((pattern.clone(), parse_action(action, pattern)?));
                    }
                }
                Some(_) => {
                    return Err(invalid(
                        "permission.recipe must be an action or a mapping of patterns to actions",
                    ));
                }
            },
            Some(_) => return Err(invalid("permission must be a mapping")),
        }
        Ok(Self {
            model,
            temperature,
            top_p,
            steps,
            recipe_rules,
            prompt: doc.body,
        })
    }
}

fn parse_action(action: &str, pattern: &str) -> Result<Action, ConfigError> {
    Action::parse(action).ok_or_else(|| {
        ConfigError::Conflict(format!(
            "permission: invalid action \"{action}\" for recipe pattern \"{pattern}\" (expected allow, deny or ask)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_keeps_rule_order() {
        let f = PlannerFile::parse(
            "---\nname: planner\nmode: primary\nmodel: openai/gpt-4o\ntemperature: 0.1\ntopP: 0.9\nsteps: 4\npermission:\n  agent_call: allow\n  recipe:\n    \"*\": allow\n    \"secret-*\": deny\n    draft?: ask\n---\n\nYou plan.\n",
            "p.md",
        )
        .unwrap();
        assert_eq!(f.model.as_deref(), Some("openai/gpt-4o"));
        assert_eq!(f.temperature, Some(0.1));
        assert_eq!(f.top_p, Some(0.9));
        assert_eq!(f.steps, Some(4));
        assert_eq!(
            f.recipe_rules,
            [
                ("*".to_owned(), Action::Allow),
                ("secret-*".to_owned(), Action::Deny),
                ("draft?".to_owned(), Action::Ask)
            ]
        );
        assert_eq!(f.prompt, "You plan.");
        let single =
            PlannerFile::parse("---\npermission:\n  recipe: deny\n---\nP", "p.md").unwrap();
        assert_eq!(single.recipe_rules, [("*".to_owned(), Action::Deny)]);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        assert_eq!(
            PlannerFile::parse("no fence", "agents/planner.md")
                .unwrap_err()
                .to_string(),
            "planner: invalid frontmatter in agents/planner.md: missing frontmatter"
        );
        assert_eq!(
            PlannerFile::parse("---\nsteps: 0\n---\n", "p.md")
                .unwrap_err()
                .to_string(),
            "planner: invalid frontmatter in p.md: steps must be an integer greater than 0"
        );
        assert_eq!(
            PlannerFile::parse("---\npermission:\n  recipe:\n    x: maybe\n---\n", "p.md")
                .unwrap_err()
                .to_string(),
            "permission: invalid action \"maybe\" for recipe pattern \"x\" (expected allow, deny or ask)"
        );
    }
}
