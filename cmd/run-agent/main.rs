//! `run-agent`: local commands on the run tree, `serve`, and HTTP client commands.
//!
//! A C `main` instead of Rust's: see `conductor::cli::entry` (start-up cost of short commands).
#![no_main]

/// The process entry point (called by the C runtime).
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    conductor::cli::entry::run(conductor::cli::run_agent_main)
}
