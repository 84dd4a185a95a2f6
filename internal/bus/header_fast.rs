//! A fast decoder for the header shape writers produce for most messages: one `key: scalar`
//! line per key at column 0, keys among `msg_id`, `ts`, `type`, `project_id`, `task_id`,
//! `run_id`, `issue_id`, and plain, single- or double-quoted single-line scalars. Anything else
//! (parents, links, meta, comments, indentation, block scalars, unusual escapes, CRLF, …) returns
//! `None` and the caller decodes with serde_yaml. On every header it accepts it agrees with the
//! serde_yaml decoder (tested), at a fraction of the cost — reading a large bus is dominated by
//! header decoding.

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
    for line in text.split('\n') {
        if line.is_empty() {
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
    Some(DecodedHeader { msg, complete })
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
        ] {
            assert!(decode(other.as_bytes()).is_none(), "{other:?}");
        }
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
        ) {
            let ts = chrono::Utc::now();
            let (parents, links, meta) = (Vec::new(), Vec::new(), Default::default());
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
