//! Several instances on one Redis: two `plangate serve` processes and a real `redis-server`
//! (Debian's, started per test on a free loopback port). Resume on the other instance, one plan
//! per `Idempotency-Key` across instances, `DELETE` reaching the instance that runs the plan,
//! `kill -9` of that instance, Redis going away mid-plan, and server-side sessions: a conversation
//! continued on the other instance (also after the first was killed), one plan at a time across
//! instances.

use std::process::Stdio;
use std::time::{Duration, Instant};

use plangate_testkit::free_port;
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

use crate::support::*;

const TOKEN: &str = "shared-token";

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// A fresh `redis-server` (no persistence), or `None` after reporting the test skipped.
    async fn start() -> Option<Self> {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            skip("redis-server is not installed", "PLANGATE_REQUIRE_REDIS");
            return None;
        }
        Some(Self::on(free_port()).await)
    }

    async fn on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let _ = s.write_all(b"PING\r\n").await;
                let mut buf = [0u8; 16];
                if let Ok(n) = s.read(&mut buf).await
                    && buf[..n].starts_with(b"+PONG")
                {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}

struct Instance {
    child: Child,
    url: String,
}

/// A gateway process on the shared Redis, resume on, 1 s leases.
async fn instance(redis: &Redis, grace_secs: u64) -> Instance {
    instance_with(redis, grace_secs, &[]).await
}

/// Like [`instance`], with more environment.
async fn instance_with(redis: &Redis, grace_secs: u64, env: &[(&str, &str)]) -> Instance {
    let port = free_port();
    let config =
        std::env::temp_dir().join(format!("plangate-shared-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&config, "[store]\nlease_ms = 1000\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_plangate"))
        .arg("serve")
        .env("GATEWAY_HOSTNAME", "127.0.0.1")
        .env("GATEWAY_PORT", port.to_string())
        .env("GATEWAY_API_KEY", TOKEN)
        .env("GATEWAY_REDIS_URL", redis.url())
        .env("GATEWAY_SSE_RESUME", "on")
        .env("GATEWAY_RESUME_GRACE_SECS", grace_secs.to_string())
        .env("GATEWAY_CONFIG", &config)
        .env("GATEWAY_RECIPES_DIR", "")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&url).await;
    Instance { child, url }
}

async fn post(url: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut req = http()
        .post(format!("{url}/plan"))
        .bearer_auth(TOKEN)
        .json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    req.send().await.unwrap()
}

/// Reads to the end, with a limit (a hang fails the test).
async fn read_all(mut resp: reqwest::Response, limit: Duration) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None) | Err(_)) => return seen,
            Err(_) => panic!("the stream did not end within {limit:?}: {seen}"),
        }
    }
}

