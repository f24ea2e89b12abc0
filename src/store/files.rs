//! The bytes of plans' files, in this instance's memory or on Redis (`GATEWAY_REDIS_URL`), so
//! the files route answers on every instance. A file is kept until `files.retention_secs` after
//! its plan ended (at most the plan's lease, should the plan never report its end), and at most
//! `files.max_total_bytes` are kept in all: a new file evicts the oldest first. The store keeps
//! keys and bytes; who may read a file is its owner, which the route checks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::redis::{RedisStore, StoreError};
use super::{hashed_key, millis};

/// What the files route needs besides the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The caller that may read it (the plan's owner).
    pub owner: String,
    pub name: String,
    pub media_type: String,
}

/// A kept file.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub meta: FileMeta,
    pub bytes: Bytes,
}

/// Why a file was not kept.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the file is larger than files.max_total_bytes ({0})")]
    TooLarge(usize),
    #[error("the file store failed: {0}")]
    Store(#[from] StoreError),
}

/// Where files are kept.
#[derive(Debug)]
pub enum Files {
    Memory(MemoryFiles),
    Redis(RedisFiles),
}

impl Files {
    /// Files in this instance's memory.
    #[must_use]
    pub fn memory(max_total_bytes: usize, retention: Duration) -> Self {
        Self::Memory(MemoryFiles {
            max_total_bytes,
            retention,
            inner: Mutex::new(MemoryInner::default()),
        })
    }

    /// Files on Redis.
    #[must_use]
    pub fn redis(store: RedisStore, max_total_bytes: usize, retention: Duration) -> Self {
        Self::Redis(RedisFiles {
            store,
            max_total_bytes,
            retention,
        })
    }

    /// Keeps file `file_id` of plan `plan`, for `lease` at most (until its plan ends).
    ///
    /// # Errors
    /// The file alone is over `files.max_total_bytes`, or Redis failed.
    pub async fn put(
        &self,
        plan: &str,
        file_id: &str,
        meta: FileMeta,
        bytes: Bytes,
        lease: Duration,
    ) -> Result<(), PutError> {
        let max = match self {
            Self::Memory(m) => m.max_total_bytes,
            Self::Redis(r) => r.max_total_bytes,
        };
        if bytes.len() > max {
            return Err(PutError::TooLarge(max));
        }
        match self {
            Self::Memory(m) => m.put(plan, file_id, meta, bytes, lease),
            Self::Redis(r) => r.put(plan, file_id, meta, bytes, lease).await,
        }
    }

    /// File `file_id` of plan `plan`, while it is kept.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn get(&self, plan: &str, file_id: &str) -> Result<Option<StoredFile>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.get(plan, file_id)),
            Self::Redis(r) => r.get(plan, file_id).await,
        }
    }

    /// Plan `plan` ended: its files are kept `files.retention_secs` from now.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn finish(&self, plan: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.finish(plan);
                Ok(())
            }
            Self::Redis(r) => r.finish(plan).await,
        }
    }

    /// Bytes kept now (memory backend; `None` on Redis).
    #[must_use]
    pub fn kept_bytes(&self) -> Option<usize> {
        match self {
            Self::Memory(m) => Some(m.lock().total),
            Self::Redis(_) => None,
        }
    }
}

/// Files in memory.
#[derive(Debug)]
pub struct MemoryFiles {
    max_total_bytes: usize,
    retention: Duration,
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    files: HashMap<(String, String), MemoryEntry>,
    /// Keys in the order they were kept (the oldest is evicted first).
    order: std::collections::BTreeMap<u64, (String, String)>,
    next: u64,
    total: usize,
    /// When expired files were last looked for (at most once a second: a sweep walks them all).
    swept: Option<Instant>,
}

#[derive(Debug)]
struct MemoryEntry {
    file: StoredFile,
    seq: u64,
    expires: Instant,
}

