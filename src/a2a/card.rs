//! Agent cards (spec §5.12): fetched in the background when a plan starts, shared between
//! concurrent plans (one request per endpoint at a time), cached with separate success and failure
//! lifetimes. Only the few fields the gateway acts on are kept; keys are never taken from a card.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::OnceCell;

/// What the gateway reads from an agent card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentCard {
    /// `capabilities.streaming`.
    pub streaming: bool,
    /// Whether a JSON-RPC interface announces a 1.x protocol version (spec §5.1).
    pub speaks_v1: bool,
    /// The card's DID: `id` when it is a DID, else the first DID extension URI.
    pub did: Option<String>,
}

impl AgentCard {
    /// Reads the fields the gateway uses; wrongly typed fields are ignored.
    #[must_use]
    pub fn from_json(card: &Value) -> Self {
        let capabilities = card.get("capabilities");
        let streaming = capabilities
            .and_then(|c| c.get("streaming"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let speaks_v1 = card
            .get("supportedInterfaces")
            .and_then(Value::as_array)
            .is_some_and(|list| {
                list.iter().any(|i| {
                    let binding_ok = match i.get("protocolBinding") {
                        None => true,
                        Some(b) => b
                            .as_str()
                            .is_some_and(|b| b.eq_ignore_ascii_case("JSONRPC")),
                    };
                    let major_one = i
                        .get("protocolVersion")
                        .and_then(Value::as_str)
                        .and_then(|v| v.split('.').next())
                        .is_some_and(|major| major.trim() == "1");
                    binding_ok && major_one
                })
            });
        let did = card
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_did(id))
            .map(str::to_owned)
            .or_else(|| {
                capabilities
                    .and_then(|c| c.get("extensions"))
                    .and_then(Value::as_array)
                    .and_then(|exts| {
                        exts.iter()
                            .filter_map(|e| e.get("uri").and_then(Value::as_str))
                            .find(|uri| is_did(uri))
                            .map(str::to_owned)
                    })
            });
        Self {
            streaming,
            speaks_v1,
            did,
        }
    }
}

/// `^did:[a-zA-Z0-9]+:`
fn is_did(s: &str) -> bool {
    s.strip_prefix("did:").is_some_and(|rest| {
        let method_len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        method_len > 0 && rest.as_bytes().get(method_len) == Some(&b':')
    })
}

/// The origin (`scheme://host:port`) an endpoint's card lives under.
#[must_use]
pub fn origin(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

/// What calls learned about a peer, kept beside its card for as long as the card entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFact {
    /// Card-less `auto` peer that answered v0.3 names with -32601/-32009: speak v1.0 (spec §5.1).
    SpeaksV1,
    /// Peer that refused our client task id with -32001 and accepted the send without it: later
    /// v0.3 sends omit the id instead of costing two sends each.
    AssignsTaskIds,
}

struct Slot {
    cell: OnceCell<Option<Arc<AgentCard>>>,
    created: Instant,
    speaks_v1: AtomicBool,
    assigns_task_ids: AtomicBool,
}

impl Slot {
    fn fact(&self, fact: PeerFact) -> &AtomicBool {
        match fact {
            PeerFact::SpeaksV1 => &self.speaks_v1,
            PeerFact::AssignsTaskIds => &self.assigns_task_ids,
        }
    }
}

/// Shared card cache; keyed by the endpoint without its trailing slash.
#[derive(Default)]
pub struct CardCache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for CardCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardCache").finish_non_exhaustive()
    }
}

/// Lifetimes of cache entries.
#[derive(Debug, Clone, Copy)]
pub struct CardTtl {
    pub success: Duration,
    pub failure: Duration,
}

