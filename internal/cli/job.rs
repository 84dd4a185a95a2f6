//! `run-agent job`: one run of an agent, waited for. Inside a run, project, task, parent run
//! and runs root default to the `JRUN_*` variables, so an agent starts a child with just
//! `run-agent job --agent A --prompt "…"`. Exit 0 iff the run completed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};

use crate::agent::{self, AgentSpec};
use crate::config::{self, Config};
use crate::runner::duration::parse_duration;
use crate::runner::interrupt;
use crate::runner::{run_job, JobRequest};
use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::paths::OUTPUT_FILE;
use crate::storage::{RunInfo, RunStatus};

/// `job` flags.
#[derive(Debug, Clone, clap::Args)]
// A job has no TASK.md to fall back on (`mut_args` keeps the flags' order, as completions
// list them).
#[command(mut_args(|arg| match arg.get_id().as_str() {
    "prompt" => arg.help("The prompt text"),
    _ => arg,
}))]
pub struct JobArgs {
    /// Project id (default: $JRUN_PROJECT_ID).
    #[arg(long)]
    pub project: Option<String>,
    /// Task id (default: $JRUN_TASK_ID).
    #[arg(long)]
    pub task: Option<String>,
    /// Agent: a name from the config, or claude, codex or gemini (default: defaults.agent).
    #[arg(long)]
    pub agent: Option<String>,
    /// The prompt (`--prompt` or `--prompt-file`).
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// Parent run id (default: $JRUN_ID).
    #[arg(long)]
    pub parent_run_id: Option<String>,
    /// Where the agent works and how long it may stay silent.
    #[command(flatten)]
    pub agent_run: AgentRunArgs,
    /// Runs root (inside a run: the run's own) and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// Where a run's agent works and how long it may stay silent (`job`, `task`).
#[derive(Debug, Clone, clap::Args)]
pub struct AgentRunArgs {
    /// Working directory of the agent (default: the project's PROJECT-ROOT.txt, else the task dir).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Kill the agent after this long without output, e.g. 30m (default: defaults.timeout, else no limit).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

/// The prompt flags of the commands that start runs (`job`, `task`, `task resume`; `job`
/// words `--prompt`'s help without the TASK.md default).
#[derive(Debug, Clone, clap::Args)]
pub struct PromptArgs {
    /// The prompt text (default: the task's TASK.md).
    #[arg(long, conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,
}

impl PromptArgs {
    /// The prompt from `--prompt-file` or `--prompt`, trimmed; `None` when neither is given.
    pub(crate) fn read(&self) -> anyhow::Result<Option<String>> {
        let text = match (&self.prompt, &self.prompt_file) {
            (_, Some(file)) => std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --prompt-file {}", file.display()))?,
            (Some(text), None) => text.clone(),
            (None, None) => return Ok(None),
        };
        if text.trim().is_empty() {
            bail!("the prompt is empty; give the instructions with --prompt or --prompt-file");
        }
        Ok(Some(text.trim().to_string()))
    }
}

/// The prompt `given` by the flags, else the task's TASK.md at `task_md` (trimmed, not empty).
pub(crate) fn prompt_or_task_md(given: Option<String>, task_md: &Path) -> anyhow::Result<String> {
    if let Some(prompt) = given {
        return Ok(prompt);
    }
    std::fs::read_to_string(task_md)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().to_string())
        .ok_or_else(|| {
            anyhow!(
                "{} not found and no prompt provided: pass --prompt or --prompt-file",
                task_md.display()
            )
        })
}

/// The config and runs root a local runner command works on.
pub(crate) struct Setup {
    /// Absolute runs root.
    pub root: PathBuf,
    /// The loaded config, if one was given or found.
    pub config: Option<Config>,
    /// Its absolute path (handed to agents as CONDUCTOR_CONFIG so children use it too).
    pub config_path: Option<PathBuf>,
    /// The config's `storage.extra_roots`: flat roots read (never written) by the inspection
    /// commands, as by the server.
    pub extra_roots: Vec<PathBuf>,
}

fn env_var(key: &str) -> Option<String> {
    std::env::var(key)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Loads the config (`--config` > CONDUCTOR_CONFIG > search) and resolves the runs root:
/// `--root` > the root of `$JRUN_TASK_FOLDER` (inside a run) > CONDUCTOR_ROOT >
/// `storage.runs_dir` > `~/run-agent` ([`config::resolve_root`]).
pub(crate) fn setup(root: Option<&Path>, config_flag: Option<&Path>) -> anyhow::Result<Setup> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    // Inside a run (JRUN_RUN_FOLDER set) only an explicit config counts: the agent's working
    // directory is some project's repo, whose own config.yaml is not ours. A run started
    // with a config passes it on as CONDUCTOR_CONFIG.
    let inside_run = env_var("JRUN_RUN_FOLDER").is_some();
    let jrun_root = env_var("JRUN_TASK_FOLDER")
        .map(PathBuf::from)
        .and_then(|t| t.parent().and_then(Path::parent).map(Path::to_path_buf));
    let local = config::resolve_root(
        config::LocalFlags {
            root: root.or(jrun_root.as_deref()),
            config: config_flag,
            search: !inside_run,
        },
        &config::process_env,
        &cwd,
    )?;
    let extra_roots = local.extra_roots().to_vec();
    let root = local.root.value;
    Ok(Setup {
        root: std::path::absolute(&root).unwrap_or(root),
        config: local.config,
        config_path: local.config_path,
        extra_roots,
    })
}

/// The agent named by `--agent`, else the config's `defaults.agent`.
pub(crate) fn select_agent(name: Option<&str>, setup: &Setup) -> anyhow::Result<AgentSpec> {
    let name = name
        .map(str::to_string)
        .or_else(|| setup.config.as_ref().and_then(|c| c.defaults.agent.clone()))
        .ok_or_else(|| {
            anyhow!("no agent: pass --agent (claude, codex, gemini or an agent of the config)")
        })?;
    Ok(agent::select(&name, setup.config.as_ref())?)
}

/// The template request shared by `job` and `task`.
pub(crate) fn job_request(
    setup: &Setup,
    project: ProjectId,
    task: TaskId,
    agent: AgentSpec,
    prompt: String,
    cwd: Option<&Path>,
    timeout: Option<&str>,
) -> anyhow::Result<JobRequest> {
    let defaults = setup.config.as_ref().map(|c| &c.defaults);
    let idle_timeout = match timeout {
        Some(text) => Some(parse_duration("--timeout", text)?),
        None => defaults.map(|d| std::time::Duration::from_secs(d.timeout)),
    }
    .filter(|d| !d.is_zero());
    let mut extra_env = Vec::new();
    if let Some(path) = &setup.config_path {
        extra_env.push((config::ENV_CONFIG.to_string(), path.display().to_string()));
    }
    if let Some(url) = known_conductor_url(&config::process_env, setup.config.as_ref()) {
        extra_env.push((crate::runner::job::CONDUCTOR_URL_VAR.to_string(), url));
    }
    let exe = crate::runner::exe::current_exe().context("cannot find the run-agent executable")?;
    let mut job = JobRequest::fresh(setup.root.clone(), project, task, agent, prompt, exe);
    job.cwd = cwd.map(|c| std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf()));
    job.idle_timeout = idle_timeout;
    job.extra_env = extra_env;
    job.max_concurrent_runs = defaults.map_or(0, |d| d.max_concurrent_runs);
    Ok(job)
}

