//! Command-line definitions (clap derive) shared by the `run-agent` and `conductor` binaries,
//! and the dispatch from a parsed command to its implementation (one file per command).

pub mod bus;
pub mod completions;
pub mod doctor;
pub mod entry;
mod fast_parse;
pub mod gc;
pub mod job;
pub mod list;
pub mod logging;
pub mod output;
pub mod remote;
pub mod scope;
pub mod serve;
mod sigpipe;
pub mod status;
pub mod stop;
pub mod supervise;
pub mod task;
pub mod terminal_text;
pub mod validate;
pub mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Options every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    pub log_format: logging::LogFormat,
}

/// `run-agent`: local commands on the run tree, the server, and API client commands.
#[derive(Debug, Parser)]
#[command(name = "run-agent", version = crate::version::long_version(), about, propagate_version = true)]
pub struct RunAgentCli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: RunAgentCommand,
}

/// The `run-agent` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunAgentCommand {
    /// Start the HTTP server (REST, SSE, web UI) on defaults or a config.
    Serve(serve::ServeArgs),
    /// Check a config file and print the effective settings with their sources.
    Validate(validate::ValidateArgs),
    /// Post to and read the message buses.
    #[command(subcommand)]
    Bus(bus::BusCommand),
    /// Delete old runs, rotate oversized buses and prune finished tasks.
    Gc(gc::GcArgs),
    /// Run an agent once (one run) and wait for it.
    Job(job::JobArgs),
    /// Run a task: restart its root agent until the task's DONE file exists.
    Task(Box<task::TaskArgs>),
    /// Continue a task from its latest run (same as `task resume`).
    Resume(Box<task::resume::ResumeArgs>),
    /// Stop a running run: SIGTERM its process group, then SIGKILL after a grace period.
    Stop(stop::StopArgs),
    /// List projects, tasks with their derived status, and a task's runs (local files).
    List(list::ListArgs),
    /// Show one task's status, latest run and dependencies (local files).
    Status(status::StatusArgs),
    /// Print (or follow) a run's output, stdout, stderr or prompt (local files).
    Output(output::OutputArgs),
    /// Watch runs live until none is running (local files).
    Watch(watch::WatchArgs),
    /// API client of a running server: status, tasks, runs, bus, self-update.
    #[command(subcommand)]
    Server(remote::ServerCommand),
    /// Check the setup: config, runs root, agents, port, server; pass/warn/fail list.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one page per command with --out-dir.
    Man(completions::ManArgs),
    /// Supervise one run (internal; started by job and task).
    #[command(hide = true)]
    Supervise(supervise::SuperviseArgs),
}

/// `conductor`: the server, server-first. Without a subcommand it serves (config required).
#[derive(Debug, Parser)]
#[command(name = "conductor", version = crate::version::long_version(), about, propagate_version = true)]
pub struct ConductorCli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(flatten)]
    pub serve: serve::ServeArgs,
    #[command(subcommand)]
    pub command: Option<ConductorCommand>,
}

/// The `conductor` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConductorCommand {
    /// Check a config file and print the effective settings with their sources.
    Validate(validate::ValidateArgs),
    /// Update this server's binary in place (self-update status and start).
    #[command(subcommand)]
    Update(remote::UpdateCommand),
    /// Show a running server's status (API client).
    Status(remote::ServerStatusArgs),
    /// Tasks of a running server: submit, list, show, stop, resume, delete (API client).
    #[command(subcommand)]
    Task(remote::TaskCommand),
    /// Runs of a running server: list, show, logs (API client).
    #[command(subcommand)]
    Runs(remote::RunsCommand),
    /// Message bus of a running server: read, post (API client).
    #[command(subcommand)]
    Bus(remote::BusCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one page per command with --out-dir.
    Man(completions::ManArgs),
    /// Supervise one run (internal; started when the server runs a task).
    #[command(hide = true)]
    Supervise(supervise::SuperviseArgs),
}

impl RunAgentCommand {
    /// Whether the command only reads and prints (no agent, server or deletion of its own), so
    /// a closed stdout may simply end it.
    fn only_prints(&self) -> bool {
        matches!(
            self,
            Self::Validate(_)
                | Self::Bus(_)
                | Self::List(_)
                | Self::Status(_)
                | Self::Output(_)
                | Self::Watch(_)
                | Self::Server(_)
                | Self::Doctor(_)
                | Self::Completions(_)
                | Self::Man(_)
        )
    }
}

