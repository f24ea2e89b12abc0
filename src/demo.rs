//! `plangate demo`: the gateway's main job in one self-contained command. Starts the built-in
//! example agent and the gateway on loopback, streams one plan through them to the terminal and
//! stops. Fan-out mode without an LLM key; the LLM planner when one is configured.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::boot;
use crate::config::{AuthMode, Config};

/// Runs the demo, writing the SSE frames and the assembled answer to `out`.
///
/// # Errors
/// A configuration, bind or HTTP failure, as text.
pub async fn run(
    env: &HashMap<String, String>,
    question: &str,
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
        let body = json!({
            "question": question,
            "agents": [{"name": "example", "endpoint": agent_url, "skills": [
                {"id": "echo", "description": "Repeats the request, prefixed with `echo: `."},
                {"id": "shout", "description": "Repeats the request in upper case."}]}]
        });
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| e.to_string())?;
        let response = http
            .post(format!("{gateway_url}/plan"))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let mut buffer = String::new();
        let mut bytes = response.bytes_stream();
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = out.write_all(&chunk);
            let _ = out.flush();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if frame.starts_with("event: text.delta")
                    && let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: "))
                    && let Ok(v) = serde_json::from_str::<Value>(data)
                {
                    answer.push_str(v["delta"].as_str().unwrap_or(""));
                }
            }
        }
        let _ = writeln!(out, "# answer\n{answer}");
        let _ = stop_gateway.send(());
        let _ = stop_agent.send(());
        Ok::<(), String>(())
    };
    let (result, gateway_result, agent_result) = tokio::join!(client, gateway, agent);
    result?;
    gateway_result.map_err(|e| e.to_string())?;
    agent_result.map_err(|e| e.to_string())
}
