//! The optional `--project` / `--task` scope shared by the inspection commands.

use anyhow::Context;

use crate::storage::{ProjectId, TaskId};

/// Validates the optional `--project` and `--task` values (errors name the flag).
pub fn parse(
    project: Option<&str>,
    task: Option<&str>,
) -> anyhow::Result<(Option<ProjectId>, Option<TaskId>)> {
    let project = project
        .map(ProjectId::parse)
        .transpose()
        .context("--project")?;
    let task = task.map(TaskId::parse).transpose().context("--task")?;
    Ok((project, task))
}
