//! `/plan`'s SSE vocabulary (spec §2.2): the one place that names each event and lays out its
//! payload with keys in contract order. `schemas/events/*.json` mirrors it and a test keeps the
//! two in step.

use serde_json::{Value, json};

use crate::identity::verify::Signatures;
use crate::planner::event::{CallSubject, PlanEvent, ToolOutcome, Usage};
use crate::planner::files::PlanFile;

/// Renders an event as wire bytes: `event: <name>\ndata: <compact JSON>\n\n` per frame.
#[must_use]
pub fn to_wire(event: &PlanEvent) -> String {
    let mut out = String::new();
    for (name, payload) in frames(event) {
        out.push_str("event: ");
        out.push_str(name);
        out.push_str("\ndata: ");
        out.push_str(&payload.to_string());
        out.push_str("\n\n");
    }
    out
}

/// `final.usage`: every field an integer, camelCase keys.
fn usage(u: &Usage) -> Value {
    json!({"inputTokens": u.input_tokens, "outputTokens": u.output_tokens,
           "totalTokens": u.total_tokens, "cachedInputTokens": u.cached_input_tokens})
}

/// `signatures`: the counters, or `null` when verification did not run.
fn signatures(s: Option<&Signatures>) -> Value {
    s.map_or(
        Value::Null,
        |s| json!({"ok": s.ok, "signed": s.signed, "verified": s.verified, "unsigned": s.unsigned}),
    )
}

/// One `files` entry of `task.artifact`: a kept file's `url` (the plan's files route), or the
/// `source_url` of one the peer only linked to.
pub fn file_entry(f: &PlanFile) -> Value {
    match (&f.url, &f.source_url) {
        (Some(url), _) => json!({"file_id": f.file_id, "name": f.name, "media_type": f.media_type,
            "size": f.size, "url": url}),
        (None, source) => json!({"file_id": f.file_id, "name": f.name, "media_type": f.media_type,
            "source_url": source}),
    }
}

/// A peer call's end: `task.artifact` (what the peer said), then `task.finished` (how it
/// ended); a call the user declined has only `task.finished` (state `rejected`, its `reason`).
fn task_ended(subject: &CallSubject, outcome: &ToolOutcome) -> Vec<(&'static str, Value)> {
    if let Some(reason) = &outcome.rejected {
        return vec![(
            "task.finished",
            json!({"task_id": subject.task_id, "agent": subject.agent,
                   "agent_did": subject.agent_did, "agent_did_source": subject.agent_did_source,
                   "state": "rejected", "reason": reason}),
        )];
    }
    let mut artifact = json!({"task_id": subject.task_id, "agent": subject.agent,
        "agent_did": subject.agent_did, "agent_did_source": subject.agent_did_source});
    let mut finished = artifact.clone();
    if let Some(a) = artifact.as_object_mut() {
        if let Some(c) = &outcome.content {
            a.insert("content".into(), Value::String(c.clone()));
        }
        if let Some(s) = &outcome.signatures {
            a.insert("signatures".into(), signatures(s.as_ref()));
        }
        if !outcome.files.is_empty() {
            a.insert(
                "files".into(),
                Value::Array(outcome.files.iter().map(file_entry).collect()),
            );
        }
    }
    if let Some(f) = finished.as_object_mut() {
        f.insert("state".into(), json!(outcome.finished_state()));
        if let Some(e) = &outcome.error {
            f.insert("error".into(), json!(e));
        }
        if let Some(s) = &outcome.signatures {
            f.insert("signatures".into(), signatures(s.as_ref()));
        }
        if let Some(id) = &outcome.remote_task_id {
            f.insert("remote_task_id".into(), json!(id));
        }
        if let Some(st) = &outcome.remote_state {
            f.insert("remote_state".into(), json!(st.as_str()));
        }
    }
    vec![("task.artifact", artifact), ("task.finished", finished)]
}

