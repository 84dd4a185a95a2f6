//! The run supervisor: a small process (the `run-agent` binary in a hidden mode, leading its
//! own process group in its starter's session) that owns one run. It starts the agent in a
//! new session with
//! prompt.md on stdin and the O_APPEND stdout/stderr files, records pid/pgid/start time,
//! waits (killing the group after an idle-output timeout), then writes output.md, the final
//! run-info and the bus events. Whoever started the run may exit or be killed meanwhile.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use crate::config::{AgentType, Budget, ModelPrice, WebhookEvent};
use crate::process::{self, new_session, signal_group};
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::paths::{
    CONDUCTOR_STATE_DIR, OUTPUT_FILE, PROMPT_FILE, RUN_INFO_FILE, STDERR_FILE, STDOUT_FILE,
    TASK_BUS_FILE,
};
use crate::storage::run_info::UPDATE_LOCK_TIMEOUT;
use crate::storage::{RunInfo, RunStatus};

use super::classify::{classify, exit_code, Outcome};
use super::error::RunnerError;
use super::events::RunEvents;
use super::reserve::FinalRecordReserve;
use super::webhook::{self, WebhookTarget};
use super::{budget, chat_run, output, reap, slots, stop, supervisor_lock, usage};

/// How long `<cli> --version` may take (gemini's Node start takes ~5 s on a busy machine).
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

/// How many nice levels the supervisor steps down once its agent runs (to the lowest priority:
/// it only waits and writes a few small files).
const BOOKKEEPING_NICE: i32 = 19;

/// What the supervisor runs; the agent's env is the supervisor's own env.
#[derive(Debug, Clone)]
pub struct SupervisorPlan {
    /// The run dir (`<root>/<project>/<task>/runs/<run>`), holding run-info.yaml and prompt.md.
    pub run_dir: PathBuf,
    /// The agent's working directory.
    pub cwd: PathBuf,
    /// The agent's type (selects version probe and stream parsing).
    pub agent_type: AgentType,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Kill the agent's group after this long without output growth.
    pub idle_timeout: Option<Duration>,
    /// Wait for one of this many run slots of the runs root before starting (0 = no limit).
    pub max_concurrent_runs: u32,
    /// Where the run's events are POSTed (the config's `webhook`); `None` sends nothing.
    pub webhook: Option<WebhookTarget>,
    /// The config's `pricing`, to estimate a cost the agent does not report.
    pub pricing: BTreeMap<String, ModelPrice>,
    /// The config's `defaults.budget` (a task's own budget in TASK-CONFIG.yaml wins).
    pub default_budget: Budget,
}

impl SupervisorPlan {
    /// Opens one of the run's output files (`name` in the run dir) for appending, creating it
    /// readable by all (0644).
    pub(crate) fn open_output(&self, name: &str) -> Result<File, RunnerError> {
        let path = self.run_dir.join(name);
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| RunnerError::io("open", path, e))
    }
}

/// Runs the plan to the end and returns the final run-info. With a webhook, the run's events
/// are delivered before this returns: `run_start` (in the background while the agent runs)
/// and, once the final record and the bus events are written, the end events — synchronously,
/// with the retries. A failed delivery is logged and posted on the task bus, never returned.
pub fn supervise(plan: &SupervisorPlan) -> Result<RunInfo, RunnerError> {
    let task_bus = task_bus_of(&plan.run_dir)?;
    let notifier = Notifier {
        target: plan.webhook.as_ref(),
        info_path: plan.run_dir.join(RUN_INFO_FILE),
        task_bus: task_bus.clone(),
        start: std::sync::Mutex::new(None),
    };
    let result = run_to_end(plan, &task_bus, &notifier);
    // The final record is written (or cannot be): listings need not look at this run again.
    crate::storage::live_marker::unmark(&plan.run_dir);
    notifier.ended(result.as_ref().ok());
    result
}

