//! The counters of the keys' limits, in this instance's memory or, with `GATEWAY_REDIS_URL`, on
//! Redis for every instance (`crate::store::counters`): `requests_per_minute` in a fixed
//! 60 s window that starts at the key's first request (never one aligned to the wall clock,
//! which would admit twice the rate across a minute boundary). Check and count are one step
//! under one lock, so concurrent requests are counted exactly. `llm_tokens_per_day` in a fixed
//! 24 h window from the key's first spend: admission refuses a spent key, and a plan checks
//! before each LLM step ([`KeyBudget`]). (`max_concurrent_plans` is held
//! with the plan's place, `crate::run::Place`.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Tokio's clock: the same as std's in a running gateway, and one a test can move.
use tokio::time::Instant;

use futures::future::BoxFuture;

use super::keys::KeyPolicy;
use crate::planner::TokenBudget;
use crate::store::counters::SharedCounters;

/// The length of a `requests_per_minute` window.
const WINDOW: Duration = Duration::from_secs(60);
/// The length of an `llm_tokens_per_day` window.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Why a key must wait, and for how many whole seconds (a retry after them is admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub seconds: u64,
}

/// Why a request is not admitted under its key's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Over {
    /// The limit is reached: retry after this wait.
    Wait(Wait),
    /// The shared store does not answer.
    Store(String),
}

/// The keys' counters.
#[derive(Debug, Default)]
pub struct Limits {
    windows: Mutex<Counts<u32>>,
    /// Tokens spent per key in its day, a fixed 24 h window from its first spend.
    spent: Mutex<Counts<u64>>,
    /// The counters on Redis, shared by every instance (instead of the two above).
    shared: Option<SharedCounters>,
}

/// Counters per key, each with the start of its window. JWT callers add one per `sub`, so
/// windows that have ended are swept out whenever the map has doubled since the last sweep:
/// memory stays proportional to the callers seen within one window.
#[derive(Debug, Default)]
struct Counts<N> {
    by_key: HashMap<String, (Instant, N)>,
    sweep_at: usize,
}

impl<N: Default> Counts<N> {
    /// The counter of `key` in a window of length `window` that has not ended (a fresh one when
    /// it has).
    fn current(&mut self, key: &str, window: Duration, now: Instant) -> &mut (Instant, N) {
        if self.by_key.len() >= self.sweep_at.max(64) && !self.by_key.contains_key(key) {
            self.by_key
                .retain(|_, (start, _)| now.duration_since(*start) < window);
            self.sweep_at = self.by_key.len() * 2;
        }
        let entry = self
            .by_key
            .entry(key.to_owned())
            .or_insert_with(|| (now, N::default()));
        if now.duration_since(entry.0) >= window {
            *entry = (now, N::default());
        }
        entry
    }
}

/// Whole seconds of `d`, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    (d.as_millis().div_ceil(1000) as u64).max(1)
}

/// Whole seconds until `at`, at least 1.
fn seconds_until(at: Instant) -> u64 {
    whole_seconds(at.saturating_duration_since(Instant::now()))
}

impl Limits {
    /// Counters on the shared store.
    #[must_use]
    pub fn shared(counters: SharedCounters) -> Self {
        Self {
            shared: Some(counters),
            ..Self::default()
        }
    }

    /// Counts one request of `key` against its `requests_per_minute`.
    ///
    /// # Errors
    /// The window is full (the seconds until it ends), or the shared store failed.
    pub async fn request(&self, key: &KeyPolicy) -> Result<(), Over> {
        let Some(rpm) = key.requests_per_minute else {
            return Ok(());
        };
        if let Some(shared) = &self.shared {
            return match shared.hit(&key.name, rpm, WINDOW).await {
                Ok(None) => Ok(()),
                Ok(Some(left)) => Err(Over::Wait(Wait {
                    seconds: whole_seconds(left),
                })),
                Err(e) => Err(Over::Store(e.to_string())),
            };
        }
        self.request_here(key, rpm).map_err(Over::Wait)
    }

