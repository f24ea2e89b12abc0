//! The server half of the A2A wire: which dialect a request speaks, reading a caller's message,
//! and writing tasks and stream events the way each dialect's clients read them (peers.md §4:
//! v0.3 `kind` tags and lower-case states, v1.0 result wrappers and `TASK_STATE_*`). The client
//! half, for calling peers, is the peer client's own ([`crate::a2a`]); the two share only the
//! task states.

use serde_json::{Map, Value, json};

use crate::a2a::TaskState;
use crate::api::http::jsonrpc::{RpcError, code};
use crate::identity::verify::SIGNATURE_KEY;

/// The dialect a caller speaks: A2A v0.3 (`message/send`, `kind` tags) or 1.0 (`SendMessage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V03,
    V10,
}

/// What a caller can ask of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Send,
    Stream,
    Get,
    Cancel,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Agent,
}

/// A caller's message, as far as the door uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    pub message_id: String,
    /// The text parts, and data parts as JSON, joined with a blank line.
    pub text: String,
    pub context_id: Option<String>,
    pub task_id: Option<String>,
    /// `metadata.skillId`: which of the agent's skills the caller means.
    pub skill_id: Option<String>,
    /// The first data part's value (an answer to a confirmation is one).
    pub data: Option<Value>,
}

/// A task as the door shows it.
#[derive(Debug, Clone)]
pub struct TaskView<'a> {
    pub id: &'a str,
    pub context_id: &'a str,
    pub state: &'a TaskState,
    /// RFC 3339, UTC.
    pub timestamp: &'a str,
    /// The status message's text (progress, or why the task failed).
    pub status_text: Option<&'a str>,
    /// A data part of the status message (what a waiting question is about).
    pub status_data: Option<&'a Value>,
    /// The answer artifact, once completed.
    pub artifact: Option<ArtifactView<'a>>,
    /// The conversation of this task, oldest first.
    pub history: &'a [(Role, String, String)],
}

/// The one artifact of a completed task: the answer text, signed when the gateway has a DID.
#[derive(Debug, Clone, Copy)]
pub struct ArtifactView<'a> {
    pub artifact_id: &'a str,
    pub text: &'a str,
    /// base58 Ed25519 signature of the text (`metadata["did.message.signature"]`).
    pub signature: Option<&'a str>,
    /// The plan's files, as file parts after the text: small ones inline, the rest as links.
    pub files: &'a [crate::a2a::OutgoingFile],
}

