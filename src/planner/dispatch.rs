//! Executes tool calls (spec §3.6, §5.11): the single place that decides what a call's outcome
//! means for the model (tool message text) and for the client (task frames). A failing peer is a
//! failed tool call here and never a failed plan.

use serde_json::Value;
use tracing::Instrument as _;

use crate::a2a::wire::StateClass;
use crate::a2a::wire::{self, Part, Reply};
use crate::a2a::{A2aError, CallOutcome, OutgoingFile, PeerCall, StatusUpdate, TaskState};
use crate::identity::verify::{SIGNATURE_KEY, Signatures, SignedText, check_texts};
use crate::llm::ToolCall;
use crate::planner::ask::{AskKind, Reply as Answer};
use crate::planner::event::{CallSubject, PlanEvent, ToolOutcome};
use crate::planner::guard::DoomLoopGuard;
use crate::planner::render::{cap_output, envelope, recipe_content, scrub};
use crate::planner::tools::{FIND_SKILLS, LOAD_RECIPE, ToolTarget};
use crate::planner::{AbortReason, Plan, PlannerDeps};
use crate::telemetry::metrics::PeerOutcome;

/// A tool call ready to run: its frames subject, parsed arguments and guard verdict.
#[derive(Debug)]
pub struct PreparedCall {
    pub subject: CallSubject,
    pub skill: String,
    pub target: ToolTarget,
    /// Parsed arguments, or `None` when the text is not JSON.
    pub args: Option<Value>,
    /// The doom-loop bail text when the call must not run.
    pub bail: Option<String>,
    /// The input shown in its frames.
    pub input: Value,
    /// The call waits for the client's yes (`task.confirm` was emitted, not `task.started`).
    pub confirm: bool,
}

impl Plan {
    /// The frames subject of a catalog agent: name, and DID with its source (pinned, else the
    /// one observed in the agent card).
    pub(super) fn agent_subject(
        &self,
        deps: &PlannerDeps,
        task_id: String,
        agent_index: usize,
    ) -> CallSubject {
        let agent = &self.request.agents[agent_index];
        let (agent_did, agent_did_source) = match &agent.trust.pinned_did {
            Some(did) => (Some(did.clone()), Some("pinned")),
            None => match deps
                .a2a
                .cached_card(&agent.endpoint)
                .and_then(|c| c.did.clone())
            {
                Some(did) => (Some(did), Some("observed")),
                None => (None, None),
            },
        };
        CallSubject {
            task_id,
            agent: agent.name.clone(),
            agent_did,
            agent_did_source,
        }
    }

    /// The frames subject and skill id of a tool target.
    fn subject(
        &self,
        deps: &PlannerDeps,
        task_id: String,
        target: ToolTarget,
        name: &str,
    ) -> (CallSubject, String) {
        match target {
            ToolTarget::Peer(i) => {
                let tool = &self.tools.peers[i];
                let skill = self.request.agents[tool.agent].skills[tool.skill]
                    .id
                    .clone();
                (self.agent_subject(deps, task_id, tool.agent), skill)
            }
            ToolTarget::LoadRecipe => (
                CallSubject {
                    task_id,
                    agent: LOAD_RECIPE.to_owned(),
                    ..CallSubject::default()
                },
                String::new(),
            ),
            ToolTarget::FindSkills => (
                CallSubject {
                    task_id,
                    agent: FIND_SKILLS.to_owned(),
                    ..CallSubject::default()
                },
                String::new(),
            ),
            ToolTarget::Unknown => (
                CallSubject {
                    task_id,
                    agent: name.to_owned(),
                    ..CallSubject::default()
                },
                String::new(),
            ),
        }
    }

    /// Resolves a tool name from the model. With skills found on demand, `find_skills` is a
    /// tool, and a skill called by its name (found or guessed) is offered from then on.
    fn target(&self, name: &str) -> ToolTarget {
        match &self.discovery {
            Some(_) if name == FIND_SKILLS => ToolTarget::FindSkills,
            Some(discovery) => {
                let target = self.tools.target(name, true);
                if let ToolTarget::Peer(i) = target {
                    discovery.offer(i);
                }
                target
            }
            None => self.tools.target(name, true),
        }
    }

