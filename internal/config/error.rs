//! Config errors: each renders as one paragraph naming the file, the key (and line when known)
//! and what the key allows.

use std::fmt;
use std::path::PathBuf;

/// The two config file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// YAML (any extension other than `.hcl`).
    Yaml,
    /// HCL (`.hcl`).
    Hcl,
}

impl Format {
    /// The format a path's extension selects: HCL for `.hcl`, YAML otherwise.
    pub fn of(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("hcl") => Format::Hcl,
            _ => Format::Yaml,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Hcl => "HCL",
        })
    }
}

/// A position in a config file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number, starting at 1.
    pub column: usize,
}

/// Renders ` (line L, column C)` or nothing.
struct At(Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(loc) => write!(f, " (line {}, column {})", loc.line, loc.column),
            None => Ok(()),
        }
    }
}

/// Renders a list of paths for messages.
fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a config could not be found, read or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config path given by `--config` or `CONDUCTOR_CONFIG` does not exist.
    #[error("config file {} (given by {origin}) does not exist; pass an existing YAML or .hcl file", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
        /// `--config` or `CONDUCTOR_CONFIG`.
        origin: &'static str,
    },
    /// No config file was found and one is required.
    #[error(
        "no config file found (searched: {}); create one of these, or pass --config FILE or set CONDUCTOR_CONFIG",
        join_paths(searched)
    )]
    NoneFound {
        /// Every path looked at, in order.
        searched: Vec<PathBuf>,
    },
    /// The file exists but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML/HCL.
    #[error("{}: {format} syntax error{}: {message}", path.display(), At(*location))]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// Which parser rejected it.
        format: Format,
        /// Where, when the parser says.
        location: Option<Location>,
        /// The parser's message.
        message: String,
    },
    /// A key is unknown, has the wrong type or a bad value.
    #[error("{}: `{key}`{}: {message}; allowed: {allowed}", path.display(), At(*location))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Dotted key path, e.g. `api.port` or `agents.fast.token_file`.
        key: String,
        /// Where, when the parser says.
        location: Option<Location>,
        /// What is wrong.
        message: String,
        /// What the key accepts.
        allowed: String,
    },
    /// An agent's `token_file` is missing, unreadable or empty.
    #[error(
        "{}: `{key}`: cannot use token file {}: {reason}; allowed: a readable, non-empty regular file (relative paths resolve against the config file's directory)",
        path.display(), token_file.display()
    )]
    TokenFile {
        /// The config file.
        path: PathBuf,
        /// The key, e.g. `agents.fast.token_file`.
        key: String,
        /// The resolved token file path.
        token_file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret `_FILE` env var names a file that is missing, unreadable or empty.
    #[error(
        "{var}={}: cannot use this secret file: {reason}; allowed: a readable, non-empty regular file (surrounding whitespace is trimmed)",
        path.display()
    )]
    SecretFile {
        /// The env var, e.g. `CONDUCTOR_API_KEY_FILE`.
        var: &'static str,
        /// The file it names.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret is given both directly and as a file.
    #[error("both {var} and {file_var} are set; set only one of them")]
    SecretConflict {
        /// The direct env var, e.g. `CONDUCTOR_API_KEY`.
        var: &'static str,
        /// Its `_FILE` variant.
        file_var: &'static str,
    },
    /// `~` needs `$HOME`, which is not set.
    #[error("{}: `{key}` uses `~` but HOME is not set; use an absolute path or set HOME", path.display())]
    NoHome {
        /// The config file.
        path: PathBuf,
        /// The key holding the path.
        key: String,
    },
    /// `$HOME` is needed for a default path and is not set.
    #[error("HOME is not set, so the default {what} cannot be found; set HOME or pass {hint}")]
    HomeUnset {
        /// What needed HOME.
        what: &'static str,
        /// How to avoid needing it.
        hint: &'static str,
    },
}

/// A parse/deserialize failure before the file path is attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ParseFailure {
    /// The text is not valid for the format.
    Syntax {
        location: Option<Location>,
        message: String,
    },
    /// The structure does not match the schema.
    Invalid {
        key: String,
        location: Option<Location>,
        message: String,
    },
}

impl ParseFailure {
    /// Attaches the file and the allowed values for the key.
    pub(crate) fn into_error(self, path: PathBuf, format: Format) -> ConfigError {
        match self {
            ParseFailure::Syntax { location, message } => ConfigError::Syntax {
                path,
                format,
                location,
                message,
            },
            ParseFailure::Invalid {
                key,
                location,
                message,
            } => ConfigError::invalid(path, format, &key, location, message),
        }
    }
}

#[cfg(test)]
impl ParseFailure {
    /// The key, location and message of a schema error; panics on anything else (the parsers'
    /// tests).
    pub(crate) fn expect_invalid<T: std::fmt::Debug>(
        result: Result<T, ParseFailure>,
    ) -> (String, Option<Location>, String) {
        match result {
            Err(ParseFailure::Invalid {
                key,
                location,
                message,
            }) => (key, location, message),
            other => panic!("expected a schema error, got {other:?}"),
        }
    }
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for a canonical key path, spelled for `format`, with the
    /// key's allowed values.
    pub(crate) fn invalid(
        path: PathBuf,
        format: Format,
        key: &str,
        location: Option<Location>,
        message: String,
    ) -> ConfigError {
        ConfigError::Invalid {
            allowed: super::keys::allowed(key, format),
            key: super::keys::display_key(key, format),
            path,
            location,
            message,
        }
    }
}