impl CardCache {
    /// The slot for an endpoint, replacing an expired one.
    fn slot(&self, key: &str, ttl: CardTtl) -> Arc<Slot> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if let Some(slot) = slots.get(key) {
            let expired = match slot.cell.get() {
                Some(Some(_)) => now.duration_since(slot.created) >= ttl.success,
                Some(None) => now.duration_since(slot.created) >= ttl.failure,
                None => false,
            };
            if !expired {
                return Arc::clone(slot);
            }
        }
        // Bound the table: drop finished entries that have expired.
        if slots.len() > 1024 {
            slots.retain(|_, s| match s.cell.get() {
                Some(Some(_)) => now.duration_since(s.created) < ttl.success,
                Some(None) => now.duration_since(s.created) < ttl.failure,
                None => true,
            });
        }
        let slot = Arc::new(Slot {
            cell: OnceCell::new(),
            created: now,
            speaks_v1: AtomicBool::new(false),
            assigns_task_ids: AtomicBool::new(false),
        });
        slots.insert(key.to_owned(), Arc::clone(&slot));
        slot
    }

    /// The cached card for `endpoint`, fetching it with `fetch` when absent or expired.
    /// Concurrent callers for one endpoint share a single fetch.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        endpoint: &str,
        ttl: CardTtl,
        fetch: F,
    ) -> Option<Arc<AgentCard>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<AgentCard>>,
    {
        let key = endpoint.strip_suffix('/').unwrap_or(endpoint);
        let slot = self.slot(key, ttl);
        slot.cell
            .get_or_init(|| async { fetch().await.map(Arc::new) })
            .await
            .clone()
    }

    /// A card that is already known (fetched and unexpired), without waiting.
    #[must_use]
    pub fn peek(&self, endpoint: &str) -> Option<Arc<AgentCard>> {
        self.existing(endpoint)
            .and_then(|s| s.cell.get().cloned().flatten())
    }

    /// The entry of an endpoint, if one exists (expired or not: a stale entry is replaced by the
    /// next fetch, and its facts go with it).
    fn existing(&self, endpoint: &str) -> Option<Arc<Slot>> {
        let key = endpoint.strip_suffix('/').unwrap_or(endpoint);
        let slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.get(key).map(Arc::clone)
    }

    /// Records what a call learned about a peer, in its card entry. Without an entry (no card
    /// was ever asked for) nothing is kept, so the table only grows with fetched endpoints.
    pub fn learn(&self, endpoint: &str, fact: PeerFact) {
        if let Some(slot) = self.existing(endpoint) {
            slot.fact(fact).store(true, Ordering::Relaxed);
        }
    }

    /// Whether a call learned `fact` about this peer while its card entry lives.
    #[must_use]
    pub fn knows(&self, endpoint: &str, fact: PeerFact) -> bool {
        self.existing(endpoint)
            .is_some_and(|s| s.fact(fact).load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindu_card_is_v03_with_extension_did() {
        let v: Value =
            serde_json::from_str(include_str!("../../fixtures/a2a/bindu-agent-card.json")).unwrap();
        let card = AgentCard::from_json(&v);
        assert!(card.streaming);
        assert!(!card.speaks_v1, "top-level protocolVersion must be ignored");
        assert_eq!(
            card.did.as_deref(),
            Some("did:bindu:peer_at_example_com:echo-agent:b5ae38a8-a6bb-ac46-9647-7dbee2d04cbb")
        );
    }

    #[test]
    fn a2a_sdk_card_is_v1() {
        let v = serde_json::json!({"supportedInterfaces": [{"url": "http://x/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            "capabilities": {"streaming": "yes"}, "id": "did:key:z6Mk"});
        let card = AgentCard::from_json(&v);
        assert!(card.speaks_v1);
        assert!(!card.streaming);
        assert_eq!(card.did.as_deref(), Some("did:key:z6Mk"));
        assert!(!is_did("did::x"));
        assert!(!is_did("urn:x"));
    }

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(
            origin("http://h:3773/a2a/").as_deref(),
            Some("http://h:3773")
        );
        assert_eq!(origin("https://h/").as_deref(), Some("https://h"));
    }

    #[tokio::test]
    async fn concurrent_fetches_share_one_request_and_failures_expire() {
        let cache = CardCache::default();
        let ttl = CardTtl {
            success: Duration::from_secs(60),
            failure: Duration::ZERO,
        };
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some(AgentCard::default())
        };
        let (a, b) = tokio::join!(
            cache.get_or_fetch("http://h/", ttl, fetch),
            cache.get_or_fetch("http://h", ttl, fetch)
        );
        assert!(a.is_some() && b.is_some());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            cache
                .get_or_fetch("http://f", ttl, || async { None })
                .await
                .is_none()
        );
        // failure ttl 0: fetched again
        assert!(
            cache
                .get_or_fetch("http://f", ttl, || async { Some(AgentCard::default()) })
                .await
                .is_some()
        );
    }
}
