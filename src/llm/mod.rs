//! The planner's LLM: any OpenAI-compatible Chat Completions server (spec §3.4). Streams one step
//! at a time, forwarding text deltas as they arrive and returning the accumulated tool calls.
//!
//! Why not `async-openai`: its client retries on its own schedule (100 ms·2ⁿ, 3 times) and
//! reshapes provider errors, while the contract fixes both the retry schedule (500 ms, 1 000 ms,
//! `Retry-After` capped at 10 s, only before the first chunk) and the error texts (the provider's
//! `error.message`). With `byot` it would only contribute the HTTP call; reqwest +
//! `eventsource-stream` (already needed for streaming peers) give that with exact control.

pub mod message;
pub mod stream;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use tracing::Instrument as _;

use crate::telemetry::error_chain;
use crate::telemetry::metrics::{Metrics, TokenKind};

pub use message::{Message, SystemPrompt};
use stream::{StepAccumulator, error_message};
pub use stream::{StepOutput, ToolCall, Usage};

/// A stream that delivers nothing for this long fails.
const STALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Delays before the retries of a request that failed before any chunk arrived.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(500), Duration::from_millis(1000)];
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How much of an HTTP error body is read (its head is shown in the error message).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Why the bytes under an LLM stream stopped.
#[derive(Debug)]
enum LlmStreamFailure {
    Http(String),
    TooLarge(usize),
}

impl std::fmt::Display for LlmStreamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(e) => f.write_str(e),
            Self::TooLarge(limit) => write!(
                f,
                "LLM response exceeds {limit} bytes (llm.max_response_bytes)"
            ),
        }
    }
}

/// Reads a response body as text, at most `limit` bytes: an error body is cut there, a
/// completion body beyond it fails.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<String, LlmError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| LlmError::Network(error_chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(LlmError::Network(format!(
                "LLM response exceeds {limit} bytes (llm.max_response_bytes)"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The wait a `Retry-After` of `seconds` asks for, capped; saturates instead of panicking on
/// numbers no `Duration` holds (`1e300`).
fn retry_after_delay(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(MAX_RETRY_AFTER)
        .min(MAX_RETRY_AFTER)
}

/// Why an LLM step failed; `Display` is the plan's `error.message` (spec §3.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The provider's own message from a JSON error body or an in-stream `error` object.
    #[error("{0}")]
    Provider(String),
    /// An HTTP error without a usable JSON message.
    #[error("LLM: HTTP {status} {reason}")]
    Http { status: u16, reason: String },
    /// Network failure.
    #[error("LLM: {0}")]
    Network(String),
    /// Nothing arrived for 120 s.
    #[error("LLM stream stalled for 120 s")]
    Stalled,
    /// The plan was aborted.
    #[error("aborted")]
    Aborted,
}

/// One planner request (borrowed: the conversation is serialised, never cloned).
#[derive(Debug, Clone, Copy)]
pub struct ChatRequest<'a> {
    /// The system message, serialised at boot.
    pub system: &'a SystemPrompt,
    /// The conversation after the system message.
    pub messages: &'a [Message],
    /// Tool definitions (a JSON array), pre-serialised.
    pub tools: &'a RawValue,
    /// The closing step: `tool_choice: "none"`.
    pub tools_disabled: bool,
}

/// The shared LLM client.
pub struct LlmClient {
    http: reqwest::Client,
    url: String,
    api_key: SecretString,
    /// The configured model string (e.g. `openrouter/anthropic/claude-sonnet-4.6`).
    model: String,
    fallback_models: Vec<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_response_bytes: usize,
    /// Cache breakpoints on the system message and the last tool of every step.
    cache_breakpoints: bool,
    metrics: std::sync::Arc<Metrics>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// Settings of an [`LlmClient`].
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Bytes one response may have: a step's whole stream, a completion, an error body.
    pub max_response_bytes: usize,
    pub base_url: String,
    pub api_key: SecretString,
    pub model: String,
    pub fallback_models: Vec<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Mark cache breakpoints (see [`is_anthropic`] for the usual choice).
    pub cache_breakpoints: bool,
}

