//! Recipes end to end: the system prompt lists the visible ones, `load_recipe` returns their
//! content in task frames, denied ones are not found, `/health` counts all of them.

use plangate::recipe::Action;
use serde_json::{Value, json};

use crate::support::*;
use plangate_testkit::llm::{FakeLlm, Turn};

fn recipes_config(llm_url: &str) -> plangate::config::Config {
    let mut c = llm_config(llm_url);
    c.recipes.dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/valid");
    c.recipes.dir_explicit = true;
    c.recipes.deny = vec!["renamed".into()];
    c.planner.recipe_rules = vec![("flat-*".into(), Action::Deny)];
    c
}

#[tokio::test]
async fn prompt_lists_visible_recipes_and_load_recipe_returns_their_content() {
    let llm = FakeLlm::start(vec![
        Turn::calls(&[
            ("r1", "load_recipe", json!({"name": "bundled"})),
            ("r2", "load_recipe", json!({"name": "flat-one"})),
        ]),
        Turn::text("followed the recipe"),
    ])
    .await;
    let gw = TestGateway::spawn(recipes_config(&llm.url)).await;
    let frames = gw.plan(&json!({"question": "research this"})).await;
    assert_call_ordering(&frames);

    let req = &llm.requests()[0];
    let system = req["messages"][0]["content"].as_str().unwrap();
    let block_start = system
        .find("<available_recipes>")
        .expect("recipe block in the system prompt");
    let names: Vec<&str> = system[block_start..]
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("<name>")
                .and_then(|n| n.strip_suffix("</name>"))
        })
        .collect();
    assert_eq!(
        names,
        ["Upper-first", "bundled"],
        "denied recipes are not listed"
    );
    assert!(system.starts_with("You are the planner of plangate"));
    assert!(
        !system.contains(env!("CARGO_MANIFEST_DIR")),
        "no server path reaches the LLM"
    );
    let load_tool = req["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "load_recipe")
        .unwrap();
    let description = load_tool["function"]["description"].as_str().unwrap();
    assert!(description.ends_with("Available recipes:\n- **Upper-first**: Upper-case extension\n- **bundled**: Research with \"care\" & cite"));
    assert_eq!(
        load_tool["function"]["parameters"],
        json!({"type": "object", "properties": {"name": {"type": "string", "minLength": 1}}, "required": ["name"], "additionalProperties": false})
    );

    let started = find(&frames, "task.started");
    assert_eq!(started[0]["agent"], "load_recipe");
    assert_eq!(started[0]["skill"], "");
    assert_eq!(started[0]["agent_did"], Value::Null);
    assert_eq!(started[0]["input"], json!({"name": "bundled"}));
    let artifact = find(&frames, "task.artifact")
        .into_iter()
        .find(|a| a["task_id"] == "r1")
        .unwrap();
    let content = artifact["content"].as_str().unwrap();
    assert!(
        content
            .starts_with("<recipe_content name=\"bundled\">\n# Recipe: bundled\nStep 1. Search.")
    );
    assert!(content.contains("<file>scripts/run.sh</file>"));
    assert!(artifact.get("signatures").is_none());
    let finished = find(&frames, "task.finished");
    let denied = finished.iter().find(|f| f["task_id"] == "r2").unwrap();
    assert_eq!(denied["state"], "failed");
    assert_eq!(
        denied["error"],
        "load_recipe: recipe \"flat-one\" not found. Available: Upper-first, bundled"
    );
    let tool_msgs = &llm.requests()[1]["messages"];
    assert_eq!(tool_msgs[3]["content"], content);
    assert_eq!(
        tool_msgs[4]["content"],
        format!("Tool call failed: {}", denied["error"].as_str().unwrap())
    );

    let health = gw.health().await;
    assert_eq!(
        health["runtime"]["recipe_count"], 4,
        "denied recipes are counted"
    );
    gw.stop().await;
}

#[tokio::test]
async fn shipped_recipes_load_at_boot() {
    let llm = FakeLlm::start(vec![
        Turn::call("r", "load_recipe", json!({"name": "payment-required-flow"})),
        Turn::text("ok"),
    ])
    .await;
    let mut c = llm_config(&llm.url);
    c.recipes.dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    c.recipes.dir_explicit = true;
    let gw = TestGateway::spawn(c).await;
    let frames = gw.plan(&json!({"question": "pay?"})).await;
    let content = find(&frames, "task.artifact")[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.starts_with(
        "<recipe_content name=\"payment-required-flow\">\n# Recipe: payment-required-flow\n"
    ));
    assert!(content.contains("Do not retry"));
    let system = llm.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("<name>multi-agent-research</name>")
            && system.contains("<name>payment-required-flow</name>")
    );
    gw.stop().await;
}

