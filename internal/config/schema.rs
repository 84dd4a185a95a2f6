//! The config schema: the typed value a YAML or HCL config file deserializes into.
//!
//! Every struct denies unknown fields, so a typo is an error that names the key. Every field is
//! optional in the file; [`Default`] gives the documented defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use super::mask::Masked;

/// Default API bind host.
pub const DEFAULT_HOST: &str = "0.0.0.0";
/// Default API port.
pub const DEFAULT_PORT: u16 = 14355;
/// Default restart budget of a task's Ralph loop.
pub const DEFAULT_MAX_RESTARTS: u32 = 100;

/// A whole config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Agents by name.
    #[serde(deserialize_with = "deserialize_agents")]
    pub agents: BTreeMap<String, AgentConfig>,
    /// Defaults for runs and tasks.
    pub defaults: Defaults,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Outgoing run-event webhook.
    pub webhook: WebhookConfig,
    /// Where runs live.
    pub storage: StorageConfig,
    /// Message-bus behaviour.
    pub bus: BusConfig,
    /// Prices per model, to estimate the cost of runs whose agent reports none. There are no
    /// built-in prices.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pricing: BTreeMap<String, ModelPrice>,
}

/// What a model costs, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Per million input tokens (not read from the cache).
    pub input_per_mtok: f64,
    /// Per million output tokens.
    pub output_per_mtok: f64,
    /// Per million cached input tokens; without it cached tokens cost `input_per_mtok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
}

impl ModelPrice {
    /// The cost of `input` tokens (`cached` of them from the cache) and `output` tokens.
    pub fn cost(&self, input: u64, cached: u64, output: u64) -> f64 {
        let cached = cached.min(input);
        let per = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        per(input - cached, self.input_per_mtok)
            + per(
                cached,
                self.cached_input_per_mtok.unwrap_or(self.input_per_mtok),
            )
            + per(output, self.output_per_mtok)
    }
}

/// A task's spending limit; a task whose runs (children included) pass either figure is
/// stopped. Unset figures do not limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Most US dollars the task's runs may cost (known costs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
    /// Most tokens (input plus output) the task's runs may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

impl Budget {
    /// Whether the budget limits anything.
    pub fn is_set(&self) -> bool {
        self.max_cost_usd.is_some() || self.max_tokens.is_some()
    }
}

/// The kinds of agent Conductor can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentType {
    /// Claude Code CLI (`claude`).
    Claude,
    /// OpenAI Codex CLI (`codex`).
    Codex,
    /// Gemini CLI (`gemini`).
    Gemini,
    /// Perplexity chat-completions REST API.
    Perplexity,
    /// xAI chat-completions REST API.
    Xai,
    /// Any command; the prompt is written to its stdin.
    Command,
}

impl AgentType {
    /// Every agent type, in documentation order.
    pub const ALL: [AgentType; 6] = [
        AgentType::Claude,
        AgentType::Codex,
        AgentType::Gemini,
        AgentType::Perplexity,
        AgentType::Xai,
        AgentType::Command,
    ];

    /// The lower-case name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Claude => "claude",
            AgentType::Codex => "codex",
            AgentType::Gemini => "gemini",
            AgentType::Perplexity => "perplexity",
            AgentType::Xai => "xai",
            AgentType::Command => "command",
        }
    }

    /// Parses a type name (exact lower-case match).
    pub fn parse(name: &str) -> Option<AgentType> {
        AgentType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The binary a CLI agent type runs, `None` for REST and command agents.
    pub fn cli_binary(self) -> Option<&'static str> {
        match self {
            AgentType::Claude => Some("claude"),
            AgentType::Codex => Some("codex"),
            AgentType::Gemini => Some("gemini"),
            AgentType::Perplexity | AgentType::Xai | AgentType::Command => None,
        }
    }

    /// Whether the agent talks to a REST API in-process.
    pub fn is_rest(self) -> bool {
        matches!(self, AgentType::Perplexity | AgentType::Xai)
    }

    /// The type names joined for messages: `claude, codex, …`.
    pub fn names() -> String {
        AgentType::ALL.map(AgentType::as_str).join(", ")
    }
}

