//! The SSE response body of a `/plan` plan (spec §2.1): frames in channel order, flushed one by one,
//! keep-alive comments while idle, nothing after `done`. Dropping the body (client gone) drops the
//! guard it owns, which aborts the plan and ends its idempotency entry.
//!
//! The `/plan` body drives its plan: the planner future is polled inside the body, in the
//! connection's task. A token from the LLM then costs one hand-off (the LLM connection's task
//! wakes the response's) instead of two, and no wake-up of a second worker thread: measured
//! with `plangate-bench tokens`, see BENCHMARKS.md. Frames the plan queues while the body polls it
//! are read in that same poll ([`Gate`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures::task::AtomicWaker;
use tokio::sync::mpsc;

use super::frames::to_wire;
use crate::api::http::sse::{Caching, KEEP_ALIVE, event_stream};
use crate::planner::event::PlanEvent;
use crate::run::DrivenPlan;
/// Queued frames are joined into one write up to about this many bytes.
const COALESCE_LIMIT: usize = 16 * 1024;

/// Wakes the body's task when an event arrives from another task (a peer call's status), but not
/// for the events the plan queues while the body itself is polling it: those are read in the same
/// poll, and waking the running task would reschedule it and wake a second worker thread for
/// nothing, once per relayed token.
#[derive(Default)]
struct Gate {
    task: AtomicWaker,
    polling: AtomicBool,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.polling.load(Ordering::Acquire) {
            self.task.wake();
        }
    }
}

/// The body of a `/plan` response: frames in channel order, queued frames joined into one write,
/// keep-alive comments while idle, nothing after `done`.
struct PlanStream<G> {
    rx: mpsc::Receiver<Box<PlanEvent>>,
    /// The keep-alive period and its timer, moved on after every frame (one timer per stream,
    /// not one per frame).
    keepalive: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    /// The plan, while this body drives it.
    driven: Option<DrivenPlan>,
    gate: Arc<Gate>,
    gate_waker: Waker,
    done: bool,
    /// Held until the body is dropped.
    _guard: G,
}

impl<G> PlanStream<G> {
    /// The frames of `event` and of any already queued behind it, as one chunk.
    fn frames(&mut self, event: &PlanEvent) -> Bytes {
        self.done = event.is_done();
        let mut text = to_wire(event);
        // Frames already queued go out in the same write: fewer syscalls, same order, and
        // nothing waits (spec §2.1 flushes each frame as soon as it is written).
        while !self.done && text.len() < COALESCE_LIMIT {
            match self.rx.try_recv() {
                Ok(more) => {
                    self.done = more.is_done();
                    text.push_str(&to_wire(&more));
                }
                Err(_) => break,
            }
        }
        Bytes::from(text)
    }
}

impl<G: Unpin> futures::Stream for PlanStream<G> {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(driven) = &this.driven {
            this.gate.polling.store(true, Ordering::Release);
            let stopped = driven.poll(cx).is_ready();
            this.gate.polling.store(false, Ordering::Release);
            if stopped {
                this.driven = None;
            }
        }
        // Registering after the plan's poll: an event sent meanwhile from another task is
        // either found now or wakes the task later.
        this.gate.task.register(cx.waker());
        let mut gate_cx = Context::from_waker(&this.gate_waker);
        match this.rx.poll_recv(&mut gate_cx) {
            Poll::Ready(Some(event)) => {
                let chunk = this.frames(&event);
                if let Some((period, timer)) = &mut this.keepalive {
                    timer.as_mut().reset(tokio::time::Instant::now() + *period);
                }
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(None) => {
                // The planner vanished without `done`: keep the contract anyway.
                this.done = true;
                let mut text = to_wire(&PlanEvent::Error {
                    message: "internal error: planner stopped unexpectedly".to_owned(),
                    code: "internal",
                });
                text.push_str(&to_wire(&PlanEvent::Done));
                return Poll::Ready(Some(Ok(Bytes::from(text))));
            }
            Poll::Pending => {}
        }
        if let Some((period, timer)) = &mut this.keepalive
            && timer.as_mut().poll(cx).is_ready()
        {
            timer.as_mut().reset(tokio::time::Instant::now() + *period);
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
        }
        Poll::Pending
    }
}

/// Builds the streaming response of a plan the body drives; `guard` is dropped when the body is.
pub(crate) fn response<G: Send + Unpin + 'static>(
    rx: mpsc::Receiver<Box<PlanEvent>>,
    keepalive: Option<Duration>,
    guard: G,
    driven: DrivenPlan,
) -> Response {
    let gate = Arc::new(Gate::default());
    let body = PlanStream {
        rx,
        keepalive: keepalive.map(|period| (period, Box::pin(tokio::time::sleep(period)))),
        driven: Some(driven),
        gate_waker: Waker::from(Arc::clone(&gate)),
        gate,
        done: false,
        _guard: guard,
    };
    let mut response = plan_stream(Body::from_stream(body));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    response
}

/// A `/plan` event-stream response (spec §2.1 headers) around `body`.
pub(crate) fn plan_stream(body: Body) -> Response {
    event_stream("text/event-stream", Caching::NoCache, body)
}

/// A complete, already-known stream (the duplicate path).
pub fn fixed(events: &[PlanEvent]) -> Response {
    let text: String = events.iter().map(to_wire).collect();
    plan_stream(Body::from(text))
}
