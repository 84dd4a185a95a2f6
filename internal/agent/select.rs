//! Which program a run starts: agent selection by name (config or built-in CLI types), and
//! the per-type command lines, resume forms and token variables (each from its type's file).

use crate::config::{AgentConfig, AgentType, Config};
use crate::storage::RunInfo;

use super::error::AgentError;

/// The agent types usable without any config (the CLI's own login).
pub const BUILTIN_TYPES: [AgentType; 3] = [AgentType::Claude, AgentType::Codex, AgentType::Gemini];

/// Every provider key removed from an agent's env unless it belongs to the agent's type.
pub const PROVIDER_KEYS: [&str; 6] = [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "PERPLEXITY_API_KEY",
    "XAI_API_KEY",
    "OPENAI_ORG_ID",
];

/// A resolved agent: what to run and with which token.
#[derive(Clone, PartialEq)]
pub struct AgentSpec {
    /// The name the agent was selected by (a config key or a type name).
    pub name: String,
    /// Its type.
    pub agent_type: AgentType,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Token to inject under the provider variable, if configured.
    pub token: Option<String>,
}

impl std::fmt::Debug for AgentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSpec")
            .field("name", &self.name)
            .field("agent_type", &self.agent_type)
            .field("argv", &self.argv)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The provider variable holding a type's token (`None` for command agents).
pub fn token_var(agent_type: AgentType) -> Option<&'static str> {
    match agent_type {
        AgentType::Claude => Some(super::claude::TOKEN_VAR),
        AgentType::Codex => Some(super::codex::TOKEN_VAR),
        AgentType::Gemini => Some(super::gemini::TOKEN_VAR),
        AgentType::Perplexity | AgentType::Xai => super::chat_api::token_var(agent_type),
        AgentType::Command => None,
    }
}

/// Whether `key` is a provider key that an agent of `agent_type` may keep.
pub fn keeps_key(agent_type: AgentType, key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    token_var(agent_type) == Some(upper.as_str())
        || (agent_type == AgentType::Codex && upper == "OPENAI_ORG_ID")
}

/// Whether `key` names a provider key (case-insensitive).
pub fn is_provider_key(key: &str) -> bool {
    PROVIDER_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// The fixed command line of a CLI agent type; the prompt goes on stdin.
pub fn cli_argv(agent_type: AgentType) -> Option<Vec<String>> {
    let args = match agent_type {
        AgentType::Claude => super::claude::ARGV,
        AgentType::Codex => super::codex::ARGV,
        AgentType::Gemini => super::gemini::ARGV,
        AgentType::Perplexity | AgentType::Xai | AgentType::Command => return None,
    };
    Some(args.iter().map(|s| s.to_string()).collect())
}

/// `argv` followed by `flag value`.
pub(super) fn with_flag(argv: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut out = argv.to_vec();
    out.extend([flag.to_string(), value.to_string()]);
    out
}

/// The session of `latest` (the task's latest run) that a resumed run of `agent` continues:
/// its recorded `agent_session_id`, only when the run was of the same agent type and the type
/// has a resume form ([`resume_argv`]). A different agent starts a new conversation.
pub fn session_to_resume(latest: Option<&RunInfo>, agent: &AgentSpec) -> Option<String> {
    let run = latest.filter(|r| r.agent == agent.agent_type.as_str())?;
    let session = run.agent_session_id.as_deref()?;
    resume_argv(agent.agent_type, &agent.argv, session).map(|_| session.to_string())
}

/// The model a command line asks for: `--model X`, `--model=X`, `-m X` or `-c model=X`.
pub fn model_from_argv(argv: &[String]) -> Option<String> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--model" | "-m" => args.next().cloned(),
            "-c" | "--config" => args
                .next()
                .and_then(|kv| kv.strip_prefix("model="))
                .map(|m| m.trim_matches('"').to_string()),
            other => other.strip_prefix("--model=").map(str::to_string),
        };
        if let Some(model) = value.filter(|m| !m.trim().is_empty()) {
            return Some(model);
        }
    }
    None
}

/// The command line that continues the agent's own conversation `session`, from
/// the type's normal command line `argv`:
/// - claude: `claude -p … --resume <session>`;
/// - codex: `codex exec resume <session> … --json -` (`thread_id` of `thread.started`);
/// - gemini: `gemini … --resume <session>`.
///
/// `None` when the type cannot resume, `argv` is not the type's CLI form, or `session` is
/// not a plain id (empty, starting with `-`, or containing whitespace or control characters).
pub fn resume_argv(agent_type: AgentType, argv: &[String], session: &str) -> Option<Vec<String>> {
    let plain = !session.is_empty()
        && !session.starts_with('-')
        && !session.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plain {
        return None;
    }
    match agent_type {
        AgentType::Claude => Some(super::claude::resume_argv(argv, session)),
        AgentType::Codex => super::codex::resume_argv(argv, session),
        AgentType::Gemini => Some(super::gemini::resume_argv(argv, session)),
        AgentType::Perplexity | AgentType::Xai | AgentType::Command => None,
    }
}

