//! Factories: run files and records written the way a runner writes them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::*;

/// Appends `text` to the file at `path` (created when missing), as an agent writes its log.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// A `running` run written into a tree, kept running by a live stand-in process (killed on
/// drop), with `one\ntwo\n` on stdout and `warn\n` on stderr.
pub struct LiveRun {
    /// The run directory.
    pub dir: PathBuf,
    /// The record as written (change it and write it again to end the run).
    pub info: conductor::storage::RunInfo,
    _process: ChildGuard,
}

impl LiveRun {
    /// Writes run `run` of `demo/task-1` under `root`.
    pub fn write(root: &Path, run: &str) -> LiveRun {
        let dir = root.join("demo/task-1/runs").join(run);
        std::fs::create_dir_all(&dir).expect("create run dir");
        let process = ChildGuard(Some(
            Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawn sleep"),
        ));
        let pid = i64::from(process.0.as_ref().map_or(0, Child::id));
        let mut info = conductor::storage::RunInfo::new_running(
            run,
            "demo",
            "task-1",
            "command",
            chrono::Utc::now(),
        );
        info.pid = pid;
        info.pgid = pid;
        info.pid_start_time = conductor::process::start_time(pid);
        info.write(&dir.join("run-info.yaml"))
            .expect("write run-info");
        append(&dir.join("agent-stdout.txt"), "one\ntwo\n");
        append(&dir.join("agent-stderr.txt"), "warn\n");
        LiveRun {
            dir,
            info,
            _process: process,
        }
    }
}
