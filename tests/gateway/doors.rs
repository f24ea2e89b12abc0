//! The OpenAI-compatible and MCP doors, driven by the official `openai` and `mcp` Python SDKs
//! (tests/clients/*.py) against live gateways whose server-side catalog holds the example agent,
//! in fan-out mode and in LLM mode with the fake LLM; and clients that leave mid-stream.

use std::time::Duration;

use plangate::config::{AuthMode, Config};
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "doors-token";

fn gateway_config(mut c: Config, catalogs: &Value) -> Config {
    let path = std::env::temp_dir().join(format!("plangate-doors-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, serde_json::to_vec(catalogs).unwrap()).unwrap();
    c.catalog_file = Some(path);
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![TOKEN.to_owned().into()];
    c
}

#[tokio::test]
async fn the_openai_sdk_uses_the_fleet_as_a_model_in_fan_out_mode() {
    let Some(py) = clients_python() else {
        return;
    };
    let agent = ExampleAgent::start(Duration::from_millis(20)).await;
    let gw = TestGateway::spawn(gateway_config(
        config(),
        &json!({"catalogs": {"default": {"agents": [agent.agent()]}, "ops": {"agents": [agent.agent()]}}}),
    ))
    .await;
    let seen = run_json(&py, "tests/clients/openai_client.py", &json!({"url": gw.url, "token": TOKEN, "model": "plangate/ops", "question": "hello models"}),
    )
    .await;
    assert_eq!(
        seen["models"],
        json!(["plangate", "plangate/default", "plangate/ops"])
    );
    let complete = &seen["complete"];
    assert!(
        complete["content"]
            .as_str()
            .unwrap()
            .contains("echo: hello models"),
        "{complete}"
    );
    assert!(
        complete["content"]
            .as_str()
            .unwrap()
            .contains("HELLO MODELS")
    );
    assert_eq!(complete["finish"], "stop");
    assert!(complete["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let stream = &seen["stream"];
    assert!(
        stream["content"].as_str().unwrap().contains("HELLO MODELS"),
        "{stream}"
    );
    assert_eq!(stream["finish"], "stop");
    assert_eq!(
        stream["usage"]["total_tokens"], 0,
        "fan-out spends no tokens"
    );
    let events: Vec<(&str, &str)> = stream["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["event"].as_str().unwrap(), a["skill"].as_str().unwrap()))
        .collect();
    for expected in [
        ("task.started", "echo"),
        ("task.started", "shout"),
        ("task.finished", "echo"),
        ("task.finished", "shout"),
    ] {
        assert!(events.contains(&expected), "{expected:?}: {events:?}");
    }
    assert_eq!(
        seen["unknown_model"]["status"], 404,
        "{}",
        seen["unknown_model"]
    );
    assert_eq!(seen["unknown_model"]["code"], "model_not_found");
    assert_eq!(seen["bad_token"]["raised"], "AuthenticationError");
    assert_eq!(seen["tools"]["status"], 400);
    assert_eq!(seen["tools"]["code"], "tools_not_supported");
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn the_openai_sdk_in_llm_mode_gets_the_answer_usage_and_plan_errors() {
    let Some(py) = clients_python() else {
        return;
    };
    let agent = ExampleAgent::start(Duration::from_millis(20)).await;
    // Two plans that call the agent and answer, then one whose LLM refuses (both forms).
    let turn = || {
        [
            Turn::call("call_1", "call_example_echo", json!({"input": "hi"})),
            Turn::text("The agent said: echo: hi"),
        ]
    };
    let mut turns: Vec<Turn> = turn().into_iter().chain(turn()).collect();
    turns.push(Turn::Status(
        400,
        r#"{"error":{"message":"no such model"}}"#.into(),
    ));
    turns.push(Turn::Status(
        400,
        r#"{"error":{"message":"no such model"}}"#.into(),
    ));
    let llm = FakeLlm::start(turns).await;
    let gw = TestGateway::spawn(gateway_config(
        llm_config(&llm.url),
        &json!({"catalogs": {"default": {"agents": [agent.agent()]}}}),
    ))
    .await;
    let seen = run_json(
        &py,
        "tests/clients/openai_client.py",
        &json!({"url": gw.url, "token": TOKEN, "model": "plangate", "question": "say hi",
            "failing_model": "plangate"}),
    )
    .await;
    assert_eq!(
        seen["complete"]["content"], "The agent said: echo: hi",
        "{seen}"
    );
    assert!(
        seen["complete"]["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{seen}"
    );
    assert_eq!(seen["stream"]["content"], "The agent said: echo: hi");
    assert!(
        seen["stream"]["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(seen["failing"]["status"], 500, "{}", seen["failing"]);
    assert!(
        seen["failing"]["message"]
            .as_str()
            .unwrap()
            .contains("no such model")
    );
    assert_eq!(
        seen["failing_stream"]["raised"], "APIError",
        "{}",
        seen["failing_stream"]
    );
    assert!(
        seen["failing_stream"]["message"]
            .as_str()
            .unwrap()
            .contains("no such model")
    );
    // The history and the system message reached the planner.
    let first = llm.requests()[0]["messages"].to_string();
    assert!(first.contains("Answer in one line."), "{first}");
    assert!(first.contains("Nothing yet."), "{first}");
    gw.stop().await;
}

#[tokio::test]
async fn the_mcp_sdk_asks_the_fleet_with_progress_notifications() {
    let Some(py) = clients_python() else {
        return;
    };
    let agent = ExampleAgent::start(Duration::from_millis(20)).await;
    let failing = FakePeer::start(Script::Fail).await;
    let gw = TestGateway::spawn(gateway_config(
        config(),
        &json!({"catalogs": {"default": {"description": "The example agent", "agents": [agent.agent()]},
            "broken": {"agents": [failing.agent("broken", "s")]}}}),
    ))
    .await;
    let seen = run_json(&py, "tests/clients/mcp_client.py", &json!({"url": gw.url, "token": TOKEN, "question": "hello mcp", "failing_catalog": "broken"}),
    )
    .await;
    assert_eq!(seen["server"], "plangate");
    assert_eq!(seen["protocol"], "2025-11-25");
    assert_eq!(seen["tools"], json!(["ask", "list_catalogs"]));
    assert_eq!(seen["catalogs"][1]["name"], "default");
    assert_eq!(seen["catalogs"][1]["agents"], json!(["example"]));
    let ask = &seen["ask"];
    assert_eq!(ask["isError"], false, "{ask}");
    assert!(ask["text"].as_str().unwrap().contains("HELLO MCP"), "{ask}");
    let messages: Vec<&str> = ask["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    for expected in [
        "example/echo started",
        "example/shout started",
        "example/echo completed",
    ] {
        assert!(messages.contains(&expected), "{expected}: {messages:?}");
    }
    let values: Vec<f64> = ask["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["progress"].as_f64().unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
    // In fan-out mode a failed peer is part of the answer; the call itself succeeds.
    assert!(
        seen["failing"]["text"].as_str().unwrap().contains("broken"),
        "{seen}"
    );
    assert_eq!(seen["unknown_catalog"]["isError"], true);
    assert!(
        seen["unknown_catalog"]["text"]
            .as_str()
            .unwrap()
            .contains("known: broken, default")
    );
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn an_mcp_call_whose_plan_fails_is_an_error_result() {
    let Some(py) = clients_python() else {
        return;
    };
    let agent = ExampleAgent::start(Duration::from_millis(20)).await;
    let llm = FakeLlm::start(vec![
        Turn::text("All good."),
        Turn::Status(400, r#"{"error":{"message":"no such model"}}"#.into()),
    ])
    .await;
    let gw = TestGateway::spawn(gateway_config(
        llm_config(&llm.url),
        &json!({"catalogs": {"default": {"agents": [agent.agent()]}, "other": {"agents": []}}}),
    ))
    .await;
    let seen = run_json(
        &py,
        "tests/clients/mcp_client.py",
        &json!({"url": gw.url, "token": TOKEN, "question": "hi", "failing_catalog": "other"}),
    )
    .await;
    assert_eq!(seen["ask"]["text"], "All good.");
    assert_eq!(seen["ask"]["isError"], false);
    assert_eq!(seen["failing"]["isError"], true, "{seen}");
    assert!(
        seen["failing"]["text"]
            .as_str()
            .unwrap()
            .contains("no such model")
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_either_door_mid_stream_cancels_the_plan_and_its_peer_tasks() {
    let slow = FakePeer::start(Script::WorkForever).await;
    let gw = TestGateway::spawn(gateway_config(
        config(),
        &json!({"catalogs": {"default": {"agents": [slow.agent("slow", "s")]}}}),
    ))
    .await;

    // OpenAI door, streaming.
    let mut resp = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(TOKEN)
        .json(&json!({"model": "plangate", "stream": true,
            "messages": [{"role": "user", "content": "wait"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    wait_for_sends(&slow, 1).await;
    read_until(&mut resp, "task.started").await;
    drop(resp);
    wait_until(
        "tasks/cancel after the OpenAI client left",
        Duration::from_secs(10),
        || slow.count("tasks/cancel") == 1,
    )
    .await;

    // MCP door: initialize, then a tool call with progress whose client leaves.
    let init = http()
        .post(format!("{}/mcp", gw.url))
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = init.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    let mut resp = http()
        .post(format!("{}/mcp", gw.url))
        .bearer_auth(TOKEN)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "ask", "arguments": {"question": "wait"}, "_meta": {"progressToken": "p"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    wait_for_sends(&slow, 2).await;
    read_until(&mut resp, "slow/s started").await;
    drop(resp);
    wait_until(
        "tasks/cancel after the MCP client left",
        Duration::from_secs(10),
        || slow.count("tasks/cancel") == 2,
    )
    .await;
    wait_for_idle(&gw.state).await;
    assert_eq!(gw.state.stats().open_plans, 0);
    gw.stop().await;
}

#[tokio::test]
async fn mcp_sessions_are_required_and_kept_per_token() {
    let mut c = gateway_config(config(), &json!({"catalogs": {"default": {"agents": []}}}));
    c.auth.tokens.push("other".to_owned().into());
    let gw = TestGateway::spawn(c).await;
    let post = |token: &str, session: Option<&str>, body: Value| {
        let mut req = http()
            .post(format!("{}/mcp", gw.url))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send()
    };
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    assert_eq!(post(TOKEN, None, ping.clone()).await.unwrap().status(), 400);
    assert_eq!(
        post(TOKEN, Some("nope"), ping.clone())
            .await
            .unwrap()
            .status(),
        404
    );
    let init = post(
        TOKEN,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "1999-01-01"}}),
    )
    .await
    .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = init.json().await.unwrap();
    assert_eq!(
        body["result"]["protocolVersion"], "2025-11-25",
        "our newest for an unknown one"
    );
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        post(TOKEN, Some(&session), note).await.unwrap().status(),
        202
    );
    assert_eq!(
        post(TOKEN, Some(&session), ping.clone())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("other", Some(&session), ping.clone())
            .await
            .unwrap()
            .status(),
        404
    );
    let unknown = post(
        TOKEN,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/list"}),
    )
    .await
    .unwrap();
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32601);
    let no_auth = http()
        .post(format!("{}/mcp", gw.url))
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    let get = http().get(format!("{}/mcp", gw.url)).send().await.unwrap();
    assert_eq!(get.status(), 405);
    let delete = http()
        .delete(format!("{}/mcp", gw.url))
        .bearer_auth(TOKEN)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert_eq!(
        post(TOKEN, Some(&session), ping).await.unwrap().status(),
        404
    );
    let foreign = http()
        .post(format!("{}/mcp", gw.url))
        .bearer_auth(TOKEN)
        .header("origin", "https://evil.example")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    gw.stop().await;
}

#[tokio::test]
async fn the_mcp_sdk_is_asked_through_elicitation_to_approve_decline_and_answer() {
    let Some(py) = clients_python() else {
        return;
    };
    let pay = FakePeer::start(Script::Instant).await;
    let travel = FakePeer::start(Script::AskOnce("Which city?".into())).await;
    let gw = TestGateway::spawn(gateway_config(
        config(),
        &json!({"catalogs": {
            "default": {"agents": [{"name": "pay", "endpoint": pay.url,
                "skills": [{"id": "charge", "description": "Charges a card", "confirm": true}]}]},
            "travel": {"agents": [travel.agent("travel", "book")]}}}),
    ))
    .await;
    let seen = run_json(
        &py,
        "tests/clients/mcp_elicit_client.py",
        &json!({"url": gw.url, "token": TOKEN, "calls": [
            {"question": "pay 10", "answer": {"action": "accept", "content": {"approve": true}}},
            {"question": "pay 20", "answer": {"action": "accept",
                "content": {"approve": false, "reason": "too much"}}},
            {"question": "pay 30", "answer": {"action": "decline"}},
            {"question": "book", "catalog": "travel",
                "answer": {"action": "accept", "content": {"answer": "Lisbon"}}},
        ]}),
    )
    .await;
    let calls = seen["calls"].as_array().unwrap();
    // Accepted with approve: the call was asked about, then made.
    assert_eq!(calls[0]["asked"].as_array().unwrap().len(), 1, "{seen}");
    let asked = &calls[0]["asked"][0];
    assert!(
        asked["message"].as_str().unwrap().contains("pay/charge"),
        "{asked}"
    );
    assert_eq!(asked["schema"]["required"], json!(["approve"]));
    assert!(
        calls[0]["text"].as_str().unwrap().contains("echo: pay 10"),
        "{seen}"
    );
    // Declined in the form, and declined by the client: never made.
    assert!(
        calls[1]["text"]
            .as_str()
            .unwrap()
            .contains("(declined) too much"),
        "{seen}"
    );
    assert!(
        calls[2]["text"]
            .as_str()
            .unwrap()
            .contains("(declined) the MCP client answered decline"),
        "{seen}"
    );
    assert_eq!(pay.requests().len(), 1);
    // A peer's question is asked too; the answer goes back on the peer's task.
    assert!(
        calls[3]["asked"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Which city?"),
        "{seen}"
    );
    assert!(
        calls[3]["text"].as_str().unwrap().contains("echo: Lisbon"),
        "{seen}"
    );

    // A client without the capability is not asked: the call is declined with the reason.
    let seen = run_json(
        &py,
        "tests/clients/mcp_elicit_client.py",
        &json!({"url": gw.url, "token": TOKEN, "elicitation": false,
            "calls": [{"question": "pay 40"}]}),
    )
    .await;
    let call = &seen["calls"][0];
    assert_eq!(call["asked"], json!([]), "{seen}");
    assert!(
        call["text"]
            .as_str()
            .unwrap()
            .contains("this client cannot be asked"),
        "{seen}"
    );
    assert_eq!(pay.requests().len(), 1);
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}
