//! The incremental bus parser (the Go reference's framing, with its flaws fixed). Every reader uses it:
//! full reads, tail windows and follow.
//!
//! States SEEK → HEADER → BODY, driven by `---` delimiter lines (a line whose text, without
//! trailing `\r`/`\n`, is exactly `---`):
//! - SEEK (start of file only): a `---` enters HEADER; other lines are tried as legacy
//!   `[ts] TYPE: body` lines.
//! - HEADER: lines up to the next `---` are YAML-decoded. If that fails (a torn header), the
//!   header is dropped and that `---` starts a new header — the resync.
//! - BODY: lines up to the next `---`, which also opens the next record. Writers put a blank
//!   separator line before every record but the first, so a body closed by `---` normally ends
//!   with `terminator \n` + `separator \n`; both are stripped and the rest is unescaped, giving
//!   exactly the posted body. When the blank line is missing, the record was torn (or written
//!   without separators): if the segment is itself a valid header, the previous header was a
//!   torn one and is dropped; a partial delimiter (`-`, `--`) left by a torn record is dropped;
//!   otherwise one terminating `\n` is stripped.
//! - End of data: a record in BODY whose body ends with `\n` is complete and is emitted, unless
//!   its header is incomplete and its "body" is really the next header (torn header + append).
//!
//! A body torn mid-way and followed by more records is still emitted, with the part that was
//! written. A tear that left only the 1-byte separator of the next record is indistinguishable
//! from a body ending in `\n`; the previous record then reads with one extra trailing `\n`.

use super::escape;
use super::header::{self, DecodedHeader};
use super::legacy;
use super::message::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Seek,
    Header,
    Body,
}

/// A record whose header decoded and whose body is being collected.
struct Pending {
    msg: Message,
    /// The header had every key a writer always emits.
    complete: bool,
    /// Already emitted at an end of data (follow); not emitted again when its body closes.
    emitted: bool,
}

impl From<DecodedHeader> for Pending {
    fn from(h: DecodedHeader) -> Self {
        Self {
            msg: h.msg,
            complete: h.complete,
            emitted: false,
        }
    }
}

/// Incremental parser: feed it bytes in any chunking; complete messages come out in order.
pub struct Parser {
    state: State,
    legacy: bool,
    line_no: u64,
    partial: Vec<u8>,
    header: Vec<u8>,
    body: Vec<u8>,
    current: Option<Pending>,
    skipped: u64,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser for data starting at the beginning of a file (legacy lines allowed).
    pub fn new() -> Self {
        Self {
            state: State::Seek,
            legacy: true,
            line_no: 0,
            partial: Vec::new(),
            header: Vec::new(),
            body: Vec::new(),
            current: None,
            skipped: 0,
        }
    }

    /// A parser for data starting at a line start in the middle of a file: text before the
    /// first `---` is not taken as legacy lines (it is the tail of an earlier record).
    pub fn mid_file() -> Self {
        Self {
            legacy: false,
            ..Self::new()
        }
    }

