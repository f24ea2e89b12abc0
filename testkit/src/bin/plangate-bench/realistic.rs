//! Production-shaped plans (issue 18): answers streamed one token per chunk with reasoning deltas
//! first and usage last, multi-step plans with parallel calls to streaming peers, a 40-agent
//! catalog, a 200-turn history and 1 MiB artifacts.
//!
//! The fake LLM reads what to answer from a marker in the plan's question,
//! `[rt:<shape>:<tokens>:<gap ms>]`, so one gateway serves every variant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, PeerOptions, Script};
use serde_json::{Value, json};

use crate::{Gateway, Report, floor, median};

/// Reasoning chunks before the first content token of every answer.
const REASONING_CHUNKS: usize = 20;
/// Tokens of an answer in the CPU-per-plan and growth runs (sent back to back).
const SHORT_ANSWER: usize = 20;
/// Tokens of a long answer and their pacing.
pub(crate) const LONG: usize = 300;
pub(crate) const PACE: u64 = 10;

/// Plan shapes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Shape {
    /// The LLM answers at once: nothing but the token stream.
    Tokens,
    /// One tool call (arguments in small chunks), one peer call, then the answer.
    OneTool,
    /// Three steps of four parallel calls to peers that stream their status, then the answer.
    MultiStep,
    /// 40 agents with 3 skills each and input schemas (120 tools); one call, then the answer.
    BigCatalog,
    /// A 200-turn history of about 60 000 tokens; one call, then the answer.
    LongHistory,
    /// One call whose peer streams a 1 MiB artifact, then the answer.
    BigArtifact,
}

impl Shape {
    pub(crate) const ALL: [Self; 6] = [
        Self::Tokens,
        Self::OneTool,
        Self::MultiStep,
        Self::BigCatalog,
        Self::LongHistory,
        Self::BigArtifact,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::OneTool => "one-tool",
            Self::MultiStep => "multi-step",
            Self::BigCatalog => "big-catalog",
            Self::LongHistory => "long-history",
            Self::BigArtifact => "big-artifact",
        }
    }

    fn key(self) -> String {
        self.name().replace('-', "_")
    }

    pub(crate) fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|shape| shape.name() == s)
    }
}

// ---------------------------------------------------------------- the fake LLM's answers

fn chunk(delta: &Value, finish: Option<&str>) -> Bytes {
    Bytes::from(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-rt", "object": "chat.completion.chunk", "created": 1, "model": "bench",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    ))
}

fn usage_chunk(completion: usize) -> Bytes {
    Bytes::from(format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "chatcmpl-rt", "object": "chat.completion.chunk", "created": 1, "model": "bench",
            "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": completion, "total_tokens": 1000 + completion,
            "completion_tokens_details": {"reasoning_tokens": REASONING_CHUNKS}}})
    ))
}

/// An answer: a role chunk, reasoning deltas, `tokens` content deltas (one token each), the
/// finish chunk and a last chunk with the usage (then `[DONE]`). The first content chunk is at
/// index `1 + REASONING_CHUNKS`.
pub(crate) fn answer(tokens: usize) -> Arc<Vec<Bytes>> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<Vec<Bytes>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap();
    Arc::clone(cache.entry(tokens).or_insert_with(|| {
        let mut events = vec![chunk(
            &json!({"role": "assistant", "content": "", "reasoning_content": ""}),
            None,
        )];
        for i in 0..REASONING_CHUNKS {
            events.push(chunk(
                &json!({"reasoning_content": format!(" thought{i}")}),
                None,
            ));
        }
        for i in 0..tokens {
            let token = if i == 0 {
                "Answer".to_owned()
            } else {
                format!(" w{i}")
            };
            events.push(chunk(&json!({"content": token}), None));
        }
        events.push(chunk(&json!({}), Some("stop")));
        events.push(usage_chunk(REASONING_CHUNKS + tokens));
        Arc::new(events)
    }))
}

