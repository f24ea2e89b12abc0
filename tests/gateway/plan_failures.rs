//! Failures: peers that fail become failed tool calls; LLM failures, the deadline and client
//! disconnects end the plan cleanly with the right frames and cancels.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use crate::support::*;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};

async fn fanout_one(script: Script) -> (Vec<Frame>, FakePeer) {
    let peer = FakePeer::start(script).await;
    let mut c = config();
    c.a2a.call_budget = Duration::from_millis(1500);
    let gw = TestGateway::spawn(c).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [peer.agent("p", "s")]}))
        .await;
    assert_frames_match_schemas(&frames);
    assert_call_ordering(&frames);
    assert!(
        !find(&frames, "final").is_empty(),
        "peer failures never fail the plan"
    );
    gw.stop().await;
    (frames, peer)
}

#[tokio::test]
async fn peer_http_500_without_json_is_a_failed_call() {
    let (frames, _) = fanout_one(Script::Http(500, "<html>down</html>".into())).await;
    let f = finished(&frames);
    assert_eq!(f["state"], "failed");
    assert_eq!(
        f["error"],
        "transport: HTTP 500 Internal Server Error \u{2014} body not JSON (<html>down</html>)"
    );
    assert!(find(&frames, "task.artifact")[0].get("content").is_none());
    assert!(
        find(&frames, "task.artifact")[0]
            .get("signatures")
            .is_none()
    );
    assert_eq!(
        answer(&frames),
        "[[p:s]]\n(error) transport: HTTP 500 Internal Server Error \u{2014} body not JSON (<html>down</html>)"
    );
}

#[tokio::test]
async fn peer_json_rpc_error_keeps_its_message() {
    let (frames, _) = fanout_one(Script::RpcError(-32603, "kaput".into())).await;
    assert_eq!(finished(&frames)["error"], "kaput");
}

#[tokio::test]
async fn bad_envelope_is_a_transport_error() {
    let (frames, _) = fanout_one(Script::BadEnvelope).await;
    assert!(
        finished(&frames)["error"]
            .as_str()
            .unwrap()
            .starts_with("transport: invalid JSON-RPC envelope from peer: ")
    );
}

#[tokio::test]
async fn remote_failed_state_is_a_failed_call_with_the_envelope() {
    let (frames, _) = fanout_one(Script::Fail).await;
    let f = finished(&frames);
    assert_eq!(f["state"], "failed");
    assert_eq!(f["error"], "remote task failed");
    assert_eq!(f["remote_state"], "failed");
    assert_eq!(
        find(&frames, "task.artifact")[0]["content"],
        "<remote_content agent=\"p\" verified=\"unknown\" state=\"failed\">\nit broke\n</remote_content>"
    );
    assert_eq!(answer(&frames), "[[p:s]]\n(failed) it broke");
}

#[tokio::test]
async fn input_required_completes_the_call_with_the_question() {
    let (frames, peer) = fanout_one(Script::InputRequired("Which city?".into())).await;
    let f = finished(&frames);
    assert_eq!(f["state"], "completed");
    assert_eq!(f["remote_state"], "input-required");
    assert!(
        find(&frames, "task.artifact")[0]["content"]
            .as_str()
            .unwrap()
            .contains("state=\"input-required\">\nWhich city?\n")
    );
    assert_eq!(peer.count("tasks/get"), 1);
}

#[tokio::test]
async fn call_budget_exhaustion_cancels_the_remote_task() {
    let (frames, peer) = fanout_one(Script::WorkForever).await;
    let f = finished(&frames);
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .starts_with("poll exhausted after "),
        "{f}"
    );
    assert_eq!(f["remote_state"], "working");
    assert_eq!(peer.count("tasks/cancel"), 1);
}

#[tokio::test]
async fn three_poll_transport_failures_fail_the_call_and_cancel() {
    let (frames, peer) = fanout_one(Script::PollsUnavailable).await;
    assert_eq!(
        finished(&frames)["error"],
        "transport: HTTP 503 Service Unavailable \u{2014} body not JSON ()"
    );
    assert_eq!(peer.count("tasks/get"), 3);
    assert_eq!(peer.count("tasks/cancel"), 1);
}

#[tokio::test]
async fn unreachable_peer_is_a_transport_error() {
    let gw = TestGateway::spawn(config()).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [{"name": "gone", "endpoint": "http://127.0.0.1:9", "skills": [{"id": "s"}]}]}))
        .await;
    assert!(
        finished(&frames)["error"]
            .as_str()
            .unwrap()
            .starts_with("transport: ")
    );
    gw.stop().await;
}

