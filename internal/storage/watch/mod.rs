//! Watching paths for changes, for every follower in the process (bus follow, SSE streams,
//! task loops, the run index, `output --follow`, `watch`): one [`Subscription`] per follower,
//! woken when something changes at or below the paths it watches.
//!
//! - One inotify instance per process: a lazily started process-wide hub holds the one
//!   `notify` watcher, shares a path's watch between its subscribers (counted, removed with
//!   the last one), and routes each event to the subscribers whose paths it touches. Each
//!   watcher used to cost one of the user's `fs.inotify.max_user_instances` (128 by default).
//! - Polling when inotify is not there: when no inotify instance can be had, when the watch
//!   table is full (`fs.inotify.max_user_watches`), or when `CONDUCTOR_WATCH=poll` is set, the
//!   path is polled (its entries' inode, size and mtime compared) every
//!   [`Subscription::poll_every`], and changes come as the same kind of events. Callers do not
//!   write a fallback loop of their own.
//! - Only real changes: opening or reading a file (e.g. probing a lock in a watched run dir)
//!   raises access events; forwarding those would wake every follower of that dir, whose own
//!   probes raise more — an event storm.
//!
//! A subscriber waits with [`Subscription::wait`] (blocking, with a timeout: its own periodic
//! re-check, e.g. for a process that died without touching a file), [`Subscription::changed`]
//! (async), or takes the events themselves with [`Subscription::events`] (the run index, which
//! needs their paths).

mod hub;
mod mailbox;
mod poll;
mod release;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use notify::Event;

use hub::Hub;
use mailbox::Mailbox;

/// Environment variable choosing how paths are watched: `poll` polls every path (no inotify);
/// unset, empty, `auto` or `inotify`: inotify, polling only what it cannot watch.
pub const WATCH_ENV: &str = "CONDUCTOR_WATCH";

/// Default polling interval of a subscription (used only when a path is polled).
pub const DEFAULT_POLL: Duration = Duration::from_millis(250);

/// What part of a watched path's tree is of interest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The path itself and, for a directory, its direct entries.
    Dir,
    /// The path and everything below it.
    Tree,
}

/// How a path ended up being watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// By the process's inotify instance.
    Inotify,
    /// By polling.
    Poll,
}

/// Why a path cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The path does not exist (watch it again once it does).
    #[error("{} does not exist", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The inotify watch table is full (handled inside: the path is polled).
    #[error("cannot watch {}: the inotify watch table is full", path.display())]
    Full {
        /// The path.
        path: PathBuf,
    },
    /// Another failure (e.g. permission denied).
    #[error("cannot watch {}: {source}", path.display())]
    Failed {
        /// The path.
        path: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
}

impl WatchError {
    fn from_notify(path: &Path, err: notify::Error) -> Self {
        let path = path.to_path_buf();
        match &err.kind {
            notify::ErrorKind::MaxFilesWatch => Self::Full { path },
            notify::ErrorKind::PathNotFound => Self::NotFound { path },
            notify::ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Self::NotFound { path }
            }
            notify::ErrorKind::Io(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                Self::Full { path }
            }
            _ => Self::Failed { path, source: err },
        }
    }

    fn from_io(path: &Path, err: std::io::Error) -> Self {
        Self::from_notify(path, notify::Error::io(err))
    }
}

/// Whether a notification is a change worth re-reading for (not a mere open/read/close).
pub fn is_change(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Ok(event) => !matches!(event.kind, notify::EventKind::Access(_)),
        Err(_) => true,
    }
}

/// Whether [`WATCH_ENV`] asks for polling only.
fn poll_forced() -> bool {
    match std::env::var(WATCH_ENV) {
        Ok(v) if v == "poll" => true,
        Ok(v) if v.is_empty() || v == "auto" || v == "inotify" => false,
        Ok(v) => {
            tracing::warn!("{WATCH_ENV}={v:?} is not one of poll, inotify, auto; using inotify");
            false
        }
        Err(_) => false,
    }
}

/// The process's hub.
fn global() -> &'static Arc<Hub> {
    static GLOBAL: OnceLock<Arc<Hub>> = OnceLock::new();
    GLOBAL.get_or_init(|| Hub::new(poll_forced()))
}

