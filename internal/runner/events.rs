//! The runner's bus events on the task bus: `RUN_START` at spawn, `RUN_STOP`
//! for a completed or user-stopped run, `RUN_CRASH` (with the stderr tail) for a failed one.

use std::path::Path;

use crate::bus::{self, AppendOptions, NewMessage};
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::paths::{OUTPUT_FILE, PROMPT_FILE, STDERR_FILE, STDOUT_FILE};
use crate::storage::RunStatus;

use super::classify::Outcome;
use super::error::RunnerError;

/// Lines of stderr quoted in a `RUN_CRASH` body.
const STDERR_TAIL_LINES: usize = 50;
/// Most bytes of stderr read for the tail.
const STDERR_TAIL_BYTES: u64 = 64 * 1024;

/// Where a run's events go.
#[derive(Debug, Clone)]
pub struct RunEvents<'a> {
    /// The task bus.
    pub bus: &'a Path,
    /// Project id.
    pub project: &'a ProjectId,
    /// Task id.
    pub task: &'a TaskId,
    /// Run id.
    pub run: &'a RunId,
    /// The run dir.
    pub run_dir: &'a Path,
}

impl RunEvents<'_> {
    fn post(&self, msg_type: &str, body: String) -> Result<String, RunnerError> {
        let msg = NewMessage::new(msg_type, self.project.clone())
            .task(self.task.clone())
            .run(self.run.clone())
            .body(body);
        Ok(bus::append(self.bus, &msg, &AppendOptions::default())?)
    }

    /// Posts `RUN_START`.
    pub fn started(&self) -> Result<String, RunnerError> {
        let d = self.run_dir;
        self.post(
            "RUN_START",
            format!(
                "run started\nrun_dir: {}\nprompt: {}\nstdout: {}\nstderr: {}\noutput: {}",
                d.display(),
                d.join(PROMPT_FILE).display(),
                d.join(STDOUT_FILE).display(),
                d.join(STDERR_FILE).display(),
                d.join(OUTPUT_FILE).display()
            ),
        )
    }

    /// Posts an `INFO` that the run waits for a free run slot.
    pub fn queued(&self, limit: u32) -> Result<String, RunnerError> {
        self.post(
            "INFO",
            format!("run queued: waiting for a free run slot (max_concurrent_runs = {limit})"),
        )
    }

    /// Posts the `WARN` of a run killed by the idle-output timeout (after its `RUN_CRASH`).
    pub fn timed_out(&self, limit: std::time::Duration) -> Result<String, RunnerError> {
        self.post(
            "WARN",
            format!("agent job timed out after {limit:?} of idle output"),
        )
    }

    /// Posts `RUN_STOP` (completed or stopped) or `RUN_CRASH` (failed).
    pub fn finished(&self, outcome: &Outcome) -> Result<String, RunnerError> {
        let d = self.run_dir;
        let mut body = match outcome.status {
            RunStatus::Stopped => format!("run stopped by user (exit code {})", outcome.exit_code),
            _ => format!("run stopped with code {}", outcome.exit_code),
        };
        body.push_str(&format!(
            "\nrun_dir: {}\noutput: {}",
            d.display(),
            d.join(OUTPUT_FILE).display()
        ));
        if let Some(summary) = &outcome.error_summary {
            body.push_str(&format!("\nerror: {summary}"));
        }
        let msg_type = match outcome.status {
            RunStatus::Completed | RunStatus::Stopped => "RUN_STOP",
            _ => "RUN_CRASH",
        };
        if msg_type == "RUN_CRASH" {
            let tail = stderr_tail(&d.join(STDERR_FILE));
            if !tail.trim().is_empty() {
                body.push_str("\n\n## stderr (last 50 lines)\n");
                body.push_str(tail.trim_end());
            }
        }
        self.post(msg_type, body)
    }
}

/// The last lines of a stderr file (empty when unreadable).
fn stderr_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(STDERR_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
}
