//! `run-agent task delete`: remove a task's directory (its runs, bus, TASK.md, DONE) the
//! crash-safe way gc does ([`crate::gc::delete_task`]): never through a symlink, renamed aside
//! before removal. A task with a running run, or whose task loop is active (even between
//! runs), is refused: stop it first.

use std::process::ExitCode;

use anyhow::Context;

use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::Root;

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
    let deleted = crate::gc::delete_task(&Root::new(&setup.root), &project, &task)?;
    if deleted.leftovers > 0 {
        println!(
            "removed {} leftover(s) of an interrupted delete of task {task}",
            deleted.leftovers
        );
    }
    println!("deleted task {task} of project {project}");
    Ok(ExitCode::SUCCESS)
}
