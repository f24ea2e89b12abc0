//! HTTP pieces every peer request shares: the `A2A-Version` header, bounded body reads, the
//! mapping of send failures, and the one rule for per-request timeouts inside a call budget.

use std::time::{Duration, Instant};

use reqwest::header::HeaderName;

use crate::a2a::error::A2aError;
use crate::a2a::guard;
use crate::telemetry::error_chain;

/// The `A2A-Version` request header.
pub(crate) const A2A_VERSION: HeaderName = HeaderName::from_static("a2a-version");

/// How long the next request of a call may take: `a2a.request_timeout_ms`, never past the call
/// budget. [`A2aError::BudgetSpent`] when nothing is left.
pub(crate) fn request_window(
    request_timeout: Duration,
    budget_end: Instant,
) -> Result<Duration, A2aError> {
    let now = Instant::now();
    if now >= budget_end {
        return Err(A2aError::BudgetSpent);
    }
    Ok(request_timeout.min(budget_end - now))
}

/// What a request that ran out of its window failed with: the budget, when that is what ended,
/// else the per-request timeout.
pub(crate) fn window_closed(budget_end: Instant) -> A2aError {
    if Instant::now() >= budget_end {
        A2aError::BudgetSpent
    } else {
        A2aError::RequestTimeout
    }
}

/// The error of a request that could not be sent: the guard's refusal as is (not retryable),
/// anything else as a retryable transport error with its cause chain.
pub(crate) fn send_error(e: &reqwest::Error) -> A2aError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<guard::Refused>() {
            return A2aError::transport(refused.to_string(), false);
        }
        source = err.source();
    }
    A2aError::transport(error_chain(e), true)
}

/// The error of an answer over `a2a.max_response_bytes`.
pub(crate) fn too_large(limit: usize) -> A2aError {
    A2aError::transport(format!("peer response exceeds {limit} bytes"), false)
}

/// Holds a JSON answer of `len` bytes, read within `limit` + the file allowance, to `limit`
/// once the base64 text of its inline files is set aside: those bytes answer to the file caps
/// (`files.*`), whoever keeps the files.
pub(crate) fn check_answer_size(
    len: usize,
    answer: &serde_json::Value,
    limit: usize,
) -> Result<(), A2aError> {
    if len > limit && len.saturating_sub(crate::a2a::wire::inline_file_len(answer)) > limit {
        return Err(too_large(limit));
    }
    Ok(())
}

/// Reads a response body, refusing to buffer more than `limit` bytes.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, A2aError> {
    // A declared length sizes the buffer once (a large answer is not copied as it doubles).
    let declared = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    if declared > limit {
        return Err(too_large(limit));
    }
    let mut body = Vec::with_capacity(declared);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(A2aError::transport(
                        format!("peer response exceeds {limit} bytes"),
                        false,
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => {
                crate::telemetry::memory::large_payload(body.len());
                return Ok(body);
            }
            Err(e) => return Err(A2aError::transport(error_chain(&e), true)),
        }
    }
}
