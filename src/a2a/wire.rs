//! A2A payloads as plangate reads them: tolerant of both dialects (v0.3 `kind` tags and v1.0
//! kind-less parts), of snake_case keys (Bindu) and of missing optional fields (spec §5.5). Only
//! what the gateway uses is kept; `data` payloads and `metadata` are never rewritten.

use serde_json::{Map, Value};

/// A peer's reply to a send or poll.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Task(Task),
    Message(Message),
}

impl Reply {
    /// The `contextId` the peer answered with.
    #[must_use]
    pub fn context_id(&self) -> Option<&str> {
        match self {
            Self::Task(t) => t.context_id.as_deref(),
            Self::Message(m) => m.context_id.as_deref(),
        }
    }
}

/// A remote task snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    /// Normalised state (spec §5.6).
    pub state: TaskState,
    pub status_message: Option<Message>,
    pub artifacts: Vec<Artifact>,
    pub history: Vec<Message>,
    /// The conversation the peer filed the task under (`contextId`): the one it was sent, or
    /// one of its own choosing.
    pub context_id: Option<String>,
}

/// A message (result, status message or history entry).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: String,
    pub parts: Vec<Part>,
    /// The message's `contextId`, when it has one.
    pub context_id: Option<String>,
}

/// A task artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub artifact_id: Option<String>,
    pub parts: Vec<Part>,
}

/// A message or artifact part.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text {
        text: String,
        metadata: Option<Map<String, Value>>,
    },
    Data(Value),
    File(FilePart),
}

/// A file part in either dialect: v0.3 `{"kind":"file","file":{"name","mimeType","bytes"|"uri"}}`
/// (Bindu: `mime_type`), v1.0 `{"raw"|"url","mediaType","filename"}`. The bytes stay base64 text
/// here; whoever keeps the file decodes them.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePart {
    /// The file's name (`name` / `filename`), when the peer gave one.
    pub name: Option<String>,
    /// `mimeType` / `mediaType`, when given and not empty.
    pub media_type: Option<String>,
    pub content: FileContent,
    /// A `text` a peer put beside the file (spec §5.10 shows it), kept for the envelope.
    pub text: Option<String>,
}

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Inline, as the peer's base64 text (v0.3 `bytes`, v1.0 `raw`).
    Base64(String),
    /// At the peer's address (v0.3 `uri`, v1.0 `url`); the gateway never fetches it.
    Uri(String),
    /// Neither (a text-only "file").
    Empty,
}

impl FilePart {
    /// Length of the inline base64 text (what the file adds to a response's size).
    #[must_use]
    pub fn inline_len(&self) -> usize {
        match &self.content {
            FileContent::Base64(b) => b.len(),
            FileContent::Uri(_) | FileContent::Empty => 0,
        }
    }
}

/// A file sent to a peer as a file part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    pub name: String,
    pub media_type: String,
    pub content: OutgoingContent,
}

/// What a sent file part carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingContent {
    /// Inline bytes (v0.3 `file.bytes`, v1.0 `raw`, base64 on the wire).
    Bytes(bytes::Bytes),
    /// An address the peer fetches itself (v0.3 `file.uri`, v1.0 `url`).
    Uri(String),
}

/// Classes of task states (spec §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateClass {
    Terminal,
    NeedsAction,
    InProgress,
}

/// A remote task's state, normalised once where answers are parsed: v0.3 spells
/// `input-required`, v1.0 `TASK_STATE_INPUT_REQUIRED`; `cancelled` is read as `canceled` and
/// `unspecified` as `unknown`. A state outside the A2A vocabulary keeps its (normalised) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Submitted,
    Working,
    InputRequired,
    AuthRequired,
    PaymentRequired,
    TrustVerificationRequired,
    Completed,
    Failed,
    Canceled,
    Rejected,
    Unknown,
    Other(Box<str>),
}

