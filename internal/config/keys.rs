//! What each config key accepts, for error messages; and how a key path is spelled per format.

use super::error::Format;
use super::schema::AgentType;

/// Top-level sections (YAML spelling).
pub const SECTIONS: [&str; 7] = [
    "agents", "defaults", "api", "webhook", "storage", "bus", "pricing",
];
/// Keys of one model's price.
pub const PRICE_KEYS: [&str; 3] = ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok"];
/// Keys of a budget.
pub const BUDGET_KEYS: [&str; 2] = ["max_cost_usd", "max_tokens"];
/// Keys of one agent.
pub const AGENT_KEYS: [&str; 6] = [
    "type",
    "token",
    "token_file",
    "model",
    "base_url",
    "command",
];
/// Keys of `defaults`.
pub const DEFAULTS_KEYS: [&str; 6] = [
    "agent",
    "timeout",
    "max_concurrent_runs",
    "max_concurrent_root_tasks",
    "max_restarts",
    "budget",
];
/// Keys of `api`.
pub const API_KEYS: [&str; 8] = [
    "host",
    "port",
    "auth_enabled",
    "api_key",
    "admin_key",
    "cors_origins",
    "allow_remote_without_key",
    "allowed_hosts",
];
/// Keys of `webhook`.
pub const WEBHOOK_KEYS: [&str; 3] = ["url", "events", "secret"];
/// Keys of `storage`.
pub const STORAGE_KEYS: [&str; 2] = ["runs_dir", "extra_roots"];
/// Keys of `bus`.
pub const BUS_KEYS: [&str; 1] = ["fsync"];

/// Spells a canonical (YAML) key path the way the file's format writes it: in HCL, agents are
/// `agent "<name>"` blocks, so `agents.fast.token` is shown as `agent.fast.token`.
pub fn display_key(key: &str, format: Format) -> String {
    match format {
        Format::Yaml => key.to_string(),
        Format::Hcl => match key.strip_prefix("agents") {
            Some(rest) if rest.is_empty() || rest.starts_with('.') || rest.starts_with('[') => {
                format!("agent{rest}")
            }
            _ => key.to_string(),
        },
    }
}

