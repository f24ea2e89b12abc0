//! Talks to remote agents over A2A JSON-RPC: send, then poll on the fast ladder until the task
//! settles, cancel on abort (spec §5). Owns per-call budgets and retries of single requests, never
//! retries of a plan. The dialect (v0.3 / v1.0) only changes request bodies and headers, so the
//! planner sees one [`A2aClient::call`] whatever the peer speaks.

pub mod card;
pub mod guard;
pub mod jsonrpc;
mod stream;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::error::error_chain;
use tokio_util::task::TaskTracker;

use crate::api::request::{Agent, PeerAuth, Protocol};
use crate::config::A2aConfig;
use crate::identity::Identity;
use crate::identity::hydra::TokenProvider;
use card::{AgentCard, CardCache, CardTtl, PeerFact};
use guard::Guard;
use jsonrpc::{Dialect, IdShape, SendParams};
use wire::Reply;

/// Poll sleeps before poll k (spec §5.7), in milliseconds.
const POLL_LADDER_MS: [u64; 7] = [100, 200, 400, 800, 1600, 3200, 5000];
/// How long an aborted call waits for its best-effort cancel before reporting.
const CANCEL_WAIT_ON_ABORT: Duration = Duration::from_millis(300);
/// Consecutive transport failures of polls that fail the call.
const MAX_POLL_TRANSPORT_FAILURES: u32 = 3;

/// Why a peer call failed; `Display` is the exact text the planner and clients see (spec §5.14).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum A2aError {
    /// The peer answered with a JSON-RPC error.
    #[error("{message}")]
    Rpc { code: i64, message: String },
    /// Network failure, timeout, HTTP error without JSON-RPC error, bad envelope.
    #[error("transport: {message}")]
    Transport {
        message: String,
        /// Whether a later poll might succeed (network errors, timeouts, 5xx).
        retryable: bool,
    },
    /// The result was neither a Task nor a Message.
    #[error("peer returned invalid Task shape: {0}")]
    InvalidShape(String),
    /// The call budget ran out while the task was still in progress.
    #[error("poll exhausted after {polls} attempts")]
    PollExhausted {
        polls: u32,
        last_state: String,
        budget_ms: u64,
    },
    /// Building auth headers failed.
    #[error("transport: auth: {0}")]
    Auth(String),
    /// The plan deadline fired.
    #[error("plan deadline exceeded")]
    Deadline,
    /// The client went away or the gateway is shutting down.
    #[error("aborted by caller")]
    Aborted,
}

impl A2aError {
    fn transport(message: String, retryable: bool) -> Self {
        Self::Transport { message, retryable }
    }

    /// The JSON-RPC code of the failure (spec §5.14).
    #[must_use]
    pub fn code(&self) -> i64 {
        match self {
            Self::Rpc { code, .. } => *code,
            Self::Transport { .. } | Self::PollExhausted { .. } | Self::Auth(_) => -32603,
            Self::InvalidShape(_) => -32006,
            Self::Deadline | Self::Aborted => -32040,
        }
    }
}

/// One peer call as the planner asks for it.
#[derive(Debug, Clone, Copy)]
pub struct PeerCall<'a> {
    pub agent: &'a Agent,
    pub skill_id: &'a str,
    /// The text sent as the single message part.
    pub input: &'a str,
    /// The plan's session id.
    pub context_id: &'a str,
    pub reference_task_id: Option<&'a str>,
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
    /// Normalised state.
    pub state: String,
    /// Text of the status message, when the peer sent one.
    pub message: Option<String>,
}

/// What a peer call produced.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The peer's task id whenever one became known.
    pub remote_task_id: Option<String>,
    /// The last remote state observed (normalised); a Message counts as `completed`.
    pub remote_state: Option<String>,
    pub result: Result<Reply, A2aError>,
}

