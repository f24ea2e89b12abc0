//! Humans in the loop on `/plan`: a call marked `confirm` waits for the client's yes
//! (`task.confirm`, then `POST /plan/{plan_id}/tasks/{task_id}/confirm`), and in an interactive
//! plan a peer's question goes to the client (`task.input_required`, then `…/input`) and its
//! answer back to the peer on the same task.

use std::time::Duration;

use plangate::config::AuthMode;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "owner-token";
const OTHER: &str = "other-token";

async fn gateway(mut c: plangate::config::Config) -> TestGateway {
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![TOKEN.to_owned().into(), OTHER.to_owned().into()];
    TestGateway::spawn(c).await
}

async fn start(url: &str, body: &Value) -> reqwest::Response {
    let resp = http()
        .post(format!("{url}/plan"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp
}

/// Reads until the whole first `event` frame has arrived; the text read so far.
async fn read_frame(resp: &mut reqwest::Response, event: &str) -> String {
    let needle = format!("event: {event}\n");
    let mut seen = read_until(resp, &needle).await;
    while !seen[seen.find(&needle).unwrap_or(0)..].contains("\n\n") {
        seen.push_str(&read_until(resp, "\n\n").await);
    }
    seen
}

/// The data of the first `event` frame in `text`.
fn data_of(text: &str, event: &str) -> Value {
    frames_with_ids(text)
        .into_iter()
        .find(|(_, e, _)| e == event)
        .map(|(_, _, d)| d)
        .unwrap_or_else(|| panic!("no {event} in {text}"))
}

/// Reads the rest of a stream; every frame of the whole stream (`head` and the rest).
async fn rest(head: String, resp: reqwest::Response) -> Vec<Frame> {
    let tail = tokio::time::timeout(Duration::from_secs(30), resp.text())
        .await
        .unwrap()
        .unwrap();
    let frames = parse_frames(&(head + &tail));
    assert_frames_match_schemas(&frames);
    assert_eq!(frames.last().map(|f| f.event.as_str()), Some("done"));
    frames
}

async fn post_answer(
    url: &str,
    token: &str,
    plan: &str,
    task: &str,
    kind: &str,
    body: &Value,
) -> (u16, Value) {
    let resp = http()
        .post(format!("{url}/plan/{plan}/tasks/{task}/{kind}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn paying_agent(peer: &FakePeer) -> Value {
    json!({"name": "pay", "endpoint": peer.url,
        "skills": [{"id": "charge", "description": "Charges a card", "confirm": true}]})
}

#[tokio::test]
async fn a_confirmed_call_runs_and_a_declined_one_tells_the_model_why() {
    let peer = FakePeer::start(Script::Instant).await;
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_pay_charge", json!({"input": "10 EUR"})),
        Turn::text("paid"),
        Turn::call("c2", "call_pay_charge", json!({"input": "900 EUR"})),
        Turn::text("not paid"),
    ])
    .await;
    let gw = gateway(llm_config(&llm.url)).await;
    let body = |q: &str| json!({"question": q, "agents": [paying_agent(&peer)]});

    // Approved: task.confirm, then task.started with the same task id, and the call is made.
    let mut resp = start(&gw.url, &body("pay 10")).await;
    let head = read_frame(&mut resp, "task.confirm").await;
    assert!(!head.contains("event: task.started"), "{head}");
    let plan = plan_id_of(&head);
    let confirm = data_of(&head, "task.confirm");
    assert_eq!(
        (
            confirm["task_id"].as_str(),
            confirm["skill"].as_str(),
            confirm["input"]["input"].as_str()
        ),
        (Some("c1"), Some("charge"), Some("10 EUR"))
    );
    assert!(confirm["timeout_ms"].as_u64().unwrap() > 0);
    // Another caller cannot answer it; an unknown task is 404; a bad body is 400 naming it.
    let (status, _) = post_answer(
        &gw.url,
        OTHER,
        &plan,
        "c1",
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        "zz",
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body400) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        "c1",
        "confirm",
        &json!({"approve": "yes"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body400["issues"][0]["path"], "approve", "{body400}");
    // It waits for a confirmation, not for input.
    let (status, _) =
        post_answer(&gw.url, TOKEN, &plan, "c1", "input", &json!({"text": "x"})).await;
    assert_eq!(status, 409);
    let (status, accepted) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        "c1",
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let frames = rest(head, resp).await;
    let names = events(&frames);
    let confirm_at = names.iter().position(|e| *e == "task.confirm").unwrap();
    let started_at = names.iter().position(|e| *e == "task.started").unwrap();
    assert!(confirm_at < started_at, "{names:?}");
    assert_eq!(find(&frames, "task.started")[0]["task_id"], "c1");
    assert_eq!(finished(&frames)["state"], "completed");
    assert_eq!(peer.requests().len(), 1);
    // A second answer to it is 409.
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        "c1",
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 409);

    // Declined: task.confirm then task.finished `rejected` with the reason, never started; the
    // model's next request says the user declined, and why.
    let mut resp = start(&gw.url, &body("pay 900")).await;
    let head = read_frame(&mut resp, "task.confirm").await;
    let plan = plan_id_of(&head);
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        "c2",
        "confirm",
        &json!({"approve": false, "reason": "too expensive"}),
    )
    .await;
    assert_eq!(status, 202);
    let frames = rest(head, resp).await;
    assert!(
        !events(&frames).contains(&"task.started"),
        "{:?}",
        events(&frames)
    );
    assert!(!events(&frames).contains(&"task.artifact"));
    let done = finished(&frames);
    assert_eq!(
        (done["state"].as_str(), done["reason"].as_str()),
        (Some("rejected"), Some("too expensive"))
    );
    assert_eq!(peer.requests().len(), 1, "the declined call was not made");
    let last = llm.requests().last().cloned().unwrap();
    let tool = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .unwrap()
        .to_string();
    assert!(
        tool.contains("declined") && tool.contains("too expensive"),
        "{tool}"
    );
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        "c2",
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 409);
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn fan_out_asks_too_and_no_answer_declines_in_time() {
    let peer = FakePeer::start(Script::Instant).await;
    let mut c = config();
    c.plan.confirm_timeout = Duration::from_millis(400);
    let gw = gateway(c).await;
    let agents = json!([
        {"name": "pay", "endpoint": peer.url, "confirm": true,
         "skills": [{"id": "charge", "description": "Charges a card"}]},
        peer.agent("lookup", "find"),
    ]);
    // Approved in fan-out mode: both skills are called.
    let mut resp = start(&gw.url, &json!({"question": "q", "agents": agents})).await;
    let head = read_frame(&mut resp, "task.confirm").await;
    let plan = plan_id_of(&head);
    let task = data_of(&head, "task.confirm")["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        &task,
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 202);
    let frames = rest(head, resp).await;
    assert_eq!(find(&frames, "task.started").len(), 2);
    assert_eq!(peer.requests().len(), 2);

    // Nobody answers: declined with reason `no answer` after plan.confirm_timeout_ms, and the
    // plan still ends with its answer; the other skill was called.
    let resp = start(&gw.url, &json!({"question": "q2", "agents": agents})).await;
    let frames = collect(resp).await;
    let confirm = find(&frames, "task.confirm")[0].clone();
    assert!(confirm["timeout_ms"].as_u64().unwrap() <= 400);
    let rejected: Vec<_> = find(&frames, "task.finished")
        .into_iter()
        .filter(|f| f["state"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["reason"], "no answer");
    assert!(
        answer(&frames).contains("(declined) no answer"),
        "{}",
        answer(&frames)
    );
    assert_eq!(peer.requests().len(), 3);
    // Answering after the plan ended is 409, for the plan's tasks only.
    let plan = find(&frames, "plan")[0]["plan_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let task = confirm["task_id"].as_str().unwrap();
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        task,
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        "never",
        "confirm",
        &json!({"approve": true}),
    )
    .await;
    assert_eq!(status, 404);
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

/// Starts an interactive plan over `agent` whose peer asks "Which city?", answers "Lisbon" and
/// checks the call completes with the peer's echo of it; the question frame and every frame.
async fn answer_which_city(
    gw: &TestGateway,
    question: &str,
    agent: Value,
    protocol: &str,
) -> (Value, Vec<Frame>) {
    let mut resp = start(
        &gw.url,
        &json!({"question": question, "agents": [agent], "preferences": {"interactive": true}}),
    )
    .await;
    let head = read_frame(&mut resp, "task.input_required").await;
    let plan = plan_id_of(&head);
    let asked = data_of(&head, "task.input_required");
    assert_eq!(asked["prompt"], "Which city?", "{protocol}: {asked}");
    let task = asked["task_id"].as_str().unwrap();
    let (status, _) = post_answer(
        &gw.url,
        TOKEN,
        &plan,
        task,
        "input",
        &json!({"text": "Lisbon"}),
    )
    .await;
    assert_eq!(status, 202);
    let frames = rest(head, resp).await;
    let done = finished(&frames);
    assert_eq!(
        (done["state"].as_str(), done["remote_state"].as_str()),
        (Some("completed"), Some("completed")),
        "{protocol}: {done}"
    );
    assert!(
        answer(&frames).contains("echo: Lisbon"),
        "{protocol}: {}",
        answer(&frames)
    );
    (asked, frames)
}

#[tokio::test]
async fn a_peers_question_is_answered_on_the_same_task_in_both_dialects() {
    let peer = FakePeer::start(Script::AskOnce("Which city?".into())).await;
    let gw = gateway(config()).await;
    for protocol in ["0.3", "1.0"] {
        let agent = json!({"name": "travel", "endpoint": peer.url, "protocol": protocol,
            "skills": [{"id": "book", "description": "Books a trip"}]});
        let before = peer.requests().len();
        let (asked, frames) = answer_which_city(&gw, "book me a trip", agent, protocol).await;
        assert_eq!(asked["agent"], "travel");
        let done = finished(&frames);
        // The answer went to the peer on the task it left waiting.
        let sends: Vec<_> = peer.requests()[before..]
            .iter()
            .filter(|r| r.method == "message/send" || r.method == "SendMessage")
            .map(|r| r.body.clone())
            .collect();
        assert_eq!(sends.len(), 2, "{protocol}: {sends:?}");
        let first_task = done["remote_task_id"].as_str().unwrap();
        assert_eq!(
            sends[1]["params"]["message"]["taskId"], first_task,
            "{protocol}"
        );
    }
    // Without `interactive` nothing changes: the call ends with the peer's question.
    let frames = collect(
        start(
            &gw.url,
            &json!({"question": "book", "agents": [peer.agent("travel", "book")]}),
        )
        .await,
    )
    .await;
    let done = finished(&frames);
    assert_eq!(
        (done["state"].as_str(), done["remote_state"].as_str()),
        (Some("completed"), Some("input-required"))
    );
    assert!(!events(&frames).contains(&"task.input_required"));
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn the_openai_door_declines_what_needs_a_yes() {
    let peer = FakePeer::start(Script::Instant).await;
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_pay_charge", json!({"input": "10 EUR"})),
        Turn::text("could not pay"),
    ])
    .await;
    let dir = std::env::temp_dir().join(format!("plangate-humans-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &dir,
        json!({"catalogs": {"default": {"agents": [paying_agent(&peer)]}}}).to_string(),
    )
    .unwrap();
    let mut c = llm_config(&llm.url);
    c.catalog_file = Some(dir);
    let gw = gateway(c).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(TOKEN)
        .json(&json!({"model": "plangate", "messages": [{"role": "user", "content": "pay"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _: Value = resp.json().await.unwrap();
    assert!(peer.requests().is_empty(), "the call was not made");
    let tool = llm.requests()[1]["messages"].to_string();
    assert!(tool.contains("this door cannot ask for approval"), "{tool}");
    gw.stop().await;
}

#[tokio::test]
async fn the_real_a2a_sdk_agent_gets_its_answer_on_the_same_task() {
    let Some(url) = peer_url("PLANGATE_A2A_URL", "PLANGATE_REQUIRE_A2A") else {
        return;
    };
    let gw = gateway(config()).await;
    for protocol in ["1.0", "0.3"] {
        let agent = json!({"name": "sdk", "endpoint": url, "protocol": protocol,
            "skills": [{"id": "echo", "description": "Echoes"}]});
        // The SDK agent asks what follows `ask:`, and echoes the answer on the same task.
        let (_, frames) = answer_which_city(&gw, "ask:Which city?", agent, protocol).await;
        let done = finished(&frames);
        // The SDK completed the task it had left waiting: it holds both turns.
        let remote = done["remote_task_id"].as_str().unwrap();
        let stored = peer_rpc(&url, "GetTask", json!({"id": remote}), Some("1.0")).await;
        let history = stored["result"]["history"].to_string();
        assert!(
            history.contains("ask:Which city?") && history.contains("Lisbon"),
            "{protocol}: {stored}"
        );
    }
    gw.stop().await;
}
