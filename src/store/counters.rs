//! The keys' counters on Redis (`GATEWAY_REDIS_URL`), shared by every instance:
//!
//! - `plangate:rpm:<sha256 of the key's name>` — requests in the key's window: one script
//!   increments, starts the window's expiry on the first request, and answers how long the
//!   window still lasts once it is full, so concurrent requests on any instance are counted
//!   exactly;
//! - `plangate:llm-day:<sha256 of the key's name>` — LLM tokens spent in the key's day, expiring
//!   a day after its first spend;
//! - `plangate:plans:<sha256 of the key's name>` — the key's running plans (`max_concurrent_plans`)
//!   on every instance: a sorted set of plan holds scored by when each lease ends, so the hold
//!   of an instance that died without giving it back ends by itself. Holds are checked and
//!   added by one script, on Redis's clock.

use std::time::Duration;

use super::redis::{RedisStore, StoreError};
use super::{hashed_key, millis as ms};

/// Counts a request; answers 0, or the window's remaining milliseconds when it is full.
const HIT_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    left = tonumber(ARGV[1])
  end
  return left
end
return 0
";

/// Adds tokens to a day, starting its expiry with the first spend; answers the day's total.
const SPEND_SCRIPT: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
";

/// Drops ended holds, then adds hold `ARGV[3]` for `ARGV[2]` ms unless `ARGV[1]` are held;
/// answers 1 when added.
const HOLD_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// The counters of the keys on the shared store.
#[derive(Debug, Clone)]
pub struct SharedCounters {
    store: RedisStore,
}

fn key(kind: &str, name: &str) -> String {
    hashed_key(kind, &[name])
}

impl SharedCounters {
    #[must_use]
    pub fn new(store: RedisStore) -> Self {
        Self { store }
    }

    /// Counts one request of key `name` in its `window`; `Some(wait)` once `limit` requests were
    /// counted in it.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn hit(
        &self,
        name: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let mut conn = self.store.connection();
        let left: i64 = redis::cmd("EVAL")
            .arg(HIT_SCRIPT)
            .arg(1)
            .arg(key("rpm", name))
            .arg(ms(window))
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        Ok((left > 0).then(|| Duration::from_millis(left.unsigned_abs())))
    }

    /// What key `name` spent in its day, and how long the day still lasts.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn spent(&self, name: &str) -> Result<(u64, Duration), StoreError> {
        let mut conn = self.store.connection();
        let (spent, left): (Option<u64>, i64) = redis::pipe()
            .cmd("GET")
            .arg(key("llm-day", name))
            .cmd("PTTL")
            .arg(key("llm-day", name))
            .query_async(&mut conn)
            .await?;
        Ok((
            spent.unwrap_or(0),
            Duration::from_millis(left.max(0).unsigned_abs()),
        ))
    }

    /// Adds `tokens` to key `name`'s day of length `day`.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn spend(&self, name: &str, tokens: u64, day: Duration) -> Result<(), StoreError> {
        let mut conn = self.store.connection();
        let _: i64 = redis::cmd("EVAL")
            .arg(SPEND_SCRIPT)
            .arg(1)
            .arg(key("llm-day", name))
            .arg(tokens)
            .arg(ms(day))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Holds one of key `name`'s `limit` plans for at most `lease` as `id`; `false` when all
    /// are held (on any instance).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn hold(
        &self,
        name: &str,
        limit: u32,
        lease: Duration,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.store.connection();
        let added: i64 = redis::cmd("EVAL")
            .arg(HOLD_SCRIPT)
            .arg(1)
            .arg(key("plans", name))
            .arg(limit)
            .arg(ms(lease))
            .arg(id)
            .query_async(&mut conn)
            .await?;
        Ok(added == 1)
    }

    /// Gives back hold `id` of key `name`.
    ///
    /// # Errors
    /// Redis failed (the hold then ends with its lease).
    pub async fn release(&self, name: &str, id: &str) -> Result<(), StoreError> {
        let mut conn = self.store.connection();
        let _: i64 = redis::cmd("ZREM")
            .arg(key("plans", name))
            .arg(id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
