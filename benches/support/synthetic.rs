//! The synthetic run tree the performance figures are measured on (docs/performance.md):
//! one project, `tasks` tasks × `runs` runs, every run-info.yaml key filled, every 10th run
//! failed. Shared by the criterion benches and the `synthetic_tree` example (which
//! `scripts/bench-compare.sh` runs), so both measure the same shape.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use conductor::storage::{RunInfo, RunStatus};

/// The project of the synthetic tree.
pub const PROJECT: &str = "bench";

/// The id of task `i`.
pub fn task_id(i: usize) -> String {
    format!("task-20260101-000000-bench-{i:04}")
}

/// The id of run `j` of task `i` (`YYYYMMDD-HHMMSSffff-<pid>-<seq>`, sorting by start time).
pub fn run_id(i: usize, j: usize) -> String {
    let start = start_time(i, j);
    format!(
        "{}{:04}-{}-{}",
        start.format("%Y%m%d-%H%M%S"),
        j % 10_000,
        40_000 + i,
        j + 1
    )
}

fn start_time(i: usize, j: usize) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    base + Duration::seconds((j * 2_000 + i) as i64)
}

/// A finished run-info record with every key filled; run `j % 10 == 9` failed.
pub fn record(root: &Path, i: usize, j: usize) -> RunInfo {
    let (task, run) = (task_id(i), run_id(i, j));
    let dir = root.join(PROJECT).join(&task).join("runs").join(&run);
    let path = |name: &str| Some(dir.join(name).display().to_string());
    let start = start_time(i, j);
    let mut info = RunInfo::new_running(&run, PROJECT, &task, "claude", start);
    let failed = j % 10 == 9;
    info.parent_run_id = Some(run_id(i, 0));
    info.previous_run_id = j.checked_sub(1).map(|p| run_id(i, p));
    info.process_ownership = Some("managed".into());
    info.pid = 100_000 + (i * 100 + j) as i64;
    info.pgid = info.pid;
    info.end_time = start + Duration::seconds(90);
    info.exit_code = if failed { 1 } else { 0 };
    info.status = if failed {
        RunStatus::Failed
    } else {
        RunStatus::Completed
    };
    info.cwd = Some("/home/dev/src/bench-project".into());
    info.prompt_path = path("prompt.md");
    info.output_path = path("output.md");
    info.stdout_path = path("agent-stdout.txt");
    info.stderr_path = path("agent-stderr.txt");
    info.commandline = Some(
        "claude -p --input-format text --output-format stream-json --verbose \
         --dangerously-skip-permissions"
            .into(),
    );
    info.error_summary = failed.then(|| "agent reported failure".into());
    info.agent_version = "2.1.3 (Claude Code)".into();
    info.agent_session_id = Some(format!("5f0c2a7e-{i:04}-{j:04}-8d1e-3b9f6a2c4d10"));
    info.pid_start_time = Some(1_234_567 + j as u64);
    info.restart_index = Some(j as u64);
    info
}

/// Writes the tree under `root` (plus TASK.md per task) and returns the project directory.
pub fn generate(root: &Path, tasks: usize, runs: usize) -> std::io::Result<PathBuf> {
    let project = root.join(PROJECT);
    for i in 0..tasks {
        let task_dir = project.join(task_id(i));
        std::fs::create_dir_all(&task_dir)?;
        std::fs::write(task_dir.join("TASK.md"), format!("Synthetic task {i}.\n"))?;
        for j in 0..runs {
            let info = record(root, i, j);
            let dir = task_dir.join("runs").join(&info.run_id);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("run-info.yaml"), info.to_yaml())?;
        }
    }
    Ok(project)
}
