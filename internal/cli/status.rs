//! `run-agent status`: one task's derived status, DONE flag, latest run (status, exit code,
//! pid and whether it is alive) and dependencies, read from the files (no server). Runs of
//! the config's `storage.extra_roots` that name the task count as its runs (read-only).

use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::json;

use crate::runner::inspect::{extra_runs, TaskView};
use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::scan::TaskEntry;
use crate::storage::{Root, RunStatus};

/// `status` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Project id.
    #[arg(long)]
    pub project: String,
    /// Task id.
    #[arg(long)]
    pub task: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Runs root and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// Runs `status`.
pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let project = ProjectId::parse(&args.project).context("--project")?;
    let task = TaskId::parse(&args.task).context("--task")?;
    let setup = args.location.setup()?;
    let root = Root::new(&setup.root);
    let dir = root.confined_task_dir(&project, &task)?;
    let extra: Vec<_> = extra_runs(&setup.extra_roots)
        .into_iter()
        .filter(|r| r.project == project && r.task == task)
        .map(|r| r.entry)
        .collect();
    if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) && extra.is_empty() {
        bail!(
            "task {task} not found in project {project} (looked in {}{})",
            dir.display(),
            setup
                .extra_roots
                .iter()
                .map(|e| format!(" and extra root {}", e.display()))
                .collect::<String>()
        );
    }
    let done = std::fs::symlink_metadata(dir.join(crate::storage::paths::DONE_FILE))
        .is_ok_and(|m| m.is_file());
    let view = TaskView::read(TaskEntry {
        project,
        id: task,
        dir,
        done,
    })
    .with_runs(extra);
    let latest = view.latest().and_then(|r| r.info.as_ref().ok());
    let pid_alive = latest.map(|i| i.status == RunStatus::Running && i.recorded_process().alive());
    let mut v = super::list::task_json(&view);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("runs");
        obj.insert("runs".into(), json!(view.runs.len()));
        obj.insert(
            "latest_status".into(),
            json!(view.latest().map(|r| r.status().as_str())),
        );
        obj.insert("exit_code".into(), json!(latest.map(|i| i.exit_code)));
        obj.insert("pid".into(), json!(latest.map(|i| i.pid)));
        obj.insert("pid_alive".into(), json!(pid_alive));
        obj.insert(
            "error_summary".into(),
            json!(latest.and_then(|i| i.error_summary.clone())),
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = |ids: &[TaskId]| {
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.iter()
                .map(TaskId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let opt = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    println!("project: {}", view.task.project);
    println!("task: {}", view.task.id);
    println!("status: {}", view.status);
    println!("done: {}", view.task.done);
    println!("runs: {}", view.runs.len());
    println!("latest_run: {}", opt(view.latest().map(|r| r.run_id())));
    println!(
        "latest_status: {}",
        opt(view.latest().map(|r| r.status().to_string()))
    );
    println!(
        "exit_code: {}",
        opt(latest.map(|i| i.exit_code.to_string()))
    );
    println!("pid: {}", opt(latest.map(|i| i.pid.to_string())));
    println!("pid_alive: {}", opt(pid_alive.map(|a| a.to_string())));
    if let Some(summary) = latest.and_then(|i| i.error_summary.as_ref()) {
        println!("error_summary: {summary}");
    }
    if let Some(Err(err)) = view.latest().map(|r| &r.info) {
        println!("error: {err}");
    }
    let totals = super::list::usage_of(&view.runs);
    if totals.runs_with_usage > 0 {
        println!("usage: {}", super::list::usage_text(&totals));
    }
    if let Some(excess) = crate::runner::budget::marked(&view.task.dir) {
        println!("budget: {excess}");
    }
    println!("depends_on: {}", list(&view.depends_on));
    println!("blocked_by: {}", list(&view.blocked_by));
    if let Some(err) = &view.deps_error {
        println!("deps_error: {err}");
    }
    Ok(ExitCode::SUCCESS)
}
