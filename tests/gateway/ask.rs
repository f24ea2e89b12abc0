//! `plangate ask` (the real binary) against live gateways: the rendering, `--json`, and every exit
//! code.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::Value;

use crate::support::*;

async fn ask(args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .arg("ask")
        .args(args)
        .env_clear()
        .env("RUST_LOG", "error")
        .output();
    tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn ask_renders_tasks_the_answer_and_a_summary() {
    let peer = FakePeer::start(Script::Complete { working_polls: 1 }).await;
    let gw = TestGateway::spawn(config()).await;
    let agent = format!("research={}:s", peer.url);
    let out = ask(&["--gateway", &gw.url, "--agent", &agent, "what is new?"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("research/s working"), "{stdout}");
    assert!(stdout.contains("✓ research/s completed in "), "{stdout}");
    assert!(stdout.contains("[[research:s]]"), "{stdout}");
    assert!(stdout.contains("echo: what is new?"), "{stdout}");
    assert!(stdout.lines().last().unwrap().starts_with("— "), "{stdout}");
    // Not a terminal: no status line, no escape sequences.
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    gw.stop().await;
}

#[tokio::test]
async fn ask_in_a_terminal_keeps_a_live_status_line_with_the_running_tasks() {
    // `script` runs the command on a pseudo-terminal (util-linux, on every Debian).
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            "util-linux `script` is not installed",
            "PLANGATE_REQUIRE_CLIENTS",
        );
        return;
    }
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(800))).await;
    let gw = TestGateway::spawn(config()).await;
    let command = format!(
        "{} ask --gateway {} --agent slow={}:s 'take a while'",
        env!("CARGO_BIN_EXE_plangate"),
        gw.url,
        peer.url
    );
    let out = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    let screen = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen:?}");
    // Redrawn in place: erase the line, spinner, elapsed time, the running task and its time.
    let status_lines: Vec<&str> = screen
        .split("\r\x1b[2K")
        .filter(|l| l.contains(" · slow/s "))
        .collect();
    assert!(status_lines.len() >= 3, "{screen:?}");
    assert!(
        status_lines
            .iter()
            .all(|l| l.trim_end().ends_with(" s") && !l.contains('\n')),
        "{screen:?}"
    );
    // The status line is erased before the task's result and the summary.
    assert!(
        screen.contains("\r\x1b[2K  ✓ slow/s completed in "),
        "{screen:?}"
    );
    let last = screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert!(last.starts_with("— "), "{screen:?}");
    gw.stop().await;
}