impl MemoryInner {
    fn remove(&mut self, key: &(String, String)) {
        if let Some(entry) = self.files.remove(key) {
            self.order.remove(&entry.seq);
            self.total -= entry.file.bytes.len();
            crate::telemetry::memory::large_payload(entry.file.bytes.len());
        }
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let expired: Vec<(String, String)> = self
            .files
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.remove(key);
        }
    }
}

impl MemoryFiles {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(
        &self,
        plan: &str,
        file_id: &str,
        meta: FileMeta,
        bytes: Bytes,
        lease: Duration,
    ) -> Result<(), PutError> {
        let size = bytes.len();
        let now = Instant::now();
        let mut inner = self.lock();
        inner.sweep(now);
        while inner.total + size > self.max_total_bytes {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            // `order` no longer holds it; `remove` finds nothing there to take.
            if let Some(entry) = inner.files.remove(&oldest) {
                inner.total -= entry.file.bytes.len();
                crate::telemetry::memory::large_payload(entry.file.bytes.len());
            }
        }
        let seq = inner.next;
        inner.next += 1;
        let key = (plan.to_owned(), file_id.to_owned());
        inner.order.insert(seq, key.clone());
        inner.total += size;
        inner.files.insert(
            key,
            MemoryEntry {
                file: StoredFile { meta, bytes },
                seq,
                expires: now + lease,
            },
        );
        Ok(())
    }

    fn get(&self, plan: &str, file_id: &str) -> Option<StoredFile> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.sweep(now);
        inner
            .files
            .get(&(plan.to_owned(), file_id.to_owned()))
            .filter(|e| e.expires > now)
            .map(|e| e.file.clone())
    }

    fn finish(&self, plan: &str) {
        let until = Instant::now() + self.retention;
        let mut inner = self.lock();
        for ((p, _), entry) in &mut inner.files {
            if p == plan {
                entry.expires = entry.expires.min(until);
            }
        }
        inner.swept = None;
        inner.sweep(Instant::now());
    }
}

/// Files on Redis: a hash per file (`plangate:file:<sha256>`: owner, name, media type, bytes),
/// the set of a plan's files, and one sorted set (+ sizes, + total) for the oldest-first
/// eviction over all instances.
#[derive(Debug)]
pub struct RedisFiles {
    store: RedisStore,
    max_total_bytes: usize,
    retention: Duration,
}

const ORDER_KEY: &str = "plangate:files:order";
const SIZES_KEY: &str = "plangate:files:sizes";
const TOTAL_KEY: &str = "plangate:files:total";
const SEQ_KEY: &str = "plangate:files:seq";

/// Keeps one file: forgets (up to 16) oldest entries whose file expired, evicts the oldest
/// until the new one fits, then writes it. KEYS: file, plan set, order, sizes, total, seq.
/// ARGV: owner, name, media type, bytes, size, max total, lease ms.
const PUT_SCRIPT: &str = r"
local size = tonumber(ARGV[5])
local max = tonumber(ARGV[6])
if size > max then return 0 end
local total = tonumber(redis.call('GET', KEYS[5]) or '0')
local oldest = redis.call('ZRANGE', KEYS[3], 0, 15)
for _, k in ipairs(oldest) do
  if redis.call('EXISTS', k) == 1 then break end
  total = total - tonumber(redis.call('HGET', KEYS[4], k) or '0')
  redis.call('ZREM', KEYS[3], k)
  redis.call('HDEL', KEYS[4], k)
end
while total + size > max do
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)
  if #first == 0 then total = 0 break end
  local k = first[1]
  total = total - tonumber(redis.call('HGET', KEYS[4], k) or '0')
  redis.call('DEL', k)
  redis.call('ZREM', KEYS[3], k)
  redis.call('HDEL', KEYS[4], k)
end
if total < 0 then total = 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'name', ARGV[2], 'media_type', ARGV[3], 'bytes', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
local seq = redis.call('INCR', KEYS[6])
redis.call('ZADD', KEYS[3], seq, KEYS[1])
redis.call('HSET', KEYS[4], KEYS[1], size)
redis.call('SET', KEYS[5], total + size)
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return 1
";