/// One follower's interest in some paths (see the module doc). Dropping it unwatches them,
/// shortly after, on a thread of the module's own.
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    mailbox: Arc<Mailbox>,
    paths: HashMap<PathBuf, Backend>,
    poll_every: Duration,
}

impl Subscription {
    /// A subscription on the process's hub that only wakes (no events kept); watches
    /// nothing yet.
    pub fn new() -> Self {
        Self::on_hub(Arc::clone(global()), false)
    }

    /// A subscription that keeps every event (with its paths) for [`Self::events`].
    pub fn with_events() -> Self {
        Self::on_hub(Arc::clone(global()), true)
    }

    /// A subscription watching `path` (with `scope`); a path that cannot be watched (e.g. it
    /// does not exist) is logged at debug level and left out: the caller's own periodic
    /// re-check still sees it.
    pub fn on(path: &Path, scope: Scope) -> Self {
        let mut sub = Self::new();
        if let Err(err) = sub.watch(path, scope) {
            tracing::debug!("{err}; re-checking periodically");
        }
        sub
    }

    fn on_hub(hub: Arc<Hub>, keep_events: bool) -> Self {
        let mailbox = Arc::new(Mailbox::new(keep_events));
        let id = hub.register(Arc::clone(&mailbox));
        Self {
            hub,
            id,
            mailbox,
            paths: HashMap::new(),
            poll_every: DEFAULT_POLL,
        }
    }

    /// Sets how often the paths watched from now on are polled when they are polled
    /// (default [`DEFAULT_POLL`]); the shortest interval asked for a path wins.
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every.max(Duration::from_millis(10));
        self
    }

    /// Watches `path` (a file or a directory). A relative path is taken from the current
    /// directory. Watching a path already watched by this subscription does nothing.
    pub fn watch(&mut self, path: &Path, scope: Scope) -> Result<Backend, WatchError> {
        let path = absolute(path);
        if let Some(backend) = self.paths.get(&path) {
            return Ok(*backend);
        }
        let backend = self.hub.watch(self.id, &path, scope, self.poll_every)?;
        self.paths.insert(path, backend);
        Ok(backend)
    }

    /// Stops watching `path` (nothing if it is not watched).
    pub fn unwatch(&mut self, path: &Path) {
        let path = absolute(path);
        if self.paths.remove(&path).is_some() {
            self.hub.unwatch(self.id, &path);
        }
    }

    /// Number of paths watched.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no path is watched.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Waits up to `timeout` for a change; true if there was one. Changes that came while
    /// the caller was busy count (and a burst of them is one wakeup).
    pub fn wait(&self, timeout: Duration) -> bool {
        self.mailbox.wait(timeout)
    }

    /// Waits (asynchronously) for a change.
    pub async fn changed(&self) {
        self.mailbox.changed().await;
    }

    /// For a subscription [`with_events`](Self::with_events): waits up to `timeout` for
    /// changes and returns their events (empty when the time is up). An event flagged
    /// `need_rescan` (lost events) has no paths: re-read everything.
    pub fn events(&self, timeout: Duration) -> Vec<Event> {
        self.mailbox.events(timeout)
    }
}

