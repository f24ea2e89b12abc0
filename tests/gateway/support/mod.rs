//! Test harness: a real gateway on `127.0.0.1:0` plus scripted fakes, all in-process. Logs are
//! silent unless `TEST_LOG=1`.

use std::time::Duration;

use futures::StreamExt;
use plangate::AppState;
use plangate::config::Config;
use serde_json::Value;
use tokio::net::TcpListener;

/// One SSE frame as a client sees it.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// A gateway serving on a random loopback port.
pub(crate) struct TestGateway {
    pub(crate) url: String,
    pub(crate) state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The test configuration: loopback, auth off, short card budget.
pub(crate) fn config() -> Config {
    let mut c = Config::test_default();
    c.a2a.card_budget = Duration::from_millis(500);
    c
}

/// A configuration in LLM mode against a fake LLM.
pub(crate) fn llm_config(llm_url: &str) -> Config {
    let mut c = config();
    c.llm.api_key = Some(secrecy::SecretString::from("test-key".to_owned()));
    c.llm.base_url = llm_url.to_owned();
    c.planner.model = "test-model".to_owned();
    c
}

pub(crate) fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        plangate::telemetry::init(plangate::telemetry::LogFormat::Text);
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

impl TestGateway {
    pub(crate) async fn spawn(config: Config) -> Self {
        init_logs();
        let state = plangate::boot::start(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        #[expect(
            clippy::disallowed_methods,
            reason = "test harness owns the server task"
        )]
        let server = tokio::spawn(plangate::serve_on(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            url,
            state,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// POSTs a plan and collects frames until `done` (30 s test timeout).
    pub(crate) async fn plan(&self, body: &Value) -> Vec<Frame> {
        let resp = http()
            .post(format!("{}/plan", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "plan was rejected");
        collect(resp).await
    }

    /// `GET /health` as JSON.
    pub(crate) async fn health(&self) -> Value {
        http()
            .get(format!("{}/health", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Starts the shutdown and waits for the server to finish.
    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    /// Signals shutdown without waiting.
    pub(crate) fn begin_stop(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.server.take().unwrap()
    }
}

/// Reads SSE frames until `done`, with a 30 s timeout; asserts nothing follows `done`.
pub(crate) async fn collect(resp: reqwest::Response) -> Vec<Frame> {
    let text = tokio::time::timeout(Duration::from_secs(30), async {
        let mut body = String::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        body
    })
    .await
    .expect("stream did not end within 30 s");
    let frames = parse_frames(&text);
    // Every frame any test sees is checked against the published schemas.
    assert_frames_match_schemas(&frames);
    let done_at = frames
        .iter()
        .position(|f| f.event == "done")
        .expect("stream has no done frame");
    assert_eq!(done_at, frames.len() - 1, "frames after done: {text}");
    frames
}

/// Parses SSE text into frames (comments skipped).
pub(crate) fn parse_frames(text: &str) -> Vec<Frame> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty() && !block.starts_with(':'))
        .map(|block| {
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_owned();
                }
            }
            Frame {
                event,
                data: serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("bad frame data {data:?}: {e}")),
            }
        })
        .collect()
}

pub(crate) fn events(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(|f| f.event.as_str()).collect()
}

pub(crate) fn find<'a>(frames: &'a [Frame], event: &str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| f.event == event)
        .map(|f| &f.data)
        .collect()
}

/// The concatenated text deltas.
pub(crate) fn answer(frames: &[Frame]) -> String {
    find(frames, "text.delta")
        .iter()
        .map(|d| d["delta"].as_str().unwrap().to_owned())
        .collect()
}

/// Validates every frame against `schemas/events/<event>.schema.json`.
pub(crate) fn assert_frames_match_schemas(frames: &[Frame]) {
    for f in frames {
        let path = format!(
            "{}/schemas/events/{}.schema.json",
            env!("CARGO_MANIFEST_DIR"),
            f.event
        );
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no schema {path}: {e}")),
        )
        .unwrap();
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        if let Some(err) = validator.iter_errors(&f.data).next() {
            panic!(
                "frame {} does not match its schema: {err}\n{}",
                f.event, f.data
            );
        }
    }
}

/// Checks the per-call ordering rules of spec §2.3.
pub(crate) fn assert_call_ordering(frames: &[Frame]) {
    let names = events(frames);
    assert_eq!(names[0], "session");
    for (i, f) in frames.iter().enumerate() {
        if f.event == "task.artifact" {
            assert_eq!(
                names[i + 1],
                "task.finished",
                "artifact and finished must be adjacent"
            );
            let id = &f.data["task_id"];
            assert!(
                frames[..i]
                    .iter()
                    .any(|g| g.event == "task.started" && &g.data["task_id"] == id),
                "artifact before started"
            );
        }
    }
    let started = find(frames, "task.started").len();
    assert_eq!(
        started,
        find(frames, "task.finished").len(),
        "every started call finishes"
    );
    let terminal = frames
        .iter()
        .filter(|f| f.event == "final" || f.event == "error")
        .count();
    assert_eq!(terminal, 1, "exactly one of final/error: {names:?}");
    assert_eq!(
        names[names.len() - 2],
        if find(frames, "final").is_empty() {
            "error"
        } else {
            "final"
        }
    );
}

