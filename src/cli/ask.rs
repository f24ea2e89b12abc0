//! `plangate ask`: posts a question and a catalog to a running gateway and renders the plan as it
//! streams: a line per task, the answer text as it arrives, a one-line summary. `--json` prints
//! every frame as one JSON object per line instead. The stream is decoded with a real SSE decoder
//! (multi-line `data:`, CRLF, comments).
//!
//! A call that waits for a yes (`task.confirm`) is asked `[y/N]` on a terminal (or approved or
//! declined by `--approve-all` / `--decline-all`; without a terminal or a flag it is declined);
//! on a terminal the plan is interactive, and a peer's question (`task.input_required`) is asked
//! too, its answer sent back.
//!
//! Exit codes: 0 the plan ended with `final`; 1 it ended with `error`; 2 a usage error or a 4xx
//! answer; 3 the gateway could not be reached, answered 5xx, or the stream ended without `done`.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::{Value, json};

/// The plan ended with `final`.
pub const EXIT_FINAL: u8 = 0;
/// The plan ended with `error`.
pub const EXIT_ERROR: u8 = 1;
/// A usage error, or the gateway refused the request (4xx).
pub const EXIT_USAGE: u8 = 2;
/// The gateway could not be reached, answered 5xx, or the stream ended without `done`.
pub const EXIT_UNAVAILABLE: u8 = 3;

/// What to ask, and where.
#[derive(Debug, Clone)]
pub struct Ask {
    /// The gateway's base URL.
    pub gateway: String,
    pub token: Option<String>,
    /// The `/plan` `agents` array.
    pub agents: Value,
    pub question: String,
    /// The conversation to continue (`session_id`; the gateway keeps it with
    /// `GATEWAY_SESSIONS=on`).
    pub session: Option<String>,
    /// One JSON object per frame instead of the rendering.
    pub json: bool,
    /// Keep a live status line (spinner, elapsed time, running tasks) under the output: for a
    /// terminal, never for pipes or `--json`.
    pub live: bool,
    /// How a plan's questions are answered.
    pub answering: Answering,
    /// Where the plan's files are written (`--save-files DIR`).
    pub save_files: Option<std::path::PathBuf>,
}

/// How `plangate ask` answers a plan's questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answering {
    /// Asks at the terminal (`[y/N]`, or the peer's question); the plan is interactive.
    Prompt,
    /// `--approve-all`.
    ApproveAll,
    /// `--decline-all`.
    DeclineAll,
    /// It cannot ask (no terminal, no flag): every confirmation is declined.
    CannotAsk,
}

/// A usage problem: the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Builds the `agents` array from `--agent NAME=URL[:SKILL,…]` flags; an agent without skills
/// gets the skills of its agent card.
///
/// # Errors
/// A malformed flag, or a card that cannot be read for an agent without skills.
pub async fn agents_from_flags(flags: &[String], http: &reqwest::Client) -> Result<Value, Usage> {
    let mut agents = Vec::new();
    for flag in flags {
        let (name, rest) = flag.split_once('=').ok_or_else(|| {
            Usage(format!(
                "--agent {flag}: expected NAME=URL[:SKILL,…] (e.g. research=http://127.0.0.1:3773:echo,shout)"
            ))
        })?;
        let (url, skills) = match rest.rsplit_once(':') {
            // `…:echo,shout` names skills; `…:3773` is a port, `…://host` a scheme.
            Some((url, tail))
                if !tail.is_empty()
                    && !tail.contains('/')
                    && !tail.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (
                    url,
                    tail.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )
            }
            _ => (rest, Vec::new()),
        };
        if url::Url::parse(url)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            return Err(Usage(format!(
                "--agent {flag}: {url:?} is not an http(s) URL"
            )));
        }
        let skills: Vec<Value> = if skills.is_empty() {
            card_skills(http, url)
                .await
                .map_err(|e| Usage(format!("--agent {flag}: no skills given and {e}")))?
        } else {
            skills.into_iter().map(|id| json!({"id": id})).collect()
        };
        agents.push(json!({"name": name, "endpoint": url, "skills": skills}));
    }
    Ok(Value::Array(agents))
}

