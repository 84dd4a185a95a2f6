//! `run-agent validate` / `conductor validate`: load a config, print the effective settings and
//! where each came from (secrets masked), and check the agents it names.
//!
//! Exit codes: 0 fine; 1 an agent check failed (binary missing, `--version` failed);
//! 2 the config is invalid or the given config file does not exist.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::config::{
    self, mask_secret, AgentConfig, AgentType, Config, ConfigMode, ServerFlags, ServerSettings,
    Source,
};

/// How long an agent's `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// validate flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Config file (default: CONDUCTOR_CONFIG, then ./config.{yaml,yml,hcl}, then
    /// ~/.config/conductor/config.{yaml,yml,hcl}).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Runs root to report (default: CONDUCTOR_ROOT, then storage.runs_dir, then ~/run-agent).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Do not look for agent binaries or run their `--version`.
    #[arg(long)]
    pub skip_agent_checks: bool,
}

/// The result of checking one agent.
#[derive(Debug, Serialize)]
pub(crate) struct AgentReport {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) agent_type: AgentType,
    /// `file`, `token_file`, `env` or null.
    pub(crate) token_source: Option<&'static str>,
    /// The program run (CLI and command agents).
    pub(crate) program: Option<String>,
    /// Where the program was found.
    pub(crate) resolved: Option<PathBuf>,
    /// First line of `--version` output (CLI agents).
    pub(crate) version: Option<String>,
    /// Why the agent cannot run; `None` when fine (or not checked).
    pub(crate) problem: Option<String>,
    /// Advice that does not fail validation.
    pub(crate) note: Option<String>,
}

/// The JSON document printed by `--json`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    ok: bool,
    config_source: Source,
    searched: &'a [PathBuf],
    settings: &'a ServerSettings,
    agents: &'a [AgentReport],
}

/// Runs validate.
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env = &config::process_env;
    let discovery = config::discover(args.config.as_deref(), env, &cwd);
    let flags = ServerFlags {
        config: args.config.clone(),
        root: args.root.clone(),
        ..ServerFlags::default()
    };
    let settings = config::resolve_server(&flags, ConfigMode::Optional, env, &cwd)?;

    if let Some(err) = &settings.config_error {
        if args.json {
            let doc = serde_json::json!({
                "ok": false,
                "config_path": settings.config_path,
                "config_source": discovery.source,
                "error": err,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        eprintln!("error: {err}");
        return Ok(ExitCode::from(2));
    }
    if settings.config_path.is_none() {
        let searched: Vec<String> = discovery
            .searched
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        eprintln!(
            "no config file found (searched: {}); using defaults",
            searched.join(", ")
        );
    }

    let agents: Vec<AgentReport> = settings
        .config
        .agents
        .iter()
        .map(|(name, agent)| check_agent(name, agent, env, !args.skip_agent_checks))
        .collect();
    let ok = agents.iter().all(|a| a.problem.is_none());

    if args.json {
        let report = Report {
            ok,
            config_source: discovery.source,
            searched: &discovery.searched,
            settings: &settings,
            agents: &agents,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&settings, discovery.source, &agents);
    }
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    let broken: Vec<&str> = agents
        .iter()
        .filter(|a| a.problem.is_some())
        .map(|a| a.name.as_str())
        .collect();
    if broken.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: these agents cannot run: {} (see their problem above; --skip-agent-checks skips these checks)",
            broken.join(", ")
        );
        Ok(ExitCode::from(1))
    }
}

/// The source of a config-file key (`key` picks it from a config): `file` when the loaded
/// config's value differs from the default.
fn from_file<T: PartialEq + std::fmt::Debug>(
    config: &Config,
    loaded: bool,
    key: impl Fn(&Config) -> &T,
) -> Source {
    if loaded && key(config) != key(&Config::default()) {
        Source::File
    } else {
        Source::Default
    }
}

