//! The storage error type: every variant names the path and what was being done.

use std::path::PathBuf;

use super::ids::IdError;
use super::lock::LockError;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O call failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create directory", …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A run-info.yaml does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key when known.
        message: String,
    },
    /// A lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// An id failed validation.
    #[error(transparent)]
    Id(#[from] IdError),
}

impl StorageError {
    /// Wraps an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
