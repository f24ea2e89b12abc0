//! `sessions`: what server-side conversations (`GATEWAY_SESSIONS=on`) cost. The same plans (one
//! LLM tool call, one peer call, the answer) run one after another as turns of 50 conversations,
//! with sessions off and on, in memory and on Redis (a `redis-server` this scenario starts on a
//! free loopback port, when Debian's is installed): gateway CPU per plan for each, and the memory one
//! stored turn takes (resident memory grown per turn, and the turn's JSON as `GET
//! /sessions/{id}` shows it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plangate_testkit::free_port;
use serde_json::{Value, json};

use crate::{Fakes, Gateway, Report, client, llm_env, run_plan};

/// One way to run the gateway: the figure's key, its label, the environment it adds.
type Mode = (&'static str, &'static str, Vec<(&'static str, String)>);

/// Conversations the turns go round.
const CONVERSATIONS: usize = 50;

/// A `redis-server` without persistence, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Option<Self> {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn turn_body(f: &Fakes, conversation: usize, turn: usize) -> String {
    json!({"question": format!("question {turn} of conversation {conversation}"),
        "session_id": format!("s{conversation}"),
        "agents": [{"name": "peer", "endpoint": f.peer_url, "skills": [{"id": "instant", "description": "bench"}]}]})
    .to_string()
}

/// Runs `turns` turns round the conversations, one after another; the gateway's CPU per plan.
async fn turns(gw: &Gateway, f: &Fakes, from: usize, turns: usize) -> f64 {
    let http = client();
    let cpu0 = gw.cpu_us();
    for i in from..from + turns {
        run_plan(&http, &gw.url(), turn_body(f, i % CONVERSATIONS, i)).await;
    }
    (gw.cpu_us() - cpu0) as f64 / turns as f64
}

/// CPU per plan with sessions off, in memory and on Redis; memory per stored turn.
pub(crate) async fn measure(r: &mut Report, f: &Fakes, plans: usize) {
    let redis = Redis::start();
    let mut modes: Vec<Mode> = vec![
        ("sessions_off_cpu_us", "sessions off", Vec::new()),
        (
            "sessions_memory_cpu_us",
            "sessions on, memory",
            vec![("GATEWAY_SESSIONS", "on".to_owned())],
        ),
    ];
    let redis_url = redis
        .as_ref()
        .map(|r| format!("redis://127.0.0.1:{}", r.port));
    if let Some(url) = &redis_url {
        // On Redis the idempotency table is there too: this is the baseline of the Redis figure.
        modes.push((
            "sessions_off_redis_cpu_us",
            "sessions off, Redis (idempotency there)",
            vec![("GATEWAY_REDIS_URL", url.clone())],
        ));
    }
    match &redis {
        Some(redis) => modes.push((
            "sessions_redis_cpu_us",
            "sessions on, Redis",
            vec![
                ("GATEWAY_SESSIONS", "on".to_owned()),
                (
                    "GATEWAY_REDIS_URL",
                    format!("redis://127.0.0.1:{}", redis.port),
                ),
            ],
        )),
        None => eprintln!("sessions: redis-server is not installed; the Redis figure is left out"),
    }
    for (key, label, extra) in modes {
        let mut env = llm_env(f);
        env.extend(extra);
        let (gw, _) = Gateway::start(&env);
        turns(&gw, f, 0, 2 * CONVERSATIONS).await; // warm-up: every conversation exists
        let cpu = turns(&gw, f, 2 * CONVERSATIONS, plans).await;
        r.add(
            Some(key),
            &format!(
                "gateway CPU per plan, {label} ({plans} sequential turns of {CONVERSATIONS} conversations)"
            ),
            cpu,
            "µs",
            "",
        );
        gw.stop();
    }

    // Memory per stored turn: resident memory grown over many turns, in memory.
    let mut env = llm_env(f);
    env.push(("GATEWAY_SESSIONS", "on".to_owned()));
    let (gw, _) = Gateway::start(&env);
    turns(&gw, f, 0, 2 * CONVERSATIONS).await;
    std::thread::sleep(Duration::from_millis(200));
    let before = gw.rss_kib();
    let stored = 20 * CONVERSATIONS;
    turns(&gw, f, 2 * CONVERSATIONS, stored).await;
    std::thread::sleep(Duration::from_millis(200));
    let grown = gw.rss_kib().saturating_sub(before);
    r.add(
        Some("sessions_rss_per_turn_bytes"),
        &format!("resident memory grown per stored turn ({stored} turns, memory backend)"),
        grown as f64 * 1024.0 / stored as f64,
        "bytes",
        "",
    );
    let shown: Value = client()
        .get(format!("{}/sessions/s0", gw.url()))
        .send()
        .await
        .expect("GET /sessions/s0")
        .json()
        .await
        .expect("a conversation");
    let turns_shown = shown["turns"].as_array().map_or(1, Vec::len).max(1);
    r.add(
        Some("sessions_json_per_turn_bytes"),
        "one stored turn as GET /sessions/{id} shows it (question, answer, one tool call, usage)",
        shown.to_string().len() as f64 / turns_shown as f64,
        "bytes",
        "",
    );
    gw.stop();
}