/// Tool calls streamed the way providers do: a header per call, its arguments in small pieces.
pub(crate) fn tool_calls(calls: &[(String, Value)]) -> Turn {
    let mut events = vec![chunk(&json!({"role": "assistant", "content": null}), None)];
    for (i, (name, args)) in calls.iter().enumerate() {
        events.push(chunk(
            &json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            None,
        ));
        let args = args.to_string();
        let chars: Vec<char> = args.chars().collect();
        for piece in chars.chunks(6) {
            events.push(chunk(
                &json!({"tool_calls": [{"index": i, "function": {"arguments": piece.iter().collect::<String>()}}]}),
                None,
            ));
        }
    }
    events.push(chunk(&json!({}), Some("tool_calls")));
    events.push(usage_chunk(calls.len() * 10));
    Turn::Paced {
        events: Arc::new(events),
        gap: Duration::ZERO,
        mark: None,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The answer for a request whose question carries a realistic marker; `None` otherwise.
pub(crate) fn policy(body: &[u8]) -> Option<Turn> {
    let at = find(body, b"[rt:")?;
    let end = at + body[at..].iter().position(|&b| b == b']')?;
    let marker = std::str::from_utf8(&body[at + 4..end]).ok()?;
    let mut parts = marker.split(':');
    let shape = Shape::from_name(parts.next()?)?;
    let tokens: usize = parts.next()?.parse().ok()?;
    let gap = Duration::from_millis(parts.next()?.parse().ok()?);
    let results = count(body, b"\"role\":\"tool\"");
    let calls: Vec<(String, Value)> = match shape {
        Shape::Tokens => Vec::new(),
        Shape::MultiStep if results < 12 => (0..4)
            .map(|j| {
                (
                    format!("call_a{j}_status"),
                    json!({"input": format!("step {} part {j}", results / 4)}),
                )
            })
            .collect(),
        Shape::BigCatalog if results == 0 => vec![(
            "call_agent17_search".to_owned(),
            json!({"query": "quarterly revenue by region", "limit": 5, "include_archived": false}),
        )],
        Shape::OneTool | Shape::LongHistory if results == 0 => {
            vec![(
                "call_peer_lookup".to_owned(),
                json!({"input": "the thing to look up"}),
            )]
        }
        Shape::BigArtifact if results == 0 => {
            vec![("call_peer_export".to_owned(), json!({"input": "export"}))]
        }
        _ => Vec::new(),
    };
    Some(if calls.is_empty() {
        Turn::Paced {
            events: answer(tokens),
            gap,
            mark: Some(1 + REASONING_CHUNKS),
        }
    } else {
        tool_calls(&calls)
    })
}

// ---------------------------------------------------------------- peers and plan bodies

pub(crate) struct Peers {
    /// Every skill answers `completed` at once.
    instant_url: String,
    /// Streams two `working` status updates with messages, the artifact, then `completed`.
    status_url: String,
    /// Streams one 1 MiB artifact, then `completed`.
    artifact_url: String,
}

pub(crate) async fn start_peers() -> Peers {
    let options = |streaming: bool| PeerOptions {
        card: Some(json!({"name": "peer", "capabilities": {"streaming": streaming}})),
        quiet: true,
        ..PeerOptions::default()
    };
    let instant = FakePeer::start_with(Script::Instant, options(false)).await;
    let status = |state: &str, text: &str| {
        json!({"kind": "status-update", "taskId": "{id}", "status": {"state": state,
            "message": {"kind": "message", "role": "agent", "messageId": "m", "parts": [{"kind": "text", "text": text}]}}})
    };
    let status_peer = FakePeer::start_with(
        Script::StreamTimed(vec![
            (Duration::ZERO, status("working", "Looking it up")),
            (Duration::ZERO, status("working", "Collating the results")),
            (
                Duration::ZERO,
                json!({"kind": "artifact-update", "taskId": "{id}", "artifact": {"artifactId": "a",
                    "parts": [{"kind": "text", "text": "Three findings: revenue up 4 %, costs flat, churn down."}]}}),
            ),
            (
                Duration::ZERO,
                json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "completed"}, "final": true}),
            ),
        ]),
        options(true),
    )
    .await;
    let megabyte: String = "The quick brown fox jumps over the lazy dog. "
        .repeat((1 << 20) / 45 + 1)
        .chars()
        .take(1 << 20)
        .collect();
    let artifact_peer = FakePeer::start_with(
        Script::StreamTimed(vec![
            (
                Duration::ZERO,
                json!({"kind": "artifact-update", "taskId": "{id}", "artifact": {"artifactId": "a",
                    "parts": [{"kind": "text", "text": megabyte}]}}),
            ),
            (
                Duration::ZERO,
                json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "completed"}, "final": true}),
            ),
        ]),
        options(true),
    )
    .await;
    Peers {
        instant_url: instant.url.clone(),
        status_url: status_peer.url.clone(),
        artifact_url: artifact_peer.url.clone(),
    }
}