impl fmt::Display for AgentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured agent. `Debug` masks the token.
#[derive(Clone, PartialEq, Serialize)]
pub struct AgentConfig {
    /// What kind of agent this is; defaults to the map key when the key is a type name.
    #[serde(rename = "type")]
    pub agent_type: AgentType,
    /// API token (from the file, `token_file`, or `CONDUCTOR_AGENT_<NAME>_TOKEN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// File the token was read from (absolute after loading).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Model name (REST agents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// API endpoint (REST agents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Program and arguments (type `command` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

impl AgentConfig {
    /// An agent of `agent_type` with nothing else set: what a bare type name (`--agent
    /// claude` without a configured agent) runs.
    pub fn of_type(agent_type: AgentType) -> Self {
        AgentConfig {
            agent_type,
            token: None,
            token_file: None,
            model: None,
            base_url: None,
            command: None,
        }
    }
}

/// An agent as written in the file, before its type is defaulted from its name.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    #[serde(rename = "type", default)]
    agent_type: Option<AgentType>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
}

/// Deserializes the agent map, defaulting each missing `type` to the agent's name.
pub(crate) fn deserialize_agents<'de, D>(
    deserializer: D,
) -> Result<BTreeMap<String, AgentConfig>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = BTreeMap::<String, Option<RawAgent>>::deserialize(deserializer)?;
    let mut agents = BTreeMap::new();
    for (name, agent) in raw {
        let agent = agent.unwrap_or_default();
        let agent_type = match agent.agent_type.or_else(|| AgentType::parse(&name)) {
            Some(t) => t,
            None => {
                return Err(serde::de::Error::custom(format!(
                    "{MISSING_TYPE_MARKER}{name}{MISSING_TYPE_MARKER}agent `{name}` has no `type` \
                     and its name is not an agent type"
                )))
            }
        };
        agents.insert(
            name,
            AgentConfig {
                agent_type,
                token: agent.token,
                token_file: agent.token_file,
                model: agent.model,
                base_url: agent.base_url,
                command: agent.command,
            },
        );
    }
    Ok(agents)
}

/// Delimits the agent name in the error raised for an agent without a type, so the error
/// mapper can point the key path at `agents.<name>.type` (serde only knows it was inside
/// `agents`).
const MISSING_TYPE_MARKER: &str = "\u{1}";

/// Splits a "missing type" deserialization message into the agent name and the clean message.
pub(crate) fn split_missing_type(message: &str) -> Option<(String, String)> {
    let start = message.find(MISSING_TYPE_MARKER)?;
    let rest = &message[start + MISSING_TYPE_MARKER.len()..];
    let end = rest.find(MISSING_TYPE_MARKER)?;
    let name = rest[..end].to_string();
    let tail = &rest[end + MISSING_TYPE_MARKER.len()..];
    Some((name, tail.to_string()))
}

/// Defaults for runs and tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// Agent used when a task names none; must be a key of `agents` when agents are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Idle timeout of a run in seconds (0 = none); the file may also say `"30m"` or `"2h"`.
    #[serde(deserialize_with = "deserialize_seconds")]
    pub timeout: u64,
    /// Runs executing at once across the server (0 = unlimited).
    pub max_concurrent_runs: u32,
    /// Root tasks running at once (0 = unlimited).
    pub max_concurrent_root_tasks: u32,
    /// Restarts of a task's loop before it gives up.
    pub max_restarts: u32,
    /// The spending limit of a task that sets none of its own.
    #[serde(skip_serializing_if = "is_unset_budget")]
    pub budget: Budget,
}

fn is_unset_budget(budget: &Budget) -> bool {
    !budget.is_set()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            agent: None,
            timeout: 0,
            max_concurrent_runs: 0,
            max_concurrent_root_tasks: 0,
            max_restarts: DEFAULT_MAX_RESTARTS,
            budget: Budget::default(),
        }
    }
}

/// Accepts an integer number of seconds or a duration string such as `90s`, `30m`, `2h`, `1h30m`.
fn deserialize_seconds<'de, D>(deserializer: D) -> Result<u64, D::Error>
where
    D: Deserializer<'de>,
{
    struct Seconds;
    impl serde::de::Visitor<'_> for Seconds {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative number of seconds or a duration like \"30m\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| {
                E::custom(format!(
                    "invalid value: {v}, expected a non-negative duration"
                ))
            })
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
            if v.fract() == 0.0 && v >= 0.0 && v <= u64::MAX as f64 {
                Ok(v as u64)
            } else {
                Err(E::custom(format!(
                    "invalid value: {v}, expected a whole non-negative number of seconds"
                )))
            }
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            parse_duration_secs(v).ok_or_else(|| {
                E::custom(format!(
                    "invalid duration {v:?}, expected whole seconds as a number or with units, e.g. 90s, 30m, 2h or 1h30m"
                ))
            })
        }
    }
    deserializer.deserialize_any(Seconds)
}

