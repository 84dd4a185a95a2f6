//! The load pipeline: read → parse (YAML or HCL) → empty strings to unset → env overrides →
//! paths (`~`, relative to the file) → value rules → token files.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::check::check;
use super::error::{ConfigError, Format};
use super::paths::{resolve, PathProblem};
use super::schema::Config;
use super::{hcl, yaml};

/// Env var that sets `api.api_key` and enables auth.
pub const ENV_API_KEY: &str = "CONDUCTOR_API_KEY";

/// Env var that sets `api.admin_key`.
pub const ENV_ADMIN_KEY: &str = "CONDUCTOR_ADMIN_KEY";

/// Largest token file accepted; tokens are short, so anything bigger is a wrong path.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Loads, normalizes and validates the config at `path` (YAML, or HCL for `.hcl`).
///
/// `env` supplies environment variables (`HOME`, `CONDUCTOR_API_KEY`,
/// `CONDUCTOR_AGENT_<NAME>_TOKEN`); pass [`super::process_env`] for the real environment.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let format = Format::of(&path);
    parse_text(&text, &path, format, env)
}

/// Runs the pipeline on already-read text; `path` names the file in errors and anchors
/// relative paths.
pub(crate) fn parse_text(
    text: &str,
    path: &Path,
    format: Format,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let parsed = match format {
        Format::Yaml => yaml::parse(text),
        Format::Hcl => hcl::parse(text),
    };
    let mut config = parsed.map_err(|failure| failure.into_error(path.to_path_buf(), format))?;
    unset_empty_strings(&mut config);
    apply_env(&mut config, env);
    let base = path.parent().unwrap_or(Path::new("/"));
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    resolve_paths(&mut config, base, home.as_deref(), path, format)?;
    check(&config).map_err(|v| {
        let location = match format {
            Format::Yaml => yaml::locate(text, &v.key),
            Format::Hcl => hcl::locate_in_text(text, &v.key),
        };
        ConfigError::invalid(path.to_path_buf(), format, &v.key, location, v.message)
    })?;
    read_token_files(&mut config, path, format)?;
    Ok(config)
}

/// `""` means "not set" for every optional string, so both spellings compare equal.
fn unset_empty_strings(config: &mut Config) {
    fn unset(field: &mut Option<String>) {
        if field.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *field = None;
        }
    }
    fn unset_path(field: &mut Option<PathBuf>) {
        if field.as_deref().is_some_and(|p| p.as_os_str().is_empty()) {
            *field = None;
        }
    }
    for agent in config.agents.values_mut() {
        unset(&mut agent.token);
        unset_path(&mut agent.token_file);
        unset(&mut agent.model);
        unset(&mut agent.base_url);
    }
    unset(&mut config.defaults.agent);
    unset(&mut config.api.api_key);
    unset(&mut config.api.admin_key);
    unset(&mut config.webhook.url);
    unset(&mut config.webhook.secret);
    unset_path(&mut config.storage.runs_dir);
}

/// The env var that overrides an agent's token: `CONDUCTOR_AGENT_<NAME>_TOKEN`, NAME upper-cased
/// with every non-alphanumeric character replaced by `_`.
pub fn agent_token_env(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CONDUCTOR_AGENT_{name}_TOKEN")
}

