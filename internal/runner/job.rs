//! One run (`run-agent job`, and each attempt of a task's Ralph loop): create the run dir,
//! TASK.md (if absent), prompt.md and the initial run-info.yaml, start the run's supervisor
//! in its own process group, and wait for it to finish the record.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;

use crate::storage::atomic::write_atomic;
use crate::storage::ids::{generate_run_id, ProjectId, RunId, TaskId};
use crate::storage::paths::{PROJECT_ROOT_FILE, PROMPT_FILE, RUN_INFO_FILE, TASK_FILE};
use crate::storage::run_info::UPDATE_LOCK_TIMEOUT;
use crate::storage::{Root, RunInfo, RunStatus};

use super::env::{self, RunEnv};
use super::error::RunnerError;
use super::prompt::{self, PromptContext};
use crate::agent::AgentSpec;

/// The variable (settable through [`JobRequest::extra_env`]) that tells agents where the
/// Conductor server is; it is also shown in the prompt preamble.
pub const CONDUCTOR_URL_VAR: &str = "JRUN_CONDUCTOR_URL";

/// The hidden subcommand that runs a supervisor.
pub const SUPERVISE_COMMAND: &str = "supervise";

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The runs root (absolute).
    pub root: PathBuf,
    /// Project id.
    pub project: ProjectId,
    /// Task id.
    pub task: TaskId,
    /// The agent.
    pub agent: AgentSpec,
    /// The task prompt (restart prefix already applied when wanted).
    pub prompt: String,
    /// The run that spawned this one.
    pub parent_run_id: Option<String>,
    /// The previous run of the task's restart chain.
    pub previous_run_id: Option<String>,
    /// Position in the restart chain.
    pub restart_index: Option<u64>,
    /// Working directory (default: the project's PROJECT-ROOT.txt, else the task dir).
    pub cwd: Option<PathBuf>,
    /// Idle-output timeout.
    pub idle_timeout: Option<Duration>,
    /// Extra variables for the agent (applied before JRUN_*).
    pub extra_env: Vec<(String, String)>,
    /// `defaults.max_concurrent_runs` (0 = unlimited). Child runs (with a parent) do not
    /// wait for a slot: their parent holds one while it waits for them.
    pub max_concurrent_runs: u32,
    /// The `run-agent` binary that hosts the supervisor.
    pub exe: PathBuf,
    /// The agent's own session this run continues (its argv is the resume form). Recorded
    /// as the run's `agent_session_id` from the start, so a resume that fails before the
    /// agent reports a session keeps the id for the next try.
    pub resumes_session: Option<String>,
}

impl JobRequest {
    /// A fresh run of `task` hosted by the supervisor binary `exe`: no parent, no restart
    /// chain, no resumed session, the default working directory, no idle timeout, no extra
    /// variables and no run slots; callers set what their command or request asks for.
    pub fn fresh(
        root: PathBuf,
        project: ProjectId,
        task: TaskId,
        agent: AgentSpec,
        prompt: String,
        exe: PathBuf,
    ) -> Self {
        Self {
            root,
            project,
            task,
            agent,
            prompt,
            parent_run_id: None,
            previous_run_id: None,
            restart_index: None,
            cwd: None,
            idle_timeout: None,
            extra_env: Vec::new(),
            max_concurrent_runs: 0,
            exe,
            resumes_session: None,
        }
    }
}

/// A run whose files exist and whose supervisor may be started.
#[derive(Debug, Clone)]
pub struct PreparedRun {
    /// Run id.
    pub run_id: RunId,
    /// Run dir.
    pub run_dir: PathBuf,
    /// The agent's working directory.
    pub cwd: PathBuf,
}