/// Auth resolved for one call (spec §5.13): header values built once, applied per request;
/// DID signatures are computed per request over the exact body bytes.
#[derive(Clone)]
pub(crate) enum ResolvedAuth {
    None,
    Bearer(HeaderValue),
    Signed {
        bearer: HeaderValue,
        identity: Arc<Identity>,
    },
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
    /// A client-chosen task id: v0.3 peers (Bindu) need one; v1.0 servers choose their own, and
    /// so do v0.3 peers that refused ours earlier (a2a-sdk, the JS SDK in compat mode).
    fn chosen_task_id(&self) -> Option<String> {
        (self.dialect == Dialect::V03 && !self.server_task_ids)
            .then(|| uuid::Uuid::new_v4().to_string())
    }

    /// Called when the peer refused our fresh task id with -32001 (it only knows ids it assigned):
    /// later sends to this peer omit the id from the start.
    fn remember_server_task_ids(&self, client: &A2aClient) {
        client
            .cards
            .learn(&self.call.agent.endpoint, PeerFact::AssignsTaskIds);
    }

    /// The send parameters of this call with the given client task id.
    fn send_params<'p>(&self, task_id: Option<&'p str>) -> SendParams<'p>
    where
        'c: 'p,
    {
        SendParams {
            context_id: self.call.context_id,
            task_id,
            text: self.call.input,
            reference_task_id: self.call.reference_task_id,
            skill_id: self.call.skill_id,
        }
    }
}

/// Mutable facts of one call, kept so abort handling knows what to cancel.
#[derive(Debug, Default)]
pub(crate) struct CallProgress {
    pub(crate) remote_task_id: Option<String>,
    pub(crate) last_state: Option<String>,
    pub(crate) polls: u32,
    /// Set when the failure requires a best-effort cancel (spec §5.9).
    pub(crate) cancel: bool,
}

/// The shared A2A client: one HTTP connection pool, the card cache and the env allow-list.
#[derive(Debug)]
pub struct A2aClient {
    http: reqwest::Client,
    config: A2aConfig,
    peer_env: HashMap<String, SecretString>,
    cards: CardCache,
    tracker: TaskTracker,
    /// Signs requests to `did_signed` peers.
    identity: Option<Arc<Identity>>,
    /// Bearer tokens for `did_signed` peers without `tokenEnvVar`.
    tokens: Option<Arc<TokenProvider>>,
    /// One permit per request to a peer in flight (`a2a.max_connections`).
    connections: Arc<tokio::sync::Semaphore>,
}

/// Decodes a peer's SSE stream from raw bytes without a network (fuzzing entry point).
///
/// # Errors
/// What the stream's events would fail the call with.
#[doc(hidden)]
pub fn decode_stream_for_fuzzing(bytes: &[u8], limit: usize) -> Result<Reply, A2aError> {
    stream::decode_events(bytes, limit)
}

/// The JSON-RPC URL of a catalog endpoint: one trailing `/` removed, then `/` appended.
#[must_use]
pub fn rpc_url(endpoint: &str) -> String {
    format!("{}/", endpoint.strip_suffix('/').unwrap_or(endpoint))
}

