//! Parsing `run-agent`'s command line while building only the subcommand being run.
//!
//! Building clap's full command tree (every subcommand, every argument, for `server …` alone a
//! few hundred) cost about half of the instructions of a short command such as `bus post`,
//! which agents run many times. When the first argument names a subcommand, this builds a
//! root with just that subcommand from the same derive definitions and decodes the result
//! into the same [`RunAgentCli`]; help and version requests, and anything else, take the full
//! tree, so every message is unchanged.

use std::ffi::OsString;

use clap::{Args, Command, FromArgMatches, Parser, Subcommand};

use super::{
    bus, gc, job, list, output, remote, serve, status, stop, supervise, task, validate, watch,
    GlobalOpts, RunAgentCli,
};

/// Parses the process arguments (exits with clap's message on an error, as `parse` does).
pub fn run_agent_cli() -> RunAgentCli {
    let args: Vec<OsString> = std::env::args_os().collect();
    match pruned_command(&args) {
        Some(command) => {
            let matches = command.get_matches_from(&args);
            RunAgentCli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
        }
        None => RunAgentCli::parse_from(args),
    }
}

/// Whether the whole command line is `run-agent --version` (or `-V`): answered without clap.
pub fn asks_only_for_version() -> bool {
    let mut args = std::env::args_os().skip(1);
    matches!(
        (args.next().as_ref().and_then(|a| a.to_str()), args.next()),
        (Some("-V" | "--version"), None)
    )
}

/// The root command with only the subcommand `args` run, or `None` for the full tree.
fn pruned_command(args: &[OsString]) -> Option<Command> {
    let asks_for_help_or_version = args.iter().skip(1).any(|a| {
        matches!(
            a.to_str(),
            Some("-h" | "--help" | "help" | "-V" | "--version")
        )
    });
    if args.len() < 3 || asks_for_help_or_version {
        return None;
    }
    type Build = fn(Command) -> Command;
    let (name, build): (&'static str, Build) = match args[1].to_str()? {
        "serve" => ("serve", serve::ServeArgs::augment_args),
        "validate" => ("validate", validate::ValidateArgs::augment_args),
        "bus" => ("bus", |c| {
            subcommands(bus::BusCommand::augment_subcommands(c))
        }),
        "gc" => ("gc", gc::GcArgs::augment_args),
        "job" => ("job", job::JobArgs::augment_args),
        "task" => ("task", task::TaskArgs::augment_args),
        "resume" => ("resume", task::resume::ResumeArgs::augment_args),
        "stop" => ("stop", stop::StopArgs::augment_args),
        "list" => ("list", list::ListArgs::augment_args),
        "status" => ("status", status::StatusArgs::augment_args),
        "output" => ("output", output::OutputArgs::augment_args),
        "watch" => ("watch", watch::WatchArgs::augment_args),
        "server" => ("server", |c| {
            subcommands(remote::ServerCommand::augment_subcommands(c))
        }),
        "supervise" => ("supervise", supervise::SuperviseArgs::augment_args),
        _ => return None,
    };
    let sub = build(Command::new(name));
    let root = Command::new("run-agent")
        .version(crate::version::long_version())
        .propagate_version(true)
        .subcommand_required(true)
        .arg_required_else_help(true);
    Some(GlobalOpts::augment_args(root).subcommand(sub))
}

/// What derive sets on a command whose variant is `#[command(subcommand)]`.
fn subcommands(command: Command) -> Command {
    command
        .subcommand_required(true)
        .arg_required_else_help(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(argv: &[&str]) -> (String, String) {
        let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
        let full = RunAgentCli::try_parse_from(&args);
        let command = pruned_command(&args).expect("a pruned command");
        let pruned = command
            .try_get_matches_from(&args)
            .and_then(|m| RunAgentCli::from_arg_matches(&m));
        let show = |r: Result<RunAgentCli, clap::Error>| match r {
            Ok(cli) => format!("{cli:?}"),
            Err(e) => format!("error {:?}: {}", e.kind(), e.render()),
        };
        (show(full), show(pruned))
    }

    #[test]
    fn pruned_parses_equal_the_full_tree() {
        // Command lines split at spaces (no argument here holds one).
        for line in [
            "run-agent bus post --project p --task t --body x",
            "run-agent bus read --project p --tail 5",
            "run-agent bus post --nope",
            "run-agent list --root /r --project p --json",
            "run-agent list --task t",
            "run-agent serve --port 1 --log-format json",
            "run-agent gc --dry-run --older-than 1h",
            "run-agent server status --json",
            "run-agent server task list --project p",
            "run-agent job --project p --agent x --prompt hi",
            "run-agent status --project p --task t",
            "run-agent output --project p --task t",
            "run-agent stop --project p --task t",
            "run-agent watch --project p",
            "run-agent validate --config c.yaml",
            "run-agent task --project p --agent x --prompt hi",
            "run-agent resume --project p --task t",
        ] {
            let argv: Vec<&str> = line.split(' ').collect();
            let (full, pruned) = both(&argv);
            assert_eq!(full, pruned, "{argv:?}");
        }
    }

    /// `run-agent --version` is printed without clap (see `run_agent_main`): the same text.
    #[test]
    fn the_version_printed_without_clap_is_clap_s() {
        for flag in ["--version", "-V"] {
            let err = RunAgentCli::try_parse_from(["run-agent", flag]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
            assert_eq!(
                err.render().to_string(),
                format!("run-agent {}\n", crate::version::long_version())
            );
        }
    }

    #[test]
    fn help_version_and_unknown_names_take_the_full_tree() {
        for argv in [
            &["run-agent"][..],
            &["run-agent", "bus"],
            &["run-agent", "bus", "post", "--help"],
            &["run-agent", "--log-format", "json", "list"],
            &["run-agent", "-V", "list"],
            &["run-agent", "nosuch", "x"],
        ] {
            let args: Vec<OsString> = argv.iter().map(OsString::from).collect();
            assert!(pruned_command(&args).is_none(), "{argv:?}");
        }
    }
}