/// Waits until `cond` holds, failing the test with `what` after `limit`. Tests wait on what
/// they need to see instead of sleeping a fixed time.
pub(crate) async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = std::time::Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until a gateway binary at `url` answers `/health` with 200.
pub(crate) async fn wait_until_healthy(url: &str) {
    for _ in 0..200 {
        if http()
            .get(format!("{url}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the gateway binary at {url} did not become healthy");
}

/// Sends SIGTERM to a gateway binary and collects its output once it has exited.
pub(crate) async fn terminate(child: tokio::process::Child) -> std::process::Output {
    let pid = child.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

/// Waits until the gateway has released every plan and spawned task.
pub(crate) async fn wait_for_idle(state: &AppState) {
    for _ in 0..200 {
        let s = state.stats();
        if s.open_plans == 0 && s.idempotency_entries == 0 && s.live_tasks == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("gateway did not return to idle: {:?}", state.stats());
}

/// Opens a plan, reads its stream until `event` has been seen, waits `linger`, then goes away
/// (drops the connection) the way a closed browser tab does.
pub(crate) async fn disconnect_after(
    gw: &TestGateway,
    body: &Value,
    event: &str,
    linger: Duration,
) {
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(body)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    let marker = format!("event: {event}");
    while !seen.contains(&marker) {
        seen.push_str(&String::from_utf8_lossy(
            &stream.next().await.unwrap().unwrap(),
        ));
    }
    tokio::time::sleep(linger).await;
    drop(stream);
}

/// Polls a peer's task list (`list` returns the array of tasks) until the task whose JSON
/// contains `marker` is in state `want`, for at most `limit`. Returns the last state seen and
/// how long it took.
pub(crate) async fn wait_for_listed_state<F, Fut>(
    list: F,
    marker: &str,
    want: &str,
    limit: Duration,
) -> (String, Duration)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let t0 = std::time::Instant::now();
    loop {
        let tasks = list().await;
        let state = tasks
            .as_array()
            .and_then(|t| t.iter().find(|t| t.to_string().contains(marker)))
            .and_then(|t| t["status"]["state"].as_str())
            .unwrap_or("")
            .to_owned();
        if state == want || t0.elapsed() > limit {
            return (state, t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first `task.finished` payload.
pub(crate) fn finished(frames: &[Frame]) -> Value {
    find(frames, "task.finished")[0].clone()
}

/// The `content` of the first `task.artifact`.
pub(crate) fn content(frames: &[Frame]) -> String {
    find(frames, "task.artifact")[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A fan-out plan of `question` against one agent; its frames are schema- and order-checked.
pub(crate) async fn plan_one(gw: &TestGateway, question: &str, agent: Value) -> Vec<Frame> {
    let frames = gw
        .plan(&serde_json::json!({"question": question, "agents": [agent]}))
        .await;
    assert_frames_match_schemas(&frames);
    assert_call_ordering(&frames);
    frames
}

/// Reports a test that did not run because what it needs is missing. Written straight to the
/// process's stderr (not through the test harness's capture), so a skipped test is visible in
/// `cargo test` output instead of passing silently. With `PLANGATE_REQUIRE_PEERS` set (`.ci/run`
/// sets it) or the test's own `require` variable, a missing dependency fails the test instead.
pub(crate) fn skip(what: &str, require: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    for var in ["PLANGATE_REQUIRE_PEERS", require] {
        assert!(
            std::env::var_os(var).is_none(),
            "{test}: {what}, but {var} says it must be there"
        );
    }
    let line = format!("SKIPPED {test}: {what} (scripts/test.sh starts the real peers)\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// The URL of a real peer that `scripts/test.sh` started (`var`), or `None` after reporting the
/// test as skipped (see [`skip`]).
pub(crate) fn peer_url(var: &str, require: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip(&format!("{var} is not set"), require);
            None
        }
    }
}

/// A JSON-RPC call straight to a peer (for checking what it stored).
pub(crate) async fn peer_rpc(
    url: &str,
    method: &str,
    params: Value,
    a2a_version: Option<&str>,
) -> Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": uuid::Uuid::new_v4().to_string(), "method": method, "params": params});
    let mut req = http().post(format!("{url}/")).json(&body);
    if let Some(v) = a2a_version {
        req = req.header("A2A-Version", v);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// The built-in example agent (`plangate example-agent`) on a random loopback port; it stops when
/// this is dropped.
pub(crate) struct ExampleAgent {
    pub(crate) url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ExampleAgent {
    pub(crate) async fn start(work: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        #[expect(
            clippy::disallowed_methods,
            reason = "the test owns the agent; it stops when the handle drops"
        )]
        tokio::spawn(plangate::example_agent::serve(listener, work, async {
            let _ = stopped.await;
        }));
        Self { url, _stop: stop }
    }

    /// Its catalog entry, both skills.
    pub(crate) fn agent(&self) -> Value {
        serde_json::json!({"name": "example", "endpoint": self.url, "skills": [
            {"id": "echo", "description": "Repeats the request, prefixed with `echo: `."},
            {"id": "shout", "description": "Repeats the request in upper case."}]})
    }
}

/// The Python of the client-test venv (`PLANGATE_CLIENTS_PYTHON`, set by `scripts/test.sh`), or
/// `None` after reporting the test as skipped.
/// The a2a-sdk venv's Python (installed by ../shared/peers/run-a2a-echo.sh), for the A2A door's
/// client tests.
pub(crate) fn a2a_python() -> Option<String> {
    let dir = std::env::var("PEERS_VENV_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/plangate-peers",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let python = format!("{dir}/a2a/bin/python");
    if std::path::Path::new(&python).exists() {
        Some(python)
    } else {
        skip(
            &format!("{python} (the a2a-sdk venv) is missing"),
            "PLANGATE_REQUIRE_A2A",
        );
        None
    }
}

pub(crate) fn clients_python() -> Option<String> {
    peer_url("PLANGATE_CLIENTS_PYTHON", "PLANGATE_REQUIRE_CLIENTS")
}

/// The repository root.
pub(crate) fn repo() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Waits until `peer` has received `n` sends (any dialect, polling or streaming): only then is
/// there a remote task for a cancel to reach.
pub(crate) async fn wait_for_sends(peer: &plangate_testkit::peer::FakePeer, n: usize) {
    wait_until(
        "the peer receives the send",
        Duration::from_secs(10),
        || {
            [
                "message/send",
                "SendMessage",
                "message/stream",
                "SendStreamingMessage",
            ]
            .iter()
            .map(|m| peer.count(m))
            .sum::<usize>()
                >= n
        },
    )
    .await;
}

/// Reads a streaming response until `needle` shows (15 s per chunk at most); returns what was
/// read. The caller drops the response to disconnect.
pub(crate) async fn read_until(resp: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(15), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended before {needle}: {seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

/// SSE frames with their ids (resumable streams): (id, event, data); `id` is empty without one.
/// The `plan_id` of a resumable stream's `plan` frame: what its `id:` lines and routes carry.
pub(crate) fn plan_id_of(text: &str) -> String {
    frames_with_ids(text)
        .iter()
        .find(|(_, event, _)| event == "plan")
        .and_then(|(_, _, data)| data["plan_id"].as_str())
        .expect("a plan frame")
        .to_owned()
}

pub(crate) fn frames_with_ids(text: &str) -> Vec<(String, String, Value)> {
    text.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("event: ")))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or("")
                    .to_owned()
            };
            (
                field("id: "),
                field("event: "),
                serde_json::from_str(&field("data: ")).unwrap(),
            )
        })
        .collect()
}

/// Runs `program script job` (the script relative to the repository, `job` as one JSON
/// argument) and parses its stdout as JSON; a failing run fails the test with its output.
pub(crate) async fn run_json(program: &str, script: &str, job: &Value) -> Value {
    let out = tokio::process::Command::new(program)
        .arg(repo().join(script))
        .arg(job.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One sample of the Prometheus text exposition: name and sorted labels.
pub(crate) type Series = (String, Vec<(String, String)>);

/// Parses the text exposition format: `# HELP`/`# TYPE` comments skipped, every sample kept.
pub(crate) fn parse_exposition(text: &str) -> std::collections::HashMap<Series, f64> {
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let mut labels: Vec<(String, String)> = body
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                labels.sort();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), Vec::new()),
        };
        out.insert((name, labels), value.parse::<f64>().unwrap());
    }
    out
}

pub(crate) fn sample(
    m: &std::collections::HashMap<Series, f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    m.get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
}

/// The sum of every series of `name` that has all of `labels` (whatever its other labels).
pub(crate) fn total(
    m: &std::collections::HashMap<Series, f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    m.iter()
        .filter(|((n, have), _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
        })
        .map(|(_, v)| v)
        .sum()
}

pub(crate) async fn scrape(url: &str) -> std::collections::HashMap<Series, f64> {
    let resp = http().get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse_exposition(&resp.text().await.unwrap())
}

/// Opens an MCP session on `url` with `token` (the `initialize` handshake); its id.
pub(crate) async fn mcp_session(url: &str, token: &str) -> String {
    let init = http()
        .post(format!("{url}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}
