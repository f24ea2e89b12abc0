//! What client authors get: the OpenAPI document (served, complete, valid OpenAPI 3.1, examples
//! accepted by `/plan`) and the client examples of `examples/` run against a live gateway and the
//! example agent.

use std::time::Duration;

use plangate::config::AuthMode;
use plangate_testkit::llm::{FakeLlm, Turn};
use serde_json::Value;

use crate::support::*;

fn repo_document() -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("openapi.json")).unwrap()).unwrap()
}

async fn served_document(gw: &TestGateway) -> Value {
    let resp = http()
        .get(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn openapi_is_served_with_schemas_inlined_and_describes_every_route() {
    let gw = TestGateway::spawn(config()).await;
    let served = served_document(&gw).await;
    assert_eq!(served["openapi"], "3.1.0");
    let mut paths: Vec<&str> = served["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut routes = plangate::telemetry::metrics::ROUTES.to_vec();
    paths.sort_unstable();
    routes.sort_unstable();
    assert_eq!(paths, routes, "every route described, nothing else");

    // The schemas are the files of schemas/, inlined.
    let request: Value = serde_json::from_slice(
        &std::fs::read(repo().join("schemas/plan-request.schema.json")).unwrap(),
    )
    .unwrap();
    let inlined = &served["components"]["schemas"]["PlanRequest"];
    assert_eq!(inlined["properties"], request["properties"]);
    assert_eq!(inlined["required"], request["required"]);
    // Every event of the stream has its payload schema, and it is the file's.
    let events = served["paths"]["/plan"]["post"]["responses"]["200"]["x-sse-events"]
        .as_object()
        .unwrap();
    let files = std::fs::read_dir(repo().join("schemas/events")).unwrap();
    let mut names: Vec<String> = files
        .map(|f| {
            let name = f.unwrap().file_name().into_string().unwrap();
            name.trim_end_matches(".schema.json").to_owned()
        })
        .collect();
    names.sort_unstable();
    let mut described: Vec<String> = events.keys().cloned().collect();
    described.sort_unstable();
    assert_eq!(described, names);
    for (event, reference) in events {
        let name = reference["$ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("#/components/schemas/");
        let file: Value = serde_json::from_slice(
            &std::fs::read(repo().join(format!("schemas/events/{event}.schema.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            served["components"]["schemas"][name]["properties"], file["properties"],
            "{event}"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn openapi_request_examples_are_accepted_by_plan() {
    let examples = repo_document()["paths"]["/plan"]["post"]["requestBody"]["content"]
        ["application/json"]["examples"]
        .as_object()
        .unwrap()
        .clone();
    assert!(examples.len() >= 3, "{examples:?}");
    let llm = FakeLlm::start(examples.keys().map(|_| Turn::text("ok")).collect()).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    for (name, example) in &examples {
        let frames = gw.plan(&example["value"]).await;
        assert_frames_match_schemas(&frames);
        assert_eq!(events(&frames).last(), Some(&"done"), "{name}");
        assert_eq!(find(&frames, "final").len(), 1, "{name}: {frames:?}");
    }
    // The error examples are what the gateway answers.
    let invalid = http()
        .post(format!("{}/plan", gw.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(
        body,
        repo_document()["paths"]["/plan"]["post"]["responses"]["400"]["content"]["application/json"]
            ["example"]
    );
    gw.stop().await;
}

#[tokio::test]
async fn openapi_validates_as_openapi_3_1() {
    let Some(python) = clients_python() else {
        return;
    };
    let validate = |path: &std::path::Path| {
        std::process::Command::new(&python)
            .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
            .arg(path)
            .output()
            .unwrap()
    };
    // The repository's document, following its references into schemas/.
    let out = validate(&repo().join("openapi.json"));
    assert!(out.status.success(), "{out:?}");

    let dir = std::env::temp_dir().join(format!("plangate-openapi-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // The served, bundled document.
    let gw = TestGateway::spawn(config()).await;
    let served = served_document(&gw).await;
    gw.stop().await;
    let served_path = dir.join("served.json");
    std::fs::write(&served_path, serde_json::to_vec(&served).unwrap()).unwrap();
    let out = validate(&served_path);
    assert!(out.status.success(), "{out:?}");

    // The validator does reject a broken document (a response without its description).
    let mut broken = served;
    broken["paths"]["/health"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let broken_path = dir.join("broken.json");
    std::fs::write(&broken_path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let out = validate(&broken_path);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("description"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// One run of an example client: (exit code, stdout, stderr).
async fn run_example(
    program: &str,
    script: &str,
    gw: &str,
    agent: &str,
    token: &str,
) -> (i32, String, String) {
    let out = tokio::process::Command::new(program)
        .arg(repo().join(script))
        .arg("Say hello")
        .env("PLANGATE_URL", gw)
        .env("PLANGATE_AGENT_URL", agent)
        .env("PLANGATE_TOKEN", token)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs one example against a fan-out gateway (an answer), an LLM gateway whose LLM fails (the
/// `error` frame) and with a wrong token (the refusal).
async fn example_client_runs(program: &str, script: &str) {
    let agent = ExampleAgent::start(Duration::from_millis(30)).await;
    let mut c = config();
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec!["example-token".to_owned().into()];
    let gw = TestGateway::spawn(c).await;

    let (code, stdout, stderr) =
        run_example(program, script, &gw.url, &agent.url, "example-token").await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    for line in [
        "… example/echo started",
        "… example/shout started",
        "✓ example/echo completed",
        "✓ example/shout completed",
        "echo: Say hello",
        "SAY HELLO",
        "— stop, 0 tokens",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }

    let (code, stdout, stderr) = run_example(program, script, &gw.url, &agent.url, "wrong").await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("unauthorized"),
        "{stderr}"
    );
    gw.stop().await;

    let llm = FakeLlm::start(vec![Turn::Status(400, "no such model".to_owned())]).await;
    let mut c = llm_config(&llm.url);
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec!["example-token".to_owned().into()];
    let gw = TestGateway::spawn(c).await;
    let (code, stdout, stderr) =
        run_example(program, script, &gw.url, &agent.url, "example-token").await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("plan failed (llm_error)"), "{stderr}");
    gw.stop().await;
}

#[tokio::test]
async fn python_example_client_runs() {
    let Some(python) = clients_python() else {
        return;
    };
    example_client_runs(&python, "examples/python/ask.py").await;
}

#[tokio::test]
async fn typescript_example_client_runs() {
    if !repo().join("examples/typescript/dist/ask.js").exists() {
        skip(
            "examples/typescript is not built (scripts/test.sh runs npm ci and the build)",
            "PLANGATE_REQUIRE_CLIENTS",
        );
        return;
    }
    example_client_runs("node", "examples/typescript/dist/ask.js").await;
}
