//! Shell completions and man pages for both binaries: `completions <shell> [--dynamic]`,
//! `man [--out-dir DIR]`, and the dynamic completer that answers `<TAB>` with project, task
//! and run ids read from the runs root.
//!
//! Nothing here runs on an ordinary start: the dynamic completer is entered only when
//! [`COMPLETE_VAR`] is set (one environment lookup, see [`complete_if_asked`]), and the
//! generators only for their own subcommands.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::EnvCompleter;
use clap_complete::Shell;

use crate::storage::scan::{self as storage, Reconcile};

/// The environment variable that turns a binary into its own dynamic completer
/// (`CONDUCTOR_COMPLETE=bash run-agent -- <words>`). Not clap's default `COMPLETE`, so a
/// stray `COMPLETE` in a user's environment cannot change what the binaries do.
pub const COMPLETE_VAR: &str = "CONDUCTOR_COMPLETE";

/// Which binary's command tree to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `run-agent`.
    RunAgent,
    /// `conductor`.
    Conductor,
}

impl Binary {
    /// The full clap command of this binary, with the id completers attached.
    pub fn command(self) -> clap::Command {
        let cmd = match self {
            Binary::RunAgent => super::RunAgentCli::command(),
            Binary::Conductor => super::ConductorCli::command(),
        };
        with_id_completers(cmd)
    }

    fn name(self) -> &'static str {
        match self {
            Binary::RunAgent => "run-agent",
            Binary::Conductor => "conductor",
        }
    }
}

/// `completions` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
    /// Print a small script that asks this binary at each <TAB> instead of a static one: it
    /// also completes project, task and run ids from the runs root (re-create it after an
    /// upgrade).
    #[arg(long)]
    pub dynamic: bool,
}

/// `man` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write one page per command (`run-agent.1`, `run-agent-task.1`, …) into DIR (created if
    /// missing) and print their paths, instead of printing the top page to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Answers a completion request and exits when [`COMPLETE_VAR`] is set; returns at once
/// otherwise (the only cost on an ordinary start is one environment lookup).
pub fn complete_if_asked(binary: Binary) {
    if std::env::var_os(COMPLETE_VAR).is_none() {
        return;
    }
    clap_complete::CompleteEnv::with_factory(move || binary.command())
        .var(COMPLETE_VAR)
        .complete();
}

