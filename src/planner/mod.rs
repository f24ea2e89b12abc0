//! The planner: owns one plan from `plan` to `done` (spec §3). In LLM mode it runs the step loop
//! (stream a step, run its tool calls concurrently, feed results back, close with a no-tools step);
//! without an LLM key it fans the question out to every skill (§3.11). Every frame goes through the
//! plan's single ordered [`Emitter`]; every abort (deadline, disconnect, shutdown) goes through
//! [`PlanAbort`], so running calls unwind with their frames instead of being dropped.

pub mod ask;
pub mod compaction;
pub mod discovery;
pub mod dispatch;
pub mod event;
pub mod files;
pub mod filter;
pub mod guard;
pub mod prompt;
pub mod render;
pub mod request;
pub mod tools;
pub mod validate;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::a2a::{A2aClient, DialectChoice, Peer, PeerAuth, TaskState};
use crate::llm::{ChatRequest, LlmClient, LlmError, Message, SystemPrompt};
use crate::planner::request::{Agent, PlanRequest, Protocol, Role};
use crate::recipe::RecipeBook;
use crate::telemetry::metrics::{Metrics, PlanOutcome};
use event::{PlanEvent, ToolOutcome, Usage};
use guard::DoomLoopGuard;
use tools::ToolSet;

/// How long an aborted plan may take to unwind before it is dropped (keeps the stream within
/// deadline + 500 ms).
const UNWIND_LIMIT: Duration = Duration::from_millis(450);
/// How long after its deadline a plan may still wait to hand its last frames to the client.
const FINAL_FRAMES_SLACK: Duration = Duration::from_millis(500);
/// The least time the last frames get, even past that point (a client that reads gets them).
const FINAL_FRAMES_MIN: Duration = Duration::from_millis(50);

/// Gateway-wide collaborators of every plan.
#[derive(Debug)]
pub struct PlannerDeps {
    pub a2a: Arc<A2aClient>,
    /// Resolves peer keys for artifact verification.
    pub keys: crate::identity::verify::KeyResolver,
    /// `None` = fan-out mode.
    pub llm: Option<LlmClient>,
    pub recipes: RecipeBook,
    /// The system message (planner prompt, recipe block, instructions), serialised at boot.
    pub system_message: SystemPrompt,
    /// The same with the closing-step addendum.
    pub closing_system_message: SystemPrompt,
    /// Both again with what the prompt says about finding skills on demand, for plans that do.
    pub discovery_system_messages: (SystemPrompt, SystemPrompt),
    /// `planner.tool_discovery_threshold`: plans with more skills find them on demand (0 =
    /// never).
    pub tool_discovery_threshold: usize,
    /// The skill indexes of recently ranked catalogs.
    pub skill_indexes: discovery::IndexCache,
    /// The system prompt's text (for plans that add their caller's instructions to it).
    pub system_prompt: String,
    /// The planner's `steps` setting.
    pub default_steps: Option<u32>,
    /// `planner.context_window`: overrides the model table for compaction.
    pub context_window: Option<u64>,
    /// Plan, peer-call and LLM metrics.
    pub metrics: Arc<Metrics>,
}

/// What a plan may still spend on its LLM: its caller's `llm_tokens_per_day` (a key of the
/// keys file). Checked before each LLM step; every step's tokens (input + output, as the
/// provider reports them) are counted.
pub trait TokenBudget: Send + Sync + std::fmt::Debug {
    /// Whether the budget is spent.
    fn exhausted(&self) -> futures::future::BoxFuture<'_, bool>;
    /// Counts the tokens of one LLM step.
    fn spend(&self, tokens: u64) -> futures::future::BoxFuture<'_, ()>;
}

/// Counters of one plan for its `plan finished` log line.
#[derive(Debug, Default)]
pub struct PlanStats {
    plan_id: std::sync::OnceLock<String>,
    steps: AtomicU32,
    tool_calls: AtomicU32,
    failed_tool_calls: AtomicU32,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
}

