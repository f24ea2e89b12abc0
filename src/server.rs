//! Binding and serving: our own accept loop over hyper (axum's `serve` has no timeouts and no
//! connection cap). Per connection: TCP_NODELAY, a header-read timeout that also closes idle
//! keep-alive connections (hyper starts it whenever the connection waits for a request head),
//! a write timeout (a client that stops reading is disconnected), and a slot among
//! `server.max_connections` (beyond it: 503 and close). Request bodies have
//! their own timeout where they are read (`server.body_read_timeout_ms`).
//!
//! Shutdown: on the signal, new connections are no longer accepted; open connections keep
//! answering (new plans get 503, `/ready` 503) with `Connection: close` on every response; running
//! plans get `server.shutdown_grace`, then
//! they are aborted (`error "gateway shutting down"` + `done`); [`CLOSE_AFTER_ABORT`] later every
//! connection still open is dropped, whatever its client does, and the spawned tasks get what is
//! left of [`DRAIN_AFTER_ABORT`] to finish. The process is gone by grace + 1 s.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use crate::state::AppState;

/// After the plans were aborted: how long their last frames may take before connections close.
const CLOSE_AFTER_ABORT: Duration = Duration::from_millis(500);
/// After the plans were aborted: how long best-effort peer cancels may still run.
const DRAIN_AFTER_ABORT: Duration = Duration::from_millis(900);
/// How often buffered histogram samples are drained.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);
/// How long a refused connection gets to take its 503.
const REFUSAL_WRITE_LIMIT: Duration = Duration::from_secs(1);

/// Serves on `listener` until `shutdown` completes and every plan has ended.
///
/// # Errors
/// Never at present; kept for callers that treat serving as fallible.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = api::router(state.clone());
    let slots = Arc::new(Semaphore::new(state.config().server.max_connections));
    let connections = TaskTracker::new();
    // Fires CLOSE_AFTER_ABORT after the plans were aborted: drop every connection.
    let close = CancellationToken::new();
    tokio::pin!(shutdown);
    let mut upkeep = tokio::time::interval(METRICS_UPKEEP);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            // Histogram samples are buffered until drained: drain them even when nobody scrapes.
            _ = upkeep.tick() => {
                state.metrics().upkeep();
                continue;
            }
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors (EMFILE) and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Frames are small writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
        let _ = tcp.set_nodelay(true);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            connections.spawn(refuse(tcp));
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let close = close.clone();
        let header_read_timeout = state.config().server.header_read_timeout;
        let write_timeout = state.config().server.write_timeout;
        connections.spawn(async move {
            // A client that stops reading stalls our writes: past the write timeout the
            // connection fails, its response body is dropped and its plan aborted.
            let mut io = tokio_io_timeout::TimeoutStream::new(tcp);
            io.set_write_timeout(Some(write_timeout));
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            builder.http2().timer(TokioTimer::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(Box::pin(io)), service);
            tokio::pin!(conn);
            // While draining, open connections keep answering (new plans get 503, `/ready` 503)
            // and each response asks the client to close (`Connection: close`, see the doors'
            // middleware); whatever is still open is dropped when `close` fires.
            tokio::select! {
                _ = conn.as_mut() => {}
                () = close.cancelled() => {}
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutdown requested; draining running plans");
    state.begin_draining();
    connections.close();
    // Plans get the grace period (they may all end sooner).
    tokio::select! {
        () = tokio::time::sleep(state.config().server.shutdown_grace) => {}
        () = plans_ended(&state) => {}
    }
    state.runs().hard_stop().cancel();
    let aborted = tokio::time::Instant::now();
    tokio::select! {
        () = tokio::time::sleep(CLOSE_AFTER_ABORT) => {}
        () = connections.wait() => {}
    }
    close.cancel();
    state.runs().tracker().close();
    if tokio::time::timeout_at(aborted + DRAIN_AFTER_ABORT, state.runs().tracker().wait())
        .await
        .is_err()
    {
        tracing::warn!("some background tasks did not finish in time");
    }
    Ok(())
}

/// Resolves once no plan is running.
async fn plans_ended(state: &AppState) {
    while state.runs().open_plans() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Answers a connection beyond `server.max_connections` with 503 and closes it. The request head
/// is read first (bounded in size and time): a response sent before the request confuses HTTP
/// clients, which then report a protocol error instead of the 503.
async fn refuse(mut tcp: TcpStream) {
    const BODY: &str = r#"{"error":"overloaded","detail":"too many open connections"}"#;
    const HEAD_LIMIT: usize = 16 * 1024;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE_LIMIT, async {
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while head.len() < HEAD_LIMIT && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// Raises the soft open-files limit to the hard one: every client connection and peer socket is
/// a descriptor, and distributions often start services with a soft limit of 1024. Returns the
/// limit now in force, when it could be read.
#[must_use]
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    // "Unlimited" hard limits are capped by the kernel's nr_open; ask for a large finite value.
    let target = limit.maximum.unwrap_or(1 << 20);
    if current >= target {
        return Some(current);
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    ) {
        Ok(()) => Some(target),
        Err(e) => {
            tracing::warn!(error = %e, current, target, "cannot raise the open-files limit");
            Some(current)
        }
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