impl ConductorCommand {
    /// As [`RunAgentCommand::only_prints`].
    fn only_prints(&self) -> bool {
        !matches!(self, Self::Supervise(_))
    }
}

/// Entry point of the `run-agent` binary.
pub fn run_agent_main() -> ExitCode {
    completions::complete_if_asked(completions::Binary::RunAgent);
    if fast_parse::asks_only_for_version() {
        // What clap prints for `--version`, without building any command.
        println!("run-agent {}", crate::version::long_version());
        return ExitCode::SUCCESS;
    }
    let cli = fast_parse::run_agent_cli();
    if cli.command.only_prints() {
        sigpipe::die_quietly_on_closed_stdout();
    }
    logging::init(cli.global.log_format);
    let result = match cli.command {
        RunAgentCommand::Serve(args) => serve::run(args, serve::Flavor::RunAgent),
        RunAgentCommand::Validate(args) => validate::run(args),
        RunAgentCommand::Bus(cmd) => bus::run(cmd),
        RunAgentCommand::Gc(args) => gc::run(args),
        RunAgentCommand::Job(args) => job::run(args),
        RunAgentCommand::Task(args) => task::run(*args),
        RunAgentCommand::Resume(args) => task::resume::run(*args),
        RunAgentCommand::Stop(args) => stop::run(args),
        RunAgentCommand::List(args) => list::run(args),
        RunAgentCommand::Status(args) => status::run(args),
        RunAgentCommand::Output(args) => output::run(args),
        RunAgentCommand::Watch(args) => watch::run(args),
        RunAgentCommand::Server(cmd) => remote::run(cmd),
        RunAgentCommand::Doctor(args) => doctor::run(args),
        RunAgentCommand::Completions(args) => {
            completions::run_completions(args, completions::Binary::RunAgent)
        }
        RunAgentCommand::Man(args) => completions::run_man(args, completions::Binary::RunAgent),
        RunAgentCommand::Supervise(args) => supervise::run(args),
    };
    finish(result)
}

/// Entry point of the `conductor` binary.
pub fn conductor_main() -> ExitCode {
    completions::complete_if_asked(completions::Binary::Conductor);
    let cli = ConductorCli::parse();
    if cli
        .command
        .as_ref()
        .is_some_and(ConductorCommand::only_prints)
    {
        sigpipe::die_quietly_on_closed_stdout();
    }
    logging::init(cli.global.log_format);
    let result = match cli.command {
        None => serve::run(cli.serve, serve::Flavor::Conductor),
        Some(ConductorCommand::Validate(args)) => validate::run(args),
        // Client commands use the top-level --config unless they have their own.
        Some(ConductorCommand::Update(cmd)) => {
            remote::run_with_config(remote::ServerCommand::Update(cmd), cli.serve.config)
        }
        Some(ConductorCommand::Status(args)) => {
            remote::run_with_config(remote::ServerCommand::Status(args), cli.serve.config)
        }
        Some(ConductorCommand::Task(cmd)) => {
            remote::run_with_config(remote::ServerCommand::Task(cmd), cli.serve.config)
        }
        Some(ConductorCommand::Runs(cmd)) => {
            remote::run_with_config(remote::ServerCommand::Runs(cmd), cli.serve.config)
        }
        Some(ConductorCommand::Bus(cmd)) => {
            remote::run_with_config(remote::ServerCommand::Bus(cmd), cli.serve.config)
        }
        Some(ConductorCommand::Completions(args)) => {
            completions::run_completions(args, completions::Binary::Conductor)
        }
        Some(ConductorCommand::Man(args)) => {
            completions::run_man(args, completions::Binary::Conductor)
        }
        Some(ConductorCommand::Supervise(args)) => supervise::run(args),
    };
    finish(result)
}

/// Prints an error chain as `error: …` and maps it to exit code 1.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, `outer: cause: …`, leaving out a cause whose text the
/// line already holds (library errors often name their source in their own message).
fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let err = crate::api::listen::BindError::Bind {
            addr: "127.0.0.1:1".to_string(),
            source: io,
        };
        let err = anyhow::Error::new(err).context("serve");
        assert_eq!(
            error_text(&err),
            "serve: cannot listen on 127.0.0.1:1: Address already in use"
        );
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&err), "outer: inner");
    }
}
