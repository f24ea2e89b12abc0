//! The A2A door's conversations on Redis (`GATEWAY_REDIS_URL`): a caller's `contextId` → its last
//! turns, so a conversation started on one instance continues on any other. One list per context,
//! `plangate:a2a-context:<sha256 of owner and contextId>`, of JSON `{"role","text"}` entries,
//! trimmed to `a2a_server.max_context_turns` and expiring `a2a_server.task_ttl_secs` after its last
//! turn, like the in-memory contexts of a single instance.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::redis::{RedisStore, StoreError};
use super::{hashed_key, millis};

/// One entry of a context: who spoke, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spoken {
    /// `user` or `assistant`.
    pub role: String,
    pub text: String,
}

/// The door's contexts on the shared store.
#[derive(Debug, Clone)]
pub struct SharedContexts {
    store: RedisStore,
    /// Entries kept per context (a turn is two).
    max_entries: usize,
    ttl: Duration,
}

fn key(owner: &str, context_id: &str) -> String {
    hashed_key("a2a-context", &[owner, context_id])
}

impl SharedContexts {
    /// Contexts on `store`, keeping `max_entries` entries each for `ttl` after the last.
    #[must_use]
    pub fn new(store: RedisStore, max_entries: usize, ttl: Duration) -> Self {
        Self {
            store,
            max_entries,
            ttl,
        }
    }

    /// The entries of `owner`'s context, oldest first.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn history(&self, owner: &str, context_id: &str) -> Result<Vec<Spoken>, StoreError> {
        if self.max_entries == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.store.connection();
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(key(owner, context_id))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(entries
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect())
    }

    /// Adds an exchange to `owner`'s context, in one round trip.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn remember(
        &self,
        owner: &str,
        context_id: &str,
        question: &str,
        answer: &str,
    ) -> Result<(), StoreError> {
        if self.max_entries == 0 {
            return Ok(());
        }
        let key = key(owner, context_id);
        let entry = |role: &str, text: &str| {
            serde_json::to_string(&Spoken {
                role: role.to_owned(),
                text: text.to_owned(),
            })
            .unwrap_or_default()
        };
        let keep = i64::try_from(self.max_entries).unwrap_or(i64::MAX);
        let mut conn = self.store.connection();
        let _: () = redis::pipe()
            .cmd("RPUSH")
            .arg(&key)
            .arg(entry("user", question))
            .arg(entry("assistant", answer))
            .ignore()
            .cmd("LTRIM")
            .arg(&key)
            .arg(-keep)
            .arg(-1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(self.ttl))
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