/// Whether a model string names an Anthropic model (`openrouter/anthropic/…`, `anthropic/…`,
/// or a name with `claude` in it, as Bedrock's and Vertex's ids have): the providers that cache a
/// prompt prefix only up to a marked breakpoint.
#[must_use]
pub fn is_anthropic(model: &str) -> bool {
    let model = model.strip_prefix("openrouter/").unwrap_or(model);
    model.starts_with("anthropic/") || model.to_ascii_lowercase().contains("claude")
}

/// The tools array with a cache breakpoint on its last tool, or `None` when there is no tool to
/// mark. The array is the gateway's own compact serialisation, so its last object ends right
/// before the closing bracket.
fn mark_last_tool(tools: &RawValue) -> Option<Box<RawValue>> {
    let text = tools.get().trim_end();
    let body = text.strip_suffix(']')?.trim_end();
    let open = body.strip_suffix('}')?;
    let separator = if open.trim_end().ends_with('{') {
        ""
    } else {
        ","
    };
    let marked = format!("{open}{separator}\"cache_control\":{{\"type\":\"ephemeral\"}}}}]");
    RawValue::from_string(marked).ok()
}

impl LlmClient {
    /// Creates a client on the shared HTTP pool.
    #[must_use]
    pub fn new(http: reqwest::Client, settings: LlmSettings) -> Self {
        let base = settings.base_url.trim_end_matches('/');
        Self {
            http,
            url: format!("{base}/chat/completions"),
            api_key: settings.api_key,
            model: settings.model,
            fallback_models: settings.fallback_models,
            temperature: settings.temperature,
            top_p: settings.top_p,
            max_response_bytes: settings.max_response_bytes,
            cache_breakpoints: settings.cache_breakpoints,
            metrics: std::sync::Arc::new(Metrics::disabled()),
        }
    }

    /// Records requests, time to first token and tokens in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: std::sync::Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counts one finished request (an aborted one is neither ok nor an error) and its tokens.
    fn record(&self, result: Result<Option<&Usage>, &LlmError>) {
        match result {
            Ok(usage) => {
                self.metrics.llm_request(true);
                if let Some(u) = usage {
                    self.metrics.llm_tokens(TokenKind::Input, u.input_tokens);
                    self.metrics.llm_tokens(TokenKind::Output, u.output_tokens);
                    self.metrics
                        .llm_tokens(TokenKind::CachedInput, u.cached_input_tokens);
                }
            }
            Err(LlmError::Aborted) => {}
            Err(_) => self.metrics.llm_request(false),
        }
    }

