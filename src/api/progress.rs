//! The one-line progress texts the A2A and MCP doors show for each peer call:
//! `agent/skill started`, then `agent/skill completed` or `agent/skill failed: <error>`.

use std::collections::HashMap;

use crate::planner::event::{CallSubject, ToolOutcome};

/// Tool call id → `agent/skill`, kept between a call's start and its end.
#[derive(Debug, Default)]
pub(crate) struct CallLabels(HashMap<String, String>);

impl CallLabels {
    /// Remembers the call and returns its start text.
    pub(crate) fn started(&mut self, subject: CallSubject, skill: &str) -> String {
        let label = if skill.is_empty() {
            subject.agent
        } else {
            format!("{}/{skill}", subject.agent)
        };
        let text = format!("{label} started");
        self.0.insert(subject.task_id, label);
        text
    }

    /// The end text of a call.
    pub(crate) fn ended(&mut self, subject: CallSubject, outcome: &ToolOutcome) -> String {
        let label = self.0.remove(&subject.task_id).unwrap_or(subject.agent);
        let error = outcome
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        format!("{label} {}{error}", outcome.finished_state())
    }
}