/// The 40-agent catalog of `big-catalog` (and `big-catalog-cost`): 3 skills each, every one with
/// a short description, tags, output modes and a 4-field input schema (120 skills).
pub(crate) fn big_catalog_agents(url: &str) -> Value {
    (0..40)
        .map(|a| {
            let skills: Vec<Value> = ["lookup", "search", "report"]
                .iter()
                .map(|s| json!({"id": s, "description": format!("The {s} skill of agent {a}: finds and summarises records of department {a}"),
                    "tags": ["finance", "records"], "outputModes": ["text/plain"],
                    "inputSchema": {"type": "object", "properties": {
                        "query": {"type": "string", "description": "What to look for"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                        "include_archived": {"type": "boolean"},
                        "region": {"type": "string", "enum": ["emea", "amer", "apac"]}},
                    "required": ["query"]}}))
                .collect();
            json!({"name": format!("agent{a:02}"), "endpoint": url, "skills": skills})
        })
        .collect()
}

/// The request body of one plan of `shape` (a template: `__N__` is the plan's number).
fn plan_template(shape: Shape, peers: &Peers, tokens: usize, gap_ms: u64) -> String {
    let question = format!(
        "Plan __N__: what changed this quarter? [rt:{}:{tokens}:{gap_ms}]",
        shape.name()
    );
    let one = |skill: &str, url: &str| json!([{"name": "peer", "endpoint": url, "skills": [{"id": skill, "description": "Looks things up"}]}]);
    let mut body = json!({"question": question});
    body["agents"] = match shape {
        Shape::Tokens | Shape::OneTool | Shape::LongHistory => one("lookup", &peers.instant_url),
        Shape::BigArtifact => one("export", &peers.artifact_url),
        Shape::MultiStep => (0..4)
            .map(|j| json!({"name": format!("a{j}"), "endpoint": peers.status_url,
                "skills": [{"id": "status", "description": "Reports the status of one business unit"}]}))
            .collect(),
        Shape::BigCatalog => big_catalog_agents(&peers.instant_url),
    };
    if shape == Shape::LongHistory {
        // 200 turns of 1 200 characters: 200 × 300 = 60 000 tokens by the spec's estimate,
        // below the 89 600-token compaction threshold of a 128 000-token window.
        let filler = "Revenue in the northern region grew while costs stayed flat; the team asked for a breakdown by product line and by month. ";
        let text: String = filler
            .repeat(1200 / filler.len() + 1)
            .chars()
            .take(1200)
            .collect();
        body["history"] = (0..200)
            .map(|i| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                json!({"role": role, "parts": [{"type": "text", "text": format!("{i}: {text}")}]})
            })
            .collect();
    }
    body.to_string()
}

// ---------------------------------------------------------------- driving plans

/// What the client saw of one plan.
struct Run {
    /// When the first `text.delta` frame arrived.
    first_delta: Option<Instant>,
}

/// Runs one plan to `done`, noting the first `text.delta`; `opened` counts plans that got it.
async fn stream_plan(
    http: &reqwest::Client,
    url: &str,
    body: String,
    opened: Option<&AtomicUsize>,
) -> Run {
    let resp = http
        .post(format!("{url}/plan"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("plan request");
    assert_eq!(resp.status(), 200, "plan refused");
    let mut stream = resp.bytes_stream();
    let mut first_delta = None;
    let mut tail = Vec::new();
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("plan stream");
        if first_delta.is_none() && find(&piece, b"event: text.delta").is_some() {
            first_delta = Some(Instant::now());
            if let Some(o) = opened {
                o.fetch_add(1, Ordering::SeqCst);
            }
        }
        assert!(
            find(&piece, b"event: error").is_none(),
            "plan failed: {}",
            String::from_utf8_lossy(&piece)
        );
        tail.extend_from_slice(&piece);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    assert!(
        tail.ends_with(b"event: done\ndata: {}\n\n"),
        "stream did not end with done"
    );
    Run { first_delta }
}

/// Runs `n` plans one after the other; returns the gateway CPU of each (ns) and the runs.
async fn sequential(gw: &Gateway, template: &str, n: usize) -> (Vec<f64>, Vec<Run>) {
    let http = crate::client();
    let (mut cpu, mut runs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let body = template.replace("__N__", &i.to_string());
        let c0 = gw.cpu_ns();
        runs.push(stream_plan(&http, &gw.url(), body, None).await);
        cpu.push((gw.cpu_ns() - c0) as f64);
    }
    (cpu, runs)
}

/// Runs `n` plans, `concurrency` at a time.
async fn many(gw: &Gateway, template: &str, n: usize, concurrency: usize) {
    let http = crate::client();
    let url = gw.url();
    futures::stream::iter(0..n)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            let body = template.replace("__N__", &i.to_string());
            async move { stream_plan(&http, &url, body, None).await }
        })
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
}

