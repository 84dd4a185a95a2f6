//! `run-agent list`: projects, their tasks with a derived status, and (with `--task`) the
//! task's runs, read from the files (no server). Reading reconciles `running` records whose
//! process is gone to `failed`. Runs of the config's `storage.extra_roots` are listed under the
//! project and task their run-info.yaml names (read-only).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

use crate::runner::inspect::{extra_runs, TaskStatus, TaskView};
use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::scan::{self, RunEntry, TaskEntry};
use crate::storage::time::format_rfc3339_nano;
use crate::storage::usage::display_usd as cost_text;
use crate::storage::{RunStatus, UsageTotals};

/// `list` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Only this task, listing its runs (needs --project).
    #[arg(long, requires = "project")]
    pub task: Option<String>,
    /// Only tasks with this derived status (running, done, failed, stopped, idle, blocked,
    /// queued, unknown); with --task, only runs with this run status.
    #[arg(long)]
    pub status: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Add each task's usage (TOKENS, COST: all its runs, child runs included) to the task
    /// table; reads every run's record, so it is slower on long histories. JSON always has it.
    #[arg(long)]
    pub usage: bool,
    /// Runs root and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// One run as JSON.
pub(crate) fn run_json(run: &RunEntry) -> Value {
    let mut v = json!({ "run_id": run.run_id(), "status": run.status().as_str() });
    match &run.info {
        Ok(info) => {
            v["exit_code"] = json!(info.exit_code);
            v["agent"] = json!(info.agent);
            v["start_time"] = json!(info.start_time_opt().map(|t| format_rfc3339_nano(&t)));
            v["end_time"] = json!(info.end_time_opt().map(|t| format_rfc3339_nano(&t)));
            if let Some(summary) = &info.error_summary {
                v["error_summary"] = json!(summary);
            }
            if let Some(usage) = &info.usage {
                v["usage"] = json!(usage);
            }
        }
        Err(err) => v["error"] = json!(err),
    }
    v
}

/// The sum of the usage of `runs` (a task's runs, its child runs among them).
pub(crate) fn usage_of(runs: &[RunEntry]) -> UsageTotals {
    UsageTotals::of(
        runs.iter()
            .filter_map(|r| r.info.as_ref().ok())
            .filter_map(|i| i.usage.as_ref()),
    )
}

/// Usage totals in words: `2008 tokens (input 1958, cached 1000, output 50), $0.0123`.
pub(crate) fn usage_text(totals: &UsageTotals) -> String {
    let mut text = format!(
        "{} tokens (input {}, cached {}, output {})",
        totals.total_tokens, totals.input_tokens, totals.cached_input_tokens, totals.output_tokens
    );
    if totals.runs_with_usage > totals.runs_without_cost {
        text.push_str(&format!(", ${}", cost_text(totals.cost_usd)));
    }
    if totals.runs_without_cost > 0 {
        text.push_str(&format!(
            " ({} of {} runs without a known cost)",
            totals.runs_without_cost, totals.runs_with_usage
        ));
    }
    text
}

/// One task (with its runs) as JSON.
pub(crate) fn task_json(view: &TaskView) -> Value {
    let mut v = json!({
        "project_id": view.task.project.as_str(),
        "task_id": view.task.id.as_str(),
        "status": view.status.as_str(),
        "done": view.task.done,
        "latest_run": view.latest().map(RunEntry::run_id),
        "depends_on": view.depends_on.iter().map(TaskId::as_str).collect::<Vec<_>>(),
        "blocked_by": view.blocked_by.iter().map(TaskId::as_str).collect::<Vec<_>>(),
        "runs": view.runs.iter().map(run_json).collect::<Vec<_>>(),
        "usage": usage_of(&view.runs),
    });
    if let Some(err) = &view.deps_error {
        v["deps_error"] = json!(err);
    }
    if let Some(excess) = crate::runner::budget::marked(&view.task.dir) {
        v["budget_exceeded"] = json!(excess);
    }
    v
}

