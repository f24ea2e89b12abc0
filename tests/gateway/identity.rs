//! DID identity end to end: the published document, signed requests checked by Bindu's own
//! verifier, artifact verification against the real Bindu echo agent and tampered fakes, Hydra
//! registration and tokens, and secrets kept out of logs.

use std::sync::Arc;
use std::time::Duration;

use plangate::identity::Identity;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::*;
use plangate_testkit::hydra::FakeHydra;
use plangate_testkit::peer::{FakePeer, Script};

const ZERO_SEED: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
/// Seed 00 01 … 1f: public key FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF (spec §8.4).
const VECTOR_SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn with_identity(mut c: plangate::config::Config, seed: &str) -> plangate::config::Config {
    c.identity = Some(plangate::config::IdentityConfig {
        seed: seed.to_owned().into(),
        author: "ops@example.com".to_owned(),
        name: "gateway".to_owned(),
    });
    c
}

#[tokio::test]
async fn did_document_and_health_show_the_identity() {
    let gw = TestGateway::spawn(with_identity(config(), ZERO_SEED)).await;
    let resp = http()
        .get(format!("{}/.well-known/did.json", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/did+json");
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let body = resp.bytes().await.unwrap();
    assert_eq!(body.len(), 453);
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&body)),
        "2f3107ad47ed230297ffdb594a0aca9da852b4167dbf8825da1dd76c489434d2"
    );
    let health = gw.health().await;
    assert_eq!(health["runtime"]["did_signing_enabled"], true);
    assert_eq!(health["runtime"]["hydra_integrated"], false);
    assert_eq!(
        health["application"]["gateway_did"],
        "did:bindu:ops_at_example_com:gateway:139e3940-e64b-5491-7220-88d9a0d74162"
    );
    assert_eq!(
        health["application"]["gateway_id"],
        "139e3940-e64b-5491-7220-88d9a0d74162"
    );
    assert_eq!(health["application"]["author"], "ops_at_example_com");
    gw.stop().await;
}

fn signed_config(seed: &str, token: &str) -> plangate::config::Config {
    let mut c = with_identity(config(), seed);
    c.a2a.env_allowlist = vec!["PEER_OAUTH_TOKEN".into()];
    c.peer_env.insert(
        "PEER_OAUTH_TOKEN".into(),
        SecretString::from(token.to_owned()),
    );
    c
}

fn signed_agent(url: &str) -> Value {
    json!({"name": "secure", "endpoint": url, "auth": {"type": "did_signed", "tokenEnvVar": "PEER_OAUTH_TOKEN"},
        "skills": [{"id": "ask"}]})
}

