//! Checks of the agents: each configured agent (or, without any, the built-in CLI types) is
//! on PATH and answers `--version` (the probe of `validate`), has the credentials it needs,
//! and avoids the known pitfalls of unattended runs.

use std::path::PathBuf;

use crate::agent::{token_var, BUILTIN_TYPES};
use crate::cli::validate::check_agent;
use crate::config::{AgentConfig, AgentType, Config};

use super::report::{Level, Report};

/// The environment lookups the checks use (the process's, or a test's).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Runs the agent checks for `config` (`None`: no config file).
pub fn check(config: Option<&Config>, env: Env, report: &mut Report) {
    let configured: Vec<(String, AgentConfig)> = config
        .map(|c| {
            c.agents
                .iter()
                .map(|(n, a)| (n.clone(), a.clone()))
                .collect()
        })
        .unwrap_or_default();
    if configured.is_empty() {
        check_builtins(env, report);
        return;
    }
    for (name, agent) in &configured {
        check_one(name, agent, env, report, true);
    }
}

/// Without configured agents the built-in CLI types are what `--agent claude` etc. run.
fn check_builtins(env: Env, report: &mut Report) {
    let mut found = 0;
    for agent_type in BUILTIN_TYPES {
        let name = agent_type.as_str();
        let program = agent_type.cli_binary().unwrap_or(name);
        if crate::cli::validate::find_program(program, env).is_some() {
            found += 1;
            check_one(name, &AgentConfig::of_type(agent_type), env, report, false);
        } else {
            report.add(
                "agents",
                format!("agents.{name}"),
                Level::Pass,
                format!("{program} not installed (optional; no agent is configured)"),
            );
        }
    }
    if found == 0 {
        report.add_hint(
            "agents",
            "agents",
            Level::Warn,
            "no agent is configured and none of claude, codex, gemini is on PATH",
            "configure a command agent (docs/quickstart.md) or install one of the CLIs",
        );
    }
}

fn check_one(name: &str, agent: &AgentConfig, env: Env, report: &mut Report, configured: bool) {
    let key = format!("agents.{name}");
    let result = check_agent(name, agent, env, true);
    if let Some(problem) = &result.problem {
        let level = if configured { Level::Fail } else { Level::Warn };
        report.add_hint(
            "agents",
            key,
            level,
            problem.clone(),
            "install it or fix the agent's program (run-agent validate shows the config)",
        );
        return;
    }
    let mut message = format!("type {}", agent.agent_type);
    if let Some(program) = &result.program {
        message.push_str(&format!(", {program}"));
    }
    if let Some(resolved) = &result.resolved {
        message.push_str(&format!(" -> {}", resolved.display()));
    }
    if let Some(version) = &result.version {
        message.push_str(&format!(", version {version:?}"));
    }
    report.add("agents", key.clone(), Level::Pass, message);
    if let Some(note) = &result.note {
        report.add("agents", format!("{key}.token"), Level::Warn, note.clone());
    }
    if agent.agent_type.cli_binary().is_some() {
        credentials(&key, agent, env, report);
    }
    match agent.agent_type {
        AgentType::Claude => claude_as_root(&key, env, report),
        AgentType::Gemini => gemini_folder_trust(&key, env, report),
        _ => {}
    }
}

fn set(env: Env, key: &str) -> bool {
    env(key).is_some_and(|v| !v.trim().is_empty())
}

