//! Resource hygiene: after hundreds of plans nothing stays registered or spawned, and concurrent
//! plans never see each other's frames.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::support::*;
use plangate_testkit::llm::{FakeLlm, Turn};

async fn example_agent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    #[expect(clippy::disallowed_methods, reason = "agent lives for the test")]
    tokio::spawn(plangate::example_agent::serve(
        listener,
        Duration::ZERO,
        std::future::pending(),
    ));
    url
}

#[tokio::test]
async fn hundreds_of_plans_leave_nothing_behind() {
    let agent = example_agent().await;
    let gw = TestGateway::spawn(config()).await;
    let catalog =
        json!([{"name": "ex", "endpoint": agent, "skills": [{"id": "echo"}, {"id": "shout"}]}]);
    // 300 plans, 10 at a time (each waits ~100 ms for its first poll).
    futures::stream::iter(0..300)
        .for_each_concurrent(10, |i| {
            let (gw, catalog) = (&gw, &catalog);
            async move {
                let frames = gw
                    .plan(&json!({"question": format!("q{i}"), "agents": catalog}))
                    .await;
                assert_eq!(
                    answer(&frames),
                    format!("[[ex:echo]]\necho: q{i}\n\n[[ex:shout]]\nQ{i}")
                );
            }
        })
        .await;
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn concurrent_plans_never_mix_frames() {
    let agent = example_agent().await;
    let mut turns = Vec::new();
    for _ in 0..20 {
        turns.push(Turn::text("same answer for everyone"));
    }
    let llm = FakeLlm::start(turns).await;
    let gw = TestGateway::spawn(llm_config(&llm.url)).await;
    let fanout = TestGateway::spawn(config()).await;
    let mut handles = Vec::new();
    for i in 0..20 {
        let (url, agent) = (gw.url.clone(), agent.clone());
        let (fan_url, fan_agent) = (fanout.url.clone(), agent.clone());
        handles.push(async move {
            let body = json!({"question": format!("q{i}"), "session_id": "shared-session"});
            let frames = collect(
                http()
                    .post(format!("{url}/plan"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            let session = frames[0].data["session_id"].clone();
            for f in &frames {
                if let Some(s) = f.data.get("session_id") {
                    assert_eq!(s, &session);
                }
            }
            assert_eq!(answer(&frames), "same answer for everyone");
            let body = json!({"question": format!("fan{i}"), "session_id": "shared-session",
                "agents": [{"name": "ex", "endpoint": fan_agent, "skills": [{"id": "echo"}]}]});
            let frames = collect(
                http()
                    .post(format!("{fan_url}/plan"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(answer(&frames), format!("[[ex:echo]]\necho: fan{i}"));
            let _ = agent;
            session
        });
    }
    let sessions = futures::future::join_all(handles).await;
    let unique: std::collections::HashSet<_> = sessions.iter().collect();
    assert_eq!(unique.len(), 20);
    wait_for_idle(&gw.state).await;
    wait_for_idle(&fanout.state).await;
    gw.stop().await;
    fanout.stop().await;
}
