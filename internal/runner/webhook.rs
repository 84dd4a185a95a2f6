//! The run webhook (config `webhook`): each run's supervisor POSTs its run events
//! as JSON to the configured URL — `run_start` once the agent runs, `run_stop` once the run
//! has ended (any status), and additionally `run_crash` for a failed run. Bodies are signed
//! with HMAC-SHA256 when a secret is set; a delivery is tried 3 times (sleeping 1 s, then
//! 2 s), and a delivery that still fails is reported on the task bus as a `WARN`. A webhook
//! never changes a run's outcome.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::bus::{self, AppendOptions, NewMessage};
use crate::config::{Config, WebhookEvent};
use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::time::format_rfc3339_nano;
use crate::storage::{RunInfo, RunStatus};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Conductor-Signature";
/// Header naming the event (`run_start`, `run_stop`, `run_crash`).
pub const EVENT_HEADER: &str = "X-Conductor-Event";
/// Delivery attempts per event.
pub const ATTEMPTS: u32 = 3;
/// Sleeps between attempts (reference: 1 s, then 2 s).
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how a run's events are delivered: the resolved `webhook` config. `Debug` masks
/// the secret.
#[derive(Clone, PartialEq)]
pub struct WebhookTarget {
    /// The `http(s)://` URL POSTed to.
    pub url: String,
    /// HMAC-SHA256 signing key.
    pub secret: Option<String>,
    /// Events to send; empty means all.
    pub events: Vec<WebhookEvent>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// fsync the failure `WARN` on the task bus (`bus.fsync`).
    pub fsync: bool,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .field("fsync", &self.fsync)
            .finish()
    }
}

impl WebhookTarget {
    /// The config's webhook, or `None` when `webhook.url` is unset.
    pub fn from_config(config: &Config) -> Option<Self> {
        let url = config.webhook.url.clone()?;
        Some(Self {
            url,
            secret: config.webhook.secret.clone(),
            events: config.webhook.events.clone(),
            timeout: DEFAULT_TIMEOUT,
            fsync: config.bus.fsync,
        })
    }

    /// Whether `event` passes the filter (`events` empty or naming it).
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}

/// A delivery that failed on every attempt.
#[derive(Debug, thiserror::Error)]
#[error(
    "webhook delivery failed: {event} of run {run_id} to {url} after {attempts} attempts: {reason}"
)]
pub struct WebhookError {
    /// The event name.
    pub event: &'static str,
    /// The run.
    pub run_id: String,
    /// The URL, without its query string.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's failure (`HTTP 500`, a connection error, …).
    pub reason: String,
}

/// The events that a run's end stands for: `run_stop` always, plus `run_crash` when it failed.
pub fn end_events(status: RunStatus) -> Vec<WebhookEvent> {
    match status {
        RunStatus::Failed => vec![WebhookEvent::RunStop, WebhookEvent::RunCrash],
        _ => vec![WebhookEvent::RunStop],
    }
}

/// The JSON body of `event` for the run `info` (`error_summary` only when set; times and
/// duration only once known).
pub fn payload(event: WebhookEvent, info: &RunInfo) -> serde_json::Value {
    let started = info.start_time_opt();
    let stopped = info.end_time_opt();
    let mut body = serde_json::json!({
        "event": event.as_str(),
        "project_id": info.project_id,
        "task_id": info.task_id,
        "run_id": info.run_id,
        "agent_type": info.agent,
        "status": info.status,
        "exit_code": info.exit_code,
        "started_at": started.map(|t| format_rfc3339_nano(&t)),
        "stopped_at": stopped.map(|t| format_rfc3339_nano(&t)),
        "duration_seconds": started
            .zip(stopped)
            .map(|(a, b)| (b - a).num_milliseconds() as f64 / 1000.0),
    });
    if let (Some(summary), Some(map)) = (&info.error_summary, body.as_object_mut()) {
        map.insert("error_summary".into(), summary.clone().into());
    }
    body
}