/// Parses a duration of the config into whole seconds ([`crate::units::parse_duration`]'s
/// forms; sub-second parts are refused, the config counts in seconds).
pub fn parse_duration_secs(text: &str) -> Option<u64> {
    let duration = crate::units::parse_duration(text).ok()?;
    (duration.subsec_nanos() == 0).then_some(duration.as_secs())
}

/// The HTTP API. `Debug` masks the keys.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bind host.
    pub host: String,
    /// Base port (1..=65535); without an explicit port the server tries base..base+99.
    pub port: u16,
    /// Require `Authorization: Bearer <api_key>` (or the login cookie) on `/api/` and `/metrics`.
    pub auth_enabled: bool,
    /// The API key; `CONDUCTOR_API_KEY` overrides it and enables auth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Key for admin endpoints (self-update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_key: Option<String>,
    /// Origins allowed by CORS, each `scheme://host[:port]`.
    pub cors_origins: Vec<String>,
    /// Allow binding a non-loopback host without an API key.
    pub allow_remote_without_key: bool,
    /// Host names (optionally `name:port`) accepted in the `Host` header besides loopback
    /// names, IP addresses, the bind host and this machine's name (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            auth_enabled: false,
            api_key: None,
            admin_key: None,
            cors_origins: Vec::new(),
            allow_remote_without_key: false,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Run events a webhook can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A run started.
    RunStart,
    /// A run finished (any status).
    RunStop,
    /// A run's process died without a clean exit.
    RunCrash,
    /// A task's runs passed its budget (sent once, by the run that found it).
    BudgetExceeded,
}

impl WebhookEvent {
    /// The name used in config files and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::RunStart => "run_start",
            WebhookEvent::RunStop => "run_stop",
            WebhookEvent::RunCrash => "run_crash",
            WebhookEvent::BudgetExceeded => "budget_exceeded",
        }
    }
}

/// Outgoing webhook for run events (HMAC-SHA256 signed when a secret is set). `Debug` masks
/// the secret.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL; unset disables the webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Events to send; empty means all.
    pub events: Vec<WebhookEvent>,
    /// HMAC-SHA256 signing key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Where runs live.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// The runs root (absolute after loading); unset means `$HOME/run-agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs_dir: Option<PathBuf>,
    /// More roots scanned read-only for runs (absolute after loading).
    pub extra_roots: Vec<PathBuf>,
}

/// Message-bus behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// fsync every bus append (durable, slower).
    pub fsync: bool,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("agent_type", &self.agent_type)
            .field("token", &Masked(&self.token))
            .field("token_file", &self.token_file)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("command", &self.command)
            .finish()
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth_enabled", &self.auth_enabled)
            .field("api_key", &Masked(&self.api_key))
            .field("admin_key", &Masked(&self.admin_key))
            .field("cors_origins", &self.cors_origins)
            .field("allow_remote_without_key", &self.allow_remote_without_key)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &Masked(&self.secret))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_secs("0"), Some(0));
        assert_eq!(parse_duration_secs("90"), Some(90));
        assert_eq!(parse_duration_secs("90s"), Some(90));
        assert_eq!(parse_duration_secs("30m"), Some(1800));
        assert_eq!(parse_duration_secs("2h"), Some(7200));
        assert_eq!(parse_duration_secs("1h30m"), Some(5400));
        assert_eq!(parse_duration_secs("1d"), Some(86_400));
        assert_eq!(parse_duration_secs("m"), None);
        assert_eq!(parse_duration_secs("30"), Some(30));
        assert_eq!(parse_duration_secs("5x"), None);
        assert_eq!(parse_duration_secs("5m3"), None);
        assert_eq!(parse_duration_secs(""), None);
        assert_eq!(parse_duration_secs("-5m"), None);
    }

    #[test]
    fn agent_type_names_round_trip() {
        for t in AgentType::ALL {
            assert_eq!(AgentType::parse(t.as_str()), Some(t));
        }
        assert_eq!(AgentType::parse("Claude"), None);
    }

    #[test]
    fn debug_masks_secrets() {
        let mut config = Config::default();
        config.api.api_key = Some("api-SECRET-0123456789".into());
        config.api.admin_key = Some("admin-SECRET".into());
        config.webhook.secret = Some("hook-SECRET-0123456789".into());
        config.agents.insert(
            "x".into(),
            AgentConfig {
                token: Some("token-SECRET-0123456789".into()),
                ..AgentConfig::of_type(AgentType::Xai)
            },
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("Some(\"****6789\")"), "{debug}");
    }
}
