//! Traces (cargo feature `otel`): the real binary exports the spans of a plan over OTLP/HTTP
//! (JSON) to a small receiver, with the request → plan → LLM step / peer call links.
//! Run with `cargo test --features otel --test gateway otel`.
#![cfg(feature = "otel")]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

/// A receiver of OTLP/HTTP JSON trace exports: every span it got, flattened.
#[derive(Default)]
struct Received(Mutex<Vec<Value>>);

async fn traces(State(r): State<Arc<Received>>, body: Bytes) -> &'static str {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut spans = r.0.lock().unwrap();
    for rs in v["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            spans.extend(ss["spans"].as_array().into_iter().flatten().cloned());
        }
    }
    "{}"
}

#[tokio::test]
async fn a_plan_exports_linked_spans_for_the_request_the_plan_its_steps_and_peer_calls() {
    let received = Arc::new(Received::default());
    let receiver = plangate_testkit::serve(
        Router::new()
            .route("/v1/traces", post(traces))
            .with_state(Arc::clone(&received)),
    )
    .await;
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_p_s", json!({"input": "x"})),
        Turn::text("done"),
    ])
    .await;
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
        .env("GATEWAY_LLM_API_KEY", "k")
        .env("GATEWAY_LLM_BASE_URL", &llm.url)
        .env("GATEWAY_PLANNER_MODEL", "test-model")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver)
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&url).await;
    let resp = http()
        .post(format!("{url}/plan"))
        .json(&json!({"question": "q", "agents": [peer.agent("p", "s")]}))
        .send()
        .await
        .unwrap();
    let frames = collect(resp).await;
    assert_eq!(frames.last().unwrap().event, "done");
    // SIGTERM: the exporter flushes before the process exits.
    let out = terminate(child).await;
    assert!(out.status.success());

    let spans = received.0.lock().unwrap().clone();
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|s| s["name"] == name).collect() };
    let plan_requests: Vec<&Value> = named("request")
        .into_iter()
        .filter(|r| {
            named("plan")
                .iter()
                .any(|p| p["parentSpanId"] == r["spanId"])
        })
        .collect();
    assert_eq!(plan_requests.len(), 1, "{spans:#?}");
    let request = plan_requests[0];
    let plan = named("plan")[0];
    assert_eq!(plan["traceId"], request["traceId"]);
    let steps = named("llm.step");
    assert_eq!(steps.len(), 2, "{spans:#?}");
    for step in &steps {
        assert_eq!(step["parentSpanId"], plan["spanId"]);
        assert_eq!(step["traceId"], plan["traceId"]);
    }
    let calls = named("peer.call");
    assert_eq!(calls.len(), 1, "{spans:#?}");
    assert_eq!(calls[0]["parentSpanId"], plan["spanId"]);
    assert_eq!(calls[0]["traceId"], plan["traceId"]);
}
