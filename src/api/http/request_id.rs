//! `X-Request-Id`: taken from the request when sane, else generated, and on every response.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName};

use crate::telemetry::is_sane_request_id;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id the middleware settled on (the request's span carries it too).
#[must_use]
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A client's `X-Request-Id` that is not sane is dropped (a fresh one is generated).
pub async fn drop_insane(mut req: Request) -> Request {
    let insane = req
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|v| !v.to_str().is_ok_and(is_sane_request_id));
    if insane {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}
