//! Following a bus as it grows: a blocking, pull-style [`Follower`] woken by a change of the
//! bus's directory ([`crate::storage::watch`]: inotify, or polling where inotify is not
//! available), with a coarse periodic re-check in case an event is missed. Rotation is handled: when the path starts naming a new file (the old one was
//! renamed to `.archived`), the old file is drained, then the new one is read from its start.
//! A file truncated in place is re-read from the start.
//!
//! Memory stays bounded however large the bus is: a backlog (from the start, or after a msg_id)
//! is read in chunks of at most [`FOLLOW_CHUNK`] bytes, one chunk per batch, so a consumer that
//! waits before asking for the next batch holds back the reading too.
//!
//! A command calls [`Follower::next_batch`] (blocking, with a timeout). A server's async task
//! calls [`Follower::try_batch`] where blocking is allowed and awaits [`Follower::changed`]
//! between looks, so no thread waits per follower.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::storage::watch::{Scope, Subscription, WatchError};

use super::error::BusError;
use super::message::Message;
use super::parse::Parser;
use super::path;
use super::read::{self, ReadQuery};

/// How often the file is re-checked even without a change notification.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(1);
/// Most bytes of the bus read for one batch.
pub const FOLLOW_CHUNK: u64 = 256 * 1024;
/// Re-check interval while a writer holds the bus lock.
const BUSY_RECHECK: Duration = Duration::from_millis(5);

/// Where a follower starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowFrom {
    /// Every message already in the bus, then new ones.
    Start,
    /// Only messages appended after the follower was opened.
    End,
    /// The last N existing messages (read from a tail window), then new ones.
    Tail(usize),
    /// The messages after this msg_id (an unknown id is an error), then new ones.
    Since(String),
}

/// A blocking follower of one bus file.
pub struct Follower {
    path: PathBuf,
    msg_type: Option<String>,
    current: Option<Current>,
    ready: VecDeque<Message>,
    changes: Subscription,
    watching: bool,
    recheck: Duration,
    /// The last read could not settle (bus lock busy): re-check soon instead of waiting.
    busy: bool,
    /// The current file has more bytes than were read: read on without waiting.
    behind: bool,
}

/// The open file being followed and how far it has been parsed.
struct Current {
    file: File,
    dev: u64,
    ino: u64,
    pos: u64,
    parser: Parser,
}

impl Follower {
    /// Opens a follower on `path` (which need not exist yet), optionally only for messages of
    /// `msg_type`. Existing messages selected by `from` are returned by the first
    /// [`next_batch`](Self::next_batch).
    pub fn open(path: &Path, from: FollowFrom, msg_type: Option<String>) -> Result<Self, BusError> {
        let mut follower = Self {
            path: path.to_path_buf(),
            msg_type,
            current: None,
            ready: VecDeque::new(),
            changes: Subscription::new(),
            watching: false,
            recheck: DEFAULT_RECHECK,
            busy: false,
            behind: false,
        };
        // Watch before the first read so no append between the two goes unnoticed.
        follower.ensure_watch();
        follower.load_initial(from)?;
        Ok(follower)
    }

