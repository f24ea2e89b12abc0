//! The gateway's own URL as a caller reached it, for links in answers (agent cards, files):
//! `a2a_server.public_url` when set, else `http://<Host>` of the request.

use axum::http::{HeaderMap, header};

/// `public_url`, else `http://<Host>` (a Host that is not a plain host name or address gives
/// `localhost`).
#[must_use]
pub fn base_url(public_url: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(url) = public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}
