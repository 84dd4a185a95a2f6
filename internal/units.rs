//! The one parser of durations (flags and config alike: `500ms`, `90s`, `30m`, `1h30m`, bare
//! seconds), gc's ages (the same forms with a unit required) and sizes (`512B`, `64KB`, `10MB`,
//! `1GB`, base 1024), and their display.

use std::time::Duration;

/// Units accepted in an age, as shown in error messages.
pub const AGE_FORMS: &str =
    "a whole number followed by s, m, h or d, optionally combined (e.g. 90s, 30m, 36h, 7d, 1h30m)";

/// Units accepted in a size, as shown in error messages.
pub const SIZE_FORMS: &str =
    "a number followed by B, KB, MB or GB (base 1024, any case; e.g. 512KB, 10MB, 1.5GB)";

/// Units accepted in a duration, as shown in error messages.
pub const DURATION_FORMS: &str =
    "a number of seconds, or numbers with units ms, s, m, h, d, optionally combined (e.g. 500ms, 90s, 30m, 2h, 1h30m, 7d)";

/// Parses a duration of a flag or the config: `500ms`, `90s`, `30m`, `2h`, `7d`, `1h30m`
/// (any unit of `humantime`), or a bare whole number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    if trimmed.starts_with(|c: char| !c.is_ascii_digit()) || trimmed.contains(char::is_whitespace) {
        return Err(format!(
            "invalid duration {text:?}; expected {DURATION_FORMS}"
        ));
    }
    humantime::parse_duration(trimmed).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => format!("duration {text:?} is too large"),
        _ => format!("invalid duration {text:?}; expected {DURATION_FORMS}"),
    })
}

/// Parses an age such as `7d` or `1h30m` ([`parse_duration`]'s forms). A unit is required: a
/// bare `7` is rejected rather than read as seconds, because that reading would make gc delete
/// nearly everything.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty duration; expected {AGE_FORMS}"));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid duration {text:?}: {trimmed:?} has no unit; expected {AGE_FORMS}"
        ));
    }
    parse_duration(trimmed).map_err(|e| e.replace(DURATION_FORMS, AGE_FORMS))
}

/// Parses a size such as `10MB` (base 1024, unit case-insensitive). A bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" => 1 << 10,
        "MB" | "M" => 1 << 20,
        "GB" | "G" => 1 << 30,
        _ => return Err(format!("invalid size {text:?}; expected {SIZE_FORMS}")),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(format!("invalid size {text:?}; expected {SIZE_FORMS}"));
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| format!("size {text:?} is too large"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}; expected {SIZE_FORMS}"))?;
    let bytes = (value * multiplier as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size {text:?} is too large"));
    }
    Ok(bytes as u64)
}

/// Formats a byte count for people: `512 B`, `1.5 KB`, `12.3 MB`, `2.0 GB` (base 1024).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Formats an age compactly in the same units [`parse_age`] accepts: `7d`, `36h`, `1h30m`.
pub fn format_age(age: Duration) -> String {
    let mut secs = age.as_secs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |t: &str| parse_duration(t).unwrap();
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("30m"), Duration::from_secs(1_800));
        assert_eq!(ok("2h"), Duration::from_secs(7_200));
        assert_eq!(ok("1h30m"), Duration::from_secs(5_400));
        assert_eq!(ok("1d"), Duration::from_secs(86_400));
        assert_eq!(ok(" 0 "), Duration::ZERO);
        for bad in ["", "m", "5x", "soon", "-5m", "1 h", "h7"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(
                err.contains("duration") && err.contains("500ms"),
                "{bad}: {err}"
            );
        }
        assert!(parse_duration("99999999999999999999d")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_age("30m").unwrap(), Duration::from_secs(1_800));
        assert_eq!(parse_age("36h").unwrap(), Duration::from_secs(129_600));
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_age(" 1h30m ").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_age("168h0m0s").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_age("0s").unwrap(), Duration::ZERO);
        for bad in ["", "7", "7x", "d", "-1h", "7 d", "h7"] {
            let err = parse_age(bad).unwrap_err();
            assert!(err.contains("duration"), "{bad}: {err}");
        }
        assert!(parse_age("99999999999999999999d").is_err());
        assert!(parse_age("7").unwrap_err().contains("no unit"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_size("10mb").unwrap(), 10 << 20);
        assert_eq!(parse_size("64Kb").unwrap(), 64 << 10);
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("100B").unwrap(), 100);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("1.5KB").unwrap(), 1_536);
        assert_eq!(parse_size("0B").unwrap(), 0);
        for bad in [
            "", "MB", "10TB", "ten MB", "10 MBs", "-1MB", "1..5MB", ".5MB", "5.MB",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.contains("size"), "{bad}: {err}");
        }
        assert!(parse_size("99999999999GB").is_err());
    }

    #[test]
    fn display() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1_536), "1.5 KB");
        assert_eq!(format_bytes(10 << 20), "10.0 MB");
        assert_eq!(format_age(Duration::from_secs(604_800)), "7d");
        assert_eq!(format_age(Duration::from_secs(5_400)), "1h30m");
        assert_eq!(format_age(Duration::ZERO), "0s");
    }
}