impl TaskState {
    /// Reads any spelling of a state.
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        let lower = raw.to_ascii_lowercase();
        let stripped = lower.strip_prefix("task_state_").unwrap_or(&lower);
        let dashed = stripped.replace('_', "-");
        match dashed.as_str() {
            "submitted" => Self::Submitted,
            "working" => Self::Working,
            "input-required" => Self::InputRequired,
            "auth-required" => Self::AuthRequired,
            "payment-required" => Self::PaymentRequired,
            "trust-verification-required" => Self::TrustVerificationRequired,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            "rejected" => Self::Rejected,
            "unknown" | "unspecified" => Self::Unknown,
            _ => Self::Other(dashed.into_boxed_str()),
        }
    }

    /// The v0.3 spelling clients see (`remote_state`, `task.status`).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Submitted => "submitted",
            Self::Working => "working",
            Self::InputRequired => "input-required",
            Self::AuthRequired => "auth-required",
            Self::PaymentRequired => "payment-required",
            Self::TrustVerificationRequired => "trust-verification-required",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Rejected => "rejected",
            Self::Unknown => "unknown",
            Self::Other(text) => text,
        }
    }

    /// Terminal, waiting for the caller, or still running.
    #[must_use]
    pub fn class(&self) -> StateClass {
        match self {
            Self::Completed | Self::Failed | Self::Canceled | Self::Rejected => {
                StateClass::Terminal
            }
            Self::InputRequired
            | Self::AuthRequired
            | Self::PaymentRequired
            | Self::TrustVerificationRequired => StateClass::NeedsAction,
            Self::Submitted | Self::Working | Self::Unknown | Self::Other(_) => {
                StateClass::InProgress
            }
        }
    }

    /// Whether this state ends polling (terminal or needs action).
    #[must_use]
    pub fn is_settled(&self) -> bool {
        self.class() != StateClass::InProgress
    }

    /// Whether the remote task ended without doing its work (the call is then a failed one).
    #[must_use]
    pub fn is_unsuccessful(&self) -> bool {
        matches!(self, Self::Failed | Self::Rejected | Self::Canceled)
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Reply {
    /// The remote state a reply stands for: a task's own, and `completed` for a Message (a
    /// peer that answers with a Message has finished). The one place that decides it.
    #[must_use]
    pub fn state(&self) -> TaskState {
        match self {
            Self::Message(_) => TaskState::Completed,
            Self::Task(t) => t.state.clone(),
        }
    }
}

/// Looks a key up under its camelCase name, then its snake_case spelling.
fn get<'a>(obj: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| {
        let snake = camel_to_snake(camel);
        (snake != camel).then(|| obj.get(&snake)).flatten()
    })
}

fn camel_to_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn kind(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("kind").and_then(Value::as_str)
}

/// Interprets a JSON-RPC `result` as a Task or a Message.
///
/// # Errors
/// A description of why the value is neither (becomes -32006).
pub fn parse_reply(result: &Value) -> Result<Reply, String> {
    let Value::Object(obj) = result else {
        return Err(format!("expected an object, got {}", short(result)));
    };
    if let Some(task) = obj.get("task") {
        return parse_task(task).map(Reply::Task);
    }
    if let Some(message) = obj.get("message").filter(|m| m.is_object()) {
        return parse_message(message).map(Reply::Message);
    }
    match kind(obj) {
        Some("task") => return parse_task(result).map(Reply::Task),
        Some("message") => return parse_message(result).map(Reply::Message),
        _ => {}
    }
    if obj.get("status").is_some_and(Value::is_object) {
        return parse_task(result).map(Reply::Task);
    }
    if obj.contains_key("role") && obj.contains_key("parts") {
        return parse_message(result).map(Reply::Message);
    }
    Err(format!("neither a Task nor a Message: {}", short(result)))
}

/// Parses a Task object.
///
/// # Errors
/// Missing `id` or `status.state`.
pub fn parse_task(value: &Value) -> Result<Task, String> {
    let Value::Object(obj) = value else {
        return Err(format!("task is not an object: {}", short(value)));
    };
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| "task has no string `id`".to_owned())?;
    let status = obj
        .get("status")
        .and_then(Value::as_object)
        .ok_or_else(|| "task has no `status` object".to_owned())?;
    let state = status
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(|| "task has no string `status.state`".to_owned())?;
    let status_message = status
        .get("message")
        .filter(|m| m.is_object())
        .and_then(|m| parse_message(m).ok());
    let artifacts = get(obj, "artifacts")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(parse_artifact).collect())
        .unwrap_or_default();
    let history = get(obj, "history")
        .and_then(Value::as_array)
        .map(|h| h.iter().filter_map(|m| parse_message(m).ok()).collect())
        .unwrap_or_default();
    Ok(Task {
        id: id.to_owned(),
        state: TaskState::parse(state),
        status_message,
        artifacts,
        history,
        context_id: context_id(obj),
    })
}

