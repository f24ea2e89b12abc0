//! Binding and serving: axum with graceful shutdown. On the shutdown signal new plans get 503,
//! running plans get `server.shutdown_grace` to finish, then they are aborted (`error
//! "gateway shutting down"` + `done`), and every spawned task is awaited before returning.

use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::api;
use crate::config::ConfigError;
use crate::state::AppState;

/// How long to wait for best-effort peer cancels after the server stopped.
const DRAIN_LIMIT: Duration = Duration::from_secs(12);

/// Binds the configured address.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(state: &AppState) -> Result<TcpListener, ConfigError> {
    let addr = format!(
        "{}:{}",
        state.config.server.hostname, state.config.server.port
    );
    TcpListener::bind(&addr)
        .await
        .map_err(|e| ConfigError(format!("cannot listen on {addr}: {e}")))
}

/// Serves on `listener` until `shutdown` completes and every plan has ended.
///
/// # Errors
/// The server failed.
pub async fn serve_on(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let draining = state.draining.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutdown requested; draining running plans");
        draining.cancel();
    };
    let hard_stop = {
        let state = state.clone();
        async move {
            state.draining.cancelled().await;
            tokio::time::sleep(state.config.server.shutdown_grace).await;
            state.hard_stop.cancel();
            std::future::pending::<()>().await;
        }
    };
    let server = axum::serve(
        listener.tap_io(|tcp| {
            // Frames are small writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
            let _ = tcp.set_nodelay(true);
        }),
        api::router(state.clone()),
    )
    .with_graceful_shutdown(graceful);
    let result = tokio::select! {
        r = server.into_future() => r,
        () = hard_stop => Ok(()),
    };
    state.hard_stop.cancel();
    state.tracker.close();
    if tokio::time::timeout(DRAIN_LIMIT, state.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some background tasks did not finish in time");
    }
    result
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