/// The agent a resumed task runs when none is given: the one named by the latest run's
/// `agent_name` (the name it was selected by, e.g. a config agent `long` of type `command`),
/// else — when that name is no longer known, or for records written before `agent_name`
/// existed — the first agent of the latest run's type.
pub fn select_for_resume(
    latest: &RunInfo,
    config: Option<&Config>,
) -> Result<AgentSpec, AgentError> {
    let by_name = select(latest.agent_name_or_type(), config);
    match by_name {
        Ok(spec) if spec.agent_type.as_str() == latest.agent => Ok(spec),
        _ => select(&latest.agent, config),
    }
}

/// Selects the agent called `name`. With a config: an exact key of `agents`, else the first
/// agent (by name) whose type is `name`, else a built-in CLI type when no agents are
/// configured. Without a config: `claude`, `codex` or `gemini` by type.
pub fn select(name: &str, config: Option<&Config>) -> Result<AgentSpec, AgentError> {
    let name = name.trim();
    let builtin = || {
        BUILTIN_TYPES
            .into_iter()
            .find(|t| t.as_str() == name.to_ascii_lowercase())
    };
    if let Some(config) = config.filter(|c| !c.agents.is_empty()) {
        if let Some(agent) = config.agents.get(name) {
            return from_config(name, agent);
        }
        let lower = name.to_ascii_lowercase();
        if let Some((key, agent)) = config
            .agents
            .iter()
            .find(|(_, a)| a.agent_type.as_str() == lower)
        {
            return from_config(key, agent);
        }
        return Err(AgentError::Unknown {
            name: name.to_string(),
            allowed: format!(
                "an agent of the config ({}) or one of its types",
                config.agents.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    if let Some(rest) = AgentType::parse(&name.to_ascii_lowercase()).filter(|t| t.is_rest()) {
        return rest_spec(rest.as_str(), rest, None, None, None);
    }
    match builtin() {
        Some(agent_type) => Ok(AgentSpec {
            name: agent_type.as_str().to_string(),
            agent_type,
            argv: cli_argv(agent_type).unwrap_or_default(),
            token: None,
        }),
        None => Err(AgentError::Unknown {
            name: name.to_string(),
            allowed: "claude, codex, gemini (other agents, e.g. `command` agents, are defined in a config file)".to_string(),
        }),
    }
}

fn from_config(name: &str, agent: &AgentConfig) -> Result<AgentSpec, AgentError> {
    let argv = match agent.agent_type {
        AgentType::Command => agent
            .command
            .clone()
            .filter(|c| c.first().is_some_and(|p| !p.is_empty()))
            .ok_or_else(|| {
                AgentError::invalid(
                    format!("agents.{name}.command"),
                    "a `command` agent needs a non-empty program and arguments list",
                )
            })?,
        AgentType::Perplexity | AgentType::Xai => {
            return rest_spec(
                name,
                agent.agent_type,
                agent.base_url.as_deref(),
                agent.model.as_deref(),
                agent.token.clone(),
            )
        }
        other => cli_argv(other).unwrap_or_default(),
    };
    Ok(AgentSpec {
        name: name.to_string(),
        agent_type: agent.agent_type,
        argv,
        token: agent.token.clone(),
    })
}

/// A REST agent (perplexity, xai): argv is `[base_url, model]` (defaults per type), and a
/// token is required — the configured one, else the provider variable of the environment.
fn rest_spec(
    name: &str,
    agent_type: AgentType,
    base_url: Option<&str>,
    model: Option<&str>,
    token: Option<String>,
) -> Result<AgentSpec, AgentError> {
    let (default_url, default_model) = super::chat_api::defaults(agent_type).unwrap_or_default();
    let var = token_var(agent_type).unwrap_or_default();
    let token = token.filter(|t| !t.trim().is_empty());
    let env_token = std::env::var(var).is_ok_and(|t| !t.trim().is_empty());
    if token.is_none() && !env_token {
        return Err(AgentError::invalid(
            format!("agent `{name}`"),
            format!(
                "a {agent_type} agent needs an API token: set {var}, or `token` / `token_file` of \
                 agents.{name} in the config, or {}",
                crate::config::agent_token_env(name)
            ),
        ));
    }
    let pick = |v: Option<&str>, d: &str| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(d)
            .to_string()
    };
    Ok(AgentSpec {
        name: name.to_string(),
        agent_type,
        argv: vec![pick(base_url, default_url), pick(model, default_model)],
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_agent(argv: &[&str]) -> AgentConfig {
        AgentConfig {
            command: Some(argv.iter().map(|s| s.to_string()).collect()),
            ..AgentConfig::of_type(AgentType::Command)
        }
    }

    #[test]
    fn without_config_only_cli_types() {
        let spec = select("claude", None).unwrap();
        assert_eq!(spec.argv[0], "claude");
        assert!(spec.argv.contains(&"stream-json".to_string()));
        assert_eq!(select("codex", None).unwrap().argv.last().unwrap(), "-");
        if std::env::var("XAI_API_KEY").is_err() {
            let err = select("xai", None).unwrap_err().to_string();
            assert!(
                err.contains("needs an API token") && err.contains("XAI_API_KEY"),
                "{err}"
            );
        }
        let err = select("fast", None).unwrap_err().to_string();
        assert!(
            err.contains("`fast`") && err.contains("claude, codex, gemini"),
            "{err}"
        );
    }

    #[test]
    fn config_names_then_types() {
        let mut config = Config::default();
        config
            .agents
            .insert("script".into(), command_agent(&["/bin/echo", "hi"]));
        let spec = select("script", Some(&config)).unwrap();
        assert_eq!(spec.argv, vec!["/bin/echo", "hi"]);
        assert_eq!(select("command", Some(&config)).unwrap().name, "script");
        let err = select("claude", Some(&config)).unwrap_err().to_string();
        assert!(err.contains("script"), "{err}");
    }

    #[test]
    fn rest_agents_take_defaults_and_need_a_token() {
        let mut config = Config::default();
        let mut agent = command_agent(&[]);
        agent.agent_type = AgentType::Perplexity;
        agent.command = None;
        agent.token = Some("t".into());
        config.agents.insert("pplx".into(), agent.clone());
        let spec = select("pplx", Some(&config)).unwrap();
        assert_eq!(spec.argv, ["https://api.perplexity.ai", "sonar-pro"]);
        assert_eq!(spec.token.as_deref(), Some("t"));
        agent.base_url = Some("http://127.0.0.1:1/v1".into());
        agent.model = Some("m".into());
        config.agents.insert("pplx".into(), agent.clone());
        assert_eq!(
            select("pplx", Some(&config)).unwrap().argv,
            ["http://127.0.0.1:1/v1", "m"]
        );
        if std::env::var("PERPLEXITY_API_KEY").is_err() {
            agent.token = None;
            config.agents.insert("pplx".into(), agent);
            let err = select("pplx", Some(&config)).unwrap_err().to_string();
            assert!(
                err.contains("PERPLEXITY_API_KEY") && err.contains("CONDUCTOR_AGENT_PPLX_TOKEN"),
                "{err}"
            );
        }
    }

    #[test]
    fn resume_forms_per_cli_type() {
        let argv = |t| cli_argv(t).unwrap();
        let claude = resume_argv(AgentType::Claude, &argv(AgentType::Claude), "s-1").unwrap();
        assert_eq!(claude[0], "claude");
        assert!(claude.ends_with(&["--resume".to_string(), "s-1".to_string()]));
        let codex = resume_argv(AgentType::Codex, &argv(AgentType::Codex), "th_9").unwrap();
        assert_eq!(
            codex,
            [
                "codex",
                "exec",
                "resume",
                "th_9",
                "--dangerously-bypass-approvals-and-sandbox",
                "--json",
                "-"
            ]
        );
        let gemini = resume_argv(AgentType::Gemini, &argv(AgentType::Gemini), "g").unwrap();
        assert!(gemini.ends_with(&["--resume".to_string(), "g".to_string()]));
        assert_eq!(resume_argv(AgentType::Command, &["x".into()], "s"), None);
        assert_eq!(resume_argv(AgentType::Codex, &["codex".into()], "s"), None);
        for bad in ["", "-x", "a b", "a\nb"] {
            assert_eq!(
                resume_argv(AgentType::Claude, &argv(AgentType::Claude), bad),
                None
            );
        }
    }

    #[test]
    fn session_only_for_the_same_agent_type() {
        let mut run = RunInfo::new_running("r", "p", "t", "claude", chrono::Utc::now());
        run.agent_session_id = Some("s-1".into());
        let claude = select("claude", None).unwrap();
        let codex = select("codex", None).unwrap();
        assert_eq!(
            session_to_resume(Some(&run), &claude).as_deref(),
            Some("s-1")
        );
        assert_eq!(session_to_resume(Some(&run), &codex), None);
        assert_eq!(session_to_resume(None, &claude), None);
        run.agent_session_id = None;
        assert_eq!(session_to_resume(Some(&run), &claude), None);
    }

    #[test]
    fn provider_keys() {
        assert!(keeps_key(AgentType::Codex, "openai_org_id"));
        assert!(!keeps_key(AgentType::Claude, "OPENAI_API_KEY"));
        assert!(is_provider_key("xai_api_key"));
    }

    #[test]
    fn models_on_command_lines() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            model_from_argv(&argv(&["codex", "exec", "-m", "gpt-5", "--json"])).as_deref(),
            Some("gpt-5")
        );
        assert_eq!(
            model_from_argv(&argv(&["codex", "-c", "model=\"o3\""])).as_deref(),
            Some("o3")
        );
        assert_eq!(
            model_from_argv(&argv(&["x", "--model=m1"])).as_deref(),
            Some("m1")
        );
        assert_eq!(model_from_argv(&argv(&["codex", "exec", "--json"])), None);
    }
}
