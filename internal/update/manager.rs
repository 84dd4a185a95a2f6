//! The update manager held in the server state: accepts requests, runs the drain/apply
//! worker, persists every state change, and hands the plan for the exec to the serve loop.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::audit::{Requester, UpdateAudit};
use super::candidate::{check_version, validate, VERSION_TIMEOUT};
use super::drain::active_root_runs;
use super::error::UpdateError;
use super::handoff::place_at_fd3;
use super::record::{HistoryEntry, Pending, StateStore, UpdateMode, UpdateRecord, UpdateState};
use super::swap::{self, KEEP_BACKUPS};
use super::{health_deadline, PENDING_ENV};
use crate::limit::TokenBucket;
use crate::process::wait::reap_within;

/// How often a deferred update re-counts active root runs.
pub const DRAIN_POLL: Duration = Duration::from_secs(1);
/// Update requests allowed in a burst.
const UPDATE_BURST: u32 = 6;
/// One more update request is allowed per this interval.
const UPDATE_INTERVAL: Duration = Duration::from_secs(2);

/// Counts work in progress that files do not show (e.g. task loops run by the server).
pub type ActiveCounter = Arc<dyn Fn() -> usize + Send + Sync>;

/// What the serve loop tells the manager about itself (needed to spawn the watchdog).
#[derive(Clone)]
pub struct ServeContext {
    /// The server's argv, re-used for the exec.
    pub argv: Vec<OsString>,
    /// A descriptor of the listening socket that stays open for the process lifetime.
    pub listener_fd: RawFd,
    /// Arguments that select the watchdog command of this binary (e.g. `server update watchdog`).
    pub watchdog_args: Vec<String>,
    /// Task loops of this server that have not ended; a drain waits for them too, so a loop
    /// is not cut between two runs.
    pub active_loops: ActiveCounter,
}

impl std::fmt::Debug for ServeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeContext")
            .field("argv", &self.argv)
            .field("listener_fd", &self.listener_fd)
            .field("watchdog_args", &self.watchdog_args)
            .finish_non_exhaustive()
    }
}

/// The exec the serve loop performs once it has stopped accepting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The (already replaced) executable to exec.
    pub exe: PathBuf,
    /// The backup of the previous binary (restored if the exec fails).
    pub backup: PathBuf,
    /// The pending hand-over id.
    pub id: String,
    /// The watchdog's pid.
    pub watchdog_pid: Option<u32>,
}

/// A validated request to update.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Absolute path of the candidate binary.
    pub binary_path: PathBuf,
    /// Expected sha256 (hex).
    pub sha256: Option<String>,
    /// Drain (default) or handoff.
    pub mode: UpdateMode,
}

/// The answer of `GET /api/v1/admin/self-update` and of the offline status.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StatusView {
    /// `idle`, `deferred`, `applying` or `failed`.
    #[schema(value_type = String, example = "idle")]
    pub state: UpdateState,
    /// Mode of the current (or last) update.
    #[schema(value_type = Option<String>, example = "drain")]
    pub mode: Option<UpdateMode>,
    /// Candidate path.
    pub candidate: Option<String>,
    /// Candidate sha256.
    pub sha256: Option<String>,
    /// Root runs still active (what a drain waits for).
    pub active_root_runs: usize,
    /// When the current (or last) update was requested.
    pub started_at: Option<String>,
    /// Why the last update failed.
    pub last_error: Option<String>,
    /// `--version` of the candidate once verified.
    pub to_version: Option<String>,
    /// Finished updates, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<HistoryEntry>,
}

impl StatusView {
    /// Builds the view from a record and a live count of active root runs.
    pub fn new(record: UpdateRecord, active_root_runs: usize) -> Self {
        Self {
            state: record.state,
            mode: record.mode,
            candidate: record.candidate,
            sha256: record.sha256,
            active_root_runs,
            started_at: record.started_at,
            last_error: record.last_error,
            to_version: record.to_version,
            history: record.history,
        }
    }
}

