//! Files end to end on `/plan`: agents' file parts (bytes and links, both dialects, in an
//! artifact, a status message and a streamed update) become `task.artifact` `files` the client
//! fetches from the plan's files route; the client's attachments and agents' files go to peers as
//! file parts when the model passes their ids; the LLM only ever reads one line per file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use plangate::config::AuthMode;
use plangate_testkit::llm::{FakeLlm, Turn};
use plangate_testkit::peer::{FakePeer, Script};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::*;

const TOKEN: &str = "files-owner";
const OTHER: &str = "files-other";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `n` bytes that do not repeat in any short period (their base64 is unmistakable).
fn payload(n: usize, seed: u8) -> Vec<u8> {
    let mut h = Sha256::digest([seed]).to_vec();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.extend_from_slice(&h);
        h = Sha256::digest(&h).to_vec();
    }
    out.truncate(n);
    out
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn gateway(mut c: plangate::config::Config) -> TestGateway {
    c.auth.mode = AuthMode::Bearer;
    c.auth.tokens = vec![TOKEN.to_owned().into(), OTHER.to_owned().into()];
    TestGateway::spawn(c).await
}

async fn plan(gw: &TestGateway, body: &Value) -> Vec<Frame> {
    let resp = http()
        .post(format!("{}/plan", gw.url))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let frames = collect(resp).await;
    assert_frames_match_schemas(&frames);
    frames
}

/// A server that counts every request it gets (the address of a file the gateway must never
/// fetch).
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            "file"
        }
    });
    (plangate_testkit::serve(app).await, hits)
}

/// Every `files` entry of the plan's `task.artifact` frames, by name.
fn files_by_name(frames: &[Frame]) -> std::collections::HashMap<String, Value> {
    find(frames, "task.artifact")
        .into_iter()
        .flat_map(|a| a["files"].as_array().cloned().unwrap_or_default())
        .map(|f| (f["name"].as_str().unwrap().to_owned(), f))
        .collect()
}

