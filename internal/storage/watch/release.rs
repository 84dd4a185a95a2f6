//! Releasing a dropped subscription's watches on a thread of its own. Unwatching a path is a
//! round trip to the watcher thread under the hub's lock, and that thread is busiest exactly
//! when many followers end together (a burst of file events as runs finish); a drop, often on
//! an async worker, must not wait for it. The thread starts with the first release and stays.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use super::hub::Hub;

/// One dropped subscription: its hub, its id and the paths it watched.
type Release = (Arc<Hub>, u64, Vec<PathBuf>);

struct Queue {
    pending: Mutex<Vec<Release>>,
    ready: Condvar,
}

/// Hands `paths` of subscriber `id` to the release thread (unwatched there, then the
/// subscriber is deregistered); done at once where the thread cannot be started.
pub(super) fn later(hub: Arc<Hub>, id: u64, paths: Vec<PathBuf>) {
    match queue() {
        Some(queue) => {
            queue
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((hub, id, paths));
            queue.ready.notify_one();
        }
        None => now((hub, id, paths)),
    }
}

fn now((hub, id, paths): Release) {
    for path in &paths {
        hub.unwatch(id, path);
    }
    hub.deregister(id);
}

/// The queue, with its thread started on first use; `None` if no thread could be started.
fn queue() -> Option<&'static Queue> {
    static QUEUE: OnceLock<Option<&'static Queue>> = OnceLock::new();
    *QUEUE.get_or_init(|| {
        let queue: &'static Queue = Box::leak(Box::new(Queue {
            pending: Mutex::new(Vec::new()),
            ready: Condvar::new(),
        }));
        let started = std::thread::Builder::new()
            .name("watch-release".into())
            .spawn(move || run(queue));
        match started {
            Ok(_) => Some(queue),
            Err(err) => {
                tracing::warn!("cannot start the watch release thread ({err}); releasing in place");
                None
            }
        }
    })
}

fn run(queue: &Queue) {
    loop {
        let batch = {
            let mut pending = queue.pending.lock().unwrap_or_else(|e| e.into_inner());
            while pending.is_empty() {
                pending = queue.ready.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            std::mem::take(&mut *pending)
        };
        batch.into_iter().for_each(now);
    }
}
