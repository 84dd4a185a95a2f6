//! Running a command to its end and checking what it left: outputs, run records, processes,
//! and bounded waits.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The readable run records in `runs_dir` (a task's `runs/`), oldest first by run id; none
/// when the directory does not exist.
pub fn run_infos(runs_dir: &Path) -> Vec<conductor::storage::RunInfo> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs_dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.iter()
        .filter_map(|d| conductor::storage::RunInfo::read(&d.join("run-info.yaml")).ok())
        .collect()
}

/// The text of the file at `path`; the test fails when it cannot be read.
pub fn read_text(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs `cmd` to completion and returns its output. Output is collected while the child
/// runs (no pipe can fill up); a child still running after 60 s is killed and the test fails.
pub fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("collect output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("command did not finish in 60 s");
        }
    }
}

/// stdout and stderr of an output as one string, for error messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The words of a command line, split at white space (for arguments without spaces):
/// `words("task --project demo --task t1")`.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Asserts that the command succeeded and returns its stdout.
pub fn ok_stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the command exited with code 1 and that its stderr contains `needle`.
pub fn fails_with(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "expected {needle:?} in: {}",
        text(out)
    );
}

/// Whether `pid` is a live process (a zombie counts as gone): the product's own rule.
pub fn alive(pid: i32) -> bool {
    conductor::process::pid_alive(i64::from(pid))
}

/// Polls `check` every 50 ms until it holds; fails the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
