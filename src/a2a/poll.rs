//! Polling (spec §5.7): `tasks/get` / `GetTask` on the fast ladder until the task settles, the
//! budget runs out or the call is aborted. A few transport failures in a row fail the call.

use std::time::{Duration, Instant};

use crate::a2a::call::{CallProgress, Exchange};
use crate::a2a::client::A2aClient;
use crate::a2a::error::A2aError;
use crate::a2a::jsonrpc::{Dialect, IdShape};
use crate::a2a::wire::{self, Reply};

/// Poll sleeps before poll k (spec §5.7), in milliseconds.
const POLL_LADDER_MS: [u64; 7] = [100, 200, 400, 800, 1600, 3200, 5000];
/// Consecutive transport failures of polls that fail the call.
const MAX_POLL_TRANSPORT_FAILURES: u32 = 3;

impl A2aClient {
    /// Polls `tasks/get` / `GetTask` on the fast ladder until the task settles (spec §5.7).
    pub(crate) async fn poll_until_settled(
        &self,
        x: &Exchange<'_, '_>,
        progress: &mut CallProgress,
        mut task: wire::Task,
    ) -> Result<Reply, A2aError> {
        let Exchange {
            call,
            dialect,
            url,
            auth,
            budget_end,
            ..
        } = *x;
        let mut shape = IdShape::Both;
        let mut failures = 0;
        let mut k = 0usize;
        while !task.state.is_settled() {
            let base = POLL_LADDER_MS[k.min(POLL_LADDER_MS.len() - 1)];
            let jitter: f64 = rand::random_range(1.0..1.1);
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "ladder values are small"
            )]
            let sleep = Duration::from_millis((base as f64 * jitter) as u64);
            k += 1;
            if Instant::now() + sleep >= budget_end {
                tokio::select! {
                    () = tokio::time::sleep_until(budget_end.into()) => {}
                    () = call.abort.cancelled() => {}
                }
                progress.cancel = true;
                if call.abort.is_cancelled() {
                    return Err(A2aError::Aborted);
                }
                return Err(self.exhausted(progress));
            }
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = call.abort.cancelled() => {
                    progress.cancel = true;
                    return Err(A2aError::Aborted);
                }
            }
            progress.polls += 1;
            let polled = loop {
                let body = dialect.get_body(&task.id, shape);
                match self
                    .post(url, dialect, auth, body, call.abort, budget_end)
                    .await
                {
                    Err(A2aError::Rpc {
                        code: -32700 | -32600 | -32602,
                        ..
                    }) if dialect == Dialect::V03 && shape.next().is_some() => {
                        shape = shape.next().unwrap_or(IdShape::IdOnly);
                    }
                    other => break other,
                }
            };
            match polled {
                Ok(v) => {
                    failures = 0;
                    match wire::parse_reply(&v) {
                        Ok(Reply::Task(t)) => {
                            progress.last_state = Some(t.state.clone());
                            task = t;
                        }
                        Ok(Reply::Message(m)) => return Ok(Reply::Message(m)),
                        Err(detail) => return Err(A2aError::InvalidShape(detail)),
                    }
                }
                Err(e) if e.is_retryable() => {
                    failures += 1;
                    if failures >= MAX_POLL_TRANSPORT_FAILURES {
                        progress.cancel = true;
                        return Err(e);
                    }
                }
                Err(A2aError::Aborted) => {
                    progress.cancel = true;
                    return Err(A2aError::Aborted);
                }
                Err(e) => {
                    let e = self.budget_error(e, progress);
                    if matches!(e, A2aError::PollExhausted { .. }) {
                        progress.cancel = true;
                    }
                    return Err(e);
                }
            }
        }
        Ok(Reply::Task(task))
    }
}
