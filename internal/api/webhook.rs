//! The run webhook (config `webhook`): run start / stop / crash events observed by the run
//! index are POSTed as JSON to the configured URL, signed with HMAC-SHA256 when a secret is
//! set, retried with backoff on a thread of their own — never blocking or failing a run.
//! A delivery that still fails is reported on the task's bus as a WARN message.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::broadcast;

use super::index::{IndexChange, RunIndex, RunRecord};
use crate::bus::{self, AppendOptions, NewMessage};
use crate::config::{WebhookConfig, WebhookEvent};
use crate::storage::time::format_rfc3339_nano;
use crate::storage::{ProjectId, RunId, RunStatus, TaskId};

/// Delivery attempts per event.
const ATTEMPTS: u32 = 4;
/// Delay before the second attempt; doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Conductor-Signature";

/// Starts delivering run events from `index` to the configured webhook, if any.
pub fn start(config: &WebhookConfig, index: &Arc<RunIndex>, fsync: bool) {
    let Some(url) = config.url.clone() else {
        return;
    };
    let config = config.clone();
    let mut changes = index.subscribe();
    std::thread::Builder::new()
        .name("webhook".into())
        .spawn(move || loop {
            let change = match changes.blocking_recv() {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("webhook: {n} run events were dropped (too many at once)");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            for (event, record) in events_of(&change) {
                if config.events.is_empty() || config.events.contains(&event) {
                    let (url, secret) = (url.clone(), config.secret.clone());
                    std::thread::spawn(move || {
                        deliver(&url, secret.as_deref(), event, &record, fsync)
                    });
                }
            }
        })
        .map_err(|e| tracing::error!("cannot start the webhook thread: {e}"))
        .ok();
}

/// The webhook events a change of the index stands for.
fn events_of(change: &IndexChange) -> Vec<(WebhookEvent, Arc<RunRecord>)> {
    let end = |r: &Arc<RunRecord>| match r.status {
        RunStatus::Completed | RunStatus::Stopped => Some(WebhookEvent::RunStop),
        RunStatus::Failed => Some(WebhookEvent::RunCrash),
        RunStatus::Running | RunStatus::Unknown => None,
    };
    match change {
        IndexChange::Created(r) => {
            let mut out = Vec::new();
            if r.status != RunStatus::Unknown {
                out.push((WebhookEvent::RunStart, r.clone()));
            }
            out.extend(end(r).map(|e| (e, r.clone())));
            out
        }
        IndexChange::Status(r) => end(r).map(|e| (e, r.clone())).into_iter().collect(),
    }
}

/// The JSON body of an event.
pub fn payload(event: WebhookEvent, record: &RunRecord) -> serde_json::Value {
    let info = record.info.as_ref();
    let started = info.and_then(|i| i.start_time_opt());
    let stopped = info.and_then(|i| i.end_time_opt());
    serde_json::json!({
        "event": event.as_str(),
        "project_id": record.project_id,
        "task_id": record.task_id,
        "run_id": record.run_id,
        "agent_type": info.map(|i| i.agent.clone()),
        "status": record.status,
        "exit_code": info.map(|i| i.exit_code),
        "started_at": started.map(|t| format_rfc3339_nano(&t)),
        "stopped_at": stopped.map(|t| format_rfc3339_nano(&t)),
        "duration_seconds": started.zip(stopped).map(|(a, b)| (b - a).num_milliseconds() as f64 / 1000.0),
        "error_summary": info.and_then(|i| i.error_summary.clone()),
    })
}

/// `sha256=<hex>` HMAC of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn deliver(url: &str, secret: Option<&str>, event: WebhookEvent, record: &RunRecord, fsync: bool) {
    let body = payload(event, record).to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut backoff = FIRST_BACKOFF;
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut request = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("conductor/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-Conductor-Event", event.as_str());
        if let Some(secret) = secret {
            request = request.header(SIGNATURE_HEADER, &signature(secret, body.as_bytes()));
        }
        match request.send(&body) {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => last_error = format!("HTTP {}", resp.status()),
            Err(err) => last_error = err.to_string(),
        }
        if attempt < ATTEMPTS {
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }
    tracing::warn!(run = %record.run_id, "webhook delivery failed: {last_error}");
    warn_on_bus(record, event, url, &last_error, fsync);
}

fn warn_on_bus(record: &RunRecord, event: WebhookEvent, url: &str, error: &str, fsync: bool) {
    let (Ok(project), Ok(task)) = (
        ProjectId::parse(&record.project_id),
        TaskId::parse(&record.task_id),
    ) else {
        return;
    };
    let Some(task_dir) = record.dir.parent().and_then(|runs| runs.parent()) else {
        return;
    };
    let mut msg = NewMessage::new("WARN", project).task(task).body(format!(
        "webhook delivery failed: {} to {url} after {ATTEMPTS} attempts: {error}",
        event.as_str()
    ));
    msg.run_id = RunId::parse(&record.run_id).ok();
    let path = task_dir.join(crate::storage::paths::TASK_BUS_FILE);
    let opts = AppendOptions {
        fsync,
        ..AppendOptions::default()
    };
    if let Err(err) = bus::append(&path, &msg, &opts) {
        tracing::warn!(
            "cannot report the webhook failure on {}: {err}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
