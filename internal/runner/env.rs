//! The environment given to an agent: the runner's env, the agent's token under its
//! provider variable with every other provider's key removed, what the CLI needs to run
//! unattended ([`unattended`]), the runner's own directory first on PATH, and the JRUN_* variables last so nothing can override them.

use std::ffi::OsString;
use std::path::Path;

use crate::agent::{is_provider_key, keeps_key, token_var, AgentSpec};
use crate::config::AgentType;

/// The JRUN_* values of one run.
#[derive(Debug, Clone)]
pub struct RunEnv<'a> {
    /// Project id.
    pub project_id: &'a str,
    /// Task id.
    pub task_id: &'a str,
    /// Run id.
    pub run_id: &'a str,
    /// Parent run id (empty when none; the variable is always set).
    pub parent_run_id: &'a str,
    /// The task's `runs/` dir.
    pub runs_dir: &'a Path,
    /// The task bus file.
    pub task_bus: &'a Path,
    /// The task dir.
    pub task_dir: &'a Path,
    /// The run dir.
    pub run_dir: &'a Path,
}

/// Builds the agent's env from `base` (the runner's env), sorted by key.
/// `exe_dir` (the runner binary's directory) is prepended to PATH unless already on it;
/// `extra` (e.g. `CONDUCTOR_CONFIG`) is applied before the JRUN_* variables.
pub fn build(
    base: impl IntoIterator<Item = (OsString, OsString)>,
    agent: &AgentSpec,
    run: &RunEnv<'_>,
    exe_dir: Option<&Path>,
    extra: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    let mut vars: std::collections::BTreeMap<OsString, OsString> = base
        .into_iter()
        .filter(|(k, _)| {
            let key = k.to_string_lossy();
            !key.starts_with("JRUN_")
                && key != "CLAUDECODE"
                && (!is_provider_key(&key) || keeps_key(agent.agent_type, &key))
        })
        .collect();
    if let (Some(token), Some(var)) = (&agent.token, token_var(agent.agent_type)) {
        vars.insert(var.into(), token.into());
    }
    for (key, value) in unattended(agent.agent_type) {
        vars.entry(key.into()).or_insert_with(|| value.into());
    }
    if let Some(dir) = exe_dir {
        let current = vars.get(&OsString::from("PATH")).cloned();
        let on_path = current
            .as_ref()
            .is_some_and(|p| std::env::split_paths(p).any(|d| d == dir));
        if !on_path {
            let mut dirs = vec![dir.to_path_buf()];
            if let Some(p) = &current {
                dirs.extend(std::env::split_paths(p));
            }
            if let Ok(joined) = std::env::join_paths(dirs) {
                vars.insert("PATH".into(), joined);
            }
        }
    }
    for (key, value) in extra {
        vars.insert(key.into(), value.into());
    }
    let path = |p: &Path| p.as_os_str().to_os_string();
    for (key, value) in [
        ("JRUN_PROJECT_ID", run.project_id.into()),
        ("JRUN_TASK_ID", run.task_id.into()),
        ("JRUN_ID", run.run_id.into()),
        ("JRUN_PARENT_ID", run.parent_run_id.into()),
        ("JRUN_RUNS_DIR", path(run.runs_dir)),
        ("JRUN_MESSAGE_BUS", path(run.task_bus)),
        ("JRUN_TASK_FOLDER", path(run.task_dir)),
        ("JRUN_RUN_FOLDER", path(run.run_dir)),
    ] {
        vars.insert(key.into(), value);
    }
    vars.into_iter().collect()
}

/// Variables a CLI needs to run unattended in any working directory (kept when the runner's
/// env sets them already): gemini refuses untrusted folders in headless mode (exit 55) and
/// downgrades `--approval-mode yolo` there, unless the workspace is trusted.
pub fn unattended(agent_type: AgentType) -> &'static [(&'static str, &'static str)] {
    match agent_type {
        AgentType::Gemini => &[("GEMINI_CLI_TRUST_WORKSPACE", "true")],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jrun_wins_keys_are_sanitized_and_path_prepended() {
        let agent = AgentSpec {
            name: "claude".into(),
            agent_type: AgentType::Claude,
            argv: vec!["claude".into()],
            token: Some("tok".into()),
        };
        let run = RunEnv {
            project_id: "p",
            task_id: "t",
            run_id: "r",
            parent_run_id: "",
            runs_dir: Path::new("/x/runs"),
            task_bus: Path::new("/x/TASK-MESSAGE-BUS.md"),
            task_dir: Path::new("/x"),
            run_dir: Path::new("/x/runs/r"),
        };
        let base = [
            ("JRUN_ID", "evil"),
            ("OPENAI_API_KEY", "o"),
            ("ANTHROPIC_API_KEY", "old"),
            ("PATH", "/usr/bin"),
            ("HOME", "/h"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = build(
            base,
            &agent,
            &run,
            Some(Path::new("/opt/bin")),
            &[("JRUN_ID".into(), "also evil".into())],
        );
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("JRUN_ID").as_deref(), Some("r"));
        assert_eq!(get("JRUN_PARENT_ID").as_deref(), Some(""));
        assert_eq!(get("OPENAI_API_KEY"), None);
        assert_eq!(get("ANTHROPIC_API_KEY").as_deref(), Some("tok"));
        assert_eq!(get("PATH").as_deref(), Some("/opt/bin:/usr/bin"));
        assert_eq!(get("HOME").as_deref(), Some("/h"));
        assert_eq!(get("GEMINI_CLI_TRUST_WORKSPACE"), None);
        let gemini = AgentSpec {
            agent_type: AgentType::Gemini,
            token: None,
            ..agent
        };
        let env = build(Vec::new(), &gemini, &run, None, &[]);
        assert!(env
            .iter()
            .any(|(k, v)| k == "GEMINI_CLI_TRUST_WORKSPACE" && v == "true"));
    }
}
