//! Conversations kept on the server (`GATEWAY_SESSIONS=on`), on one instance (the memory
//! backend): a turn without `history` reaches the LLM with the earlier turns, each agent gets
//! back the `contextId` it chose and its waiting task, `created:false` keeps the first plan's
//! session id, conversations are per token, `DELETE`, one plan at a time (409), TTL expiry,
//! `max_turns` folded into a summary, the routes, and nothing of it while off.

use std::time::Duration;

use plangate::config::{AuthMode, Config};
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, PeerOptions, Script};
use serde_json::{Value, json};

use crate::support::*;

const A: &str = "token-a";
const B: &str = "token-b";

fn with_sessions(mut c: Config) -> Config {
    c.sessions.enabled = true;
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![A.to_owned().into(), B.to_owned().into()];
    c
}

async fn post(url: &str, token: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{url}/plan"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn turn(url: &str, token: &str, body: &Value) -> Vec<Frame> {
    let resp = post(url, token, body).await;
    assert_eq!(resp.status(), 200, "plan refused: {:?}", resp.text().await);
    let frames = collect(resp).await;
    assert_eq!(events(&frames).last(), Some(&"done"));
    frames
}

async fn get(url: &str, token: &str, path: &str) -> (u16, Value) {
    let resp = http()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Fails unless `body` matches `schemas/<file>`.
fn assert_matches(file: &str, body: &Value) {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    if let Some(err) = validator.iter_errors(body).next() {
        panic!("{body} does not match {file}: {err}");
    }
}

fn session(frames: &[Frame]) -> &Value {
    find(frames, "session")[0]
}

/// The texts of a recorded LLM request's messages, as `role: text` lines.
fn transcript(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                _ => String::new(),
            };
            format!("{}: {text}", m["role"].as_str().unwrap())
        })
        .collect()
}

