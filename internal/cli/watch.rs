//! `run-agent watch`: a live table of the runs of a task (or a project, or the whole root),
//! refreshed when the files change, until none of them is running and no task loop in scope is
//! active (a loop waiting to restart its task holds the task's loop lock, so the restart gap
//! does not end the watch). When stdout is not a terminal it prints one line per run status
//! change instead of redrawing a table.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::bail;
use chrono::Utc;
use notify::{RecursiveMode, Watcher};

use crate::runner::{inspect, loop_lock};
use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::scan;
use crate::storage::{Root, RunStatus};

/// How often runs are re-read without a file event (a process may die silently).
const RECHECK: Duration = Duration::from_secs(1);

/// `watch` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Only this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Only this task (needs --project).
    #[arg(long, requires = "project")]
    pub task: Option<String>,
    /// Runs root.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// One run as watched.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    status: RunStatus,
    exit_code: Option<i64>,
    summary: Option<String>,
    started: String,
}

/// Runs keyed `(project/task, run id)`, in order.
type Snapshot = BTreeMap<(String, String), Row>;
/// The `project/task` keys whose task loop is active.
type Loops = BTreeSet<String>;

/// Runs `watch`.
pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let (project, task) = super::scope::parse(args.project.as_deref(), args.task.as_deref())?;
    let setup = super::job::setup(args.root.as_deref(), None)?;
    let root = Root::new(&setup.root);
    let scope = match (&project, &task) {
        (Some(p), Some(t)) => root.task_dir(p, t),
        (Some(p), None) => root.project_dir(p),
        _ => root.path().to_path_buf(),
    };
    if !scope.is_dir() {
        bail!("{} does not exist", scope.display());
    }
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = crate::storage::watch::watcher(tx, notify::Config::default()).ok();
    if let Some(w) = watcher.as_mut() {
        if let Err(err) = w.watch(&scope, RecursiveMode::Recursive) {
            tracing::debug!("cannot watch {}: {err}; polling", scope.display());
        }
    }
    let tty = std::io::stdout().is_terminal();
    let mut previous: Option<(Snapshot, Loops)> = None;
    loop {
        let (snap, loops) = snapshot(&root, project.as_ref(), task.as_ref());
        let running = snap.values().any(|r| r.status == RunStatus::Running) || !loops.is_empty();
        if previous.as_ref().map(|(s, l)| (s, l)) != Some((&snap, &loops)) {
            if tty {
                draw(&snap, &loops, running);
            } else {
                print_changes(previous.as_ref().map(|(s, _)| s), &snap);
            }
            previous = Some((snap, loops));
        }
        if !running {
            return Ok(ExitCode::SUCCESS);
        }
        let _ = rx.recv_timeout(RECHECK);
        while rx.try_recv().is_ok() {}
    }
}

fn snapshot(root: &Root, project: Option<&ProjectId>, task: Option<&TaskId>) -> (Snapshot, Loops) {
    let mut out = Snapshot::new();
    let mut loops = Loops::new();
    for p in scan::list_projects(root.path()) {
        if project.is_some_and(|want| &p.id != want) {
            continue;
        }
        for t in scan::list_tasks(&p) {
            if task.is_some_and(|want| &t.id != want) {
                continue;
            }
            if loop_lock::active(&t.dir) {
                loops.insert(format!("{}/{}", p.id, t.id));
            }
            for run in inspect::list_runs(&t.dir) {
                let info = run.info.as_ref().ok();
                let row = Row {
                    status: run.status(),
                    exit_code: info.filter(|i| i.status.is_terminal()).map(|i| i.exit_code),
                    summary: info.and_then(|i| i.error_summary.clone()),
                    started: info
                        .and_then(|i| i.start_time_opt())
                        .map(|t| t.format("%H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into()),
                };
                out.insert((format!("{}/{}", p.id, t.id), run.run_id()), row);
            }
        }
    }
    (out, loops)
}

/// Redraws the whole table (terminal mode).
fn draw(snap: &Snapshot, loops: &Loops, running: bool) {
    print!("\x1b[H\x1b[2J");
    let rows: Vec<Vec<String>> = snap
        .iter()
        .map(|((task, run), row)| {
            vec![
                task.clone(),
                run.clone(),
                row.status.to_string(),
                row.exit_code.map_or("-".into(), |c| c.to_string()),
                row.started.clone(),
                row.summary.clone().unwrap_or_default(),
            ]
        })
        .collect();
    super::list::print_table(
        &["TASK", "RUN_ID", "STATUS", "EXIT", "STARTED", "SUMMARY"],
        &rows,
    );
    let n = snap
        .values()
        .filter(|r| r.status == RunStatus::Running)
        .count();
    if running {
        let idle_loops = loops
            .iter()
            .filter(|task| {
                !snap
                    .iter()
                    .any(|((t, _), r)| t == *task && r.status == RunStatus::Running)
            })
            .count();
        let waiting = if idle_loops > 0 {
            format!(", {idle_loops} task loop(s) between runs")
        } else {
            String::new()
        };
        println!(
            "\n{n} running{waiting}; updated {}",
            Utc::now().format("%H:%M:%S")
        );
    } else {
        println!("\nno run is running");
    }
    let _ = std::io::stdout().flush();
}

/// Prints one line per run that is new or whose status changed (non-terminal mode).
fn print_changes(previous: Option<&Snapshot>, snap: &Snapshot) {
    let mut out = std::io::stdout().lock();
    for ((task, run), row) in snap {
        let old = previous.and_then(|p| p.get(&(task.clone(), run.clone())));
        if old.is_some_and(|o| o.status == row.status) {
            continue;
        }
        let mut line = format!("{task} {run} {}", row.status);
        if let Some(code) = row.exit_code {
            line.push_str(&format!(" exit_code={code}"));
        }
        if let Some(summary) = &row.summary {
            line.push_str(&format!(" ({summary})"));
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}
