//! Both A2A dialects and streaming peers: the REAL a2a-sdk 1.x echo agent (v1.0, and v0.3
//! through its compatibility switch), the REAL Bindu echo agent in streaming mode, and scripted
//! fakes for auto-detection, broken streams, client task ids and chunked artifacts.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;
use plangate_testkit::peer::{FakePeer, PeerOptions, Script};

fn agent(name: &str, url: &str, protocol: &str) -> Value {
    json!({"name": name, "endpoint": url, "protocol": protocol, "skills": [{"id": "echo", "description": "Echoes the input"}]})
}

#[tokio::test]
async fn a2a_sdk_v1_streams_every_outcome() {
    let Some(url) = peer_url("PLANGATE_A2A_URL", "PLANGATE_REQUIRE_A2A") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    for protocol in ["auto", "1.0"] {
        let frames = plan_one(&gw, "hello a2a", agent("sdk", &url, protocol)).await;
        let f = finished(&frames);
        assert_eq!(f["state"], "completed", "{protocol}: {f}");
        assert_eq!(f["remote_state"], "completed");
        assert!(f["remote_task_id"].is_string());
        assert_eq!(
            content(&frames),
            "<remote_content agent=\"sdk\" verified=\"unknown\">\necho: hello a2a\n</remote_content>"
        );
    }
    let frames = plan_one(&gw, "fail now", agent("sdk", &url, "auto")).await;
    assert_eq!(finished(&frames)["error"], "remote task failed");
    assert!(
        content(&frames).contains("failed as requested"),
        "{}",
        content(&frames)
    );

    let frames = plan_one(&gw, "ask:Which city?", agent("sdk", &url, "auto")).await;
    assert_eq!(finished(&frames)["remote_state"], "input-required");
    assert!(
        content(&frames).ends_with("state=\"input-required\">\nWhich city?\n</remote_content>"),
        "{}",
        content(&frames)
    );

    let t0 = Instant::now();
    let frames = plan_one(&gw, "sleep:1 slow", agent("sdk", &url, "auto")).await;
    let states: Vec<&str> = find(&frames, "task.status")
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"working"), "{states:?}");
    assert_eq!(states.last(), Some(&"completed"));
    assert_eq!(
        content(&frames),
        "<remote_content agent=\"sdk\" verified=\"unknown\">\necho: slow\n</remote_content>"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(1800),
        "streamed, no poll ladder: {:?}",
        t0.elapsed()
    );

    let frames = plan_one(&gw, "json:x", agent("sdk", &url, "auto")).await;
    let body = content(&frames);
    assert!(
        body.contains(r#""echo":"x""#) && body.contains(r#""length":6.0"#),
        "numbers are kept as received: {body}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a2a_sdk_v03_compat_resends_without_our_task_id() {
    let Some(url) = peer_url("PLANGATE_A2A_URL", "PLANGATE_REQUIRE_A2A") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "hello compat", agent("sdk", &url, "0.3")).await;
    assert_eq!(
        finished(&frames)["state"],
        "completed",
        "{:?}",
        finished(&frames)
    );
    assert!(content(&frames).contains("echo: hello compat"));
    let frames = plan_one(&gw, "ask:Your name?", agent("sdk", &url, "0.3")).await;
    assert!(content(&frames).contains("state=\"input-required\">\nYour name?\n"));
    gw.stop().await;

    // Without the compatibility switch v0.3 names are unknown: the call fails cleanly.
    let Some(nocompat) = peer_url("PLANGATE_A2A_NOCOMPAT_URL", "PLANGATE_REQUIRE_A2A") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "hello", agent("sdk", &nocompat, "0.3")).await;
    assert_eq!(finished(&frames)["state"], "failed");
    let frames = plan_one(&gw, "hello strict", agent("sdk", &nocompat, "auto")).await;
    assert!(content(&frames).contains("echo: hello strict"));
    gw.stop().await;
}

