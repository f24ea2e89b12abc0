//! The counters of the keys' limits, in this instance's memory: `requests_per_minute` in a fixed
//! 60 s window that starts at the key's first request (never one aligned to the wall clock,
//! which would admit twice the rate across a minute boundary). Check and count are one step
//! under one lock, so concurrent requests are counted exactly. `llm_tokens_per_day` in a fixed
//! 24 h window from the key's first spend: admission refuses a spent key, and a plan checks
//! before each LLM step ([`KeyBudget`]). (`max_concurrent_plans` is held
//! with the plan's place, `crate::run::Place`.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::keys::KeyPolicy;
use crate::planner::TokenBudget;

/// The length of a `requests_per_minute` window.
const WINDOW: Duration = Duration::from_secs(60);
/// The length of an `llm_tokens_per_day` window.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Why a key must wait, and for how many whole seconds (a retry after them is admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub seconds: u64,
}

/// The keys' counters.
#[derive(Debug, Default)]
pub struct Limits {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    /// Tokens spent per key in its day, a fixed 24 h window from its first spend.
    spent: Mutex<HashMap<String, (Instant, u64)>>,
}

/// Whole seconds until `at`, at least 1.
fn seconds_until(at: Instant) -> u64 {
    let left = at.saturating_duration_since(Instant::now());
    (left.as_millis().div_ceil(1000) as u64).max(1)
}

impl Limits {
    /// Counts one request of `key` against its `requests_per_minute`.
    ///
    /// # Errors
    /// The window is full: the seconds until it ends.
    pub fn request(&self, key: &KeyPolicy) -> Result<(), Wait> {
        let Some(rpm) = key.requests_per_minute else {
            return Ok(());
        };
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let window = windows.entry(key.name.clone()).or_insert((now, 0));
        if now.duration_since(window.0) >= WINDOW {
            *window = (now, 0);
        }
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
    /// Its `llm_tokens_per_day` is spent: the seconds until its day ends.
    pub fn budget(&self, key: &KeyPolicy) -> Result<(), Wait> {
        let Some(limit) = key.llm_tokens_per_day else {
            return Ok(());
        };
        match self.day(&key.name) {
            Some((start, spent)) if spent >= limit => Err(Wait {
                seconds: seconds_until(start + DAY),
            }),
            _ => Ok(()),
        }
    }

    /// The day of `key` that has not ended: when it started and what was spent.
    fn day(&self, key: &str) -> Option<(Instant, u64)> {
        let spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        spent
            .get(key)
            .copied()
            .filter(|(start, _)| start.elapsed() < DAY)
    }

    /// Counts `tokens` spent by `key`.
    pub fn spend(&self, key: &str, tokens: u64) {
        let mut spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let day = spent.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(day.0) >= DAY {
            *day = (now, 0);
        }
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
    fn exhausted(&self) -> bool {
        self.limits
            .day(&self.key)
            .is_some_and(|(_, spent)| spent >= self.limit)
    }

    fn spend(&self, tokens: u64) {
        self.limits.spend(&self.key, tokens);
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

    #[test]
    fn a_spent_budget_refuses_until_its_day_ends() {
        let limits = Arc::new(Limits::default());
        let mut k = key(None, None);
        k.llm_tokens_per_day = Some(20);
        let budget = KeyBudget::of(&limits, &k).unwrap();
        assert!(limits.budget(&k).is_ok() && !budget.exhausted());
        budget.spend(15);
        assert!(limits.budget(&k).is_ok());
        budget.spend(15);
        assert!(budget.exhausted());
        let wait = limits.budget(&k).unwrap_err();
        assert!((86_399..=86_400).contains(&wait.seconds), "{wait:?}");
    }

    #[test]
    fn a_window_admits_its_rate_then_says_when_it_ends() {
        let limits = Limits::default();
        let k = key(Some(3), None);
        for _ in 0..3 {
            limits.request(&k).unwrap();
        }
        let wait = limits.request(&k).unwrap_err();
        assert!((59..=60).contains(&wait.seconds), "{wait:?}");
    }
}
