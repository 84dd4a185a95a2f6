//! `run-agent stop`: stop a task's running run (or a given run): SIGTERM to its process
//! group, a grace period, then SIGKILL to the group. The run is recorded as `stopped`, and
//! the task's Ralph loop does not restart it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};

use crate::runner::duration::parse_duration;
use crate::runner::{stop, stop_run, StopOptions};
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::liveness::read_reconciled;
use crate::storage::paths::RUN_INFO_FILE;
use crate::storage::{Root, RunStatus};

/// `stop` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    /// Project id.
    #[arg(long)]
    pub project: String,
    /// Task id.
    #[arg(long)]
    pub task: String,
    /// The run to stop (default: the task's latest running run).
    #[arg(long)]
    pub run: Option<String>,
    /// SIGKILL the process group at once.
    #[arg(long)]
    pub force: bool,
    /// Time between SIGTERM and SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub grace: String,
    /// Runs root and config.
    #[command(flatten)]
    pub location: crate::cli::scope::RootArgs,
}

/// Runs `stop`.
pub fn run(args: StopArgs) -> anyhow::Result<ExitCode> {
    let project = ProjectId::parse(&args.project).context("--project")?;
    let task = TaskId::parse(&args.task).context("--task")?;
    let grace = parse_duration("--grace", &args.grace)?;
    let setup = args.location.setup()?;
    let root = Root::new(&setup.root);
    let run_dir = match &args.run {
        Some(run) => {
            let run = RunId::parse(run).context("--run")?;
            let dir = root.confined_run_dir(&project, &task, &run)?;
            // Like the server's stop route, a run of an extra root can be stopped by its id.
            let extra = || {
                crate::runner::inspect::extra_runs(&setup.extra_roots)
                    .into_iter()
                    .find(|r| {
                        r.project == project && r.task == task && r.entry.run_id() == run.as_str()
                    })
                    .map(|r| r.entry.dir)
            };
            if dir.join(RUN_INFO_FILE).exists() {
                dir
            } else if let Some(dir) = extra() {
                dir
            } else {
                return Err(anyhow!(
                    "run {run} not found in task {task} of project {project} (looked in {})",
                    dir.display()
                ));
            }
        }
        None => match latest_running(&root, &project, &task)? {
            Some(dir) => dir,
            None => {
                // A task loop may be between two runs: make sure it starts no new one.
                let task_dir = root.confined_task_dir(&project, &task)?;
                stop::request(&task_dir)?;
                if crate::storage::liveness::task_loop_active(&task_dir) {
                    println!(
                        "task {task} of project {project}: no run was running; its task loop, \
                         waiting to restart, now ends without starting another run"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                return Err(anyhow!(
                    "task {task} of project {project} has no running run; marked the task \
                     stopped, so a task loop waiting to restart it starts no new run"
                ));
            }
        },
    };
    let info = stop_run(
        &run_dir,
        StopOptions {
            grace,
            force: args.force,
        },
    )?;
    println!("run_id: {}", info.run_id);
    println!("status: {}", info.status);
    println!("exit_code: {}", info.exit_code);
    Ok(ExitCode::SUCCESS)
}

fn latest_running(
    root: &Root,
    project: &ProjectId,
    task: &TaskId,
) -> anyhow::Result<Option<PathBuf>> {
    let runs_dir = root.confined_runs_dir(project, task)?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&runs_dir)
        .with_context(|| {
            format!(
                "task {task} of project {project} has no runs ({})",
                runs_dir.display()
            )
        })?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    Ok(dirs.into_iter().rev().find(|dir| {
        read_reconciled(&dir.join(RUN_INFO_FILE))
            .is_ok_and(|info| info.status == RunStatus::Running)
    }))
}
