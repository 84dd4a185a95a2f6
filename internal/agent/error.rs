//! Why no agent could be selected.

/// An agent name or definition that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No agent of that name or type.
    #[error("unknown agent `{name}`; allowed: {allowed}")]
    Unknown {
        /// The name given.
        name: String,
        /// What would have been accepted.
        allowed: String,
    },
    /// The agent's definition or environment is unusable.
    #[error("{what}: {message}")]
    Invalid {
        /// The config key or agent ("agents.x.command", "agent `x`").
        what: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl AgentError {
    /// An [`AgentError::Invalid`].
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        AgentError::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }
}
