//! Event-stream responses and their keep-alive, for every door that streams.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;

/// The SSE comment sent while a stream has nothing else to say.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The keep-alive period of the A2A, OpenAI and MCP streams and of resumed `/plan` streams when
/// `server.sse_keepalive_secs` is 0: those clients time out idle reads, so they always get one.
pub const KEEPALIVE_WHEN_OFF: Duration = Duration::from_secs(15);

/// The keep-alive period of a stream that must have one.
#[must_use]
pub fn keepalive_period(setting: Option<Duration>) -> Duration {
    setting.unwrap_or(KEEPALIVE_WHEN_OFF)
}

/// A ticker every [`keepalive_period`], first tick one period from now.
#[must_use]
pub fn keepalive_ticker(setting: Option<Duration>) -> tokio::time::Interval {
    let period = keepalive_period(setting);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// How a stream may be cached: `/plan` says `no-cache` (spec §2.1), the other doors `no-store`.
#[derive(Debug, Clone, Copy)]
pub enum Caching {
    NoCache,
    NoStore,
}

/// An event-stream response around `body`: `content_type`, never cached, never buffered by
/// proxies.
#[must_use]
pub fn event_stream(content_type: &'static str, caching: Caching, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let cache = match caching {
        Caching::NoCache => "no-cache",
        Caching::NoStore => "no-store",
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A door's event-stream response (A2A, OpenAI, MCP) from a stream of chunks.
pub fn door_stream(
    content_type: &'static str,
    body: impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    event_stream(content_type, Caching::NoStore, Body::from_stream(body))
}
