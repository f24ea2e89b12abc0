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

use crate::support::*;
use plangate_testkit::peer::{FakePeer, Script};

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
        !gw.state.config().a2a.block_private_endpoints,
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
        Self::start_with(&[]).await
    }

    /// Starts the binary with extra TOML configuration lines.
    async fn start_with(toml: &[&str]) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let config = std::env::temp_dir().join(format!("plangate-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&config, toml.join("\n")).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
            .arg("serve")
            .env_clear()
            .env("GATEWAY_CONFIG", &config)
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

/// Runs a 12-skill fan-out against a peer that takes 150 ms per send; returns the most sends the
/// peer saw at once.
async fn peak_concurrent_sends(c: plangate::config::Config) -> usize {
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
    gw.stop().await;
    peak.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_plan_runs_at_most_max_concurrent_calls_peer_calls_at_once() {
    let mut c = config();
    c.plan.max_concurrent_calls = 4;
    assert_eq!(
        peak_concurrent_sends(c).await,
        4,
        "never more, and the cap is used"
    );
}

#[tokio::test]
async fn peer_requests_in_flight_are_capped_gateway_wide() {
    let mut c = config();
    c.a2a.max_connections = 3;
    assert_eq!(
        peak_concurrent_sends(c).await,
        3,
        "never more, and the cap is used"
    );
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

/// A peer whose answers (120 skills × 190 kB) fill the socket buffers of a client that never
/// reads; tiny answers to cancels.
async fn big_answer_peer() -> String {
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
    serve(app).await
}

/// POSTs a 120-call plan on a raw socket that is never read; returns the socket.
async fn plan_without_reading(
    gw: &TestGateway,
    peer: &str,
    timeout_ms: u64,
) -> tokio::net::TcpStream {
    let skills: Vec<serde_json::Value> = (0..120).map(|i| json!({"id": format!("s{i}")})).collect();
    let body =
        json!({"question": "q", "agents": [{"name": "big", "endpoint": peer, "skills": skills}],
        "preferences": {"timeout_ms": timeout_ms}})
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
    socket
}

/// How long until the gateway has no task left (the plan and its cancels), polled every 50 ms
/// for at most `limit`.
async fn time_until_idle(gw: &TestGateway, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if gw.state.stats().live_tasks == 0 {
            return Some(t0.elapsed());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_pin_its_plan_past_the_deadline() {
    let peer = big_answer_peer().await;
    let mut c = config();
    c.server.write_timeout = Duration::from_secs(60);
    let gw = TestGateway::spawn(c).await;
    let socket = plan_without_reading(&gw, &peer, 1000).await;
    let gone = time_until_idle(&gw, Duration::from_secs(5))
        .await
        .expect("the plan task still runs 5 s after a 1 s deadline");
    // Deadline 1 s + 500 ms by construction; the slack is for a loaded 2-core machine (before
    // the fix the plan never ended).
    assert!(
        gone < Duration::from_millis(3000),
        "plan ended after {gone:?}"
    );
    drop(socket);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_by_the_write_timeout() {
    let peer = big_answer_peer().await;
    let mut c = config();
    c.server.write_timeout = Duration::from_millis(700);
    let gw = TestGateway::spawn(c).await;
    // A long deadline: only the write timeout can end this plan early.
    let socket = plan_without_reading(&gw, &peer, 60_000).await;
    let gone = time_until_idle(&gw, Duration::from_secs(10))
        .await
        .expect("the plan of a client that stopped reading still runs 10 s later");
    assert!(gone < Duration::from_secs(5), "plan ended after {gone:?}");
    assert_eq!(gw.state.stats().open_plans, 0, "the stream was dropped");
    drop(socket);
    gw.stop().await;
}

/// Reads until the server closes the connection (or `limit` passes); returns what was read and
/// when the close came.
async fn read_until_closed(
    socket: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Option<Duration>) {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            (t0 + limit).into(),
            tokio::io::AsyncReadExt::read(socket, &mut buf),
        )
        .await
        {
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), None),
            Ok(Ok(0) | Err(_)) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    Some(t0.elapsed()),
                );
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    let mut c = config();
    c.server.header_read_timeout = Duration::from_millis(800);
    let gw = TestGateway::spawn(c).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();

    // Slowloris: a header line, then one byte every 200 ms, never the blank line.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"POST /plan HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut closed = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if tokio::io::AsyncWriteExt::write_all(&mut slow, b"X")
            .await
            .is_err()
        {
            closed = Some(t0.elapsed());
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(
            Duration::from_millis(1),
            tokio::io::AsyncReadExt::read(&mut slow, &mut probe),
        )
        .await
        {
            closed = Some(t0.elapsed());
            break;
        }
    }
    let closed = closed.expect("a slow header sender is never cut off");
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );

    // Idle keep-alive: one request, then silence.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut idle, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut idle, Duration::from_secs(4)).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    let closed = closed.expect("an idle keep-alive connection stays open");
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503_and_are_closed() {
    let mut c = config();
    c.server.max_connections = 3;
    let gw = TestGateway::spawn(c).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut extra, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut extra, Duration::from_secs(3)).await;
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with(r#"{"error":"overloaded","detail":"too many open connections"}"#),
        "{text}"
    );
    assert!(closed.is_some());
    // A real HTTP client sees the 503, not a protocol error.
    let resp = http()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    // A slot frees when a connection goes away.
    drop(held.pop());
    let t0 = Instant::now();
    loop {
        let status = http()
            .get(format!("{}/health", gw.url))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the freed slot was not reused: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn sigterm_exits_within_grace_plus_one_second_whatever_clients_do() {
    let mut gw = Binary::start_with(&[
        "[server]",
        "shutdown_grace_secs = 1",
        "header_read_timeout_ms = 60000",
        "body_read_timeout_ms = 60000",
    ])
    .await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    // A half-sent request head, a half-sent body, and an idle keep-alive connection.
    let mut half_head = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut half_head, b"POST /plan HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut half_body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut half_body,
        b"POST /plan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"question\":",
    )
    .await
    .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut idle, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let t0 = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), gw.child.wait())
        .await
        .expect("the gateway is still running 10 s after SIGTERM")
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(exit.code(), Some(0));
    // Grace 1 s + 1 s, and a little for process start-up noise on a loaded machine.
    assert!(took < Duration::from_millis(2300), "exit took {took:?}");
    drop((half_head, half_body, idle));
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let mut c = config();
    c.server.body_read_timeout = Duration::from_millis(500);
    let gw = TestGateway::spawn(c).await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut socket,
        b"POST /plan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"question\":",
    )
    .await
    .unwrap();
    let t0 = Instant::now();
    let (text, _) = read_until_closed(&mut socket, Duration::from_secs(3)).await;
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    assert!(
        text.contains(r#"{"error":"request_timeout","detail":"request body not received within 500 ms (server.body_read_timeout_ms)"}"#),
        "{text}"
    );
    assert!(t0.elapsed() < Duration::from_millis(1500));
    gw.stop().await;
}

#[tokio::test]
async fn an_absurd_retry_after_from_the_llm_is_capped_not_a_panic() {
    use plangate_testkit::llm::{FakeLlm, Turn};
    let llm = FakeLlm::start(vec![
        Turn::RetryAfter("1e300".into()),
        Turn::text("after the wait"),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let t0 = Instant::now();
    let frames = gw.plan(&json!({"question": "q"})).await;
    assert!(
        find(&frames, "error").is_empty(),
        "{:?}",
        find(&frames, "error")
    );
    assert_eq!(answer(&frames), "after the wait");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the wait is capped at 10 s"
    );
    gw.stop().await;
}

#[tokio::test]
async fn an_llm_stream_without_end_is_cut_at_its_byte_cap() {
    use plangate_testkit::llm::{FakeLlm, Turn};
    // One SSE event that never ends: 3 MB without a blank line.
    let raw = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}",
        "x".repeat(3_000_000)
    );
    let llm = FakeLlm::start(vec![Turn::Replay(raw)]).await;
    let mut c = llm_config(&llm.url);
    c.llm.max_response_bytes = 1_000_000;
    let gw = TestGateway::spawn(c).await;
    let frames = gw.plan(&json!({"question": "q"})).await;
    let error = find(&frames, "error");
    assert_eq!(error.len(), 1, "{frames:?}");
    assert_eq!(error[0]["code"], "llm_error");
    assert!(
        error[0]["message"]
            .as_str()
            .unwrap()
            .contains("LLM response exceeds 1000000 bytes (llm.max_response_bytes)"),
        "{}",
        error[0]
    );
    gw.stop().await;
}

/// A body of `total` bytes streamed in 1 MiB chunks, without a length.
fn endless_body(total: usize) -> axum::body::Body {
    let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
    let stream = futures::stream::iter(
        (0..total >> 20).map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone())),
    );
    axum::body::Body::from_stream(stream)
}

