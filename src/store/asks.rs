//! Plans' questions on Redis (`GATEWAY_REDIS_URL`), so an answer may arrive at any instance:
//! `plangate:asks:<sha256 of the plan id>` is a hash of the plan's `owner` and, per task,
//! `t:<task id>` = `known`, `waiting:<kind>` or `closed`, expiring with the plan's deadline and
//! the retention. An answer on another instance is checked and claimed by one script (the
//! owner, the task, the kind it waits for), which publishes it on [`ANSWER_CHANNEL`]; the plan's
//! instance hands it to the waiting task.

use std::time::Duration;

use serde_json::{Value, json};

use super::redis::{RedisStore, StoreError};
use super::{hashed_key, millis};

/// Where claimed answers are published.
pub const ANSWER_CHANNEL: &str = "plangate:answers";

/// Claims a waiting question: `unknown`, the task's state when it does not wait for this kind,
/// or `claimed` (then the answer is published).
const CLAIM_SCRIPT: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner or owner ~= ARGV[1] then return 'unknown' end
local field = 't:' .. ARGV[2]
local state = redis.call('HGET', KEYS[1], field)
if not state then return 'unknown' end
if state ~= 'waiting:' .. ARGV[3] then return state end
redis.call('HSET', KEYS[1], field, 'closed')
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 'claimed'
";

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// No such plan of this owner, or no such task.
    Unknown,
    /// The task does not wait for this answer; why.
    NotWaiting(String),
}

/// The plans' questions on the shared store.
#[derive(Debug, Clone)]
pub struct SharedAsks {
    store: RedisStore,
}

fn key(plan: &str) -> String {
    hashed_key("asks", &[plan])
}

impl SharedAsks {
    #[must_use]
    pub fn new(store: RedisStore) -> Self {
        Self { store }
    }

    /// Records tasks `tasks` of `owner`'s plan `plan`, kept for `lifetime`.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn known(
        &self,
        owner: &str,
        plan: &str,
        tasks: &[String],
        lifetime: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.store.connection();
        let key = key(plan);
        let mut pipe = redis::pipe();
        pipe.cmd("HSET").arg(&key).arg("owner").arg(owner).ignore();
        for task in tasks {
            pipe.cmd("HSETNX")
                .arg(&key)
                .arg(format!("t:{task}"))
                .arg("known")
                .ignore();
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(millis(lifetime)).ignore();
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Task `task` waits for an answer of `kind`.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn waiting(&self, plan: &str, task: &str, kind: &str) -> Result<(), StoreError> {
        self.set(plan, task, &format!("waiting:{kind}")).await
    }

    /// Task `task`'s question is over.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn close(&self, plan: &str, task: &str) -> Result<(), StoreError> {
        self.set(plan, task, "closed").await
    }

    async fn set(&self, plan: &str, task: &str, state: &str) -> Result<(), StoreError> {
        let mut conn = self.store.connection();
        let _: i64 = redis::cmd("HSET")
            .arg(key(plan))
            .arg(format!("t:{task}"))
            .arg(state)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Claims the question of task `task` of `owner`'s plan `plan` for an answer of `kind`
    /// and publishes `reply` to the plan's instance.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn claim(
        &self,
        owner: &str,
        plan: &str,
        task: &str,
        kind: &str,
        reply: &Value,
    ) -> Result<Claim, StoreError> {
        let mut conn = self.store.connection();
        let message = json!({"plan": plan, "task": task, "reply": reply}).to_string();
        let found: String = redis::cmd("EVAL")
            .arg(CLAIM_SCRIPT)
            .arg(1)
            .arg(key(plan))
            .arg(owner)
            .arg(task)
            .arg(kind)
            .arg(ANSWER_CHANNEL)
            .arg(message)
            .query_async(&mut conn)
            .await?;
        Ok(match found.as_str() {
            "claimed" => Claim::Claimed,
            "unknown" => Claim::Unknown,
            "known" => Claim::NotWaiting("it asks nothing".to_owned()),
            "closed" => Claim::NotWaiting(
                "it was answered, its question timed out, or its plan has ended".to_owned(),
            ),
            other => Claim::NotWaiting(format!(
                "it waits for {}",
                other.strip_prefix("waiting:").unwrap_or(other)
            )),
        })
    }

    /// Listens for claimed answers until `stop`, calling `on_answer(plan, task, reply)`.
    pub async fn listen(
        &self,
        stop: tokio_util::sync::CancellationToken,
        on_answer: impl Fn(&str, &str, &Value) + Send + Sync,
    ) {
        self.store
            .listen(ANSWER_CHANNEL, stop, |payload| {
                let Ok(message) = serde_json::from_str::<Value>(payload) else {
                    return;
                };
                if let (Some(plan), Some(task), Some(reply)) = (
                    message["plan"].as_str(),
                    message["task"].as_str(),
                    message.get("reply"),
                ) {
                    on_answer(plan, task, reply);
                }
            })
            .await;
    }
}
