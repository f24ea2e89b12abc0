//! Conversations that continue: compaction of long histories, the client's prior summary carried
//! into the summariser, concurrent plans of one session compacting independently, and
//! `referenceTaskIds` kept right across turns against the real Bindu echo agent.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;
use plangate_testkit::llm::{FakeLlm, Turn};

/// `turns` user/assistant pairs of about `tokens_each` estimated tokens per message.
fn history(turns: usize, tokens_each: usize) -> Vec<Value> {
    (0..turns)
        .flat_map(|i| {
            [
                json!({"role": "user", "parts": [{"type": "text", "text": format!("question {i} {}", "x".repeat(tokens_each * 4))}]}),
                json!({"role": "assistant", "parts": [{"type": "text", "text": format!("answer {i} {}", "y".repeat(tokens_each * 4))}]}),
            ]
        })
        .collect()
}

fn sonnet(llm_url: &str) -> plangate::config::Config {
    let mut c = llm_config(llm_url);
    c.planner.model = "openrouter/anthropic/claude-sonnet-4.6".into();
    c
}

#[tokio::test]
async fn a_long_history_is_compacted_with_the_prior_summary_carried_forward() {
    let llm = FakeLlm::start(vec![
        Turn::Completion(
            "User asked about X; agent A found Y. Facts A and B.".into(),
            Duration::ZERO,
        ),
        Turn::text("answer"),
    ])
    .await;
    let gw = TestGateway::spawn(sonnet(&llm.url)).await;
    // 10 turns × 2 messages × 7 600 tokens ≈ 152 000 tokens > 147 200 for a 200k window.
    let hist = history(10, 7_600);
    let frames = gw
        .plan(&json!({"question": "and now?", "history": hist, "prior_summary": "Facts A and B."}))
        .await;
    assert_eq!(
        events(&frames)[..3],
        ["session", "compaction-summary", "plan"]
    );
    let c = find(&frames, "compaction-summary")[0];
    assert_eq!(
        c["summary"],
        "User asked about X; agent A found Y. Facts A and B."
    );
    // L = 20, start at 16 (a user message): 16 messages summarised, 4 kept.
    assert_eq!(c["messages_compacted"], 16);
    assert!(c["tokens_before"].as_u64().unwrap() > 147_200);
    assert!(c["tokens_after"].as_u64().unwrap() < 35_000);

    let reqs = llm.requests();
    let summariser = &reqs[0];
    assert!(summariser.get("stream").is_none() && summariser.get("tools").is_none());
    assert!(summariser.get("temperature").is_none());
    assert_eq!(summariser["model"], "anthropic/claude-sonnet-4.6");
    let m = summariser["messages"].as_array().unwrap();
    assert!(
        m[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You compress the earlier part of a conversation")
    );
    assert_eq!(
        m[1]["content"],
        "[PRIOR SUMMARY — preserve every fact below in your output]\n\nFacts A and B."
    );
    assert_eq!(m.len(), 1 + 1 + 16 + 1);
    assert_eq!(
        m[m.len() - 1]["content"],
        "Write the updated summary now. Keep every fact from the prior summary."
    );

    let main = reqs[1]["messages"].as_array().unwrap();
    assert_eq!(
        main[1],
        json!({"role": "user", "content": [{"type": "text", "text": "[Prior session context, compacted]\n\nUser asked about X; agent A found Y. Facts A and B."}]})
    );
    // The tail (last four history messages) follows verbatim, then the question.
    assert!(
        main[2]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("question 8 ")
    );
    assert!(
        main[5]["content"]
            .as_str()
            .unwrap()
            .starts_with("answer 9 ")
    );
    assert_eq!(main[6], json!({"role": "user", "content": "and now?"}));
    assert_eq!(main.len(), 7);
    gw.stop().await;
}

#[tokio::test]
async fn below_the_threshold_nothing_is_compacted() {
    let llm = FakeLlm::start(vec![Turn::text("answer")]).await;
    let gw = TestGateway::spawn(sonnet(&llm.url)).await;
    // ≈ 100 000 tokens: under 147 200 for a 200k model.
    let frames = gw
        .plan(&json!({"question": "q", "history": history(10, 5_000)}))
        .await;
    assert!(find(&frames, "compaction-summary").is_empty());
    assert_eq!(llm.requests().len(), 1, "no summariser call");
    assert_eq!(llm.requests()[0]["messages"].as_array().unwrap().len(), 22);
    gw.stop().await;

    // The same history does compact for a 128k model (threshold 89 600).
    let llm = FakeLlm::start(vec![
        Turn::Completion("s".into(), Duration::ZERO),
        Turn::text("answer"),
    ])
    .await;
    let mut c = llm_config(&llm.url);
    c.planner.model = "openai/gpt-4o".into();
    let gw = TestGateway::spawn(c).await;
    let frames = gw
        .plan(&json!({"question": "q", "history": history(10, 5_000)}))
        .await;
    assert_eq!(find(&frames, "compaction-summary").len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn a_failed_summary_is_swallowed_and_the_plan_continues_on_the_full_history() {
    let llm = FakeLlm::start(vec![
        Turn::Status(500, "{}".into()),
        Turn::Status(500, "{}".into()),
        Turn::Status(500, "{}".into()),
        Turn::text("answer"),
    ])
    .await;
    let gw = TestGateway::spawn(sonnet(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "q", "history": history(10, 7_600)}))
        .await;
    assert!(find(&frames, "compaction-summary").is_empty());
    assert_eq!(answer(&frames), "answer");
    let main = llm.requests().last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(main, 22, "system + 20 history messages + question");
    gw.stop().await;
}

#[tokio::test]
async fn plans_sharing_a_session_id_compact_independently_and_concurrently() {
    let delay = Duration::from_millis(1000);
    let llm = FakeLlm::start(vec![
        Turn::Completion("summary".into(), delay),
        Turn::Completion("summary".into(), delay),
        Turn::text("one"),
        Turn::text("two"),
    ])
    .await;
    let gw = TestGateway::spawn(sonnet(&llm.url)).await;
    let body =
        |q: &str| json!({"question": q, "session_id": "shared", "history": history(10, 7_600)});
    let (first, second) = (body("first"), body("second"));
    let (a, b) = tokio::join!(gw.plan(&first), gw.plan(&second));
    assert_eq!(find(&a, "compaction-summary").len(), 1);
    assert_eq!(find(&b, "compaction-summary").len(), 1);
    assert_ne!(a[0].data["session_id"], b[0].data["session_id"]);
    let arrivals = llm.arrivals();
    let gap = arrivals[1].duration_since(arrivals[0]);
    assert!(
        gap < delay / 2,
        "the second summariser call did not wait for the first ({gap:?})"
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_client_loop_keeps_reference_task_ids_right_across_three_turns_with_bindu() {
    let Some(url) = peer_url("PLANGATE_BINDU_URL", "PLANGATE_REQUIRE_PEERS") else {
        return;
    };
    let gw = TestGateway::spawn(config()).await;
    let mut prior_task_ids = serde_json::Map::new();
    let mut history: Vec<Value> = Vec::new();
    let mut seen_ids = Vec::new();
    for turn in 0..3 {
        let question = format!("turn {turn}");
        let body = json!({"question": question, "history": history, "prior_task_ids": prior_task_ids,
            "agents": [{"name": "bindu", "endpoint": url, "protocol": "0.3", "skills": [{"id": "echo"}]}]});
        let frames = gw.plan(&body).await;
        let finished = find(&frames, "task.finished")[0].clone();
        assert_eq!(finished["state"], "completed");
        let remote = finished["remote_task_id"].as_str().unwrap().to_owned();
        assert!(
            !seen_ids.contains(&remote),
            "every turn creates a new remote task"
        );
        // What Bindu stored for this task: the message carried the previous turn's task id.
        let got = http()
            .post(format!("{url}/"))
            .json(&json!({"jsonrpc": "2.0", "id": uuid::Uuid::new_v4().to_string(), "method": "tasks/get", "params": {"taskId": remote}}))
            .send().await.unwrap().json::<Value>().await.unwrap();
        let user_msg = got["result"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "user")
            .unwrap()
            .clone();
        let refs = user_msg
            .get("reference_task_ids")
            .or(user_msg.get("referenceTaskIds"))
            .cloned()
            .unwrap_or(Value::Null);
        match seen_ids.last() {
            Some(prev) => assert_eq!(refs, json!([prev]), "turn {turn}"),
            None => assert!(
                refs.is_null() || refs == json!([]),
                "turn 0 has no reference: {refs}"
            ),
        }
        seen_ids.push(remote.clone());
        prior_task_ids.insert("bindu".into(), json!(remote));
        history.push(json!({"role": "user", "parts": [{"type": "text", "text": question}]}));
        history.push(
            json!({"role": "assistant", "parts": [{"type": "text", "text": answer(&frames)}]}),
        );
    }
    gw.stop().await;
}