impl PlanStats {
    fn tool_call_ended(&self, failed: bool) {
        self.tool_calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_tool_calls.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Why a plan was aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AbortReason {
    Deadline = 1,
    /// The client went away.
    Signal = 2,
    Shutdown = 3,
    /// The caller canceled the plan (`DELETE /plan/{id}`): unlike a disconnect, it is told.
    Canceled = 4,
}

/// The abort switch of one plan: the first reason wins.
#[derive(Debug, Default)]
pub struct PlanAbort {
    pub token: CancellationToken,
    reason: AtomicU8,
}

impl PlanAbort {
    /// Aborts the plan (no-op when already aborted).
    pub fn abort(&self, reason: AbortReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }

    /// The reason, once aborted.
    #[must_use]
    pub fn reason(&self) -> Option<AbortReason> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(AbortReason::Deadline),
            2 => Some(AbortReason::Signal),
            3 => Some(AbortReason::Shutdown),
            4 => Some(AbortReason::Canceled),
            _ => None,
        }
    }
}

/// The plan's ordered event channel. Sending never fails loudly: a gone client just stops
/// receiving. Events travel boxed, so a channel slot is one pointer (thousands of open plans
/// each hold a channel).
#[derive(Debug, Clone)]
pub struct Emitter {
    tx: mpsc::Sender<Box<PlanEvent>>,
    observer: Option<Arc<dyn event::PlanObserver>>,
}

impl Emitter {
    /// Wraps the sending side of the plan's channel.
    #[must_use]
    pub fn new(tx: mpsc::Sender<Box<PlanEvent>>) -> Self {
        Self { tx, observer: None }
    }

    /// Like [`Emitter::new`], with `observer` seeing every event before it is queued and
    /// finishing before `done` is.
    #[must_use]
    pub fn observed(
        tx: mpsc::Sender<Box<PlanEvent>>,
        observer: Option<Arc<dyn event::PlanObserver>>,
    ) -> Self {
        Self { tx, observer }
    }

    /// Queues one event in order.
    pub async fn emit(&self, event: PlanEvent) {
        if let Some(observer) = &self.observer {
            observer.observe(&event);
            if event.is_done() {
                observer.finish().await;
            }
        }
        let _ = self.tx.send(Box::new(event)).await;
    }
}

/// The A2A peer of a catalog entry: built once per plan, where the planner hands work to the
/// peer client.
fn peer_of(agent: &Agent) -> Peer {
    Peer {
        endpoint: agent.endpoint.clone(),
        dialect: match agent.protocol {
            Protocol::V03 => DialectChoice::V03,
            Protocol::V10 => DialectChoice::V10,
            Protocol::Auto => DialectChoice::Auto,
        },
        auth: match &agent.auth {
            request::PeerAuth::None => PeerAuth::None,
            request::PeerAuth::Bearer { token } => PeerAuth::Bearer {
                token: token.clone(),
            },
            request::PeerAuth::BearerEnv { env_var } => PeerAuth::BearerEnv {
                env_var: env_var.clone(),
            },
            request::PeerAuth::DidSigned { token_env_var } => PeerAuth::DidSigned {
                token_env_var: token_env_var.clone(),
            },
        },
    }
}