#[tokio::test]
async fn bearer_env_outside_the_allow_list_fails_before_any_request() {
    let peer = FakePeer::start(Script::Message).await;
    let mut c = config();
    c.a2a.env_allowlist = vec!["PEER_TOKEN".into()];
    c.peer_env.insert(
        "PEER_TOKEN".into(),
        secrecy::SecretString::from("t0k".to_owned()),
    );
    let gw = TestGateway::spawn(c).await;
    let mut denied = peer.agent("denied", "s");
    denied["auth"] = json!({"type": "bearer_env", "envVar": "HOME"});
    let mut allowed = peer.agent("allowed", "s");
    allowed["auth"] = json!({"type": "bearer_env", "envVar": "PEER_TOKEN"});
    let mut literal = peer.agent("literal", "s");
    literal["auth"] = json!({"type": "bearer", "token": "lit"});
    let frames = gw
        .plan(&json!({"question": "q", "agents": [denied, allowed, literal]}))
        .await;
    let finished = find(&frames, "task.finished");
    assert_eq!(
        finished.iter().find(|f| f["agent"] == "denied").unwrap()["error"],
        "transport: auth: env var \"HOME\" is not allowed (add it to GATEWAY_PEER_ENV_ALLOWLIST)"
    );
    let auths: Vec<String> = peer
        .requests()
        .iter()
        .filter(|r| r.method == "message/send")
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(auths.len(), 2);
    assert!(auths.contains(&"Bearer t0k".to_owned()) && auths.contains(&"Bearer lit".to_owned()));
    gw.stop().await;
}

#[tokio::test]
async fn llm_401_ends_the_plan_with_the_provider_message() {
    let llm = FakeLlm::start(vec![Turn::Status(
        401,
        r#"{"error":{"message":"User not found.","code":401}}"#.into(),
    )])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw.plan(&json!({"question": "q"})).await;
    assert_frames_match_schemas(&frames);
    assert_eq!(events(&frames), ["session", "plan", "error", "done"]);
    assert_eq!(
        find(&frames, "error")[0],
        &json!({"message": "User not found.", "code": "llm_error"})
    );
    assert_eq!(llm.requests().len(), 1, "401 is not retried");
    gw.stop().await;
}

