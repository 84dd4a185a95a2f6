//! The optional `--project` / `--task` scope shared by the inspection commands, and the
//! `--root` / `--config` pair shared by every local command.

use std::path::PathBuf;

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

/// `--root` and `--config`, shared by every local command that reads or writes the run tree,
/// so all of them find the tree the way the server does.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RootArgs {
    /// Runs root (default: inside a run, its own; else CONDUCTOR_ROOT, then the config's
    /// storage.runs_dir, then ~/run-agent).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Config file (default: CONDUCTOR_CONFIG, then ./config.{yaml,yml,hcl}, then
    /// ~/.config/conductor/config.*); its storage.runs_dir and storage.extra_roots apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl RootArgs {
    /// Loads the config and resolves the runs root (see [`super::job::setup`]).
    pub(crate) fn setup(&self) -> anyhow::Result<super::job::Setup> {
        super::job::setup(self.root.as_deref(), self.config.as_deref())
    }
}
