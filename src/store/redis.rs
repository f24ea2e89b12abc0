//! The shared store on Redis (`GATEWAY_REDIS_URL`), for several instances behind one balancer:
//!
//! - event logs of resumable plans as Redis Streams (`plangate:events:<plan>`, entry ids
//!   `0-<seq>`, capped and expiring), read with blocking `XREAD` on a connection of their own, so
//!   any instance serves a resume without polling;
//! - the plan's owner (`plangate:owner:<plan>`) and a lease of the instance running it
//!   (`plangate:lease:<plan>`, refreshed while it runs): a reader that finds the lease gone before
//!   `done` knows the instance died;
//! - idempotency keys (`plangate:idem:<scope>:<key>`) set atomically with `SET NX PX`;
//! - cancels as pub/sub messages on `plangate:cancel`, so `DELETE` reaches the instance that runs
//!   the plan.
//!
//! Crate: `redis` 1.x (redis-rs, the most used client; its `ConnectionManager` reconnects by
//! itself after an outage), chosen over `fred` for its smaller dependency tree; 2.x was still a
//! release candidate.

use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{AsyncCommands as _, Value};

/// Why the store failed (Redis unreachable or answering errors).
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct StoreError(#[from] redis::RedisError);

const CANCEL_CHANNEL: &str = "plangate:cancel";
/// Longest a key of a running plan lives without being refreshed (a plan's longest deadline).
const RUNNING_TTL: Duration = Duration::from_secs(6 * 3600 + 600);

fn events_key(plan: &str) -> String {
    format!("plangate:events:{plan}")
}

fn owner_key(plan: &str) -> String {
    format!("plangate:owner:{plan}")
}

fn lease_key(plan: &str) -> String {
    format!("plangate:lease:{plan}")
}

use super::millis as ms;

/// The connection to Redis and this instance's name.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    /// This instance (lease values).
    pub instance: String,
    /// How long a lease lives without a refresh.
    pub lease: Duration,
    /// Frames kept per plan at most (the stream is capped).
    pub max_frames: usize,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// A duplicate found by [`RedisStore::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub session_id: String,
    pub in_flight: bool,
}

