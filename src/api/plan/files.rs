//! `GET /plan/{plan_id}/files/{file_id}`: a file of a plan (an agent's, or the client's
//! attachment), to the caller that started the plan only (anyone else gets 404, as for a file
//! that never was), while it is kept: `files.retention_secs` after the plan ended, unless the
//! oldest-first eviction of `files.max_total_bytes` took it first. Served with its media type,
//! `X-Content-Type-Options: nosniff` and `Content-Disposition: attachment`, except a short list
//! of image types a browser shows inline without running anything.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::http::caller::Caller;
use crate::api::http::error::ApiError;
use crate::state::AppState;

/// Image types shown inline (no scripts: SVG is not among them).
const INLINE_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
];

/// `GET /plan/{plan_id}/files/{file_id}`.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((plan, file)): Path<(String, String)>,
) -> Response {
    let stored = match state.runs().files().get(&plan, &file).await {
        Ok(stored) => stored,
        Err(e) => return ApiError::StoreUnavailable(e.to_string()).into_response(),
    };
    let Some(stored) = stored.filter(|f| f.meta.owner == caller.owner()) else {
        return ApiError::NotFound(format!("no file {file} of plan {plan}")).into_response();
    };
    let disposition = if INLINE_TYPES.contains(&stored.meta.media_type.as_str()) {
        "inline"
    } else {
        "attachment"
    };
    let content_type = HeaderValue::from_str(&stored.meta.media_type).unwrap_or(
        HeaderValue::from_static(crate::planner::files::OCTET_STREAM),
    );
    // The name is ASCII-safe in `filename` and exact in `filename*` (RFC 6266 / 8187).
    let ascii: String = stored
        .meta
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(
        &stored.meta.name,
        percent_encoding::NON_ALPHANUMERIC,
    );
    let disposition = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        Body::from(stored.bytes),
    )
        .into_response()
}
