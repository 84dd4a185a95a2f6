//! The path safety rule applied before every read and append: a bus path
//! must not be a symlink and, when it exists, must be a regular file.

use std::fs::{File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::error::BusError;

/// `lstat`s `path`: `Ok(None)` when it does not exist, an error when it is a symlink or not a
/// regular file.
pub fn check(path: &Path) -> Result<Option<Metadata>, BusError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if meta.file_type().is_symlink() {
                Err(BusError::Symlink {
                    path: path.to_path_buf(),
                })
            } else if !meta.is_file() {
                Err(BusError::NotRegularFile {
                    path: path.to_path_buf(),
                })
            } else {
                Ok(Some(meta))
            }
        }
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(BusError::io("inspect", path, err)),
    }
}

/// Which file a path names, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Device id.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
}

/// [`check`] for the append hot path: one raw `lstat` (no `statx`, no allocation), returning
/// only what an appender compares. Same refusals as [`check`].
pub fn identity(path: &Path) -> Result<Option<Identity>, BusError> {
    match nix::sys::stat::lstat(path) {
        Ok(st) => {
            let kind = st.st_mode & libc::S_IFMT;
            if kind == libc::S_IFLNK {
                Err(BusError::Symlink {
                    path: path.to_path_buf(),
                })
            } else if kind != libc::S_IFREG {
                Err(BusError::NotRegularFile {
                    path: path.to_path_buf(),
                })
            } else {
                // `dev_t`/`ino_t` are u64 on 64-bit Linux but narrower elsewhere.
                #[allow(clippy::unnecessary_cast)]
                Ok(Some(Identity {
                    dev: st.st_dev as u64,
                    ino: st.st_ino as u64,
                    size: st.st_size.max(0) as u64,
                }))
            }
        }
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(errno) => Err(BusError::io("inspect", path, errno.into())),
    }
}

/// Opens an existing bus for reading (`O_NOFOLLOW`); `Ok(None)` when it does not exist.
pub fn open_read(path: &Path) -> Result<Option<File>, BusError> {
    if check(path)?.is_none() {
        return Ok(None);
    }
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(open_error(path, err)),
    }
}

/// Maps an open error, turning `ELOOP` from `O_NOFOLLOW` into the symlink refusal.
pub fn open_error(path: &Path, err: std::io::Error) -> BusError {
    if err.raw_os_error() == Some(libc::ELOOP) {
        BusError::Symlink {
            path: path.to_path_buf(),
        }
    } else {
        BusError::io("open", path, err)
    }
}
