//! `files`: what big files cost the gateway's memory. Two bursts, each on a fresh gateway in
//! fan-out mode with the default `[files]` caps:
//!
//! - attachments: 4 `/plan` requests at once, each carrying a 10 MiB attachment (a 13.4 MiB body)
//!   that the gateway keeps and sends on to a peer;
//! - agents' files: 100 plans, 4 at a time, each getting a 10 MiB file from its peer (13.4 MiB
//!   of base64 in the answer), kept by the gateway: 1 000 MiB in all against
//!   `files.max_total_bytes` (256 MiB), so the oldest are evicted as the burst goes.
//!
//! Each reports resident memory before, its peak during the burst (sampled every 20 ms), and
//! ten seconds after the burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use plangate_testkit::peer::{FakePeer, PeerOptions, Script};
use serde_json::json;

use crate::{Gateway, Report, client};

const MIB: usize = 1024 * 1024;

/// `n` bytes that do not compress (a file's bytes, not a run of zeros).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Samples the gateway's resident memory until stopped; the peak in KiB.
struct Peak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Peak {
    fn watch(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self { stop, peak, thread }
    }

    fn end(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `bodies` as plans, `concurrency` at a time; each must end with `done`.
async fn burst(url: &str, bodies: Vec<String>, concurrency: usize) {
    let http = client();
    futures::stream::iter(bodies)
        .for_each_concurrent(concurrency, |body| {
            let http = http.clone();
            async move {
                let resp = http
                    .post(format!("{url}/plan"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("plan request");
                assert_eq!(resp.status(), 200, "plan refused");
                let text = resp.text().await.expect("plan stream");
                assert!(text.ends_with("event: done\ndata: {}\n\n"), "no done");
                assert!(
                    !text.contains("\"state\":\"failed\""),
                    "a call failed: {}",
                    &text[..text.len().min(2000)]
                );
            }
        })
        .await;
}

/// Baseline, peak and ten-seconds-after RSS of one burst on a fresh gateway.
async fn measure_burst(r: &mut Report, key: &str, label: &str, bodies: Vec<String>, kept_mib: f64) {
    let (gw, _) = Gateway::start(&[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = gw.rss_kib();
    let peak = Peak::watch(gw.pid);
    burst(&gw.url(), bodies, 4).await;
    let peak = peak.end();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = gw.rss_kib();
    gw.stop();
    let mib = |k: u64| k as f64 / 1024.0;
    r.add(
        Some(&format!("{key}_before_mib")),
        &format!("{label}: RSS before"),
        mib(before),
        "MiB",
        "",
    );
    r.add(
        Some(&format!("{key}_peak_mib")),
        &format!("{label}: RSS peak"),
        mib(peak),
        "MiB",
        "bounded by files.max_total_bytes + what is in flight",
    );
    r.add(
        Some(&format!("{key}_after_mib")),
        &format!("{label}: RSS 10 s after"),
        mib(after),
        "MiB",
        &format!(
            "near the baseline + the {kept_mib:.0} MiB of files kept ({:.0} MiB)",
            mib(before) + kept_mib
        ),
    );
}

pub(crate) async fn measure(r: &mut Report) {
    let quiet = || PeerOptions {
        card: Some(json!({"name": "p", "capabilities": {"streaming": false}})),
        quiet: true,
        ..PeerOptions::default()
    };
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    // Attachments: 4 × 10 MiB (files.max_file_bytes) at once, sent on to a peer that answers.
    let sink = FakePeer::start_with(Script::Instant, quiet()).await;
    let attachment = b64(&noise(10 * MIB));
    let bodies = (0..4)
        .map(|i| {
            json!({"question": format!("attachment {i}"),
                "attachments": [{"name": "a.bin", "media_type": "application/octet-stream", "data": attachment}],
                "agents": [{"name": "sink", "endpoint": sink.url, "skills": [{"id": "take"}]}]})
            .to_string()
        })
        .collect();
    // The four attachments stay kept (files.retention_secs).
    measure_burst(
        r,
        "files_attachments",
        "4 × 10 MiB attachments at once",
        bodies,
        40.0,
    )
    .await;
    // Agents' files: 100 plans each getting a 10 MiB file.
    let maker = FakePeer::start_with(
        Script::Artifact(json!([{"kind": "file", "file": {"name": "big.bin",
            "mimeType": "application/octet-stream", "bytes": b64(&noise(10 * MIB))}}])),
        quiet(),
    )
    .await;
    let bodies = (0..100)
        .map(|i| {
            json!({"question": format!("file {i}"),
                "agents": [{"name": "maker", "endpoint": maker.url, "skills": [{"id": "make"}]}]})
            .to_string()
        })
        .collect();
    // files.max_total_bytes (256 MiB) keeps the last 25 of them.
    measure_burst(
        r,
        "files_agents",
        "100 plans × a 10 MiB file",
        bodies,
        250.0,
    )
    .await;
}
