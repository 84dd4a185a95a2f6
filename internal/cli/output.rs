//! `run-agent output`: print a run's output.md (falling back to agent-stdout.txt), or its
//! stdout, stderr or prompt file; `--follow` tails a running run's file until the run ends.
//! The run is `--run R` (searched under the root when no task is given) or the latest run of
//! `--project P --task T`.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use notify::{RecursiveMode, Watcher};

use crate::runner::inspect::{find_run, read_run};
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::paths::{OUTPUT_FILE, PROMPT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::storage::{Root, RunStatus};

/// How often a followed run is re-checked without a file event (its process may just die).
const RECHECK: Duration = Duration::from_millis(500);

/// `output` flags.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("file").args(["stdout", "stderr", "prompt"])))]
pub struct OutputArgs {
    /// The run (alone: searched in every task under the root).
    #[arg(long)]
    pub run: Option<String>,
    /// Project id (with --task: the task's latest run unless --run is given).
    #[arg(long, requires = "task")]
    pub project: Option<String>,
    /// Task id.
    #[arg(long, requires = "project")]
    pub task: Option<String>,
    /// Keep printing what a running run writes until it ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print agent-stdout.txt.
    #[arg(long)]
    pub stdout: bool,
    /// Print agent-stderr.txt.
    #[arg(long)]
    pub stderr: bool,
    /// Print prompt.md.
    #[arg(long)]
    pub prompt: bool,
    /// Runs root.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Runs `output`.
pub fn run(args: OutputArgs) -> anyhow::Result<ExitCode> {
    let setup = super::job::setup(args.root.as_deref(), None)?;
    let run_dir = select_run(&args, &Root::new(&setup.root))?;
    let running = read_run(run_dir.clone()).status() == RunStatus::Running;
    let file = match (args.stdout, args.stderr, args.prompt) {
        (true, _, _) => STDOUT_FILE,
        (_, true, _) => STDERR_FILE,
        (_, _, true) => PROMPT_FILE,
        // A running run has no output.md yet: follow what the agent prints.
        _ if args.follow && running => STDOUT_FILE,
        _ if run_dir.join(OUTPUT_FILE).is_file() => OUTPUT_FILE,
        _ => STDOUT_FILE,
    };
    let path = run_dir.join(file);
    if args.follow && running {
        follow(&run_dir, &path)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut f = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    copy_new(&mut f, &path)?;
    Ok(ExitCode::SUCCESS)
}

fn select_run(args: &OutputArgs, root: &Root) -> anyhow::Result<PathBuf> {
    let run = args
        .run
        .as_deref()
        .map(RunId::parse)
        .transpose()
        .context("--run")?;
    let dir = match (&args.project, &args.task, run) {
        (Some(p), Some(t), run) => {
            let project = ProjectId::parse(p).context("--project")?;
            let task = TaskId::parse(t).context("--task")?;
            match run {
                Some(run) => root.run_dir(&project, &task, &run),
                None => latest_run(&root.runs_dir(&project, &task))
                    .ok_or_else(|| anyhow!("task {task} of project {project} has no runs"))?,
            }
        }
        (_, _, Some(run)) => {
            let found = find_run(root.path(), run.as_str());
            match found.as_slice() {
                [one] => one.clone(),
                [] => bail!("run {run} not found under {}", root.path().display()),
                many => bail!(
                    "run id {run} exists in {} tasks ({}); pass --project and --task",
                    many.len(),
                    many.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        _ => bail!("pass --run RUN, or --project P --task T (optionally with --run)"),
    };
    if !dir.is_dir() {
        bail!("run directory {} does not exist", dir.display());
    }
    Ok(dir)
}

/// The run dir with the greatest name in `runs_dir` (run ids sort by start time).
fn latest_run(runs_dir: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs_dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| RunId::parse(&e.file_name().to_string_lossy()).is_ok())
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Copies everything from `f`'s position to stdout; returns the number of bytes copied.
fn copy_new(f: &mut File, path: &Path) -> anyhow::Result<u64> {
    let mut out = std::io::stdout().lock();
    let n =
        std::io::copy(f, &mut out).with_context(|| format!("cannot read {}", path.display()))?;
    out.flush()?;
    Ok(n)
}

/// Prints `path` and what is appended to it until the run in `run_dir` is no longer running
/// (woken by file events, re-checked every [`RECHECK`]); then prints the rest.
fn follow(run_dir: &Path, path: &Path) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = crate::storage::watch::watcher(tx, notify::Config::default()).ok();
    if let Some(w) = watcher.as_mut() {
        if let Err(err) = w.watch(run_dir, RecursiveMode::NonRecursive) {
            tracing::debug!("cannot watch {}: {err}; polling", run_dir.display());
        }
    }
    let mut file: Option<File> = None;
    let mut pos: u64 = 0;
    loop {
        let running = read_run(run_dir.to_path_buf()).status() == RunStatus::Running;
        if file.is_none() {
            file = File::open(path).ok();
        }
        if let Some(f) = file.as_mut() {
            // A file truncated in place is read again from its start.
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < pos {
                pos = 0;
            }
            f.seek(SeekFrom::Start(pos))
                .with_context(|| format!("cannot read {}", path.display()))?;
            pos += copy_new(f, path)?;
        }
        if !running {
            if file.is_none() {
                bail!("{} does not exist", path.display());
            }
            return Ok(());
        }
        // Wait for a change (or the re-check interval), then drain queued events.
        let _ = rx.recv_timeout(RECHECK);
        while rx.try_recv().is_ok() {}
    }
}