impl RedisStore {
    /// A handle on the shared connection (it reconnects by itself).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Connects and checks the server answers.
    ///
    /// # Errors
    /// The URL is invalid or Redis does not answer `PING`.
    pub async fn connect(url: &str, lease: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let mut conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connection timed out")))??;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(Self {
            client,
            conn,
            instance: uuid::Uuid::new_v4().to_string(),
            lease,
            max_frames: 100_000,
        })
    }

    /// Registers `key` for `session_id` unless it exists; a hit is the duplicate's session and
    /// whether its plan still runs (its lease is held).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn admit(
        &self,
        key: &str,
        session_id: &str,
    ) -> Result<Option<Duplicate>, StoreError> {
        let mut conn = self.conn.clone();
        let key = format!("plangate:idem:{key}");
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(session_id)
            .arg("NX")
            .arg("PX")
            .arg(ms(RUNNING_TTL))
            .query_async(&mut conn)
            .await?;
        if set.is_some() {
            return Ok(None);
        }
        let original: Option<String> = conn.get(&key).await?;
        let Some(original) = original else {
            // Expired in between: treat as new.
            return Ok(None);
        };
        // `<session>` while the plan runs, `<session>|done` after.
        let (session_id, in_flight) = match original.strip_suffix("|done") {
            Some(session) => (session.to_owned(), false),
            None => (original, true),
        };
        Ok(Some(Duplicate {
            session_id,
            in_flight,
        }))
    }

    /// The idempotency entry of `key`, without registering anything.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn peek_key(&self, key: &str) -> Result<Option<Duplicate>, StoreError> {
        let mut conn = self.conn.clone();
        let original: Option<String> = conn.get(format!("plangate:idem:{key}")).await?;
        Ok(
            original.map(|original| match original.strip_suffix("|done") {
                Some(session) => Duplicate {
                    session_id: session.to_owned(),
                    in_flight: false,
                },
                None => Duplicate {
                    session_id: original,
                    in_flight: true,
                },
            }),
        )
    }

    /// Ends an idempotency entry: `linger` keeps it that long, marked done (a header key), else
    /// it goes.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn end_key(
        &self,
        key: &str,
        session_id: &str,
        linger: Option<Duration>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = format!("plangate:idem:{key}");
        match linger {
            Some(ttl) if !ttl.is_zero() => {
                let _: () = redis::cmd("SET")
                    .arg(&key)
                    .arg(format!("{session_id}|done"))
                    .arg("PX")
                    .arg(ms(ttl))
                    .query_async(&mut conn)
                    .await?;
            }
            _ => {
                let _: usize = conn.del(&key).await?;
            }
        }
        Ok(())
    }

    /// Creates a plan's log: its owner, and this instance's lease.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn create_log(&self, plan: &str, owner: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("SET")
            .arg(owner_key(plan))
            .arg(owner)
            .arg("PX")
            .arg(ms(RUNNING_TTL))
            .ignore()
            .cmd("SET")
            .arg(lease_key(plan))
            .arg(&self.instance)
            .arg("PX")
            .arg(ms(self.lease))
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Refreshes this instance's lease on a running plan.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn renew_lease(&self, plan: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(lease_key(plan))
            .arg(&self.instance)
            .arg("PX")
            .arg(ms(self.lease))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Appends frames `(seq, frame)` of `plan`, in order, in one pipelined round trip; `last`
    /// when the batch ends with the plan's `done` frame (the log then expires after `retention`
    /// and the plan's lease is dropped).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn append(
        &self,
        plan: &str,
        frames: &[(usize, Bytes)],
        last: bool,
        retention: Duration,
    ) -> Result<(), StoreError> {
        let Some(&(last_seq, _)) = frames.last() else {
            return Ok(());
        };
        let mut conn = self.conn.clone();
        let key = events_key(plan);
        let mut pipe = redis::pipe();
        for (seq, frame) in frames {
            pipe.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_frames)
                .arg(format!("0-{seq}"))
                .arg("f")
                .arg(frame.as_ref());
            if last && *seq == last_seq {
                pipe.arg("end").arg("1");
            }
            pipe.ignore();
        }
        if last {
            let keep = ms(retention);
            pipe.cmd("PEXPIRE").arg(&key).arg(keep).ignore();
            pipe.cmd("PEXPIRE").arg(owner_key(plan)).arg(keep).ignore();
            pipe.cmd("DEL").arg(lease_key(plan)).ignore();
        } else if frames.first().is_some_and(|(seq, _)| *seq == 1) {
            pipe.cmd("PEXPIRE").arg(&key).arg(ms(RUNNING_TTL)).ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// The owner of a plan's log, if it exists.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn owner(&self, plan: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.get(owner_key(plan)).await?)
    }

    /// Notes that a client reads `plan` now (for `ttl`): the instance running it then keeps it
    /// past the grace even when the reader is connected elsewhere.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn mark_read(&self, plan: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(format!("plangate:read:{plan}"))
            .arg(&self.instance)
            .arg("PX")
            .arg(ms(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Whether a client read `plan` recently (on any instance).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn recently_read(&self, plan: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.exists(format!("plangate:read:{plan}")).await?)
    }

    /// Whether the plan's lease is held (its instance runs it).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn leased(&self, plan: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.exists(lease_key(plan)).await?)
    }

    /// A reader of a plan's log after frame `after`, on a connection of its own (blocking reads).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn reader(&self, plan: &str, after: usize) -> Result<StreamReader, StoreError> {
        // Blocking reads wait up to a lease; the answer may take that long.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(self.lease + Duration::from_secs(20)));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(StreamReader {
            store: self.clone(),
            conn,
            key: events_key(plan),
            plan: plan.to_owned(),
            last: after,
            ended: false,
        })
    }

    /// Asks every instance to cancel `plan`.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn publish_cancel(&self, plan: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: usize = conn.publish(CANCEL_CHANNEL, plan).await?;
        Ok(())
    }

    /// Listens for cancels, calling `on_cancel` with each plan id, until `stop` fires;
    /// reconnects after an outage.
    pub async fn listen_for_cancels(
        &self,
        stop: tokio_util::sync::CancellationToken,
        on_cancel: impl Fn(&str) + Send,
    ) {
        self.listen(CANCEL_CHANNEL, stop, on_cancel).await;
    }

    /// Listens on `channel`, calling `on_message` with each payload, until `stop` fires;
    /// reconnects after an outage.
    pub async fn listen(
        &self,
        channel: &str,
        stop: tokio_util::sync::CancellationToken,
        on_message: impl Fn(&str) + Send,
    ) {
        use futures::StreamExt as _;
        loop {
            let attempt = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    if let Ok(payload) = message.get_payload::<String>() {
                        on_message(&payload);
                    }
                }
                Ok::<(), redis::RedisError>(())
            };
            tokio::select! {
                result = attempt => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, channel, "redis subscription lost; retrying");
                    }
                }
                () = stop.cancelled() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

