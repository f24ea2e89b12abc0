//! `plangate-bench`: measures the release gateway as a separate process against instant in-process
//! fakes (an OpenAI-compatible LLM and A2A peers), so every figure is the gateway's own.
//!
//! ```text
//! cargo build --release --workspace --bins && target/release/plangate-bench all [--json]
//! ```
//!
//! Scenarios: `startup`, `idle`, `cpu`, `latency`, `throughput`, `open-plans`, `soak`,
//! `first-poll`, `stream-vs-poll`, `sessions`, `big-catalog-cost`, `all` (everything) and `smoke`
//! (a short run for CI).

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line report"
)]
#![expect(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "statistics on small numbers"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod catalog_cost;
mod files;
mod floor;
mod realistic;
mod sessions;

use clap::Parser;
use futures::StreamExt;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, PeerOptions, Script};
use plangate_testkit::{DelayLog, free_port};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "plangate-bench",
    about = "Benchmarks the release plangate binary"
)]
struct Args {
    /// startup | idle | cpu | latency | throughput | metrics | open-plans | soak | first-poll |
    /// stream-vs-poll | tokens | floor | one-tool | multi-step | big-catalog | long-history |
    /// big-artifact | big-catalog-cost | realistic (tokens, floor and every shape) | sessions |
    /// files | all | smoke
    scenario: String,
    /// Print one JSON object with the headline figures.
    #[arg(long)]
    json: bool,
    /// Plans held open in `open-plans`.
    #[arg(long, default_value_t = 10_000)]
    open_plans: usize,
    /// Sequential plans in `soak`.
    #[arg(long, default_value_t = 100_000)]
    soak_plans: usize,
    /// Realistic scenarios: sequential plans for CPU per plan.
    #[arg(long, default_value_t = 200)]
    cpu_plans: usize,
    /// Realistic scenarios: paced 300-token answers (and as many 1-token ones) per measurement.
    #[arg(long, default_value_t = 6)]
    paced_plans: usize,
    /// Realistic scenarios: plans held open at once, answering.
    #[arg(long, default_value_t = 200)]
    answering_plans: usize,
    /// Realistic scenarios: plans between the two readings of the RSS growth check.
    #[arg(long, default_value_t = 10_000)]
    growth_plans: usize,
    /// `relay` mode (the floor program): port to listen on.
    #[arg(long, hide = true)]
    relay_port: Option<u16>,
    /// `relay` mode: the fake LLM's host:port.
    #[arg(long, hide = true)]
    upstream: Option<String>,
    /// `relay` mode: current-thread | multi-thread | channel.
    #[arg(long, hide = true, default_value = "multi-thread")]
    flavour: String,
}

// ---------------------------------------------------------------- fakes (plangate-testkit)

struct Fakes {
    llm: FakeLlm,
    llm_url: String,
    /// Skills `instant` (answers the send), `delayed` (100 ms, then answers), `timed`
    /// (completes 200 ms after the send, polled) and anything else (works forever).
    peer: FakePeer,
    peer_url: String,
    /// Streams `working`, then 200 ms later the artifact and `completed`.
    stream_peer_url: String,
    /// Deliberate waits of the LLM and the peer, by plan question.
    delays: Arc<DelayLog>,
}

/// Simulated time of one LLM step and of one peer call in the latency scenario.
const SIMULATED: Duration = Duration::from_millis(100);

/// Mean time one simulated step of the fakes really took, in ms.
fn mean_simulated_ms(f: &Fakes) -> f64 {
    let mean = f.delays.mean();
    if mean.is_zero() {
        SIMULATED.as_secs_f64() * 1000.0
    } else {
        mean.as_secs_f64() * 1000.0
    }
}

static TOOL_TURN: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"call_peer_instant\",\"arguments\":\"{\\\"input\\\":\\\"hi\\\"}\"}}]},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}\n\ndata: [DONE]\n\n";
static TEXT_TURN: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"The answer is \"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"42 [[peer:instant]].\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":5,\"total_tokens\":25}}\n\ndata: [DONE]\n\n";

