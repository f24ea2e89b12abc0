//! What a plan tells its door (spec §2.2): one enum of events in the order they happen. The
//! planner only emits them; each door frames them in its own wire format (`/plan` writes them
//! as SSE frames, see `api::plan::frames`).

use serde_json::Value;

use crate::a2a::TaskState;
use crate::identity::verify::Signatures;
pub use crate::llm::Usage;

/// Who the frames of a tool call are about: agent name, DID and where the DID came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSubject {
    pub task_id: String,
    pub agent: String,
    pub agent_did: Option<String>,
    /// `"pinned"` or `"observed"` when `agent_did` is set.
    pub agent_did_source: Option<&'static str>,
}

/// How one tool call ended: the single value from which the client's frames (`task.artifact`,
/// `task.finished`), the model's `tool` message and the fan-out answer are all derived.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// What the call produced for the model (the peer's envelope, a recipe, a loop-guard note);
    /// `None` when the call failed or its output was withheld.
    pub content: Option<String>,
    /// `None` = completed; `Some(msg)` = failed with that error (content may still be shown).
    pub error: Option<String>,
    /// `Some(None)` = verification did not run; `None` = the field is absent.
    pub signatures: Option<Option<Signatures>>,
    pub remote_task_id: Option<String>,
    pub remote_state: Option<TaskState>,
    /// The peer's scrubbed text without the envelope (the fan-out answer); not framed.
    pub remote_text: Option<String>,
    /// The `contextId` the peer answered with (else the one it was sent); not framed, kept
    /// by server-side sessions.
    pub remote_context_id: Option<String>,
    /// The user declined the call (`task.finished` state `rejected`), with this reason.
    pub rejected: Option<String>,
    /// Files the peer returned (`task.artifact` `files`); their lines are in `content`.
    pub files: Vec<crate::planner::files::PlanFile>,
}

impl ToolOutcome {
    /// A call that produced `content` and did not fail.
    #[must_use]
    pub fn content(content: String) -> Self {
        Self {
            content: Some(content),
            error: None,
            signatures: None,
            remote_task_id: None,
            remote_state: None,
            remote_text: None,
            remote_context_id: None,
            rejected: None,
            files: Vec::new(),
        }
    }

    /// A call the user declined (it was never made).
    #[must_use]
    pub fn rejected(reason: String) -> Self {
        Self {
            content: None,
            error: None,
            signatures: None,
            remote_task_id: None,
            remote_state: None,
            remote_text: None,
            remote_context_id: None,
            rejected: Some(reason),
            files: Vec::new(),
        }
    }

    /// A failed call.
    #[must_use]
    pub fn failed(
        error: String,
        remote_task_id: Option<String>,
        remote_state: Option<TaskState>,
    ) -> Self {
        Self {
            content: None,
            error: Some(error),
            signatures: None,
            remote_task_id,
            remote_state,
            remote_text: None,
            remote_context_id: None,
            rejected: None,
            files: Vec::new(),
        }
    }

    /// The `tool` message the model reads.
    #[must_use]
    pub fn tool_message(&self) -> String {
        if let Some(reason) = &self.rejected {
            return format!(
                "The user declined this call, so it was not made. Reason: {}",
                if reason.is_empty() {
                    "none given"
                } else {
                    reason
                }
            );
        }
        match (&self.content, &self.error) {
            (Some(content), _) => content.clone(),
            (None, error) => format!("Tool call failed: {}", error.as_deref().unwrap_or("")),
        }
    }

    /// Whether the peer left the task waiting for the user (`input-required` and the like).
    #[must_use]
    pub fn waits_for_user(&self) -> bool {
        self.remote_state
            .as_ref()
            .is_some_and(|s| s.class() == crate::a2a::wire::StateClass::NeedsAction)
    }

    /// The call's state for clients: `failed` when it has an error, else `completed`.
    #[must_use]
    pub fn finished_state(&self) -> &'static str {
        if self.rejected.is_some() {
            "rejected"
        } else if self.error.is_some() {
            "failed"
        } else {
            "completed"
        }
    }
}

/// Follows a plan's events in the plan's own task, as they are emitted (server-side sessions
/// record a turn this way). [`PlanObserver::finish`] runs before `done` is queued, so what it
/// keeps is kept before the client reads the end of the plan.
pub trait PlanObserver: Send + Sync + std::fmt::Debug {
    /// Sees one event before it is queued.
    fn observe(&self, event: &PlanEvent);
    /// The plan is about to queue `done`.
    fn finish(&self) -> futures::future::BoxFuture<'_, ()>;
}

/// One event of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanEvent {
    Session {
        session_id: String,
        external_session_id: Option<String>,
        created: bool,
    },
    Duplicate {
        session_id: String,
        in_flight: bool,
        message: String,
    },
    CompactionSummary {
        session_id: String,
        summary: String,
        tokens_before: u64,
        tokens_after: u64,
        messages_compacted: u64,
    },
    Plan {
        plan_id: String,
        session_id: String,
    },
    TextDelta {
        session_id: String,
        part_id: String,
        delta: String,
    },
    TaskStarted {
        subject: CallSubject,
        skill: String,
        input: Value,
    },
    TaskStatus {
        task_id: String,
        agent: String,
        state: TaskState,
        message: Option<String>,
    },
    /// A call marked `confirm` waits for the client's yes (it has not started).
    TaskConfirm {
        subject: CallSubject,
        skill: String,
        input: Value,
        timeout_ms: u64,
    },
    /// A peer asked a question; the interactive plan waits for the client's answer.
    TaskInputRequired {
        task_id: String,
        agent: String,
        prompt: String,
        timeout_ms: u64,
    },
    /// The end of a tool call (on `/plan`: `task.artifact` then `task.finished`).
    TaskEnded {
        subject: CallSubject,
        outcome: ToolOutcome,
    },
    Final {
        session_id: String,
        stop_reason: String,
        usage: Usage,
    },
    Error {
        message: String,
        code: &'static str,
    },
    Done,
}

impl PlanEvent {
    /// Whether this is the last event of a plan.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outcome_gives_the_tool_message_and_the_state() {
        let ok = ToolOutcome::content("<remote_content>x</remote_content>".into());
        assert_eq!(ok.tool_message(), "<remote_content>x</remote_content>");
        assert_eq!(ok.finished_state(), "completed");
        let failed = ToolOutcome::failed("boom".into(), None, Some(TaskState::Failed));
        assert_eq!(failed.tool_message(), "Tool call failed: boom");
        assert_eq!(failed.finished_state(), "failed");
        let shown = ToolOutcome {
            error: Some("signature verification failed".into()),
            ..ToolOutcome::content("env".into())
        };
        assert_eq!(shown.tool_message(), "env");
        assert_eq!(shown.finished_state(), "failed");
    }
}