/// What a stream reader found.
#[derive(Debug)]
pub enum Read {
    /// A frame and its sequence number.
    Frame(usize, Bytes),
    /// The plan's instance is gone (lease expired) before `done`.
    InstanceLost,
    /// The log ended.
    End,
}

/// Blocking reads of one plan's stream.
pub struct StreamReader {
    store: RedisStore,
    conn: MultiplexedConnection,
    key: String,
    plan: String,
    last: usize,
    ended: bool,
}

impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("plan", &self.plan)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl StreamReader {
    /// The next frames (up to 64), waiting up to `block` for them.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn next(&mut self, block: Duration) -> Result<Vec<Read>, StoreError> {
        if self.ended {
            return Ok(vec![Read::End]);
        }
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(64)
            .arg("BLOCK")
            .arg(ms(block))
            .arg("STREAMS")
            .arg(&self.key)
            .arg(format!("0-{}", self.last))
            .query_async(&mut self.conn)
            .await?;
        let entries = parse_xread(&reply);
        if entries.is_empty() {
            // Nothing new: is anyone still writing?
            if !self.store.leased(&self.plan).await? {
                // One more look: the last frames may have landed with the lease's release.
                let again: Value = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(64)
                    .arg("STREAMS")
                    .arg(&self.key)
                    .arg(format!("0-{}", self.last))
                    .query_async(&mut self.conn)
                    .await?;
                let entries = parse_xread(&again);
                if entries.is_empty() {
                    self.ended = true;
                    return Ok(vec![Read::InstanceLost]);
                }
                return Ok(self.take(entries));
            }
            return Ok(Vec::new());
        }
        Ok(self.take(entries))
    }

    fn take(&mut self, entries: Vec<(usize, Bytes, bool)>) -> Vec<Read> {
        let mut out = Vec::with_capacity(entries.len() + 1);
        for (seq, frame, end) in entries {
            self.last = seq;
            out.push(Read::Frame(seq, frame));
            if end {
                self.ended = true;
                out.push(Read::End);
                break;
            }
        }
        out
    }
}

/// `XREAD` reply → (seq, frame, end) per entry.
fn parse_xread(reply: &Value) -> Vec<(usize, Bytes, bool)> {
    let mut out = Vec::new();
    let streams: Vec<&Value> = match reply {
        Value::Array(items) => items.iter().collect(),
        Value::Map(pairs) => pairs.iter().map(|(_, v)| v).collect(),
        _ => return out,
    };
    for stream in streams {
        // RESP2: [key, entries]; RESP3 map value: entries.
        let entries = match stream {
            Value::Array(pair) if pair.len() == 2 && matches!(pair[1], Value::Array(_)) => &pair[1],
            other => other,
        };
        let Value::Array(entries) = entries else {
            continue;
        };
        for entry in entries {
            let Value::Array(parts) = entry else { continue };
            let (Some(Value::BulkString(id)), Some(Value::Array(fields))) =
                (parts.first(), parts.get(1))
            else {
                continue;
            };
            let seq = std::str::from_utf8(id)
                .ok()
                .and_then(|id| id.strip_prefix("0-"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut frame = Bytes::new();
            let mut end = false;
            for pair in fields.chunks(2) {
                if let [Value::BulkString(name), Value::BulkString(value)] = pair {
                    match name.as_slice() {
                        b"f" => frame = Bytes::copy_from_slice(value),
                        b"end" => end = true,
                        _ => {}
                    }
                }
            }
            out.push((seq, frame, end));
        }
    }
    out
}
