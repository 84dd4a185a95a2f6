//! `conductor`: the same server, server-first (a config file is required).
//!
//! A C `main` instead of Rust's: see `conductor::cli::entry`.
// Under `cargo test` the test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

/// The process entry point (called by the C runtime).
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    conductor::cli::entry::run(conductor::cli::conductor_main)
}
