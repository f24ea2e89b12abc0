//! The counters of the keys' limits, in this instance's memory: `requests_per_minute` in a fixed
//! 60 s window that starts at the key's first request (never one aligned to the wall clock,
//! which would admit twice the rate across a minute boundary). Check and count are one step
//! under one lock, so concurrent requests are counted exactly. (`max_concurrent_plans` is held
//! with the plan's place, `crate::run::Place`.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::keys::KeyPolicy;

/// The length of a `requests_per_minute` window.
const WINDOW: Duration = Duration::from_secs(60);

/// Why a key must wait, and for how many whole seconds (a retry after them is admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub seconds: u64,
}

/// The keys' counters.
#[derive(Debug, Default)]
pub struct Limits {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
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
