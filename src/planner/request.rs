//! What a plan is asked to do: the question, the catalog of peers and their skills, the
//! conversation so far. Every door (`/plan`, A2A, OpenAI, MCP) reads its own wire format into these
//! types; the planner reads nothing else.

use std::collections::HashMap;

use secrecy::SecretString;
use serde_json::Value;
use serde_json::value::RawValue;

/// A validated `/plan` request.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub question: String,
    pub agents: Vec<Agent>,
    pub preferences: Preferences,
    /// The caller's correlation tag, echoed as `external_session_id`.
    pub session_id: Option<String>,
    pub history: Vec<HistoryTurn>,
    pub prior_summary: Option<String>,
    /// Agent name → remote task id of an earlier turn (spec §3.10).
    pub prior_task_ids: HashMap<String, String>,
    /// The caller's own instructions (the OpenAI door's system messages), appended to the
    /// system prompt of this plan only. The door bounds their size.
    pub instructions: Option<String>,
    /// What a stored conversation remembers of each agent, by agent name (server-side
    /// sessions): the `contextId` to send and a task left waiting for the user.
    pub threads: HashMap<String, AgentThread>,
    /// How many leading `history` turns this plan must fold into the summary
    /// (`sessions.max_turns`), whatever their size.
    pub fold_turns: usize,
    /// Files the client attached (`attachments`), kept as files of the plan when it starts.
    pub attachments: Vec<crate::planner::files::Attachment>,
    /// `(agent, skill)` pairs earlier turns of a stored conversation called, first use first: a
    /// plan that finds skills on demand offers them from its first step.
    pub used_skills: Vec<(String, String)>,
}

/// One agent's side of a stored conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentThread {
    /// The `contextId` the agent last answered with (its own choice, or the one it was sent).
    pub context_id: Option<String>,
    /// A task the agent left `input-required`: the next call to the agent answers it.
    pub waiting_task_id: Option<String>,
}

impl PlanRequest {
    /// A plan of `question` over `agents` with default preferences and no earlier context.
    #[must_use]
    pub fn question(question: String, agents: Vec<Agent>) -> Self {
        Self {
            question,
            agents,
            preferences: Preferences::default(),
            session_id: None,
            history: Vec::new(),
            prior_summary: None,
            prior_task_ids: HashMap::new(),
            instructions: None,
            threads: HashMap::new(),
            fold_turns: 0,
            attachments: Vec::new(),
            used_skills: Vec::new(),
        }
    }
}

/// One catalog entry: a remote A2A peer.
#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub endpoint: String,
    pub protocol: Protocol,
    pub auth: PeerAuth,
    pub trust: Trust,
    pub skills: Vec<Skill>,
    /// Every skill of the agent needs the user's yes before it is called (`"confirm": true`).
    pub confirm: bool,
}

/// The A2A dialect requested for a peer (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V03,
    V10,
    Auto,
}

/// How the gateway authenticates to a peer (spec §5.13).
#[derive(Debug, Clone)]
pub enum PeerAuth {
    None,
    Bearer { token: SecretString },
    BearerEnv { env_var: String },
    DidSigned { token_env_var: Option<String> },
}

/// Signature expectations for a peer (spec §6.4).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub verify_did: bool,
    pub pinned_did: Option<String>,
    pub pinned_public_key: Option<[u8; 32]>,
    pub require_verified: bool,
}

/// One skill of a peer; becomes one tool.
#[derive(Debug, Clone)]
pub struct Skill {
    pub id: String,
    pub description: Option<String>,
    pub input_schema: Option<InputSchema>,
    pub output_modes: Vec<String>,
    pub tags: Vec<String>,
    /// Example requests (A2A's `AgentSkill.examples`): read by `find_skills`, never sent.
    pub examples: Vec<String>,
    /// The skill needs the user's yes before it is called (`"confirm": true`).
    pub confirm: bool,
}

/// Per-request preferences.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    pub timeout_ms: Option<u64>,
    pub max_steps: Option<u32>,
    /// A peer's question (`input-required`) is passed to the client, whose answer goes back to
    /// the peer on the same task (`"interactive": true`).
    pub interactive: bool,
    /// `preferences.skills`: which of the catalog's skills the plan may use.
    pub skills: SkillFilter,
}

/// Which skills a plan may use: `include` globs over `agent/skill` (empty: every one) minus
/// `exclude` ones (applied by [`crate::planner::filter`]).
#[derive(Debug, Clone, Default)]
pub struct SkillFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// One earlier conversation turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTurn {
    pub role: Role,
    pub parts: Vec<String>,
}

/// Who spoke a history turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// A skill's `inputSchema`, kept as its compact JSON text: the plan only ever sends it to the LLM
/// and compiles it for a skill that gets called. Held as a tree of `Value`s (and copied into the
/// plan's tools), the schemas of a 120-skill catalog took most of the ~1.1 MiB such an open plan
/// held (`plangate-bench big-catalog`).
#[derive(Debug, Clone)]
pub struct InputSchema {
    /// The schema as compact JSON, shared with the plan's tool.
    pub json: std::sync::Arc<Box<RawValue>>,
    /// Whether it is a JSON object.
    pub is_object: bool,
    /// Whether it describes an object: `type` is `"object"`, or there is no `type` but there are
    /// `properties` (spec §3.2.4).
    pub object_schema: bool,
}

impl InputSchema {
    /// Keeps `schema` as text.
    #[must_use]
    pub fn new(schema: &Value) -> Self {
        let object_schema = match schema.get("type") {
            Some(t) => t == "object",
            None => schema.get("properties").is_some(),
        };
        Self {
            json: std::sync::Arc::new(
                serde_json::value::to_raw_value(schema).unwrap_or_else(|_| null_json()),
            ),
            is_object: schema.is_object(),
            object_schema: schema.is_object() && object_schema,
        }
    }

    /// The schema as a JSON value.
    #[must_use]
    pub fn value(&self) -> Value {
        serde_json::from_str(self.json.get()).unwrap_or(Value::Null)
    }
}

/// `null` as raw JSON.
fn null_json() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_default()
}