/// One running plan.
#[derive(Debug)]
pub struct Plan {
    pub session_id: String,
    /// The HTTP request that started the plan.
    pub request_id: String,
    /// The caller's name in logs.
    pub caller: String,
    /// The caller's LLM token budget, when its key has one.
    pub budget: Option<Arc<dyn TokenBudget>>,
    /// What the `plan finished` line reports.
    pub stats: PlanStats,
    pub request: PlanRequest,
    /// The catalog's agents as A2A peers, index for index.
    pub peers: Vec<Peer>,
    pub tools: ToolSet,
    /// Effective deadline (request `timeout_ms` or the configured default).
    pub deadline: Duration,
    /// When tool calls stop waiting for agent cards.
    pub card_deadline: Instant,
    pub abort: Arc<PlanAbort>,
    pub events: Emitter,
    /// Peer calls of this plan running at once (`plan.max_concurrent_calls`): a fan-out over a
    /// large catalog takes turns instead of opening a socket per skill at once.
    pub call_slots: tokio::sync::Semaphore,
    /// Each agent's conversation as this plan goes on (seeded from the request's `threads`).
    pub threads: std::sync::Mutex<std::collections::HashMap<String, request::AgentThread>>,
    /// How the plan asks its client (confirmations, peers' questions).
    pub asker: Arc<dyn ask::Asker>,
    /// `plan.confirm_timeout_ms`.
    pub confirm_timeout: Duration,
    /// When the plan was made (its deadline counts from here).
    pub born: Instant,
    /// The plan's files (agents' and the client's).
    pub files: files::PlanFiles,
    /// The client's attachments, until the plan keeps them as it starts.
    attachments: std::sync::Mutex<Vec<files::Attachment>>,
    /// Skills found on demand: set for an LLM plan with more skills than
    /// `planner.tool_discovery_threshold`.
    pub discovery: Option<discovery::Discovery>,
}

/// Why a plan ended without `final`.
#[derive(Debug)]
enum PlanFailure {
    Llm(LlmError),
    Aborted,
    /// The caller's `llm_tokens_per_day` ran out between two steps.
    Budget,
    Internal(String),
}

/// The system prompt of a plan that finds skills on demand: the note on `find_skills` follows
/// the gateway's prompt (and comes before a caller's own instructions).
#[must_use]
pub fn discovery_prompt(system_prompt: &str) -> String {
    format!("{system_prompt}\n\n{}", discovery::PROMPT_NOTE)
}

/// The system messages of every LLM step, serialised once.
///
/// # Errors
/// Serialisation failure (not expected for strings).
pub fn system_messages(
    system_prompt: &str,
) -> Result<(SystemPrompt, SystemPrompt), serde_json::Error> {
    let closing_prompt = format!("{system_prompt}\n\n{}", prompt::CLOSING_ADDENDUM);
    Ok((
        SystemPrompt::new(system_prompt)?,
        SystemPrompt::new(&closing_prompt)?,
    ))
}

/// The successful end of a plan.
#[derive(Debug)]
struct PlanSuccess {
    stop_reason: String,
    usage: Usage,
}

/// Maps a provider finish reason to `final.stop_reason`.
#[must_use]
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "length",
        Some("tool_calls" | "function_call") => "tool-calls",
        Some("content_filter") => "content-filter",
        Some("error") => "error",
        _ => "stop",
    }
}

/// What a door decides about a plan before it starts.
#[derive(Debug)]
pub struct PlanStart {
    pub session_id: String,
    /// The id of this plan (the `plan` frame's `plan_id`), minted by its door before the first
    /// frame so a resumable plan's log and routes can be keyed by it.
    pub plan_id: String,
    pub request: PlanRequest,
    /// Effective deadline (request `timeout_ms` or the configured default).
    pub deadline: Duration,
    /// When tool calls stop waiting for agent cards.
    pub card_deadline: Instant,
    /// Peer calls of this plan at once (`plan.max_concurrent_calls`).
    pub max_concurrent_calls: usize,
    /// The HTTP request that started the plan (its logs carry it).
    pub request_id: String,
    /// The caller's name (its key's; never a token or its hash), for the `plan finished` line.
    pub caller: String,
    /// The caller's LLM token budget, when its key has one.
    pub budget: Option<Arc<dyn TokenBudget>>,
    /// How the plan asks its client.
    pub asker: Arc<dyn ask::Asker>,
    /// `plan.confirm_timeout_ms`.
    pub confirm_timeout: Duration,
    /// Where the plan's files are kept, and their caps.
    pub files: (Arc<dyn files::FileKeeper>, files::FileCaps),
}

