//! Decoding a record header (the YAML between the `---` lines) with serde_yaml. Decoding is
//! lenient about value types, like yaml.v3 decoding into Go strings (`task_id: 123` reads as
//! `"123"`), accepts `parents` both as `{msg_id, kind?, meta?}` mappings and as the legacy list of
//! plain strings, and skips malformed `parents`/`links`/`meta` entries instead of failing. A
//! header is rejected (the parser then resyncs) when it is not a YAML mapping, has no `msg_id`,
//! or has a `ts` that is not a timestamp.

use std::collections::BTreeMap;
use std::fmt;

use crate::yaml::Value;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::header_fast;
use super::message::{Link, Message, Parent};
use crate::storage::time::zero_time;

/// A successfully decoded header.
pub struct DecodedHeader {
    /// The message with every header field set and an empty body.
    pub msg: Message,
    /// Whether all keys every writer emits (`msg_id`, `ts`, `type`, `project_id`, `task_id`,
    /// `run_id`) are present: a header cut short by a torn write usually is not.
    pub complete: bool,
}

/// Decodes header YAML; `None` when it is not a usable header.
pub fn decode(yaml: &[u8]) -> Option<DecodedHeader> {
    header_fast::decode(yaml).or_else(|| decode_with_serde(yaml))
}

/// Decodes header YAML with serde_yaml (every shape).
pub fn decode_with_serde(yaml: &[u8]) -> Option<DecodedHeader> {
    let raw: RawHeader = crate::yaml::from_slice(yaml).ok()?;
    let msg_id = raw.msg_id.as_ref().map(|l| l.0.trim().to_string())?;
    if msg_id.is_empty() {
        return None;
    }
    let ts = match &raw.ts {
        Some(text) => parse_ts(&text.0)?,
        None => zero_time(),
    };
    let complete = raw.ts.is_some()
        && raw.msg_type.is_some()
        && raw.project_id.is_some()
        && raw.task_id.is_some()
        && raw.run_id.is_some();
    let text = |v: Option<Lenient>| v.map(|l| l.0).unwrap_or_default();
    let msg = Message {
        msg_id,
        ts,
        msg_type: text(raw.msg_type),
        project_id: text(raw.project_id),
        task_id: text(raw.task_id),
        run_id: text(raw.run_id),
        issue_id: text(raw.issue_id),
        parents: raw.parents.as_ref().map(parents).unwrap_or_default(),
        links: raw.links.as_ref().map(links).unwrap_or_default(),
        meta: raw.meta.as_ref().map(string_map).unwrap_or_default(),
        body: String::new(),
    };
    Some(DecodedHeader { msg, complete })
}

#[derive(Deserialize)]
struct RawHeader {
    msg_id: Option<Lenient>,
    ts: Option<Lenient>,
    #[serde(rename = "type")]
    msg_type: Option<Lenient>,
    project_id: Option<Lenient>,
    task_id: Option<Lenient>,
    run_id: Option<Lenient>,
    issue_id: Option<Lenient>,
    parents: Option<Value>,
    links: Option<Value>,
    meta: Option<Value>,
}

/// Any YAML scalar as its text.
struct Lenient(String);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Lenient, E> {
                Ok(Lenient(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Timestamps in the forms yaml.v3 decodes into `time.Time`.
pub(super) fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, layout) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn field(map: &crate::yaml::Mapping, key: &str) -> String {
    map.get(key).and_then(scalar_text).unwrap_or_default()
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    let Value::Mapping(map) = value else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(k, v)| Some((scalar_text(k)?, scalar_text(v)?)))
        .collect()
}

fn parents(value: &Value) -> Vec<Parent> {
    let Value::Sequence(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Mapping(map) => Some(Parent {
                msg_id: field(map, "msg_id"),
                kind: field(map, "kind"),
                meta: map.get("meta").map(string_map).unwrap_or_default(),
            }),
            other => scalar_text(other).map(Parent::new),
        })
        .filter(|p| !p.msg_id.is_empty())
        .collect()
}

fn links(value: &Value) -> Vec<Link> {
    let Value::Sequence(items) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Mapping(map) => Some(Link {
                url: field(map, "url"),
                label: field(map, "label"),
                kind: field(map, "kind"),
            }),
            _ => None,
        })
        .filter(|l| !l.url.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_header_with_legacy_parents() {
        let yaml = b"msg_id: MSG-1\nts: 2026-02-23T19:17:10.184887Z\ntype: FACT\n\
            project_id: p\ntask_id: 123\nrun_id: \"\"\nparents:\n    - MSG-0\n    - \"\"\n\
            meta:\n    n: 5\n    ok: true\nunknown_key: ignored\n";
        let h = decode(yaml).unwrap();
        assert!(h.complete);
        assert_eq!(h.msg.task_id, "123");
        assert_eq!(h.msg.parents, vec![Parent::new("MSG-0")]);
        assert_eq!(h.msg.meta["n"], "5");
        assert_eq!(h.msg.meta["ok"], "true");
        assert_eq!(
            crate::storage::time::format_rfc3339_nano(&h.msg.ts),
            "2026-02-23T19:17:10.184887Z"
        );
    }

    #[test]
    fn structured_parents_and_links() {
        let yaml = b"msg_id: MSG-1\nparents:\n    - msg_id: MSG-0\n      kind: child_of\n      meta:\n        a: b\n\
            links:\n    - url: https://x\n      label: L\n    - label: no-url\n";
        let h = decode(yaml).unwrap();
        assert!(!h.complete);
        assert_eq!(h.msg.parents[0].kind, "child_of");
        assert_eq!(h.msg.parents[0].meta["a"], "b");
        assert_eq!(h.msg.links.len(), 1);
        assert_eq!(h.msg.ts, zero_time());
    }

    #[test]
    fn rejects_non_headers() {
        for yaml in [
            &b""[..],
            b"\n",
            b"just text\n",
            b"- a\n- b\n",
            b"type: FACT\n",
            b"msg_id: \"\"\n",
            b"msg_id: x\nts: not-a-time\n",
            b"msg_id: x\nmsg_id: y\n",
            b"msg_id: x\n--\n",
            b"msg_id: \"unterminated\n",
        ] {
            assert!(
                decode(yaml).is_none(),
                "{:?}",
                String::from_utf8_lossy(yaml)
            );
        }
    }
}
