//! `run-agent task`: the Ralph loop of a task — run the root agent and restart it until
//! `<task>/DONE` exists, then post the completion FACT to the project bus.
//! Exit 0 when the task is done, 1 when it gave up or was stopped.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use chrono::Utc;

use crate::bus::{self, AppendOptions, NewMessage};
use crate::runner::deps::{self, DepsWait};
use crate::runner::duration::parse_duration;
use crate::runner::interrupt;
use crate::runner::slots;
use crate::runner::stop::{self, STOP_MARKER};
use crate::runner::{run_task, TaskEnd, TaskLoopLock, TaskRequest};
use crate::storage::ids::{generate_task_id, ProjectId, TaskId};
use crate::storage::paths::TASK_FILE;
use crate::storage::{Root, RunInfo};

mod delete;
pub mod resume;

/// `task` flags.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TaskArgs {
    /// Continue an existing task instead of starting one.
    #[command(subcommand)]
    pub action: Option<TaskAction>,
    /// Project id.
    #[arg(long, required = true)]
    pub project: Option<String>,
    /// Task id (default: a new `task-<date>-<time>-<slug>` id).
    #[arg(long)]
    pub task: Option<String>,
    /// Agent: a name from the config, or claude, codex or gemini (default: defaults.agent).
    #[arg(long)]
    pub agent: Option<String>,
    /// The prompt text (default: the task's TASK.md).
    #[arg(long, conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,
    /// Restarts after the first attempt (0 = one attempt; default: defaults.max_restarts, 100).
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// Delay before the first restart; doubled after each restart.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub restart_delay: String,
    /// Upper bound of the restart delay.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub restart_delay_max: String,
    /// How long to wait for still-running child runs once DONE exists.
    #[arg(long, value_name = "DURATION", default_value = "300s")]
    pub child_wait: String,
    /// Tasks of the project that must be DONE before this one starts (repeatable, or
    /// comma-separated; saved in TASK-CONFIG.yaml; an empty value clears the list).
    #[arg(long, value_name = "TASKS")]
    pub depends_on: Vec<String>,
    /// How often to check the dependencies while blocked.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub dependency_poll: String,
    /// Working directory of the agent (default: the project's PROJECT-ROOT.txt, else the task dir).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Kill a run after this long without output, e.g. 30m (default: defaults.timeout, else no limit).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Runs root (inside a run: the run's own) and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// `task` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum TaskAction {
    /// Continue a task from its latest run (the agent's session is resumed where supported).
    Resume(Box<resume::ResumeArgs>),
    /// Delete a task that has no running run (its runs, bus and files).
    Delete(delete::DeleteArgs),
}

/// How the loop is run, shared by `task` and `task resume`.
pub(crate) struct LoopFlags<'a> {
    pub depends_on: &'a [String],
    pub dependency_poll: &'a str,
}

/// Runs `task`.
pub fn run(args: TaskArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        Some(TaskAction::Resume(resume_args)) => return resume::run(*resume_args),
        Some(TaskAction::Delete(delete_args)) => return delete::run(delete_args),
        None => {}
    }
    let project_text = args
        .project
        .as_deref()
        .ok_or_else(|| anyhow!("--project is required"))?;
    let project = ProjectId::parse(project_text).context("--project")?;
    let prompt = super::job::read_prompt(args.prompt.as_deref(), args.prompt_file.as_deref())?;
    let task = match &args.task {
        Some(t) => TaskId::parse(t).context("--task")?,
        None => generate_task_id(
            Utc::now(),
            prompt
                .as_deref()
                .map(|p| p.split_whitespace().take(6).collect::<Vec<_>>().join(" "))
                .as_deref(),
        ),
    };
    let setup = args.location.setup()?;
    let root = Root::new(&setup.root);
    let task_md = root.confine(root.confined_task_dir(&project, &task)?.join(TASK_FILE))?;
    let prompt = match prompt {
        Some(p) => p,
        None => std::fs::read_to_string(&task_md)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_string())
            .ok_or_else(|| {
                anyhow!(
                    "{} not found and no prompt provided: pass --prompt or --prompt-file",
                    task_md.display()
                )
            })?,
    };
    let agent = super::job::select_agent(args.agent.as_deref(), &setup)?;
    let max_restarts = args.max_restarts.unwrap_or_else(|| {
        setup
            .config
            .as_ref()
            .map_or(crate::config::DEFAULT_MAX_RESTARTS, |c| {
                c.defaults.max_restarts
            })
    });
    let job = super::job::job_request(
        &setup,
        project,
        task.clone(),
        agent,
        prompt,
        args.cwd.as_deref(),
        args.timeout.as_deref(),
    )?;
    let duration =
        |flag: &str, text: &str| -> anyhow::Result<Duration> { Ok(parse_duration(flag, text)?) };
    let req = TaskRequest {
        job,
        max_restarts,
        restart_delay: duration("--restart-delay", &args.restart_delay)?,
        restart_delay_max: duration("--restart-delay-max", &args.restart_delay_max)?,
        child_wait: duration("--child-wait", &args.child_wait)?,
        resume_session: None,
    };
    // Before anything touches the task: a second loop of a running task is refused here.
    let lock = TaskLoopLock::acquire(&setup.root, &req.job.project, &req.job.task)?;
    drive(
        &setup,
        req,
        lock,
        LoopFlags {
            depends_on: &args.depends_on,
            dependency_poll: &args.dependency_poll,
        },
    )
}