    fn request_here(&self, key: &KeyPolicy, rpm: u32) -> Result<(), Wait> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = windows.current(&key.name, WINDOW, Instant::now());
        if window.1 >= rpm {
            return Err(Wait {
                seconds: seconds_until(window.0 + WINDOW),
            });
        }
        window.1 += 1;
        Ok(())
    }

    /// Whether `key` may still spend LLM tokens today.
    ///
    /// # Errors
    /// Its `llm_tokens_per_day` is spent (the seconds until its day ends), or the shared store
    /// failed.
    pub async fn budget(&self, key: &KeyPolicy) -> Result<(), Over> {
        let Some(limit) = key.llm_tokens_per_day else {
            return Ok(());
        };
        if let Some(shared) = &self.shared {
            return match shared.spent(&key.name).await {
                Ok((spent, left)) if spent >= limit => Err(Over::Wait(Wait {
                    seconds: whole_seconds(left),
                })),
                Ok(_) => Ok(()),
                Err(e) => Err(Over::Store(e.to_string())),
            };
        }
        match self.day(&key.name) {
            Some((start, spent)) if spent >= limit => Err(Over::Wait(Wait {
                seconds: seconds_until(start + DAY),
            })),
            _ => Ok(()),
        }
    }

    /// Whether key `name` has spent `limit` tokens today (a store that fails says no: the
    /// plan goes on, and admission refuses while the store is away).
    async fn exhausted(&self, name: &str, limit: u64) -> bool {
        if let Some(shared) = &self.shared {
            return match shared.spent(name).await {
                Ok((spent, _)) => spent >= limit,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read a key's llm_tokens_per_day from the store");
                    false
                }
            };
        }
        self.day(name).is_some_and(|(_, spent)| spent >= limit)
    }

    /// Counts `tokens` spent by key `name`, here or on the shared store.
    async fn spend_tokens(&self, name: &str, tokens: u64) {
        match &self.shared {
            Some(shared) => {
                if let Err(e) = shared.spend(name, tokens, DAY).await {
                    tracing::warn!(error = %e, "cannot count a key's LLM tokens in the store");
                }
            }
            None => self.spend_here(name, tokens),
        }
    }

    /// The day of `key` that has not ended: when it started and what was spent.
    fn day(&self, key: &str) -> Option<(Instant, u64)> {
        let spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        spent
            .by_key
            .get(key)
            .copied()
            .filter(|(start, _)| start.elapsed() < DAY)
    }

    /// Counts `tokens` spent by `key` in this instance's memory.
    fn spend_here(&self, key: &str, tokens: u64) {
        let mut spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let day = spent.current(key, DAY, Instant::now());
        day.1 = day.1.saturating_add(tokens);
    }
}

/// A key's `llm_tokens_per_day` as a plan sees it.
#[derive(Debug)]
pub struct KeyBudget {
    limits: Arc<Limits>,
    key: String,
    limit: u64,
}

impl KeyBudget {
    /// The budget of `key`, when it has one.
    #[must_use]
    pub fn of(limits: &Arc<Limits>, key: &KeyPolicy) -> Option<Self> {
        Some(Self {
            limits: Arc::clone(limits),
            key: key.name.clone(),
            limit: key.llm_tokens_per_day?,
        })
    }
}

impl TokenBudget for KeyBudget {
    fn exhausted(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.limits.exhausted(&self.key, self.limit))
    }

    fn spend(&self, tokens: u64) -> BoxFuture<'_, ()> {
        Box::pin(self.limits.spend_tokens(&self.key, tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::keys::Door;

    fn key(rpm: Option<u32>, plans: Option<u32>) -> KeyPolicy {
        KeyPolicy {
            name: "k".into(),
            catalogs: None,
            ad_hoc_agents: true,
            doors: Door::ALL.to_vec(),
            requests_per_minute: rpm,
            max_concurrent_plans: plans,
            llm_tokens_per_day: None,
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_until_its_day_ends() {
        let limits = Arc::new(Limits::default());
        let mut k = key(None, None);
        k.llm_tokens_per_day = Some(20);
        let budget = KeyBudget::of(&limits, &k).unwrap();
        assert!(limits.budget(&k).await.is_ok() && !budget.exhausted().await);
        budget.spend(15).await;
        assert!(limits.budget(&k).await.is_ok());
        budget.spend(15).await;
        assert!(budget.exhausted().await);
        let Err(Over::Wait(wait)) = limits.budget(&k).await else {
            panic!("not refused");
        };
        assert!((86_399..=86_400).contains(&wait.seconds), "{wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_admits_its_rate_then_says_when_it_ends_and_a_retry_then_is_admitted() {
        let limits = Limits::default();
        let k = key(Some(3), None);
        limits.request(&k).await.unwrap();
        tokio::time::advance(Duration::from_millis(20_500)).await;
        for _ in 0..2 {
            limits.request(&k).await.unwrap();
        }
        let Err(Over::Wait(wait)) = limits.request(&k).await else {
            panic!("not refused");
        };
        // The window started at the first request: 39.5 s are left, said as 40.
        assert_eq!(wait.seconds, 40);
        tokio::time::advance(Duration::from_secs(39)).await;
        assert_eq!(
            limits.request(&k).await,
            Err(Over::Wait(Wait { seconds: 1 })),
            "a second early"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        limits.request(&k).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_day_admits_again_after_its_retry_after() {
        let limits = Arc::new(Limits::default());
        let mut k = key(None, None);
        k.llm_tokens_per_day = Some(10);
        let budget = KeyBudget::of(&limits, &k).unwrap();
        budget.spend(10).await;
        tokio::time::advance(Duration::from_secs(3600)).await;
        let Err(Over::Wait(wait)) = limits.budget(&k).await else {
            panic!("not refused");
        };
        assert_eq!(wait.seconds, 23 * 3600);
        tokio::time::advance(Duration::from_secs(wait.seconds)).await;
        assert!(limits.budget(&k).await.is_ok());
        assert!(!budget.exhausted().await);
    }

    #[tokio::test(start_paused = true)]
    async fn windows_of_callers_gone_quiet_are_swept() {
        let limits = Limits::default();
        for i in 0..1000 {
            let mut k = key(Some(5), None);
            k.name = format!("jwt:user-{i}");
            limits.request(&k).await.unwrap();
        }
        tokio::time::advance(WINDOW).await;
        for i in 0..1000 {
            let mut k = key(Some(5), None);
            k.name = format!("jwt:other-{i}");
            limits.request(&k).await.unwrap();
        }
        let held = limits
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_key
            .len();
        assert!(held <= 1100, "{held} windows held");
    }
}
