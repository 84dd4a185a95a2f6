//! Appending records. The whole record is built first; then, on an
//! `O_APPEND` descriptor, under an exclusive `flock` of the bus file taken with a bounded wait,
//! the separator and record go out in one `write`. Only lock timeouts are retried (up to
//! `max_attempts`, with doubling backoff); every other error reaches the caller at once, and a
//! msg_id is returned only after its record is fully written (and fsynced, when asked).
//!
//! [`BusWriter`] keeps its descriptor open between appends and takes the lock per append. Under
//! the lock it `fstat`s its descriptor (the size decides the leading separator and the cut-back
//! point of a failed write). It also checks that the path still names its file — an `lstat`,
//! which walks the whole path and costs several times an `fstat` — when the file looks archived
//! (gc's rotation removes the write bits of the file it renames, under this same lock, so the
//! check is never skipped for it), when the file was unlinked, and otherwise at most every
//! [`PATH_RECHECK`]. When the path names another file, or none, the writer reopens before
//! writing, so nothing lands in a file rotated by gc. A rename by another tool that does not
//! take the lock (`mv`, the reference's gc) is racy for any appender; here it is noticed within
//! [`PATH_RECHECK`], and a record written in that window is kept in the archive, not lost.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::error::BusError;
use super::format::{encode_record_parts, HeaderFields};
use super::message::{generate_msg_id, NewMessage};
use super::path;
use crate::storage::lock::{self, LockError};

/// Longest time a writer trusts that its path still names its file without re-checking.
pub const PATH_RECHECK: Duration = Duration::from_millis(1);

/// Default bounded wait for the bus lock (as in the reference).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How appends behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOptions {
    /// fsync each record before acknowledging it (`bus.fsync`).
    pub fsync: bool,
    /// Bounded wait for the lock, per attempt.
    pub lock_timeout: Duration,
    /// Attempts when the lock wait times out (at least 1).
    pub max_attempts: u32,
    /// Sleep before the second attempt; doubled before each further one.
    pub retry_backoff: Duration,
}

