//! The runs next to a run within its task (by run id, which orders runs by start time): what
//! a run page links as the previous and the next run.

use std::ops::Bound;

use super::RunIndex;

impl RunIndex {
    /// The run ids just before and just after `run_id` among the runs of `project`/`task`.
    pub fn neighbours(
        &self,
        project: &str,
        task: &str,
        run_id: &str,
    ) -> (Option<String>, Option<String>) {
        let store = self.read();
        let mut previous: Option<&str> = None;
        let mut next: Option<&str> = None;
        let slots = store
            .slots
            .iter()
            .filter(|s| &*s.project == project && &*s.task == task);
        for slot in slots {
            let before = slot
                .runs
                .range::<str, _>((Bound::Unbounded, Bound::Excluded(run_id)))
                .next_back();
            if let Some((id, _)) = before {
                previous = previous.max(Some(&**id));
            }
            let after = slot
                .runs
                .range::<str, _>((Bound::Excluded(run_id), Bound::Unbounded))
                .next();
            if let Some((id, _)) = after {
                next = Some(next.map_or(&**id, |n| n.min(&**id)));
            }
        }
        (previous.map(str::to_string), next.map(str::to_string))
    }
}