/// How many plans of each kind a run makes.
#[derive(Clone, Copy)]
pub(crate) struct Counts {
    /// Sequential plans for CPU per plan.
    pub(crate) cpu_plans: usize,
    /// Paced 300-token plans (and as many 1-token ones) for CPU per token.
    pub(crate) paced_plans: usize,
    /// Plans held open at once for RSS per open plan.
    pub(crate) open_plans: usize,
    /// Plans between the two RSS readings of the growth check.
    pub(crate) growth_plans: usize,
}

pub(crate) struct Setup<'a> {
    pub(crate) llm: &'a FakeLlm,
    pub(crate) peers: Peers,
}

/// The gateway's environment; `GATEWAY_WORKER_THREADS` (runtime comparisons),
/// `GATEWAY_SSE_RESUME` and `GATEWAY_REDIS_URL` (resumable streams, in memory or on Redis) pass
/// through.
pub(crate) fn gateway_env(llm_url: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GATEWAY_LLM_API_KEY", "bench".to_owned()),
        ("GATEWAY_LLM_BASE_URL", llm_url.to_owned()),
        ("GATEWAY_PLANNER_MODEL", "openai/gpt-4o".to_owned()),
    ];
    for var in [
        "GATEWAY_WORKER_THREADS",
        "GATEWAY_SSE_RESUME",
        "GATEWAY_REDIS_URL",
    ] {
        if let Ok(value) = std::env::var(var) {
            env.push((var, value));
        }
    }
    env
}

/// The token-stream figures: CPU per relayed token back to back and paced, and the added time to
/// the first `text.delta`; then the floor beside it.
pub(crate) async fn tokens(r: &mut Report, s: &Setup<'_>, counts: Counts) {
    let (gw, _) = Gateway::start(&gateway_env(&s.llm.url));
    let long = |gap| plan_template(Shape::Tokens, &s.peers, LONG, gap);
    let one = |gap| plan_template(Shape::Tokens, &s.peers, 1, gap);
    sequential(&gw, &long(0), 20).await; // warm-up
    // Back to back: the slope between 300-token and 1-token answers.
    let b2b_plans = counts.paced_plans * 5;
    let (mut long_cpu, _) = sequential(&gw, &long(0), b2b_plans).await;
    let (mut one_cpu, _) = sequential(&gw, &one(0), b2b_plans).await;
    let b2b = (median(&mut long_cpu) - median(&mut one_cpu)) / (LONG - 1) as f64 / 1000.0;
    // Paced: 10 ms between chunks. Alternate so drift hits both alike.
    s.llm.clear_marks();
    let (mut long_cpu, mut one_cpu, mut first) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..counts.paced_plans {
        for (template, into) in [(long(PACE), &mut long_cpu), (one(PACE), &mut one_cpu)] {
            let (cpu, runs) = sequential(&gw, &template, 1).await;
            into.extend(cpu);
            let mark = *s
                .llm
                .marks()
                .last()
                .expect("the fake LLM marked its first token");
            let seen = runs[0].first_delta.expect("a text.delta frame");
            first.push(seen.saturating_duration_since(mark).as_secs_f64() * 1000.0);
        }
    }
    let long_ms = median(&mut long_cpu) / 1e6;
    let paced = (median(&mut long_cpu) - median(&mut one_cpu)) / (LONG - 1) as f64 / 1000.0;
    gw.stop();
    r.add(
        Some("tokens_cpu_per_token_b2b_us"),
        "tokens: gateway CPU per relayed token, back to back (300- vs 1-token answers)",
        b2b,
        "µs",
        "≤ 4 µs",
    );
    r.add(
        Some("tokens_cpu_per_token_paced_us"),
        &format!(
            "tokens: gateway CPU per relayed token, {PACE} ms apart ({} plans each)",
            counts.paced_plans
        ),
        paced,
        "µs",
        "≤ 100 µs",
    );
    r.add(
        Some("tokens_cpu_per_paced_answer_ms"),
        &format!("tokens: gateway CPU for a whole {LONG}-token answer at {PACE} ms"),
        long_ms,
        "ms",
        "",
    );
    r.add(
        Some("tokens_first_delta_added_ms"),
        "tokens: added time to the first text.delta (fake's first content chunk → client's frame; median)",
        median(&mut first),
        "ms",
        "≤ 1 ms",
    );
    floor::measure(r, &s.llm.url, counts.paced_plans).await;
}