    /// Number of torn or undecodable headers dropped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Feeds the next bytes; messages completed by them are pushed to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Message>) {
        if !self.partial.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&data[..=i]);
                    self.line(&line, out);
                    line.clear();
                    self.partial = line;
                    data = &data[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(data);
                    return;
                }
            }
        }
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.line(&rest[..=i], out);
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// At the current end of data (more may follow): emits the record being read if it is
    /// complete (its body ends with `\n` and no partial line is pending). Parsing continues.
    /// Call it only at a record boundary — a length read while no writer held the bus lock —
    /// since a body cut at a line end looks complete.
    pub fn flush(&mut self, out: &mut Vec<Message>) {
        if self.state != State::Body || !self.partial.is_empty() {
            return;
        }
        let Some(pending) = self.current.as_mut() else {
            return;
        };
        if pending.emitted || !self.body.ends_with(b"\n") {
            return;
        }
        if !pending.complete
            && looks_like_header(&self.body)
            && header::decode(&self.body).is_some()
        {
            // A torn header swallowed the next record's header; wait for its closing `---`.
            return;
        }
        let body = &self.body[..self.body.len() - 1];
        out.push(finish_message(pending.msg.clone(), body));
        pending.emitted = true;
    }

    /// End of file: processes a final line without `\n`, then emits a complete last record.
    /// Writers end every record with `\n`, so such a line is a torn write; when it is the
    /// start of a delimiter (`-`, `--`) it closes the record before it like a full `---`.
    pub fn finish(mut self, out: &mut Vec<Message>) -> u64 {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            let text = trim_line_end(&line);
            if !text.is_empty() && b"---".starts_with(text) {
                self.line(b"---\n", out);
            } else {
                self.line(&line, out);
            }
        }
        self.flush(out);
        self.skipped
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Message>) {
        self.line_no += 1;
        let delimiter = is_delimiter(line);
        match self.state {
            State::Seek => {
                if delimiter {
                    self.header.clear();
                    self.state = State::Header;
                } else if self.legacy {
                    let text = String::from_utf8_lossy(trim_line_end(line));
                    if let Some(msg) = legacy::parse_line(&text, self.line_no) {
                        out.push(msg);
                    }
                }
            }
            State::Header => {
                if delimiter {
                    self.close_header();
                } else {
                    self.header.extend_from_slice(line);
                }
            }
            State::Body => {
                if delimiter {
                    self.close_body(out);
                } else {
                    self.body.extend_from_slice(line);
                }
            }
        }
    }

    fn close_header(&mut self) {
        match header::decode(&self.header) {
            Some(decoded) => {
                self.current = Some(decoded.into());
                self.body.clear();
                self.state = State::Body;
            }
            None => {
                // Resync: this `---` opens the next header.
                if !self.header.iter().all(u8::is_ascii_whitespace) {
                    self.skipped += 1;
                }
            }
        }
        self.header.clear();
    }

    fn close_body(&mut self, out: &mut Vec<Message>) {
        let seg = std::mem::take(&mut self.body);
        let body: &[u8] = if let Some(body) = seg.strip_suffix(b"\n\n") {
            body
        } else {
            if looks_like_header(&seg) {
                if let Some(decoded) = header::decode(&seg) {
                    // The previous header was torn: this segment is the real header.
                    self.skipped += 1;
                    self.current = Some(decoded.into());
                    self.body = seg;
                    self.body.clear();
                    return;
                }
            }
            strip_partial_delimiter(&seg)
                .or_else(|| seg.strip_suffix(b"\n"))
                .unwrap_or(&seg)
        };
        if let Some(pending) = self.current.take() {
            if !pending.emitted {
                out.push(finish_message(pending.msg, body));
            }
        }
        self.body = seg;
        self.body.clear();
        self.header.clear();
        self.state = State::Header;
    }
}

/// Parses a whole file's bytes.
pub fn parse_bytes(data: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut parser = Parser::new();
    parser.feed(data, &mut out);
    parser.finish(&mut out);
    out
}

