//! `output.md` after a run: the agent's own file is never overwritten; otherwise, for CLI
//! agents, the final answer extracted from their JSON stream (see [`super::stream`]); otherwise
//! a byte copy of `agent-stdout.txt`.

use std::path::Path;

use crate::config::AgentType;
use crate::storage::atomic::write_atomic;
use crate::storage::paths::{OUTPUT_FILE, STDERR_FILE, STDOUT_FILE};

use super::error::RunnerError;
use super::stream;

/// Largest stdout parsed for a final answer; bigger streams are copied as they are.
const MAX_PARSED_STDOUT: u64 = 64 * 1024 * 1024;

/// Summary of a gemini run whose CLI does not know the stream flags.
pub const GEMINI_FLAGS_REJECTED: &str =
    "gemini CLI rejected --output-format stream-json; update your Gemini CLI";

/// Whether a gemini run failed because its CLI rejected the stream flags: no answer in its
/// stream, and stderr complains about an unknown flag (reference §3.7).
pub fn gemini_rejected_flags(run_dir: &Path) -> bool {
    let stdout = std::fs::read(run_dir.join(STDOUT_FILE)).unwrap_or_default();
    if stream::final_answer(AgentType::Gemini, &String::from_utf8_lossy(&stdout)).is_some() {
        return false;
    }
    let stderr = std::fs::read(run_dir.join(STDERR_FILE))
        .map(|b| String::from_utf8_lossy(&b).to_lowercase())
        .unwrap_or_default();
    [
        "unknown flag",
        "unknown argument",
        "unrecognized option",
        "output-format",
        "stream-json",
        "invalid flag",
    ]
    .iter()
    .any(|p| stderr.contains(p))
}

/// The agent's session id found in its stdout (CLI agents only).
pub fn session_id(run_dir: &Path, agent_type: AgentType) -> Option<String> {
    agent_type.cli_binary()?;
    let stdout = run_dir.join(STDOUT_FILE);
    let size = std::fs::metadata(&stdout).ok()?.len();
    if size > MAX_PARSED_STDOUT {
        return None;
    }
    let bytes = std::fs::read(&stdout).ok()?;
    stream::session_id(agent_type, &String::from_utf8_lossy(&bytes))
}

/// Makes sure `<run_dir>/output.md` exists. Returns whether it was written here.
pub fn ensure(run_dir: &Path, agent_type: AgentType) -> Result<bool, RunnerError> {
    let output = run_dir.join(OUTPUT_FILE);
    if output.exists() {
        return Ok(false);
    }
    let stdout = run_dir.join(STDOUT_FILE);
    let size = std::fs::metadata(&stdout).map(|m| m.len()).unwrap_or(0);
    let bytes = if size <= MAX_PARSED_STDOUT {
        std::fs::read(&stdout).unwrap_or_default()
    } else {
        Vec::new()
    };
    if agent_type.cli_binary().is_some() && !bytes.is_empty() {
        if let Some(answer) = stream::final_answer(agent_type, &String::from_utf8_lossy(&bytes)) {
            write_atomic(&output, format!("{}\n", answer.trim_end()).as_bytes())
                .map_err(|e| RunnerError::io("write", &output, e))?;
            return Ok(true);
        }
    }
    if size > MAX_PARSED_STDOUT {
        std::fs::copy(&stdout, &output).map_err(|e| RunnerError::io("copy", &stdout, e))?;
    } else {
        write_atomic(&output, &bytes).map_err(|e| RunnerError::io("write", &output, e))?;
    }
    Ok(true)
}
