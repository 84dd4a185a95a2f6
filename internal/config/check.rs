//! Value rules the schema's types cannot express (cross-field and format checks).

use super::schema::{AgentType, Budget, Config};

/// A rule a loaded config breaks: the canonical key path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub key: String,
    pub message: String,
}

fn violation(key: impl Into<String>, message: impl Into<String>) -> Result<(), Violation> {
    Err(Violation {
        key: key.into(),
        message: message.into(),
    })
}

/// Checks every value rule; the first violation wins.
pub(crate) fn check(config: &Config) -> Result<(), Violation> {
    check_agents(config)?;
    check_defaults(config)?;
    check_api(config)?;
    check_webhook(config)?;
    check_storage(config)?;
    check_pricing(config)?;
    check_budget(&config.defaults.budget, "defaults.budget")
}

fn check_pricing(config: &Config) -> Result<(), Violation> {
    for (model, price) in &config.pricing {
        if model.trim().is_empty() {
            return violation("pricing", "model names must not be empty");
        }
        for (field, value) in [
            ("input_per_mtok", Some(price.input_per_mtok)),
            ("output_per_mtok", Some(price.output_per_mtok)),
            ("cached_input_per_mtok", price.cached_input_per_mtok),
        ] {
            if let Some(value) = value.filter(|v| !v.is_finite() || *v < 0.0) {
                return violation(
                    format!("pricing.{model}.{field}"),
                    format!(
                        "{value} is not a non-negative number of US dollars per million tokens"
                    ),
                );
            }
        }
    }
    Ok(())
}

/// A budget's figures must be positive (a zero budget would stop every task at once).
pub(crate) fn check_budget(budget: &Budget, key: &str) -> Result<(), Violation> {
    if let Some(cost) = budget.max_cost_usd.filter(|c| !c.is_finite() || *c <= 0.0) {
        return violation(
            format!("{key}.max_cost_usd"),
            format!("{cost} is not a positive number of US dollars"),
        );
    }
    if budget.max_tokens == Some(0) {
        return violation(
            format!("{key}.max_tokens"),
            "0 is not a positive number of tokens",
        );
    }
    Ok(())
}

fn check_agents(config: &Config) -> Result<(), Violation> {
    for (name, agent) in &config.agents {
        let key = format!("agents.{name}");
        if name.trim().is_empty() {
            return violation("agents", "agent names must not be empty");
        }
        match (&agent.command, agent.agent_type) {
            (None, AgentType::Command) => {
                return violation(
                    format!("{key}.command"),
                    "an agent of type command needs `command` (program, then arguments)",
                )
            }
            (Some(cmd), AgentType::Command) => {
                if cmd.first().is_none_or(|program| program.trim().is_empty()) {
                    return violation(
                        format!("{key}.command"),
                        "`command` must start with a non-empty program name",
                    );
                }
            }
            (Some(_), other) => {
                return violation(
                    format!("{key}.command"),
                    format!(
                        "`command` is only allowed for type command (this agent is type {other})"
                    ),
                )
            }
            (None, _) => {}
        }
        if agent.token.is_some() && agent.token_file.is_some() {
            return violation(
                format!("{key}.token_file"),
                "set either token or token_file, not both",
            );
        }
        if let Some(url) = &agent.base_url {
            if !is_http_url(url) {
                return violation(
                    format!("{key}.base_url"),
                    format!("{url:?} is not an http:// or https:// URL"),
                );
            }
        }
    }
    Ok(())
}

fn check_defaults(config: &Config) -> Result<(), Violation> {
    let Some(agent) = &config.defaults.agent else {
        return Ok(());
    };
    if config.agents.is_empty() {
        if AgentType::parse(agent).is_none() {
            return violation(
                "defaults.agent",
                format!(
                    "{agent:?} is not an agent type, and no agents are configured to name it \
                     (types: {})",
                    AgentType::names()
                ),
            );
        }
    } else if !config.agents.contains_key(agent) {
        let names: Vec<&str> = config.agents.keys().map(String::as_str).collect();
        return violation(
            "defaults.agent",
            format!(
                "{agent:?} is not a configured agent (configured: {})",
                names.join(", ")
            ),
        );
    }
    Ok(())
}

fn check_api(config: &Config) -> Result<(), Violation> {
    let api = &config.api;
    if api.port == 0 {
        return violation("api.port", "port 0 is not allowed");
    }
    if api.host.trim().is_empty() || api.host.chars().any(char::is_whitespace) {
        return violation(
            "api.host",
            format!("{:?} is not a host name or address", api.host),
        );
    }
    for (i, host) in api.allowed_hosts.iter().enumerate() {
        if super::host_name::parse_allowed(host).is_none() {
            return violation(
                format!("api.allowed_hosts[{i}]"),
                format!("{host:?} is not a host name with an optional :port (no scheme, no path)"),
            );
        }
    }
    for (i, origin) in api.cors_origins.iter().enumerate() {
        if let Err(why) = check_origin(origin) {
            return violation(
                format!("api.cors_origins[{i}]"),
                format!("{origin:?} {why}"),
            );
        }
    }
    Ok(())
}