/// The names along a canonical dotted key path, list indices dropped:
/// `agents.fast.command[0]` is `["agents", "fast", "command"]`.
pub(crate) fn key_segments(key: &str) -> Vec<&str> {
    key.split('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Describes what `key` (canonical dotted path; list indices allowed) accepts.
pub fn allowed(key: &str, format: Format) -> String {
    let segments = key_segments(key);
    let keys = |list: &[&str]| format!("a map with the keys {}", list.join(", "));
    match segments.as_slice() {
        [] => match format {
            Format::Yaml => format!("top-level keys {}", SECTIONS.join(", ")),
            Format::Hcl => {
                "`agent \"<name>\" { … }` and `pricing \"<model>\" { … }` blocks and the blocks defaults, api, webhook, storage, bus"
                    .to_string()
            }
        },
        ["agents"] => match format {
            Format::Yaml => format!(
                "a map from agent name to an agent ({})",
                keys(&AGENT_KEYS)
            ),
            Format::Hcl => format!(
                "`agent \"<name>\" {{ … }}` blocks with exactly one label, holding {}",
                AGENT_KEYS.join(", ")
            ),
        },
        ["agents", _] => keys(&AGENT_KEYS),
        ["agents", _, "type"] => format!(
            "one of {} (may be omitted when the agent's name is a type)",
            AgentType::names()
        ),
        ["agents", _, "token"] => "a string (the API token)".to_string(),
        ["agents", _, "token_file"] => {
            "a path to a readable, non-empty file (`~` and paths relative to the config file allowed); not together with token".to_string()
        }
        ["agents", _, "model"] => "a string (model name)".to_string(),
        ["agents", _, "base_url"] => "an http:// or https:// URL".to_string(),
        ["agents", _, "command"] => {
            "a non-empty list of strings (program, then arguments), only for type command".to_string()
        }
        ["agents", ..] => keys(&AGENT_KEYS),
        ["defaults"] => keys(&DEFAULTS_KEYS),
        ["defaults", "agent"] => {
            "the name of an agent configured under agents (or, with no agents configured, an agent type)".to_string()
        }
        ["defaults", "timeout"] => {
            "a non-negative number of seconds or a duration such as \"90s\", \"30m\", \"2h\" (0 = no idle timeout)".to_string()
        }
        ["defaults", "max_concurrent_runs" | "max_concurrent_root_tasks"] => {
            "a non-negative integer (0 = unlimited)".to_string()
        }
        ["defaults", "max_restarts"] => "a non-negative integer".to_string(),
        ["defaults", "budget"] => keys(&BUDGET_KEYS),
        ["defaults", "budget", "max_cost_usd"] => {
            "a positive number of US dollars, e.g. 2.5".to_string()
        }
        ["defaults", "budget", "max_tokens"] => "a positive integer".to_string(),
        ["defaults", "budget", ..] => keys(&BUDGET_KEYS),
        ["pricing"] => format!(
            "a map from model name to its price ({})",
            keys(&PRICE_KEYS)
        ),
        ["pricing", _] => keys(&PRICE_KEYS),
        ["pricing", _, "input_per_mtok" | "output_per_mtok" | "cached_input_per_mtok"] => {
            "a non-negative number of US dollars per million tokens".to_string()
        }
        ["pricing", ..] => keys(&PRICE_KEYS),
        ["api"] => keys(&API_KEYS),
        ["api", "host"] => "a host name or IP address to bind, e.g. 127.0.0.1 or 0.0.0.0".to_string(),
        ["api", "port"] => "an integer port from 1 to 65535".to_string(),
        ["api", "auth_enabled" | "allow_remote_without_key"] => "true or false".to_string(),
        ["api", "api_key" | "admin_key"] => "a string".to_string(),
        ["api", "cors_origins"] => {
            "a list of origins of the form scheme://host[:port], e.g. https://example.com:8443".to_string()
        }
        ["api", "allowed_hosts"] => {
            "a list of host names, each optionally with :port, e.g. conductor.example.com or devbox:14355 (no scheme, no path)".to_string()
        }
        ["webhook"] => keys(&WEBHOOK_KEYS),
        ["webhook", "url"] => "an http:// or https:// URL".to_string(),
        ["webhook", "events"] => "a list of run_start, run_stop, run_crash, budget_exceeded (empty = all)".to_string(),
        ["webhook", "secret"] => "a string (HMAC-SHA256 key)".to_string(),
        ["storage"] => keys(&STORAGE_KEYS),
        ["storage", "runs_dir"] => {
            "a directory path (`~` and paths relative to the config file allowed)".to_string()
        }
        ["storage", "extra_roots"] => {
            "a list of directory paths (`~` and paths relative to the config file allowed)".to_string()
        }
        ["bus"] => keys(&BUS_KEYS),
        ["bus", "fsync"] => "true or false".to_string(),
        [section, ..] if SECTIONS.contains(section) => match *section {
            "defaults" => keys(&DEFAULTS_KEYS),
            "api" => keys(&API_KEYS),
            "webhook" => keys(&WEBHOOK_KEYS),
            "storage" => keys(&STORAGE_KEYS),
            "pricing" => keys(&PRICE_KEYS),
            _ => keys(&BUS_KEYS),
        },
        _ => allowed("", format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_values_per_key() {
        assert!(allowed("api.port", Format::Yaml).contains("1 to 65535"));
        assert!(allowed("agents.x.type", Format::Yaml).contains("perplexity"));
        assert!(allowed("api.cors_origins[2]", Format::Yaml).contains("scheme://host"));
        assert!(allowed("api.nope", Format::Yaml).contains("cors_origins"));
        assert!(allowed("nope", Format::Yaml).contains("webhook"));
        assert!(allowed("", Format::Hcl).contains("agent \"<name>\""));
    }

    #[test]
    fn hcl_spells_agents_as_blocks() {
        assert_eq!(
            display_key("agents.fast.token", Format::Hcl),
            "agent.fast.token"
        );
        assert_eq!(
            display_key("agents.fast.token", Format::Yaml),
            "agents.fast.token"
        );
        assert_eq!(display_key("api.port", Format::Hcl), "api.port");
    }
}