/// Applies `CONDUCTOR_API_KEY`, `CONDUCTOR_ADMIN_KEY` and `CONDUCTOR_AGENT_<NAME>_TOKEN`
/// (trimmed; empty is ignored).
fn apply_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) {
    let get = |key: &str| {
        env(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(key) = get(ENV_API_KEY) {
        config.api.api_key = Some(key);
        config.api.auth_enabled = true;
    }
    if let Some(key) = get(ENV_ADMIN_KEY) {
        config.api.admin_key = Some(key);
    }
    for (name, agent) in config.agents.iter_mut() {
        if let Some(token) = get(&agent_token_env(name)) {
            agent.token = Some(token);
            agent.token_file = None;
        }
    }
}

fn resolve_paths(
    config: &mut Config,
    base: &Path,
    home: Option<&Path>,
    file: &Path,
    format: Format,
) -> Result<(), ConfigError> {
    let fix = |p: &Path, key: &str| {
        resolve(p, base, home).map_err(|PathProblem::NoHome| ConfigError::NoHome {
            path: file.to_path_buf(),
            key: super::keys::display_key(key, format),
        })
    };
    if let Some(dir) = &config.storage.runs_dir {
        config.storage.runs_dir = Some(fix(dir, "storage.runs_dir")?);
    }
    for (i, root) in config.storage.extra_roots.iter_mut().enumerate() {
        if !root.as_os_str().is_empty() {
            *root = fix(root, &format!("storage.extra_roots[{i}]"))?;
        }
    }
    for (name, agent) in config.agents.iter_mut() {
        if let Some(token_file) = &agent.token_file {
            agent.token_file = Some(fix(token_file, &format!("agents.{name}.token_file"))?);
        }
        // A program given as a path (`./my-agent.sh`, `~/bin/x`) resolves like other paths; a
        // bare name is looked up on PATH when the agent runs.
        if let Some(program) = agent.command.as_mut().and_then(|c| c.first_mut()) {
            if program.contains('/') || program == "~" {
                let resolved = fix(
                    Path::new(program.as_str()),
                    &format!("agents.{name}.command"),
                )?;
                *program = resolved.to_string_lossy().into_owned();
            }
        }
    }
    Ok(())
}

/// Reads every `token_file` (trimmed) into `token`, keeping the resolved path.
fn read_token_files(config: &mut Config, file: &Path, format: Format) -> Result<(), ConfigError> {
    for (name, agent) in config.agents.iter_mut() {
        let Some(token_file) = &agent.token_file else {
            continue;
        };
        let token = read_token(token_file).map_err(|reason| ConfigError::TokenFile {
            path: file.to_path_buf(),
            key: super::keys::display_key(&format!("agents.{name}.token_file"), format),
            token_file: token_file.clone(),
            reason,
        })?;
        agent.token = Some(token);
    }
    Ok(())
}

/// Reads a secret file: a non-empty regular file of at most 64 KiB, trimmed.
pub(super) fn read_token(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_string(),
        _ => e.to_string(),
    })?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_string());
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(format!("it is larger than {MAX_TOKEN_FILE_BYTES} bytes"));
    }
    let token = text.trim();
    if token.is_empty() {
        return Err("it is empty".to_string());
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        AgentConfig, AgentType, ApiConfig, BusConfig, Defaults, StorageConfig, WebhookConfig,
        WebhookEvent,
    };
    use std::collections::BTreeMap;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
    }

    fn home_env(key: &str) -> Option<String> {
        (key == "HOME").then(|| "/home/u".to_string())
    }

    /// Writes `text` as `name` in a temp dir and loads it with `env`.
    fn load_text(
        name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (tempfile::TempDir, Result<Config, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let result = load(&path, env);
        (dir, result)
    }

    /// The error message for `text`, checked to name the file.
    fn error_text(name: &str, text: &str) -> String {
        let (dir, result) = load_text(name, text, &home_env);
        let message = result.expect_err("config should be rejected").to_string();
        let file = dir.path().join(name).display().to_string();
        assert!(
            message.contains(&file),
            "message does not name {file}: {message}"
        );
        assert!(
            !message.contains('\n'),
            "message is not one paragraph: {message}"
        );
        message
    }

    fn full_expected() -> Config {
        let dir = fixtures();
        let agent = AgentConfig::of_type;
        let mut agents = BTreeMap::new();
        agents.insert("claude".to_string(), agent(AgentType::Claude));
        agents.insert(
            "fast".to_string(),
            AgentConfig {
                token: Some("codex-token-from-file-0123456789".into()),
                token_file: Some(dir.join("fast.key")),
                ..agent(AgentType::Codex)
            },
        );
        agents.insert(
            "pplx".to_string(),
            AgentConfig {
                token: Some("pplx-token-0123456789".into()),
                model: Some("sonar-pro".into()),
                base_url: Some("https://api.perplexity.ai".into()),
                ..agent(AgentType::Perplexity)
            },
        );
        agents.insert(
            "script".to_string(),
            AgentConfig {
                command: Some(vec![
                    dir.join("my-agent.sh").display().to_string(),
                    "--flag".into(),
                ]),
                ..agent(AgentType::Command)
            },
        );
        Config {
            agents,
            defaults: Defaults {
                agent: Some("claude".into()),
                timeout: 1800,
                max_concurrent_runs: 4,
                max_concurrent_root_tasks: 2,
                max_restarts: 5,
                budget: crate::config::Budget {
                    max_cost_usd: Some(2.5),
                    max_tokens: Some(1_000_000),
                },
            },
            api: ApiConfig {
                host: "127.0.0.1".into(),
                port: 15000,
                auth_enabled: true,
                api_key: Some("api-key-0123456789".into()),
                admin_key: Some("admin-key-0123456789".into()),
                cors_origins: vec![
                    "http://localhost:3000".into(),
                    "https://conductor.example.com".into(),
                ],
                allow_remote_without_key: false,
                allowed_hosts: vec!["conductor.example.com".into()],
            },
            webhook: WebhookConfig {
                url: Some("https://hooks.example.com/conductor".into()),
                events: vec![
                    WebhookEvent::RunStart,
                    WebhookEvent::RunStop,
                    WebhookEvent::RunCrash,
                ],
                secret: Some("hook-secret-0123456789".into()),
            },
            storage: StorageConfig {
                runs_dir: Some(dir.join("runs")),
                extra_roots: vec!["/home/u/old-runs".into(), "/srv/legacy-runs".into()],
            },
            bus: BusConfig { fsync: true },
            pricing: [
                (
                    "claude-sonnet-4-5".to_string(),
                    crate::config::ModelPrice {
                        input_per_mtok: 3.0,
                        output_per_mtok: 15.0,
                        cached_input_per_mtok: None,
                    },
                ),
                (
                    "gpt-5".to_string(),
                    crate::config::ModelPrice {
                        input_per_mtok: 1.25,
                        output_per_mtok: 10.0,
                        cached_input_per_mtok: Some(0.125),
                    },
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn every_field_parses_equal_in_yaml_and_hcl() {
        let yaml = load(&fixtures().join("full.yaml"), &home_env).unwrap();
        let hcl = load(&fixtures().join("full.hcl"), &home_env).unwrap();
        assert_eq!(yaml, full_expected());
        assert_eq!(hcl, full_expected());
        let defaults = Config::default();
        assert_ne!(yaml.defaults, defaults.defaults);
        assert_ne!(yaml.api, defaults.api);
        assert_ne!(yaml.webhook, defaults.webhook);
        assert_ne!(yaml.storage, defaults.storage);
        assert_ne!(yaml.bus, defaults.bus);
    }

    #[test]
    fn tilde_and_relative_paths_resolve() {
        let text = "storage:\n  runs_dir: ./r\n  extra_roots: [\"~/x\", ../y]\n";
        let (dir, result) = load_text("c.yaml", text, &home_env);
        let config = result.unwrap();
        assert_eq!(config.storage.runs_dir, Some(dir.path().join("r")));
        assert_eq!(
            config.storage.extra_roots,
            vec![PathBuf::from("/home/u/x"), dir.path().join("../y")]
        );
        let (_dir, result) = load_text("c.yaml", "storage:\n  runs_dir: ~/r\n", &|_| None);
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains("`storage.runs_dir` uses `~` but HOME is not set"),
            "{message}"
        );
    }

    #[test]
    fn env_overrides_tokens_and_api_key() {
        let env = |key: &str| match key {
            "CONDUCTOR_AGENT_MY_AGENT_TOKEN" => Some(" from-env \n".to_string()),
            "CONDUCTOR_API_KEY" => Some("key-from-env".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        // The env token replaces a token_file that does not even exist.
        let text = "agents:\n  my-agent:\n    type: xai\n    token_file: missing.key\n";
        let (_dir, result) = load_text("c.yaml", text, &env);
        let config = result.unwrap();
        assert_eq!(config.agents["my-agent"].token.as_deref(), Some("from-env"));
        assert_eq!(config.agents["my-agent"].token_file, None);
        assert_eq!(config.api.api_key.as_deref(), Some("key-from-env"));
        assert!(config.api.auth_enabled);
        assert_eq!(
            agent_token_env("my-agent.v2"),
            "CONDUCTOR_AGENT_MY_AGENT_V2_TOKEN"
        );
    }

    #[test]
    fn token_file_is_read_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "  tok\n").unwrap();
        let path = dir.path().join("c.hcl");
        std::fs::write(&path, "agent \"gemini\" {\n  token_file = \"k\"\n}\n").unwrap();
        let config = load(&path, &home_env).unwrap();
        assert_eq!(config.agents["gemini"].token.as_deref(), Some("tok"));
        assert_eq!(
            config.agents["gemini"].token_file,
            Some(dir.path().join("k"))
        );
    }

    #[test]
    fn empty_strings_mean_unset() {
        let text = "api:\n  api_key: \"\"\nwebhook:\n  url: \"\"\ndefaults:\n  agent: \"\"\n";
        let (_dir, result) = load_text("c.yaml", text, &home_env);
        assert_eq!(result.unwrap(), Config::default());
    }

    #[test]
    fn timeout_accepts_seconds_and_durations() {
        for (value, secs) in [("90", 90), ("\"2h\"", 7200), ("\"1h30m\"", 5400), ("0", 0)] {
            let (_dir, result) = load_text(
                "c.yaml",
                &format!("defaults:\n  timeout: {value}\n"),
                &home_env,
            );
            assert_eq!(result.unwrap().defaults.timeout, secs, "{value}");
        }
        let message = error_text("c.yaml", "defaults:\n  timeout: soon\n");
        assert!(message.contains("`defaults.timeout`"), "{message}");
        assert!(message.contains("\"30m\""), "{message}");
        let message = error_text("c.yaml", "defaults:\n  timeout: -5\n");
        assert!(message.contains("non-negative"), "{message}");
    }

    #[test]
    fn pricing_and_budget_errors_name_the_key() {
        let message = error_text(
            "c.yaml",
            "pricing:\n  gpt-5: {input_per_mtok: -1, output_per_mtok: 2}\n",
        );
        assert!(
            message.contains("pricing.gpt-5.input_per_mtok"),
            "{message}"
        );
        assert!(message.contains("non-negative"), "{message}");
        let message = error_text("c.yaml", "pricing:\n  gpt-5: {input_per_mtok: 1}\n");
        assert!(message.contains("output_per_mtok"), "{message}");
        let message = error_text(
            "c.yaml",
            "pricing:\n  gpt-5: {input_per_mtok: 1, output_per_mtok: 1, per_call: 3}\n",
        );
        assert!(message.contains("per_call"), "{message}");
        assert!(message.contains("cached_input_per_mtok"), "{message}");
        let message = error_text("c.yaml", "defaults:\n  budget: {max_cost_usd: 0}\n");
        assert!(
            message.contains("defaults.budget.max_cost_usd"),
            "{message}"
        );
        let message = error_text("c.yaml", "defaults:\n  budget: {max_tokens: lots}\n");
        assert!(message.contains("defaults.budget.max_tokens"), "{message}");
        let message = error_text("c.hcl", "pricing \"a\" \"b\" {\n}\n");
        assert!(message.contains("exactly one label"), "{message}");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let message = error_text("c.yaml", "api:\n  host: x\n   port: 3\n");
        assert!(message.contains("YAML syntax error (line 3"), "{message}");
        let message = error_text("c.hcl", "api {\n  port = \n}\n");
        assert!(message.contains("HCL syntax error (line 2"), "{message}");
    }

    #[test]
    fn unknown_keys_name_key_line_and_allowed_keys() {
        let message = error_text("c.yaml", "api:\n  prot: 1\n");
        assert!(
            message.contains("`api.prot` (line 2, column 3)"),
            "{message}"
        );
        assert!(message.contains("unknown field `prot`"), "{message}");
        assert!(
            message.contains("allowed: a map with the keys host, port"),
            "{message}"
        );
        let message = error_text("c.yaml", "sse: {}\n");
        assert!(message.contains("`sse` (line 1"), "{message}");
        assert!(
            message.contains("agents, defaults, api, webhook, storage, bus"),
            "{message}"
        );
        let message = error_text(
            "c.hcl",
            "agent \"fast\" {\n  type = \"codex\"\n  tokn = \"x\"\n}\n",
        );
        assert!(message.contains("`agent.fast.tokn` (line 3"), "{message}");
        assert!(message.contains("token_file"), "{message}");
    }

    #[test]
    fn wrong_types_name_key_and_allowed_values() {
        let message = error_text("c.yaml", "api:\n  port: abc\n");
        assert!(message.contains("`api.port` (line 2"), "{message}");
        assert!(
            message.contains("allowed: an integer port from 1 to 65535"),
            "{message}"
        );
        let message = error_text("c.hcl", "bus {\n  fsync = \"yes\"\n}\n");
        assert!(message.contains("`bus.fsync` (line 2"), "{message}");
        assert!(message.contains("true or false"), "{message}");
        let message = error_text("c.yaml", "agents:\n  a:\n    type: gpt\n");
        assert!(message.contains("`agents.a.type`"), "{message}");
        assert!(
            message.contains("claude, codex, gemini, perplexity, xai, command"),
            "{message}"
        );
        let message = error_text("c.yaml", "webhook:\n  events: [run_end]\n");
        assert!(message.contains("`webhook.events[0]`"), "{message}");
        assert!(
            message.contains("run_start, run_stop, run_crash"),
            "{message}"
        );
    }

    #[test]
    fn bad_values_name_key_line_and_allowed_values() {
        let message = error_text("c.yaml", "api:\n  host: x\n  port: 0\n");
        assert!(message.contains("`api.port` (line 3"), "{message}");
        assert!(message.contains("1 to 65535"), "{message}");
        let message = error_text("c.yaml", "api:\n  port: 70000\n");
        assert!(message.contains("`api.port` (line 2"), "{message}");
        let message = error_text("c.hcl", "api {\n  cors_origins = [\"example.com\"]\n}\n");
        assert!(
            message.contains("`api.cors_origins[0]` (line 2"),
            "{message}"
        );
        assert!(message.contains("scheme://host[:port]"), "{message}");
        let message = error_text("c.yaml", "webhook:\n  url: ftp://x\n");
        assert!(message.contains("`webhook.url` (line 2"), "{message}");
        let message = error_text(
            "c.yaml",
            "agents:\n  claude: {}\ndefaults:\n  agent: codex\n",
        );
        assert!(message.contains("`defaults.agent` (line 4"), "{message}");
        assert!(message.contains("configured: claude"), "{message}");
        let message = error_text("c.yaml", "agents:\n  s:\n    type: command\n");
        assert!(message.contains("`agents.s.command`"), "{message}");
        let message = error_text(
            "c.yaml",
            "agents:\n  x:\n    type: xai\n    token: a\n    token_file: b\n",
        );
        assert!(
            message.contains("`agents.x.token_file` (line 5"),
            "{message}"
        );
        assert!(message.contains("not both"), "{message}");
    }

    #[test]
    fn missing_token_file_names_agent_path_and_file() {
        let (dir, result) = load_text(
            "c.yaml",
            "agents:\n  fast:\n    type: codex\n    token_file: keys/codex\n",
            &home_env,
        );
        let message = result.unwrap_err().to_string();
        assert!(message.contains(&dir.path().join("c.yaml").display().to_string()));
        assert!(message.contains("`agents.fast.token_file`"), "{message}");
        assert!(message.contains(&dir.path().join("keys/codex").display().to_string()));
        assert!(message.contains("does not exist"), "{message}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), " \n").unwrap();
        let path = dir.path().join("c.hcl");
        std::fs::write(
            &path,
            "agent \"fast\" {\n  type = \"codex\"\n  token_file = \"empty\"\n}\n",
        )
        .unwrap();
        let message = load(&path, &home_env).unwrap_err().to_string();
        assert!(message.contains("`agent.fast.token_file`"), "{message}");
        assert!(message.contains("it is empty"), "{message}");
        std::fs::write(
            &path,
            "agent \"fast\" {\n  type = \"codex\"\n  token_file = \".\"\n}\n",
        )
        .unwrap();
        let message = load(&path, &home_env).unwrap_err().to_string();
        assert!(message.contains("not a regular file"), "{message}");
    }

    #[test]
    fn unreadable_file_is_named() {
        let message = load(Path::new("/nonexistent/dir/c.yaml"), &home_env)
            .unwrap_err()
            .to_string();
        assert!(message.contains("/nonexistent/dir/c.yaml"), "{message}");
    }
}
