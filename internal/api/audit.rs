//! The audit log `<root>/_audit/audit.jsonl`: one JSON line per mutation (time, client,
//! key fingerprint, action, target, result). Append-only; never contains a secret.
//!
//! Bounded whatever clients send: requests refused for authentication are sampled (the first
//! [`SAMPLED_PER_WINDOW`] per client address per [`SAMPLE_WINDOW`], then one summary line with
//! the count of the others), targets and actions are cut to [`MAX_TARGET_BYTES`], and the file
//! is rotated by size (`audit.jsonl` → `audit.jsonl.1` → … → `audit.jsonl.<GENERATIONS>`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::storage::audit_log::{append_line, AUDIT_FILE};
use crate::storage::paths::AUDIT_DIR;

/// Longest target or action written (longer ones are cut on a character boundary, marked `…`).
pub const MAX_TARGET_BYTES: usize = 256;
/// Refused requests written individually per client address and window.
pub const SAMPLED_PER_WINDOW: u32 = 20;
/// The sampling window; a summary line follows each window that dropped lines.
pub const SAMPLE_WINDOW: Duration = Duration::from_secs(60);
/// Most client addresses sampled separately; the others share one window.
const MAX_SAMPLED_CLIENTS: usize = 4096;
/// The shared window of clients beyond [`MAX_SAMPLED_CLIENTS`].
const OTHER_CLIENTS: &str = "other";

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

/// The line written after a sampling window in which refused requests were not written.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    time: String,
    client: &'a str,
    action: &'static str,
    /// Refused requests of the window that have no line of their own.
    suppressed: u64,
    /// Refused requests of the window written individually.
    sampled: u32,
    /// When the window began.
    since: &'a str,
    result: &'static str,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    started_at: String,
    written: u32,
    suppressed: u64,
}

/// Appends audit records; refused requests are sampled per client address.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    windows: Mutex<HashMap<String, Window>>,
}

impl AuditLog {
    /// The audit log of the root at `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            path: root.join(AUDIT_DIR).join(AUDIT_FILE),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` (target and action cut to [`MAX_TARGET_BYTES`]); failures are
    /// logged, never fatal to the request.
    pub fn append(&self, record: &AuditRecord<'_>) {
        let action = truncate(&record.action, MAX_TARGET_BYTES);
        let target = truncate(record.target, MAX_TARGET_BYTES);
        let record = AuditRecord {
            time: record.time.clone(),
            request_id: record.request_id,
            client: record.client.clone(),
            key_fingerprint: record.key_fingerprint.clone(),
            action: action.into_owned(),
            target: &target,
            status: record.status,
            result: record.result,
        };
        if let Ok(line) = serde_json::to_vec(&record) {
            append_line(&self.path, &line);
        }
    }

    /// Appends `record` of a request refused for authentication when its client is still
    /// within its sample of the window; otherwise only counts it for the window's summary.
    pub fn append_refused(&self, record: &AuditRecord<'_>) {
        let write = {
            let mut windows = self.lock_windows();
            self.close_windows(&mut windows, false);
            let key =
                if windows.len() >= MAX_SAMPLED_CLIENTS && !windows.contains_key(&record.client) {
                    OTHER_CLIENTS.to_string()
                } else {
                    record.client.clone()
                };
            let window = windows.entry(key).or_insert_with(|| Window {
                started: Instant::now(),
                started_at: record.time.clone(),
                written: 0,
                suppressed: 0,
            });
            if window.written < SAMPLED_PER_WINDOW {
                window.written += 1;
                true
            } else {
                window.suppressed += 1;
                false
            }
        };
        if write {
            self.append(record);
        }
    }

    /// Writes the summary of every window that has ended (every window when `all`, e.g. at
    /// shutdown). Called on each refused request and periodically by the server.
    pub fn flush_summaries(&self, all: bool) {
        let mut windows = self.lock_windows();
        self.close_windows(&mut windows, all);
    }

    fn close_windows(&self, windows: &mut HashMap<String, Window>, all: bool) {
        let ended: Vec<String> = windows
            .iter()
            .filter(|(_, w)| all || w.started.elapsed() >= SAMPLE_WINDOW)
            .map(|(client, _)| client.clone())
            .collect();
        for client in ended {
            let Some(window) = windows.remove(&client) else {
                continue;
            };
            if window.suppressed == 0 {
                continue;
            }
            let summary = Summary {
                time: crate::storage::time::format_rfc3339_nano(&chrono::Utc::now()),
                client: &client,
                action: "refused requests not logged individually",
                suppressed: window.suppressed,
                sampled: window.written,
                since: &window.started_at,
                result: "error",
            };
            if let Ok(line) = serde_json::to_vec(&summary) {
                append_line(&self.path, &line);
            }
        }
    }

    fn lock_windows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(client: &str, target: &'a str) -> AuditRecord<'a> {
        AuditRecord {
            time: "2026-01-01T00:00:00Z".to_string(),
            request_id: "r",
            client: client.to_string(),
            key_fingerprint: "none".to_string(),
            action: "POST /api/v1/tasks".to_string(),
            target,
            status: 401,
            result: "error",
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn truncates_on_a_char_boundary() {
        assert_eq!(truncate("short", 256), "short");
        let long = "é".repeat(300);
        let cut = truncate(&long, 256);
        assert!(cut.len() <= 256, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn refused_requests_are_sampled_per_client_then_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        for _ in 0..100 {
            log.append_refused(&record("10.0.0.1", "/api/v1/tasks"));
        }
        log.append_refused(&record("10.0.0.2", "/api/v1/tasks"));
        assert_eq!(lines(log.path()).len(), SAMPLED_PER_WINDOW as usize + 1);
        log.flush_summaries(true);
        let all = lines(log.path());
        let summaries: Vec<_> = all.iter().filter(|l| l["suppressed"].is_u64()).collect();
        assert_eq!(
            summaries.len(),
            1,
            "only the client over its sample: {all:?}"
        );
        assert_eq!(summaries[0]["client"], "10.0.0.1");
        assert_eq!(summaries[0]["suppressed"], 100 - SAMPLED_PER_WINDOW as u64);
        assert_eq!(summaries[0]["sampled"], SAMPLED_PER_WINDOW);
    }

    #[test]
    fn long_targets_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let target = format!("/api/v1/projects/{}", "x".repeat(10_000));
        log.append(&record("127.0.0.1", &target));
        let line = &lines(log.path())[0];
        assert!(line["target"].as_str().unwrap().len() <= MAX_TARGET_BYTES);
    }
}