    /// The configured model string.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    fn is_openrouter(&self) -> bool {
        self.model.starts_with("openrouter/")
    }

    fn wire_model(&self) -> &str {
        self.model
            .strip_prefix("openrouter/")
            .unwrap_or(&self.model)
    }

    /// The JSON body of a streamed planner step, serialised once.
    #[must_use]
    pub fn step_body(&self, request: &ChatRequest<'_>) -> String {
        let openrouter = self.is_openrouter();
        let models: Option<Vec<&str>> =
            (openrouter && !self.fallback_models.is_empty()).then(|| {
                std::iter::once(self.wire_model())
                    .chain(self.fallback_models.iter().map(String::as_str))
                    .collect()
            });
        let marked = if self.cache_breakpoints {
            mark_last_tool(request.tools)
        } else {
            None
        };
        let tools = marked.as_deref().unwrap_or(request.tools);
        let body = StepBody {
            model: self.wire_model(),
            messages: Messages {
                system: request.system.raw(self.cache_breakpoints),
                rest: request.messages,
            },
            tools: (tools.get() != "[]").then_some(tools),
            tool_choice: request.tools_disabled.then_some("none"),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            temperature: self.temperature,
            top_p: self.top_p,
            cache_control: openrouter.then_some(CacheControl { kind: "ephemeral" }),
            route: models.as_ref().map(|_| "fallback"),
            models,
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// Sends the request, retrying transient failures that happen before any response byte.
    async fn send(
        &self,
        bytes: String,
        abort: &CancellationToken,
    ) -> Result<reqwest::Response, LlmError> {
        let mut attempt = 0usize;
        loop {
            let mut auth =
                HeaderValue::from_str(&format!("Bearer {}", self.api_key.expose_secret()))
                    .map_err(|_| {
                        LlmError::Network("API key is not a valid header value".to_owned())
                    })?;
            auth.set_sensitive(true);
            let request = self
                .http
                .post(&self.url)
                .header(AUTHORIZATION, auth)
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            let outcome = tokio::select! {
                () = abort.cancelled() => return Err(LlmError::Aborted),
                r = request.send() => r,
            };
            let (error, retry_after) = match outcome {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(retry_after_delay);
                    // Only the head of an error body is shown; never buffer a hostile one whole.
                    let text = tokio::select! {
                        () = abort.cancelled() => return Err(LlmError::Aborted),
                        t = read_capped(resp, ERROR_BODY_LIMIT) => t.unwrap_or_default(),
                    };
                    let error = http_error(status, &text);
                    let retryable =
                        matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error();
                    if !retryable {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(e) => (LlmError::Network(error_chain(&e)), None),
            };
            let Some(delay) = RETRY_DELAYS.get(attempt) else {
                return Err(error);
            };
            attempt += 1;
            tracing::warn!(attempt, error = %error, "LLM request failed; retrying");
            tokio::select! {
                () = abort.cancelled() => return Err(LlmError::Aborted),
                () = tokio::time::sleep(retry_after.unwrap_or(*delay)) => {}
            }
        }
    }

    /// One non-streaming completion without tools or sampling settings (the compaction
    /// summariser); returns the message text, trimmed.
    ///
    /// # Errors
    /// HTTP, network, provider and abort failures.
    pub async fn complete(
        &self,
        messages: &[Message],
        abort: &CancellationToken,
    ) -> Result<String, LlmError> {
        let result = self.complete_inner(messages, abort).await;
        self.record(result.as_ref().map(|_| None));
        result
    }

    async fn complete_inner(
        &self,
        messages: &[Message],
        abort: &CancellationToken,
    ) -> Result<String, LlmError> {
        let body = CompleteBody {
            model: self.wire_model(),
            messages,
            cache_control: self
                .is_openrouter()
                .then_some(CacheControl { kind: "ephemeral" }),
        };
        let bytes = serde_json::to_string(&body)
            .map_err(|e| LlmError::Network(format!("cannot serialise the request: {e}")))?;
        let response = self.send(bytes, abort).await?;
        let text = tokio::select! {
            () = abort.cancelled() => return Err(LlmError::Aborted),
            r = tokio::time::timeout(STALL_TIMEOUT, read_capped(response, self.max_response_bytes)) => match r {
                Err(_) => return Err(LlmError::Stalled),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(t)) => t,
            },
        };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| LlmError::Network(format!("invalid completion body: {e}")))?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(LlmError::Provider(error_message(e)));
        }
        v.pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| LlmError::Provider("completion has no message content".to_owned()))
    }

    /// Runs one streamed step; `on_text` receives each text delta as it arrives.
    ///
    /// # Errors
    /// HTTP, network, provider, stall and abort failures.
    pub async fn stream_step<F, Fut>(
        &self,
        request: &ChatRequest<'_>,
        abort: &CancellationToken,
        on_text: F,
    ) -> Result<StepOutput, LlmError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let span = tracing::info_span!("llm.step", model = %self.wire_model());
        let result = self
            .stream_step_inner(request, abort, on_text)
            .instrument(span)
            .await;
        self.record(result.as_ref().map(|out| out.usage.as_ref()));
        result
    }

    async fn stream_step_inner<F, Fut>(
        &self,
        request: &ChatRequest<'_>,
        abort: &CancellationToken,
        mut on_text: F,
    ) -> Result<StepOutput, LlmError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let body = self.step_body(request);
        let sent = std::time::Instant::now();
        let response = self.send(body, abort).await?;
        let mut first_chunk = true;
        // The whole step stream is capped: a provider (or anything at the base URL) that never
        // ends an event, or streams without end, cannot grow the gateway's memory.
        let limit = self.max_response_bytes;
        let mut seen = 0usize;
        let bytes = response.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(|e| LlmStreamFailure::Http(error_chain(&e)))?;
            seen = seen.saturating_add(chunk.len());
            if seen > limit {
                return Err(LlmStreamFailure::TooLarge(limit));
            }
            Ok(chunk)
        });
        let mut events = eventsource_stream::EventStream::new(bytes);
        let mut acc = StepAccumulator::default();
        // One abort wait and one stall timer for the whole step, not one per chunk: a provider
        // sends hundreds of chunks per answer, and registering (then dropping) a waiter and a
        // timer for each showed up in the profile. Moving a timer's deadline later is cheap.
        let cancelled = abort.cancelled();
        tokio::pin!(cancelled);
        let stall = tokio::time::sleep(STALL_TIMEOUT);
        tokio::pin!(stall);
        loop {
            let next = tokio::select! {
                biased;
                () = &mut cancelled => return Err(LlmError::Aborted),
                n = events.next() => n,
                () = &mut stall => return Err(LlmError::Stalled),
            };
            stall
                .as_mut()
                .reset(tokio::time::Instant::now() + STALL_TIMEOUT);
            let event = match next {
                None => break,
                Some(Err(eventsource_stream::EventStreamError::Transport(e))) => {
                    return Err(LlmError::Network(e.to_string()));
                }
                Some(Err(e)) => return Err(LlmError::Network(e.to_string())),
                Some(Ok(event)) => event,
            };
            if first_chunk {
                first_chunk = false;
                self.metrics.llm_first_token(sent.elapsed());
            }
            let data = event.data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                break;
            }
            let Some(effect) = acc.apply_data(data) else {
                if event.event == "error" {
                    return Err(LlmError::Provider(data.to_owned()));
                }
                tracing::debug!("skipping an LLM chunk that is not JSON");
                continue;
            };
            if let Some(message) = effect.error {
                return Err(LlmError::Provider(message));
            }
            if let Some(text) = effect.text {
                on_text(text).await;
            }
        }
        Ok(acc.finish())
    }
}

