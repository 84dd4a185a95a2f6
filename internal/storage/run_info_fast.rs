//! A fast decoder for the shape writers give run-info.yaml: one `key: scalar` line per key at
//! column 0, with plain, single- or double-quoted one-line scalars, plain integers and plain
//! RFC3339 times. Anything else (comments, indentation, block or flow values, anchors, tags,
//! duplicate keys, CRLF, empty integer values, …) returns `None` and [`RunInfo::parse`]
//! decodes the text with the YAML parser. On every document it accepts it yields what the
//! YAML path yields (tested below), several times faster — listing a large tree is dominated by
//! decoding run-info files.

use std::collections::HashSet;

use super::run_info::{RunInfo, RunStatus};
use super::time::{parse_rfc3339, zero_time};
use super::usage::CostSource;
use crate::yaml::scalar::decode_one_line;
use crate::yaml::Value;

/// Decodes `text` when it has the simple shape.
pub(crate) fn decode(text: &str) -> Option<RunInfo> {
    if text.contains('\r') || text.trim().is_empty() {
        return None;
    }
    let mut info = RunInfo::new_running("", "", "", "", zero_time());
    info.version = 0;
    info.exit_code = 0;
    info.status = RunStatus::Unknown;
    let mut seen: HashSet<&str> = HashSet::with_capacity(32);
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        let colon = line.find(':')?;
        let key = &line[..colon];
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        let rest = &line[colon + 1..];
        let value = if rest.is_empty() {
            ""
        } else {
            rest.strip_prefix(' ')?
        };
        if value.starts_with(' ') || !seen.insert(key) {
            return None;
        }
        match key {
            "version" => info.version = int(value)?,
            "run_id" => info.run_id = string(value)?.trim().to_string(),
            "parent_run_id" => info.parent_run_id = opt_string(value)?,
            "previous_run_id" => info.previous_run_id = opt_string(value)?,
            "project_id" => info.project_id = string(value)?.trim().to_string(),
            "task_id" => info.task_id = string(value)?.trim().to_string(),
            "agent" => info.agent = string(value)?,
            "process_ownership" => info.process_ownership = opt_string(value)?,
            "pid" => info.pid = int(value)?,
            "pgid" => info.pgid = int(value)?,
            "start_time" => info.start_time = time(value)?,
            "end_time" => info.end_time = time(value)?,
            "exit_code" => info.exit_code = int(value)?,
            "status" => info.status = RunStatus::from_text(&string(value)?),
            "cwd" => info.cwd = opt_string(value)?,
            "prompt_path" => info.prompt_path = opt_string(value)?,
            "output_path" => info.output_path = opt_string(value)?,
            "stdout_path" => info.stdout_path = opt_string(value)?,
            "stderr_path" => info.stderr_path = opt_string(value)?,
            "commandline" => info.commandline = opt_string(value)?,
            "error_summary" => info.error_summary = opt_string(value)?,
            "agent_version" => info.agent_version = string(value)?,
            "agent_session_id" => info.agent_session_id = opt_string(value)?,
            "pid_start_time" => info.pid_start_time = Some(uint(value)?),
            "restart_index" => info.restart_index = Some(uint(value)?),
            "agent_name" => info.agent_name = opt_string(value)?,
            "model" => info.usage_mut().model = opt_string(value)?,
            "input_tokens" => info.usage_mut().input_tokens = uint(value)?,
            "cached_input_tokens" => info.usage_mut().cached_input_tokens = uint(value)?,
            "output_tokens" => info.usage_mut().output_tokens = uint(value)?,
            "cost_usd" => info.usage_mut().cost_usd = Some(float(value)?),
            "cost_source" => info.usage_mut().cost_source = CostSource::from_text(&string(value)?),
            other => info.extra.push((other.to_string(), unknown(value)?)),
        }
    }
    Some(info)
}

/// A plain decimal integer without leading zeros (what YAML reads as the same number).
fn decimal(value: &str) -> Option<&str> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    ok.then_some(value)
}

fn int(value: &str) -> Option<i64> {
    if value.is_empty() {
        return Some(0); // null reads as 0
    }
    decimal(value)?.parse().ok()
}

fn uint(value: &str) -> Option<u64> {
    decimal(value)?.parse().ok()
}

