//! The conversation as the planner writes it: typed messages that only this room turns into the
//! provider's JSON (OpenAI Chat Completions shape, keys in the order providers document).

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

use crate::llm::stream::ToolCall;

/// One message of a chat conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Instructions (the summariser's; the planner's system prompt is a [`SystemPrompt`]).
    System(String),
    /// A user turn as one text.
    User(String),
    /// A user turn as text parts (history turns, the compacted summary).
    UserParts(Vec<String>),
    /// The model's turn: its text (none when it only called tools) and the tool calls it made.
    Assistant {
        text: Option<String>,
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    Tool { call_id: String, content: String },
}

impl Message {
    /// Whether this is a user turn.
    #[must_use]
    pub fn is_user(&self) -> bool {
        matches!(self, Self::User(_) | Self::UserParts(_))
    }

    /// The tool calls of an assistant turn (empty for other messages).
    #[must_use]
    pub fn tool_calls(&self) -> &[ToolCall] {
        match self {
            Self::Assistant { tool_calls, .. } => tool_calls,
            _ => &[],
        }
    }

    /// Every text the message carries, part by part (for token estimates).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            Self::System(t) | Self::User(t) | Self::Tool { content: t, .. } => (Some(t), &[]),
            Self::UserParts(parts) => (None, parts),
            Self::Assistant { text, .. } => (text.as_deref(), &[]),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// `{"type": "text", "text": …}`.
struct TextPart<'a>(&'a str);

impl serde::Serialize for TextPart<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("type", "text")?;
        map.serialize_entry("text", self.0)?;
        map.end()
    }
}

/// The parts of a multi-part user turn.
struct Parts<'a>(&'a [String]);

impl serde::Serialize for Parts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&TextPart(p))?;
        }
        seq.end()
    }
}

/// `{"name": …, "arguments": …}`: empty argument text is sent as `{}` (providers reject "").
struct Function<'a>(&'a ToolCall);

impl serde::Serialize for Function<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let args = if self.0.arguments.trim().is_empty() {
            "{}"
        } else {
            self.0.arguments.as_str()
        };
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("name", &self.0.name)?;
        map.serialize_entry("arguments", args)?;
        map.end()
    }
}

/// One entry of `tool_calls`.
struct Call<'a>(&'a ToolCall);

impl serde::Serialize for Call<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("id", &self.0.id)?;
        map.serialize_entry("type", "function")?;
        map.serialize_entry("function", &Function(self.0))?;
        map.end()
    }
}

struct Calls<'a>(&'a [ToolCall]);

impl serde::Serialize for Calls<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            seq.serialize_element(&Call(c))?;
        }
        seq.end()
    }
}

impl serde::Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Self::System(text) => {
                map.serialize_entry("role", "system")?;
                map.serialize_entry("content", text)?;
            }
            Self::User(text) => {
                map.serialize_entry("role", "user")?;
                map.serialize_entry("content", text)?;
            }
            Self::UserParts(parts) => {
                map.serialize_entry("role", "user")?;
                map.serialize_entry("content", &Parts(parts))?;
            }
            Self::Assistant { text, tool_calls } => {
                map.serialize_entry("role", "assistant")?;
                map.serialize_entry("content", text)?;
                if !tool_calls.is_empty() {
                    map.serialize_entry("tool_calls", &Calls(tool_calls))?;
                }
            }
            Self::Tool { call_id, content } => {
                map.serialize_entry("role", "tool")?;
                map.serialize_entry("tool_call_id", call_id)?;
                map.serialize_entry("content", content)?;
            }
        }
        map.end()
    }
}

/// A system message serialised once (at boot) and reused by every step of every plan: as plain
/// text, and as one text part carrying a cache breakpoint (for providers that cache a prefix only
/// up to a marked block).
#[derive(Debug)]
pub struct SystemPrompt {
    plain: Box<RawValue>,
    marked: Box<RawValue>,
}

impl SystemPrompt {
    /// Serialises the system message with this text.
    ///
    /// # Errors
    /// Serialisation failure (not expected for a string).
    pub fn new(text: &str) -> Result<Self, serde_json::Error> {
        let marked = serde_json::json!({"role": "system", "content": [
            {"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]});
        Ok(Self {
            plain: serde_json::value::to_raw_value(&Message::System(text.to_owned()))?,
            marked: serde_json::value::to_raw_value(&marked)?,
        })
    }

    /// The message; `breakpoint` = as a text part marked `cache_control: ephemeral`.
    pub(crate) fn raw(&self, breakpoint: bool) -> &RawValue {
        if breakpoint {
            &self.marked
        } else {
            &self.plain
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(m: &Message) -> String {
        serde_json::to_string(m).unwrap()
    }

    #[test]
    fn messages_serialise_in_the_providers_shape() {
        assert_eq!(
            json(&Message::User("q".into())),
            r#"{"role":"user","content":"q"}"#
        );
        assert_eq!(
            json(&Message::UserParts(vec!["a".into(), "b".into()])),
            r#"{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}"#
        );
        let call = ToolCall {
            id: "c1".into(),
            name: "call_x_y".into(),
            arguments: " ".into(),
        };
        assert_eq!(
            json(&Message::Assistant {
                text: None,
                tool_calls: vec![call]
            }),
            r#"{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"call_x_y","arguments":"{}"}}]}"#
        );
        assert_eq!(
            json(&Message::Assistant {
                text: Some("hi".into()),
                tool_calls: vec![]
            }),
            r#"{"role":"assistant","content":"hi"}"#
        );
        assert_eq!(
            json(&Message::Tool {
                call_id: "c1".into(),
                content: "r".into()
            }),
            r#"{"role":"tool","tool_call_id":"c1","content":"r"}"#
        );
        assert_eq!(
            SystemPrompt::new("s").unwrap().raw(false).get(),
            r#"{"role":"system","content":"s"}"#
        );
    }

    #[test]
    fn texts_are_listed_part_by_part() {
        let m = Message::UserParts(vec!["a".into(), "b".into()]);
        assert_eq!(m.texts().collect::<Vec<_>>(), ["a", "b"]);
        let m = Message::Assistant {
            text: None,
            tool_calls: vec![],
        };
        assert_eq!(m.texts().count(), 0);
    }
}
