//! The SSE response body of a plan (spec §2.1): frames in channel order, flushed one by one,
//! keep-alive comments while idle, nothing after `done`. Dropping the body (client gone) drops the
//! guard it owns, which aborts the plan and ends its idempotency entry.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::frames::to_wire;
use crate::planner::event::PlanEvent;

/// The SSE comment sent while a stream has nothing else to say.
pub(crate) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";
/// Queued frames are joined into one write up to about this many bytes.
const COALESCE_LIMIT: usize = 16 * 1024;

struct BodyState<G> {
    rx: mpsc::Receiver<Box<PlanEvent>>,
    keepalive: Option<Duration>,
    done: bool,
    /// Held until the body is dropped.
    _guard: G,
}

/// Builds the streaming response; `guard` is dropped when the response body is.
pub fn response<G: Send + 'static>(
    rx: mpsc::Receiver<Box<PlanEvent>>,
    keepalive: Option<Duration>,
    guard: G,
) -> Response {
    let state = BodyState {
        rx,
        keepalive,
        done: false,
        _guard: guard,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let next = match st.keepalive {
            Some(period) => match tokio::time::timeout(period, st.rx.recv()).await {
                Ok(event) => event,
                Err(_) => {
                    return Some((
                        Ok::<Bytes, std::convert::Infallible>(Bytes::from_static(KEEP_ALIVE)),
                        st,
                    ));
                }
            },
            None => st.rx.recv().await,
        };
        let wire = match next {
            Some(event) => {
                st.done = event.is_done();
                let mut text = to_wire(&event);
                // Frames already queued go out in the same write: fewer syscalls, same order,
                // and nothing waits (spec §2.1 flushes each frame as soon as it is written).
                while !st.done && text.len() < COALESCE_LIMIT {
                    match st.rx.try_recv() {
                        Ok(more) => {
                            st.done = more.is_done();
                            text.push_str(&to_wire(&more));
                        }
                        Err(_) => break,
                    }
                }
                text
            }
            None => {
                // The planner vanished without `done`: keep the contract anyway.
                st.done = true;
                let mut text = to_wire(&PlanEvent::Error {
                    message: "internal error: planner stopped unexpectedly".to_owned(),
                    code: "internal",
                });
                text.push_str(&to_wire(&PlanEvent::Done));
                text
            }
        };
        Some((Ok(Bytes::from(wire)), st))
    });
    let mut response = plan_stream(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    response
}

/// A `/plan` event-stream response (spec §2.1 headers) around `body`.
pub(crate) fn plan_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The keep-alive ticker of a door's event stream (A2A, OpenAI, MCP): every
/// `server.sse_keepalive_secs`, or 15 s when that is off (those clients time out idle reads).
pub(crate) fn keepalive_ticker(keepalive: Option<Duration>) -> tokio::time::Interval {
    let period = keepalive.unwrap_or(Duration::from_secs(15));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// A door's event-stream response: `content_type`, never cached, never buffered by proxies.
pub(crate) fn door_stream(
    content_type: &'static str,
    body: impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
) -> Response {
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A complete, already-known stream (the duplicate path).
pub fn fixed(events: &[PlanEvent]) -> Response {
    let text: String = events.iter().map(to_wire).collect();
    plan_stream(Body::from(text))
}