#[tokio::test]
async fn llm_429_is_retried_then_succeeds() {
    let llm = FakeLlm::start(vec![
        Turn::Status(429, "slow down".into()),
        Turn::text("fine"),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw.plan(&json!({"question": "q"})).await;
    assert_eq!(answer(&frames), "fine");
    assert_eq!(llm.requests().len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn llm_500_three_times_reports_the_status() {
    let llm = FakeLlm::start(vec![
        Turn::Status(500, "x".into()),
        Turn::Status(502, "x".into()),
        Turn::Status(503, "x".into()),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw.plan(&json!({"question": "q"})).await;
    assert_eq!(
        find(&frames, "error")[0]["message"],
        "LLM: HTTP 503 Service Unavailable"
    );
    assert_eq!(llm.requests().len(), 3);
    gw.stop().await;
}

#[tokio::test]
async fn llm_midstream_error_ends_with_error_after_the_text_so_far() {
    let llm = FakeLlm::start(vec![Turn::MidstreamError("partial".into())]).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw.plan(&json!({"question": "q"})).await;
    assert_eq!(
        events(&frames),
        ["session", "plan", "text.delta", "error", "done"]
    );
    assert_eq!(find(&frames, "error")[0]["message"], "upstream exploded");
    gw.stop().await;
}

#[tokio::test]
async fn deadline_fails_running_calls_cancels_them_and_reports_the_deadline() {
    let peer = FakePeer::start(Script::WorkForever).await;
    let llm = FakeLlm::start(vec![Turn::call("c1", "call_p_s", json!({"input": "x"}))]).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let t0 = Instant::now();
    let frames = gw
        .plan(&json!({"question": "q", "agents": [peer.agent("p", "s")], "preferences": {"timeout_ms": 1000}}))
        .await;
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "stream ended {elapsed:?} after start"
    );
    assert_frames_match_schemas(&frames);
    assert_call_ordering(&frames);
    assert_eq!(finished(&frames)["error"], "plan deadline exceeded");
    assert_eq!(
        find(&frames, "error")[0],
        &json!({"message": "plan deadline exceeded after 1000 ms", "code": "deadline_exceeded"})
    );
    wait_until("the remote cancel", Duration::from_secs(2), || {
        peer.count("tasks/cancel") > 0
    })
    .await;
    assert_eq!(peer.count("tasks/cancel"), 1);
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn deadline_during_an_llm_stream_reports_the_deadline() {
    let llm = FakeLlm::start(vec![Turn::Hang]).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "q", "preferences": {"timeout_ms": 1000}}))
        .await;
    assert_eq!(
        events(&frames),
        ["session", "plan", "text.delta", "error", "done"]
    );
    assert_eq!(find(&frames, "error")[0]["code"], "deadline_exceeded");
    wait_until("the LLM stream to close", Duration::from_secs(2), || {
        llm.dropped_streams() > 0
    })
    .await;
    assert_eq!(llm.dropped_streams(), 1, "the LLM stream is closed");
    gw.stop().await;
}

#[tokio::test]
async fn client_disconnect_cancels_peer_tasks_and_the_llm_stream() {
    let peer = FakePeer::start(Script::WorkForever).await;
    let llm = FakeLlm::start(vec![Turn::call("c1", "call_p_s", json!({"input": "x"}))]).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "agents": [peer.agent("p", "s")]}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: task.started") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    // Let a poll happen, then go away.
    wait_until("a poll", Duration::from_secs(2), || {
        peer.count("tasks/get") > 0
    })
    .await;
    drop(stream);
    let t0 = Instant::now();
    while peer.count("tasks/cancel") == 0 && t0.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "peer saw the cancel {:?} after the disconnect",
        t0.elapsed()
    );
    let polls = peer.count("tasks/get");
    // An absence is checked over a window longer than the poll ladder's next step.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(peer.count("tasks/get"), polls, "no polls after the cancel");
    wait_for_idle(&gw.state).await;

    // And an LLM stream that is still running is closed too.
    let llm = FakeLlm::start(vec![Turn::Hang]).await;
    let gw2 = TestGateway::spawn(llm_config(&llm.url)).await;
    let resp = http()
        .post(format!("{}/plan", gw2.url))
        .json(&json!({"question": "q"}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: text.delta") {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    drop(stream);
    let t0 = Instant::now();
    while llm.dropped_streams() == 0 && t0.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(llm.dropped_streams(), 1);
    assert!(t0.elapsed() < Duration::from_secs(1));
    wait_for_idle(&gw2.state).await;
    gw.stop().await;
    gw2.stop().await;
}

#[tokio::test]
async fn shutdown_aborts_running_plans_after_the_grace_period() {
    let peer = FakePeer::start(Script::WorkForever).await;
    let mut c = config();
    c.server.shutdown_grace = Duration::from_millis(300);
    let mut gw = TestGateway::spawn(c).await;
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "agents": [peer.agent("p", "s")]}))
        .send()
        .await
        .unwrap();
    wait_until("the peer call", Duration::from_secs(2), || {
        peer.count("message/send") > 0
    })
    .await;
    let server = gw.begin_stop();
    let frames = collect(resp).await;
    let tail: Vec<_> = events(&frames).into_iter().rev().take(4).collect();
    assert_eq!(tail, ["done", "error", "task.finished", "task.artifact"]);
    assert_eq!(
        find(&frames, "error")[0],
        &json!({"message": "gateway shutting down", "code": "shutting_down"})
    );
    assert_eq!(finished(&frames)["error"], "aborted by caller");
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(peer.count("tasks/cancel"), 1);
}

#[tokio::test]
async fn abort_while_the_send_is_in_flight_cancels_our_chosen_task_id() {
    let peer = FakePeer::start(Script::HangOnSend).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [peer.agent("p", "s")], "preferences": {"timeout_ms": 1000}}))
        .await;
    assert_eq!(finished(&frames)["error"], "plan deadline exceeded");
    wait_until("the remote cancel", Duration::from_secs(2), || {
        peer.count("tasks/cancel") > 0
    })
    .await;
    let requests = peer.requests();
    let sent_id = requests
        .iter()
        .find(|r| r.method == "message/send")
        .unwrap()
        .body["params"]["message"]["taskId"]
        .clone();
    let cancel = requests
        .iter()
        .find(|r| r.method == "tasks/cancel")
        .expect("cancel was sent");
    assert_eq!(
        cancel.body["params"],
        json!({"taskId": sent_id, "id": sent_id})
    );
    gw.stop().await;
}

#[tokio::test]
async fn ssrf_guard_refuses_loopback_endpoints_without_contacting_them() {
    let peer = FakePeer::start(Script::Message).await;
    let mut c = config();
    c.a2a.block_private_endpoints = true;
    let gw = TestGateway::spawn(c).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [peer.agent("p", "s")]}))
        .await;
    assert_eq!(
        finished(&frames)["error"],
        "transport: endpoint resolves to a blocked address"
    );
    assert!(peer.requests().is_empty());
    gw.stop().await;
}
