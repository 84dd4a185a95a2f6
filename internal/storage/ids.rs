//! Identifiers of projects, tasks and runs: the one validation function every entry point
//! (CLI, API, runner) uses, typed ids that can only hold checked values, and id generation.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

/// Longest id accepted for any kind.
pub const MAX_ID_LEN: usize = 128;

/// What an id names; decides which characters are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`
    Project,
    /// `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, not `.`/`..`
    Task,
    /// Same alphabet as a task id.
    Run,
}

impl IdKind {
    /// The field name used in error messages (`project_id`, `task_id`, `run_id`).
    pub fn field(self) -> &'static str {
        match self {
            IdKind::Project => "project_id",
            IdKind::Task => "task_id",
            IdKind::Run => "run_id",
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            IdKind::Project => {
                "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 128 characters"
            }
            IdKind::Task | IdKind::Run => {
                "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters"
            }
        }
    }
}

/// Why an id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {reason}; allowed: {allowed}", field = kind.field(), allowed = kind.allowed())]
pub struct IdError {
    /// Which kind of id was checked.
    pub kind: IdKind,
    /// The rejected value (debug-escaped when shown).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Checks `value` as an id of `kind`. This is the only id check in the code base: typed ids
/// ([`ProjectId`], [`TaskId`], [`RunId`]) are built through it, and only typed ids build paths.
pub fn validate_id(kind: IdKind, value: &str) -> Result<(), IdError> {
    let fail = |reason| {
        Err(IdError {
            kind,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("it is empty");
    }
    if value.len() > MAX_ID_LEN {
        return fail("it is too long");
    }
    if value.contains('\0') {
        return fail("it contains a NUL byte");
    }
    if value == "." || value == ".." {
        return fail("it names a directory itself ('.' or '..')");
    }
    if value.contains('/') || value.contains('\\') {
        return fail("it contains a path separator");
    }
    if value.starts_with('.') {
        return fail("it starts with '.'");
    }
    let bytes = value.as_bytes();
    match kind {
        IdKind::Project => {
            let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            if !bytes.iter().all(|&c| ok_char(c) || c == b'-') {
                return fail("it contains a character that is not allowed");
            }
            if !ok_char(bytes[0]) || !ok_char(bytes[bytes.len() - 1]) {
                return fail("it must start and end with a lower-case letter or digit");
            }
        }
        IdKind::Task | IdKind::Run => {
            if !bytes
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
            {
                return fail("it contains a character that is not allowed");
            }
            if !bytes[0].is_ascii_alphanumeric() {
                return fail("it must start with a letter or digit");
            }
        }
    }
    Ok(())
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                validate_id($kind, value)?;
                Ok(Self(value.to_string()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<std::path::Path> for $name {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

typed_id!(
    /// A validated project id.
    ProjectId,
    IdKind::Project
);
typed_id!(
    /// A validated task id.
    TaskId,
    IdKind::Task
);
typed_id!(
    /// A validated run id.
    RunId,
    IdKind::Run
);

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new run id `YYYYMMDD-HHMMSSffff-<pid>-<seq>` with real 1/10000-second digits.
pub fn generate_run_id(now: DateTime<Utc>) -> RunId {
    let seq = RUN_SEQ.fetch_add(1, Ordering::Relaxed) + 1;
    let frac = now.timestamp_subsec_nanos() / 100_000;
    RunId(format!(
        "{}{:04}-{}-{}",
        now.format("%Y%m%d-%H%M%S"),
        frac.min(9999),
        std::process::id(),
        seq
    ))
}

/// A new task id `task-YYYYMMDD-HHMMSS-<slug>`; without a slug, six random `[a-z0-9]`.
/// The slug is normalised to lower-case `[a-z0-9-]`, 3–50 characters.
pub fn generate_task_id(now: DateTime<Utc>, slug: Option<&str>) -> TaskId {
    let mut slug = slug.map(slugify).unwrap_or_default();
    if slug.len() < 3 {
        slug = random_suffix(6);
    }
    TaskId(format!("task-{}-{}", now.format("%Y%m%d-%H%M%S"), slug))
}

/// Lower-cases `text` and turns every run of other characters into one `-` (at most 50 chars).
pub fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(50);
    out.trim_matches('-').to_string()
}

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_traversal_and_junk() {
        for kind in [IdKind::Project, IdKind::Task, IdKind::Run] {
            for bad in [
                "", ".", "..", "../x", "a/b", "a\\b", "a\0b", ".hidden", "..a",
            ] {
                assert!(validate_id(kind, bad).is_err(), "{kind:?} accepted {bad:?}");
            }
            assert!(validate_id(kind, &"a".repeat(129)).is_err());
            assert!(validate_id(kind, &"a".repeat(128)).is_ok());
        }
        // One path segment: dots inside are harmless (only `.` and `..` are rejected).
        assert!(validate_id(IdKind::Task, "a..b").is_ok());
        assert!(validate_id(IdKind::Run, "v1..2").is_ok());
    }

    #[test]
    fn project_rules() {
        for ok in ["a", "my-project", "p1", "0"] {
            assert!(validate_id(IdKind::Project, ok).is_ok(), "{ok}");
        }
        for bad in ["My", "-a", "a-", "a_b", "a.b", "a b"] {
            assert!(validate_id(IdKind::Project, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn task_rules() {
        for ok in ["task-001", "task-20260223-204858-abc", "T.1_x", "9"] {
            assert!(validate_id(IdKind::Task, ok).is_ok(), "{ok}");
        }
        for bad in ["-x", "_x", "a b", "a:b", "ä"] {
            assert!(validate_id(IdKind::Task, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_names_field_and_allowed() {
        let err = validate_id(IdKind::Task, "../etc").unwrap_err().to_string();
        assert!(err.contains("task_id"), "{err}");
        assert!(err.contains("path separator"), "{err}");
        assert!(err.contains("allowed"), "{err}");
    }

    #[test]
    fn generated_ids_are_valid_and_unique() {
        let now = Utc::now();
        let a = generate_run_id(now);
        let b = generate_run_id(now);
        assert_ne!(a, b);
        assert!(validate_id(IdKind::Run, a.as_str()).is_ok());
        let parts: Vec<&str> = a.as_str().split('-').collect();
        assert_eq!(parts.len(), 4, "{a}");
        assert_eq!(parts[1].len(), 10);
        let t = generate_task_id(now, None);
        assert!(t.as_str().starts_with("task-"));
        assert!(validate_id(IdKind::Task, t.as_str()).is_ok());
        let t = generate_task_id(now, Some("Fix the Build!"));
        assert!(t.as_str().ends_with("-fix-the-build"), "{t}");
    }
}
