//! Body escaping. A body line that the framing would read as a `---` delimiter must
//! not reach the file as-is: on write, every body line matching `^\\*---\r*$` gets one extra
//! leading backslash; on read, one backslash is removed from lines matching `^\\+---\r*$`.
//! So `---` is stored as `\---`, `\---` as `\\---`, and so on; bodies of old files, which never
//! contain a bare `---` line, read back unchanged unless a line is `\---`-shaped.

/// Appends `body` to `out`, escaping delimiter-like lines.
pub fn escape_into(body: &str, out: &mut Vec<u8>) {
    if !has_triple_dash(body.as_bytes()) {
        out.extend_from_slice(body.as_bytes());
        return;
    }
    for line in body.as_bytes().split_inclusive(|&b| b == b'\n') {
        if is_delimiter_like(content(line), 0) {
            out.push(b'\\');
        }
        out.extend_from_slice(line);
    }
}

/// `body` with one backslash removed from each escaped delimiter line.
pub fn unescape(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    unescape_into(body, &mut out);
    out
}

/// Appends `body` to `out`, removing one backslash from each escaped delimiter line.
pub fn unescape_into(body: &[u8], out: &mut Vec<u8>) {
    if !body.contains(&b'\\') || !has_triple_dash(body) {
        out.extend_from_slice(body);
        return;
    }
    for line in body.split_inclusive(|&b| b == b'\n') {
        if is_delimiter_like(content(line), 1) {
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
}

/// The line without its `\n` and any trailing `\r`s (what the framing compares to `---`).
fn content(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// `^\\{min,}---$`
fn is_delimiter_like(text: &[u8], min_backslashes: usize) -> bool {
    let slashes = text.iter().take_while(|&&b| b == b'\\').count();
    slashes >= min_backslashes && &text[slashes..] == b"---"
}

/// Whether `---` occurs anywhere (the cheap test that lets most bodies skip line splitting).
fn has_triple_dash(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i + 2] != b'-' {
            i += 3;
        } else if bytes[i + 1] != b'-' {
            i += 2;
        } else if bytes[i] != b'-' {
            i += 1;
        } else {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(body: &str) -> String {
        let mut out = Vec::new();
        escape_into(body, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn delimiter_lines_gain_one_backslash() {
        assert_eq!(esc("a\n---\nb"), "a\n\\---\nb");
        assert_eq!(esc("---"), "\\---");
        assert_eq!(esc("\\---\n"), "\\\\---\n");
        assert_eq!(esc("\\\\---\r\n"), "\\\\\\---\r\n");
        assert_eq!(esc("---\r"), "\\---\r");
        assert_eq!(esc(" ---\n----\n-- -\nx---"), " ---\n----\n-- -\nx---");
    }

    #[test]
    fn unescape_inverts_escape() {
        for body in [
            "",
            "---",
            "a\n---\n",
            "\\---",
            "\\\\---\r\n---",
            "x\\---",
            "\\--",
        ] {
            let mut out = Vec::new();
            escape_into(body, &mut out);
            assert_eq!(unescape(&out), body.as_bytes(), "{body:?}");
        }
        assert_eq!(unescape(b"\\x\n"), b"\\x\n");
        for (text, want) in [
            ("", false),
            ("--", false),
            ("a---", true),
            ("-- -", false),
            ("x--y---", true),
        ] {
            assert_eq!(has_triple_dash(text.as_bytes()), want, "{text:?}");
        }
    }
}