/// Owns the self-update of one server process.
/// The running executable and its sha256 (hex), hashed once: on a background thread started
/// with the server (hashing a 10 MB binary would otherwise delay its first answer), or by the
/// first reader that needs it before that thread is done (it then waits for the hash).
#[derive(Debug, Clone)]
pub struct ExecutableDigest {
    cell: Arc<OnceLock<Option<(PathBuf, String)>>>,
    compute: fn() -> Option<(PathBuf, String)>,
}

/// How many nice levels the background hashing thread steps down (it should not delay the first
/// answers).
const DIGEST_NICE: i32 = 10;

impl ExecutableDigest {
    /// A digest computed by `compute` when first needed.
    pub fn new(compute: fn() -> Option<(PathBuf, String)>) -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
            compute,
        }
    }

    /// Computes the digest on a background thread now.
    pub fn start(&self) {
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("exe-digest".into())
            .spawn(move || {
                // Behind the server's own start and requests: a lower priority for this
                // thread only (Linux keeps a nice value per thread).
                crate::process::lower_thread_priority(DIGEST_NICE);
                this.get();
            });
        if let Err(err) = spawned {
            tracing::warn!("cannot hash the executable in the background ({err}); on first use");
        }
    }

    /// The path and sha256, computing them if no one has yet.
    pub fn get(&self) -> Option<(PathBuf, String)> {
        self.cell.get_or_init(self.compute).clone()
    }

    /// The path and sha256 if they have been computed, without waiting: `None` while the
    /// background hash is still running, `Some(None)` when the executable is unreadable.
    pub fn try_get(&self) -> Option<Option<(PathBuf, String)>> {
        self.cell.get().cloned()
    }
}

#[derive(Debug)]
pub struct UpdateManager {
    root: PathBuf,
    extra_roots: Vec<PathBuf>,
    store: StateStore,
    audit: UpdateAudit,
    executable: ExecutableDigest,
    cache: Mutex<UpdateRecord>,
    /// The state file's identity when `cache` was last loaded from it (`Some(None)`: absent).
    cache_stamp: Mutex<Option<Option<FileStamp>>>,
    limiter: Mutex<TokenBucket>,
    serve: OnceLock<ServeContext>,
    handoff: watch::Sender<Option<Handoff>>,
    /// Held while the executable is swapped and the watchdog started; true once the server
    /// is shutting down (then no swap starts).
    swapping: Mutex<bool>,
}

impl UpdateManager {
    /// The manager of a server on `root` running `executable` (path, sha256). Reads the
    /// persisted state; starts nothing.
    pub fn new(root: &Path, extra_roots: Vec<PathBuf>, executable: ExecutableDigest) -> Self {
        let store = StateStore::new(&root.join(crate::storage::paths::CONDUCTOR_STATE_DIR));
        let record = store.load().unwrap_or_else(|err| {
            tracing::error!("{err}; self-update status starts from idle");
            UpdateRecord::default()
        });
        Self {
            root: root.to_path_buf(),
            extra_roots,
            store,
            audit: UpdateAudit::new(root),
            executable,
            cache: Mutex::new(record),
            cache_stamp: Mutex::new(None),
            limiter: Mutex::new(TokenBucket::new(UPDATE_BURST, UPDATE_INTERVAL)),
            serve: OnceLock::new(),
            handoff: watch::channel(None).0,
            swapping: Mutex::new(false),
        }
    }

    /// True while a drain-mode update is deferred or applying: new root tasks must then be
    /// refused with 409 [`super::DRAIN_MESSAGE`].
    pub fn drain_in_progress(&self) -> bool {
        let record = self.lock_cache();
        record.state.in_progress() && record.mode.unwrap_or_default() == UpdateMode::Drain
    }

    /// The state file.
    pub fn state_file(&self) -> &Path {
        self.store.path()
    }

