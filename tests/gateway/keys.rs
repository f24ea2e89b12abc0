//! Keys with scopes and limits (`GATEWAY_KEYS_FILE`): a key made with `plangate keys new`
//! authenticates; an expired one is 401; a catalog, a door or ad-hoc agents the key may not use
//! are 403 naming what, in each door's own error shape; `requests_per_minute` admits exactly its
//! count under concurrency and answers 429 with a right `Retry-After`; `max_concurrent_plans`
//! holds a key to its plans at once.

use std::time::Duration;

use plangate::config::{AuthMode, Config};
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

fn digest(token: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// A gateway with a catalog file (`ops` and `default` over `peer`) and a keys file.
async fn gateway(peer: &FakePeer, keys: &str) -> TestGateway {
    gateway_with(config(), peer, keys).await
}

/// Like [`gateway`], from configuration `c`.
pub(crate) async fn gateway_with(mut c: Config, peer: &FakePeer, keys: &str) -> TestGateway {
    let dir = std::env::temp_dir();
    let catalogs = dir.join(format!(
        "plangate-keys-catalogs-{}.json",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(
        &catalogs,
        serde_json::to_vec(&json!({"catalogs": {
            "default": {"agents": [peer.agent("p", "s")]},
            "ops": {"agents": [peer.agent("o", "s")]}}}))
        .unwrap(),
    )
    .unwrap();
    let keys_file = dir.join(format!("plangate-keys-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&keys_file, keys).unwrap();
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec!["legacy-token".to_owned().into()];
    c.auth.keys_file = Some(keys_file);
    c.catalog_file = Some(catalogs);
    TestGateway::spawn(c).await
}

async fn post_plan(url: &str, token: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{url}/plan"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_from_keys_new_authenticates_and_an_expired_one_does_not() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .args(["keys", "new", "reporting-app"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text.lines().next().unwrap().to_owned();
    assert!(token.len() > 40 && !token.contains(' '), "{text}");
    let block = &text[text.find("[keys.reporting-app]").unwrap()..];
    assert!(block.contains(&digest(&token)), "{text}");
    let peer = FakePeer::start(Script::Instant).await;
    let keys = format!(
        "{block}\n[keys.old]\nsha256 = \"{}\"\nexpires_at = \"2020-01-01T00:00:00Z\"\n",
        digest("old-token")
    );
    let gw = gateway(&peer, &keys).await;
    let ok = post_plan(&gw.url, &token, &json!({"question": "q", "catalog": "ops"})).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(events(&collect(ok).await).last(), Some(&"done"));
    let expired = post_plan(&gw.url, "old-token", &json!({"question": "q"})).await;
    assert_eq!(expired.status(), 401);
    // GATEWAY_API_KEY tokens keep working, without limits.
    let legacy = post_plan(&gw.url, "legacy-token", &json!({"question": "q"})).await;
    assert_eq!(legacy.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn what_a_key_may_not_use_is_403_naming_it_on_every_door() {
    let peer = FakePeer::start(Script::Instant).await;
    let keys = format!(
        "[keys.narrow]\nsha256 = \"{}\"\ncatalogs = [\"ops\"]\nad_hoc_agents = false\ndoors = [\"plan\", \"a2a\"]\n",
        digest("narrow-token")
    );
    let gw = gateway(&peer, &keys).await;
    // /plan: another catalog, then its own agents.
    let resp = post_plan(
        &gw.url,
        "narrow-token",
        &json!({"question": "q", "catalog": "default"}),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("catalog \"default\""),
        "{body}"
    );
    let resp = post_plan(
        &gw.url,
        "narrow-token",
        &json!({"question": "q", "agents": [peer.agent("mine", "s")]}),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("ad_hoc_agents"),
        "{body}"
    );
    let resp = post_plan(
        &gw.url,
        "narrow-token",
        &json!({"question": "q", "catalog": "ops"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    collect(resp).await;
    // The A2A door: the catalog its skillId names (none: `default`), as a JSON-RPC error.
    let resp = http()
        .post(format!("{}/a2a", gw.url))
        .bearer_auth("narrow-token")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
            "kind": "message", "messageId": "m1", "role": "user",
            "parts": [{"kind": "text", "text": "q"}]}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("catalog \"default\""),
        "{body}"
    );
    // The OpenAI door is not among its doors: 403 in OpenAI's error shape.
    let resp = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("narrow-token")
        .json(&json!({"model": "plangate/ops", "messages": [{"role": "user", "content": "q"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai door"),
        "{body}"
    );
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn requests_per_minute_admits_exactly_its_count_under_concurrency() {
    let peer = FakePeer::start(Script::Instant).await;
    let keys = format!(
        "[keys.metered]\nsha256 = \"{}\"\nrequests_per_minute = 5\n",
        digest("metered-token")
    );
    let gw = gateway(&peer, &keys).await;
    let body = json!({"question": "q", "catalog": "ops"});
    let answers = futures::future::join_all((0..20).map(|i| {
        let body = json!({"question": format!("q{i}"), "catalog": "ops"});
        let url = gw.url.clone();
        async move {
            let resp = post_plan(&url, "metered-token", &body).await;
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = resp.text().await.unwrap();
            (status, retry, text)
        }
    }))
    .await;
    let admitted = answers.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(admitted, 5, "{answers:?}");
    for (status, retry, text) in answers.iter().filter(|(s, _, _)| *s != 200) {
        assert_eq!(*status, 429, "{text}");
        let seconds: u64 = retry.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&seconds), "{retry:?}");
        let body: Value = serde_json::from_str(text).unwrap();
        assert_eq!(body["error"], "rate_limited");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("requests_per_minute (5)"),
            "{body}"
        );
    }
    // Another key (and GATEWAY_API_KEY) is not held up by this one's count.
    let legacy = post_plan(&gw.url, "legacy-token", &body).await;
    assert_eq!(legacy.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn max_concurrent_plans_holds_a_key_to_its_plans_at_once() {
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(600))).await;
    let keys = format!(
        "[keys.single]\nsha256 = \"{}\"\nmax_concurrent_plans = 1\n",
        digest("single-token")
    );
    let gw = gateway(&peer, &keys).await;
    let mut first = post_plan(
        &gw.url,
        "single-token",
        &json!({"question": "one", "catalog": "ops"}),
    )
    .await;
    assert_eq!(first.status(), 200);
    read_until(&mut first, "event: plan").await;
    let second = post_plan(
        &gw.url,
        "single-token",
        &json!({"question": "two", "catalog": "ops"}),
    )
    .await;
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("max_concurrent_plans"),
        "{body}"
    );
    assert!(first.text().await.unwrap().contains("event: done"));
    let third = post_plan(
        &gw.url,
        "single-token",
        &json!({"question": "three", "catalog": "ops"}),
    )
    .await;
    assert_eq!(third.status(), 200);
    collect(third).await;
    gw.stop().await;
}

#[tokio::test]
async fn the_plan_finished_line_names_the_key_never_its_token_or_hash() {
    let peer = FakePeer::start(Script::Instant).await;
    let dir = std::env::temp_dir();
    let keys = dir.join(format!("plangate-keys-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &keys,
        format!(
            "[keys.reporting-app]\nsha256 = \"{}\"\n",
            digest("secret-token-123")
        ),
    )
    .unwrap();
    // JWT callers too, against a JWKS on loopback.
    let signer = crate::jwt::TestKey::ed("ed-1");
    let jwks = crate::jwt::Jwks::serve(vec![signer.jwk()]).await;
    let port = plangate_testkit::free_port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .arg("serve")
        .env("GATEWAY_HOSTNAME", "127.0.0.1")
        .env("GATEWAY_PORT", port.to_string())
        .env("GATEWAY_KEYS_FILE", &keys)
        .env("GATEWAY_JWT_JWKS_URL", &jwks.url)
        .env("GATEWAY_JWT_ISSUER", crate::jwt::ISSUER)
        .env("GATEWAY_JWT_AUDIENCE", crate::jwt::AUDIENCE)
        .env("GATEWAY_RECIPES_DIR", "")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&url).await;
    let resp = post_plan(
        &url,
        "secret-token-123",
        &json!({"question": "q", "agents": [peer.agent("p", "s")]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    collect(resp).await;
    let refused = post_plan(&url, "wrong-token", &json!({"question": "q"})).await;
    assert_eq!(refused.status(), 401);
    let jwt = signer.sign(&crate::jwt::claims("reporter-sub", &json!({})));
    let resp = post_plan(
        &url,
        &jwt,
        &json!({"question": "q2", "agents": [peer.agent("p", "s")]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    collect(resp).await;
    let expired = signer.sign(&crate::jwt::claims(
        "reporter-sub",
        &json!({"exp": 1_000_000_000, "iat": 999_999_000}),
    ));
    assert_eq!(
        post_plan(&url, &expired, &json!({"question": "q"}))
            .await
            .status(),
        401
    );
    let out = terminate(child).await;
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let finished = logs
        .lines()
        .find(|l| l.contains("plan finished"))
        .unwrap_or_else(|| panic!("no plan finished line: {logs}"));
    assert!(finished.contains("key=reporting-app"), "{finished}");
    assert!(
        logs.lines()
            .any(|l| l.contains("plan finished") && l.contains("key=jwt")),
        "{logs}"
    );
    // A JWT's signature part is what makes it a credential.
    let signature = |t: &str| t.rsplit('.').next().unwrap_or_default().to_owned();
    for secret in [
        "secret-token-123",
        &digest("secret-token-123"),
        "wrong-token",
        &digest("wrong-token"),
        &jwt,
        &signature(&jwt),
        &signature(&expired),
        "reporter-sub",
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs: {logs}");
    }
}

#[tokio::test]
async fn a_spent_budget_stops_the_plan_before_its_next_step_and_refuses_the_next_request() {
    let peer = FakePeer::start(Script::Instant).await;
    // Every step of the scripted LLM reports 10 input + 5 output tokens.
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_o_s", json!({"input": "hi"})),
        Turn::text("never sent"),
    ])
    .await;
    let keys = format!(
        "[keys.thrifty]\nsha256 = \"{}\"\nllm_tokens_per_day = 10\n",
        digest("thrifty-token")
    );
    let gw = gateway_with(llm_config(&llm.url), &peer, &keys).await;
    let resp = post_plan(
        &gw.url,
        "thrifty-token",
        &json!({"question": "q", "catalog": "ops"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let frames = collect(resp).await;
    let names = events(&frames);
    assert!(names.contains(&"task.finished"), "{names:?}");
    assert!(!names.contains(&"final"), "{names:?}");
    assert_eq!(find(&frames, "error")[0]["code"], "budget_exhausted");
    assert_eq!(names.last(), Some(&"done"));
    assert_eq!(llm.requests().len(), 1, "no step after the budget ran out");
    // The next request, on /plan and on the OpenAI door, is refused until the key's day ends.
    let next = post_plan(
        &gw.url,
        "thrifty-token",
        &json!({"question": "q", "catalog": "ops"}),
    )
    .await;
    assert_eq!(next.status(), 429);
    let seconds: u64 = next.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((86_390..=86_400).contains(&seconds), "{seconds}");
    let body: Value = next.json().await.unwrap();
    assert_eq!(body["error"], "budget_exhausted");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("llm_tokens_per_day (10)"),
        "{body}"
    );
    let openai = http()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("thrifty-token")
        .json(&json!({"model": "plangate/ops", "messages": [{"role": "user", "content": "q"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 429);
    let body: Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exhausted", "{body}");
    gw.stop().await;
}
