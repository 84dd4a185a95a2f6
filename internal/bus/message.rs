//! Bus records as read ([`Message`]) and as submitted for append ([`NewMessage`]), and the
//! message id format `MSG-YYYYMMDD-HHMMSS-<nanos>-PID<pid>-<seq>`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::storage::ids::{ProjectId, RunId, TaskId};
use crate::storage::time::{format_rfc3339_nano, parse_rfc3339, zero_time};

/// A structured reference to an earlier message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The referenced message id.
    pub msg_id: String,
    /// Relation, e.g. `depends_on`, `blocks`, `child_of`; empty when unset.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Free-form string metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

impl Parent {
    /// A parent reference with only a message id.
    pub fn new(msg_id: impl Into<String>) -> Self {
        Self {
            msg_id: msg_id.into(),
            ..Self::default()
        }
    }
}

/// An advisory link attached to a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Target URL.
    pub url: String,
    /// Human label; empty when unset.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Kind of link; empty when unset.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// One message as read from a bus file. Strings are kept as found (old files may hold ids the
/// current validation would reject); empty means "absent".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `MSG-…`, or `LEGACY-LINE-<line>` for a legacy line.
    pub msg_id: String,
    /// Timestamp (UTC); Go's zero time when the header had none.
    #[serde(serialize_with = "serialize_ts", deserialize_with = "deserialize_ts")]
    pub ts: DateTime<Utc>,
    /// Message type (`FACT`, `RUN_START`, …); free text.
    #[serde(rename = "type")]
    pub msg_type: String,
    /// Project id.
    pub project_id: String,
    /// Task id, possibly empty.
    #[serde(default)]
    pub task_id: String,
    /// Run id, possibly empty.
    #[serde(default)]
    pub run_id: String,
    /// Issue id (set to `msg_id` on `ISSUE` messages); empty when absent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issue_id: String,
    /// Parent references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<Parent>,
    /// Links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// String metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// The body exactly as it was posted.
    pub body: String,
}

impl Message {
    /// An empty message (zero time, empty strings).
    pub fn empty() -> Self {
        Self {
            msg_id: String::new(),
            ts: zero_time(),
            msg_type: String::new(),
            project_id: String::new(),
            task_id: String::new(),
            run_id: String::new(),
            issue_id: String::new(),
            parents: Vec::new(),
            links: Vec::new(),
            meta: BTreeMap::new(),
            body: String::new(),
        }
    }
}

fn serialize_ts<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_nano(ts))
}

fn deserialize_ts<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(zero_time());
    }
    parse_rfc3339(&text)
        .map_err(|e| serde::de::Error::custom(format!("ts {text:?} is not an RFC 3339 time: {e}")))
}

/// A message to append. The id, and the timestamp when not given, are assigned at append time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Message type: 1 to 64 characters of `[A-Za-z0-9_/-]` (see [`crate::bus::append::is_valid_type`]).
    pub msg_type: String,
    /// Project the message belongs to.
    pub project_id: ProjectId,
    /// Task, when the message is about one.
    pub task_id: Option<TaskId>,
    /// Run, when the message is about one.
    pub run_id: Option<RunId>,
    /// Timestamp; now when `None`.
    pub ts: Option<DateTime<Utc>>,
    /// Issue id; for `ISSUE` messages it defaults to the new msg_id.
    pub issue_id: Option<String>,
    /// Parent references.
    pub parents: Vec<Parent>,
    /// Links.
    pub links: Vec<Link>,
    /// String metadata (written with sorted keys).
    pub meta: BTreeMap<String, String>,
    /// The body; any text, including `---` lines (they are escaped on disk).
    pub body: String,
}

impl NewMessage {
    /// A message of `msg_type` for `project_id` with an empty body.
    pub fn new(msg_type: impl Into<String>, project_id: ProjectId) -> Self {
        Self {
            msg_type: msg_type.into(),
            project_id,
            task_id: None,
            run_id: None,
            ts: None,
            issue_id: None,
            parents: Vec::new(),
            links: Vec::new(),
            meta: BTreeMap::new(),
            body: String::new(),
        }
    }

    /// Sets the task.
    pub fn task(mut self, task: TaskId) -> Self {
        self.task_id = Some(task);
        self
    }

    /// Sets the run.
    pub fn run(mut self, run: RunId) -> Self {
        self.run_id = Some(run);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a parent reference by message id.
    pub fn parent(mut self, msg_id: impl Into<String>) -> Self {
        self.parents.push(Parent::new(msg_id));
        self
    }
}

/// Process-wide sequence for message ids (starts at 1, like the reference).
static MSG_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new message id for `now`:
/// `MSG-<UTC YYYYMMDD-HHMMSS>-<9-digit nanos>-PID<pid mod 100000, 5 digits>-<seq mod 10000, 4 digits>`.
pub fn generate_msg_id(now: DateTime<Utc>) -> String {
    let seq = MSG_SEQ.fetch_add(1, Ordering::Relaxed) + 1;
    let now = now.naive_utc();
    let mut id = String::with_capacity(48);
    id.push_str("MSG-");
    push_digits(&mut id, now.year().clamp(0, 9999) as u64, 4);
    push_digits(&mut id, u64::from(now.month()), 2);
    push_digits(&mut id, u64::from(now.day()), 2);
    id.push('-');
    push_digits(&mut id, u64::from(now.hour()), 2);
    push_digits(&mut id, u64::from(now.minute()), 2);
    push_digits(&mut id, u64::from(now.second()), 2);
    id.push('-');
    push_digits(&mut id, u64::from(now.nanosecond().min(999_999_999)), 9);
    id.push_str("-PID");
    push_digits(&mut id, u64::from(pid() % 100_000), 5);
    id.push('-');
    push_digits(&mut id, seq % 10_000, 4);
    id
}

/// This process's id, read once (ids are generated on every append).
fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Appends `value` as exactly `width` zero-padded decimal digits (`value` < 10^width).
pub(crate) fn push_digits(out: &mut String, value: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut v = value;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend(buf[..width].iter().map(|&b| b as char));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_id_format() {
        let now = crate::storage::time::parse_rfc3339("2026-02-23T19:17:10.184887Z").unwrap();
        let id = generate_msg_id(now);
        assert!(id.starts_with("MSG-20260223-191710-184887000-PID"), "{id}");
        let rest = &id["MSG-20260223-191710-184887000-PID".len()..];
        let (pid, seq) = rest.split_once('-').unwrap();
        assert_eq!(pid.len(), 5, "{id}");
        assert_eq!(seq.len(), 4, "{id}");
        assert!(pid.chars().chain(seq.chars()).all(|c| c.is_ascii_digit()));
        assert_ne!(generate_msg_id(now), generate_msg_id(now));
        let pid = format!("PID{:05}-", std::process::id() % 100_000);
        assert!(id.contains(&pid), "{id}");
        let early = crate::storage::time::parse_rfc3339("0999-01-02T03:04:05.000000007Z").unwrap();
        assert!(generate_msg_id(early).starts_with("MSG-09990102-030405-000000007-PID"));
    }

    #[test]
    fn json_shape() {
        let mut msg = Message::empty();
        msg.msg_id = "MSG-1".into();
        msg.msg_type = "FACT".into();
        msg.body = "hi".into();
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["type"], "FACT");
        assert_eq!(json["ts"], "0001-01-01T00:00:00Z");
        assert_eq!(json["task_id"], "");
        assert!(json.get("parents").is_none());
        assert!(json.get("issue_id").is_none());
    }
}