/// The LLM of every scenario: a tool call first, the answer once a tool result is in the
/// conversation, each in two chunks (the same bytes as every earlier run of this benchmark).
/// Model `bench-slow`: every step takes [`SIMULATED`] and calls the delayed skill with the plan's
/// question as input, so the peer can attribute its time to the plan too.
fn llm_policy(body: &[u8]) -> Turn {
    if let Some(turn) = realistic::policy(body) {
        return turn;
    }
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    // A tool result in the conversation means the second step: answer in text.
    let second = has(b"\"role\":\"tool\"");
    if has(b"\"model\":\"bench-slow") {
        let turn = if second {
            Turn::Replay(TEXT_TURN.to_owned())
        } else {
            let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let tag = request["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["role"] == "user"))
                .and_then(|m| m["content"].as_str())
                .unwrap_or("");
            let call = json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant",
                "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "call_peer_delayed",
                "arguments": json!({"input": tag}).to_string()}}]}, "finish_reason": "tool_calls"}]});
            Turn::Replay(format!("data: {call}\n\ndata: [DONE]\n\n"))
        };
        return Turn::Delayed(SIMULATED, Box::new(turn));
    }
    Turn::Replay(if second { TEXT_TURN } else { TOOL_TURN }.to_owned())
}

async fn start_fakes() -> Fakes {
    let delays = Arc::new(DelayLog::default());
    let llm = FakeLlm::with_policy(Box::new(llm_policy), Arc::clone(&delays)).await;
    let quiet = PeerOptions {
        card: Some(json!({"name": "peer", "capabilities": {"streaming": false}})),
        quiet: true,
        ..PeerOptions::default()
    };
    let peer = FakePeer::start_logged(
        Script::PerSkill {
            skills: vec![
                ("instant".into(), Script::Instant),
                (
                    "delayed".into(),
                    Script::Delayed(SIMULATED, Box::new(Script::Instant)),
                ),
                (
                    "timed".into(),
                    Script::CompleteAfter(Duration::from_millis(200)),
                ),
            ],
            otherwise: Box::new(Script::WorkForever),
        },
        quiet.clone(),
        Arc::clone(&delays),
    )
    .await;
    let stream_peer = FakePeer::start_with(
        Script::StreamTimed(vec![
            (
                Duration::ZERO,
                json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "working"}}),
            ),
            (
                Duration::from_millis(200),
                json!({"kind": "artifact-update", "taskId": "{id}", "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": "done"}]}}),
            ),
            (
                Duration::ZERO,
                json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "completed"}, "final": true}),
            ),
        ]),
        PeerOptions {
            card: Some(json!({"name": "s", "capabilities": {"streaming": true}})),
            ..quiet
        },
    )
    .await;
    Fakes {
        llm_url: llm.url.clone(),
        llm,
        peer_url: peer.url.clone(),
        stream_peer_url: stream_peer.url.clone(),
        peer,
        delays,
    }
}

// ---------------------------------------------------------------- the gateway process

struct Gateway {
    child: Child,
    port: u16,
    pid: u32,
}

/// The gateway under test: `PLANGATE_BENCH_GATEWAY`, else `plangate` beside this binary.
fn gateway_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PLANGATE_BENCH_GATEWAY") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.with_file_name("plangate");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build --release --bins` first",
        bin.display()
    );
    bin
}

/// A raw HTTP/1.1 `GET /health`: true on a 200.
fn health_ok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

