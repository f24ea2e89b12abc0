//! Decoding of streamed `chat.completion.chunk`s, lenient about what real providers send
//! (`finish_reason: ""`, tool-call deltas without `index`, ids that repeat as `""`, usage on every
//! chunk, an `error` object mid-stream). Tool-call deltas accumulate by `index`: the first non-empty
//! id and name win, argument fragments append; a delta without `index` opens a new call when it
//! carries an id and otherwise extends the last one.

use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

/// Token usage of one step (or summed over steps); every field an integer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    pub cached_input_tokens: u64,
}

impl Usage {
    /// Adds another step's usage (saturating).
    pub fn add(&mut self, other: &Self) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
        self.cached_input_tokens = self
            .cached_input_tokens
            .saturating_add(other.cached_input_tokens);
    }
}

/// One complete tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The raw JSON argument text as streamed.
    pub arguments: String,
}

/// What one decoded chunk contributed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkEffect {
    /// Text delta to forward to the client.
    pub text: Option<String>,
    /// A provider error reported inside the stream.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct PartialCall {
    index: Option<i64>,
    id: String,
    name: String,
    arguments: String,
}

/// Accumulates the chunks of one streamed step.
#[derive(Debug, Default)]
pub struct StepAccumulator {
    text: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// llama.cpp's `timings.cache_n`: prompt tokens it reused from its cache.
    reused_prompt_tokens: Option<u64>,
}

/// The finished step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// Extracts a provider error message from an `error` value.
#[must_use]
pub fn error_message(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

/// Reads a `usage` object (prompt/completion/total tokens, cached prompt tokens). Providers put
/// the cached count in different places: `prompt_tokens_details.cached_tokens` (OpenAI, Azure,
/// OpenRouter, DeepSeek, xAI, Z.ai, DashScope, Cerebras), `prompt_cache_hit_tokens` (DeepSeek's
/// own name) or `cache_read_input_tokens` (Anthropic's name, which some gateways pass on).
#[must_use]
pub fn parse_usage(usage: &Value) -> Option<Usage> {
    let obj = usage.as_object()?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let input = n(obj.get("prompt_tokens"));
    let output = n(obj.get("completion_tokens"));
    let total = obj
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(input + output);
    let cached = [
        obj.get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens")),
        obj.get("prompt_cache_hit_tokens"),
        obj.get("cache_read_input_tokens"),
    ]
    .into_iter()
    .map(n)
    .find(|&c| c > 0)
    .unwrap_or(0);
    Some(Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: total,
        cached_input_tokens: cached,
    })
}

/// llama.cpp's count of prompt tokens reused from its cache (`timings.cache_n`, beside `usage`).
fn reused_prompt_tokens(timings: &Value) -> Option<u64> {
    timings.get("cache_n").and_then(Value::as_u64)
}

/// The parts of a chunk the accumulator reads, borrowed from the chunk's text. Most chunks carry
/// one text token: this parse allocates next to nothing for them, where the generic `Value` parse
/// built a map per object (the largest per-token cost in the gateway's own code). Anything it does
/// not accept goes through [`StepAccumulator::apply`] on a `Value` instead, with the same result.
#[derive(serde::Deserialize)]
struct ChunkView<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceView<'a>>>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    timings: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

#[derive(serde::Deserialize)]
struct ChoiceView<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaView<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct DeltaView<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
}

/// The JSON value of a raw part of a chunk (`null` when it does not parse, which it always does:
/// it came out of a parsed chunk).
fn raw_value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

