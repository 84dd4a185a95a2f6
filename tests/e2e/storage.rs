//! Storage crash-safety: run-info.yaml survives SIGKILL of a writer at any instant, and
//! locked updates from several processes never lose an update.
//!
//! The writers are this test binary re-executed in a "child mode" selected by an env var.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use conductor::storage::run_info::UPDATE_LOCK_TIMEOUT;
use conductor::storage::{RunInfo, RunStatus};

use crate::support::ChildGuard;

const CHILD_MODE: &str = "CONDUCTOR_TEST_STORAGE_CHILD";

/// Starts this test binary running only `test_name` with `CHILD_MODE=mode`.
fn spawn_child(test_name: &str, mode: &str) -> ChildGuard {
    let exe = std::env::current_exe().expect("current exe");
    let child = Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    ChildGuard(Some(child))
}

fn sample(path: &Path, n: u64) -> RunInfo {
    let mut info = RunInfo::new_running(
        "20260101-1200000000-1-1",
        "proj",
        "task-1",
        "claude",
        Utc::now(),
    );
    info.pid = n as i64;
    info.commandline = Some(format!(
        "agent --iteration {n} {}",
        "x".repeat((n % 50) as usize * 40)
    ));
    info.cwd = Some(path.display().to_string());
    info
}

/// Child mode "rewrite:<path>": rewrite run-info.yaml forever (until killed).
#[test]
fn child_rewriter() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let Some(path) = mode.strip_prefix("rewrite:") else {
        return;
    };
    let path = Path::new(path);
    for n in 0.. {
        sample(path, n).write(path).expect("write run-info");
    }
}

/// Child mode "increment:<path>:<count>": bump `restart_index` count times under the lock.
#[test]
fn child_incrementer() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let Some(rest) = mode.strip_prefix("increment:") else {
        return;
    };
    let (path, count) = rest.rsplit_once(':').expect("path:count");
    let count: u64 = count.parse().expect("count");
    for _ in 0..count {
        RunInfo::update(Path::new(path), UPDATE_LOCK_TIMEOUT * 4, |info| {
            info.restart_index = Some(info.restart_index.unwrap_or(0) + 1);
            Ok::<(), ()>(())
        })
        .expect("lock")
        .expect("update");
    }
}

#[test]
fn sigkill_during_rewrites_never_leaves_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-info.yaml");
    sample(&path, 0).write(&path).unwrap();
    let kills = 200;
    for round in 0..kills {
        let mut child = spawn_child(
            "storage::child_rewriter",
            &format!("rewrite:{}", path.display()),
        );
        // Wait until this writer is in its loop (it has written pid > 0), then vary the
        // moment of the kill so it lands at different points of a write.
        sample(&path, 0).write(&path).unwrap();
        let started = std::time::Instant::now();
        while RunInfo::read(&path).map(|i| i.pid == 0).unwrap_or(true) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "writer never started"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros((round * 397) % 3_000));
        let mut proc = child.0.take().unwrap();
        proc.kill().unwrap();
        proc.wait().unwrap();
        let info = RunInfo::read(&path)
            .unwrap_or_else(|e| panic!("round {round}: run-info.yaml does not parse: {e}"));
        assert_eq!(info.status, RunStatus::Running);
        assert_eq!(info.task_id, "task-1");
    }
    // Stray temp files from killed writers may remain, but never a partial run-info.yaml.
    assert!(RunInfo::read(&path).is_ok());
}

#[test]
fn concurrent_updaters_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-info.yaml");
    sample(&path, 0).write(&path).unwrap();
    let (procs, each) = (6, 50);
    let children: Vec<ChildGuard> = (0..procs)
        .map(|_| {
            spawn_child(
                "storage::child_incrementer",
                &format!("increment:{}:{each}", path.display()),
            )
        })
        .collect();
    for mut child in children {
        let status = child.0.take().unwrap().wait().unwrap();
        assert!(status.success(), "updater failed: {status}");
    }
    let info = RunInfo::read(&path).unwrap();
    assert_eq!(info.restart_index, Some(procs * each));
}
