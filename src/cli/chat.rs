//! `plangate chat`: a conversation on a terminal. Each line read is one plan of the same
//! `session_id`, rendered as `plangate ask` renders it; end of input (Ctrl-D) ends the chat. The
//! gateway keeps the conversation when it has sessions on (`GATEWAY_SESSIONS=on`, which
//! `/health`'s `runtime.capabilities.sessions` says); without them every line starts afresh, and the chat
//! says so once.

use std::io::Write;

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

use super::ask::{self, Ask, EXIT_FINAL, EXIT_UNAVAILABLE};

/// The prompt before each line, on a terminal.
const PROMPT: &str = "you> ";

/// Whether the gateway keeps conversations (`None`: it could not be asked).
async fn keeps_sessions(http: &reqwest::Client, template: &Ask) -> Option<bool> {
    let health: Value = http
        .get(format!("{}/health", template.gateway.trim_end_matches('/')))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        health["runtime"]["capabilities"]["sessions"]
            .as_bool()
            .unwrap_or(false),
    )
}

/// Runs the conversation `template.session` (a fresh id when `None`): one plan per non-empty line
/// of `input`, a prompt before each when `prompt`. Returns 0 at the end of input, 3 when the
/// gateway cannot be reached.
pub async fn run(
    template: &Ask,
    http: &reqwest::Client,
    input: &mut (dyn AsyncBufRead + Unpin + Send),
    prompt: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let session = template
        .session
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    match keeps_sessions(http, template).await {
        None => {
            let _ = writeln!(
                err,
                "plangate chat: cannot reach {} (GET /health failed)",
                template.gateway
            );
            return EXIT_UNAVAILABLE;
        }
        Some(false) => {
            let _ = writeln!(
                err,
                "plangate chat: this gateway keeps no conversations (GATEWAY_SESSIONS is off): each line starts afresh"
            );
        }
        Some(true) => {}
    }
    if prompt {
        let _ = writeln!(
            out,
            "session {session} — one question per line, Ctrl-D ends"
        );
    }
    let mut turn = Ask {
        session: Some(session),
        ..template.clone()
    };
    let mut line = String::new();
    loop {
        if prompt {
            let _ = write!(out, "{PROMPT}");
            let _ = out.flush();
        }
        line.clear();
        match input.read_line(&mut line).await {
            Ok(0) | Err(_) => {
                if prompt {
                    let _ = writeln!(out);
                }
                return EXIT_FINAL;
            }
            Ok(_) => {}
        }
        let question = line.trim();
        if question.is_empty() {
            continue;
        }
        question.clone_into(&mut turn.question);
        let code = ask::run_answering(&turn, http, out, err, Some(&mut *input)).await;
        let _ = writeln!(out);
        if code == EXIT_UNAVAILABLE {
            return code;
        }
    }
}
