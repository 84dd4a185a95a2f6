//! `run-agent doctor`: checks what a working setup needs and prints a pass / warn / fail list
//! (`--json` for scripts). Exit 0 when nothing failed, 1 otherwise.
//!
//! Sections: the config and where each value comes from, the runs root (exists, writable,
//! free space, inotify limits), each agent (on PATH, version, credentials, unattended-mode
//! pitfalls), the port `serve` would bind, and the server the client commands talk to.

mod agents;
mod report;
mod root;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::{self, ConfigMode, ServerFlags, ServerSettings};
use report::{Level, Report};

/// doctor flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Config file (default: CONDUCTOR_CONFIG, then ./config.{yaml,yml,hcl}, then
    /// ~/.config/conductor/config.{yaml,yml,hcl}).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Runs root (default: CONDUCTOR_ROOT, then storage.runs_dir, then ~/run-agent).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Server URL to check (default: CONDUCTOR_URL, then the config's api.host/api.port).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// API key to try (default: CONDUCTOR_API_KEY, then api.api_key).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Print one JSON document instead of the list.
    #[arg(long)]
    pub json: bool,
}

/// Runs doctor.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env = &config::process_env;
    let mut report = Report::default();
    let flags = ServerFlags {
        config: args.config.clone(),
        root: args.root.clone(),
        api_key: args.api_key.clone(),
        ..ServerFlags::default()
    };
    match config::resolve_server(&flags, ConfigMode::Optional, env, &cwd) {
        Ok(settings) => {
            check_config(&settings, &cwd, &mut report);
            root::check(&settings.root.value, &mut report);
            let config = settings.config_path.as_ref().map(|_| &settings.config);
            agents::check(config, env, &mut report);
            server::check_port(&settings, &mut report);
            match crate::client::resolve_endpoint(
                args.server.as_deref(),
                args.api_key.as_deref(),
                args.config.as_deref(),
                env,
                &cwd,
            ) {
                Ok(endpoint) => server::check_server(&endpoint, &settings.root.value, &mut report),
                Err(err) => report.add("server", "server", Level::Fail, err.to_string()),
            }
        }
        Err(err) => report.add_hint(
            "config",
            "config",
            Level::Fail,
            err.to_string(),
            "fix the file (run-agent validate --config FILE names the field) and run doctor again",
        ),
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The config file (or its absence), its errors and warnings, and the effective server
/// settings with where each value comes from.
fn check_config(settings: &ServerSettings, cwd: &std::path::Path, report: &mut Report) {
    let discovery = config::discover(settings.config_path.as_deref(), &config::process_env, cwd);
    match (&settings.config_path, &settings.config_error) {
        (Some(path), Some(err)) => report.add_hint(
            "config",
            "config",
            Level::Fail,
            format!("{}: {err}", path.display()),
            "the server would start on defaults (run-agent serve) or read-only (conductor); fix the file",
        ),
        (Some(path), None) => report.add("config", "config", Level::Pass, format!("{} ({})", path.display(), discovery.source)),
        (None, _) => {
            let searched: Vec<String> = discovery.searched.iter().map(|p| p.display().to_string()).collect();
            report.add("config", "config", Level::Pass, format!("no config file (searched: {}); defaults apply", searched.join(", ")));
        }
    }
    for warning in &settings.warnings {
        report.add("config", "config.warning", Level::Warn, warning.clone());
    }
    let rest = [
        (
            "api.api_key",
            settings.shown_api_key(),
            settings.api_key.source,
        ),
        (
            "task_start_disabled",
            settings.task_start_disabled.value.to_string(),
            settings.task_start_disabled.source,
        ),
    ];
    for (key, text, source) in settings.shown_location().into_iter().chain(rest) {
        let text = format!("{text} ({source})");
        report.add("config", format!("config.{key}"), Level::Pass, text);
    }
}
