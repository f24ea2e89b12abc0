//! The gateway's metrics (`GET /metrics`, Prometheus text format). Each gateway owns its own
//! recorder (no process-global state: two gateways in one process count apart), and every label
//! comes from a fixed set of values: nothing a client sends becomes a label (agent names and
//! questions would make the series, and the memory, unbounded).

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Seconds buckets shared by every duration histogram (5 ms … 30 min).
const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0,
];

/// How a plan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOutcome {
    /// The stream ended with `final`.
    Final,
    /// The stream ended with `error` (LLM failure, deadline, shutdown, internal).
    Error,
    /// The client went away before the end.
    Disconnected,
    /// Refused before the stream opened (4xx, 503).
    Rejected,
}

impl PlanOutcome {
    /// The label value (and the `outcome` field of the `plan finished` log line).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Final => "final",
            Self::Error => "error",
            Self::Disconnected => "disconnected",
            Self::Rejected => "rejected",
        }
    }
}

/// How a peer call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerOutcome {
    Completed,
    Failed,
    /// The remote task waits for input, authentication or payment.
    InputRequired,
    /// Aborted (deadline, disconnect, shutdown) or canceled by the peer.
    Canceled,
}

impl PeerOutcome {
    const ALL: [Self; 4] = [
        Self::Completed,
        Self::Failed,
        Self::InputRequired,
        Self::Canceled,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::InputRequired => "input_required",
            Self::Canceled => "canceled",
        }
    }
}

/// Token kinds of `plangate_llm_tokens_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Input,
    Output,
    CachedInput,
}

/// The routes `plangate_http_requests_total` knows; anything else is `unmatched`.
pub const ROUTES: [&str; 23] = [
    "/plan",
    "/health",
    "/ready",
    "/metrics",
    "/.well-known/did.json",
    "/playground",
    "/openapi.json",
    "/a2a",
    "/a2a/",
    "/.well-known/agent-card.json",
    "/.well-known/agent.json",
    "/did/resolve",
    "/a2a/did/resolve",
    "/v1/chat/completions",
    "/v1/models",
    "/mcp",
    "/plan/{plan_id}/events",
    "/plan/{plan_id}",
    "/plan/{plan_id}/tasks/{task_id}/confirm",
    "/plan/{plan_id}/tasks/{task_id}/input",
    "/plan/{plan_id}/files/{file_id}",
    "/sessions",
    "/sessions/{session_id}",
];

/// The metrics of one gateway: handles registered once, cheap to update.
#[derive(Debug)]
pub struct Metrics {
    recorder: Option<PrometheusRecorder>,
    plans_in_flight: Gauge,
    plan_duration: Histogram,
    peer_calls: [Counter; 4],
    peer_call_duration: Histogram,
    llm_ok: Counter,
    llm_error: Counter,
    llm_ttft: Histogram,
    tokens: [Counter; 3],
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn labeled(name: &'static str, label: &'static str, value: &'static str) -> Key {
    Key::from_parts(name, vec![Label::new(label, value)])
}

impl Metrics {
    /// Metrics that are recorded and rendered.
    #[must_use]
    pub fn enabled() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        Self::with_recorder(Some(recorder))
    }

    /// Metrics that cost nothing and render nothing (`GATEWAY_METRICS=off`).
    #[must_use]
    pub fn disabled() -> Self {
        Self::with_recorder(None)
    }

