//! The audit log `<root>/_audit/audit.jsonl`: one JSON line per mutation (time, client,
//! key fingerprint, action, target, result). Append-only; never contains a secret.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::storage::paths::AUDIT_DIR;

/// File name of the audit log inside `<root>/_audit/`.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// One audit record.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// RFC3339 time.
    pub time: String,
    /// Request id (`X-Request-Id`).
    pub request_id: &'a str,
    /// Client address.
    pub client: String,
    /// First 8 hex digits of sha256 of the key used, or `none`.
    pub key_fingerprint: String,
    /// `METHOD /route/template`.
    pub action: String,
    /// The request path (target ids).
    pub target: &'a str,
    /// HTTP status of the answer.
    pub status: u16,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Appends audit records; serialises writers of this process with a mutex and appends with
/// O_APPEND so other processes' lines never interleave within a line.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl AuditLog {
    /// The audit log of the root at `root`.
    pub fn new(root: &std::path::Path) -> Self {
        Self {
            path: root.join(AUDIT_DIR).join(AUDIT_FILE),
            lock: Mutex::new(()),
        }
    }

    /// Where the log is.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Appends `record`; failures are logged, never fatal to the request.
    pub fn append(&self, record: &AuditRecord<'_>) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = (|| -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            file.write_all(&line)
        })();
        if let Err(err) = result {
            tracing::error!(path = %self.path.display(), "cannot write the audit log: {err}");
        }
    }
}

/// First 8 hex digits of sha256(`key`): identifies a key without revealing it.
pub fn key_fingerprint(key: Option<&str>) -> String {
    match key {
        None => "none".to_string(),
        Some(key) => hex::encode(Sha256::digest(key.as_bytes()))[..8].to_string(),
    }
}

/// Formats a client address for the log.
pub fn client_label(addr: Option<SocketAddr>) -> String {
    addr.map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}
