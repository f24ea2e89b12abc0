//! Every door gives the same answer and refuses the same way.
//!
//! One scripted two-step LLM plan (narration and a call to the example agent, then the answer)
//! runs through `/plan`, the A2A door (a2a-sdk client, v0.3 and 1.0, blocking and streaming),
//! the OpenAI door (openai SDK, streaming and not) and the MCP door (mcp SDK): each answer is the
//! text of both steps joined with a blank line, which is what a `/plan` client gets by joining
//! each `part_id`'s `text.delta`s. Then, with `server.max_concurrent_plans = 1` and a plan
//! running, one plan-starting request through each door is refused with the same status class and
//! `Retry-After`, and each is counted once in `plangate_plans_total{outcome="rejected"}`.

use std::time::Duration;

use plangate::config::{AuthMode, Config};
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "cross-door-token";
const NARRATION: &str = "Let me ask the example agent.";
const ANSWER: &str = "The agent said: echo: hi";

fn gateway_config(mut c: Config, catalogs: &Value) -> Config {
    let path = std::env::temp_dir().join(format!("plangate-cross-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, serde_json::to_vec(catalogs).unwrap()).unwrap();
    c.catalog_file = Some(path);
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![TOKEN.to_owned().into()];
    c
}

/// The two LLM steps of one plan.
fn two_steps() -> [Turn; 2] {
    [
        Turn::Tools(
            NARRATION.to_owned(),
            vec![(
                "call_1".to_owned(),
                "call_example_echo".to_owned(),
                json!({"input": "hi"}).to_string(),
            )],
        ),
        Turn::text(ANSWER),
    ]
}

/// A `/plan` client's answer: each `part_id`'s deltas in order, parts joined with a blank line.
fn joined_by_part(frames: &[Frame]) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    for delta in find(frames, "text.delta") {
        let part = delta["part_id"].as_str().unwrap();
        let text = delta["delta"].as_str().unwrap();
        match parts.last_mut() {
            Some((id, joined)) if id == part => joined.push_str(text),
            _ => parts.push((part.to_owned(), text.to_owned())),
        }
    }
    parts
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn artifact_text(artifact: &Value) -> &str {
    artifact["parts"][0]["text"].as_str().unwrap_or("")
}

#[tokio::test]
async fn every_door_gives_the_same_answer_and_refuses_alike() {
    let (Some(clients), Some(a2a)) = (clients_python(), a2a_python()) else {
        return;
    };
    let agent = ExampleAgent::start(Duration::from_millis(10)).await;
    let hang = FakePeer::start(Script::WorkForever).await;
    // /plan, A2A 1.0 and 0.3 (blocking, streaming), OpenAI (complete, stream), MCP: 8 plans;
    // then one that calls a peer that never finishes (it holds the only place).
    let mut turns: Vec<Turn> = (0..8).flat_map(|_| two_steps()).collect();
    turns.push(Turn::call(
        "call_h",
        "call_hang_work",
        json!({"input": "wait"}),
    ));
    let llm = FakeLlm::start(turns).await;
    let mut c = gateway_config(
        llm_config(&llm.url),
        &json!({"catalogs": {
            "default": {"agents": [agent.agent()]},
            "hang": {"agents": [hang.agent("hang", "work")]}}}),
    );
    c.server.max_concurrent_plans = 1;
    let gw = TestGateway::spawn(c).await;
    let expected = format!("{NARRATION}\n\n{ANSWER}");

    // /plan.
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(TOKEN)
        .json(&json!({"question": "say hi", "catalog": "default"}))
        .send()
        .await
        .unwrap();
    let frames = collect(resp).await;
    assert_eq!(events(&frames).last(), Some(&"done"));
    let plan_answer = joined_by_part(&frames);
    assert_eq!(plan_answer, expected, "/plan");

    // A2A, both dialects, blocking and streaming.
    for dialect in ["1.0", "0.3"] {
        let seen = run_json(
            &a2a,
            "tests/peers/a2a_door_client.py",
            &json!({"url": gw.url, "token": TOKEN, "dialect": dialect, "steps": [
                {"op": "send", "text": "say hi", "mode": "blocking"},
                {"op": "send", "text": "say hi", "mode": "stream"},
            ]}),
        )
        .await;
        let r = &seen["results"];
        let task = &r[0]["events"][0]["task"];
        assert_eq!(
            artifact_text(&task["artifacts"][0]),
            expected,
            "A2A {dialect} blocking: {task}"
        );
        let streamed: Vec<&str> = r[1]["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.get("artifactUpdate").is_some())
            .map(|e| artifact_text(&e["artifactUpdate"]["artifact"]))
            .collect();
        assert_eq!(streamed, [expected.as_str()], "A2A {dialect} streaming");
    }

    // OpenAI, not streaming then streaming.
    let seen = run_json(
        &clients,
        "tests/clients/openai_client.py",
        &json!({"url": gw.url, "token": TOKEN, "model": "plangate", "question": "say hi"}),
    )
    .await;
    assert_eq!(seen["complete"]["content"], expected.as_str(), "{seen}");
    assert_eq!(seen["stream"]["content"], expected.as_str(), "{seen}");

    // MCP.
    let seen = run_json(
        &clients,
        "tests/clients/mcp_client.py",
        &json!({"url": gw.url, "token": TOKEN, "question": "say hi"}),
    )
    .await;
    assert_eq!(seen["ask"]["text"], expected.as_str(), "{seen}");
    assert_eq!(seen["ask"]["isError"], false);
    assert_eq!(
        llm.remaining(),
        1,
        "every door ran its plan through the LLM"
    );
    wait_for_idle(&gw.state).await;

    refusals_are_alike(&gw, &hang).await;
    gw.stop().await;
}

/// `plangate_plans_total{outcome="rejected"}` now.
async fn rejected(gw: &TestGateway) -> f64 {
    total(
        &scrape(&gw.url).await,
        "plangate_plans_total",
        &[("outcome", "rejected")],
    )
}

/// With the one place taken, each door refuses a new plan: 503, `Retry-After: 1`, counted once.
async fn refusals_are_alike(gw: &TestGateway, hang: &FakePeer) {
    // The MCP session is opened first: `initialize` never needs a place.
    let session = mcp_session(&gw.url, TOKEN).await;
    // The plan that holds the place.
    let mut running = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(TOKEN)
        .json(&json!({"question": "wait", "catalog": "hang"}))
        .send()
        .await
        .unwrap();
    read_until(&mut running, "task.started").await;
    assert!(!gw.state.is_ready());

    let post = |path: &str, body: Value| {
        http()
            .post(format!("{}{path}", gw.url))
            .bearer_auth(TOKEN)
            .json(&body)
    };
    let message = |kind: bool| {
        let mut m = json!({"messageId": uuid::Uuid::new_v4().to_string(),
            "parts": [{"text": "q"}]});
        if kind {
            m["role"] = json!("user");
            m["parts"][0]["kind"] = json!("text");
        } else {
            m["role"] = json!("ROLE_USER");
        }
        m
    };
    let attempts = vec![
        (
            "/plan",
            post("/plan", json!({"question": "q", "catalog": "default"})),
        ),
        (
            "A2A 0.3",
            post(
                "/a2a",
                json!({"jsonrpc": "2.0", "id": 1, "method": "message/send",
                    "params": {"message": message(true)}}),
            ),
        ),
        (
            "A2A 1.0",
            post(
                "/a2a",
                json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                    "params": {"message": message(false)}}),
            )
            .header("a2a-version", "1.0"),
        ),
        (
            "OpenAI",
            post(
                "/v1/chat/completions",
                json!({"model": "plangate", "messages": [{"role": "user", "content": "q"}]}),
            ),
        ),
        (
            "MCP",
            post(
                "/mcp",
                json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "ask", "arguments": {"question": "q"}}}),
            )
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session),
        ),
    ];
    // A card, /health and an MCP tools/list still answer at the cap.
    for path in ["/.well-known/agent-card.json", "/health"] {
        let resp = http()
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let list = post(
        "/mcp",
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .header("accept", "application/json, text/event-stream")
    .header("mcp-session-id", &session)
    .send()
    .await
    .unwrap();
    assert_eq!(list.status(), 200);

    for (door, request) in attempts {
        let before = rejected(gw).await;
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 503, "{door}");
        assert_eq!(resp.headers()["retry-after"], "1", "{door}");
        let body: Value = resp.json().await.unwrap();
        let said = body.to_string();
        assert!(said.contains("too many plans in flight"), "{door}: {said}");
        assert_eq!(rejected(gw).await, before + 1.0, "{door} counted once");
    }
    assert_eq!(
        hang.count("message/send"),
        1,
        "no refused request reached a peer"
    );
    drop(running);
    wait_for_idle(&gw.state).await;
}
