//! Idempotency of `/plan` (spec §1.6): keys scoped by caller; `body:` entries live while their plan
//! is in flight, `hdr:` entries also for the TTL after it ended. Lookup, admission checks and
//! registration happen under one lock, so two identical requests never both run.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most completed entries kept (oldest evicted first).
const MAX_COMPLETED: usize = 10_000;

#[derive(Debug)]
struct Entry {
    session_id: String,
    /// `None` while in flight.
    ended_at: Option<Instant>,
    generation: u64,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// Completed `hdr:` entries in end order: (key, generation).
    completed: VecDeque<(String, u64)>,
    next_generation: u64,
}

/// The answer of [`Idempotency::admit`].
#[derive(Debug, PartialEq, Eq)]
pub enum Admission<R, T = Ticket> {
    /// A duplicate: the original plan's session id and whether it still runs.
    Duplicate { session_id: String, in_flight: bool },
    /// Refused by the admission check (shutdown, overload).
    Refused(R),
    /// Registered; end it with this ticket.
    Registered(T),
}

/// Proof of registration, handed back when the stream ends.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    key: String,
    generation: u64,
}

/// The idempotency table.
#[derive(Debug)]
pub struct Idempotency {
    table: Mutex<Table>,
    ttl: Duration,
}

impl Idempotency {
    /// An empty table whose `hdr:` entries live `ttl` after their plan ended.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            ttl,
        }
    }

    /// The scoped key: `<scope>:hdr:<header>` or `<scope>:body:<sha256 of the raw body>`.
    #[must_use]
    pub fn key(scope: &str, header: Option<&str>, body: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        match header.filter(|h| !h.is_empty()) {
            Some(h) => format!("{scope}:hdr:{h}"),
            None => format!("{scope}:body:{}", hex::encode(Sha256::digest(body))),
        }
    }

    /// Looks the key up; on a miss runs `check` and, when it passes, registers a new entry and
    /// hands back what the check gave with the ticket.
    pub fn admit<R, P>(
        &self,
        key: &str,
        session_id: &str,
        check: impl FnOnce() -> Result<P, R>,
    ) -> Admission<R, (Ticket, P)> {
        let mut t = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        self.purge(&mut t, now);
        if let Some(e) = t.entries.get(key) {
            return Admission::Duplicate {
                session_id: e.session_id.clone(),
                in_flight: e.ended_at.is_none(),
            };
        }
        let passed = match check() {
            Ok(passed) => passed,
            Err(r) => return Admission::Refused(r),
        };
        t.next_generation += 1;
        let generation = t.next_generation;
        t.entries.insert(
            key.to_owned(),
            Entry {
                session_id: session_id.to_owned(),
                ended_at: None,
                generation,
            },
        );
        Admission::Registered((
            Ticket {
                key: key.to_owned(),
                generation,
            },
            passed,
        ))
    }

    /// The entry of `key`, if any: its plan's session id and whether it still runs.
    #[must_use]
    pub fn peek(&self, key: &str) -> Option<(String, bool)> {
        let mut t = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.purge(&mut t, Instant::now());
        t.entries
            .get(key)
            .map(|e| (e.session_id.clone(), e.ended_at.is_none()))
    }

    /// Marks a plan's stream as ended.
    pub fn end(&self, ticket: &Ticket) {
        let mut t = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let is_current = t
            .entries
            .get(&ticket.key)
            .is_some_and(|e| e.generation == ticket.generation);
        if !is_current {
            return;
        }
        if ticket.key.contains(":hdr:") && !self.ttl.is_zero() {
            if let Some(e) = t.entries.get_mut(&ticket.key) {
                e.ended_at = Some(Instant::now());
            }
            t.completed
                .push_back((ticket.key.clone(), ticket.generation));
            while t.completed.len() > MAX_COMPLETED {
                if let Some((k, g)) = t.completed.pop_front()
                    && t.entries.get(&k).is_some_and(|e| e.generation == g)
                {
                    t.entries.remove(&k);
                }
            }
        } else {
            t.entries.remove(&ticket.key);
        }
    }

    fn purge(&self, t: &mut Table, now: Instant) {
        while let Some((k, g)) = t.completed.front() {
            let expired = match t.entries.get(k) {
                Some(e) if e.generation == *g => e
                    .ended_at
                    .is_some_and(|at| now.duration_since(at) >= self.ttl),
                _ => true,
            };
            if !expired {
                break;
            }
            let (k, g) = t.completed.pop_front().unwrap_or_default();
            if t.entries.get(&k).is_some_and(|e| e.generation == g) {
                t.entries.remove(&k);
            }
        }
    }

    /// Number of entries (in flight and completed), for leak checks.
    #[must_use]
    pub fn len(&self) -> usize {
        let t = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.entries.len()
    }

    /// Whether the table is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_entries_vanish_at_end_and_header_entries_linger() {
        let idem = Idempotency::new(Duration::from_secs(60));
        let body_key = Idempotency::key("s", None, b"{}");
        let Admission::Registered((t, ())) = idem.admit::<(), ()>(&body_key, "a", || Ok(())) else {
            panic!()
        };
        assert_eq!(
            idem.admit::<(), ()>(&body_key, "b", || Ok(())),
            Admission::Duplicate {
                session_id: "a".into(),
                in_flight: true
            }
        );
        idem.end(&t);
        assert!(idem.is_empty());

        let hdr_key = Idempotency::key("s", Some("k"), b"{}");
        assert_eq!(hdr_key, "s:hdr:k");
        let Admission::Registered((t, ())) = idem.admit::<(), ()>(&hdr_key, "c", || Ok(())) else {
            panic!()
        };
        idem.end(&t);
        assert_eq!(
            idem.admit::<(), ()>(&hdr_key, "d", || Ok(())),
            Admission::Duplicate {
                session_id: "c".into(),
                in_flight: false
            }
        );
        assert!(matches!(
            idem.admit::<i32, ()>(&Idempotency::key("other", Some("k"), b""), "e", || Err(7)),
            Admission::Refused(7)
        ));
    }

    #[test]
    fn expired_header_entries_are_purged() {
        let idem = Idempotency::new(Duration::from_millis(1));
        let Admission::Registered((t, ())) = idem.admit::<(), ()>("s:hdr:x", "a", || Ok(())) else {
            panic!()
        };
        idem.end(&t);
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(
            idem.admit::<(), ()>("s:hdr:x", "b", || Ok(())),
            Admission::Registered(_)
        ));
    }
}
