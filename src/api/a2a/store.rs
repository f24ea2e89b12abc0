//! The A2A door's memory: its tasks (for `tasks/get` and `tasks/cancel`) and its conversations
//! (`contextId` → earlier turns). Both are bounded: a task is kept `a2a_server.task_ttl_secs`
//! after it ended and at most `a2a_server.max_tasks` are kept; a context keeps its last
//! `a2a_server.max_context_turns` turns and expires like a task. Everything is scoped by the
//! caller's token: another caller's task is "not found".

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use super::wire::{ArtifactView, Role, TaskView};
use crate::a2a::TaskState;
use crate::config::A2aServerConfig;
use crate::planner::PlanAbort;
use crate::planner::request::{HistoryTurn, Role as TurnRole};

/// One task of the door.
#[derive(Debug)]
pub struct DoorTask {
    pub id: String,
    pub context_id: String,
    /// The caller's scope (hash of its token).
    owner: String,
    data: Mutex<TaskData>,
    /// Bumped after each change of the task by its plan (a caller that answered a question
    /// follows the task this way).
    pub changes: tokio::sync::watch::Sender<u64>,
}

/// A task's changing part.
#[derive(Debug)]
pub struct TaskData {
    pub state: TaskState,
    pub timestamp: String,
    pub status_text: Option<String>,
    /// The answer artifact: id, text, signature.
    pub artifact: Option<(String, String, Option<String>)>,
    /// The plan's files, given with the answer artifact.
    pub files: Vec<crate::a2a::OutgoingFile>,
    /// (role, message id, text), oldest first.
    pub history: Vec<(Role, String, String)>,
    /// When the task reached a terminal state.
    pub ended: Option<Instant>,
    /// The running plan's abort switch (for `tasks/cancel`).
    pub abort: Option<Arc<PlanAbort>>,
    /// The data part of the status message (a waiting question).
    pub status_data: Option<serde_json::Value>,
    /// The question the task waits for (state `input-required`): the plan's id and task id,
    /// and what kind of answer it takes.
    pub question: Option<(String, String, crate::planner::ask::AskKind)>,
}

impl TaskData {
    /// The task as the wire shows it.
    #[must_use]
    pub fn view<'a>(&'a self, task: &'a DoorTask) -> TaskView<'a> {
        TaskView {
            id: &task.id,
            context_id: &task.context_id,
            state: &self.state,
            timestamp: &self.timestamp,
            status_text: self.status_text.as_deref(),
            status_data: self.status_data.as_ref(),
            artifact: self
                .artifact
                .as_ref()
                .map(|(artifact_id, text, signature)| ArtifactView {
                    artifact_id,
                    text,
                    signature: signature.as_deref(),
                    files: &self.files,
                }),
            history: &self.history,
        }
    }

    /// Moves the task to `state` now.
    pub fn set_state(&mut self, state: TaskState) {
        // A task waiting for its caller (`input-required`) has not ended: its plan goes on.
        if state.class() == crate::a2a::wire::StateClass::Terminal && self.ended.is_none() {
            self.ended = Some(Instant::now());
            self.abort = None;
        }
        self.state = state;
        self.timestamp = now();
    }

    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.ended.is_some()
    }
}

impl DoorTask {
    /// The task's data, locked.
    pub fn data(&self) -> MutexGuard<'_, TaskData> {
        self.data
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A conversation: the turns of its completed tasks.
#[derive(Debug)]
struct Context {
    turns: VecDeque<HistoryTurn>,
    last_used: Instant,
}

#[derive(Debug, Default)]
struct Store {
    tasks: HashMap<String, Arc<DoorTask>>,
    contexts: HashMap<(String, String), Context>,
}

/// Why a task cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The client-chosen task id names a task of this caller.
    #[error("Task {0} already exists; send a new message without taskId")]
    Exists(String),
    /// The client-chosen task id names a task of another caller (reported as not found).
    #[error("Task {0} not found")]
    NotFound(String),
    /// Every kept task is still running.
    #[error("too many A2A tasks in flight (a2a_server.max_tasks = {0})")]
    Full(usize),
}