#[tokio::test]
async fn every_request_to_a_did_signed_peer_is_signed_over_its_exact_bytes() {
    let peer = FakePeer::start(Script::Complete { working_polls: 1 }).await;
    let gw = TestGateway::spawn(signed_config(ZERO_SEED, "oauth-1")).await;
    let frames = gw
        .plan(&json!({"question": "café 😀 日本", "agents": [signed_agent(&peer.url)]}))
        .await;
    assert_eq!(find(&frames, "task.finished")[0]["state"], "completed");
    let key = plangate::identity::decode_public_key("4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS")
        .unwrap();
    let requests = peer.requests();
    assert!(requests.len() >= 2, "send and at least one poll");
    for r in &requests {
        assert_eq!(r.headers["authorization"], "Bearer oauth-1");
        assert_eq!(
            r.headers["x-did"],
            "did:bindu:ops_at_example_com:gateway:139e3940-e64b-5491-7220-88d9a0d74162"
        );
        let body = &r.raw;
        let ts: u64 = r.headers["x-did-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let message = plangate::identity::sign::signing_string(
            body,
            r.headers["x-did"].to_str().unwrap(),
            ts,
        );
        assert!(
            plangate::identity::verify::verify_base58(
                &key,
                message.as_bytes(),
                r.headers["x-did-signature"].to_str().unwrap()
            ),
            "{} is not signed over its exact bytes",
            r.method
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn did_signed_without_identity_or_token_fails_with_the_contract_texts() {
    let peer = FakePeer::start(Script::Message).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = gw.plan(&json!({"question": "q", "agents": [{"name": "s", "endpoint": peer.url, "auth": {"type": "did_signed"}, "skills": [{"id": "x"}]}]})).await;
    assert_eq!(
        find(&frames, "task.finished")[0]["error"],
        "transport: auth: did_signed peer requires a gateway LocalIdentity — set BINDU_GATEWAY_DID_SEED, BINDU_GATEWAY_AUTHOR and BINDU_GATEWAY_NAME"
    );
    gw.stop().await;
    let gw = TestGateway::spawn(with_identity(config(), ZERO_SEED)).await;
    let frames = gw.plan(&json!({"question": "q", "agents": [{"name": "s", "endpoint": peer.url, "auth": {"type": "did_signed"}, "skills": [{"id": "x"}]}]})).await;
    assert_eq!(
        find(&frames, "task.finished")[0]["error"],
        "transport: auth: did_signed peer has no bearer token — set tokenEnvVar or configure BINDU_GATEWAY_HYDRA_TOKEN_URL"
    );
    let mut c = with_identity(config(), ZERO_SEED);
    c.a2a.env_allowlist = vec!["UNSET_TOKEN".into()];
    gw.stop().await;
    let gw = TestGateway::spawn(c).await;
    let frames = gw.plan(&json!({"question": "q", "agents": [{"name": "s", "endpoint": peer.url, "auth": {"type": "did_signed", "tokenEnvVar": "UNSET_TOKEN"}, "skills": [{"id": "x"}]}]})).await;
    assert_eq!(
        find(&frames, "task.finished")[0]["error"],
        "transport: auth: env var \"UNSET_TOKEN\" is not set (did_signed peer requires an OAuth bearer token alongside the DID signature)"
    );
    assert!(peer.requests().is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn bindus_own_verifier_accepts_our_signed_requests_and_rejects_replays() {
    let Some(url) = peer_url("PLANGATE_VERIFYING_PEER_URL", "PLANGATE_REQUIRE_PEERS") else {
        return;
    };
    let gw = TestGateway::spawn(signed_config(VECTOR_SEED, "verifying-peer-token")).await;
    for question in [
        "plain ascii",
        "café crème",
        "emoji 😀 and CJK 日本語",
        "control \u{1} and \u{2028} and quotes \" \\",
    ] {
        let frames = gw
            .plan(&json!({"question": question, "agents": [signed_agent(&url)]}))
            .await;
        let f = find(&frames, "task.finished")[0];
        assert_eq!(f["state"], "completed", "{question}: {f}");
        assert!(answer(&frames).ends_with(&format!("verified: {question}")));
    }
    gw.stop().await;

    // A captured request replayed more than 300 s later is refused.
    let identity = Identity::new(VECTOR_SEED, "ops@example.com", "gateway").unwrap();
    let body = json!({"jsonrpc": "2.0", "id": "1", "method": "message/send", "params": {"message": {"parts": [{"text": "replay"}]}}}).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let send = |ts: u64| {
        let h = identity.sign_request(body.as_bytes(), ts);
        http()
            .post(format!("{url}/"))
            .header("authorization", "Bearer verifying-peer-token")
            .header("x-did", h.did)
            .header("x-did-timestamp", h.timestamp)
            .header("x-did-signature", h.signature)
            .body(body.clone())
            .send()
    };
    assert_eq!(send(now).await.unwrap().status(), 200);
    assert_eq!(send(now - 301).await.unwrap().status(), 403);
    let mut tampered = identity.sign_request(body.as_bytes(), now);
    tampered.signature = identity.sign_base58(b"something else");
    let resp = http()
        .post(format!("{url}/"))
        .header("authorization", "Bearer verifying-peer-token")
        .header("x-did", tampered.did)
        .header("x-did-timestamp", tampered.timestamp)
        .header("x-did-signature", tampered.signature)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

fn verify_agent(url: &str, trust: Value) -> Value {
    json!({"name": "bindu", "endpoint": url, "trust": trust, "skills": [{"id": "echo"}]})
}

#[tokio::test]
async fn real_bindu_artifacts_verify_through_did_resolve() {
    let (Some(signed), Some(unsigned)) = (
        peer_url("PLANGATE_BINDU_URL", "PLANGATE_REQUIRE_PEERS"),
        peer_url("PLANGATE_BINDU_UNSIGNED_URL", "PLANGATE_REQUIRE_PEERS"),
    ) else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let frames = gw.plan(&json!({"question": "hello bindu", "agents": [verify_agent(&signed, json!({"verifyDID": true}))]})).await;
    let artifact = find(&frames, "task.artifact")[0];
    assert!(
        artifact["content"]
            .as_str()
            .unwrap()
            .starts_with("<remote_content agent=\"bindu\" verified=\"yes\">"),
        "{artifact}"
    );
    let s = &artifact["signatures"];
    assert_eq!(s["ok"], true);
    assert!(s["signed"].as_u64().unwrap() >= 1);
    assert_eq!(s["signed"], s["verified"]);
    assert_eq!(find(&frames, "task.finished")[0]["signatures"], *s);

    let frames = gw.plan(&json!({"question": "hello", "agents": [verify_agent(&unsigned, json!({"verifyDID": true}))]})).await;
    let artifact = find(&frames, "task.artifact")[0];
    assert!(
        artifact["content"]
            .as_str()
            .unwrap()
            .contains("verified=\"unsigned\"")
    );
    assert_eq!(
        artifact["signatures"],
        json!({"ok": true, "signed": 0, "verified": 0, "unsigned": 1})
    );

    let frames = gw.plan(&json!({"question": "hello", "agents": [verify_agent(&unsigned, json!({"requireVerified": true}))]})).await;
    let f = find(&frames, "task.finished")[0];
    assert_eq!(f["state"], "failed");
    assert_eq!(
        f["error"],
        "signature verification failed: response is unsigned"
    );
    assert!(find(&frames, "task.artifact")[0].get("content").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn a_tampered_signature_fails_the_call_and_pinned_keys_win() {
    // Signature of "echo: hello bindu" by the vector key, served for a different text.
    let sig =
        "51HC18xaCF49GpxW6JZdYNWsukLwS6scGRWzYDmgfnNSQXMNAEJUW85osUpUSSNVzvKYC41udXTRPMRSvZmfVnc6";
    let vector_key = "FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF";
    let did_key =
        plangate::identity::did_key(&plangate::identity::decode_public_key(vector_key).unwrap());
    let card = json!({"name": "fake", "capabilities": {"streaming": false, "extensions": [{"uri": did_key}]}});
    let tampered = FakePeer::start_with_card(Script::Artifact(json!([{"kind": "text", "text": "echo: hello bindX", "metadata": {"did.message.signature": sig}}])), card.clone()).await;
    let genuine = FakePeer::start_with_card(Script::Artifact(json!([{"kind": "text", "text": "echo: hello bindu", "metadata": {"did.message.signature": sig}}])), card).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = gw.plan(&json!({"question": "q", "agents": [
        {"name": "t", "endpoint": tampered.url, "trust": {"verifyDID": true}, "skills": [{"id": "s"}]},
        {"name": "g", "endpoint": genuine.url, "trust": {"verifyDID": true}, "skills": [{"id": "s"}]},
        {"name": "p", "endpoint": genuine.url, "trust": {"pinnedPublicKey": "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS", "verifyDID": true}, "skills": [{"id": "s"}]},
        {"name": "r", "endpoint": tampered.url, "trust": {"requireVerified": true}, "skills": [{"id": "s"}]},
    ]})).await;
    let by = |agent: &str| {
        (
            find(&frames, "task.finished")
                .into_iter()
                .find(|f| f["agent"] == agent)
                .unwrap()
                .clone(),
            find(&frames, "task.artifact")
                .into_iter()
                .find(|f| f["agent"] == agent)
                .unwrap()
                .clone(),
        )
    };
    let (f, a) = by("t");
    assert_eq!(f["state"], "failed");
    assert_eq!(
        f["error"],
        "signature verification failed: 0 of 1 signed text parts verified"
    );
    assert!(a["content"].as_str().unwrap().contains("verified=\"no\""));
    let (f, a) = by("g");
    assert_eq!(f["state"], "completed");
    assert!(a["content"].as_str().unwrap().contains("verified=\"yes\""));
    let (f, _) = by("p");
    assert_eq!(
        f["state"], "failed",
        "the pinned key (zero seed) did not sign this text"
    );
    let (f, a) = by("r");
    assert_eq!(
        f["error"],
        "signature verification failed: 0 of 1 signed text parts verified"
    );
    assert!(a.get("content").is_none());
    gw.stop().await;

    // No key at all under requireVerified.
    let nokey = FakePeer::start(Script::Artifact(json!([{"kind": "text", "text": "x"}]))).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = gw.plan(&json!({"question": "q", "agents": [{"name": "nokey", "endpoint": nokey.url, "trust": {"requireVerified": true}, "skills": [{"id": "s"}]}]})).await;
    assert_eq!(
        find(&frames, "task.finished")[0]["error"],
        "signature verification failed: no public key for nokey"
    );
    gw.stop().await;
}

fn hydra_config(hydra: &FakeHydra) -> plangate::config::Config {
    let mut c = with_identity(config(), ZERO_SEED);
    c.hydra = Some(plangate::config::HydraConfig {
        admin_url: hydra.url.clone(),
        token_url: format!("{}/oauth2/token", hydra.url),
        scopes: vec!["openid".into(), "agent:read".into()],
    });
    c
}

#[tokio::test]
async fn hydra_registers_updates_and_leaves_an_unchanged_client_alone() {
    let hydra = FakeHydra::start(None, 201, 3600).await;
    let gw = TestGateway::spawn(hydra_config(&hydra)).await;
    let posted: Vec<_> = hydra
        .requests()
        .into_iter()
        .filter(|r| r.0 == "POST")
        .collect();
    assert_eq!(posted.len(), 1);
    let payload: Value = serde_json::from_str(&posted[0].2).unwrap();
    assert_eq!(
        payload["client_id"],
        "did:bindu:ops_at_example_com:gateway:139e3940-e64b-5491-7220-88d9a0d74162"
    );
    assert_eq!(
        payload["client_secret"],
        "xDKzyTMmr_qPlKRioGfHoMlbytTSWsA43u3ddJC7QxA"
    );
    assert_eq!(payload["scope"], "openid agent:read");
    let health = gw.health().await;
    assert_eq!(health["runtime"]["hydra_integrated"], true);
    gw.stop().await;

    // Stored with other scopes: updated with PUT.
    let mut stale = payload.clone();
    stale["scope"] = json!("openid");
    let hydra2 = FakeHydra::start(Some(stale), 200, 3600).await;
    let gw = TestGateway::spawn(hydra_config(&hydra2)).await;
    let methods: Vec<String> = hydra2.requests().into_iter().map(|r| r.0).collect();
    assert_eq!(methods, ["GET", "PUT"]);
    gw.stop().await;

    // Stored and identical: nothing written.
    let hydra3 = FakeHydra::start(Some(payload), 500, 3600).await;
    let gw = TestGateway::spawn(hydra_config(&hydra3)).await;
    assert_eq!(hydra3.requests().len(), 1);
    gw.stop().await;

    // Registration refused: boot failure with the contract text.
    let hydra4 = FakeHydra::start(None, 409, 3600).await;
    let state = plangate::boot::build(hydra_config(&hydra4)).unwrap();
    let err = plangate::boot::register_hydra(&state)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "Hydra client registration failed: HTTP 409: {\"error\":\"scripted\"}"
    );

    // Unreachable Hydra: boot continues without it.
    let mut c = hydra_config(&hydra4);
    c.hydra.as_mut().unwrap().admin_url = "http://127.0.0.1:9".into();
    let state = plangate::boot::start(c).await.unwrap();
    assert!(!state.hydra_integrated());
}

#[tokio::test]
async fn hydra_tokens_are_shared_cached_and_refreshed() {
    // expires_in 31 s → reused for 1 s (30 s margin), then fetched again.
    let hydra = FakeHydra::start(None, 201, 31).await;
    let peer = FakePeer::start(Script::Message).await;
    let gw = TestGateway::spawn(hydra_config(&hydra)).await;
    let agent = |name: &str| json!({"name": name, "endpoint": peer.url, "auth": {"type": "did_signed"}, "skills": [{"id": "s"}]});
    let frames = gw
        .plan(&json!({"question": "q", "agents": [agent("a"), agent("b"), agent("c")]}))
        .await;
    assert_eq!(
        find(&frames, "task.finished")
            .iter()
            .filter(|f| f["state"] == "completed")
            .count(),
        3
    );
    assert_eq!(
        hydra
            .state
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "concurrent callers share one request"
    );
    let token_req = hydra
        .requests()
        .into_iter()
        .find(|r| r.1 == "/oauth2/token")
        .unwrap();
    assert!(token_req.2.starts_with(
        "grant_type=client_credentials&client_id=did%3Abindu%3Aops_at_example_com%3Agateway%3A"
    ));
    assert!(token_req.2.contains(
        "&client_secret=xDKzyTMmr_qPlKRioGfHoMlbytTSWsA43u3ddJC7QxA&scope=openid+agent%3Aread"
    ));
    gw.plan(&json!({"question": "again", "agents": [agent("a")]}))
        .await;
    assert_eq!(
        hydra
            .state
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "cached"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    gw.plan(&json!({"question": "later", "agents": [agent("a")]}))
        .await;
    assert_eq!(
        hydra
            .state
            .tokens_issued
            .load(std::sync::atomic::Ordering::SeqCst),
        2,
        "refreshed before expiry"
    );
    let auths: Vec<String> = peer
        .requests()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(auths.last().unwrap(), "Bearer hydra-token-2");
    assert!(auths[..3].iter().all(|a| a == "Bearer hydra-token-1"));
    gw.stop().await;
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs_even_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let hydra = FakeHydra::start(None, 201, 3600).await;
    let peer = FakePeer::start(Script::Fail).await;
    let mut c = hydra_config(&hydra);
    c.auth.mode = plangate::config::AuthMode::Bearer;
    c.auth.tokens = vec![SecretString::from("gateway-api-token-xyz".to_owned())];
    c.a2a.env_allowlist = vec!["PEER_TOKEN".into()];
    c.peer_env.insert(
        "PEER_TOKEN".into(),
        SecretString::from("peer-env-token-xyz".to_owned()),
    );
    let gw = TestGateway::spawn(c).await;
    tracing::info!(config = ?gw.state.config(), "config at boot");
    let body = json!({"question": "q", "agents": [
        {"name": "a", "endpoint": peer.url, "auth": {"type": "bearer", "token": "literal-peer-token-xyz"}, "skills": [{"id": "s"}]},
        {"name": "b", "endpoint": peer.url, "auth": {"type": "bearer_env", "envVar": "PEER_TOKEN"}, "skills": [{"id": "s"}]},
        {"name": "c", "endpoint": peer.url, "auth": {"type": "did_signed"}, "skills": [{"id": "s"}]}]});
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .header("authorization", "Bearer gateway-api-token-xyz")
        .json(&body)
        .send()
        .await
        .unwrap();
    let frames = collect(resp).await;
    assert_eq!(find(&frames, "task.finished").len(), 3);
    let bad = http()
        .post(format!("{}/plan", gw.url))
        .header("authorization", "Bearer wrong-token-xyz")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    gw.stop().await;
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("plan request rejected"),
        "logging was captured"
    );
    for secret in [
        "gateway-api-token-xyz",
        "wrong-token-xyz",
        "literal-peer-token-xyz",
        "peer-env-token-xyz",
        "hydra-token-1",
        "xDKzyTMmr_qPlKRioGfHoMlbytTSWsA43u3ddJC7QxA",
        ZERO_SEED,
        "AAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(!logs.contains(secret), "secret {secret:?} found in logs");
    }
}
