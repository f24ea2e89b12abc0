//! One peer call as the planner sees it (spec §5): resolve auth, pick the dialect, send (or
//! stream), poll until the task settles, fall back on dialect refusals, cancel on abort. Never
//! panics, never hangs past the call budget.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::a2a::auth::ResolvedAuth;
use crate::a2a::card::{AgentCard, PeerFact};
use crate::a2a::client::{A2aClient, rpc_url};
use crate::a2a::error::A2aError;
use crate::a2a::jsonrpc::{Dialect, SendParams};
use crate::a2a::peer::{DialectChoice, Peer};
use crate::a2a::wire::{self, OutgoingFile, Reply, StateClass, TaskState};

/// How long an aborted call waits for its best-effort cancel before reporting.
const CANCEL_WAIT_ON_ABORT: Duration = Duration::from_millis(300);

/// JSON-RPC errors with which a v1.0-only peer refuses v0.3 requests: -32601 (method not found)
/// and -32009 (`A2A-Version` missing or not supported, the JS SDK).
fn is_dialect_refusal(code: i64) -> bool {
    matches!(code, -32601 | -32009)
}

/// One peer call as the planner asks for it.
#[derive(Debug, Clone, Copy)]
pub struct PeerCall<'a> {
    pub peer: &'a Peer,
    pub skill_id: &'a str,
    /// The text sent as the message's first part.
    pub input: &'a str,
    /// Files sent after the text, as file parts in the peer's dialect.
    pub files: &'a [OutgoingFile],
    /// The plan's session id.
    pub context_id: &'a str,
    pub reference_task_id: Option<&'a str>,
    /// A task of this peer left `input-required` that this call answers: the message goes to
    /// that task (`taskId`, both dialects) instead of starting a new one.
    pub continue_task_id: Option<&'a str>,
    pub card: Option<&'a AgentCard>,
    /// Fires on client disconnect, deadline or shutdown.
    pub abort: &'a CancellationToken,
    /// Receives intermediate states of streaming peers (`task.status` frames). Only the latest
    /// one is kept: a reader that falls behind skips states instead of queueing them all.
    pub status: Option<&'a StatusSender>,
}

/// Where a call reports the latest intermediate state of its remote task.
pub type StatusSender = tokio::sync::watch::Sender<Option<StatusUpdate>>;

/// An intermediate state reported by a streaming peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub state: TaskState,
    /// Text of the status message, when the peer sent one.
    pub message: Option<String>,
}

/// What a peer call produced.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The peer's task id whenever one became known.
    pub remote_task_id: Option<String>,
    /// The last remote state observed; a Message counts as `completed`.
    pub remote_state: Option<TaskState>,
    pub result: Result<Reply, A2aError>,
}

/// One call's fixed context, handed to every request the call makes.
#[derive(Clone, Copy)]
pub(crate) struct Exchange<'c, 'a> {
    pub(crate) call: &'c PeerCall<'a>,
    pub(crate) dialect: Dialect,
    /// The JSON-RPC URL.
    pub(crate) url: &'c str,
    pub(crate) auth: &'c ResolvedAuth,
    /// When the call budget runs out.
    pub(crate) budget_end: Instant,
    /// The peer is known to assign task ids itself (it refused ours before).
    pub(crate) server_task_ids: bool,
}

impl<'c> Exchange<'c, '_> {
    /// The task id a send carries: the task this call continues, else a client-chosen id:
    /// v0.3 peers (Bindu) need one; v1.0 servers choose their own, and
    /// so do v0.3 peers that refused ours earlier (a2a-sdk, the JS SDK in compat mode).
    pub(crate) fn chosen_task_id(&self) -> Option<String> {
        if let Some(task) = self.call.continue_task_id {
            return Some(task.to_owned());
        }
        (self.dialect == Dialect::V03 && !self.server_task_ids)
            .then(|| uuid::Uuid::new_v4().to_string())
    }

    /// Called when the peer refused our fresh task id with -32001 (it only knows ids it assigned):
    /// later sends to this peer omit the id from the start.
    pub(crate) fn remember_server_task_ids(&self, client: &A2aClient) {
        if self.call.continue_task_id.is_some() {
            // The peer forgot the task we continued; that says nothing about fresh ids.
            return;
        }
        client
            .cards
            .learn(&self.call.peer.endpoint, PeerFact::AssignsTaskIds);
    }

    /// The send parameters of this call with the given client task id.
    pub(crate) fn send_params<'p>(&self, task_id: Option<&'p str>) -> SendParams<'p>
    where
        'c: 'p,
    {
        SendParams {
            context_id: self.call.context_id,
            task_id,
            text: self.call.input,
            files: self.call.files,
            reference_task_id: self.call.reference_task_id,
            skill_id: self.call.skill_id,
        }
    }
}

/// Mutable facts of one call, kept so abort handling knows what to cancel.
#[derive(Debug, Default)]
pub(crate) struct CallProgress {
    pub(crate) remote_task_id: Option<String>,
    pub(crate) last_state: Option<TaskState>,
    pub(crate) polls: u32,
    /// Set when the failure requires a best-effort cancel (spec §5.9).
    pub(crate) cancel: bool,
}

