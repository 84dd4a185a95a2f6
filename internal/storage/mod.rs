//! The run tree on disk: ids and their validation, paths, `run-info.yaml` and its
//! crash-safe writes and locked updates, liveness reconciliation, and scanning.

pub mod atomic;
pub mod audit_log;
pub mod confined;
pub mod error;
pub mod ids;
pub mod live_marker;
pub mod liveness;
pub mod lock;
pub mod paths;
pub mod run_info;
mod run_info_fast;
pub mod scan;
pub mod time;
pub mod usage;
pub mod watch;

pub use confined::ConfinedError;
pub use error::StorageError;
pub use ids::{validate_id, IdError, IdKind, ProjectId, RunId, TaskId};
pub use paths::Root;
pub use run_info::{RunInfo, RunStatus};
pub use usage::{CostSource, Usage, UsageTotals};