/// Waits for the task's dependencies, runs the loop with Ctrl-C handling, and prints the end.
/// `lock` (the task's loop lock) is held until the loop has ended.
pub(crate) fn drive(
    setup: &super::job::Setup,
    req: TaskRequest,
    lock: TaskLoopLock,
    flags: LoopFlags<'_>,
) -> anyhow::Result<ExitCode> {
    let task = req.job.task.clone();
    let max_restarts = req.max_restarts;
    let duration =
        |flag: &str, text: &str| -> anyhow::Result<Duration> { Ok(parse_duration(flag, text)?) };
    eprintln!("task {task}");
    let root = Root::new(&setup.root);
    let task_dir = root.confined_task_dir(&req.job.project, &task)?;
    std::fs::create_dir_all(&task_dir)
        .with_context(|| format!("cannot create directory {}", task_dir.display()))?;
    let deps = if flags.depends_on.is_empty() {
        deps::read(&task_dir)?
    } else {
        let deps = deps::parse_list(flags.depends_on, &task)?;
        deps::check(&root, &req.job.project, &task, &deps)?;
        deps::write(&task_dir, &deps)?;
        deps
    };
    let foreground = interrupt::install(Some(task_dir.clone()))?;
    let _ = std::fs::remove_file(task_dir.join(STOP_MARKER));
    if !deps.is_empty() {
        let poll = duration("--dependency-poll", flags.dependency_poll)?;
        let bus_path = root.task_bus(&req.job.project, &task);
        let post = |msg_type: &str, body: String| {
            eprintln!("{body}");
            let msg = NewMessage::new(msg_type, req.job.project.clone())
                .task(task.clone())
                .body(body);
            if let Err(err) = bus::append(&bus_path, &msg, &AppendOptions::default()) {
                tracing::warn!("cannot post to {}: {err}", bus_path.display());
            }
        };
        let waited = deps::wait(&root, &req.job.project, &task, &deps, poll, &post, || {
            !stop::requested(&task_dir)
        });
        if waited == DepsWait::Cancelled {
            println!("task_id: {task}");
            println!("status: stopped");
            return Ok(ExitCode::from(1));
        }
    }
    let limit = setup
        .config
        .as_ref()
        .map_or(0, |c| c.defaults.max_concurrent_root_tasks);
    let _task_slot = if limit > 0 {
        let bus_path = root.task_bus(&req.job.project, &task);
        let queued = || {
            let body = format!(
                "task queued: waiting for a free task slot (max_concurrent_root_tasks = {limit})"
            );
            eprintln!("{body}");
            let msg = NewMessage::new("INFO", req.job.project.clone())
                .task(task.clone())
                .body(body);
            if let Err(err) = bus::append(&bus_path, &msg, &AppendOptions::default()) {
                tracing::warn!("cannot post to {}: {err}", bus_path.display());
            }
        };
        let slot = slots::acquire_in(
            &root.state_dir().join(slots::TASK_SLOTS_DIR),
            limit,
            || !stop::requested(&task_dir),
            queued,
        )?;
        if slot.is_none() {
            println!("task_id: {task}");
            println!("status: stopped");
            return Ok(ExitCode::from(1));
        }
        slot
    } else {
        None
    };
    let end = run_task(&req, &lock, |run, attempt| {
        foreground.set_current(run.run_dir.clone());
        eprintln!(
            "run {} started (attempt {}) in {}",
            run.run_id,
            attempt + 1,
            run.run_dir.display()
        );
    });
    foreground.finish();
    drop(lock);
    let end = end?;
    let (state, last, code) = match &end {
        TaskEnd::Done { last } => ("done", last, 0),
        TaskEnd::Stopped { last } => ("stopped", last, 1),
        TaskEnd::GaveUp { last, .. } => ("failed", last, 1),
    };
    println!("task_id: {task}");
    println!("status: {state}");
    if let Some(RunInfo { run_id, status, .. }) = last {
        println!("last_run_id: {run_id}");
        println!("last_run_status: {status}");
    }
    if let TaskEnd::GaveUp { attempts, .. } = end {
        println!("error: no DONE after {attempts} attempts (max restarts {max_restarts})");
    }
    Ok(ExitCode::from(code))
}
