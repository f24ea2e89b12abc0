//! plangate as an A2A agent: server-side catalogs, the cards, and the JSON-RPC door driven by the
//! official a2a-sdk Python client in both dialects, by plangate itself (a gateway calling a
//! gateway, signatures verified), and by hand-made bad requests.

use std::time::Duration;

use plangate::config::{AuthMode, Config};
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "door-token";

/// Writes a catalog file and points the configuration at it.
fn with_catalogs(mut c: Config, catalogs: &Value) -> Config {
    let path = std::env::temp_dir().join(format!("plangate-catalog-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, serde_json::to_vec(catalogs).unwrap()).unwrap();
    c.catalog_file = Some(path);
    c
}

fn bearer(mut c: Config) -> Config {
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![TOKEN.to_owned().into(), "other-token".to_owned().into()];
    c
}

fn with_identity(mut c: Config, seed: &str, name: &str) -> Config {
    c.identity = Some(plangate::config::IdentityConfig {
        seed: seed.to_owned().into(),
        author: "ops@example.com".to_owned(),
        name: name.to_owned(),
    });
    c
}

/// One JSON-RPC call to the door: (HTTP status, body).
async fn rpc(url: &str, token: Option<&str>, version: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = http()
        .post(format!("{url}/a2a"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(v) = version {
        req = req.header("A2A-Version", v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn send_v03(text: &str, skill: Option<&str>, context: Option<&str>) -> String {
    let mut message = json!({"kind": "message", "messageId": uuid::Uuid::new_v4().to_string(),
        "role": "user", "parts": [{"kind": "text", "text": text}]});
    if let Some(skill) = skill {
        message["metadata"] = json!({"skillId": skill});
    }
    if let Some(context) = context {
        message["contextId"] = json!(context);
    }
    json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}})
        .to_string()
}

fn artifact_text(task: &Value) -> String {
    task["artifacts"][0]["parts"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn the_a2a_sdk_client_sends_polls_streams_and_cancels_in_both_dialects() {
    let Some(python) = a2a_python() else {
        return;
    };
    let agent = ExampleAgent::start(Duration::from_millis(40)).await;
    let slow = FakePeer::start(Script::WorkForever).await;
    let c = with_catalogs(
        bearer(config()),
        &json!({"catalogs": {
            "default": {"description": "The example agent", "agents": [agent.agent()]},
            "slow": {"description": "A peer that never finishes", "agents": [slow.agent("slow", "work")]}}}),
    );
    let gw = TestGateway::spawn(c).await;
    for dialect in ["1.0", "0.3"] {
        let seen = run_json(
            &python,
            "tests/peers/a2a_door_client.py",
            &json!({"url": gw.url, "token": TOKEN, "dialect": dialect, "steps": [
                {"op": "send", "text": "hello door", "mode": "blocking"},
                {"op": "send", "text": "poll me", "skill": "default", "mode": "poll"},
                {"op": "send", "text": "stream me", "mode": "stream"},
                {"op": "start", "text": "take forever", "skill": "slow"},
                // The peer call has started (its send reaches the peer right after).
                {"op": "wait", "state": "TASK_STATE_WORKING", "text": "slow/work started"},
                {"op": "sleep", "seconds": 0.3},
                {"op": "cancel"},
                {"op": "get"},
                {"op": "cancel"},
                {"op": "get", "id": "no-such-task"},
                {"op": "send", "text": "x", "skill": "nope", "mode": "blocking"},
            ]}),
        )
        .await;
        let card = &seen["card"];
        assert_eq!(card["name"], "plangate", "{dialect}: {card}");
        assert_eq!(card["capabilities"]["streaming"], true);
        let skills: Vec<&str> = card["skills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(skills, ["default", "slow"], "{dialect}");
        let r = seen["results"].as_array().unwrap();

        // Blocking send: the finished task with the answer.
        let task = &r[0]["events"][0]["task"];
        assert_eq!(
            task["status"]["state"], "TASK_STATE_COMPLETED",
            "{dialect}: {task}"
        );
        let answer = artifact_text(task);
        assert!(answer.contains("echo: hello door"), "{dialect}: {answer}");
        assert!(answer.contains("HELLO DOOR"), "{dialect}: {answer}");

        // Non-blocking send, then polling.
        assert_eq!(
            r[1]["events"][0]["task"]["status"]["state"], "TASK_STATE_SUBMITTED",
            "{dialect}: {}",
            r[1]
        );
        assert_eq!(r[1]["task"]["status"]["state"], "TASK_STATE_COMPLETED");
        assert!(artifact_text(&r[1]["task"]).contains("echo: poll me"));

        // Streaming: the task, status updates per peer call, the artifact, the final status.
        let events = r[2]["events"].as_array().unwrap();
        assert_eq!(
            events[0]["task"]["status"]["state"], "TASK_STATE_SUBMITTED",
            "{dialect}: {events:?}"
        );
        let statuses: Vec<String> = events
            .iter()
            .filter_map(|e| e["statusUpdate"]["status"]["message"]["parts"][0]["text"].as_str())
            .map(str::to_owned)
            .collect();
        assert!(
            statuses.contains(&"example/echo started".to_owned()),
            "{dialect}: {statuses:?}"
        );
        assert!(
            statuses.contains(&"example/shout completed".to_owned()),
            "{dialect}: {statuses:?}"
        );
        let artifact = events
            .iter()
            .find_map(|e| e.get("artifactUpdate"))
            .unwrap_or_else(|| panic!("{dialect}: no artifact: {events:?}"));
        assert!(
            artifact["artifact"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .contains("STREAM ME")
        );
        assert_eq!(
            events.last().unwrap()["statusUpdate"]["status"]["state"],
            "TASK_STATE_COMPLETED",
            "{dialect}: {events:?}"
        );

        // Cancel a running task; it stays canceled; a second cancel is refused.
        assert_eq!(
            r[4]["task"]["status"]["state"], "TASK_STATE_WORKING",
            "{dialect}: {}",
            r[4]
        );
        assert_eq!(
            r[6]["task"]["status"]["state"], "TASK_STATE_CANCELED",
            "{dialect}: {}",
            r[6]
        );
        assert_eq!(r[7]["task"]["status"]["state"], "TASK_STATE_CANCELED");
        assert!(
            r[8]["message"]
                .as_str()
                .unwrap()
                .contains("cannot be canceled"),
            "{dialect}: {}",
            r[8]
        );
        assert!(
            r[9]["message"].as_str().unwrap().contains("not found"),
            "{dialect}: {}",
            r[9]
        );
        assert!(
            r[10]["message"]
                .as_str()
                .unwrap()
                .contains("unknown skill \"nope\"; known: default, slow"),
            "{dialect}: {}",
            r[10]
        );
    }
    // The slow peer's task was canceled each time.
    wait_until(
        "the slow peer sees two tasks/cancel",
        Duration::from_secs(10),
        || slow.count("tasks/cancel") == 2,
    )
    .await;
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_gateway_calls_a_gateway_and_verifies_its_signature() {
    // B: a gateway with a DID whose default catalog is the example agent.
    let agent = ExampleAgent::start(Duration::from_millis(20)).await;
    let b = TestGateway::spawn(with_identity(
        with_catalogs(
            bearer(config()),
            &json!({"catalogs": {"default": {"description": "Echo and shout", "agents": [agent.agent()]}}}),
        ),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "gateway-b",
    ))
    .await;
    let b_did = b.state.identity().unwrap().did().to_owned();
    // B's cards carry its DID; /did/resolve answers for it and for nothing else.
    let card: Value = http()
        .get(format!("{}/.well-known/agent-card.json", b.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(card["capabilities"]["extensions"][0]["uri"], b_did.as_str());
    assert_eq!(
        card["supportedInterfaces"][0]["url"],
        format!("{}/a2a", b.url)
    );
    let doc: Value = http()
        .post(format!("{}/a2a/did/resolve", b.url))
        .json(&json!({"did": b_did}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["id"], b_did.as_str());
    let other = http()
        .get(format!("{}/did/resolve?did=did:key:z6Mk", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    // A: its own DID, a catalog that lists B's A2A door (token from the environment).
    let mut a_config = with_identity(
        with_catalogs(
            config(),
            &json!({"catalogs": {"fleet": {"agents": [{"name": "gateway-b", "endpoint": format!("{}/a2a", b.url),
                "auth": {"type": "bearer_env", "envVar": "B_TOKEN"}, "trust": {"verifyDID": true},
                "skills": [{"id": "default", "description": "Ask B's default catalog"}]}]}}}),
        ),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "gateway-a",
    );
    a_config.a2a.env_allowlist = vec!["B_TOKEN".into()];
    a_config
        .peer_env
        .insert("B_TOKEN".into(), SecretString::from(TOKEN.to_owned()));
    let a = TestGateway::spawn(a_config).await;
    let frames = a
        .plan(&json!({"question": "relay this", "catalog": "fleet"}))
        .await;
    assert_frames_match_schemas(&frames);
    let started = &find(&frames, "task.started")[0];
    assert_eq!(started["agent"], "gateway-b");
    assert_eq!(
        started["agent_did"],
        b_did.as_str(),
        "the DID from B's card"
    );
    assert_eq!(started["agent_did_source"], "observed");
    let artifact = &find(&frames, "task.artifact")[0];
    assert_eq!(
        artifact["signatures"],
        json!({"ok": true, "signed": 1, "verified": 1, "unsigned": 0}),
        "{artifact}"
    );
    let content = artifact["content"].as_str().unwrap();
    assert!(content.contains("verified=\"yes\""), "{content}");
    assert!(content.contains("echo: relay this"), "{content}");
    assert!(content.contains("RELAY THIS"), "{content}");
    assert_eq!(finished(&frames)["state"], "completed");

    // The same through the v0.3 dialect (plangate's client chooses the task id there).
    let frames = a
        .plan(
            &json!({"question": "old dialect", "agents": [{"name": "b03",
            "endpoint": format!("{}/a2a", b.url), "protocol": "0.3",
            "auth": {"type": "bearer_env", "envVar": "B_TOKEN"}, "trust": {"verifyDID": true},
            "skills": [{"id": "default"}]}]}),
        )
        .await;
    let artifact = &find(&frames, "task.artifact")[0];
    assert_eq!(artifact["signatures"]["verified"], 1, "{artifact}");
    assert!(
        artifact["content"]
            .as_str()
            .unwrap()
            .contains("OLD DIALECT")
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_streaming_caller_that_leaves_cancels_the_plan_and_its_peer_tasks() {
    let slow = FakePeer::start(Script::WorkForever).await;
    let gw = TestGateway::spawn(with_catalogs(
        config(),
        &json!({"catalogs": {"default": {"agents": [slow.agent("slow", "s")]}}}),
    ))
    .await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {"message": {
        "messageId": "m", "role": "ROLE_USER", "parts": [{"text": "wait"}]}}});
    let mut resp = http()
        .post(format!("{}/a2a/", gw.url))
        .header("A2A-Version", "1.0")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    while !seen.contains("slow/s started") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let first: Value =
        serde_json::from_str(seen.lines().next().unwrap().trim_start_matches("data: ")).unwrap();
    let task_id = first["result"]["task"]["id"].as_str().unwrap().to_owned();
    wait_for_sends(&slow, 1).await;
    drop(resp);
    wait_until("the peer task is canceled", Duration::from_secs(10), || {
        slow.count("tasks/cancel") == 1
    })
    .await;
    let get = json!({"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": task_id}});
    let (_, body) = rpc(&gw.url, None, Some("1.0"), &get.to_string()).await;
    assert_eq!(
        body["result"]["status"]["state"], "TASK_STATE_CANCELED",
        "{body}"
    );
    wait_for_idle(&gw.state).await;
    assert_eq!(gw.state.stats().open_plans, 0);
    gw.stop().await;
}

#[tokio::test]
async fn plan_takes_a_catalog_by_name() {
    let peer = FakePeer::start(Script::Instant).await;
    let own = FakePeer::start(Script::Instant).await;
    let gw = TestGateway::spawn(with_catalogs(
        config(),
        &json!({"catalogs": {"default": {"agents": [peer.agent("fleet", "s")]}, "b": {"agents": []}}}),
    ))
    .await;
    // The catalog's agents come first, the request's own after them.
    let frames = gw
        .plan(&json!({"question": "q", "catalog": "default", "agents": [own.agent("own", "s")]}))
        .await;
    let agents: Vec<&str> = find(&frames, "task.started")
        .iter()
        .map(|s| s["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["fleet", "own"]);
    // The collision guard sees the union.
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "catalog": "default", "agents": [own.agent("fleet", "s")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // An unknown catalog names the known ones.
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "catalog": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["issues"],
        json!([{"path": "catalog", "message": "unknown catalog \"nope\"; known: b, default"}])
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_bad_catalog_file_stops_the_boot_naming_the_catalog_and_field() {
    let dir = std::env::temp_dir().join(format!("plangate-catalog-boot-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "secret.json",
            r#"{"catalogs": {"ops": {"agents": [{"name": "a", "endpoint": "http://h", "auth": {"type": "bearer", "token": "hunter2"}}]}}}"#,
            "catalogs.ops.agents.0.auth: a literal token cannot sit in the catalog file",
        ),
        (
            "field.json",
            r#"{"catalogs": {"ops": {"agents": [{"name": "a", "endpoint": "ftp://h"}]}}}"#,
            "catalogs.ops.agents.0.endpoint: Invalid URL",
        ),
        ("syntax.json", "{", "is not valid JSON"),
        (
            "fleet.toml",
            "[catalogs.ops]\nagents = [{ name = \"a\", endpoint = \"nope\" }]\n",
            "catalogs.ops.agents.0.endpoint: Invalid URL",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
            .arg("serve")
            .env("GATEWAY_CATALOG", &path)
            .env("GATEWAY_HOSTNAME", "127.0.0.1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_requests_get_the_a2a_error_codes_and_callers_are_kept_apart() {
    let peer = FakePeer::start(Script::Instant).await;
    let slow = FakePeer::start(Script::WorkForever).await;
    let gw = TestGateway::spawn(with_catalogs(
        bearer(config()),
        &json!({"catalogs": {"default": {"agents": [peer.agent("p", "s")]},
            "slow": {"agents": [slow.agent("slow", "s")]}}}),
    ))
    .await;
    let code = |body: &Value| body["error"]["code"].as_i64().unwrap_or(0);
    let url = gw.url.as_str();

    let (status, body) = rpc(url, None, None, &send_v03("q", None, None)).await;
    assert_eq!((status, code(&body)), (401, -32600), "{body}");
    let (status, body) = rpc(url, Some(TOKEN), None, "{not json").await;
    assert_eq!((status, code(&body)), (200, -32700), "{body}");
    assert_eq!(body["id"], Value::Null);
    let (_, body) = rpc(
        url,
        Some(TOKEN),
        None,
        r#"{"jsonrpc":"2.0","id":7,"method":"tasks/list"}"#,
    )
    .await;
    assert_eq!(
        (code(&body), body["id"].clone()),
        (-32601, json!(7)),
        "{body}"
    );
    let (_, body) = rpc(
        url,
        Some(TOKEN),
        None,
        r#"{"jsonrpc":"2.0","id":7,"method":"SendMessage","params":{}}"#,
    )
    .await;
    assert_eq!(
        code(&body),
        -32009,
        "a 1.0 method without A2A-Version: {body}"
    );
    let (_, body) = rpc(
        url,
        Some(TOKEN),
        None,
        r#"{"id":7,"method":"message/send"}"#,
    )
    .await;
    assert_eq!(code(&body), -32600, "{body}");
    let (_, body) = rpc(
        url,
        Some(TOKEN),
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"nope"}}"#,
    )
    .await;
    assert_eq!(code(&body), -32001, "{body}");
    let bad_part = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "file", "file": {"uri": "x"}}]}}});
    let (_, body) = rpc(url, Some(TOKEN), None, &bad_part.to_string()).await;
    assert_eq!(code(&body), -32602, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("params.message.parts.0")
    );
    let v10_role = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
        "messageId": "m", "role": "user", "parts": [{"text": "x"}]}}});
    let (_, body) = rpc(url, Some(TOKEN), Some("1.0"), &v10_role.to_string()).await;
    assert_eq!(code(&body), -32602, "{body}");
    let huge = "x".repeat(300_000);
    let (_, body) = rpc(url, Some(TOKEN), None, &send_v03(&huge, None, None)).await;
    assert_eq!(code(&body), -32602, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a2a_server.max_message_bytes")
    );

    // A task of one token is invisible to another.
    let start = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {
        "configuration": {"blocking": false}, "message": {"kind": "message", "messageId": "m",
        "role": "user", "metadata": {"skillId": "slow"}, "parts": [{"kind": "text", "text": "wait"}]}}});
    let (_, body) = rpc(url, Some(TOKEN), None, &start.to_string()).await;
    let task_id = body["result"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["result"]["status"]["state"], "submitted");
    for method in ["tasks/get", "tasks/cancel"] {
        let req = json!({"jsonrpc": "2.0", "id": 2, "method": method, "params": {"id": task_id}});
        let (_, body) = rpc(url, Some("other-token"), None, &req.to_string()).await;
        assert_eq!(code(&body), -32001, "{method}: {body}");
    }
    let steal = json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": "m", "role": "user", "taskId": task_id,
        "parts": [{"kind": "text", "text": "mine now"}]}}});
    let (_, body) = rpc(url, Some("other-token"), None, &steal.to_string()).await;
    assert_eq!(code(&body), -32001, "{body}");
    // Its owner cancels it (once the peer has the task); a completed task cannot be canceled.
    wait_for_sends(&slow, 1).await;
    let cancel =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tasks/cancel", "params": {"id": task_id}});
    let (_, body) = rpc(url, Some(TOKEN), None, &cancel.to_string()).await;
    assert_eq!(body["result"]["status"]["state"], "canceled", "{body}");
    wait_until("the peer task is canceled", Duration::from_secs(10), || {
        slow.count("tasks/cancel") == 1
    })
    .await;
    let (_, body) = rpc(url, Some(TOKEN), None, &send_v03("quick", None, None)).await;
    assert_eq!(body["result"]["status"]["state"], "completed", "{body}");
    let done = body["result"]["id"].as_str().unwrap();
    let cancel =
        json!({"jsonrpc": "2.0", "id": 4, "method": "tasks/cancel", "params": {"id": done}});
    let (_, body) = rpc(url, Some(TOKEN), None, &cancel.to_string()).await;
    assert_eq!(code(&body), -32002, "{body}");
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_context_carries_its_earlier_turns_into_the_next_plan() {
    let llm = FakeLlm::start(vec![Turn::text("Paris."), Turn::text("About 2.1 million.")]).await;
    let peer = FakePeer::start(Script::Instant).await;
    let gw = TestGateway::spawn(with_catalogs(
        llm_config(&llm.url),
        &json!({"catalogs": {"default": {"agents": [peer.agent("p", "s")]}}}),
    ))
    .await;
    let (_, first) = rpc(
        &gw.url,
        None,
        None,
        &send_v03("Capital of France?", None, Some("ctx-1")),
    )
    .await;
    assert_eq!(artifact_text(&first["result"]), "Paris.", "{first}");
    let (_, second) = rpc(
        &gw.url,
        None,
        None,
        &send_v03("Its population?", None, Some("ctx-1")),
    )
    .await;
    assert_eq!(artifact_text(&second["result"]), "About 2.1 million.");
    assert_eq!(second["result"]["contextId"], "ctx-1");
    let requests = llm.requests();
    let messages = requests[1]["messages"].to_string();
    assert!(messages.contains("Capital of France?"), "{messages}");
    assert!(messages.contains("Paris."), "{messages}");
    let first_messages = requests[0]["messages"].to_string();
    assert!(!first_messages.contains("Its population?"));
    gw.stop().await;
}

/// The data part of a task's status message.
fn status_data(task: &Value) -> Value {
    task["status"]["message"]["parts"]
        .as_array()
        .and_then(|parts| parts.iter().find_map(|p| p.get("data").cloned()))
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_a2a_sdk_client_approves_declines_and_answers_a_question_on_its_task() {
    let Some(python) = a2a_python() else {
        return;
    };
    let pay = FakePeer::start(Script::Instant).await;
    let travel = FakePeer::start(Script::AskOnce("Which city?".into())).await;
    let c = with_catalogs(
        bearer(config()),
        &json!({"catalogs": {
            "default": {"agents": [{"name": "pay", "endpoint": pay.url,
                "skills": [{"id": "charge", "description": "Charges a card", "confirm": true}]}]},
            "travel": {"agents": [travel.agent("travel", "book")]}}}),
    );
    let gw = TestGateway::spawn(c).await;
    for dialect in ["1.0", "0.3"] {
        let before = pay.requests().len();
        let seen = run_json(
            &python,
            "tests/peers/a2a_door_client.py",
            &json!({"url": gw.url, "token": TOKEN, "dialect": dialect, "steps": [
                {"op": "send", "text": "pay 10", "mode": "blocking"},
                {"op": "answer", "data": {"approve": true}, "mode": "blocking"},
                {"op": "send", "text": "pay 20", "mode": "stream"},
                {"op": "answer", "data": {"approve": false, "reason": "too much"}, "mode": "stream"},
                {"op": "send", "text": "book a trip", "skill": "travel", "mode": "blocking"},
                {"op": "answer", "text": "Lisbon", "mode": "blocking"},
            ]}),
        )
        .await;
        let r = seen["results"].as_array().unwrap();
        // The call waits for a yes: the task is input-required, saying what is asked.
        let asked = &r[0]["events"][0]["task"];
        assert_eq!(
            asked["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
            "{dialect}: {asked}"
        );
        let confirm = &status_data(asked)["confirm"];
        assert_eq!(
            (confirm["agent"].as_str(), confirm["skill"].as_str()),
            (Some("pay"), Some("charge")),
            "{dialect}: {asked}"
        );
        // Approved on the same task: the call is made and the task completes.
        let done = &r[1]["events"][0]["task"];
        assert_eq!(done["id"], asked["id"], "{dialect}");
        assert_eq!(
            done["status"]["state"], "TASK_STATE_COMPLETED",
            "{dialect}: {done}"
        );
        assert!(
            artifact_text(done).contains("echo: pay 10"),
            "{dialect}: {done}"
        );
        assert_eq!(pay.requests().len(), before + 1, "{dialect}");
        // Streamed: the stream ends at the question; the declined call is never made.
        let streamed = r[2]["events"].to_string();
        assert!(
            streamed.contains("TASK_STATE_INPUT_REQUIRED"),
            "{dialect}: {streamed}"
        );
        let declined = r[3]["events"].to_string();
        assert!(
            declined.contains("TASK_STATE_COMPLETED"),
            "{dialect}: {declined}"
        );
        assert!(
            declined.contains("(declined) too much"),
            "{dialect}: {declined}"
        );
        assert_eq!(pay.requests().len(), before + 1, "{dialect}");
        // A peer's question reaches the caller; its text answer goes back on the peer's task.
        let question = &r[4]["events"][0]["task"];
        assert_eq!(
            question["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
            "{dialect}: {question}"
        );
        assert_eq!(
            status_data(question)["input"]["prompt"],
            "Which city?",
            "{dialect}"
        );
        let answered = &r[5]["events"][0]["task"];
        assert_eq!(
            answered["status"]["state"], "TASK_STATE_COMPLETED",
            "{dialect}: {answered}"
        );
        assert!(
            artifact_text(answered).contains("echo: Lisbon"),
            "{dialect}: {answered}"
        );
    }
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}