/// The task bus of a run dir (`<root>/<project>/<task>/runs/<run>`).
fn task_bus_of(run_dir: &Path) -> Result<PathBuf, RunnerError> {
    run_dir
        .parent()
        .and_then(Path::parent)
        .map(|task_dir| task_dir.join(TASK_BUS_FILE))
        .ok_or_else(|| {
            RunnerError::invalid(
                "--run-dir",
                format!(
                    "{} is not <root>/<project>/<task>/runs/<run>",
                    run_dir.display()
                ),
            )
        })
}

/// Delivers the run's webhook events (nothing without a target).
struct Notifier<'a> {
    target: Option<&'a WebhookTarget>,
    info_path: PathBuf,
    task_bus: PathBuf,
    /// The `run_start` delivery, joined before the end events so they arrive in order.
    start: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Notifier<'_> {
    /// Starts delivering `run_start` on a thread of its own (the agent is not held up).
    fn started(&self) {
        let Some(target) = self.target.filter(|t| t.wants(WebhookEvent::RunStart)) else {
            return;
        };
        let info = match RunInfo::read(&self.info_path) {
            Ok(info) => info,
            Err(err) => {
                tracing::warn!("webhook run_start not sent: {err}");
                return;
            }
        };
        let (target, bus) = (target.clone(), self.task_bus.clone());
        let spawned = std::thread::Builder::new()
            .name("webhook-start".into())
            .spawn(move || {
                if let Err(err) = webhook::deliver(&target, WebhookEvent::RunStart, &info, &bus) {
                    tracing::warn!("{err}");
                }
            });
        match spawned {
            Ok(handle) => {
                if let Ok(mut slot) = self.start.lock() {
                    *slot = Some(handle);
                }
            }
            Err(err) => tracing::warn!("webhook run_start not sent: cannot start a thread: {err}"),
        }
    }

    /// Waits for `run_start`, then delivers the end events of the final record (if any).
    fn ended(self, info: Option<&RunInfo>) {
        let start = self.start.into_inner().ok().flatten();
        if let Some(handle) = start {
            let _ = handle.join();
        }
        let (Some(target), Some(info)) = (self.target, info) else {
            return;
        };
        for event in webhook::end_events(info.status) {
            if let Err(err) = webhook::deliver(target, event, info, &self.task_bus) {
                tracing::warn!("{err}");
            }
        }
    }
}