    fn with_recorder(recorder: Option<PrometheusRecorder>) -> Self {
        let counter = |key: Key| {
            recorder
                .as_ref()
                .map_or_else(Counter::noop, |r| r.register_counter(&key, &METADATA))
        };
        let gauge = |key: Key| {
            recorder
                .as_ref()
                .map_or_else(Gauge::noop, |r| r.register_gauge(&key, &METADATA))
        };
        let histogram = |key: Key| {
            recorder
                .as_ref()
                .map_or_else(Histogram::noop, |r| r.register_histogram(&key, &METADATA))
        };
        if let Some(r) = &recorder {
            let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
                r.describe_counter(KeyName::from_const_str(name), unit, help.into());
            };
            describe("plangate_plans_total", None, "Plans by how they ended");
            r.describe_gauge(
                KeyName::from_const_str("plangate_plans_in_flight"),
                None,
                "Plans whose streams are open".into(),
            );
            r.describe_histogram(
                KeyName::from_const_str("plangate_plan_duration_seconds"),
                Some(Unit::Seconds),
                "Wall time of a plan from admission to its last frame".into(),
            );
            describe(
                "plangate_peer_calls_total",
                None,
                "A2A peer calls by outcome",
            );
            r.describe_histogram(
                KeyName::from_const_str("plangate_peer_call_duration_seconds"),
                Some(Unit::Seconds),
                "Wall time of one peer call (send to settled)".into(),
            );
            describe("plangate_llm_requests_total", None, "LLM steps by outcome");
            r.describe_histogram(
                KeyName::from_const_str("plangate_llm_time_to_first_token_seconds"),
                Some(Unit::Seconds),
                "Time from sending an LLM step to its first chunk".into(),
            );
            describe("plangate_llm_tokens_total", None, "LLM tokens by kind");
            describe(
                "plangate_http_requests_total",
                None,
                "HTTP responses by route template and status",
            );
        }
        let peer_calls = PeerOutcome::ALL
            .map(|o| counter(labeled("plangate_peer_calls_total", "outcome", o.as_str())));
        let tokens = ["input", "output", "cached_input"]
            .map(|k| counter(labeled("plangate_llm_tokens_total", "kind", k)));
        Self {
            plans_in_flight: gauge(Key::from_static_name("plangate_plans_in_flight")),
            plan_duration: histogram(Key::from_static_name("plangate_plan_duration_seconds")),
            peer_calls,
            peer_call_duration: histogram(Key::from_static_name(
                "plangate_peer_call_duration_seconds",
            )),
            llm_ok: counter(labeled("plangate_llm_requests_total", "outcome", "ok")),
            llm_error: counter(labeled("plangate_llm_requests_total", "outcome", "error")),
            llm_ttft: histogram(Key::from_static_name(
                "plangate_llm_time_to_first_token_seconds",
            )),
            tokens,
            recorder,
        }
    }

    /// Whether `/metrics` is served.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.recorder.is_some()
    }

    /// The exposition text (empty when disabled).
    #[must_use]
    pub fn render(&self) -> String {
        self.handle().map_or_else(String::new, |h| {
            h.run_upkeep();
            h.render()
        })
    }

    /// Drains buffered histogram samples (run periodically: without scrapes they would grow).
    pub fn upkeep(&self) {
        if let Some(h) = self.handle() {
            h.run_upkeep();
        }
    }

    fn handle(&self) -> Option<PrometheusHandle> {
        self.recorder.as_ref().map(PrometheusRecorder::handle)
    }

    /// A plan was admitted and its stream opened.
    pub fn plan_started(&self) {
        self.plans_in_flight.increment(1.0);
    }

    /// A plan of caller `key` (its label: a key's name, `jwt`, `default`, `anonymous`) that
    /// was started has ended.
    pub fn plan_ended(&self, outcome: PlanOutcome, took: Duration, key: &str) {
        self.plans_in_flight.decrement(1.0);
        self.plan_duration.record(took.as_secs_f64());
        self.plan_counted(outcome, key);
    }

    /// Counts a plan outcome of caller `key` (alone for rejected plans, which never started;
    /// `unknown` for a request refused before its caller was known). The label's values are
    /// the keys file's names and a few fixed words, never taken from a request.
    pub fn plan_counted(&self, outcome: PlanOutcome, key: &str) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let series = Key::from_parts(
            "plangate_plans_total",
            vec![
                Label::new("outcome", outcome.as_str()),
                Label::new("key", key.to_owned()),
            ],
        );
        recorder.register_counter(&series, &METADATA).increment(1);
    }

    /// A peer call ended.
    pub fn peer_call(&self, outcome: PeerOutcome, took: Duration) {
        let i = PeerOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.peer_calls[i].increment(1);
        self.peer_call_duration.record(took.as_secs_f64());
    }

    /// An LLM step (or completion) ended.
    pub fn llm_request(&self, ok: bool) {
        if ok {
            self.llm_ok.increment(1);
        } else {
            self.llm_error.increment(1);
        }
    }

    /// The first chunk of an LLM stream arrived `took` after the request was sent.
    pub fn llm_first_token(&self, took: Duration) {
        self.llm_ttft.record(took.as_secs_f64());
    }

    /// Tokens an LLM step reported.
    pub fn llm_tokens(&self, kind: TokenKind, n: u64) {
        let i = match kind {
            TokenKind::Input => 0,
            TokenKind::Output => 1,
            TokenKind::CachedInput => 2,
        };
        self.tokens[i].increment(n);
    }

    /// An HTTP response: `route` must be one of [`ROUTES`] (else it counts as `unmatched`).
    pub fn http_response(&self, route: &str, status: u16) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let route = ROUTES
            .iter()
            .find(|r| **r == route)
            .copied()
            .unwrap_or("unmatched");
        let key = Key::from_parts(
            "plangate_http_requests_total",
            vec![
                Label::new("route", route),
                Label::new("status", status.to_string()),
            ],
        );
        recorder.register_counter(&key, &METADATA).increment(1);
    }
}
