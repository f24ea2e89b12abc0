//! The rules of a plan request: the validator that turns the `/plan` body (a generic JSON value)
//! into the planner's [`PlanRequest`], collecting every problem (not only the first) with the
//! exact paths and messages of spec §1.5. Server-side catalogs are checked with the same rules
//! ([`validate_agents`]).

use std::collections::HashMap;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::config::{MAX_PLAN_TIMEOUT_MS, MIN_PLAN_TIMEOUT_MS};
use crate::identity::decode_public_key;
use crate::planner::files::{Attachment, AttachmentContent};
use crate::planner::request::{
    Agent, HistoryTurn, PeerAuth, PlanRequest, Preferences, Protocol, Role, Skill, Trust,
};

/// Top-level fields of a `/plan` body (spec §1.5, and `catalog`); a reader skips the others
/// unread.
pub const PLAN_FIELDS: [&str; 9] = [
    "question",
    "agents",
    "preferences",
    "session_id",
    "history",
    "prior_summary",
    "prior_task_ids",
    "catalog",
    "attachments",
];

/// One validation problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

/// Validates a parsed JSON body.
///
/// # Errors
/// Every problem found, in schema order.
pub fn validate(body: &Value) -> Result<PlanRequest, Vec<Issue>> {
    validate_body(body).map(|b| b.request)
}

/// A validated `/plan` body: the plan, and the server-side catalog it names (whose agents the
/// door puts before the request's own).
#[derive(Debug, Clone)]
pub struct PlanBody {
    pub request: PlanRequest,
    pub catalog: Option<String>,
}

/// Validates a parsed JSON body, `catalog` included.
///
/// # Errors
/// Every problem found, in schema order (`catalog` last).
pub fn validate_body(body: &Value) -> Result<PlanBody, Vec<Issue>> {
    let mut v = Validator::default();
    let request = v.plan(body);
    let catalog = match body {
        Value::Object(obj) => match v.string(obj, "catalog", "catalog", false) {
            Ok(Some(name)) if name.is_empty() => {
                v.push("catalog", "catalog must be a non-empty string");
                None
            }
            Ok(name) => name,
            Err(()) => None,
        },
        _ => None,
    };
    match request {
        Some(request) if v.issues.is_empty() => Ok(PlanBody { request, catalog }),
        _ => Err(v.issues),
    }
}

