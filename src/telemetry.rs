//! Logging: `tracing` to stderr, filter from `RUST_LOG` (default `info`). Secrets never reach a
//! log line: they are `SecretString`s and sensitive header values.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
