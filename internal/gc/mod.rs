//! Retention and maintenance (`run-agent gc`):
//! delete old finished runs, rotate oversized message buses, prune finished empty tasks.
//!
//! gc is safe beside a live server: each run is judged from its own run-info.yaml when it is
//! looked at, runs whose process is alive are never touched, a deleted directory is renamed
//! aside (hidden) before it is removed, symlinks are never followed, and nothing outside the
//! root is ever deleted. Individual failures are collected and gc goes on.

mod delete_task;
mod error;
mod parallel;
mod policy;
mod remove;
mod report;
mod root;
mod rotate;
mod runs;
mod sweep;
mod tasks;
mod walk;

pub use crate::units::{format_age, format_bytes, parse_age, parse_size, AGE_FORMS, SIZE_FORMS};
pub use delete_task::{delete_task, TaskDeleteError, TaskDeleted};
pub use error::GcError;
pub use policy::{KeepReason, Policy, Verdict};
pub use remove::ASIDE_PREFIX;
pub use report::{
    DeletedRun, DeletedTask, Failure, GcReport, KeptCounts, ProblemRun, RemovedLeftover,
    RotatedBus, RunTotals, StatusCounts,
};
pub use root::{resolve_root, RootSource, DEFAULT_ROOT, ENV_RUNS_DIR};
pub use rotate::{archive_name, BUS_LOCK_TIMEOUT};
pub use sweep::{gc, GcOptions};
