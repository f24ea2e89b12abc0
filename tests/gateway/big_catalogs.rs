//! Big catalogs cost little (issue 29): a request's `preferences.skills` and a catalog's own
//! `include` / `exclude` narrow the tools before the planner sees any.

use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn include_and_exclude_narrow_the_tools_and_a_request_cannot_widen_its_catalog() {
    let llm = FakeLlm::start(vec![Turn::text("ok"), Turn::text("ok")]).await;
    let path = std::env::temp_dir().join(format!("plangate-filter-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        serde_json::to_vec(&json!({"catalogs": {"default": {"exclude": ["pay/*"], "agents": [
            {"name": "docs", "endpoint": "http://127.0.0.1:9", "skills": [{"id": "search"}, {"id": "write"}]},
            {"name": "pay", "endpoint": "http://127.0.0.1:9", "skills": [{"id": "charge"}]}]}}}))
        .unwrap(),
    )
    .unwrap();
    let mut c = llm_config(&llm.url);
    c.catalog_file = Some(path);
    let gw = TestGateway::spawn(c).await;
    // The request's own agents and the catalog's, narrowed by the request.
    let frames = gw
        .plan(&json!({"question": "q", "catalog": "default",
            "preferences": {"skills": {"include": ["*/search", "pay/*", "mine/*"], "exclude": ["mine/b"]}},
            "agents": [{"name": "mine", "endpoint": "http://127.0.0.1:9", "skills": [{"id": "a"}, {"id": "b"}]}]}))
        .await;
    assert_eq!(find(&frames, "final").len(), 1);
    assert_eq!(
        tools_of(&llm, 0),
        ["call_docs_search", "call_mine_a", "load_recipe"],
        "pay/* stays excluded by its catalog"
    );
    // A malformed filter is a 400 naming the field.
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "preferences": {"skills": {"exclude": "x"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["issues"][0]["path"], "preferences.skills.exclude",
        "{body}"
    );
}

/// Ten agents × three skills on one peer: 30 skills, above the default threshold of 24. The
/// `search` skills have an input schema.
fn catalog(url: &str) -> Value {
    let domains = [
        ("weather", "forecasts, rain and temperatures"),
        ("flights", "flight bookings and departures"),
        ("hotels", "hotel rooms and reservations"),
        ("stocks", "share prices of listed companies"),
        ("shipping", "parcels, couriers and tracking numbers"),
        ("payroll", "salaries and payslips of employees"),
        ("legal", "contracts and their clauses"),
        ("ci", "build pipelines and failed jobs"),
        ("maps", "addresses, routes and coordinates"),
        ("news", "articles and headlines"),
    ];
    let agents: Vec<Value> = domains
        .iter()
        .map(|(name, what)| {
            json!({"name": name, "endpoint": url, "skills": [
                {"id": "lookup", "description": format!("Looks up one record about {what} by its id")},
                {"id": "search", "description": format!("Searches {what} by keyword"),
                    "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
                {"id": "report", "description": format!("Writes a weekly report on {what}")}]})
        })
        .collect();
    Value::Array(agents)
}

/// Every tool name of LLM request `i`.
fn tools_of(llm: &FakeLlm, i: usize) -> Vec<String> {
    llm.requests()[i]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The system message's text of LLM request `i` (plain or as one text part).
fn system_of(llm: &FakeLlm, i: usize) -> String {
    let content = &llm.requests()[i]["messages"][0]["content"];
    content.as_str().map_or_else(
        || content[0]["text"].as_str().unwrap().to_owned(),
        str::to_owned,
    )
}

#[tokio::test]
async fn a_skill_found_in_step_one_is_a_tool_in_step_two() {
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let llm = FakeLlm::start(vec![
        Turn::call(
            "f",
            "find_skills",
            json!({"query": "tracking number of a parcel", "limit": 3}),
        ),
        Turn::call(
            "c",
            "call_shipping_search",
            json!({"query": "1Z999AA10123456784"}),
        ),
        Turn::text("It is in Lyon."),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "Where is my parcel?", "agents": catalog(&peer.url)}))
        .await;
    assert_frames_match_schemas(&frames);
    assert_call_ordering(&frames);
    assert_eq!(answer(&frames), "It is in Lyon.");
    // Step 1: find_skills and load_recipe only, and the prompt says how it works.
    assert_eq!(tools_of(&llm, 0), ["find_skills", "load_recipe"]);
    assert!(system_of(&llm, 0).contains("Call find_skills with a few words about the task"));
    // The tool message lists the skills, best first, one line each.
    let requests = llm.requests();
    let listed = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        lines[0].starts_with("call_shipping_"),
        "the shipping skills come first: {listed}"
    );
    assert!(listed.contains(
        "call_shipping_search: Searches parcels, couriers and tracking numbers by keyword"
    ));
    // Step 2: the found skills are tools, after the stable two, with their own schemas.
    let step2 = tools_of(&llm, 1);
    assert_eq!(step2[..2], ["find_skills", "load_recipe"]);
    assert_eq!(step2.len(), 5, "{step2:?}");
    assert!(step2.contains(&"call_shipping_search".to_owned()));
    let search = requests[1]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "call_shipping_search")
        .unwrap();
    assert_eq!(
        search["function"]["parameters"]["required"],
        json!(["query"])
    );
    // Step 3 offers the same list in the same order (the prefix stays put).
    assert_eq!(tools_of(&llm, 2), step2);
    // The call went to the peer; find_skills shows as its own task.
    let started: Vec<&str> = find(&frames, "task.started")
        .iter()
        .map(|s| s["agent"].as_str().unwrap())
        .collect();
    assert_eq!(started, ["find_skills", "shipping"]);
    for f in find(&frames, "task.finished") {
        assert_eq!(f["state"], "completed", "{f}");
    }
    let sent: Vec<_> = peer
        .requests()
        .into_iter()
        .filter(|r| r.method == "message/send")
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].raw.contains("1Z999AA10123456784"));
    gw.stop().await;
}

#[tokio::test]
async fn a_guessed_tool_name_is_honoured_and_offered_from_then_on() {
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let llm = FakeLlm::start(vec![
        Turn::call("g", "call_stocks_report", json!({"input": "this week"})),
        Turn::call("u", "call_nobody_nothing", json!({"input": "x"})),
        Turn::text("Done."),
    ])
    .await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let frames = gw
        .plan(&json!({"question": "Weekly stocks report", "agents": catalog(&peer.url)}))
        .await;
    assert_eq!(answer(&frames), "Done.");
    let finished = find(&frames, "task.finished");
    assert_eq!(finished[0]["agent"], "stocks");
    assert_eq!(finished[0]["state"], "completed", "{}", finished[0]);
    // A name that is no catalog skill fails, pointing at find_skills.
    assert_eq!(finished[1]["state"], "failed");
    assert!(
        finished[1]["error"]
            .as_str()
            .unwrap()
            .contains("find_skills lists the skills"),
        "{}",
        finished[1]
    );
    assert_eq!(tools_of(&llm, 0), ["find_skills", "load_recipe"]);
    assert_eq!(
        tools_of(&llm, 1),
        ["find_skills", "load_recipe", "call_stocks_report"]
    );
    gw.stop().await;
}

#[tokio::test]
async fn threshold_zero_offers_every_skill_in_catalog_order() {
    let llm = FakeLlm::start(vec![Turn::text("ok")]).await;
    let mut c = llm_config(&llm.url);
    c.planner.tool_discovery_threshold = 0;
    let gw = TestGateway::spawn(c).await;
    let agents = catalog("http://127.0.0.1:9");
    gw.plan(&json!({"question": "q", "agents": agents})).await;
    let mut want: Vec<String> = agents
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            let name = a["name"].as_str().unwrap().to_owned();
            a["skills"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |s| format!("call_{name}_{}", s["id"].as_str().unwrap()))
        })
        .collect();
    want.push("load_recipe".to_owned());
    assert_eq!(tools_of(&llm, 0), want);
    assert!(!system_of(&llm, 0).contains("find_skills"));
    gw.stop().await;
}

#[tokio::test]
async fn cache_breakpoints_for_anthropic_models_only() {
    // (model, llm.cache_control, breakpoints expected)
    let cases = [
        (
            "openrouter/anthropic/claude-sonnet-4.6",
            plangate::config::CacheControl::Auto,
            true,
        ),
        (
            "openrouter/openai/gpt-4o",
            plangate::config::CacheControl::Auto,
            false,
        ),
        ("test-model", plangate::config::CacheControl::On, true),
        (
            "openrouter/anthropic/claude-sonnet-4.6",
            plangate::config::CacheControl::Off,
            false,
        ),
    ];
    for (model, setting, marked) in cases {
        let llm = FakeLlm::start(vec![Turn::text("ok")]).await;
        let mut c = llm_config(&llm.url);
        c.planner.model = model.to_owned();
        c.llm.cache_control = setting;
        let gw = TestGateway::spawn(c).await;
        gw.plan(&json!({"question": "q", "agents": [{"name": "a", "endpoint": "http://127.0.0.1:9", "skills": [{"id": "s"}]}]}))
            .await;
        let request = &llm.requests()[0];
        let system = &request["messages"][0];
        let tools = request["tools"].as_array().unwrap();
        let breakpoint = json!({"type": "ephemeral"});
        if marked {
            assert_eq!(system["content"][0]["type"], "text", "{model}");
            assert_eq!(system["content"][0]["cache_control"], breakpoint, "{model}");
            assert_eq!(
                tools.last().unwrap()["cache_control"],
                breakpoint,
                "{model}"
            );
            assert!(
                tools[0].get("cache_control").is_none(),
                "only the last tool"
            );
        } else {
            assert!(system["content"].is_string(), "{model}: {system}");
            assert!(
                tools.iter().all(|t| t.get("cache_control").is_none()),
                "{model}"
            );
        }
        // OpenRouter's top-level cache_control (spec §3.4) is there for every openrouter/ model.
        assert_eq!(
            request.get("cache_control").is_some(),
            model.starts_with("openrouter/"),
            "{model}"
        );
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_stored_conversation_offers_the_skills_it_used_from_the_first_step() {
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let llm = FakeLlm::start(vec![
        Turn::call("g", "call_hotels_report", json!({"input": "this week"})),
        Turn::text("Report done."),
        Turn::text("Same as before."),
    ])
    .await;
    let mut c = llm_config(&llm.url);
    c.sessions.enabled = true;
    c.auth.mode = plangate::config::AuthMode::Bearer;
    c.auth.tokens = vec!["t".to_owned().into()];
    let gw = TestGateway::spawn(c).await;
    for question in ["Weekly hotels report", "And again?"] {
        let resp = http()
            .post(format!("{}/plan", gw.url))
            .bearer_auth("t")
            .json(
                &json!({"question": question, "session_id": "big-1", "agents": catalog(&peer.url)}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let frames = collect(resp).await;
        assert_eq!(find(&frames, "final").len(), 1, "{question}");
    }
    assert_eq!(tools_of(&llm, 0), ["find_skills", "load_recipe"]);
    // The second turn starts with the skill the first one used.
    assert_eq!(
        tools_of(&llm, 2),
        ["find_skills", "load_recipe", "call_hotels_report"]
    );
    gw.stop().await;
}

#[tokio::test]
async fn fan_out_still_asks_every_skill_of_a_big_catalog() {
    let peer = FakePeer::start(Script::Complete { working_polls: 0 }).await;
    let gw = TestGateway::spawn(config()).await;
    let frames = gw
        .plan(&json!({"question": "status?", "agents": catalog(&peer.url)}))
        .await;
    let finished = find(&frames, "task.finished");
    assert_eq!(finished.len(), 30, "one call per skill, no find_skills");
    assert!(finished.iter().all(|f| f["state"] == "completed"));
    assert!(
        find(&frames, "task.started")
            .iter()
            .all(|s| s["agent"] != "find_skills")
    );
    gw.stop().await;
}
