//! Which runs root gc works on. gc has its own rule: `--root`, else the
//! `storage.runs_dir` of `--config` (else that config's server default `$HOME/run-agent`),
//! else `RUNS_DIR`, else `./runs`. Relative paths are taken against the current directory.

use std::path::{Path, PathBuf};

use crate::config::{self, ConfigError, DEFAULT_ROOT_NAME};

/// Env var naming the runs root for gc.
pub const ENV_RUNS_DIR: &str = "RUNS_DIR";
/// The root used when nothing else names one.
pub const DEFAULT_ROOT: &str = "runs";

/// Where the root came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// `--root`.
    Flag,
    /// `storage.runs_dir` of the `--config` file (or its default when unset).
    Config(PathBuf),
    /// `RUNS_DIR`.
    Env,
    /// `./runs`.
    Default,
}

/// Resolves gc's root. `env` supplies environment variables (use [`config::process_env`]).
pub fn resolve_root(
    flag: Option<&Path>,
    config_file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<(PathBuf, RootSource), ConfigError> {
    if let Some(root) = flag.filter(|p| !p.as_os_str().is_empty()) {
        return Ok((cwd.join(root), RootSource::Flag));
    }
    if let Some(file) = config_file {
        let loaded = config::load(&cwd.join(file), env)?;
        let root = match loaded.storage.runs_dir {
            Some(dir) => cwd.join(dir),
            None => match env("HOME").filter(|h| !h.is_empty()) {
                Some(home) => Path::new(&home).join(DEFAULT_ROOT_NAME),
                None => cwd.join(DEFAULT_ROOT_NAME),
            },
        };
        return Ok((root, RootSource::Config(file.to_path_buf())));
    }
    if let Some(dir) = env(ENV_RUNS_DIR).filter(|v| !v.trim().is_empty()) {
        return Ok((cwd.join(dir.trim()), RootSource::Env));
    }
    Ok((cwd.join(DEFAULT_ROOT), RootSource::Default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        let cfg = cwd.join("config.yaml");
        std::fs::write(&cfg, "storage:\n  runs_dir: data/runs\n").unwrap();
        let bare = cwd.join("bare.yaml");
        std::fs::write(&bare, "api:\n  port: 9000\n").unwrap();
        let env = |k: &str| match k {
            "RUNS_DIR" => Some("/env/runs".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        let no_env = |_: &str| None;

        let (root, source) = resolve_root(Some(Path::new("r")), Some(&cfg), &env, cwd).unwrap();
        assert_eq!((root, source), (cwd.join("r"), RootSource::Flag));
        let (root, source) = resolve_root(None, Some(&cfg), &env, cwd).unwrap();
        assert_eq!(root, cwd.join("data/runs"));
        assert_eq!(source, RootSource::Config(cfg.clone()));
        let (root, _) = resolve_root(None, Some(&bare), &env, cwd).unwrap();
        assert_eq!(root, PathBuf::from("/home/u/run-agent"));
        let (root, source) = resolve_root(None, None, &env, cwd).unwrap();
        assert_eq!(
            (root, source),
            (PathBuf::from("/env/runs"), RootSource::Env)
        );
        let (root, source) = resolve_root(None, None, &no_env, cwd).unwrap();
        assert_eq!((root, source), (cwd.join("runs"), RootSource::Default));

        std::fs::write(&bare, "storage:\n  bogus: 1\n").unwrap();
        let err = resolve_root(None, Some(&bare), &env, cwd).unwrap_err();
        assert!(err.to_string().contains("bare.yaml"), "{err}");
    }
}
