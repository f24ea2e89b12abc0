//! JSON-RPC 2.0 for A2A: request bodies per dialect (spec §5.3–5.4) and the response rules of
//! spec §5.5. Bodies are built as `serde_json::Value` with contract key order and serialised once;
//! those exact bytes are what gets signed and sent.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::a2a::error::A2aError;
use crate::a2a::wire::{OutgoingContent, OutgoingFile};

/// The A2A dialect used with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `message/send`, `tasks/get`, `tasks/cancel`; `kind` tags; client-chosen task id.
    V03,
    /// `SendMessage`, `GetTask`, `CancelTask`; `A2A-Version: 1.0`; server-chosen task id.
    V10,
}

/// Shape of `tasks/get` / `tasks/cancel` params (v0.3 peers disagree, spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdShape {
    Both,
    TaskIdOnly,
    IdOnly,
}

impl IdShape {
    /// The next shape to try after a parameter-shape error.
    #[must_use]
    pub fn next(self) -> Option<Self> {
        match self {
            Self::Both => Some(Self::TaskIdOnly),
            Self::TaskIdOnly => Some(Self::IdOnly),
            Self::IdOnly => None,
        }
    }
}

/// Everything a send request carries.
#[derive(Debug, Clone, Copy)]
pub struct SendParams<'a> {
    pub context_id: &'a str,
    /// The task the message goes to: a client-chosen id (v0.3; `None` after a -32001 resend),
    /// or the `input-required` task it continues (both dialects).
    pub task_id: Option<&'a str>,
    pub text: &'a str,
    /// File parts after the text.
    pub files: &'a [OutgoingFile],
    pub reference_task_id: Option<&'a str>,
    pub skill_id: &'a str,
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Dialect {
    /// A send request body (`message/send` or `SendMessage`).
    #[must_use]
    pub fn send_body(self, p: SendParams<'_>) -> Vec<u8> {
        self.message_body(p, false)
    }

    /// A file part in this dialect: v0.3 `{"kind":"file","text":"","file":{"name","mimeType","bytes"|"uri"}}`,
    /// v1.0 `{"raw"|"url","filename","mediaType"}`.
    #[must_use]
    pub fn file_part(self, f: &OutgoingFile) -> Value {
        use base64::Engine as _;
        let (inline, address) = match &f.content {
            OutgoingContent::Bytes(b) => (
                Some(base64::engine::general_purpose::STANDARD.encode(b)),
                None,
            ),
            OutgoingContent::Uri(u) => (None, Some(u.as_str())),
        };
        match self {
            Self::V03 => {
                let mut file = serde_json::Map::new();
                file.insert("name".into(), json!(f.name));
                file.insert("mimeType".into(), json!(f.media_type));
                match (inline, address) {
                    (Some(b), _) => file.insert("bytes".into(), Value::String(b)),
                    (_, u) => file.insert("uri".into(), json!(u)),
                };
                // Bindu refuses a file part without `text` (its FilePart extends TextPart);
                // the a2a-sdk takes it.
                json!({"kind": "file", "text": "", "file": file})
            }
            Self::V10 => {
                let mut part = serde_json::Map::new();
                match (inline, address) {
                    (Some(b), _) => part.insert("raw".into(), Value::String(b)),
                    (_, u) => part.insert("url".into(), json!(u)),
                };
                part.insert("filename".into(), json!(f.name));
                part.insert("mediaType".into(), json!(f.media_type));
                Value::Object(part)
            }
        }
    }

    /// The body of a send or streaming send; both share the message and differ in method and in
    /// the v1.0 `returnImmediately` flag.
    fn message_body(self, p: SendParams<'_>, streaming: bool) -> Vec<u8> {
        let mut message = serde_json::Map::new();
        match self {
            Self::V03 => {
                message.insert("kind".into(), json!("message"));
                message.insert("role".into(), json!("user"));
                message.insert("messageId".into(), json!(uuid()));
                message.insert("contextId".into(), json!(p.context_id));
                if let Some(t) = p.task_id {
                    message.insert("taskId".into(), json!(t));
                }
                let mut parts = vec![json!({"kind": "text", "text": p.text})];
                parts.extend(p.files.iter().map(|f| self.file_part(f)));
                message.insert("parts".into(), Value::Array(parts));
            }
            Self::V10 => {
                message.insert("messageId".into(), json!(uuid()));
                message.insert("contextId".into(), json!(p.context_id));
                if let Some(t) = p.task_id {
                    // Only a continued task: v1.0 servers choose new tasks' ids themselves.
                    message.insert("taskId".into(), json!(t));
                }
                message.insert("role".into(), json!("ROLE_USER"));
                let mut parts = vec![json!({"text": p.text})];
                parts.extend(p.files.iter().map(|f| self.file_part(f)));
                message.insert("parts".into(), Value::Array(parts));
            }
        }
        if let Some(r) = p.reference_task_id {
            message.insert("referenceTaskIds".into(), json!([r]));
        }
        message.insert("metadata".into(), json!({"skillId": p.skill_id}));
        let (method, configuration) = match (self, streaming) {
            (Self::V03, false) => (
                "message/send",
                json!({"acceptedOutputModes": ["text/plain", "application/json"], "blocking": false}),
            ),
            (Self::V03, true) => (
                "message/stream",
                json!({"acceptedOutputModes": ["text/plain", "application/json"], "blocking": false}),
            ),
            (Self::V10, false) => (
                "SendMessage",
                json!({"acceptedOutputModes": ["text/plain", "application/json"], "returnImmediately": true}),
            ),
            (Self::V10, true) => (
                "SendStreamingMessage",
                json!({"acceptedOutputModes": ["text/plain", "application/json"]}),
            ),
        };
        let body = json!({"jsonrpc": "2.0", "id": uuid(), "method": method,
            "params": {"message": message, "configuration": configuration}});
        body.to_string().into_bytes()
    }

    /// A streaming send body (`message/stream` or `SendStreamingMessage`): the send's params; v1.0
    /// drops `returnImmediately`, v0.3 keeps the `configuration` Bindu requires.
    #[must_use]
    pub fn stream_body(self, p: SendParams<'_>) -> Vec<u8> {
        self.message_body(p, true)
    }

    /// A poll request body (`tasks/get` or `GetTask`).
    #[must_use]
    pub fn get_body(self, task_id: &str, shape: IdShape) -> Vec<u8> {
        self.task_request(
            if self == Self::V03 {
                "tasks/get"
            } else {
                "GetTask"
            },
            task_id,
            shape,
        )
    }

    /// A cancel request body (`tasks/cancel` or `CancelTask`).
    #[must_use]
    pub fn cancel_body(self, task_id: &str) -> Vec<u8> {
        self.task_request(
            if self == Self::V03 {
                "tasks/cancel"
            } else {
                "CancelTask"
            },
            task_id,
            IdShape::Both,
        )
    }

    fn task_request(self, method: &str, task_id: &str, shape: IdShape) -> Vec<u8> {
        let params = match (self, shape) {
            (Self::V10, _) | (Self::V03, IdShape::IdOnly) => json!({"id": task_id}),
            (Self::V03, IdShape::Both) => json!({"taskId": task_id, "id": task_id}),
            (Self::V03, IdShape::TaskIdOnly) => json!({"taskId": task_id}),
        };
        json!({"jsonrpc": "2.0", "id": uuid(), "method": method, "params": params})
            .to_string()
            .into_bytes()
    }

    /// Whether requests carry `A2A-Version: 1.0`.
    #[must_use]
    pub fn version_header(self) -> Option<&'static str> {
        match self {
            Self::V03 => None,
            Self::V10 => Some("1.0"),
        }
    }
}