#[derive(serde::Serialize)]
struct StepBody<'a> {
    model: &'a str,
    messages: Messages<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    models: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'static str>,
}

/// The system message followed by the conversation, as one JSON array.
struct Messages<'a> {
    system: &'a RawValue,
    rest: &'a [Message],
}

/// The body of a non-streaming completion.
#[derive(serde::Serialize)]
struct CompleteBody<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

impl serde::Serialize for Messages<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.rest.len() + 1))?;
        seq.serialize_element(self.system)?;
        for m in self.rest {
            seq.serialize_element(m)?;
        }
        seq.end()
    }
}

#[derive(serde::Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(serde::Serialize)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The error for a non-2xx answer: the provider's `error.message` when the body has one.
fn http_error(status: StatusCode, body: &str) -> LlmError {
    if let Ok(v) = serde_json::from_str::<Value>(body)
        && let Some(e) = v.get("error").filter(|e| !e.is_null())
    {
        let message = error_message(e);
        if !message.is_empty() {
            return LlmError::Provider(message);
        }
    }
    LlmError::Http {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retry_after_saturates_instead_of_panicking() {
        assert_eq!(retry_after_delay(1.5), Duration::from_millis(1500));
        assert_eq!(retry_after_delay(1e300), MAX_RETRY_AFTER);
        assert_eq!(retry_after_delay(f64::MAX), MAX_RETRY_AFTER);
    }

    fn client(model: &str, fallback: &[&str]) -> LlmClient {
        LlmClient::new(
            reqwest::Client::builder().build().unwrap(),
            LlmSettings {
                max_response_bytes: 1 << 20,
                base_url: "http://x/v1/".into(),
                api_key: SecretString::from("k"),
                model: model.into(),
                fallback_models: fallback.iter().map(|s| (*s).to_owned()).collect(),
                temperature: Some(0.3),
                top_p: None,
                cache_breakpoints: is_anthropic(model),
            },
        )
    }

    #[test]
    fn openrouter_extras_only_for_openrouter_models() {
        let tools = serde_json::value::to_raw_value(&[json!({})]).unwrap();
        let system = SystemPrompt::new("S").unwrap();
        let req = ChatRequest {
            system: &system,
            messages: &[],
            tools: &tools,
            tools_disabled: true,
        };
        let body = |c: LlmClient| serde_json::from_str::<Value>(&c.step_body(&req)).unwrap();
        let b = body(client("openrouter/anthropic/claude", &["openai/gpt-4o"]));
        assert_eq!(b["model"], "anthropic/claude");
        assert_eq!(b["cache_control"], json!({"type": "ephemeral"}));
        assert_eq!(b["models"], json!(["anthropic/claude", "openai/gpt-4o"]));
        assert_eq!(b["route"], "fallback");
        assert_eq!(b["tool_choice"], "none");
        assert_eq!(b["temperature"], 0.3);
        assert!(b.get("top_p").is_none());
        // An Anthropic model: breakpoints on the system message (as a text part) and the last
        // tool, besides OpenRouter's top-level `cache_control`.
        assert_eq!(
            b["messages"],
            json!([{"role": "system", "content": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}]}])
        );
        assert_eq!(
            b["tools"],
            json!([{"cache_control": {"type": "ephemeral"}}])
        );
        let b = body(client("gpt-4o", &["x"]));
        assert!(b.get("cache_control").is_none() && b.get("models").is_none());
        assert_eq!(b["messages"], json!([{"role": "system", "content": "S"}]));
        assert_eq!(b["tools"], json!([{}]));
        assert_eq!(client("m", &[]).url, "http://x/v1/chat/completions");
    }

    #[test]
    fn the_last_tool_gets_the_breakpoint_and_only_it() {
        let tools = serde_json::value::to_raw_value(
            &json!([{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b", "parameters": {}}}]),
        )
        .unwrap();
        let marked: Value = serde_json::from_str(mark_last_tool(&tools).unwrap().get()).unwrap();
        assert!(marked[0].get("cache_control").is_none());
        assert_eq!(marked[1]["cache_control"], json!({"type": "ephemeral"}));
        assert_eq!(marked[1]["function"]["name"], "b");
        let empty = serde_json::value::to_raw_value(&json!([])).unwrap();
        assert!(mark_last_tool(&empty).is_none());
        assert!(is_anthropic("openrouter/anthropic/claude-sonnet-4.6"));
        assert!(is_anthropic("anthropic.claude-3-haiku"));
        assert!(!is_anthropic("openrouter/openai/gpt-4o") && !is_anthropic("gpt-4o"));
    }

    #[test]
    fn http_errors_prefer_the_provider_message() {
        assert_eq!(
            http_error(
                StatusCode::UNAUTHORIZED,
                r#"{"error":{"message":"User not found.","code":401}}"#
            )
            .to_string(),
            "User not found."
        );
        assert_eq!(
            http_error(StatusCode::TOO_MANY_REQUESTS, "slow down").to_string(),
            "LLM: HTTP 429 Too Many Requests"
        );
    }
}
