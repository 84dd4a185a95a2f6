//! `conductor`: the same server, server-first (a config file is required).
fn main() -> std::process::ExitCode {
    conductor::cli::conductor_main()
}