impl A2aClient {
    /// Creates the client; `tracker` owns the background card fetches and cancels.
    #[must_use]
    pub fn new(
        http: reqwest::Client,
        config: A2aConfig,
        peer_env: HashMap<String, SecretString>,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            http,
            connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
            config,
            peer_env,
            cards: CardCache::default(),
            tracker,
            identity: None,
            tokens: None,
        }
    }

    /// Adds the gateway identity (and Hydra tokens) used for `did_signed` peers.
    #[must_use]
    pub fn with_identity(
        mut self,
        identity: Option<Arc<Identity>>,
        tokens: Option<Arc<TokenProvider>>,
    ) -> Self {
        self.identity = identity;
        self.tokens = tokens;
        self
    }

    /// The A2A settings.
    #[must_use]
    pub fn config(&self) -> &A2aConfig {
        &self.config
    }

    /// Starts (or joins) the background fetch of an endpoint's card, bounded by `budget`.
    pub fn prefetch_card(self: &Arc<Self>, endpoint: &str, budget: Duration) {
        if self.cards.peek(endpoint).is_some() {
            return;
        }
        if self.check_endpoint(endpoint).is_err() {
            return;
        }
        let this = Arc::clone(self);
        let endpoint = endpoint.to_owned();
        self.tracker.spawn(async move {
            let _ = this.card(&endpoint, budget).await;
        });
    }

    /// The card for an endpoint: cached, or fetched within `budget`.
    pub async fn card(&self, endpoint: &str, budget: Duration) -> Option<Arc<AgentCard>> {
        let ttl = CardTtl {
            success: self.config.card_ttl,
            failure: self.config.card_failure_ttl,
        };
        let fetch = || async move {
            tokio::time::timeout(budget, self.fetch_card(endpoint))
                .await
                .ok()
                .flatten()
        };
        self.cards.get_or_fetch(endpoint, ttl, fetch).await
    }

    /// A card already in the cache, without waiting.
    #[must_use]
    pub fn cached_card(&self, endpoint: &str) -> Option<Arc<AgentCard>> {
        self.cards.peek(endpoint)
    }

    /// The guard of this client's configuration.
    fn guard(&self) -> Guard {
        Guard {
            block_private: self.config.block_private_endpoints,
        }
    }

    /// Checks an endpoint URL (scheme, literal IP host) before any request to it; host names
    /// are checked by the HTTP client's resolver when it connects.
    fn check_endpoint(&self, endpoint: &str) -> Result<(), A2aError> {
        let url = url::Url::parse(endpoint)
            .map_err(|e| A2aError::transport(format!("invalid endpoint URL: {e}"), false))?;
        self.guard()
            .check_url(&url)
            .map_err(|message| A2aError::transport(message, false))
    }

    async fn fetch_card(&self, endpoint: &str) -> Option<AgentCard> {
        let origin = card::origin(endpoint)?;
        for path in ["/.well-known/agent-card.json", "/.well-known/agent.json"] {
            let Some(body) = self.get_card(&format!("{origin}{path}")).await else {
                continue;
            };
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) if v.is_object() => return Some(AgentCard::from_json(&v)),
                _ => {}
            }
        }
        None
    }

    /// GETs one card URL, following at most [`guard::MAX_CARD_REDIRECTS`] redirects, each
    /// checked by the guard; `None` on any failure.
    async fn get_card(&self, first: &str) -> Option<Vec<u8>> {
        let mut url = url::Url::parse(first).ok()?;
        let _slot = self.connections.acquire().await;
        for _ in 0..=guard::MAX_CARD_REDIRECTS {
            self.guard().check_url(&url).ok()?;
            // `A2A-Version: 1.0`: the JS SDK reads a card request without it as v0.3 and answers
            // 400 when the card lists only 1.0 interfaces. Bindu, a2a-sdk and fasta2a ignore the
            // header on their card routes; a v1.0 card still announces its v0.3 interfaces.
            let resp = self
                .http
                .get(url.clone())
                .header(ACCEPT, "application/json")
                .header(A2A_VERSION, Dialect::V10.version_header().unwrap_or("1.0"))
                .send()
                .await
                .ok()?;
            if resp.status().is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)?
                    .to_str()
                    .ok()?;
                url = url.join(location).ok()?;
                continue;
            }
            if !resp.status().is_success() {
                return None;
            }
            return read_limited(resp, self.config.max_response_bytes)
                .await
                .ok();
        }
        None
    }

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
        if let Err(e) = self.check_endpoint(&call.agent.endpoint) {
            return CallOutcome {
                remote_task_id: None,
                remote_state: None,
                result: Err(e),
            };
        }
        let auth = match self
            .resolve_auth(&call.agent.auth, &call.agent.endpoint)
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
        let dialect = match call.agent.protocol {
            Protocol::V03 => Dialect::V03,
            Protocol::V10 => Dialect::V10,
            Protocol::Auto => {
                if call.card.is_some_and(|c| c.speaks_v1)
                    || (call.card.is_none()
                        && self.cards.knows(&call.agent.endpoint, PeerFact::SpeaksV1))
                {
                    Dialect::V10
                } else {
                    Dialect::V03
                }
            }
        };
        let url = rpc_url(&call.agent.endpoint);
        let budget_end = Instant::now() + self.config.call_budget;
        let x = Exchange {
            call: &call,
            dialect,
            url: &url,
            auth: &auth,
            budget_end,
            server_task_ids: self
                .cards
                .knows(&call.agent.endpoint, PeerFact::AssignsTaskIds),
        };
        let streaming = call.card.is_some_and(|c| c.streaming);
        let mut result = if streaming {
            self.stream_call(&x, &mut progress).await
        } else {
            self.send_and_poll(&x, &mut progress).await
        };
        // Auto mode without a card: a v1.0-only peer answers v0.3 names with -32601 (method not
        // found) or -32009 (the JS SDK: version missing or not supported), spec §5.1.
        if call.agent.protocol == Protocol::Auto
            && call.card.is_none()
            && dialect == Dialect::V03
            && progress.polls == 0
            && matches!(&result, Err(A2aError::Rpc { code, .. }) if is_dialect_refusal(*code))
        {
            progress = CallProgress::default();
            self.cards.learn(&call.agent.endpoint, PeerFact::SpeaksV1);
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
                .as_deref()
                .is_some_and(|s| wire::state_class(s) == wire::StateClass::Terminal)
        {
            let handle = self.spawn_cancel(dialect, &url, &auth, task_id);
            let _ = tokio::time::timeout(CANCEL_WAIT_ON_ABORT, handle).await;
        }
        let remote_state = match &result {
            Ok(Reply::Message(_)) => Some("completed".to_owned()),
            _ => progress.last_state.clone(),
        };
        CallOutcome {
            remote_task_id: progress.remote_task_id,
            remote_state,
            result,
        }
    }

    async fn send_and_poll(
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

    /// Polls `tasks/get` / `GetTask` on the fast ladder until the task settles (spec §5.7).
    async fn poll_until_settled(
        &self,
        x: &Exchange<'_, '_>,
        progress: &mut CallProgress,
        mut task: wire::Task,
    ) -> Result<Reply, A2aError> {
        let Exchange {
            call,
            dialect,
            url,
            auth,
            budget_end,
            ..
        } = *x;
        let mut shape = IdShape::Both;
        let mut failures = 0;
        let mut k = 0usize;
        while !wire::is_settled(&task.state) {
            let base = POLL_LADDER_MS[k.min(POLL_LADDER_MS.len() - 1)];
            let jitter: f64 = rand::random_range(1.0..1.1);
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "ladder values are small"
            )]
            let sleep = Duration::from_millis((base as f64 * jitter) as u64);
            k += 1;
            if Instant::now() + sleep >= budget_end {
                tokio::select! {
                    () = tokio::time::sleep_until(budget_end.into()) => {}
                    () = call.abort.cancelled() => {}
                }
                progress.cancel = true;
                if call.abort.is_cancelled() {
                    return Err(A2aError::Aborted);
                }
                return Err(self.exhausted(progress));
            }
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = call.abort.cancelled() => {
                    progress.cancel = true;
                    return Err(A2aError::Aborted);
                }
            }
            progress.polls += 1;
            let polled = loop {
                let body = dialect.get_body(&task.id, shape);
                match self
                    .post(url, dialect, auth, body, call.abort, budget_end)
                    .await
                {
                    Err(A2aError::Rpc {
                        code: -32700 | -32600 | -32602,
                        ..
                    }) if dialect == Dialect::V03 && shape.next().is_some() => {
                        shape = shape.next().unwrap_or(IdShape::IdOnly);
                    }
                    other => break other,
                }
            };
            match polled {
                Ok(v) => {
                    failures = 0;
                    match wire::parse_reply(&v) {
                        Ok(Reply::Task(t)) => {
                            progress.last_state = Some(t.state.clone());
                            task = t;
                        }
                        Ok(Reply::Message(m)) => return Ok(Reply::Message(m)),
                        Err(detail) => return Err(A2aError::InvalidShape(detail)),
                    }
                }
                Err(A2aError::Transport {
                    message,
                    retryable: true,
                }) => {
                    failures += 1;
                    if failures >= MAX_POLL_TRANSPORT_FAILURES {
                        progress.cancel = true;
                        return Err(A2aError::transport(message, true));
                    }
                }
                Err(A2aError::Aborted) => {
                    progress.cancel = true;
                    return Err(A2aError::Aborted);
                }
                Err(e) => {
                    let e = self.budget_error(e, progress);
                    if matches!(e, A2aError::PollExhausted { .. }) {
                        progress.cancel = true;
                    }
                    return Err(e);
                }
            }
        }
        Ok(Reply::Task(task))
    }

    fn exhausted(&self, progress: &CallProgress) -> A2aError {
        A2aError::PollExhausted {
            polls: progress.polls,
            last_state: progress
                .last_state
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
            budget_ms: u64::try_from(self.config.call_budget.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Maps the internal "budget spent" marker to the exhaustion error.
    fn budget_error(&self, e: A2aError, progress: &CallProgress) -> A2aError {
        match e {
            A2aError::Transport { message, .. } if message == BUDGET_SPENT => {
                self.exhausted(progress)
            }
            other => other,
        }
    }

    /// One JSON-RPC POST, bounded by the per-request timeout and the call budget, abortable.
    async fn post(
        &self,
        url: &str,
        dialect: Dialect,
        auth: &ResolvedAuth,
        body: Vec<u8>,
        abort: &CancellationToken,
        budget_end: Instant,
    ) -> Result<serde_json::Value, A2aError> {
        if abort.is_cancelled() {
            return Err(A2aError::Aborted);
        }
        let now = Instant::now();
        if now >= budget_end {
            return Err(A2aError::transport(BUDGET_SPENT.to_owned(), false));
        }
        let timeout = self.config.request_timeout.min(budget_end - now);
        let request = self.request(url, dialect, auth, body);
        let exchange = async {
            let _slot = self.connections.acquire().await;
            self.exchange(request).await
        };
        tokio::select! {
            () = abort.cancelled() => Err(A2aError::Aborted),
            r = tokio::time::timeout(timeout, exchange) => match r {
                Ok(r) => r,
                Err(_) if Instant::now() >= budget_end => Err(A2aError::transport(BUDGET_SPENT.to_owned(), false)),
                Err(_) => Err(A2aError::transport("aborted".to_owned(), true)),
            },
        }
    }

    fn request(
        &self,
        url: &str,
        dialect: Dialect,
        auth: &ResolvedAuth,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(v) = dialect.version_header() {
            headers.insert(A2A_VERSION, HeaderValue::from_static(v));
        }
        match auth {
            ResolvedAuth::None => {}
            ResolvedAuth::Bearer(v) => {
                headers.insert(AUTHORIZATION, v.clone());
            }
            ResolvedAuth::Signed { bearer, identity } => {
                headers.insert(AUTHORIZATION, bearer.clone());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let signed = identity.sign_request(&body, now);
                for (name, value) in [
                    ("x-did", signed.did),
                    ("x-did-timestamp", signed.timestamp),
                    ("x-did-signature", signed.signature),
                ] {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        headers.insert(HeaderName::from_static(name), v);
                    }
                }
            }
        }
        self.http.post(url).headers(headers).body(body)
    }

    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, A2aError> {
        let response = request.send().await.map_err(|e| send_error(&e))?;
        let status = response.status();
        let body = read_limited(response, self.config.max_response_bytes).await?;
        jsonrpc::parse_response(status, &body)
    }

    /// Sends a best-effort cancel on the tracker, bounded by `cancel_timeout`, independent of
    /// the aborted plan. -32001 and -32002 answers count as success.
    fn spawn_cancel(
        &self,
        dialect: Dialect,
        url: &str,
        auth: &ResolvedAuth,
        task_id: String,
    ) -> tokio::task::JoinHandle<()> {
        let request = self.request(url, dialect, auth, dialect.cancel_body(&task_id));
        let timeout = self.config.cancel_timeout;
        let limit = self.config.max_response_bytes;
        let connections = Arc::clone(&self.connections);
        self.tracker.spawn(async move {
            let outcome = tokio::time::timeout(timeout, async {
                let _slot = connections.acquire().await;
                let response = request.send().await.map_err(|e| send_error(&e))?;
                let status = response.status();
                let body = read_limited(response, limit).await?;
                jsonrpc::parse_response(status, &body)
            })
            .await;
            match outcome {
                Ok(Ok(_))
                | Ok(Err(A2aError::Rpc {
                    code: -32001 | -32002,
                    ..
                })) => {
                    tracing::debug!(%task_id, "remote task canceled");
                }
                Ok(Err(e)) => tracing::warn!(%task_id, error = %e, "cancel of remote task failed"),
                Err(_) => tracing::warn!(%task_id, "cancel of remote task timed out"),
            }
        })
    }

    async fn resolve_auth(
        &self,
        auth: &PeerAuth,
        endpoint: &str,
    ) -> Result<ResolvedAuth, A2aError> {
        let header = |token: &str| {
            HeaderValue::from_str(&format!("Bearer {token}"))
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| {
                    A2aError::Auth(
                        "token contains characters not allowed in an HTTP header".to_owned(),
                    )
                })
        };
        let bearer = |token: &str| header(token).map(ResolvedAuth::Bearer);
        match auth {
            PeerAuth::None => Ok(ResolvedAuth::None),
            PeerAuth::Bearer { token } => bearer(token.expose_secret()),
            PeerAuth::BearerEnv { env_var } => {
                let value = self.allowed_env(env_var, endpoint)?.ok_or_else(|| {
                    A2aError::Auth(format!(
                        "env var \"{env_var}\" is not set (peer requires bearer auth from env)"
                    ))
                })?;
                bearer(&value)
            }
            PeerAuth::DidSigned { token_env_var } => {
                let Some(identity) = self.identity.clone() else {
                    return Err(A2aError::Auth(
                        "did_signed peer requires a gateway LocalIdentity — set BINDU_GATEWAY_DID_SEED, BINDU_GATEWAY_AUTHOR and BINDU_GATEWAY_NAME"
                            .to_owned(),
                    ));
                };
                let token = match (token_env_var, &self.tokens) {
                    (Some(name), _) => self.allowed_env(name, endpoint)?.ok_or_else(|| {
                        A2aError::Auth(format!(
                            "env var \"{name}\" is not set (did_signed peer requires an OAuth bearer token alongside the DID signature)"
                        ))
                    })?,
                    (None, Some(tokens)) => tokens.token().await.map_err(A2aError::Auth)?.expose_secret().to_owned(),
                    (None, None) => {
                        return Err(A2aError::Auth(
                            "did_signed peer has no bearer token — set tokenEnvVar or configure BINDU_GATEWAY_HYDRA_TOKEN_URL".to_owned(),
                        ));
                    }
                };
                Ok(ResolvedAuth::Signed {
                    bearer: header(&token)?,
                    identity,
                })
            }
        }
    }

    /// The value of an allow-listed variable (`Ok(None)` when unset or empty). An entry
    /// `NAME@host[:port]` binds the variable to that peer: it is sent to no other endpoint.
    fn allowed_env(&self, name: &str, endpoint: &str) -> Result<Option<String>, A2aError> {
        let bindings: Vec<Option<&str>> = self
            .config
            .env_allowlist
            .iter()
            .filter_map(|entry| match entry.split_once('@') {
                None if entry == name => Some(None),
                Some((n, host)) if n == name => Some(Some(host)),
                _ => None,
            })
            .collect();
        if bindings.is_empty() {
            return Err(A2aError::Auth(format!(
                "env var \"{name}\" is not allowed (add it to GATEWAY_PEER_ENV_ALLOWLIST)"
            )));
        }
        if !bindings.contains(&None)
            && !bindings.iter().flatten().any(|b| host_matches(b, endpoint))
        {
            let hosts: Vec<&str> = bindings.into_iter().flatten().collect();
            return Err(A2aError::Auth(format!(
                "env var \"{name}\" is bound to {} in GATEWAY_PEER_ENV_ALLOWLIST and is not sent to this endpoint",
                hosts.join(", ")
            )));
        }
        Ok(self
            .peer_env
            .get(name)
            .map(|v| v.expose_secret().to_owned())
            .filter(|v| !v.is_empty()))
    }
}

