//! A preallocated slot for a run's final record. The supervisor fills a small hidden file in
//! the run directory when the run starts; if writing the final run-info.yaml then fails
//! because the file system is full, the slot is given back and the write retried, so a full
//! disk never loses a run's real end (exit code, end time, cause). The file is removed when
//! the supervisor is done with it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the slot file in a run directory (hidden: not a run file).
pub const RESERVE_FILE: &str = ".final-record.reserve";

/// Bytes held back: many times a final record and its temp file.
const RESERVE_BYTES: usize = 64 * 1024;

/// The held slot; removed on drop.
#[derive(Debug)]
pub struct FinalRecordReserve {
    path: Option<PathBuf>,
}

impl FinalRecordReserve {
    /// Fills the slot in `run_dir`. A disk already too full to hold it gets no slot (logged):
    /// the run goes on and its end is recorded if any space is left then.
    pub fn create(run_dir: &Path) -> Self {
        let path = run_dir.join(RESERVE_FILE);
        let written = std::fs::File::create(&path).and_then(|mut f| {
            f.write_all(&[0u8; RESERVE_BYTES])
                .and_then(|()| f.sync_all())
        });
        match written {
            Ok(()) => Self { path: Some(path) },
            Err(err) => {
                tracing::warn!(
                    "cannot reserve space for the final record in {}: {err}",
                    run_dir.display()
                );
                let _ = std::fs::remove_file(&path);
                Self { path: None }
            }
        }
    }

    /// Gives the space back (before retrying a write that found the disk full); returns
    /// whether there was any to give.
    pub fn release(&mut self) -> bool {
        match self.path.take() {
            Some(path) => std::fs::remove_file(&path).is_ok(),
            None => false,
        }
    }
}

impl Drop for FinalRecordReserve {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_space_until_released_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut reserve = FinalRecordReserve::create(dir.path());
        let path = dir.path().join(RESERVE_FILE);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            RESERVE_BYTES as u64
        );
        assert!(reserve.release());
        assert!(!path.exists());
        assert!(!reserve.release());
        drop(FinalRecordReserve::create(dir.path()));
        assert!(!path.exists());
    }
}
