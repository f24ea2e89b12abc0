//! The shared A2A client: one HTTP pool for peers, the card cache, peer credentials and the
//! gateway-wide cap on requests in flight. Single JSON-RPC requests and agent cards live here;
//! a whole call (send, poll or stream, cancel) is in `call`, `poll` and `stream`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::a2a::auth::{PeerSecrets, ResolvedAuth};
use crate::a2a::card::{self, AgentCard, CardCache, CardTtl};
use crate::a2a::error::A2aError;
use crate::a2a::guard::{self, Guard};
use crate::a2a::http;
use crate::a2a::jsonrpc::{self, Dialect};
use crate::config::A2aConfig;
use crate::identity::Identity;
use crate::identity::hydra::TokenProvider;

/// The shared A2A client.
#[derive(Debug)]
pub struct A2aClient {
    pub(crate) http: reqwest::Client,
    pub(crate) config: A2aConfig,
    pub(crate) secrets: PeerSecrets,
    pub(crate) cards: CardCache,
    pub(crate) tracker: TaskTracker,
    /// One permit per request to a peer in flight (`a2a.max_connections`).
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
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
            secrets: PeerSecrets {
                allowlist: config.env_allowlist.clone(),
                env: peer_env,
                identity: None,
                tokens: None,
            },
            config,
            cards: CardCache::default(),
            tracker,
        }
    }

    /// Adds the gateway identity (and Hydra tokens) used for `did_signed` peers.
    #[must_use]
    pub fn with_identity(
        mut self,
        identity: Option<Arc<Identity>>,
        tokens: Option<Arc<TokenProvider>>,
    ) -> Self {
        self.secrets.identity = identity;
        self.secrets.tokens = tokens;
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
    pub(crate) fn check_endpoint(&self, endpoint: &str) -> Result<(), A2aError> {
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
                .header(
                    http::A2A_VERSION,
                    Dialect::V10.version_header().unwrap_or("1.0"),
                )
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
            return http::read_limited(resp, self.config.max_response_bytes)
                .await
                .ok();
        }
        None
    }

    /// One JSON-RPC POST, bounded by the per-request timeout and the call budget, abortable.
    pub(crate) async fn post(
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
        let timeout = http::request_window(self.config.request_timeout, budget_end)?;
        let request = self.request(url, dialect, auth, body);
        let exchange = async {
            let _slot = self.connections.acquire().await;
            self.exchange(request).await
        };
        tokio::select! {
            () = abort.cancelled() => Err(A2aError::Aborted),
            r = tokio::time::timeout(timeout, exchange) => {
                r.unwrap_or_else(|_| Err(http::window_closed(budget_end)))
            }
        }
    }

    pub(crate) fn request(
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
            headers.insert(http::A2A_VERSION, HeaderValue::from_static(v));
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
        let response = request.send().await.map_err(|e| http::send_error(&e))?;
        let status = response.status();
        let limit = self.config.max_response_bytes;
        let body =
            http::read_limited(response, limit.saturating_add(self.config.file_allowance)).await?;
        let answer = jsonrpc::parse_response(status, &body)?;
        http::check_answer_size(body.len(), &answer, limit)?;
        Ok(answer)
    }

    /// Sends a best-effort cancel on the tracker, bounded by `cancel_timeout`, independent of
    /// the aborted plan. -32001 and -32002 answers count as success.
    pub(crate) fn spawn_cancel(
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
                let response = request.send().await.map_err(|e| http::send_error(&e))?;
                let status = response.status();
                let body = http::read_limited(response, limit).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_url_normalises_one_trailing_slash() {
        assert_eq!(rpc_url("http://h:3773"), "http://h:3773/");
        assert_eq!(rpc_url("http://h/a2a/"), "http://h/a2a/");
    }
}
