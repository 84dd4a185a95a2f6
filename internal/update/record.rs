//! The persisted self-update state `<root>/.conductor/self-update.json`: current state, the
//! update in flight, the hand-over marker the new image completes, and the history. Written
//! atomically under a lock, so it survives the exec and is readable without a server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::UpdateError;
use crate::storage::atomic::write_atomic;
use crate::storage::lock::lock_exclusive;

/// File name of the state file inside `<root>/.conductor/`.
pub const STATE_FILE: &str = "self-update.json";
/// File name of its lock file.
pub const LOCK_FILE: &str = "self-update.lock";
/// History entries kept (oldest dropped first).
pub const HISTORY_LIMIT: usize = 50;
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The life-cycle state of a self-update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateState {
    /// Nothing in progress.
    #[default]
    Idle,
    /// Accepted; waiting for active root runs to finish.
    Deferred,
    /// Verifying, swapping and re-executing.
    Applying,
    /// The last update failed; the previous binary is serving.
    Failed,
}

impl UpdateState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Idle => "idle",
            UpdateState::Deferred => "deferred",
            UpdateState::Applying => "applying",
            UpdateState::Failed => "failed",
        }
    }

    /// Whether an update is under way (a new one is refused with 409).
    pub fn in_progress(self) -> bool {
        matches!(self, UpdateState::Deferred | UpdateState::Applying)
    }
}

/// How the update waits for work in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UpdateMode {
    /// Wait until no root run is active; refuse new root tasks meanwhile.
    #[default]
    Drain,
    /// Re-exec at once; runs belong to their supervisors and continue.
    Handoff,
}

impl UpdateMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateMode::Drain => "drain",
            UpdateMode::Handoff => "handoff",
        }
    }
}

/// One finished update (applied or failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it finished (RFC3339).
    pub time: String,
    /// Version of the binary that was serving before.
    pub from_version: String,
    /// sha256 of the binary that was serving before.
    pub from_sha256: Option<String>,
    /// `--version` output of the candidate, when it got that far.
    pub to_version: Option<String>,
    /// sha256 of the candidate.
    pub to_sha256: String,
    /// Drain or handoff.
    pub mode: UpdateMode,
    /// `ok` or `failed`.
    pub result: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The candidate path.
    pub candidate: String,
}

/// The hand-over in flight: written just before exec, completed by the new image once it
/// serves, or resolved as failed by the watchdog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Random id of this hand-over.
    pub id: String,
    /// The executable that was replaced.
    pub exe: PathBuf,
    /// The backup of the previous binary.
    pub backup: PathBuf,
    /// The server's argv (re-used when the watchdog restarts the previous binary).
    pub argv: Vec<String>,
    /// The server's pid (kept across exec).
    pub server_pid: u32,
    /// The watchdog's pid.
    pub watchdog_pid: Option<u32>,
    /// Seconds the new image has to report healthy.
    pub deadline_secs: u64,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// Current state.
    pub state: UpdateState,
    /// Mode of the current (or last) update.
    pub mode: Option<UpdateMode>,
    /// Candidate path of the current (or last) update.
    pub candidate: Option<String>,
    /// Candidate sha256.
    pub sha256: Option<String>,
    /// When the current (or last) update was requested.
    pub started_at: Option<String>,
    /// Why the last update failed.
    pub last_error: Option<String>,
    /// `--version` of the candidate, once verified.
    #[serde(default)]
    pub to_version: Option<String>,
    /// Version serving when the update was requested.
    #[serde(default)]
    pub from_version: Option<String>,
    /// sha256 serving when the update was requested.
    #[serde(default)]
    pub from_sha256: Option<String>,
    /// The hand-over in flight.
    #[serde(default)]
    pub pending: Option<Pending>,
    /// Finished updates, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl UpdateRecord {
    /// Ends the current update with `result` (`ok` or `failed`), appending to the history.
    pub fn finish(&mut self, error: Option<String>) {
        let entry = HistoryEntry {
            time: now_text(),
            from_version: self
                .from_version
                .clone()
                .unwrap_or_else(|| crate::version::VERSION.to_string()),
            from_sha256: self.from_sha256.clone(),
            to_version: self.to_version.clone(),
            to_sha256: self.sha256.clone().unwrap_or_default(),
            mode: self.mode.unwrap_or_default(),
            result: if error.is_some() { "failed" } else { "ok" }.to_string(),
            error: error.clone(),
            candidate: self.candidate.clone().unwrap_or_default(),
        };
        self.history.push(entry);
        if self.history.len() > HISTORY_LIMIT {
            let drop = self.history.len() - HISTORY_LIMIT;
            self.history.drain(..drop);
        }
        self.state = if error.is_some() {
            UpdateState::Failed
        } else {
            UpdateState::Idle
        };
        self.last_error = error;
        self.pending = None;
    }
}

/// The current time as RFC3339 with nanoseconds.
pub fn now_text() -> String {
    crate::storage::time::format_rfc3339_nano(&chrono::Utc::now())
}

/// Reads and writes the state file; every change is a locked read-modify-write.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl StateStore {
    /// The store inside `state_dir` (`<root>/.conductor`).
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(STATE_FILE),
            lock_path: state_dir.join(LOCK_FILE),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record on disk; a missing file is the idle default.
    pub fn load(&self) -> Result<UpdateRecord, UpdateError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| UpdateError::State {
                path: self.path.clone(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UpdateRecord::default()),
            Err(e) => Err(UpdateError::io("cannot read", &self.path, e)),
        }
    }

    /// Applies `change` to the record under the lock and saves it; returns the new record and
    /// what `change` returned.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut UpdateRecord) -> T,
    ) -> Result<(UpdateRecord, T), UpdateError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| UpdateError::io("cannot create", dir, e))?;
        }
        let lock = crate::storage::lock::open_lock_file(&self.lock_path)
            .map_err(|e| UpdateError::io("cannot open", &self.lock_path, e))?;
        lock_exclusive(&lock, &self.lock_path, LOCK_TIMEOUT)?;
        let mut record = self.load()?;
        let out = change(&mut record);
        let mut text = serde_json::to_vec_pretty(&record).map_err(|e| UpdateError::State {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        text.push(b'\n');
        write_atomic(&self.path, &text)
            .map_err(|e| UpdateError::io("cannot write", &self.path, e))?;
        drop(lock);
        Ok((record, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_idle_and_updates_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        assert_eq!(store.load().unwrap(), UpdateRecord::default());
        store
            .update(|r| {
                r.state = UpdateState::Applying;
                r.sha256 = Some("ab".into());
                r.mode = Some(UpdateMode::Handoff);
            })
            .unwrap();
        let (record, ()) = store.update(|r| r.finish(Some("boom".into()))).unwrap();
        assert_eq!(record.state, UpdateState::Failed);
        assert_eq!(store.load().unwrap(), record);
        assert_eq!(record.history.len(), 1);
        assert_eq!(record.history[0].result, "failed");
        assert_eq!(record.history[0].mode, UpdateMode::Handoff);
    }

    #[test]
    fn history_is_capped() {
        let mut r = UpdateRecord::default();
        for _ in 0..HISTORY_LIMIT + 5 {
            r.finish(None);
        }
        assert_eq!(r.history.len(), HISTORY_LIMIT);
        assert_eq!(r.state, UpdateState::Idle);
    }

    #[test]
    fn broken_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{nope").unwrap();
        let err = StateStore::new(dir.path()).load().unwrap_err().to_string();
        assert!(err.contains(STATE_FILE), "{err}");
    }
}
