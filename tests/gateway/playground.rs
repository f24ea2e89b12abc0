//! `/playground` in a real browser: Debian's Chromium driven headless by playwright-core
//! (`tests/browser/playground.mjs`). Screenshots go to `target/test-output/`.

use std::time::Duration;

use plangate::config::AuthMode;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the browser and the driver are installed (else the test is reported skipped).
fn browser_ready() -> bool {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| CHROMIUM.to_owned());
    if !std::path::Path::new(&chromium).exists() {
        skip(
            &format!("{chromium} is not installed"),
            "PLANGATE_REQUIRE_BROWSER",
        );
        return false;
    }
    if !repo()
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        skip(
            "tests/browser has no node_modules (scripts/test.sh runs npm ci)",
            "PLANGATE_REQUIRE_BROWSER",
        );
        return false;
    }
    true
}

fn screenshot(name: &str) -> String {
    let dir = repo().join("target/test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).to_string_lossy().into_owned()
}

fn bearer(token: &str) -> plangate::config::Config {
    let mut c = config();
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![token.to_owned().into()];
    c
}

/// What every page run must show: no script ran that should not, nothing loaded from elsewhere.
fn assert_clean(seen: &Value) {
    assert_eq!(seen["http"], 200);
    assert_eq!(seen["dialogs"], json!([]), "{seen}");
    assert_eq!(seen["pageErrors"], json!([]), "{seen}");
    // A blocked script or image (Content-Security-Policy) would be logged here.
    assert_eq!(seen["consoleErrors"], json!([]), "{seen}");
    assert_eq!(seen["foreignRequests"], json!([]), "{seen}");
    assert_eq!(seen["images"], 0, "{seen}");
    assert_eq!(seen["elementsInResults"], 0, "{seen}");
}

#[tokio::test]
async fn playground_is_self_contained_and_can_be_switched_off() {
    let gw = TestGateway::spawn(config()).await;
    let resp = http()
        .get(format!("{}/playground", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("<title>plangate playground</title>"));
    gw.stop().await;

    let mut c = config();
    c.server.playground = false;
    let gw = TestGateway::spawn(c).await;
    let resp = http()
        .get(format!("{}/playground", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn playground_runs_a_plan_against_the_example_agent_in_chromium() {
    if !browser_ready() {
        return;
    }
    let agent = ExampleAgent::start(Duration::from_millis(400)).await;
    let gw = TestGateway::spawn(bearer("browser-token")).await;
    let path = screenshot("playground-finished.png");
    let seen = run_json(
        "node",
        "tests/browser/playground.mjs",
        &json!({
            "url": gw.url, "token": "browser-token", "question": "hello from chromium",
            "agents": [agent.agent()], "action": "run", "screenshot": path,
        }),
    )
    .await;
    assert_clean(&seen);
    assert!(
        seen["status"].as_str().unwrap().starts_with("done · "),
        "{seen}"
    );
    // The page comes with an example catalog to edit.
    assert_eq!(seen["prefilled"][0]["name"], "example", "{seen}");
    let cards = seen["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 2, "{seen}");
    for (card, skill) in cards.iter().zip(["echo", "shout"]) {
        assert_eq!(card["agent"], "example");
        assert_eq!(card["skill"], skill);
        assert_eq!(card["state"], "completed", "{seen}");
        assert!(card["took"].as_str().unwrap().ends_with(" s"), "{seen}");
        // The peer's text, not the envelope the LLM reads; its verification as a badge.
        let output = card["output"].as_str().unwrap();
        assert!(!output.contains("remote_content"), "{seen}");
        assert!(
            output.to_lowercase().contains("hello from chromium"),
            "{seen}"
        );
    }
    assert_eq!(
        seen["badges"],
        json!(["unverified", "unverified"]),
        "{seen}"
    );
    // Without sessions on the gateway, the page offers no follow-up.
    assert_eq!(seen["session"], "", "{seen}");
    let answer = seen["answer"].as_str().unwrap();
    assert!(answer.contains("echo: hello from chromium"), "{answer}");
    assert!(answer.contains("HELLO FROM CHROMIUM"), "{answer}");
    assert!(
        seen["usage"]
            .as_str()
            .unwrap()
            .starts_with("stop · 0 input"),
        "{seen}"
    );
    assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{path}");
    gw.stop().await;

    // A wrong token is shown as the gateway's refusal.
    let gw = TestGateway::spawn(bearer("browser-token")).await;
    let seen = run_json("node", "tests/browser/playground.mjs", &json!({
        "url": gw.url, "token": "nope", "question": "q", "agents": [agent.agent()], "action": "run",
    }))
    .await;
    assert_eq!(seen["status"], "rejected · HTTP 401", "{seen}");
    assert_eq!(seen["formError"], "HTTP 401: unauthorized", "{seen}");
    gw.stop().await;
}

#[tokio::test]
async fn playground_shows_hostile_peer_content_as_text() {
    if !browser_ready() {
        return;
    }
    let hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    let peer = FakePeer::start(Script::Artifact(json!([{"kind": "text", "text": hostile}]))).await;
    let gw = TestGateway::spawn(config()).await;
    let mut agent = peer.agent("<b>evil</b>", "s");
    agent["skills"][0]["id"] = json!("<i>s</i>");
    let seen = run_json(
        "node",
        "tests/browser/playground.mjs",
        &json!({
            "url": gw.url, "question": "<svg onload=alert(3)>", "agents": [agent], "action": "run",
            "screenshot": screenshot("playground-hostile.png"),
        }),
    )
    .await;
    assert_clean(&seen);
    assert!(seen["answer"].as_str().unwrap().contains(hostile), "{seen}");
    let card = &seen["cards"][0];
    assert_eq!(card["agent"], "<b>evil</b>", "{seen}");
    assert_eq!(card["skill"], "<i>s</i>", "{seen}");
    assert!(card["output"].as_str().unwrap().contains(hostile), "{seen}");
    gw.stop().await;
}

#[tokio::test]
async fn playground_stop_cancels_the_peer_task() {
    if !browser_ready() {
        return;
    }
    let peer = FakePeer::start(Script::WorkForever).await;
    let gw = TestGateway::spawn(config()).await;
    let seen = run_json(
        "node",
        "tests/browser/playground.mjs",
        &json!({
            "url": gw.url, "question": "take your time", "agents": [peer.agent("slow", "s")],
            "action": "stop",
        }),
    )
    .await;
    assert_clean(&seen);
    assert!(
        seen["status"].as_str().unwrap().starts_with("stopped · "),
        "{seen}"
    );
    wait_until(
        "the peer receives tasks/cancel",
        Duration::from_secs(10),
        || peer.count("tasks/cancel") == 1,
    )
    .await;
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn playground_follows_up_in_a_session_renders_markdown_and_picks_a_catalog() {
    if !browser_ready() {
        return;
    }
    let agent = ExampleAgent::start(Duration::from_millis(50)).await;
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_example_echo", json!({"input": "hi"})),
        Turn::text("**Hello** from the agent [[example:echo]]\n\n- one\n- two"),
        Turn::text("The second answer, with `code`."),
    ])
    .await;
    let catalogs = std::env::temp_dir().join(format!("plangate-pg-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &catalogs,
        serde_json::to_vec(
            &json!({"catalogs": {"ops": {"description": "the example agent",
            "agents": [agent.agent()]}}}),
        )
        .unwrap(),
    )
    .unwrap();
    let mut c = llm_config(&llm.url);
    c.sessions.enabled = true;
    c.catalog_file = Some(catalogs.clone());
    let gw = TestGateway::spawn(c).await;
    let seen = run_json(
        "node",
        "tests/browser/playground.mjs",
        &json!({
            "url": gw.url, "question": "Say hello", "agents": [], "catalog": "ops",
            "action": "followup", "followup": "And again?",
            "screenshot": screenshot("playground-follow-up.png"),
        }),
    )
    .await;
    assert_clean(&seen);
    assert_eq!(seen["catalogs"], json!(["ops"]), "{seen}");
    // The first turn moved up into the conversation; the answer is the follow-up's.
    let conversation = seen["conversation"].as_array().unwrap();
    assert_eq!(conversation.len(), 1, "{seen}");
    assert_eq!(conversation[0]["question"], "Say hello");
    let first = conversation[0]["answer"].as_str().unwrap();
    assert!(first.starts_with("Hello from the agent"), "{seen}");
    assert!(!first.contains("**") && !first.contains("[["), "{seen}");
    assert_eq!(seen["answer"], "The second answer, with code.", "{seen}");
    assert_eq!(seen["strong"], json!(["Hello"]), "{seen}");
    assert_eq!(seen["citations"], json!(["[example:echo]"]), "{seen}");
    assert_eq!(seen["listItems"], json!(["one", "two"]), "{seen}");
    assert!(
        seen["answerTags"]
            .as_array()
            .unwrap()
            .contains(&json!("code")),
        "{seen}"
    );
    let session = seen["session"].as_str().unwrap();
    assert!(
        session.starts_with("conversation ") && session.ends_with(" · turn 2"),
        "{seen}"
    );
    // The follow-up reached the LLM with the first turn, kept by the gateway.
    let requests = llm.requests();
    assert_eq!(requests.len(), 3);
    let follow_up = requests[2]["messages"].to_string();
    assert!(
        follow_up.contains("Say hello") && follow_up.contains("Hello** from the agent"),
        "{follow_up}"
    );
    let _ = std::fs::remove_file(catalogs);
    gw.stop().await;
}

#[tokio::test]
async fn playground_approves_a_waiting_call_and_answers_an_agents_question() {
    if !browser_ready() {
        return;
    }
    // Approve clicked in the page: the call that waited for it runs.
    let peer = FakePeer::start(Script::Instant).await;
    let gw = TestGateway::spawn(bearer("pg-token")).await;
    let agent = json!({"name": "pay", "endpoint": peer.url,
        "skills": [{"id": "charge", "description": "Charges a card", "confirm": true}]});
    let seen = run_json(
        "node",
        "tests/browser/playground.mjs",
        &json!({
            "url": gw.url, "token": "pg-token", "question": "pay 10", "agents": [agent],
            "action": "approve", "screenshot": screenshot("playground-approve.png"),
            "waitingScreenshot": screenshot("playground-waiting.png"),
        }),
    )
    .await;
    assert_clean(&seen);
    assert!(
        seen["status"].as_str().unwrap().starts_with("done"),
        "{seen}"
    );
    assert_eq!(seen["cards"][0]["state"], "completed", "{seen}");
    assert!(
        seen["answer"].as_str().unwrap().contains("echo: pay 10"),
        "{seen}"
    );
    assert_eq!(peer.requests().len(), 1);
    // A question typed into the card goes to the agent, which answers with it.
    let asking = FakePeer::start(Script::AskOnce("Which city?".into())).await;
    let seen = run_json(
        "node",
        "tests/browser/playground.mjs",
        &json!({
            "url": gw.url, "token": "pg-token", "question": "book a trip",
            "agents": [asking.agent("travel", "book")], "action": "answer", "answer": "Lisbon",
            "screenshot": screenshot("playground-answer.png"),
        }),
    )
    .await;
    assert_clean(&seen);
    assert_eq!(seen["cards"][0]["state"], "completed", "{seen}");
    assert!(
        seen["answer"].as_str().unwrap().contains("echo: Lisbon"),
        "{seen}"
    );
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn playground_shows_an_agents_image_inline_and_links_the_other_files() {
    use base64::Engine as _;
    if !browser_ready() {
        return;
    }
    let png = std::fs::read(repo().join("fixtures/files/chart.png")).unwrap();
    let peer = plangate_testkit::peer::FakePeer::start(plangate_testkit::peer::Script::Artifact(
        json!([
            {"kind": "text", "text": "a chart and its data"},
            {"kind": "file", "file": {"name": "chart.png", "mimeType": "image/png",
                "bytes": base64::engine::general_purpose::STANDARD.encode(&png)}},
            {"kind": "file", "file": {"name": "data.csv", "mimeType": "text/csv", "bytes": "YSxiCjEsMgo="}},
            {"kind": "file", "file": {"name": "far.pdf", "mimeType": "application/pdf", "uri": "https://files.example/far.pdf"}}
        ]),
    ))
    .await;
    let gw = TestGateway::spawn(bearer("browser-token")).await;
    let path = screenshot("playground-files.png");
    let seen = run_json(
        "node",
        "tests/browser/playground.mjs",
        &json!({
            "url": gw.url, "token": "browser-token", "question": "draw",
            "agents": [peer.agent("charts", "draw")], "action": "run", "screenshot": path,
        }),
    )
    .await;
    assert_clean(&seen);
    let files = seen["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{seen}");
    // The image, fetched with the token, shown from a blob (48×48, as drawn).
    assert_eq!(files[0]["name"], "chart.png");
    assert_eq!(files[0]["image"]["loaded"], true, "{seen}");
    assert_eq!(files[0]["image"]["width"], 48);
    assert_eq!(files[0]["image"]["src"], "blob");
    // The CSV as a link the page saves from a blob; the PDF at its own address.
    assert_eq!(files[1]["image"], Value::Null);
    assert_eq!(files[1]["link"], "#");
    assert!(
        files[1]["text"]
            .as_str()
            .unwrap()
            .contains("data.csv (text/csv, 8 bytes)")
    );
    assert_eq!(files[2]["link"], "https://files.example/far.pdf");
    gw.stop().await;
}
