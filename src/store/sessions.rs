//! Conversations kept on the server (`GATEWAY_SESSIONS=on`): each caller's conversations by the
//! client's `session_id`, with the turns so far, the summary older turns were folded into and
//! what each agent remembers (its `contextId`, a task waiting for the user). One plan at a time
//! holds a conversation's lease; the plan's turn is saved, and the lease given back, in one step.
//!
//! Two backends behind one type: this instance's memory (bounded by `sessions.max_bytes`), or
//! Redis when `GATEWAY_REDIS_URL` is set, so any instance continues a conversation:
//!
//! - `plangate:conv:<key>` — the conversation as JSON, expiring `sessions.ttl_secs` after its
//!   last turn;
//! - `plangate:conv-lease:<key>` — the running plan's id, `SET NX PX` for the plan's deadline, so
//!   an instance that dies mid-plan frees the conversation when the lease runs out;
//! - `plangate:convs:<owner key>` — a sorted set of the caller's `session_id`s by last update
//!   (listing, `sessions.max_per_token`).
//!
//! `<key>` is the SHA-256 of owner and `session_id`, so neither a client's id nor a token hash
//! appears in a key name. The store keeps plain data: it does not plan.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::redis::{RedisStore, StoreError};
use super::{hashed_key, millis as ms};

/// Characters of the first question a listing shows.
pub const FIRST_QUESTION_CHARS: usize = 200;

/// One stored conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The gateway's session id of the conversation (its first plan's).
    pub id: String,
    /// The client's `session_id`.
    pub session_id: String,
    /// Unix milliseconds.
    pub created_at: u64,
    pub updated_at: u64,
    /// The first question, cut to [`FIRST_QUESTION_CHARS`].
    pub first_question: String,
    /// What the folded turns said (the planner's compaction summary).
    #[serde(default)]
    pub summary: Option<String>,
    /// Turns folded into the summary so far.
    #[serde(default)]
    pub folded_turns: u64,
    /// The turns kept verbatim, oldest first.
    #[serde(default)]
    pub turns: Vec<Turn>,
    /// What each agent remembers, by agent name.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentMemory>,
}

impl Conversation {
    /// A new conversation `id` of the client's `session_id`, started by `question`.
    #[must_use]
    pub fn new(id: String, session_id: String, question: &str) -> Self {
        let now = now_ms();
        Self {
            id,
            session_id,
            created_at: now,
            updated_at: now,
            first_question: question.chars().take(FIRST_QUESTION_CHARS).collect(),
            summary: None,
            folded_turns: 0,
            turns: Vec::new(),
            agents: BTreeMap::new(),
        }
    }

    /// Every turn so far, folded ones included.
    #[must_use]
    pub fn turn_count(&self) -> u64 {
        self.folded_turns + self.turns.len() as u64
    }
}

/// One plan of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub plan_id: String,
    pub question: String,
    pub answer: String,
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    /// The `final` frame's usage, when the plan had one.
    #[serde(default)]
    pub usage: Option<serde_json::Value>,
    /// How the plan ended: `final`, or the `error` frame's code.
    pub outcome: String,
    /// Unix milliseconds.
    pub started_at: u64,
    pub finished_at: u64,
}

/// One tool call of a turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub agent: String,
    pub skill: String,
    /// `completed` or `failed`, as `task.finished` said.
    pub state: String,
    #[serde(default)]
    pub remote_task_id: Option<String>,
    #[serde(default)]
    pub remote_state: Option<String>,
}

/// What a conversation remembers of one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMemory {
    /// The `contextId` the agent last answered with.
    #[serde(default)]
    pub context_id: Option<String>,
    /// A task the agent left `input-required`.
    #[serde(default)]
    pub waiting_task_id: Option<String>,
    /// The agent's last remote task (the next turn's `referenceTaskIds`).
    #[serde(default)]
    pub last_task_id: Option<String>,
}

/// One line of a caller's conversation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub session_id: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub turns: u64,
    pub first_question: String,
}

/// Why a plan could not take its conversation.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    /// Another plan of the conversation is running.
    #[error("another plan of this session is running")]
    Busy,
    /// The caller keeps `sessions.max_per_token` conversations already.
    #[error("sessions.max_per_token ({0}) reached")]
    TooMany(usize),
    /// The memory backend holds `sessions.max_bytes`.
    #[error("sessions.max_bytes ({0}) reached")]
    Full(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The bounds of the store.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub ttl: Duration,
    pub max_per_token: usize,
    pub max_bytes: usize,
}

