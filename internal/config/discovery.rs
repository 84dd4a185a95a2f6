//! Which config file applies: `--config` > `CONDUCTOR_CONFIG` > the search chain
//! `./config.{yaml,yml,hcl}`, `$HOME/.config/conductor/config.{yaml,yml,hcl}`.

use std::path::{Path, PathBuf};

use super::paths::absolute_from;
use super::resolve::Source;

/// Env var naming the config file.
pub const ENV_CONFIG: &str = "CONDUCTOR_CONFIG";

/// File names tried in each searched directory, in order.
pub const CONFIG_NAMES: [&str; 3] = ["config.yaml", "config.yml", "config.hcl"];

/// The outcome of config discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The config file to load; `None` when nothing was given or found. An explicit path is
    /// returned even when it does not exist (loading it then reports the missing file).
    pub path: Option<PathBuf>,
    /// `Flag` (`--config`), `Env` (`CONDUCTOR_CONFIG`), `File` (found by the search) or `Default`
    /// (nothing found).
    pub source: Source,
    /// Every path looked at, in order.
    pub searched: Vec<PathBuf>,
}

impl Discovery {
    /// An explicit path (flag or env) that does not exist.
    pub fn missing_explicit(&self) -> Option<&Path> {
        match (&self.path, self.source) {
            (Some(path), Source::Flag | Source::Env) if !path.exists() => Some(path),
            _ => None,
        }
    }

    /// How the config was chosen, for messages: `--config`, `CONDUCTOR_CONFIG`, …
    pub fn origin(&self) -> &'static str {
        match self.source {
            Source::Flag => "--config",
            Source::Env => ENV_CONFIG,
            Source::File => "the default search",
            Source::Default => "defaults",
        }
    }
}

/// Finds the config file. Relative explicit paths resolve against `cwd`; empty values count as
/// not given. `$HOME` comes from `env("HOME")`.
pub fn discover(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Discovery {
    if let Some(path) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        let path = absolute_from(path, cwd);
        return Discovery {
            searched: vec![path.clone()],
            path: Some(path),
            source: Source::Flag,
        };
    }
    if let Some(value) = env(ENV_CONFIG).filter(|v| !v.trim().is_empty()) {
        let path = absolute_from(Path::new(value.trim()), cwd);
        return Discovery {
            searched: vec![path.clone()],
            path: Some(path),
            source: Source::Env,
        };
    }
    let mut searched = Vec::new();
    let mut dirs = vec![cwd.to_path_buf()];
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        dirs.push(Path::new(&home).join(".config").join("conductor"));
    }
    for dir in dirs {
        for name in CONFIG_NAMES {
            let candidate = dir.join(name);
            searched.push(candidate.clone());
            if candidate.is_file() {
                return Discovery {
                    path: Some(candidate),
                    source: Source::File,
                    searched,
                };
            }
        }
    }
    Discovery {
        path: None,
        source: Source::Default,
        searched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn order_is_flag_env_search() {
        let tmp = tempfile::tempdir().unwrap();
        let cwd = tmp.path().join("cwd");
        let home = tmp.path().join("home");
        let conf_dir = home.join(".config/conductor");
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::create_dir_all(&conf_dir).unwrap();
        let env = env_of(vec![("HOME", home.display().to_string())]);

        let none = discover(None, &env, &cwd);
        assert_eq!(none.path, None);
        assert_eq!(none.source, Source::Default);
        assert_eq!(none.searched.len(), 6);
        assert_eq!(none.searched[0], cwd.join("config.yaml"));
        assert_eq!(none.searched[5], conf_dir.join("config.hcl"));

        std::fs::write(conf_dir.join("config.hcl"), "").unwrap();
        let found = discover(None, &env, &cwd);
        assert_eq!(found.path, Some(conf_dir.join("config.hcl")));
        assert_eq!(found.source, Source::File);

        std::fs::write(cwd.join("config.yml"), "").unwrap();
        assert_eq!(
            discover(None, &env, &cwd).path,
            Some(cwd.join("config.yml"))
        );
        std::fs::write(cwd.join("config.yaml"), "").unwrap();
        assert_eq!(
            discover(None, &env, &cwd).path,
            Some(cwd.join("config.yaml"))
        );

        let env2 = env_of(vec![
            ("HOME", home.display().to_string()),
            (ENV_CONFIG, "other.yaml".to_string()),
        ]);
        let from_env = discover(None, &env2, &cwd);
        assert_eq!(from_env.path, Some(cwd.join("other.yaml")));
        assert_eq!(from_env.source, Source::Env);
        assert_eq!(
            from_env.missing_explicit(),
            Some(cwd.join("other.yaml").as_path())
        );

        let from_flag = discover(Some(Path::new("/x/c.hcl")), &env2, &cwd);
        assert_eq!(from_flag.path, Some(PathBuf::from("/x/c.hcl")));
        assert_eq!(from_flag.source, Source::Flag);
        assert_eq!(from_flag.origin(), "--config");

        let empty_flag = discover(Some(Path::new("")), &env, &cwd);
        assert_eq!(empty_flag.source, Source::File);
    }
}