#[tokio::test]
async fn a_did_document_of_300_mb_is_not_read_whole() {
    let did = "did:bindu:evil:agent:00000000-0000-4000-8000-000000000000";
    let app = Router::new()
        .route("/.well-known/agent.json", get(move || async move { axum::Json(json!({"id": did, "capabilities": {"streaming": false}})) }))
        .route("/did/resolve", post(|| async { ([(header::CONTENT_TYPE, "application/json")], endless_body(300 << 20)) }))
        .route(
            "/",
            post(|body: axum::body::Bytes| async move {
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                axum::Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": {"kind": "task", "id": "t1", "status": {"state": "completed"},
                    "artifacts": [{"artifactId": "a", "parts": [{"kind": "text", "text": "signed?", "metadata": {"did.message.signature": "x"}}]}]}}))
            }),
        );
    let url = serve(app).await;
    let gw = Binary::start().await;
    let before = peak_rss_kib(gw.pid());
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "agents": [{"name": "d", "endpoint": url, "trust": {"verifyDID": true, "requireVerified": true}, "skills": [{"id": "s"}]}]}))
        .send()
        .await
        .unwrap();
    let frames = parse_frames(&resp.text().await.unwrap());
    assert_eq!(
        finished(&frames)["error"],
        format!("signature verification failed: no public key for {did}")
    );
    let peak = peak_rss_kib(gw.pid());
    assert!(
        peak < before + 40 * 1024,
        "peak RSS {peak} KiB (before {before} KiB)"
    );
}

