//! `server status` / `conductor status`: the server's `GET /api/v1/status`.

use std::process::ExitCode;

use super::common::{client, opt_text, print_json, text, REQUEST_TIMEOUT};
use super::ClientArgs;
use crate::wire::StatusBody;

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
    let answer = api.get::<StatusBody>("/api/v1/status")?;
    if args.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let status = answer.body;
    println!("server:       {}", api.base());
    println!("version:      {}", text(&status.version));
    println!("commit:       {}", text(&status.commit));
    println!("pid:          {}", status.pid);
    println!("root:         {}", text(&status.root));
    println!("started at:   {}", text(&status.started_at));
    println!("uptime (s):   {}", status.uptime_seconds);
    println!("config:       {}", text(&status.config));
    println!("config error: {}", opt_text(status.config_error.as_ref()));
    println!("task start:   {}", status.task_start_enabled);
    println!("auth:         {}", status.auth_enabled);
    println!("executable:   {}", opt_text(status.executable.as_ref()));
    if !status.warnings.is_empty() {
        println!("warnings:");
        for w in &status.warnings {
            println!("  - {}", text(w));
        }
    }
    Ok(ExitCode::SUCCESS)
}