/// CPU per plan (sequential, answers back to back), RSS growth over `growth_plans` plans (before
/// any burst, so the baseline is the gateway's own) and RSS per open plan (answers paced, so
/// plans stay open), for one shape.
pub(crate) async fn shape_figures(r: &mut Report, s: &Setup<'_>, shape: Shape, counts: Counts) {
    let key = shape.key();
    let name = shape.name();
    let (gw, _) = Gateway::start(&gateway_env(&s.llm.url));
    let short = plan_template(shape, &s.peers, SHORT_ANSWER, 0);
    sequential(&gw, &short, 20).await; // warm-up
    let (mut cpu, _) = sequential(&gw, &short, counts.cpu_plans).await;
    r.add(
        Some(&format!("{key}_cpu_per_plan_us")),
        &format!(
            "{name}: gateway CPU per plan, sequential, {SHORT_ANSWER}-token answer (median of {})",
            counts.cpu_plans
        ),
        median(&mut cpu) / 1000.0,
        "µs",
        if shape == Shape::OneTool {
            "≤ 500 µs"
        } else {
            ""
        },
    );

    // Growth: a warm-up, a baseline, then many plans in two halves. A heap that settles moves
    // in the first half; a leak keeps growing in the second as much as in the first. On a
    // gateway of its own whose allocator returns freed pages at once (MIMALLOC_PURGE_DECOMMITS:
    // by default freed pages are only marked reusable and still count as resident until the
    // kernel reclaims them, which made the reading swing by tens of percent with 1 MiB plans).
    let gw = {
        gw.stop();
        let mut env = gateway_env(&s.llm.url);
        env.push(("MIMALLOC_PURGE_DECOMMITS", "1".to_owned()));
        Gateway::start(&env).0
    };
    many(&gw, &short, 2000.min(counts.growth_plans), 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = gw.rss_kib() as f64;
    let t0 = Instant::now();
    let half = counts.growth_plans / 2;
    many(&gw, &short, half, 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let middle = gw.rss_kib() as f64;
    many(&gw, &short, counts.growth_plans - half, 4).await;
    let took = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = gw.rss_kib() as f64;
    r.add(
        Some(&format!("{key}_rss_growth_pct")),
        &format!(
            "{name}: RSS growth over {} plans (concurrency 4, {:.0} s; baseline {:.0} KiB)",
            counts.growth_plans,
            took.as_secs_f64(),
            baseline
        ),
        (after - baseline) / baseline * 100.0,
        "%",
        "no growth",
    );
    r.add(
        Some(&format!("{key}_rss_growth_second_half_pct")),
        &format!(
            "{name}: of which in the second {} plans",
            counts.growth_plans - half
        ),
        (after - middle) / baseline * 100.0,
        "%",
        "≈ 0",
    );

    // Open plans: the answer is paced, so every plan stays open through its 300 tokens.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = gw.rss_kib();
    let held = plan_template(shape, &s.peers, LONG, PACE);
    let opened = Arc::new(AtomicUsize::new(0));
    let http = crate::client();
    let tracker = tokio_util::task::TaskTracker::new();
    for i in 0..counts.open_plans {
        let (http, url, opened) = (http.clone(), gw.url(), Arc::clone(&opened));
        let body = held.replace("__N__", &format!("open {i}"));
        tracker.spawn(async move { stream_plan(&http, &url, body, Some(&opened)).await });
    }
    let t0 = Instant::now();
    while opened.load(Ordering::SeqCst) < counts.open_plans {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name}: plans did not reach their answers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = gw.rss_kib();
    tracker.close();
    tracker.wait().await;
    r.add(
        Some(&format!("{key}_rss_per_open_plan_kib")),
        &format!(
            "{name}: resident memory per open plan ({} open, answering)",
            counts.open_plans
        ),
        during.saturating_sub(before) as f64 / counts.open_plans as f64,
        "KiB",
        "",
    );

    gw.stop();
}