/// Whether an endpoint is the `host[:port]` an allow-list entry binds a variable to (host names
/// compared without case; without a port, any port of that host).
fn host_matches(binding: &str, endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (bound_host, bound_port) = match binding.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.parse::<u16>().is_ok() && !h.is_empty() => {
            (h, p.parse::<u16>().ok())
        }
        _ => (binding, None),
    };
    let bound_host = bound_host.trim_start_matches('[').trim_end_matches(']');
    bound_host.eq_ignore_ascii_case(host)
        && bound_port.is_none_or(|p| url.port_or_known_default() == Some(p))
}

/// The error of a request that could not be sent: the guard's refusal as is (not retryable),
/// anything else as a retryable transport error with its cause chain.
fn send_error(e: &reqwest::Error) -> A2aError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<guard::Refused>() {
            return A2aError::transport(refused.to_string(), false);
        }
        source = err.source();
    }
    A2aError::transport(error_chain(e), true)
}

/// The `A2A-Version` request header.
const A2A_VERSION: HeaderName = HeaderName::from_static("a2a-version");

/// JSON-RPC errors with which a v1.0-only peer refuses v0.3 requests: -32601 (method not found)
/// and -32009 (`A2A-Version` missing or not supported, the JS SDK).
fn is_dialect_refusal(code: i64) -> bool {
    matches!(code, -32601 | -32009)
}

