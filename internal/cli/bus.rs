//! `run-agent bus post|read|discover`: local commands on the message buses (no server).
//!
//! Which bus: `--project` (+ `--task`) under the runs root (`--root` > `CONDUCTOR_ROOT` >
//! config `storage.runs_dir` > `$HOME/run-agent`); without those flags, the explicit file
//! `$JRUN_MESSAGE_BUS`, then `$JRUN_PROJECT_ID` (+ `$JRUN_TASK_ID`) — the env a run's agent gets.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use super::job::Setup;
use super::terminal_text::{for_terminal, for_terminal_json};
use crate::bus::{self, AppendOptions, FollowFrom, Follower, Message, NewMessage, ReadQuery};
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::paths::{Root, PROJECT_BUS_FILE, TASK_BUS_FILE};

/// Env var with an explicit bus file path (set for agents by the runner).
pub const ENV_MESSAGE_BUS: &str = "JRUN_MESSAGE_BUS";
/// Env var with the caller's project id.
pub const ENV_PROJECT_ID: &str = "JRUN_PROJECT_ID";
/// Env var with the caller's task id.
pub const ENV_TASK_ID: &str = "JRUN_TASK_ID";
/// Env var with the caller's run id.
pub const ENV_RUN_ID: &str = "JRUN_ID";
/// Env var overriding the bus lock wait of `bus post`, in milliseconds.
pub const ENV_LOCK_TIMEOUT_MS: &str = "CONDUCTOR_BUS_LOCK_TIMEOUT_MS";

/// Default number of messages `bus read` prints (as the reference; `--tail 0` prints all).
const DEFAULT_TAIL: usize = 20;

/// Bus subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BusCommand {
    /// Append a message to a project or task bus and print its msg_id.
    Post(PostArgs),
    /// Print a bus's messages (text or JSON lines), optionally following new ones.
    Read(ReadArgs),
    /// List the bus files under the runs root with sizes and message counts.
    Discover(DiscoverArgs),
}