impl Default for Subscription {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Subscription {
    /// Returns at once: the watches are released on a thread of their own (see `release`).
    fn drop(&mut self) {
        let paths: Vec<PathBuf> = self.paths.drain().map(|(path, _)| path).collect();
        if paths.is_empty() {
            self.hub.deregister(self.id);
        } else {
            release::later(Arc::clone(&self.hub), self.id, paths);
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind};
    use notify::EventKind;
    use std::time::Instant;

    /// Generous: only a bound in case a wakeup never comes.
    const WAIT: Duration = Duration::from_secs(30);

    /// A subscription on a hub of its own (inotify, or polling when `poll`).
    /// Whether the hub watches nothing within [`WAIT`] (drops release on their own thread).
    fn released(hub: &Hub) -> bool {
        let deadline = Instant::now() + WAIT;
        while hub.watched() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        hub.watched() == 0
    }

    fn sub(hub: &Arc<Hub>, keep_events: bool) -> Subscription {
        Subscription::on_hub(Arc::clone(hub), keep_events).poll_every(Duration::from_millis(20))
    }

    #[test]
    fn access_events_are_not_changes() {
        assert!(!is_change(&Ok(Event::new(EventKind::Access(
            AccessKind::Any
        )))));
        assert!(is_change(&Ok(Event::new(EventKind::Create(
            CreateKind::File
        )))));
    }

    fn a_change_wakes_the_subscriber(poll: bool) {
        let hub = Hub::new(poll);
        let dir = tempfile::tempdir().unwrap();
        let mut s = sub(&hub, false);
        let want = if poll {
            Backend::Poll
        } else {
            Backend::Inotify
        };
        assert_eq!(s.watch(dir.path(), Scope::Dir).unwrap(), want);
        assert!(!s.wait(Duration::from_millis(50)));
        std::fs::write(dir.path().join("log"), "line\n").unwrap();
        assert!(s.wait(WAIT));
        // Appending to a file in the directory is a change too.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("log"))
            .unwrap();
        f.write_all(b"more\n").unwrap();
        assert!(s.wait(WAIT));
    }

    #[test]
    fn a_change_wakes_the_subscriber_inotify() {
        a_change_wakes_the_subscriber(false);
    }

    #[test]
    fn a_change_wakes_the_subscriber_polling() {
        a_change_wakes_the_subscriber(true);
    }

    fn two_subscribers_share_a_path(poll: bool) {
        let hub = Hub::new(poll);
        let dir = tempfile::tempdir().unwrap();
        let mut a = sub(&hub, false);
        let mut b = sub(&hub, true);
        a.watch(dir.path(), Scope::Dir).unwrap();
        b.watch(dir.path(), Scope::Dir).unwrap();
        assert_eq!(hub.watched(), 1, "one watch for both");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(a.wait(WAIT));
        let events = b.events(WAIT);
        assert!(events.iter().any(|e| e.paths.contains(&file)), "{events:?}");
        // The first one leaving keeps the watch for the other.
        drop(a);
        assert_eq!(hub.watched(), 1);
        std::fs::write(dir.path().join("g"), "y").unwrap();
        assert!(!b.events(WAIT).is_empty());
        drop(b);
        assert!(released(&hub), "the last one out unwatches");
    }

    #[test]
    fn two_subscribers_share_a_path_inotify() {
        two_subscribers_share_a_path(false);
    }

    #[test]
    fn two_subscribers_share_a_path_polling() {
        two_subscribers_share_a_path(true);
    }

    #[test]
    fn drop_and_unwatch_stop_the_wakeups() {
        let hub = Hub::new(false);
        let watched = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let mut s = sub(&hub, true);
        s.watch(watched.path(), Scope::Dir).unwrap();
        s.watch(other.path(), Scope::Dir).unwrap();
        s.unwatch(watched.path());
        assert_eq!((s.len(), hub.watched()), (1, 1));
        // Events of one inotify instance come in order: had the first write been heard, it
        // would come before the sentinel.
        std::fs::write(watched.path().join("f"), "x").unwrap();
        let sentinel = other.path().join("sentinel");
        std::fs::write(&sentinel, "x").unwrap();
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while !got.iter().any(|e: &Event| e.paths.contains(&sentinel)) && Instant::now() < deadline
        {
            got.extend(s.events(Duration::from_millis(100)));
        }
        assert!(got.iter().any(|e| e.paths.contains(&sentinel)), "{got:?}");
        assert!(
            got.iter()
                .all(|e| e.paths.iter().all(|p| p.starts_with(other.path()))),
            "{got:?}"
        );
        drop(s);
        assert!(
            released(&hub),
            "dropping the subscription unwatches its paths"
        );
    }

    #[test]
    fn a_subscriber_hears_only_of_its_own_paths() {
        let hub = Hub::new(false);
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        std::fs::create_dir(&one).unwrap();
        std::fs::create_dir(&two).unwrap();
        let mut a = sub(&hub, true);
        let mut b = sub(&hub, true);
        a.watch(&one, Scope::Dir).unwrap();
        b.watch(&two, Scope::Dir).unwrap();
        std::fs::write(one.join("f"), "x").unwrap();
        std::fs::write(two.join("g"), "x").unwrap();
        let got_b = b.events(WAIT);
        assert!(got_b
            .iter()
            .all(|e| e.paths.iter().all(|p| p.starts_with(&two))));
        let got_a = a.events(WAIT);
        assert!(!got_a.is_empty());
        assert!(got_a
            .iter()
            .all(|e| e.paths.iter().all(|p| p.starts_with(&one))));
    }

    #[test]
    fn a_tree_subscriber_hears_of_nested_changes() {
        for poll in [false, true] {
            let hub = Hub::new(poll);
            let dir = tempfile::tempdir().unwrap();
            let deep = dir.path().join("a/b");
            std::fs::create_dir_all(&deep).unwrap();
            let mut tree = sub(&hub, false);
            let mut flat = sub(&hub, false);
            tree.watch(dir.path(), Scope::Tree).unwrap();
            flat.watch(&deep, Scope::Dir).unwrap();
            std::fs::write(deep.join("f"), "x").unwrap();
            assert!(tree.wait(WAIT), "poll: {poll}");
            assert!(flat.wait(WAIT), "poll: {poll}");
            // The nested subscriber leaving keeps the tree's watch of that directory.
            drop(flat);
            std::fs::write(deep.join("g"), "x").unwrap();
            assert!(tree.wait(WAIT), "poll: {poll}");
        }
    }

    #[test]
    fn a_directory_made_again_is_watched_again_for_a_new_subscriber() {
        let hub = Hub::new(false);
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("task");
        std::fs::create_dir(&dir).unwrap();
        let mut old = sub(&hub, false);
        old.watch(&dir, Scope::Dir).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        assert!(old.wait(WAIT), "the removal is a change");
        std::fs::create_dir(&dir).unwrap();
        // `old` still holds the path; the new directory is watched for the newcomer anyway.
        let mut new = sub(&hub, true);
        new.watch(&dir, Scope::Dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "x").unwrap();
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while !got.iter().any(|e: &Event| e.paths.contains(&file)) && Instant::now() < deadline {
            got.extend(new.events(Duration::from_millis(100)));
        }
        assert!(got.iter().any(|e| e.paths.contains(&file)), "{got:?}");
    }

    #[test]
    fn a_missing_path_is_an_error_with_inotify_and_polled_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("later");
        let mut s = sub(&Hub::new(false), false);
        let err = s.watch(&missing, Scope::Dir).unwrap_err();
        assert!(matches!(err, WatchError::NotFound { .. }), "{err}");
        let mut p = sub(&Hub::new(true), false);
        assert_eq!(p.watch(&missing, Scope::Dir).unwrap(), Backend::Poll);
        std::fs::create_dir(&missing).unwrap();
        assert!(p.wait(WAIT));
    }

