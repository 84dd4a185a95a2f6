//! An append-only JSON-lines log file rotated by size (`audit.jsonl` → `audit.jsonl.1` → … →
//! `audit.jsonl.<GENERATIONS>`): the file layer of the audit log, written by the API's request
//! audit and by the self-update's events alike.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// File name of the audit log inside `<root>/_audit/`.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// Size at which the audit file is rotated, unless `CONDUCTOR_AUDIT_MAX_BYTES` says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Environment variable overriding [`DEFAULT_MAX_BYTES`] (bytes, at least [`MIN_MAX_BYTES`]).
pub const ENV_MAX_BYTES: &str = "CONDUCTOR_AUDIT_MAX_BYTES";
/// Smallest rotation size accepted from the environment.
pub const MIN_MAX_BYTES: u64 = 4096;
/// Rotated files kept besides the current one.
pub const GENERATIONS: u32 = 3;
/// The rotation size: [`ENV_MAX_BYTES`] when set and valid, else [`DEFAULT_MAX_BYTES`].
pub fn max_bytes() -> u64 {
    static MAX: OnceLock<u64> = OnceLock::new();
    *MAX.get_or_init(|| {
        let Ok(text) = std::env::var(ENV_MAX_BYTES) else {
            return DEFAULT_MAX_BYTES;
        };
        match text.trim().parse::<u64>() {
            Ok(n) if n >= MIN_MAX_BYTES => n,
            _ => {
                tracing::error!(
                    "{ENV_MAX_BYTES}={text:?} is not a byte count of at least {MIN_MAX_BYTES}; \
                     rotating the audit log at {DEFAULT_MAX_BYTES} bytes"
                );
                DEFAULT_MAX_BYTES
            }
        }
    })
}

/// Appends one JSON `line` (a newline is added) to the audit file at `path`, rotating it first
/// when the line would take it past [`max_bytes`]. Failures are logged, never fatal.
///
/// Writers of this process are serialised; the line goes out in one `O_APPEND` write, so other
/// processes' lines never interleave within it. Rotation is a chain of renames (oldest first),
/// each atomic: a crash in between leaves every line in exactly one file.
pub fn append_line(path: &Path, line: &[u8]) {
    append_line_bounded(path, line, max_bytes());
}

fn append_line_bounded(path: &Path, line: &[u8], max_bytes: u64) {
    static WRITE: Mutex<()> = Mutex::new(());
    let _guard = WRITE.lock().unwrap_or_else(|p| p.into_inner());
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line);
    bytes.push(b'\n');
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let size = match std::fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
            Err(err) => return Err(err),
        };
        if size > 0 && size + bytes.len() as u64 > max_bytes {
            rotate(path)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(&bytes)
    })();
    if let Err(err) = result {
        tracing::error!(path = %path.display(), "cannot write the audit log: {err}");
    }
}

/// `<path>.<n>`.
pub fn generation(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Shifts `path.1` → `path.2` … (the oldest is overwritten), then `path` → `path.1`.
fn rotate(path: &Path) -> std::io::Result<()> {
    for n in (1..GENERATIONS).rev() {
        match std::fs::rename(generation(path, n), generation(path, n + 1)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    std::fs::rename(path, generation(path, 1))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_every_line_in_some_generation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let line = vec![b'x'; 1000];
        let max = 8192;
        let count = 20;
        for _ in 0..count {
            append_line_bounded(&path, &line, max);
        }
        let mut total = 0;
        for n in 0..=GENERATIONS {
            let file = if n == 0 {
                path.clone()
            } else {
                generation(&path, n)
            };
            if let Ok(meta) = std::fs::metadata(&file) {
                assert!(meta.len() <= max, "{}", file.display());
                total += meta.len() as usize / 1001;
            }
        }
        assert_eq!(total, count);
        assert!(!generation(&path, GENERATIONS + 1).exists());
    }
}