    /// The current status, read from disk (other processes may have written it), with a live
    /// count of active root runs. Blocking.
    pub fn status(&self) -> Result<StatusView, UpdateError> {
        let record = self.store.load()?;
        *self.lock_cache() = record.clone();
        Ok(StatusView::new(record, self.active_work()))
    }

    /// The record as last read or written by this process, re-read only when the state file
    /// changed on disk since (another process, e.g. the watchdog, wrote it): one `stat`, no scan
    /// of runs. For cheap, frequently polled views (`GET /api/v1/status`).
    pub fn record_cached(&self) -> Result<UpdateRecord, UpdateError> {
        let seen = std::fs::metadata(self.store.path())
            .ok()
            .map(|m| file_stamp(&m));
        let mut known = self.cache_stamp.lock().unwrap_or_else(|p| p.into_inner());
        if *known != Some(seen) {
            let record = self.store.load()?;
            *self.lock_cache() = record;
            *known = Some(seen);
        }
        drop(known);
        Ok(self.lock_cache().clone())
    }

    /// Takes a rate-limit token for an update request; `Err(seconds)` to wait.
    pub fn rate_limit(&self) -> Result<(), u64> {
        self.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(Instant::now())
    }

    /// Registers the serve loop; without it the server refuses updates.
    pub fn attach(&self, ctx: ServeContext) {
        if self.serve.set(ctx).is_err() {
            tracing::warn!("self-update: serve loop registered twice; keeping the first");
        }
    }

    /// Receives the hand-over plan once an update is ready to exec.
    pub fn subscribe(&self) -> watch::Receiver<Option<Handoff>> {
        self.handoff.subscribe()
    }

    /// Audits an event with the given requester.
    pub fn audit(&self, who: &Requester, action: &str, result: &str, detail: Option<&str>) {
        self.audit.event(
            who,
            action,
            &self.store.path().display().to_string(),
            result,
            detail,
        );
    }

