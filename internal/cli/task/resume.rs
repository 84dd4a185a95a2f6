//! `run-agent task resume`: continue an existing task from its latest run. The loop starts
//! again with the restart prefix, `previous_run_id` pointing at the latest run, and — when the
//! latest run recorded the agent's session and the agent type is unchanged — its first run
//! continues that conversation (claude, codex, gemini; see `crate::agent::resume_argv`). A
//! task that is DONE is only resumed with `--reset-done`, which removes DONE.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::agent::session_to_resume;
use crate::cli::job::prompt_or_task_md;
use crate::runner::{LoopRequest, TaskRequest};
use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::liveness::read_reconciled;
use crate::storage::paths::{DONE_FILE, RUN_INFO_FILE, TASK_FILE};
use crate::storage::{Root, RunInfo, RunStatus};

use super::drive;

/// Restarts allowed by default when resuming (as the reference).
const DEFAULT_RESUME_RESTARTS: u32 = 3;

/// `task resume` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ResumeArgs {
    /// Project id.
    #[arg(long)]
    pub project: String,
    /// Task id.
    #[arg(long)]
    pub task: String,
    /// Agent (default: the latest run's agent, by its recorded `agent_name`).
    #[arg(long)]
    pub agent: Option<String>,
    /// The prompt (`--prompt` or `--prompt-file`).
    #[command(flatten)]
    pub prompt: crate::cli::job::PromptArgs,
    /// Remove the task's DONE file and continue anyway.
    #[arg(long)]
    pub reset_done: bool,
    /// Restarts after the first attempt.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RESUME_RESTARTS)]
    pub max_restarts: u32,
    /// Restart delays and the wait for child runs.
    #[command(flatten)]
    pub timing: super::LoopTiming,
    /// The task's spending limit (raise it to continue a task stopped by its budget).
    #[command(flatten)]
    pub budget: super::BudgetFlags,
    /// Working directory of the agent (default: the latest run's `cwd`: claude and gemini
    /// keep their conversations per directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Kill a run after this long without output.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Runs root (inside a run: the run's own) and config.
    #[command(flatten)]
    pub location: crate::cli::scope::RootArgs,
}

/// Runs `task resume`.
pub fn run(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let project = ProjectId::parse(&args.project).context("--project")?;
    let task = TaskId::parse(&args.task).context("--task")?;
    let setup = args.location.setup()?;
    let root = Root::new(&setup.root);
    let task_dir = root.confined_task_dir(&project, &task)?;
    if !task_dir.is_dir() {
        bail!(
            "task {task} of project {project} does not exist ({})",
            task_dir.display()
        );
    }
    // Before anything touches the task: a task whose loop runs is refused here.
    let lock = crate::runner::TaskLoopLock::acquire(&setup.root, &project, &task)?;
    let latest = latest_run(&root, &project, &task)?;
    if let Some(run) = latest.as_ref().filter(|r| r.status == RunStatus::Running) {
        bail!(
            "task {task} has a running run {}; stop it first (run-agent stop)",
            run.run_id
        );
    }
    let done = task_dir.join(DONE_FILE);
    if done.exists() {
        if !args.reset_done {
            bail!(
                "task {task} is done ({} exists); pass --reset-done to remove it and continue",
                done.display()
            );
        }
        std::fs::remove_file(&done).with_context(|| format!("cannot remove {}", done.display()))?;
    }
    let prompt = prompt_or_task_md(args.prompt.read()?, &task_dir.join(TASK_FILE))?;
    let agent = match (&args.agent, &latest) {
        (None, Some(latest)) if !latest.agent.is_empty() => {
            crate::agent::select_for_resume(latest, setup.config.as_ref())?
        }
        _ => crate::cli::job::select_agent(args.agent.as_deref(), &setup)?,
    };
    let resume_session = session_to_resume(latest.as_ref(), &agent);
    let mut job = crate::cli::job::job_request(
        &setup,
        project,
        task,
        agent,
        prompt,
        resume_cwd(args.cwd, latest.as_ref()).as_deref(),
        args.timeout.as_deref(),
    )?;
    job.previous_run_id = latest.map(|r| r.run_id);
    let mut task_req = TaskRequest::new(job, args.max_restarts);
    task_req.resume_session = resume_session;
    args.timing.apply(&mut task_req)?;
    let mut req = LoopRequest::new(task_req);
    req.budget = args.budget.budget()?;
    drive(&setup, req, lock)
}

/// `--cwd`, else the working directory the latest run recorded (the resumed agent must run
/// where its conversation was kept).
fn resume_cwd(flag: Option<PathBuf>, latest: Option<&RunInfo>) -> Option<PathBuf> {
    flag.or_else(|| {
        latest
            .and_then(|r| r.cwd.as_deref())
            .filter(|c| !c.trim().is_empty())
            .map(PathBuf::from)
    })
}

/// The task's latest run (by run id order) with a readable record.
fn latest_run(root: &Root, project: &ProjectId, task: &TaskId) -> anyhow::Result<Option<RunInfo>> {
    let runs_dir = root.confined_runs_dir(project, task)?;
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&runs_dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
        Err(_) => return Ok(None),
    };
    dirs.sort();
    Ok(dirs
        .iter()
        .rev()
        .find_map(|d| read_reconciled(&d.join(RUN_INFO_FILE)).ok()))
}