fn check_webhook(config: &Config) -> Result<(), Violation> {
    if let Some(url) = &config.webhook.url {
        if !is_http_url(url) {
            return violation(
                "webhook.url",
                format!("{url:?} is not an http:// or https:// URL"),
            );
        }
    }
    Ok(())
}

fn check_storage(config: &Config) -> Result<(), Violation> {
    for (i, root) in config.storage.extra_roots.iter().enumerate() {
        if root.as_os_str().is_empty() {
            return violation(
                format!("storage.extra_roots[{i}]"),
                "paths must not be empty",
            );
        }
    }
    Ok(())
}

/// `http://host…` or `https://host…` with a non-empty host and no whitespace.
pub(crate) fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = match lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    {
        Some(rest) => rest,
        None => return false,
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':') && !url.chars().any(char::is_whitespace)
}

/// Checks `scheme://host[:port]`, explaining what is wrong.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err("has no scheme:// (expected scheme://host[:port])");
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    {
        return Err("has an invalid scheme");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("must not have a path, query or fragment (expected scheme://host[:port])");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    // A bracketed IPv6 host without a port has its last colon inside the brackets.
    let (host, port) = if host.starts_with('[') && !host.ends_with(']') {
        (rest, None)
    } else {
        (host, port)
    };
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err("has no host (expected scheme://host[:port])");
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err("has an invalid port (expected 1..65535)"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    fn key_of(config: &Config) -> String {
        check(config).unwrap_err().key
    }

    #[test]
    fn urls() {
        assert!(is_http_url("https://example.com/hook"));
        assert!(is_http_url("http://127.0.0.1:9000"));
        assert!(!is_http_url("ftp://example.com"));
        assert!(!is_http_url("https://"));
        assert!(!is_http_url("https:// x"));
        assert!(!is_http_url("example.com"));
    }

    #[test]
    fn origins() {
        assert!(check_origin("https://example.com").is_ok());
        assert!(check_origin("http://localhost:3000").is_ok());
        assert!(check_origin("http://[::1]:3000").is_ok());
        assert!(check_origin("http://[::1]").is_ok());
        assert!(check_origin("example.com").is_err());
        assert!(check_origin("https://example.com/").is_err());
        assert!(check_origin("https://example.com:99999").is_err());
        assert!(check_origin("https://:80").is_err());
        assert!(check_origin("*").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(check(&Config::default()), Ok(()));
    }

    #[test]
    fn command_rules() {
        let mut config = Config::default();
        config
            .agents
            .insert("s".into(), AgentConfig::of_type(AgentType::Command));
        assert_eq!(key_of(&config), "agents.s.command");
        config.agents.get_mut("s").unwrap().command = Some(vec![]);
        assert_eq!(key_of(&config), "agents.s.command");
        config.agents.get_mut("s").unwrap().command = Some(vec!["./a.sh".into()]);
        assert_eq!(check(&config), Ok(()));
        let mut claude = AgentConfig::of_type(AgentType::Claude);
        claude.command = Some(vec!["x".into()]);
        config.agents.insert("c".into(), claude);
        let err = check(&config).unwrap_err();
        assert_eq!(err.key, "agents.c.command");
        assert!(err.message.contains("only allowed for type command"));
    }

    #[test]
    fn token_and_token_file_conflict() {
        let mut config = Config::default();
        let mut a = AgentConfig::of_type(AgentType::Xai);
        a.token = Some("t".into());
        a.token_file = Some("/k".into());
        config.agents.insert("x".into(), a);
        assert_eq!(key_of(&config), "agents.x.token_file");
    }

    #[test]
    fn default_agent_must_exist() {
        let mut config = Config::default();
        config.defaults.agent = Some("claude".into());
        assert_eq!(check(&config), Ok(()), "a type is fine without agents");
        config.defaults.agent = Some("nope".into());
        assert_eq!(key_of(&config), "defaults.agent");
        config
            .agents
            .insert("fast".into(), AgentConfig::of_type(AgentType::Codex));
        config.defaults.agent = Some("claude".into());
        let err = check(&config).unwrap_err();
        assert!(err.message.contains("configured: fast"), "{}", err.message);
        config.defaults.agent = Some("fast".into());
        assert_eq!(check(&config), Ok(()));
    }

    #[test]
    fn api_and_webhook_rules() {
        let mut config = Config::default();
        config.api.port = 0;
        assert_eq!(key_of(&config), "api.port");
        config.api.port = 1;
        config.api.cors_origins = vec!["https://ok.example".into(), "bad".into()];
        assert_eq!(key_of(&config), "api.cors_origins[1]");
        config.api.cors_origins.clear();
        config.api.allowed_hosts = vec!["ok.example:80".into(), "https://bad.example".into()];
        assert_eq!(key_of(&config), "api.allowed_hosts[1]");
        config.api.allowed_hosts.clear();
        config.webhook.url = Some("mailto:x".into());
        assert_eq!(key_of(&config), "webhook.url");
    }
}