/// A plan ended: each of its files (and its set) expires in ARGV[1] ms, unless sooner.
const FINISH_SCRIPT: &str = r"
local ms = tonumber(ARGV[1])
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local left = redis.call('PTTL', k)
  if left < 0 or left > ms then redis.call('PEXPIRE', k, ms) end
end
redis.call('PEXPIRE', KEYS[1], ms)
return 1
";

impl RedisFiles {
    fn file_key(plan: &str, file_id: &str) -> String {
        hashed_key("file", &[plan, file_id])
    }

    fn plan_key(plan: &str) -> String {
        hashed_key("files-of-plan", &[plan])
    }

    async fn put(
        &self,
        plan: &str,
        file_id: &str,
        meta: FileMeta,
        bytes: Bytes,
        lease: Duration,
    ) -> Result<(), PutError> {
        let size = bytes.len();
        let mut conn = self.store.connection();
        let _: i64 = redis::cmd("EVAL")
            .arg(PUT_SCRIPT)
            .arg(6)
            .arg(Self::file_key(plan, file_id))
            .arg(Self::plan_key(plan))
            .arg(ORDER_KEY)
            .arg(SIZES_KEY)
            .arg(TOTAL_KEY)
            .arg(SEQ_KEY)
            .arg(&meta.owner)
            .arg(&meta.name)
            .arg(&meta.media_type)
            .arg(bytes.as_ref())
            .arg(size)
            .arg(self.max_total_bytes)
            .arg(millis(lease))
            .query_async(&mut conn)
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }

    async fn get(&self, plan: &str, file_id: &str) -> Result<Option<StoredFile>, StoreError> {
        let mut conn = self.store.connection();
        let (owner, name, media_type, bytes): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<Vec<u8>>,
        ) = redis::cmd("HMGET")
            .arg(Self::file_key(plan, file_id))
            .arg("owner")
            .arg("name")
            .arg("media_type")
            .arg("bytes")
            .query_async(&mut conn)
            .await?;
        Ok(match (owner, name, media_type, bytes) {
            (Some(owner), Some(name), Some(media_type), Some(bytes)) => Some(StoredFile {
                meta: FileMeta {
                    owner,
                    name,
                    media_type,
                },
                bytes: Bytes::from(bytes),
            }),
            _ => None,
        })
    }

    async fn finish(&self, plan: &str) -> Result<(), StoreError> {
        let mut conn = self.store.connection();
        let _: i64 = redis::cmd("EVAL")
            .arg(FINISH_SCRIPT)
            .arg(1)
            .arg(Self::plan_key(plan))
            .arg(millis(self.retention))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FileMeta {
        FileMeta {
            owner: "o".into(),
            name: "n".into(),
            media_type: "text/plain".into(),
        }
    }

    #[tokio::test]
    async fn memory_evicts_the_oldest_and_expires_after_the_plan() {
        let files = Files::memory(10, Duration::from_millis(0));
        let lease = Duration::from_secs(60);
        files
            .put("p1", "a", meta(), Bytes::from_static(b"12345"), lease)
            .await
            .unwrap();
        files
            .put("p2", "b", meta(), Bytes::from_static(b"12345"), lease)
            .await
            .unwrap();
        files
            .put("p2", "c", meta(), Bytes::from_static(b"123"), lease)
            .await
            .unwrap();
        assert!(files.get("p1", "a").await.unwrap().is_none(), "evicted");
        assert_eq!(files.get("p2", "b").await.unwrap().unwrap().bytes, "12345");
        assert_eq!(files.kept_bytes(), Some(8));
        assert!(matches!(
            files
                .put("p3", "d", meta(), Bytes::from_static(b"12345678901"), lease)
                .await,
            Err(PutError::TooLarge(10))
        ));
        files.finish("p2").await.unwrap();
        assert!(files.get("p2", "b").await.unwrap().is_none(), "retention 0");
        assert_eq!(files.kept_bytes(), Some(0));
    }
}
