//! Asking the plan's client mid-plan: a yes before a call marked `confirm` is made, and the
//! answer to a peer's question (`input-required`) when the request is `interactive`. The plan
//! only emits the question (`task.confirm`, `task.input_required`) and waits through an
//! [`Asker`]; who delivers the answer (a route of its door, another instance through the store)
//! is the door's and the runs' business.

use futures::future::BoxFuture;

/// What a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskKind {
    /// Approve or decline a call.
    Confirm,
    /// Text for a peer that asked a question.
    Input,
}

impl AskKind {
    /// The name in routes and messages.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Input => "input",
        }
    }
}

/// The client's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Approve,
    /// Declined, with the reason the model is told.
    Decline(String),
    /// The answer to a peer's question.
    Text(String),
}

/// How a plan reaches its client with a question.
pub trait Asker: Send + Sync + std::fmt::Debug {
    /// Why this plan's client cannot be asked at all (its door cannot), else `None`.
    fn cannot_ask(&self) -> Option<&'static str>;
    /// The plan has a task `task_id` (an answer to it is then "not waiting", not "unknown").
    fn task(&self, task_id: &str) -> BoxFuture<'_, ()>;
    /// Task `task_id` asks for an answer of `kind` from now (before its question is emitted, so
    /// an answer sent as soon as the client sees it is taken).
    fn expect(&self, task_id: &str, kind: AskKind) -> BoxFuture<'_, ()>;
    /// Waits for the answer to task `task_id`'s question; `None` when none can come. The plan
    /// bounds the wait (its timeout, its abort) and then calls [`Asker::close`].
    fn wait(&self, task_id: &str) -> BoxFuture<'_, Option<Reply>>;
    /// The question is over (answered, timed out, or the plan ended): later answers are refused.
    fn close(&self, task_id: &str) -> BoxFuture<'_, ()>;
}

/// The asker of a door that cannot ask: every confirmation is declined with its reason, and a
/// peer's question ends the call as if the request were not interactive.
#[derive(Debug, Clone, Copy)]
pub struct CannotAsk(pub &'static str);

impl Asker for CannotAsk {
    fn cannot_ask(&self) -> Option<&'static str> {
        Some(self.0)
    }

    fn task(&self, _task_id: &str) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn expect(&self, _task_id: &str, _kind: AskKind) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn wait(&self, _task_id: &str) -> BoxFuture<'_, Option<Reply>> {
        Box::pin(async { None })
    }

    fn close(&self, _task_id: &str) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
