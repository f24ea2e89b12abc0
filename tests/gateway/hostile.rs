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
