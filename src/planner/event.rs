//! The SSE vocabulary of a plan (spec §2.2): one enum, one place that names each event and lays
//! out its payload with keys in contract order. `schemas/events/*.json` mirrors it and a test keeps
//! the two in step.

use serde::Serialize;
use serde_json::Value;

/// Token usage summed over planner steps; every field an integer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    pub cached_input_tokens: u64,
}

/// Signature counters of a verified peer reply (spec §6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Signatures {
    pub ok: bool,
    pub signed: u32,
    pub verified: u32,
    pub unsigned: u32,
}

/// Who the frames of a tool call are about: agent name, DID and where the DID came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSubject {
    pub task_id: String,
    pub agent: String,
    pub agent_did: Option<String>,
    /// `"pinned"` or `"observed"` when `agent_did` is set.
    pub agent_did_source: Option<&'static str>,
}

/// The end of one tool call: what `task.artifact` and `task.finished` carry.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEnd {
    /// `task.artifact.content`; `None` when the call errored or output was withheld.
    pub content: Option<String>,
    /// `Some(None)` = verification did not run; `None` = the field is absent.
    pub signatures: Option<Option<Signatures>>,
    /// `None` = completed, `Some(msg)` = failed with that error.
    pub error: Option<String>,
    pub remote_task_id: Option<String>,
    pub remote_state: Option<String>,
}

/// One SSE frame of a plan.
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
        state: String,
        message: Option<String>,
    },
    /// Written as two adjacent frames: `task.artifact` then `task.finished`.
    TaskEnded {
        subject: CallSubject,
        end: CallEnd,
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

/// A rendered frame on its way to the client: what the plan's channel carries. Rendering in the
/// planner keeps channel slots small (a few bytes instead of a whole event), which matters with
/// thousands of open plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// `event: …\ndata: …\n\n` (one or two frames).
    pub text: String,
    /// This is `done`: nothing may follow.
    pub last: bool,
}

impl From<PlanEvent> for WireFrame {
    fn from(event: PlanEvent) -> Self {
        Self {
            text: event.to_wire(),
            last: event.is_done(),
        }
    }
}

