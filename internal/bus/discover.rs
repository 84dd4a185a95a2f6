//! Finding the bus files under a runs root: `<p>/PROJECT-MESSAGE-BUS.md`,
//! `<p>/<t>/TASK-MESSAGE-BUS.md`, the same under the compat `runs/` layout, and the legacy name
//! `MESSAGE-BUS.md`. Symlinks are never followed; run directories are not searched.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::BusError;
use super::parse::Parser;
use super::path;
use super::read;
use crate::storage::paths::{COMPAT_DIR, PROJECT_BUS_FILE, RUNS_DIR, TASK_BUS_FILE};

/// Legacy bus file name accepted by discovery.
pub const LEGACY_BUS_FILE: &str = "MESSAGE-BUS.md";

/// Which bus a file is, from its name and place in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusScope {
    /// `<project>/PROJECT-MESSAGE-BUS.md`
    Project {
        /// Project directory name.
        project: String,
    },
    /// `<project>/<task>/TASK-MESSAGE-BUS.md`
    Task {
        /// Project directory name.
        project: String,
        /// Task directory name.
        task: String,
    },
    /// A legacy `MESSAGE-BUS.md`.
    Legacy,
}

/// A bus file found under a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusFile {
    /// Full path.
    pub path: PathBuf,
    /// Which bus it is.
    pub scope: BusScope,
    /// Size in bytes.
    pub size: u64,
    /// Number of messages it parses to.
    pub messages: usize,
}

/// The bus files under `root`, sorted by path. A missing root has none.
pub fn discover(root: &Path) -> Result<Vec<BusFile>, BusError> {
    let mut found = Vec::new();
    if root.is_dir() {
        walk(root, 1, &mut found);
    }
    found.sort();
    let mut files = Vec::with_capacity(found.len());
    for path in found {
        let Some(file) = path::open_read(&path)? else {
            continue; // removed meanwhile
        };
        let size = file
            .metadata()
            .map_err(|e| BusError::io("inspect", &path, e))?
            .len();
        let messages = count(&file, &path, size)?;
        files.push(BusFile {
            scope: scope(&path),
            path,
            size,
            messages,
        });
    }
    Ok(files)
}

/// Collects bus file paths; `depth` is that of `dir`'s children below the root.
fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            tracing::debug!(dir = %dir.display(), error = %err, "skipping unreadable directory");
            return;
        }
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_file() {
            if matches!(
                name.as_ref(),
                PROJECT_BUS_FILE | TASK_BUS_FILE | LEGACY_BUS_FILE
            ) {
                found.push(entry.path());
            }
        } else if kind.is_dir() && depth <= 3 && !name.starts_with('.') && !name.starts_with('_') {
            // `runs` directly under the root is the compat layout; elsewhere it holds runs.
            if name == RUNS_DIR && !(depth == 1 && name == COMPAT_DIR) {
                continue;
            }
            walk(&entry.path(), depth + 1, found);
        }
    }
}

fn scope(path: &Path) -> BusScope {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let parent = path.parent();
    match path.file_name().and_then(|n| n.to_str()) {
        Some(PROJECT_BUS_FILE) => BusScope::Project {
            project: name(parent),
        },
        Some(TASK_BUS_FILE) => BusScope::Task {
            project: name(parent.and_then(Path::parent)),
            task: name(parent),
        },
        _ => BusScope::Legacy,
    }
}

fn count(file: &File, path: &Path, size: u64) -> Result<usize, BusError> {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    let mut total = 0;
    read::stream(file, path, 0, size, |chunk| {
        parser.feed(chunk, &mut out);
        total += out.len();
        out.clear();
    })?;
    parser.finish(&mut out);
    Ok(total + out.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::append::{append, AppendOptions};
    use crate::bus::message::NewMessage;
    use crate::storage::ids::ProjectId;

    #[test]
    fn finds_project_task_and_compat_buses_but_not_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let msg = NewMessage::new("INFO", ProjectId::parse("p").unwrap());
        let opts = AppendOptions::default();
        for rel in [
            "p/PROJECT-MESSAGE-BUS.md",
            "p/t1/TASK-MESSAGE-BUS.md",
            "runs/q/t2/TASK-MESSAGE-BUS.md",
            "p/t1/runs/r1/TASK-MESSAGE-BUS.md",
            ".conductor/PROJECT-MESSAGE-BUS.md",
        ] {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            append(&path, &msg, &opts).unwrap();
        }
        append(&root.join("p/t1/TASK-MESSAGE-BUS.md"), &msg, &opts).unwrap();
        let found = discover(root).unwrap();
        let rel: Vec<_> = found
            .iter()
            .map(|f| {
                (
                    f.path
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    f.messages,
                )
            })
            .collect();
        assert_eq!(
            rel,
            [
                ("p/PROJECT-MESSAGE-BUS.md".to_string(), 1),
                ("p/t1/TASK-MESSAGE-BUS.md".to_string(), 2),
                ("runs/q/t2/TASK-MESSAGE-BUS.md".to_string(), 1),
            ]
        );
        assert_eq!(
            found[1].scope,
            BusScope::Task {
                project: "p".into(),
                task: "t1".into()
            }
        );
        assert!(found[1].size > 0);
        assert!(discover(&root.join("missing")).unwrap().is_empty());
    }
}
