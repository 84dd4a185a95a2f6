//! A fast decoder for the header shape writers produce for most messages: one `key: scalar`
//! line per key at column 0, keys among `msg_id`, `ts`, `type`, `project_id`, `task_id`,
//! `run_id`, `issue_id`, plain, single- or double-quoted single-line scalars, and a `meta:`
//! mapping of such scalars, one `key: value` line each at column 4. Anything else (parents,
//! links, comments, other indentation, block scalars, unusual escapes, CRLF, …) returns
//! `None` and the caller decodes with serde_yaml. On every header it accepts it agrees with the
//! serde_yaml decoder (tested), at a fraction of the cost — reading a large bus is dominated by
//! header decoding.

use std::collections::BTreeMap;

use super::header::{parse_ts, DecodedHeader};
use super::message::Message;
use crate::storage::time::zero_time;
use crate::yaml::scalar;

const MSG_ID: usize = 0;
const TS: usize = 1;
const TYPE: usize = 2;
const PROJECT: usize = 3;
const TASK: usize = 4;
const RUN: usize = 5;
const ISSUE: usize = 6;

/// Decodes `yaml` if it has the simple shape and a non-empty `msg_id` and valid `ts`.
pub fn decode(yaml: &[u8]) -> Option<DecodedHeader> {
    let text = std::str::from_utf8(yaml).ok()?;
    if text.contains('\r') {
        return None;
    }
    let mut fields: [Option<String>; 7] = Default::default();
    // `Some` once a `meta:` line was read; its entries follow at column 4.
    let mut meta: Option<BTreeMap<String, String>> = None;
    let mut in_meta = false;
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(entry) = line.strip_prefix(META_INDENT) {
            let entries = meta.as_mut().filter(|_| in_meta)?;
            let (key, value) = meta_entry(entry)?;
            if entries.insert(key, value).is_some() {
                return None; // duplicate key: let serde_yaml reject it
            }
            continue;
        }
        if meta.as_ref().is_some_and(BTreeMap::is_empty) {
            return None; // `meta:` with no entries reads as null: let serde_yaml decide
        }
        in_meta = false;
        if line == "meta:" {
            if meta.is_some() {
                return None;
            }
            meta = Some(BTreeMap::new());
            in_meta = true;
            continue;
        }
        let colon = line.as_bytes().iter().position(|&b| b == b':')?;
        let key = &line[..colon];
        let value = line[colon + 1..].strip_prefix(' ')?;
        let slot = match key {
            "msg_id" => MSG_ID,
            "ts" => TS,
            "type" => TYPE,
            "project_id" => PROJECT,
            "task_id" => TASK,
            "run_id" => RUN,
            "issue_id" => ISSUE,
            _ => return None,
        };
        if fields[slot].is_some() {
            return None; // duplicate key: let serde_yaml reject it
        }
        let text = if slot == TS && is_plain_timestamp(value) {
            value.to_string()
        } else {
            scalar::decode_one_line(value)?
        };
        fields[slot] = Some(text);
    }
    if meta.as_ref().is_some_and(BTreeMap::is_empty) {
        return None;
    }
    let msg_id = fields[MSG_ID].take()?.trim().to_string();
    if msg_id.is_empty() {
        return None;
    }
    let ts = match &fields[TS] {
        Some(text) => parse_ts(text)?,
        None => zero_time(),
    };
    let complete = fields[TS..=RUN].iter().all(Option::is_some);
    let mut take = |slot: usize| fields[slot].take().unwrap_or_default();
    let mut msg = Message::empty();
    msg.msg_id = msg_id;
    msg.ts = ts;
    msg.msg_type = take(TYPE);
    msg.project_id = take(PROJECT);
    msg.task_id = take(TASK);
    msg.run_id = take(RUN);
    msg.issue_id = take(ISSUE);
    msg.meta = meta.unwrap_or_default();
    Some(DecodedHeader { msg, complete })
}

/// How writers indent the entries of `meta`.
const META_INDENT: &str = "    ";

/// One `key: value` entry of `meta` (after its indentation), both one-line scalars.
fn meta_entry(entry: &str) -> Option<(String, String)> {
    if entry.starts_with(' ') {
        return None;
    }
    let colon = entry.as_bytes().iter().position(|&b| b == b':')?;
    let key = scalar::decode_one_line(&entry[..colon])?;
    let value = scalar::decode_one_line(entry[colon + 1..].strip_prefix(' ')?)?;
    Some((key, value))
}

