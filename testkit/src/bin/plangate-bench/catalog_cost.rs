//! `big-catalog-cost` (issue 29): what a 120-skill catalog costs in LLM input, per step. One
//! question over the `big-catalog` catalog (40 agents × 3 skills, each with a description, tags
//! and a 4-field input schema), answered by a scripted LLM the same way twice:
//!
//! - discovery off (`GATEWAY_TOOL_DISCOVERY_THRESHOLD=0`): call the skill, then answer;
//! - discovery on (the default threshold, 24): `find_skills`, call the skill it found, then
//!   answer.
//!
//! The gateway runs with the default planner model (an Anthropic one, so with cache
//! breakpoints). Reported: the bytes of every LLM request body as the gateway sent it, by step,
//! the largest step's share of the discovery-off step, and the gateway's CPU per plan in each
//! mode (what ranking the skills costs against serialising 121 tools per step).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use plangate_testkit::DelayLog;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::realistic::{answer, big_catalog_agents, tool_calls};
use crate::{Gateway, Report, client, median};

/// The skill the question needs, and what the scripted planner asks `find_skills`.
const SKILL: &str = "call_agent17_search";
const QUERY: &str = "search the records of department 17";
/// Tokens of the scripted answer.
const ANSWER_TOKENS: usize = 20;

/// The scripted planner: find the skill when `find_skills` is offered and nothing was found yet,
/// call it once it is callable (found, or every skill offered), then answer.
fn planner(body: &[u8]) -> Turn {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let tool_results: Vec<&str> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str())
        .collect();
    let offered: Vec<&str> = request["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let called = messages
        .iter()
        .any(|m| m["tool_calls"][0]["function"]["name"] == SKILL);
    let answer_turn = || Turn::Paced {
        events: answer(ANSWER_TOKENS),
        gap: Duration::ZERO,
        mark: None,
    };
    if called {
        return answer_turn();
    }
    if offered.contains(&SKILL) {
        return tool_calls(&[(
            SKILL.to_owned(),
            json!({"query": "quarterly revenue by region", "limit": 5, "include_archived": false}),
        )]);
    }
    if offered.contains(&"find_skills") && tool_results.is_empty() {
        return tool_calls(&[("find_skills".to_owned(), json!({"query": QUERY}))]);
    }
    // find_skills did not list the skill: the plan ends without calling it (and the bench fails).
    Turn::text("not found")
}

/// What one mode of the scenario measured.
struct Measured {
    /// The bytes of each LLM request of the first plan, in order.
    sizes: Vec<usize>,
    /// Gateway CPU per plan, median over `plans`, in µs.
    cpu_us: f64,
}

/// Runs the question `plans` times, one after the other, on a fresh gateway.
async fn run_mode(peer_url: &str, threshold: &str, plans: usize) -> Measured {
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    let llm = {
        let sizes = Arc::clone(&sizes);
        FakeLlm::with_policy(
            Box::new(move |body| {
                sizes.lock().unwrap().push(body.len());
                planner(body)
            }),
            Arc::new(DelayLog::default()),
        )
        .await
    };
    let env = [
        ("GATEWAY_LLM_API_KEY", "bench".to_owned()),
        ("GATEWAY_LLM_BASE_URL", llm.url.clone()),
        ("GATEWAY_TOOL_DISCOVERY_THRESHOLD", threshold.to_owned()),
    ];
    let (gw, _) = Gateway::start(&env);
    let body = json!({"question": "What changed in department 17's records this quarter?",
        "agents": big_catalog_agents(peer_url)})
    .to_string();
    let http = client();
    let mut first = None;
    let mut cpu = Vec::with_capacity(plans);
    for _ in 0..plans {
        let c0 = gw.cpu_ns();
        let resp = http
            .post(format!("{}/plan", gw.url()))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("plan request");
        assert_eq!(resp.status(), 200, "plan refused");
        let mut text = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(piece) = stream.next().await {
            text.extend_from_slice(&piece.expect("plan stream"));
        }
        cpu.push((gw.cpu_ns() - c0) as f64 / 1000.0);
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.ends_with("event: done\ndata: {}\n\n"),
            "stream did not end with done"
        );
        assert!(!text.contains("event: error"), "plan failed: {text}");
        assert!(
            text.contains("\"state\":\"completed\"") && text.contains("\"agent\":\"agent17\""),
            "the skill was not called: {text}"
        );
        assert!(text.contains("Answer"), "no answer: {text}");
        let plan_sizes = std::mem::take(&mut *sizes.lock().unwrap());
        first.get_or_insert(plan_sizes);
    }
    gw.stop();
    Measured {
        sizes: first.unwrap_or_default(),
        cpu_us: median(&mut cpu),
    }
}

pub(crate) async fn measure(r: &mut Report, plans: usize) {
    let peer = FakePeer::start(Script::Instant).await;
    let off = run_mode(&peer.url, "0", plans).await;
    let on = run_mode(&peer.url, "24", plans).await;
    for (mode, m) in [("off", &off), ("on", &on)] {
        r.add(
            Some(&format!("big_catalog_cost_{mode}_cpu_us")),
            &format!(
                "big-catalog-cost: discovery {mode}, gateway CPU per plan (median of {plans})"
            ),
            m.cpu_us,
            "µs",
            "",
        );
    }
    let (off, on) = (off.sizes, on.sizes);
    assert_eq!(off.len(), 2, "discovery off: call, then answer");
    assert_eq!(on.len(), 3, "discovery on: find, call, then answer");
    for (i, bytes) in off.iter().enumerate() {
        r.add(
            Some(&format!("big_catalog_cost_off_step{}_bytes", i + 1)),
            &format!("big-catalog-cost: discovery off, LLM request {}", i + 1),
            *bytes as f64,
            "bytes",
            "",
        );
    }
    let baseline = off.iter().copied().max().unwrap_or(1) as f64;
    for (i, bytes) in on.iter().enumerate() {
        r.add(
            Some(&format!("big_catalog_cost_on_step{}_bytes", i + 1)),
            &format!("big-catalog-cost: discovery on, LLM request {}", i + 1),
            *bytes as f64,
            "bytes",
            "<= 1/5 of off",
        );
    }
    let largest = on.iter().copied().max().unwrap_or(0) as f64;
    // Bytes are deterministic: the target is held, not only reported (this runs in CI's smoke).
    assert!(
        largest <= baseline / 5.0,
        "a discovery-on LLM request of {largest} bytes is over a fifth of {baseline}"
    );
    r.add(
        Some("big_catalog_cost_on_largest_share"),
        "big-catalog-cost: largest discovery-on request / discovery-off request",
        largest / baseline,
        "x",
        "<= 0.20",
    );
    r.add(
        Some("big_catalog_cost_plan_bytes_ratio"),
        "big-catalog-cost: whole plan, discovery on / off (bytes sent to the LLM)",
        on.iter().sum::<usize>() as f64 / off.iter().sum::<usize>().max(1) as f64,
        "x",
        "",
    );
}
