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

/// Applies `CONDUCTOR_API_KEY` and `CONDUCTOR_AGENT_<NAME>_TOKEN` (trimmed; empty is ignored).
fn apply_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) {
    let get = |key: &str| env(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(key) = get(ENV_API_KEY) {
        config.api.api_key = Some(key);
        config.api.auth_enabled = true;
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
                let resolved = fix(Path::new(program.as_str()), &format!("agents.{name}.command"))?;
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

fn read_token(path: &Path) -> Result<String, String> {
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
