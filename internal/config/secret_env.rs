//! Secrets from files named by env vars (`CONDUCTOR_API_KEY_FILE`, `CONDUCTOR_ADMIN_KEY_FILE`),
//! the container convention (`docker`/`compose` secrets mounted under `/run/secrets/`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::ConfigError;
use super::load::{read_token, ENV_ADMIN_KEY, ENV_API_KEY};

/// Env var naming a file that holds the API key (instead of `CONDUCTOR_API_KEY`).
pub const ENV_API_KEY_FILE: &str = "CONDUCTOR_API_KEY_FILE";
/// Env var naming a file that holds the admin key (instead of `CONDUCTOR_ADMIN_KEY`).
pub const ENV_ADMIN_KEY_FILE: &str = "CONDUCTOR_ADMIN_KEY_FILE";

/// The secret env vars that may be given as a file: (value var, file var).
const SECRET_FILE_VARS: [(&str, &str); 2] = [
    (ENV_API_KEY, ENV_API_KEY_FILE),
    (ENV_ADMIN_KEY, ENV_ADMIN_KEY_FILE),
];

/// An environment in which `CONDUCTOR_API_KEY` / `CONDUCTOR_ADMIN_KEY` also come from the files
/// named by their `_FILE` variants. Built by [`with_secret_files`].
pub struct SecretEnv<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    from_files: BTreeMap<&'static str, String>,
}

impl SecretEnv<'_> {
    /// The value of `key`: a secret read from its `_FILE`, else the underlying env.
    pub fn get(&self, key: &str) -> Option<String> {
        match self.from_files.get(key) {
            Some(value) => Some(value.clone()),
            None => (self.env)(key),
        }
    }
}

/// Reads the files named by `CONDUCTOR_API_KEY_FILE` and `CONDUCTOR_ADMIN_KEY_FILE` (trimmed,
/// like `token_file`) so that lookups of `CONDUCTOR_API_KEY` / `CONDUCTOR_ADMIN_KEY` return
/// their contents. Empty `_FILE` values count as unset.
///
/// Errors name the variable and the file: a file that is missing, unreadable, not a regular
/// file, empty or over 64 KiB, or a secret given both directly and as a file.
pub fn with_secret_files(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SecretEnv<'_>, ConfigError> {
    let set = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    let mut from_files = BTreeMap::new();
    for (var, file_var) in SECRET_FILE_VARS {
        let Some(file) = set(file_var) else {
            continue;
        };
        if set(var).is_some() {
            return Err(ConfigError::SecretConflict { var, file_var });
        }
        let path = PathBuf::from(file);
        let secret = read_token(&path).map_err(|reason| ConfigError::SecretFile {
            var: file_var,
            path: path.clone(),
            reason,
        })?;
        from_files.insert(var, secret);
    }
    Ok(SecretEnv { env, from_files })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn reads_key_files_trimmed_and_passes_other_vars_through() {
        let dir = tempfile::tempdir().unwrap();
        let api = dir.path().join("api_key");
        let admin = dir.path().join("admin_key");
        std::fs::write(&api, "api-secret-0123456789\n").unwrap();
        std::fs::write(&admin, "  admin-secret-0123456789\r\n").unwrap();
        let env = env_of(vec![
            (ENV_API_KEY_FILE, api.display().to_string()),
            (ENV_ADMIN_KEY_FILE, admin.display().to_string()),
            ("HOME", "/home/u".to_string()),
        ]);
        let secrets = with_secret_files(&env).unwrap();
        assert_eq!(
            secrets.get(ENV_API_KEY).as_deref(),
            Some("api-secret-0123456789")
        );
        assert_eq!(
            secrets.get(ENV_ADMIN_KEY).as_deref(),
            Some("admin-secret-0123456789")
        );
        assert_eq!(secrets.get("HOME").as_deref(), Some("/home/u"));
        assert_eq!(secrets.get("CONDUCTOR_PORT"), None);
    }

    #[test]
    fn without_file_vars_the_env_is_unchanged() {
        let env = env_of(vec![
            (ENV_API_KEY, "direct-key".to_string()),
            (ENV_API_KEY_FILE, "  ".to_string()),
        ]);
        let secrets = with_secret_files(&env).unwrap();
        assert_eq!(secrets.get(ENV_API_KEY).as_deref(), Some("direct-key"));
        assert_eq!(secrets.get(ENV_ADMIN_KEY), None);
    }

    #[test]
    fn missing_or_empty_file_is_an_error_naming_var_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let env = env_of(vec![(ENV_API_KEY_FILE, missing.display().to_string())]);
        let message = with_secret_files(&env).err().unwrap().to_string();
        assert!(message.contains(ENV_API_KEY_FILE), "{message}");
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(message.contains("does not exist"), "{message}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let env = env_of(vec![(ENV_ADMIN_KEY_FILE, empty.display().to_string())]);
        let message = with_secret_files(&env).err().unwrap().to_string();
        assert!(message.contains(ENV_ADMIN_KEY_FILE), "{message}");
        assert!(message.contains("it is empty"), "{message}");

        let env = env_of(vec![(ENV_API_KEY_FILE, dir.path().display().to_string())]);
        let message = with_secret_files(&env).err().unwrap().to_string();
        assert!(message.contains("not a regular file"), "{message}");
    }

    #[test]
    fn key_and_key_file_together_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let api = dir.path().join("api_key");
        std::fs::write(&api, "from-file").unwrap();
        let env = env_of(vec![
            (ENV_API_KEY, "direct".to_string()),
            (ENV_API_KEY_FILE, api.display().to_string()),
        ]);
        let message = with_secret_files(&env).err().unwrap().to_string();
        assert_eq!(
            message,
            "both CONDUCTOR_API_KEY and CONDUCTOR_API_KEY_FILE are set; set only one of them"
        );
    }
}
