//! `run-agent task delete`: remove a task's directory (its runs, bus, TASK.md, DONE). A task
//! with a running run, or whose task loop is active (even between runs), is refused: stop it
//! first.

use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::liveness::read_reconciled;
use crate::storage::paths::RUN_INFO_FILE;
use crate::storage::{Root, RunStatus};

/// `task delete` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// Project id.
    #[arg(long)]
    pub project: String,
    /// Task id.
    #[arg(long)]
    pub task: String,
    /// Runs root and config.
    #[command(flatten)]
    pub location: crate::cli::scope::RootArgs,
}

/// Runs `task delete`.
pub fn run(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let project = ProjectId::parse(&args.project).context("--project")?;
    let task = TaskId::parse(&args.task).context("--task")?;
    let setup = args.location.setup()?;
    let root = Root::new(&setup.root);
    let task_dir = root.task_dir(&project, &task);
    let meta = std::fs::symlink_metadata(&task_dir).with_context(|| {
        format!(
            "task {task} of project {project} does not exist ({})",
            task_dir.display()
        )
    })?;
    if !meta.is_dir() {
        bail!("{} is not a task directory", task_dir.display());
    }
    if crate::runner::loop_lock::active(&task_dir) {
        bail!(
            "task {task} has a running task loop; stop it first (run-agent stop --project {project} --task {task})"
        );
    }
    let runs_dir = root.runs_dir(&project, &task);
    for entry in std::fs::read_dir(&runs_dir).into_iter().flatten().flatten() {
        let info_path = entry.path().join(RUN_INFO_FILE);
        if let Ok(info) = read_reconciled(&info_path) {
            if info.status == RunStatus::Running {
                bail!(
                    "task {task} has a running run {}; stop it first (run-agent stop --project {project} --task {task})",
                    info.run_id
                );
            }
        }
    }
    std::fs::remove_dir_all(&task_dir)
        .with_context(|| format!("cannot delete {}", task_dir.display()))?;
    println!("deleted task {task} of project {project}");
    Ok(ExitCode::SUCCESS)
}
