//! Small records of the doors on Redis (`GATEWAY_REDIS_URL`), keyed by kind and id and expiring
//! when idle: the MCP door keeps its sessions here (`plangate:mcp-session:<sha256 of the id>` →
//! the owner), so a client's `Mcp-Session-Id` works on every instance. A record's idle time
//! starts over whenever it is read.

use std::time::Duration;

use super::redis::{RedisStore, StoreError};
use super::{hashed_key, millis};

/// Records of one kind on the shared store.
#[derive(Debug, Clone)]
pub struct SharedRecords {
    store: RedisStore,
    kind: &'static str,
    ttl: Duration,
}

impl SharedRecords {
    /// Records of `kind` on `store`, each forgotten `ttl` after it was last read or written.
    #[must_use]
    pub fn new(store: RedisStore, kind: &'static str, ttl: Duration) -> Self {
        Self { store, kind, ttl }
    }

    fn key(&self, id: &str) -> String {
        hashed_key(self.kind, &[id])
    }

    fn ttl_ms(&self) -> u64 {
        millis(self.ttl)
    }

    /// Writes the record `id`.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn put(&self, id: &str, value: &str) -> Result<(), StoreError> {
        let mut conn = self.store.connection();
        let _: () = redis::cmd("SET")
            .arg(self.key(id))
            .arg(value)
            .arg("PX")
            .arg(self.ttl_ms())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The record `id`, its idle time started over (one round trip).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn touch(&self, id: &str) -> Result<Option<String>, StoreError> {
        let key = self.key(id);
        let mut conn = self.store.connection();
        let (value, _): (Option<String>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.ttl_ms())
            .query_async(&mut conn)
            .await?;
        Ok(value)
    }

    /// Forgets the record `id`.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.store.connection();
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(id))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
