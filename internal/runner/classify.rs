//! How a finished agent process becomes a run status:
//! `completed` iff exit 0; a user stop is `stopped`; everything else `failed` with a summary.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::storage::RunStatus;

/// Summary of a run killed by the idle-output timeout.
pub const TIMED_OUT: &str = "timed out";
/// Summary of a run stopped by `run-agent stop`.
pub const STOPPED_BY_USER: &str = "stopped by user";

/// The final status, exit code and error summary of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `completed`, `failed` or `stopped`.
    pub status: RunStatus,
    /// The exit code; a death by signal N is recorded as 128 + N, as a shell reports it.
    pub exit_code: i64,
    /// Why the run did not complete.
    pub error_summary: Option<String>,
}

/// The exit code of `status`; 128 + N for a death by signal N.
pub fn exit_code(status: &ExitStatus) -> i64 {
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
    }
}

/// Classifies an exit. `timed_out` and `stopped` say why the runner killed the group, if it did.
pub fn classify(exit_code: i64, timed_out: bool, stopped: bool) -> Outcome {
    let (status, summary) = if stopped {
        (RunStatus::Stopped, Some(STOPPED_BY_USER.to_string()))
    } else if timed_out {
        (RunStatus::Failed, Some(TIMED_OUT.to_string()))
    } else if exit_code == 0 {
        (RunStatus::Completed, None)
    } else {
        (RunStatus::Failed, Some(summary_for(exit_code)))
    };
    Outcome {
        status,
        exit_code,
        error_summary: summary,
    }
}

fn summary_for(code: i64) -> String {
    match code {
        1 => "agent reported failure".to_string(),
        2 => "agent usage error".to_string(),
        137 => "agent killed (OOM or signal)".to_string(),
        143 => "agent terminated (SIGTERM)".to_string(),
        n => format!("agent exited with code {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(classify(0, false, false).status, RunStatus::Completed);
        assert_eq!(classify(0, false, false).error_summary, None);
        let c = |code| classify(code, false, false).error_summary.unwrap();
        assert_eq!(c(1), "agent reported failure");
        assert_eq!(c(137), "agent killed (OOM or signal)");
        assert_eq!(c(143), "agent terminated (SIGTERM)");
        assert_eq!(c(7), "agent exited with code 7");
        assert_eq!(
            classify(137, true, false).error_summary.as_deref(),
            Some(TIMED_OUT)
        );
        assert_eq!(classify(143, true, true).status, RunStatus::Stopped);
    }

    #[test]
    fn signal_deaths_are_128_plus_n() {
        assert_eq!(exit_code(&ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(&ExitStatus::from_raw(3 << 8)), 3);
    }
}
