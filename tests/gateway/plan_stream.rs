//! Happy paths: fan-out, one tool call, parallel calls, the closing step, schemas and ordering.

use serde_json::{Value, json};

use crate::support::*;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};

#[tokio::test]
async fn fanout_calls_every_skill_and_answers_in_catalog_order() {
    let a = FakePeer::start(Script::Complete { working_polls: 1 }).await;
    let b = FakePeer::start(Script::Message).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = gw
        .plan(&json!({"question": "hi", "session_id": "ext-1",
            "agents": [a.agent("alpha", "echo"), b.agent("beta", "chat")]}))
        .await;
    assert_frames_match_schemas(&frames);
    assert_call_ordering(&frames);
    let session = &frames[0].data;
    assert_eq!(session["external_session_id"], "ext-1");
    assert_eq!(session["created"], true);
    assert_eq!(frames[1].event, "plan");
    let started = find(&frames, "task.started");
    assert_eq!(started.len(), 2);
    assert_eq!(started[0]["agent"], "alpha");
    assert_eq!(started[0]["input"], json!({"input": "hi"}));
    assert_eq!(
        answer(&frames),
        "[[alpha:echo]]\necho: hi\n\n[[beta:chat]]\nreply: hi"
    );
    let finished = find(&frames, "task.finished");
    let alpha = finished.iter().find(|f| f["agent"] == "alpha").unwrap();
    assert_eq!(alpha["state"], "completed");
    assert_eq!(alpha["remote_state"], "completed");
    assert!(alpha["remote_task_id"].is_string());
    let beta = finished.iter().find(|f| f["agent"] == "beta").unwrap();
    assert_eq!(beta["remote_state"], "completed");
    assert!(
        beta.get("remote_task_id").is_none(),
        "a Message result has no task id"
    );
    let fin = find(&frames, "final")[0];
    assert_eq!(fin["stop_reason"], "stop");
    assert_eq!(fin["usage"]["totalTokens"], 0);
    // The session id is the plan's own, shared as contextId with the peer.
    let sent = &a.requests()[0].body;
    assert_eq!(
        sent["params"]["message"]["contextId"],
        session["session_id"]
    );
    assert_eq!(sent["params"]["message"]["metadata"]["skillId"], "echo");
    assert_eq!(sent["params"]["configuration"]["blocking"], false);
    assert_eq!(
        a.requests()[1].body["params"],
        json!({"taskId": sent["params"]["message"]["taskId"], "id": sent["params"]["message"]["taskId"]})
    );
    gw.stop().await;
}

#[tokio::test]
async fn fanout_without_skills_says_there_was_nothing_to_ask() {
    let gw = TestGateway::spawn(config()).await;
    let frames = gw.plan(&json!({"question": "hi"})).await;
    assert_eq!(
        events(&frames),
        ["session", "plan", "text.delta", "final", "done"]
    );
    assert_eq!(
        answer(&frames),
        "No agent skills were provided, so there was nothing to ask."
    );
    gw.stop().await;
}

