//! `run-agent`: local commands on the run tree, `serve`, and HTTP client commands.
//!
//! A C `main` instead of Rust's: see `conductor::cli::entry` (start-up cost of short commands).
// Under `cargo test` the test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

/// The process entry point (called by the C runtime).
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    conductor::cli::entry::run(conductor::cli::run_agent_main)
}
