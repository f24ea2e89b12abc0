//! Event-stream responses and their keep-alive, for every door that streams.

use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures::Stream;

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

/// A door's frames with a `: keep-alive` comment whenever nothing was sent for a
/// [`keepalive_period`]; it ends when the frames end.
pub fn with_keepalive<S>(frames: S, setting: Option<Duration>) -> KeepAlive<S>
where
    S: Stream<Item = Bytes>,
{
    let period = keepalive_period(setting);
    KeepAlive {
        frames: Box::pin(frames),
        timer: Box::pin(tokio::time::sleep(period)),
        period,
    }
}

/// See [`with_keepalive`].
pub struct KeepAlive<S> {
    frames: Pin<Box<S>>,
    /// Moved on after every frame: one timer per stream.
    timer: Pin<Box<tokio::time::Sleep>>,
    period: Duration,
}

impl<S: Stream<Item = Bytes>> Stream for KeepAlive<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = tokio::time::Instant::now() + self.period;
        match self.frames.as_mut().poll_next(cx) {
            Poll::Ready(Some(frame)) => {
                self.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.timer.as_mut().reset(next);
                    Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
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

/// A door's event-stream response (A2A, OpenAI, MCP) from its frames, with keep-alives while
/// idle (`server.sse_keepalive_secs`, [`KEEPALIVE_WHEN_OFF`] when that is off).
pub fn door_stream(
    content_type: &'static str,
    frames: impl Stream<Item = Bytes> + Send + 'static,
    keepalive: Option<Duration>,
) -> Response {
    event_stream(
        content_type,
        Caching::NoStore,
        Body::from_stream(with_keepalive(frames, keepalive)),
    )
}