fn run_to_end(
    plan: &SupervisorPlan,
    task_bus: &Path,
    notifier: &Notifier<'_>,
) -> Result<RunInfo, RunnerError> {
    // Held until the final record is written: readers see the run as still ending, not vanished.
    let _presence = supervisor_lock::hold(&plan.run_dir)?;
    let info_path = plan.run_dir.join(RUN_INFO_FILE);
    // Space for the final record even if the agent fills the disk.
    let reserve = RefCell::new(FinalRecordReserve::create(&plan.run_dir));
    let info = RunInfo::read(&info_path)?;
    let project = ProjectId::parse(&info.project_id)?;
    let task = TaskId::parse(&info.task_id)?;
    let run = RunId::parse(&info.run_id)?;
    let events = RunEvents {
        bus: task_bus,
        project: &project,
        task: &task,
        run: &run,
        run_dir: &plan.run_dir,
    };
    let program = plan
        .argv
        .first()
        .ok_or_else(|| RunnerError::invalid("agent command", "the command line is empty"))?;
    let version = match plan.agent_type.cli_binary() {
        Some(_) => agent_version(program),
        None => String::new(),
    };
    let commandline = shell_join(&plan.argv);

    // Ends the run without an agent process (stopped while queued, or not startable).
    let end_early = |mut outcome: Outcome| -> Result<RunInfo, RunnerError> {
        output::ensure_or_note(
            &plan.run_dir,
            plan.agent_type,
            &Default::default(),
            &mut outcome.error_summary,
        );
        report(events.finished(&outcome));
        finish(&info_path, &outcome, &reserve, |i| {
            i.agent_version = version.clone();
            i.commandline = Some(commandline.clone());
        })
    };
    let _slot = match plan.max_concurrent_runs {
        0 => None,
        limit => {
            let state_dir = plan
                .run_dir
                .ancestors()
                .nth(4)
                .map(|root| root.join(CONDUCTOR_STATE_DIR))
                .unwrap_or_default();
            let slot = slots::acquire(
                &state_dir,
                limit,
                || !stop::requested(&plan.run_dir),
                || report(events.queued(limit)),
            )?;
            match slot {
                Some(slot) => Some(slot),
                None => return end_early(classify(-1, false, true)),
            }
        }
    };
    if stop::requested(&plan.run_dir) {
        return end_early(classify(-1, false, true));
    }
    if plan.agent_type.is_rest() {
        let started = || {
            report(events.started());
            notifier.started();
        };
        let mut ended = chat_run::run(plan, &info_path, started).unwrap_or_else(|err| {
            Outcome {
                status: RunStatus::Failed,
                exit_code: 1,
                error_summary: Some(format!("{}: {err}", plan.agent_type)),
            }
            .into()
        });
        output::ensure_or_note(
            &plan.run_dir,
            plan.agent_type,
            &Default::default(),
            &mut ended.outcome.error_summary,
        );
        report(events.finished(&ended.outcome));
        if let (true, Some(limit)) = (ended.timed_out, plan.idle_timeout) {
            report(events.timed_out(limit));
        }
        let run_usage = ended
            .usage
            .map(|u| usage::priced(u, &plan.pricing, plan.argv.get(1).map(String::as_str)));
        let final_info = finish(&info_path, &ended.outcome, &reserve, |i| {
            if run_usage.is_some() {
                i.usage.clone_from(&run_usage);
            }
        })?;
        budget::Guard::new(&plan.run_dir, plan.default_budget, notifier.target).check(false);
        return Ok(final_info);
    }
    // Orphans of the agent's tools become ours, to be ended with the run (see reap).
    if let Err(err) = reap::become_subreaper() {
        tracing::warn!("cannot become the child subreaper; commands the agent's tools leave behind may outlive the run: {err}");
    }
    let mut child = match spawn_agent(plan) {
        Ok(child) => child,
        Err(err) => {
            return end_early(Outcome {
                status: RunStatus::Failed,
                exit_code: -1,
                error_summary: Some(err.to_string()),
            })
        }
    };
    let pid = i64::from(child.id());
    // The agent runs: a record that cannot say so (the agent may already have filled the
    // disk) must not end the supervision, or the run's real end would be lost. The final
    // record then carries what this one would have.
    let started_recorded = match record_started(&info_path, plan, pid, pid, &commandline, &version)
    {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(
                "cannot record the start of agent pid {pid}: {err}; the final record will carry it"
            );
            false
        }
    };
    report(events.started());
    notifier.started();
    tracing::debug!(run = %run, pid, "agent started");
    // From here on the supervisor only waits and keeps books, and starts no process: that
    // work yields to the server's (hundreds of runs ending together must not hold up its
    // answers). The agent, started above, keeps the normal priority.
    process::lower_thread_priority(BOOKKEEPING_NICE);

    let meter = usage::Meter::new(plan.agent_type, &plan.run_dir, &plan.pricing, &plan.argv);
    let guard = budget::Guard::new(&plan.run_dir, plan.default_budget, notifier.target);
    let done = AtomicBool::new(false);
    let (waited, run_usage) = std::thread::scope(|scope| {
        let watcher = meter.map(|meter| {
            let (info_path, done, guard) = (&info_path, &done, &guard);
            scope.spawn(move || meter.watch(info_path, done, |_| guard.check(true)))
        });
        let waited = wait(&mut child, pid, &plan.run_dir, plan.idle_timeout);
        done.store(true, Ordering::Release);
        let run_usage = watcher.and_then(|w| w.join().ok()).flatten();
        (waited, run_usage)
    });
    let (status, timed_out) = waited?;
    let stopped = stop::requested(&plan.run_dir);
    if stopped || timed_out {
        reap::end_descendants(reap::LEFTOVER_GRACE);
    }
    let mut outcome = classify(exit_code(&status), timed_out, stopped);
    // Stopped for the task's budget (by this run's check or another run's).
    let excess = guard
        .tripped()
        .or_else(|| task_bus.parent().and_then(budget::marked));
    if let (true, Some(excess)) = (stopped, excess) {
        outcome.error_summary = Some(excess);
    }
    let stream = output::read_stream(&plan.run_dir, plan.agent_type);
    if outcome.status == RunStatus::Failed && !timed_out {
        let stderr = output::stderr_tail(&plan.run_dir);
        if let Some(reason) = crate::agent::failure::reason(plan.agent_type, &stream, &stderr) {
            outcome.error_summary = Some(reason);
        }
    }
    if plan.agent_type == AgentType::Gemini
        && !stopped
        && !timed_out
        && output::gemini_rejected_flags(&plan.run_dir)
    {
        outcome.status = RunStatus::Failed;
        outcome.error_summary = Some(output::GEMINI_FLAGS_REJECTED.to_string());
        if outcome.exit_code == 0 {
            outcome.exit_code = 1;
        }
    }
    output::ensure_or_note(
        &plan.run_dir,
        plan.agent_type,
        &stream,
        &mut outcome.error_summary,
    );
    let session = stream.session_id;
    // The final record comes last: once it says the run ended, output.md and the bus event
    // are already there.
    report(events.finished(&outcome));
    if let (true, Some(limit)) = (timed_out && !stopped, plan.idle_timeout) {
        report(events.timed_out(limit));
    }
    let final_info = finish(&info_path, &outcome, &reserve, |i| {
        if !started_recorded {
            started_fields(i, plan, pid, pid, &commandline, &version);
        }
        if session.is_some() {
            i.agent_session_id = session.clone();
        }
        if run_usage.is_some() {
            i.usage.clone_from(&run_usage);
        }
    })?;
    tracing::debug!(run = %run, status = %outcome.status, exit_code = outcome.exit_code, "run finished");
    // The final usage may pass the budget too: reported (the task loop does not restart).
    guard.check(false);
    Ok(final_info)
}

