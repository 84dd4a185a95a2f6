//! The process-wide watch hub: one inotify instance (one `notify` watcher) whose watches are
//! shared by every subscriber, counted per path, and routed to the subscribers whose paths an
//! event touches. Paths that inotify cannot watch (no instance left, watch table full, or
//! polling forced) are polled by one poller thread instead, which sends the same kind of
//! events.
//!
//! Locks: `notifier` (held over a whole watch/unwatch) before `routes` and `polls`; the
//! inotify thread and the poller take only `routes` (to deliver) and `polls`, never
//! `notifier`, so a `notify` call made while holding `notifier` cannot wait on them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use notify::event::{Flag, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::mailbox::Mailbox;
use super::poll::Snapshot;
use super::{Backend, Scope, WatchError};

/// The inotify side of the hub.
enum Notifier {
    /// Not tried yet (started with the first watch).
    Unstarted,
    /// The process's one watcher.
    Inotify(RecommendedWatcher),
    /// No inotify (unavailable, out of instances, or polling forced): every path is polled.
    Unavailable,
}

/// How a watched path is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// An inotify watch of its own (`tree`: recursive).
    Inotify { tree: bool },
    /// Inside a recursive inotify watch of an ancestor: nothing of its own.
    Covered,
    /// Polled.
    Poll,
}

/// One watched path: its subscribers (with the scope each asked for) and how it is followed.
struct Route {
    subs: Vec<(u64, Scope)>,
    via: Via,
    /// The path was removed or renamed since it was watched (its inotify watch is gone, or
    /// follows the old directory): a newcomer watches it again.
    stale: AtomicBool,
}

#[derive(Default)]
struct Routes {
    paths: HashMap<PathBuf, Route>,
    mailboxes: HashMap<u64, Arc<Mailbox>>,
}

/// A polled path.
struct Polled {
    tree: bool,
    every: Duration,
    due: Instant,
    snapshot: Snapshot,
}

