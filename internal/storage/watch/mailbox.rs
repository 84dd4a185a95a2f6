//! A subscriber's mailbox: where the hub (inotify thread or poller) drops "something changed",
//! and where the subscriber waits for it, blocking with a timeout or asynchronously.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::event::Flag;
use notify::{Event, EventKind};

/// Most events a mailbox that keeps them holds; past it they are dropped and the subscriber
/// is told to rescan (one event with [`Flag::Rescan`]).
const MAX_EVENTS: usize = 65_536;

/// What was delivered since the subscriber last looked.
#[derive(Default)]
struct Pending {
    changed: bool,
    events: Vec<Event>,
    overflowed: bool,
}

/// One subscriber's pending changes.
pub(super) struct Mailbox {
    pending: Mutex<Pending>,
    cond: Condvar,
    notify: tokio::sync::Notify,
    keep_events: bool,
}

impl Mailbox {
    /// A mailbox; `keep_events` keeps each event (with its paths), else only the fact.
    pub fn new(keep_events: bool) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            cond: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            keep_events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A poisoned mailbox only holds plain data: keep using it.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `event` and wakes the subscriber.
    pub fn deliver(&self, event: &Event) {
        {
            let mut pending = self.lock();
            pending.changed = true;
            if self.keep_events {
                if pending.events.len() < MAX_EVENTS {
                    pending.events.push(event.clone());
                } else {
                    pending.overflowed = true;
                }
            }
        }
        self.cond.notify_all();
        self.notify.notify_one();
    }

    /// Waits up to `timeout` for a change; true if there was one. Takes every pending change
    /// (a burst is one wakeup).
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (mut pending, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |p| !p.changed)
            .unwrap_or_else(|e| e.into_inner());
        let changed = std::mem::take(&mut pending.changed);
        pending.events.clear();
        pending.overflowed = false;
        changed
    }

    /// Waits up to `timeout` for changes and takes the kept events (empty when the time is
    /// up). Events dropped for lack of room come back as one event flagged [`Flag::Rescan`].
    pub fn events(&self, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut pending = self.lock();
        loop {
            if pending.changed {
                pending.changed = false;
                let mut out = std::mem::take(&mut pending.events);
                if std::mem::take(&mut pending.overflowed) {
                    out.push(Event::new(EventKind::Other).set_flag(Flag::Rescan));
                }
                if !out.is_empty() {
                    return out;
                }
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Vec::new();
            };
            pending = self
                .cond
                .wait_timeout(pending, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes the pending change flag without waiting.
    fn take_changed(&self) -> bool {
        let mut pending = self.lock();
        pending.events.clear();
        pending.overflowed = false;
        std::mem::take(&mut pending.changed)
    }

    /// Waits (asynchronously) for a change.
    pub async fn changed(&self) {
        loop {
            if self.take_changed() {
                return;
            }
            // `notify_one` stores a permit when nobody waits, so a change delivered between
            // the check above and this await is not lost.
            self.notify.notified().await;
        }
    }
}
