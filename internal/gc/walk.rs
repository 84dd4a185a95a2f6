//! The directory walk: which projects, tasks and run directories gc looks at.
//!
//! Both layouts are walked (`<root>/<project>` and compat `<root>/runs/<project>`). Only real
//! directories are entered (`symlink_metadata` / `d_type`; symlinks are never followed), names
//! that are not valid ids are skipped, and `.gc-deleting-*` leftovers of a crashed gc are
//! collected for removal.

use std::path::{Path, PathBuf};

use super::error::GcError;
use super::parallel::par_map;
use super::remove::is_aside;
use super::report::Failure;
use crate::storage::ids::{validate_id, IdKind};
use crate::storage::paths::{COMPAT_DIR, DONE_FILE, RUNS_DIR};
use crate::storage::{ProjectId, TaskId};

/// A project directory.
#[derive(Debug, Clone)]
pub struct ProjectDir {
    /// The directory (canonical or compat layout).
    pub dir: PathBuf,
    /// `.gc-deleting-*` directories left in it.
    pub leftovers: Vec<PathBuf>,
}

/// What a task's `runs/` is.
#[derive(Debug, Clone)]
pub enum RunsDir {
    /// There is no `runs/`.
    Missing,
    /// `runs/` exists but is not a real directory (a symlink or a file): never entered.
    NotADir,
    /// A real directory.
    Dir {
        /// The `runs/` directory.
        path: PathBuf,
        /// Names of run directories (real directories with valid run ids), sorted.
        runs: Vec<String>,
        /// `.gc-deleting-*` directories left in it.
        leftovers: Vec<PathBuf>,
        /// Other entries (files, symlinks, invalid names): they make `runs/` non-empty.
        others: usize,
    },
}

/// A task directory and its runs.
#[derive(Debug, Clone)]
pub struct TaskDir {
    /// Owning project.
    pub project: ProjectId,
    /// Task id.
    pub id: TaskId,
    /// The task directory.
    pub dir: PathBuf,
    /// Whether `DONE` exists as a regular file.
    pub done: bool,
    /// The task's `runs/`.
    pub runs: RunsDir,
}

/// Everything gc will look at, plus the directories it could not list.
#[derive(Debug, Default)]
pub struct Tree {
    /// Projects in scope.
    pub projects: Vec<ProjectDir>,
    /// Their tasks, in project order then task id order.
    pub tasks: Vec<TaskDir>,
    /// Listing failures (the walk goes on past them).
    pub errors: Vec<Failure>,
}

/// Walks `root`, limited to `only` when given, listing task run dirs on `threads` threads.
pub fn walk(root: &Path, only: Option<&ProjectId>, threads: usize) -> Result<Tree, GcError> {
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(GcError::RootMissing {
                path: root.to_path_buf(),
            })
        }
        Err(e) => return Err(GcError::io("inspect", root, e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(GcError::RootNotDir {
                path: root.to_path_buf(),
            })
        }
        Ok(_) => {}
    }
    let mut tree = Tree::default();
    let mut project_dirs = Vec::new();
    for (base, skip_compat) in [(root.to_path_buf(), true), (root.join(COMPAT_DIR), false)] {
        if !skip_compat && !is_real_dir(&base) {
            continue;
        }
        let entries = match list(&base) {
            Ok(entries) => entries,
            Err(e) => {
                tree.errors.push(Failure::new(&base, e));
                continue;
            }
        };
        for entry in entries {
            let Some(name) = entry.name.filter(|_| entry.is_dir) else {
                continue;
            };
            if skip_compat && name == COMPAT_DIR {
                continue;
            }
            let Ok(id) = ProjectId::parse(&name) else {
                continue;
            };
            if only.is_some_and(|p| *p != id) {
                continue;
            }
            project_dirs.push((id, base.join(&name)));
        }
    }
    if let (Some(project), true) = (only, project_dirs.is_empty()) {
        return Err(GcError::ProjectNotFound {
            project: project.to_string(),
            root: root.to_path_buf(),
        });
    }

    let mut task_dirs = Vec::new();
    for (id, dir) in project_dirs {
        let entries = match list(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                tree.errors.push(Failure::new(&dir, e));
                continue;
            }
        };
        let mut leftovers = Vec::new();
        for entry in entries {
            let Some(name) = entry.name.filter(|_| entry.is_dir) else {
                continue;
            };
            if is_aside(&name) {
                leftovers.push(dir.join(&name));
            } else if let Ok(task) = TaskId::parse(&name) {
                task_dirs.push((id.clone(), task, dir.join(&name)));
            }
        }
        tree.projects.push(ProjectDir { dir, leftovers });
    }

    let listed = par_map(&task_dirs, threads, |(project, id, dir)| {
        let done = std::fs::symlink_metadata(dir.join(DONE_FILE))
            .map(|m| m.is_file())
            .unwrap_or(false);
        let runs = list_runs_dir(&dir.join(RUNS_DIR));
        (
            TaskDir {
                project: project.clone(),
                id: id.clone(),
                dir: dir.clone(),
                done,
                runs: runs.as_ref().map_or(RunsDir::NotADir, |r| r.clone()),
            },
            runs.err().map(|e| Failure::new(&dir.join(RUNS_DIR), e)),
        )
    });
    for (task, error) in listed {
        tree.errors.extend(error);
        tree.tasks.push(task);
    }
    Ok(tree)
}

fn list_runs_dir(path: &Path) -> Result<RunsDir, GcError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RunsDir::Missing),
        Err(e) => return Err(GcError::io("inspect", path, e)),
        Ok(meta) if !meta.is_dir() => return Ok(RunsDir::NotADir),
        Ok(_) => {}
    }
    let mut runs = Vec::new();
    let mut leftovers = Vec::new();
    let mut others = 0;
    for entry in list(path)? {
        match entry.name {
            Some(name) if entry.is_dir && is_aside(&name) => leftovers.push(path.join(&name)),
            Some(name) if entry.is_dir && validate_id(IdKind::Run, &name).is_ok() => {
                runs.push(name)
            }
            _ => others += 1,
        }
    }
    Ok(RunsDir::Dir {
        path: path.to_path_buf(),
        runs,
        leftovers,
        others,
    })
}

fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.is_dir())
        .unwrap_or(false)
}

/// An entry of a directory, typed by `d_type` (symlinks are not followed).
struct Entry {
    /// The name; `None` when it is not UTF-8 (never a valid id).
    name: Option<String>,
    /// A real directory (a symlink to one is not).
    is_dir: bool,
}

/// Entries of `dir`, sorted by name.
fn list(dir: &Path) -> Result<Vec<Entry>, GcError> {
    let entries = std::fs::read_dir(dir).map_err(|e| GcError::io("list", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| GcError::io("list", dir, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| GcError::io("inspect", entry.path(), e))?
            .is_dir();
        out.push(Entry {
            name: entry.file_name().into_string().ok(),
            is_dir,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
