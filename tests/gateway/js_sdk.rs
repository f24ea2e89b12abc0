//! Interop with agents built on the official JavaScript A2A SDK (`@a2a-js/sdk` 1.3.0,
//! `tests/peers/js/echo_agent.mjs`), started by `scripts/test.sh`: one with v0.3 compatibility on
//! whose card lists only its 1.0 interface (`PLANGATE_JS_A2A_V1CARD_URL`), one whose card lists
//! both (`PLANGATE_JS_A2A_URL`). Without them these tests skip, unless `PLANGATE_REQUIRE_JS` is
//! set (CI).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn js_url(var: &str) -> Option<String> {
    peer_url(var, "PLANGATE_REQUIRE_JS")
}

fn agent(url: &str, protocol: &str) -> Value {
    json!({"name": "js", "endpoint": url, "protocol": protocol, "skills": [{"id": "echo", "description": "Echoes the input"}]})
}

/// The JSON-RPC requests the agent logged since `from`: `(method, A2A-Version, taskId)`.
async fn log(url: &str, from: usize) -> Vec<(String, Option<String>, Option<String>)> {
    let entries: Vec<Value> = http()
        .get(format!("{url}/_log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    entries[from.min(entries.len())..]
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or_default().to_owned(),
                e["version"].as_str().map(str::to_owned),
                e["taskId"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn js_sdk_compat_agent_with_a_v1_only_card_completes_streamed() {
    let Some(url) = js_url("PLANGATE_JS_A2A_V1CARD_URL") else {
        return;
    };
    // Without the version header the SDK refuses the card: what plangate used to see.
    let refused = http()
        .get(format!("{url}/.well-known/agent-card.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    let gw = TestGateway::spawn(config()).await;
    let before = log(&url, 0).await.len();
    let t0 = Instant::now();
    let frames = plan_one(&gw, "sleep:0.5 hello js", agent(&url, "auto")).await;
    let f = finished(&frames);
    assert_eq!(f["state"], "completed", "{f}");
    assert_eq!(f["remote_state"], "completed");
    assert_eq!(
        content(&frames),
        "<remote_content agent=\"js\" verified=\"unknown\">\necho: hello js\n</remote_content>"
    );
    let states: Vec<&str> = find(&frames, "task.status")
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"working"), "{states:?}");
    assert_eq!(states.last(), Some(&"completed"), "{states:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(1400),
        "streamed, no poll ladder: {:?}",
        t0.elapsed()
    );
    let sent = log(&url, before).await;
    assert_eq!(
        sent,
        [(
            "SendStreamingMessage".to_owned(),
            Some("1.0".to_owned()),
            None
        )],
        "one streamed 1.0 send"
    );

    let frames = plan_one(&gw, "fail now", agent(&url, "auto")).await;
    assert_eq!(finished(&frames)["error"], "remote task failed");
    assert!(content(&frames).contains("failed as requested: fail now"));

    let frames = plan_one(&gw, "ask:Which city?", agent(&url, "auto")).await;
    assert_eq!(finished(&frames)["remote_state"], "input-required");
    assert!(
        content(&frames).ends_with("state=\"input-required\">\nWhich city?\n</remote_content>"),
        "{}",
        content(&frames)
    );

    let frames = plan_one(&gw, "json:x", agent(&url, "auto")).await;
    assert!(
        content(&frames).contains(r#"{"echo":"x","length":6}"#),
        "{}",
        content(&frames)
    );
    gw.stop().await;
}

#[tokio::test]
async fn js_sdk_v03_calls_cost_one_send_once_the_agent_refused_our_task_id() {
    let Some(url) = js_url("PLANGATE_JS_A2A_URL") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let before = log(&url, 0).await.len();
    let frames = plan_one(&gw, "hello first", agent(&url, "0.3")).await;
    assert_eq!(
        finished(&frames)["state"],
        "completed",
        "{:?}",
        finished(&frames)
    );
    let first = log(&url, before).await;
    let sends: Vec<_> = first
        .iter()
        .filter(|(m, ..)| m.starts_with("message/"))
        .collect();
    assert_eq!(sends.len(), 2, "the first call learns: {first:?}");
    assert!(sends[0].2.is_some() && sends[1].2.is_none(), "{first:?}");
    assert!(
        first.iter().all(|(_, v, _)| v.is_none()),
        "no A2A-Version in v0.3"
    );

    let before = log(&url, 0).await.len();
    for question in ["hello second", "hello third"] {
        let frames = plan_one(&gw, question, agent(&url, "0.3")).await;
        assert_eq!(finished(&frames)["state"], "completed");
        assert!(content(&frames).contains(&format!("echo: {question}")));
    }
    let later = log(&url, before).await;
    let sends: Vec<_> = later
        .iter()
        .filter(|(m, ..)| m.starts_with("message/"))
        .collect();
    assert_eq!(sends.len(), 2, "one send per call: {later:?}");
    assert!(sends.iter().all(|(_, _, task)| task.is_none()), "{later:?}");
    gw.stop().await;
}
