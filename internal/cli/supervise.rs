//! `run-agent supervise` (hidden): the supervisor of one run, started by `job`/`task` and the
//! server; it first makes itself the leader of its own process group. Not meant to be typed by
//! users.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;

use crate::config::{self, AgentType};
use crate::runner::webhook::WebhookTarget;
use crate::runner::{supervise, SupervisorPlan};

/// Supervisor flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SuperviseArgs {
    /// The run dir.
    #[arg(long, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// The agent's working directory.
    #[arg(long, value_name = "DIR")]
    pub cwd: PathBuf,
    /// The agent's type.
    #[arg(long)]
    pub agent_type: String,
    /// Idle-output timeout in milliseconds.
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Wait for one of this many run slots before starting the agent.
    #[arg(long, default_value_t = 0)]
    pub max_concurrent_runs: u32,
    /// The agent's program and arguments.
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

/// Runs the supervisor.
pub fn run(args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    // The server spawns supervisors with posix_spawn (no fork of its large, busy address
    // space), so the supervisor detaches itself: its own process group, no terminal, empty mask.
    if let Err(err) = crate::process::lead_own_group() {
        tracing::warn!("the supervisor could not lead its own process group: {err}");
    }
    let agent_type = AgentType::parse(&args.agent_type).ok_or_else(|| {
        anyhow!(
            "--agent-type {}: allowed: {}",
            args.agent_type,
            AgentType::names()
        )
    })?;
    let config = run_config();
    let plan = SupervisorPlan {
        run_dir: args.run_dir,
        cwd: args.cwd,
        agent_type,
        argv: args.argv,
        idle_timeout: args.idle_timeout_ms.map(Duration::from_millis),
        max_concurrent_runs: args.max_concurrent_runs,
        webhook: config.as_ref().and_then(WebhookTarget::from_config),
        default_budget: config
            .as_ref()
            .map(|c| c.defaults.budget)
            .unwrap_or_default(),
        pricing: config.map(|c| c.pricing).unwrap_or_default(),
    };
    supervise(&plan)?;
    Ok(ExitCode::SUCCESS)
}

/// The config the run was started with (its webhook and pricing): the file named by
/// CONDUCTOR_CONFIG in the supervisor's env (set by `job`/`task` and the server whenever they
/// use a config). The webhook secret thus never appears on a command line. A config that no
/// longer loads disables the webhook and the cost estimate for this run (logged); the run
/// itself goes on.
fn run_config() -> Option<config::Config> {
    let path = config::process_env(config::ENV_CONFIG).filter(|p| !p.trim().is_empty())?;
    match config::load(Path::new(&path), &config::process_env) {
        Ok(config) => Some(config),
        Err(err) => {
            tracing::warn!("no webhook and no pricing for this run: {err}");
            None
        }
    }
}