    #[test]
    fn async_subscribers_are_woken() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let hub = Hub::new(false);
        let dir = tempfile::tempdir().unwrap();
        let mut s = sub(&hub, false);
        s.watch(dir.path(), Scope::Dir).unwrap();
        let path = dir.path().join("f");
        rt.block_on(async {
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                std::fs::write(path, "x").unwrap();
            });
            tokio::time::timeout(WAIT, s.changed())
                .await
                .expect("woken");
            writer.join().unwrap();
        });
    }

    /// Probing a presence lock (a task's `.loop.lock`) in a watched dir opens and closes it;
    /// those events must not reach followers (no event storm between runs).
    #[test]
    fn probing_a_held_lock_wakes_no_follower() {
        let hub = Hub::new(false);
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join(crate::storage::paths::TASK_LOOP_LOCK_FILE);
        let held = std::fs::File::create(&lock_path).unwrap();
        fs2::FileExt::lock_exclusive(&held).unwrap();
        let mut s = sub(&hub, true);
        s.watch(dir.path(), Scope::Dir).unwrap();
        for _ in 0..20 {
            assert!(crate::storage::liveness::task_loop_active(dir.path()));
        }
        // Events arrive in order: the first one forwarded must be this write, not a probe.
        let sentinel = dir.path().join("sentinel");
        std::fs::write(&sentinel, "x").unwrap();
        let started = Instant::now();
        let events = s.events(WAIT);
        assert!(started.elapsed() < WAIT);
        assert_eq!(events[0].paths, vec![sentinel], "{events:?}");
    }
}