impl Plan {
    /// A plan ready to run: its tools and peers built from the request, its events going to
    /// `events`, its abort switch `abort`.
    #[must_use]
    pub fn new(
        start: PlanStart,
        deps: &PlannerDeps,
        events: Emitter,
        abort: Arc<PlanAbort>,
    ) -> Self {
        let PlanStart {
            session_id,
            plan_id,
            request,
            deadline,
            card_deadline,
            max_concurrent_calls,
            request_id,
            caller,
            budget,
            asker,
            confirm_timeout,
            files: (keeper, caps),
        } = start;
        let mut request = request;
        let attachments = std::mem::take(&mut request.attachments);
        let stats = PlanStats::default();
        let _ = stats.plan_id.set(plan_id);
        let tools = ToolSet::from_request(&request, deps.llm.is_some());
        let discovery = (deps.llm.is_some()
            && deps.tool_discovery_threshold > 0
            && tools.peers.len() > deps.tool_discovery_threshold)
            .then(|| {
                // What the conversation used before is offered from the first step.
                let found = discovery::Discovery::default();
                for (agent, skill) in &request.used_skills {
                    if let tools::ToolTarget::Peer(i) =
                        tools.target(&tools::tool_id(agent, skill), true)
                    {
                        found.offer(i);
                    }
                }
                found
            });
        Self {
            session_id,
            request_id,
            caller,
            budget,
            stats,
            tools,
            discovery,
            threads: std::sync::Mutex::new(request.threads.clone()),
            peers: request.agents.iter().map(peer_of).collect(),
            request,
            deadline,
            card_deadline,
            abort,
            events,
            call_slots: tokio::sync::Semaphore::new(max_concurrent_calls),
            asker,
            confirm_timeout,
            born: Instant::now(),
            files: files::PlanFiles::new(keeper, caps),
            attachments: std::sync::Mutex::new(attachments),
        }
    }

