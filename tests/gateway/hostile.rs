//! Fault injection: hostile peers, clients and LLM answers against a real gateway on loopback.
//! Every case is bounded in time and asserts the limit that holds it.

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use crate::support::fake_peer::{FakePeer, Script};
use crate::support::*;

/// Serves `app` on a loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    #[expect(clippy::disallowed_methods, reason = "fake server lives for the test")]
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn agent(name: &str, endpoint: &str) -> serde_json::Value {
    json!({"name": name, "endpoint": endpoint, "skills": [{"id": "s", "description": "a skill"}]})
}

#[tokio::test]
async fn redirects_are_not_followed_for_json_rpc_and_bounded_for_cards() {
    let peer = FakePeer::start(Script::Message).await;
    let card_hits = Arc::new(AtomicUsize::new(0));
    let hits = Arc::clone(&card_hits);
    let target = format!("{}/", peer.url);
    let app = Router::new()
        // A redirect loop: followed three times, then given up.
        .route(
            "/.well-known/agent-card.json",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, "/.well-known/agent-card.json")],
                    )
                }
            }),
        )
        // A redirect to the cloud metadata address: refused by the guard, never contacted.
        .route(
            "/.well-known/agent.json",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://169.254.169.254/latest/meta-data/")],
                )
            }),
        )
        // The JSON-RPC POST is redirected to another (reachable) peer: not followed.
        .route(
            "/",
            post(move || {
                let target = target.clone();
                async move {
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]).into_response()
                }
            }),
        );
    let url = serve(app).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = plan_one(&gw, "q", agent("r", &url)).await;
    let f = finished(&frames);
    assert_eq!(f["state"], "failed");
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .starts_with("transport: HTTP 307 Temporary Redirect"),
        "{f}"
    );
    assert!(
        peer.requests().is_empty(),
        "the redirect target was never called"
    );
    assert_eq!(
        card_hits.load(Ordering::SeqCst),
        4,
        "first request + 3 redirects"
    );
    gw.stop().await;
}