/// Creates the task and run dirs, TASK.md (if absent), prompt.md and the `running` run-info.
pub fn prepare(req: &JobRequest) -> Result<PreparedRun, RunnerError> {
    if req.prompt.trim().is_empty() {
        return Err(RunnerError::invalid(
            "--prompt",
            "the prompt is empty; give the task's instructions with --prompt or --prompt-file",
        ));
    }
    let root = Root::new(&req.root);
    let task_dir = root.confined_task_dir(&req.project, &req.task)?;
    let runs_dir = root.confined_runs_dir(&req.project, &req.task)?;
    let cwd = working_dir(req, &root, &task_dir)?;
    std::fs::create_dir_all(&runs_dir)
        .map_err(|e| RunnerError::io("create directory", &runs_dir, e))?;
    let task_md = root.confine(task_dir.join(TASK_FILE))?;
    if std::fs::symlink_metadata(&task_md).is_err() {
        write_atomic(&task_md, format!("{}\n", req.prompt.trim()).as_bytes())
            .map_err(|e| RunnerError::io("write", &task_md, e))?;
    }
    let (run_id, run_dir) = create_run_dir(&root, req)?;
    let task_bus = root.task_bus(&req.project, &req.task);
    let text = prompt::build(
        &PromptContext {
            task_dir: &task_dir,
            run_dir: &run_dir,
            project_id: req.project.as_str(),
            task_id: req.task.as_str(),
            run_id: run_id.as_str(),
            parent_run_id: req.parent_run_id.as_deref(),
            task_bus: &task_bus,
            agent_name: &req.agent.name,
            conductor_url: req
                .extra_env
                .iter()
                .find(|(k, _)| k == CONDUCTOR_URL_VAR)
                .map(|(_, v)| v.as_str()),
        },
        &req.prompt,
    );
    let prompt_path = run_dir.join(PROMPT_FILE);
    write_atomic(&prompt_path, text.as_bytes())
        .map_err(|e| RunnerError::io("write", &prompt_path, e))?;
    let mut info = RunInfo::new_running(
        run_id.as_str(),
        req.project.as_str(),
        req.task.as_str(),
        req.agent.agent_type.as_str(),
        Utc::now(),
    );
    info.parent_run_id = req.parent_run_id.clone();
    info.previous_run_id = req.previous_run_id.clone();
    info.restart_index = req.restart_index;
    info.agent_name = Some(req.agent.name.clone());
    info.agent_session_id = req.resumes_session.clone();
    info.process_ownership = Some("managed".to_string());
    info.cwd = Some(cwd.display().to_string());
    info.prompt_path = Some(prompt_path.display().to_string());
    info.write(&run_dir.join(RUN_INFO_FILE))?;
    // After the running record: a listing that sees the marker reads a running run.
    crate::storage::live_marker::mark(&run_dir);
    Ok(PreparedRun {
        run_id,
        run_dir,
        cwd,
    })
}

