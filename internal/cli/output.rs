//! `run-agent output`: print a run's output.md (falling back to agent-stdout.txt), or its
//! stdout, stderr or prompt file; `--follow` tails a running run's file until the run ends.
//! The run is `--run R` (searched under the root when no task is given) or the latest run of
//! `--project P --task T`; runs of the config's `storage.extra_roots` are found too (and only
//! read: their records are never rewritten).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::runner::inspect::{extra_runs, find_run, read_run, read_run_read_only};
use crate::storage::confined::open_nofollow;
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::paths::{OUTPUT_FILE, PROMPT_FILE, RUNS_DIR, STDERR_FILE, STDOUT_FILE};
use crate::storage::scan::RunEntry;
use crate::storage::watch::{Scope, Subscription};
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
    /// Runs root and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// A selected run directory and whether it lies in an extra root (read-only).
struct Selected {
    dir: PathBuf,
    extra: bool,
}

impl Selected {
    /// Reads the run's record (reconciling a dead `running` one only under the main root).
    fn read(&self) -> RunEntry {
        if self.extra {
            read_run_read_only(self.dir.clone())
        } else {
            read_run(self.dir.clone())
        }
    }
}

/// Runs `output`.
pub fn run(args: OutputArgs) -> anyhow::Result<ExitCode> {
    let setup = args.location.setup()?;
    let selected = select_run(&args, &Root::new(&setup.root), &setup.extra_roots)?;
    let run_dir = selected.dir.clone();
    let running = selected.read().status() == RunStatus::Running;
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
        follow(&selected, &path)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut f = open_nofollow(&path)?;
    copy_new(&mut f, &path)?;
    Ok(ExitCode::SUCCESS)
}

fn select_run(args: &OutputArgs, root: &Root, extra_roots: &[PathBuf]) -> anyhow::Result<Selected> {
    let run = args
        .run
        .as_deref()
        .map(RunId::parse)
        .transpose()
        .context("--run")?;
    let main = |dir: PathBuf| Selected { dir, extra: false };
    let extra = |dir: PathBuf| Selected { dir, extra: true };
    let selected = match (&args.project, &args.task, run) {
        (Some(p), Some(t), run) => {
            let project = ProjectId::parse(p).context("--project")?;
            let task = TaskId::parse(t).context("--task")?;
            // The task's runs in the extra roots, by the project and task their records name.
            let mut others: Vec<RunEntry> = extra_runs(extra_roots)
                .into_iter()
                .filter(|r| r.project == project && r.task == task)
                .map(|r| r.entry)
                .collect();
            match run {
                Some(run) => {
                    let dir = root.run_dir(&project, &task, &run);
                    match others.into_iter().find(|r| r.run_id() == run.as_str()) {
                        Some(other) if !dir.is_dir() => extra(other.dir),
                        _ => main(dir),
                    }
                }
                None => {
                    others.sort_by_key(RunEntry::run_id);
                    let local = latest_run(&root.confined_runs_dir(&project, &task)?);
                    let local_id = local
                        .as_ref()
                        .and_then(|d| d.file_name())
                        .map(|n| n.to_string_lossy().into_owned());
                    match (local, others.pop()) {
                        (Some(dir), Some(other))
                            if local_id.is_some_and(|id| id >= other.run_id()) =>
                        {
                            main(dir)
                        }
                        (_, Some(other)) => extra(other.dir),
                        (Some(dir), None) => main(dir),
                        (None, None) => {
                            bail!("task {task} of project {project} has no runs")
                        }
                    }
                }
            }
        }
        (_, _, Some(run)) => {
            let mut found: Vec<Selected> = find_run(root.path(), run.as_str())
                .into_iter()
                .map(main)
                .collect();
            found.extend(
                extra_roots
                    .iter()
                    .map(|e| e.join(RUNS_DIR).join(run.as_str()))
                    .filter(|d| std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()))
                    .map(extra),
            );
            match found.len() {
                1 => found.remove(0),
                0 => bail!(
                    "run {run} not found under {}",
                    super::list::roots_text(root.path(), extra_roots)
                ),
                n => bail!(
                    "run id {run} exists in {n} places ({}); pass --project and --task",
                    found
                        .iter()
                        .map(|s| s.dir.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        _ => bail!("pass --run RUN, or --project P --task T (optionally with --run)"),
    };
    if !selected.extra {
        root.confine(selected.dir.clone())?;
    }
    if !selected.dir.is_dir() {
        bail!("run directory {} does not exist", selected.dir.display());
    }
    Ok(selected)
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
fn follow(run: &Selected, path: &Path) -> anyhow::Result<()> {
    let run_dir = run.dir.as_path();
    let changes = Subscription::on(run_dir, Scope::Dir);
    let mut file: Option<File> = None;
    let mut pos: u64 = 0;
    loop {
        let running = run.read().status() == RunStatus::Running;
        if file.is_none() {
            file = match open_nofollow(path) {
                Ok(f) => Some(f),
                Err(err) if err.is_refusal() => return Err(err.into()),
                Err(_) => None,
            };
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
        // Wait for a change (or the re-check interval); a burst of changes is one wakeup.
        changes.wait(RECHECK);
    }
}