/// Internal marker: the call budget ran out during a request.
const BUDGET_SPENT: &str = "call budget spent";

/// Reads a response body, refusing to buffer more than `limit` bytes.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, A2aError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(A2aError::transport(
                        format!("peer response exceeds {limit} bytes"),
                        false,
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(A2aError::transport(error_chain(&e), true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_url_normalises_one_trailing_slash() {
        assert_eq!(rpc_url("http://h:3773"), "http://h:3773/");
        assert_eq!(rpc_url("http://h/a2a/"), "http://h/a2a/");
    }

    #[test]
    fn allow_list_bindings_match_host_and_port() {
        assert!(host_matches(
            "agent.example.com",
            "https://Agent.Example.com/a2a"
        ));
        assert!(host_matches(
            "agent.example.com:8443",
            "https://agent.example.com:8443/"
        ));
        assert!(!host_matches(
            "agent.example.com:8443",
            "https://agent.example.com/"
        ));
        assert!(host_matches("127.0.0.1:3773", "http://127.0.0.1:3773"));
        assert!(!host_matches(
            "agent.example.com",
            "https://evil.example.net/"
        ));
        assert!(host_matches("[::1]:80", "http://[::1]/"));
    }

    #[test]
    fn error_texts_and_codes() {
        assert_eq!(A2aError::Auth("x".into()).to_string(), "transport: auth: x");
        let e = A2aError::PollExhausted {
            polls: 3,
            last_state: "working".into(),
            budget_ms: 10,
        };
        assert_eq!(e.to_string(), "poll exhausted after 3 attempts");
        assert_eq!(e.code(), -32603);
        assert_eq!(A2aError::Deadline.code(), -32040);
    }
}
