//! Checking a candidate binary: it exists, is a regular executable file, matches the
//! requested sha256, and answers `--version` in time.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::UpdateError;

/// How long `<candidate> --version` may take.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// sha256 (lower-case hex) of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<String, UpdateError> {
    let mut file =
        std::fs::File::open(path).map_err(|e| UpdateError::io("cannot read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UpdateError::io("cannot read", path, e)),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Validates the candidate and returns its sha256. `expected` (hex, any case) must match
/// when given.
pub fn validate(path: &Path, expected: Option<&str>) -> Result<String, UpdateError> {
    let bad = |msg: String| Err(UpdateError::Candidate(msg));
    if !path.is_absolute() {
        return bad(format!(
            "binary_path {} must be an absolute path",
            path.display()
        ));
    }
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return bad(format!("candidate {} does not exist", path.display()))
        }
        Err(e) => return bad(format!("cannot inspect candidate {}: {e}", path.display())),
    };
    if !meta.is_file() {
        return bad(format!(
            "candidate {} is not a regular file",
            path.display()
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return bad(format!(
            "candidate {} is not executable (mode {:o}); chmod +x it",
            path.display(),
            meta.permissions().mode() & 0o7777
        ));
    }
    if let Some(expected) = expected {
        let valid = expected.len() == 64 && expected.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return bad(format!("sha256 {expected:?} is not 64 hex digits"));
        }
    }
    let actual = sha256_file(path)?;
    if let Some(expected) = expected {
        if !expected.eq_ignore_ascii_case(&actual) {
            return bad(format!(
                "checksum mismatch for {}: expected sha256 {}, file has {actual}",
                path.display(),
                expected.to_ascii_lowercase()
            ));
        }
    }
    Ok(actual)
}

/// Runs `<path> --version` with `timeout`; returns the first non-empty line of its stdout.
/// A non-zero exit, a hang or empty output is an error.
pub fn check_version(path: &Path, timeout: Duration) -> Result<String, UpdateError> {
    use crate::process::{first_line, probe, ProbeError};
    let fail = |reason: String| UpdateError::Verify {
        path: path.to_path_buf(),
        reason,
    };
    let mut cmd = Command::new(path);
    cmd.arg("--version").env_remove(super::PENDING_ENV);
    let out = probe(cmd, timeout).map_err(|err| match err {
        ProbeError::Spawn { source, .. } => fail(format!("cannot start it: {source}")),
        ProbeError::Timeout { .. } => fail(format!("no answer within {}s", timeout.as_secs())),
        ProbeError::Wait { source, .. } => fail(format!("cannot wait for it: {source}")),
    })?;
    if !out.status.success() {
        return Err(fail(format!("it exited with {}", out.status)));
    }
    first_line(&out.stdout)
        .map(str::to_string)
        .ok_or_else(|| fail("it printed nothing".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn validation_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = validate(&missing, None).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = validate(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let plain = script(dir.path(), "plain", "x", 0o644);
        let err = validate(&plain, None).unwrap_err().to_string();
        assert!(err.contains("not executable"), "{err}");
        let exe = script(dir.path(), "exe", "x", 0o755);
        let sum = validate(&exe, None).unwrap();
        assert_eq!(validate(&exe, Some(&sum.to_uppercase())).unwrap(), sum);
        let err = validate(&exe, Some(&"0".repeat(64)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        let err = validate(&exe, Some("abc")).unwrap_err().to_string();
        assert!(err.contains("64 hex"), "{err}");
        let err = validate(Path::new("rel/path"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absolute"), "{err}");
    }

    #[test]
    fn version_check_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let ok = script(dir.path(), "ok", "#!/bin/sh\necho 'tool 9.9'\n", 0o755);
        assert_eq!(check_version(&ok, VERSION_TIMEOUT).unwrap(), "tool 9.9");
        let bad = script(dir.path(), "bad", "#!/bin/sh\necho v\nexit 3\n", 0o755);
        let err = check_version(&bad, VERSION_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exited"), "{err}");
        let empty = script(dir.path(), "empty", "#!/bin/sh\nexit 0\n", 0o755);
        let err = check_version(&empty, VERSION_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing"), "{err}");
        let hang = script(dir.path(), "hang", "#!/bin/sh\nexec sleep 30\n", 0o755);
        let err = check_version(&hang, Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no answer"), "{err}");
    }
}