fn finish_message(mut msg: Message, body: &[u8]) -> Message {
    let body = escape::unescape(body);
    msg.body = match String::from_utf8(body) {
        Ok(text) => text,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    };
    msg
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

fn is_delimiter(line: &[u8]) -> bool {
    line.starts_with(b"---") && trim_line_end(line) == b"---"
}

/// Cheap pre-check before trying to decode a body segment as a header.
fn looks_like_header(seg: &[u8]) -> bool {
    seg.starts_with(b"msg_id:") || seg.windows(8).any(|w| w == b"\nmsg_id:")
}

/// `<body>\n\n-\n` or `<body>\n\n--\n` (a torn record's partial `---` plus the next
/// separator) → `<body>`.
fn strip_partial_delimiter(seg: &[u8]) -> Option<&[u8]> {
    seg.strip_suffix(b"\n\n-\n")
        .or_else(|| seg.strip_suffix(b"\n\n--\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::format::encode_record;
    use crate::bus::message::{Link, Parent};
    use crate::storage::time::parse_rfc3339;
    use proptest::prelude::*;

    fn msg(id: &str, body: &str) -> Message {
        let mut m = Message::empty();
        m.msg_id = id.into();
        m.ts = parse_rfc3339("2026-02-23T19:17:10.5Z").unwrap();
        m.msg_type = "FACT".into();
        m.project_id = "p".into();
        m.body = body.into();
        m
    }

    /// A file as the appender writes it: records joined by the `\n` separator.
    fn file(msgs: &[Message]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            if !out.is_empty() {
                out.push(b'\n');
            }
            encode_record(m, &mut out);
        }
        out
    }

    fn bodies(msgs: &[Message]) -> Vec<&str> {
        msgs.iter().map(|m| m.body.as_str()).collect()
    }

    #[test]
    fn exact_bodies_for_every_record() {
        let input = [
            msg("a", "one"),
            msg("b", "two\n"),
            msg("c", ""),
            msg("d", "---\n\\---\n\n"),
            msg("e", "crlf\r\nx\r"),
            msg("f", "\n\n"),
        ];
        let parsed = parse_bytes(&file(&input));
        assert_eq!(parsed, input);
    }

    #[test]
    fn go_written_file_parses_like_the_reference() {
        // Go writes `\n` only when the body lacks one and reads bodies with one `\n` stripped.
        let go = "[2026-02-20 10:00:00] FACT: legacy line\n\
            ---\nmsg_id: MSG-1\nts: 2026-02-23T19:17:10.184887Z\ntype: RUN_START\nproject_id: p\n\
            task_id: t\nrun_id: r\nparents:\n    - MSG-0\n---\nrun started\nrun_dir: /x\n\
            \n---\nmsg_id: MSG-2\nts: 2026-02-23T19:17:11Z\ntype: ISSUE\nproject_id: p\n\
            task_id: \"\"\nrun_id: \"\"\nissue_id: MSG-2\n---\nends with newline\n\
            \n---\nmsg_id: MSG-3\nts: 2026-02-23T19:17:12Z\ntype: FACT\nproject_id: p\n\
            task_id: \"\"\nrun_id: \"\"\n---\nlast\n";
        let parsed = parse_bytes(go.as_bytes());
        let ids: Vec<_> = parsed.iter().map(|m| m.msg_id.as_str()).collect();
        assert_eq!(ids, ["LEGACY-LINE-000000001", "MSG-1", "MSG-2", "MSG-3"]);
        assert_eq!(
            bodies(&parsed),
            [
                "legacy line",
                "run started\nrun_dir: /x",
                "ends with newline",
                "last"
            ]
        );
        assert_eq!(parsed[1].parents, vec![Parent::new("MSG-0")]);
        assert_eq!(parsed[2].issue_id, "MSG-2");
    }

    #[test]
    fn resyncs_after_undecodable_header() {
        let mut data = b"---\nmsg_id: x\n  bad: [\n".to_vec();
        data.extend_from_slice(b"\n");
        data.extend_from_slice(&file(&[msg("b", "B")]));
        assert_eq!(bodies(&parse_bytes(&data)), ["B"]);
    }

    #[test]
    fn torn_header_that_decodes_does_not_swallow_the_next_record() {
        let mut data = file(&[msg("a", "A")]);
        data.extend_from_slice(b"\n---\nmsg_id: MSG-torn\nts: 2026-02-23T19:17:10Z\nty");
        data.extend_from_slice(b"\n");
        let mut tail = Vec::new();
        encode_record(&msg("b", "B"), &mut tail);
        data.extend_from_slice(&tail);
        let parsed = parse_bytes(&data);
        let ids: Vec<_> = parsed.iter().map(|m| m.msg_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        // A header torn mid-value still decodes; the next header replaces it.
        let mut data = file(&[msg("a", "A")]);
        data.extend_from_slice(b"\n---\nmsg_id: MSG-torn\nts: 2026-02-23T19:17:10Z\ntype: FA\n");
        data.extend_from_slice(&tail);
        let ids: Vec<_> = parse_bytes(&data).into_iter().map(|m| m.msg_id).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn incremental_feed_and_flush_emit_each_message_once() {
        let input = [msg("a", "A\n"), msg("b", "B"), msg("c", "---")];
        let data = file(&input);
        for chunk in [1, 2, 3, 7, 64, data.len()] {
            let mut parser = Parser::new();
            let mut out = Vec::new();
            for piece in data.chunks(chunk) {
                parser.feed(piece, &mut out);
            }
            parser.finish(&mut out);
            assert_eq!(out, input, "chunk {chunk}");
        }
        // Flushing at every record boundary (what a follower sees between appends) emits each
        // record as soon as it is complete, and only once.
        let mut parser = Parser::new();
        let mut out = Vec::new();
        for (i, m) in input.iter().enumerate() {
            let mut bytes = Vec::new();
            if i > 0 {
                bytes.push(b'\n');
            }
            encode_record(m, &mut bytes);
            parser.feed(&bytes, &mut out);
            parser.flush(&mut out);
            parser.flush(&mut out);
            assert_eq!(out, input[..=i], "after record {i}");
        }
        parser.finish(&mut out);
        assert_eq!(out, input);
    }

    #[test]
    fn legacy_lines_only_before_first_record() {
        let mut data = b"# title\n[2026-02-20 10:00:00] info: hello\n".to_vec();
        data.extend_from_slice(&file(&[msg("a", "[2026-02-20 10:00:00] INFO: not legacy")]));
        let parsed = parse_bytes(&data);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].msg_id, "LEGACY-LINE-000000002");
        assert_eq!(parsed[1].body, "[2026-02-20 10:00:00] INFO: not legacy");
        let mut out = Vec::new();
        let mut mid = Parser::mid_file();
        mid.feed(b"[2026-02-20 10:00:00] info: hello\n", &mut out);
        mid.finish(&mut out);
        assert!(out.is_empty());
    }

    /// Truncates a file inside record `k` at every offset, appends more records the way the
    /// appender does (separator only when the file is non-empty) and checks what is read.
    #[test]
    fn truncation_at_every_offset_loses_only_the_torn_record() {
        let before: Vec<Message> = (0..3)
            .map(|i| msg(&format!("MSG-before-{i}"), &format!("body {i}\n---\nline")))
            .collect();
        let torn = msg("MSG-torn", "torn body\n\\---\nmore text");
        let after: Vec<Message> = (0..2)
            .map(|i| msg(&format!("MSG-after-{i}"), &format!("after {i}")))
            .collect();
        let prefix = file(&before);
        let mut torn_bytes = vec![b'\n'];
        encode_record(&torn, &mut torn_bytes);
        for cut in 0..torn_bytes.len() {
            let mut data = prefix.clone();
            data.extend_from_slice(&torn_bytes[..cut]);
            // Reading the truncated file alone: every complete record, nothing invented.
            let parsed = parse_bytes(&data);
            check(&parsed, &before, &[], &torn, cut);
            for m in &after {
                data.push(b'\n');
                encode_record(m, &mut data);
            }
            let parsed = parse_bytes(&data);
            check(&parsed, &before, &after, &torn, cut);
        }
    }

    fn check(
        parsed: &[Message],
        before: &[Message],
        after: &[Message],
        torn: &Message,
        cut: usize,
    ) {
        let mut parsed: Vec<Message> = parsed.to_vec();
        // The torn record may appear (header complete, body partial) but never changed.
        if let Some(pos) = parsed.iter().position(|m| m.msg_id == torn.msg_id) {
            let m = parsed.remove(pos);
            assert_eq!(pos, before.len(), "cut {cut}");
            let mut escaped = Vec::new();
            crate::bus::escape::escape_into(&torn.body, &mut escaped);
            assert!(
                torn.body.starts_with(&m.body) || escaped.starts_with(m.body.as_bytes()),
                "cut {cut}: {:?}",
                m.body
            );
        }
        let mut expected: Vec<Message> = before.iter().chain(after).cloned().collect();
        if cut == 1 {
            // Only the separator byte survived: indistinguishable from a trailing `\n`.
            expected[before.len() - 1].body.push('\n');
        }
        assert_eq!(parsed, expected, "cut {cut}");
    }

    fn arb_text() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            Just("---".to_string()),
            Just("\\---".to_string()),
            Just("\\\\---".to_string()),
            Just("---\r".to_string()),
            Just(String::new()),
            Just("msg_id: x".to_string()),
            "[ -~]{0,20}",
            any::<String>(),
        ];
        (
            proptest::collection::vec(line, 0..6),
            prop_oneof!["", "\n", "\r\n", "\n\n"],
        )
            .prop_map(|(lines, end)| lines.join("\n") + &end)
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            "[A-Za-z0-9_-]{1,12}",
            any::<String>(),
            any::<String>(),
            proptest::collection::vec((any::<String>(), any::<String>()), 0..3),
            proptest::collection::btree_map(any::<String>(), any::<String>(), 0..3),
            arb_text(),
            0u32..1_000_000_000,
        )
            .prop_map(|(ty, task, run, parents, meta, body, nanos)| {
                let mut m = msg("MSG-x", &body);
                m.msg_type = ty;
                m.task_id = task;
                m.run_id = run;
                m.ts = chrono::DateTime::from_timestamp(1_771_000_000, nanos).unwrap();
                m.parents = parents
                    .into_iter()
                    .filter(|(id, _)| !id.is_empty())
                    .map(|(id, kind)| Parent {
                        msg_id: id,
                        kind,
                        meta: meta.clone(),
                    })
                    .collect();
                m.links = vec![Link {
                    url: "https://x/y".into(),
                    label: "l: x".into(),
                    kind: String::new(),
                }];
                m.meta = meta;
                m
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn round_trip_any_records(msgs in proptest::collection::vec(arb_message(), 1..4)) {
            let msgs: Vec<Message> = msgs
                .into_iter()
                .enumerate()
                .map(|(i, mut m)| { m.msg_id = format!("MSG-{i}"); m })
                .collect();
            let data = file(&msgs);
            prop_assert_eq!(&parse_bytes(&data), &msgs);
            // Any chunking gives the same result.
            let mut parser = Parser::new();
            let mut out = Vec::new();
            for piece in data.chunks(5) {
                parser.feed(piece, &mut out);
            }
            parser.finish(&mut out);
            prop_assert_eq!(&out, &msgs);
        }
    }
}