/// `bus post` options.
#[derive(Debug, clap::Args)]
pub struct PostArgs {
    /// Project id (default: $JRUN_PROJECT_ID).
    #[arg(long)]
    pub project: Option<String>,
    /// Task id: post to the task bus (default with no --project: $JRUN_TASK_ID).
    #[arg(long)]
    pub task: Option<String>,
    /// Run id recorded in the header (default: $JRUN_ID).
    #[arg(long)]
    pub run: Option<String>,
    /// Message type, e.g. FACT, PROGRESS, DECISION, ERROR, QUESTION, INFO, ISSUE.
    #[arg(long = "type", value_name = "TYPE", default_value = "INFO")]
    pub msg_type: String,
    /// Message body (default: stdin when it is not a terminal).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the body from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// A parent message id (repeatable).
    #[arg(long = "parent", value_name = "MSG_ID")]
    pub parents: Vec<String>,
    /// Runs root and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// `bus read` options.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Project id: its project bus, or with --task that task's bus.
    #[arg(long)]
    pub project: Option<String>,
    /// Task id (project from --project or $JRUN_PROJECT_ID).
    #[arg(long)]
    pub task: Option<String>,
    /// Only messages after this msg_id.
    #[arg(long, value_name = "MSG_ID")]
    pub since: Option<String>,
    /// Only the last N messages (default 20 without --since; 0 = all).
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only messages of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub msg_type: Option<String>,
    /// Keep printing new messages as they are appended (until interrupted).
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Runs root and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// `bus discover` options.
#[derive(Debug, clap::Args)]
pub struct DiscoverArgs {
    /// Runs root and config.
    #[command(flatten)]
    pub location: super::scope::RootArgs,
}

/// Runs a bus subcommand.
pub fn run(cmd: BusCommand) -> anyhow::Result<ExitCode> {
    let env = |key: &str| {
        std::env::var(key)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    match cmd {
        BusCommand::Post(args) => post(args, &env),
        BusCommand::Read(args) => read(args, &env),
        BusCommand::Discover(args) => discover(args),
    }
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn post(args: PostArgs, env: Env) -> anyhow::Result<ExitCode> {
    // The config and root are loaded once, for the bus path and for `bus.fsync`.
    let setup = args.location.setup();
    let target = post_target(&args, env, &setup)?;
    let run = match args.run.clone().or_else(|| env(ENV_RUN_ID)) {
        Some(text) => Some(RunId::parse(&text).context("--run / JRUN_ID")?),
        None => None,
    };
    let body = read_body(&args)?;
    let mut msg = NewMessage::new(args.msg_type.clone(), target.project).body(body);
    msg.task_id = target.task;
    msg.run_id = run;
    for parent in &args.parents {
        msg = msg.parent(parent.trim());
    }
    if target.create_dir {
        if let Some(dir) = target.bus.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
    }
    let opts = AppendOptions {
        fsync: fsync_configured(&args.location, setup)?,
        lock_timeout: lock_timeout(env)?,
        ..AppendOptions::default()
    };
    let msg_id = bus::append(&target.bus, &msg, &opts)?;
    println!("{msg_id}");
    Ok(ExitCode::SUCCESS)
}

/// Where a post goes and the ids recorded in its header.
#[derive(Debug)]
struct PostTarget {
    bus: PathBuf,
    project: ProjectId,
    task: Option<TaskId>,
    /// The bus is inside the runs tree: create its project/task directory if missing.
    create_dir: bool,
}

fn post_target(
    args: &PostArgs,
    env: Env,
    setup: &anyhow::Result<Setup>,
) -> anyhow::Result<PostTarget> {
    let flags = args.project.is_some() || args.task.is_some();
    if !flags {
        if let Some(bus) = env(ENV_MESSAGE_BUS) {
            let bus = PathBuf::from(bus);
            // Ids implied by the file's place are a fallback, used only when they are valid.
            let (inferred_project, inferred_task) = ids_from_bus_path(&bus);
            let project = match env(ENV_PROJECT_ID) {
                Some(p) => ProjectId::parse(&p).context(ENV_PROJECT_ID)?,
                None => inferred_project
                    .and_then(|p| ProjectId::parse(&p).ok())
                    .ok_or_else(|| {
                        anyhow!(
                            "no project id for {ENV_MESSAGE_BUS}={}: set {ENV_PROJECT_ID} or pass --project",
                            bus.display()
                        )
                    })?,
            };
            let task = match env(ENV_TASK_ID) {
                Some(t) => Some(TaskId::parse(&t).context(ENV_TASK_ID)?),
                None => inferred_task.and_then(|t| TaskId::parse(&t).ok()),
            };
            return Ok(PostTarget {
                bus,
                project,
                task,
                create_dir: false,
            });
        }
    }
    let (project, task) = project_and_task(args.project.as_deref(), args.task.as_deref(), env)?
        .ok_or_else(|| {
            anyhow!("no bus selected: pass --project (and --task), or set {ENV_PROJECT_ID} or {ENV_MESSAGE_BUS}")
        })?;
    let root = match setup {
        Ok(setup) => Root::new(setup.root.clone()),
        // The same message as the error itself (`{:#}` prints the whole chain).
        Err(err) => bail!("{err:#}"),
    };
    let bus = root.confined_bus(&project, task.as_ref())?;
    Ok(PostTarget {
        bus,
        project,
        task,
        create_dir: true,
    })
}

/// Project and task from flags, falling back to `JRUN_PROJECT_ID` (and `JRUN_TASK_ID` when no
/// `--project` was given). `None` when no project is known.
fn project_and_task(
    project: Option<&str>,
    task: Option<&str>,
    env: Env,
) -> anyhow::Result<Option<(ProjectId, Option<TaskId>)>> {
    let project_flag = project;
    let (project_text, project_src) = match project_flag {
        Some(p) => (p.to_string(), "--project"),
        None => match env(ENV_PROJECT_ID) {
            Some(p) => (p, ENV_PROJECT_ID),
            None if task.is_some() => {
                bail!("--task needs a project: pass --project or set {ENV_PROJECT_ID}")
            }
            None => return Ok(None),
        },
    };
    let project = ProjectId::parse(project_text.trim()).context(project_src)?;
    let (task_text, task_src) = match (task, project_flag) {
        (Some(t), _) => (Some(t.to_string()), "--task"),
        (None, None) => (env(ENV_TASK_ID), ENV_TASK_ID),
        (None, Some(_)) => (None, "--task"),
    };
    let task = match task_text {
        Some(t) => Some(TaskId::parse(t.trim()).context(task_src)?),
        None => None,
    };
    Ok(Some((project, task)))
}

/// Project (and task) names implied by a bus file's place: `<p>/PROJECT-MESSAGE-BUS.md` or
/// `<p>/<t>/TASK-MESSAGE-BUS.md`.
fn ids_from_bus_path(bus: &Path) -> (Option<String>, Option<String>) {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
    };
    let parent = bus.parent();
    match bus.file_name().and_then(|n| n.to_str()) {
        Some(TASK_BUS_FILE) => (name(parent.and_then(Path::parent)), name(parent)),
        Some(PROJECT_BUS_FILE) => (name(parent), None),
        _ => (None, None),
    }
}

fn read_body(args: &PostArgs) -> anyhow::Result<String> {
    if let Some(body) = &args.body {
        return Ok(body.clone());
    }
    match &args.body_file {
        Some(path) if path.as_os_str() == "-" => read_stdin(),
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --body-file {}", path.display())),
        None if !std::io::stdin().is_terminal() => read_stdin(),
        None => Ok(String::new()),
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut body = String::new();
    std::io::stdin()
        .read_to_string(&mut body)
        .context("cannot read the body from stdin (it must be UTF-8 text)")?;
    Ok(body)
}

fn lock_timeout(env: Env) -> anyhow::Result<Duration> {
    match env(ENV_LOCK_TIMEOUT_MS) {
        Some(text) => {
            let ms: u64 = text.parse().map_err(|_| {
                anyhow!("{ENV_LOCK_TIMEOUT_MS}={text:?} is not a number of milliseconds")
            })?;
            Ok(Duration::from_millis(ms.max(1)))
        }
        None => Ok(bus::append::DEFAULT_LOCK_TIMEOUT),
    }
}

/// `bus.fsync` of the config (`--config` > CONDUCTOR_CONFIG > search). A config named by
/// `--config` must load; a found one that does not load only costs the fsync (root resolution
/// reports it when the root is needed).
fn fsync_configured(
    location: &super::scope::RootArgs,
    setup: anyhow::Result<Setup>,
) -> anyhow::Result<bool> {
    match setup {
        Ok(setup) => Ok(setup.config.is_some_and(|c| c.bus.fsync)),
        Err(err) if location.config.is_none() => {
            tracing::warn!(error = %format!("{err:#}"), "config not loaded; bus appends without fsync");
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

fn resolve_root(location: &super::scope::RootArgs) -> anyhow::Result<Root> {
    Ok(Root::new(location.setup()?.root))
}

fn read(args: ReadArgs, env: Env) -> anyhow::Result<ExitCode> {
    let bus_path = read_target(&args, env)?;
    let tail = match (args.tail, &args.since) {
        (Some(n), _) => n,
        (None, Some(_)) => 0,
        (None, None) => DEFAULT_TAIL,
    };
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    if args.follow {
        let from = match (&args.since, tail) {
            (Some(id), _) => FollowFrom::Since(id.clone()),
            (None, 0) => FollowFrom::Start,
            (None, n) => FollowFrom::Tail(n),
        };
        let mut follower = Follower::open(&bus_path, from, args.msg_type.clone())?;
        loop {
            let batch = follower.next_batch(Duration::from_secs(1))?;
            if !print_all(&mut out, &batch, args.json, tty)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    let query = ReadQuery {
        since: args.since.clone(),
        tail: Some(tail),
        msg_type: args.msg_type.clone(),
    };
    let msgs = bus::read(&bus_path, &query)?;
    print_all(&mut out, &msgs, args.json, tty)?;
    Ok(ExitCode::SUCCESS)
}

fn read_target(args: &ReadArgs, env: Env) -> anyhow::Result<PathBuf> {
    let flags = args.project.is_some() || args.task.is_some();
    if !flags {
        if let Some(bus) = env(ENV_MESSAGE_BUS) {
            return Ok(PathBuf::from(bus));
        }
    }
    let (project, task) = project_and_task(args.project.as_deref(), args.task.as_deref(), env)?
        .ok_or_else(|| {
            anyhow!("no bus selected: pass --project (and --task), or set {ENV_MESSAGE_BUS} or {ENV_PROJECT_ID}")
        })?;
    let root = resolve_root(&args.location)?;
    Ok(root.confined_bus(&project, task.as_ref())?)
}

/// Prints messages; `Ok(false)` when stdout was closed (e.g. piped into `head`). On a
/// terminal (`tty`) control characters in the messages are shown escaped.
fn print_all(
    out: &mut impl Write,
    msgs: &[Message],
    json: bool,
    tty: bool,
) -> anyhow::Result<bool> {
    let result = (|| -> std::io::Result<()> {
        for msg in msgs {
            if json {
                let text = serde_json::to_string(msg)?;
                writeln!(out, "{}", for_terminal_json(&text, tty))?;
            } else {
                let text = format!(
                    "[{}] ({}) {}",
                    msg.ts.format("%Y-%m-%d %H:%M:%S"),
                    msg.msg_type,
                    msg.body
                );
                writeln!(out, "{}", for_terminal(&text, tty))?;
            }
        }
        out.flush()
    })();
    match result {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err).context("cannot write to stdout"),
    }
}

fn discover(args: DiscoverArgs) -> anyhow::Result<ExitCode> {
    let root = resolve_root(&args.location)?;
    let files = bus::discover(root.path())?;
    if files.is_empty() {
        eprintln!("no message bus files under {}", root.path().display());
        return Ok(ExitCode::SUCCESS);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = (|| -> std::io::Result<()> {
        writeln!(out, "{:>9}  {:>12}  PATH", "MESSAGES", "BYTES")?;
        for f in &files {
            writeln!(
                out,
                "{:>9}  {:>12}  {}",
                f.messages,
                f.size,
                f.path.display()
            )?;
        }
        out.flush()
    })();
    match result {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to stdout")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    #[test]
    fn project_and_task_precedence() {
        let env = env_of(&[(ENV_PROJECT_ID, "envp"), (ENV_TASK_ID, "envt")]);
        let pt = |p, t| {
            project_and_task(p, t, &env)
                .unwrap()
                .map(|(p, t)| (p.to_string(), t.map(|t| t.to_string())))
        };
        assert_eq!(pt(None, None), Some(("envp".into(), Some("envt".into()))));
        assert_eq!(pt(Some("p"), None), Some(("p".into(), None)));
        assert_eq!(pt(None, Some("t")), Some(("envp".into(), Some("t".into()))));
        let none = env_of(&[]);
        assert!(project_and_task(None, None, &none).unwrap().is_none());
        let err = project_and_task(Some("../x"), None, &none).unwrap_err();
        assert!(format!("{err:#}").contains("--project"), "{err:#}");
    }

    #[test]
    fn ids_from_bus_paths() {
        assert_eq!(
            ids_from_bus_path(Path::new("/r/p/t/TASK-MESSAGE-BUS.md")),
            (Some("p".into()), Some("t".into()))
        );
        assert_eq!(
            ids_from_bus_path(Path::new("/r/p/PROJECT-MESSAGE-BUS.md")),
            (Some("p".into()), None)
        );
        assert_eq!(ids_from_bus_path(Path::new("/r/x.md")), (None, None));
    }
}
