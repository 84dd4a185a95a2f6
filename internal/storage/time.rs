//! Timestamps as the Go reference writes them: RFC3339 with nanoseconds, trailing zeros
//! trimmed (Go's `RFC3339Nano`), UTC, and `0001-01-01T00:00:00Z` as "not set".

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// The zero time written for `end_time` while a run is running.
pub const ZERO_TIME_TEXT: &str = "0001-01-01T00:00:00Z";

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`).
pub fn zero_time() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether `t` is the zero time ("not set").
pub fn is_zero(t: &DateTime<Utc>) -> bool {
    *t == zero_time()
}

/// Formats like Go's `time.RFC3339Nano` in UTC: `2026-02-23T20:48:58.1234Z`.
pub fn format_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let mut text = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // "….123400000Z" → "….1234Z"; "….000000000Z" → "…Z".
    if let Some(dot) = text.rfind('.') {
        let frac_end = text.len() - 1;
        let trimmed = text[dot + 1..frac_end].trim_end_matches('0').len();
        let keep = if trimmed == 0 { dot } else { dot + 1 + trimmed };
        text.replace_range(keep..frac_end, "");
    }
    text
}

/// Parses an RFC3339 timestamp (any offset, any fraction) into UTC.
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text.trim()).map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_nanos() {
        let t = parse_rfc3339("2026-02-23T20:48:58.123400000Z").unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2026-02-23T20:48:58.1234Z");
        let t = parse_rfc3339("2026-02-23T20:48:58Z").unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2026-02-23T20:48:58Z");
        let t = parse_rfc3339("2026-02-23T21:48:58.5+01:00").unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2026-02-23T20:48:58.5Z");
    }

    #[test]
    fn zero_time_round_trips() {
        assert_eq!(format_rfc3339_nano(&zero_time()), ZERO_TIME_TEXT);
        assert!(is_zero(&parse_rfc3339(ZERO_TIME_TEXT).unwrap()));
    }
}
