//! `run-agent serve` and `conductor` (no subcommand): resolve settings, bind, serve until
//! SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::api::{listen, ServerState};
use crate::config::{self, ConfigMode, ServerFlags};
use crate::update;

/// Server flags. Each counts only when given: a missing flag never overrides the config.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Config file (default: CONDUCTOR_CONFIG, then ./config.{yaml,yml,hcl}, then
    /// ~/.config/conductor/config.{yaml,yml,hcl}).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Runs root (default: CONDUCTOR_ROOT, then storage.runs_dir, then ~/run-agent).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Host to bind (default: CONDUCTOR_HOST, then api.host, then 0.0.0.0).
    #[arg(long)]
    pub host: Option<String>,
    /// Port to bind; fails if busy (default: CONDUCTOR_PORT, then api.port, then 14355 with
    /// fallback to the next free port of 100).
    #[arg(long)]
    pub port: Option<u16>,
    /// API key required as `Authorization: Bearer <key>` (default: CONDUCTOR_API_KEY, then api.api_key).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Serve read-only: refuse to start tasks (CONDUCTOR_DISABLE_TASK_START overrides).
    #[arg(long)]
    pub disable_task_start: bool,
}

/// Which binary is serving; decides whether a config file is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `run-agent serve`: config optional, defaults on error.
    RunAgent,
    /// `conductor`: config required; a broken config makes the server read-only.
    Conductor,
}

impl Flavor {
    /// The arguments that run this binary's self-update watchdog.
    fn watchdog_args(self) -> Vec<String> {
        let words: &[&str] = match self {
            Flavor::RunAgent => &["server", "update", "watchdog"],
            Flavor::Conductor => &["update", "watchdog"],
        };
        words.iter().map(|w| w.to_string()).collect()
    }
}

/// Runs the server until a shutdown signal.
pub fn run(args: ServeArgs, flavor: Flavor) -> anyhow::Result<ExitCode> {
    limit_allocator_arenas();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let mode = match flavor {
        Flavor::RunAgent => ConfigMode::Optional,
        Flavor::Conductor => ConfigMode::Required,
    };
    let flags = ServerFlags {
        config: args.config,
        root: args.root,
        host: args.host,
        port: args.port,
        api_key: args.api_key,
        disable_task_start: args.disable_task_start,
    };
    let settings = config::resolve_server(&flags, mode, &config::process_env, &cwd)?;
    if let Some(err) = &settings.config_error {
        match flavor {
            Flavor::RunAgent => tracing::error!("config error, continuing on defaults: {err}"),
            Flavor::Conductor => {
                tracing::error!("config error, task start disabled (read-only): {err}")
            }
        }
    }
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let root = settings.root.value.clone();
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create the runs root {}", root.display()))?;

    // A socket handed over by a self-update (or systemd) is adopted instead of binding.
    let pending_marker = update::handoff::take_pending_marker();
    let listener = match update::handoff::inherited_listener()? {
        Some(listener) => listener,
        None => listen::bind(
            &settings.host.value,
            settings.port.value,
            settings.port_explicit,
        )?,
    };
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let base = listen::display_base_url(&addr);
    tracing::info!(
        version = crate::version::VERSION,
        root = %root.display(),
        config = %settings
            .config_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".to_string()),
        "conductor server starting"
    );
    tracing::info!("API listening on {base}/api/v1/");
    tracing::info!("Web UI available at {base}/ui/");

    let state =
        Arc::new(ServerState::new(settings).with_conductor_url(listen::local_base_url(&addr)));
    // Built in the background: /healthz and the UI answer at once, listings wait briefly.
    state.index.start();
    state.executable.start();
    if !state.settings.task_start_disabled.value {
        crate::api::task_loops::resume_recorded(&state);
    }
    if state.remote_mutations_blocked() {
        tracing::warn!(
            "NO API KEY on a non-loopback address ({}): anyone who can reach this port can read \
             all runs; changes are accepted only from this machine. Set api.api_key or \
             CONDUCTOR_API_KEY (or api.allow_remote_without_key: true to accept remote changes)",
            state.settings.host.value
        );
    } else if !state.settings.auth_enabled
        && !crate::api::state::is_loopback_host(&state.settings.host.value)
    {
        tracing::warn!(
            "NO API KEY on a non-loopback address ({}) and api.allow_remote_without_key is set: \
             anyone who can reach this port can read and change runs",
            state.settings.host.value
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let start = crate::api::serve_loop::StartInfo {
            argv: std::env::args_os().collect(),
            watchdog_args: flavor.watchdog_args(),
            pending_marker,
        };
        crate::api::serve_loop::serve(listener, state, start, shutdown_signal())
            .await
            .context("server failed")
    })?;
    tracing::info!("server stopped");
    Ok(ExitCode::SUCCESS)
}

/// A long-running server with a few threads: one allocator arena (glibc otherwise keeps one
/// per thread, each holding freed listing buffers: 29 instead of 20 MB after paging 10k runs)
/// and large buffers always mapped (returned to the system when freed). No effect when the
/// environment sets MALLOC_ARENA_MAX or MALLOC_MMAP_THRESHOLD_ (an operator's choice wins).
fn limit_allocator_arenas() {
    #[cfg(target_env = "gnu")]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt takes no pointers; called before any other thread exists.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!("{name} received, shutting down");
}
