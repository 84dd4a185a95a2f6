//! `run-agent`: local commands on the run tree, `serve`, and HTTP client commands.
fn main() -> std::process::ExitCode {
    conductor::cli::run_agent_main()
}