impl Default for AppendOptions {
    fn default() -> Self {
        Self {
            fsync: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            max_attempts: 3,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

/// Appends `msg` to the bus at `path` (created if missing) and returns its new msg_id.
pub fn append(path: &Path, msg: &NewMessage, opts: &AppendOptions) -> Result<String, BusError> {
    BusWriter::new(path, opts.clone()).append(msg)
}

/// An appender for one bus file that keeps the file open between appends. Not shared between
/// threads: `flock` does not exclude two users of the same descriptor, so give each thread its
/// own writer (or guard one with a mutex).
#[derive(Debug)]
pub struct BusWriter {
    path: PathBuf,
    opts: AppendOptions,
    open: Option<OpenBus>,
    record: Vec<u8>,
}

#[derive(Debug)]
struct OpenBus {
    file: File,
    dev: u64,
    ino: u64,
    /// When the path was last seen naming this file.
    verified: Instant,
}

/// Why one attempt failed.
enum AttemptError {
    Timeout(LockError),
    Fatal(BusError),
}

impl From<BusError> for AttemptError {
    fn from(err: BusError) -> Self {
        AttemptError::Fatal(err)
    }
}

impl BusWriter {
    /// A writer for `path`; the file is opened (and created) on the first append.
    pub fn new(path: impl Into<PathBuf>, opts: AppendOptions) -> Self {
        Self {
            path: path.into(),
            opts,
            open: None,
            record: Vec::with_capacity(1024),
        }
    }

    /// The bus file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `msg` and returns its new msg_id once the record is written.
    pub fn append(&mut self, msg: &NewMessage) -> Result<String, BusError> {
        let msg_id = self.prepare(msg)?;
        let attempts = self.opts.max_attempts.max(1);
        let mut backoff = self.opts.retry_backoff;
        let mut last = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            match self.try_append() {
                Ok(()) => return Ok(msg_id),
                Err(AttemptError::Fatal(err)) => return Err(err),
                Err(AttemptError::Timeout(err)) => {
                    tracing::warn!(path = %self.path.display(), attempt, attempts, "bus lock wait timed out");
                    last = Some(err);
                }
            }
        }
        Err(BusError::LockTimeout {
            path: self.path.clone(),
            attempts,
            source: last.unwrap_or(LockError::Timeout {
                path: self.path.clone(),
                waited: self.opts.lock_timeout,
            }),
        })
    }

    /// Validates `msg`, assigns its id, timestamp and issue id, and encodes `\n` + record into
    /// `self.record` (the leading separator is skipped when the file is empty).
    fn prepare(&mut self, new: &NewMessage) -> Result<String, BusError> {
        validate(new)?;
        let now = Utc::now();
        let msg_id = generate_msg_id(now);
        let issue_id = match &new.issue_id {
            Some(id) if !id.is_empty() => id.clone(),
            _ if new.msg_type == "ISSUE" => msg_id.clone(),
            _ => String::new(),
        };
        let task_id = new.task_id.as_ref().map_or("", |t| t.as_str());
        let run_id = new.run_id.as_ref().map_or("", |r| r.as_str());
        let ts = new.ts.unwrap_or(now);
        let header = HeaderFields {
            msg_id: &msg_id,
            ts: &ts,
            msg_type: &new.msg_type,
            project_id: new.project_id.as_str(),
            task_id,
            run_id,
            issue_id: &issue_id,
            parents: &new.parents,
            links: &new.links,
            meta: &new.meta,
        };
        self.record.clear();
        self.record.push(b'\n');
        encode_record_parts(&header, &new.body, &mut self.record);
        Ok(msg_id)
    }

    fn try_append(&mut self) -> Result<(), AttemptError> {
        // At most a few reopen rounds: each one means the path was replaced while we waited.
        for _ in 0..8 {
            let mut open = match self.open.take() {
                Some(open) => open,
                None => self.open_file()?,
            };
            match lock_bus(&open.file, &self.path, self.opts.lock_timeout) {
                Ok(()) => {}
                Err(err @ LockError::Timeout { .. }) => {
                    self.open = Some(open);
                    return Err(AttemptError::Timeout(err));
                }
                Err(LockError::Io { path, source }) => {
                    return Err(BusError::io("lock", path, source).into());
                }
            }
            let size = match self.locked_size(&mut open) {
                Ok(Some(size)) => size,
                Ok(None) => {
                    tracing::debug!(path = %self.path.display(), "bus file replaced (rotated); reopening");
                    lock::unlock(&open.file);
                    continue;
                }
                Err(err) => {
                    lock::unlock(&open.file);
                    return Err(err.into());
                }
            };
            let result = self.write_locked(&open.file, size);
            lock::unlock(&open.file);
            result?;
            if self.opts.fsync {
                open.file
                    .sync_data()
                    .map_err(|e| BusError::io("fsync", &self.path, e))?;
            }
            self.open = Some(open);
            return Ok(());
        }
        Err(BusError::io(
            "append to",
            &self.path,
            std::io::Error::other("the file keeps being replaced while appending"),
        )
        .into())
    }

    /// With the lock held: the size of the open file, or `None` when the path no longer names
    /// it (rotated or removed) and the writer must reopen.
    fn locked_size(&self, open: &mut OpenBus) -> Result<Option<u64>, BusError> {
        let st = nix::sys::stat::fstat(open.file.as_raw_fd())
            .map_err(|errno| BusError::io("inspect", &self.path, errno.into()))?;
        let looks_archived = st.st_mode & 0o222 == 0 || st.st_nlink == 0;
        if !looks_archived && open.verified.elapsed() < PATH_RECHECK {
            return Ok(Some(st.st_size.max(0) as u64));
        }
        match path::identity(&self.path)? {
            Some(now) if now.dev == open.dev && now.ino == open.ino => {
                open.verified = Instant::now();
                Ok(Some(now.size))
            }
            _ => Ok(None),
        }
    }

    /// Writes separator + record in one call. On failure the file is cut back to `size`, so a
    /// failed append (e.g. ENOSPC) leaves no torn record behind.
    fn write_locked(&self, file: &File, size: u64) -> Result<(), BusError> {
        let bytes = if size > 0 {
            &self.record[..]
        } else {
            &self.record[1..]
        };
        let mut out = file;
        if let Err(err) = out.write_all(bytes) {
            if let Err(trunc) = file.set_len(size) {
                tracing::error!(path = %self.path.display(), error = %trunc, "cannot remove a partial record after a failed write");
            }
            return Err(BusError::io("write", &self.path, err));
        }
        Ok(())
    }

    fn open_file(&self) -> Result<OpenBus, BusError> {
        let existed = path::check(&self.path)?.is_some();
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(|e| path::open_error(&self.path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| BusError::io("inspect", &self.path, e))?;
        if !meta.is_file() {
            return Err(BusError::NotRegularFile {
                path: self.path.clone(),
            });
        }
        if !existed && self.opts.fsync {
            if let Some(dir) = self.path.parent() {
                crate::storage::atomic::sync_dir(dir)
                    .map_err(|e| BusError::io("fsync the directory of", &self.path, e))?;
            }
        }
        Ok(OpenBus {
            dev: meta.dev(),
            ino: meta.ino(),
            file,
            verified: Instant::now(),
        })
    }
}

/// Contended lock attempts retried at once (yielding the CPU) before the polling wait.
const LOCK_SPIN: u32 = 64;

/// Takes the exclusive bus lock. An append holds it for microseconds, so a contended lock is
/// first retried immediately a few times (yielding so a preempted holder can finish); only
/// then does the bounded, polling wait of [`lock::lock_exclusive`] start.
fn lock_bus(file: &File, path: &Path, timeout: Duration) -> Result<(), LockError> {
    for _ in 0..LOCK_SPIN {
        match fs2::FileExt::try_lock_exclusive(file) {
            Ok(()) => return Ok(()),
            Err(err)
                if err.kind() == std::io::ErrorKind::WouldBlock
                    || err.raw_os_error() == fs2::lock_contended_error().raw_os_error() =>
            {
                std::thread::yield_now();
            }
            Err(source) => {
                return Err(LockError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    lock::lock_exclusive(file, path, timeout)
}

/// Longest message type accepted on append.
pub const MAX_TYPE_LEN: usize = 64;

/// Whether `t` is a message type a bus accepts: 1 to [`MAX_TYPE_LEN`] characters of
/// `[A-Za-z0-9_/-]`, the characters the legacy line format allows in a type. The vocabulary is
/// open (FACT, PROGRESS, RUN_START, …; see docs/bus.md); this keeps out spaces, punctuation
/// and anything that would not survive a round trip through the file.
pub fn is_valid_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TYPE_LEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'-'))
}

fn validate(msg: &NewMessage) -> Result<(), BusError> {
    let invalid = |field, reason: &str| {
        Err(BusError::InvalidMessage {
            field,
            reason: reason.to_string(),
        })
    };
    if msg.msg_type.trim().is_empty() {
        return invalid(
            "type",
            "it is empty; give a type such as FACT, PROGRESS or INFO",
        );
    }
    if !is_valid_type(&msg.msg_type) {
        return invalid(
            "type",
            &format!(
                "{:?} is not a message type: use 1 to {MAX_TYPE_LEN} characters of A-Z, a-z, \
                 0-9, `_`, `/` and `-` (e.g. FACT, PROGRESS, DECISION, QUESTION, ERROR)",
                msg.msg_type
            ),
        );
    }
    if msg.parents.iter().any(|p| p.msg_id.trim().is_empty()) {
        return invalid("parents", "a parent has an empty msg_id");
    }
    if msg.links.iter().any(|l| l.url.trim().is_empty()) {
        return invalid("links", "a link has an empty url");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::read::read_all;
    use crate::storage::ids::ProjectId;

    fn new(body: &str) -> NewMessage {
        NewMessage::new("FACT", ProjectId::parse("p").unwrap()).body(body)
    }

    #[test]
    fn appends_are_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("TASK-MESSAGE-BUS.md");
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        let a = writer.append(&new("a\n")).unwrap();
        let b = append(&bus, &new("---"), &AppendOptions::default()).unwrap();
        let c = writer.append(&new("")).unwrap();
        let msgs = read_all(&bus).unwrap();
        let got: Vec<_> = msgs
            .iter()
            .map(|m| (m.msg_id.clone(), m.body.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (a, "a\n".to_string()),
                (b, "---".to_string()),
                (c, String::new())
            ]
        );
        assert!(std::fs::read_to_string(&bus)
            .unwrap()
            .starts_with("---\nmsg_id: MSG-"));
    }

    #[test]
    fn issue_id_defaults_to_msg_id() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut msg = new("x");
        msg.msg_type = "ISSUE".into();
        let id = append(&bus, &msg, &AppendOptions::default()).unwrap();
        assert_eq!(read_all(&bus).unwrap()[0].issue_id, id);
    }

    #[test]
    fn rotation_between_appends_goes_to_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        writer.append(&new("old")).unwrap();
        std::fs::rename(&bus, dir.path().join("b.md.20260101-000000.archived")).unwrap();
        // A rename that does not take the lock is noticed within PATH_RECHECK.
        std::thread::sleep(PATH_RECHECK * 2);
        writer.append(&new("new")).unwrap();
        let msgs = read_all(&bus).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].body, "new");
    }

