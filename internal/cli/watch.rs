//! `run-agent watch`: a live table of the runs of a task (or a project, or the whole root),
//! refreshed when the files change, until none of them is running and no task loop in scope is
//! active (a loop waiting to restart its task holds the task's loop lock, so the restart gap
//! does not end the watch). When stdout is not a terminal it prints one line per run status
//! change instead of redrawing a table. Runs of the config's `storage.extra_roots` are watched
//! too (read-only).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use chrono::Utc;

use crate::runner::{inspect, loop_lock};
use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::scan;
use crate::storage::watch::{Scope, Subscription};
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
    /// Runs root and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
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
    let setup = args.location.setup()?;
    let root = Root::new(&setup.root);
    let extra = setup.extra_roots.as_slice();
    let scope = match (&project, &task) {
        (Some(p), Some(t)) => root.confined_task_dir(p, t)?,
        (Some(p), None) => root.confined_project_dir(p)?,
        _ => root.path().to_path_buf(),
    };
    let in_extra = || {
        inspect::extra_runs(extra).iter().any(|r| {
            project.as_ref().is_none_or(|p| &r.project == p)
                && task.as_ref().is_none_or(|t| &r.task == t)
        })
    };
    if !scope.is_dir() && !in_extra() {
        bail!("{} does not exist", scope.display());
    }
    let mut changes = Subscription::new();
    let extra_runs = extra
        .iter()
        .map(|e| e.join(crate::storage::paths::RUNS_DIR));
    for dir in std::iter::once(scope.clone()).chain(extra_runs) {
        if !dir.is_dir() {
            continue;
        }
        if let Err(err) = changes.watch(&dir, Scope::Tree) {
            tracing::debug!("{err}; re-checking every {RECHECK:?}");
        }
    }
    let tty = std::io::stdout().is_terminal();
    let mut previous: Option<(Snapshot, Loops)> = None;
    loop {
        let (snap, loops) = snapshot(&root, extra, project.as_ref(), task.as_ref());
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
        changes.wait(RECHECK);
    }
}

fn snapshot(
    root: &Root,
    extra: &[PathBuf],
    project: Option<&ProjectId>,
    task: Option<&TaskId>,
) -> (Snapshot, Loops) {
    let mut out = Snapshot::new();
    let mut loops = Loops::new();
    for run in inspect::extra_runs(extra) {
        if project.is_some_and(|want| &run.project != want)
            || task.is_some_and(|want| &run.task != want)
        {
            continue;
        }
        let key = (format!("{}/{}", run.project, run.task), run.entry.run_id());
        out.insert(key, row(&run.entry));
    }
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
                out.insert((format!("{}/{}", p.id, t.id), run.run_id()), row(&run));
            }
        }
    }
    (out, loops)
}

fn row(run: &scan::RunEntry) -> Row {
    let info = run.info.as_ref().ok();
    Row {
        status: run.status(),
        exit_code: info.filter(|i| i.status.is_terminal()).map(|i| i.exit_code),
        summary: info.and_then(|i| i.error_summary.clone()),
        started: info
            .and_then(|i| i.start_time_opt())
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into()),
    }
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
