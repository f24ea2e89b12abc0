//! Event logs of resumable plans (in memory): the frames of each plan in order, so a client that
//! reconnects gets every frame after the last one it saw, exactly once, then follows the live
//! plan. A log belongs to the token scope that started the plan; finished logs stay for the
//! retention time; all logs together are bounded in bytes and count (finished logs go first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

/// One plan's frames.
#[derive(Debug)]
struct Log {
    owner: String,
    frames: Vec<Bytes>,
    bytes: usize,
    /// When the last frame (`done`) was written.
    ended: Option<Instant>,
    /// The number of frames, for followers waiting for more.
    len: watch::Sender<usize>,
}

#[derive(Debug, Default)]
struct Logs {
    by_plan: HashMap<String, Log>,
    bytes: usize,
}

/// Limits of the logs.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    pub retention: Duration,
    pub max_bytes: usize,
    pub max_plans: usize,
}

/// Why a log cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many resumable plans kept (resume.max_plans = {0})")]
pub struct LogsFull(pub usize);

/// The event logs of one gateway.
#[derive(Debug)]
pub struct EventLogs {
    logs: Mutex<Logs>,
    limits: LogLimits,
}

/// A reader of one log, from a position on.
#[derive(Debug)]
pub struct Follower {
    logs: Arc<EventLogs>,
    plan: String,
    /// Frames already handed out (the next frame's sequence number is `next + 1`).
    next: usize,
    len: watch::Receiver<usize>,
}

impl EventLogs {
    #[must_use]
    pub fn new(limits: LogLimits) -> Self {
        Self {
            logs: Mutex::new(Logs::default()),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Logs> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new, empty log for `plan`.
    ///
    /// # Errors
    /// Every kept log is still running and the count limit is reached.
    pub fn create(&self, plan: &str, owner: &str) -> Result<(), LogsFull> {
        let mut logs = self.lock();
        self.purge(&mut logs, 0);
        if logs.by_plan.len() >= self.limits.max_plans {
            return Err(LogsFull(self.limits.max_plans));
        }
        let (len, _) = watch::channel(0);
        logs.by_plan.insert(
            plan.to_owned(),
            Log {
                owner: owner.to_owned(),
                frames: Vec::new(),
                bytes: 0,
                ended: None,
                len,
            },
        );
        Ok(())
    }

    /// Appends a frame; `last` marks the end of the plan. Returns the frame's sequence number.
    pub fn append(&self, plan: &str, frame: Bytes, last: bool) -> usize {
        let mut logs = self.lock();
        let size = frame.len();
        let Some(log) = logs.by_plan.get_mut(plan) else {
            return 0;
        };
        log.frames.push(frame);
        log.bytes += size;
        if last {
            log.ended = Some(Instant::now());
        }
        let seq = log.frames.len();
        log.len.send_replace(seq);
        logs.bytes += size;
        if logs.bytes > self.limits.max_bytes {
            self.purge(&mut logs, 0);
        }
        seq
    }

    /// A follower of `plan` for its owner, starting after frame `after` (`None` for someone
    /// else's or an unknown plan).
    #[must_use]
    pub fn follow(self: &Arc<Self>, plan: &str, owner: &str, after: usize) -> Option<Follower> {
        let mut logs = self.lock();
        self.purge(&mut logs, 0);
        let log = logs.by_plan.get(plan).filter(|l| l.owner == owner)?;
        Some(Follower {
            logs: Arc::clone(self),
            plan: plan.to_owned(),
            next: after.min(log.frames.len()),
            len: log.len.subscribe(),
        })
    }

    /// Whether `plan` exists for `owner` and has ended.
    #[must_use]
    pub fn state(&self, plan: &str, owner: &str) -> Option<bool> {
        let logs = self.lock();
        logs.by_plan
            .get(plan)
            .filter(|l| l.owner == owner)
            .map(|l| l.ended.is_some())
    }

    /// Forgets ended logs past their retention, then, while over the byte limit, the ended
    /// logs that ended first.
    fn purge(&self, logs: &mut Logs, extra: usize) {
        let now = Instant::now();
        let retention = self.limits.retention;
        let mut freed = 0;
        logs.by_plan.retain(|_, l| {
            let keep = l
                .ended
                .is_none_or(|ended| now.duration_since(ended) < retention);
            if !keep {
                freed += l.bytes;
            }
            keep
        });
        logs.bytes -= freed;
        while logs.bytes + extra > self.limits.max_bytes {
            let oldest = logs
                .by_plan
                .iter()
                .filter_map(|(id, l)| l.ended.map(|e| (e, id.clone())))
                .min();
            let Some((_, id)) = oldest else { break };
            if let Some(log) = logs.by_plan.remove(&id) {
                logs.bytes -= log.bytes;
            }
        }
    }

    /// Logs and bytes kept (for leak checks).
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        let logs = self.lock();
        (logs.by_plan.len(), logs.bytes)
    }
}

impl Follower {
    /// The next frame and its sequence number, waiting for it if needed; `None` after the last
    /// frame of the plan (or when its log was forgotten).
    pub async fn next(&mut self) -> Option<(usize, Bytes)> {
        loop {
            {
                let logs = self.logs.lock();
                let log = logs.by_plan.get(&self.plan)?;
                if let Some(frame) = log.frames.get(self.next) {
                    self.next += 1;
                    return Some((self.next, frame.clone()));
                }
                if log.ended.is_some() {
                    return None;
                }
            }
            if self.len.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The plan this follower reads.
    #[must_use]
    pub fn plan(&self) -> &str {
        &self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(max_bytes: usize, max_plans: usize) -> Arc<EventLogs> {
        Arc::new(EventLogs::new(LogLimits {
            retention: Duration::from_secs(60),
            max_bytes,
            max_plans,
        }))
    }

    #[tokio::test]
    async fn a_follower_gets_every_frame_after_its_position_then_the_live_ones() {
        let l = logs(1 << 20, 10);
        l.create("p", "alice").unwrap();
        l.append("p", Bytes::from_static(b"1"), false);
        l.append("p", Bytes::from_static(b"2"), false);
        assert!(l.follow("p", "bob", 0).is_none(), "another caller's plan");
        let mut f = l.follow("p", "alice", 1).unwrap();
        assert_eq!(f.next().await, Some((2, Bytes::from_static(b"2"))));
        let writer = Arc::clone(&l);
        let live = async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.append("p", Bytes::from_static(b"3"), true);
        };
        let read = async {
            assert_eq!(f.next().await, Some((3, Bytes::from_static(b"3"))));
            assert_eq!(f.next().await, None);
        };
        tokio::join!(live, read);
        assert_eq!(l.state("p", "alice"), Some(true));
    }

    #[test]
    fn ended_logs_go_first_when_over_the_limits() {
        let l = logs(10, 2);
        l.create("a", "o").unwrap();
        l.create("b", "o").unwrap();
        assert_eq!(l.create("c", "o"), Err(LogsFull(2)));
        l.append("a", Bytes::from_static(b"123456"), true);
        l.append("b", Bytes::from_static(b"123456"), false);
        assert_eq!(l.len().0, 1, "a ended and went over the byte limit");
        assert!(l.state("b", "o").is_some());
        l.create("c", "o").unwrap();
    }
}
