//! The floor: a minimal tokio program that copies the fake LLM's response chunks from one loopback
//! socket to another, measured exactly like the gateway (its own process, its CPU clock, the slope
//! between 300-token and 1-token answers), so each run re-measures what relaying a token costs at
//! the least on this machine beside what the gateway spends.
//!
//! Flavours: `current-thread` (one thread does everything), `multi-thread` (a 2-worker runtime,
//! the gateway's default) and `channel` (2 workers, and every chunk crosses from a reader task to
//! a writer task through a channel, as a planner hands text to a response stream).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use plangate_testkit::free_port;

use crate::{Report, cpu_ns_of, median};

pub(crate) const FLAVOURS: [&str; 3] = ["current-thread", "multi-thread", "channel"];

/// Serves the relay on `port` until killed (the `relay` mode of the binary).
pub(crate) fn serve(port: u16, upstream: &str, flavour: &str) {
    let upstream: SocketAddr = upstream.parse().expect("--upstream host:port");
    let runtime = match flavour {
        "current-thread" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .expect("runtime");
    let channel = flavour == "channel";
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let tracker = tokio_util::task::TaskTracker::new();
        while let Ok((client, _)) = listener.accept().await {
            tracker.spawn(async move {
                let _ = relay(client, upstream, channel).await;
            });
        }
    });
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Reads the client's request, sends it upstream and copies the answer back chunk by chunk.
async fn relay(mut client: TcpStream, upstream: SocketAddr, channel: bool) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut request = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(h) = request.windows(4).position(|w| w == b"\r\n\r\n")
            && request.len() >= h + 4 + content_length(&request[..h])
        {
            break;
        }
    }
    let mut up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    up.write_all(&request).await?;
    if channel {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let reader = tokio_util::task::TaskTracker::new();
        reader.spawn(async move {
            let mut buf = BytesMut::with_capacity(16 * 1024);
            loop {
                buf.reserve(16 * 1024);
                match up.read_buf(&mut buf).await {
                    Ok(n) if n > 0 => {
                        if tx.send(buf.split().freeze()).await.is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        });
        while let Some(piece) = rx.recv().await {
            client.write_all(&piece).await?;
        }
    } else {
        loop {
            let n = up.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            client.write_all(&buf[..n]).await?;
        }
    }
    client.shutdown().await
}

struct Relay {
    child: Child,
    port: u16,
}

impl Relay {
    fn start(upstream: &str, flavour: &str) -> Self {
        let port = free_port();
        let child = Command::new(std::env::current_exe().expect("current exe"))
            .args(["relay", "--relay-port", &port.to_string()])
            .args(["--upstream", upstream, "--flavour", flavour])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn the relay");
        let t0 = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(5), "relay did not start");
            std::thread::sleep(Duration::from_millis(2));
        }
        Self { child, port }
    }

    /// One answer through the relay; returns the relay's CPU for it (ns).
    async fn run(&self, tokens: usize, gap_ms: u64) -> f64 {
        let body = format!(
            r#"{{"model":"bench","stream":true,"messages":[{{"role":"user","content":"[rt:tokens:{tokens}:{gap_ms}]"}}]}}"#
        );
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: llm\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let c0 = cpu_ns_of(self.child.id());
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to the relay");
        s.set_nodelay(true).expect("nodelay");
        s.write_all(request.as_bytes()).await.expect("request");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("relayed answer");
        assert!(
            got.windows(12).any(|w| w == b"data: [DONE]"),
            "the relay did not pass the whole answer"
        );
        // The relay's last wake-ups (closing both sockets) belong to this answer too.
        tokio::time::sleep(Duration::from_millis(5)).await;
        (cpu_ns_of(self.child.id()) - c0) as f64
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU per relayed chunk (µs) back to back and paced, for every flavour.
pub(crate) async fn measure(r: &mut Report, llm_url: &str, paced_plans: usize) {
    let upstream = llm_url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    for flavour in FLAVOURS {
        let relay = Relay::start(&upstream, flavour);
        for _ in 0..5 {
            relay.run(super::realistic::LONG, 0).await;
        }
        let slope = |long: &mut Vec<f64>, one: &mut Vec<f64>| {
            (median(long) - median(one)) / (super::realistic::LONG - 1) as f64 / 1000.0
        };
        let (mut long, mut one) = (Vec::new(), Vec::new());
        for _ in 0..paced_plans * 5 {
            long.push(relay.run(super::realistic::LONG, 0).await);
            one.push(relay.run(1, 0).await);
        }
        let b2b = slope(&mut long, &mut one);
        let (mut long, mut one) = (Vec::new(), Vec::new());
        for _ in 0..paced_plans {
            long.push(
                relay
                    .run(super::realistic::LONG, super::realistic::PACE)
                    .await,
            );
            one.push(relay.run(1, super::realistic::PACE).await);
        }
        let paced = slope(&mut long, &mut one);
        relay.stop();
        let key = flavour.replace('-', "_");
        r.add(
            Some(&format!("floor_{key}_per_token_b2b_us")),
            &format!("floor ({flavour} relay): CPU per relayed chunk, back to back"),
            b2b,
            "µs",
            "",
        );
        r.add(
            Some(&format!("floor_{key}_per_token_paced_us")),
            &format!(
                "floor ({flavour} relay): CPU per relayed chunk, {} ms apart",
                super::realistic::PACE
            ),
            paced,
            "µs",
            "",
        );
    }
}
