//! The HTTP surface before the stream opens: auth, body limit, JSON and schema errors, the
//! collision 400, idempotency, overload, 404s and `/health`.

use std::time::Duration;

use futures::StreamExt;
use plangate::config::AuthMode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::*;
use plangate_testkit::peer::{FakePeer, Script};

async fn post_raw(
    gw: &TestGateway,
    body: &str,
    auth: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = http()
        .post(format!("{}/plan", gw.url))
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn bearer_config() -> plangate::config::Config {
    let mut c = config();
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![
        SecretString::from("k1".to_owned()),
        SecretString::from("k2".to_owned()),
    ];
    c
}

#[tokio::test]
async fn bad_credentials_get_401_before_the_body_is_read() {
    let gw = TestGateway::spawn(bearer_config()).await;
    for auth in [
        None,
        Some("Basic k1"),
        Some("Bearer "),
        Some("bearer  k1"),
        Some("Bearer K1"),
    ] {
        let (status, headers, body) = post_raw(&gw, "not json", auth).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(body, r#"{"error":"unauthorized"}"#);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(headers["content-type"], "application/json");
    }
    let (status, _, _) = post_raw(&gw, "not json", Some("BEARER k2")).await;
    assert_eq!(status, 400, "a valid token reaches the JSON check");
    gw.stop().await;
}

#[tokio::test]
async fn invalid_json_and_schema_errors_are_exact_400s() {
    let gw = TestGateway::spawn(config()).await;
    let (status, _, body) = post_raw(&gw, "{oops", None).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "invalid_request");
    assert!(v["detail"].is_string() && v.get("issues").is_none());

    let (status, _, body) = post_raw(&gw, "{}", None).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        r#"{"error":"invalid_request","detail":"question: Invalid input: expected string, received undefined","issues":[{"path":"question","message":"Invalid input: expected string, received undefined"}]}"#
    );

    let (_, _, body) = post_raw(&gw, r#"{"question":"","agents":[{"name":"a","endpoint":"nope"}],"preferences":{"timeout_ms":500}}"#, None).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["detail"],
        "question: question must be a non-empty string; agents.0.endpoint: Invalid URL; preferences.timeout_ms: timeout_ms must be at least 1000 ms"
    );
    assert_eq!(v["issues"].as_array().unwrap().len(), 3);

    let invalid_utf8 = http()
        .post(format!("{}/plan", gw.url))
        .body(vec![b'"', 0xff, b'"'])
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_utf8.status(), 400);
    // Duplicate keys: the last one wins.
    let (status, _, _) = post_raw(&gw, r#"{"question":1,"question":"ok"}"#, None).await;
    assert_eq!(status, 200);
    assert!(gw.state.stats().idempotency_entries <= 1);
    gw.stop().await;
}

