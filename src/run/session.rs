//! A plan's turn of a server-side conversation (`GATEWAY_SESSIONS=on`): [`Runs::join`] takes the
//! conversation's lease and gives the plan the conversation so far, exactly as a client would
//! have sent it (`history` of questions and answers, `prior_summary`), with what each agent
//! remembers (its `contextId`, a task waiting for the user) and how many old turns to fold
//! (`sessions.max_turns`). The [`Recorder`] follows the plan's events in the plan's own task and
//! saves the turn, giving the lease back, before `done` is queued: the next plan of the
//! conversation may start as soon as a client has read this one's end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::Runs;
use super::answer::Answer;
use crate::planner::event::{PlanEvent, PlanObserver};
use crate::planner::request::{AgentThread, HistoryTurn, PlanRequest, Role};
use crate::store::sessions::{
    AgentMemory, BeginError, CallRecord, Conversation, Sessions, Turn, now_ms,
};

/// How long past its deadline a plan's lease on its conversation lasts (its last frames, the
/// save): a lease outlives its plan only when the instance died.
const LEASE_SLACK: Duration = Duration::from_secs(30);

/// Characters of a folded turn's question and answer kept in a summary written without an LLM.
const PLAIN_FOLD_CHARS: usize = 500;

/// A plan that joined its conversation.
#[derive(Debug)]
pub struct Joined {
    /// The conversation's session id (its first plan's).
    pub session_id: String,
    /// Whether this plan started the conversation.
    pub created: bool,
    /// Follows the plan and saves its turn.
    pub recorder: Arc<Recorder>,
}

/// Saves one plan's turn of a conversation.
#[derive(Debug)]
pub struct Recorder {
    sessions: Arc<Sessions>,
    owner: String,
    plan_id: String,
    session_id: String,
    tracker: tokio_util::task::TaskTracker,
    turn: Mutex<Recording>,
}

/// What the recorder has seen so far.
#[derive(Debug)]
struct Recording {
    /// Taken when the turn is saved.
    conversation: Option<Conversation>,
    question: String,
    answer: Answer,
    /// Tool call id → its place in `calls`, between start and end.
    started: HashMap<String, usize>,
    calls: Vec<CallRecord>,
    usage: Option<serde_json::Value>,
    outcome: String,
    started_at: u64,
    /// The client sent its own history: the stored turns were not the plan's context.
    client_history: bool,
    /// Turns to fold without an LLM (fan-out mode).
    plain_fold: usize,
}

impl Runs {
    /// Takes the conversation `request.session_id` of `owner` for plan `plan_id` and fills
    /// `request` from it. `Ok(None)` when sessions are off or the request names no session.
    ///
    /// # Errors
    /// The conversation is busy, a bound is reached, or the store failed.
    pub async fn join(
        &self,
        owner: &str,
        plan_id: &str,
        request: &mut PlanRequest,
    ) -> Result<Option<Joined>, BeginError> {
        let (Some(sessions), Some(session_id)) = (&self.sessions, request.session_id.clone())
        else {
            return Ok(None);
        };
        let lease = self.deadline_of(request) + LEASE_SLACK;
        let stored = sessions.begin(owner, &session_id, plan_id, lease).await?;
        let created = stored.is_none();
        let conversation = stored.unwrap_or_else(|| {
            Conversation::new(
                uuid::Uuid::new_v4().to_string(),
                session_id.clone(),
                &request.question,
            )
        });
        let client_history = !request.history.is_empty() || request.prior_summary.is_some();
        let over = (conversation.turns.len() + 1).saturating_sub(self.max_turns);
        let llm = self.deps.llm.is_some();
        if !client_history {
            request.used_skills = used_skills(&conversation);
            request.history = history_of(&conversation);
            request.prior_summary.clone_from(&conversation.summary);
            if llm {
                request.fold_turns = over;
            }
        }
        for (agent, memory) in &conversation.agents {
            request.threads.insert(
                agent.clone(),
                AgentThread {
                    context_id: memory.context_id.clone(),
                    waiting_task_id: memory.waiting_task_id.clone(),
                },
            );
            if let Some(task) = &memory.last_task_id {
                request
                    .prior_task_ids
                    .entry(agent.clone())
                    .or_insert_with(|| task.clone());
            }
        }
        let recorder = Arc::new(Recorder {
            sessions: Arc::clone(sessions),
            owner: owner.to_owned(),
            plan_id: plan_id.to_owned(),
            session_id: session_id.clone(),
            tracker: self.tracker.clone(),
            turn: Mutex::new(Recording {
                question: request.question.clone(),
                answer: Answer::default(),
                started: HashMap::new(),
                calls: Vec::new(),
                usage: None,
                outcome: "incomplete".to_owned(),
                started_at: now_ms(),
                client_history,
                plain_fold: if llm || client_history { 0 } else { over },
                conversation: None,
            }),
        });
        let joined = Joined {
            session_id: conversation.id.clone(),
            created,
            recorder: Arc::clone(&recorder),
        };
        recorder.recording().conversation = Some(conversation);
        Ok(Some(joined))
    }