/// Parses a Message object (unknown parts are skipped).
///
/// # Errors
/// The value is not an object.
pub fn parse_message(value: &Value) -> Result<Message, String> {
    let Value::Object(obj) = value else {
        return Err(format!("message is not an object: {}", short(value)));
    };
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let parts = obj
        .get("parts")
        .and_then(Value::as_array)
        .map(|p| parse_parts(p))
        .unwrap_or_default();
    Ok(Message {
        role,
        parts,
        context_id: context_id(obj),
    })
}

/// The `contextId` (or Bindu's `context_id`) of a task, message or stream event.
#[must_use]
pub fn context_id(obj: &Map<String, Value>) -> Option<String> {
    get(obj, "contextId")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// Parses an artifact (`artifactId`/`artifact_id` optional).
#[must_use]
pub fn parse_artifact(value: &Value) -> Option<Artifact> {
    let obj = value.as_object()?;
    let artifact_id = get(obj, "artifactId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let parts = obj
        .get("parts")
        .and_then(Value::as_array)
        .map(|p| parse_parts(p))
        .unwrap_or_default();
    Some(Artifact { artifact_id, parts })
}

/// Parses a list of parts (unknown ones skipped). A file part a peer wrapped in a data part
/// (Bindu's handler results: `{"result": {"kind": "file", "file": {...}}}`) is taken out as a
/// file part of its own, and the data keeps `"[file <name>]"` in its place: its bytes never
/// travel as data text.
#[must_use]
pub fn parse_parts(values: &[Value]) -> Vec<Part> {
    let mut parts = Vec::with_capacity(values.len());
    for value in values {
        match parse_part(value) {
            Some(Part::Data(mut data)) => {
                let mut hoisted = Vec::new();
                hoist_files(&mut data, &mut hoisted, 0);
                parts.push(Part::Data(data));
                parts.extend(hoisted);
            }
            Some(part) => parts.push(part),
            None => {}
        }
    }
    parts
}

/// How deep a data part is searched for wrapped files.
const HOIST_DEPTH: usize = 8;

fn hoist_files(value: &mut Value, out: &mut Vec<Part>, depth: usize) {
    if depth > HOIST_DEPTH {
        return;
    }
    match value {
        Value::Object(obj) => {
            let wrapped = kind(obj) == Some("file")
                && obj.get("file").and_then(Value::as_object).is_some_and(|f| {
                    f.get("bytes").is_some_and(Value::is_string)
                        || f.get("uri").is_some_and(Value::is_string)
                });
            if wrapped && let Part::File(file) = file_part(obj) {
                *value = Value::String(format!(
                    "[file {}]",
                    file.name.as_deref().unwrap_or("unnamed")
                ));
                out.push(Part::File(file));
                return;
            }
            for v in obj.values_mut() {
                hoist_files(v, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for v in items {
                hoist_files(v, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Parses one part, with or without `kind`; unknown parts give `None`.
#[must_use]
pub fn parse_part(value: &Value) -> Option<Part> {
    let obj = value.as_object()?;
    let metadata = obj.get("metadata").and_then(Value::as_object).cloned();
    match kind(obj).or_else(|| obj.get("type").and_then(Value::as_str)) {
        Some("text") => {
            return obj.get("text").and_then(Value::as_str).map(|t| Part::Text {
                text: t.to_owned(),
                metadata,
            });
        }
        Some("data") => return obj.get("data").cloned().map(Part::Data),
        Some("file") => return Some(file_part(obj)),
        _ => {}
    }
    if let Some(t) = obj.get("text").and_then(Value::as_str) {
        return Some(Part::Text {
            text: t.to_owned(),
            metadata,
        });
    }
    if let Some(d) = obj.get("data") {
        return Some(Part::Data(d.clone()));
    }
    if obj.contains_key("file") || obj.contains_key("raw") || obj.contains_key("url") {
        return Some(file_part(obj));
    }
    None
}

fn file_part(obj: &Map<String, Value>) -> Part {
    // v0.3 nests the file; v1.0 keeps its fields on the part itself.
    let inner = obj.get("file").and_then(Value::as_object).unwrap_or(obj);
    let text_of = |key: &str| {
        get(inner, key)
            .or_else(|| get(obj, key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let content = if let Some(b) = text_of("bytes").or_else(|| text_of("raw")) {
        FileContent::Base64(b)
    } else if let Some(u) = text_of("uri").or_else(|| text_of("url")) {
        FileContent::Uri(u)
    } else {
        FileContent::Empty
    };
    Part::File(FilePart {
        name: text_of("name").or_else(|| text_of("filename")),
        media_type: text_of("mimeType").or_else(|| text_of("mediaType")),
        content,
        text: text_of("text"),
    })
}

/// The length of the inline file text (v0.3 `file.bytes`, v1.0 `raw`) anywhere in an answer:
/// what its size owes to files.
#[must_use]
pub fn inline_file_len(value: &Value) -> usize {
    match value {
        Value::Object(obj) => {
            let own = match (obj.get("raw"), obj.get("file")) {
                (Some(Value::String(raw)), _) => raw.len(),
                (_, Some(Value::Object(file))) => file
                    .get("bytes")
                    .and_then(Value::as_str)
                    .map_or(0, str::len),
                _ => 0,
            };
            own + obj
                .iter()
                .filter(|(k, _)| k.as_str() != "raw" && k.as_str() != "file")
                .map(|(_, v)| inline_file_len(v))
                .sum::<usize>()
        }
        Value::Array(items) => items.iter().map(inline_file_len).sum(),
        _ => 0,
    }
}

/// Every file part of a reply: a Message's parts; a Task's artifacts, then its status message.
#[must_use]
pub fn file_parts(reply: &Reply) -> Vec<&FilePart> {
    let parts: Box<dyn Iterator<Item = &Part>> = match reply {
        Reply::Message(m) => Box::new(m.parts.iter()),
        Reply::Task(t) => Box::new(
            t.artifacts
                .iter()
                .flat_map(|a| &a.parts)
                .chain(t.status_message.iter().flat_map(|m| &m.parts)),
        ),
    };
    parts
        .filter_map(|p| match p {
            Part::File(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(120).collect()
}

fn parts_text(parts: &[Part], with_data: bool) -> Vec<String> {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text { text, .. } => Some(text.clone()),
            Part::Data(d) if with_data => Some(d.to_string()),
            Part::File(f) if with_data => f.text.clone(),
            _ => None,
        })
        .collect()
}

/// The text a reply contributes to the envelope (spec §5.10).
#[must_use]
pub fn output_text(reply: &Reply) -> String {
    match reply {
        Reply::Message(m) => parts_text(&m.parts, true).join("\n\n"),
        Reply::Task(t) => {
            let pieces: Vec<String> = t
                .artifacts
                .iter()
                .flat_map(|a| parts_text(&a.parts, true))
                .collect();
            if !pieces.is_empty() {
                return pieces.join("\n\n");
            }
            if let Some(m) = &t.status_message {
                let text = parts_text(&m.parts, false);
                if !text.is_empty() {
                    return text.join("\n\n");
                }
            }
            if let Some(m) = t
                .history
                .iter()
                .rev()
                .find(|m| m.role == "agent" || m.role == "ROLE_AGENT")
            {
                let text = parts_text(&m.parts, false);
                if !text.is_empty() {
                    return text.join("\n\n");
                }
            }
            if !file_parts(reply).is_empty() {
                // Files alone are the output (each gets its own line).
                return String::new();
            }
            format!("[task {} {} \u{2014} no text output]", t.id, t.state)
        }
    }
}

/// Whether a finished task carries any artifact or status-message text (streaming peers that
/// lack both get one `tasks/get` so the history fallback can work).
#[must_use]
pub fn has_direct_text(task: &Task) -> bool {
    let artifact_text = task.artifacts.iter().any(|a| {
        !parts_text(&a.parts, true).is_empty() || a.parts.iter().any(|p| matches!(p, Part::File(_)))
    });
    let status_text = task
        .status_message
        .as_ref()
        .is_some_and(|m| !parts_text(&m.parts, false).is_empty());
    artifact_text || status_text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_normalise() {
        let text = |raw: &str| TaskState::parse(raw).as_str().to_owned();
        assert_eq!(text("TASK_STATE_INPUT_REQUIRED"), "input-required");
        assert_eq!(
            TaskState::parse("TASK_STATE_INPUT_REQUIRED"),
            TaskState::InputRequired
        );
        assert_eq!(text("cancelled"), "canceled");
        assert_eq!(text("TASK_STATE_UNSPECIFIED"), "unknown");
        assert_eq!(TaskState::parse("completed"), TaskState::Completed);
        assert_eq!(text("Task_State_Pending_Review"), "pending-review");
        assert_eq!(
            TaskState::parse("auth-required").class(),
            StateClass::NeedsAction
        );
        assert_eq!(TaskState::parse("pending").class(), StateClass::InProgress);
        assert!(TaskState::parse("rejected").is_unsuccessful());
    }

    #[test]
    fn bindu_snake_case_task_parses_with_signed_artifact() {
        let v: Value = serde_json::from_str(include_str!(
            "../../fixtures/a2a/bindu-tasks-get-completed.json"
        ))
        .unwrap();
        let Reply::Task(t) = parse_reply(&v["result"]).unwrap() else {
            panic!("expected task")
        };
        assert_eq!(t.state, TaskState::Completed);
        assert_eq!(t.artifacts.len(), 1);
        assert_eq!(
            t.artifacts[0].artifact_id.as_deref(),
            Some("11c62b0d-65d9-4423-862c-157a84406796")
        );
        let Part::Text { metadata, .. } = &t.artifacts[0].parts[0] else {
            panic!("expected text")
        };
        assert!(
            metadata
                .as_ref()
                .unwrap()
                .contains_key("did.message.signature")
        );
        assert_eq!(output_text(&Reply::Task(t)), "echo: hello bindu");
    }

    #[test]
    fn v1_wrapped_task_and_kindless_parts_parse() {
        let v = json!({"task": {"id": "t", "status": {"state": "TASK_STATE_COMPLETED"},
            "artifacts": [{"artifactId": "a", "parts": [{"text": "x"}, {"data": {"n": 1.0}}, {"raw": "AA=="}, {"weird": 1}]}]}});
        let r = parse_reply(&v).unwrap();
        assert_eq!(output_text(&r), "x\n\n{\"n\":1.0}");
    }

    #[test]
    fn file_parts_of_both_dialects_and_wrapped_in_data_are_read() {
        let v = json!({"id": "t", "status": {"state": "completed", "message": {"role": "agent",
            "parts": [{"kind": "file", "file": {"name": "n.txt", "mime_type": "text/plain", "bytes": "aGk="}}]}},
            "artifacts": [{"parts": [
                {"raw": "AAEC", "mediaType": "image/png", "filename": "a.png"},
                {"url": "https://x/y.pdf", "mediaType": "application/pdf"},
                {"kind": "data", "data": {"result": {"kind": "file", "file": {"name": "w.png", "mimeType": "image/png", "bytes": "AAAA"}}}}]}]});
        let reply = Reply::Task(parse_task(&v).unwrap());
        let files = file_parts(&reply);
        let names: Vec<Option<&str>> = files.iter().map(|f| f.name.as_deref()).collect();
        assert_eq!(names, [Some("a.png"), None, Some("w.png"), Some("n.txt")]);
        assert_eq!(files[0].content, FileContent::Base64("AAEC".into()));
        assert_eq!(files[1].content, FileContent::Uri("https://x/y.pdf".into()));
        assert_eq!(files[3].media_type.as_deref(), Some("text/plain"));
        // The wrapped file's bytes left the data part.
        assert_eq!(output_text(&reply), r#"{"result":"[file w.png]"}"#);
        assert_eq!(inline_file_len(&v), 4 + 4 + 4);
    }

    #[test]
    fn message_results_and_bad_shapes() {
        let m = parse_reply(&json!({"role": "agent", "parts": [{"kind": "text", "text": "hi"}]}))
            .unwrap();
        assert!(matches!(m, Reply::Message(_)));
        assert_eq!(output_text(&m), "hi");
        assert!(parse_reply(&json!({"foo": 1})).is_err());
        assert!(parse_reply(&json!("str")).is_err());
        assert!(parse_reply(&json!({"kind": "task", "status": {"state": "working"}})).is_err());
    }

    #[test]
    fn output_falls_back_to_status_then_history_then_placeholder() {
        let t = parse_task(&json!({"id": "t", "status": {"state": "input-required",
            "message": {"role": "agent", "parts": [{"text": "which city?"}]}}}))
        .unwrap();
        assert_eq!(output_text(&Reply::Task(t)), "which city?");
        let t = parse_task(&json!({"id": "t", "status": {"state": "input-required"},
            "history": [{"role": "user", "parts": [{"kind": "text", "text": "q"}]},
                        {"role": "agent", "parts": [{"kind": "text", "text": "need more"}]}]}))
        .unwrap();
        assert_eq!(output_text(&Reply::Task(t)), "need more");
        let t = parse_task(&json!({"id": "t9", "status": {"state": "TASK_STATE_FAILED"}})).unwrap();
        assert_eq!(
            output_text(&Reply::Task(t)),
            "[task t9 failed \u{2014} no text output]"
        );
    }
}
