//! The supervisor's presence marker: an exclusive `flock` on `<run dir>/supervisor.lock`,
//! held by a run's supervisor for its whole life (the kernel drops it when the supervisor
//! exits, even by SIGKILL). Readers use it to tell "the agent exited and its supervisor is
//! recording the result" from "the run's processes vanished".

use std::fs::File;
use std::path::Path;

use fs2::FileExt;

use super::error::RunnerError;

pub use crate::storage::paths::SUPERVISOR_LOCK_FILE;

/// Takes the supervisor lock of `run_dir`; hold the returned file until the run is recorded.
pub fn hold(run_dir: &Path) -> Result<File, RunnerError> {
    let path = run_dir.join(SUPERVISOR_LOCK_FILE);
    let file = crate::storage::lock::open_lock_file(&path)
        .map_err(|e| RunnerError::io("open", &path, e))?;
    // Blocking: a reader's probe holds a shared lock for an instant.
    file.lock_exclusive()
        .map_err(|e| RunnerError::io("lock", &path, e))?;
    Ok(file)
}

pub use crate::storage::liveness::supervisor_active as active;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_lock_is_seen_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!active(dir.path()));
        let held = hold(dir.path()).unwrap();
        assert!(active(dir.path()));
        drop(held);
        assert!(!active(dir.path()));
    }
}