    /// The conversations, when sessions are on.
    #[must_use]
    pub fn sessions(&self) -> Option<&Arc<Sessions>> {
        self.sessions.as_ref()
    }
}

/// The agents' skills the stored turns called, first use first (the gateway's own tools, which
/// have no skill, left out).
fn used_skills(conversation: &Conversation) -> Vec<(String, String)> {
    let mut used: Vec<(String, String)> = Vec::new();
    for call in conversation.turns.iter().flat_map(|t| &t.calls) {
        if call.skill.is_empty()
            || used
                .iter()
                .any(|(a, s)| *a == call.agent && *s == call.skill)
        {
            continue;
        }
        used.push((call.agent.clone(), call.skill.clone()));
    }
    used
}

/// The stored turns as the `history` a client would have sent.
fn history_of(conversation: &Conversation) -> Vec<HistoryTurn> {
    let mut history = Vec::with_capacity(conversation.turns.len() * 2);
    for turn in &conversation.turns {
        history.push(HistoryTurn {
            role: Role::User,
            parts: vec![turn.question.clone()],
        });
        history.push(HistoryTurn {
            role: Role::Assistant,
            parts: vec![turn.answer.clone()],
        });
    }
    history
}

/// How many stored turns the first `messages` history messages of a plan hold (a turn is its
/// question, and its answer when it has one).
fn turns_in(turns: &[Turn], mut messages: u64) -> usize {
    let mut covered = 0;
    for turn in turns {
        if messages == 0 {
            break;
        }
        let size = 1 + u64::from(!turn.answer.is_empty());
        messages = messages.saturating_sub(size);
        covered += 1;
    }
    covered
}

