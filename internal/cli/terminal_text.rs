//! Text written by others (bus message bodies, agent names) shown on a terminal: control
//! characters are made visible so a message cannot retitle the window, move the cursor or
//! inject escape sequences. Only when stdout is a terminal: pipes and files get the bytes as
//! they are.

use std::borrow::Cow;

/// Whether `c` is a C0 control other than `\n` and `\t`, DEL, or a C1 control.
fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}'
}

/// `text` with every C0 control except `\n` and `\t`, DEL and every C1 control written as an
/// escape: `\x1b` for C0/DEL, `\u{9b}` for C1. Borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if is_hostile(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_hostile(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A serialized JSON text with DEL and the C1 controls (which JSON may carry raw inside
/// strings) written as `\u00XX` escapes: the same JSON value, safe on a terminal. JSON already
/// escapes the C0 controls.
pub fn escape_json_controls(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_hostile) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_hostile(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` escaped with [`escape_controls`] when `tty`, else unchanged.
pub fn for_terminal(text: &str, tty: bool) -> Cow<'_, str> {
    if tty {
        escape_controls(text)
    } else {
        Cow::Borrowed(text)
    }
}

/// A JSON text escaped with [`escape_json_controls`] when `tty`, else unchanged.
pub fn for_terminal_json(json: &str, tty: bool) -> Cow<'_, str> {
    if tty {
        escape_json_controls(json)
    } else {
        Cow::Borrowed(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c0_del_and_c1_are_escaped_newline_and_tab_kept() {
        assert_eq!(
            escape_controls("a\x1b]0;pwned\x07b\r\n\tc\u{7f}\u{9b}31m é"),
            "a\\x1b]0;pwned\\x07b\\x0d\n\tc\\x7f\\u{9b}31m é"
        );
        assert!(matches!(escape_controls("plain ü\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escapes_keep_the_value() {
        let value = serde_json::json!({ "body": "x\u{9b}y\u{7f}\x1b" });
        let text = serde_json::to_string(&value).unwrap();
        let safe = escape_json_controls(&text);
        assert!(!safe.chars().any(is_hostile), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn not_a_terminal_is_untouched() {
        assert_eq!(for_terminal("\x1b[2J", false), "\x1b[2J");
        assert_eq!(for_terminal("\x1b[2J", true), "\\x1b[2J");
    }
}