#[tokio::test]
async fn a_status_flood_to_a_client_that_does_not_read_stays_bounded() {
    // 300 status updates of 1 MiB each, then the end; the client never reads a byte.
    let big = "s".repeat(1 << 20);
    let mut events: Vec<serde_json::Value> = (0..300)
        .map(|i| json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "working",
            "message": {"role": "agent", "parts": [{"kind": "text", "text": format!("{i}{big}")}]}}}))
        .collect();
    events.push(json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "completed"}, "final": true}));
    let peer = FakePeer::start_with_card(
        Script::Stream(events),
        json!({"name": "s", "capabilities": {"streaming": true}}),
    )
    .await;
    let gw = Binary::start().await;
    let before = peak_rss_kib(gw.pid());
    let body = json!({"question": "q", "agents": [agent("flood", &peer.url)], "preferences": {"timeout_ms": 20000}}).to_string();
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /plan HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut socket, request.as_bytes())
        .await
        .unwrap();
    // The peer's stream takes ~9 s (30 ms an event); wait for it to be sent through.
    for _ in 0..200 {
        if peer.count("message/stream") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    let peak = peak_rss_kib(gw.pid());
    // The plan channel holds at most 64 frames; status updates beyond what the client took are
    // replaced, not queued (before: ~380 MB for this flood).
    assert!(
        peak < before + 120 * 1024,
        "peak RSS {peak} KiB (before {before} KiB)"
    );
    drop(socket);
}

#[tokio::test]
async fn a_bound_env_secret_goes_only_to_its_host() {
    let peer = FakePeer::start(Script::Message).await;
    let other = FakePeer::start(Script::Message).await;
    let bound_to = peer.url.trim_start_matches("http://").to_owned();
    let mut c = config();
    c.a2a.env_allowlist = vec![format!("PEER_SECRET@{bound_to}")];
    c.peer_env.insert(
        "PEER_SECRET".into(),
        secrecy::SecretString::from("s3cret-value".to_owned()),
    );
    let gw = TestGateway::spawn(c).await;
    let with_secret = |name: &str, url: &str| json!({"name": name, "endpoint": url, "auth": {"type": "bearer_env", "envVar": "PEER_SECRET"}, "skills": [{"id": "s"}]});
    let frames = gw
        .plan(&json!({"question": "q", "agents": [with_secret("bound", &peer.url), with_secret("other", &other.url)]}))
        .await;
    let by = |agent: &str| {
        find(&frames, "task.finished")
            .into_iter()
            .find(|f| f["agent"] == agent)
            .unwrap()
            .clone()
    };
    assert_eq!(by("bound")["state"], "completed", "{}", by("bound"));
    assert_eq!(
        peer.requests()[0].headers.get("authorization").unwrap(),
        "Bearer s3cret-value"
    );
    assert_eq!(
        by("other")["error"],
        format!(
            "transport: auth: env var \"PEER_SECRET\" is bound to {bound_to} in GATEWAY_PEER_ENV_ALLOWLIST and is not sent to this endpoint"
        )
    );
    assert!(
        other.requests().is_empty(),
        "the other peer never sees the secret"
    );
    gw.stop().await;
}
