//! Why a peer call failed (spec §5.14): one typed error whose `Display` is the exact text the
//! planner and clients see.

/// Why a peer call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum A2aError {
    /// The peer answered with a JSON-RPC error.
    #[error("{message}")]
    Rpc { code: i64, message: String },
    /// Network failure, HTTP error without JSON-RPC error, bad envelope.
    #[error("transport: {message}")]
    Transport {
        message: String,
        /// Whether a later poll might succeed (network errors, 5xx).
        retryable: bool,
    },
    /// One HTTP request outlived `a2a.request_timeout_ms` (the call budget was not spent); a
    /// later poll may succeed. The text is the contract's (spec §5.14).
    #[error("transport: aborted")]
    RequestTimeout,
    /// The call budget ran out during a request; the call reports it as
    /// [`A2aError::PollExhausted`] with its poll count.
    #[error("transport: call budget spent")]
    BudgetSpent,
    /// The result was neither a Task nor a Message.
    #[error("peer returned invalid Task shape: {0}")]
    InvalidShape(String),
    /// The call budget ran out while the task was still in progress.
    #[error("poll exhausted after {polls} attempts")]
    PollExhausted {
        polls: u32,
        last_state: String,
        budget_ms: u64,
    },
    /// Building auth headers failed.
    #[error("transport: auth: {0}")]
    Auth(String),
    /// The plan deadline fired.
    #[error("plan deadline exceeded")]
    Deadline,
    /// The client went away or the gateway is shutting down.
    #[error("aborted by caller")]
    Aborted,
}

impl A2aError {
    pub(crate) fn transport(message: String, retryable: bool) -> Self {
        Self::Transport { message, retryable }
    }

    /// Whether a later poll of the same task might succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transport {
                retryable: true,
                ..
            } | Self::RequestTimeout
        )
    }

    /// The JSON-RPC code of the failure (spec §5.14).
    #[must_use]
    pub fn code(&self) -> i64 {
        match self {
            Self::Rpc { code, .. } => *code,
            Self::Transport { .. }
            | Self::RequestTimeout
            | Self::BudgetSpent
            | Self::PollExhausted { .. }
            | Self::Auth(_) => -32603,
            Self::InvalidShape(_) => -32006,
            Self::Deadline | Self::Aborted => -32040,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_and_codes() {
        assert_eq!(A2aError::Auth("x".into()).to_string(), "transport: auth: x");
        let e = A2aError::PollExhausted {
            polls: 3,
            last_state: "working".into(),
            budget_ms: 10,
        };
        assert_eq!(e.to_string(), "poll exhausted after 3 attempts");
        assert_eq!(e.code(), -32603);
        assert_eq!(A2aError::Deadline.code(), -32040);
        assert_eq!(A2aError::RequestTimeout.to_string(), "transport: aborted");
        assert!(A2aError::RequestTimeout.is_retryable());
        assert!(!A2aError::BudgetSpent.is_retryable());
    }
}
