//! The OpenAI chat-completions request, typed: serde reads the wire (a wrong type or an unknown
//! role is an error naming its path, `messages[2].role`), and one [`TryFrom`] turns it into
//! what a plan needs (`Chat`): the last user message is the question, the earlier user and
//! assistant messages the history, system (and developer) messages the plan's instructions.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::OpenAiError;
use crate::planner::request::{HistoryTurn, Role};

/// Top-level fields read from a request (others are skipped unread).
pub(crate) const FIELDS: [&str; 10] = [
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "n",
    "user",
];

/// `POST /v1/chat/completions`, as far as the door reads it.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    // The agent fleet is the tool set: a caller's own tools are refused, whatever their shape.
    #[serde(default)]
    tools: Option<IgnoredAny>,
    #[serde(default)]
    functions: Option<IgnoredAny>,
    #[serde(default)]
    tool_choice: Option<IgnoredAny>,
    #[serde(default)]
    function_call: Option<IgnoredAny>,
    #[serde(default)]
    n: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// One message.
#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: ChatRole,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChatRole {
    System,
    Developer,
    User,
    Assistant,
    /// Results of the caller's own tool calls: never the door's, ignored.
    Tool,
    Function,
}

/// A message's `content`: a string, or an array of text parts.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a string or an array of text parts ({\"type\": \"text\", \"text\": …}; other parts are not supported)"
)]
enum Content {
    Text(String),
    Parts(Vec<TextPart>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum TextPart {
    Text { text: String },
}

impl Content {
    fn into_text(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::Parts(parts) => parts
                .into_iter()
                .map(|TextPart::Text { text }| text)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

fn text(content: Option<Content>) -> String {
    content.map(Content::into_text).unwrap_or_default()
}

/// What a chat request asks, once checked.
#[derive(Debug)]
pub(crate) struct Chat {
    pub(crate) model: String,
    pub(crate) question: String,
    pub(crate) history: Vec<HistoryTurn>,
    /// The system (and developer) messages, joined with a blank line.
    pub(crate) instructions: String,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
}

impl ChatRequest {
    /// Reads a parsed body.
    ///
    /// # Errors
    /// A field of the wrong type or shape, named by its path.
    pub(crate) fn from_value(value: serde_json::Value) -> Result<Self, OpenAiError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let param = match path.split(['.', '[']).next() {
                Some("model") => "model",
                Some("stream") => "stream",
                Some("stream_options") => "stream_options",
                Some("n") => "n",
                _ => "messages",
            };
            let code = if path.ends_with("content") {
                "unsupported_content"
            } else {
                "invalid_type"
            };
            let message = if path == "." {
                format!("the body: {}", e.inner())
            } else {
                format!("{path}: {}", e.inner())
            };
            OpenAiError::invalid(param, code, message)
        })
    }
}

impl TryFrom<ChatRequest> for Chat {
    type Error = OpenAiError;

    fn try_from(request: ChatRequest) -> Result<Self, OpenAiError> {
        let own_tools = [
            ("tools", request.tools.is_some()),
            ("functions", request.functions.is_some()),
            ("tool_choice", request.tool_choice.is_some()),
            ("function_call", request.function_call.is_some()),
        ];
        if let Some((field, _)) = own_tools.iter().find(|(_, sent)| *sent) {
            return Err(OpenAiError::invalid(
                "tools",
                "tools_not_supported",
                format!(
                    "\"{field}\" is not supported: plangate answers with its agent fleet, which is the tool set; remove \"{field}\""
                ),
            ));
        }
        if request.n.is_some_and(|n| n != 1) {
            return Err(OpenAiError::invalid(
                "n",
                "invalid_value",
                "n: only 1 choice is supported",
            ));
        }
        if request.messages.is_empty() {
            return Err(OpenAiError::invalid(
                "messages",
                "invalid_type",
                "messages: expected a non-empty array",
            ));
        }
        let last_is_user = request
            .messages
            .last()
            .is_some_and(|m| m.role == ChatRole::User);
        let mut system = Vec::new();
        let mut turns = Vec::new();
        for ChatMessage { role, content } in request.messages {
            match role {
                ChatRole::System | ChatRole::Developer => system.push(text(content)),
                ChatRole::User => turns.push((Role::User, text(content))),
                ChatRole::Assistant => turns.push((Role::Assistant, text(content))),
                ChatRole::Tool | ChatRole::Function => {}
            }
        }
        let question = match turns.pop() {
            Some((Role::User, q)) if last_is_user && !q.trim().is_empty() => q,
            _ => {
                return Err(OpenAiError::invalid(
                    "messages",
                    "invalid_value",
                    "messages: the last message must be a user message with text (it is the question)",
                ));
            }
        };
        Ok(Self {
            model: request.model,
            question,
            history: turns
                .into_iter()
                .filter(|(_, text)| !text.is_empty())
                .map(|(role, text)| HistoryTurn {
                    role,
                    parts: vec![text],
                })
                .collect(),
            instructions: system.join("\n\n"),
            stream: request.stream.unwrap_or(false),
            include_usage: request
                .stream_options
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(body: serde_json::Value) -> Result<Chat, String> {
        ChatRequest::from_value(body)
            .and_then(Chat::try_from)
            .map_err(|e| e.message())
    }

    #[test]
    fn the_last_user_message_is_the_question() {
        let chat = chat(json!({"model": "plangate", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null},
            {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
            {"role": "tool", "content": "ignored", "tool_call_id": "x"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "stream": true, "stream_options": {"include_usage": true}}))
        .unwrap();
        assert_eq!(chat.question, "a\nb");
        assert_eq!(chat.instructions, "be brief");
        assert_eq!(chat.history.len(), 2);
        assert!(chat.stream && chat.include_usage);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = chat(json!({"model": 4, "messages": []})).unwrap_err();
        assert!(e.starts_with("model: invalid type"), "{e}");
        let e = chat(json!({"model": "plangate", "messages": [{"role": "robot"}]})).unwrap_err();
        assert!(
            e.starts_with("messages[0].role: unknown variant `robot`"),
            "{e}"
        );
        let e = chat(json!({"model": "plangate", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}))
        .unwrap_err();
        assert!(e.starts_with("messages[0].content: "), "{e}");
        assert!(e.contains("text parts"), "{e}");
        let e = chat(
            json!({"model": "plangate", "messages": [{"role": "user", "content": "q"}],
            "tools": []}),
        )
        .unwrap_err();
        assert!(e.contains("\"tools\" is not supported"), "{e}");
        let e =
            chat(json!({"model": "plangate", "messages": [{"role": "assistant", "content": "a"}]}))
                .unwrap_err();
        assert!(e.contains("the last message must be a user message"), "{e}");
        let e = chat(
            json!({"model": "plangate", "messages": [{"role": "user", "content": "q"}], "n": 2}),
        )
        .unwrap_err();
        assert_eq!(e, "n: only 1 choice is supported");
    }
}
