//! Errors of the self-update machinery. Each names the file or value involved and what was
//! expected.

use std::path::PathBuf;

/// Why a self-update step failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The candidate is unusable (the request is answered 400).
    #[error("{0}")]
    Candidate(String),
    /// An update is already deferred or applying (answered 409).
    #[error("a self-update is already in progress (state {state}); wait for it to finish")]
    InProgress {
        /// The current state.
        state: &'static str,
    },
    /// This process cannot self-update (answered 400 with the reason).
    #[error("this server cannot self-update: {0}")]
    Unsupported(String),
    /// The update ended (was interrupted) before the worker got to apply it.
    #[error("the self-update was cancelled")]
    Cancelled,
    /// The candidate failed its `--version` check.
    #[error("candidate {path} failed its --version check: {reason}")]
    Verify {
        /// The candidate.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`cannot read`, `cannot rename over`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The persisted state file does not parse.
    #[error("cannot parse the self-update state {path}: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
    /// The state lock could not be taken.
    #[error(transparent)]
    Lock(#[from] crate::storage::lock::LockError),
    /// The inherited listening socket (LISTEN_FDS) is unusable.
    #[error("inherited socket (LISTEN_FDS): {0}")]
    Inherit(String),
    /// exec of the new image failed.
    #[error("cannot exec {path}: {source}")]
    Exec {
        /// The executable.
        path: PathBuf,
        /// The errno.
        source: nix::errno::Errno,
    },
}

impl UpdateError {
    /// Shorthand for an [`UpdateError::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        UpdateError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