/// See the module doc.
pub(crate) struct Hub {
    me: Weak<Hub>,
    force_poll: bool,
    notifier: Mutex<Notifier>,
    routes: RwLock<Routes>,
    polls: Mutex<HashMap<PathBuf, Polled>>,
    polls_changed: Condvar,
    poller_started: AtomicBool,
    next_id: AtomicU64,
    /// Whether a refused watch was logged (once per process).
    warned: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A hub; `force_poll` polls every path (no inotify at all).
    pub fn new(force_poll: bool) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            force_poll,
            notifier: Mutex::new(Notifier::Unstarted),
            routes: RwLock::new(Routes::default()),
            polls: Mutex::new(HashMap::new()),
            polls_changed: Condvar::new(),
            poller_started: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            warned: AtomicBool::new(false),
        })
    }

    fn routes_read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.routes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn routes_write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a subscriber's mailbox; returns its id.
    pub fn register(&self, mailbox: Arc<Mailbox>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.routes_write().mailboxes.insert(id, mailbox);
        id
    }

    /// Forgets a subscriber (its paths must have been unwatched).
    pub fn deregister(&self, id: u64) {
        self.routes_write().mailboxes.remove(&id);
    }

    /// Watches `path` for subscriber `id`: shares an existing watch of it, else adds an
    /// inotify watch, else (inotify unavailable or full) polls it every `poll_every`.
    pub fn watch(
        &self,
        id: u64,
        path: &Path,
        scope: Scope,
        poll_every: Duration,
    ) -> Result<Backend, WatchError> {
        let mut notifier = lock(&self.notifier);
        self.start(&mut notifier);
        let existing = self
            .routes_read()
            .paths
            .get(path)
            .map(|r| (r.via, r.stale.load(Ordering::Acquire)));
        let via = match existing {
            Some((Via::Inotify { tree }, true)) => {
                let wider = if tree { Scope::Tree } else { scope };
                self.add(&mut notifier, path, wider, poll_every)?
            }
            Some((via, _)) => self.widen(&mut notifier, path, via, scope, poll_every)?,
            None => self.add(&mut notifier, path, scope, poll_every)?,
        };
        let mut routes = self.routes_write();
        let route = routes.paths.entry(path.to_path_buf()).or_insert(Route {
            subs: Vec::new(),
            via,
            stale: AtomicBool::new(false),
        });
        route.via = via;
        route.stale.store(false, Ordering::Release);
        route.subs.push((id, scope));
        Ok(backend(via))
    }

    /// A path already watched gets one more subscriber: a recursive one needs the watch to
    /// be recursive too, a poll interval the shortest one asked for.
    fn widen(
        &self,
        notifier: &mut Notifier,
        path: &Path,
        via: Via,
        scope: Scope,
        poll_every: Duration,
    ) -> Result<Via, WatchError> {
        match via {
            Via::Inotify { tree: false } if scope == Scope::Tree => {
                self.add(notifier, path, scope, poll_every)
            }
            Via::Poll => {
                let mut polls = lock(&self.polls);
                if let Some(p) = polls.get_mut(path) {
                    p.every = p.every.min(poll_every);
                    p.due = p.due.min(Instant::now() + p.every);
                    if scope == Scope::Tree && !p.tree {
                        p.tree = true;
                        p.snapshot = Snapshot::take(path, true);
                    }
                }
                self.polls_changed.notify_all();
                Ok(via)
            }
            other => Ok(other),
        }
    }

    /// Starts following a path nobody watches yet.
    fn add(
        &self,
        notifier: &mut Notifier,
        path: &Path,
        scope: Scope,
        poll_every: Duration,
    ) -> Result<Via, WatchError> {
        let Notifier::Inotify(watcher) = notifier else {
            return self.poll(path, scope, poll_every);
        };
        if self.covered(path) {
            return match std::fs::symlink_metadata(path) {
                Ok(_) => Ok(Via::Covered),
                Err(e) => Err(WatchError::from_io(path, e)),
            };
        }
        let mode = match scope {
            Scope::Dir => RecursiveMode::NonRecursive,
            Scope::Tree => RecursiveMode::Recursive,
        };
        match watcher.watch(path, mode) {
            Ok(()) => Ok(Via::Inotify {
                tree: scope == Scope::Tree,
            }),
            Err(err) => match WatchError::from_notify(path, err) {
                WatchError::Full { .. } => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            path = %path.display(),
                            "the inotify watch table is full (fs.inotify.max_user_watches); polling the paths that do not fit"
                        );
                    }
                    self.poll(path, scope, poll_every)
                }
                other => Err(other),
            },
        }
    }

    /// Polls `path` (it need not exist: its creation is a change).
    fn poll(&self, path: &Path, scope: Scope, every: Duration) -> Result<Via, WatchError> {
        let tree = scope == Scope::Tree;
        let snapshot = Snapshot::take(path, tree);
        lock(&self.polls).insert(
            path.to_path_buf(),
            Polled {
                tree,
                every,
                due: Instant::now() + every,
                snapshot,
            },
        );
        self.polls_changed.notify_all();
        self.start_poller();
        Ok(Via::Poll)
    }

    /// Whether an ancestor of `path` has a recursive inotify watch.
    fn covered(&self, path: &Path) -> bool {
        let routes = self.routes_read();
        path.ancestors().skip(1).any(|a| {
            routes
                .paths
                .get(a)
                .is_some_and(|r| r.via == Via::Inotify { tree: true })
        })
    }

    /// Drops subscriber `id`'s interest in `path`; the last one out removes the watch.
    pub fn unwatch(&self, id: u64, path: &Path) {
        let mut notifier = lock(&self.notifier);
        let via = {
            let mut routes = self.routes_write();
            let Some(route) = routes.paths.get_mut(path) else {
                return;
            };
            if let Some(at) = route.subs.iter().position(|(s, _)| *s == id) {
                route.subs.remove(at);
            }
            if !route.subs.is_empty() {
                return;
            }
            let via = route.via;
            routes.paths.remove(path);
            via
        };
        match via {
            Via::Poll => {
                lock(&self.polls).remove(path);
            }
            Via::Covered => {}
            Via::Inotify { tree } => {
                let Notifier::Inotify(watcher) = &mut *notifier else {
                    return;
                };
                // A recursive ancestor's watch took this directory over: leave it be.
                if !self.covered(path) {
                    // Already gone when the directory was removed: nothing to report.
                    let _ = watcher.unwatch(path);
                }
                if tree {
                    self.rewatch_below(&mut notifier, path);
                }
            }
        }
    }

    /// After a recursive watch of `top` was removed (with every watch below it), watches the
    /// paths below it that still have subscribers again.
    fn rewatch_below(&self, notifier: &mut Notifier, top: &Path) {
        let mut below: Vec<(PathBuf, Scope)> = self
            .routes_read()
            .paths
            .iter()
            .filter(|(p, r)| p.starts_with(top) && r.via != Via::Poll)
            .map(|(p, r)| {
                let tree = r.subs.iter().any(|(_, s)| *s == Scope::Tree);
                (p.clone(), if tree { Scope::Tree } else { Scope::Dir })
            })
            .collect();
        // Outer paths first, so a recursive one covers the paths inside it.
        below.sort_by_key(|(p, _)| p.components().count());
        for (path, scope) in below {
            let via = self
                .add(notifier, &path, scope, super::DEFAULT_POLL)
                .unwrap_or(Via::Covered);
            if let Some(route) = self.routes_write().paths.get_mut(&path) {
                route.via = via;
            }
        }
    }

    /// Starts the inotify watcher with the first watch, or settles for polling.
    fn start(&self, notifier: &mut Notifier) {
        if !matches!(notifier, Notifier::Unstarted) {
            return;
        }
        if self.force_poll {
            *notifier = Notifier::Unavailable;
            return;
        }
        let me = self.me.clone();
        let handler = move |event: notify::Result<Event>| {
            if let Some(hub) = me.upgrade() {
                hub.dispatch(event);
            }
        };
        let config = notify::Config::default().with_follow_symlinks(false);
        *notifier = match RecommendedWatcher::new(handler, config) {
            Ok(w) => Notifier::Inotify(w),
            Err(err) => {
                tracing::warn!(
                    "no file notifications ({err}; e.g. fs.inotify.max_user_instances reached); polling watched paths instead"
                );
                Notifier::Unavailable
            }
        };
    }

    /// Hands a notification to the subscribers of the paths it touches: a subscriber of a
    /// directory hears of the directory and its entries, a recursive one of everything below.
    /// An error or a notification without paths (lost events) goes to every subscriber.
    fn dispatch(&self, event: notify::Result<Event>) {
        let event = match event {
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => return,
            Ok(event) => event,
            Err(err) => {
                tracing::debug!("file notification error: {err}");
                Event::new(EventKind::Other).set_flag(Flag::Rescan)
            }
        };
        let routes = self.routes_read();
        if event.paths.is_empty() {
            for mailbox in routes.mailboxes.values() {
                mailbox.deliver(&event);
            }
            return;
        }
        let gone = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        );
        let mut targets = HashSet::new();
        for path in &event.paths {
            if gone {
                if let Some(route) = routes.paths.get(path.as_path()) {
                    route.stale.store(true, Ordering::Release);
                }
            }
            for (depth, ancestor) in path.ancestors().enumerate() {
                let Some(route) = routes.paths.get(ancestor) else {
                    continue;
                };
                for (id, scope) in &route.subs {
                    if depth <= 1 || *scope == Scope::Tree {
                        targets.insert(*id);
                    }
                }
            }
        }
        for id in targets {
            if let Some(mailbox) = routes.mailboxes.get(&id) {
                mailbox.deliver(&event);
            }
        }
    }

    fn start_poller(&self) {
        if self.poller_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name("watch-poll".into())
            .spawn(move || poll_loop(&me));
        if let Err(err) = spawned {
            self.poller_started.store(false, Ordering::Release);
            tracing::error!("cannot start the file poller thread: {err}");
        }
    }

    /// Number of paths watched (by inotify or polling).
    #[cfg(test)]
    pub fn watched(&self) -> usize {
        self.routes_read().paths.len()
    }
}