/// Where conversations live.
#[derive(Debug)]
pub struct Sessions {
    bounds: Bounds,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Memory(Mutex<Memory>),
    Redis(RedisStore),
}

/// The memory backend: conversations by owner, then `session_id`.
#[derive(Debug, Default)]
struct Memory {
    owners: HashMap<String, HashMap<String, Kept>>,
    bytes: usize,
}

/// A conversation in memory: kept as its JSON text (about a sixth of the memory its parsed form
/// takes, measured with `plangate-bench sessions`, and what `sessions.max_bytes` counts), with
/// what a listing shows beside it.
#[derive(Debug)]
struct Stored {
    json: Box<str>,
    listed: Listed,
}

impl Stored {
    fn parse(&self) -> Option<Conversation> {
        serde_json::from_str(&self.json).ok()
    }
}

#[derive(Debug, Default)]
struct Kept {
    /// `None` while the conversation's first plan runs.
    conversation: Option<Stored>,
    size: usize,
    /// The running plan and when its lease runs out.
    lease: Option<(String, Instant)>,
}

/// Unix milliseconds now.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn conv_key(owner: &str, session_id: &str) -> String {
    hashed_key("conv", &[owner, session_id])
}

fn lease_key(owner: &str, session_id: &str) -> String {
    hashed_key("conv-lease", &[owner, session_id])
}

fn index_key(owner: &str) -> String {
    hashed_key("convs", &[owner])
}

/// Saves a conversation and gives its lease back, only while the saving plan holds the lease (a
/// conversation deleted meanwhile is not brought back).
const SAVE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[1])
return 1
";

/// Gives a lease back if `ARGV[1]` still holds it.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

impl Kept {
    fn expired(&self, ttl: Duration, now: u64) -> bool {
        self.lease
            .as_ref()
            .is_none_or(|(_, until)| *until <= Instant::now())
            && self
                .conversation
                .as_ref()
                .is_none_or(|c| c.listed.updated_at.saturating_add(ms(ttl)) <= now)
    }
}

impl Memory {
    /// Drops expired conversations (and leases of plans long gone).
    fn sweep(&mut self, ttl: Duration) {
        let now = now_ms();
        let mut freed = 0;
        self.owners.retain(|_, convs| {
            convs.retain(|_, kept| {
                let gone = kept.expired(ttl, now);
                if gone {
                    freed += kept.size;
                }
                !gone
            });
            !convs.is_empty()
        });
        self.bytes = self.bytes.saturating_sub(freed);
    }

    fn begin(
        &mut self,
        owner: &str,
        session_id: &str,
        plan_id: &str,
        lease: Duration,
        bounds: Bounds,
    ) -> Result<Option<Conversation>, BeginError> {
        let now = now_ms();
        if let Some(kept) = self.owners.get(owner).and_then(|c| c.get(session_id))
            && kept.expired(bounds.ttl, now)
        {
            self.remove(owner, session_id);
        }
        if self.bytes >= bounds.max_bytes {
            self.sweep(bounds.ttl);
            if self.bytes >= bounds.max_bytes {
                return Err(BeginError::Full(bounds.max_bytes));
            }
        }
        let convs = self.owners.entry(owner.to_owned()).or_default();
        let count = convs.len();
        let kept = match convs.get_mut(session_id) {
            Some(kept) => kept,
            None if count >= bounds.max_per_token => {
                return Err(BeginError::TooMany(bounds.max_per_token));
            }
            None => convs.entry(session_id.to_owned()).or_default(),
        };
        if kept
            .lease
            .as_ref()
            .is_some_and(|(_, until)| *until > Instant::now())
        {
            return Err(BeginError::Busy);
        }
        kept.lease = Some((plan_id.to_owned(), Instant::now() + lease));
        Ok(kept.conversation.as_ref().and_then(Stored::parse))
    }

    fn save(&mut self, owner: &str, conversation: Stored, plan_id: &str, size: usize) {
        let Some(kept) = self
            .owners
            .get_mut(owner)
            .and_then(|c| c.get_mut(&conversation.listed.session_id))
        else {
            return;
        };
        if kept.lease.as_ref().is_none_or(|(p, _)| p != plan_id) {
            return;
        }
        self.bytes = self.bytes.saturating_sub(kept.size).saturating_add(size);
        kept.size = size;
        kept.conversation = Some(conversation);
        kept.lease = None;
    }