/// Runs `completions`.
pub fn run_completions(args: CompletionsArgs, binary: Binary) -> anyhow::Result<ExitCode> {
    // Generated into memory first: clap_complete panics on a failed write (e.g. `| head`).
    let mut out = Vec::new();
    if args.dynamic {
        // The script calls this very executable, so it keeps working wherever PATH points.
        let exe = std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| binary.name().to_string());
        let cmd = binary.command();
        env_completer(args.shell)
            .write_registration(COMPLETE_VAR, cmd.get_name(), binary.name(), &exe, &mut out)
            .context("cannot write the completion script")?;
    } else {
        let mut cmd = binary.command();
        clap_complete::generate(args.shell, &mut cmd, binary.name(), &mut out);
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .context("cannot write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `man`.
pub fn run_man(args: ManArgs, binary: Binary) -> anyhow::Result<ExitCode> {
    let cmd = binary.command();
    match args.out_dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("cannot write the man page")?;
            out.flush().context("cannot write the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("--out-dir: cannot create {}", dir.display()))?;
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            for path in write_pages(cmd, &dir)? {
                println!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of `cmd` and of each visible subcommand into `dir`; returns their paths.
fn write_pages(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        written.extend(write_pages(sub, dir)?);
    }
    let page = clap_mangen::Man::new(cmd);
    let path = page
        .generate_to(dir)
        .with_context(|| format!("cannot write a man page into {}", dir.display()))?;
    written.push(path);
    Ok(written)
}

fn env_completer(shell: Shell) -> &'static dyn EnvCompleter {
    use clap_complete::env::{Bash, Elvish, Fish, Powershell, Zsh};
    match shell {
        Shell::Bash => &Bash,
        Shell::Elvish => &Elvish,
        Shell::Fish => &Fish,
        Shell::PowerShell => &Powershell,
        Shell::Zsh => &Zsh,
        // `Shell` is non-exhaustive; a future shell gets bash's script until mapped here.
        _ => &Bash,
    }
}

/// Attaches the project / task / run id completers to every argument with those ids.
fn with_id_completers(cmd: clap::Command) -> clap::Command {
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let mut cmd = cmd;
    for id in ids {
        let completer: fn(&std::ffi::OsStr) -> Vec<CompletionCandidate> = match id.as_str() {
            "project" => complete_project,
            "task" => complete_task,
            "run" => complete_run,
            _ => continue,
        };
        cmd = cmd.mut_arg(id, |arg| arg.add(ArgValueCompleter::new(completer)));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for sub in subs {
        cmd = cmd.mut_subcommand(sub, with_id_completers);
    }
    cmd
}

/// The words being completed (after the `--` the shell script passes).
fn completion_words() -> Vec<OsString> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.iter().position(|a| a == "--") {
        Some(i) => args[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// The value of `--flag V` or `--flag=V` among `words` (the last one wins).
fn flag_value(words: &[OsString], flag: &str) -> Option<String> {
    let with_eq = format!("{flag}=");
    let mut found = None;
    let mut iter = words.iter().map(|w| w.to_string_lossy());
    while let Some(word) = iter.next() {
        if word == flag {
            found = iter.next().map(|v| v.into_owned());
        } else if let Some(value) = word.strip_prefix(&with_eq) {
            found = Some(value.to_string());
        }
    }
    found
}

/// The runs root the command being completed would use (its `--root` / `--config`, else the
/// usual discovery); `None` when it cannot be resolved.
fn completion_root(words: &[OsString]) -> Option<PathBuf> {
    let root = flag_value(words, "--root").map(PathBuf::from);
    let config = flag_value(words, "--config").map(PathBuf::from);
    super::job::setup(root.as_deref(), config.as_deref())
        .ok()
        .map(|s| s.root)
}

fn matching(
    names: impl IntoIterator<Item = String>,
    current: &std::ffi::OsStr,
) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(prefix.as_ref()))
        .collect();
    names.sort();
    names.dedup();
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// The projects to look into: the one named by `--project`, else all.
fn scoped_projects(root: &Path, words: &[OsString]) -> Vec<storage::ProjectEntry> {
    let wanted = flag_value(words, "--project");
    storage::list_projects(root)
        .into_iter()
        .filter(|p| wanted.as_deref().is_none_or(|w| p.id.as_str() == w))
        .collect()
}

fn complete_project(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    let Some(root) = completion_root(&completion_words()) else {
        return Vec::new();
    };
    let ids = storage::list_projects(&root)
        .into_iter()
        .map(|p| p.id.as_str().to_string());
    matching(ids, current)
}

fn complete_task(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    let words = completion_words();
    let Some(root) = completion_root(&words) else {
        return Vec::new();
    };
    let ids: Vec<String> = scoped_projects(&root, &words)
        .iter()
        .flat_map(storage::list_tasks)
        .map(|t| t.id.as_str().to_string())
        .collect();
    matching(ids, current)
}

fn complete_run(current: &std::ffi::OsStr) -> Vec<CompletionCandidate> {
    let words = completion_words();
    let Some(root) = completion_root(&words) else {
        return Vec::new();
    };
    let wanted_task = flag_value(&words, "--task");
    let ids = scoped_projects(&root, &words)
        .iter()
        .flat_map(storage::list_tasks)
        .filter(|t| wanted_task.as_deref().is_none_or(|w| t.id.as_str() == w))
        .flat_map(|t| storage::list_runs(&t.dir, Reconcile::No))
        .map(|r| r.run_id())
        .collect::<Vec<_>>();
    matching(ids, current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flag_values_in_both_spellings_last_wins() {
        let w = words(&[
            "run-agent",
            "stop",
            "--project",
            "a",
            "--project=b",
            "--task",
        ]);
        assert_eq!(flag_value(&w, "--project").as_deref(), Some("b"));
        assert_eq!(flag_value(&w, "--task"), None);
        assert_eq!(flag_value(&w, "--root"), None);
    }

    #[test]
    fn every_project_and_task_argument_gets_a_completer() {
        for binary in [Binary::RunAgent, Binary::Conductor] {
            let mut cmd = binary.command();
            cmd.build();
            let mut stack = vec![cmd];
            let mut seen = 0;
            while let Some(cmd) = stack.pop() {
                for arg in cmd.get_arguments() {
                    if ["project", "task", "run"].contains(&arg.get_id().as_str()) {
                        assert!(
                            arg.get::<ArgValueCompleter>().is_some(),
                            "{} {} has no completer",
                            cmd.get_name(),
                            arg.get_id()
                        );
                        seen += 1;
                    }
                }
                stack.extend(cmd.get_subcommands().cloned());
            }
            assert!(seen > 5, "{binary:?}: only {seen} id arguments found");
        }
    }
}
