//! Self-update events in the audit log `<root>/_audit/audit.jsonl` (the same file the API
//! middleware appends requests to, rotated the same way): one JSON line per state change and
//! result.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::storage::audit_log::{append_line, AUDIT_FILE};
use crate::storage::paths::AUDIT_DIR;

/// Who asked for the update, as recorded with each of its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    /// Client address (`unknown` when not known).
    pub client: String,
    /// First 8 hex of sha256 of the key used, or `none`.
    pub key_fingerprint: String,
    /// The request id of the POST.
    pub request_id: String,
}

#[derive(Debug, Serialize)]
struct Event<'a> {
    time: String,
    request_id: &'a str,
    client: &'a str,
    key_fingerprint: &'a str,
    action: String,
    target: &'a str,
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// Appends self-update events; failures are logged, never fatal.
#[derive(Debug, Clone)]
pub struct UpdateAudit {
    path: PathBuf,
}

impl UpdateAudit {
    /// The audit log of the root at `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            path: root.join(AUDIT_DIR).join(AUDIT_FILE),
        }
    }

    /// Appends `self-update.<action>` on `target` with `result` (`ok`, `failed`, …).
    pub fn event(
        &self,
        who: &Requester,
        action: &str,
        target: &str,
        result: &str,
        detail: Option<&str>,
    ) {
        let event = Event {
            time: super::record::now_text(),
            request_id: &who.request_id,
            client: &who.client,
            key_fingerprint: &who.key_fingerprint,
            action: format!("self-update.{action}"),
            target,
            result,
            detail,
        };
        if let Ok(line) = serde_json::to_vec(&event) {
            append_line(&self.path, &line);
        }
    }
}