#[tokio::test]
async fn a2a_sdk_task_is_canceled_when_the_client_disconnects() {
    let Some(url) = peer_url("PLANGATE_A2A_URL", "PLANGATE_REQUIRE_A2A") else {
        return;
    };
    let marker = format!("cancel-{}", uuid::Uuid::new_v4());
    let gw = TestGateway::spawn(config()).await;
    let body =
        json!({"question": format!("sleep:3 {marker}"), "agents": [agent("sdk", &url, "auto")]});
    disconnect_after(&gw, &body, "task.status", Duration::ZERO).await;
    let list = || async {
        peer_rpc(&url, "ListTasks", json!({"pageSize": 100}), Some("1.0")).await["result"]["tasks"]
            .clone()
    };
    let (state, took) =
        wait_for_listed_state(list, &marker, "TASK_STATE_CANCELED", Duration::from_secs(3)).await;
    assert_eq!(state, "TASK_STATE_CANCELED");
    assert!(took < Duration::from_millis(1500), "cancel took {took:?}");
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn bindu_streams_status_then_artifact_and_its_question_comes_from_history() {
    let Some(url) = peer_url("PLANGATE_BINDU_URL", "PLANGATE_REQUIRE_PEERS") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let t0 = Instant::now();
    let frames = plan_one(&gw, "sleep:1 streamed hello", agent("bindu", &url, "auto")).await;
    let states: Vec<&str> = find(&frames, "task.status")
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert!(
        states.len() >= 2 && states.last() == Some(&"completed"),
        "{states:?}"
    );
    assert!(
        content(&frames).ends_with("\necho: streamed hello\n</remote_content>"),
        "{}",
        content(&frames)
    );
    // No timing assertion here: the Bindu echo agent runs one handler at a time, so a sleeping
    // task of a concurrent test can delay this one.
    let _ = t0;
    let frames = plan_one(&gw, "ask:Which city?", agent("bindu", &url, "auto")).await;
    assert!(
        content(&frames).ends_with("state=\"input-required\">\nWhich city?\n</remote_content>"),
        "{}",
        content(&frames)
    );
    let frames = plan_one(&gw, "fail please", agent("bindu", &url, "auto")).await;
    assert_eq!(finished(&frames)["error"], "remote task failed");
    gw.stop().await;
}

#[tokio::test]
async fn bindu_streamed_task_is_canceled_on_disconnect() {
    let Some(url) = peer_url("PLANGATE_BINDU_URL", "PLANGATE_REQUIRE_PEERS") else {
        return;
    };
    let marker = format!("stream-cancel-{}", uuid::Uuid::new_v4());
    let gw = TestGateway::spawn(config()).await;
    let body =
        json!({"question": format!("sleep:3 {marker}"), "agents": [agent("bindu", &url, "auto")]});
    disconnect_after(&gw, &body, "task.status", Duration::ZERO).await;
    let list = || async { peer_rpc(&url, "tasks/list", json!({}), None).await["result"].clone() };
    let (state, took) =
        wait_for_listed_state(list, &marker, "canceled", Duration::from_secs(3)).await;
    assert_eq!(state, "canceled");
    assert!(took < Duration::from_millis(1500), "cancel took {took:?}");
    gw.stop().await;
}

fn v1_card(streaming: bool) -> Value {
    json!({"name": "v1", "supportedInterfaces": [{"url": "http://x/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "capabilities": {"streaming": streaming}})
}

#[tokio::test]
async fn dialect_is_detected_from_each_card_shape() {
    let cases = [
        (v1_card(false), "SendMessage"),
        (
            json!({"name": "bindu-like", "protocolVersion": "1.0.0", "capabilities": {"streaming": false}}),
            "message/send",
        ),
        (
            json!({"supportedInterfaces": [{"protocolBinding": "GRPC", "protocolVersion": "1.0"}, {"protocolBinding": "JSONRPC", "protocolVersion": "0.3.0"}]}),
            "message/send",
        ),
        (
            json!({"supportedInterfaces": [{"protocolVersion": "1.2"}]}),
            "SendMessage",
        ),
    ];
    let gw = TestGateway::spawn(config()).await;
    for (card, method) in cases {
        let peer =
            FakePeer::start_with_card(Script::Complete { working_polls: 1 }, card.clone()).await;
        let frames = plan_one(&gw, "hi", agent("p", &peer.url, "auto")).await;
        assert_eq!(finished(&frames)["state"], "completed", "{card}");
        let sent = &peer.requests()[0];
        assert_eq!(sent.method, method, "{card}");
        let v1 = method == "SendMessage";
        assert_eq!(
            sent.headers.get("a2a-version").map(|v| v.to_str().unwrap()),
            v1.then_some("1.0"),
            "{card}"
        );
        if v1 {
            let m = &sent.body["params"]["message"];
            assert_eq!(m["role"], "ROLE_USER");
            assert!(m.get("kind").is_none() && m.get("taskId").is_none());
            assert_eq!(m["parts"], json!([{"text": "hi"}]));
            assert_eq!(
                sent.body["params"]["configuration"]["returnImmediately"],
                true
            );
            assert_eq!(peer.requests()[1].method, "GetTask");
            assert_eq!(
                peer.requests()[1].body["params"],
                json!({"id": finished(&frames)["remote_task_id"]})
            );
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn without_a_card_a_v1_only_peer_is_retried_in_v1() {
    let peer = FakePeer::start_with(
        Script::Complete { working_polls: 0 },
        PeerOptions {
            v1_only: true,
            no_card: true,
            ..PeerOptions::default()
        },
    )
    .await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "hi", agent("p", &peer.url, "auto")).await;
    assert_eq!(finished(&frames)["state"], "completed");
    let methods: Vec<String> = peer.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods[..2], ["message/send", "SendMessage"]);
    // The choice is remembered: the next call goes straight to v1.0.
    let before = peer.requests().len();
    plan_one(&gw, "again", agent("p", &peer.url, "auto")).await;
    assert_eq!(peer.requests()[before].method, "SendMessage");
    gw.stop().await;
}

#[tokio::test]
async fn a_client_task_id_rejected_with_32001_is_resent_without_it() {
    let peer = FakePeer::start(Script::RejectClientTaskId).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "hi", agent("p", &peer.url, "0.3")).await;
    assert_eq!(finished(&frames)["state"], "completed");
    let sends: Vec<Value> = peer
        .requests()
        .iter()
        .filter(|r| r.method == "message/send")
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(sends.len(), 2);
    assert!(sends[0]["params"]["message"]["taskId"].is_string());
    assert!(sends[1]["params"]["message"].get("taskId").is_none());
    assert_ne!(sends[0]["id"], sends[1]["id"], "a fresh JSON-RPC id");
    assert_ne!(
        sends[0]["params"]["message"]["messageId"],
        sends[1]["params"]["message"]["messageId"]
    );
    assert!(
        finished(&frames)["remote_task_id"]
            .as_str()
            .unwrap()
            .starts_with("server-")
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_compat_peer_whose_card_lists_only_v1_is_read_with_the_version_header_and_streamed() {
    // The JS SDK with v0.3 compatibility on and a card listing only its 1.0 interface: a card
    // request without `A2A-Version: 1.0` is answered 400, v0.3 sends -32009.
    let events = vec![
        json!({"statusUpdate": {"taskId": "{id}", "status": {"state": "TASK_STATE_WORKING"}}}),
        json!({"artifactUpdate": {"taskId": "{id}", "artifact": {"artifactId": "a", "parts": [{"text": "streamed answer"}]}}}),
        json!({"statusUpdate": {"taskId": "{id}", "status": {"state": "TASK_STATE_COMPLETED"}}}),
    ];
    let peer = FakePeer::start_with(
        Script::Stream(events),
        PeerOptions {
            card: Some(v1_card(true)),
            card_needs_v1_header: true,
            v1_only: true,
            v03_refusal_code: Some(-32009),
            ..PeerOptions::default()
        },
    )
    .await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "hi", agent("js", &peer.url, "auto")).await;
    assert_eq!(
        finished(&frames)["state"],
        "completed",
        "{:?}",
        finished(&frames)
    );
    assert_eq!(
        content(&frames),
        "<remote_content agent=\"js\" verified=\"unknown\">\nstreamed answer\n</remote_content>"
    );
    let methods: Vec<String> = peer.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        methods,
        ["SendStreamingMessage"],
        "one streamed send, no v0.3 attempt"
    );
    assert!(
        !find(&frames, "task.status").is_empty(),
        "statuses came from the stream"
    );
    gw.stop().await;
}

#[tokio::test]
async fn without_a_card_a_peer_refusing_v03_with_32009_is_retried_in_v1() {
    let peer = FakePeer::start_with(
        Script::Complete { working_polls: 0 },
        PeerOptions {
            v1_only: true,
            v03_refusal_code: Some(-32009),
            no_card: true,
            ..PeerOptions::default()
        },
    )
    .await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "hi", agent("p", &peer.url, "auto")).await;
    assert_eq!(
        finished(&frames)["state"],
        "completed",
        "{:?}",
        finished(&frames)
    );
    assert!(content(&frames).contains("echo: hi"));
    let methods: Vec<String> = peer.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods[..2], ["message/send", "SendMessage"]);
    let before = peer.requests().len();
    plan_one(&gw, "again", agent("p", &peer.url, "auto")).await;
    assert_eq!(peer.requests()[before].method, "SendMessage", "remembered");
    gw.stop().await;
}

#[tokio::test]
async fn a_peer_that_assigns_task_ids_gets_one_send_per_call_after_the_first_refusal() {
    for card in [
        json!({"name": "fake", "capabilities": {"streaming": false}}),
        streaming_card(),
    ] {
        let peer = FakePeer::start_with_card(Script::RejectClientTaskId, card.clone()).await;
        let gw = TestGateway::spawn(config()).await;
        let sends = |peer: &FakePeer| {
            peer.requests()
                .into_iter()
                .filter(|r| r.method == "message/send" || r.method == "message/stream")
                .map(|r| r.body)
                .collect::<Vec<Value>>()
        };
        plan_one(&gw, "first", agent("p", &peer.url, "0.3")).await;
        assert_eq!(sends(&peer).len(), 2, "{card}: the first call learns");
        for question in ["second", "third"] {
            let frames = plan_one(&gw, question, agent("p", &peer.url, "0.3")).await;
            assert_eq!(finished(&frames)["state"], "completed", "{card}");
        }
        let all = sends(&peer);
        assert_eq!(all.len(), 4, "{card}: one send per later call: {all:?}");
        assert!(
            all[2..]
                .iter()
                .all(|b| b["params"]["message"].get("taskId").is_none()),
            "{card}"
        );
        gw.stop().await;
    }
}

fn streaming_card() -> Value {
    json!({"name": "s", "capabilities": {"streaming": true}})
}

#[tokio::test]
async fn chunked_artifacts_are_assembled_and_statuses_reported_once() {
    let events = vec![
        json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "working"}, "final": false}),
        json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "working", "message": {"role": "agent", "parts": [{"kind": "text", "text": "halfway"}]}}}),
        json!({"kind": "artifact-update", "taskId": "{id}", "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": "first chunk, "}]}, "append": false}),
        json!({"kind": "artifact-update", "taskId": "{id}", "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": "second chunk"}]}, "append": true, "lastChunk": true}),
        json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "working", "message": {"role": "agent", "parts": [{"kind": "text", "text": "halfway"}]}}}),
        json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "completed"}, "final": true}),
    ];
    let peer = FakePeer::start_with_card(Script::Stream(events), streaming_card()).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "hi", agent("p", &peer.url, "auto")).await;
    let statuses: Vec<Value> = find(&frames, "task.status").into_iter().cloned().collect();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert_eq!(statuses[1]["message"], "halfway");
    assert!(statuses[0].get("message").is_none());
    assert_eq!(statuses[2]["state"], "completed");
    assert_eq!(
        content(&frames),
        "<remote_content agent=\"p\" verified=\"unknown\">\nfirst chunk, \n\nsecond chunk\n</remote_content>"
    );
    assert_eq!(peer.count("message/stream"), 1);
    assert_eq!(
        peer.count("tasks/get"),
        0,
        "a complete stream needs no poll"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_stream_that_breaks_midway_recovers_by_polling() {
    let events = vec![
        json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "working"}, "final": false}),
    ];
    let peer = FakePeer::start_with_card(Script::Stream(events), streaming_card()).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "recover me", agent("p", &peer.url, "auto")).await;
    assert_eq!(finished(&frames)["state"], "completed");
    assert!(content(&frames).contains("echo: recover me"));
    assert!(peer.count("tasks/get") >= 1);
    let sent_id = peer.requests()[0].body["params"]["message"]["taskId"].clone();
    let polled = peer
        .requests()
        .into_iter()
        .find(|r| r.method == "tasks/get")
        .unwrap();
    assert_eq!(
        polled.body["params"]["taskId"], sent_id,
        "the same task is polled"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_peer_that_does_not_stream_after_all_falls_back_to_send_and_poll() {
    // The card claims streaming, the peer answers -32004 to message/stream.
    let peer =
        FakePeer::start_with_card(Script::Complete { working_polls: 0 }, streaming_card()).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "fallback", agent("p", &peer.url, "auto")).await;
    assert_eq!(finished(&frames)["state"], "completed");
    let methods: Vec<String> = peer.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods[..2], ["message/stream", "message/send"]);
    gw.stop().await;
}
