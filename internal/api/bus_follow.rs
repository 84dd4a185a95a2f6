//! Following a message bus from an async task (the bus stream and the event stream's `bus:`
//! topics): each look at the file runs on the runtime's blocking pool for the moment it
//! takes, and between looks the task waits on the watch hub, so no thread is held per client.

use std::path::PathBuf;

use tokio::task::JoinHandle;

use crate::bus::{BusError, FollowFrom, Follower, Message};

/// What one look at the bus gives back: the follower and what it read.
type Look = (Follower, Result<Vec<Message>, BusError>);

/// A [`Follower`] driven from async code. [`next`](Self::next) is cancel-safe: a caller may
/// race it against other events and call it again; nothing read is lost.
pub(super) struct BusFollow {
    path: PathBuf,
    /// `None` while a look runs (or after one failed to come back).
    follower: Option<Follower>,
    /// The look running on the blocking pool.
    look: Option<JoinHandle<Look>>,
    /// The last look found nothing: wait for a change before the next.
    wait_first: bool,
}

/// [`Follower::open`] on the blocking pool: opening reads the backlog's start and watches the
/// bus's directory, a round trip to the watcher thread that must not stall an async worker.
pub(super) async fn open(
    path: PathBuf,
    from: FollowFrom,
    msg_type: Option<String>,
) -> Result<Follower, BusError> {
    let what = path.clone();
    tokio::task::spawn_blocking(move || Follower::open(&path, from, msg_type))
        .await
        .unwrap_or_else(|_| {
            let why = std::io::Error::other("the opening task ended");
            Err(BusError::io("follow", &what, why))
        })
}

impl BusFollow {
    /// Wraps an opened follower.
    pub fn new(follower: Follower) -> Self {
        Self {
            path: follower.path().to_path_buf(),
            follower: Some(follower),
            look: None,
            wait_first: false,
        }
    }

    /// Waits for the next messages (never an empty batch). Reads only as fast as it is
    /// called: a caller waiting for a slow client reads no further.
    pub async fn next(&mut self) -> Result<Vec<Message>, BusError> {
        loop {
            if self.look.is_none() {
                if self.wait_first {
                    if let Some(follower) = self.follower.as_mut() {
                        follower.changed().await;
                    }
                    self.wait_first = false;
                }
                let Some(mut follower) = self.follower.take() else {
                    return Err(self.gone());
                };
                self.look = Some(tokio::task::spawn_blocking(move || {
                    let batch = follower.try_batch();
                    (follower, batch)
                }));
            }
            let Some(look) = self.look.as_mut() else {
                continue;
            };
            let done = look.await;
            self.look = None;
            let (follower, batch) = done.map_err(|_| self.gone())?;
            self.follower = Some(follower);
            let batch = batch?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            self.wait_first = true;
        }
    }

    fn gone(&self) -> BusError {
        let why = std::io::Error::other("the reading task ended");
        BusError::io("follow", &self.path, why)
    }
}
