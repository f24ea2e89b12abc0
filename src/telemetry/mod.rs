//! Logs, metrics and request ids: a leaf every room may use. Logging goes to stderr through
//! `tracing`, filtered by `RUST_LOG` (default `info`), as text or one JSON object per line
//! (`GATEWAY_LOG_FORMAT`), with ANSI colours only when stderr is a terminal. Secrets never reach a
//! log line: they are `SecretString`s and sensitive header values.

pub mod memory;
pub mod metrics;
#[cfg(feature = "otel")]
pub mod otel;

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, event fields flattened to the top level.
    Json,
}

impl LogFormat {
    /// Reads `GATEWAY_LOG_FORMAT` (`text` or `json`; unset or empty = text).
    ///
    /// # Errors
    /// Any other value, as the message of a configuration error.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.map(str::trim) {
            None | Some("" | "text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(format!("must be \"text\" or \"json\" (got \"{other}\")")),
        }
    }
}

/// Installs the global subscriber (once; later calls are ignored). With the `otel` feature and an
/// OTLP endpoint in the environment, spans are exported as traces too.
pub fn init(format: LogFormat) {
    init_with(format, "info");
}

/// [`init`] with another filter when `RUST_LOG` is unset: `plangate demo` shows only the plan it
/// renders, so its embedded gateway logs warnings and errors only.
pub fn init_with(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let ansi = std::io::stderr().is_terminal();
    let (text, json) = match format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel::layer());
    let _ = registry.try_init();
}

/// Flushes what telemetry still buffers (traces); call before the process exits.
pub fn shutdown() {
    #[cfg(feature = "otel")]
    otel::shutdown();
}

/// Whether a client's `X-Request-Id` may be used as ours: 1–128 visible ASCII characters
/// without quotes or backslashes (it goes into every log line of the request).
#[must_use]
pub fn is_sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'))
}

/// An error and its sources in one line: reqwest's top-level text alone (`error sending
/// request`) hides the cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