impl Dialect {
    /// The dialect of a request, as the a2a-sdk server decides it: `A2A-Version` with major 1 is
    /// v1.0, no header (or major 0) is v0.3.
    ///
    /// # Errors
    /// Any other version.
    pub fn of_request(version: Option<&str>) -> Result<Self, RpcError> {
        let Some(version) = version.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Self::V03);
        };
        match version.split('.').next() {
            Some("1") => Ok(Self::V10),
            Some("0") => Ok(Self::V03),
            _ => Err(RpcError::new(
                code::VERSION_NOT_SUPPORTED,
                format!("A2A version '{version}' is not supported; use 1.0 or 0.3"),
            )),
        }
    }

    /// The method of this dialect, or an error that says which dialect the name belongs to.
    ///
    /// # Errors
    /// -32601 for an unknown name; the a2a-sdk's version errors for the other dialect's names.
    pub fn method(self, name: &str) -> Result<Method, RpcError> {
        let v03 = match name {
            "message/send" => Some(Method::Send),
            "message/stream" => Some(Method::Stream),
            "tasks/get" => Some(Method::Get),
            "tasks/cancel" => Some(Method::Cancel),
            _ => None,
        };
        let v10 = match name {
            "SendMessage" => Some(Method::Send),
            "SendStreamingMessage" => Some(Method::Stream),
            "GetTask" => Some(Method::Get),
            "CancelTask" => Some(Method::Cancel),
            _ => None,
        };
        match (self, v03, v10) {
            (Self::V03, Some(m), _) | (Self::V10, _, Some(m)) => Ok(m),
            (Self::V03, None, Some(_)) => Err(RpcError::new(
                code::VERSION_NOT_SUPPORTED,
                "A2A version '0.3' is not supported by this handler. Expected version '1.0'. (send A2A-Version: 1.0)",
            )),
            (Self::V10, Some(_), None) => Err(RpcError::new(
                code::INTERNAL_ERROR,
                "A2A version '1.0' is not supported by this handler. Expected version '0.3'.",
            )),
            _ => Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found")),
        }
    }

    /// Reads `params.message` of a send.
    ///
    /// # Errors
    /// -32602 naming the field: no message, a wrong role, no parts, a part that is neither text
    /// nor data, more than `max_bytes` of text.
    pub fn read_message(
        self,
        params: &Value,
        max_bytes: usize,
    ) -> Result<IncomingMessage, RpcError> {
        let message = params
            .get("message")
            .and_then(Value::as_object)
            .ok_or_else(|| RpcError::params("params.message: expected an object"))?;
        let string = |key: &str| message.get(key).and_then(Value::as_str).map(str::to_owned);
        let message_id = string("messageId")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                RpcError::params("params.message.messageId: expected a non-empty string")
            })?;
        let role = message.get("role").and_then(Value::as_str);
        let user = match self {
            Self::V03 => "user",
            Self::V10 => "ROLE_USER",
        };
        if role != Some(user) {
            return Err(RpcError::params(format!(
                "params.message.role: expected \"{user}\", got {}",
                message
                    .get("role")
                    .map_or_else(|| "nothing".to_owned(), Value::to_string)
            )));
        }
        let parts = message
            .get("parts")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| RpcError::params("params.message.parts: expected a non-empty array"))?;
        let mut texts = Vec::with_capacity(parts.len());
        let mut size = 0usize;
        for (i, part) in parts.iter().enumerate() {
            let text = part_text(part)
                .map_err(|what| RpcError::params(format!("params.message.parts.{i}: {what}")))?;
            size += text.len();
            if size > max_bytes {
                return Err(RpcError::params(format!(
                    "params.message.parts: the message carries more than {max_bytes} bytes of text (a2a_server.max_message_bytes)"
                )));
            }
            texts.push(text);
        }
        let text = texts.join("\n\n");
        if text.trim().is_empty() {
            return Err(RpcError::params(
                "params.message.parts: the message has no text",
            ));
        }
        Ok(IncomingMessage {
            message_id,
            text,
            context_id: string("contextId")
                .or_else(|| string("context_id"))
                .filter(|c| !c.is_empty()),
            task_id: string("taskId")
                .or_else(|| string("task_id"))
                .filter(|t| !t.is_empty()),
            skill_id: message
                .get("metadata")
                .and_then(|m| m.get("skillId"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            data: parts.iter().find_map(|p| p.get("data").cloned()),
        })
    }

    /// Whether a send asks not to wait for the end (v0.3 `blocking: false`, v1.0
    /// `returnImmediately: true`).
    #[must_use]
    pub fn returns_immediately(self, params: &Value) -> bool {
        let configuration = &params["configuration"];
        match self {
            Self::V03 => configuration["blocking"] == Value::Bool(false),
            Self::V10 => configuration["returnImmediately"] == Value::Bool(true),
        }
    }

    /// The task id of a get or cancel (`id`; v0.3 callers may also send `taskId`).
    ///
    /// # Errors
    /// -32602 without one.
    pub fn read_task_id(self, params: &Value) -> Result<String, RpcError> {
        let id = params.get("id").and_then(Value::as_str);
        let id = match self {
            Self::V03 => id.or_else(|| params.get("taskId").and_then(Value::as_str)),
            Self::V10 => id,
        };
        id.filter(|i| !i.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| RpcError::params("params.id: expected the task id (a non-empty string)"))
    }

    fn state(self, state: &TaskState) -> String {
        match self {
            Self::V03 => state.as_str().to_owned(),
            Self::V10 => format!(
                "TASK_STATE_{}",
                state.as_str().replace('-', "_").to_ascii_uppercase()
            ),
        }
    }

    fn role(self, role: Role) -> &'static str {
        match (self, role) {
            (Self::V03, Role::User) => "user",
            (Self::V03, Role::Agent) => "agent",
            (Self::V10, Role::User) => "ROLE_USER",
            (Self::V10, Role::Agent) => "ROLE_AGENT",
        }
    }

    fn text_part(self, text: &str, signature: Option<&str>) -> Value {
        let mut part = Map::new();
        if self == Self::V03 {
            part.insert("kind".into(), json!("text"));
        }
        part.insert("text".into(), json!(text));
        if let Some(signature) = signature {
            let mut metadata = Map::new();
            metadata.insert(SIGNATURE_KEY.to_owned(), json!(signature));
            part.insert("metadata".into(), Value::Object(metadata));
        }
        Value::Object(part)
    }

    fn message(self, role: Role, message_id: &str, text: &str, task: &TaskView<'_>) -> Value {
        let mut message = Map::new();
        if self == Self::V03 {
            message.insert("kind".into(), json!("message"));
        }
        message.insert("messageId".into(), json!(message_id));
        message.insert("role".into(), json!(self.role(role)));
        message.insert("parts".into(), json!([self.text_part(text, None)]));
        message.insert("taskId".into(), json!(task.id));
        message.insert("contextId".into(), json!(task.context_id));
        Value::Object(message)
    }

    fn data_part(self, data: &Value) -> Value {
        match self {
            Self::V03 => json!({"kind": "data", "data": data}),
            Self::V10 => json!({"data": data}),
        }
    }

    fn status(self, task: &TaskView<'_>) -> Value {
        let mut status = Map::new();
        status.insert("state".into(), json!(self.state(task.state)));
        if let Some(text) = task.status_text {
            let id = format!("{}-status", task.id);
            let mut message = self.message(Role::Agent, &id, text, task);
            if let (Some(data), Some(parts)) = (
                task.status_data,
                message.get_mut("parts").and_then(Value::as_array_mut),
            ) {
                parts.push(self.data_part(data));
            }
            status.insert("message".into(), message);
        }
        status.insert("timestamp".into(), json!(task.timestamp));
        Value::Object(status)
    }

    fn artifact(self, artifact: &ArtifactView<'_>) -> Value {
        // File parts are spelled as the peer client sends them, in the caller's dialect.
        let files = match self {
            Self::V03 => crate::a2a::jsonrpc::Dialect::V03,
            Self::V10 => crate::a2a::jsonrpc::Dialect::V10,
        };
        let mut parts = vec![self.text_part(artifact.text, artifact.signature)];
        parts.extend(artifact.files.iter().map(|f| files.file_part(f)));
        json!({
            "artifactId": artifact.artifact_id,
            "name": "answer",
            "parts": parts,
        })
    }

    /// A task object (the result of a get or cancel).
    #[must_use]
    pub fn task(self, task: &TaskView<'_>) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(task.id));
        out.insert("contextId".into(), json!(task.context_id));
        if self == Self::V03 {
            out.insert("kind".into(), json!("task"));
        }
        out.insert("status".into(), self.status(task));
        if let Some(artifact) = &task.artifact {
            out.insert("artifacts".into(), json!([self.artifact(artifact)]));
        }
        if !task.history.is_empty() {
            let history: Vec<Value> = task
                .history
                .iter()
                .map(|(role, id, text)| self.message(*role, id, text, task))
                .collect();
            out.insert("history".into(), Value::Array(history));
        }
        Value::Object(out)
    }

    /// The result of a send, and the first event of a stream: v0.3 a bare task, v1.0
    /// `{"task": …}`.
    #[must_use]
    pub fn task_result(self, task: &TaskView<'_>) -> Value {
        match self {
            Self::V03 => self.task(task),
            Self::V10 => json!({"task": self.task(task)}),
        }
    }

    /// A status-update stream event (`final` on the last one, v0.3 only: v1.0 has no such field).
    #[must_use]
    pub fn status_update(self, task: &TaskView<'_>, last: bool) -> Value {
        match self {
            Self::V03 => json!({"kind": "status-update", "taskId": task.id,
                "contextId": task.context_id, "status": self.status(task), "final": last}),
            Self::V10 => json!({"statusUpdate": {"taskId": task.id,
                "contextId": task.context_id, "status": self.status(task)}}),
        }
    }

    /// An artifact-update stream event carrying the whole answer.
    #[must_use]
    pub fn artifact_update(self, task: &TaskView<'_>, artifact: &ArtifactView<'_>) -> Value {
        let event = json!({"taskId": task.id, "contextId": task.context_id,
            "artifact": self.artifact(artifact), "append": false, "lastChunk": true});
        match self {
            Self::V03 => {
                let mut event = event;
                if let Some(map) = event.as_object_mut() {
                    map.insert("kind".into(), json!("artifact-update"));
                }
                event
            }
            Self::V10 => json!({"artifactUpdate": event}),
        }
    }
}

