//! Writing one record: `---\n`, the header as yaml.v3 would marshal it (keys in
//! struct order, 4-space indentation, `""` for empty strings, sorted `meta` keys), `---\n`, the
//! escaped body, and a terminating `\n`.
//!
//! The terminator is always added, so a record's body is exactly the bytes between the header's
//! closing `---\n` and the final `\n`; a reader strips exactly that one `\n` and gets the posted
//! body back, trailing newlines included. (The Go writer adds the `\n` only when the body does not
//! already end with one, so it cannot tell `a` from `a\n`; for every body not ending in `\n` the
//! bytes here are identical to its output, and the Go reader returns the exact body for both.)

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::escape;
use super::message::{push_digits, Link, Message, Parent};
use crate::storage::time::format_rfc3339_nano;
use crate::yaml::scalar;

/// The record delimiter line.
pub const DELIMITER: &str = "---\n";

/// The header fields of a record, borrowed (so an append encodes without copying its input).
#[derive(Debug, Clone, Copy)]
pub struct HeaderFields<'a> {
    /// `msg_id`
    pub msg_id: &'a str,
    /// `ts`
    pub ts: &'a DateTime<Utc>,
    /// `type`
    pub msg_type: &'a str,
    /// `project_id`
    pub project_id: &'a str,
    /// `task_id` (written even when empty)
    pub task_id: &'a str,
    /// `run_id` (written even when empty)
    pub run_id: &'a str,
    /// `issue_id` (omitted when empty)
    pub issue_id: &'a str,
    /// `parents` (omitted when empty)
    pub parents: &'a [Parent],
    /// `links` (omitted when empty)
    pub links: &'a [Link],
    /// `meta` (omitted when empty)
    pub meta: &'a BTreeMap<String, String>,
}

impl<'a> From<&'a Message> for HeaderFields<'a> {
    fn from(msg: &'a Message) -> Self {
        Self {
            msg_id: &msg.msg_id,
            ts: &msg.ts,
            msg_type: &msg.msg_type,
            project_id: &msg.project_id,
            task_id: &msg.task_id,
            run_id: &msg.run_id,
            issue_id: &msg.issue_id,
            parents: &msg.parents,
            links: &msg.links,
            meta: &msg.meta,
        }
    }
}

/// Appends the full record for `msg` (no leading separator) to `out`.
pub fn encode_record(msg: &Message, out: &mut Vec<u8>) {
    encode_record_parts(&HeaderFields::from(msg), &msg.body, out);
}

/// Appends the record with header `header` and body `body` (no leading separator) to `out`.
pub fn encode_record_parts(header: &HeaderFields<'_>, body: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(DELIMITER.as_bytes());
    encode_header(header, out);
    out.extend_from_slice(DELIMITER.as_bytes());
    escape::escape_into(body, out);
    out.push(b'\n');
}

/// Appends the YAML header (every line `\n`-terminated) to `out`.
pub fn encode_header(h: &HeaderFields<'_>, out: &mut Vec<u8>) {
    let mut w = HeaderWriter { out };
    w.key_value(0, "msg_id", h.msg_id);
    w.out.extend_from_slice(b"ts: ");
    push_rfc3339_nano(h.ts, w.out);
    w.out.push(b'\n');
    w.key_value(0, "type", h.msg_type);
    w.key_value(0, "project_id", h.project_id);
    w.key_value(0, "task_id", h.task_id);
    w.key_value(0, "run_id", h.run_id);
    if !h.issue_id.is_empty() {
        w.key_value(0, "issue_id", h.issue_id);
    }
    if !h.parents.is_empty() {
        w.key(0, "parents");
        for parent in h.parents {
            w.parent(parent);
        }
    }
    if !h.links.is_empty() {
        w.key(0, "links");
        for link in h.links {
            w.link(link);
        }
    }
    if !h.meta.is_empty() {
        w.key(0, "meta");
        w.map(4, h.meta);
    }
}

/// Go's `RFC3339Nano` in UTC (fraction without trailing zeros), as
/// [`format_rfc3339_nano`] but without allocating.
fn push_rfc3339_nano(ts: &DateTime<Utc>, out: &mut Vec<u8>) {
    if !(0..=9999).contains(&ts.year()) {
        out.extend_from_slice(format_rfc3339_nano(ts).as_bytes());
        return;
    }
    let nanos = ts.timestamp_subsec_nanos().min(999_999_999);
    let ts = ts.naive_utc();
    let mut text = String::with_capacity(30);
    push_digits(&mut text, ts.year() as u64, 4);
    text.push('-');
    push_digits(&mut text, u64::from(ts.month()), 2);
    text.push('-');
    push_digits(&mut text, u64::from(ts.day()), 2);
    text.push('T');
    push_digits(&mut text, u64::from(ts.hour()), 2);
    text.push(':');
    push_digits(&mut text, u64::from(ts.minute()), 2);
    text.push(':');
    push_digits(&mut text, u64::from(ts.second()), 2);
    if nanos > 0 {
        text.push('.');
        let start = text.len();
        push_digits(&mut text, u64::from(nanos), 9);
        let trimmed = text[start..].trim_end_matches('0').len();
        text.truncate(start + trimmed);
    }
    text.push('Z');
    out.extend_from_slice(text.as_bytes());
}

