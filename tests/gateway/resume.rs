//! Resumable streams on one instance (the in-memory store): `id:` lines only when switched on,
//! a dropped client resumes with every frame exactly once and in order, finished plans replay,
//! the grace period, `DELETE`, and plans kept per token.

use std::time::Duration;

use plangate::config::{AuthMode, Config};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "resume-token";

fn resumable(grace: Duration) -> Config {
    let mut c = config();
    c.resume.enabled = true;
    c.resume.grace = grace;
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![TOKEN.to_owned().into(), "other".to_owned().into()];
    c
}

async fn post_plan(url: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{url}/plan"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn resume(
    url: &str,
    plan: &str,
    token: &str,
    last_event_id: Option<&str>,
    query: &str,
) -> reqwest::Response {
    let mut req = http()
        .get(format!("{url}/plan/{plan}/events{query}"))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn without_resume_the_stream_has_no_ids_and_no_resume_route() {
    let peer = FakePeer::start(Script::Instant).await;
    let gw = TestGateway::spawn(config()).await;
    let text = http()
        .post(format!("{}/plan", gw.url))
        .json(&json!({"question": "q", "agents": [peer.agent("p", "s")]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("\nid: ") && !text.starts_with("id: "),
        "{text}"
    );
    let session = plan_id_of(&text);
    let resp = http()
        .get(format!("{}/plan/{session}/events", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn a_dropped_client_resumes_with_every_frame_once_in_order() {
    let peer = FakePeer::start(Script::CompleteAfter(Duration::from_millis(800))).await;
    let gw = TestGateway::spawn(resumable(Duration::from_secs(10))).await;
    let body = json!({"question": "q", "agents": [peer.agent("p", "s")]});
    let first = read_until(&mut post_plan(&gw.url, &body).await, "event: task.started").await;
    let before = frames_with_ids(&first);
    let plan = plan_id_of(&first);
    assert_ne!(
        plan, before[0].2["session_id"],
        "keyed by the plan, not the session"
    );
    let (last_id, _, _) = before.last().unwrap().clone();
    assert!(last_id.starts_with(&format!("{plan}:")), "{last_id}");

    // Back after the disconnect: everything after the last id, then the live rest.
    let resp = resume(&gw.url, &plan, TOKEN, Some(&last_id), "").await;
    assert_eq!(resp.status(), 200);
    let after = frames_with_ids(&resp.text().await.unwrap());
    let all: Vec<_> = before.iter().chain(after.iter()).collect();
    let ids: Vec<String> = all.iter().map(|(id, _, _)| id.clone()).collect();
    let expected: Vec<String> = (1..=all.len()).map(|n| format!("{plan}:{n}")).collect();
    assert_eq!(ids, expected, "every frame exactly once, in order");
    let frames: Vec<Frame> = all
        .iter()
        .map(|(_, event, data)| Frame {
            event: event.clone(),
            data: data.clone(),
        })
        .collect();
    assert_frames_match_schemas(&frames);
    assert_eq!(events(&frames).last(), Some(&"done"));
    assert_eq!(finished(&frames)["state"], "completed");
    assert_eq!(
        peer.count("tasks/cancel"),
        0,
        "the plan was not canceled during the grace"
    );

    // A finished plan replays in full, for its token only.
    let replay = resume(&gw.url, &plan, TOKEN, None, "?after=0")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(frames_with_ids(&replay).len(), all.len());
    assert!(
        replay.starts_with(&format!("id: {plan}:1\nevent: session\n")),
        "{replay}"
    );
    assert_eq!(
        resume(&gw.url, &plan, "other", None, "").await.status(),
        404
    );
    let bad = resume(&gw.url, &plan, TOKEN, Some("someone-else:3"), "").await;
    assert_eq!(bad.status(), 400);
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_plan_nobody_reads_is_canceled_after_the_grace() {
    let peer = FakePeer::start(Script::WorkForever).await;
    let gw = TestGateway::spawn(resumable(Duration::from_millis(600))).await;
    let body = json!({"question": "q", "agents": [peer.agent("p", "s")]});
    let first = read_until(&mut post_plan(&gw.url, &body).await, "event: task.started").await;
    let plan = plan_id_of(&first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer.count("tasks/cancel"), 0, "still within the grace");
    wait_until("the peer task is canceled", Duration::from_secs(10), || {
        peer.count("tasks/cancel") == 1
    })
    .await;
    let replay = resume(&gw.url, &plan, TOKEN, None, "")
        .await
        .text()
        .await
        .unwrap();
    assert!(replay.ends_with("event: done\ndata: {}\n\n"), "{replay}");
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}

#[tokio::test]
async fn delete_cancels_a_running_plan_for_its_token_only() {
    let peer = FakePeer::start(Script::WorkForever).await;
    let gw = TestGateway::spawn(resumable(Duration::from_secs(30))).await;
    let body = json!({"question": "q", "agents": [peer.agent("p", "s")]});
    let mut resp = post_plan(&gw.url, &body).await;
    let mut seen = String::new();
    while !seen.contains("event: task.started") {
        seen.push_str(&String::from_utf8_lossy(
            &resp.chunk().await.unwrap().unwrap(),
        ));
    }
    let plan = plan_id_of(&seen);
    let delete = |token: &'static str| {
        http()
            .delete(format!("{}/plan/{plan}", gw.url))
            .bearer_auth(token)
            .send()
    };
    wait_for_sends(&peer, 1).await;
    assert_eq!(delete("other").await.unwrap().status(), 404);
    assert_eq!(delete(TOKEN).await.unwrap().status(), 202);
    // The open stream ends with the cancel.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let frames = frames_with_ids(&seen);
    let error = frames.iter().find(|(_, e, _)| e == "error").unwrap();
    assert_eq!(error.2["code"], "canceled", "{seen}");
    assert_eq!(frames.last().unwrap().1, "done");
    wait_until("the peer task is canceled", Duration::from_secs(10), || {
        peer.count("tasks/cancel") == 1
    })
    .await;
    assert_eq!(delete(TOKEN).await.unwrap().status(), 409, "already ended");
    wait_for_idle(&gw.state).await;
    gw.stop().await;
}