impl PlanEvent {
    /// Renders the event as wire bytes: `event: <name>\ndata: <compact JSON>\n\n` per frame.
    #[must_use]
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        for (name, payload) in self.frames() {
            out.push_str("event: ");
            out.push_str(name);
            out.push_str("\ndata: ");
            out.push_str(&payload.to_string());
            out.push_str("\n\n");
        }
        out
    }

    /// Whether this is the last frame of a stream.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done)
    }

    /// The `(event name, payload)` frames of this event (two for `TaskEnded`, else one).
    #[must_use]
    pub fn frames(&self) -> Vec<(&'static str, Value)> {
        use serde_json::json;
        match self {
            Self::Session {
                session_id,
                external_session_id,
                created,
            } => vec![(
                "session",
                json!({"session_id": session_id, "external_session_id": external_session_id, "created": created}),
            )],
            Self::Duplicate {
                session_id,
                in_flight,
                message,
            } => vec![(
                "duplicate",
                json!({"session_id": session_id, "in_flight": in_flight, "message": message}),
            )],
            Self::CompactionSummary {
                session_id,
                summary,
                tokens_before,
                tokens_after,
                messages_compacted,
            } => vec![(
                "compaction-summary",
                json!({"session_id": session_id, "summary": summary, "tokens_before": tokens_before,
                       "tokens_after": tokens_after, "messages_compacted": messages_compacted}),
            )],
            Self::Plan {
                plan_id,
                session_id,
            } => {
                vec![(
                    "plan",
                    json!({"plan_id": plan_id, "session_id": session_id}),
                )]
            }
            Self::TextDelta {
                session_id,
                part_id,
                delta,
            } => vec![(
                "text.delta",
                json!({"session_id": session_id, "part_id": part_id, "delta": delta}),
            )],
            Self::TaskStarted {
                subject,
                skill,
                input,
            } => vec![(
                "task.started",
                json!({"task_id": subject.task_id, "agent": subject.agent, "agent_did": subject.agent_did,
                       "agent_did_source": subject.agent_did_source, "skill": skill, "input": input}),
            )],
            Self::TaskStatus {
                task_id,
                agent,
                state,
                message,
            } => {
                let mut v = json!({"task_id": task_id, "agent": agent, "state": state});
                if let (Some(m), Some(obj)) = (message, v.as_object_mut()) {
                    obj.insert("message".into(), Value::String(m.clone()));
                }
                vec![("task.status", v)]
            }
            Self::TaskEnded { subject, end } => {
                let mut artifact = json!({"task_id": subject.task_id, "agent": subject.agent,
                    "agent_did": subject.agent_did, "agent_did_source": subject.agent_did_source});
                let mut finished = artifact.clone();
                if let Some(a) = artifact.as_object_mut() {
                    if let Some(c) = &end.content {
                        a.insert("content".into(), Value::String(c.clone()));
                    }
                    if let Some(s) = &end.signatures {
                        a.insert("signatures".into(), json!(s));
                    }
                }
                if let Some(f) = finished.as_object_mut() {
                    let state = if end.error.is_some() {
                        "failed"
                    } else {
                        "completed"
                    };
                    f.insert("state".into(), json!(state));
                    if let Some(e) = &end.error {
                        f.insert("error".into(), json!(e));
                    }
                    if let Some(s) = &end.signatures {
                        f.insert("signatures".into(), json!(s));
                    }
                    if let Some(id) = &end.remote_task_id {
                        f.insert("remote_task_id".into(), json!(id));
                    }
                    if let Some(st) = &end.remote_state {
                        f.insert("remote_state".into(), json!(st));
                    }
                }
                vec![("task.artifact", artifact), ("task.finished", finished)]
            }
            Self::Final {
                session_id,
                stop_reason,
                usage,
            } => vec![(
                "final",
                json!({"session_id": session_id, "stop_reason": stop_reason, "usage": usage}),
            )],
            Self::Error { message, code } => {
                vec![("error", json!({"message": message, "code": code}))]
            }
            Self::Done => vec![("done", json!({}))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_compact_with_contract_key_order() {
        let e = PlanEvent::Session {
            session_id: "s".into(),
            external_session_id: None,
            created: true,
        };
        assert_eq!(
            e.to_wire(),
            "event: session\ndata: {\"session_id\":\"s\",\"external_session_id\":null,\"created\":true}\n\n"
        );
        let f = PlanEvent::Final {
            session_id: "s".into(),
            stop_reason: "stop".into(),
            usage: Usage::default(),
        };
        assert_eq!(
            f.to_wire(),
            "event: final\ndata: {\"session_id\":\"s\",\"stop_reason\":\"stop\",\"usage\":{\"inputTokens\":0,\"outputTokens\":0,\"totalTokens\":0,\"cachedInputTokens\":0}}\n\n"
        );
        assert_eq!(PlanEvent::Done.to_wire(), "event: done\ndata: {}\n\n");
    }

    #[test]
    fn task_end_is_two_adjacent_frames() {
        let e = PlanEvent::TaskEnded {
            subject: CallSubject {
                task_id: "t".into(),
                agent: "a".into(),
                ..CallSubject::default()
            },
            end: CallEnd {
                content: None,
                signatures: None,
                error: Some("boom".into()),
                remote_task_id: Some("r".into()),
                remote_state: Some("failed".into()),
            },
        };
        assert_eq!(
            e.to_wire(),
            "event: task.artifact\ndata: {\"task_id\":\"t\",\"agent\":\"a\",\"agent_did\":null,\"agent_did_source\":null}\n\n\
             event: task.finished\ndata: {\"task_id\":\"t\",\"agent\":\"a\",\"agent_did\":null,\"agent_did_source\":null,\"state\":\"failed\",\"error\":\"boom\",\"remote_task_id\":\"r\",\"remote_state\":\"failed\"}\n\n"
        );
    }
}