#[test]
fn planner_file_prompt_and_invalid_recipes_stop_the_boot() {
    let mut c = config();
    c.recipes.dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/invalid/reserved");
    c.recipes.dir_explicit = true;
    let err = plangate::boot::build(c).unwrap_err().to_string();
    assert!(err.starts_with("recipe: invalid frontmatter in ") && err.ends_with("reserved.md: recipe name must not start with \"call_\" — that prefix is reserved for A2A tool ids"), "{err}");
}

#[tokio::test]
async fn a_planner_file_replaces_the_built_in_prompt() {
    let llm = FakeLlm::start(vec![Turn::text("ok")]).await;
    let mut c = llm_config(&llm.url);
    c.planner.prompt = Some("You are a terse planner.".into());
    c.planner.instructions = vec!["Always answer in French.".into()];
    let gw = TestGateway::spawn(c).await;
    gw.plan(&json!({"question": "q"})).await;
    assert_eq!(
        llm.requests()[0]["messages"][0]["content"],
        "You are a terse planner.\n\nAlways answer in French."
    );
    gw.stop().await;
}

#[test]
fn the_readme_recipe_example_passes_the_checker() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let section = &readme[readme.find("## Writing a recipe").unwrap()..];
    let start = section.find("```markdown\n").unwrap() + "```markdown\n".len();
    let example = &section[start..start + section[start..].find("\n```").unwrap() + 1];
    let dir = std::env::temp_dir().join(format!("plangate-readme-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("weather-brief/reference")).unwrap();
    std::fs::write(dir.join("weather-brief/RECIPE.md"), example).unwrap();
    std::fs::write(dir.join("weather-brief/reference/wording.md"), "Use °C.").unwrap();
    let report = plangate::recipe::check::check(&dir).unwrap();
    assert_eq!(
        report.summary(),
        "1 recipes checked, 0 errors, 0 warnings",
        "{:?}",
        report.findings
    );
    std::fs::remove_file(dir.join("weather-brief/reference/wording.md")).unwrap();
    let report = plangate::recipe::check::check(&dir).unwrap();
    assert_eq!(
        report.findings.len(),
        1,
        "the checker catches the missing bundled file"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn bindu_style_frontmatter_boots_with_the_texts_its_author_wrote() {
    // Bare numbers in `tags`/`triggers` (the reference's own payment recipe has them), `1.0`
    // that must not become `1`, and `description: no` that YAML 1.1 would read as false.
    let llm = FakeLlm::start(vec![
        Turn::call("r", "load_recipe", json!({"name": "negative"})),
        Turn::text("ok"),
    ])
    .await;
    let mut c = llm_config(&llm.url);
    c.recipes.dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/bindu-style");
    c.recipes.dir_explicit = true;
    let gw = TestGateway::spawn(c).await;
    let frames = gw.plan(&json!({"question": "pay the agent?"})).await;
    assert_call_ordering(&frames);
    let system = llm.requests()[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("    <name>paid-flow</name>\n    <description>Handle a peer that answers payment-required.</description>\n    <location>recipes/paid-flow/</location>\n    <tags>payments, x402, 2026</tags>\n"),
        "{system}"
    );
    assert!(
        system.contains("    <name>versions</name>\n    <description>Pick an API version.</description>\n    <location>recipes/versions/</location>\n    <tags>1.0, 2.5</tags>\n"),
        "{system}"
    );
    assert!(
        system.contains("    <name>negative</name>\n    <description>no</description>\n"),
        "{system}"
    );
    let content = find(&frames, "task.artifact")[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.starts_with("<recipe_content name=\"negative\">\n# Recipe: negative\nA recipe whose description is the word no"), "{content}");
    assert_eq!(gw.health().await["runtime"]["recipe_count"], 3);
    gw.stop().await;

    // The same folder through the checker: no errors, one warning per unquoted item.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/bindu-style");
    let report = plangate::recipe::check::check(&dir).unwrap();
    assert_eq!(
        report.summary(),
        "3 recipes checked, 0 errors, 4 warnings",
        "{:?}",
        report.findings
    );
    let d = dir.display();
    let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert!(lines.contains(&format!("warning: {d}/paid-flow.md:5: triggers item 402 is a number in YAML and is read as the text \"402\"; quote it (\"402\") to say so")), "{lines:?}");
    assert!(lines.contains(&format!("warning: {d}/versions.md:3: tags item 1.0 is a number in YAML and is read as the text \"1.0\"; quote it (\"1.0\") to say so")), "{lines:?}");
}

#[test]
fn a_mapping_inside_triggers_still_stops_the_boot() {
    let mut c = config();
    c.recipes.dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/recipes/invalid/bad-triggers");
    c.recipes.dir_explicit = true;
    let err = plangate::boot::build(c).unwrap_err().to_string();
    assert!(
        err.starts_with("recipe: invalid frontmatter in ")
            && err.ends_with("bad-triggers.md: triggers must be a list of strings"),
        "{err}"
    );
}