/// The door's tasks and contexts.
#[derive(Debug)]
pub struct TaskStore {
    store: Mutex<Store>,
    config: A2aServerConfig,
}

impl TaskStore {
    #[must_use]
    pub fn new(config: &A2aServerConfig) -> Self {
        Self {
            store: Mutex::new(Store::default()),
            config: config.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new `submitted` task for `owner`, holding the caller's message, and the earlier turns of
    /// its context (for the plan's history).
    ///
    /// # Errors
    /// A client-chosen id that is taken, or a store full of running tasks.
    pub fn create(
        &self,
        owner: &str,
        task_id: Option<String>,
        context_id: String,
        message: (String, String),
    ) -> Result<(Arc<DoorTask>, Vec<HistoryTurn>), CreateError> {
        let mut store = self.lock();
        let now = Instant::now();
        self.purge(&mut store, now);
        let id = match task_id {
            Some(id) => match store.tasks.get(&id) {
                Some(task) if task.owner == owner => return Err(CreateError::Exists(id)),
                Some(_) => return Err(CreateError::NotFound(id)),
                None => id,
            },
            None => uuid::Uuid::new_v4().to_string(),
        };
        if store.tasks.len() >= self.config.max_tasks {
            // Room is made by forgetting the task that ended first.
            let oldest = store
                .tasks
                .values()
                .filter_map(|t| t.data().ended.map(|e| (e, t.id.clone())))
                .min();
            match oldest {
                Some((_, id)) => {
                    store.tasks.remove(&id);
                }
                None => return Err(CreateError::Full(self.config.max_tasks)),
            }
        }
        let history = store
            .contexts
            .get_mut(&(owner.to_owned(), context_id.clone()))
            .map(|c| {
                c.last_used = now;
                c.turns.iter().cloned().collect()
            })
            .unwrap_or_default();
        let (message_id, text) = message;
        let task = Arc::new(DoorTask {
            id: id.clone(),
            context_id,
            owner: owner.to_owned(),
            data: Mutex::new(TaskData {
                state: TaskState::Submitted,
                timestamp: now_rfc3339(),
                status_text: None,
                artifact: None,
                files: Vec::new(),
                history: vec![(Role::User, message_id, text)],
                ended: None,
                abort: None,
                status_data: None,
                question: None,
            }),
            changes: tokio::sync::watch::Sender::new(0),
        });
        store.tasks.insert(id, Arc::clone(&task));
        Ok((task, history))
    }

    /// The task `id` of `owner` (another caller's task is not found).
    #[must_use]
    /// Polls come often: only this task's expiry is checked (`create` purges the rest).
    pub fn get(&self, owner: &str, id: &str) -> Option<Arc<DoorTask>> {
        let mut store = self.lock();
        let task = store.tasks.get(id)?;
        let expired = task
            .data()
            .ended
            .is_some_and(|ended| ended.elapsed() >= self.config.task_ttl);
        if expired {
            store.tasks.remove(id);
            return None;
        }
        Some(task).filter(|t| t.owner == owner).map(Arc::clone)
    }

    /// Remembers a completed exchange in the task's context.
    pub fn remember(&self, task: &DoorTask, question: String, answer: String) {
        if self.config.max_context_turns == 0 {
            return;
        }
        let mut store = self.lock();
        let now = Instant::now();
        let key = (task.owner.clone(), task.context_id.clone());
        if !store.contexts.contains_key(&key) && store.contexts.len() >= self.config.max_tasks {
            let oldest = store
                .contexts
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                store.contexts.remove(&oldest);
            }
        }
        let context = store.contexts.entry(key).or_insert_with(|| Context {
            turns: VecDeque::new(),
            last_used: now,
        });
        context.last_used = now;
        for (role, text) in [(TurnRole::User, question), (TurnRole::Assistant, answer)] {
            context.turns.push_back(HistoryTurn {
                role,
                parts: vec![text],
            });
        }
        while context.turns.len() > self.config.max_context_turns {
            context.turns.pop_front();
        }
    }

    /// Forgets ended tasks and idle contexts older than the retention time.
    fn purge(&self, store: &mut Store, now: Instant) {
        let ttl = self.config.task_ttl;
        store.tasks.retain(|_, t| {
            t.data()
                .ended
                .is_none_or(|ended| now.duration_since(ended) < ttl)
        });
        store
            .contexts
            .retain(|_, c| now.duration_since(c.last_used) < ttl);
    }

    /// Tasks and contexts kept (for leak checks).
    #[must_use]
    pub fn len(&self) -> (usize, usize) {
        let store = self.lock();
        (store.tasks.len(), store.contexts.len())
    }
}

/// RFC 3339 UTC with milliseconds (the A2A timestamp).
#[must_use]
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn now() -> String {
    now_rfc3339()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn store(max_tasks: usize, ttl: Duration) -> TaskStore {
        TaskStore::new(&A2aServerConfig {
            task_ttl: ttl,
            max_tasks,
            max_context_turns: 4,
            max_message_bytes: 1000,
            public_url: None,
        })
    }

    fn message(text: &str) -> (String, String) {
        ("m".to_owned(), text.to_owned())
    }

    #[test]
    fn tasks_belong_to_their_caller() {
        let s = store(10, Duration::from_secs(60));
        let (task, _) = s.create("alice", None, "c".into(), message("q")).unwrap();
        assert!(s.get("alice", &task.id).is_some());
        assert!(s.get("bob", &task.id).is_none());
        // Bob cannot take Alice's id either, and does not learn it exists.
        assert_eq!(
            s.create("bob", Some(task.id.clone()), "c".into(), message("q"))
                .unwrap_err(),
            CreateError::NotFound(task.id.clone())
        );
        assert_eq!(
            s.create("alice", Some(task.id.clone()), "c".into(), message("q"))
                .unwrap_err(),
            CreateError::Exists(task.id.clone())
        );
    }

    #[test]
    fn the_store_is_bounded_and_forgets_ended_tasks_first() {
        let s = store(2, Duration::from_secs(60));
        let (a, _) = s.create("o", None, "c".into(), message("a")).unwrap();
        let (_b, _) = s.create("o", None, "c".into(), message("b")).unwrap();
        assert!(matches!(
            s.create("o", None, "c".into(), message("c")),
            Err(CreateError::Full(2))
        ));
        a.data().set_state(TaskState::Completed);
        let (_c, _) = s.create("o", None, "c".into(), message("c")).unwrap();
        assert!(s.get("o", &a.id).is_none());
        assert_eq!(s.len().0, 2);
    }

    #[test]
    fn ended_tasks_expire_and_contexts_keep_their_last_turns() {
        let s = store(10, Duration::from_millis(30));
        let (a, _) = s.create("o", None, "ctx".into(), message("q1")).unwrap();
        a.data().set_state(TaskState::Completed);
        for i in 0..3 {
            s.remember(&a, format!("q{i}"), format!("a{i}"));
        }
        let (b, history) = s.create("o", None, "ctx".into(), message("q")).unwrap();
        let texts: Vec<&str> = history.iter().map(|t| t.parts[0].as_str()).collect();
        assert_eq!(texts, ["q1", "a1", "q2", "a2"]);
        let (_, other) = s.create("p", None, "ctx".into(), message("q")).unwrap();
        assert!(other.is_empty(), "contexts are per caller");
        std::thread::sleep(Duration::from_millis(50));
        assert!(s.get("o", &a.id).is_none(), "ended and expired");
        assert!(s.get("o", &b.id).is_some(), "still running");
    }
}