impl StepAccumulator {
    /// Applies one chunk given as the text of its `data:` line; `None` when it is not JSON.
    pub fn apply_data(&mut self, data: &str) -> Option<ChunkEffect> {
        match serde_json::from_str::<ChunkView<'_>>(data) {
            Ok(view) => Some(self.apply_view(view)),
            Err(_) => serde_json::from_str::<Value>(data)
                .ok()
                .map(|chunk| self.apply(&chunk)),
        }
    }

    fn apply_view(&mut self, view: ChunkView<'_>) -> ChunkEffect {
        let mut effect = ChunkEffect::default();
        if let Some(error) = view.error.map(raw_value).filter(|e| !e.is_null()) {
            effect.error = Some(error_message(&error));
            return effect;
        }
        if let Some(usage) = view.usage.map(raw_value).as_ref().and_then(parse_usage) {
            self.usage = Some(usage);
        }
        if let Some(reused) = view
            .timings
            .map(raw_value)
            .as_ref()
            .and_then(reused_prompt_tokens)
        {
            self.reused_prompt_tokens = Some(reused);
        }
        let Some(choice) = view.choices.and_then(|c| c.into_iter().next()) else {
            return effect;
        };
        if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
            self.finish_reason = Some(reason.into_owned());
        }
        let Some(delta) = choice.delta else {
            return effect;
        };
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            self.text.push_str(&text);
            effect.text = Some(text.into_owned());
        }
        if let Some(Value::Array(calls)) = delta.tool_calls.map(raw_value) {
            for call in &calls {
                self.apply_tool_delta(call);
            }
        }
        effect
    }

    /// Applies one chunk (the JSON of one `data:` line).
    pub fn apply(&mut self, chunk: &Value) -> ChunkEffect {
        let mut effect = ChunkEffect::default();
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            effect.error = Some(error_message(error));
            return effect;
        }
        if let Some(usage) = chunk.get("usage").and_then(parse_usage) {
            self.usage = Some(usage);
        }
        if let Some(reused) = chunk.get("timings").and_then(reused_prompt_tokens) {
            self.reused_prompt_tokens = Some(reused);
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return effect;
        };
        if let Some(reason) = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta") else {
            return effect;
        };
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text.push_str(text);
            effect.text = Some(text.to_owned());
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                self.apply_tool_delta(call);
            }
        }
        effect
    }

    fn apply_tool_delta(&mut self, delta: &Value) {
        let index = delta.get("index").and_then(Value::as_i64);
        let id = delta
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let function = delta.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(|a| match a {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            });
        let slot = match index {
            Some(i) => match self.calls.iter().position(|c| c.index == Some(i)) {
                Some(pos) => pos,
                None => {
                    self.calls.push(PartialCall {
                        index: Some(i),
                        ..PartialCall::default()
                    });
                    self.calls.len() - 1
                }
            },
            None if id.is_some() || self.calls.is_empty() => {
                self.calls.push(PartialCall::default());
                self.calls.len() - 1
            }
            None => self.calls.len() - 1,
        };
        let Some(call) = self.calls.get_mut(slot) else {
            return;
        };
        if call.id.is_empty()
            && let Some(id) = id
        {
            id.clone_into(&mut call.id);
        }
        if call.name.is_empty()
            && let Some(name) = name
        {
            name.clone_into(&mut call.name);
        }
        if let Some(args) = arguments {
            call.arguments.push_str(&args);
        }
    }

    /// Ends the step. Calls without a name are dropped; a call without an id gets a fresh one.
    #[must_use]
    pub fn finish(self) -> StepOutput {
        let tool_calls = self
            .calls
            .into_iter()
            .filter(|c| !c.name.is_empty())
            .map(|c| ToolCall {
                id: if c.id.is_empty() {
                    format!("call_{}", uuid::Uuid::new_v4().simple())
                } else {
                    c.id
                },
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        let mut usage = self.usage;
        if let (Some(u), Some(reused)) = (usage.as_mut(), self.reused_prompt_tokens)
            && u.cached_input_tokens == 0
        {
            u.cached_input_tokens = reused;
        }
        StepOutput {
            text: self.text,
            tool_calls,
            finish_reason: self.finish_reason,
            usage,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cached_tokens_are_read_where_each_provider_puts_them() {
        let cached = |usage: serde_json::Value| parse_usage(&usage).unwrap().cached_input_tokens;
        assert_eq!(
            cached(
                serde_json::json!({"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4}})
            ),
            4
        );
        assert_eq!(
            cached(
                serde_json::json!({"prompt_tokens": 9, "prompt_cache_hit_tokens": 5, "prompt_cache_miss_tokens": 4})
            ),
            5
        );
        assert_eq!(
            cached(serde_json::json!({"prompt_tokens": 9, "cache_read_input_tokens": 6})),
            6
        );
        assert_eq!(cached(serde_json::json!({"prompt_tokens": 9})), 0);
        let mut acc = StepAccumulator::default();
        acc.apply_data(r#"{"choices":[],"usage":{"prompt_tokens":139,"completion_tokens":1},"timings":{"cache_n":138}}"#);
        assert_eq!(acc.finish().usage.unwrap().cached_input_tokens, 138);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn the_borrowing_parse_gives_what_the_value_parse_gives() {
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning_content":"hm"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"He said \"hi\"\n"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":null,"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"call_a_b","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"input\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":{"x":1}}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":""}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}"#,
            r#"{"choices":null,"error":null}"#,
            r#"{"choices":{"not":"an array"}}"#,
            r#"{"choices":[{"delta":{"content":["odd"]},"finish_reason":7}]}"#,
            r#"{"delta":"nothing"}"#,
            r#"{"error":{"code":502,"message":"upstream exploded"}}"#,
            r#"{"choices":[{"delta":null}]}"#,
        ];
        let (mut by_view, mut by_value) = (StepAccumulator::default(), StepAccumulator::default());
        for chunk in chunks {
            let value: Value = serde_json::from_str(chunk).unwrap();
            assert_eq!(
                by_view.apply_data(chunk),
                Some(by_value.apply(&value)),
                "{chunk}"
            );
        }
        assert_eq!(by_view.apply_data("not json"), None);
        assert_eq!(by_view.finish(), by_value.finish());
    }

    #[test]
    fn split_arguments_accumulate_by_index() {
        let mut acc = StepAccumulator::default();
        acc.apply(&json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}));
        acc.apply(&json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "", "function": {"arguments": ":1}"}}]}}]}));
        acc.apply(&json!({"choices": [{"delta": {}, "finish_reason": ""}]}));
        acc.apply(&json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}));
        acc.apply(&json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}));
        let out = acc.finish();
        assert_eq!(
            out.tool_calls,
            [ToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into()
            }]
        );
        assert_eq!(out.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(out.usage.unwrap().total_tokens, 5);
    }

    #[test]
    fn missing_index_opens_a_call_per_id() {
        let mut acc = StepAccumulator::default();
        acc.apply(&json!({"choices": [{"delta": {"tool_calls": [{"id": "a", "function": {"name": "x", "arguments": "{}"}}, {"id": "b", "function": {"name": "y", "arguments": "{"}}]}}]}));
        acc.apply(
            &json!({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "}"}}]}}]}),
        );
        let out = acc.finish();
        assert_eq!(out.tool_calls.len(), 2);
        assert_eq!(out.tool_calls[1].arguments, "{}");
    }

    #[test]
    fn error_objects_are_reported() {
        let mut acc = StepAccumulator::default();
        let e = acc.apply(&json!({"error": {"code": 400, "message": "Token limit reached"}}));
        assert_eq!(e.error.as_deref(), Some("Token limit reached"));
    }
}