#[tokio::test]
async fn a_plan_started_on_a_resumes_on_b_with_every_frame_once_in_order() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(1500))).await;
    let a = instance(&redis, 10).await;
    let b = instance(&redis, 10).await;
    let mut resp = post(
        &a.url,
        &json!({"question": "q", "agents": [peer.agent("p", "s")]}),
        None,
    )
    .await;
    let first = read_until(&mut resp, "event: task.started").await;
    drop(resp);
    let plan = plan_id_of(&first);
    let before = frames_with_ids(&first);
    let last = before.last().unwrap().0.clone();
    let resumed = http()
        .get(format!("{}/plan/{plan}/events", b.url))
        .bearer_auth(TOKEN)
        .header("Last-Event-ID", &last)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let after = frames_with_ids(&read_all(resumed, Duration::from_secs(20)).await);
    let all: Vec<_> = before.iter().chain(after.iter()).collect();
    let ids: Vec<&str> = all.iter().map(|f| f.0.as_str()).collect();
    let expected: Vec<String> = (1..=all.len()).map(|n| format!("{plan}:{n}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all.last().unwrap().1, "done");
    assert!(all.iter().any(|f| f.1 == "final"), "{all:?}");
    assert_eq!(peer.count("tasks/cancel"), 0);
    // Another token sees nothing.
    let other = http()
        .get(format!("{}/plan/{plan}/events", b.url))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    terminate(a.child).await;
    terminate(b.child).await;
    redis.stop().await;
}

#[tokio::test]
async fn one_idempotency_key_runs_one_plan_across_instances() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(800))).await;
    let a = instance(&redis, 10).await;
    let b = instance(&redis, 10).await;
    let body = json!({"question": "once", "agents": [peer.agent("p", "s")]});
    let mut first = post(&a.url, &body, Some("order-42")).await;
    let seen = read_until(&mut first, "event: plan").await;
    let session = frames_with_ids(&seen)[0].2["session_id"].clone();
    let duplicate = read_all(
        post(&b.url, &body, Some("order-42")).await,
        Duration::from_secs(10),
    )
    .await;
    let frames = frames_with_ids(&duplicate);
    let events: Vec<&str> = frames.iter().map(|f| f.1.as_str()).collect();
    assert_eq!(events, ["session", "duplicate", "done"], "{duplicate}");
    assert_eq!(frames[0].2["session_id"], session);
    assert_eq!(frames[1].2["in_flight"], true);
    read_all(first, Duration::from_secs(20)).await;
    // After the end the key lingers (header keys do), now not in flight.
    let later = frames_with_ids(
        &read_all(
            post(&b.url, &body, Some("order-42")).await,
            Duration::from_secs(10),
        )
        .await,
    );
    assert_eq!(later[1].2["in_flight"], false, "{later:?}");
    assert_eq!(peer.count("message/send"), 1, "one plan, one peer call");
    terminate(a.child).await;
    terminate(b.child).await;
    redis.stop().await;
}

#[tokio::test]
async fn delete_on_b_cancels_the_plan_running_on_a() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::WorkForever).await;
    let a = instance(&redis, 10).await;
    let b = instance(&redis, 10).await;
    let mut resp = post(
        &a.url,
        &json!({"question": "q", "agents": [peer.agent("p", "s")]}),
        None,
    )
    .await;
    let seen = read_until(&mut resp, "event: task.started").await;
    let plan = plan_id_of(&seen);
    wait_for_sends(&peer, 1).await;
    let delete = http()
        .delete(format!("{}/plan/{plan}", b.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 202);
    let rest = frames_with_ids(&read_all(resp, Duration::from_secs(15)).await);
    let error = rest.iter().find(|f| f.1 == "error").unwrap();
    assert_eq!(error.2["code"], "canceled");
    assert_eq!(rest.last().unwrap().1, "done");
    wait_until(
        "the peer sees tasks/cancel",
        Duration::from_secs(10),
        || peer.count("tasks/cancel") == 1,
    )
    .await;
    terminate(a.child).await;
    terminate(b.child).await;
    redis.stop().await;
}

#[tokio::test]
async fn a_resume_of_a_plan_whose_instance_died_gets_instance_lost() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::WorkForever).await;
    let mut a = instance(&redis, 10).await;
    let b = instance(&redis, 10).await;
    let mut resp = post(
        &a.url,
        &json!({"question": "q", "agents": [peer.agent("p", "s")]}),
        None,
    )
    .await;
    let seen = read_until(&mut resp, "event: task.started").await;
    drop(resp);
    let plan = plan_id_of(&seen);
    a.child.start_kill().unwrap(); // SIGKILL: no cleanup at all
    let _ = a.child.wait().await;
    let started = Instant::now();
    let resumed = http()
        .get(format!("{}/plan/{plan}/events?after=0", b.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let frames = frames_with_ids(&read_all(resumed, Duration::from_secs(15)).await);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "within the lease: {:?}",
        started.elapsed()
    );
    let n = frames.len();
    assert_eq!(frames[n - 2].1, "error", "{frames:?}");
    assert_eq!(frames[n - 2].2["code"], "instance_lost");
    assert_eq!(frames[n - 1].1, "done");
    assert_eq!(frames[0].1, "session", "the replay came first");
    terminate(b.child).await;
    redis.stop().await;
}