impl Gateway {
    /// Starts the gateway; returns it with the time from launch to a healthy `/health`.
    fn start(env: &[(&str, String)]) -> (Self, Duration) {
        let port = free_port();
        let t0 = Instant::now();
        let mut cmd = Command::new(gateway_binary());
        cmd.arg("serve")
            .env_clear()
            .env("GATEWAY_HOSTNAME", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("GATEWAY_AUTH_MODE", "none")
            .env("GATEWAY_RECIPES_DIR", "")
            .env(
                "RUST_LOG",
                std::env::var("PLANGATE_BENCH_LOG").unwrap_or_else(|_| "error".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // Allocator settings under trial reach the gateway (`MIMALLOC_PURGE_DELAY=0
        // plangate-bench …`), and so does the discovery threshold
        // (`GATEWAY_TOOL_DISCOVERY_THRESHOLD=0 plangate-bench big-catalog` measures the plan that
        // offers all 120 skills); a scenario's own settings win.
        for (k, v) in std::env::vars()
            .filter(|(k, _)| k.starts_with("MIMALLOC_") || k == "GATEWAY_TOOL_DISCOVERY_THRESHOLD")
        {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn plangate");
        let pid = child.id();
        while !health_ok(port) {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "gateway did not become healthy"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        (Self { child, port, pid }, t0.elapsed())
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The gateway's CPU time in microseconds.
    fn cpu_us(&self) -> u64 {
        self.cpu_ns() / 1000
    }

    /// The gateway's CPU time in nanoseconds.
    fn cpu_ns(&self) -> u64 {
        cpu_ns_of(self.pid)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The CPU time of process `pid` (all its threads, living and ended) in nanoseconds, read from
/// its CPU-time clock (`clock_getcpuclockid`): exact, where `/proc/<pid>/stat` counts 10 ms ticks.
fn cpu_ns_of(pid: u32) -> u64 {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
    let now = nix::time::clock_getcpuclockid(pid)
        .and_then(nix::time::ClockId::now)
        .expect("the process CPU clock");
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}

// ---------------------------------------------------------------- driving plans

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap()
}

fn llm_env(f: &Fakes) -> Vec<(&'static str, String)> {
    vec![
        ("GATEWAY_LLM_API_KEY", "bench".to_owned()),
        ("GATEWAY_LLM_BASE_URL", f.llm_url.clone()),
        ("GATEWAY_PLANNER_MODEL", "bench-model".to_owned()),
    ]
}

fn plan_body(question: &str, endpoint: &str, skill: &str) -> String {
    json!({"question": question, "agents": [{"name": "peer", "endpoint": endpoint, "skills": [{"id": skill, "description": "bench"}]}]}).to_string()
}

/// Runs one plan to `done`; returns its wall time.
async fn run_plan(http: &reqwest::Client, url: &str, body: String) -> Duration {
    let t0 = Instant::now();
    let resp = http
        .post(format!("{url}/plan"))
        .body(body)
        .send()
        .await
        .expect("plan request");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("plan stream");
    assert!(
        text.ends_with("event: done\ndata: {}\n\n"),
        "stream did not end with done"
    );
    assert!(!text.contains("event: error"), "plan failed: {text}");
    assert!(
        text.matches("event: task.started").count() <= 1,
        "a benchmark plan makes at most one tool call: {text}"
    );
    t0.elapsed()
}

/// Runs `n` plans, `concurrency` at a time; returns each plan's wall time and the total time.
async fn run_many(
    url: &str,
    n: usize,
    concurrency: usize,
    body: &str,
) -> (Vec<Duration>, Duration) {
    let (times, total) = run_staggered(url, n, concurrency, body, Duration::ZERO).await;
    (times.into_iter().map(|(_, d)| d).collect(), total)
}

/// Like [`run_many`], each plan starting after a random pause below `stagger` (not timed), so
/// plans of equal length do not move in lock-step bursts.
async fn run_staggered(
    url: &str,
    n: usize,
    concurrency: usize,
    body: &str,
    stagger: Duration,
) -> (Vec<(usize, Duration)>, Duration) {
    let http = client();
    let t0 = Instant::now();
    let times: Vec<(usize, Duration)> = futures::stream::iter(0..n)
        .map(|i| {
            let http = http.clone();
            let body = body.replace("__N__", &i.to_string());
            async move {
                if !stagger.is_zero() {
                    let pause = stagger.mul_f64(rand::random_range(0.0..1.0));
                    tokio::time::sleep(pause).await;
                }
                (i, run_plan(&http, url, body).await)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (times, t0.elapsed())
}

fn percentile(times: &mut [Duration], p: f64) -> f64 {
    times.sort();
    let idx = ((times.len() as f64 - 1.0) * p).round() as usize;
    times[idx].as_secs_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

// ---------------------------------------------------------------- scenarios

#[derive(Default)]
struct Report {
    figures: serde_json::Map<String, Value>,
    rows: Vec<(String, String, String)>,
}

impl Report {
    fn add(&mut self, key: Option<&str>, label: &str, value: f64, unit: &str, target: &str) {
        if let Some(k) = key {
            self.figures
                .insert(k.to_owned(), json!((value * 100.0).round() / 100.0));
        }
        self.rows.push((
            label.to_owned(),
            format!("{value:.2} {unit}"),
            target.to_owned(),
        ));
    }

    fn print(&self, as_json: bool) {
        if as_json {
            println!("{}", Value::Object(self.figures.clone()));
            return;
        }
        println!("| figure | measured | target |\n|---|---|---|");
        for (label, value, target) in &self.rows {
            println!("| {label} | {value} | {target} |");
        }
    }
}

fn startup(r: &mut Report, runs: usize) {
    let mut ms = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..runs {
        let (gw, took) = Gateway::start(&[]);
        ms.push(took.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(300));
        idle.push(gw.rss_kib() as f64);
        gw.stop();
    }
    r.add(
        Some("startup_ms"),
        &format!("launch to healthy /health (median of {runs})"),
        median(&mut ms),
        "ms",
        "≤ 50 ms",
    );
    r.add(
        Some("idle_rss_kib"),
        "resident memory, idle",
        median(&mut idle),
        "KiB",
        "≤ 20 MiB (20480 KiB)",
    );
}

async fn cpu_and_latency(r: &mut Report, f: &Fakes, plans: usize) {
    let (gw, _) = Gateway::start(&llm_env(f));
    let body = plan_body("q __N__", &f.peer_url, "instant");
    run_many(&gw.url(), 200, 8, &body).await; // warm-up
    let cpu0 = gw.cpu_us();
    let (_, _) = run_many(&gw.url(), plans, 16, &body).await;
    let cpu = (gw.cpu_us() - cpu0) as f64 / plans as f64;
    r.add(
        Some("cpu_per_plan_us"),
        &format!("gateway CPU per plan (LLM tool call + peer call + final text; {plans} plans)"),
        cpu,
        "µs",
        "≤ 1000 µs",
    );

    let (mut seq, _) = run_many(&gw.url(), 1000, 1, &body).await;
    r.add(
        None,
        "sequential plan wall time p50 (instant fakes: all of it is gateway + loopback)",
        percentile(&mut seq, 0.5),
        "ms",
        "",
    );
    r.add(
        None,
        "sequential plan wall time p99 (instant fakes)",
        percentile(&mut seq, 0.99),
        "ms",
        "",
    );
    for c in [16, 64, 256] {
        let n = (c * 20).max(2000);
        let (mut t, total) = run_many(&gw.url(), n, c, &body).await;
        let throughput = n as f64 / total.as_secs_f64();
        let p99 = percentile(&mut t, 0.99);
        if c == 64 {
            r.add(
                Some("throughput_c64"),
                &format!("throughput at concurrency 64, instant fakes (p99 {p99:.1} ms)"),
                throughput,
                "plans/s",
                "",
            );
        } else {
            r.add(
                None,
                &format!("throughput at concurrency {c}, instant fakes (p99 {p99:.1} ms)"),
                throughput,
                "plans/s",
                "",
            );
        }
    }
    gw.stop();

    // Added latency: two LLM steps and one peer call of 100 ms each, 64 plans in flight.
    let mut env = llm_env(f);
    env.retain(|(k, _)| *k != "GATEWAY_PLANNER_MODEL");
    env.push(("GATEWAY_PLANNER_MODEL", "bench-slow".to_owned()));
    let (gw, _) = Gateway::start(&env);
    let body = plan_body("q __N__", &f.peer_url, "delayed");
    if std::env::var_os("PLANGATE_BENCH_TRACE").is_some() {
        let t0 = Instant::now();
        let resp = client()
            .post(format!("{}/plan", gw.url()))
            .body(body.replace("__N__", "x"))
            .send()
            .await
            .unwrap();
        let mut s = resp.bytes_stream();
        while let Some(Ok(c)) = s.next().await {
            eprintln!(
                "{:>8.1} ms {}",
                t0.elapsed().as_secs_f64() * 1000.0,
                String::from_utf8_lossy(&c).lines().next().unwrap_or("")
            );
        }
    }
    f.delays.clear();
    let (mut seq, _) = run_many(&gw.url(), 20, 1, &body).await;
    let fake_ms = 3.0 * mean_simulated_ms(f);
    r.add(
        None,
        &format!("added latency p50, sequential (wall − {fake_ms:.1} ms measured in the fakes)"),
        percentile(&mut seq, 0.5) - fake_ms,
        "ms",
        "",
    );
    run_many(&gw.url(), 64, 64, &body).await;
    // Lock-step: 64 plans of equal length started together complete their steps together, so
    // every step is a burst of 64 requests on two shared cores (a worst case, reported apart).
    let (mut burst, _) = run_many(&gw.url(), 64 * 5, 64, &body).await;
    let fake_ms = 3.0 * mean_simulated_ms(f);
    r.add(
        None,
        "added latency p99 at concurrency 64, lock-step bursts",
        percentile(&mut burst, 0.99) - fake_ms,
        "ms",
        "",
    );
    // Staggered arrivals, three rounds: the medians of the rounds' p50 and p99 are reported.
    // Added latency of a plan = its wall time − the time the fakes spent on that very plan.
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    for round in 0..3 {
        f.delays.clear();
        let tagged = body.replace("q __N__", &format!("r{round} __N__"));
        let (t, _) =
            run_staggered(&gw.url(), 64 * 10, 64, &tagged, Duration::from_millis(300)).await;
        let mut added: Vec<Duration> = t
            .iter()
            .map(|(i, wall)| wall.saturating_sub(f.delays.of(&format!("r{round} {i}"))))
            .collect();
        p50s.push(percentile(&mut added, 0.5));
        p99s.push(percentile(&mut added, 0.99));
    }
    r.add(
        Some("p50_added_ms"),
        "added latency p50 at concurrency 64 (wall − that plan's LLM + peer time; median of 3 rounds)",
        median(&mut p50s),
        "ms",
        "≤ 2 ms",
    );
    r.add(
        Some("p99_added_ms"),
        "added latency p99 at concurrency 64 (median of 3 rounds)",
        median(&mut p99s),
        "ms",
        "≤ 10 ms",
    );
    gw.stop();
}

async fn open_plans(r: &mut Report, f: &Fakes, n: usize) {
    let mut env = llm_env(f);
    env.retain(|(k, _)| *k != "GATEWAY_LLM_API_KEY"); // fan-out: one slow call per plan
    env.push(("GATEWAY_SSE_KEEPALIVE_SECS", "1".to_owned()));
    if let Ok(w) = std::env::var("GATEWAY_WORKER_THREADS") {
        env.push(("GATEWAY_WORKER_THREADS", w));
    }
    let (gw, _) = Gateway::start(&env);
    run_many(
        &gw.url(),
        50,
        8,
        &plan_body("warm __N__", &f.peer_url, "instant"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = gw.rss_kib();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    let keepalives = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    for i in 0..n {
        let (http, url, stop, opened, keepalives) = (
            http.clone(),
            gw.url(),
            stop.clone(),
            Arc::clone(&opened),
            Arc::clone(&keepalives),
        );
        // The "slow" skill's tasks never finish at the fake peer.
        let body = json!({"question": format!("hold {i}"), "agents": [{"name": "peer", "endpoint": f.peer_url, "skills": [{"id": "slow"}]}]}).to_string();
        tracker.spawn(async move {
            let resp = http.post(format!("{url}/plan")).body(body).send().await.expect("open plan");
            opened.fetch_add(1, Ordering::Relaxed);
            let mut stream = resp.bytes_stream();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    chunk = stream.next() => match chunk {
                        Some(Ok(c)) if c.starts_with(b": keep-alive") => { keepalives.fetch_add(1, Ordering::Relaxed); }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
        });
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while opened.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the opening burst's garbage be returned and the keep-alives settle into their rhythm.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = gw.rss_kib();
    let per_plan = (during.saturating_sub(before)) as f64 / n as f64;
    r.add(
        Some("rss_per_open_plan_kib"),
        &format!(
            "resident memory per open plan ({n} open, keep-alives every 1 s: {} seen)",
            keepalives.load(Ordering::Relaxed)
        ),
        per_plan,
        "KiB",
        "≤ 40 KiB",
    );
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    gw.stop();
}

async fn soak(r: &mut Report, f: &Fakes, n: usize) {
    let (gw, _) = Gateway::start(&[]);
    let body = plan_body("soak __N__", &f.peer_url, "instant");
    run_many(&gw.url(), 2000, 4, &body).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = gw.rss_kib() as f64;
    let t0 = Instant::now();
    run_many(&gw.url(), n, 1, &body).await;
    let took = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = gw.rss_kib() as f64;
    let growth = (after - baseline) / baseline * 100.0;
    r.add(
        None,
        &format!(
            "post-warm-up baseline RSS (then {n} sequential plans in {:.0} s)",
            took.as_secs_f64()
        ),
        baseline,
        "KiB",
        "",
    );
    r.add(
        Some("rss_growth_pct"),
        &format!("RSS growth after {n} sequential plans"),
        growth,
        "%",
        "≤ 10 %",
    );
    gw.stop();
}

async fn first_poll(r: &mut Report, f: &Fakes) {
    let (gw, _) = Gateway::start(&[]);
    let body = plan_body("poll __N__", &f.peer_url, "timed");
    f.peer.forget_tasks();
    run_many(&gw.url(), 40, 4, &body).await;
    let mut gaps: Vec<f64> = f
        .peer
        .task_timings()
        .iter()
        .filter_map(|t| {
            t.first_poll
                .map(|p| p.duration_since(t.sent).as_secs_f64() * 1000.0)
        })
        .collect();
    r.add(
        Some("first_poll_ms"),
        "first poll of a submitted task after the send (median)",
        median(&mut gaps),
        "ms",
        "≤ 110 ms",
    );
    gw.stop();
}

async fn stream_vs_poll(r: &mut Report, f: &Fakes) {
    let (gw, _) = Gateway::start(&[]);
    let polled = plan_body("p __N__", &f.peer_url, "timed");
    let streamed = plan_body("s __N__", &f.stream_peer_url, "stream");
    run_many(&gw.url(), 5, 1, &streamed).await;
    let (mut p, _) = run_many(&gw.url(), 20, 1, &polled).await;
    let (mut s, _) = run_many(&gw.url(), 20, 1, &streamed).await;
    let pm = percentile(&mut p, 0.5);
    let sm = percentile(&mut s, 0.5);
    r.add(
        None,
        "plan against a 200 ms peer, polled (median)",
        pm,
        "ms",
        "",
    );
    r.add(
        Some("streamed_plan_ms"),
        "plan against a 200 ms peer, streamed (median)",
        sm,
        "ms",
        "≤ 205 ms (peer + 5 ms)",
    );
    gw.stop();
}

/// The cost of metrics: CPU per plan and idle RSS with `/metrics` on and off, alternating, three
/// rounds each (medians).
async fn metrics_cost(r: &mut Report, f: &Fakes, plans: usize) {
    let body = plan_body("m __N__", &f.peer_url, "instant");
    let (mut cpu_on, mut cpu_off, mut rss_on, mut rss_off) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        for on in [true, false] {
            let mut env = llm_env(f);
            env.push(("GATEWAY_METRICS", if on { "on" } else { "off" }.to_owned()));
            let (gw, _) = Gateway::start(&env);
            std::thread::sleep(Duration::from_millis(300));
            let idle = gw.rss_kib() as f64;
            run_many(&gw.url(), 200, 8, &body).await;
            let cpu0 = gw.cpu_us();
            run_many(&gw.url(), plans, 16, &body).await;
            let cpu = (gw.cpu_us() - cpu0) as f64 / plans as f64;
            let scraped = client()
                .get(format!("{}/metrics", gw.url()))
                .send()
                .await
                .map(|resp| resp.status().as_u16())
                .unwrap_or(0);
            assert_eq!(
                scraped,
                if on { 200 } else { 404 },
                "/metrics with metrics {on}"
            );
            if on {
                cpu_on.push(cpu);
                rss_on.push(idle);
            } else {
                cpu_off.push(cpu);
                rss_off.push(idle);
            }
            gw.stop();
        }
    }
    r.add(
        Some("cpu_per_plan_metrics_on_us"),
        &format!("gateway CPU per plan, metrics on (median of 3 × {plans} plans)"),
        median(&mut cpu_on),
        "µs",
        "",
    );
    r.add(
        Some("cpu_per_plan_metrics_off_us"),
        &format!("gateway CPU per plan, metrics off (median of 3 × {plans} plans)"),
        median(&mut cpu_off),
        "µs",
        "",
    );
    r.add(
        Some("idle_rss_metrics_on_kib"),
        "resident memory, idle, metrics on",
        median(&mut rss_on),
        "KiB",
        "",
    );
    r.add(
        Some("idle_rss_metrics_off_kib"),
        "resident memory, idle, metrics off",
        median(&mut rss_off),
        "KiB",
        "",
    );
}

fn main() {
    let args = Args::parse();
    if args.scenario == "relay" {
        floor::serve(
            args.relay_port.expect("--relay-port"),
            args.upstream.as_deref().expect("--upstream"),
            &args.flavour,
        );
        return;
    }
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(run(args));
}

async fn run(args: Args) {
    let fakes = start_fakes().await;
    let mut report = Report::default();
    let s = args.scenario.as_str();
    let all = s == "all";
    let realistic_counts = realistic::Counts {
        cpu_plans: args.cpu_plans,
        paced_plans: args.paced_plans,
        open_plans: args.answering_plans,
        growth_plans: args.growth_plans,
    };
    let setup = realistic::Setup {
        llm: &fakes.llm,
        peers: realistic::start_peers().await,
    };
    if s == "smoke" {
        let counts = realistic::Counts {
            cpu_plans: 5,
            paced_plans: 1,
            open_plans: 10,
            growth_plans: 40,
        };
        realistic::tokens(&mut report, &setup, counts).await;
        for shape in realistic::Shape::ALL {
            realistic::shape_figures(&mut report, &setup, shape, counts).await;
        }
        startup(&mut report, 3);
        cpu_and_latency(&mut report, &fakes, 500).await;
        first_poll(&mut report, &fakes).await;
        stream_vs_poll(&mut report, &fakes).await;
        open_plans(&mut report, &fakes, 200).await;
        soak(&mut report, &fakes, 1000).await;
        catalog_cost::measure(&mut report, 3).await;
        report.print(args.json);
        return;
    }
    if all || s == "startup" || s == "idle" {
        startup(&mut report, 7);
    }
    if all || s == "cpu" || s == "latency" || s == "throughput" {
        cpu_and_latency(&mut report, &fakes, 5000).await;
    }
    if all || s == "metrics" {
        metrics_cost(&mut report, &fakes, 3000).await;
    }
    if all || s == "first-poll" {
        first_poll(&mut report, &fakes).await;
    }
    if all || s == "stream-vs-poll" {
        stream_vs_poll(&mut report, &fakes).await;
    }
    if all || s == "open-plans" {
        open_plans(&mut report, &fakes, args.open_plans).await;
    }
    if all || s == "soak" {
        soak(&mut report, &fakes, args.soak_plans).await;
    }
    let realistic = all || s == "realistic";
    if realistic || s == "tokens" {
        realistic::tokens(&mut report, &setup, realistic_counts).await;
    }
    if all || s == "sessions" {
        sessions::measure(&mut report, &fakes, 1000).await;
    }
    if s == "files" {
        files::measure(&mut report).await;
    }
    if all || s == "big-catalog-cost" {
        catalog_cost::measure(&mut report, args.cpu_plans).await;
    }
    if s == "floor" {
        floor::measure(&mut report, &fakes.llm_url, args.paced_plans).await;
    }
    for shape in realistic::Shape::ALL {
        if realistic || s == shape.name() {
            realistic::shape_figures(&mut report, &setup, shape, realistic_counts).await;
        }
    }
    if report.rows.is_empty() {
        eprintln!("unknown scenario {s:?}; see --help");
        std::process::exit(2);
    }
    report.print(args.json);
}
