//! `run-agent task`: the Ralph loop of a task — run the root agent and restart it until
//! `<task>/DONE` exists, then post the completion FACT to the project bus.
//! Exit 0 when the task is done, 1 when it gave up or was stopped.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use chrono::Utc;

use crate::runner::deps;
use crate::runner::duration::parse_duration;
use crate::runner::interrupt;
use crate::runner::{
    self, LoopObserver, LoopRequest, PreparedRun, TaskEnd, TaskLoopLock, TaskRequest,
};
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
    /// The prompt (`--prompt` or `--prompt-file`).
    #[command(flatten)]
    pub prompt: super::job::PromptArgs,
    /// Restarts after the first attempt (0 = one attempt; default: defaults.max_restarts, 100).
    #[arg(long, value_name = "N")]
    pub max_restarts: Option<u32>,
    /// Restart delays and the wait for child runs.
    #[command(flatten)]
    pub timing: LoopTiming,
    /// Tasks of the project that must be DONE before this one starts (repeatable, or
    /// comma-separated; saved in TASK-CONFIG.yaml; an empty value clears the list).
    #[arg(long, value_name = "TASKS")]
    pub depends_on: Vec<String>,
    /// The task's spending limit.
    #[command(flatten)]
    pub budget: BudgetFlags,
    /// How often to check the dependencies while blocked (default 2s).
    #[arg(long, value_name = "DURATION")]
    pub dependency_poll: Option<String>,
    /// Where each run's agent works and how long it may stay silent.
    #[command(flatten)]
    pub agent_run: super::job::AgentRunArgs,
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

/// The task's budget flags, shared by `task` and `task resume` (saved in TASK-CONFIG.yaml;
/// a flag left out keeps the saved figure).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BudgetFlags {
    /// Stop the task once its runs (child runs included) cost more than this many US dollars
    /// (default: the saved budget, else defaults.budget.max_cost_usd).
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<String>,
    /// Stop the task once its runs used more than this many tokens (input plus output).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
}

impl BudgetFlags {
    /// The figures given (`--max-cost` may be written `2.5` or `$2.5`).
    pub(crate) fn budget(&self) -> anyhow::Result<crate::config::Budget> {
        let max_cost_usd = self
            .max_cost
            .as_deref()
            .map(|text| {
                text.trim()
                    .trim_start_matches('$')
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .ok_or_else(|| {
                        anyhow!("--max-cost {text:?}: expected a positive number of US dollars, e.g. 2.5")
                    })
            })
            .transpose()?;
        if self.max_tokens == Some(0) {
            bail!("--max-tokens 0: expected a positive number of tokens");
        }
        Ok(crate::config::Budget {
            max_cost_usd,
            max_tokens: self.max_tokens,
        })
    }
}

/// The loop's timing flags, shared by `task` and `task resume` (defaults: the runner's).
#[derive(Debug, Clone, clap::Args)]
pub struct LoopTiming {
    /// Delay before the first restart, doubled after each restart (default 1s).
    #[arg(long, value_name = "DURATION")]
    pub restart_delay: Option<String>,
    /// Upper bound of the restart delay (default 60s).
    #[arg(long, value_name = "DURATION")]
    pub restart_delay_max: Option<String>,
    /// How long to wait for still-running child runs once DONE exists (default 300s).
    #[arg(long, value_name = "DURATION")]
    pub child_wait: Option<String>,
}

impl LoopTiming {
    /// Sets the given flags on `req` (the others keep the runner's defaults).
    pub(crate) fn apply(&self, req: &mut TaskRequest) -> anyhow::Result<()> {
        let flags = [
            (
                "--restart-delay",
                &self.restart_delay,
                &mut req.restart_delay,
            ),
            (
                "--restart-delay-max",
                &self.restart_delay_max,
                &mut req.restart_delay_max,
            ),
            ("--child-wait", &self.child_wait, &mut req.child_wait),
        ];
        for (flag, text, value) in flags {
            if let Some(text) = text {
                *value = parse_duration(flag, text)?;
            }
        }
        Ok(())
    }
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
    let prompt = args.prompt.read()?;
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
    let prompt = super::job::prompt_or_task_md(prompt, &task_md)?;
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
        args.agent_run.cwd.as_deref(),
        args.agent_run.timeout.as_deref(),
    )?;
    let mut task_req = TaskRequest::new(job, max_restarts);
    args.timing.apply(&mut task_req)?;
    let mut req = LoopRequest::new(task_req);
    req.budget = args.budget.budget()?;
    if !args.depends_on.is_empty() {
        req.depends_on = Some(deps::parse_list(&args.depends_on, &task, "--depends-on")?);
    }
    if let Some(poll) = &args.dependency_poll {
        req.dependency_poll = parse_duration("--dependency-poll", poll)?;
    }
    // Before anything touches the task: a second loop of a running task is refused here.
    let lock = TaskLoopLock::acquire(&setup.root, &req.task.job.project, &task)?;
    drive(&setup, req, lock)
}

/// Runs the task loop with Ctrl-C handling and prints how it ended. `lock` (the task's loop
/// lock) is held until the loop has ended.
pub(crate) fn drive(
    setup: &super::job::Setup,
    mut req: LoopRequest,
    lock: TaskLoopLock,
) -> anyhow::Result<ExitCode> {
    let task = req.task.job.task.clone();
    let max_restarts = req.task.max_restarts;
    req.task_slots = setup
        .config
        .as_ref()
        .map_or(0, |c| c.defaults.max_concurrent_root_tasks);
    req.task.default_budget = setup
        .config
        .as_ref()
        .map(|c| c.defaults.budget)
        .unwrap_or_default();
    req.task.webhook = setup
        .config
        .as_ref()
        .and_then(crate::runner::webhook::WebhookTarget::from_config);
    eprintln!("task {task}");
    let root = Root::new(&setup.root);
    let task_dir = root.confined_task_dir(&req.task.job.project, &task)?;
    let foreground = interrupt::install(Some(task_dir))?;
    let end = runner::drive(&req, &lock, &Terminal(&foreground));
    foreground.finish();
    drop(lock);
    let end = end?;
    let (state, last, code) = match &end {
        TaskEnd::Done { last } => ("done", last, 0),
        TaskEnd::Stopped { last } => ("stopped", last, 1),
        TaskEnd::BudgetExceeded { last, .. } => ("budget exceeded", last, 1),
        TaskEnd::GaveUp { last, .. } => ("failed", last, 1),
    };
    println!("task_id: {task}");
    println!("status: {state}");
    if let Some(RunInfo { run_id, status, .. }) = last {
        println!("last_run_id: {run_id}");
        println!("last_run_status: {status}");
    }
    if let TaskEnd::BudgetExceeded { summary, .. } = &end {
        println!("error: {summary}");
    }
    if let TaskEnd::GaveUp { attempts, .. } = end {
        println!("error: no DONE after {attempts} attempts (max restarts {max_restarts})");
    }
    Ok(ExitCode::from(code))
}

/// Prints the loop's notices and runs to stderr and points Ctrl-C at the current run.
struct Terminal<'a>(&'a interrupt::Foreground);

impl LoopObserver for Terminal<'_> {
    fn notice(&self, text: &str) {
        eprintln!("{text}");
    }

    fn run_started(&self, run: &PreparedRun, attempt: u32) {
        self.0.set_current(run.run_dir.clone());
        eprintln!(
            "run {} started (attempt {}) in {}",
            run.run_id,
            attempt + 1,
            run.run_dir.display()
        );
    }
}
