//! What every door says of a plan: the one answer ([`Answer`]: the text of every LLM step
//! joined with a blank line, the same text a `/plan` client gets by joining each `part_id`'s
//! `text.delta`s that way), and the one-line progress texts the A2A and MCP doors show for each
//! peer call: `agent/skill started`, then `agent/skill completed` or `agent/skill failed: <error>`.

use std::collections::HashMap;

use crate::planner::event::{CallSubject, ToolOutcome};
use crate::planner::files::PlanFile;

/// What a door says when a plan ended without `final`.
pub const NO_ANSWER: &str = "the plan ended without an answer";

/// The answer of a plan, assembled from its `text.delta` events: one LLM step is one `part_id`,
/// and steps are joined with a blank line.
#[derive(Debug, Default)]
pub struct Answer {
    text: String,
    part: Option<String>,
}

impl Answer {
    /// What goes before `part_id`'s next delta: a blank line when a new step starts after
    /// another, else nothing. For a door that relays the text instead of keeping it.
    pub fn separator(&mut self, part_id: &str) -> &'static str {
        match &self.part {
            Some(p) if p == part_id => "",
            Some(_) => {
                self.part = Some(part_id.to_owned());
                "\n\n"
            }
            None => {
                self.part = Some(part_id.to_owned());
                ""
            }
        }
    }

    /// Adds one delta of step `part_id`.
    pub fn push(&mut self, part_id: &str, delta: &str) {
        let separator = self.separator(part_id);
        self.text.push_str(separator);
        self.text.push_str(delta);
    }

    /// The answer so far.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Takes the answer, leaving an empty one.
    pub fn take(&mut self) -> String {
        self.part = None;
        std::mem::take(&mut self.text)
    }
}

/// The plan's files as Markdown links after an answer (`base` is the gateway's URL as the
/// caller reached it; kept files are fetched there with the caller's token).
#[must_use]
pub fn file_links(files: &[PlanFile], base: &str) -> String {
    let mut out = String::new();
    for f in files {
        let target = match (&f.source_url, &f.url) {
            (Some(link), _) => link.clone(),
            (None, Some(url)) => format!("{base}{url}"),
            (None, None) => continue,
        };
        out.push_str(if out.is_empty() { "\n\nFiles:" } else { "" });
        out.push_str(&format!("\n- [{}]({target}) ({})", f.name, f.media_type));
    }
    out
}

/// Tool call id → `agent/skill`, kept between a call's start and its end.
#[derive(Debug, Default)]
pub struct CallLabels(HashMap<String, String>);

impl CallLabels {
    /// Remembers the call and returns its start text.
    pub fn started(&mut self, subject: CallSubject, skill: &str) -> String {
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
    pub fn ended(&mut self, subject: CallSubject, outcome: &ToolOutcome) -> String {
        let label = self.0.remove(&subject.task_id).unwrap_or(subject.agent);
        let error = outcome
            .error
            .as_deref()
            .or(outcome.rejected.as_deref())
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        format!("{label} {}{error}", outcome.finished_state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_joined_with_a_blank_line() {
        let mut answer = Answer::default();
        answer.push("a", "Let me ");
        answer.push("a", "check.");
        answer.push("b", "The answer");
        answer.push("b", " is 4.");
        assert_eq!(answer.text(), "Let me check.\n\nThe answer is 4.");
        assert_eq!(answer.take(), "Let me check.\n\nThe answer is 4.");
        assert_eq!(answer.text(), "");
    }

    #[test]
    fn a_relaying_door_gets_the_same_separators() {
        let mut relay = Answer::default();
        let pieces: String = [("a", "x"), ("a", "y"), ("b", "z")]
            .iter()
            .map(|(part, delta)| format!("{}{delta}", relay.separator(part)))
            .collect();
        assert_eq!(pieces, "xy\n\nz");
    }
}