#[tokio::test]
async fn cloud_metadata_endpoints_are_refused_in_the_default_configuration() {
    let gw = TestGateway::spawn(config()).await;
    assert!(
        !gw.state.config.a2a.block_private_endpoints,
        "default: private peers reachable"
    );
    for endpoint in [
        "http://169.254.169.254/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
    ] {
        let t0 = Instant::now();
        let frames = plan_one(&gw, "q", agent("m", endpoint)).await;
        assert_eq!(
            finished(&frames)["error"],
            "transport: endpoint resolves to a cloud metadata address",
            "{endpoint}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "refused without connecting"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn host_names_are_checked_by_the_resolver_when_connecting() {
    // The machine's own name resolves to a loopback or private address (no pre-check can be
    // raced: the resolver that connects is the one that refuses).
    let name = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let resolved: Vec<std::net::IpAddr> = (name.as_str(), 80)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    assert!(
        !resolved.is_empty()
            && resolved
                .iter()
                .all(|ip| plangate::a2a::guard::refusal(*ip, true).is_some()),
        "this test needs the host name ({name:?}) to resolve to a private address: {resolved:?}"
    );
    let peer = FakePeer::start(Script::Message).await;
    let port = peer.url.rsplit(':').next().unwrap().to_owned();
    let mut c = config();
    c.a2a.block_private_endpoints = true;
    let gw = TestGateway::spawn(c).await;
    let frames = plan_one(&gw, "q", agent("n", &format!("http://{name}:{port}"))).await;
    assert_eq!(
        finished(&frames)["error"],
        "transport: endpoint resolves to a blocked address"
    );
    assert!(peer.requests().is_empty());
    gw.stop().await;
}

/// Peak resident memory of a process, from `/proc/<pid>/status` (`VmHWM`, in KiB).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The real binary on a free loopback port, auth off; killed on drop.
struct Binary {
    child: tokio::process::Child,
    url: String,
}

impl Binary {
    async fn start() -> Self {
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
            .env("RUST_LOG", "error")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if http()
                .get(format!("{url}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return Self { child, url };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway binary did not become healthy");
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }
}

/// `{"question":"q","<field>":[[],[],…]}` of about `bytes` bytes.
fn flood_body(field: &str, bytes: usize) -> Vec<u8> {
    let mut body = format!(r#"{{"question":"q","{field}":["#).into_bytes();
    while body.len() + 4 < bytes {
        body.extend_from_slice(b"[],");
    }
    body.extend_from_slice(b"[]]}");
    body
}

#[tokio::test]
async fn sixteen_mib_bodies_of_empty_arrays_cost_little_memory() {
    let gw = Binary::start().await;
    let before = peak_rss_kib(gw.pid());
    let send = |field: &'static str| {
        let url = format!("{}/plan", gw.url);
        async move {
            let resp = http()
                .post(url)
                .header("content-type", "application/json")
                .body(flood_body(field, 16 * 1024 * 1024 - 64))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    // Unknown fields are skipped unbuilt: the plan runs (no agents, fan-out) and ends.
    // Known fields are built under the value budget: 400 naming the setting.
    let results =
        futures::future::join_all([send("x"), send("x"), send("agents"), send("history")]).await;
    for (status, body) in &results[..2] {
        assert_eq!(*status, 200, "{body}");
        assert!(body.ends_with("event: done\ndata: {}\n\n"), "{body}");
    }
    for (status, body) in &results[2..] {
        assert_eq!(*status, 400);
        assert!(
            body.contains(
                "request body holds more than 250000 JSON values (server.max_json_values)"
            ),
            "{body}"
        );
    }
    let peak = peak_rss_kib(gw.pid());
    // Four 16 MiB bodies are 64 MiB of raw bytes; parsing them added ~1 GB each before.
    assert!(
        peak < before + 160 * 1024,
        "peak RSS {peak} KiB (was {before} KiB before the flood)"
    );
}

#[tokio::test]
async fn catalog_limits_answer_400_naming_the_setting() {
    let mut c = config();
    c.plan.max_agents = 3;
    c.plan.max_skills = 5;
    let gw = TestGateway::spawn(c).await;
    let agents: Vec<serde_json::Value> = (0..4)
        .map(|i| json!({"name": format!("a{i}"), "endpoint": "http://127.0.0.1:9/", "skills": [{"id": "s"}, {"id": "t"}]}))
        .collect();
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "agents": agents}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "agents: Too big: at most 3 agents per request (plan.max_agents), got 4; agents: Too big: at most 5 skills per request over all agents (plan.max_skills), got 8"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_plan_runs_at_most_max_concurrent_calls_peer_calls_at_once() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (Arc::clone(&in_flight), Arc::clone(&peak));
    let app = Router::new().route(
        "/",
        post(move |body: axum::body::Bytes| {
            let (f, p) = (Arc::clone(&f), Arc::clone(&p));
            async move {
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(150)).await;
                f.fetch_sub(1, Ordering::SeqCst);
                axum::Json(json!({"jsonrpc": "2.0", "id": req["id"], "result":
                    {"kind": "message", "role": "agent", "messageId": "m", "parts": [{"kind": "text", "text": "ok"}]}}))
            }
        }),
    );
    let url = serve(app).await;
    let mut c = config();
    c.plan.max_concurrent_calls = 4;
    let gw = TestGateway::spawn(c).await;
    let skills: Vec<serde_json::Value> = (0..12).map(|i| json!({"id": format!("s{i}")})).collect();
    let frames = gw
        .plan(&json!({"question": "q", "agents": [{"name": "wide", "endpoint": url, "skills": skills}]}))
        .await;
    assert_eq!(find(&frames, "task.finished").len(), 12);
    assert!(
        find(&frames, "task.finished")
            .iter()
            .all(|f| f["state"] == "completed")
    );
    assert_eq!(
        peak.load(Ordering::SeqCst),
        4,
        "never more, and the cap is used"
    );
    gw.stop().await;
}

#[tokio::test]
async fn streamed_artifact_chunks_are_capped_in_total_and_the_task_canceled() {
    let chunk = "x".repeat(300_000);
    let events: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            json!({"kind": "artifact-update", "taskId": "{id}", "append": i > 0,
            "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": chunk}]}})
        })
        .collect();
    let peer = FakePeer::start_with_card(
        Script::Stream(events),
        json!({"name": "s", "capabilities": {"streaming": true}}),
    )
    .await;
    let mut c = config();
    c.a2a.max_response_bytes = 1_000_000;
    let gw = TestGateway::spawn(c).await;
    let frames = plan_one(&gw, "q", agent("big", &peer.url)).await;
    assert_eq!(
        finished(&frames)["error"],
        "transport: peer response exceeds 1000000 bytes"
    );
    for _ in 0..50 {
        if peer.count("tasks/cancel") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(peer.count("tasks/cancel"), 1, "the remote task is canceled");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_pin_its_plan_past_the_deadline() {
    // A peer whose answers fill the socket buffers of a client that never reads.
    let big = "x".repeat(190_000);
    let app = Router::new().route(
        "/",
        post(move |body: axum::body::Bytes| {
            let big = big.clone();
            async move {
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                if req["method"] == "tasks/cancel" {
                    return axum::Json(json!({"jsonrpc": "2.0", "id": req["id"], "result":
                        {"kind": "task", "id": req["params"]["id"], "status": {"state": "canceled"}}}));
                }
                axum::Json(json!({"jsonrpc": "2.0", "id": req["id"], "result":
                    {"kind": "message", "role": "agent", "messageId": "m", "parts": [{"kind": "text", "text": big}]}}))
            }
        }),
    );
    let url = serve(app).await;
    let gw = TestGateway::spawn(config()).await;
    let skills: Vec<serde_json::Value> = (0..120).map(|i| json!({"id": format!("s{i}")})).collect();
    let body =
        json!({"question": "q", "agents": [{"name": "big", "endpoint": url, "skills": skills}],
        "preferences": {"timeout_ms": 1000}})
        .to_string();
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /plan HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
        .await
        .unwrap();
    // Never read. The plan must be gone by its deadline + 500 ms (plus scheduling slack).
    let t0 = Instant::now();
    let mut gone = None;
    while t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if gw.state.tracker.is_empty() {
            gone = Some(t0.elapsed());
            break;
        }
    }
    let gone = gone.expect("the plan task still runs 5 s after a 1 s deadline");
    // Deadline 1 s + 500 ms by construction; the slack is for a loaded 2-core machine (before
    // the fix the plan never ended).
    assert!(
        gone < Duration::from_millis(3000),
        "plan ended after {gone:?}"
    );
    drop(socket);
    gw.stop().await;
}