/// A bus event that cannot be posted does not change the run's outcome; it is logged.
fn report(result: Result<String, RunnerError>) {
    if let Err(err) = result {
        tracing::warn!("cannot post run event: {err}");
    }
}

fn spawn_agent(plan: &SupervisorPlan) -> Result<Child, RunnerError> {
    let prompt_path = plan.run_dir.join(PROMPT_FILE);
    let stdin = File::open(&prompt_path).map_err(|e| RunnerError::io("open", &prompt_path, e))?;
    let mut cmd = Command::new(&plan.argv[0]);
    cmd.args(&plan.argv[1..])
        .current_dir(&plan.cwd)
        .stdin(stdin)
        .stdout(plan.open_output(STDOUT_FILE)?)
        .stderr(plan.open_output(STDERR_FILE)?);
    new_session(&mut cmd)
        .spawn()
        .map_err(|source| RunnerError::Spawn {
            program: plan.argv[0].clone(),
            source,
        })
}

/// Waits for the agent; with an idle timeout, kills its group when neither output file grew
/// for that long. Returns the exit status and whether the timeout fired.
fn wait(
    child: &mut Child,
    pgid: i64,
    run_dir: &Path,
    idle_timeout: Option<Duration>,
) -> Result<(std::process::ExitStatus, bool), RunnerError> {
    let Some(limit) = idle_timeout else {
        let status = child
            .wait()
            .map_err(|e| RunnerError::io("wait for the agent of", run_dir, e))?;
        return Ok((status, false));
    };
    let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_millis(250));
    let size = || {
        [STDOUT_FILE, STDERR_FILE]
            .iter()
            .map(|f| std::fs::metadata(run_dir.join(f)).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let mut last_size = size();
    let mut last_growth = Instant::now();
    let mut timed_out = false;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| RunnerError::io("wait for", run_dir, e))?
        {
            return Ok((status, timed_out));
        }
        std::thread::sleep(tick);
        if timed_out {
            continue;
        }
        let now_size = size();
        if now_size != last_size {
            last_size = now_size;
            last_growth = Instant::now();
        } else if last_growth.elapsed() >= limit {
            tracing::warn!(
                pgid,
                "no output for {limit:?}; killing the agent's process group"
            );
            timed_out = true;
            if let Err(err) = signal_group(pgid, Signal::SIGKILL) {
                tracing::warn!("cannot kill process group {pgid}: {err}");
                let _ = child.kill();
            }
        }
    }
}

