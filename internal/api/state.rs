//! Shared server state handed to every handler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::audit::AuditLog;
use super::security::SecurityState;
use crate::config::ServerSettings;
use crate::storage::Root;

/// Immutable facts about this server process plus its settings.
#[derive(Debug)]
pub struct ServerState {
    /// Effective settings (with provenance and any config error).
    pub settings: ServerSettings,
    /// The runs root.
    pub root: Root,
    /// When the server started (monotonic, for uptime).
    pub started: Instant,
    /// When the server started (wall clock).
    pub started_at: DateTime<Utc>,
    /// The running executable and its sha256 (hex), when readable (hashed in the background:
    /// call `executable.start()` once serving).
    pub executable: crate::update::manager::ExecutableDigest,
    /// The audit log of mutations.
    pub audit: AuditLog,
    /// Login sessions and failed-auth counters.
    pub security: SecurityState,
    /// Task loops started by this server.
    pub task_loops: super::task_loops::TaskLoops,
    /// Prometheus metrics.
    pub metrics: Arc<super::metrics::Metrics>,
    /// In-memory index of runs, empty until [`super::index::RunIndex::start`] builds it.
    pub index: Arc<super::index::RunIndex>,
    /// Self-update manager; task starts consult `update.drain_in_progress()`.
    pub update: Arc<crate::update::UpdateManager>,
    /// The URL agents of this server's runs get as `JRUN_CONDUCTOR_URL` (set once bound).
    pub conductor_url: Option<String>,
    /// Set when the server starts shutting down; open event streams end then.
    pub shutdown: super::shutdown::Shutdown,
    /// Which marker files of each task directory are absent (task listings).
    pub task_files: super::task_files::TaskFiles,
}

/// Cheap-to-clone handle used as axum state.
pub type AppState = Arc<ServerState>;

impl ServerState {
    /// Builds the state for `settings`, hashing the running executable.
    pub fn new(settings: ServerSettings) -> Self {
        let root = Root::new(settings.root.value.clone());
        let executable = crate::update::manager::ExecutableDigest::new(executable_digest);
        let update = Arc::new(crate::update::UpdateManager::new(
            root.path(),
            settings.config.storage.extra_roots.clone(),
            executable.clone(),
        ));
        Self {
            update,
            audit: AuditLog::new(root.path()),
            security: SecurityState::default(),
            task_loops: Default::default(),
            metrics: Default::default(),
            index: super::index::RunIndex::new(
                &settings.root.value,
                &settings.config.storage.extra_roots,
            ),
            settings,
            root,
            started: Instant::now(),
            started_at: Utc::now(),
            executable,
            conductor_url: None,
            shutdown: Default::default(),
            task_files: Default::default(),
        }
    }

    /// The state of a server reachable by its agents at `url`.
    pub fn with_conductor_url(mut self, url: String) -> Self {
        self.conductor_url = Some(url);
        self
    }
}

impl ServerState {
    /// True when the server has no API key, listens beyond loopback, and the config does not
    /// allow remote changes without a key: then only loopback clients may mutate.
    pub fn remote_mutations_blocked(&self) -> bool {
        let no_key = !self.settings.auth_enabled || self.settings.api_key.value.is_none();
        no_key
            && !is_loopback_host(&self.settings.host.value)
            && !self.settings.config.api.allow_remote_without_key
    }
}

/// Whether `host` names only the loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Path and sha256 of the running executable (what a self-update swaps).
fn executable_digest() -> Option<(PathBuf, String)> {
    use sha2::{Digest, Sha256};
    let path = crate::runner::exe::current_exe().ok()?;
    let mut file = std::fs::File::open(&path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match std::io::Read::read(&mut file, &mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(_) => return None,
        }
    }
    Some((path, hex::encode(hasher.finalize())))
}