    fn release(&mut self, owner: &str, session_id: &str, plan_id: &str) {
        let Some(kept) = self
            .owners
            .get_mut(owner)
            .and_then(|c| c.get_mut(session_id))
        else {
            return;
        };
        if kept.lease.as_ref().is_some_and(|(p, _)| p == plan_id) {
            kept.lease = None;
            if kept.conversation.is_none() {
                self.remove(owner, session_id);
            }
        }
    }

    fn remove(&mut self, owner: &str, session_id: &str) -> bool {
        let Some(convs) = self.owners.get_mut(owner) else {
            return false;
        };
        let Some(kept) = convs.remove(session_id) else {
            return false;
        };
        self.bytes = self.bytes.saturating_sub(kept.size);
        if convs.is_empty() {
            self.owners.remove(owner);
        }
        kept.conversation.is_some()
    }
}

impl Sessions {
    /// Conversations in this instance's memory.
    #[must_use]
    pub fn in_memory(bounds: Bounds) -> Self {
        Self {
            bounds,
            backend: Backend::Memory(Mutex::new(Memory::default())),
        }
    }

    /// Conversations on Redis, shared by every instance.
    #[must_use]
    pub fn on_redis(bounds: Bounds, store: RedisStore) -> Self {
        Self {
            bounds,
            backend: Backend::Redis(store),
        }
    }

    fn memory(m: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the conversation `session_id` of `owner` for plan `plan_id` (a lease of `lease`);
    /// returns what is stored, or `None` for a new conversation.
    ///
    /// # Errors
    /// Another plan holds it, a bound is reached, or the store failed.
    pub async fn begin(
        &self,
        owner: &str,
        session_id: &str,
        plan_id: &str,
        lease: Duration,
    ) -> Result<Option<Conversation>, BeginError> {
        match &self.backend {
            Backend::Memory(m) => {
                Self::memory(m).begin(owner, session_id, plan_id, lease, self.bounds)
            }
            Backend::Redis(store) => {
                self.begin_redis(store, owner, session_id, plan_id, lease)
                    .await
            }
        }
    }

    async fn begin_redis(
        &self,
        store: &RedisStore,
        owner: &str,
        session_id: &str,
        plan_id: &str,
        lease: Duration,
    ) -> Result<Option<Conversation>, BeginError> {
        let mut conn = store.connection();
        // The lease and the conversation in one round trip; what was read counts only when the
        // lease was taken.
        let (set, stored): (Option<String>, Option<String>) = redis::pipe()
            .cmd("SET")
            .arg(lease_key(owner, session_id))
            .arg(plan_id)
            .arg("NX")
            .arg("PX")
            .arg(ms(lease))
            .cmd("GET")
            .arg(conv_key(owner, session_id))
            .query_async(&mut conn)
            .await
            .map_err(StoreError::from)?;
        if set.is_none() {
            return Err(BeginError::Busy);
        }
        let refuse = async |e: BeginError| {
            let _ = self.release(owner, session_id, plan_id).await;
            Err(e)
        };
        if let Some(conversation) = stored.and_then(|s| serde_json::from_str(&s).ok()) {
            return Ok(Some(conversation));
        }
        let index = index_key(owner);
        let counted: Result<(i64, u64), _> = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now_ms().saturating_sub(ms(self.bounds.ttl)))
            .cmd("ZCARD")
            .arg(&index)
            .query_async(&mut conn)
            .await;
        match counted {
            Ok((_, n)) if usize::try_from(n).unwrap_or(usize::MAX) >= self.bounds.max_per_token => {
                refuse(BeginError::TooMany(self.bounds.max_per_token)).await
            }
            Ok(_) => Ok(None),
            Err(e) => refuse(StoreError::from(e).into()).await,
        }
    }