/// The server URL an agent may call, when known: the one this process got as an agent
/// (`JRUN_CONDUCTOR_URL`, so child runs keep it), else the client's `CONDUCTOR_URL`, else
/// `http://<api.host>:<api.port>` of the loaded config (reference runJob step 10; a wildcard
/// or empty host becomes `127.0.0.1`). Without a config file nothing is assumed.
fn known_conductor_url(
    env: &dyn Fn(&str) -> Option<String>,
    config: Option<&Config>,
) -> Option<String> {
    [crate::runner::job::CONDUCTOR_URL_VAR, "CONDUCTOR_URL"]
        .into_iter()
        .filter_map(env)
        .map(|url| url.trim().to_string())
        .find(|url| !url.is_empty())
        .or_else(|| config.map(|c| config_url(&c.api.host, c.api.port)))
}

/// `http://host:port` for a configured listen address, as a local client reaches it.
fn config_url(host: &str, port: u16) -> String {
    let host = host.trim();
    let host = match host {
        "" | "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    format!("http://{host}:{port}")
}

/// Prints the final record of a run as `key: value` lines.
pub(crate) fn print_result(info: &RunInfo, run_dir: &Path) {
    println!("run_id: {}", info.run_id);
    println!("status: {}", info.status);
    println!("exit_code: {}", info.exit_code);
    println!("run_dir: {}", run_dir.display());
    println!("output: {}", run_dir.join(OUTPUT_FILE).display());
    if let Some(summary) = &info.error_summary {
        println!("error_summary: {summary}");
    }
}

/// Runs `job`.
pub fn run(args: JobArgs) -> anyhow::Result<ExitCode> {
    let project_text = args
        .project
        .clone()
        .or_else(|| env_var("JRUN_PROJECT_ID"))
        .ok_or_else(|| {
            anyhow!(
                "no project: pass --project (or run inside a run, where JRUN_PROJECT_ID is set)"
            )
        })?;
    let task_text = args
        .task
        .clone()
        .or_else(|| env_var("JRUN_TASK_ID"))
        .ok_or_else(|| {
            anyhow!("no task: pass --task (or run inside a run, where JRUN_TASK_ID is set)")
        })?;
    let project = ProjectId::parse(&project_text).context("--project")?;
    let task = TaskId::parse(&task_text).context("--task")?;
    let prompt = args
        .prompt
        .read()?
        .ok_or_else(|| anyhow!("no prompt: pass --prompt TEXT or --prompt-file FILE"))?;
    let setup = args.location.setup()?;
    let agent = select_agent(args.agent.as_deref(), &setup)?;
    let mut req = job_request(
        &setup,
        project,
        task,
        agent,
        prompt,
        args.agent_run.cwd.as_deref(),
        args.agent_run.timeout.as_deref(),
    )?;
    req.parent_run_id = args.parent_run_id.clone().or_else(|| env_var("JRUN_ID"));
    if let Some(parent) = &req.parent_run_id {
        crate::storage::RunId::parse(parent).context("--parent-run-id / JRUN_ID")?;
    }
    let foreground = interrupt::install(None)?;
    let mut run_dir = PathBuf::new();
    let info = run_job(&req, |run| {
        foreground.set_current(run.run_dir.clone());
        eprintln!("run {} started in {}", run.run_id, run.run_dir.display());
        run_dir = run.run_dir.clone();
    });
    foreground.finish();
    let info = info?;
    print_result(&info, &run_dir);
    Ok(if info.status == RunStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conductor_url_falls_back_to_the_loaded_config() {
        let none = |_: &str| None;
        assert_eq!(known_conductor_url(&none, None), None);
        let mut config = Config::default();
        assert_eq!(
            known_conductor_url(&none, Some(&config)).as_deref(),
            Some("http://127.0.0.1:14355")
        );
        config.api.host = "conductor.lan".into();
        config.api.port = 9000;
        assert_eq!(
            known_conductor_url(&none, Some(&config)).as_deref(),
            Some("http://conductor.lan:9000")
        );
        config.api.host = " ".into();
        assert_eq!(
            known_conductor_url(&none, Some(&config)).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        config.api.host = "::1".into();
        assert_eq!(config_url(&config.api.host, 1), "http://[::1]:1");
        let client = |k: &str| (k == "CONDUCTOR_URL").then(|| " http://c:1 ".to_string());
        assert_eq!(
            known_conductor_url(&client, Some(&config)).as_deref(),
            Some("http://c:1")
        );
        let agent = |k: &str| match k {
            "JRUN_CONDUCTOR_URL" => Some("http://a:2".to_string()),
            "CONDUCTOR_URL" => Some("http://c:1".to_string()),
            _ => None,
        };
        assert_eq!(
            known_conductor_url(&agent, None).as_deref(),
            Some("http://a:2")
        );
    }
}