fn secret(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or_else(|| "<unset>".to_string(), mask_secret)
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn print_text(settings: &ServerSettings, config_source: Source, agents: &[AgentReport]) {
    let c = &settings.config;
    let loaded = settings.config_path.is_some();
    let line = |key: &str, value: String, source: Source| println!("{key} = {value} ({source})");
    // One config key: its dotted name, the value shown, and whether the file set it.
    macro_rules! setting {
        ($($field:ident).+, $shown:expr) => {
            line(
                stringify!($($field).+),
                $shown,
                from_file(c, loaded, |c| &c.$($field).+),
            )
        };
    }
    match &settings.config_path {
        Some(path) => line("config", path.display().to_string(), config_source),
        None => line("config", "<none>".to_string(), Source::Default),
    }
    for (key, value, source) in settings.shown_location() {
        line(key, value, source);
    }
    println!("api.port_explicit = {}", settings.port_explicit);
    line(
        "api.api_key",
        settings.shown_api_key(),
        settings.api_key.source,
    );
    setting!(api.admin_key, secret(&settings.admin_key));
    println!("api.auth_enabled = {}", settings.auth_enabled);
    setting!(api.cors_origins, list(&c.api.cors_origins));
    setting!(
        api.allow_remote_without_key,
        c.api.allow_remote_without_key.to_string()
    );
    line(
        "task_start_disabled",
        settings.task_start_disabled.value.to_string(),
        settings.task_start_disabled.source,
    );
    setting!(
        defaults.agent,
        c.defaults.agent.clone().unwrap_or_else(|| "<unset>".into())
    );
    setting!(defaults.timeout, format!("{}s", c.defaults.timeout));
    setting!(
        defaults.max_concurrent_runs,
        c.defaults.max_concurrent_runs.to_string()
    );
    setting!(
        defaults.max_concurrent_root_tasks,
        c.defaults.max_concurrent_root_tasks.to_string()
    );
    setting!(defaults.max_restarts, c.defaults.max_restarts.to_string());
    setting!(
        webhook.url,
        c.webhook.url.clone().unwrap_or_else(|| "<unset>".into())
    );
    let events: Vec<&str> = c.webhook.events.iter().map(|e| e.as_str()).collect();
    setting!(webhook.events, list(&events));
    setting!(webhook.secret, secret(&c.webhook.secret));
    setting!(
        storage.runs_dir,
        c.storage
            .runs_dir
            .as_ref()
            .map_or_else(|| "<unset>".into(), |p| p.display().to_string())
    );
    let roots: Vec<String> = c
        .storage
        .extra_roots
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    setting!(storage.extra_roots, list(&roots));
    setting!(bus.fsync, c.bus.fsync.to_string());
    if agents.is_empty() {
        println!("agents = <none>");
    }
    for agent in agents {
        let token = match (&c.agents[&agent.name].token, agent.token_source) {
            (Some(token), Some(source)) => format!(", token {} ({source})", mask_secret(token)),
            _ => String::new(),
        };
        let mut text = format!("type {}{token}", agent.agent_type);
        if let Some(program) = &agent.program {
            text.push_str(&format!(", program {program}"));
        }
        if let Some(resolved) = &agent.resolved {
            text.push_str(&format!(" -> {}", resolved.display()));
        }
        if let Some(version) = &agent.version {
            text.push_str(&format!(", version {version:?}"));
        }
        match &agent.problem {
            Some(problem) => text.push_str(&format!(", PROBLEM: {problem}")),
            None if agent.program.is_some() && agent.resolved.is_some() => text.push_str(", ok"),
            None => {}
        }
        if let Some(note) = &agent.note {
            text.push_str(&format!(", note: {note}"));
        }
        println!("agents.{} = {text}", agent.name);
    }
}

pub(crate) fn check_agent(
    name: &str,
    agent: &AgentConfig,
    env: &dyn Fn(&str) -> Option<String>,
    run_checks: bool,
) -> AgentReport {
    let token_source = if agent.token.is_none() {
        None
    } else if env(&config::agent_token_env(name)).is_some_and(|v| !v.trim().is_empty()) {
        Some("env")
    } else if agent.token_file.is_some() {
        Some("token_file")
    } else {
        Some("file")
    };
    let mut report = AgentReport {
        name: name.to_string(),
        agent_type: agent.agent_type,
        token_source,
        program: None,
        resolved: None,
        version: None,
        problem: None,
        note: None,
    };
    if agent.agent_type.is_rest() && agent.token.is_none() {
        if let Some(var) = crate::agent::token_var(agent.agent_type) {
            if env(var).is_none_or(|v| v.trim().is_empty()) {
                report.note = Some(format!(
                    "no token: set token, token_file, {} or {var}",
                    config::agent_token_env(name)
                ));
            }
        }
    }
    let program = match (agent.agent_type.cli_binary(), &agent.command) {
        (Some(binary), _) => binary.to_string(),
        (None, Some(command)) if agent.agent_type == AgentType::Command => {
            command.first().cloned().unwrap_or_default()
        }
        _ => return report,
    };
    report.program = Some(program.clone());
    if !run_checks {
        return report;
    }
    let Some(resolved) = find_program(&program, env) else {
        report.problem = Some(if program.contains('/') {
            format!("{program} does not exist or is not executable")
        } else {
            format!("{program} not found on PATH")
        });
        return report;
    };
    report.resolved = Some(resolved.clone());
    if agent.agent_type.cli_binary().is_some() {
        match version_of(&resolved) {
            Ok(version) => report.version = Some(version),
            Err(problem) => report.problem = Some(problem),
        }
    }
    report
}

/// A program path (containing `/`) if it is an executable file, else the first executable
/// `PATH` entry of that name.
pub(crate) fn find_program(program: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path_var = env("PATH")?;
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `<program> --version` with a deadline; the first non-empty output line.
pub(crate) fn version_of(program: &Path) -> Result<String, String> {
    use crate::process::{first_line, probe, ProbeError};
    let mut cmd = Command::new(program);
    cmd.arg("--version");
    let out = probe(cmd, VERSION_TIMEOUT).map_err(|err| match err {
        ProbeError::Spawn { source, .. } => {
            format!("cannot run {} --version: {source}", program.display())
        }
        ProbeError::Timeout { .. } => format!(
            "{} --version did not finish in {}s",
            program.display(),
            VERSION_TIMEOUT.as_secs()
        ),
        ProbeError::Wait { source, .. } => {
            format!("waiting for {} --version: {source}", program.display())
        }
    })?;
    if !out.status.success() {
        return Err(format!(
            "{} --version failed ({}){}",
            program.display(),
            out.status,
            first_line(&out.stderr).map_or_else(String::new, |l| format!(": {l}"))
        ));
    }
    out.first_line()
        .map(str::to_string)
        .ok_or_else(|| format!("{} --version printed nothing", program.display()))
}
