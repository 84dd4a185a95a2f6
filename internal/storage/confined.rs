//! The one rule for reaching anything below a runs root: a project, task, run directory, run
//! file or bus file is never reached through a symbolic link. Every component below the root
//! is `lstat`ed (the root itself may be a link: the operator chose it); a component that is a
//! link is refused with an error naming it, so nothing outside the root is read, written or
//! deleted because someone placed a link inside it. Components that do not exist yet are
//! allowed: they are created as real directories and files by the caller.
//!
//! Files are opened with `O_NOFOLLOW` ([`open_file`]), so a file swapped for a link between
//! the check and the open is refused too.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a path below a runs root was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfinedError {
    /// A component below the root is a symbolic link.
    #[error(
        "refusing {path}: it is a symbolic link, and nothing below the runs root {root} is reached through a link (replace the link with a real directory or file)"
    )]
    Symlink {
        /// The component that is a link.
        path: PathBuf,
        /// The runs root.
        root: PathBuf,
    },
    /// The path is not below the root (or uses `..`).
    #[error("refusing {path}: it is not inside the runs root {root}")]
    Outside {
        /// The path asked for.
        path: PathBuf,
        /// The runs root.
        root: PathBuf,
    },
    /// A component that must be a directory is something else.
    #[error("refusing {path}: it is not a directory")]
    NotDirectory {
        /// The component.
        path: PathBuf,
    },
    /// `lstat` or open failed for another reason.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ConfinedError {
    /// Whether this is a refusal (a link, or a path outside the root) rather than an I/O
    /// failure: a client error, not a server error.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ConfinedError::Symlink { .. }
                | ConfinedError::Outside { .. }
                | ConfinedError::NotDirectory { .. }
        )
    }

    /// Whether the path (or a component of it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ConfinedError::Io { source, .. } if source.kind() == ErrorKind::NotFound)
    }
}

/// Checks that `path` lies below `root` and that no existing component below `root` is a
/// symbolic link; every existing component but the last must be a directory. Components that
/// do not exist yet are allowed (and so are the ones below them).
pub fn check(root: &Path, path: &Path) -> Result<(), ConfinedError> {
    let outside = || ConfinedError::Outside {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
    };
    let rest = path.strip_prefix(root).map_err(|_| outside())?;
    let mut current = root.to_path_buf();
    let mut components = rest.components().peekable();
    while let Some(component) = components.next() {
        let Component::Normal(name) = component else {
            return Err(outside());
        };
        current.push(name);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ConfinedError::Symlink {
                    path: current,
                    root: root.to_path_buf(),
                })
            }
            Ok(meta) if !meta.is_dir() && components.peek().is_some() => {
                return Err(ConfinedError::NotDirectory { path: current })
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(ConfinedError::Io {
                    op: "inspect",
                    path: current,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// [`check`], then requires `path` to be an existing real directory.
pub fn existing_dir(root: &Path, path: &Path) -> Result<PathBuf, ConfinedError> {
    check(root, path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(path.to_path_buf()),
        Ok(_) => Err(ConfinedError::NotDirectory {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(ConfinedError::Io {
            op: "open",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// [`check`], then opens the regular file `path` for reading with `O_NOFOLLOW` (a link in its
/// place, even one swapped in after the check, is refused).
pub fn open_file(root: &Path, path: &Path) -> Result<File, ConfinedError> {
    check(root, path)?;
    open_nofollow(path)
}

/// Opens `path` for reading, refusing a symbolic link in its last component (`O_NOFOLLOW`).
/// For files whose directory was checked already (e.g. a run directory found by a listing).
pub fn open_nofollow(path: &Path) -> Result<File, ConfinedError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                ConfinedError::Symlink {
                    path: path.to_path_buf(),
                    root: path.parent().unwrap_or(path).to_path_buf(),
                }
            } else {
                ConfinedError::Io {
                    op: "open",
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_symlinked_component_and_allows_missing_ones() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(outside.path().join("t/runs/r")).unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::fs::create_dir_all(root.path().join("p/t/runs")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("evil")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("t"), root.path().join("p/lt")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("p/t/BUS"))
            .unwrap();
        let r = root.path();

        check(r, &r.join("p/t/runs/new-run")).unwrap();
        check(r, &r.join("new-project/t/runs")).unwrap();
        existing_dir(r, &r.join("p/t")).unwrap();

        for bad in ["evil", "evil/t", "evil/t/runs/r", "p/lt/runs", "p/t/BUS"] {
            let err = check(r, &r.join(bad)).unwrap_err();
            assert!(matches!(err, ConfinedError::Symlink { .. }), "{bad}: {err}");
            assert!(err.is_refusal());
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        assert!(matches!(
            check(r, &r.join("p/../evil")),
            Err(ConfinedError::Outside { .. })
        ));
        assert!(matches!(
            check(r, outside.path()),
            Err(ConfinedError::Outside { .. })
        ));
        assert!(matches!(
            open_file(r, &r.join("p/t/BUS")),
            Err(ConfinedError::Symlink { .. })
        ));
        assert!(matches!(
            open_nofollow(&r.join("p/t/BUS")),
            Err(ConfinedError::Symlink { .. })
        ));
        assert!(existing_dir(r, &r.join("p/missing"))
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn a_file_in_the_middle_is_not_a_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("p"), "x").unwrap();
        assert!(matches!(
            check(root.path(), &root.path().join("p/t")),
            Err(ConfinedError::NotDirectory { .. })
        ));
    }
}
