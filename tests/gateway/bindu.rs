//! Interop with the REAL Bindu echo agent (`../shared/peers/run-bindu-echo.sh`), started by
//! `scripts/test.sh`, which exports `PLANGATE_BINDU_URL`. Without it these tests skip, unless
//! `PLANGATE_REQUIRE_PEERS` is set (CI), where a missing peer fails them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;
use plangate_testkit::llm::{FakeLlm, Turn};

fn bindu_url(var: &str) -> Option<String> {
    peer_url(var, "PLANGATE_REQUIRE_PEERS")
}

fn bindu_agent(url: &str) -> Value {
    json!({"name": "bindu", "endpoint": url, "skills": [{"id": "echo", "description": "Echoes the request"}]})
}

#[tokio::test]
async fn bindu_message_send_and_polling_complete_with_the_echo() {
    let Some(url) = bindu_url("PLANGATE_BINDU_URL") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let frames = gw
        .plan(&json!({"question": "hello bindu", "agents": [bindu_agent(&url)]}))
        .await;
    assert_frames_match_schemas(&frames);
    assert_call_ordering(&frames);
    let started = find(&frames, "task.started")[0];
    assert_eq!(
        started["agent_did_source"], "observed",
        "the DID comes from Bindu's card extension"
    );
    assert!(
        started["agent_did"]
            .as_str()
            .unwrap()
            .starts_with("did:bindu:")
    );
    let f = find(&frames, "task.finished")[0];
    assert_eq!(f["state"], "completed");
    assert_eq!(f["remote_state"], "completed");
    assert!(f["remote_task_id"].is_string());
    assert_eq!(
        find(&frames, "task.artifact")[0]["content"],
        "<remote_content agent=\"bindu\" verified=\"unknown\">\necho: hello bindu\n</remote_content>"
    );
    assert_eq!(answer(&frames), "[[bindu:echo]]\necho: hello bindu");
    gw.stop().await;
}

#[tokio::test]
async fn bindu_input_required_question_comes_from_history() {
    let Some(url) = bindu_url("PLANGATE_BINDU_URL") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let frames = gw
        .plan(&json!({"question": "ask:Which city do you mean?", "agents": [bindu_agent(&url)]}))
        .await;
    let f = find(&frames, "task.finished")[0];
    assert_eq!(f["state"], "completed");
    assert_eq!(f["remote_state"], "input-required");
    assert_eq!(
        find(&frames, "task.artifact")[0]["content"],
        "<remote_content agent=\"bindu\" verified=\"unknown\" state=\"input-required\">\nWhich city do you mean?\n</remote_content>"
    );
    gw.stop().await;
}

#[tokio::test]
async fn bindu_failed_task_is_a_failed_call_and_the_plan_finishes() {
    let Some(url) = bindu_url("PLANGATE_BINDU_URL") else {
        return;
    };
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_bindu_echo", json!({"input": "fail please"})),
        Turn::text("The agent failed."),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [bindu_agent(&url)]}))
        .await;
    assert_call_ordering(&frames);
    let f = find(&frames, "task.finished")[0];
    assert_eq!(f["state"], "failed");
    assert_eq!(f["error"], "remote task failed");
    let content = find(&frames, "task.artifact")[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.contains("state=\"failed\""));
    assert!(content.contains("Task execution failed"), "{content}");
    let tool_msg = &llm.requests()[1]["messages"][3];
    assert_eq!(tool_msg["content"], content.as_str());
    assert_eq!(find(&frames, "final").len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn bindu_unsigned_agent_answers_the_same() {
    let Some(url) = bindu_url("PLANGATE_BINDU_UNSIGNED_URL") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let frames = gw
        .plan(&json!({"question": "hi unsigned", "agents": [bindu_agent(&url)]}))
        .await;
    assert_eq!(answer(&frames), "[[bindu:echo]]\necho: hi unsigned");
    gw.stop().await;
}

#[tokio::test]
async fn bindu_task_is_canceled_when_the_client_disconnects() {
    let Some(url) = bindu_url("PLANGATE_BINDU_URL") else {
        return;
    };
    let marker = format!("cancel-me-{}", uuid::Uuid::new_v4());
    let gw = TestGateway::spawn(config()).await;
    let body = json!({"question": format!("sleep:3 {marker}"), "agents": [bindu_agent(&url)]});
    disconnect_after(&gw, &body, "task.started", Duration::from_millis(500)).await;
    // Find our task through Bindu's own task list and watch it turn canceled.
    let list = || async { peer_rpc(&url, "tasks/list", json!({}), None).await["result"].clone() };
    let (state, took) =
        wait_for_listed_state(list, &marker, "canceled", Duration::from_secs(3)).await;
    assert_eq!(
        state, "canceled",
        "Bindu task was not canceled after the disconnect"
    );
    assert!(took < Duration::from_millis(1500), "cancel took {took:?}");
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}