impl Recorder {
    fn recording(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The conversation with this plan's turn added, ready to save; `None` once taken.
    fn finished_conversation(&self) -> Option<Conversation> {
        let mut r = self.recording();
        let mut conversation = r.conversation.take()?;
        let now = now_ms();
        let fold = r.plain_fold.min(conversation.turns.len());
        if fold > 0 {
            let folded: Vec<Turn> = conversation.turns.drain(..fold).collect();
            let mut summary = conversation.summary.take().unwrap_or_default();
            for turn in folded {
                let cut = |t: &str| t.chars().take(PLAIN_FOLD_CHARS).collect::<String>();
                if !summary.is_empty() {
                    summary.push('\n');
                }
                summary.push_str(&format!(
                    "Q: {}\nA: {}",
                    cut(&turn.question),
                    cut(&turn.answer)
                ));
            }
            conversation.summary = Some(summary);
            conversation.folded_turns += fold as u64;
        }
        conversation.turns.push(Turn {
            plan_id: self.plan_id.clone(),
            question: std::mem::take(&mut r.question),
            answer: r.answer.take(),
            calls: std::mem::take(&mut r.calls),
            usage: r.usage.take(),
            outcome: std::mem::take(&mut r.outcome),
            started_at: r.started_at,
            finished_at: now,
        });
        conversation.updated_at = now;
        Some(conversation)
    }
}

impl PlanObserver for Recorder {
    fn observe(&self, event: &PlanEvent) {
        let mut r = self.recording();
        let r = &mut *r;
        match event {
            PlanEvent::TextDelta { part_id, delta, .. } => r.answer.push(part_id, delta),
            PlanEvent::TaskStarted { subject, skill, .. } => {
                // Kept in the order the calls started (the model's order), whenever they end.
                r.started.insert(subject.task_id.clone(), r.calls.len());
                r.calls.push(CallRecord {
                    agent: subject.agent.clone(),
                    skill: skill.clone(),
                    state: "failed".to_owned(),
                    remote_task_id: None,
                    remote_state: None,
                });
            }
            PlanEvent::TaskEnded { subject, outcome } => {
                let at = match r.started.remove(&subject.task_id) {
                    Some(at) => at,
                    None => {
                        r.calls.push(CallRecord {
                            agent: subject.agent.clone(),
                            skill: String::new(),
                            state: String::new(),
                            remote_task_id: None,
                            remote_state: None,
                        });
                        r.calls.len() - 1
                    }
                };
                let agent = r.calls[at].agent.clone();
                if let (Some(context), Some(conversation)) =
                    (&outcome.remote_context_id, r.conversation.as_mut())
                {
                    let memory = conversation.agents.entry(agent.clone()).or_default();
                    *memory = AgentMemory {
                        context_id: Some(context.clone()),
                        waiting_task_id: outcome
                            .waits_for_user()
                            .then(|| outcome.remote_task_id.clone())
                            .flatten(),
                        last_task_id: outcome
                            .remote_task_id
                            .clone()
                            .or_else(|| memory.last_task_id.take()),
                    };
                }
                let call = &mut r.calls[at];
                outcome.finished_state().clone_into(&mut call.state);
                call.remote_task_id.clone_from(&outcome.remote_task_id);
                call.remote_state = outcome.remote_state.as_ref().map(|s| s.as_str().to_owned());
            }
            PlanEvent::CompactionSummary {
                summary,
                messages_compacted,
                ..
            } if !r.client_history => {
                if let Some(conversation) = r.conversation.as_mut() {
                    let covered = turns_in(&conversation.turns, *messages_compacted);
                    conversation.turns.drain(..covered);
                    conversation.folded_turns += covered as u64;
                    conversation.summary = Some(summary.clone());
                }
            }
            PlanEvent::Final { usage, .. } => {
                r.usage = Some(json!({"inputTokens": usage.input_tokens,
                    "outputTokens": usage.output_tokens, "totalTokens": usage.total_tokens,
                    "cachedInputTokens": usage.cached_input_tokens}));
                "final".clone_into(&mut r.outcome);
            }
            PlanEvent::Error { code, .. } => (*code).clone_into(&mut r.outcome),
            _ => {}
        }
    }

    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(conversation) = self.finished_conversation() else {
                return;
            };
            let sessions = Arc::clone(&self.sessions);
            let (owner, session, plan) = (
                self.owner.clone(),
                self.session_id.clone(),
                self.plan_id.clone(),
            );
            // The save runs on its own task: a plan cut short while saving still saves.
            let saved = self.tracker.spawn(async move {
                if let Err(e) = sessions.save(&owner, conversation, &plan).await {
                    tracing::error!(plan_id = %plan, error = %e, "cannot save the turn of the session; it is lost");
                    let _ = sessions.release(&owner, &session, &plan).await;
                }
            });
            let _ = saved.await;
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // A plan that never reached `done` (refused after joining, or dropped) gives its lease
        // back; its turn is not saved.
        let unsaved = self
            .turn
            .get_mut()
            .map_or(true, |r| r.conversation.is_some());
        if !unsaved || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let sessions = Arc::clone(&self.sessions);
        let (owner, session, plan) = (
            self.owner.clone(),
            self.session_id.clone(),
            self.plan_id.clone(),
        );
        self.tracker.spawn(async move {
            if let Err(e) = sessions.release(&owner, &session, &plan).await {
                tracing::warn!(plan_id = %plan, error = %e, "cannot give the session's lease back; it runs out by itself");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(answer: &str) -> Turn {
        Turn {
            plan_id: String::new(),
            question: "q".into(),
            answer: answer.into(),
            calls: Vec::new(),
            usage: None,
            outcome: "final".into(),
            started_at: 0,
            finished_at: 0,
        }
    }

    #[test]
    fn compacted_messages_map_to_whole_turns() {
        let turns = [turn("a"), turn(""), turn("c")];
        assert_eq!(turns_in(&turns, 0), 0);
        assert_eq!(turns_in(&turns, 2), 1);
        assert_eq!(turns_in(&turns, 3), 2);
        assert_eq!(turns_in(&turns, 5), 3);
    }
}