/// The `contextId` and `taskId` of every send a peer received, in order.
fn sends(peer: &FakePeer) -> Vec<(Option<String>, Option<String>)> {
    peer.requests()
        .iter()
        .filter(|r| matches!(r.method.as_str(), "message/send" | "SendMessage"))
        .map(|r| {
            let m = &r.body["params"]["message"];
            (
                m["contextId"].as_str().map(str::to_owned),
                m["taskId"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_turn_without_history_continues_the_conversation_of_its_token_only() {
    let v03 = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let v10 = FakePeer::start_with(
        Script::Complete { working_polls: 0 },
        PeerOptions {
            v1_only: true,
            ..PeerOptions::default()
        },
    )
    .await;
    let llm = FakeLlm::start(vec![
        Turn::calls(&[
            ("c1", "call_old_look", json!({"input": "weather in Oslo"})),
            ("c2", "call_new_look", json!({"input": "weather in Oslo"})),
        ]),
        Turn::text("It is cold in Oslo."),
        Turn::calls(&[
            ("c3", "call_old_look", json!({"input": "and tomorrow"})),
            ("c4", "call_new_look", json!({"input": "and tomorrow"})),
        ]),
        Turn::text("Colder tomorrow."),
        Turn::text("Hello B."),
    ])
    .await;
    let gw = TestGateway::spawn(with_sessions(llm_config(&llm.url))).await;
    let agents = json!([v03.agent("old", "look"),
        {"name": "new", "endpoint": v10.url, "protocol": "1.0", "skills": [{"id": "look"}]}]);
    let one = turn(
        &gw.url,
        A,
        &json!({"question": "What is the weather in Oslo?", "session_id": "chat-1", "agents": agents}),
    )
    .await;
    assert_eq!(session(&one)["created"], true);
    assert_eq!(session(&one)["external_session_id"], "chat-1");
    let internal = session(&one)["session_id"].as_str().unwrap().to_owned();
    let two = turn(
        &gw.url,
        A,
        &json!({"question": "And tomorrow?", "session_id": "chat-1", "agents": agents}),
    )
    .await;
    assert_eq!(session(&two)["created"], false);
    assert_eq!(session(&two)["session_id"], internal.as_str());
    assert_eq!(answer(&two), "Colder tomorrow.");

    // Turn 2 reached the LLM with turn 1's question and answer, as client-sent history would.
    let requests = llm.requests();
    assert_eq!(
        transcript(&requests[2])[1..],
        [
            "user: What is the weather in Oslo?",
            "assistant: It is cold in Oslo.",
            "user: And tomorrow?"
        ]
    );
    // Each peer was sent, on turn 2, the contextId it answered turn 1 with (the fake picks its
    // own, "ctx"), in its own dialect.
    for peer in [&v03, &v10] {
        let s = sends(peer);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].0.as_deref(), Some(internal.as_str()));
        assert_eq!(s[1].0.as_deref(), Some("ctx"));
    }

    // Token B has its own conversation under the same session_id.
    let other = turn(
        &gw.url,
        B,
        &json!({"question": "Hi", "session_id": "chat-1", "agents": []}),
    )
    .await;
    assert_eq!(session(&other)["created"], true);
    assert_ne!(session(&other)["session_id"], internal.as_str());
    assert_eq!(transcript(&llm.requests()[4])[1..], ["user: Hi"]);

    // The routes show each token its own conversations.
    let (status, listed) = get(&gw.url, A, "/sessions").await;
    assert_eq!(status, 200);
    assert_matches("session-list.schema.json", &listed);
    let listed = listed["sessions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["session_id"], "chat-1");
    assert_eq!(listed[0]["turns"], 2);
    assert_eq!(listed[0]["first_question"], "What is the weather in Oslo?");
    let (status, shown) = get(&gw.url, A, "/sessions/chat-1").await;
    assert_eq!(status, 200);
    assert_matches("session.schema.json", &shown);
    assert_frames_match_schemas(&one);
    assert_frames_match_schemas(&two);
    let turns = shown["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["question"], "What is the weather in Oslo?");
    assert_eq!(turns[0]["answer"], "It is cold in Oslo.");
    assert_eq!(turns[1]["plan_id"], find(&two, "plan")[0]["plan_id"]);
    let calls = turns[0]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["agent"], "old");
    assert_eq!(calls[0]["skill"], "look");
    assert_eq!(calls[0]["state"], "completed");
    let old_finished = find(&one, "task.finished")
        .into_iter()
        .find(|f| f["agent"] == "old")
        .unwrap();
    assert_eq!(calls[0]["remote_task_id"], old_finished["remote_task_id"]);
    assert!(turns[0]["usage"].is_object());
    let (_, b_view) = get(&gw.url, B, "/sessions/chat-1").await;
    assert_eq!(b_view["turns"][0]["question"], "Hi");
    let (status, _) = get(&gw.url, B, "/sessions/nope").await;
    assert_eq!(status, 404);

    // DELETE: the next plan with that id starts a new conversation.
    let deleted = http()
        .delete(format!("{}/sessions/chat-1", gw.url))
        .bearer_auth(A)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, _) = get(&gw.url, A, "/sessions/chat-1").await;
    assert_eq!(status, 404);
    let again = http()
        .delete(format!("{}/sessions/chat-1", gw.url))
        .bearer_auth(A)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    // B's conversation is untouched.
    assert_eq!(get(&gw.url, B, "/sessions/chat-1").await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn a_task_left_waiting_for_the_user_is_continued_on_the_next_turn() {
    let v03 = FakePeer::start(Script::InputRequired("Which city?".into())).await;
    let v10 = FakePeer::start_with(
        Script::InputRequired("Which city?".into()),
        PeerOptions {
            v1_only: true,
            ..PeerOptions::default()
        },
    )
    .await;
    let gw = TestGateway::spawn(with_sessions(config())).await;
    let agents = json!([v03.agent("old", "book"),
        {"name": "new", "endpoint": v10.url, "protocol": "1.0", "skills": [{"id": "book"}]}]);
    let one = turn(
        &gw.url,
        A,
        &json!({"question": "Book a table", "session_id": "s", "agents": agents}),
    )
    .await;
    let finished = find(&one, "task.finished");
    let waiting: Vec<String> = ["old", "new"]
        .iter()
        .map(|agent| {
            let f = finished.iter().find(|f| f["agent"] == *agent).unwrap();
            assert_eq!(f["remote_state"], "input-required");
            f["remote_task_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let (_, shown) = get(&gw.url, A, "/sessions/s").await;
    assert_eq!(
        shown["agents"]["old"]["waiting_task_id"],
        waiting[0].as_str()
    );
    turn(
        &gw.url,
        A,
        &json!({"question": "Oslo", "session_id": "s", "agents": agents}),
    )
    .await;
    // Fan-out calls each agent once per plan: turn 2's send answers turn 1's task.
    for (peer, task) in [&v03, &v10].iter().zip(&waiting) {
        let s = sends(peer);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[1].0.as_deref(), Some("ctx"));
        assert_eq!(s[1].1.as_deref(), Some(task.as_str()));
    }
    gw.stop().await;
}

#[tokio::test]
async fn one_plan_at_a_time_per_conversation() {
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(800))).await;
    let gw = TestGateway::spawn(with_sessions(config())).await;
    let body = json!({"question": "slow", "session_id": "busy", "agents": [peer.agent("p", "s")]});
    let mut first = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(A)
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    read_until(&mut first, "event: plan").await;
    let second = post(
        &gw.url,
        A,
        &json!({"question": "another", "session_id": "busy", "agents": []}),
    )
    .await;
    assert_eq!(second.status(), 409);
    let error: Value = second.json().await.unwrap();
    assert_eq!(error["error"], "session_busy");
    assert!(
        error["detail"].as_str().unwrap().contains("busy"),
        "{error}"
    );
    // A retry of the running plan keeps its duplicate answer.
    let retry = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(A)
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let retry = collect(retry).await;
    assert_eq!(events(&retry), ["session", "duplicate", "done"]);
    // Another token's conversation of the same id is not held up.
    turn(
        &gw.url,
        B,
        &json!({"question": "q", "session_id": "busy", "agents": []}),
    )
    .await;
    // Once the first plan is done, the next turn goes ahead.
    let text = first.text().await.unwrap();
    assert!(text.contains("event: done"));
    let next = turn(
        &gw.url,
        A,
        &json!({"question": "now", "session_id": "busy", "agents": []}),
    )
    .await;
    assert_eq!(session(&next)["created"], false);
    gw.stop().await;
}

#[tokio::test]
async fn a_conversation_expires_after_its_ttl() {
    let mut c = with_sessions(config());
    c.sessions.ttl = Duration::from_millis(300);
    let gw = TestGateway::spawn(c).await;
    let body = json!({"question": "q", "session_id": "t", "agents": []});
    let first = turn(&gw.url, A, &body).await;
    assert_eq!(get(&gw.url, A, "/sessions/t").await.0, 200);
    let limit = std::time::Instant::now() + Duration::from_secs(5);
    while get(&gw.url, A, "/sessions/t").await.0 != 404 {
        assert!(std::time::Instant::now() < limit, "never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = turn(&gw.url, A, &body).await;
    assert_eq!(session(&again)["created"], true);
    assert_ne!(session(&again)["session_id"], session(&first)["session_id"]);
    gw.stop().await;
}

#[tokio::test]
async fn turns_past_max_turns_are_folded_into_the_summary() {
    let llm = FakeLlm::start(vec![
        Turn::text("A1"),
        Turn::text("A2"),
        Turn::Completion(
            "The user asked Q1; the answer was A1.".into(),
            Duration::ZERO,
        ),
        Turn::text("A3"),
        Turn::text("A4"),
    ])
    .await;
    let mut c = with_sessions(llm_config(&llm.url));
    c.sessions.max_turns = 2;
    let gw = TestGateway::spawn(c).await;
    for q in ["Q1", "Q2"] {
        turn(
            &gw.url,
            A,
            &json!({"question": q, "session_id": "long", "agents": []}),
        )
        .await;
    }
    let three = turn(
        &gw.url,
        A,
        &json!({"question": "Q3", "session_id": "long", "agents": []}),
    )
    .await;
    let folded = find(&three, "compaction-summary")[0];
    assert_eq!(folded["messages_compacted"], 2);
    let requests = llm.requests();
    // The summariser got turn 1 only; the plan got the summary, turn 2 and the question.
    let summariser = transcript(&requests[2]);
    assert!(
        summariser.contains(&"user: Q1".to_owned()),
        "{summariser:?}"
    );
    assert!(
        !summariser.contains(&"user: Q2".to_owned()),
        "{summariser:?}"
    );
    let planned = transcript(&requests[3]);
    assert!(
        planned[1].contains("The user asked Q1; the answer was A1."),
        "{planned:?}"
    );
    assert_eq!(planned[2..], ["user: Q2", "assistant: A2", "user: Q3"]);
    let (_, shown) = get(&gw.url, A, "/sessions/long").await;
    assert_matches("session.schema.json", &shown);
    assert_eq!(shown["folded_turns"], 1);
    assert_eq!(shown["summary"], "The user asked Q1; the answer was A1.");
    let questions: Vec<&str> = shown["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["question"].as_str().unwrap())
        .collect();
    assert_eq!(questions, ["Q2", "Q3"]);
    // The next turn carries the stored summary forward.
    turn(
        &gw.url,
        A,
        &json!({"question": "Q4", "session_id": "long", "agents": []}),
    )
    .await;
    let (_, listed) = get(&gw.url, A, "/sessions").await;
    assert_eq!(listed["sessions"][0]["turns"], 4);
    gw.stop().await;
}

#[tokio::test]
async fn a_token_keeps_at_most_max_per_token_conversations() {
    let mut c = with_sessions(config());
    c.sessions.max_per_token = 2;
    let gw = TestGateway::spawn(c).await;
    for id in ["one", "two"] {
        turn(
            &gw.url,
            A,
            &json!({"question": "q", "session_id": id, "agents": []}),
        )
        .await;
    }
    let third = post(
        &gw.url,
        A,
        &json!({"question": "q", "session_id": "three", "agents": []}),
    )
    .await;
    assert_eq!(third.status(), 429);
    let error: Value = third.json().await.unwrap();
    assert_eq!(error["error"], "too_many_sessions");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("sessions.max_per_token")
    );
    // Paging: newest first, `before` continues.
    let (_, page) = get(&gw.url, A, "/sessions?limit=1").await;
    assert_eq!(page["sessions"][0]["session_id"], "two");
    let before = page["next_before"].as_str().unwrap();
    let (_, rest) = get(&gw.url, A, &format!("/sessions?limit=1&before={before}")).await;
    assert_eq!(rest["sessions"][0]["session_id"], "one");
    let (status, bad) = get(&gw.url, A, "/sessions?limit=501").await;
    assert_eq!(status, 400);
    assert_eq!(bad["issues"][0]["path"], "limit");
    // A session_id is a key of the store: bounded.
    let long = post(
        &gw.url,
        A,
        &json!({"question": "q", "session_id": "x".repeat(257), "agents": []}),
    )
    .await;
    assert_eq!(long.status(), 400);
    let bad: Value = long.json().await.unwrap();
    assert_eq!(bad["issues"][0]["path"], "session_id");
    gw.stop().await;
}

#[tokio::test]
async fn off_by_default_a_session_id_is_only_a_tag() {
    let llm = FakeLlm::start(vec![Turn::text("A1"), Turn::text("A2")]).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let body = |q: &str| json!({"question": q, "session_id": "tag", "agents": []});
    let one = gw.plan(&body("Q1")).await;
    let two = gw.plan(&body("Q2")).await;
    assert_eq!(session(&two)["created"], true);
    assert_ne!(session(&one)["session_id"], session(&two)["session_id"]);
    assert_eq!(transcript(&llm.requests()[1])[1..], ["user: Q2"]);
    let resp = http()
        .get(format!("{}/sessions", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn the_real_a2a_sdk_agent_gets_its_context_and_its_waiting_task_back_next_turn() {
    let Some(url) = peer_url("PLANGATE_A2A_URL", "PLANGATE_REQUIRE_A2A") else {
        return;
    };
    let gw = TestGateway::spawn(with_sessions(config())).await;
    for protocol in ["0.3", "1.0"] {
        let session = format!("sdk-{protocol}");
        let agents = json!([{"name": "sdk", "endpoint": url, "protocol": protocol,
            "skills": [{"id": "echo", "description": "Echoes the input"}]}]);
        // Turn 1: the agent asks a question and leaves its task waiting.
        let one = turn(
            &gw.url,
            A,
            &json!({"question": "ask:Which city?", "session_id": session, "agents": agents}),
        )
        .await;
        let first = &find(&one, "task.finished")[0];
        assert_eq!(
            first["remote_state"], "input-required",
            "{protocol}: {first}"
        );
        let task = first["remote_task_id"].as_str().unwrap().to_owned();
        let (_, shown) = get(&gw.url, A, &format!("/sessions/{session}")).await;
        let context = shown["agents"]["sdk"]["context_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(shown["agents"]["sdk"]["waiting_task_id"], task.as_str());
        // Turn 2: the answer goes to that task in that context, and the agent completes it.
        let two = turn(
            &gw.url,
            A,
            &json!({"question": "Oslo", "session_id": session, "agents": agents}),
        )
        .await;
        let second = &find(&two, "task.finished")[0];
        assert_eq!(second["remote_state"], "completed", "{protocol}: {second}");
        assert_eq!(
            second["remote_task_id"],
            task.as_str(),
            "{protocol}: the same task"
        );
        assert!(content(&two).contains("echo: Oslo"), "{}", content(&two));
        let (_, shown) = get(&gw.url, A, &format!("/sessions/{session}")).await;
        assert_eq!(shown["agents"]["sdk"]["context_id"], context.as_str());
        assert_eq!(shown["agents"]["sdk"]["waiting_task_id"], Value::Null);
    }
    gw.stop().await;
}