    /// Validates and accepts an update; the worker then drains and applies it. Blocking
    /// (hashes the candidate).
    pub fn start(
        self: &Arc<Self>,
        request: StartRequest,
        who: Requester,
    ) -> Result<StatusView, UpdateError> {
        if self.serve.get().is_none() {
            return Err(UpdateError::Unsupported(
                "it was not started by `serve`".to_string(),
            ));
        }
        let Some((exe, from_sha)) = self.executable.get() else {
            return Err(UpdateError::Unsupported(
                "the running executable cannot be read".to_string(),
            ));
        };
        if !exe.is_file() {
            return Err(UpdateError::Unsupported(format!(
                "its executable {} no longer exists",
                exe.display()
            )));
        }
        let dir = exe.parent().unwrap_or(Path::new("/"));
        if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
            return Err(UpdateError::Unsupported(format!(
                "the directory of its executable {} is not writable by the server, so the \
                 binary cannot be replaced there",
                exe.display()
            )));
        }
        let current = self.lock_cache().state;
        if current.in_progress() {
            return Err(UpdateError::InProgress {
                state: current.as_str(),
            });
        }
        let sha256 = validate(&request.binary_path, request.sha256.as_deref())?;
        let active = match request.mode {
            UpdateMode::Drain => self.active_work(),
            UpdateMode::Handoff => 0,
        };
        let next = if active > 0 {
            UpdateState::Deferred
        } else {
            UpdateState::Applying
        };
        let (record, accepted) = self.store.update(|r| {
            if r.state.in_progress() {
                return Err(UpdateError::InProgress {
                    state: r.state.as_str(),
                });
            }
            r.state = next;
            r.mode = Some(request.mode);
            r.candidate = Some(request.binary_path.display().to_string());
            r.sha256 = Some(sha256.clone());
            r.started_at = Some(super::record::now_text());
            r.last_error = None;
            r.to_version = None;
            r.from_version = Some(crate::version::VERSION.to_string());
            r.from_sha256 = Some(from_sha.clone());
            r.pending = None;
            Ok(())
        })?;
        accepted?;
        *self.lock_cache() = record.clone();
        self.audit(
            &who,
            "accepted",
            "ok",
            Some(&format!(
                "candidate {} sha256 {sha256} mode {} from {}",
                request.binary_path.display(),
                request.mode.as_str(),
                exe.display()
            )),
        );
        self.audit(&who, next.as_str(), "ok", None);
        tracing::info!(
            candidate = %request.binary_path.display(),
            mode = request.mode.as_str(),
            active_root_runs = active,
            "self-update accepted ({})",
            next.as_str()
        );
        let manager = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("self-update".to_string())
            .spawn(move || manager.worker(who));
        if let Err(e) = spawned {
            let error = format!("cannot start the self-update worker: {e}");
            let _ = self.set(|r| r.finish(Some(error.clone())));
            return Err(UpdateError::Unsupported(error));
        }
        Ok(StatusView::new(record, active))
    }

    fn worker(&self, who: Requester) {
        let mode = self.lock_cache().mode.unwrap_or_default();
        if mode == UpdateMode::Drain {
            loop {
                let active = self.active_work();
                if active == 0 {
                    break;
                }
                match self.advance(&who, UpdateState::Deferred) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!("self-update ended while deferred; worker stops");
                        return;
                    }
                    Err(e) => tracing::error!("self-update: {e}"),
                }
                tracing::debug!(active, "self-update deferred: root runs still active");
                std::thread::sleep(DRAIN_POLL);
            }
        }
        match self.apply(&who) {
            Err(UpdateError::Cancelled) => {
                tracing::info!("self-update ended before it was applied; worker stops");
            }
            Ok(plan) => {
                tracing::info!(exe = %plan.exe.display(), "self-update staged; handing over");
                self.audit(&who, "handoff", "ok", Some(&plan.exe.display().to_string()));
                self.handoff.send_replace(Some(plan));
            }
            Err(err) => {
                let message = err.to_string();
                tracing::error!("self-update failed: {message}");
                if let Err(e) = self.set(|r| r.finish(Some(message.clone()))) {
                    tracing::error!("self-update: {e}");
                }
                self.audit(&who, "failed", "failed", Some(&message));
            }
        }
    }

    fn apply(&self, who: &Requester) -> Result<Handoff, UpdateError> {
        let ctx = self
            .serve
            .get()
            .ok_or_else(|| UpdateError::Unsupported("no serve loop".to_string()))?;
        let (exe, from_sha) = self
            .executable
            .get()
            .ok_or_else(|| UpdateError::Unsupported("no executable".to_string()))?;
        if !self.advance(who, UpdateState::Applying)? {
            return Err(UpdateError::Cancelled);
        }
        let record = self.lock_cache().clone();
        let candidate = PathBuf::from(record.candidate.clone().unwrap_or_default());
        let sha256 = record.sha256.clone().unwrap_or_default();
        let version = check_version(&candidate, VERSION_TIMEOUT)?;
        self.set(|r| r.to_version = Some(version.clone()))?;
        let shutting_down = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        if *shutting_down {
            return Err(UpdateError::Unsupported(
                "the server is shutting down".to_string(),
            ));
        }
        let ts = swap::file_timestamp();
        let backup = swap::backup(&exe, &ts)?;
        if let Err(err) = swap::install(&candidate, &exe, &ts, &sha256) {
            restore_if_replaced(&backup, &exe, &from_sha);
            return Err(err);
        }
        let mut watchdog = None;
        let staged = (|| -> Result<Handoff, UpdateError> {
            for old in swap::prune_backups(&exe, KEEP_BACKUPS) {
                tracing::info!(path = %old.display(), "deleted old self-update backup");
            }
            let id = format!("{:016x}", fastrand::u64(..));
            let pending = Pending {
                id: id.clone(),
                exe: exe.clone(),
                backup: backup.clone(),
                argv: ctx
                    .argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                server_pid: std::process::id(),
                watchdog_pid: None,
                deadline_secs: health_deadline().as_secs(),
            };
            self.set(|r| r.pending = Some(pending))?;
            let pid = spawn_watchdog(&backup, ctx, self.store.path(), &id)?;
            watchdog = Some(pid);
            self.set(|r| {
                if let Some(p) = r.pending.as_mut() {
                    p.watchdog_pid = Some(pid);
                }
            })?;
            Ok(Handoff {
                exe: exe.clone(),
                backup: backup.clone(),
                id,
                watchdog_pid: Some(pid),
            })
        })();
        drop(shutting_down);
        if staged.is_err() {
            if let Err(e) = swap::restore(&backup, &exe) {
                tracing::error!("self-update: cannot restore {}: {e}", exe.display());
            }
            // finish() below clears the pending record; the watchdog then exits on its own.
            if let Some(pid) = watchdog {
                reap_within(pid, Duration::from_secs(3));
            }
        }
        staged
    }

    /// Completes the hand-over on start-up of the new image (`marker` is the
    /// [`PENDING_ENV`] value it was started with), or marks an update that a restart
    /// interrupted as failed. Returns the watchdog to reap, if any.
    pub fn on_start(&self, marker: Option<OsString>) -> Option<u32> {
        let me = std::process::id();
        let outcome = self.set_with(|r| match (&r.pending, &marker) {
            (Some(p), Some(_)) if p.server_pid == me => {
                let watchdog = p.watchdog_pid;
                let my_sha = self.executable.get().map(|(_, s)| s);
                if r.sha256 == my_sha {
                    r.finish(None);
                    (Some("applied"), watchdog)
                } else {
                    r.finish(Some(format!(
                        "the new image's sha256 {} differs from the candidate's {}",
                        my_sha.clone().unwrap_or_default(),
                        r.sha256.clone().unwrap_or_default()
                    )));
                    (Some("failed"), watchdog)
                }
            }
            (None, _) if r.state.in_progress() => {
                r.finish(Some(
                    "interrupted: the server restarted before the update finished".to_string(),
                ));
                (Some("interrupted"), None)
            }
            _ => (None, None),
        });
        match outcome {
            Ok((Some(action), watchdog)) => {
                let result = if action == "applied" { "ok" } else { "failed" };
                let detail = self.lock_cache().last_error.clone();
                self.audit(&Requester::server(), action, result, detail.as_deref());
                tracing::info!("self-update {action}");
                watchdog
            }
            Ok((None, _)) => None,
            Err(err) => {
                tracing::error!("self-update: cannot complete the hand-over: {err}");
                None
            }
        }
    }

    /// Called when the server stops on a signal: no swap starts any more, an update in
    /// progress is recorded as interrupted, and a staged hand-over is undone (the backup is
    /// restored; the watchdog sees the hand-over resolved and exits without restarting
    /// anything).
    pub fn begin_shutdown(&self) {
        let mut shutting_down = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        *shutting_down = true;
        let me = std::process::id();
        let undone = self.set_with(|r| match r.pending.clone() {
            Some(p) if p.server_pid == me => {
                r.finish(Some(
                    "interrupted: the server was stopped during the hand-over; previous binary \
                     restored"
                        .to_string(),
                ));
                Some(p)
            }
            _ if r.state.in_progress() => {
                r.finish(Some(
                    "interrupted: the server was stopped before the update was applied".to_string(),
                ));
                None
            }
            _ => None,
        });
        match undone {
            Ok(Some(pending)) => {
                if let Err(e) = swap::restore(&pending.backup, &pending.exe) {
                    tracing::error!("self-update: cannot restore {}: {e}", pending.exe.display());
                }
                self.audit(&Requester::server(), "interrupted", "failed", None);
            }
            Ok(None) => {}
            Err(e) => tracing::error!("self-update: {e}"),
        }
    }

    /// After a failed exec of the new image: restore the backup and record the failure.
    pub fn exec_failed(&self, plan: &Handoff, error: &UpdateError) {
        let restored = swap::restore(&plan.backup, &plan.exe);
        let message = match &restored {
            Ok(()) => format!("exec of the new image failed: {error}; previous binary restored"),
            Err(e) => format!("exec of the new image failed: {error}; restore failed too: {e}"),
        };
        tracing::error!("self-update: {message}");
        if let Err(e) = self.set(|r| r.finish(Some(message.clone()))) {
            tracing::error!("self-update: {e}");
        }
        self.audit(&Requester::server(), "failed", "failed", Some(&message));
        if let Some(pid) = plan.watchdog_pid {
            reap_within(pid, Duration::from_secs(3));
        }
    }

    /// Moves an update still in progress to `next` (audited when it changes); `false` when
    /// the update already ended (e.g. the server is stopping).
    fn advance(&self, who: &Requester, next: UpdateState) -> Result<bool, UpdateError> {
        let (going, changed) = self.set_with(|r| {
            if !r.state.in_progress() {
                return (false, false);
            }
            let changed = r.state != next;
            r.state = next;
            (true, changed)
        })?;
        if changed {
            self.audit(who, next.as_str(), "ok", None);
        }
        Ok(going)
    }

    fn set(&self, change: impl FnOnce(&mut UpdateRecord)) -> Result<UpdateRecord, UpdateError> {
        self.set_with(change).map(|()| self.lock_cache().clone())
    }

    fn set_with<T>(&self, change: impl FnOnce(&mut UpdateRecord) -> T) -> Result<T, UpdateError> {
        let (record, out) = self.store.update(change)?;
        *self.lock_cache() = record;
        Ok(out)
    }

    /// Active root runs, or the server's unfinished task loops when that is more.
    pub fn active_work(&self) -> usize {
        let runs = active_root_runs(&self.root, &self.extra_roots);
        let loops = self.serve.get().map(|c| (c.active_loops)()).unwrap_or(0);
        runs.max(loops)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, UpdateRecord> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Requester {
    /// Events the server records on its own (start-up completion, exec failure).
    pub fn server() -> Self {
        Self {
            client: "server".to_string(),
            key_fingerprint: "none".to_string(),
            request_id: String::new(),
        }
    }
}

/// What identifies a version of the state file: inode, size, mtime (ns).
type FileStamp = (u64, u64, i64);

fn file_stamp(meta: &std::fs::Metadata) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    (
        meta.ino(),
        meta.size(),
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    )
}

fn restore_if_replaced(backup: &Path, exe: &Path, from_sha: &str) {
    let replaced = super::candidate::sha256_file(exe)
        .map(|sum| sum != from_sha)
        .unwrap_or(true);
    if replaced {
        if let Err(e) = swap::restore(backup, exe) {
            tracing::error!("self-update: cannot restore {}: {e}", exe.display());
        }
    }
}

/// Starts the previous binary (`backup`) as the watchdog of hand-over `id`, with the
/// listening socket at fd 3 so it can restart the previous binary on it.
fn spawn_watchdog(
    backup: &Path,
    ctx: &ServeContext,
    state_file: &Path,
    id: &str,
) -> Result<u32, UpdateError> {
    let fd = ctx.listener_fd;
    let mut cmd = Command::new(backup);
    cmd.args(&ctx.watchdog_args)
        .arg("--state")
        .arg(state_file)
        .arg("--id")
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env_remove(PENDING_ENV);
    // SAFETY: place_at_fd3 only calls dup2/fcntl, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || place_at_fd3(fd));
    }
    let child = cmd
        .spawn()
        .map_err(|e| UpdateError::io("cannot start the watchdog", backup, e))?;
    Ok(child.id())
}
