//! Task dependencies (`TASK-CONFIG.yaml`, `depends_on: [task ids]`): parsing `--depends-on`,
//! persisting the list, rejecting unknown tasks and cycles, and waiting until every
//! dependency has its DONE file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::yaml::Value;

use crate::storage::ids::{ProjectId, TaskId};
use crate::storage::paths::{DONE_FILE, TASK_CONFIG_FILE, TASK_FILE};
use crate::storage::Root;

use super::error::RunnerError;

const KEY: &str = "depends_on";

/// Parses dependency lists given as `field` (`--depends-on` values, repeatable and
/// comma-separated, or the API's `depends_on`): trimmed, empties skipped, validated,
/// de-duplicated in order; a task cannot depend on itself.
pub fn parse_list(
    values: &[String],
    own: &TaskId,
    field: &str,
) -> Result<Vec<TaskId>, RunnerError> {
    let mut out: Vec<TaskId> = Vec::new();
    for item in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let id = TaskId::parse(item).map_err(|e| RunnerError::invalid(field, e.to_string()))?;
        if &id == own {
            return Err(RunnerError::invalid(
                field,
                format!("task {own} cannot depend on itself"),
            ));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The `depends_on` list of the task in `task_dir` (empty without a TASK-CONFIG.yaml).
pub fn read(task_dir: &Path) -> Result<Vec<TaskId>, RunnerError> {
    let path = task_dir.join(TASK_CONFIG_FILE);
    let bad = |message: String| RunnerError::invalid(path.display().to_string(), message);
    let list = match super::task_config::read_key(task_dir, KEY)? {
        None => return Ok(Vec::new()),
        Some(Value::Sequence(items)) => items,
        Some(_) => return Err(bad(format!("`{KEY}` must be a list of task ids"))),
    };
    list.iter()
        .map(|item| {
            let text = item
                .as_str()
                .ok_or_else(|| bad(format!("`{KEY}` must be a list of task ids")))?;
            TaskId::parse(text.trim()).map_err(|e| bad(format!("`{KEY}`: {e}")))
        })
        .collect()
}

/// Writes the list into TASK-CONFIG.yaml (other keys kept); an empty list removes the key,
/// and the file when nothing else is left.
pub fn write(task_dir: &Path, deps: &[TaskId]) -> Result<(), RunnerError> {
    let list = (!deps.is_empty())
        .then(|| Value::Sequence(deps.iter().map(|d| Value::String(d.to_string())).collect()));
    super::task_config::write_key(task_dir, KEY, list)
}

/// Rejects dependencies that are not tasks of the project, and cycles in the project's
/// dependency graph once `task` depends on `deps` (errors name `field`).
pub fn check(
    root: &Root,
    project: &ProjectId,
    task: &TaskId,
    deps: &[TaskId],
    field: &str,
) -> Result<(), RunnerError> {
    for dep in deps {
        if !root.task_dir(project, dep).is_dir() {
            return Err(RunnerError::invalid(
                field,
                format!("task {dep} does not exist in project {project}"),
            ));
        }
    }
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let project_dir = root.project_dir(project);
    let entries = std::fs::read_dir(&project_dir)
        .map_err(|e| RunnerError::io("read directory", &project_dir, e))?;
    for entry in entries.flatten() {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == task.as_str()
            || !(dir.join(TASK_CONFIG_FILE).exists() || dir.join(TASK_FILE).exists())
        {
            continue;
        }
        let edges = read(&dir)?.iter().map(TaskId::to_string).collect();
        graph.insert(name, edges);
    }
    graph.insert(
        task.to_string(),
        deps.iter().map(TaskId::to_string).collect(),
    );
    if let Some(cycle) = find_cycle(&graph) {
        return Err(RunnerError::invalid(
            field,
            format!("dependency cycle detected: {}", cycle.join(" -> ")),
        ));
    }
    Ok(())
}

/// A cycle of `graph` as a path `a -> b -> a`, found by DFS in sorted order.
fn find_cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = path.iter().position(|n| n == node) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        let mut next: Vec<&String> = graph
            .get(node)
            .map(|e| e.iter().collect())
            .unwrap_or_default();
        next.sort();
        for n in next {
            if let Some(cycle) = visit(n, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut done, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// Whether task `task` of `project` has its DONE file.
pub fn is_done(root: &Root, project: &ProjectId, task: &TaskId) -> bool {
    root.task_dir(project, task).join(DONE_FILE).is_file()
}

/// How waiting for dependencies ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepsWait {
    /// Every dependency is DONE (or there were none).
    Ready,
    /// The task's own DONE appeared meanwhile.
    OwnDone,
    /// `keep_waiting` said stop.
    Cancelled,
}

/// Waits until every dependency has its DONE file, polling every `poll`. Posts (through
/// `post`) PROGRESS `task blocked by dependencies: …` whenever the blocked set changes, and
/// FACT `dependencies satisfied; starting task` when it was ever blocked.
pub fn wait(
    root: &Root,
    project: &ProjectId,
    task: &TaskId,
    deps: &[TaskId],
    poll: Duration,
    post: &dyn Fn(&str, String),
    mut keep_waiting: impl FnMut() -> bool,
) -> DepsWait {
    let mut last_blocked: Vec<String> = Vec::new();
    loop {
        if root.task_dir(project, task).join(DONE_FILE).exists() {
            return DepsWait::OwnDone;
        }
        let blocked: Vec<String> = deps
            .iter()
            .filter(|d| !is_done(root, project, d))
            .map(TaskId::to_string)
            .collect();
        if blocked.is_empty() {
            if !last_blocked.is_empty() {
                post("FACT", "dependencies satisfied; starting task".to_string());
            }
            return DepsWait::Ready;
        }
        if blocked != last_blocked {
            post(
                "PROGRESS",
                format!("task blocked by dependencies: {}", blocked.join(", ")),
            );
            last_blocked = blocked;
        }
        if !keep_waiting() {
            return DepsWait::Cancelled;
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<TaskId> {
        list.iter().map(|s| TaskId::parse(s).unwrap()).collect()
    }

    #[test]
    fn parse_normalizes_and_rejects() {
        let own = TaskId::parse("me").unwrap();
        let got = parse_list(&["a, b,,a".into(), "c".into()], &own, "--depends-on").unwrap();
        assert_eq!(got, ids(&["a", "b", "c"]));
        assert!(parse_list(&["me".into()], &own, "--depends-on")
            .unwrap_err()
            .to_string()
            .contains("itself"));
        assert!(parse_list(&["../x".into()], &own, "--depends-on").is_err());
    }

    #[test]
    fn file_round_trip_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TASK_CONFIG_FILE), "owner: me\n").unwrap();
        write(dir.path(), &ids(&["a", "b"])).unwrap();
        assert_eq!(read(dir.path()).unwrap(), ids(&["a", "b"]));
        write(dir.path(), &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(TASK_CONFIG_FILE)).unwrap(),
            "owner: me\n"
        );
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let mut graph = BTreeMap::new();
        graph.insert("a".to_string(), vec!["b".to_string()]);
        graph.insert("b".to_string(), vec!["c".to_string()]);
        graph.insert("c".to_string(), vec![]);
        assert_eq!(find_cycle(&graph), None);
        graph.insert("c".to_string(), vec!["a".to_string()]);
        assert_eq!(find_cycle(&graph).unwrap().join(" -> "), "a -> b -> c -> a");
    }
}
