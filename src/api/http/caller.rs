//! The caller of a request, as the route table's admission settled it before the door runs.

/// Who is calling: everything the request starts belongs to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    owner: String,
}

impl Caller {
    #[must_use]
    pub fn new(owner: String) -> Self {
        Self { owner }
    }

    /// The owner id (the idempotency scope, the owner of tasks, sessions and resumable plans).
    #[must_use]
    pub fn owner(&self) -> &str {
        &self.owner
    }
}