/// `sha256=<hex>` HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never falls back.
    let hex = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .map(|mut mac| {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default();
    format!("sha256={hex}")
}

/// Delivers `event` of the run `info` when the filter passes, synchronously with the retries.
/// A final failure is posted as a `WARN` on `task_bus` (and returned); the caller only logs it.
pub fn deliver(
    target: &WebhookTarget,
    event: WebhookEvent,
    info: &RunInfo,
    task_bus: &Path,
) -> Result<(), WebhookError> {
    deliver_with(target, event, info, None, task_bus, &RETRY_DELAYS)
}

/// [`deliver`] of `budget_exceeded` for the run `info` that found the task's budget passed;
/// the body also has `"budget": {max_cost_usd, max_tokens, cost_usd, total_tokens, summary}`.
pub fn deliver_budget_exceeded(
    target: &WebhookTarget,
    info: &RunInfo,
    budget: serde_json::Value,
    task_bus: &Path,
) -> Result<(), WebhookError> {
    deliver_with(
        target,
        WebhookEvent::BudgetExceeded,
        info,
        Some(("budget", budget)),
        task_bus,
        &RETRY_DELAYS,
    )
}

fn deliver_with(
    target: &WebhookTarget,
    event: WebhookEvent,
    info: &RunInfo,
    extra: Option<(&str, serde_json::Value)>,
    task_bus: &Path,
    delays: &[Duration],
) -> Result<(), WebhookError> {
    if !target.wants(event) {
        return Ok(());
    }
    let mut body = payload(event, info);
    if let (Some((key, value)), Some(map)) = (extra, body.as_object_mut()) {
        map.insert(key.to_string(), value);
    }
    let body = body.to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(target.timeout))
        .build()
        .into();
    let mut reason = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut request = agent
            .post(&target.url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("conductor/", env!("CARGO_PKG_VERSION")),
            )
            .header(EVENT_HEADER, event.as_str());
        if let Some(secret) = &target.secret {
            request = request.header(SIGNATURE_HEADER, &signature(secret, body.as_bytes()));
        }
        match request.send(&body) {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(run = %info.run_id, event = event.as_str(), attempt, "webhook delivered");
                return Ok(());
            }
            Ok(resp) => reason = format!("HTTP {}", resp.status()),
            Err(err) => reason = err.to_string(),
        }
        if let Some(delay) = delays.get(attempt as usize - 1) {
            std::thread::sleep(*delay);
        }
    }
    let err = WebhookError {
        event: event.as_str(),
        run_id: info.run_id.clone(),
        url: target.url.split('?').next().unwrap_or_default().to_string(),
        attempts: ATTEMPTS,
        reason,
    };
    warn_on_bus(info, &err, task_bus, target.fsync);
    Err(err)
}

