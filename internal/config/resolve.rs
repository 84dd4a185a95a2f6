//! Server settings with provenance: flags > env > config file > defaults, and the runs-root
//! rule shared by the server and local commands.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::discovery::discover;
use super::error::ConfigError;
use super::load::{load, ENV_ADMIN_KEY, ENV_API_KEY};
use super::mask::{serialize_masked, serialize_redacted, Masked};
use super::paths::{absolute_from, expand_tilde};
use super::schema::{Config, DEFAULT_HOST, DEFAULT_PORT};
use super::secret_env::with_secret_files;

/// Env var overriding the runs root.
pub const ENV_ROOT: &str = "CONDUCTOR_ROOT";
/// Env var overriding the bind host.
pub const ENV_HOST: &str = "CONDUCTOR_HOST";
/// Env var overriding the port (a valid value makes the port explicit).
pub const ENV_PORT: &str = "CONDUCTOR_PORT";
/// Env var that disables task starts (read-only server).
pub const ENV_DISABLE_TASK_START: &str = "CONDUCTOR_DISABLE_TASK_START";
/// Name of the default runs root under `$HOME`.
pub const DEFAULT_ROOT_NAME: &str = "run-agent";

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A command-line flag given explicitly.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    File,
    /// The built-in default.
    Default,
}

impl Source {
    /// Lower-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Setting<T> {
    /// The effective value.
    pub value: T,
    /// Its origin.
    pub source: Source,
}

impl<T> Setting<T> {
    /// Pairs a value with its source.
    pub fn new(value: T, source: Source) -> Self {
        Setting { value, source }
    }
}

/// Explicit command-line values (None = flag not given; a CLI default never overrides config).
#[derive(Debug, Clone, Default)]
pub struct ServerFlags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--api-key`.
    pub api_key: Option<String>,
    /// `--disable-task-start`.
    pub disable_task_start: bool,
}

/// Whether a config file is optional (`run-agent serve`: defaults when none/broken) or
/// required (`conductor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigMode {
    /// Run on defaults when no config is found or it fails to load.
    Optional,
    /// Fail when no config is found; start with task starts disabled when it fails to load.
    Required,
}