#[tokio::test]
async fn colliding_tool_ids_are_rejected() {
    let gw = TestGateway::spawn(config()).await;
    let body = json!({"question": "q", "agents": [
        {"name": "foo.bar", "endpoint": "http://127.0.0.1:1", "skills": [{"id": "x"}]},
        {"name": "foo_bar", "endpoint": "http://127.0.0.1:1", "skills": [{"id": "x"}]}]});
    let (status, _, body) = post_raw(&gw, &body.to_string(), None).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "{\"error\":\"invalid_request\",\"detail\":\"agents catalog has colliding tool ids \u{2014} toolId \\\"call_foo_bar_x\\\" produced by: foo.bar/x, foo_bar/x\"}"
    );
    assert_eq!(
        gw.state.stats().idempotency_entries,
        0,
        "rejected requests leave no entry"
    );
    gw.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let mut c = config();
    c.server.max_body_bytes = 100;
    let gw = TestGateway::spawn(c).await;
    let (status, _, body) = post_raw(
        &gw,
        &format!("{{\"question\":\"{}\"}}", "x".repeat(200)),
        None,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(
        body,
        r#"{"error":"payload_too_large","detail":"request body exceeds 100 bytes"}"#
    );
    // Also when the size is not declared up front (chunked upload).
    let chunks = futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 20])));
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    gw.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_plain_404() {
    let gw = TestGateway::spawn(config()).await;
    for (method, path) in [
        ("GET", "/plan"),
        ("GET", "/nope"),
        ("OPTIONS", "/plan"),
        ("POST", "/health"),
        ("HEAD", "/health"),
        ("GET", "/.well-known/did.json"),
    ] {
        let resp = http()
            .request(method.parse().unwrap(), format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
        assert_eq!(resp.headers()["content-type"], "text/plain");
        let body = resp.text().await.unwrap();
        // A HEAD response has no body by definition.
        assert_eq!(
            body,
            if method == "HEAD" {
                ""
            } else {
                "404 Not Found"
            }
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn health_has_the_compatible_shape() {
    let gw = TestGateway::spawn(config()).await;
    let resp = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "version",
            "health",
            "runtime",
            "application",
            "system",
            "status",
            "ready",
            "uptime_seconds"
        ]
    );
    assert_eq!(
        v["runtime"]["planner"],
        json!({"model": "fanout", "provider": "fanout", "model_id": null, "temperature": null, "top_p": null, "max_steps": null})
    );
    assert_eq!(v["application"]["name"], "plangate");
    assert_eq!(v["system"]["platform"], "linux");
    assert!(
        v["system"]["node_version"]
            .as_str()
            .unwrap()
            .starts_with("rustc ")
    );
    assert_eq!(v["status"], "ok");
    assert_eq!(v["ready"], true);
    gw.stop().await;

    let mut c = llm_config("http://127.0.0.1:1/v1");
    c.planner.model = "openrouter/anthropic/claude-sonnet-4.6".into();
    let gw = TestGateway::spawn(c).await;
    let v = gw.health().await;
    assert_eq!(
        v["runtime"]["planner"],
        json!({"model": "openrouter/anthropic/claude-sonnet-4.6", "provider": "openrouter",
        "model_id": "anthropic/claude-sonnet-4.6", "temperature": 0.3, "top_p": null, "max_steps": 10})
    );
    gw.stop().await;
}

#[tokio::test]
async fn identical_bodies_in_flight_get_the_duplicate_stream() {
    let peer = FakePeer::start(Script::Complete { working_polls: 3 }).await;
    let gw = TestGateway::spawn(config()).await;
    let body = json!({"question": "q", "agents": [peer.agent("p", "s")]}).to_string();
    let first = http()
        .post(format!("{}/plan", gw.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let mut first_stream = first.bytes_stream();
    let head = String::from_utf8_lossy(&first_stream.next().await.unwrap().unwrap()).to_string();
    let original: Value =
        serde_json::from_str(head.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    let dup = http()
        .post(format!("{}/plan", gw.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let frames = collect(dup).await;
    assert_frames_match_schemas(&frames);
    assert_eq!(events(&frames), ["session", "duplicate", "done"]);
    assert_eq!(frames[0].data["session_id"], original["session_id"]);
    assert_eq!(frames[0].data["created"], false);
    assert_eq!(
        frames[1].data,
        json!({"session_id": original["session_id"], "in_flight": true,
        "message": "Plan with identical body is in flight; not re-running."})
    );
    while first_stream.next().await.is_some() {}
    // A `body:` entry ends with its stream: the same body runs again.
    wait_for_idle(&gw.state).await;
    let again = gw.plan(&serde_json::from_str(&body).unwrap()).await;
    assert!(find(&again, "session")[0]["created"].as_bool().unwrap());
    assert_eq!(peer.count("message/send"), 2);
    gw.stop().await;
}

#[tokio::test]
async fn idempotency_keys_outlive_the_plan_and_are_scoped_by_token() {
    let peer = FakePeer::start(Script::Message).await;
    let gw = TestGateway::spawn(bearer_config()).await;
    let send = |token: &'static str, body: Value| {
        let url = format!("{}/plan", gw.url);
        async move {
            http()
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .header("idempotency-key", "abc")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let body = json!({"question": "q", "agents": [peer.agent("p", "s")]});
    let frames = collect(send("k1", body.clone()).await).await;
    assert!(!find(&frames, "final").is_empty());
    wait_until("the first plan to end", Duration::from_secs(2), || {
        gw.state.stats().open_plans == 0
    })
    .await;
    let dup = collect(send("k1", json!({"question": "different body"})).await).await;
    assert_eq!(events(&dup), ["session", "duplicate", "done"]);
    assert_eq!(dup[1].data["in_flight"], false);
    assert_eq!(
        dup[1].data["message"],
        "Plan with identical body recently completed (within idempotency TTL)."
    );
    let other_tenant = collect(send("k2", body).await).await;
    assert!(
        !find(&other_tenant, "final").is_empty(),
        "another token runs its own plan"
    );
    assert_eq!(peer.count("message/send"), 2);
    gw.stop().await;
}

#[tokio::test]
async fn over_the_concurrency_limit_answers_503() {
    let peer = FakePeer::start(Script::Complete { working_polls: 2 }).await;
    let mut c = config();
    c.server.max_concurrent_plans = 1;
    let gw = TestGateway::spawn(c).await;
    let first = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "a", "agents": [peer.agent("p", "s")]}))
        .send()
        .await
        .unwrap();
    let (status, headers, body) = post_raw(&gw, r#"{"question":"b"}"#, None).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        body,
        r#"{"error":"overloaded","detail":"too many plans in flight"}"#
    );
    collect(first).await;
    wait_for_idle(&gw.state).await;
    let (status, _, _) = post_raw(&gw, r#"{"question":"b"}"#, None).await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn keep_alive_comments_flow_while_idle() {
    let peer = FakePeer::start(Script::Complete { working_polls: 4 }).await;
    let mut c = config();
    c.server.sse_keepalive = Some(Duration::from_millis(200));
    let gw = TestGateway::spawn(c).await;
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "a", "agents": [peer.agent("p", "s")]}))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(c) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&c.unwrap()));
    }
    assert!(text.contains(": keep-alive\n\n"), "{text}");
    assert!(text.ends_with("event: done\ndata: {}\n\n"));
    gw.stop().await;
}

