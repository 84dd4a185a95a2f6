//! `output.md` after a run: the agent's own file is never overwritten; otherwise, for CLI
//! agents, the final answer extracted from their JSON stream (see [`crate::agent::stream`]); otherwise
//! a byte copy of `agent-stdout.txt`.

use std::path::Path;

use crate::config::AgentType;
use crate::storage::atomic::write_atomic;
use crate::storage::paths::{OUTPUT_FILE, STDERR_FILE, STDOUT_FILE};

use super::error::RunnerError;
use crate::agent::stream;

/// Largest stdout parsed for a final answer; bigger streams are copied as they are.
const MAX_PARSED_STDOUT: u64 = 64 * 1024 * 1024;
/// How much of the end of stderr is read for a failure reason.
const MAX_STDERR_TAIL: u64 = 64 * 1024;

/// Summary of a gemini run whose CLI does not know the stream flags.
pub const GEMINI_FLAGS_REJECTED: &str =
    "gemini CLI rejected --output-format stream-json; update your Gemini CLI";

/// Whether a gemini run failed because its CLI rejected the stream flags: no answer in its
/// stream, and stderr complains about an unknown flag.
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

/// The agent's stream (CLI agents only; empty for other types, a missing or huge stdout).
pub fn read_stream(run_dir: &Path, agent_type: AgentType) -> stream::StreamSummary {
    if agent_type.cli_binary().is_none() {
        return stream::StreamSummary::default();
    }
    let stdout = run_dir.join(STDOUT_FILE);
    let small = std::fs::metadata(&stdout).is_ok_and(|m| m.len() <= MAX_PARSED_STDOUT);
    match std::fs::read(&stdout) {
        Ok(bytes) if small => stream::parse(agent_type, &String::from_utf8_lossy(&bytes)),
        _ => stream::StreamSummary::default(),
    }
}

/// The last `MAX_STDERR_TAIL` bytes of the agent's stderr, as text.
pub fn stderr_tail(run_dir: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(run_dir.join(STDERR_FILE)) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX_STDERR_TAIL)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// [`ensure`], but a failure (e.g. a full disk) does not end the supervisor: it is logged
/// and added to `error_summary`, so the run's real end is still recorded.
pub fn ensure_or_note(
    run_dir: &Path,
    agent_type: AgentType,
    stream: &stream::StreamSummary,
    error_summary: &mut Option<String>,
) {
    if let Err(err) = ensure(run_dir, agent_type, stream, error_summary.as_deref()) {
        tracing::warn!("{err}");
        let note = format!("{OUTPUT_FILE} not written: {err}");
        *error_summary = Some(match error_summary.take() {
            Some(summary) => format!("{summary}; {note}"),
            None => note,
        });
    }
}

/// Makes sure `<run_dir>/output.md` exists. Returns whether it was written here.
///
/// A CLI agent's `stream` answer wins. A JSON stream without an answer (a failed run) is
/// never copied (it holds the whole prompt): output.md then says `failure`, or stays empty.
/// Any other stdout is copied as it is.
pub fn ensure(
    run_dir: &Path,
    agent_type: AgentType,
    stream: &stream::StreamSummary,
    failure: Option<&str>,
) -> Result<bool, RunnerError> {
    let output = run_dir.join(OUTPUT_FILE);
    if output.exists() {
        return Ok(false);
    }
    let write = |text: &str| {
        write_atomic(&output, text.as_bytes()).map_err(|e| RunnerError::io("write", &output, e))
    };
    if agent_type.cli_binary().is_some() {
        if let Some(answer) = &stream.answer {
            write(&format!("{}\n", answer.trim_end()))?;
            return Ok(true);
        }
        if stream.events > 0 {
            write(
                &failure
                    .map(|f| format!("Run failed: {f}\n"))
                    .unwrap_or_default(),
            )?;
            return Ok(true);
        }
    }
    let stdout = run_dir.join(STDOUT_FILE);
    if stdout.exists() {
        std::fs::copy(&stdout, &output).map_err(|e| RunnerError::io("copy", &stdout, e))?;
    } else {
        write("")?;
    }
    Ok(true)
}
