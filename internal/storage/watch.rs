//! File-change notification shared by every follower (bus follow, SSE, run index, `output
//! --follow`, `watch`): an inotify watcher that forwards only real changes. Opening or reading a
//! file (e.g. probing a lock in a watched run dir) raises access events; forwarding those would
//! wake every follower of that dir, whose own probes raise more — an event storm.

use std::sync::mpsc::Sender;

/// Whether a notification is a change worth re-reading for (not a mere open/read/close).
pub fn is_change(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Ok(event) => !matches!(event.kind, notify::EventKind::Access(_)),
        Err(_) => true,
    }
}

/// A watcher (with `config`) forwarding only changes to `tx`.
pub fn watcher(
    tx: Sender<notify::Result<notify::Event>>,
    config: notify::Config,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    notify::RecommendedWatcher::new(
        move |event: notify::Result<notify::Event>| {
            if is_change(&event) {
                let _ = tx.send(event);
            }
        },
        config,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind};
    use notify::{Event, EventKind};

    #[test]
    fn access_events_are_not_changes() {
        assert!(!is_change(&Ok(Event::new(EventKind::Access(
            AccessKind::Any
        )))));
        assert!(is_change(&Ok(Event::new(EventKind::Create(
            CreateKind::File
        )))));
    }

    /// Probing a presence lock (a task's `.loop.lock`) in a watched dir opens and closes it;
    /// those events must not reach followers (SPEC §5: no event storm between runs).
    #[test]
    fn probing_a_held_lock_wakes_no_follower() {
        use notify::{RecursiveMode, Watcher};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join(crate::storage::paths::TASK_LOOP_LOCK_FILE);
        let held = std::fs::File::create(&lock_path).unwrap();
        fs2::FileExt::lock_exclusive(&held).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut w = watcher(tx, notify::Config::default()).unwrap();
        w.watch(dir.path(), RecursiveMode::NonRecursive).unwrap();
        for _ in 0..20 {
            assert!(crate::storage::liveness::task_loop_active(dir.path()));
        }
        // Events arrive in order: the first one forwarded must be this write, not a probe.
        let sentinel = dir.path().join("sentinel");
        std::fs::write(&sentinel, "x").unwrap();
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!(first.paths, vec![sentinel], "{first:?}");
    }
}