/// A plain non-negative decimal number, `123` or `0.0123` (what writers give `cost_usd`).
fn float(value: &str) -> Option<f64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "0"));
    let plain = decimal(whole).is_some_and(|w| !w.starts_with('-'))
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| value.parse().ok()).flatten()
}

fn string(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some(String::new()); // null reads as ""
    }
    decode_one_line(value)
}

fn opt_string(value: &str) -> Option<Option<String>> {
    let s = string(value)?;
    Some((!s.is_empty()).then_some(s))
}

fn time(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let plain_time = value.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b'+' | b'T' | b'Z'));
    let text = if plain_time {
        value.to_string()
    } else {
        string(value)?
    };
    if text.is_empty() {
        return Some(zero_time());
    }
    // A malformed time is an error the YAML path reports with its message.
    parse_rfc3339(&text).ok()
}

/// A key this version does not know: kept as the YAML path keeps it, for strings and integers.
fn unknown(value: &str) -> Option<Value> {
    if value.is_empty() {
        return None;
    }
    if let Some(n) = decimal(value).and_then(|d| d.parse::<i64>().ok()) {
        return Some(Value::Number(n.into()));
    }
    decode_one_line(value).map(Value::String)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slow(text: &str) -> Result<RunInfo, String> {
        RunInfo::parse_with_yaml(text)
    }

    fn same(text: &str) {
        if let Some(fast) = decode(text) {
            let slow = slow(text)
                .unwrap_or_else(|e| panic!("fast accepted, YAML rejected ({e}): {text:?}"));
            assert_eq!(fast, slow, "{text:?}");
        }
    }

    #[test]
    fn written_records_take_the_fast_path() {
        let mut info = RunInfo::new_running("r-1", "p", "task-1", "claude", chrono::Utc::now());
        info.cwd = Some("/tmp/a b".into());
        info.commandline = Some("claude -p --x \"quoted\" 'single' #hash: colon".into());
        info.error_summary = Some("true".into());
        info.pid_start_time = Some(77);
        info.agent_name = Some("reviewer".into());
        info.extra
            .push(("future_name".into(), Value::String("opus".into())));
        info.extra
            .push(("future_count".into(), Value::Number(1234.into())));
        info.usage = Some(crate::storage::usage::Usage {
            model: Some("claude-sonnet-4-5".into()),
            input_tokens: 120,
            cached_input_tokens: 100,
            output_tokens: 7,
            cost_usd: Some(0.000138),
            cost_source: Some(CostSource::Reported),
        });
        let text = info.to_yaml();
        let fast = decode(&text).expect("fast path");
        assert_eq!(fast, info);
        same(&text);
    }

    #[test]
    fn unusual_shapes_fall_back() {
        for text in [
            "run_id: x\n# comment\n",
            "run_id: x # comment\n",
            "run_id: x\n  indented: y\n",
            "run_id: x\r\n",
            "run_id: x\nrun_id: y\n",
            "pid: 0x1F\n",
            "pid: 007\n",
            "pid_start_time:\n",
            "cwd: |\n  text\n",
            "cwd: [a, b]\n",
            "commandline: \"unterminated\n",
            "other: 1.5\n",
            "status: ~\n",
            "",
        ] {
            assert!(decode(text).is_none(), "{text:?}");
        }
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>().prop_map(|s| crate::yaml::scalar::string(&s).into_owned()),
            "\"[ -~]{0,8}\"",
            "'[ -~]{0,8}'",
            "[ -~]{0,10}",
            "-?[0-9]{1,4}",
            "[0-9]{1,3}\\.[0-9]{1,4}",
            Just("2026-02-23T20:48:58.123Z".to_string()),
        ]
    }

    proptest! {
        #[test]
        fn accepted_documents_agree_with_yaml(
            lines in proptest::collection::vec(
                (prop_oneof![
                    Just("run_id"), Just("pid"), Just("status"), Just("start_time"),
                    Just("commandline"), Just("pid_start_time"), Just("agent_name"),
                    Just("exit_code"), Just("cwd"), Just("cost_usd"), Just("input_tokens"),
                 ], scalar()),
                1..6,
            )
        ) {
            let mut text = String::new();
            for (k, v) in lines {
                text.push_str(&format!("{k}: {v}\n"));
            }
            same(&text);
        }
    }
}