/// Builds the error for a JSON-RPC error object (spec §5.5).
#[must_use]
pub fn rpc_error(error: &Value) -> A2aError {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(-32603);
    let mut message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("peer returned an error without a message")
        .to_owned();
    if let Some(data) = error.get("data").and_then(Value::as_str) {
        let data: String = data.chars().take(200).collect();
        message.push_str(&format!(" ({data})"));
    }
    A2aError::Rpc { code, message }
}

fn reason(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned()
}

/// Interprets a complete JSON-RPC HTTP response; returns the `result` value.
///
/// # Errors
/// The peer's JSON-RPC error or a transport error with the texts of spec §5.14.
pub fn parse_response(status: StatusCode, body: &[u8]) -> Result<Value, A2aError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    if !status.is_success() {
        return match parsed {
            Ok(v) => match v.get("error").filter(|e| e.is_object()) {
                Some(e) => Err(rpc_error(e)),
                None => Err(A2aError::transport(
                    format!("HTTP {}", reason(status)),
                    status.is_server_error(),
                )),
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let head: String = text.chars().take(120).collect();
                Err(A2aError::transport(
                    format!("HTTP {} \u{2014} body not JSON ({head})", reason(status)),
                    status.is_server_error(),
                ))
            }
        };
    }
    let value = parsed.map_err(|e| A2aError::transport(e.to_string(), false))?;
    let Value::Object(mut obj) = value else {
        return Err(A2aError::transport(
            "invalid JSON-RPC envelope from peer: body is not a JSON object".to_owned(),
            false,
        ));
    };
    if let Some(e) = obj.get("error").filter(|e| !e.is_null()) {
        return Err(rpc_error(e));
    }
    match obj.remove("result") {
        Some(result) => Ok(result),
        None => Err(A2aError::transport(
            "invalid JSON-RPC envelope from peer: no `result` or `error`".to_owned(),
            false,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v03_send_body_has_contract_shape() {
        let body = Dialect::V03.send_body(SendParams {
            files: &[],
            context_id: "ctx",
            task_id: Some("tid"),
            text: "héllo",
            reference_task_id: Some("prev"),
            skill_id: "echo",
        });
        let v: Value = serde_json::from_slice(&body).unwrap();
        let keys: Vec<_> = v["params"]["message"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "kind",
                "role",
                "messageId",
                "contextId",
                "taskId",
                "parts",
                "referenceTaskIds",
                "metadata"
            ]
        );
        assert_eq!(v["method"], "message/send");
        assert_eq!(v["params"]["configuration"]["blocking"], false);
        assert_eq!(v["params"]["message"]["parts"][0]["text"], "héllo");
        assert!(
            !String::from_utf8(body).unwrap().contains(": "),
            "compact JSON"
        );
    }

    #[test]
    fn poll_shapes() {
        let b = |s| {
            serde_json::from_slice::<Value>(&Dialect::V03.get_body("t", s)).unwrap()["params"]
                .clone()
        };
        assert_eq!(b(IdShape::Both), json!({"taskId": "t", "id": "t"}));
        assert_eq!(b(IdShape::TaskIdOnly), json!({"taskId": "t"}));
        assert_eq!(b(IdShape::IdOnly), json!({"id": "t"}));
        let v: Value = serde_json::from_slice(&Dialect::V10.cancel_body("t")).unwrap();
        assert_eq!(v["method"], "CancelTask");
    }

    #[test]
    fn response_rules() {
        let ok = parse_response(StatusCode::OK, br#"{"result":{"a":1}}"#).unwrap();
        assert_eq!(ok, json!({"a": 1}));
        let e = parse_response(StatusCode::BAD_REQUEST, br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Failed","data":"why"}}"#).unwrap_err();
        assert_eq!(e.to_string(), "Failed (why)");
        assert_eq!(e.code(), -32700);
        let e = parse_response(StatusCode::INTERNAL_SERVER_ERROR, b"{}").unwrap_err();
        assert_eq!(e.to_string(), "transport: HTTP 500 Internal Server Error");
        let e = parse_response(StatusCode::BAD_GATEWAY, b"<html>oops</html>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "transport: HTTP 502 Bad Gateway \u{2014} body not JSON (<html>oops</html>)"
        );
        let e = parse_response(StatusCode::OK, b"[1]").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("transport: invalid JSON-RPC envelope from peer: ")
        );
        let e = parse_response(StatusCode::OK, br#"{"error":{}}"#).unwrap_err();
        assert_eq!(e.to_string(), "peer returned an error without a message");
        assert_eq!(e.code(), -32603);
        assert!(
            parse_response(StatusCode::OK, b"nope")
                .unwrap_err()
                .to_string()
                .starts_with("transport: ")
        );
    }
}