fn create_run_dir(root: &Root, req: &JobRequest) -> Result<(RunId, PathBuf), RunnerError> {
    loop {
        let run_id = generate_run_id(Utc::now());
        let run_dir = root.run_dir(&req.project, &req.task, &run_id);
        match std::fs::create_dir(&run_dir) {
            Ok(()) => return Ok((run_id, run_dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(RunnerError::io("create directory", &run_dir, e)),
        }
    }
}

/// `--cwd`, else the project's PROJECT-ROOT.txt, else the task dir; must be a directory.
fn working_dir(req: &JobRequest, root: &Root, task_dir: &Path) -> Result<PathBuf, RunnerError> {
    let (dir, origin) = if let Some(cwd) = &req.cwd {
        (cwd.clone(), "--cwd".to_string())
    } else {
        let file = root.confine(root.project_dir(&req.project).join(PROJECT_ROOT_FILE))?;
        match std::fs::read_to_string(&file) {
            Ok(text) if !text.trim().is_empty() => {
                (PathBuf::from(text.trim()), file.display().to_string())
            }
            // The task dir is created with the run.
            _ => return Ok(std::path::absolute(task_dir).unwrap_or(task_dir.to_path_buf())),
        }
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    if !dir.is_dir() {
        return Err(RunnerError::invalid(
            origin,
            format!(
                "working directory {} is not an existing directory",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// Starts the supervisor of a prepared run with the agent's env. The supervisor makes itself
/// the leader of its own process group ([`crate::process::lead_own_group`]), so the spawn needs no
/// `pre_exec` and uses `posix_spawn`: a busy server no longer stalls its threads on a fork.
pub fn start_supervisor(req: &JobRequest, run: &PreparedRun) -> Result<Child, RunnerError> {
    let root = Root::new(&req.root);
    let task_dir = root.task_dir(&req.project, &req.task);
    let runs_dir = root.runs_dir(&req.project, &req.task);
    let task_bus = root.task_bus(&req.project, &req.task);
    let agent_env = env::build(
        std::env::vars_os(),
        &req.agent,
        &RunEnv {
            project_id: req.project.as_str(),
            task_id: req.task.as_str(),
            run_id: run.run_id.as_str(),
            parent_run_id: req.parent_run_id.as_deref().unwrap_or(""),
            runs_dir: &runs_dir,
            task_bus: &task_bus,
            task_dir: &task_dir,
            run_dir: &run.run_dir,
        },
        req.exe.parent(),
        &req.extra_env,
    );
    let mut cmd = Command::new(&req.exe);
    cmd.arg(SUPERVISE_COMMAND)
        .arg("--run-dir")
        .arg(&run.run_dir)
        .arg("--cwd")
        .arg(&run.cwd)
        .arg("--agent-type")
        .arg(req.agent.agent_type.as_str());
    let parentless = req.parent_run_id.as_deref().is_none_or(str::is_empty);
    if req.max_concurrent_runs > 0 && parentless {
        cmd.arg("--max-concurrent-runs")
            .arg(req.max_concurrent_runs.to_string());
    }
    if let Some(timeout) = req.idle_timeout {
        cmd.arg("--idle-timeout-ms")
            .arg(timeout.as_millis().to_string());
    }
    cmd.arg("--")
        .args(&req.agent.argv)
        .env_clear()
        .envs(agent_env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .current_dir(&run.run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd.spawn().map_err(|source| RunnerError::Spawn {
        program: req.exe.display().to_string(),
        source,
    })
}

/// How often [`wait`] looks for a final record while the supervisor still runs (it may linger
/// to deliver webhooks). Its exit wakes [`wait`] at once (pidfd); this poll costs a lock probe
/// per run each time, hundreds of them a second on a server with hundreds of runs at 50 ms.
const FINAL_RECORD_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits for the supervisor and returns the final run-info. If the supervisor died without
/// finishing the record, the run is recorded as failed with the reason — unless its agent is
/// still alive, then the record stays `running` (and is returned as such).
///
/// The run is over once its record is final and the supervisor let go of its presence lock;
/// the supervisor may still be delivering webhooks then, and nobody waits for that (it is left
/// to [`crate::process::reap_later`]).
pub fn wait(mut supervisor: Child, run: &PreparedRun) -> Result<RunInfo, RunnerError> {
    let info_path = run.run_dir.join(RUN_INFO_FILE);
    // One thread per run (the caller's): a server drives hundreds of runs at once, and a second
    // waiting thread per run costs a thread start and exit each.
    let exit = crate::process::wait::ExitWatch::new(&supervisor);
    let status = loop {
        let exited = supervisor
            .try_wait()
            .map_err(|e| RunnerError::io("wait for the supervisor of", &run.run_dir, e))?;
        if let Some(status) = exited {
            break status;
        }
        if !crate::storage::liveness::supervisor_active(&run.run_dir) {
            if let Ok(info) = RunInfo::read(&info_path) {
                if info.status != RunStatus::Running {
                    crate::process::reap_later(supervisor);
                    return Ok(info);
                }
            }
        }
        exit.wait(FINAL_RECORD_POLL);
    };
    let info = RunInfo::read(&info_path)?;
    if info.status != RunStatus::Running {
        return Ok(info);
    }
    if info.pid > 0 && info.recorded_process().alive() {
        // The agent outlived its supervisor: leave the record running; readers reconcile it
        // (`process vanished`) once the agent is gone.
        tracing::warn!(
            run = %info.run_id,
            pid = info.pid,
            "the run's supervisor exited ({status}) while its agent still runs"
        );
        return Ok(info);
    }
    let summary = format!("run supervisor exited ({status}) before recording the result");
    let info = RunInfo::update(&info_path, UPDATE_LOCK_TIMEOUT, |i| {
        if i.status == RunStatus::Running {
            i.status = RunStatus::Failed;
            i.end_time = Utc::now();
            i.error_summary = Some(summary.clone());
        }
        Ok::<(), std::convert::Infallible>(())
    })?
    .unwrap_or_else(|never| match never {});
    Ok(info)
}

/// Prepares the run, starts its supervisor, calls `started` with the run, and waits.
pub fn run_job(
    req: &JobRequest,
    started: impl FnOnce(&PreparedRun),
) -> Result<RunInfo, RunnerError> {
    let run = prepare(req)?;
    let supervisor = match start_supervisor(req, &run) {
        Ok(child) => child,
        Err(err) => {
            let message = err.to_string();
            let _ = RunInfo::update(&run.run_dir.join(RUN_INFO_FILE), UPDATE_LOCK_TIMEOUT, |i| {
                i.status = RunStatus::Failed;
                i.end_time = Utc::now();
                i.error_summary = Some(message.clone());
                Ok::<(), std::convert::Infallible>(())
            });
            return Err(err);
        }
    };
    started(&run);
    wait(supervisor, &run)
}