    /// Saves `conversation` (after a turn of plan `plan_id`) and gives the lease back; a
    /// conversation deleted meanwhile stays deleted.
    ///
    /// # Errors
    /// The store failed.
    pub async fn save(
        &self,
        owner: &str,
        conversation: Conversation,
        plan_id: &str,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(&conversation).unwrap_or_default();
        match &self.backend {
            Backend::Memory(m) => {
                let size = json.len() + owner.len() + conversation.session_id.len();
                let stored = Stored {
                    json: json.into_boxed_str(),
                    listed: listed(&conversation),
                };
                Self::memory(m).save(owner, stored, plan_id, size);
                Ok(())
            }
            Backend::Redis(store) => {
                let mut conn = store.connection();
                let _: i64 = redis::cmd("EVAL")
                    .arg(SAVE_SCRIPT)
                    .arg(3)
                    .arg(lease_key(owner, &conversation.session_id))
                    .arg(conv_key(owner, &conversation.session_id))
                    .arg(index_key(owner))
                    .arg(plan_id)
                    .arg(json)
                    .arg(ms(self.bounds.ttl))
                    .arg(&conversation.session_id)
                    .arg(conversation.updated_at)
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            }
        }
    }

    /// Gives the lease of plan `plan_id` back without saving (the plan never ran).
    ///
    /// # Errors
    /// The store failed.
    pub async fn release(
        &self,
        owner: &str,
        session_id: &str,
        plan_id: &str,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(m) => {
                Self::memory(m).release(owner, session_id, plan_id);
                Ok(())
            }
            Backend::Redis(store) => {
                let mut conn = store.connection();
                let _: i64 = redis::cmd("EVAL")
                    .arg(RELEASE_SCRIPT)
                    .arg(1)
                    .arg(lease_key(owner, session_id))
                    .arg(plan_id)
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            }
        }
    }

    /// The conversation `session_id` of `owner`, if kept.
    ///
    /// # Errors
    /// The store failed.
    pub async fn get(
        &self,
        owner: &str,
        session_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        match &self.backend {
            Backend::Memory(m) => {
                let memory = Self::memory(m);
                let now = now_ms();
                Ok(memory
                    .owners
                    .get(owner)
                    .and_then(|c| c.get(session_id))
                    .filter(|k| !k.expired(self.bounds.ttl, now))
                    .and_then(|k| k.conversation.as_ref())
                    .and_then(Stored::parse))
            }
            Backend::Redis(store) => {
                let mut conn = store.connection();
                let stored: Option<String> = redis::cmd("GET")
                    .arg(conv_key(owner, session_id))
                    .query_async(&mut conn)
                    .await?;
                Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
            }
        }
    }

    /// Forgets the conversation `session_id` of `owner` (a running plan of it keeps running,
    /// and its turn is not saved); `false` when there was none.
    ///
    /// # Errors
    /// The store failed.
    pub async fn delete(&self, owner: &str, session_id: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut memory = Self::memory(m);
                let now = now_ms();
                let live = memory
                    .owners
                    .get(owner)
                    .and_then(|c| c.get(session_id))
                    .is_some_and(|k| !k.expired(self.bounds.ttl, now));
                Ok(memory.remove(owner, session_id) && live)
            }
            Backend::Redis(store) => {
                let mut conn = store.connection();
                let (deleted, _, _): (i64, i64, i64) = redis::pipe()
                    .cmd("DEL")
                    .arg(conv_key(owner, session_id))
                    .cmd("DEL")
                    .arg(lease_key(owner, session_id))
                    .cmd("ZREM")
                    .arg(index_key(owner))
                    .arg(session_id)
                    .query_async(&mut conn)
                    .await?;
                Ok(deleted > 0)
            }
        }
    }

    /// `owner`'s conversations last updated before `before` (unix ms), newest first, at most
    /// `limit`.
    ///
    /// # Errors
    /// The store failed.
    pub async fn list(
        &self,
        owner: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Listed>, StoreError> {
        let before = before.unwrap_or(u64::MAX);
        match &self.backend {
            Backend::Memory(m) => {
                let memory = Self::memory(m);
                let now = now_ms();
                let mut listed: Vec<Listed> = memory
                    .owners
                    .get(owner)
                    .into_iter()
                    .flat_map(HashMap::values)
                    .filter(|k| !k.expired(self.bounds.ttl, now))
                    .filter_map(|k| k.conversation.as_ref())
                    .filter(|c| c.listed.updated_at < before)
                    .map(|c| c.listed.clone())
                    .collect();
                listed.sort_by(|a, b| {
                    b.updated_at
                        .cmp(&a.updated_at)
                        .then_with(|| a.session_id.cmp(&b.session_id))
                });
                listed.truncate(limit);
                Ok(listed)
            }
            Backend::Redis(store) => self.list_redis(store, owner, before, limit).await,
        }
    }

    async fn list_redis(
        &self,
        store: &RedisStore,
        owner: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Listed>, StoreError> {
        let mut conn = store.connection();
        let index = index_key(owner);
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(format!("({before}"))
            .arg(now_ms().saturating_sub(ms(self.bounds.ttl)))
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut get = redis::cmd("MGET");
        for id in &ids {
            get.arg(conv_key(owner, id));
        }
        let stored: Vec<Option<String>> = get.query_async(&mut conn).await?;
        Ok(stored
            .into_iter()
            .flatten()
            .filter_map(|s| serde_json::from_str::<Conversation>(&s).ok())
            .map(|c| listed(&c))
            .collect())
    }

    /// Bytes of conversations kept in this instance's memory (0 on Redis).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        match &self.backend {
            Backend::Memory(m) => Self::memory(m).bytes,
            Backend::Redis(_) => 0,
        }
    }
}