    /// Sets the periodic re-check interval (default 1 s).
    pub fn with_recheck(mut self, every: Duration) -> Self {
        self.recheck = every.max(Duration::from_millis(1));
        self
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits up to `timeout` for messages; returns them as soon as there are any, or an empty
    /// batch when the time is up.
    pub fn next_batch(&mut self, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let deadline = Instant::now() + timeout;
        loop {
            let batch = self.try_batch()?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            if self.behind {
                continue;
            }
            // A burst of changes is one wakeup, so one re-read.
            self.changes
                .wait((deadline - now).min(self.recheck_interval()));
            self.after_wait();
        }
    }

    /// The messages there are now, without waiting (empty when there are none).
    pub fn try_batch(&mut self) -> Result<Vec<Message>, BusError> {
        if self.ready.is_empty() {
            self.busy = false;
            self.poll()?;
        }
        Ok(self.ready.drain(..).collect())
    }

    /// For async callers of [`try_batch`](Self::try_batch): waits until another look is worth
    /// it — a change, the re-check interval, or at once while a backlog is being read.
    pub async fn changed(&mut self) {
        if self.behind {
            return;
        }
        let _ = tokio::time::timeout(self.recheck_interval(), self.changes.changed()).await;
        self.after_wait();
    }

    fn recheck_interval(&self) -> Duration {
        if self.busy {
            BUSY_RECHECK
        } else {
            self.recheck
        }
    }

    fn after_wait(&mut self) {
        if !self.watching {
            self.ensure_watch();
        }
    }

    fn ensure_watch(&mut self) {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match self.changes.watch(&dir, Scope::Dir) {
            Ok(_) => self.watching = true,
            Err(err @ WatchError::NotFound { .. }) => {
                tracing::debug!(dir = %dir.display(), error = %err, "cannot watch bus directory yet");
            }
            Err(err) => {
                self.watching = true; // not worth retrying: the periodic re-check covers it
                tracing::warn!(dir = %dir.display(), error = %err, "cannot watch bus directory; following by periodic re-check");
            }
        }
    }

    fn load_initial(&mut self, from: FollowFrom) -> Result<(), BusError> {
        let Some(file) = path::open_read(&self.path)? else {
            if let FollowFrom::Since(id) = &from {
                return Err(read::since_not_found(id, &self.path));
            }
            return Ok(());
        };
        let meta = file
            .metadata()
            .map_err(|e| BusError::io("inspect", &self.path, e))?;
        let (size, _) = read::settled_len(&file, &self.path)?;
        let query = ReadQuery {
            since: match &from {
                FollowFrom::Since(id) => Some(id.clone()),
                _ => None,
            },
            tail: match from {
                FollowFrom::Tail(n) => Some(n),
                _ => None,
            },
            msg_type: self.msg_type.clone(),
        };
        let (parser, pos) = match &from {
            FollowFrom::End => (Parser::mid_file(), size),
            // The backlog is read chunk by chunk by later batches.
            FollowFrom::Start => (Parser::new(), 0),
            FollowFrom::Since(id) => self.seek_past(&file, size, id)?,
            FollowFrom::Tail(_) => {
                let (collector, parser) = read::load(&file, &self.path, size, &query)?;
                self.ready.extend(collector.into_messages(&self.path)?);
                (parser, size)
            }
        };
        self.behind = pos < size;
        self.current = Some(Current {
            dev: meta.dev(),
            ino: meta.ino(),
            pos,
            parser,
            file,
        });
        Ok(())
    }

    /// Parses `file` chunk by chunk until the message `id`; queues what follows it in the same
    /// chunk and returns the parser with the position after that chunk. Only one chunk's
    /// messages are ever held.
    fn seek_past(&mut self, file: &File, size: u64, id: &str) -> Result<(Parser, u64), BusError> {
        let mut parser = Parser::new();
        let mut buf = vec![0u8; FOLLOW_CHUNK.min(size).max(1) as usize];
        let mut out = Vec::new();
        let mut pos = 0;
        let mut found = false;
        let take = |out: &mut Vec<Message>, found: &mut bool| {
            let mut after = Vec::new();
            for msg in out.drain(..) {
                if *found {
                    after.push(msg);
                } else {
                    *found = msg.msg_id == id;
                }
            }
            after
        };
        while pos < size && !found {
            let want = buf.len().min((size - pos) as usize);
            let n = file
                .read_at(&mut buf[..want], pos)
                .map_err(|e| BusError::io("read", &self.path, e))?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            parser.feed(&buf[..n], &mut out);
            if pos >= size {
                parser.flush(&mut out);
            }
            let after = take(&mut out, &mut found);
            self.queue(after);
        }
        if !found {
            return Err(read::since_not_found(id, &self.path));
        }
        Ok((parser, pos))
    }

    /// Reads what was appended; switches files on rotation.
    fn poll(&mut self) -> Result<(), BusError> {
        // Bounded: each round either stays on the same file or moves to a newer one.
        for _ in 0..4 {
            if self.current.is_some() {
                self.drain_current()?;
                if self.behind {
                    return Ok(()); // the rest of the backlog comes with the next batches
                }
            }
            let Some(meta) = path::check(&self.path)? else {
                return Ok(()); // rotated away and not recreated yet: keep what we have
            };
            if let Some(cur) = &self.current {
                if cur.dev == meta.dev() && cur.ino == meta.ino() {
                    return Ok(());
                }
                // A new file took the path: drain the old one once more (a late writer may
                // still have appended to it), emit its last record, then switch.
                self.drain_current()?;
                while self.behind {
                    self.drain_current()?;
                }
                if let Some(old) = self.current.take() {
                    let mut out = Vec::new();
                    old.parser.finish(&mut out);
                    self.queue(out);
                }
                tracing::debug!(path = %self.path.display(), "bus rotated; following the new file");
            }
            let Some(file) = path::open_read(&self.path)? else {
                return Ok(());
            };
            let meta = file
                .metadata()
                .map_err(|e| BusError::io("inspect", &self.path, e))?;
            self.current = Some(Current {
                dev: meta.dev(),
                ino: meta.ino(),
                pos: 0,
                parser: Parser::new(),
                file,
            });
        }
        Ok(())
    }

    /// Reads the current file up to a settled length (see [`read::settled_len`]), at most
    /// [`FOLLOW_CHUNK`] bytes of it, and emits the records completed by them.
    fn drain_current(&mut self) -> Result<(), BusError> {
        self.behind = false;
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let (len, settled) = read::settled_len(&cur.file, &self.path)?;
        if len < cur.pos {
            tracing::debug!(path = %self.path.display(), "bus truncated; re-reading from the start");
            cur.pos = 0;
            cur.parser = Parser::new();
        }
        let mut out = Vec::new();
        let end = len.min(cur.pos + FOLLOW_CHUNK);
        if end > cur.pos {
            let parser = &mut cur.parser;
            read::stream(&cur.file, &self.path, cur.pos, end, |chunk| {
                parser.feed(chunk, &mut out);
            })?;
            cur.pos = end;
        }
        if end < len {
            self.behind = true;
        } else if settled {
            cur.parser.flush(&mut out);
        } else {
            // A writer holds the lock: the last record may be half-written. Look again soon.
            self.busy = true;
        }
        self.queue(out);
        Ok(())
    }

    fn queue(&mut self, msgs: Vec<Message>) {
        let wanted = |m: &Message| self.msg_type.as_deref().is_none_or(|t| t == m.msg_type);
        let keep: Vec<Message> = msgs.into_iter().filter(wanted).collect();
        self.ready.extend(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::append::{AppendOptions, BusWriter};
    use crate::bus::message::NewMessage;
    use crate::storage::ids::ProjectId;

    const WAIT: Duration = Duration::from_secs(20);

    fn post(writer: &mut BusWriter, ty: &str, body: &str) -> String {
        let msg = NewMessage::new(ty, ProjectId::parse("p").unwrap()).body(body);
        writer.append(&msg).unwrap()
    }

    /// Collects bodies until `n` arrived (bounded by a generous overall deadline).
    fn collect(f: &mut Follower, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            got.extend(
                f.next_batch(Duration::from_millis(200))
                    .unwrap()
                    .into_iter()
                    .map(|m| m.body),
            );
        }
        got
    }

    #[test]
    fn follows_appends_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("TASK-MESSAGE-BUS.md");
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        post(&mut writer, "INFO", "old-1");
        post(&mut writer, "INFO", "old-2");
        let mut f = Follower::open(&bus, FollowFrom::Tail(1), None).unwrap();
        assert_eq!(collect(&mut f, 1), ["old-2"]);
        post(&mut writer, "INFO", "new-1");
        assert_eq!(collect(&mut f, 1), ["new-1"]);
        // Rotate: the rest of the old file, then the new file from its start.
        post(&mut writer, "INFO", "before-rotate");
        std::fs::rename(
            &bus,
            dir.path()
                .join("TASK-MESSAGE-BUS.md.20260101-000000.archived"),
        )
        .unwrap();
        post(&mut writer, "INFO", "after-rotate-1");
        post(&mut writer, "INFO", "after-rotate-2");
        assert_eq!(
            collect(&mut f, 3),
            ["before-rotate", "after-rotate-1", "after-rotate-2"]
        );
        assert!(f.next_batch(Duration::from_millis(50)).unwrap().is_empty());
    }

    #[test]
    fn starts_before_the_file_exists_and_filters_by_type() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut f = Follower::open(&bus, FollowFrom::Start, Some("FACT".into())).unwrap();
        assert!(f.next_batch(Duration::from_millis(10)).unwrap().is_empty());
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        post(&mut writer, "INFO", "skip");
        post(&mut writer, "FACT", "keep");
        assert_eq!(collect(&mut f, 1), ["keep"]);
    }