impl A2aClient {
    /// Calls one peer skill: send, then poll until the task settles, the budget runs out or the
    /// call is aborted (when a best-effort cancel is sent). Never panics, never hangs past the
    /// call budget.
    pub async fn call(&self, call: PeerCall<'_>) -> CallOutcome {
        let mut progress = CallProgress::default();
        if call.abort.is_cancelled() {
            // Aborted before anything was sent (e.g. while waiting for a call slot): there is
            // no remote task to cancel.
            return CallOutcome {
                remote_task_id: None,
                remote_state: None,
                result: Err(A2aError::Aborted),
            };
        }
        if let Err(e) = self.check_endpoint(&call.peer.endpoint) {
            return CallOutcome {
                remote_task_id: None,
                remote_state: None,
                result: Err(e),
            };
        }
        let auth = match self
            .secrets
            .resolve(&call.peer.auth, &call.peer.endpoint)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                return CallOutcome {
                    remote_task_id: None,
                    remote_state: None,
                    result: Err(e),
                };
            }
        };
        let dialect = match call.peer.dialect {
            DialectChoice::V03 => Dialect::V03,
            DialectChoice::V10 => Dialect::V10,
            DialectChoice::Auto => {
                if call.card.is_some_and(|c| c.speaks_v1)
                    || (call.card.is_none()
                        && self.cards.knows(&call.peer.endpoint, PeerFact::SpeaksV1))
                {
                    Dialect::V10
                } else {
                    Dialect::V03
                }
            }
        };
        let url = rpc_url(&call.peer.endpoint);
        let budget_end = Instant::now() + self.config.call_budget;
        let x = Exchange {
            call: &call,
            dialect,
            url: &url,
            auth: &auth,
            budget_end,
            server_task_ids: self
                .cards
                .knows(&call.peer.endpoint, PeerFact::AssignsTaskIds),
        };
        let streaming = call.card.is_some_and(|c| c.streaming);
        let mut result = if streaming {
            self.stream_call(&x, &mut progress).await
        } else {
            self.send_and_poll(&x, &mut progress).await
        };
        // Auto mode without a card: a v1.0-only peer answers v0.3 names with -32601 (method not
        // found) or -32009 (the JS SDK: version missing or not supported), spec §5.1.
        if call.peer.dialect == DialectChoice::Auto
            && call.card.is_none()
            && dialect == Dialect::V03
            && progress.polls == 0
            && matches!(&result, Err(A2aError::Rpc { code, .. }) if is_dialect_refusal(*code))
        {
            progress = CallProgress::default();
            self.cards.learn(&call.peer.endpoint, PeerFact::SpeaksV1);
            result = self
                .send_and_poll(
                    &Exchange {
                        dialect: Dialect::V10,
                        ..x
                    },
                    &mut progress,
                )
                .await;
        }
        if progress.cancel
            && let Some(task_id) = progress.remote_task_id.clone()
            && !progress
                .last_state
                .as_ref()
                .is_some_and(|s| s.class() == StateClass::Terminal)
        {
            let handle = self.spawn_cancel(dialect, &url, &auth, task_id);
            let _ = tokio::time::timeout(CANCEL_WAIT_ON_ABORT, handle).await;
        }
        let remote_state = match &result {
            Ok(reply) => Some(reply.state()),
            Err(_) => progress.last_state.clone(),
        };
        CallOutcome {
            remote_task_id: progress.remote_task_id,
            remote_state,
            result,
        }
    }

    pub(crate) async fn send_and_poll(
        &self,
        x: &Exchange<'_, '_>,
        progress: &mut CallProgress,
    ) -> Result<Reply, A2aError> {
        let Exchange {
            call,
            dialect,
            url,
            auth,
            budget_end,
            ..
        } = *x;
        let chosen_task_id = x.chosen_task_id();
        let mut params = x.send_params(chosen_task_id.as_deref());
        // Our chosen id is known while the send is in flight, so an abort can cancel it.
        progress.remote_task_id.clone_from(&chosen_task_id);
        let mut sent = self
            .post(
                url,
                dialect,
                auth,
                dialect.send_body(params),
                call.abort,
                budget_end,
            )
            .await;
        if params.task_id.is_some() && matches!(&sent, Err(A2aError::Rpc { code: -32001, .. })) {
            // a2a-sdk treats an unknown client task id as a continuation: resend without it.
            x.remember_server_task_ids(self);
            params.task_id = None;
            progress.remote_task_id = None;
            sent = self
                .post(
                    url,
                    dialect,
                    auth,
                    dialect.send_body(params),
                    call.abort,
                    budget_end,
                )
                .await;
        }
        let result = match sent {
            Ok(v) => v,
            Err(e) => {
                progress.cancel = matches!(e, A2aError::Aborted);
                if !progress.cancel {
                    progress.remote_task_id = None;
                }
                return Err(self.budget_error(e, progress));
            }
        };
        let task = match wire::parse_reply(&result) {
            Ok(Reply::Message(m)) => {
                progress.remote_task_id = None;
                return Ok(Reply::Message(m));
            }
            Ok(Reply::Task(t)) => t,
            Err(detail) => return Err(A2aError::InvalidShape(detail)),
        };
        progress.remote_task_id = Some(task.id.clone());
        progress.last_state = Some(task.state.clone());
        self.poll_until_settled(x, progress, task).await
    }

    pub(crate) fn exhausted(&self, progress: &CallProgress) -> A2aError {
        A2aError::PollExhausted {
            polls: progress.polls,
            last_state: progress
                .last_state
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), ToString::to_string),
            budget_ms: u64::try_from(self.config.call_budget.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Reports a spent budget as the exhaustion error with the call's poll count.
    pub(crate) fn budget_error(&self, e: A2aError, progress: &CallProgress) -> A2aError {
        match e {
            A2aError::BudgetSpent => self.exhausted(progress),
            other => other,
        }
    }
}