async fn fetch(gw: &TestGateway, token: &str, url: &str) -> reqwest::Response {
    http()
        .get(format!("{}{url}", gw.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn agents_files_reach_the_client_and_never_the_llm() {
    let (links, hits) = counting_server().await;
    let png = payload(150_000, 1);
    let csv = payload(40_000, 2);
    let notes = payload(3_000, 3);
    let streamed = payload(60_000, 4);
    let streamed_status = payload(2_000, 5);
    // v0.3 in an artifact, polled: bytes and a link.
    let a = FakePeer::start(Script::Artifact(json!([
        {"kind": "text", "text": "here is the chart"},
        {"kind": "file", "file": {"name": "chart.png", "mimeType": "image/png", "bytes": b64(&png)}},
        {"kind": "file", "file": {"name": "report.pdf", "mimeType": "application/pdf", "uri": format!("{links}/report.pdf")}}
    ])))
    .await;
    // v1.0 shapes (kind-less `raw` / `url`), sent with the 1.0 methods.
    let b = FakePeer::start(Script::Artifact(json!([
        {"raw": b64(&csv), "mediaType": "text/csv", "filename": "data.csv"},
        {"url": format!("{links}/big.pdf"), "mediaType": "application/pdf", "filename": "big.pdf"}
    ])))
    .await;
    // In the status message, Bindu's snake_case spelling.
    let c = FakePeer::start(Script::StatusParts(json!([
        {"kind": "text", "text": "notes attached"},
        {"kind": "file", "file": {"name": "notes.txt", "mime_type": "text/plain", "bytes": b64(&notes)}}
    ])))
    .await;
    // Streamed: a status update with a file, then an artifact update with one.
    let d = FakePeer::start_with_card(
        Script::Stream(vec![
            json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "working",
                "message": {"role": "agent", "parts": [{"kind": "file", "file": {"name": "progress.png", "mimeType": "image/png", "bytes": b64(&streamed_status)}}]}}, "final": false}),
            json!({"kind": "artifact-update", "taskId": "{id}", "artifact": {"artifactId": "x",
                "parts": [{"kind": "file", "file": {"name": "stream.bin", "mimeType": "application/octet-stream", "bytes": b64(&streamed)}}]}}),
            json!({"kind": "status-update", "taskId": "{id}", "status": {"state": "completed"}, "final": true}),
        ]),
        json!({"name": "d", "capabilities": {"streaming": true}}),
    )
    .await;
    let llm = FakeLlm::start(vec![
        Turn::calls(&[
            ("c1", "call_a_make", json!({"input": "chart"})),
            ("c2", "call_b_make", json!({"input": "csv"})),
            ("c3", "call_c_make", json!({"input": "notes"})),
            ("c4", "call_d_make", json!({"input": "stream"})),
        ]),
        Turn::text("all files made"),
    ])
    .await;
    let gw = gateway(llm_config(&llm.url)).await;
    let agent = |name: &str, url: &str, protocol: &str| {
        json!({"name": name, "endpoint": url, "protocol": protocol,
            "skills": [{"id": "make", "description": "Makes a file"}]})
    };
    let frames = plan(
        &gw,
        &json!({"question": "make files", "agents": [
            agent("a", &a.url, "0.3"), agent("b", &b.url, "1.0"),
            agent("c", &c.url, "0.3"), agent("d", &d.url, "auto")]}),
    )
    .await;
    assert!(find(&frames, "final").len() == 1, "{:?}", events(&frames));
    for f in find(&frames, "task.finished") {
        assert_eq!(f["state"], "completed", "{f}");
    }
    let files = files_by_name(&frames);
    let kept = [
        ("chart.png", "image/png", &png, "inline"),
        ("data.csv", "text/csv", &csv, "attachment"),
        ("notes.txt", "text/plain", &notes, "attachment"),
        (
            "stream.bin",
            "application/octet-stream",
            &streamed,
            "attachment",
        ),
        ("progress.png", "image/png", &streamed_status, "inline"),
    ];
    for (name, media_type, bytes, disposition) in kept {
        let entry = files
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {files:?}"));
        assert_eq!(entry["media_type"], media_type);
        assert_eq!(entry["size"], bytes.len());
        assert!(entry.get("source_url").is_none());
        let url = entry["url"].as_str().unwrap();
        assert!(
            url.starts_with("/plan/") && url.contains("/files/"),
            "{url}"
        );
        let resp = fetch(&gw, TOKEN, url).await;
        assert_eq!(resp.status(), 200, "{name}");
        let h = resp.headers().clone();
        assert_eq!(h["content-type"], media_type);
        assert_eq!(h["x-content-type-options"], "nosniff");
        let cd = h["content-disposition"].to_str().unwrap();
        assert!(
            cd.starts_with(disposition) && cd.contains(name),
            "{name}: {cd}"
        );
        assert_eq!(
            sha(&resp.bytes().await.unwrap()),
            sha(bytes),
            "{name} bytes"
        );
        // Another caller is told nothing exists.
        assert_eq!(fetch(&gw, OTHER, url).await.status(), 404);
    }
    for (name, link) in [("report.pdf", "report.pdf"), ("big.pdf", "big.pdf")] {
        let entry = &files[name];
        assert_eq!(entry["source_url"], format!("{links}/{link}"));
        assert!(entry.get("url").is_none(), "{entry}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the gateway fetched a link");
    // The model read one line per file, never the bytes.
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let sent: String = requests.iter().map(Value::to_string).collect();
    for (name, _, bytes, _) in kept {
        assert!(
            !sent.contains(&b64(bytes)[..64]),
            "{name}'s base64 reached the LLM"
        );
    }
    let tool_messages: Vec<String> = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    let all = tool_messages.join("\n");
    for (name, media_type, bytes, _) in kept {
        let id = files[name]["file_id"].as_str().unwrap();
        let line = format!("[file {id}: {name}, {media_type}, {} bytes]", bytes.len());
        assert!(all.contains(&line), "no {line} in {all}");
    }
    assert!(
        all.contains(": report.pdf, application/pdf, linked]"),
        "{all}"
    );
    // From the step after the first file on, every skill offers `files`.
    let params = &requests[1]["tools"][0]["function"]["parameters"];
    assert_eq!(params["properties"]["files"]["type"], "array", "{params}");
    assert!(
        requests[0]["tools"][0]["function"]["parameters"]["properties"]
            .get("files")
            .is_none(),
        "a plan without files keeps the spec's schema"
    );
}

/// The `[file <id>: <name>, …]` id of `name` in `text`.
fn file_id_in(text: &str, name: &str) -> Option<String> {
    let at = text.find(&format!(": {name}, "))?;
    let start = text[..at].rfind("[file ")? + "[file ".len();
    Some(text[start..at].to_owned())
}

/// The message parts a peer was sent by its first send.
fn sent_parts(peer: &FakePeer) -> Vec<Value> {
    let send = peer
        .requests()
        .into_iter()
        .find(|r| r.method == "message/send" || r.method == "SendMessage")
        .expect("a send");
    send.body["params"]["message"]["parts"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn attachments_and_agents_files_reach_peers_as_file_parts() {
    let attached = payload(120_000, 7);
    let made = payload(80_000, 8);
    let first = FakePeer::start(Script::Artifact(json!([
        {"kind": "text", "text": "made it"},
        {"kind": "file", "file": {"name": "made.bin", "mimeType": "application/octet-stream", "bytes": b64(&made)}}
    ])))
    .await;
    let second = FakePeer::start(Script::Instant).await;
    // The model finds ids in what it reads: the question's lines, then the first call's result.
    let llm = FakeLlm::recording(Box::new(|raw: &[u8]| {
        let text = String::from_utf8_lossy(raw).replace("\\\"", "\"");
        let tools = text.matches(r#""role":"tool""#).count();
        match tools {
            0 => {
                let photo = file_id_in(&text, "photo.jpg").unwrap_or_default();
                let link = file_id_in(&text, "spec.pdf").unwrap_or_default();
                Turn::call(
                    "c1",
                    "call_first_make",
                    json!({"input": "use these", "files": [photo, link]}),
                )
            }
            1 => {
                let made = file_id_in(&text, "made.bin").unwrap_or_default();
                Turn::call(
                    "c2",
                    "call_second_take",
                    json!({"input": "and this", "files": [made]}),
                )
            }
            _ => Turn::text("chained"),
        }
    }))
    .await;
    let gw = gateway(llm_config(&llm.url)).await;
    let frames = plan(
        &gw,
        &json!({"question": "chain the files",
            "attachments": [
                {"name": "photo.jpg", "media_type": "image/jpeg", "data": b64(&attached)},
                {"name": "spec.pdf", "media_type": "application/pdf", "url": "https://files.example/spec.pdf"}],
            "agents": [
                {"name": "first", "endpoint": first.url, "protocol": "0.3", "skills": [{"id": "make"}]},
                {"name": "second", "endpoint": second.url, "protocol": "1.0", "skills": [{"id": "take"}]}]}),
    )
    .await;
    let states: Vec<&Value> = find(&frames, "task.finished")
        .into_iter()
        .map(|f| &f["state"])
        .collect();
    assert_eq!(
        states,
        [&json!("completed"), &json!("completed")],
        "{frames:?}"
    );
    // v0.3: text, then the attachment's bytes, then the link as `uri`.
    let parts = sent_parts(&first);
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(parts[0]["text"], "use these");
    assert_eq!(parts[1]["kind"], "file");
    assert_eq!(parts[1]["file"]["name"], "photo.jpg");
    assert_eq!(parts[1]["file"]["mimeType"], "image/jpeg");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(parts[1]["file"]["bytes"].as_str().unwrap())
        .unwrap();
    assert_eq!(sha(&bytes), sha(&attached));
    assert_eq!(parts[2]["file"]["uri"], "https://files.example/spec.pdf");
    // v1.0: the first agent's file, as `raw`.
    let parts = sent_parts(&second);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!(parts[1]["filename"], "made.bin");
    assert_eq!(parts[1]["mediaType"], "application/octet-stream");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(parts[1]["raw"].as_str().unwrap())
        .unwrap();
    assert_eq!(sha(&bytes), sha(&made));
    // The LLM saw lines, never bytes.
    let sent: String = llm.requests().iter().map(Value::to_string).collect();
    assert!(!sent.contains(&b64(&attached)[..64]));
    assert!(!sent.contains(&b64(&made)[..64]));
    assert!(
        sent.contains(": photo.jpg, image/jpeg, 120000 bytes]"),
        "{sent}"
    );
    // An unknown file id fails that call, with the plan's ids listed.
    let llm = FakeLlm::start(vec![
        Turn::call(
            "c1",
            "call_second_take",
            json!({"input": "x", "files": ["f_nope"]}),
        ),
        Turn::text("ok"),
    ])
    .await;
    let gw2 = gateway(llm_config(&llm.url)).await;
    let frames = plan(
        &gw2,
        &json!({"question": "q", "agents": [
            {"name": "second", "endpoint": second.url, "skills": [{"id": "take"}]}]}),
    )
    .await;
    let f = finished(&frames);
    assert_eq!(f["state"], "failed");
    assert!(
        f["error"]
            .as_str()
            .unwrap()
            .contains("unknown file id \"f_nope\""),
        "{f}"
    );
    assert_eq!(find(&frames, "final").len(), 1);
}

#[tokio::test]
async fn fan_out_sends_every_attachment_to_every_skill() {
    let peer = FakePeer::start(Script::Instant).await;
    let gw = gateway(config()).await;
    let data = payload(5_000, 9);
    let frames = plan(
        &gw,
        &json!({"question": "look", "attachments": [
                {"name": "a.bin", "media_type": "application/octet-stream", "data": b64(&data)}],
            "agents": [{"name": "p", "endpoint": peer.url,
                "skills": [{"id": "one"}, {"id": "two"}]}]}),
    )
    .await;
    assert_eq!(find(&frames, "task.finished").len(), 2);
    let sends: Vec<Value> = peer
        .requests()
        .into_iter()
        .filter(|r| r.method == "message/send")
        .map(|r| r.body)
        .collect();
    assert_eq!(sends.len(), 2);
    for send in sends {
        let parts = &send["params"]["message"]["parts"];
        assert_eq!(parts[0]["text"], "look");
        assert_eq!(parts[1]["file"]["name"], "a.bin");
        assert_eq!(parts[1]["file"]["bytes"], b64(&data));
    }
}

#[tokio::test]
async fn limits_fail_a_call_or_refuse_a_request_naming_the_limit() {
    let big = payload(3_000, 10);
    let small = payload(500, 11);
    let peer = FakePeer::start(Script::PerSkill {
        skills: vec![
            (
                "big".to_owned(),
                Script::Artifact(json!([
                    {"kind": "file", "file": {"name": "big.bin", "mimeType": "application/octet-stream", "bytes": b64(&big)}}])),
            ),
            (
                "text".to_owned(),
                Script::Artifact(json!([{"kind": "text", "text": "x".repeat(5_000)}])),
            ),
        ],
        otherwise: Box::new(Script::Artifact(json!([
            {"kind": "file", "file": {"name": "small.bin", "mimeType": "application/octet-stream", "bytes": b64(&small)}}]))),
    })
    .await;
    let llm = FakeLlm::start(vec![
        Turn::calls(&[
            ("c1", "call_p_big", json!({"input": "x"})),
            ("c2", "call_p_small", json!({"input": "x"})),
            ("c3", "call_p_text", json!({"input": "x"})),
        ]),
        Turn::text("done"),
    ])
    .await;
    let mut c = llm_config(&llm.url);
    c.files.max_file_bytes = 2_000;
    c.files.max_attachments = 2;
    // Answers hold 4 KiB besides their files: a 3 000-byte file (4 000 bytes of base64) is
    // held to the file cap, a 5 000-character text to this.
    c.a2a.max_response_bytes = 4_096;
    let gw = gateway(c).await;
    let frames = plan(
        &gw,
        &json!({"question": "q", "agents": [{"name": "p", "endpoint": peer.url,
            "skills": [{"id": "big"}, {"id": "small"}, {"id": "text"}]}]}),
    )
    .await;
    assert_eq!(find(&frames, "final").len(), 1, "the plan goes on");
    let by_task = |id: &str| {
        find(&frames, "task.finished")
            .into_iter()
            .find(|f| f["task_id"] == id)
            .unwrap()
            .clone()
    };
    let big_call = by_task("c1");
    assert_eq!(big_call["state"], "failed");
    assert!(
        big_call["error"]
            .as_str()
            .unwrap()
            .contains("over files.max_file_bytes (2000)"),
        "{big_call}"
    );
    assert_eq!(by_task("c2")["state"], "completed");
    let text_call = by_task("c3");
    assert_eq!(text_call["state"], "failed");
    assert!(
        text_call["error"]
            .as_str()
            .unwrap()
            .contains("exceeds 4096 bytes"),
        "{text_call}"
    );
    // Attachments over a limit: 413 naming it.
    let refuse = |attachments: Value| {
        let url = gw.url.clone();
        async move {
            let resp = http()
                .post(format!("{url}/plan"))
                .bearer_auth(TOKEN)
                .json(&json!({"question": "q", "attachments": attachments,
                    "agents": [{"name": "p", "endpoint": "http://127.0.0.1:9", "skills": [{"id": "s"}]}]}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let one = |bytes: &[u8]| json!({"name": "a", "media_type": "text/plain", "data": b64(bytes)});
    let (status, body) = refuse(json!([one(&big)])).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("attachments.0.data: 3000 bytes, over files.max_file_bytes (2000)"),
        "{body}"
    );
    let (status, body) = refuse(json!([one(&small), one(&small), one(&small)])).await;
    assert_eq!(status, 413);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("files.max_attachments"),
        "{body}"
    );
    // A malformed attachment is a 400 naming the field.
    let (status, body) =
        refuse(json!([{"name": "a", "media_type": "text/plain", "data": "%%%"}])).await;
    assert_eq!(status, 400);
    assert_eq!(body["issues"][0]["path"], "attachments.0.data", "{body}");
}

#[tokio::test]
async fn the_oldest_files_are_evicted_past_the_total() {
    let bytes = payload(4_000, 12);
    let peer = FakePeer::start(Script::Artifact(json!([
        {"kind": "file", "file": {"name": "f.bin", "mimeType": "application/octet-stream", "bytes": b64(&bytes)}}])))
    .await;
    let mut c = config();
    c.files.max_total_bytes = 10_000;
    let gw = gateway(c).await;
    let mut urls = Vec::new();
    for _ in 0..3 {
        let frames = plan(
            &gw,
            &json!({"question": "q", "agents": [{"name": "p", "endpoint": peer.url, "skills": [{"id": "s"}]}]}),
        )
        .await;
        urls.push(
            files_by_name(&frames)["f.bin"]["url"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Three 4 000-byte files in 10 000 bytes: the first went.
    assert_eq!(fetch(&gw, TOKEN, &urls[0]).await.status(), 404);
    for url in &urls[1..] {
        let resp = fetch(&gw, TOKEN, url).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(sha(&resp.bytes().await.unwrap()), sha(&bytes));
    }
}

/// A gateway whose `default` catalog holds one agent that returns a small image and a larger
/// file, in fan-out mode; `files.inline_answer_bytes` sits between the two.
async fn door_gateway(peer: &FakePeer) -> TestGateway {
    let path = std::env::temp_dir().join(format!("plangate-files-{}.json", uuid::Uuid::new_v4()));
    let catalogs = json!({"catalogs": {"default": {"description": "makes files",
        "agents": [peer.agent("maker", "make")]}}});
    std::fs::write(&path, serde_json::to_vec(&catalogs).unwrap()).unwrap();
    let mut c = config();
    c.catalog_file = Some(path);
    c.files.inline_answer_bytes = 10_000;
    gateway(c).await
}

fn door_peer_files() -> (Vec<u8>, Vec<u8>, Script) {
    let small = payload(2_000, 20);
    let large = payload(50_000, 21);
    let script = Script::Artifact(json!([
        {"kind": "text", "text": "two files"},
        {"kind": "file", "file": {"name": "small.png", "mimeType": "image/png", "bytes": b64(&small)}},
        {"kind": "file", "file": {"name": "large.bin", "mimeType": "application/octet-stream", "bytes": b64(&large)}}
    ]));
    (small, large, script)
}

/// The bytes behind a link to the gateway's files route, fetched with `token`.
async fn fetch_link(link: &str, token: &str) -> Vec<u8> {
    let resp = http().get(link).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{link}");
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn the_a2a_door_gives_files_as_file_parts_to_the_a2a_sdk_client() {
    let Some(python) = a2a_python() else {
        return;
    };
    let (small, large, script) = door_peer_files();
    let peer = FakePeer::start(script).await;
    let gw = door_gateway(&peer).await;
    for dialect in ["1.0", "0.3"] {
        let seen = run_json(
            &python,
            "tests/peers/a2a_door_client.py",
            &json!({"url": gw.url, "token": TOKEN, "dialect": dialect, "steps": [
                {"op": "send", "text": "make files", "mode": "blocking"}]}),
        )
        .await;
        let task = &seen["results"][0]["events"][0]["task"];
        assert_eq!(
            task["status"]["state"], "TASK_STATE_COMPLETED",
            "{dialect}: {task}"
        );
        let parts = task["artifacts"][0]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 3, "{dialect}: {parts:?}");
        // Small: inline bytes, as the SDK decoded them from the wire.
        assert_eq!(parts[1]["filename"], "small.png", "{dialect}");
        assert_eq!(parts[1]["mediaType"], "image/png");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(parts[1]["raw"].as_str().unwrap())
            .unwrap();
        assert_eq!(sha(&raw), sha(&small), "{dialect}");
        // Large: a link to the gateway's files route, for the same caller.
        assert_eq!(parts[2]["filename"], "large.bin");
        let link = parts[2]["url"].as_str().unwrap();
        assert!(link.starts_with(&format!("{}/plan/", gw.url)), "{link}");
        assert_eq!(
            sha(&fetch_link(link, TOKEN).await),
            sha(&large),
            "{dialect}"
        );
    }
}

#[tokio::test]
async fn the_mcp_and_openai_doors_link_the_files_for_their_sdks() {
    let Some(python) = clients_python() else {
        return;
    };
    let (small, large, script) = door_peer_files();
    let peer = FakePeer::start(script).await;
    let gw = door_gateway(&peer).await;
    let seen = run_json(
        &python,
        "tests/clients/files_client.py",
        &json!({"url": gw.url, "token": TOKEN, "question": "make files", "model": "plangate/default"}),
    )
    .await;
    // MCP: the answer, then a resource link per file (the SDK's ResourceLink).
    let content = seen["mcp"]["content"].as_array().unwrap();
    assert_eq!(seen["mcp"]["isError"], false, "{seen}");
    assert_eq!(content[0]["type"], "text");
    let links: Vec<&Value> = content
        .iter()
        .filter(|c| c["type"] == "resource_link")
        .collect();
    assert_eq!(links.len(), 2, "{content:?}");
    for (link, name, media_type, bytes) in [
        (links[0], "small.png", "image/png", &small),
        (links[1], "large.bin", "application/octet-stream", &large),
    ] {
        assert_eq!(link["name"], name);
        assert_eq!(link["mimeType"], media_type);
        assert_eq!(link["size"], bytes.len());
        let fetched = fetch_link(link["uri"].as_str().unwrap(), TOKEN).await;
        assert_eq!(sha(&fetched), sha(bytes), "{name}");
    }
    // OpenAI: Markdown links after the answer.
    let text = seen["openai"]["content"].as_str().unwrap();
    assert!(text.contains("two files"), "{text}");
    for (name, bytes) in [("small.png", &small), ("large.bin", &large)] {
        let at = text
            .find(&format!("[{name}]("))
            .unwrap_or_else(|| panic!("{text}"));
        let rest = &text[at + name.len() + 3..];
        let link = &rest[..rest.find(')').unwrap()];
        assert_eq!(sha(&fetch_link(link, TOKEN).await), sha(bytes), "{name}");
    }
}

/// The PNG the real test agents return (tests/peers/*_file_agent.py read the same file).
fn chart_png() -> Vec<u8> {
    std::fs::read(repo().join("fixtures/files/chart.png")).unwrap()
}

/// A plan whose model hands the attachment `notes.txt` to `agent`'s skill `skill`, then
/// answers; its frames.
async fn hand_over(agent: Value, tool: &'static str, notes: &[u8]) -> Vec<Frame> {
    let llm = FakeLlm::recording(Box::new(move |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        if text.contains(r#""role":"tool""#) {
            return Turn::text("done");
        }
        let id = file_id_in(&text, "notes.txt").unwrap_or_default();
        Turn::call("c1", tool, json!({"input": "draw a chart", "files": [id]}))
    }))
    .await;
    let gw = gateway(llm_config(&llm.url)).await;
    let frames = plan(
        &gw,
        &json!({"question": "chart my notes", "agents": [agent],
            "attachments": [{"name": "notes.txt", "media_type": "text/plain", "data": b64(notes)}]}),
    )
    .await;
    let entry = files_by_name(&frames)
        .remove("chart.png")
        .unwrap_or_else(|| panic!("no chart.png: {frames:?}"));
    assert_eq!(entry["media_type"], "image/png");
    let fetched = fetch(&gw, TOKEN, entry["url"].as_str().unwrap()).await;
    assert_eq!(
        fetched.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("inline")
    );
    assert_eq!(
        sha(&fetched.bytes().await.unwrap()),
        sha(&chart_png()),
        "the PNG arrived intact"
    );
    let sent: String = llm.requests().iter().map(Value::to_string).collect();
    assert!(
        !sent.contains(&b64(&chart_png())[..64]),
        "the PNG reached the LLM"
    );
    frames
}

#[tokio::test]
async fn a_real_a2a_sdk_agent_takes_a_file_and_returns_a_png_in_both_dialects() {
    let Some(url) = peer_url("PLANGATE_A2A_FILES_URL", "PLANGATE_REQUIRE_A2A") else {
        return;
    };
    let notes = b"rain 12mm\nsun 6h\n".to_vec();
    for protocol in ["1.0", "0.3"] {
        let agent = json!({"name": "charts", "endpoint": url, "protocol": protocol,
            "skills": [{"id": "chart", "description": "Draws a chart as a PNG"}]});
        let frames = hand_over(agent, "call_charts_chart", &notes).await;
        let artifact = &find(&frames, "task.artifact")[0];
        let content = artifact["content"].as_str().unwrap();
        // The agent saw the attachment's exact bytes (it reports their sha256).
        assert!(
            content.contains(&format!("got notes.txt text/plain {}", sha(&notes))),
            "{protocol}: {content}"
        );
        assert!(content.contains(&format!("sent chart.png {}", sha(&chart_png()))));
    }
}

#[tokio::test]
async fn a_real_bindu_agent_takes_a_file_and_its_wrapped_png_arrives_intact() {
    let Some(url) = peer_url("PLANGATE_BINDU_FILES_URL", "PLANGATE_REQUIRE_PEERS") else {
        return;
    };
    let notes = b"wind 4 Bft\n".to_vec();
    let agent = json!({"name": "bindu", "endpoint": url, "protocol": "0.3",
        "skills": [{"id": "chart", "description": "Draws a chart as a PNG"}]});
    let frames = hand_over(agent, "call_bindu_chart", &notes).await;
    // Bindu wraps its handler's file in a data part: the gateway took it out, and the data
    // the model read holds a placeholder, not the bytes.
    let content = find(&frames, "task.artifact")[0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        content.contains(r#""result":"[file chart.png]""#),
        "{content}"
    );
    // Bindu kept the file part it was sent, with the attachment's bytes.
    let task_id = finished(&frames)["remote_task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let task = peer_rpc(&url, "tasks/get", json!({"taskId": task_id}), None).await;
    let sent = task["result"]["history"][0]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "file")
        .cloned()
        .unwrap_or_else(|| panic!("{task}"));
    assert_eq!(sent["file"]["name"], "notes.txt");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sent["file"]["bytes"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, notes);
}