/// The skills an agent's card lists (`/.well-known/agent-card.json`, then `agent.json`).
async fn card_skills(http: &reqwest::Client, endpoint: &str) -> Result<Vec<Value>, String> {
    let base = url::Url::parse(endpoint).map_err(|e| e.to_string())?;
    for path in ["/.well-known/agent-card.json", "/.well-known/agent.json"] {
        let Ok(url) = base.join(path) else { continue };
        let Ok(resp) = http.get(url).header("A2A-Version", "1.0").send().await else {
            continue;
        };
        let Ok(card) = resp.json::<Value>().await else {
            continue;
        };
        let skills: Vec<Value> = card["skills"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let id = s["id"].as_str()?;
                let mut skill = json!({"id": id});
                if let Some(d) = s["description"].as_str() {
                    skill["description"] = json!(d);
                }
                Some(skill)
            })
            .collect();
        if !skills.is_empty() {
            return Ok(skills);
        }
    }
    Err(format!("the agent card at {endpoint} lists none"))
}

/// Posts the plan and renders its stream to `out` (diagnostics to `err`); returns the exit code.
pub async fn run(
    ask: &Ask,
    http: &reqwest::Client,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    run_answering(ask, http, out, err, None).await
}

/// Like [`run`], reading the answers to the plan's questions from `input` when
/// `ask.answering` is [`Answering::Prompt`].
pub async fn run_answering(
    ask: &Ask,
    http: &reqwest::Client,
    out: &mut dyn Write,
    err: &mut dyn Write,
    mut input: Option<&mut (dyn tokio::io::AsyncBufRead + Unpin + Send)>,
) -> u8 {
    let started = Instant::now();
    let mut body = json!({"question": ask.question, "agents": ask.agents});
    if let Some(session) = &ask.session {
        body["session_id"] = json!(session);
    }
    let prompting = ask.answering == Answering::Prompt && input.is_some();
    if prompting {
        body["preferences"] = json!({"interactive": true});
    }
    let mut plan_id = String::new();
    let mut request = http
        .post(format!("{}/plan", ask.gateway.trim_end_matches('/')))
        .json(&body);
    if let Some(token) = &ask.token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "plangate ask: cannot reach {}: {e}", ask.gateway);
            return EXIT_UNAVAILABLE;
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let what = body["error"].as_str().unwrap_or("error");
        let detail = body["detail"].as_str().unwrap_or("");
        let _ = writeln!(
            err,
            "plangate ask: the gateway answered {status}: {what}{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        );
        return if status.is_client_error() {
            EXIT_USAGE
        } else {
            EXIT_UNAVAILABLE
        };
    }
    let mut events = eventsource_stream::EventStream::new(response.bytes_stream());
    let mut view = Renderer::new(ask.json, started);
    view.live = ask.live && !ask.json;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = ticks.tick(), if view.live => {
                view.status_line(out);
                continue;
            }
        };
        let Some(event) = event else { break };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                let _ = writeln!(err, "plangate ask: the stream broke: {e}");
                return EXIT_UNAVAILABLE;
            }
        };
        let data: Value =
            serde_json::from_str(&event.data).unwrap_or(Value::String(event.data.clone()));
        view.clear_status_line(out);
        if let Some(code) = view.frame(&event.event, &data, out, err) {
            return code;
        }
        match event.event.as_str() {
            "plan" => data["plan_id"]
                .as_str()
                .unwrap_or_default()
                .clone_into(&mut plan_id),
            "task.artifact" => {
                if let Some(dir) = &ask.save_files {
                    save_files(ask, http, dir, &data, out, err).await;
                }
            }
            "task.confirm" | "task.input_required" => {
                let reply = match input.as_deref_mut() {
                    Some(input) if prompting => prompt_for(&event.event, &data, input, err).await,
                    _ => canned(&event.event, ask.answering),
                };
                if let Some((route, reply)) = reply {
                    send_answer(ask, http, &plan_id, &data, route, &reply, err).await;
                }
            }
            _ => {}
        }
    }
    view.clear_status_line(out);
    let _ = writeln!(err, "plangate ask: the stream ended without `done`");
    EXIT_UNAVAILABLE
}

