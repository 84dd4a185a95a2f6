//! The legacy one-line message format `[ts] TYPE: body`, read (never written) before the first
//! framed record of a file. The timestamp is `2006-01-02 15:04:05`, `2006-01-02T15:04:05`
//! (both UTC, optional fraction) or RFC3339; TYPE is `[A-Za-z0-9_/-]+` and is upper-cased;
//! without a valid TYPE the type is `INFO` and the body is the whole text after `]`.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::message::Message;

/// Parses one line (without its line break); `line_no` is 1-based and becomes the id
/// `LEGACY-LINE-<9 digits>`. Lines that do not match are not messages.
pub fn parse_line(line: &str, line_no: u64) -> Option<Message> {
    let trimmed = line.trim();
    let rest = trimmed.strip_prefix('[')?;
    let closing = rest.find(']')?;
    if closing == 0 {
        return None;
    }
    let ts = parse_ts(rest[..closing].trim())?;
    let content = rest[closing + 1..].trim();
    if content.is_empty() {
        return None;
    }
    let mut msg_type = "INFO".to_string();
    let mut body = content;
    if let Some(colon) = content.find(':').filter(|&c| c > 0) {
        let candidate = content[..colon].trim();
        if is_type_token(candidate) {
            msg_type = candidate.to_ascii_uppercase();
            body = content[colon + 1..].trim();
        }
    }
    if body.is_empty() {
        body = content;
    }
    let mut msg = Message::empty();
    msg.msg_id = format!("LEGACY-LINE-{line_no:09}");
    msg.ts = ts;
    msg.msg_type = msg_type;
    msg.body = body.to_string();
    Some(msg)
}

fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    for layout in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, layout) {
            return Some(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn is_type_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::time::format_rfc3339_nano;

    #[test]
    fn typed_and_untyped_lines() {
        let m = parse_line("[2026-02-20 10:00:00] fact: build is green", 3).unwrap();
        assert_eq!(m.msg_id, "LEGACY-LINE-000000003");
        assert_eq!(m.msg_type, "FACT");
        assert_eq!(m.body, "build is green");
        assert_eq!(format_rfc3339_nano(&m.ts), "2026-02-20T10:00:00Z");

        let m = parse_line("  [2026-02-20T10:00:00.5] just words here  ", 1).unwrap();
        assert_eq!(m.msg_type, "INFO");
        assert_eq!(m.body, "just words here");

        let m = parse_line("[2026-02-20T11:00:00+01:00] two words: body", 1).unwrap();
        assert_eq!(m.msg_type, "INFO");
        assert_eq!(m.body, "two words: body");
        assert_eq!(format_rfc3339_nano(&m.ts), "2026-02-20T10:00:00Z");

        let m = parse_line("[2026-02-20 10:00:00] ERROR:", 1).unwrap();
        assert_eq!((m.msg_type.as_str(), m.body.as_str()), ("ERROR", "ERROR:"));
    }

    #[test]
    fn non_matching_lines() {
        for line in [
            "",
            "text",
            "[] x",
            "[not a time] x",
            "[2026-02-20 10:00:00]",
            "# heading",
        ] {
            assert!(parse_line(line, 1).is_none(), "{line:?}");
        }
    }
}