struct HeaderWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl HeaderWriter<'_> {
    fn indent(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(b' ', n));
    }

    fn key(&mut self, indent: usize, key: &str) {
        self.indent(indent);
        self.out.extend_from_slice(scalar::string(key).as_bytes());
        self.out.extend_from_slice(b":\n");
    }

    fn raw_value(&mut self, indent: usize, key: &str, value: &str) {
        self.indent(indent);
        self.out.extend_from_slice(scalar::string(key).as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'\n');
    }

    fn key_value(&mut self, indent: usize, key: &str, value: &str) {
        self.raw_value(indent, key, &scalar::string(value));
    }

    fn map(&mut self, indent: usize, map: &BTreeMap<String, String>) {
        for (key, value) in map {
            self.key_value(indent, key, value);
        }
    }

    /// A sequence item under a top-level key: `    - first: …` then keys at column 6
    /// (yaml.v3 indents a mapping inside a sequence item by the width of `- `), and nested
    /// mappings at the next multiple of 4 (column 8).
    fn item_start(&mut self, key: &str, value: &str) {
        self.indent(4);
        self.out.extend_from_slice(b"- ");
        self.raw_value(0, key, &scalar::string(value));
    }

    fn parent(&mut self, parent: &Parent) {
        self.item_start("msg_id", &parent.msg_id);
        if !parent.kind.is_empty() {
            self.key_value(6, "kind", &parent.kind);
        }
        if !parent.meta.is_empty() {
            self.key(6, "meta");
            self.map(8, &parent.meta);
        }
    }

    fn link(&mut self, link: &Link) {
        self.item_start("url", &link.url);
        if !link.label.is_empty() {
            self.key_value(6, "label", &link.label);
        }
        if !link.kind.is_empty() {
            self.key_value(6, "kind", &link.kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::time::parse_rfc3339;

    fn sample() -> Message {
        let mut msg = Message::empty();
        msg.msg_id = "MSG-20260223-191710-184887000-PID67946-0001".into();
        msg.ts = parse_rfc3339("2026-02-23T19:17:10.1848870Z").unwrap();
        msg.msg_type = "FACT".into();
        msg.project_id = "my-proj".into();
        msg.task_id = "task-20260223-191700-demo".into();
        msg.body = "hello".into();
        msg
    }

    #[test]
    fn minimal_record_matches_go_bytes() {
        let mut out = Vec::new();
        encode_record(&sample(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "---\n\
             msg_id: MSG-20260223-191710-184887000-PID67946-0001\n\
             ts: 2026-02-23T19:17:10.184887Z\n\
             type: FACT\n\
             project_id: my-proj\n\
             task_id: task-20260223-191700-demo\n\
             run_id: \"\"\n\
             ---\n\
             hello\n"
        );
    }

    #[test]
    fn nested_header_layout() {
        let mut msg = sample();
        msg.issue_id = "ISSUE-1".into();
        msg.parents = vec![
            Parent::new("MSG-a"),
            Parent {
                msg_id: "MSG-b".into(),
                kind: "depends_on".into(),
                meta: [("why".to_string(), "yes".to_string())].into(),
            },
        ];
        msg.links = vec![Link {
            url: "https://example.com/x".into(),
            label: "PR: 12".into(),
            kind: String::new(),
        }];
        msg.meta = [
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "x".to_string()),
        ]
        .into();
        let mut out = Vec::new();
        encode_header(&HeaderFields::from(&msg), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with(
                "run_id: \"\"\n\
                 issue_id: ISSUE-1\n\
                 parents:\n    \
                     - msg_id: MSG-a\n    \
                     - msg_id: MSG-b\n      \
                       kind: depends_on\n      \
                       meta:\n        \
                         why: \"yes\"\n\
                 links:\n    \
                     - url: https://example.com/x\n      \
                       label: 'PR: 12'\n\
                 meta:\n    \
                     a: x\n    \
                     b: \"2\"\n"
            ),
            "{text}"
        );
        let value: crate::yaml::Value = crate::yaml::from_str(&text).unwrap();
        assert_eq!(value["parents"][1]["meta"]["why"], "yes");
        assert_eq!(value["links"][0]["label"], "PR: 12");
    }

    #[test]
    fn timestamps_like_go_rfc3339_nano() {
        for text in [
            "2026-02-23T19:17:10Z",
            "2026-02-23T19:17:10.5Z",
            "2026-02-23T19:17:10.000000001Z",
            "0001-01-01T00:00:00Z",
            "2026-12-31T23:59:59.999999999Z",
        ] {
            let ts = parse_rfc3339(text).unwrap();
            let mut out = Vec::new();
            push_rfc3339_nano(&ts, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format_rfc3339_nano(&ts));
        }
    }

    #[test]
    fn body_terminator_always_added() {
        let mut msg = sample();
        for (body, tail) in [
            ("", "---\n\n"),
            ("a\n", "---\na\n\n"),
            ("---", "---\n\\---\n"),
        ] {
            msg.body = body.into();
            let mut out = Vec::new();
            encode_record(&msg, &mut out);
            assert!(String::from_utf8(out).unwrap().ends_with(tail), "{body:?}");
        }
    }
}