#[tokio::test]
async fn llm_calls_a_peer_then_answers_with_its_result() {
    let peer = FakePeer::start(Script::Complete { working_polls: 2 }).await;
    let llm = FakeLlm::start(vec![
        Turn::Tools(
            "Let me ask.".into(),
            vec![(
                "call_1".into(),
                "call_research_search".into(),
                r#"{"input":"what is A2A?"}"#.into(),
            )],
        ),
        Turn::text("A2A is a protocol [[research:search]]."),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "what is A2A?", "agents": [peer.agent("research", "search")]}))
        .await;
    assert_frames_match_schemas(&frames);
    assert_call_ordering(&frames);
    assert_eq!(
        events(&frames),
        [
            "session",
            "plan",
            "text.delta",
            "text.delta",
            "text.delta",
            "task.started",
            "task.artifact",
            "task.finished",
            "text.delta",
            "text.delta",
            "text.delta",
            "final",
            "done"
        ]
    );
    let started = find(&frames, "task.started")[0];
    assert_eq!(started["task_id"], "call_1");
    assert_eq!(started["agent"], "research");
    assert_eq!(started["skill"], "search");
    assert_eq!(started["input"], json!({"input": "what is A2A?"}));
    let artifact = find(&frames, "task.artifact")[0];
    assert_eq!(
        artifact["content"],
        "<remote_content agent=\"research\" verified=\"unknown\">\necho: what is A2A?\n</remote_content>"
    );
    assert_eq!(artifact["signatures"], Value::Null);
    assert_eq!(
        answer(&frames),
        "Let me ask.A2A is a protocol [[research:search]]."
    );
    // Each step with text has its own part id.
    let parts: std::collections::BTreeSet<_> = find(&frames, "text.delta")
        .iter()
        .map(|d| d["part_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(parts.len(), 2);
    let fin = find(&frames, "final")[0];
    assert_eq!(fin["stop_reason"], "stop");
    assert_eq!(
        fin["usage"],
        json!({"inputTokens": 20, "outputTokens": 10, "totalTokens": 30, "cachedInputTokens": 4})
    );

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(llm.remaining(), 0);
    assert_eq!(llm.authorization(0).as_deref(), Some("Bearer test-key"));
    let first = &reqs[0];
    assert_eq!(first["model"], "test-model");
    assert_eq!(first["stream"], true);
    assert_eq!(first["stream_options"], json!({"include_usage": true}));
    assert_eq!(first["temperature"], 0.3);
    assert!(first.get("cache_control").is_none());
    assert_eq!(first["messages"][0]["role"], "system");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You are the planner of plangate")
    );
    assert_eq!(
        first["messages"][1],
        json!({"role": "user", "content": "what is A2A?"})
    );
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["call_research_search", "load_recipe"]);
    let second = &reqs[1]["messages"];
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["content"], "Let me ask.");
    assert_eq!(
        second[2]["tool_calls"][0],
        json!({"id": "call_1", "type": "function", "function": {"name": "call_research_search", "arguments": "{\"input\":\"what is A2A?\"}"}})
    );
    assert_eq!(
        second[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": artifact["content"]})
    );
    assert!(reqs[1].get("tool_choice").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn parallel_calls_start_in_emission_order_and_tool_results_keep_it() {
    let slow = FakePeer::start(Script::Complete { working_polls: 3 }).await;
    let fast = FakePeer::start(Script::Message).await;
    let llm = FakeLlm::start(vec![
        Turn::calls(&[
            ("c_slow", "call_slow_s", json!({"input": "one"})),
            ("c_fast", "call_fast_s", json!({"input": "two"})),
        ]),
        Turn::text("done"),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(
            &json!({"question": "q", "agents": [slow.agent("slow", "s"), fast.agent("fast", "s")]}),
        )
        .await;
    assert_call_ordering(&frames);
    let started: Vec<_> = find(&frames, "task.started")
        .iter()
        .map(|s| s["task_id"].clone())
        .collect();
    assert_eq!(started, [json!("c_slow"), json!("c_fast")]);
    // Completion order: the fast one finishes first.
    let finished: Vec<_> = find(&frames, "task.finished")
        .iter()
        .map(|s| s["task_id"].clone())
        .collect();
    assert_eq!(finished, [json!("c_fast"), json!("c_slow")]);
    let msgs = &llm.requests()[1]["messages"];
    assert_eq!(msgs[3]["tool_call_id"], "c_slow");
    assert_eq!(msgs[4]["tool_call_id"], "c_fast");
    gw.stop().await;
}

#[tokio::test]
async fn closing_step_disables_tools_and_ignores_late_tool_calls() {
    let peer = FakePeer::start(Script::Message).await;
    let llm = FakeLlm::start(vec![
        Turn::call("c1", "call_a_s", json!({"input": "x"})),
        Turn::call("c2", "call_a_s", json!({"input": "y"})),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [peer.agent("a", "s")], "preferences": {"max_steps": 2}}))
        .await;
    assert_eq!(
        find(&frames, "task.started").len(),
        1,
        "closing-step tool calls are not executed"
    );
    assert_eq!(peer.count("message/send"), 1);
    assert_eq!(find(&frames, "final")[0]["stop_reason"], "tool-calls");
    let reqs = llm.requests();
    assert_eq!(reqs[1]["tool_choice"], "none");
    assert!(
        reqs[1]["tools"].as_array().unwrap().len() == 2,
        "tool definitions stay"
    );
    let system = reqs[1]["messages"][0]["content"].as_str().unwrap();
    assert!(system.ends_with("\n\nMAXIMUM STEPS REACHED — TOOLS ARE DISABLED\nThis is the last step of the plan: you cannot call tools any more. Reply in plain text only.\nSay that the step budget is used up, summarise which agents you called and what each returned, list what is still open, and suggest the user's next action."));
    assert!(
        !reqs[0]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("MAXIMUM STEPS")
    );
    gw.stop().await;
}

#[tokio::test]
async fn one_step_plan_still_runs_its_tool_calls() {
    let peer = FakePeer::start(Script::Message).await;
    let llm = FakeLlm::start(vec![Turn::call("c1", "call_a_s", json!({"input": "x"}))]).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [peer.agent("a", "s")], "preferences": {"max_steps": 1}}))
        .await;
    assert_eq!(find(&frames, "task.finished").len(), 1);
    assert_eq!(find(&frames, "final")[0]["stop_reason"], "tool-calls");
    assert_eq!(llm.requests().len(), 1);
    assert!(llm.requests()[0].get("tool_choice").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn doom_loop_guard_stops_the_third_identical_call() {
    let peer = FakePeer::start(Script::Message).await;
    let same = || Turn::call("c", "call_a_s", json!({"input": "same"}));
    let llm = FakeLlm::start(vec![
        same(),
        Turn::Tools(
            String::new(),
            vec![(
                "c2".into(),
                "call_a_s".into(),
                r#"{ "input" : "same" }"#.into(),
            )],
        ),
        same(),
        Turn::text("giving up"),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "q", "agents": [peer.agent("a", "s")]}))
        .await;
    assert_call_ordering(&frames);
    assert_eq!(
        peer.count("message/send"),
        2,
        "the third identical call never reaches the peer"
    );
    let third = find(&frames, "task.artifact")[2];
    assert!(third["content"].as_str().unwrap().starts_with("[gateway:doom-loop] You have called the tool `call_a_s` with identical input 3 times in a row."));
    assert!(third.get("signatures").is_none());
    assert_eq!(find(&frames, "task.finished")[2]["state"], "completed");
    gw.stop().await;
}

#[tokio::test]
async fn object_schema_skills_get_json_input_and_invalid_arguments_fail_locally() {
    let peer = FakePeer::start(Script::Message).await;
    let llm = FakeLlm::start(vec![
        Turn::Tools(
            String::new(),
            vec![
                (
                    "ok".into(),
                    "call_a_s".into(),
                    r#"{"city":"Paris","days":2}"#.into(),
                ),
                ("bad".into(), "call_a_s".into(), r#"{"city":3}"#.into()),
                ("broken".into(), "call_a_s".into(), r#"{"city":"#.into()),
                ("ghost".into(), "call_nobody".into(), "{}".into()),
            ],
        ),
        Turn::text("ok"),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let agent = json!({"name": "a", "endpoint": peer.url, "skills": [{"id": "s",
        "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}]});
    let frames = gw.plan(&json!({"question": "q", "agents": [agent]})).await;
    assert_frames_match_schemas(&frames);
    assert_eq!(peer.count("message/send"), 1);
    assert_eq!(
        peer.requests()[0].body["params"]["message"]["parts"][0]["text"],
        r#"{"city":"Paris","days":2}"#
    );
    let finished = find(&frames, "task.finished");
    let by_id = |id: &str| (*finished.iter().find(|f| f["task_id"] == id).unwrap()).clone();
    assert!(
        by_id("bad")["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid tool input: ")
    );
    assert_eq!(
        by_id("broken")["error"],
        "invalid tool input: arguments are not valid JSON"
    );
    assert_eq!(by_id("ghost")["error"], "unknown tool \"call_nobody\"");
    assert_eq!(by_id("ghost")["agent"], "call_nobody");
    let started = find(&frames, "task.started");
    assert_eq!(
        started.iter().find(|s| s["task_id"] == "broken").unwrap()["input"],
        "{\"city\":"
    );
    let tool_msgs = &llm.requests()[1]["messages"];
    assert_eq!(
        tool_msgs[4]["content"],
        format!(
            "Tool call failed: {}",
            by_id("bad")["error"].as_str().unwrap()
        )
    );
    gw.stop().await;
}

#[tokio::test]
async fn history_and_prior_summary_seed_the_conversation() {
    let llm = FakeLlm::start(vec![Turn::text("ok")]).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    gw.plan(&json!({"question": "and now?", "prior_summary": "S",
        "history": [{"role": "user", "parts": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                    {"role": "assistant", "parts": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]},
                    {"role": "assistant", "parts": [{"type": "text", "text": ""}]}]}))
        .await;
    let m = &llm.requests()[0]["messages"];
    assert_eq!(
        m[1],
        json!({"role": "user", "content": [{"type": "text", "text": "[Prior session context, compacted]\n\nS"}]})
    );
    assert_eq!(
        m[2],
        json!({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    );
    assert_eq!(m[3], json!({"role": "assistant", "content": "xy"}));
    assert_eq!(m[4], json!({"role": "user", "content": "and now?"}));
    assert_eq!(m.as_array().unwrap().len(), 5);
    gw.stop().await;
}

#[tokio::test]
async fn prior_task_ids_become_reference_task_ids_for_that_agent_only() {
    let a = FakePeer::start(Script::Message).await;
    let b = FakePeer::start(Script::Message).await;
    let gw = TestGateway::spawn(config()).await;
    gw.plan(&json!({"question": "q", "agents": [a.agent("a", "s"), b.agent("b", "s")], "prior_task_ids": {"a": "prev-1"}}))
        .await;
    assert_eq!(
        a.requests()[0].body["params"]["message"]["referenceTaskIds"],
        json!(["prev-1"])
    );
    assert!(
        b.requests()[0].body["params"]["message"]
            .get("referenceTaskIds")
            .is_none()
    );
    gw.stop().await;
}

#[tokio::test]
async fn observed_and_pinned_dids_label_task_frames() {
    let card = json!({"name": "x", "capabilities": {"streaming": false, "extensions": [{"uri": "did:bindu:a:b:c"}]}});
    let observed = FakePeer::start_with_card(Script::Message, card).await;
    let pinned = FakePeer::start(Script::Message).await;
    let gw = TestGateway::spawn(config()).await;
    let mut pinned_agent = pinned.agent("p", "s");
    pinned_agent["trust"] = json!({"pinnedDID": "did:key:zPinned"});
    let frames = gw
        .plan(&json!({"question": "q", "agents": [observed.agent("o", "s"), pinned_agent]}))
        .await;
    let started = find(&frames, "task.started");
    assert_eq!(started[0]["agent_did"], "did:bindu:a:b:c");
    assert_eq!(started[0]["agent_did_source"], "observed");
    assert_eq!(started[1]["agent_did"], "did:key:zPinned");
    assert_eq!(started[1]["agent_did_source"], "pinned");
    let content = find(&frames, "task.artifact")[1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        content.starts_with(
            "<remote_content agent=\"p\" did=\"did:key:zPinned\" verified=\"unknown\">"
        )
    );
    gw.stop().await;
}
