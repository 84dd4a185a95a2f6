//! `server runs list|show|logs`: runs through the REST API; `logs --follow` reads the run's
//! SSE stream until its `end` event, reconnecting with `Last-Event-ID` when the connection drops.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::common::{client, opt_text, print_json, table, text, REQUEST_TIMEOUT};
use super::ClientArgs;
use crate::client::{query, segment, ApiClient, ClientError};
use crate::wire::{wire_time, RunDetail, RunsPage};

/// Consecutive failed reconnects before `logs --follow` gives up.
const MAX_RECONNECTS: u32 = 10;
/// Pause before a reconnect.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// `server runs …`.
#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first (one page; see --cursor).
    List(ListArgs),
    /// Show one run's run-info.
    Show(ShowArgs),
    /// Print a run's stdout (or stderr); --follow streams it until the run ends.
    Logs(LogsArgs),
}

/// `runs list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only runs of this project.
    #[arg(long, value_name = "ID")]
    pub project: Option<String>,
    /// Only runs of this task.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Only runs with this status (running, completed, failed, stopped, unknown).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only runs of this agent: its configured name or its type.
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// Only runs started at or after this RFC 3339 time (e.g. 2026-12-05T13:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only runs started before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Page size (server default 100, at most 1000).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Continue after this run id (the previous page's next cursor).
    #[arg(long, value_name = "RUN")]
    pub cursor: Option<String>,
    /// Print the server's raw JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// `runs show`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Run id.
    pub run: String,
    /// Print the server's raw JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// `runs logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Run id.
    pub run: String,
    /// Stream new lines until the run ends.
    #[arg(long)]
    pub follow: bool,
    /// The stderr file (or stream) instead of stdout.
    #[arg(long)]
    pub stderr: bool,
}

impl RunsCommand {
    /// The command's client flags.
    pub(super) fn client_mut(&mut self) -> &mut ClientArgs {
        match self {
            RunsCommand::List(args) => &mut args.client,
            RunsCommand::Show(args) => &mut args.client,
            RunsCommand::Logs(args) => &mut args.client,
        }
    }
}

/// Runs `server runs …`.
pub fn run(command: RunsCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::List(args) => list(args),
        RunsCommand::Show(args) => show(args),
        RunsCommand::Logs(args) => logs(args),
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let api = client(&args.client, REQUEST_TIMEOUT)?;
    let q = query(&[
        ("project", args.project.clone()),
        ("task", args.task.clone()),
        ("status", args.status.clone()),
        ("agent", args.agent.clone()),
        ("since", args.since.clone()),
        ("until", args.until.clone()),
        ("limit", args.limit.map(|l| l.to_string())),
        ("cursor", args.cursor.clone()),
    ]);
    let answer = api.get::<RunsPage>(&format!("/api/v1/runs{q}"))?;
    if args.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let page = answer.body;
    let rows: Vec<Vec<String>> = page
        .runs
        .iter()
        .map(|r| {
            let info = r.info.as_ref();
            vec![
                text(&r.run_id),
                text(&r.project_id),
                text(&r.task_id),
                text(r.status),
                opt_text(info.map(|i| &i.agent)),
                opt_text(info.map(|i| wire_time(&i.start_time))),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no runs");
    } else {
        print!(
            "{}",
            table(
                &["RUN", "PROJECT", "TASK", "STATUS", "AGENT", "STARTED"],
                &rows
            )
        );
    }
    if let Some(next) = &page.next_cursor {
        println!("more: --cursor {next}");
    }
    Ok(ExitCode::SUCCESS)
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let api = client(&args.client, REQUEST_TIMEOUT)?;
    let answer = api.get::<RunDetail>(&format!("/api/v1/runs/{}", segment(&args.run)))?;
    if args.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let run = answer.body.run;
    println!("run:       {}", text(&run.run_id));
    println!("project:   {}", text(&run.project_id));
    println!("task:      {}", text(&run.task_id));
    println!("status:    {}", text(run.status));
    if let Some(info) = &run.info {
        let fields = [
            ("agent:     ", Some(info.agent.clone())),
            ("pid:       ", Some(info.pid.to_string())),
            ("started:   ", Some(wire_time(&info.start_time))),
            ("ended:     ", Some(wire_time(&info.end_time))),
            ("exit code: ", Some(info.exit_code.to_string())),
            ("parent:    ", info.parent_run_id.clone()),
            ("previous:  ", info.previous_run_id.clone()),
            ("cwd:       ", info.cwd.clone()),
            ("error:     ", info.error_summary.clone()),
        ];
        for (label, value) in fields {
            if let Some(value) = value {
                println!("{label}{}", text(value));
            }
        }
    }
    if let Some(err) = &run.error {
        println!("run-info:  {err}");
    }
    Ok(ExitCode::SUCCESS)
}

fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let run = segment(&args.run);
    let stream_name = if args.stderr { "stderr" } else { "stdout" };
    if !args.follow {
        let api = client(&args.client, REQUEST_TIMEOUT)?;
        let bytes = api.get_bytes(&format!("/api/v1/runs/{run}/files/{stream_name}"))?;
        std::io::stdout().write_all(&bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    let api = client(&args.client, Duration::from_secs(10))?;
    follow(&api, &format!("/api/v1/runs/{run}/stream"), stream_name)
}

/// Prints `stream_name` lines until `end`; reconnects from the last event id on a drop.
fn follow(api: &ApiClient, path: &str, stream_name: &str) -> anyhow::Result<ExitCode> {
    let mut last_id: Option<String> = None;
    let mut failures = 0u32;
    let mut out = std::io::stdout().lock();
    loop {
        let mut events = match api.stream(path, last_id.as_deref()) {
            Ok(events) => events,
            Err(err @ ClientError::Unreachable { .. }) if last_id.is_some() => {
                failures += 1;
                if failures > MAX_RECONNECTS {
                    return Err(err.into());
                }
                std::thread::sleep(RECONNECT_DELAY);
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        while let Ok(Some(event)) = events.next_event() {
            failures = 0;
            if let Some(id) = &event.id {
                last_id = Some(id.clone());
            }
            match event.event.as_str() {
                name if name == stream_name => {
                    writeln!(out, "{}", event.data)?;
                    out.flush()?;
                }
                "end" => {
                    eprintln!("run ended: {}", event.data);
                    return Ok(ExitCode::SUCCESS);
                }
                "error" => bail!("the server's stream failed: {}", event.data),
                _ => {}
            }
        }
        failures += 1;
        if failures > MAX_RECONNECTS {
            bail!("the stream at {}{path} kept dropping; gave up", api.base());
        }
        tracing::info!("stream dropped; reconnecting from {last_id:?}");
        std::thread::sleep(RECONNECT_DELAY);
    }
}