/// Writes the files of a `task.artifact` frame into `dir` (fetched from the gateway with the
/// plan's token); a file linked to elsewhere is named, not fetched. A name taken already in `dir`
/// gets the file's id in front.
async fn save_files(
    ask: &Ask,
    http: &reqwest::Client,
    dir: &std::path::Path,
    data: &Value,
    out: &mut dyn Write,
    err: &mut dyn Write,
) {
    for file in data["files"].as_array().into_iter().flatten() {
        let name = file["name"].as_str().unwrap_or("file");
        let Some(url) = file["url"].as_str() else {
            if let Some(link) = file["source_url"].as_str() {
                let _ = writeln!(out, "  ↗ {name}: {link} (not fetched)");
            }
            continue;
        };
        // Only the last path component of the name: a file lands in `dir`, nowhere else.
        let safe = std::path::Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.starts_with('.'))
            .unwrap_or("file");
        let mut path = dir.join(safe);
        if path.exists() {
            path = dir.join(format!(
                "{}-{safe}",
                file["file_id"].as_str().unwrap_or("f")
            ));
        }
        let mut request = http.get(format!("{}{url}", ask.gateway.trim_end_matches('/')));
        if let Some(token) = &ask.token {
            request = request.bearer_auth(token);
        }
        let fetched = match request.send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.map_err(|e| e.to_string()),
            Ok(r) => Err(format!("the gateway answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        };
        let written = fetched.and_then(|bytes| {
            std::fs::write(&path, &bytes)
                .map(|()| bytes.len())
                .map_err(|e| e.to_string())
        });
        match written {
            Ok(n) => {
                let _ = writeln!(out, "  ↓ saved {} ({n} bytes)", path.display());
            }
            Err(e) => {
                let _ = writeln!(err, "plangate ask: cannot save {name}: {e}");
            }
        }
    }
}

/// The answer `answering` gives without asking: `(route, body)`, or none (a question it
/// cannot answer is left to time out).
fn canned(event: &str, answering: Answering) -> Option<(&'static str, Value)> {
    if event != "task.confirm" {
        return None;
    }
    Some((
        "confirm",
        match answering {
            Answering::ApproveAll => json!({"approve": true}),
            Answering::DeclineAll => {
                json!({"approve": false, "reason": "declined by --decline-all"})
            }
            Answering::Prompt | Answering::CannotAsk => json!({"approve": false,
                "reason": "plangate ask cannot ask here (no terminal); use --approve-all or --decline-all"}),
        },
    ))
}

/// Asks at the terminal: `[y/N]` for a confirmation, the peer's question for input. End of
/// input declines (or leaves a question unanswered).
async fn prompt_for(
    event: &str,
    data: &Value,
    input: &mut (dyn tokio::io::AsyncBufRead + Unpin + Send),
    err: &mut dyn Write,
) -> Option<(&'static str, Value)> {
    use tokio::io::AsyncBufReadExt as _;
    let agent = data["agent"].as_str().unwrap_or("");
    if event == "task.confirm" {
        let _ = write!(
            err,
            "? {agent}/{} wants to run with {} — approve? [y/N] ",
            data["skill"].as_str().unwrap_or(""),
            data["input"]
        );
    } else {
        let _ = write!(
            err,
            "? {agent} asks: {}\n> ",
            data["prompt"].as_str().unwrap_or("")
        );
    }
    let _ = err.flush();
    let mut line = String::new();
    let read = input.read_line(&mut line).await.unwrap_or(0);
    let line = line.trim();
    if event == "task.confirm" {
        let yes = matches!(line.to_ascii_lowercase().as_str(), "y" | "yes");
        return Some((
            "confirm",
            if yes {
                json!({"approve": true})
            } else {
                json!({"approve": false, "reason": "declined at the terminal"})
            },
        ));
    }
    (read > 0).then(|| ("input", json!({"text": line})))
}

/// Posts an answer to the plan's task route; a refusal is reported, and the plan goes on.
async fn send_answer(
    ask: &Ask,
    http: &reqwest::Client,
    plan_id: &str,
    data: &Value,
    route: &str,
    reply: &Value,
    err: &mut dyn Write,
) {
    let task = data["task_id"].as_str().unwrap_or("");
    let mut request = http
        .post(format!(
            "{}/plan/{plan_id}/tasks/{task}/{route}",
            ask.gateway.trim_end_matches('/')
        ))
        .json(reply);
    if let Some(token) = &ask.token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let _ = writeln!(
                err,
                "plangate ask: the answer was refused ({status}): {}",
                body["detail"].as_str().unwrap_or("")
            );
        }
        Err(e) => {
            let _ = writeln!(err, "plangate ask: cannot send the answer: {e}");
        }
    }
}