    #[test]
    fn a_read_only_live_bus_is_still_appended_to_by_its_owner_process() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut writer = BusWriter::new(&bus, AppendOptions::default());
        writer.append(&new("one")).unwrap();
        std::fs::set_permissions(&bus, std::os::unix::fs::PermissionsExt::from_mode(0o444))
            .unwrap();
        writer.append(&new("two")).unwrap();
        assert_eq!(read_all(&bus).unwrap().len(), 2);
    }

    #[test]
    fn refuses_symlinks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.md");
        std::fs::write(&real, "").unwrap();
        let link = dir.path().join("link.md");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = append(&link, &new("x"), &AppendOptions::default()).unwrap_err();
        assert!(matches!(err, BusError::Symlink { .. }), "{err}");
        let err = append(dir.path(), &new("x"), &AppendOptions::default()).unwrap_err();
        assert!(matches!(err, BusError::NotRegularFile { .. }), "{err}");
        assert_eq!(std::fs::read(&real).unwrap(), b"");
    }

    #[test]
    fn lock_timeout_is_retried_then_reported_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        append(&bus, &new("first"), &AppendOptions::default()).unwrap();
        let before = std::fs::read(&bus).unwrap();
        let holder = crate::storage::lock::LockFile::acquire(&bus, Duration::from_secs(1)).unwrap();
        let opts = AppendOptions {
            lock_timeout: Duration::from_millis(20),
            retry_backoff: Duration::from_millis(1),
            ..AppendOptions::default()
        };
        let err = append(&bus, &new("blocked"), &opts).unwrap_err();
        assert!(
            matches!(err, BusError::LockTimeout { attempts: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("b.md"), "{err}");
        assert_eq!(std::fs::read(&bus).unwrap(), before);
        drop(holder);
        append(&bus, &new("after"), &opts).unwrap();
    }

    #[test]
    fn invalid_messages_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut msg = new("x");
        msg.msg_type = "  ".into();
        let err = append(&bus, &msg, &AppendOptions::default()).unwrap_err();
        assert!(err.to_string().contains("type"), "{err}");
        assert!(!bus.exists());
    }

    #[test]
    fn types_are_tokens_of_the_legacy_type_alphabet() {
        for ok in [
            "FACT",
            "RUN_START",
            "progress",
            "a/b-c_1",
            &"X".repeat(MAX_TYPE_LEN),
        ] {
            assert!(is_valid_type(ok), "{ok}");
        }
        for bad in [
            "",
            "bogus type",
            "FACT:",
            "a.b",
            "É",
            &"X".repeat(MAX_TYPE_LEN + 1),
        ] {
            assert!(!is_valid_type(bad), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("b.md");
        let mut msg = new("x");
        msg.msg_type = "bogus type".into();
        let err = append(&bus, &msg, &AppendOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"bogus type\" is not a message type"),
            "{err}"
        );
        assert!(!bus.exists());
    }
}
