//! `run-agent server …` (and the same commands under `conductor …`): API-client commands for a
//! running server — status, tasks, runs, bus (in `remote/*.rs`) — and `update status|start`,
//! which drive and watch the server's self-update or read its state offline.

mod bus;
mod common;
mod runs;
mod status;
mod task;

pub use bus::BusCommand;
pub use runs::RunsCommand;
pub use status::ServerStatusArgs;
pub use task::TaskCommand;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::client::{ApiClient, ClientError};
use crate::config::{self, ConfigMode, ServerFlags};
use crate::update::{StateStore, StatusView, UpdateMode};
use crate::wire::{StartBody, StatusBody};

const ROUTE: &str = "/api/v1/admin/self-update";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(500);

/// `run-agent server …`: commands addressed to a running server.
#[derive(Debug, clap::Subcommand)]
pub enum ServerCommand {
    /// Show the server's version, root, uptime and settings.
    Status(ServerStatusArgs),
    /// Submit, list, show, stop, resume and delete tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// List and show runs; print or follow a run's output.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Read, follow and post message-bus messages.
    #[command(subcommand)]
    Bus(BusCommand),
    /// Update the server's binary in place (drain or hand over, verify, swap, re-exec).
    #[command(subcommand)]
    Update(UpdateCommand),
}

/// `… update …`.
#[derive(Debug, clap::Subcommand)]
pub enum UpdateCommand {
    /// Show the self-update state, active root runs and history.
    Status(StatusArgs),
    /// Ask the server to update itself to a candidate binary.
    Start(StartArgs),
    /// Watch a hand-over and restore the previous binary if the new one does not come up
    /// (internal; started by the server).
    #[command(hide = true)]
    Watchdog(WatchdogArgs),
}

/// Where the server is.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server URL (default: CONDUCTOR_URL, then the config's api.host/api.port, then
    /// http://127.0.0.1:14355).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// API or admin key sent as `Authorization: Bearer` (default: CONDUCTOR_API_KEY, then the
    /// config's api.api_key).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Config file whose api.host/api.port/api.api_key locate the server (default: the one
    /// CONDUCTOR_CONFIG, ./config.{yaml,yml,hcl} or ~/.config/conductor/config.* names); it
    /// must exist and load. Also the config `update status --offline` reads.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `update status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// Read the state files instead of asking the server.
    #[arg(long)]
    pub offline: bool,
    /// Runs root for --offline (default: CONDUCTOR_ROOT, then storage.runs_dir of --config or
    /// the discovered config, then ~/run-agent).
    #[arg(long, value_name = "DIR", requires = "offline")]
    pub root: Option<PathBuf>,
}

/// `update start`.
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The candidate binary (a path on the server's machine).
    #[arg(long, value_name = "PATH")]
    pub binary: PathBuf,
    /// Expected sha256 of the candidate (hex); the server refuses a mismatch.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// `drain` waits for active root runs; `handoff` re-execs at once.
    #[arg(long, value_enum, default_value_t = UpdateMode::Drain)]
    pub mode: UpdateMode,
    /// Show progress until the server runs the new binary; fail if the update fails.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub timeout: u64,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `update watchdog` (internal).
#[derive(Debug, Clone, clap::Args)]
pub struct WatchdogArgs {
    /// The self-update state file.
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// The hand-over id.
    #[arg(long)]
    pub id: String,
}

impl ServerCommand {
    /// The client flags of the command (none for the internal watchdog).
    fn client_mut(&mut self) -> Option<&mut ClientArgs> {
        match self {
            ServerCommand::Status(args) => Some(&mut args.client),
            ServerCommand::Task(cmd) => Some(cmd.client_mut()),
            ServerCommand::Runs(cmd) => Some(cmd.client_mut()),
            ServerCommand::Bus(cmd) => Some(cmd.client_mut()),
            ServerCommand::Update(UpdateCommand::Status(args)) => Some(&mut args.client),
            ServerCommand::Update(UpdateCommand::Start(args)) => Some(&mut args.client),
            ServerCommand::Update(UpdateCommand::Watchdog(_)) => None,
        }
    }
}

/// Runs a client command of `conductor`: `config` (the top-level `conductor --config`) is used
/// when the command has no `--config` of its own.
pub fn run_with_config(
    mut command: ServerCommand,
    config: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if let Some(client) = command.client_mut() {
        if client.config.is_none() {
            client.config = config;
        }
    }
    run(command)
}

/// Runs `run-agent server …`.
pub fn run(command: ServerCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServerCommand::Status(args) => status::run(args),
        ServerCommand::Task(cmd) => task::run(cmd),
        ServerCommand::Runs(cmd) => runs::run(cmd),
        ServerCommand::Bus(cmd) => bus::run(cmd),
        ServerCommand::Update(cmd) => run_update(cmd),
    }
}