/// A part's text: text parts as they are, data parts as JSON.
fn part_text(part: &Value) -> Result<String, &'static str> {
    let Some(part) = part.as_object() else {
        return Err("expected an object");
    };
    let kind = part
        .get("kind")
        .or_else(|| part.get("type"))
        .and_then(Value::as_str);
    match (kind, part.get("text"), part.get("data")) {
        (Some("text") | None, Some(Value::String(text)), _) => Ok(text.clone()),
        (Some("data") | None, _, Some(data)) => Ok(data.to_string()),
        (Some("file"), _, _) | (None, _, _)
            if part.contains_key("file")
                || part.contains_key("raw")
                || part.contains_key("url") =>
        {
            Err("file parts are not supported; send the content as text or data")
        }
        _ => Err("expected a text part ({\"text\": …}) or a data part ({\"data\": …})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_header_picks_the_dialect_like_the_a2a_sdk() {
        assert_eq!(Dialect::of_request(None), Ok(Dialect::V03));
        assert_eq!(Dialect::of_request(Some("0.3")), Ok(Dialect::V03));
        assert_eq!(Dialect::of_request(Some("1.0")), Ok(Dialect::V10));
        assert_eq!(Dialect::of_request(Some("1.0.0")), Ok(Dialect::V10));
        assert_eq!(
            Dialect::of_request(Some("2.0")).unwrap_err().code,
            code::VERSION_NOT_SUPPORTED
        );
        assert_eq!(Dialect::V03.method("message/send"), Ok(Method::Send));
        assert_eq!(Dialect::V10.method("CancelTask"), Ok(Method::Cancel));
        assert_eq!(
            Dialect::V03.method("SendMessage").unwrap_err().code,
            code::VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            Dialect::V10.method("tasks/get").unwrap_err().code,
            code::INTERNAL_ERROR
        );
        assert_eq!(
            Dialect::V10.method("tasks/list").unwrap_err().code,
            code::METHOD_NOT_FOUND
        );
    }

    #[test]
    fn a_message_is_read_in_each_dialect_and_bad_shapes_name_the_field() {
        let v03 = json!({"message": {"kind": "message", "messageId": "m", "role": "user",
            "contextId": "c", "taskId": "t", "metadata": {"skillId": "default"},
            "parts": [{"kind": "text", "text": "hello"}, {"kind": "data", "data": {"n": 1}}]}});
        let m = Dialect::V03.read_message(&v03, 1000).unwrap();
        assert_eq!(m.text, "hello\n\n{\"n\":1}");
        assert_eq!(m.context_id.as_deref(), Some("c"));
        assert_eq!(m.task_id.as_deref(), Some("t"));
        assert_eq!(m.skill_id.as_deref(), Some("default"));
        let v10 =
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]}});
        assert_eq!(Dialect::V10.read_message(&v10, 1000).unwrap().text, "hi");

        let bad = |d: Dialect, params: Value| d.read_message(&params, 10).unwrap_err().message;
        assert!(bad(Dialect::V10, v03.clone()).contains("params.message.role"));
        assert!(bad(Dialect::V03, json!({})).contains("params.message"));
        assert!(
            bad(
                Dialect::V03,
                json!({"message": {"messageId": "m", "role": "user", "parts": []}})
            )
            .contains("params.message.parts")
        );
        assert!(
            bad(
                Dialect::V03,
                json!({"message": {"messageId": "m", "role": "user",
            "parts": [{"kind": "file", "file": {"uri": "x"}}]}})
            )
            .contains("params.message.parts.0: file parts")
        );
        assert!(
            bad(
                Dialect::V03,
                json!({"message": {"role": "user", "parts": [{"text": "x"}]}})
            )
            .contains("messageId")
        );
        assert!(
            bad(
                Dialect::V03,
                json!({"message": {"messageId": "m", "role": "user",
            "parts": [{"text": "more than ten bytes"}]}})
            )
            .contains("max_message_bytes")
        );
    }

    #[test]
    fn tasks_are_written_in_each_dialects_spelling() {
        let history = [(Role::User, "m1".to_owned(), "hello".to_owned())];
        let task = TaskView {
            id: "t",
            context_id: "c",
            state: &TaskState::InputRequired,
            timestamp: "2026-12-02T00:00:00.000Z",
            status_text: Some("why"),
            status_data: None,
            artifact: Some(ArtifactView {
                artifact_id: "a",
                text: "answer",
                signature: Some("sig"),
                files: &[],
            }),
            history: &history,
        };
        let v03 = Dialect::V03.task_result(&task);
        assert_eq!(v03["kind"], "task");
        assert_eq!(v03["status"]["state"], "input-required");
        assert_eq!(v03["status"]["message"]["role"], "agent");
        assert_eq!(v03["artifacts"][0]["parts"][0]["kind"], "text");
        assert_eq!(
            v03["artifacts"][0]["parts"][0]["metadata"]["did.message.signature"],
            "sig"
        );
        let v10 = Dialect::V10.task_result(&task);
        assert_eq!(v10["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED");
        assert_eq!(v10["task"]["history"][0]["role"], "ROLE_USER");
        assert!(v10["task"].get("kind").is_none());
        assert_eq!(
            Dialect::V03.status_update(&task, true)["final"],
            Value::Bool(true)
        );
        assert!(
            Dialect::V10.status_update(&task, true)["statusUpdate"]
                .get("final")
                .is_none()
        );
        let artifact = task.artifact.unwrap();
        assert_eq!(
            Dialect::V03.artifact_update(&task, &artifact)["kind"],
            "artifact-update"
        );
        assert_eq!(
            Dialect::V10.artifact_update(&task, &artifact)["artifactUpdate"]["artifact"]["name"],
            "answer"
        );
    }
}
