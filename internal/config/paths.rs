//! Path spelling in config files: `~` expansion and resolution against the config file's
//! directory.

use std::path::{Component, Path, PathBuf};

/// Why a path could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// The path starts with `~` but no home directory is known.
    NoHome,
}

/// Expands a leading `~` or `~/` with `home`; other paths are returned unchanged.
/// (`~user` is not supported and stays literal.)
pub(crate) fn expand_tilde(path: &Path, home: Option<&Path>) -> Result<PathBuf, PathProblem> {
    let mut components = path.components();
    match components.next() {
        Some(Component::Normal(first)) if first == "~" => {
            let home = home.ok_or(PathProblem::NoHome)?;
            Ok(home.join(components.as_path()))
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// Expands `~`, then makes a relative path absolute against `base`, dropping `.` parts.
pub(crate) fn resolve(
    path: &Path,
    base: &Path,
    home: Option<&Path>,
) -> Result<PathBuf, PathProblem> {
    let expanded = expand_tilde(path, home)?;
    let joined = if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    };
    Ok(joined.components().collect())
}

/// `path` made absolute against `cwd` (no `~` handling: the shell already did it).
pub(crate) fn absolute_from(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.components().collect()
    } else {
        cwd.join(path).components().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expands_only_at_start() {
        let home = Path::new("/home/u");
        assert_eq!(
            expand_tilde(Path::new("~/k"), Some(home)).unwrap(),
            PathBuf::from("/home/u/k")
        );
        assert_eq!(
            expand_tilde(Path::new("~"), Some(home)).unwrap(),
            PathBuf::from("/home/u")
        );
        assert_eq!(
            expand_tilde(Path::new("a/~/k"), Some(home)).unwrap(),
            PathBuf::from("a/~/k")
        );
        assert_eq!(
            expand_tilde(Path::new("~bob/k"), Some(home)).unwrap(),
            PathBuf::from("~bob/k")
        );
        assert_eq!(
            expand_tilde(Path::new("~/k"), None),
            Err(PathProblem::NoHome)
        );
    }

    #[test]
    fn relative_paths_resolve_against_base() {
        let base = Path::new("/etc/conductor");
        let home = Some(Path::new("/home/u"));
        assert_eq!(
            resolve(Path::new("runs"), base, home).unwrap(),
            PathBuf::from("/etc/conductor/runs")
        );
        assert_eq!(
            resolve(Path::new("./keys/k"), base, home).unwrap(),
            PathBuf::from("/etc/conductor/keys/k")
        );
        assert_eq!(
            resolve(Path::new("/abs"), base, home).unwrap(),
            PathBuf::from("/abs")
        );
        assert_eq!(
            resolve(Path::new("~/r"), base, home).unwrap(),
            PathBuf::from("/home/u/r")
        );
        assert_eq!(
            absolute_from(Path::new("x/./y"), Path::new("/w")),
            PathBuf::from("/w/x/y")
        );
    }
}