#[tokio::test]
async fn redis_going_away_mid_plan_ends_the_stream_and_the_gateway_recovers() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let port = redis.port;
    let peer = FakePeer::start(Script::WorkForever).await;
    let a = instance(&redis, 10).await;
    let mut resp = post(
        &a.url,
        &json!({"question": "q", "agents": [peer.agent("p", "s")]}),
        None,
    )
    .await;
    read_until(&mut resp, "event: task.started").await;
    redis.stop().await;
    let rest = frames_with_ids(&read_all(resp, Duration::from_secs(20)).await);
    let error = rest
        .iter()
        .find(|f| f.1 == "error")
        .unwrap_or_else(|| panic!("{rest:?}"));
    assert_eq!(error.2["code"], "store_unavailable");
    assert_eq!(rest.last().unwrap().1, "done");
    // While Redis is away, new plans get a clear 503.
    let refused = post(&a.url, &json!({"question": "q"}), None).await;
    assert_eq!(refused.status(), 503);
    // Back again: plans work.
    let redis = Redis::on(port).await;
    let fine = FakePeer::start(Script::Instant).await;
    let mut ok = None;
    for _ in 0..50 {
        let resp = post(
            &a.url,
            &json!({"question": "again", "agents": [fine.agent("p", "s")]}),
            None,
        )
        .await;
        if resp.status() == 200 {
            ok = Some(resp);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let frames = frames_with_ids(
        &read_all(ok.expect("the gateway recovered"), Duration::from_secs(15)).await,
    );
    assert!(frames.iter().any(|f| f.1 == "final"), "{frames:?}");
    terminate(a.child).await;
    redis.stop().await;
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_boot() {
    let out = Command::new(env!("CARGO_BIN_EXE_plangate"))
        .arg("serve")
        .env("GATEWAY_HOSTNAME", "127.0.0.1")
        .env("GATEWAY_PORT", free_port().to_string())
        .env(
            "GATEWAY_REDIS_URL",
            format!("redis://127.0.0.1:{}", free_port()),
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GATEWAY_REDIS_URL"),
        "{out:?}"
    );
}

/// The `session` frame of a stream's text.
fn session_frame(text: &str) -> Value {
    frames_with_ids(text)
        .into_iter()
        .find(|f| f.1 == "session")
        .map(|f| f.2)
        .unwrap()
}

#[tokio::test]
async fn a_conversation_continues_on_the_other_instance_after_the_first_is_killed() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let sessions = [("GATEWAY_SESSIONS", "on")];
    let mut a = instance_with(&redis, 10, &sessions).await;
    let b = instance_with(&redis, 10, &sessions).await;
    let body =
        |q: &str| json!({"question": q, "session_id": "travel", "agents": [peer.agent("p", "s")]});
    let one = read_all(
        post(&a.url, &body("first"), None).await,
        Duration::from_secs(10),
    )
    .await;
    assert!(one.contains("event: done"), "{one}");
    let first = session_frame(&one);
    assert_eq!(first["created"], true);
    // kill -9: the conversation was saved before `done`, nothing of A is needed.
    a.child.kill().await.unwrap();
    let two = read_all(
        post(&b.url, &body("second"), None).await,
        Duration::from_secs(10),
    )
    .await;
    let second = session_frame(&two);
    assert_eq!(second["created"], false);
    assert_eq!(second["session_id"], first["session_id"]);
    let contexts: Vec<Option<String>> = peer
        .requests()
        .iter()
        .filter(|r| r.method == "message/send")
        .map(|r| {
            r.body["params"]["message"]["contextId"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(contexts.len(), 2);
    assert_eq!(contexts[0].as_deref(), first["session_id"].as_str());
    assert_eq!(contexts[1].as_deref(), Some("ctx"));
    let shown: Value = http()
        .get(format!("{}/sessions/travel", b.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let questions: Vec<&str> = shown["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["question"].as_str().unwrap())
        .collect();
    assert_eq!(questions, ["first", "second"]);
    let listed: Value = http()
        .get(format!("{}/sessions", b.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"][0]["session_id"], "travel");
    assert_eq!(listed["sessions"][0]["turns"], 2);
    terminate(b.child).await;
    redis.stop().await;
}

#[tokio::test]
async fn two_turns_at_once_on_two_instances_one_is_refused() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(800))).await;
    let sessions = [("GATEWAY_SESSIONS", "on")];
    let a = instance_with(&redis, 10, &sessions).await;
    let b = instance_with(&redis, 10, &sessions).await;
    let mut first = post(
        &a.url,
        &json!({"question": "one", "session_id": "shared", "agents": [peer.agent("p", "s")]}),
        None,
    )
    .await;
    read_until(&mut first, "event: plan").await;
    let second = post(
        &b.url,
        &json!({"question": "two", "session_id": "shared", "agents": []}),
        None,
    )
    .await;
    assert_eq!(second.status(), 409);
    let error: Value = second.json().await.unwrap();
    assert_eq!(error["error"], "session_busy");
    let rest = read_all(first, Duration::from_secs(10)).await;
    assert!(rest.contains("event: done"));
    // Free again once the first turn is done, on either instance.
    let third = read_all(
        post(
            &b.url,
            &json!({"question": "three", "session_id": "shared", "agents": []}),
            None,
        )
        .await,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(session_frame(&third)["created"], false);
    terminate(a.child).await;
    terminate(b.child).await;
    redis.stop().await;
}

/// An in-process gateway on the shared Redis, with `llm`, a default catalog over `peer`, and
/// bearer `TOKEN`.
async fn in_process_on(redis: &Redis, llm: &str, peer: &FakePeer) -> TestGateway {
    on_redis(redis, llm, peer, |_| {}).await
}

/// An in-process gateway as [`in_process_on`] makes it, changed by `adjust`.
async fn on_redis(
    redis: &Redis,
    llm: &str,
    peer: &FakePeer,
    adjust: impl FnOnce(&mut plangate::config::Config),
) -> TestGateway {
    let path = std::env::temp_dir().join(format!("plangate-shared-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        serde_json::to_vec(&json!({"catalogs": {"default": {"agents": [peer.agent("p", "s")]}}}))
            .unwrap(),
    )
    .unwrap();
    let mut c = llm_config(llm);
    c.catalog_file = Some(path);
    c.auth.mode = plangate::config::AuthMode::Bearer;
    c.auth.tokens = vec![TOKEN.to_owned().into(), "other-token".to_owned().into()];
    c.store.redis_url = Some(redis.url().into());
    adjust(&mut c);
    TestGateway::spawn(c).await
}

#[tokio::test]
async fn an_a2a_context_and_an_mcp_session_continue_on_the_other_instance() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let llm = plangate_testkit::llm::FakeLlm::start(vec![
        plangate_testkit::llm::Turn::text("Paris."),
        plangate_testkit::llm::Turn::text("About 2.1 million."),
    ])
    .await;
    let peer = FakePeer::start(Script::Instant).await;
    let a = in_process_on(&redis, &llm.url, &peer).await;
    let b = in_process_on(&redis, &llm.url, &peer).await;
    let send = |text: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
            "kind": "message", "messageId": uuid::Uuid::new_v4().to_string(), "role": "user",
            "contextId": "ctx-shared", "parts": [{"kind": "text", "text": text}]}}})
    };
    let rpc = async |url: &str, body: &Value| -> Value {
        http()
            .post(format!("{url}/a2a"))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    let first = rpc(&a.url, &send("Capital of France?")).await;
    assert_eq!(first["result"]["status"]["state"], "completed", "{first}");
    let second = rpc(&b.url, &send("Its population?")).await;
    assert_eq!(second["result"]["contextId"], "ctx-shared");
    let requests = llm.requests();
    let messages = requests[1]["messages"].to_string();
    assert!(messages.contains("Capital of France?"), "{messages}");
    assert!(messages.contains("Paris."), "{messages}");

    // An MCP session opened on A is used, and ended, on B; another token cannot use it.
    let session = mcp_session(&a.url, TOKEN).await;
    let list = |url: String, token: &'static str, session: String| async move {
        http()
            .post(format!("{url}/mcp"))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(list(b.url.clone(), TOKEN, session.clone()).await, 200);
    assert_eq!(
        list(b.url.clone(), "other-token", session.clone()).await,
        404
    );
    let ended = http()
        .delete(format!("{}/mcp", b.url))
        .bearer_auth(TOKEN)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 204);
    assert_eq!(list(a.url.clone(), TOKEN, session).await, 404);
    a.stop().await;
    b.stop().await;
    redis.stop().await;
}

/// Like [`in_process_on`], with the keys file `keys` instead of `TOKEN`.
async fn keyed_on(redis: &Redis, llm: &str, peer: &FakePeer, keys: &str) -> TestGateway {
    let path = std::env::temp_dir().join(format!("plangate-keys-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, keys).unwrap();
    on_redis(redis, llm, peer, |c| {
        c.auth.tokens.clear();
        c.auth.keys_file = Some(path);
    })
    .await
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[tokio::test]
async fn two_instances_share_a_keys_request_count_and_token_budget() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::Instant).await;
    // Every step of the scripted LLM reports 10 + 5 tokens.
    let llm = plangate_testkit::llm::FakeLlm::start(vec![plangate_testkit::llm::Turn::call(
        "c1",
        "call_p_s",
        json!({"input": "hi"}),
    )])
    .await;
    let keys = format!(
        "[keys.metered]\nsha256 = \"{}\"\nrequests_per_minute = 5\n\n[keys.thrifty]\nsha256 = \"{}\"\nllm_tokens_per_day = 10\n",
        sha256_hex("metered-token"),
        sha256_hex("thrifty-token")
    );
    let a = keyed_on(&redis, &llm.url, &peer, &keys).await;
    let b = keyed_on(&redis, &llm.url, &peer, &keys).await;
    // 20 requests at once, half on each instance, against 5 per minute: exactly 5 pass.
    let statuses = futures::future::join_all((0..20).map(|i| {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        async move {
            // A malformed body: admission counts it, and the door answers 400 at once.
            let resp = http()
                .post(format!("{url}/plan"))
                .bearer_auth("metered-token")
                .json(&json!({"question": 1}))
                .send()
                .await
                .unwrap();
            (
                resp.status().as_u16(),
                resp.headers().get("retry-after").cloned(),
            )
        }
    }))
    .await;
    let admitted = statuses.iter().filter(|(s, _)| *s == 400).count();
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!((admitted, limited.len()), (5, 15), "{statuses:?}");
    for (_, retry) in limited {
        let seconds: u64 = retry.as_ref().unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&seconds));
    }
    // `Retry-After` is right: with 1.5 s left in the window (moved on Redis instead of waiting
    // a minute), it says 2, and a retry after 2 s is admitted.
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let counter =
        |kind: &str, name: &str| format!("plangate:{kind}:{}", sha256_hex(&format!("{name}\0")));
    let moved: bool = redis::cmd("PEXPIRE")
        .arg(counter("rpm", "metered"))
        .arg(1500)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(moved, "the window's counter is where the store module says");
    let metered = |url: String| async move {
        http()
            .post(format!("{url}/plan"))
            .bearer_auth("metered-token")
            .json(&json!({"question": 1}))
            .send()
            .await
            .unwrap()
    };
    let resp = metered(b.url.clone()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        metered(a.url.clone()).await.status(),
        400,
        "admitted after Retry-After"
    );
    // The token budget: a plan on A spends it; B refuses the next request.
    let resp = http()
        .post(format!("{}/plan", a.url))
        .bearer_auth("thrifty-token")
        .json(&json!({"question": "q", "catalog": "default"}))
        .send()
        .await
        .unwrap();
    let text = read_all(resp, Duration::from_secs(10)).await;
    assert!(text.contains("\"code\":\"budget_exhausted\""), "{text}");
    let refused = http()
        .post(format!("{}/plan", b.url))
        .bearer_auth("thrifty-token")
        .json(&json!({"question": "q", "catalog": "default"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let day: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((86_399..=86_400).contains(&day), "{day}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "budget_exhausted");
    // The same for the day: 1.5 s left says 2, and after it the key may spend again.
    let moved: bool = redis::cmd("PEXPIRE")
        .arg(counter("llm-day", "thrifty"))
        .arg(1500)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(moved);
    let thrifty = |url: String| async move {
        http()
            .post(format!("{url}/plan"))
            .bearer_auth("thrifty-token")
            .json(&json!({"question": 1}))
            .send()
            .await
            .unwrap()
    };
    let resp = thrifty(a.url.clone()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        thrifty(b.url.clone()).await.status(),
        400,
        "admitted after Retry-After"
    );
    a.stop().await;
    b.stop().await;
    redis.stop().await;
}

#[tokio::test]
async fn a_keys_max_concurrent_plans_holds_across_instances() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(800))).await;
    let llm = plangate_testkit::llm::FakeLlm::start(vec![
        plangate_testkit::llm::Turn::call("c1", "call_p_s", json!({"input": "hi"})),
        plangate_testkit::llm::Turn::text("first done"),
        plangate_testkit::llm::Turn::call("c2", "call_p_s", json!({"input": "hi"})),
        plangate_testkit::llm::Turn::text("second done"),
    ])
    .await;
    let keys = format!(
        "[keys.single]\nsha256 = \"{}\"\nmax_concurrent_plans = 1\n",
        sha256_hex("single-token")
    );
    let a = keyed_on(&redis, &llm.url, &peer, &keys).await;
    let b = keyed_on(&redis, &llm.url, &peer, &keys).await;
    // Each question its own: an identical body in flight would be answered as a duplicate.
    let plan = |url: String, question: &'static str| async move {
        http()
            .post(format!("{url}/plan"))
            .bearer_auth("single-token")
            .json(&json!({"question": question, "catalog": "default"}))
            .send()
            .await
            .unwrap()
    };
    let mut running = plan(a.url.clone(), "first").await;
    assert_eq!(running.status(), 200);
    read_until(&mut running, "event: task.started").await;
    // B sees A's plan: /plan and the OpenAI door refuse, each in its own shape.
    let refused = plan(b.url.clone(), "second").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    let chat = http()
        .post(format!("{}/v1/chat/completions", b.url))
        .bearer_auth("single-token")
        .json(&json!({"model": "plangate", "messages": [{"role": "user", "content": "q"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 429);
    let body: Value = chat.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // A's plan ends and gives its hold back: B admits the next one.
    let text = read_all(running, Duration::from_secs(10)).await;
    assert!(text.contains("event: done"), "{text}");
    wait_for_idle(&a.state).await;
    let next = plan(b.url.clone(), "third").await;
    assert_eq!(next.status(), 200);
    let text = read_all(next, Duration::from_secs(10)).await;
    assert!(
        text.contains("\"task_id\":\"c2\"") && text.contains("event: final"),
        "{text}"
    );
    a.stop().await;
    b.stop().await;
    redis.stop().await;
}

#[tokio::test]
async fn an_answer_sent_to_b_reaches_the_plan_waiting_on_a() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let peer = FakePeer::start(Script::Instant).await;
    let llm = plangate_testkit::llm::FakeLlm::start(vec![
        plangate_testkit::llm::Turn::call("c1", "call_pay_charge", json!({"input": "10"})),
        plangate_testkit::llm::Turn::text("paid"),
    ])
    .await;
    let catalog =
        std::env::temp_dir().join(format!("plangate-confirm-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &catalog,
        json!({"catalogs": {"default": {"agents": [{"name": "pay", "endpoint": peer.url,
            "skills": [{"id": "charge", "description": "Charges", "confirm": true}]}]}}})
        .to_string(),
    )
    .unwrap();
    let a = on_redis(&redis, &llm.url, &peer, |c| {
        c.catalog_file = Some(catalog.clone())
    })
    .await;
    let b = on_redis(&redis, &llm.url, &peer, |c| {
        c.catalog_file = Some(catalog.clone())
    })
    .await;
    let mut running = post(
        &a.url,
        &json!({"question": "pay", "catalog": "default"}),
        None,
    )
    .await;
    assert_eq!(running.status(), 200);
    let head = read_until(&mut running, "event: task.confirm").await;
    let plan = plan_id_of(&head);
    let answer = |url: String, token: &'static str| {
        let plan = plan.clone();
        async move {
            http()
                .post(format!("{url}/plan/{plan}/tasks/c1/confirm"))
                .bearer_auth(token)
                .json(&json!({"approve": true}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Another caller's answer on B is 404; the owner's is taken and reaches A.
    assert_eq!(answer(b.url.clone(), "other-token").await, 404);
    assert_eq!(answer(b.url.clone(), TOKEN).await, 202);
    let text = head + &read_all(running, Duration::from_secs(10)).await;
    assert!(text.contains("event: task.started"), "{text}");
    assert!(text.contains("\"state\":\"completed\""), "{text}");
    assert_eq!(peer.requests().len(), 1);
    // Answered: a second answer on either instance is 409.
    assert_eq!(answer(b.url.clone(), TOKEN).await, 409);
    assert_eq!(answer(a.url.clone(), TOKEN).await, 409);
    a.stop().await;
    b.stop().await;
    redis.stop().await;
}

/// The `url` of the first file of a plan's `task.artifact` frames.
fn first_file_url(frames: &[Frame]) -> String {
    find(frames, "task.artifact")
        .into_iter()
        .find_map(|a| a["files"][0]["url"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no file in {frames:?}"))
}

async fn get_file(base: &str, token: &str, url: &str) -> (u16, Vec<u8>) {
    let resp = http()
        .get(format!("{base}{url}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_plans_files_are_served_by_every_instance_and_the_oldest_go_first() {
    use base64::Engine as _;
    let Some(redis) = Redis::start().await else {
        return;
    };
    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let peer = FakePeer::start(Script::Artifact(json!([{"kind": "file", "file": {
        "name": "r.bin", "mimeType": "application/octet-stream",
        "bytes": base64::engine::general_purpose::STANDARD.encode(&bytes)}}])))
    .await;
    let turns = |n: usize| {
        (0..n)
            .flat_map(|_| {
                [
                    plangate_testkit::llm::Turn::call("c1", "call_p_s", json!({"input": "x"})),
                    plangate_testkit::llm::Turn::text("ok"),
                ]
            })
            .collect::<Vec<_>>()
    };
    let llm = plangate_testkit::llm::FakeLlm::start(turns(4)).await;
    // 100 000 bytes over all instances: the third 40 000-byte file evicts the first.
    let small = |c: &mut plangate::config::Config| c.files.max_total_bytes = 100_000;
    let a = on_redis(&redis, &llm.url, &peer, small).await;
    let b = on_redis(&redis, &llm.url, &peer, small).await;
    let ask = |gw: &TestGateway| {
        let url = gw.url.clone();
        async move {
            let resp = http()
                .post(format!("{url}/plan"))
                .bearer_auth(TOKEN)
                .json(&json!({"question": "q", "catalog": "default"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            collect(resp).await
        }
    };
    let first = first_file_url(&ask(&a).await);
    // Served by the other instance, to the plan's caller only.
    let (status, got) = get_file(&b.url, TOKEN, &first).await;
    assert_eq!((status, got == bytes), (200, true));
    assert_eq!(get_file(&b.url, "other-token", &first).await.0, 404);
    let second = first_file_url(&ask(&b).await);
    let third = first_file_url(&ask(&b).await);
    assert_eq!(
        get_file(&a.url, TOKEN, &first).await.0,
        404,
        "the oldest went"
    );
    for url in [&second, &third] {
        let (status, got) = get_file(&a.url, TOKEN, url).await;
        assert_eq!((status, got == bytes), (200, true));
    }
    // An instance keeping files no time after their plan: gone once the plan has ended.
    let c = on_redis(&redis, &llm.url, &peer, |c| {
        c.files.retention = Duration::ZERO;
    })
    .await;
    let fourth = first_file_url(&ask(&c).await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while get_file(&a.url, TOKEN, &fourth).await.0 != 404 {
        assert!(Instant::now() < deadline, "the file outlived its retention");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    redis.stop().await;
}
