//! `plangate demo`: the gateway's main job in one self-contained command. Starts the built-in
//! example agent and the gateway on loopback, asks one question through them with the renderer of
//! `plangate ask`, and stops. Fan-out mode without an LLM key; the LLM planner when one is configured.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;

use crate::boot;
use crate::config::{AuthMode, Config};

/// Runs the demo, rendering the plan to `out` (`live`: with a status line, for a terminal).
///
/// # Errors
/// A configuration, bind or HTTP failure, as text.
pub async fn run(
    env: &HashMap<String, String>,
    question: &str,
    live: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), String> {
    let agent_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let agent_url = format!(
        "http://{}",
        agent_listener.local_addr().map_err(|e| e.to_string())?
    );
    let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = crate::example_agent::serve(agent_listener, Duration::from_millis(30), async {
        let _ = agent_stopped.await;
    });

    let mut config = Config::load(env, None).map_err(|e| e.to_string())?;
    config.server.hostname = "127.0.0.1".to_owned();
    config.server.port = 0;
    config.auth.mode = AuthMode::None;
    let mode = if config.is_llm_mode() {
        "LLM planner"
    } else {
        "fan-out (no LLM key configured)"
    };
    let state = boot::build(config).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let gateway_url = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let (stop_gateway, gateway_stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway = crate::serve_on(listener, state, async {
        let _ = gateway_stopped.await;
    });

    let client = async {
        let _ = writeln!(
            out,
            "# example agent: {agent_url}\n# gateway:       {gateway_url} ({mode})\n# question:      {question}\n"
        );
        let ask = crate::cli::ask::Ask {
            gateway: gateway_url.clone(),
            token: None,
            agents: json!([{"name": "example", "endpoint": agent_url, "skills": [
                {"id": "echo", "description": "Repeats the request, prefixed with `echo: `."},
                {"id": "shout", "description": "Repeats the request in upper case."}]}]),
            question: question.to_owned(),
            session: None,
            json: false,
            live,
            answering: crate::cli::ask::Answering::CannotAsk,
            save_files: None,
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| e.to_string())?;
        let mut diagnostics = Vec::new();
        let code = crate::cli::ask::run(&ask, &http, out, &mut diagnostics).await;
        let _ = stop_gateway.send(());
        let _ = stop_agent.send(());
        if code == crate::cli::ask::EXIT_FINAL {
            Ok::<(), String>(())
        } else {
            Err(String::from_utf8_lossy(&diagnostics).trim().to_owned())
        }
    };
    let (result, gateway_result, agent_result) = tokio::join!(client, gateway, agent);
    result?;
    gateway_result.map_err(|e| e.to_string())?;
    agent_result.map_err(|e| e.to_string())
}
