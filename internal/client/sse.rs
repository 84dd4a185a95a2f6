//! A line-based Server-Sent Events reader: `event:`, `id:` and `data:` fields, a blank line
//! ends an event, comments (`:heartbeat`) and unknown fields are ignored.

use std::io::BufRead;

/// One event of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name (`message` when absent).
    pub event: String,
    /// The `id:` field, when the event had one.
    pub id: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Reads events from a byte stream.
pub struct SseReader<R> {
    input: R,
    line: Vec<u8>,
}

impl<R: BufRead> SseReader<R> {
    /// A reader of `input`.
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: Vec::new(),
        }
    }

    /// The next complete event; `Ok(None)` at the end of the stream (a partial event at the
    /// end is dropped, as the SSE rules say).
    pub fn next_event(&mut self) -> std::io::Result<Option<SseEvent>> {
        let mut event = SseEvent::default();
        let mut has_fields = false;
        let mut data: Vec<String> = Vec::new();
        loop {
            self.line.clear();
            let n = self.input.read_until(b'\n', &mut self.line)?;
            if n == 0 {
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&self.line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                if has_fields {
                    if event.event.is_empty() {
                        event.event = "message".to_string();
                    }
                    event.data = data.join("\n");
                    return Ok(Some(event));
                }
                continue;
            }
            if text.starts_with(':') {
                continue;
            }
            let (field, value) = match text.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (text, ""),
            };
            match field {
                "event" => event.event = value.to_string(),
                "id" => event.id = Some(value.to_string()),
                "data" => data.push(value.to_string()),
                _ => continue,
            }
            has_fields = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<SseEvent> {
        let mut reader = SseReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(e) = reader.next_event().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let events = all(
            ":heartbeat\n\nevent: stdout\nid: 6:0\ndata: hello\n\ndata:a\ndata: b\r\n\r\nevent: end\ndata: completed\n\nevent: x\ndata: partial",
        );
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "stdout".into(),
                    id: Some("6:0".into()),
                    data: "hello".into()
                },
                SseEvent {
                    event: "message".into(),
                    id: None,
                    data: "a\nb".into()
                },
                SseEvent {
                    event: "end".into(),
                    id: None,
                    data: "completed".into()
                },
            ]
        );
    }

    #[test]
    fn empty_data_line_is_an_event() {
        assert_eq!(all("event: stdout\ndata:\n\n")[0].data, "");
    }
}
