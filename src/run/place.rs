//! Capacity: `server.max_concurrent_plans` places. A place is a guard value: whoever holds a
//! [`Place`] holds the place, and dropping it gives it back, on every path (no `take` paired with
//! a `give_back` on each failure).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why no place was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Shutdown has begun.
    #[error("gateway is shutting down")]
    ShuttingDown,
    /// Every place is taken.
    #[error("too many plans in flight")]
    Overloaded,
    /// The caller's key runs its `max_concurrent_plans` already.
    #[error("this key runs its max_concurrent_plans plans already")]
    KeyBusy,
    /// The key's plans are counted on the shared store, and it does not answer.
    #[error("the key's running plans cannot be counted: the store does not answer")]
    StoreUnavailable,
}

/// Plans running per key (`max_concurrent_plans`).
type KeyPlans = Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>;

/// The places of one gateway.
#[derive(Debug)]
pub(crate) struct Places {
    taken: Arc<AtomicUsize>,
    /// 0: no cap.
    max: usize,
    keys: KeyPlans,
}

impl Places {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            taken: Arc::new(AtomicUsize::new(0)),
            max,
            keys: KeyPlans::default(),
        }
    }

    /// Takes a place when one is free (check and take are one atomic step); with `key`
    /// (its name and `max_concurrent_plans`), also one of the key's.
    pub(crate) fn take(&self, key: Option<(&str, u32)>) -> Result<Place, Refused> {
        let key = match key {
            Some((name, most)) => {
                let mut keys = self
                    .keys
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let held = keys.entry(name.to_owned()).or_insert(0);
                if *held >= most {
                    return Err(Refused::KeyBusy);
                }
                *held += 1;
                Some(KeySlot {
                    keys: Arc::clone(&self.keys),
                    name: name.to_owned(),
                })
            }
            None => None,
        };
        let max = self.max;
        self.taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .map_err(|_| Refused::Overloaded)?;
        Ok(Place {
            taken: Arc::clone(&self.taken),
            _key: key,
            _shared: None,
        })
    }

    pub(crate) fn has_room(&self) -> bool {
        self.max == 0 || self.taken.load(Ordering::SeqCst) < self.max
    }

    pub(crate) fn taken(&self) -> usize {
        self.taken.load(Ordering::SeqCst)
    }
}

/// One taken place; given back when dropped.
#[derive(Debug)]
pub struct Place {
    taken: Arc<AtomicUsize>,
    /// The key's slot, given back with the place.
    _key: Option<KeySlot>,
    /// The key's hold on the shared store, given back with the place.
    _shared: Option<Box<SharedSlot>>,
}

impl Place {
    /// The same place, also holding `slot`.
    pub(crate) fn holding(mut self, slot: SharedSlot) -> Self {
        self._shared = Some(Box::new(slot));
        self
    }
}

/// One of a key's `max_concurrent_plans` held on the shared store (for every instance); given
/// back by a task of the gateway's tracker when dropped, else it ends with its lease.
#[derive(Debug)]
pub(crate) struct SharedSlot {
    pub(crate) counters: crate::store::counters::SharedCounters,
    pub(crate) tracker: tokio_util::task::TaskTracker,
    pub(crate) name: String,
    pub(crate) id: String,
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let counters = self.counters.clone();
        let (name, id) = (std::mem::take(&mut self.name), std::mem::take(&mut self.id));
        self.tracker.spawn_on(
            async move {
                if let Err(e) = counters.release(&name, &id).await {
                    tracing::warn!(error = %e, "cannot give back a key's plan hold; it ends with its lease");
                }
            },
            &handle,
        );
    }
}

/// One of a key's `max_concurrent_plans`.
#[derive(Debug)]
struct KeySlot {
    keys: KeyPlans,
    name: String,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = keys.get_mut(&self.name) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                keys.remove(&self.name);
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.taken.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_given_back_when_dropped() {
        let places = Places::new(1);
        let first = places.take(None).unwrap();
        assert_eq!(places.take(None).unwrap_err(), Refused::Overloaded);
        assert!(!places.has_room());
        drop(first);
        assert_eq!(places.taken(), 0);
        let _again = places.take(None).unwrap();
        assert_eq!(places.taken(), 1);
    }

    #[test]
    fn a_key_holds_at_most_its_plans() {
        let places = Places::new(0);
        let one = places.take(Some(("k", 1))).unwrap();
        assert_eq!(places.take(Some(("k", 1))).unwrap_err(), Refused::KeyBusy);
        let _other = places.take(Some(("j", 1))).unwrap();
        drop(one);
        let _again = places.take(Some(("k", 1))).unwrap();
    }

    #[test]
    fn zero_means_no_cap() {
        let places = Places::new(0);
        let held: Vec<_> = (0..100).map(|_| places.take(None).unwrap()).collect();
        assert_eq!(places.taken(), 100);
        drop(held);
        assert_eq!(places.taken(), 0);
    }
}
