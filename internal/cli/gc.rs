//! `run-agent gc`: delete old finished runs, rotate oversized buses, prune done tasks.
//! Exit codes: 0 success, 1 when anything failed (every failure is reported), 2 bad usage.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;

use crate::config;
use crate::gc::{self, GcOptions, GcReport};
use crate::storage::ProjectId;

/// gc flags.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Runs root (default: the --config file's storage.runs_dir, then RUNS_DIR, then ./runs).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Take the root from this config file's storage.runs_dir (default $HOME/run-agent).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Delete runs (and done tasks) older than this: e.g. 90s, 30m, 36h, 7d, 1h30m.
    #[arg(long, value_name = "DURATION", default_value = "168h", value_parser = parse_age_arg, allow_hyphen_values = true)]
    pub older_than: Duration,
    /// Only this project.
    #[arg(long, value_name = "ID", value_parser = parse_project_arg)]
    pub project: Option<ProjectId>,
    /// Print what would be deleted or rotated; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep failed runs.
    #[arg(long)]
    pub keep_failed: bool,
    /// Rotate message buses larger than --bus-max-size to <bus>.YYYYMMDD-HHMMSS.archived.
    #[arg(long)]
    pub rotate_bus: bool,
    /// Size above which --rotate-bus rotates a bus: B, KB, MB or GB (base 1024, any case).
    #[arg(long, value_name = "SIZE", default_value = "10MB", value_parser = parse_size_arg, allow_hyphen_values = true)]
    pub bus_max_size: u64,
    /// Delete task dirs that have DONE, no runs left, and an mtime older than the cutoff.
    #[arg(long)]
    pub delete_done_tasks: bool,
    /// Print the report as JSON on stdout.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
    /// Print nothing but errors (for cron).
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_age_arg(text: &str) -> Result<Duration, String> {
    gc::parse_age(text)
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    gc::parse_size(text)
}

fn parse_project_arg(text: &str) -> Result<ProjectId, String> {
    ProjectId::parse(text).map_err(|e| e.to_string())
}

/// Runs gc.
pub fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (root, _source) = gc::resolve_root(
        args.root.as_deref(),
        args.config.as_deref(),
        &config::process_env,
        &cwd,
    )?;
    let options = GcOptions {
        root,
        older_than: args.older_than,
        now: Utc::now(),
        project: args.project,
        dry_run: args.dry_run,
        keep_failed: args.keep_failed,
        rotate_bus_over: args.rotate_bus.then_some(args.bus_max_size),
        delete_done_tasks: args.delete_done_tasks,
        threads: 0,
    };
    let report = gc::gc(&options)?;
    print(&report, args.json, args.quiet)?;
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print(report: &GcReport, json: bool, quiet: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut err = stderr.lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report).context("cannot write the JSON report")?;
        writeln!(out)?;
        report.render_errors(&mut err)?;
    } else {
        report.render_text(&mut out, &mut err, quiet)?;
    }
    out.flush()?;
    Ok(())
}
