//! The runner error type: every variant names the file, flag or id involved and what is allowed.

use std::path::PathBuf;

use crate::bus::BusError;
use crate::config::ConfigError;
use crate::storage::{IdError, StorageError};

/// A runner failure.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
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
    /// A run-info or lock problem.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A path below the runs root is reached through a symbolic link.
    #[error(transparent)]
    Confined(#[from] crate::storage::ConfinedError),
    /// A bus append failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The config could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An id failed validation.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The agent cannot be selected (unknown name, unusable definition).
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// A flag or input value is invalid.
    #[error("{what}: {message}")]
    Invalid {
        /// The flag or input ("--prompt", "--timeout", …).
        what: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A process could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `stop` found nothing to stop.
    #[error("{0}")]
    NotRunning(String),
    /// A run could not be recorded because the file system is full (or over quota); the
    /// task loop stops instead of retrying.
    #[error("no space left to record a run under the runs root: {source}; free disk space (or raise the quota) and start the task again")]
    NoSpace {
        /// The failed write.
        source: Box<RunnerError>,
    },
    /// Another Ralph loop of the task is running (it holds the task's loop lock).
    #[error("task {task} of project {project} already has a running task loop (another `run-agent task` or the server holds {}); stop it first (run-agent stop --project {project} --task {task}) or wait for it to end", path.display())]
    LoopRunning {
        /// Project id.
        project: String,
        /// Task id.
        task: String,
        /// The held lock file.
        path: PathBuf,
    },
}

impl RunnerError {
    /// Wraps an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RunnerError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether this failure (or one it wraps) is a full file system: `ENOSPC`, `EDQUOT` or
    /// `EFBIG`.
    pub fn is_storage_full(&self) -> bool {
        if matches!(self, RunnerError::NoSpace { .. }) {
            return true;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = cause {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if is_storage_full_io(io) {
                    return true;
                }
            }
            cause = err.source();
        }
        false
    }

    /// An invalid flag or input.
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        RunnerError::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }
}

/// Whether `err` means the file system is full (`ENOSPC`), over quota (`EDQUOT`) or the file
/// over its size limit (`EFBIG`).
pub fn is_storage_full_io(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    // Wrapped errors (e.g. a temp file's, which adds the path) keep the kind, not the errno.
    matches!(
        err.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    ) || matches!(
        err.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}