    /// Waits, within the plan's card budget, for an agent's card (spec §3.6).
    pub(super) async fn wait_for_agent_card(&self, deps: &PlannerDeps, agent_index: usize) {
        let endpoint = &self.request.agents[agent_index].endpoint;
        let remaining = self
            .card_deadline
            .saturating_duration_since(std::time::Instant::now());
        if !remaining.is_zero() {
            tokio::select! {
                _ = deps.a2a.card(endpoint, remaining) => {}
                () = tokio::time::sleep(remaining) => {}
                () = self.abort.token.cancelled() => {}
            }
        }
    }

    /// Prepares the calls of one LLM step in emission order: guard records, card waits and
    /// `task.started` frames, so parallel calls start in the order the model emitted them.
    pub(super) async fn prepare_calls(
        &self,
        deps: &PlannerDeps,
        guard: &mut DoomLoopGuard,
        calls: &[ToolCall],
    ) -> Vec<PreparedCall> {
        let mut prepared = Vec::with_capacity(calls.len());
        for call in calls {
            let target = self.target(&call.name);
            let args = if call.arguments.trim().is_empty() {
                Some(Value::Object(serde_json::Map::new()))
            } else {
                serde_json::from_str::<Value>(&call.arguments).ok()
            };
            let bail = guard.record(&call.name, args.as_ref());
            if let (None, ToolTarget::Peer(i)) = (&bail, target) {
                self.wait_for_agent_card(deps, self.tools.peers[i].agent)
                    .await;
            }
            let (subject, skill) = self.subject(deps, call.id.clone(), target, &call.name);
            let input = args
                .clone()
                .unwrap_or_else(|| Value::String(call.arguments.clone()));
            self.asker.task(&subject.task_id).await;
            let confirm = bail.is_none()
                && match target {
                    ToolTarget::Peer(i) => {
                        let tool = &self.tools.peers[i];
                        let agent = &self.request.agents[tool.agent];
                        agent.confirm || agent.skills[tool.skill].confirm
                    }
                    ToolTarget::LoadRecipe | ToolTarget::FindSkills | ToolTarget::Unknown => false,
                };
            self.announce(subject.clone(), skill.clone(), input.clone(), confirm)
                .await;
            prepared.push(PreparedCall {
                subject,
                skill,
                target,
                args,
                bail,
                input,
                confirm,
            });
        }
        prepared
    }

