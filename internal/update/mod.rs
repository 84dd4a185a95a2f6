//! Self-update: validate a candidate binary, drain active root runs (or hand over
//! at once), verify `--version`, back up and atomically replace the executable, and re-exec
//! in place with the listening socket inherited (LISTEN_FDS), so no connection is refused.
//! A watchdog (the previous binary) restores and restarts the previous version if the new
//! image does not come up. State and history persist in `<root>/.conductor/`.

pub mod audit;
pub mod candidate;
pub mod drain;
pub mod error;
pub mod handoff;
pub mod listener;
pub mod manager;
pub mod record;
pub mod swap;
pub mod watchdog;

use std::time::Duration;

pub use error::UpdateError;
pub use manager::{StartRequest, StatusView, UpdateManager};
pub use record::{StateStore, UpdateMode, UpdateRecord, UpdateState};

/// Set for the new image: the state file whose pending hand-over it completes once serving.
pub const PENDING_ENV: &str = "CONDUCTOR_UPDATE_PENDING";
/// How long the new image has to report healthy before the watchdog rolls back.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(30);
/// Overrides [`HEALTH_DEADLINE`] (whole seconds, at least 1) for slow machines.
pub const HEALTH_TIMEOUT_ENV: &str = "CONDUCTOR_UPDATE_HEALTH_TIMEOUT";

/// The health deadline: [`HEALTH_TIMEOUT_ENV`] when set to a positive number, else
/// [`HEALTH_DEADLINE`].
pub fn health_deadline() -> Duration {
    std::env::var(HEALTH_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(HEALTH_DEADLINE, Duration::from_secs)
}
/// The 409 message for root-task starts during a drain.
pub const DRAIN_MESSAGE: &str = "self-update drain in progress";