/// Runs `… update …` (also `conductor update …`).
pub fn run_update(command: UpdateCommand) -> anyhow::Result<ExitCode> {
    match command {
        UpdateCommand::Status(args) => status(args),
        UpdateCommand::Start(args) => start(args),
        UpdateCommand::Watchdog(args) => {
            crate::update::watchdog::run(&args.state, &args.id)
                .with_context(|| format!("self-update watchdog for {}", args.state.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn client(args: &ClientArgs) -> anyhow::Result<ApiClient> {
    common::client(args, REQUEST_TIMEOUT)
}

fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let view: StatusView = if args.offline {
        offline_status(&args)?
    } else {
        client(&args.client)?.get::<StatusView>(ROUTE)?.body
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render(&view));
    }
    Ok(ExitCode::SUCCESS)
}

fn offline_status(args: &StatusArgs) -> anyhow::Result<StatusView> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let flags = ServerFlags {
        config: args.client.config.clone(),
        root: args.root.clone(),
        ..ServerFlags::default()
    };
    let settings =
        config::resolve_server(&flags, ConfigMode::Optional, &config::process_env, &cwd)?;
    // A config named by --config must load; a discovered one may fall back to defaults.
    if let (Some(_), Some(err)) = (&flags.config, &settings.config_error) {
        bail!("{err}");
    }
    let root = settings.root.value.clone();
    let store = StateStore::new(&root.join(crate::storage::paths::CONDUCTOR_STATE_DIR));
    let record = store.load()?;
    let active =
        crate::update::drain::active_root_runs(&root, &settings.config.storage.extra_roots);
    Ok(StatusView::new(record, active))
}

/// Human-readable status.
fn render(view: &StatusView) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
    let mut out = String::new();
    out.push_str(&format!("state:            {}\n", view.state.as_str()));
    out.push_str(&format!(
        "mode:             {}\n",
        view.mode.map(|m| m.as_str()).unwrap_or("-")
    ));
    out.push_str(&format!("candidate:        {}\n", opt(&view.candidate)));
    out.push_str(&format!("sha256:           {}\n", opt(&view.sha256)));
    out.push_str(&format!("active root runs: {}\n", view.active_root_runs));
    out.push_str(&format!("started at:       {}\n", opt(&view.started_at)));
    out.push_str(&format!("last error:       {}\n", opt(&view.last_error)));
    if view.history.is_empty() {
        out.push_str("history:          (none)\n");
    } else {
        out.push_str("history:\n");
        for h in &view.history {
            out.push_str(&format!(
                "  {}  {:<6} {:<7} {} -> {}  sha256 {}{}\n",
                h.time,
                h.result,
                h.mode.as_str(),
                h.from_version,
                h.to_version.clone().unwrap_or_else(|| "?".to_string()),
                h.to_sha256.get(..12).unwrap_or(&h.to_sha256),
                h.error
                    .as_ref()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let binary = if args.binary.is_absolute() {
        args.binary.clone()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(&args.binary)
    };
    let api = client(&args.client)?;
    let body = StartBody {
        binary_path: binary.clone(),
        sha256: args.sha256.clone(),
        mode: Some(args.mode),
    };
    let accepted = api.post::<_, StatusView>(ROUTE, &body)?;
    if args.json && !args.wait {
        println!("{}", serde_json::to_string_pretty(&accepted.raw)?);
        return Ok(ExitCode::SUCCESS);
    }
    let view = accepted.body;
    println!(
        "update accepted: {} (mode {}, sha256 {}); state {}",
        binary.display(),
        args.mode.as_str(),
        view.sha256.clone().unwrap_or_default(),
        view.state.as_str()
    );
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    wait(&api, &view, Duration::from_secs(args.timeout))
}

/// Polls until the server runs the candidate (exit 0) or the update failed (exit 1).
fn wait(api: &ApiClient, accepted: &StatusView, limit: Duration) -> anyhow::Result<ExitCode> {
    let target = accepted.sha256.clone().unwrap_or_default();
    let started_at = accepted.started_at.clone();
    let begin = Instant::now();
    let mut last_line = String::new();
    loop {
        match poll(api) {
            Ok((view, running_sha)) => {
                let ours = view.started_at == started_at;
                if ours && view.state == crate::update::UpdateState::Failed {
                    eprintln!(
                        "update failed: {}",
                        view.last_error
                            .unwrap_or_else(|| "no reason recorded".to_string())
                    );
                    return Ok(ExitCode::from(1));
                }
                if running_sha.as_deref() == Some(target.as_str()) && !view.state.in_progress() {
                    println!(
                        "updated: the server now runs {} (sha256 {target})",
                        view.to_version
                            .unwrap_or_else(|| "the new binary".to_string())
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                let line = format!(
                    "state {}; active root runs {}",
                    view.state.as_str(),
                    view.active_root_runs
                );
                if line != last_line {
                    println!("{line}");
                    last_line = line;
                }
            }
            Err(ClientError::Unreachable { message, .. }) => {
                let line = format!("server not answering yet ({message})");
                if line != last_line {
                    println!("{line}");
                    last_line = line;
                }
            }
            Err(other) => return Err(other.into()),
        }
        if begin.elapsed() >= limit {
            bail!(
                "gave up waiting after {}s; see `run-agent server update status`",
                limit.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
}

fn poll(api: &ApiClient) -> Result<(StatusView, Option<String>), ClientError> {
    let view = api.get::<StatusView>(ROUTE)?.body;
    let status = api.get::<StatusBody>("/api/v1/status")?.body;
    Ok((view, status.executable_sha256))
}
