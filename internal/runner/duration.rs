//! Durations on the command line: `500ms`, `90s`, `30m`, `2h`, `1h30m`, or bare seconds.

use std::time::Duration;

use super::error::RunnerError;

/// Parses a duration flag ([`crate::units::parse_duration`]); `what` names the flag in the error.
pub fn parse_duration(what: &str, text: &str) -> Result<Duration, RunnerError> {
    crate::units::parse_duration(text).map_err(|message| RunnerError::invalid(what, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(
            parse_duration("--t", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("--t", "90").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_duration("--t", "1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        let err = parse_duration("--timeout", "soon").unwrap_err().to_string();
        assert!(err.contains("--timeout") && err.contains("500ms"), "{err}");
    }
}
