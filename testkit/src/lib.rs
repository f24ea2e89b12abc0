//! plangate's test fakes, shared by the integration tests and `plangate-bench`: the only things a
//! test may fake are the outside systems, and each is faked once.
//!
//! - [`llm::FakeLlm`]: an OpenAI-compatible Chat Completions server, scripted turn by turn (tests)
//!   or answering by a policy (benchmarks), recording what it was sent;
//! - [`peer::FakePeer`]: an A2A peer in both dialects (v0.3 and v1.0), scripted per peer or per
//!   skill: polling, streaming, failures, refusals;
//! - [`hydra::FakeHydra`]: Ory Hydra's admin API and token endpoint.
//!
//! Every fake listens on a fresh loopback port and lives as long as its runtime.

pub mod hydra;
pub mod llm;
pub mod peer;

use std::time::{Duration, Instant};

use axum::Router;
use axum::serve::ListenerExt;

/// Serves `app` on a fresh loopback port (TCP_NODELAY on) until the runtime ends; returns
/// `http://127.0.0.1:<port>`.
///
/// # Panics
/// When no loopback port can be bound.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot bind a loopback port for a fake: {e}"));
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake listener has no address: {e}"))
    );
    #[expect(
        clippy::disallowed_methods,
        reason = "a fake lives as long as its runtime"
    )]
    tokio::spawn(async move {
        // Frames are small writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// A loopback port that was free a moment ago (for a process the caller starts itself).
///
/// # Panics
/// When no loopback port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
}

/// Waits `d` precisely and returns how long it really took: the tokio timer wheel can fire a
/// millisecond or more late, which a benchmark would count as gateway latency.
pub async fn precise_sleep(d: Duration) -> Duration {
    let t0 = Instant::now();
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
    t0.elapsed()
}

/// Time the fakes spent waiting on purpose, by tag (a plan's question or a peer input), so a
/// benchmark can subtract it from a plan's wall time.
#[derive(Debug, Default)]
pub struct DelayLog(std::sync::Mutex<DelayTotals>);

#[derive(Debug, Default)]
struct DelayTotals {
    by_tag: std::collections::HashMap<String, Duration>,
    total: Duration,
    waits: usize,
}

impl DelayLog {
    /// Adds `took` to `tag`.
    pub fn add(&self, tag: &str, took: Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t.by_tag.entry(tag.to_owned()).or_default() += took;
            t.total += took;
            t.waits += 1;
        }
    }

    /// The time recorded for `tag`.
    pub fn of(&self, tag: &str) -> Duration {
        self.0
            .lock()
            .ok()
            .and_then(|t| t.by_tag.get(tag).copied())
            .unwrap_or_default()
    }

    /// The mean length of one wait since the last [`DelayLog::clear`].
    pub fn mean(&self) -> Duration {
        self.0.lock().map_or(Duration::ZERO, |t| {
            t.total / u32::try_from(t.waits.max(1)).unwrap_or(u32::MAX)
        })
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = DelayTotals::default();
        }
    }
}