/// Everything the server needs, with provenance. Serializing and `Debug` mask every secret.
#[derive(Clone, Serialize)]
pub struct ServerSettings {
    /// The config file used; `None` means defaults.
    pub config_path: Option<PathBuf>,
    /// The load error, when the config file was rejected (the server keeps running on defaults).
    pub config_error: Option<String>,
    /// The loaded config, or `Config::default()` on error/none.
    #[serde(serialize_with = "serialize_redacted")]
    pub config: Config,
    /// `--root` > `CONDUCTOR_ROOT` > `storage.runs_dir` > `$HOME/run-agent`.
    pub root: Setting<PathBuf>,
    /// `--host` > `CONDUCTOR_HOST` > `api.host` > `0.0.0.0`.
    pub host: Setting<String>,
    /// `--port` > `CONDUCTOR_PORT` > `api.port` > 14355.
    pub port: Setting<u16>,
    /// Flag or valid `CONDUCTOR_PORT`: bind once and fail fast instead of trying base..base+99.
    pub port_explicit: bool,
    /// `--api-key` > `CONDUCTOR_API_KEY` > `api.api_key`.
    #[serde(serialize_with = "serialize_masked_setting")]
    pub api_key: Setting<Option<String>>,
    /// `CONDUCTOR_ADMIN_KEY` (or `CONDUCTOR_ADMIN_KEY_FILE`) > `api.admin_key`.
    #[serde(serialize_with = "serialize_masked")]
    pub admin_key: Option<String>,
    /// Whether requests must carry the API key.
    pub auth_enabled: bool,
    /// `CONDUCTOR_DISABLE_TASK_START` > `--disable-task-start`; forced on (source `file`) when
    /// a required config fails to load.
    pub task_start_disabled: Setting<bool>,
    /// Things the operator should see at startup (log them loudly).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSettings")
            .field("config_path", &self.config_path)
            .field("config_error", &self.config_error)
            .field("config", &self.config)
            .field("root", &self.root)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("port_explicit", &self.port_explicit)
            .field(
                "api_key",
                &Setting::new(Masked(&self.api_key.value), self.api_key.source),
            )
            .field("admin_key", &Masked(&self.admin_key))
            .field("auth_enabled", &self.auth_enabled)
            .field("task_start_disabled", &self.task_start_disabled)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl ServerSettings {
    /// Where the server runs, as `validate` and `doctor` show it: `(key, value, source)` of
    /// the runs root, `api.host` and `api.port`.
    pub fn shown_location(&self) -> [(&'static str, String, Source); 3] {
        [
            (
                "root",
                self.root.value.display().to_string(),
                self.root.source,
            ),
            ("api.host", self.host.value.clone(), self.host.source),
            ("api.port", self.port.value.to_string(), self.port.source),
        ]
    }

    /// The API key as shown: masked (see [`super::mask_secret`]), or `<unset>`.
    pub fn shown_api_key(&self) -> String {
        self.api_key
            .value
            .as_deref()
            .map_or_else(|| "<unset>".to_string(), super::mask_secret)
    }
}

fn serialize_masked_setting<S: serde::Serializer>(
    setting: &Setting<Option<String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let masked = Setting::new(
        setting.value.as_deref().map(super::mask_secret),
        setting.source,
    );
    masked.serialize(serializer)
}

/// The real process environment, for the `env` parameters.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// A non-empty, trimmed env value.
fn env_value(env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    env(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Parses a boolean env value: 1/true/yes/y/on and 0/false/no/n/off (any case).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// Resolves the server's settings: discovers and loads the config, then applies precedence.
///
/// `CONDUCTOR_API_KEY_FILE` / `CONDUCTOR_ADMIN_KEY_FILE` stand for `CONDUCTOR_API_KEY` /
/// `CONDUCTOR_ADMIN_KEY` (see [`with_secret_files`]); a bad secret file is always an `Err`.
///
/// Otherwise returns `Err` only in [`ConfigMode::Required`] when no config file is found (or the
/// explicitly named one does not exist). A config that fails to load yields `Ok` with
/// `config_error` set and defaults in place; in `Required` mode task starts are then disabled
/// (source [`Source::File`]) whatever the flag and env say, so a broken config never runs
/// agents with unintended settings.
pub fn resolve_server(
    flags: &ServerFlags,
    mode: ConfigMode,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<ServerSettings, ConfigError> {
    let secrets = with_secret_files(env)?;
    let env = &|key: &str| secrets.get(key);
    let mut warnings = Vec::new();
    let discovery = discover(flags.config.as_deref(), env, cwd);
    let (config_path, config, config_error) = match &discovery.path {
        None => match mode {
            ConfigMode::Required => {
                return Err(ConfigError::NoneFound {
                    searched: discovery.searched,
                })
            }
            ConfigMode::Optional => (None, Config::default(), None),
        },
        Some(path) => {
            let loaded = match discovery.missing_explicit() {
                Some(missing) => Err(ConfigError::NotFound {
                    path: missing.to_path_buf(),
                    origin: discovery.origin(),
                }),
                None => load(path, env),
            };
            match (loaded, mode) {
                (Ok(config), _) => (Some(path.clone()), config, None),
                (Err(err @ ConfigError::NotFound { .. }), ConfigMode::Required) => return Err(err),
                (Err(err), _) => (Some(path.clone()), Config::default(), Some(err.to_string())),
            }
        }
    };
    let file_loaded = config_path.is_some() && config_error.is_none();

    let root = root_setting(flags.root.as_deref(), env, cwd, &config, &mut warnings);

    let host = if let Some(host) = flags.host.clone().filter(|h| !h.trim().is_empty()) {
        Setting::new(host, Source::Flag)
    } else if let Some(host) = env_value(env, ENV_HOST) {
        Setting::new(host, Source::Env)
    } else if file_loaded && config.api.host != DEFAULT_HOST {
        Setting::new(config.api.host.clone(), Source::File)
    } else {
        Setting::new(DEFAULT_HOST.to_string(), Source::Default)
    };

    let env_port = env_value(env, ENV_PORT).and_then(|raw| match raw.parse::<u16>() {
        Ok(port) => Some(port),
        Err(_) => {
            warnings.push(format!(
                "{ENV_PORT}={raw:?} is not a port number (0..65535); ignoring it"
            ));
            None
        }
    });
    let (port, port_explicit) = if let Some(port) = flags.port {
        (Setting::new(port, Source::Flag), true)
    } else if let Some(port) = env_port {
        (Setting::new(port, Source::Env), true)
    } else if file_loaded && config.api.port != DEFAULT_PORT {
        (Setting::new(config.api.port, Source::File), false)
    } else {
        (Setting::new(DEFAULT_PORT, Source::Default), false)
    };

    let api_key = if let Some(key) = flags.api_key.clone().filter(|k| !k.trim().is_empty()) {
        Setting::new(Some(key), Source::Flag)
    } else if let Some(key) = env_value(env, ENV_API_KEY) {
        Setting::new(Some(key), Source::Env)
    } else if let Some(key) = config.api.api_key.clone() {
        Setting::new(Some(key), Source::File)
    } else {
        Setting::new(None, Source::Default)
    };
    let auth_requested =
        config.api.auth_enabled || matches!(api_key.source, Source::Flag | Source::Env);
    let auth_enabled = auth_requested && api_key.value.is_some();
    if auth_requested && !auth_enabled {
        warnings.push(
            "api.auth_enabled is true but no API key is set (api.api_key, CONDUCTOR_API_KEY or \
             --api-key): AUTHENTICATION IS DISABLED"
                .to_string(),
        );
    } else if !auth_requested && api_key.value.is_some() {
        warnings.push(
            "api.api_key is set but api.auth_enabled is false: the key is not enforced".to_string(),
        );
    }

    let env_disable = env(ENV_DISABLE_TASK_START)
        .filter(|v| !v.trim().is_empty())
        .and_then(|raw| match parse_bool(&raw) {
            Some(value) => Some(value),
            None => {
                warnings.push(format!(
                    "{ENV_DISABLE_TASK_START}={raw:?} is not a boolean \
                     (1/true/yes/y/on or 0/false/no/n/off); ignoring it"
                ));
                None
            }
        });
    let task_start_disabled = if mode == ConfigMode::Required && config_error.is_some() {
        Setting::new(true, Source::File)
    } else if let Some(value) = env_disable {
        Setting::new(value, Source::Env)
    } else if flags.disable_task_start {
        Setting::new(true, Source::Flag)
    } else {
        Setting::new(false, Source::Default)
    };

    Ok(ServerSettings {
        admin_key: env_value(env, ENV_ADMIN_KEY).or_else(|| config.api.admin_key.clone()),
        config_path,
        config_error,
        config,
        root,
        host,
        port,
        port_explicit,
        api_key,
        auth_enabled,
        task_start_disabled,
        warnings,
    })
}

/// The root rule given an already-loaded config.
fn root_setting(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    config: &Config,
    warnings: &mut Vec<String>,
) -> Setting<PathBuf> {
    let home = env_value(env, "HOME").map(PathBuf::from);
    let given = |path: &Path| {
        let expanded = expand_tilde(path, home.as_deref()).unwrap_or_else(|_| path.to_path_buf());
        absolute_from(&expanded, cwd)
    };
    if let Some(root) = flag.filter(|p| !p.as_os_str().is_empty()) {
        return Setting::new(given(root), Source::Flag);
    }
    if let Some(root) = env_value(env, ENV_ROOT) {
        return Setting::new(given(Path::new(&root)), Source::Env);
    }
    if let Some(dir) = &config.storage.runs_dir {
        return Setting::new(dir.clone(), Source::File);
    }
    match home {
        Some(home) => Setting::new(home.join(DEFAULT_ROOT_NAME), Source::Default),
        None => {
            let fallback = cwd.join(DEFAULT_ROOT_NAME);
            warnings.push(format!(
                "HOME is not set; using {} as the runs root",
                fallback.display()
            ));
            Setting::new(fallback, Source::Default)
        }
    }
}

/// What a local command asks for: `--root`, `--config`, and whether to search for a config
/// when none is named (off inside a run, whose working directory is some project's repo).
#[derive(Debug, Clone, Copy)]
pub struct LocalFlags<'a> {
    /// `--root`.
    pub root: Option<&'a Path>,
    /// `--config`.
    pub config: Option<&'a Path>,
    /// Search `./config.*` and `~/.config/conductor/config.*` when neither `--config` nor
    /// `CONDUCTOR_CONFIG` names a file.
    pub search: bool,
}

/// The tree a local command works on.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRoot {
    /// `--root` > `CONDUCTOR_ROOT` > `storage.runs_dir` > `$HOME/run-agent`.
    pub root: Setting<PathBuf>,
    /// The loaded config, when one was named or found.
    pub config: Option<Config>,
    /// Its absolute path.
    pub config_path: Option<PathBuf>,
}

impl LocalRoot {
    /// The config's `storage.extra_roots` (read-only flat roots); empty without a config.
    pub fn extra_roots(&self) -> &[PathBuf] {
        self.config
            .as_ref()
            .map_or(&[], |c| c.storage.extra_roots.as_slice())
    }
}

/// The runs root for local commands, by the server's rule: `--root` > `CONDUCTOR_ROOT` >
/// `storage.runs_dir` of the config (`--config` > `CONDUCTOR_CONFIG` > the search) >
/// `$HOME/run-agent`. The config is loaded even when the root is explicit (its
/// `storage.extra_roots` still apply). A named config that is missing, or any config that
/// fails to load, is an error naming the file (a local command must not silently pick
/// another tree); finding none is fine.
pub fn resolve_root(
    flags: LocalFlags<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<LocalRoot, ConfigError> {
    let named = flags.config.is_some_and(|p| !p.as_os_str().is_empty())
        || env_value(env, super::discovery::ENV_CONFIG).is_some();
    let discovery = if flags.search || named {
        discover(flags.config, env, cwd)
    } else {
        super::discovery::Discovery {
            path: None,
            source: Source::Default,
            searched: Vec::new(),
        }
    };
    if let Some(missing) = discovery.missing_explicit() {
        return Err(ConfigError::NotFound {
            path: missing.to_path_buf(),
            origin: discovery.origin(),
        });
    }
    let config = match &discovery.path {
        Some(path) => Some(load(path, env)?),
        None => None,
    };
    let mut warnings = Vec::new();
    let root = root_setting(
        flags.root,
        env,
        cwd,
        config.as_ref().unwrap_or(&Config::default()),
        &mut warnings,
    );
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(LocalRoot {
        root,
        config,
        config_path: discovery.path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Whether one of the settings' warnings contains `text`.
    fn warns(settings: &ServerSettings, text: &str) -> bool {
        settings.warnings.iter().any(|w| w.contains(text))
    }

    /// A sandbox: `cwd` and `home` dirs, and a fake env with HOME set.
    struct World {
        _tmp: tempfile::TempDir,
        cwd: PathBuf,
        home: PathBuf,
        vars: HashMap<String, String>,
    }

    impl World {
        fn new() -> World {
            let tmp = tempfile::tempdir().unwrap();
            let cwd = tmp.path().join("cwd");
            let home = tmp.path().join("home");
            std::fs::create_dir_all(&cwd).unwrap();
            std::fs::create_dir_all(&home).unwrap();
            let mut vars = HashMap::new();
            vars.insert("HOME".to_string(), home.display().to_string());
            World {
                _tmp: tmp,
                cwd,
                home,
                vars,
            }
        }

        fn set(&mut self, key: &str, value: &str) -> &mut Self {
            self.vars.insert(key.to_string(), value.to_string());
            self
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.cwd.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }

        fn resolve(
            &self,
            flags: &ServerFlags,
            mode: ConfigMode,
        ) -> Result<ServerSettings, ConfigError> {
            let env = |key: &str| self.vars.get(key).cloned();
            resolve_server(flags, mode, &env, &self.cwd)
        }
    }

    const FILE: &str = "api:\n  host: 10.0.0.1\n  port: 15000\n  api_key: file-key-0123456789\n  \
                        auth_enabled: true\nstorage:\n  runs_dir: file-runs\n";

    #[test]
    fn defaults_without_config() {
        let world = World::new();
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap();
        assert_eq!(s.config_path, None);
        assert_eq!(s.config_error, None);
        assert_eq!(
            s.root,
            Setting::new(world.home.join("run-agent"), Source::Default)
        );
        assert_eq!(s.host, Setting::new("0.0.0.0".to_string(), Source::Default));
        assert_eq!(s.port, Setting::new(14355, Source::Default));
        assert!(!s.port_explicit);
        assert_eq!(s.api_key, Setting::new(None, Source::Default));
        assert!(!s.auth_enabled);
        assert_eq!(s.task_start_disabled, Setting::new(false, Source::Default));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn file_beats_default() {
        let world = World::new();
        let path = world.write("config.yaml", FILE);
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Required)
            .unwrap();
        assert_eq!(s.config_path, Some(path));
        assert_eq!(
            s.root,
            Setting::new(world.cwd.join("file-runs"), Source::File)
        );
        assert_eq!(s.host, Setting::new("10.0.0.1".to_string(), Source::File));
        assert_eq!(s.port, Setting::new(15000, Source::File));
        assert!(!s.port_explicit, "a config port is never explicit");
        assert_eq!(s.api_key.source, Source::File);
        assert!(s.auth_enabled);
    }

    /// A world with [`FILE`] as its config and the env setting root, host, port and key
    /// over it.
    fn file_under_env() -> World {
        let mut world = World::new();
        world.write("config.yaml", FILE);
        world
            .set("CONDUCTOR_ROOT", "env-runs")
            .set("CONDUCTOR_HOST", "127.0.0.1")
            .set("CONDUCTOR_PORT", "16000")
            .set("CONDUCTOR_API_KEY", "env-key-0123456789");
        world
    }

    #[test]
    fn env_beats_file() {
        let mut world = file_under_env();
        world.set("CONDUCTOR_DISABLE_TASK_START", "on");
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap();
        assert_eq!(
            s.root,
            Setting::new(world.cwd.join("env-runs"), Source::Env)
        );
        assert_eq!(s.host, Setting::new("127.0.0.1".to_string(), Source::Env));
        assert_eq!(s.port, Setting::new(16000, Source::Env));
        assert!(s.port_explicit);
        assert_eq!(
            s.api_key,
            Setting::new(Some("env-key-0123456789".to_string()), Source::Env)
        );
        assert_eq!(s.task_start_disabled, Setting::new(true, Source::Env));
    }

    #[test]
    fn flags_beat_env() {
        let world = file_under_env();
        let flags = ServerFlags {
            config: None,
            root: Some(PathBuf::from("/flag/runs")),
            host: Some("::1".to_string()),
            port: Some(17000),
            api_key: Some("flag-key".to_string()),
            disable_task_start: true,
        };
        let s = world.resolve(&flags, ConfigMode::Optional).unwrap();
        assert_eq!(
            s.root,
            Setting::new(PathBuf::from("/flag/runs"), Source::Flag)
        );
        assert_eq!(s.host, Setting::new("::1".to_string(), Source::Flag));
        assert_eq!(s.port, Setting::new(17000, Source::Flag));
        assert!(s.port_explicit);
        assert_eq!(
            s.api_key,
            Setting::new(Some("flag-key".to_string()), Source::Flag)
        );
        assert!(s.auth_enabled);
        assert_eq!(s.task_start_disabled, Setting::new(true, Source::Flag));
    }

    #[test]
    fn env_task_start_overrides_flag_and_bad_values_warn() {
        let mut world = World::new();
        world.set("CONDUCTOR_DISABLE_TASK_START", "off");
        let flags = ServerFlags {
            disable_task_start: true,
            ..ServerFlags::default()
        };
        let s = world.resolve(&flags, ConfigMode::Optional).unwrap();
        assert_eq!(s.task_start_disabled, Setting::new(false, Source::Env));

        world
            .set("CONDUCTOR_DISABLE_TASK_START", "maybe")
            .set("CONDUCTOR_PORT", "99999");
        let s = world.resolve(&flags, ConfigMode::Optional).unwrap();
        assert_eq!(s.task_start_disabled, Setting::new(true, Source::Flag));
        assert_eq!(s.port, Setting::new(14355, Source::Default));
        assert!(!s.port_explicit);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(warns(&s, "CONDUCTOR_PORT=\"99999\""), "{:?}", s.warnings);
        assert!(
            warns(&s, "CONDUCTOR_DISABLE_TASK_START"),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn auth_without_key_is_disabled_with_warning() {
        let world = World::new();
        world.write("config.yaml", "api:\n  auth_enabled: true\n");
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap();
        assert!(!s.auth_enabled);
        assert!(warns(&s, "AUTHENTICATION IS DISABLED"), "{:?}", s.warnings);
    }

    #[test]
    fn broken_config_optional_runs_on_defaults() {
        let world = World::new();
        let path = world.write("config.yaml", "api:\n  port: nope\n");
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap();
        assert_eq!(s.config_path, Some(path.clone()));
        let err = s.config_error.unwrap();
        assert!(
            err.contains("`api.port`") && err.contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(s.config, Config::default());
        assert_eq!(s.port, Setting::new(14355, Source::Default));
        assert_eq!(s.task_start_disabled, Setting::new(false, Source::Default));
    }

    #[test]
    fn broken_config_required_disables_task_start() {
        let mut world = World::new();
        world.write("config.yaml", "api:\n  port: nope\n");
        world.set("CONDUCTOR_DISABLE_TASK_START", "false");
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Required)
            .unwrap();
        assert!(s.config_error.is_some());
        assert_eq!(s.task_start_disabled, Setting::new(true, Source::File));
    }

    #[test]
    fn required_without_config_lists_searched_paths() {
        let world = World::new();
        let err = world
            .resolve(&ServerFlags::default(), ConfigMode::Required)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&world.cwd.join("config.yaml").display().to_string()),
            "{err}"
        );
        assert!(
            err.contains(
                &world
                    .home
                    .join(".config/conductor/config.hcl")
                    .display()
                    .to_string()
            ),
            "{err}"
        );
        let flags = ServerFlags {
            config: Some(PathBuf::from("nope.yaml")),
            ..ServerFlags::default()
        };
        let err = world
            .resolve(&flags, ConfigMode::Required)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope.yaml") && err.contains("--config"),
            "{err}"
        );
        let s = world.resolve(&flags, ConfigMode::Optional).unwrap();
        assert!(s.config_error.unwrap().contains("does not exist"));
    }

    #[test]
    fn key_files_supply_the_api_and_admin_keys() {
        let mut world = World::new();
        world.write("config.yaml", "api:\n  admin_key: file-admin-0123456789\n");
        let api = world.write("api.secret", "api-from-file-0123456789\n");
        let admin = world.write("admin.secret", "admin-from-file-0123456789\n");
        world
            .set("CONDUCTOR_API_KEY_FILE", &api.display().to_string())
            .set("CONDUCTOR_ADMIN_KEY_FILE", &admin.display().to_string());
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap();
        assert_eq!(
            s.api_key,
            Setting::new(Some("api-from-file-0123456789".to_string()), Source::Env)
        );
        assert!(s.auth_enabled);
        assert_eq!(s.admin_key.as_deref(), Some("admin-from-file-0123456789"));

        // CONDUCTOR_ADMIN_KEY overrides api.admin_key; a bad key file is fatal in every mode.
        world.vars.remove("CONDUCTOR_ADMIN_KEY_FILE");
        world.set("CONDUCTOR_ADMIN_KEY", "admin-env-0123456789");
        let missing = world.cwd.join("gone.secret");
        world.set("CONDUCTOR_API_KEY_FILE", &missing.display().to_string());
        let err = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("CONDUCTOR_API_KEY_FILE={}", missing.display())),
            "{err}"
        );
        world.vars.remove("CONDUCTOR_API_KEY_FILE");
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap();
        assert_eq!(s.admin_key.as_deref(), Some("admin-env-0123456789"));
        assert!(!s.auth_enabled);
    }

    #[test]
    fn serialization_masks_secrets() {
        let mut world = World::new();
        world.write(
            "config.yaml",
            "api:\n  admin_key: admin-secret-0123456789\nagents:\n  xai:\n    token: tok-secret-0123456789\n",
        );
        world.set("CONDUCTOR_API_KEY", "env-secret-0123456789");
        let s = world
            .resolve(&ServerFlags::default(), ConfigMode::Optional)
            .unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let debug = format!("{s:?}");
        for secret in ["admin-secret", "tok-secret", "env-secret"] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["api_key"]["value"], "****6789");
        assert_eq!(value["api_key"]["source"], "env");
        assert_eq!(value["root"]["source"], "default");
    }

    #[test]
    fn local_root_follows_the_same_rule() {
        let mut world = World::new();
        let env_of = |w: &World| {
            let vars = w.vars.clone();
            move |key: &str| vars.get(key).cloned()
        };
        let search = LocalFlags {
            root: None,
            config: None,
            search: true,
        };
        let local = |w: &World, flags: LocalFlags<'_>| resolve_root(flags, &env_of(w), &w.cwd);
        let got = local(&world, search).unwrap();
        assert_eq!(
            got.root,
            Setting::new(world.home.join("run-agent"), Source::Default)
        );
        assert_eq!(got.config, None);
        assert!(got.extra_roots().is_empty());
        let found = world.write(
            "config.yml",
            "storage:\n  runs_dir: ~/from-file\n  extra_roots: [old]\n",
        );
        let got = local(&world, search).unwrap();
        assert_eq!(
            got.root,
            Setting::new(world.home.join("from-file"), Source::File)
        );
        assert_eq!(got.config_path, Some(found.clone()));
        assert_eq!(got.extra_roots(), [world.cwd.join("old")]);
        // Inside a run (no search) the cwd's config is not ours.
        let no_search = LocalFlags {
            search: false,
            ..search
        };
        let got = local(&world, no_search).unwrap();
        assert_eq!(got.config_path, None);
        assert_eq!(got.root.source, Source::Default);

        world.set("CONDUCTOR_ROOT", "/env/root");
        let got = local(&world, search).unwrap();
        assert_eq!(
            got.root,
            Setting::new(PathBuf::from("/env/root"), Source::Env)
        );
        // An explicit root still loads the config: its extra roots apply.
        let rel = LocalFlags {
            root: Some(Path::new("rel")),
            ..search
        };
        let got = local(&world, rel).unwrap();
        assert_eq!(got.root, Setting::new(world.cwd.join("rel"), Source::Flag));
        assert_eq!(got.extra_roots(), [world.cwd.join("old")]);

        // --config names a file elsewhere (beats the search; relative to cwd).
        world.vars.remove("CONDUCTOR_ROOT");
        std::fs::create_dir_all(world.home.join("etc")).unwrap();
        std::fs::write(
            world.home.join("etc/c.yaml"),
            "storage:\n  runs_dir: runs\n",
        )
        .unwrap();
        let named = world.home.join("etc/c.yaml");
        let flags = LocalFlags {
            config: Some(&named),
            ..no_search
        };
        let got = local(&world, flags).unwrap();
        assert_eq!(got.root.value, world.home.join("etc/runs"));
        assert_eq!(got.config_path, Some(named.clone()));
        let missing = world.cwd.join("nope.yaml");
        let flags = LocalFlags {
            config: Some(Path::new("nope.yaml")),
            ..search
        };
        let err = local(&world, flags).unwrap_err().to_string();
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("--config"),
            "{err}"
        );

        world.write("config.yml", "storage:\n  runs_dirr: x\n");
        let err = local(&world, search).unwrap_err();
        assert!(err.to_string().contains("`storage.runs_dirr`"), "{err}");
        let err = local(&world, rel).unwrap_err();
        assert!(
            err.to_string().contains(&found.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn bools_parse() {
        for t in ["1", "true", "YES", "y", "On"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "false", "No", "n", "OFF"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("2"), None);
    }
}