    #[test]
    fn a_large_backlog_comes_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        let body = "y".repeat(1000);
        let ids: Vec<String> = (0..1000)
            .map(|_| post(&mut writer, "INFO", &body))
            .collect();
        assert!(std::fs::metadata(&bus).unwrap().len() > 3 * FOLLOW_CHUNK);
        let mut largest = 0;
        let mut got = Vec::new();
        let mut f = Follower::open(&bus, FollowFrom::Start, None).unwrap();
        while got.len() < ids.len() {
            let batch = f.next_batch(Duration::from_secs(5)).unwrap();
            assert!(!batch.is_empty());
            largest = largest.max(batch.len());
            got.extend(batch.into_iter().map(|m| m.msg_id));
        }
        assert_eq!(got, ids);
        assert!(largest <= 300, "a batch held {largest} messages");
        let mut since = Follower::open(&bus, FollowFrom::Since(ids[499].clone()), None).unwrap();
        let mut rest = Vec::new();
        while rest.len() < 500 {
            rest.extend(
                since
                    .next_batch(WAIT)
                    .unwrap()
                    .into_iter()
                    .map(|m| m.msg_id),
            );
        }
        assert_eq!(rest, ids[500..]);
    }

    #[test]
    fn since_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        let first = post(&mut writer, "INFO", "a");
        post(&mut writer, "INFO", "b");
        let mut since = Follower::open(&bus, FollowFrom::Since(first), None).unwrap();
        let mut end = Follower::open(&bus, FollowFrom::End, None).unwrap();
        assert_eq!(collect(&mut since, 1), ["b"]);
        post(&mut writer, "INFO", "c");
        assert_eq!(collect(&mut since, 1), ["c"]);
        assert_eq!(collect(&mut end, 1), ["c"]);
        let err = Follower::open(&bus, FollowFrom::Since("MSG-unknown".into()), None)
            .err()
            .unwrap();
        assert!(matches!(err, BusError::SinceNotFound { .. }), "{err}");
    }
}