/// Writes the final status, end time and exit code (replacing a `process vanished` that a
/// reader may have recorded between the agent's exit and now). On a full disk the reserved
/// slot is given back and the write retried once.
fn finish(
    info_path: &Path,
    outcome: &Outcome,
    reserve: &RefCell<FinalRecordReserve>,
    extra: impl Fn(&mut RunInfo),
) -> Result<RunInfo, RunnerError> {
    let write = || {
        RunInfo::update(info_path, UPDATE_LOCK_TIMEOUT, |i| {
            extra(i);
            i.status = outcome.status;
            i.exit_code = outcome.exit_code;
            i.end_time = Utc::now();
            i.error_summary = outcome.error_summary.clone();
            Ok::<(), std::convert::Infallible>(())
        })
        .map(|r| r.unwrap_or_else(|never| match never {}))
        .map_err(RunnerError::from)
    };
    match write() {
        Err(err) if err.is_storage_full() && reserve.borrow_mut().release() => {
            tracing::warn!("{err}; retrying with the reserved space");
            write()
        }
        other => other,
    }
}

/// `<program> --version` (stdout trimmed, else stderr), empty when it fails or takes too long.
fn agent_version(program: &str) -> String {
    let mut cmd = Command::new(program);
    cmd.arg("--version");
    let Ok(out) = process::probe(cmd, VERSION_TIMEOUT) else {
        return String::new();
    };
    match out.stdout.trim() {
        "" => out.stderr.trim().to_string(),
        stdout => stdout.to_string(),
    }
}

/// The command line as a shell would need it typed.
fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let safe = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c));
            if safe {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Records in the run's record that its agent started: pid and group (with the pid's start
/// time), the command line, the agent's version, the working directory and the run's files.
pub(super) fn record_started(
    info_path: &Path,
    plan: &SupervisorPlan,
    pid: i64,
    pgid: i64,
    commandline: &str,
    version: &str,
) -> Result<(), crate::storage::StorageError> {
    RunInfo::update(info_path, UPDATE_LOCK_TIMEOUT, |i| {
        started_fields(i, plan, pid, pgid, commandline, version);
        Ok::<(), std::convert::Infallible>(())
    })?
    .unwrap_or_else(|never| match never {});
    Ok(())
}

/// What the record says once the agent runs: its process, command line and files.
fn started_fields(
    i: &mut RunInfo,
    plan: &SupervisorPlan,
    pid: i64,
    pgid: i64,
    commandline: &str,
    version: &str,
) {
    i.pid = pid;
    i.pgid = pgid;
    i.pid_start_time = process::start_time(pid);
    i.commandline = Some(commandline.to_string());
    i.agent_version = version.to_string();
    i.cwd = Some(plan.cwd.display().to_string());
    let file = |name: &str| Some(plan.run_dir.join(name).display().to_string());
    i.prompt_path = file(PROMPT_FILE);
    i.output_path = file(OUTPUT_FILE);
    i.stdout_path = file(STDOUT_FILE);
    i.stderr_path = file(STDERR_FILE);
}