/// How often the live status line is redrawn.
const TICK: Duration = Duration::from_millis(100);
/// The spinner's frames.
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// The status line's longest width, in characters (fits an 80-column terminal).
const STATUS_WIDTH: usize = 79;
/// Erase the current terminal line and go to its start.
const ERASE_LINE: &str = "\r\x1b[2K";

/// One task's line.
struct Task {
    agent: String,
    skill: String,
    started: Instant,
}

/// Turns frames into lines.
struct Renderer {
    json: bool,
    started: Instant,
    tasks: HashMap<String, Task>,
    /// `text.delta` part ids seen: one per LLM step that wrote text.
    parts: Vec<String>,
    in_answer: bool,
    outcome: Option<u8>,
    /// Draw the status line (a terminal).
    live: bool,
    /// The status line is on screen (and must be erased before anything else is written).
    status_shown: bool,
    ticks: usize,
    /// Tasks started and not finished, in start order.
    running: Vec<String>,
}

impl Renderer {
    fn new(json: bool, started: Instant) -> Self {
        Self {
            json,
            started,
            tasks: HashMap::new(),
            parts: Vec::new(),
            in_answer: false,
            outcome: None,
            live: false,
            status_shown: false,
            ticks: 0,
            running: Vec::new(),
        }
    }

    /// Redraws the status line: spinner, elapsed time, the running tasks and how long each has
    /// run. Not while answer text is streaming (the cursor is inside the answer then).
    fn status_line(&mut self, out: &mut dyn Write) {
        if self.in_answer {
            return;
        }
        self.ticks += 1;
        let mut line = format!(
            "{ERASE_LINE}{} {:.1} s",
            SPINNER[self.ticks % SPINNER.len()],
            self.started.elapsed().as_secs_f64()
        );
        for id in &self.running {
            if let Some(task) = self.tasks.get(id) {
                line.push_str(&format!(
                    " · {}/{} {:.1} s",
                    task.agent,
                    task.skill,
                    task.started.elapsed().as_secs_f64()
                ));
            }
        }
        // A line that wraps could not be erased in place: keep it within a narrow terminal.
        if line.chars().count() > ERASE_LINE.len() + STATUS_WIDTH {
            line = line
                .chars()
                .take(ERASE_LINE.len() + STATUS_WIDTH - 1)
                .collect();
            line.push('…');
        }
        let _ = write!(out, "{line}");
        let _ = out.flush();
        self.status_shown = true;
    }

    /// Erases the status line, if shown, so the next output starts on a clean line.
    fn clear_status_line(&mut self, out: &mut dyn Write) {
        if self.status_shown {
            self.status_shown = false;
            let _ = write!(out, "{ERASE_LINE}");
        }
    }

