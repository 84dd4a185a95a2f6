//! Emits YAML scalars the way Go's yaml.v3 does for plain strings: unquoted when that reads
//! back as the same string, double-quoted otherwise.

/// `value` as a YAML scalar that parses back to exactly `value` as a string.
pub fn string(value: &str) -> String {
    if is_plain_safe(value) {
        value.to_string()
    } else {
        quoted(value)
    }
}

fn is_plain_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if value.starts_with(' ') || value.ends_with(' ') || value.ends_with(':') {
        return false;
    }
    // A leading '-' is fine before a non-space ("-x"), but not alone, as "- " or as "---".
    let dash_ok =
        first == '-' && !value.starts_with("- ") && !value.starts_with("---") && value.len() > 1;
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) && !dash_ok {
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.chars().any(|c| c.is_control()) {
        return false;
    }
    !resolves_to_non_string(value)
}

/// True when a plain scalar would be read as null, bool or number (YAML 1.1 or 1.2).
fn resolves_to_non_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return true;
    }
    let digits = value.trim_start_matches(['+', '-']);
    if digits.starts_with("0x") || digits.starts_with("0o") || digits.starts_with("0b") {
        return true;
    }
    value.parse::<f64>().is_ok() || value.replace('_', "").parse::<i64>().is_ok()
}

fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &str) {
        let doc = format!("k: {}\n", string(value));
        let parsed: std::collections::BTreeMap<String, String> =
            serde_yaml::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
        assert_eq!(parsed["k"], value, "{doc:?}");
    }

    #[test]
    fn plain_when_safe_quoted_otherwise() {
        assert_eq!(string("claude"), "claude");
        assert_eq!(string(""), "\"\"");
        assert_eq!(string("true"), "\"true\"");
        assert_eq!(string("123"), "\"123\"");
        assert_eq!(string("/tmp/a b/prompt.md"), "/tmp/a b/prompt.md");
        for v in [
            "",
            "true",
            "no",
            "123",
            "1.5",
            "0x1f",
            "a: b",
            "#x",
            "a #b",
            "- x",
            "-",
            "---",
            "line\nbreak",
            "tab\t",
            " lead",
            "trail ",
            "quote\"s",
            "back\\slash",
            "ü",
            "'",
            "null",
            "~",
            "20260223-2048580000-66788-1",
            "claude -p < /x/prompt.md",
            "-x",
            "a:",
            "@x",
        ] {
            round_trip(v);
        }
    }
}
