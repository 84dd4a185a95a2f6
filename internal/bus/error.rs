//! The bus error type: every variant names the bus file and what was being done.

use std::path::PathBuf;

use crate::storage::lock::LockError;

/// A message bus failure.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// An I/O call on a bus file failed (open, write, fsync, read, …).
    #[error("cannot {op} message bus {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The bus file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bus path is a symlink; buses are never reached through links.
    #[error("message bus {path} is a symlink; refusing to follow it (use the real file path)")]
    Symlink {
        /// The bus path.
        path: PathBuf,
    },
    /// The bus path exists but is not a regular file.
    #[error("message bus {path} is not a regular file")]
    NotRegularFile {
        /// The bus path.
        path: PathBuf,
    },
    /// Every append attempt timed out waiting for the bus lock; nothing was written.
    #[error("append to message bus {path} failed after {attempts} attempts: {source}")]
    LockTimeout {
        /// The bus file.
        path: PathBuf,
        /// How many attempts were made.
        attempts: u32,
        /// The last lock error.
        source: LockError,
    },
    /// `--since` named a message id the bus does not contain.
    #[error("since id {id:?} not found in message bus {path} (it may have been rotated away)")]
    SinceNotFound {
        /// The unknown message id.
        id: String,
        /// The bus file.
        path: PathBuf,
    },
    /// A message to append is not valid.
    #[error("invalid message {field}: {reason}")]
    InvalidMessage {
        /// The offending field (`type`, `parents`, …).
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

impl BusError {
    /// Wraps an I/O error with the operation and bus path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BusError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