    /// Renders one frame; `Some(code)` once the stream is over.
    fn frame(
        &mut self,
        event: &str,
        data: &Value,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Option<u8> {
        if self.json {
            let _ = writeln!(out, "{}", json!({"event": event, "data": data}));
        }
        match event {
            "final" => {
                self.outcome = Some(EXIT_FINAL);
                if !self.json {
                    self.end_answer(out);
                    let usage = &data["usage"];
                    let _ = writeln!(
                        out,
                        "— {} step{}, {} tokens in, {} out, {:.1} s",
                        self.parts.len().max(1),
                        if self.parts.len() == 1 { "" } else { "s" },
                        usage["inputTokens"].as_u64().unwrap_or(0),
                        usage["outputTokens"].as_u64().unwrap_or(0),
                        self.started.elapsed().as_secs_f64()
                    );
                }
            }
            "error" => {
                self.outcome = Some(EXIT_ERROR);
                if !self.json {
                    self.end_answer(out);
                }
                let _ = writeln!(
                    err,
                    "plangate ask: the plan failed: {} ({})",
                    data["message"].as_str().unwrap_or(""),
                    data["code"].as_str().unwrap_or("")
                );
            }
            "done" => return Some(self.outcome.unwrap_or(EXIT_UNAVAILABLE)),
            _ if self.json => {}
            "duplicate" => {
                let _ = writeln!(
                    out,
                    "(duplicate) {}",
                    data["message"].as_str().unwrap_or("")
                );
            }
            "task.started" => {
                let id = data["task_id"].as_str().unwrap_or("").to_owned();
                let task = Task {
                    agent: data["agent"].as_str().unwrap_or("").to_owned(),
                    skill: data["skill"].as_str().unwrap_or("").to_owned(),
                    started: Instant::now(),
                };
                self.end_answer(out);
                let _ = writeln!(out, "  … {}/{} working", task.agent, task.skill);
                self.running.push(id.clone());
                self.tasks.insert(id, task);
            }
            "task.confirm" => {
                let task = Task {
                    agent: data["agent"].as_str().unwrap_or("").to_owned(),
                    skill: data["skill"].as_str().unwrap_or("").to_owned(),
                    started: Instant::now(),
                };
                self.end_answer(out);
                let _ = writeln!(out, "  ? {}/{} waits for a yes", task.agent, task.skill);
                self.tasks
                    .insert(data["task_id"].as_str().unwrap_or("").to_owned(), task);
            }
            "task.input_required" => {
                self.end_answer(out);
                let _ = writeln!(
                    out,
                    "  ? {} asks: {}",
                    data["agent"].as_str().unwrap_or(""),
                    data["prompt"].as_str().unwrap_or("")
                );
            }
            "task.artifact" => {
                for file in data["files"].as_array().into_iter().flatten() {
                    let size = file["size"]
                        .as_u64()
                        .map_or_else(|| "linked".to_owned(), |n| format!("{n} bytes"));
                    let _ = writeln!(
                        out,
                        "  ▪ {} ({}, {size})",
                        file["name"].as_str().unwrap_or(""),
                        file["media_type"].as_str().unwrap_or("")
                    );
                }
            }
            "task.status" => {
                let message = data["message"]
                    .as_str()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  · {} {}{message}",
                    data["agent"].as_str().unwrap_or(""),
                    data["state"].as_str().unwrap_or("")
                );
            }
            "task.finished" => {
                let id = data["task_id"].as_str().unwrap_or("");
                self.running.retain(|r| r != id);
                let took = self
                    .tasks
                    .get(id)
                    .map_or(Duration::ZERO, |t| t.started.elapsed());
                let (agent, skill) = self
                    .tasks
                    .get(id)
                    .map_or((data["agent"].as_str().unwrap_or(""), ""), |t| {
                        (t.agent.as_str(), t.skill.as_str())
                    });
                let state = data["state"].as_str().unwrap_or("");
                let mark = if state == "completed" { "✓" } else { "✗" };
                let error = data["error"]
                    .as_str()
                    .or(data["reason"].as_str())
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {mark} {agent}/{skill} {state} in {:.1} s{error}",
                    took.as_secs_f64()
                );
            }
            "text.delta" => {
                if let Some(part) = data["part_id"].as_str()
                    && !self.parts.iter().any(|p| p == part)
                {
                    self.parts.push(part.to_owned());
                }
                if !self.in_answer {
                    self.in_answer = true;
                    let _ = writeln!(out);
                }
                let _ = write!(out, "{}", data["delta"].as_str().unwrap_or(""));
                let _ = out.flush();
            }
            _ => {}
        }
        None
    }

    fn end_answer(&mut self, out: &mut dyn Write) {
        if self.in_answer {
            self.in_answer = false;
            let _ = writeln!(out, "\n");
        }
    }
}
