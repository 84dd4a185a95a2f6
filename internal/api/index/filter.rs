//! Which runs a listing keeps: the filters of `GET /api/v1/runs` that look at a run's record
//! (status, agent, start time). Project and task choose the slots before this is asked.

use super::store::Run;
use crate::storage::RunStatus;

/// Filters of a listing.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    /// Only this project.
    pub project: Option<String>,
    /// Only this task.
    pub task: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only runs whose agent name (`agent_name`) or agent type (`agent`) is this.
    pub agent: Option<String>,
    /// Only runs started at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Only runs started before this time (ns since the epoch).
    pub until_ns: Option<i64>,
}

impl RunFilter {
    /// Whether a run with this record is listed. With a time filter, a run whose start time is
    /// unknown is not.
    pub(super) fn keeps(&self, run: &Run) -> bool {
        let agent_matches = |agent: &str| {
            run.agent_name.as_deref() == Some(agent) || run.agent.as_deref() == Some(agent)
        };
        let timed = self.since_ns.is_some() || self.until_ns.is_some();
        self.status.is_none_or(|s| s == run.status)
            && self.agent.as_deref().is_none_or(agent_matches)
            && (!timed || run.start_ns != 0)
            && self.since_ns.is_none_or(|t| run.start_ns >= t)
            && self.until_ns.is_none_or(|t| run.start_ns < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn run(agent: &str, name: Option<&str>, start_ns: i64) -> Run {
        Run {
            status: RunStatus::Completed,
            start_ns,
            agent_name: name.map(Arc::from),
            agent: Some(Arc::from(agent)),
            ..Run::unknown()
        }
    }

    #[test]
    fn agent_matches_the_name_or_the_type() {
        let f = RunFilter {
            agent: Some("long".into()),
            ..RunFilter::default()
        };
        assert!(f.keeps(&run("command", Some("long"), 1)));
        assert!(!f.keeps(&run("command", Some("short"), 1)));
        let f = RunFilter {
            agent: Some("command".into()),
            ..RunFilter::default()
        };
        assert!(f.keeps(&run("command", Some("long"), 1)));
        assert!(!f.keeps(&run("claude", None, 1)));
    }

    #[test]
    fn since_is_inclusive_until_exclusive_and_unknown_starts_are_left_out() {
        let f = RunFilter {
            since_ns: Some(10),
            until_ns: Some(20),
            ..RunFilter::default()
        };
        assert!(!f.keeps(&run("command", None, 9)));
        assert!(f.keeps(&run("command", None, 10)));
        assert!(f.keeps(&run("command", None, 19)));
        assert!(!f.keeps(&run("command", None, 20)));
        assert!(!f.keeps(&run("command", None, 0)));
        assert!(RunFilter::default().keeps(&run("command", None, 0)));
    }
}