    /// Runs one prepared call to its end frames.
    pub(super) async fn execute(&self, deps: &PlannerDeps, call: PreparedCall) -> ToolOutcome {
        if call.confirm
            && let Err(reason) = self
                .confirmed(&call.subject, &call.skill, call.input.clone())
                .await
        {
            return self
                .end_call(call.subject, ToolOutcome::rejected(reason))
                .await;
        }
        let outcome = match (&call.bail, call.target) {
            (Some(bail), _) => ToolOutcome::content(bail.clone()),
            (None, ToolTarget::Peer(i)) => {
                self.call_peer(deps, &call.subject.task_id, i, call.args.as_ref())
                    .await
            }
            (None, ToolTarget::LoadRecipe) => {
                let name = call
                    .args
                    .as_ref()
                    .and_then(|a| a.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match recipe_content(&deps.recipes, name) {
                    Ok(content) => ToolOutcome::content(content),
                    Err(e) => ToolOutcome::failed(e, None, None),
                }
            }
            (None, ToolTarget::FindSkills) => match &self.discovery {
                Some(discovery) => {
                    match discovery.find(
                        &deps.skill_indexes,
                        &self.request,
                        &self.tools,
                        call.args.as_ref(),
                    ) {
                        Ok(lines) => ToolOutcome::content(lines),
                        Err(e) => ToolOutcome::failed(e, None, None),
                    }
                }
                None => ToolOutcome::failed(format!("unknown tool \"{FIND_SKILLS}\""), None, None),
            },
            (None, ToolTarget::Unknown) => ToolOutcome::failed(
                if self.discovery.is_some() {
                    format!(
                        "unknown tool \"{}\"; {FIND_SKILLS} lists the skills that fit a task",
                        call.subject.agent
                    )
                } else {
                    format!("unknown tool \"{}\"", call.subject.agent)
                },
                None,
                None,
            ),
        };
        self.end_call(call.subject, outcome).await
    }

    /// Emits a call's end frames and hands its outcome back (without the fan-out text, which
    /// is never framed).
    pub(super) async fn end_call(
        &self,
        subject: CallSubject,
        mut outcome: ToolOutcome,
    ) -> ToolOutcome {
        self.stats.tool_call_ended(outcome.error.is_some());
        let remote_text = outcome.remote_text.take();
        self.events
            .emit(PlanEvent::TaskEnded {
                subject,
                outcome: outcome.clone(),
            })
            .await;
        outcome.remote_text = remote_text;
        outcome
    }

    async fn call_peer(
        &self,
        deps: &PlannerDeps,
        task_id: &str,
        tool_index: usize,
        args: Option<&Value>,
    ) -> ToolOutcome {
        let tool = &self.tools.peers[tool_index];
        let agent = &self.request.agents[tool.agent];
        let skill = &agent.skills[tool.skill];
        let Some(args) = args else {
            return ToolOutcome::failed(
                "invalid tool input: arguments are not valid JSON".to_owned(),
                None,
                None,
            );
        };
        // `files` is the gateway's argument: the ids of files to send along, not peer input.
        let split = match tool.split_files(args) {
            Ok(split) => split,
            Err(e) => return ToolOutcome::failed(e, None, None),
        };
        let (args, file_ids) = match &split {
            Some((rest, ids)) => (rest, ids.as_slice()),
            None => (args, &[][..]),
        };
        if let Err(e) = tool.validate(args) {
            return ToolOutcome::failed(e, None, None);
        }
        let files = match self.files.outgoing(file_ids).await {
            Ok(files) => files,
            Err(e) => return ToolOutcome::failed(e, None, None),
        };
        let input = tool.peer_input(args);
        self.call_agent_asking(deps, task_id, tool.agent, &skill.id, &input, &files)
            .await
    }

    /// How long a question may wait now: `plan.confirm_timeout_ms`, never past the deadline.
    fn ask_timeout(&self) -> std::time::Duration {
        self.confirm_timeout
            .min(self.deadline.saturating_sub(self.born.elapsed()))
    }

    /// The first frame of a call: `task.started`, or `task.confirm` for a call that waits for
    /// the client's yes (registered first, so an answer sent at once is taken).
    pub(super) async fn announce(
        &self,
        subject: CallSubject,
        skill: String,
        input: Value,
        confirm: bool,
    ) {
        if !confirm {
            self.events
                .emit(PlanEvent::TaskStarted {
                    subject,
                    skill,
                    input,
                })
                .await;
            return;
        }
        self.asker.expect(&subject.task_id, AskKind::Confirm).await;
        self.events
            .emit(PlanEvent::TaskConfirm {
                subject,
                skill,
                input,
                timeout_ms: millis(self.ask_timeout()),
            })
            .await;
    }

    /// Waits for the client's answer to a `task.confirm`: approved, the call starts
    /// (`task.started` with the same task id); else the reason it was declined.
    pub(super) async fn confirmed(
        &self,
        subject: &CallSubject,
        skill: &str,
        input: Value,
    ) -> Result<(), String> {
        match self.answer_of(&subject.task_id).await {
            Some(Answer::Approve) => {
                self.events
                    .emit(PlanEvent::TaskStarted {
                        subject: subject.clone(),
                        skill: skill.to_owned(),
                        input,
                    })
                    .await;
                Ok(())
            }
            Some(Answer::Decline(reason)) => Err(reason),
            Some(Answer::Text(_)) | None => {
                Err(self.asker.cannot_ask().unwrap_or("no answer").to_owned())
            }
        }
    }

    /// The client's answer to the question task `task_id` expects, within the question's
    /// timeout and the plan's life; the question is closed either way.
    async fn answer_of(&self, task_id: &str) -> Option<Answer> {
        if self.asker.cannot_ask().is_some() {
            return None;
        }
        let reply = tokio::select! {
            r = tokio::time::timeout(self.ask_timeout(), self.asker.wait(task_id)) => r.ok().flatten(),
            () = self.abort.token.cancelled() => None,
        };
        self.asker.close(task_id).await;
        reply
    }

    /// [`Plan::call_agent`], and in an interactive plan each question the peer asks
    /// (`input-required`) goes to the client, whose answer is sent on the same task, until the
    /// peer stops asking or no answer comes.
    pub(super) async fn call_agent_asking(
        &self,
        deps: &PlannerDeps,
        task_id: &str,
        agent_index: usize,
        skill_id: &str,
        input: &str,
        files: &[OutgoingFile],
    ) -> ToolOutcome {
        let mut outcome = self
            .call_agent(deps, task_id, agent_index, skill_id, input, files)
            .await;
        while self.request.preferences.interactive
            && self.asker.cannot_ask().is_none()
            && outcome.remote_state == Some(TaskState::InputRequired)
            && !self.abort.token.is_cancelled()
        {
            self.asker.expect(task_id, AskKind::Input).await;
            self.events
                .emit(PlanEvent::TaskInputRequired {
                    task_id: task_id.to_owned(),
                    agent: self.request.agents[agent_index].name.clone(),
                    prompt: outcome.remote_text.clone().unwrap_or_default(),
                    timeout_ms: millis(self.ask_timeout()),
                })
                .await;
            let Some(Answer::Text(answer)) = self.answer_of(task_id).await else {
                break;
            };
            outcome = self
                .call_agent(deps, task_id, agent_index, skill_id, &answer, &[])
                .await;
        }
        outcome
    }

    /// Calls one agent skill with a peer input and maps the outcome (spec §5.11); counts it
    /// in the metrics and logs a failed call (agent, skill, error: never a credential).
    pub(super) async fn call_agent(
        &self,
        deps: &PlannerDeps,
        task_id: &str,
        agent_index: usize,
        skill_id: &str,
        input: &str,
        files: &[OutgoingFile],
    ) -> ToolOutcome {
        let started = std::time::Instant::now();
        let span = tracing::info_span!(
            "peer.call",
            agent = %self.request.agents[agent_index].name,
            skill = skill_id,
        );
        let outcome = self
            .call_agent_once(deps, task_id, agent_index, skill_id, input, files)
            .instrument(span)
            .await;
        let kind = match (&outcome.remote_state, &outcome.error) {
            (Some(s), _) if s.class() == StateClass::NeedsAction => PeerOutcome::InputRequired,
            (Some(TaskState::Canceled), _) => PeerOutcome::Canceled,
            (_, Some(_)) if self.abort.reason().is_some() => PeerOutcome::Canceled,
            (_, Some(_)) => PeerOutcome::Failed,
            (_, None) => PeerOutcome::Completed,
        };
        deps.metrics.peer_call(kind, started.elapsed());
        if kind == PeerOutcome::Failed {
            tracing::warn!(
                request_id = %self.request_id,
                session_id = %self.session_id,
                agent = %self.request.agents[agent_index].name,
                skill = skill_id,
                error = outcome.error.as_deref().unwrap_or(""),
                "peer call failed"
            );
        }
        outcome
    }

    async fn call_agent_once(
        &self,
        deps: &PlannerDeps,
        task_id: &str,
        agent_index: usize,
        skill_id: &str,
        input: &str,
        files: &[OutgoingFile],
    ) -> ToolOutcome {
        let agent = &self.request.agents[agent_index];
        // Wait for a call slot; an abort while waiting falls through to a call that ends at once.
        let _slot = tokio::select! {
            slot = self.call_slots.acquire() => slot.ok(),
            () = self.abort.token.cancelled() => None,
        };
        let card = deps.a2a.cached_card(&agent.endpoint);
        // Streaming peers report intermediate states; forward them as `task.status` while the
        // call runs, so they land before the call's end frames.
        let (status_tx, mut status_rx) = tokio::sync::watch::channel::<Option<StatusUpdate>>(None);
        let (context_id, continue_task_id) = self.thread_of(&agent.name);
        let call = async {
            let status_tx = status_tx;
            deps.a2a
                .call(PeerCall {
                    peer: &self.peers[agent_index],
                    skill_id,
                    input,
                    files,
                    context_id: &context_id,
                    reference_task_id: self
                        .request
                        .prior_task_ids
                        .get(&agent.name)
                        .map(String::as_str),
                    continue_task_id: continue_task_id.as_deref(),
                    card: card.as_deref(),
                    abort: &self.abort.token,
                    status: Some(&status_tx),
                })
                .await
        };
        let forward = async {
            // Ends when the call drops its sender, after the last state was seen.
            while status_rx.changed().await.is_ok() {
                let Some(update) = status_rx.borrow_and_update().clone() else {
                    continue;
                };
                self.events
                    .emit(PlanEvent::TaskStatus {
                        task_id: task_id.to_owned(),
                        agent: agent.name.clone(),
                        state: update.state,
                        message: update.message,
                    })
                    .await;
            }
        };
        let (outcome, ()) = tokio::join!(call, forward);
        let answered_in = outcome
            .result
            .as_ref()
            .ok()
            .and_then(|reply| reply.context_id())
            .unwrap_or(&context_id)
            .to_owned();
        self.thread_went_on(&agent.name, &answered_in, &outcome);
        let outcome = self.call_outcome(deps, agent_index, outcome).await;
        ToolOutcome {
            remote_context_id: Some(answered_in),
            ..outcome
        }
    }

    /// The `contextId` to send `agent` and the waiting task the call answers (taken: only the
    /// first call of a plan continues it).
    fn thread_of(&self, agent: &str) -> (String, Option<String>) {
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match threads.get_mut(agent) {
            Some(thread) => (
                thread
                    .context_id
                    .clone()
                    .unwrap_or_else(|| self.session_id.clone()),
                thread.waiting_task_id.take(),
            ),
            None => (self.session_id.clone(), None),
        }
    }

    /// Remembers where `agent` answered and whether it now waits for the user, for the plan's
    /// next call to it.
    fn thread_went_on(&self, agent: &str, context_id: &str, outcome: &CallOutcome) {
        let waiting = outcome
            .remote_state
            .as_ref()
            .is_some_and(|s| s.class() == StateClass::NeedsAction);
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let thread = threads.entry(agent.to_owned()).or_default();
        thread.context_id = Some(context_id.to_owned());
        thread.waiting_task_id = if waiting {
            outcome.remote_task_id.clone()
        } else {
            None
        };
    }

    /// What a finished peer call means for the model and the client: verification, the
    /// envelope, the error.
    async fn call_outcome(
        &self,
        deps: &PlannerDeps,
        agent_index: usize,
        outcome: CallOutcome,
    ) -> ToolOutcome {
        let agent = &self.request.agents[agent_index];
        match outcome.result {
            Err(e) => {
                let e = match (e, self.abort.reason()) {
                    (A2aError::Aborted, Some(AbortReason::Deadline)) => A2aError::Deadline,
                    (other, _) => other,
                };
                ToolOutcome::failed(e.to_string(), outcome.remote_task_id, outcome.remote_state)
            }
            Ok(reply) => {
                let state = reply.state();
                let verification = self.verify(deps, agent_index, &reply).await;
                let signatures = match &verification {
                    Verification::Ran(s) => Some(Some(*s)),
                    Verification::NotRun | Verification::NoArtifacts | Verification::NoKey(_) => {
                        Some(None)
                    }
                };
                let verify_error = |s: &Signatures| {
                    format!(
                        "signature verification failed: {} of {} signed text parts verified",
                        s.verified, s.signed
                    )
                };
                if agent.trust.require_verified {
                    let withheld = match &verification {
                        Verification::Ran(s) if !s.ok => Some(verify_error(s)),
                        Verification::Ran(s) if s.signed == 0 => {
                            Some("signature verification failed: response is unsigned".to_owned())
                        }
                        Verification::NoKey(who) => Some(format!(
                            "signature verification failed: no public key for {who}"
                        )),
                        _ => None,
                    };
                    if let Some(error) = withheld {
                        return ToolOutcome {
                            signatures,
                            ..ToolOutcome::failed(error, outcome.remote_task_id, Some(state))
                        };
                    }
                }
                let label = match &verification {
                    Verification::Ran(s) if !s.ok => "no",
                    Verification::Ran(s) if s.signed == 0 => "unsigned",
                    Verification::Ran(_) => "yes",
                    Verification::NotRun | Verification::NoArtifacts | Verification::NoKey(_) => {
                        "unknown"
                    }
                };
                // The peer's files become the plan's; the model reads one line per file.
                let mut files = Vec::new();
                for part in wire::file_parts(&reply) {
                    match self.files.add_part(part).await {
                        Ok(Some(file)) => files.push(file),
                        Ok(None) => {}
                        Err(e) => {
                            return ToolOutcome {
                                signatures,
                                ..ToolOutcome::failed(e, outcome.remote_task_id, Some(state))
                            };
                        }
                    }
                }
                let mut text = cap_output(
                    wire::output_text(&reply),
                    deps.a2a.config().max_output_chars,
                );
                for file in &files {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&file.line());
                }
                let content = envelope(
                    &agent.name,
                    agent.trust.pinned_did.as_deref(),
                    label,
                    (state != TaskState::Completed).then_some(state.as_str()),
                    &text,
                );
                let error = match &verification {
                    Verification::Ran(s) if !s.ok => Some(verify_error(s)),
                    _ => state
                        .is_unsuccessful()
                        .then(|| format!("remote task {state}")),
                };
                ToolOutcome {
                    content: Some(content),
                    error,
                    signatures,
                    remote_task_id: outcome.remote_task_id,
                    remote_state: Some(state),
                    remote_text: Some(scrub(&text)),
                    remote_context_id: None,
                    rejected: None,
                    files,
                }
            }
        }
    }