/// The `(event name, payload)` frames of an event (two for `TaskEnded`, else one).
#[must_use]
pub fn frames(event: &PlanEvent) -> Vec<(&'static str, Value)> {
    match event {
        PlanEvent::Session {
            session_id,
            external_session_id,
            created,
        } => vec![(
            "session",
            json!({"session_id": session_id, "external_session_id": external_session_id, "created": created}),
        )],
        PlanEvent::Duplicate {
            session_id,
            in_flight,
            message,
        } => vec![(
            "duplicate",
            json!({"session_id": session_id, "in_flight": in_flight, "message": message}),
        )],
        PlanEvent::CompactionSummary {
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
        PlanEvent::Plan {
            plan_id,
            session_id,
        } => vec![(
            "plan",
            json!({"plan_id": plan_id, "session_id": session_id}),
        )],
        PlanEvent::TextDelta {
            session_id,
            part_id,
            delta,
        } => vec![(
            "text.delta",
            json!({"session_id": session_id, "part_id": part_id, "delta": delta}),
        )],
        PlanEvent::TaskStarted {
            subject,
            skill,
            input,
        } => vec![(
            "task.started",
            json!({"task_id": subject.task_id, "agent": subject.agent, "agent_did": subject.agent_did,
                   "agent_did_source": subject.agent_did_source, "skill": skill, "input": input}),
        )],
        PlanEvent::TaskStatus {
            task_id,
            agent,
            state,
            message,
        } => {
            let mut v = json!({"task_id": task_id, "agent": agent, "state": state.as_str()});
            if let (Some(m), Some(obj)) = (message, v.as_object_mut()) {
                obj.insert("message".into(), Value::String(m.clone()));
            }
            vec![("task.status", v)]
        }
        PlanEvent::TaskConfirm {
            subject,
            skill,
            input,
            timeout_ms,
        } => vec![(
            "task.confirm",
            json!({"task_id": subject.task_id, "agent": subject.agent, "agent_did": subject.agent_did,
                   "agent_did_source": subject.agent_did_source, "skill": skill, "input": input,
                   "timeout_ms": timeout_ms}),
        )],
        PlanEvent::TaskInputRequired {
            task_id,
            agent,
            prompt,
            timeout_ms,
        } => vec![(
            "task.input_required",
            json!({"task_id": task_id, "agent": agent, "prompt": prompt, "timeout_ms": timeout_ms}),
        )],
        PlanEvent::TaskEnded { subject, outcome } => task_ended(subject, outcome),
        PlanEvent::Final {
            session_id,
            stop_reason,
            usage: u,
        } => vec![(
            "final",
            json!({"session_id": session_id, "stop_reason": stop_reason, "usage": usage(u)}),
        )],
        PlanEvent::Error { message, code } => {
            vec![("error", json!({"message": message, "code": code}))]
        }
        PlanEvent::Done => vec![("done", json!({}))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a2a::TaskState;
    use crate::planner::event::{CallSubject, ToolOutcome};

    #[test]
    fn frames_are_compact_with_contract_key_order() {
        let e = PlanEvent::Session {
            session_id: "s".into(),
            external_session_id: None,
            created: true,
        };
        assert_eq!(
            to_wire(&e),
            "event: session\ndata: {\"session_id\":\"s\",\"external_session_id\":null,\"created\":true}\n\n"
        );
        let f = PlanEvent::Final {
            session_id: "s".into(),
            stop_reason: "stop".into(),
            usage: Usage::default(),
        };
        assert_eq!(
            to_wire(&f),
            "event: final\ndata: {\"session_id\":\"s\",\"stop_reason\":\"stop\",\"usage\":{\"inputTokens\":0,\"outputTokens\":0,\"totalTokens\":0,\"cachedInputTokens\":0}}\n\n"
        );
        assert_eq!(to_wire(&PlanEvent::Done), "event: done\ndata: {}\n\n");
    }

    #[test]
    fn task_end_is_two_adjacent_frames() {
        let e = PlanEvent::TaskEnded {
            subject: CallSubject {
                task_id: "t".into(),
                agent: "a".into(),
                ..CallSubject::default()
            },
            outcome: ToolOutcome::failed("boom".into(), Some("r".into()), Some(TaskState::Failed)),
        };
        assert_eq!(
            to_wire(&e),
            "event: task.artifact\ndata: {\"task_id\":\"t\",\"agent\":\"a\",\"agent_did\":null,\"agent_did_source\":null}\n\n\
             event: task.finished\ndata: {\"task_id\":\"t\",\"agent\":\"a\",\"agent_did\":null,\"agent_did_source\":null,\"state\":\"failed\",\"error\":\"boom\",\"remote_task_id\":\"r\",\"remote_state\":\"failed\"}\n\n"
        );
    }
}
