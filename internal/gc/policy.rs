//! What gc deletes: the pure decision for one run, from its status and timestamps. No I/O here; liveness is judged by the caller first.

use chrono::{DateTime, Utc};

use crate::storage::RunStatus;

/// Why a run is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// Status `running` and the process is alive (or cannot be judged).
    Running,
    /// Younger than the cutoff.
    TooNew,
    /// Failed, and `--keep-failed` was given.
    KeepFailed,
    /// run-info.yaml parses but its status is missing or not recognised.
    UnknownStatus,
    /// Neither `start_time` nor `end_time` is set, so the age is unknown.
    NoTimestamp,
    /// The run directory has no run-info.yaml.
    MissingRunInfo,
    /// run-info.yaml does not parse, cannot be read, or is not a regular file.
    CorruptRunInfo,
}

impl KeepReason {
    /// All reasons, in report order.
    pub const ALL: [KeepReason; 7] = [
        KeepReason::Running,
        KeepReason::TooNew,
        KeepReason::KeepFailed,
        KeepReason::UnknownStatus,
        KeepReason::NoTimestamp,
        KeepReason::MissingRunInfo,
        KeepReason::CorruptRunInfo,
    ];

    /// A short label for the text summary.
    pub fn label(self) -> &'static str {
        match self {
            KeepReason::Running => "running",
            KeepReason::TooNew => "too new",
            KeepReason::KeepFailed => "failed (--keep-failed)",
            KeepReason::UnknownStatus => "unknown status",
            KeepReason::NoTimestamp => "no timestamp",
            KeepReason::MissingRunInfo => "missing run-info.yaml",
            KeepReason::CorruptRunInfo => "corrupt run-info.yaml",
        }
    }
}

/// The outcome for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delete the run directory.
    Delete,
    /// Keep it, for this reason.
    Keep(KeepReason),
}

/// The retention rule: runs that ended (completed, failed, stopped) and started before the
/// cutoff are deleted; `--keep-failed` spares failed ones.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Runs whose age timestamp is strictly before this are old enough.
    pub cutoff: DateTime<Utc>,
    /// Spare failed runs.
    pub keep_failed: bool,
}

impl Policy {
    /// Judges a run from its (liveness-adjusted) status and its timestamps. Age comes from
    /// `start_time`, else `end_time`.
    pub fn judge(
        &self,
        status: RunStatus,
        start_time: Option<DateTime<Utc>>,
        end_time: Option<DateTime<Utc>>,
    ) -> Verdict {
        match status {
            RunStatus::Running => return Verdict::Keep(KeepReason::Running),
            RunStatus::Unknown => return Verdict::Keep(KeepReason::UnknownStatus),
            RunStatus::Failed if self.keep_failed => return Verdict::Keep(KeepReason::KeepFailed),
            RunStatus::Completed | RunStatus::Failed | RunStatus::Stopped => {}
        }
        match start_time.or(end_time) {
            None => Verdict::Keep(KeepReason::NoTimestamp),
            Some(t) if t < self.cutoff => Verdict::Delete,
            Some(_) => Verdict::Keep(KeepReason::TooNew),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn policy(keep_failed: bool) -> (Policy, DateTime<Utc>) {
        let now = Utc::now();
        let cutoff = now - Duration::hours(168);
        (
            Policy {
                cutoff,
                keep_failed,
            },
            cutoff,
        )
    }

    #[test]
    fn terminal_runs_older_than_cutoff_are_deleted() {
        let (p, cutoff) = policy(false);
        let old = Some(cutoff - Duration::seconds(1));
        let new = Some(cutoff + Duration::seconds(1));
        for status in [RunStatus::Completed, RunStatus::Failed, RunStatus::Stopped] {
            assert_eq!(p.judge(status, old, None), Verdict::Delete, "{status}");
            assert_eq!(
                p.judge(status, new, None),
                Verdict::Keep(KeepReason::TooNew)
            );
        }
        assert_eq!(
            p.judge(RunStatus::Completed, Some(cutoff), None),
            Verdict::Keep(KeepReason::TooNew),
            "exactly at the cutoff is not older than it"
        );
    }

    #[test]
    fn age_falls_back_to_end_time_and_start_time_wins() {
        let (p, cutoff) = policy(false);
        let old = Some(cutoff - Duration::hours(1));
        let new = Some(cutoff + Duration::hours(1));
        let too_new = Verdict::Keep(KeepReason::TooNew);
        for (start, end, verdict) in [
            (None, old, Verdict::Delete),
            (None, new, too_new),
            (old, new, Verdict::Delete),
            (new, old, too_new),
            (None, None, Verdict::Keep(KeepReason::NoTimestamp)),
        ] {
            let judged = p.judge(RunStatus::Completed, start, end);
            assert_eq!(judged, verdict, "start {start:?}, end {end:?}");
        }
    }

    #[test]
    fn running_unknown_and_kept_failed_survive() {
        let (p, cutoff) = policy(true);
        let old = Some(cutoff - Duration::days(30));
        for (status, end, verdict) in [
            (RunStatus::Running, None, Verdict::Keep(KeepReason::Running)),
            (
                RunStatus::Unknown,
                old,
                Verdict::Keep(KeepReason::UnknownStatus),
            ),
            (
                RunStatus::Failed,
                old,
                Verdict::Keep(KeepReason::KeepFailed),
            ),
            (RunStatus::Stopped, old, Verdict::Delete),
        ] {
            assert_eq!(p.judge(status, old, end), verdict, "{status}");
        }
    }
}