/// Validates an `agents` array found at `path` (a catalog file's), with the rules of a request.
///
/// # Errors
/// Every problem found, paths under `path`.
pub fn validate_agents(value: &Value, path: &str) -> Result<Vec<Agent>, Vec<Issue>> {
    let mut v = Validator::default();
    let agents = match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, a)| v.agent(a, &format!("{path}.{i}")))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<_>>>(),
        other => {
            v.wrong_type(path, "array", Some(other));
            None
        }
    };
    match agents {
        Some(agents) if v.issues.is_empty() => Ok(agents),
        _ => Err(v.issues),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[derive(Default)]
struct Validator {
    issues: Vec<Issue>,
}

/// Field-level results: `Err(())` means an issue was recorded.
type Field<T> = Result<T, ()>;

impl Validator {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        let path = if path.is_empty() {
            "(root)".to_owned()
        } else {
            path.to_owned()
        };
        self.issues.push(Issue {
            path,
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, path: &str, expected: &str, got: Option<&Value>) {
        let received = got.map_or("undefined", type_name);
        self.push(
            path,
            format!("Invalid input: expected {expected}, received {received}"),
        );
    }

    fn string(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        required: bool,
    ) -> Field<Option<String>> {
        match obj.get(key) {
            None if !required => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            other => {
                self.wrong_type(path, "string", other);
                Err(())
            }
        }
    }

    fn boolean(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Field<Option<bool>> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            other => {
                self.wrong_type(path, "boolean", other);
                Err(())
            }
        }
    }

    fn string_list(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Field<Vec<String>> {
        match obj.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            self.wrong_type(&format!("{path}.{i}"), "string", Some(other));
                            ok = false;
                        }
                    }
                }
                if ok { Ok(out) } else { Err(()) }
            }
            other => {
                self.wrong_type(path, "array", other);
                Err(())
            }
        }
    }

    /// An integer field: JSON numbers with no fractional part count as integers.
    fn integer(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Field<Option<i128>> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(i) = n.as_i64() {
                    Ok(Some(i128::from(i)))
                } else if let Some(u) = n.as_u64() {
                    Ok(Some(i128::from(u)))
                } else if n
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e30)
                {
                    #[expect(
                        clippy::cast_possible_truncation,
                        reason = "checked integral and bounded"
                    )]
                    Ok(n.as_f64().map(|f| f as i128))
                } else {
                    self.push(path, "Invalid input: expected int, received number");
                    Err(())
                }
            }
            other => {
                self.wrong_type(path, "number", other);
                Err(())
            }
        }
    }

    fn enumeration<T: Copy>(
        &mut self,
        value: Option<&Value>,
        path: &str,
        options: &[(&str, T)],
        required: bool,
    ) -> Field<Option<T>> {
        let listed = || {
            options
                .iter()
                .map(|(name, _)| format!("\"{name}\""))
                .collect::<Vec<_>>()
                .join("|")
        };
        match value {
            None if !required => Ok(None),
            Some(Value::String(s)) => match options.iter().find(|(name, _)| name == s) {
                Some((_, v)) => Ok(Some(*v)),
                None => {
                    self.push(
                        path,
                        format!("Invalid option: expected one of {}", listed()),
                    );
                    Err(())
                }
            },
            _ => {
                self.push(
                    path,
                    format!("Invalid option: expected one of {}", listed()),
                );
                Err(())
            }
        }
    }

    fn plan(&mut self, body: &Value) -> Option<PlanRequest> {
        let Value::Object(obj) = body else {
            self.wrong_type("", "object", Some(body));
            return None;
        };
        let question = match self.string(obj, "question", "question", true) {
            Ok(Some(q)) if q.is_empty() => {
                self.push("question", "question must be a non-empty string");
                None
            }
            Ok(q) => q,
            Err(()) => None,
        };
        let agents = match obj.get("agents") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => {
                let parsed: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, a)| self.agent(a, &format!("agents.{i}")))
                    .collect();
                parsed.into_iter().collect::<Option<Vec<_>>>()
            }
            other => {
                self.wrong_type("agents", "array", other);
                None
            }
        };
        let preferences = match obj.get("preferences") {
            None => Some(Preferences::default()),
            Some(Value::Object(p)) => self.preferences(p),
            other => {
                self.wrong_type("preferences", "object", other);
                None
            }
        };
        let session_id = self
            .string(obj, "session_id", "session_id", false)
            .ok()
            .flatten();
        let history = match obj.get("history") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => {
                let parsed: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| self.history_turn(t, &format!("history.{i}")))
                    .collect();
                parsed.into_iter().collect::<Option<Vec<_>>>()
            }
            other => {
                self.wrong_type("history", "array", other);
                None
            }
        };
        let prior_summary = self
            .string(obj, "prior_summary", "prior_summary", false)
            .ok()
            .flatten();
        let prior_task_ids = match obj.get("prior_task_ids") {
            None => Some(HashMap::new()),
            Some(Value::Object(map)) => {
                let mut out = HashMap::with_capacity(map.len());
                let mut ok = true;
                for (k, v) in map {
                    match v {
                        Value::String(s) => {
                            out.insert(k.clone(), s.clone());
                        }
                        other => {
                            self.wrong_type(&format!("prior_task_ids.{k}"), "string", Some(other));
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            other => {
                self.wrong_type("prior_task_ids", "object", other);
                None
            }
        };
        let attachments = match obj.get("attachments") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, a)| self.attachment(a, &format!("attachments.{i}")))
                .collect::<Vec<_>>()
                .into_iter()
                .collect::<Option<Vec<_>>>(),
            other => {
                self.wrong_type("attachments", "array", other);
                None
            }
        };
        Some(PlanRequest {
            question: question?,
            agents: agents?,
            preferences: preferences?,
            session_id,
            history: history?,
            prior_summary,
            prior_task_ids: prior_task_ids?,
            instructions: None,
            threads: std::collections::HashMap::new(),
            fold_turns: 0,
            attachments: attachments?,
            used_skills: Vec::new(),
        })
    }

    /// One attachment: `name`, `media_type`, and either `data` (base64) or `url` (http/https).
    fn attachment(&mut self, value: &Value, path: &str) -> Option<Attachment> {
        let Value::Object(obj) = value else {
            self.wrong_type(path, "object", Some(value));
            return None;
        };
        let name = match self.string(obj, "name", &format!("{path}.name"), true) {
            Ok(Some(n)) if n.trim().is_empty() => {
                self.push(&format!("{path}.name"), "name must be a non-empty string");
                None
            }
            Ok(n) => n,
            Err(()) => None,
        };
        let media_type = match self.string(obj, "media_type", &format!("{path}.media_type"), true) {
            Ok(Some(m)) if !m.contains('/') => {
                self.push(
                    &format!("{path}.media_type"),
                    "media_type must be a media type such as \"image/png\"",
                );
                None
            }
            Ok(m) => m,
            Err(()) => None,
        };
        let data = self
            .string(obj, "data", &format!("{path}.data"), false)
            .ok()?;
        let url = self
            .string(obj, "url", &format!("{path}.url"), false)
            .ok()?;
        let content = match (data, url) {
            (Some(data), None) => match crate::planner::files::decode_base64(&data) {
                Some(bytes) => Some(AttachmentContent::Bytes(bytes.into())),
                None => {
                    self.push(&format!("{path}.data"), "data must be base64 text");
                    None
                }
            },
            (None, Some(url)) => {
                if url.starts_with("https://") || url.starts_with("http://") {
                    Some(AttachmentContent::Url(url))
                } else {
                    self.push(&format!("{path}.url"), "url must be an http or https URL");
                    None
                }
            }
            _ => {
                self.push(
                    path,
                    "an attachment has either data (base64) or url, not both",
                );
                None
            }
        };
        Some(Attachment {
            name: name?,
            media_type: media_type?,
            content: content?,
        })
    }

    fn preferences(&mut self, p: &Map<String, Value>) -> Option<Preferences> {
        let mut ok = self
            .string(p, "response_format", "preferences.response_format", false)
            .is_ok();
        match self.integer(p, "max_hops", "preferences.max_hops") {
            Ok(Some(v)) if v <= 0 => {
                self.push(
                    "preferences.max_hops",
                    "Too small: expected number to be >0",
                );
                ok = false;
            }
            Ok(_) => {}
            Err(()) => ok = false,
        }
        let timeout_ms = match self.integer(p, "timeout_ms", "preferences.timeout_ms") {
            Ok(Some(v)) if v < i128::from(MIN_PLAN_TIMEOUT_MS) => {
                self.push(
                    "preferences.timeout_ms",
                    "timeout_ms must be at least 1000 ms",
                );
                ok = false;
                None
            }
            Ok(Some(v)) if v > i128::from(MAX_PLAN_TIMEOUT_MS) => {
                self.push(
                    "preferences.timeout_ms",
                    "timeout_ms cannot exceed 21600000 ms (6 hours)",
                );
                ok = false;
                None
            }
            Ok(v) => v.and_then(|v| u64::try_from(v).ok()),
            Err(()) => {
                ok = false;
                None
            }
        };
        let max_steps = match self.integer(p, "max_steps", "preferences.max_steps") {
            Ok(Some(v)) if v <= 0 => {
                self.push(
                    "preferences.max_steps",
                    "Too small: expected number to be >0",
                );
                ok = false;
                None
            }
            Ok(v) => v.map(|v| u32::try_from(v).unwrap_or(u32::MAX)),
            Err(()) => {
                ok = false;
                None
            }
        };
        let interactive = match self.boolean(p, "interactive", "preferences.interactive") {
            Ok(v) => v.unwrap_or(false),
            Err(()) => {
                ok = false;
                false
            }
        };
        let skills = match p.get("skills") {
            None => crate::planner::filter::SkillFilter::default(),
            Some(Value::Object(s)) => {
                let include = self.string_list(s, "include", "preferences.skills.include");
                let exclude = self.string_list(s, "exclude", "preferences.skills.exclude");
                match (include, exclude) {
                    (Ok(include), Ok(exclude)) => {
                        crate::planner::filter::SkillFilter { include, exclude }
                    }
                    _ => {
                        ok = false;
                        crate::planner::filter::SkillFilter::default()
                    }
                }
            }
            other => {
                self.wrong_type("preferences.skills", "object", other);
                ok = false;
                crate::planner::filter::SkillFilter::default()
            }
        };
        ok.then_some(Preferences {
            timeout_ms,
            max_steps,
            interactive,
            skills,
        })
    }

    fn agent(&mut self, value: &Value, path: &str) -> Option<Agent> {
        let Value::Object(a) = value else {
            self.wrong_type(path, "object", Some(value));
            return None;
        };
        let name = self.string(a, "name", &format!("{path}.name"), true);
        let endpoint = match self.string(a, "endpoint", &format!("{path}.endpoint"), true) {
            Ok(Some(e)) => {
                let valid = url::Url::parse(&e)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
                if valid {
                    Ok(e)
                } else {
                    self.push(&format!("{path}.endpoint"), "Invalid URL");
                    Err(())
                }
            }
            _ => Err(()),
        };
        let protocol = self.enumeration(
            a.get("protocol"),
            &format!("{path}.protocol"),
            &[
                ("0.3", Protocol::V03),
                ("1.0", Protocol::V10),
                ("auto", Protocol::Auto),
            ],
            false,
        );
        let auth = match a.get("auth") {
            None => Ok(PeerAuth::None),
            Some(Value::Object(o)) => self.peer_auth(o, &format!("{path}.auth")),
            other => {
                self.wrong_type(&format!("{path}.auth"), "object", other);
                Err(())
            }
        };
        let trust = match a.get("trust") {
            None => Ok(Trust::default()),
            Some(Value::Object(o)) => self.trust(o, &format!("{path}.trust")),
            other => {
                self.wrong_type(&format!("{path}.trust"), "object", other);
                Err(())
            }
        };
        let skills = match a.get("skills") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => {
                let parsed: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| self.skill(s, &format!("{path}.skills.{i}")))
                    .collect();
                parsed.into_iter().collect::<Option<Vec<_>>>()
            }
            other => {
                self.wrong_type(&format!("{path}.skills"), "array", other);
                None
            }
        };
        let confirm = self.boolean(a, "confirm", &format!("{path}.confirm"));
        Some(Agent {
            confirm: confirm.ok()?.unwrap_or(false),
            name: name.ok()??,
            endpoint: endpoint.ok()?,
            protocol: protocol.ok()?.unwrap_or(Protocol::Auto),
            auth: auth.ok()?,
            trust: trust.ok()?,
            skills: skills?,
        })
    }

    fn peer_auth(&mut self, o: &Map<String, Value>, path: &str) -> Field<PeerAuth> {
        #[derive(Clone, Copy)]
        enum Kind {
            None,
            Bearer,
            BearerEnv,
            DidSigned,
        }
        let kind = self.enumeration(
            o.get("type"),
            &format!("{path}.type"),
            &[
                ("none", Kind::None),
                ("bearer", Kind::Bearer),
                ("bearer_env", Kind::BearerEnv),
                ("did_signed", Kind::DidSigned),
            ],
            true,
        )?;
        match kind {
            Some(Kind::None) | None => Ok(PeerAuth::None),
            Some(Kind::Bearer) => {
                let token = self.string(o, "token", &format!("{path}.token"), true)?;
                Ok(PeerAuth::Bearer {
                    token: SecretString::from(token.unwrap_or_default()),
                })
            }
            Some(Kind::BearerEnv) => {
                let env_var = self.string(o, "envVar", &format!("{path}.envVar"), true)?;
                Ok(PeerAuth::BearerEnv {
                    env_var: env_var.unwrap_or_default(),
                })
            }
            Some(Kind::DidSigned) => {
                let token_env_var =
                    self.string(o, "tokenEnvVar", &format!("{path}.tokenEnvVar"), false)?;
                Ok(PeerAuth::DidSigned { token_env_var })
            }
        }
    }

    fn trust(&mut self, o: &Map<String, Value>, path: &str) -> Field<Trust> {
        let verify_did = self.boolean(o, "verifyDID", &format!("{path}.verifyDID"));
        let pinned_did = self.string(o, "pinnedDID", &format!("{path}.pinnedDID"), false);
        let key_path = format!("{path}.pinnedPublicKey");
        let pinned_public_key = match self.string(o, "pinnedPublicKey", &key_path, false) {
            Ok(Some(k)) => match decode_public_key(&k) {
                Some(bytes) => Ok(Some(bytes)),
                None => {
                    self.push(
                        &key_path,
                        "pinnedPublicKey must be the base58 encoding of a 32-byte Ed25519 public key",
                    );
                    Err(())
                }
            },
            Ok(None) => Ok(None),
            Err(()) => Err(()),
        };
        let require_verified =
            self.boolean(o, "requireVerified", &format!("{path}.requireVerified"));
        let require_verified = require_verified?.unwrap_or(false);
        Ok(Trust {
            verify_did: verify_did?.unwrap_or(false) || require_verified,
            pinned_did: pinned_did?,
            pinned_public_key: pinned_public_key?,
            require_verified,
        })
    }

    fn skill(&mut self, value: &Value, path: &str) -> Option<Skill> {
        let Value::Object(s) = value else {
            self.wrong_type(path, "object", Some(value));
            return None;
        };
        let id = self.string(s, "id", &format!("{path}.id"), true);
        let description = self.string(s, "description", &format!("{path}.description"), false);
        let input_schema = s
            .get("inputSchema")
            .map(crate::planner::request::InputSchema::new);
        let output_modes = self.string_list(s, "outputModes", &format!("{path}.outputModes"));
        let tags = self.string_list(s, "tags", &format!("{path}.tags"));
        let examples = self.string_list(s, "examples", &format!("{path}.examples"));
        let confirm = self.boolean(s, "confirm", &format!("{path}.confirm"));
        Some(Skill {
            confirm: confirm.ok()?.unwrap_or(false),
            id: id.ok()??,
            description: description.ok()?,
            input_schema,
            output_modes: output_modes.ok()?,
            tags: tags.ok()?,
            examples: examples.ok()?,
        })
    }

    fn history_turn(&mut self, value: &Value, path: &str) -> Option<HistoryTurn> {
        let Value::Object(t) = value else {
            self.wrong_type(path, "object", Some(value));
            return None;
        };
        let role = self.enumeration(
            t.get("role"),
            &format!("{path}.role"),
            &[("user", Role::User), ("assistant", Role::Assistant)],
            true,
        );
        let parts = match t.get("parts") {
            Some(Value::Array(items)) if items.is_empty() => {
                self.push(
                    &format!("{path}.parts"),
                    "Too small: expected array to have >=1 items",
                );
                None
            }
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}.parts.{i}");
                    let Value::Object(part) = item else {
                        self.wrong_type(&p, "object", Some(item));
                        ok = false;
                        continue;
                    };
                    let kind = self.enumeration(
                        part.get("type"),
                        &format!("{p}.type"),
                        &[("text", ())],
                        true,
                    );
                    let text = self.string(part, "text", &format!("{p}.text"), true);
                    match (kind, text) {
                        (Ok(_), Ok(Some(text))) => out.push(text),
                        _ => ok = false,
                    }
                }
                ok.then_some(out)
            }
            other => {
                self.wrong_type(&format!("{path}.parts"), "array", other);
                None
            }
        };
        Some(HistoryTurn {
            role: role.ok()??,
            parts: parts?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issues(body: &Value) -> Vec<(String, String)> {
        validate(body)
            .unwrap_err()
            .into_iter()
            .map(|i| (i.path, i.message))
            .collect()
    }

    #[test]
    fn empty_object_reports_missing_question() {
        assert_eq!(
            issues(&json!({})),
            [(
                "question".to_owned(),
                "Invalid input: expected string, received undefined".to_owned()
            )]
        );
    }

    #[test]
    fn non_object_body_is_a_root_issue() {
        assert_eq!(
            issues(&json!([1])),
            [(
                "(root)".to_owned(),
                "Invalid input: expected object, received array".to_owned()
            )]
        );
    }

    #[test]
    fn all_problems_are_collected_in_schema_order() {
        let got = issues(&json!({
            "question": "",
            "agents": [{"name": "a", "endpoint": "ftp://x"}, {"endpoint": "http://x", "protocol": "2", "skills": [{"id": 1}]}],
            "preferences": {"timeout_ms": 10, "max_steps": 0, "max_hops": 1.5},
            "history": [{"role": "bot", "parts": []}],
            "prior_task_ids": {"a": 1}
        }));
        let want: Vec<(String, String)> = [
            ("question", "question must be a non-empty string"),
            ("agents.0.endpoint", "Invalid URL"),
            (
                "agents.1.name",
                "Invalid input: expected string, received undefined",
            ),
            (
                "agents.1.protocol",
                "Invalid option: expected one of \"0.3\"|\"1.0\"|\"auto\"",
            ),
            (
                "agents.1.skills.0.id",
                "Invalid input: expected string, received number",
            ),
            (
                "preferences.max_hops",
                "Invalid input: expected int, received number",
            ),
            (
                "preferences.timeout_ms",
                "timeout_ms must be at least 1000 ms",
            ),
            (
                "preferences.max_steps",
                "Too small: expected number to be >0",
            ),
            (
                "history.0.role",
                "Invalid option: expected one of \"user\"|\"assistant\"",
            ),
            (
                "history.0.parts",
                "Too small: expected array to have >=1 items",
            ),
            (
                "prior_task_ids.a",
                "Invalid input: expected string, received number",
            ),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn null_is_a_wrong_type_and_timeout_upper_bound_is_checked() {
        let got = issues(&json!({"question": null, "preferences": {"timeout_ms": 21_600_001}}));
        assert_eq!(got[0].1, "Invalid input: expected string, received null");
        assert_eq!(got[1].1, "timeout_ms cannot exceed 21600000 ms (6 hours)");
    }

    #[test]
    fn auth_union_and_pinned_key_are_checked() {
        let got = issues(&json!({"question": "q", "agents": [
            {"name": "a", "endpoint": "http://h", "auth": {"type": "magic"}},
            {"name": "b", "endpoint": "http://h", "auth": {"type": "bearer"}, "trust": {"pinnedPublicKey": "abc"}}
        ]}));
        assert_eq!(
            got[0],
            (
                "agents.0.auth.type".to_owned(),
                "Invalid option: expected one of \"none\"|\"bearer\"|\"bearer_env\"|\"did_signed\""
                    .to_owned()
            )
        );
        assert_eq!(got[1].0, "agents.1.auth.token");
        assert_eq!(got[2].0, "agents.1.trust.pinnedPublicKey");
    }

    #[test]
    fn valid_request_parses_with_defaults_and_ignores_unknown_keys() {
        let r = validate(&json!({
            "question": " ", "extra": 1,
            "agents": [{"name": "", "endpoint": "https://h/a2a/", "skills": [{"id": "s", "input_schema": 5, "inputSchema": null}], "trust": {"requireVerified": true}}],
            "preferences": {"maxSteps": "x", "max_steps": 3.0}
        }))
        .unwrap();
        assert_eq!(r.question, " ");
        assert_eq!(r.agents[0].protocol, Protocol::Auto);
        assert!(r.agents[0].trust.verify_did);
        assert_eq!(
            r.agents[0].skills[0]
                .input_schema
                .as_ref()
                .map(crate::planner::request::InputSchema::value),
            Some(Value::Null)
        );
        assert_eq!(r.preferences.max_steps, Some(3));
    }
}
