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
}

/// The places of one gateway.
#[derive(Debug)]
pub(crate) struct Places {
    taken: Arc<AtomicUsize>,
    /// 0: no cap.
    max: usize,
}

impl Places {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            taken: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// Takes a place when one is free (check and take are one atomic step).
    pub(crate) fn take(&self) -> Result<Place, Refused> {
        let max = self.max;
        self.taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (max == 0 || n < max).then_some(n + 1)
            })
            .map_err(|_| Refused::Overloaded)?;
        Ok(Place {
            taken: Arc::clone(&self.taken),
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
        let first = places.take().unwrap();
        assert_eq!(places.take().unwrap_err(), Refused::Overloaded);
        assert!(!places.has_room());
        drop(first);
        assert_eq!(places.taken(), 0);
        let _again = places.take().unwrap();
        assert_eq!(places.taken(), 1);
    }

    #[test]
    fn zero_means_no_cap() {
        let places = Places::new(0);
        let held: Vec<_> = (0..100).map(|_| places.take().unwrap()).collect();
        assert_eq!(places.taken(), 100);
        drop(held);
        assert_eq!(places.taken(), 0);
    }
}
