//! `server status` / `conductor status`: the server's `GET /api/v1/status`.

use std::process::ExitCode;

use super::common::{cell, client, print_json, REQUEST_TIMEOUT};
use super::ClientArgs;

/// `server status`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerStatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print the server's raw JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// Runs `server status`.
pub fn run(args: ServerStatusArgs) -> anyhow::Result<ExitCode> {
    let api = client(&args.client, REQUEST_TIMEOUT)?;
    let status = api.get_json("/api/v1/status")?;
    if args.json {
        print_json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("server:       {}", api.base());
    for (label, key) in [
        ("version:      ", "version"),
        ("commit:       ", "commit"),
        ("pid:          ", "pid"),
        ("root:         ", "root"),
        ("started at:   ", "started_at"),
        ("uptime (s):   ", "uptime_seconds"),
        ("config:       ", "config"),
        ("config error: ", "config_error"),
        ("task start:   ", "task_start_enabled"),
        ("auth:         ", "auth_enabled"),
        ("executable:   ", "executable"),
    ] {
        println!("{label}{}", cell(&status[key]));
    }
    if let Some(warnings) = status["warnings"].as_array().filter(|w| !w.is_empty()) {
        println!("warnings:");
        for w in warnings {
            println!("  - {}", cell(w));
        }
    }
    Ok(ExitCode::SUCCESS)
}
