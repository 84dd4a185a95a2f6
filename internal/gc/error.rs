//! The gc error type: every variant names the path (or argument) and what went wrong.

use std::path::PathBuf;

use crate::storage::lock::LockError;
use crate::storage::StorageError;

/// A gc failure. Failures on single items are collected into the report and gc goes on;
/// only a bad root or project stops it before it starts.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The runs root does not exist.
    #[error("runs root {path} does not exist (pass --root, set RUNS_DIR, or run from the directory holding ./runs)")]
    RootMissing {
        /// The root that was looked for.
        path: PathBuf,
    },
    /// The runs root is not a directory.
    #[error("runs root {path} is not a directory")]
    RootNotDir {
        /// The root.
        path: PathBuf,
    },
    /// `--project` names a project that has no directory under the root.
    #[error("project {project:?} not found under {root} (neither {root}/{project} nor {root}/runs/{project} is a directory)")]
    ProjectNotFound {
        /// The project id.
        project: String,
        /// The runs root.
        root: PathBuf,
    },
    /// An I/O call failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A refused operation that would be unsafe (e.g. through a symlink).
    #[error("refusing to {op} {path}: {reason}")]
    Refused {
        /// What was not done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A bus lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Reading or reconciling a run-info.yaml failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl GcError {
    /// Wraps an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GcError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