fn listed(c: &Conversation) -> Listed {
    Listed {
        session_id: c.session_id.clone(),
        created_at: c.created_at,
        updated_at: c.updated_at,
        turns: c.turn_count(),
        first_question: c.first_question.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            ttl: Duration::from_secs(60),
            max_per_token: 2,
            max_bytes: 1 << 20,
        }
    }

    #[tokio::test]
    async fn one_plan_at_a_time_and_a_saved_turn_frees_the_conversation() {
        let s = Sessions::in_memory(bounds());
        let lease = Duration::from_secs(5);
        assert_eq!(s.begin("a", "s1", "p1", lease).await.unwrap(), None);
        assert!(matches!(
            s.begin("a", "s1", "p2", lease).await,
            Err(BeginError::Busy)
        ));
        // Another owner with the same id has its own conversation.
        assert_eq!(s.begin("b", "s1", "p3", lease).await.unwrap(), None);
        let mut c = Conversation::new("g1".into(), "s1".into(), "hello");
        c.turns.push(Turn {
            plan_id: "p1".into(),
            question: "hello".into(),
            answer: "hi".into(),
            calls: Vec::new(),
            usage: None,
            outcome: "final".into(),
            started_at: 1,
            finished_at: 2,
        });
        s.save("a", c.clone(), "p1").await.unwrap();
        assert!(s.memory_bytes() > 0);
        assert_eq!(s.begin("a", "s1", "p4", lease).await.unwrap(), Some(c));
        assert!(s.get("b", "s1").await.unwrap().is_none());
        // A third conversation of `a` passes max_per_token (2) only once one is gone.
        assert_eq!(s.begin("a", "s2", "p5", lease).await.unwrap(), None);
        assert!(matches!(
            s.begin("a", "s3", "p6", lease).await,
            Err(BeginError::TooMany(2))
        ));
        s.release("a", "s2", "p5").await.unwrap();
        assert_eq!(s.begin("a", "s3", "p6", lease).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_deleted_conversation_is_not_brought_back_by_its_running_plan() {
        let s = Sessions::in_memory(bounds());
        let lease = Duration::from_secs(5);
        s.begin("a", "s1", "p1", lease).await.unwrap();
        s.save("a", Conversation::new("g".into(), "s1".into(), "q"), "p1")
            .await
            .unwrap();
        s.begin("a", "s1", "p2", lease).await.unwrap();
        assert!(s.delete("a", "s1").await.unwrap());
        s.save("a", Conversation::new("g".into(), "s1".into(), "q"), "p2")
            .await
            .unwrap();
        assert!(s.get("a", "s1").await.unwrap().is_none());
        assert_eq!(s.memory_bytes(), 0);
    }

    #[tokio::test]
    async fn the_byte_bound_refuses_new_turns() {
        let s = Sessions::in_memory(Bounds {
            max_bytes: 10,
            ..bounds()
        });
        let lease = Duration::from_secs(5);
        s.begin("a", "s1", "p1", lease).await.unwrap();
        s.save("a", Conversation::new("g".into(), "s1".into(), "q"), "p1")
            .await
            .unwrap();
        assert!(matches!(
            s.begin("a", "s2", "p2", lease).await,
            Err(BeginError::Full(10))
        ));
    }
}