    /// Verifies artifact signatures when the agent's trust settings ask for it (spec §6.4).
    async fn verify(&self, deps: &PlannerDeps, agent_index: usize, reply: &Reply) -> Verification {
        let agent = &self.request.agents[agent_index];
        if !agent.trust.verify_did {
            return Verification::NotRun;
        }
        let artifacts = match reply {
            Reply::Task(t) if !t.artifacts.is_empty() => &t.artifacts,
            _ => return Verification::NoArtifacts,
        };
        let key = match agent.trust.pinned_public_key {
            Some(key) => key,
            None => {
                let did = agent.trust.pinned_did.clone().or_else(|| {
                    deps.a2a
                        .cached_card(&agent.endpoint)
                        .and_then(|c| c.did.clone())
                });
                let Some(did) = did else {
                    return Verification::NoKey(agent.name.clone());
                };
                match deps
                    .keys
                    .key_for_did(&agent.endpoint, &did, &self.abort.token)
                    .await
                {
                    Some(key) => key,
                    None => return Verification::NoKey(did),
                }
            }
        };
        Verification::Ran(check_texts(signed_texts(artifacts), &key))
    }
}

/// The outcome of artifact verification.
#[derive(Debug, Clone)]
enum Verification {
    /// `trust.verifyDID` is off.
    NotRun,
    /// Nothing to verify (no artifacts).
    NoArtifacts,
    /// Artifacts exist but no key could be obtained; holds the DID or agent name.
    NoKey(String),
    Ran(Signatures),
}

