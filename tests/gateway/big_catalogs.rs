//! Big catalogs cost little (issue 29): a request's `preferences.skills` and a catalog's own
//! `include` / `exclude` narrow the tools before the planner sees any.

use plangate_testkit::llm::{FakeLlm, Turn};
use serde_json::{Value, json};

use crate::support::*;

/// The tool names of the first LLM request.
fn tool_names(llm: &FakeLlm) -> Vec<String> {
    llm.requests()[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect()
}

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
        tool_names(&llm),
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
