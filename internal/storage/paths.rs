//! The file tree under a runs root. Names here are a compatibility contract with
//! the Go reference; every path is built from typed, validated ids only.

use std::path::{Path, PathBuf};

use super::confined::ConfinedError;
use super::ids::{ProjectId, RunId, TaskId};

/// Project bus file name.
pub const PROJECT_BUS_FILE: &str = "PROJECT-MESSAGE-BUS.md";
/// File holding a project's working directory.
pub const PROJECT_ROOT_FILE: &str = "PROJECT-ROOT.txt";
/// Task prompt file name.
pub const TASK_FILE: &str = "TASK.md";
/// Task bus file name.
pub const TASK_BUS_FILE: &str = "TASK-MESSAGE-BUS.md";
/// Task dependency config file name.
pub const TASK_CONFIG_FILE: &str = "TASK-CONFIG.yaml";
/// Task completion marker.
pub const DONE_FILE: &str = "DONE";
/// Directory of a task's runs.
pub const RUNS_DIR: &str = "runs";
/// Run metadata file name.
pub const RUN_INFO_FILE: &str = "run-info.yaml";
/// Lock file guarding read-modify-write updates of run-info.yaml.
pub const RUN_INFO_LOCK_FILE: &str = "run-info.yaml.lock";
/// Lock file held by a run's supervisor for its whole life.
pub const SUPERVISOR_LOCK_FILE: &str = "supervisor.lock";
/// Lock file held by a task's Ralph loop for its whole life (hidden: not a task file).
pub const TASK_LOOP_LOCK_FILE: &str = ".loop.lock";
/// Full prompt given to the agent on stdin.
pub const PROMPT_FILE: &str = "prompt.md";
/// The run's final answer.
pub const OUTPUT_FILE: &str = "output.md";
/// Raw agent stdout.
pub const STDOUT_FILE: &str = "agent-stdout.txt";
/// Raw agent stderr.
pub const STDERR_FILE: &str = "agent-stderr.txt";
/// Server-private state directory under the root (update state, planner).
pub const CONDUCTOR_STATE_DIR: &str = ".conductor";
/// Audit log directory under the root.
pub const AUDIT_DIR: &str = "_audit";
/// Directory of the compat layout `<root>/runs/<project>/<task>/…`.
pub const COMPAT_DIR: &str = "runs";

/// A runs root: the top of the `<project>/<task>/runs/<run>` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// Wraps a root directory (not required to exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<root>/<project>`
    pub fn project_dir(&self, project: &ProjectId) -> PathBuf {
        self.path.join(project)
    }

    /// `<root>/<project>/PROJECT-MESSAGE-BUS.md`
    pub fn project_bus(&self, project: &ProjectId) -> PathBuf {
        self.project_dir(project).join(PROJECT_BUS_FILE)
    }

    /// `<root>/<project>/<task>`
    pub fn task_dir(&self, project: &ProjectId, task: &TaskId) -> PathBuf {
        self.project_dir(project).join(task)
    }

    /// `<root>/<project>/<task>/TASK-MESSAGE-BUS.md`
    pub fn task_bus(&self, project: &ProjectId, task: &TaskId) -> PathBuf {
        self.task_dir(project, task).join(TASK_BUS_FILE)
    }

    /// `<root>/<project>/<task>/runs`
    pub fn runs_dir(&self, project: &ProjectId, task: &TaskId) -> PathBuf {
        self.task_dir(project, task).join(RUNS_DIR)
    }

    /// `<root>/<project>/<task>/runs/<run>`
    pub fn run_dir(&self, project: &ProjectId, task: &TaskId, run: &RunId) -> PathBuf {
        self.runs_dir(project, task).join(run)
    }

    /// `<root>/.conductor`
    pub fn state_dir(&self) -> PathBuf {
        self.path.join(CONDUCTOR_STATE_DIR)
    }

    /// `<root>/_audit`
    pub fn audit_dir(&self) -> PathBuf {
        self.path.join(AUDIT_DIR)
    }

    /// `path` (built by one of the methods above), refused when a component of it below the
    /// root is a symbolic link ([`super::confined::check`]). Every command and route goes
    /// through this (or the `confined_*` shorthands) before reading, writing or deleting.
    pub fn confine(&self, path: PathBuf) -> Result<PathBuf, ConfinedError> {
        super::confined::check(&self.path, &path)?;
        Ok(path)
    }

    /// [`Root::project_dir`], confined.
    pub fn confined_project_dir(&self, project: &ProjectId) -> Result<PathBuf, ConfinedError> {
        self.confine(self.project_dir(project))
    }

    /// [`Root::task_dir`], confined.
    pub fn confined_task_dir(
        &self,
        project: &ProjectId,
        task: &TaskId,
    ) -> Result<PathBuf, ConfinedError> {
        self.confine(self.task_dir(project, task))
    }

    /// [`Root::runs_dir`], confined.
    pub fn confined_runs_dir(
        &self,
        project: &ProjectId,
        task: &TaskId,
    ) -> Result<PathBuf, ConfinedError> {
        self.confine(self.runs_dir(project, task))
    }

    /// [`Root::run_dir`], confined.
    pub fn confined_run_dir(
        &self,
        project: &ProjectId,
        task: &TaskId,
        run: &RunId,
    ) -> Result<PathBuf, ConfinedError> {
        self.confine(self.run_dir(project, task, run))
    }

    /// The task bus (with a task) or the project bus, confined.
    pub fn confined_bus(
        &self,
        project: &ProjectId,
        task: Option<&TaskId>,
    ) -> Result<PathBuf, ConfinedError> {
        self.confine(match task {
            Some(task) => self.task_bus(project, task),
            None => self.project_bus(project),
        })
    }
}

/// Whether `path` exists under `base` with no symlink on the way (each component below `base`,
/// including `path` itself, is a real directory or file). Used before trusting a path that
/// came from outside a listing (e.g. a file-change notification or an index).
pub fn is_inside_without_symlinks(base: &Path, path: &Path) -> bool {
    super::confined::check(base, path).is_ok() && std::fs::symlink_metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinked_components_are_outside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(outside.path().join("t/runs/r")).unwrap();
        std::fs::create_dir_all(dir.path().join("p/t/runs/r")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        assert!(is_inside_without_symlinks(
            dir.path(),
            &dir.path().join("p/t/runs/r")
        ));
        assert!(!is_inside_without_symlinks(
            dir.path(),
            &dir.path().join("evil/t/runs/r")
        ));
        assert!(!is_inside_without_symlinks(
            dir.path(),
            &dir.path().join("p/../evil")
        ));
        assert!(!is_inside_without_symlinks(dir.path(), outside.path()));
    }

    #[test]
    fn tree_names() {
        let root = Root::new("/r");
        let p = ProjectId::parse("proj").unwrap();
        let t = TaskId::parse("task-1").unwrap();
        let r = RunId::parse("20260101-1200000000-1-1").unwrap();
        assert_eq!(
            root.run_dir(&p, &t, &r),
            PathBuf::from("/r/proj/task-1/runs/20260101-1200000000-1-1")
        );
        assert_eq!(
            root.task_bus(&p, &t),
            PathBuf::from("/r/proj/task-1/TASK-MESSAGE-BUS.md")
        );
        assert_eq!(
            root.project_bus(&p),
            PathBuf::from("/r/proj/PROJECT-MESSAGE-BUS.md")
        );
    }
}