    /// Keeps the client's attachments as files of the plan: their files (whose lines the
    /// model reads), and the same as they are sent to peers (from the bytes in hand, not read
    /// back from where they are kept).
    async fn keep_attachments(
        &self,
    ) -> Result<(Vec<files::PlanFile>, Vec<crate::a2a::OutgoingFile>), PlanFailure> {
        let attachments = std::mem::take(
            &mut *self
                .attachments
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if attachments.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let contents: Vec<files::AttachmentContent> =
            attachments.iter().map(|a| a.content.clone()).collect();
        let kept = self
            .files
            .add_attachments(attachments)
            .await
            .map_err(|e| PlanFailure::Internal(format!("attachments: {e}")))?;
        let outgoing = kept
            .iter()
            .zip(contents)
            .map(|(file, content)| file.outgoing(content))
            .collect();
        Ok((kept, outgoing))
    }

    /// Runs the plan to its terminal frames (`final`/`error`, then `done`). `hard_stop` fires
    /// when the shutdown grace period is over.
    pub async fn run(self, deps: Arc<PlannerDeps>, hard_stop: CancellationToken) {
        let span = tracing::info_span!("plan", session_id = %self.session_id);
        self.run_in_span(deps, hard_stop).instrument(span).await;
    }

    async fn run_in_span(self, deps: Arc<PlannerDeps>, hard_stop: CancellationToken) {
        let abort = Arc::clone(&self.abort);
        let deadline = self.deadline;
        let started = Instant::now();
        let body = async {
            match &deps.llm {
                Some(llm) => self.run_llm(&deps, llm).await,
                None => self.run_fanout(&deps).await,
            }
        };
        let watchdog = async {
            tokio::select! {
                () = tokio::time::sleep(deadline) => abort.abort(AbortReason::Deadline),
                () = hard_stop.cancelled() => abort.abort(AbortReason::Shutdown),
                () = abort.token.cancelled() => {}
            }
            tokio::time::sleep(UNWIND_LIMIT).await;
        };
        let result = tokio::select! {
            r = body => r,
            () = watchdog => Err(PlanFailure::Aborted),
        };
        let result = match (result, abort.reason()) {
            // Anything that ended because of an abort reports the abort.
            (Err(PlanFailure::Llm(LlmError::Aborted)), _) | (Err(_), Some(_)) => {
                Err(PlanFailure::Aborted)
            }
            (r, _) => r,
        };
        let outcome = match (&result, abort.reason()) {
            (Ok(_), _) => PlanOutcome::Final,
            (Err(PlanFailure::Aborted), Some(AbortReason::Signal)) => PlanOutcome::Disconnected,
            (Err(_), _) => PlanOutcome::Error,
        };
        // The last frames wait for a client that reads slowly, but not for one that stopped
        // reading: the plan (its peers, its LLM stream) ends by its deadline + 500 ms whatever
        // the client does, and never holds up shutdown.
        let end_by =
            (started + deadline + FINAL_FRAMES_SLACK).max(Instant::now() + FINAL_FRAMES_MIN);
        let finish = async {
            match result {
                Ok(success) => {
                    self.events
                        .emit(PlanEvent::Final {
                            session_id: self.session_id.clone(),
                            stop_reason: success.stop_reason,
                            usage: success.usage,
                        })
                        .await;
                }
                Err(PlanFailure::Llm(e)) => {
                    tracing::error!(session_id = %self.session_id, error = %e, "plan failed: LLM error");
                    self.events
                        .emit(PlanEvent::Error {
                            message: e.to_string(),
                            code: "llm_error",
                        })
                        .await;
                }
                Err(PlanFailure::Aborted) => match abort.reason() {
                    Some(AbortReason::Deadline) => {
                        tracing::warn!(session_id = %self.session_id, "plan deadline exceeded");
                        self.events
                            .emit(PlanEvent::Error {
                                message: format!(
                                    "plan deadline exceeded after {} ms",
                                    deadline.as_millis()
                                ),
                                code: "deadline_exceeded",
                            })
                            .await;
                    }
                    Some(AbortReason::Shutdown) => {
                        self.events
                            .emit(PlanEvent::Error {
                                message: "gateway shutting down".to_owned(),
                                code: "shutting_down",
                            })
                            .await;
                    }
                    Some(AbortReason::Signal) => {
                        tracing::info!(session_id = %self.session_id, "client disconnected; plan aborted");
                    }
                    Some(AbortReason::Canceled) => {
                        tracing::info!(session_id = %self.session_id, "plan canceled by its caller");
                        self.events
                            .emit(PlanEvent::Error {
                                message: "plan canceled by its caller".to_owned(),
                                code: "canceled",
                            })
                            .await;
                    }
                    None => {
                        self.events
                            .emit(PlanEvent::Error {
                                message: "internal error: plan aborted without a reason".to_owned(),
                                code: "internal",
                            })
                            .await;
                    }
                },
                Err(PlanFailure::Budget) => {
                    tracing::warn!(session_id = %self.session_id, key = %self.caller, "plan stopped: the key's llm_tokens_per_day is spent");
                    self.events
                        .emit(PlanEvent::Error {
                            message: format!(
                                "key {:?} has spent its llm_tokens_per_day; the plan stopped before its next LLM step",
                                self.caller
                            ),
                            code: "budget_exhausted",
                        })
                        .await;
                }
                Err(PlanFailure::Internal(detail)) => {
                    tracing::error!(session_id = %self.session_id, %detail, "plan failed: internal error");
                    self.events
                        .emit(PlanEvent::Error {
                            message: format!("internal error: {detail}"),
                            code: "internal",
                        })
                        .await;
                }
            }
            self.events.emit(PlanEvent::Done).await;
        };
        if tokio::time::timeout_at(end_by.into(), finish)
            .await
            .is_err()
        {
            tracing::warn!(session_id = %self.session_id, "client is not reading; plan ended without sending its last frames");
        }
        self.finished(&deps.metrics, outcome, started.elapsed());
    }

    /// The plan's metrics and its one `plan finished` log line.
    fn finished(&self, metrics: &Metrics, outcome: PlanOutcome, took: Duration) {
        metrics.plan_ended(outcome, took, &self.caller);
        let s = &self.stats;
        tracing::info!(
            request_id = %self.request_id,
            key = %self.caller,
            session_id = %self.session_id,
            plan_id = s.plan_id.get().map_or("", String::as_str),
            outcome = outcome.as_str(),
            duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            steps = s.steps.load(Ordering::Relaxed),
            tool_calls = s.tool_calls.load(Ordering::Relaxed),
            failed_tool_calls = s.failed_tool_calls.load(Ordering::Relaxed),
            input_tokens = s.input_tokens.load(Ordering::Relaxed),
            output_tokens = s.output_tokens.load(Ordering::Relaxed),
            "plan finished"
        );
    }

    async fn emit_plan(&self) {
        let plan_id = self.stats.plan_id.get().cloned().unwrap_or_default();
        self.events
            .emit(PlanEvent::Plan {
                plan_id,
                session_id: self.session_id.clone(),
            })
            .await;
    }

    /// The conversation before the first step: prior summary, history turns, the question
    /// (spec §3.9 seeding). The system message is sent separately, pre-serialised.
    fn seed_messages(&self, attached: &[files::PlanFile]) -> Vec<Message> {
        let r = &self.request;
        let mut messages = Vec::with_capacity(r.history.len() + 3);
        if let Some(summary) = r.prior_summary.as_deref().filter(|s| !s.trim().is_empty()) {
            messages.push(compaction::summary_message(summary));
        }
        for turn in &r.history {
            match turn.role {
                Role::User => messages.push(Message::UserParts(turn.parts.clone())),
                Role::Assistant => {
                    let text = turn.parts.concat();
                    if !text.is_empty() {
                        messages.push(Message::Assistant {
                            text: Some(text),
                            tool_calls: Vec::new(),
                        });
                    }
                }
            }
        }
        if attached.is_empty() {
            messages.push(Message::User(r.question.clone()));
        } else {
            // The model learns each attachment by its line; the bytes stay with the gateway.
            let mut question = r.question.clone();
            question.push_str("\n\nAttached files (pass their ids in a tool's `files` argument to give them to an agent):");
            for f in attached {
                question.push('\n');
                question.push_str(&f.line());
            }
            messages.push(Message::User(question));
        }
        messages
    }

    /// Compacts a history that exceeds the model's budget (spec §3.9). Failures are logged and
    /// the plan continues on the full history.
    async fn compact(&self, deps: &PlannerDeps, llm: &LlmClient, messages: &mut Vec<Message>) {
        let Some(question) = messages.last().cloned() else {
            return;
        };
        let seeded = &messages[..messages.len() - 1];
        let before = compaction::estimate(seeded);
        let window = compaction::context_window(llm.model(), deps.context_window);
        let over = before >= compaction::threshold(window);
        let prior = self
            .request
            .prior_summary
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        let history = &seeded[usize::from(prior.is_some())..];
        // Turns past `sessions.max_turns` are folded even when the history is small.
        let forced = compaction::fold_index(history, self.request.fold_turns);
        let cut = match (
            over.then(|| compaction::cut_index(history)).flatten(),
            forced,
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let Some(cut) = cut else {
            return;
        };
        let (head, tail) = history.split_at(cut);
        let request = compaction::summariser_messages(prior, head);
        match llm.complete(&request, &self.abort.token).await {
            Ok(summary) => {
                let tail = tail.to_vec();
                let after = compaction::tokens_after(&tail, &summary);
                let mut compacted = Vec::with_capacity(tail.len() + 2);
                compacted.push(compaction::summary_message(&summary));
                compacted.extend(tail);
                compacted.push(question);
                *messages = compacted;
                self.events
                    .emit(PlanEvent::CompactionSummary {
                        session_id: self.session_id.clone(),
                        summary,
                        tokens_before: before,
                        tokens_after: after,
                        messages_compacted: cut as u64,
                    })
                    .await;
            }
            Err(e) => {
                tracing::warn!(session_id = %self.session_id, error = %e, "compaction failed; continuing with the full history");
            }
        }
    }

    /// The LLM request's tools: every skill, or (finding skills on demand) `find_skills` and
    /// the skills `offered` so far.
    fn tool_definitions(
        &self,
        recipe_description: &str,
        with_files: bool,
        offered: Option<&[usize]>,
    ) -> Result<Box<serde_json::value::RawValue>, PlanFailure> {
        let offer = offered.map_or(tools::Offer::All, tools::Offer::Found);
        self.tools
            .definitions_json(recipe_description, with_files, offer)
            .map_err(|e| PlanFailure::Internal(e.to_string()))
    }

    async fn run_llm(
        &self,
        deps: &PlannerDeps,
        llm: &LlmClient,
    ) -> Result<PlanSuccess, PlanFailure> {
        let max_steps = self
            .request
            .preferences
            .max_steps
            .or(deps.default_steps)
            .unwrap_or(10)
            .max(1);
        let (attached, _) = self.keep_attachments().await?;
        let mut messages = self.seed_messages(&attached);
        self.compact(deps, llm, &mut messages).await;
        self.emit_plan().await;
        // Tool definitions are serialised once, and again when the plan's first file arrives
        // (from then on every skill offers `files`) or, with skills found on demand, when a
        // skill was found or used.
        let recipe_description = render::recipe_tool_description(&deps.recipes);
        let mut with_files = self.files.any();
        let mut offered = self.discovery.as_ref().map(discovery::Discovery::offered);
        let mut tools =
            self.tool_definitions(&recipe_description, with_files, offered.as_deref())?;
        let mut guard = DoomLoopGuard::default();
        let mut usage = Usage::default();
        let mut finish: Option<String> = None;
        // A caller's own instructions make this plan's system messages; otherwise the ones
        // serialised at boot are used as they are.
        let own = match &self.request.instructions {
            Some(extra) => {
                let prompt = if self.discovery.is_some() {
                    discovery_prompt(&deps.system_prompt)
                } else {
                    deps.system_prompt.clone()
                };
                Some(
                    system_messages(&format!("{prompt}\n\n{extra}"))
                        .map_err(|e| PlanFailure::Internal(e.to_string()))?,
                )
            }
            None => None,
        };
        let (system, closing_system) = match (&own, &self.discovery) {
            (Some((s, c)), _) => (s, c),
            (None, Some(_)) => (
                &deps.discovery_system_messages.0,
                &deps.discovery_system_messages.1,
            ),
            (None, None) => (&deps.system_message, &deps.closing_system_message),
        };
        for step in 0..max_steps {
            if let Some(budget) = &self.budget
                && budget.exhausted().await
            {
                return Err(PlanFailure::Budget);
            }
            let now_offered = self.discovery.as_ref().map(discovery::Discovery::offered);
            if (!with_files && self.files.any()) || now_offered != offered {
                with_files = self.files.any();
                offered = now_offered;
                tools =
                    self.tool_definitions(&recipe_description, with_files, offered.as_deref())?;
            }
            let closing = max_steps >= 2 && step == max_steps - 1;
            let part_id = uuid::Uuid::new_v4().to_string();
            let request = ChatRequest {
                system: if closing { closing_system } else { system },
                messages: &messages,
                tools: &tools,
                tools_disabled: closing,
            };
            let out = llm
                .stream_step(&request, &self.abort.token, |delta| {
                    let event = PlanEvent::TextDelta {
                        session_id: self.session_id.clone(),
                        part_id: part_id.clone(),
                        delta,
                    };
                    self.events.emit(event)
                })
                .await
                .map_err(PlanFailure::Llm)?;
            self.stats.steps.fetch_add(1, Ordering::Relaxed);
            if let Some(u) = out.usage {
                if let Some(budget) = &self.budget {
                    budget
                        .spend(u.input_tokens.saturating_add(u.output_tokens))
                        .await;
                }
                usage.add(&u);
                self.stats
                    .input_tokens
                    .fetch_add(u.input_tokens, Ordering::Relaxed);
                self.stats
                    .output_tokens
                    .fetch_add(u.output_tokens, Ordering::Relaxed);
            }
            finish.clone_from(&out.finish_reason);
            let run_tools = !closing && !out.tool_calls.is_empty();
            let text = (!out.text.is_empty()).then_some(out.text);
            if !run_tools {
                messages.push(Message::Assistant {
                    text,
                    tool_calls: Vec::new(),
                });
                break;
            }
            let prepared = self.prepare_calls(deps, &mut guard, &out.tool_calls).await;
            let reports = join_all(prepared.into_iter().map(|p| self.execute(deps, p))).await;
            let results: Vec<Message> = out
                .tool_calls
                .iter()
                .zip(reports)
                .map(|(call, outcome)| Message::Tool {
                    call_id: call.id.clone(),
                    content: outcome.tool_message(),
                })
                .collect();
            messages.push(Message::Assistant {
                text,
                tool_calls: out.tool_calls,
            });
            messages.extend(results);
            if self.abort.token.is_cancelled() {
                return Err(PlanFailure::Aborted);
            }
        }
        Ok(PlanSuccess {
            stop_reason: stop_reason(finish.as_deref()).to_owned(),
            usage,
        })
    }

    async fn run_fanout(&self, deps: &PlannerDeps) -> Result<PlanSuccess, PlanFailure> {
        // Every skill gets every attachment.
        let (_, outgoing) = self.keep_attachments().await?;
        let outgoing = &outgoing;
        self.emit_plan().await;
        let question = &self.request.question;
        let mut started = Vec::new();
        for (a, agent) in self.request.agents.iter().enumerate() {
            for skill in &agent.skills {
                self.wait_for_agent_card(deps, a).await;
                let subject = self.agent_subject(deps, uuid::Uuid::new_v4().to_string(), a);
                self.asker.task(&subject.task_id).await;
                let confirm = agent.confirm || skill.confirm;
                self.announce(
                    subject.clone(),
                    skill.id.clone(),
                    json!({"input": question}),
                    confirm,
                )
                .await;
                started.push((a, skill.id.as_str(), subject, confirm));
            }
        }
        let reports = join_all(
            started
                .iter()
                .map(|(a, skill_id, subject, confirm)| async move {
                    if *confirm
                        && let Err(reason) = self
                            .confirmed(subject, skill_id, json!({"input": question}))
                            .await
                    {
                        return self
                            .end_call(subject.clone(), ToolOutcome::rejected(reason))
                            .await;
                    }
                    let outcome = self
                        .call_agent_asking(deps, &subject.task_id, *a, skill_id, question, outgoing)
                        .await;
                    self.end_call(subject.clone(), outcome).await
                }),
        )
        .await;
        if self.abort.token.is_cancelled() {
            return Err(PlanFailure::Aborted);
        }
        let part_id = uuid::Uuid::new_v4().to_string();
        if started.is_empty() {
            self.events
                .emit(PlanEvent::TextDelta {
                    session_id: self.session_id.clone(),
                    part_id: part_id.clone(),
                    delta: prompt::FANOUT_NOTHING_TO_ASK.to_owned(),
                })
                .await;
        }
        for (k, ((a, skill_id, _, _), report)) in started.iter().zip(reports).enumerate() {
            let text = match (&report.remote_text, &report.remote_state) {
                _ if report.rejected.is_some() => format!(
                    "(declined) {}",
                    report.rejected.as_deref().unwrap_or_default()
                ),
                (Some(body), Some(TaskState::Completed)) => body.clone(),
                (Some(body), Some(state)) => format!("({state}) {body}"),
                _ => format!("(error) {}", report.error.unwrap_or_default()),
            };
            let sep = if k == 0 { "" } else { "\n\n" };
            let delta = format!(
                "{sep}[[{}:{skill_id}]]\n{text}",
                self.request.agents[*a].name
            );
            self.events
                .emit(PlanEvent::TextDelta {
                    session_id: self.session_id.clone(),
                    part_id: part_id.clone(),
                    delta,
                })
                .await;
        }
        Ok(PlanSuccess {
            stop_reason: "stop".to_owned(),
            usage: Usage::default(),
        })
    }
}