fn backend(via: Via) -> Backend {
    match via {
        Via::Poll => Backend::Poll,
        Via::Inotify { .. } | Via::Covered => Backend::Inotify,
    }
}

/// The poller thread: re-snapshots each polled path when it is due and sends what changed.
/// Ends when the hub is gone.
fn poll_loop(hub: &Weak<Hub>) {
    const IDLE: Duration = Duration::from_secs(1);
    loop {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let due: Vec<(PathBuf, bool, Snapshot)> = {
            let mut polls = lock(&hub.polls);
            let now = Instant::now();
            match polls.values().map(|p| p.due).min() {
                Some(next) if next <= now => {}
                next => {
                    let wait = next.map_or(IDLE, |n| (n - now).min(IDLE));
                    drop(hub.polls_changed.wait_timeout(polls, wait));
                    continue;
                }
            }
            polls
                .iter_mut()
                .filter(|(_, p)| p.due <= now)
                .map(|(path, p)| {
                    p.due = now + p.every;
                    (path.clone(), p.tree, p.snapshot.clone())
                })
                .collect()
        };
        for (path, tree, old) in due {
            let now = Snapshot::take(&path, tree);
            let events = old.changes(&now);
            if events.is_empty() {
                continue;
            }
            if let Some(p) = lock(&hub.polls).get_mut(&path) {
                p.snapshot = now;
            }
            for event in events {
                hub.dispatch(Ok(event));
            }
        }
    }
}