/// A plain RFC3339 timestamp as writers emit `ts` (serde_yaml reads it as that text).
fn is_plain_timestamp(value: &str) -> bool {
    value.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b'+' | b'T' | b'Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::format::{encode_header, HeaderFields};
    use crate::bus::header::decode_with_serde;
    use proptest::prelude::*;

    fn same(yaml: &str) {
        let fast = decode(yaml.as_bytes());
        let slow = decode_with_serde(yaml.as_bytes());
        if let Some(fast) = fast {
            let slow = slow.unwrap_or_else(|| panic!("fast accepted, serde rejected: {yaml:?}"));
            assert_eq!(fast.msg, slow.msg, "{yaml:?}");
            assert_eq!(fast.complete, slow.complete, "{yaml:?}");
        }
    }

    #[test]
    fn canonical_headers_take_the_fast_path() {
        let yaml = "msg_id: MSG-1\nts: 2026-02-23T19:17:10.184887Z\ntype: FACT\nproject_id: p\n\
                    task_id: \"\"\nrun_id: 20260223-2048580000-66788-1\n";
        let h = decode(yaml.as_bytes()).expect("fast path");
        assert!(h.complete);
        assert_eq!(h.msg.run_id, "20260223-2048580000-66788-1");
        same(yaml);
        for other in [
            "msg_id: x\nparents:\n    - a\n",
            "msg_id: x # comment\n",
            "msg_id: x\n  indented: y\n",
            "msg_id: x\r\n",
            "msg_id: x\nmsg_id: y\n",
            "msg_id: \"a\\qb\"\n",
            "msg_id: 0x1F\n",
            "msg_id: x\ntask_id:\n",
            "msg_id: x\nmeta:\n",
            "msg_id: x\nmeta:\ntype: t\n",
            "msg_id: x\nmeta: {}\n",
            "msg_id: x\nmeta:\n    a: 1\n    a: 2\n",
            "msg_id: x\nmeta:\n      a: 1\n",
            "msg_id: x\nmeta:\n    a: b: c\n",
            "msg_id: x\nmeta:\n    a: 12\n",
            "msg_id: x\nmeta:\n    a: b\nmeta:\n    c: d\n",
            "msg_id: x\ntype: t\n    a: b\n",
        ] {
            assert!(decode(other.as_bytes()).is_none(), "{other:?}");
        }
    }

    #[test]
    fn a_meta_mapping_of_scalars_takes_the_fast_path() {
        let yaml = "msg_id: MSG-1\nts: 2026-02-23T19:17:10.184887Z\ntype: FACT\nproject_id: p\n\
                    task_id: t\nrun_id: \"\"\nmeta:\n    kind: task_completion\n    \
                    run_count: \"12\"\n    \"odd key\": 'it''s'\n";
        let h = decode(yaml.as_bytes()).expect("fast path");
        assert_eq!(h.msg.meta["kind"], "task_completion");
        assert_eq!(h.msg.meta["run_count"], "12");
        assert_eq!(h.msg.meta["odd key"], "it's");
        same(yaml);
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[-+.:#'\" 0-9a-zA-Z_~?!|>@`,\\[\\]{}\\\\]{0,10}",
            Just(String::new()),
        ]
    }

    proptest! {
        #[test]
        fn encoded_headers_decode_the_same_both_ways(
            id in "[A-Za-z0-9-]{1,20}",
            ty in value(),
            task in value(),
            run in value(),
            issue in value(),
            meta in proptest::collection::btree_map(value(), value(), 0..4),
        ) {
            let ts = chrono::Utc::now();
            let (parents, links) = (Vec::new(), Vec::new());
            let h = HeaderFields {
                msg_id: &id, ts: &ts, msg_type: &ty, project_id: "p", task_id: &task,
                run_id: &run, issue_id: &issue, parents: &parents, links: &links, meta: &meta,
            };
            let mut out = Vec::new();
            encode_header(&h, &mut out);
            let yaml = String::from_utf8(out).unwrap();
            same(&yaml);
        }

        #[test]
        fn hand_written_meta_lines_agree_when_accepted(
            entries in proptest::collection::vec(
                (prop_oneof!["[a-z_]{1,6}", "\"[ -~]{0,6}\"", "[ -~]{0,6}"],
                 prop_oneof!["\"[ -~]{0,8}\"", "'[ -~]{0,8}'", "[ -~]{0,10}"],
                 prop_oneof![Just("    "), Just("  "), Just("     ")]),
                0..4,
            )
        ) {
            let mut yaml = String::from("msg_id: base\nmeta:\n");
            for (k, v, indent) in entries {
                yaml.push_str(&format!("{indent}{k}: {v}\n"));
            }
            same(&yaml);
        }

        #[test]
        fn hand_written_lines_agree_when_accepted(
            lines in proptest::collection::vec(
                (prop_oneof![Just("msg_id"), Just("type"), Just("task_id"), Just("ts")],
                 prop_oneof![
                    "\"[ -~]{0,8}\"",
                    "'[ -~]{0,8}'",
                    "[ -~]{0,10}",
                 ]),
                1..5,
            )
        ) {
            let mut yaml = String::from("msg_id: base\n");
            for (k, v) in lines {
                yaml.push_str(&format!("{k}: {v}\n"));
            }
            same(&yaml);
        }
    }
}
