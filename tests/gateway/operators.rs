//! What an operator sees: `/metrics` (parsed, not grepped), the `plan finished` log line of the
//! real binary in JSON, request ids, `/ready` during the drain, CORS for browser frontends.

use std::time::Duration;

use futures::StreamExt;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn metrics_count_plans_peer_calls_llm_steps_and_routes_by_outcome() {
    let ok = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let bad = FakePeer::start(Script::Fail).await;
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_alphaagent_s", json!({"input": "x"})),
        Turn::text("done"),
        Turn::call("c2", "call_betaagent_s", json!({"input": "y"})),
        Turn::text("the agent failed"),
        Turn::Status(
            400,
            r#"{"error":{"message":"bad request to the model"}}"#.into(),
        ),
        Turn::Hang,
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let agents = json!([ok.agent("alphaagent", "s"), bad.agent("betaagent", "s")]);
    // Two plans that end with `final` (one with a failed peer call), one `error`.
    for _ in 0..3 {
        gw.plan(&json!({"question": "secret question", "agents": agents}))
            .await;
    }
    // One rejected before streaming.
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // One whose client goes away.
    disconnect_after(
        &gw,
        &json!({"question": "q", "agents": agents}),
        "text.delta",
        Duration::ZERO,
    )
    .await;
    wait_for_idle(&gw.state).await;

    let m = scrape(&gw.url).await;
    let plans = |o| total(&m, "plangate_plans_total", &[("outcome", o)]);
    assert_eq!(
        (
            plans("final"),
            plans("error"),
            plans("rejected"),
            plans("disconnected")
        ),
        (2.0, 1.0, 1.0, 1.0)
    );
    // The caller's label: `anonymous` without auth.
    assert_eq!(
        sample(
            &m,
            "plangate_plans_total",
            &[("key", "anonymous"), ("outcome", "final")]
        ),
        2.0
    );
    assert_eq!(sample(&m, "plangate_plans_in_flight", &[]), 0.0);
    assert_eq!(sample(&m, "plangate_plan_duration_seconds_count", &[]), 4.0);
    let peers = |o| sample(&m, "plangate_peer_calls_total", &[("outcome", o)]);
    assert_eq!((peers("completed"), peers("failed")), (1.0, 1.0));
    assert_eq!(
        sample(&m, "plangate_peer_call_duration_seconds_count", &[]),
        2.0
    );
    let llm_req = |o| sample(&m, "plangate_llm_requests_total", &[("outcome", o)]);
    assert_eq!((llm_req("ok"), llm_req("error")), (4.0, 1.0));
    // The fake reports 10 prompt (2 cached) and 5 completion tokens per streamed step.
    let tokens = |k| sample(&m, "plangate_llm_tokens_total", &[("kind", k)]);
    assert_eq!(
        (tokens("input"), tokens("output"), tokens("cached_input")),
        (40.0, 20.0, 8.0)
    );
    assert!(sample(&m, "plangate_llm_time_to_first_token_seconds_count", &[]) >= 4.0);
    let http_count = |route, status| {
        sample(
            &m,
            "plangate_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(http_count("/plan", "200"), 4.0);
    assert_eq!(http_count("/plan", "400"), 1.0);
    // No series takes a value from the request: no agent name, no question, no raw path.
    let text = http()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for client_value in ["alphaagent", "betaagent", "secret question"] {
        assert!(!text.contains(client_value), "{text}");
    }
    // An unknown path counts as `unmatched`, never as itself.
    http()
        .get(format!("{}/no/such/path", gw.url))
        .send()
        .await
        .unwrap();
    let m = scrape(&gw.url).await;
    assert_eq!(
        sample(
            &m,
            "plangate_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(!format!("{m:?}").contains("/no/such/path"));
    gw.stop().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let mut c = config();
    c.server.metrics = false;
    let gw = TestGateway::spawn(c).await;
    let resp = http()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn request_ids_round_trip_and_are_generated_when_missing_or_insane() {
    let gw = TestGateway::spawn(config()).await;
    let get = |id: Option<String>| {
        let mut req = http().get(format!("{}/health", gw.url));
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    let resp = get(Some("client-chosen-42".into())).await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "client-chosen-42");
    let resp = get(None).await.unwrap();
    let generated = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let resp = get(Some("x".repeat(300))).await.unwrap();
    let replaced = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(replaced.len(), 36, "an insane id is replaced: {replaced}");
    // Errors carry it too.
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .header("x-request-id", "bad-body-1")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-request-id"], "bad-body-1");
    gw.stop().await;
}

#[tokio::test]
async fn ready_flips_to_503_while_draining_and_at_the_concurrency_cap() {
    let gw = TestGateway::spawn(config()).await;
    let ready = |url: &str| http().get(format!("{url}/ready")).send();
    let ready_url = gw.url.clone();
    let ready = move || ready(&ready_url);
    let resp = ready().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"ready": true}));
    gw.state.begin_draining();
    let resp = ready().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    // /health stays exactly as it was.
    assert_eq!(gw.health().await["health"], "healthy");
    gw.stop().await;

    let peer = FakePeer::start(Script::WorkForever).await;
    let mut c = config();
    c.server.max_concurrent_plans = 1;
    let gw = TestGateway::spawn(c).await;
    let ready = || http().get(format!("{}/ready", gw.url)).send();
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "agents": [peer.agent("p", "s")]}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    assert_eq!(ready().await.unwrap().status(), 503, "at the cap");
    drop(stream);
    wait_for_idle(&gw.state).await;
    assert_eq!(ready().await.unwrap().status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn cors_preflight_answers_allowed_origins_only() {
    let mut c = config();
    c.server.cors = Some(plangate::config::CorsOrigins::List(vec![
        "https://app.example.com".into(),
    ]));
    let gw = TestGateway::spawn(c).await;
    let preflight = |url: &str, origin: &str| {
        http()
            .request(reqwest::Method::OPTIONS, format!("{url}/plan"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key,last-event-id,x-request-id",
            )
            .send()
    };
    let resp = preflight(&gw.url, "https://app.example.com").await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for name in [
        "authorization",
        "content-type",
        "idempotency-key",
        "last-event-id",
        "x-request-id",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    let resp = preflight(&gw.url, "https://evil.example.net")
        .await
        .unwrap();
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        resp.headers()
    );
    // Real requests expose the request id to the page.
    let resp = http()
        .get(format!("{}/health", gw.url))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        resp.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-request-id")
    );
    gw.stop().await;

    // Off by default: no CORS headers at all.
    let gw = TestGateway::spawn(config()).await;
    let resp = preflight(&gw.url, "https://app.example.com").await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn the_binary_logs_one_json_plan_finished_line_per_plan_with_every_field() {
    let ok = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let bad = FakePeer::start(Script::Fail).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .arg("serve")
        .env_clear()
        .env("GATEWAY_HOSTNAME", "127.0.0.1")
        .env("GATEWAY_PORT", port.to_string())
        .env("GATEWAY_AUTH_MODE", "none")
        .env("GATEWAY_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&url).await;
    let ids = ["plan-a", "plan-b", "plan-c"];
    for (i, id) in ids.iter().enumerate() {
        let agents = if i == 1 {
            json!([bad.agent("bad", "s")])
        } else {
            json!([ok.agent("ok", "s")])
        };
        let resp = http()
            .post(format!("{url}/plan"))
            .header("x-request-id", *id)
            .json(&json!({"question": "q", "agents": agents}))
            .send()
            .await
            .unwrap();
        let frames = collect(resp).await;
        assert_eq!(frames.last().unwrap().event, "done");
    }
    let out = terminate(child).await;
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains('\u{1b}'), "no ANSI codes in a log file");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "plan finished")
        .collect();
    assert_eq!(finished.len(), 3, "{stderr}");
    for (line, id) in finished.iter().zip(ids) {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["request_id"], id);
        assert_eq!(line["outcome"], "final");
        for field in [
            "session_id",
            "plan_id",
            "duration_ms",
            "steps",
            "tool_calls",
            "failed_tool_calls",
            "input_tokens",
            "output_tokens",
        ] {
            assert!(line.get(field).is_some(), "{field} missing in {line}");
        }
        assert_eq!(line["tool_calls"], 1);
    }
    assert_eq!(finished[1]["failed_tool_calls"], 1);
    assert_eq!(finished[0]["failed_tool_calls"], 0);
    // The failed peer call has its WARN line, in the request's span.
    let warned: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "peer call failed")
        .collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["agent"], "bad");
    assert_eq!(warned[0]["skill"], "s");
    assert_eq!(warned[0]["request_id"], "plan-b");
    // The line sits in the request's span and the plan's.
    let spans = warned[0]["spans"].as_array().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["request", "plan"], "{}", warned[0]);
    assert_eq!(spans[0]["request_id"], "plan-b");
}