/// The text parts of artifacts with the signature each carries (Bindu's convention: base58 in
/// the part's metadata under [`SIGNATURE_KEY`]).
fn signed_texts(artifacts: &[wire::Artifact]) -> impl Iterator<Item = SignedText<'_>> {
    artifacts
        .iter()
        .flat_map(|a| &a.parts)
        .filter_map(|part| match part {
            Part::Text { text, metadata } => Some(SignedText {
                text,
                signature: metadata
                    .as_ref()
                    .and_then(|m| m.get(SIGNATURE_KEY))
                    .and_then(Value::as_str),
            }),
            Part::Data(_) | Part::File(_) => None,
        })
}

/// Whole milliseconds of `d` for frames.
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signed_texts_of_artifacts_are_checked() {
        let key =
            crate::identity::decode_public_key("Cc6VMMB8Zq4dUxC4B6DD3LU7zPLox6jctf52YfhaFLWF")
                .unwrap();
        let good = "CcaHCsKfcej1NgRuRE7pcTMwrt3BnNt7wL9RnBYMRRoQMGJyDfALdaZv8ybrBEQqokcQqvQin2jPGpVavgXQzwt";
        let artifact = wire::parse_artifact(&json!({"parts": [
            {"kind": "text", "text": "echo: hello bindu", "metadata": {"did.message.signature": good}},
            {"kind": "text", "text": "echo: hello bindX", "metadata": {"did.message.signature": good}},
            {"kind": "text", "text": "plain"},
            {"kind": "text", "text": ""},
            {"kind": "data", "data": {"x": 1}}]})).unwrap();
        let s = check_texts(signed_texts(&[artifact]), &key);
        assert_eq!((s.ok, s.signed, s.verified, s.unsigned), (false, 2, 1, 1));
    }
}