#[tokio::test]
async fn ask_json_prints_one_parsable_frame_per_line() {
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let gw = TestGateway::spawn(config()).await;
    let agents =
        std::env::temp_dir().join(format!("plangate-agents-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &agents,
        serde_json::to_vec(&serde_json::json!([peer.agent("p", "s")])).unwrap(),
    )
    .unwrap();
    let out = ask(&[
        "--gateway",
        &gw.url,
        "--agents",
        agents.to_str().unwrap(),
        "--json",
        "q",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let frames: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = frames
        .iter()
        .map(|f| f["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"session"));
    assert_eq!(events.last(), Some(&"done"));
    assert!(events.contains(&"final"));
    let finished = frames
        .iter()
        .find(|f| f["event"] == "task.finished")
        .unwrap();
    assert_eq!(finished["data"]["state"], "completed");
    gw.stop().await;
}

#[tokio::test]
async fn ask_exit_codes_follow_how_the_plan_ended() {
    // 1: the plan ended with `error` (the LLM refused).
    let llm = FakeLlm::start(vec![Turn::Status(
        400,
        r#"{"error":{"message":"no such model"}}"#.into(),
    )])
    .await;
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let agent = format!("p={}:s", peer.url);
    let out = ask(&["--gateway", &gw.url, "--agent", &agent, "q"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("no such model"),
        "{}",
        text(&out.stderr)
    );
    gw.stop().await;

    // 2: a 4xx answer (no token), with the gateway's error printed.
    let mut c = config();
    c.auth.mode = plangate::config::AuthMode::Bearer;
    c.auth.tokens = vec!["s3cret".to_owned().into()];
    let gw = TestGateway::spawn(c).await;
    let out = ask(&["--gateway", &gw.url, "--agent", &agent, "q"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unauthorized"));
    // …and with the token it runs.
    let out = ask(&[
        "--gateway",
        &gw.url,
        "--token",
        "s3cret",
        "--agent",
        &agent,
        "q",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    gw.stop().await;

    // 2: a usage error names the flag.
    let out = ask(&["--agent", "no-url-here", "q"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--agent no-url-here"));

    // 3: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = ask(&[
        "--gateway",
        &format!("http://127.0.0.1:{closed}"),
        "--agent",
        &agent,
        "q",
    ])
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("cannot reach"));

    // 3: the stream stops before `done`.
    let cut = plangate_testkit::serve(Router::new().route(
        "/plan",
        post(|| async {
            (
                [("content-type", "text/event-stream")],
                "event: session\r\ndata: {\"session_id\":\"s\",\r\ndata: \"external_session_id\":null,\"created\":true}\r\n\r\n: a comment\r\n\r\n",
            )
        }),
    ))
    .await;
    let out = ask(&["--gateway", &cut, "--agent", &agent, "--json", "q"]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("without `done`"));
    // The multi-line, CRLF frame was decoded as one JSON payload.
    let first: Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["data"]["session_id"], "s");
}

#[tokio::test]
async fn demo_runs_the_same_renderer_against_the_example_agent() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .args(["demo", "--question", "hello demo"])
        .env_clear()
        .env("RUST_LOG", "error")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("✓ example/echo completed"), "{stdout}");
    assert!(stdout.contains("echo: hello demo"), "{stdout}");
    assert!(stdout.contains("HELLO DEMO"), "{stdout}");
    assert!(!stdout.contains("event: "), "no raw frames: {stdout}");
}

#[tokio::test]
async fn demo_shows_only_the_plan_without_the_embedded_gateways_info_lines() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .args(["demo", "--question", "quiet please"])
        .env_clear()
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("echo: quiet please"), "{stdout}");
    for info in ["plan finished", "shutdown requested", "INFO"] {
        assert!(!stderr.contains(info), "{info}: {stderr}");
        assert!(!stdout.contains(info), "{info}: {stdout}");
    }
}

#[tokio::test]
async fn chat_on_a_terminal_holds_one_conversation_over_two_lines() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            "util-linux `script` is not installed",
            "PLANGATE_REQUIRE_CLIENTS",
        );
        return;
    }
    let llm = FakeLlm::start(vec![
        Turn::text("Paris is the capital."),
        Turn::text("About two million people."),
    ])
    .await;
    let mut config = llm_config(&llm.url);
    config.sessions.enabled = true;
    let gw = TestGateway::spawn(config).await;
    let agents =
        std::env::temp_dir().join(format!("plangate-agents-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&agents, "[]").unwrap();
    let command = format!(
        "{} chat --gateway {} --agents {} --session trip",
        env!("CARGO_BIN_EXE_plangate"),
        gw.url,
        agents.display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Typed one after the other, as a person would: the second line after the first answer.
    let mut screen = String::new();
    let mut read_until = async |needle: &str, screen: &mut String| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        while !screen.contains(needle) {
            let n = tokio::time::timeout_at(
                deadline,
                tokio::io::AsyncReadExt::read(&mut stdout, &mut buf),
            )
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {screen:?}"))
            .unwrap();
            assert!(n > 0, "chat ended early: {screen:?}");
            screen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    use tokio::io::AsyncWriteExt as _;
    read_until("you> ", &mut screen).await;
    stdin
        .write_all(b"What is the capital of France?\n")
        .await
        .unwrap();
    read_until("Paris is the capital.", &mut screen).await;
    read_until("you> ", &mut screen).await;
    stdin
        .write_all(b"How many people live there?\n")
        .await
        .unwrap();
    read_until("About two million people.", &mut screen).await;
    // Ctrl-D ends the chat.
    stdin.write_all(b"\x04").await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{screen:?}");
    assert!(screen.contains("session trip"), "{screen:?}");
    // The second line reached the LLM with the first turn, kept by the gateway.
    let second = &llm.requests()[1];
    let texts: Vec<String> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match &m["content"] {
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            other => other.as_str().unwrap_or("").to_owned(),
        })
        .collect();
    assert_eq!(
        texts[texts.len() - 3..],
        [
            "What is the capital of France?",
            "Paris is the capital.",
            "How many people live there?"
        ]
    );
    let _ = std::fs::remove_file(agents);
    gw.stop().await;
}

/// An `--agents` file with one agent whose skill waits for a yes.
fn confirm_agents(peer: &FakePeer) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("plangate-agents-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        serde_json::json!([{"name": "pay", "endpoint": peer.url,
            "skills": [{"id": "charge", "description": "Charges a card", "confirm": true}]}])
        .to_string(),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn ask_without_a_terminal_declines_unless_a_flag_says_otherwise() {
    let peer = FakePeer::start(Script::Instant).await;
    let gw = TestGateway::spawn(config()).await;
    let agents = confirm_agents(&peer);
    let agents = agents.to_str().unwrap();
    let out = ask(&["--gateway", &gw.url, "--agents", agents, "pay 10"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("? pay/charge waits for a yes"), "{stdout}");
    assert!(stdout.contains("✗ pay/charge rejected"), "{stdout}");
    assert!(stdout.contains("no terminal"), "{stdout}");
    assert!(peer.requests().is_empty());
    let out = ask(&[
        "--gateway",
        &gw.url,
        "--agents",
        agents,
        "--approve-all",
        "pay 20",
    ])
    .await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("✓ pay/charge completed"), "{stdout}");
    assert_eq!(peer.requests().len(), 1);
    let out = ask(&[
        "--gateway",
        &gw.url,
        "--agents",
        agents,
        "--decline-all",
        "pay 30",
    ])
    .await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("rejected") && stdout.contains("--decline-all"),
        "{stdout}"
    );
    assert_eq!(peer.requests().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn ask_on_a_terminal_asks_y_n_and_a_yes_runs_the_call() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            "util-linux `script` is not installed",
            "PLANGATE_REQUIRE_CLIENTS",
        );
        return;
    }
    let peer = FakePeer::start(Script::Instant).await;
    let gw = TestGateway::spawn(config()).await;
    let agents = confirm_agents(&peer);
    let command = format!(
        "{} ask --gateway {} --agents {} 'pay 10'",
        env!("CARGO_BIN_EXE_plangate"),
        gw.url,
        agents.display()
    );
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut screen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !screen.contains("[y/N]") {
        let n = tokio::time::timeout_at(
            deadline,
            tokio::io::AsyncReadExt::read(&mut stdout, &mut buf),
        )
        .await
        .unwrap_or_else(|_| panic!("no prompt in {screen:?}"))
        .unwrap();
        assert!(n > 0, "ask ended before asking: {screen:?}");
        screen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        screen.contains("pay/charge wants to run with"),
        "{screen:?}"
    );
    assert!(
        peer.requests().is_empty(),
        "nothing is called before the yes"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stdin, b"y\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut rest),
    )
    .await
    .unwrap()
    .unwrap();
    screen.push_str(&String::from_utf8_lossy(&rest));
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "{screen:?}");
    assert!(screen.contains("✓ pay/charge completed"), "{screen:?}");
    assert_eq!(peer.requests().len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn ask_save_files_writes_the_agents_files_into_the_folder() {
    use base64::Engine as _;
    let png = std::fs::read(repo().join("fixtures/files/chart.png")).unwrap();
    let peer = FakePeer::start(Script::Artifact(serde_json::json!([
        {"kind": "text", "text": "a chart"},
        {"kind": "file", "file": {"name": "chart.png", "mimeType": "image/png",
            "bytes": base64::engine::general_purpose::STANDARD.encode(&png)}},
        {"kind": "file", "file": {"name": "../../escape.txt", "mimeType": "text/plain", "bytes": "aGk="}},
        {"kind": "file", "file": {"name": "far.pdf", "mimeType": "application/pdf", "uri": "https://files.example/far.pdf"}}
    ])))
    .await;
    let gw = TestGateway::spawn(config()).await;
    let dir = std::env::temp_dir().join(format!("plangate-save-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir(&dir).unwrap();
    let agent = format!("charts={}:draw", peer.url);
    let out = ask(&[
        "--gateway",
        &gw.url,
        "--agent",
        &agent,
        "--save-files",
        dir.to_str().unwrap(),
        "draw",
    ])
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("▪ chart.png (image/png, "), "{stdout}");
    assert!(stdout.contains("↓ saved "), "{stdout}");
    assert!(
        stdout.contains("far.pdf: https://files.example/far.pdf (not fetched)"),
        "{stdout}"
    );
    assert_eq!(std::fs::read(dir.join("chart.png")).unwrap(), png);
    // The gateway names it `..escape.txt`; it lands in the folder whatever its name says.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!dir.parent().unwrap().join("escape.txt").exists());
    // A folder that is not there is a usage error.
    let out = ask(&[
        "--gateway",
        &gw.url,
        "--agent",
        &agent,
        "--save-files",
        "/nonexistent/plangate",
        "draw",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--save-files"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    gw.stop().await;
}