fn home(env: Env) -> Option<PathBuf> {
    env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// The CLI's own login files, by type: a token variable or one of these means it can log in.
fn login_files(agent_type: AgentType, env: Env) -> Vec<PathBuf> {
    let Some(home) = home(env) else {
        return Vec::new();
    };
    match agent_type {
        AgentType::Claude => vec![
            home.join(".claude/.credentials.json"),
            home.join(".claude.json"),
        ],
        AgentType::Codex => {
            let codex_home = env("CODEX_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".codex"));
            vec![codex_home.join("auth.json")]
        }
        AgentType::Gemini => vec![home.join(".gemini/oauth_creds.json")],
        _ => Vec::new(),
    }
}

fn credentials(key: &str, agent: &AgentConfig, env: Env, report: &mut Report) {
    let var = token_var(agent.agent_type);
    let extra: &[&str] = match agent.agent_type {
        AgentType::Claude => &["CLAUDE_CODE_OAUTH_TOKEN"],
        AgentType::Gemini => &["GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"],
        _ => &[],
    };
    let name = key.trim_start_matches("agents.");
    if agent.token.is_some() {
        report.add(
            "agents",
            format!("{key}.login"),
            Level::Pass,
            "token from the config",
        );
        return;
    }
    if let Some(v) = var.iter().chain(extra).find(|v| set(env, v)) {
        report.add(
            "agents",
            format!("{key}.login"),
            Level::Pass,
            format!("{v} is set"),
        );
        return;
    }
    let files = login_files(agent.agent_type, env);
    if let Some(file) = files.iter().find(|f| f.is_file()) {
        report.add(
            "agents",
            format!("{key}.login"),
            Level::Pass,
            format!("logged in ({} exists)", file.display()),
        );
        return;
    }
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    report.add_hint(
        "agents",
        format!("{key}.login"),
        Level::Warn,
        format!(
            "no credentials found: {} unset, no {}",
            var.unwrap_or("token variable"),
            if shown.is_empty() { "login file".to_string() } else { shown.join(" or ") }
        ),
        format!(
            "log the CLI in as the user that runs the server, or set {} (or CONDUCTOR_AGENT_{}_TOKEN / token_file in the config)",
            var.unwrap_or("its token"),
            name.to_ascii_uppercase().replace('-', "_")
        ),
    );
}

/// claude refuses to bypass permissions (what unattended runs use) as root unless
/// IS_SANDBOX=1: every run would fail at once.
fn claude_as_root(key: &str, env: Env, report: &mut Report) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    if env("IS_SANDBOX").as_deref() == Some("1") {
        report.add(
            "agents",
            format!("{key}.root"),
            Level::Pass,
            "running as root with IS_SANDBOX=1 (claude accepts bypassPermissions)",
        );
    } else {
        report.add_hint(
            "agents",
            format!("{key}.root"),
            Level::Fail,
            "running as root without IS_SANDBOX=1: claude refuses --permission-mode bypassPermissions as root, so every run fails",
            crate::agent::claude::ROOT_HINT,
        );
    }
}

/// Gemini refuses folders it does not trust in headless mode and downgrades
/// `--approval-mode yolo` there. Runs get the runner's unattended variables
/// (`GEMINI_CLI_TRUST_WORKSPACE=true`) unless the environment already sets them, so the
/// pitfall is an environment that sets them otherwise.
fn gemini_folder_trust(key: &str, env: Env, report: &mut Report) {
    let trust_setting = home(env).and_then(|home| {
        let settings = home.join(".gemini/settings.json");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&settings).ok()?).ok()?;
        let enabled = doc
            .pointer("/security/folderTrust/enabled")
            .and_then(|v| v.as_bool())
            .or_else(|| doc.get("folderTrust").and_then(|v| v.as_bool()))?;
        Some((settings, enabled))
    });
    let setting_text = match &trust_setting {
        Some((path, true)) => format!("folder trust is enabled in {}", path.display()),
        Some((path, false)) => format!("folder trust is disabled in {}", path.display()),
        None => "gemini's folder trust applies to headless runs".to_string(),
    };
    for (var, wanted) in crate::runner::env::unattended(AgentType::Gemini) {
        match env(var) {
            Some(value) if value != *wanted => {
                if matches!(trust_setting, Some((_, false))) {
                    continue;
                }
                report.add_hint(
                    "agents",
                    format!("{key}.folder_trust"),
                    Level::Warn,
                    format!(
                        "{setting_text}, and the environment sets {var}={value}: gemini refuses (exit 55) or ignores --approval-mode yolo in folders it does not trust"
                    ),
                    format!("unset {var} (runs then get {var}={wanted}) or trust the agents' working folders in ~/.gemini/trustedFolders.json"),
                );
                return;
            }
            _ => {}
        }
    }
    report.add(
        "agents",
        format!("{key}.folder_trust"),
        Level::Pass,
        format!("{setting_text}; runs get GEMINI_CLI_TRUST_WORKSPACE=true, so any working folder is trusted"),
    );
}