/// A task's usage cells: total tokens and cost (`-` when no run reported any).
fn task_usage_cells(totals: &UsageTotals) -> [String; 2] {
    if totals.runs_with_usage == 0 {
        return ["-".into(), "-".into()];
    }
    let cost = if totals.runs_with_usage > totals.runs_without_cost {
        format!("${}", cost_text(totals.cost_usd))
    } else {
        "-".into()
    };
    [totals.total_tokens.to_string(), cost]
}

/// A run's row cells: id, status, exit code, start time, tokens (input/output), cost.
fn run_cells(run: &RunEntry) -> [String; 6] {
    let (exit, start) = match &run.info {
        Ok(info) => (
            info.exit_code.to_string(),
            info.start_time_opt()
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        Err(_) => ("-".into(), "-".into()),
    };
    let usage = run.info.as_ref().ok().and_then(|i| i.usage.as_ref());
    let tokens = usage.map_or_else(
        || "-".into(),
        |u| format!("{}/{}", u.input_tokens, u.output_tokens),
    );
    let cost = usage
        .and_then(|u| u.cost_usd)
        .map_or_else(|| "-".into(), cost_text);
    [
        run.run_id(),
        run.status().to_string(),
        exit,
        start,
        tokens,
        cost,
    ]
}

/// Prints rows as left-aligned columns.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Runs `list`.
pub fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    let (project, task) = super::scope::parse(args.project.as_deref(), args.task.as_deref())?;
    let setup = args.location.setup()?;
    let root = setup.root;
    if !root.is_dir() && setup.extra_roots.is_empty() {
        bail!("runs root {} does not exist", root.display());
    }
    let wanted = |p: &ProjectId, t: Option<&TaskId>| {
        project.as_ref().is_none_or(|want| p == want)
            && t.is_none_or(|t| task.as_ref().is_none_or(|want| t == want))
    };
    // Runs of the extra roots, by the project and task their records name.
    let mut extra: BTreeMap<(ProjectId, TaskId), Vec<RunEntry>> = BTreeMap::new();
    for run in extra_runs(&setup.extra_roots) {
        if wanted(&run.project, Some(&run.task)) {
            extra
                .entry((run.project, run.task))
                .or_default()
                .push(run.entry);
        }
    }
    let mut project_ids: Vec<ProjectId> = scan::list_projects(&root)
        .into_iter()
        .filter(|p| wanted(&p.id, None))
        .map(|p| p.id)
        .chain(extra.keys().map(|(p, _)| p.clone()))
        .collect();
    project_ids.sort();
    project_ids.dedup();
    if let Some(want) = &project {
        if project_ids.is_empty() {
            bail!(
                "project {want} not found under {}",
                roots_text(&root, &setup.extra_roots)
            );
        }
    }
    // A task table needs each task's newest run only; JSON and a task's run list show every
    // run, so they read them all.
    let read: fn(TaskEntry) -> TaskView = if args.json || args.usage || task.is_some() {
        TaskView::read
    } else {
        TaskView::read_newest
    };
    let mut jobs: Vec<(TaskEntry, Vec<RunEntry>)> = Vec::new();
    for p in scan::list_projects(&root) {
        if !wanted(&p.id, None) {
            continue;
        }
        for t in scan::list_tasks(&p) {
            if wanted(&p.id, Some(&t.id)) {
                let more = extra.remove(&(p.id.clone(), t.id.clone()));
                jobs.push((t, more.unwrap_or_default()));
            }
        }
    }
    let mut views = read_tasks(jobs, read);
    // Tasks that exist only in the extra roots.
    let task_root = crate::storage::Root::new(&root);
    for ((p, t), runs) in extra {
        let entry = TaskEntry {
            dir: task_root.task_dir(&p, &t),
            project: p,
            id: t,
            done: false,
        };
        views.push(read(entry).with_runs(runs));
    }
    views.sort_by(|a, b| (&a.task.project, &a.task.id).cmp(&(&b.task.project, &b.task.id)));
    if let (Some(p), Some(t)) = (&project, &task) {
        let view = views
            .pop()
            .ok_or_else(|| anyhow!("task {t} not found in project {p}"))?;
        return list_runs(&view, args.status.as_deref(), args.json);
    }
    if let Some(status) = &args.status {
        let want = TaskStatus::parse(status).ok_or_else(|| {
            anyhow!(
                "--status {status:?} is not a task status; allowed: {}",
                TaskStatus::ALL.map(TaskStatus::as_str).join(", ")
            )
        })?;
        views.retain(|v| v.status == want);
    }
    if args.json {
        let list: Vec<Value> = project_ids
            .iter()
            .map(|p| {
                let mut usage = UsageTotals::default();
                let tasks: Vec<Value> = views
                    .iter()
                    .filter(|v| &v.task.project == p)
                    .inspect(|v| usage.merge(&usage_of(&v.runs)))
                    .map(task_json)
                    .collect();
                json!({ "project_id": p.as_str(), "tasks": tasks, "usage": usage })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "projects": list }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!("No tasks found.");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let latest = v.latest();
            let mut row = vec![
                v.task.project.to_string(),
                v.task.id.to_string(),
                v.status.to_string(),
                v.run_count.to_string(),
                latest.map(RunEntry::run_id).unwrap_or_else(|| "-".into()),
                if v.blocked_by.is_empty() {
                    "-".into()
                } else {
                    v.blocked_by
                        .iter()
                        .map(TaskId::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                },
            ];
            if args.usage {
                row.extend(task_usage_cells(&usage_of(&v.runs)));
            }
            row
        })
        .collect();
    let mut header = vec![
        "PROJECT",
        "TASK",
        "STATUS",
        "RUNS",
        "LATEST_RUN",
        "BLOCKED_BY",
    ];
    if args.usage {
        header.extend(["TOKENS", "COST"]);
    }
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

/// Reads the tasks with `read` on a few threads (each task is a handful of small reads; at
/// a thousand tasks the file system's latency, not the CPU, is what they wait on), in order.
fn read_tasks(
    jobs: Vec<(TaskEntry, Vec<RunEntry>)>,
    read: fn(TaskEntry) -> TaskView,
) -> Vec<TaskView> {
    const PER_THREAD: usize = 64;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(jobs.len().div_ceil(PER_THREAD).max(1));
    if threads == 1 {
        return jobs
            .into_iter()
            .map(|(t, more)| read(t).with_runs(more))
            .collect();
    }
    let chunk = jobs.len().div_ceil(threads);
    let mut jobs = jobs.into_iter();
    let chunks: Vec<Vec<(TaskEntry, Vec<RunEntry>)>> = (0..threads)
        .map(|_| jobs.by_ref().take(chunk).collect())
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    part.into_iter()
                        .map(|(t, more)| read(t).with_runs(more))
                        .collect::<Vec<TaskView>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// The runs root and the extra roots, for messages.
pub(crate) fn roots_text(root: &std::path::Path, extra: &[std::path::PathBuf]) -> String {
    let mut text = root.display().to_string();
    for e in extra {
        text.push_str(&format!(" or extra root {}", e.display()));
    }
    text
}

fn list_runs(view: &TaskView, status: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let want = status
        .map(|s| {
            let parsed = RunStatus::from_text(&s.to_ascii_lowercase());
            if parsed == RunStatus::Unknown && !s.eq_ignore_ascii_case("unknown") {
                bail!("--status {s:?} is not a run status; allowed: running, completed, failed, stopped, unknown");
            }
            Ok(parsed)
        })
        .transpose()?;
    let runs: Vec<&RunEntry> = view
        .runs
        .iter()
        .filter(|r| want.is_none_or(|w| r.status() == w))
        .collect();
    if json {
        let mut v = task_json(view);
        v["runs"] = json!(runs.iter().map(|r| run_json(r)).collect::<Vec<_>>());
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "task {}/{}: {}",
        view.task.project, view.task.id, view.status
    );
    if runs.is_empty() {
        println!("No runs found.");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = runs.iter().map(|r| run_cells(r).to_vec()).collect();
    print_table(
        &[
            "RUN_ID",
            "STATUS",
            "EXIT_CODE",
            "STARTED",
            "TOKENS_IN/OUT",
            "COST_USD",
        ],
        &rows,
    );
    let totals = usage_of(&view.runs);
    if totals.runs_with_usage > 0 {
        println!("usage: {}", usage_text(&totals));
    }
    Ok(ExitCode::SUCCESS)
}