#[tokio::test]
async fn draining_gateway_answers_503_with_retry_after() {
    use tower::ServiceExt;
    let state = plangate::boot::build(config()).unwrap();
    state.begin_draining();
    let resp = plangate::api::router(state)
        .oneshot(
            axum::http::Request::post("/plan")
                .body(axum::body::Body::from(r#"{"question":"q"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
    assert_eq!(
        &body[..],
        br#"{"error":"shutting_down","detail":"gateway is shutting down"}"#
    );
}

#[test]
fn request_schema_agrees_with_the_validator_on_sample_bodies() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/schemas/plan-request.schema.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let samples = [
        json!({"question": "q"}),
        json!({"question": "q", "agents": [{"name": "a", "endpoint": "https://h", "protocol": "1.0",
            "auth": {"type": "bearer", "token": "t"}, "trust": {"verifyDID": true},
            "skills": [{"id": "s", "inputSchema": {"type": "string"}, "tags": ["x"]}]}],
            "preferences": {"timeout_ms": 5000, "max_steps": 3}, "history": [{"role": "user", "parts": [{"type": "text", "text": ""}]}],
            "prior_summary": "s", "prior_task_ids": {"a": "t"}}),
        json!({}),
        json!({"question": ""}),
        json!({"question": "q", "preferences": {"timeout_ms": 10}}),
        json!({"question": "q", "agents": [{"name": "a", "endpoint": "https://h", "auth": {"type": "magic"}}]}),
        json!({"question": "q", "history": [{"role": "bot", "parts": []}]}),
    ];
    for sample in samples {
        let ours = plangate::planner::validate::validate(&sample).is_ok();
        assert_eq!(
            validator.is_valid(&sample),
            ours,
            "schema and validator disagree on {sample}"
        );
    }
}
