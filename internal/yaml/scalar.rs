//! YAML string scalars styled the way Go's yaml.v3 styles them, so bus headers written here
//! look like the reference's: plain when the text reads back as the same string, double-quoted
//! when it would resolve to another type (`""`, `true`, `123`, `1:20`, `2026-01-02`, …) or holds
//! control characters or line breaks, single-quoted when only YAML indicators forbid plain style.
//! (yaml.v3 writes multi-line strings as `|-` blocks; here they are double-quoted, which every
//! YAML reader decodes to the same string.)

use std::borrow::Cow;

/// `value` as a YAML scalar that decodes back to exactly `value`.
pub fn string(value: &str) -> Cow<'_, str> {
    if is_simple(value) {
        return Cow::Borrowed(value);
    }
    if has_special_chars(value) || !resolves_to_string(value) {
        return Cow::Owned(double_quoted(value));
    }
    if plain_allowed(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(single_quoted(value))
    }
}

/// Whether `value` is written as a plain scalar (and so reads back as exactly this string).
pub fn is_plain(value: &str) -> bool {
    is_simple(value)
        || (!has_special_chars(value) && resolves_to_string(value) && plain_allowed(value))
}

/// The common case, decided fast: an ASCII letter, then only `[A-Za-z0-9._/-]`, and not one
/// of the words YAML reads as null or bool.
fn is_simple(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'))
        && (b.len() > 5 || !is_special_word(value))
}

/// Plain scalars yaml.v3 (and YAML 1.1 readers) resolve to null, bool, float or a merge key.
fn is_special_word(value: &str) -> bool {
    matches!(
        value,
        "~" | "null"
            | "Null"
            | "NULL"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "y"
            | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
            | "<<"
    )
}

/// Characters only double quotes can carry: line breaks, tabs, other control characters,
/// and the Unicode line/paragraph separators and BOM.
fn has_special_chars(value: &str) -> bool {
    value.chars().any(needs_escape)
}

/// Control characters, BOM, line/paragraph separators and the non-characters YAML forbids.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{FEFF}' | '\u{2028}' | '\u{2029}' | '\u{FFFE}' | '\u{FFFF}'
        )
}

/// False when a plain scalar with this text would be read as null, bool, number or timestamp
/// (yaml.v3 `resolve`, plus its YAML 1.1 `isOldBool` and `isBase60Float` checks).
fn resolves_to_string(value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    if is_special_word(value) {
        return false;
    }
    let first = value.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return true;
    }
    let plain: Cow<'_, str> = if value.contains('_') {
        Cow::Owned(value.replace('_', ""))
    } else {
        Cow::Borrowed(value)
    };
    !(is_int(&plain) || is_float(&plain) || is_base60(value) || is_timestamp(value))
}

/// Go `strconv.ParseInt(s, 0, 64)`-like: optional sign, then decimal, `0x`, `0o`, `0b` or a
/// leading-zero octal.
fn is_int(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (body, radix) = if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (rest, 16)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (rest, 8)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (rest, 2)
    } else {
        (digits, 10)
    };
    !body.is_empty() && body.chars().all(|c| c.is_digit(radix))
}

/// yaml.v3's float pattern `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = match exponent {
        Some(e) => digits(e.strip_prefix(['+', '-']).unwrap_or(e)),
        None => true,
    };
    mantissa_ok && exponent_ok
}

/// YAML 1.1 sexagesimal numbers such as `1:20` or `-3:25:45.5`.
fn is_base60(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, _frac) = match s.split_once('.') {
        Some((m, f)) if f.bytes().all(|b| b.is_ascii_digit() || b == b'_') => (m, Some(f)),
        Some(_) => return false,
        None => (s, None),
    };
    let mut parts = main.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && head.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let mut rest = parts.peekable();
    if rest.peek().is_none() {
        return false;
    }
    head_ok
        && rest.all(|p| {
            (1..=2).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5')
        })
}

/// A value starting like a YAML timestamp (`YYYY-M-D…`).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let mut parts = rest.splitn(2, '-');
    let month = parts.next().unwrap_or("");
    let day_and_more = parts.next().unwrap_or("");
    let day: String = day_and_more
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (1..=2).contains(&month.len())
        && month.bytes().all(|b| b.is_ascii_digit())
        && (1..=2).contains(&day.len())
}

/// libyaml's analysis for plain style in block context.
fn plain_allowed(value: &str) -> bool {
    if value.starts_with("---") || value.starts_with("...") {
        return false;
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return false;
    }
    // Indicators are ASCII, so scanning bytes is exact (UTF-8 continuation bytes never match).
    let b = value.as_bytes();
    let followed_by_space = |i: usize| b.get(i + 1).is_none_or(|&c| c == b' ');
    for (i, &c) in b.iter().enumerate() {
        if i == 0 {
            match c {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>'
                | b'\'' | b'"' | b'%' | b'@' | b'`' => return false,
                b'?' | b':' | b'-' if followed_by_space(i) => return false,
                _ => {}
            }
        } else {
            match c {
                b':' if followed_by_space(i) => return false,
                b'#' if b[i - 1] == b' ' => return false,
                _ => {}
            }
        }
    }
    true
}

fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x100 && c.is_control() => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c if needs_escape(c) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The string a one-line scalar denotes, when it is one of the simple forms (plain text that
/// reads back as itself, or a single- or double-quoted scalar closed on the same line); `None`
/// for anything a full YAML reader should decide.
pub(crate) fn decode_one_line(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('"') {
        unquote_double(inner.strip_suffix('"')?)
    } else if let Some(inner) = value.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'')?;
        if inner.replace("''", "").contains('\'') || inner.chars().any(forbidden) {
            return None;
        }
        Some(inner.replace("''", "'"))
    } else if is_plain(value) {
        // Text the writer would emit plain reads back as itself, never as a number or bool.
        Some(value.to_string())
    } else {
        None
    }
}

/// The content of a double-quoted scalar (between the quotes), unescaped.
fn unquote_double(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => {
                let decoded = match chars.next()? {
                    '0' => '\0',
                    'a' => '\u{07}',
                    'b' => '\u{08}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{0B}',
                    'f' => '\u{0C}',
                    'r' => '\r',
                    'e' => '\u{1B}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{A0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(&mut chars, 2)?,
                    'u' => hex(&mut chars, 4)?,
                    'U' => hex(&mut chars, 8)?,
                    _ => return None,
                };
                out.push(decoded);
            }
            c if forbidden(c) => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Raw characters a quoted scalar here may not hold (YAML would fold or reject them).
fn forbidden(c: char) -> bool {
    c != '\t' && needs_escape(c)
}

fn hex(chars: &mut std::str::Chars<'_>, digits: usize) -> Option<char> {
    let mut value = 0u32;
    for _ in 0..digits {
        value = value * 16 + chars.next()?.to_digit(16)?;
    }
    char::from_u32(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(scalar: &str) -> String {
        let doc = format!("k: {scalar}\n");
        let map: std::collections::BTreeMap<String, String> =
            crate::yaml::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
        map["k"].clone()
    }

    #[test]
    fn styles_like_yaml_v3() {
        let cases = [
            ("FACT", "FACT"),
            ("", "\"\""),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("123", "\"123\""),
            ("1_000", "\"1_000\""),
            ("0x1F", "\"0x1F\""),
            ("1.5e3", "\"1.5e3\""),
            (".5", "\".5\""),
            ("1:20", "\"1:20\""),
            ("2026-02-23", "\"2026-02-23\""),
            ("null", "\"null\""),
            ("~", "\"~\""),
            (
                "MSG-20260223-191710-184887000-PID67946-0001",
                "MSG-20260223-191710-184887000-PID67946-0001",
            ),
            ("20260223-2048580000-66788-1", "20260223-2048580000-66788-1"),
            ("task-20260223-191710-abc123", "task-20260223-191710-abc123"),
            ("https://example.com/a?b=c", "https://example.com/a?b=c"),
            ("a: b", "'a: b'"),
            ("#x", "'#x'"),
            ("a #b", "'a #b'"),
            ("- x", "'- x'"),
            ("-x", "-x"),
            ("---", "'---'"),
            (" lead", "' lead'"),
            ("trail ", "'trail '"),
            ("it's: x", "'it''s: x'"),
            ("line\nbreak", "\"line\\nbreak\""),
            ("tab\there", "\"tab\\there\""),
            ("ü", "ü"),
        ];
        for (value, expected) in cases {
            assert_eq!(string(value), expected, "{value:?}");
            assert_eq!(decode(&string(value)), value, "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn any_string_round_trips(value in any::<String>()) {
            prop_assert_eq!(decode(&string(&value)), value);
        }

        #[test]
        fn yamlish_strings_round_trip(value in "[-+.:#'\" 0-9a-zA-Z_~?!|>@`,\\[\\]{}]{0,12}") {
            prop_assert_eq!(decode(&string(&value)), value);
        }
    }
}

#[cfg(test)]
mod run_info_value_tests {
    use super::string;

    #[test]
    fn run_info_style_values_round_trip() {
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
            let doc = format!("k: {}\n", string(v));
            let parsed: std::collections::BTreeMap<String, String> =
                crate::yaml::from_str(&doc).unwrap_or_else(|e| panic!("{doc:?}: {e}"));
            assert_eq!(parsed["k"], v, "{doc:?}");
        }
        assert_eq!(string("claude"), "claude");
        assert_eq!(string(""), "\"\"");
    }
}