/// Posts the failure as a `WARN` (`webhook delivery failed: …`) on the task bus.
fn warn_on_bus(info: &RunInfo, err: &WebhookError, task_bus: &Path, fsync: bool) {
    let (Ok(project), Ok(task)) = (
        ProjectId::parse(&info.project_id),
        TaskId::parse(&info.task_id),
    ) else {
        tracing::warn!("{err} (not reported on the bus: the run's ids are invalid)");
        return;
    };
    let mut msg = NewMessage::new("WARN", project).task(task).body(format!(
        "webhook delivery failed: {} to {} after {} attempts: {}",
        err.event, err.url, err.attempts, err.reason
    ));
    msg.run_id = RunId::parse(&info.run_id).ok();
    let opts = AppendOptions {
        fsync,
        ..AppendOptions::default()
    };
    if let Err(bus_err) = bus::append(task_bus, &msg, &opts) {
        tracing::warn!(
            "cannot report the webhook failure on {}: {bus_err}",
            task_bus.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn finished_info(status: RunStatus, summary: Option<&str>) -> RunInfo {
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut info =
            RunInfo::new_running("20260102-0304050000-1-1", "demo", "t", "claude", start);
        info.status = status;
        info.exit_code = if status == RunStatus::Failed { 2 } else { 0 };
        info.end_time = start + chrono::Duration::milliseconds(1500);
        info.error_summary = summary.map(str::to_string);
        info
    }

    #[test]
    fn payload_has_the_reference_fields() {
        let body = payload(
            WebhookEvent::RunStop,
            &finished_info(RunStatus::Completed, None),
        );
        assert_eq!(body["event"], "run_stop");
        assert_eq!(body["project_id"], "demo");
        assert_eq!(body["task_id"], "t");
        assert_eq!(body["agent_type"], "claude");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["exit_code"], 0);
        assert_eq!(body["started_at"], "2026-01-02T03:04:05Z");
        assert_eq!(body["duration_seconds"], 1.5);
        assert!(body.get("error_summary").is_none(), "{body}");
        let failed = payload(
            WebhookEvent::RunCrash,
            &finished_info(RunStatus::Failed, Some("boom")),
        );
        assert_eq!(failed["error_summary"], "boom");
        assert_eq!(failed["exit_code"], 2);
    }

    #[test]
    fn every_end_is_a_run_stop_and_failures_also_crash() {
        assert_eq!(end_events(RunStatus::Completed), [WebhookEvent::RunStop]);
        assert_eq!(end_events(RunStatus::Stopped), [WebhookEvent::RunStop]);
        assert_eq!(
            end_events(RunStatus::Failed),
            [WebhookEvent::RunStop, WebhookEvent::RunCrash]
        );
    }

    /// Answers each request with the next status of `statuses`; sends each request's headers.
    fn server(statuses: Vec<u16>) -> (String, mpsc::Receiver<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook?token=abc", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for status in statuses {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut headers, mut len) = (Vec::new(), 0);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    let line = line.trim_end().to_ascii_lowercase();
                    if let Some(v) = line.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    headers.push(line);
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = tx.send(headers);
            }
        });
        (url, rx)
    }

    fn target(url: String) -> WebhookTarget {
        WebhookTarget {
            url,
            secret: Some("s3cret".into()),
            events: Vec::new(),
            timeout: Duration::from_secs(10),
            fsync: false,
        }
    }

    #[test]
    fn a_5xx_is_retried_until_a_2xx() {
        let (url, rx) = server(vec![500, 503, 204]);
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("TASK-MESSAGE-BUS.md");
        let info = finished_info(RunStatus::Completed, None);
        deliver_with(&target(url), WebhookEvent::RunStop, &info, None, &bus, &[]).unwrap();
        let requests: Vec<_> = rx.try_iter().collect();
        assert_eq!(requests.len(), 3);
        assert!(requests[2]
            .iter()
            .any(|h| h.starts_with("x-conductor-signature: sha256=")));
        assert!(requests[2]
            .iter()
            .any(|h| h == "content-type: application/json"));
        assert!(!bus.exists(), "no WARN after a success");
    }

    #[test]
    fn a_final_failure_warns_on_the_bus_without_the_query() {
        let (url, rx) = server(vec![500, 500, 500]);
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("TASK-MESSAGE-BUS.md");
        let info = finished_info(RunStatus::Completed, None);
        let err =
            deliver_with(&target(url), WebhookEvent::RunStop, &info, None, &bus, &[]).unwrap_err();
        assert!(err.reason.starts_with("HTTP 500"), "{}", err.reason);
        assert_eq!(rx.try_iter().count(), 3);
        let text = std::fs::read_to_string(&bus).unwrap();
        assert!(text.contains("type: WARN"), "{text}");
        assert!(
            text.contains("webhook delivery failed: run_stop to http://127.0.0.1:"),
            "{text}"
        );
        assert!(!text.contains("token=abc"), "{text}");
    }

    #[test]
    fn a_filtered_event_is_not_sent() {
        let mut t = target("http://127.0.0.1:9/never".into());
        t.events = vec![WebhookEvent::RunStop];
        assert!(!t.wants(WebhookEvent::RunStart));
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("bus.md");
        let info = finished_info(RunStatus::Completed, None);
        deliver_with(&t, WebhookEvent::RunStart, &info, None, &bus, &[]).unwrap();
        assert!(!bus.exists());
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
