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

/// An event or a comment line (servers send comments such as `:heartbeat` to keep idle
/// streams alive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A complete event.
    Event(SseEvent),
    /// A comment line, without the leading `:`.
    Comment(String),
}

/// Reads events from a byte stream.
pub struct SseReader<R> {
    input: R,
    line: Vec<u8>,
    event: SseEvent,
    data: Vec<String>,
    has_fields: bool,
}

impl<R: BufRead> SseReader<R> {
    /// A reader of `input`.
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: Vec::new(),
            event: SseEvent::default(),
            data: Vec::new(),
            has_fields: false,
        }
    }

    /// The next complete event, skipping comments; `Ok(None)` at the end of the stream (a
    /// partial event at the end is dropped, as the SSE rules say).
    pub fn next_event(&mut self) -> std::io::Result<Option<SseEvent>> {
        loop {
            match self.next_item()? {
                None => return Ok(None),
                Some(SseItem::Event(event)) => return Ok(Some(event)),
                Some(SseItem::Comment(_)) => {}
            }
        }
    }

    /// The next complete event or comment line; `Ok(None)` at the end of the stream.
    pub fn next_item(&mut self) -> std::io::Result<Option<SseItem>> {
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
                if self.has_fields {
                    let mut event = std::mem::take(&mut self.event);
                    if event.event.is_empty() {
                        event.event = "message".to_string();
                    }
                    event.data = std::mem::take(&mut self.data).join("\n");
                    self.has_fields = false;
                    return Ok(Some(SseItem::Event(event)));
                }
                continue;
            }
            if let Some(comment) = text.strip_prefix(':') {
                return Ok(Some(SseItem::Comment(comment.trim_start().to_string())));
            }
            let (field, value) = match text.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (text, ""),
            };
            match field {
                "event" => self.event.event = value.to_string(),
                "id" => self.event.id = Some(value.to_string()),
                "data" => self.data.push(value.to_string()),
                _ => continue,
            }
            self.has_fields = true;
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
    fn comments_between_fields_keep_the_event() {
        let mut reader = SseReader::new("event: a\n:heartbeat\ndata: x\n\n".as_bytes());
        assert_eq!(
            reader.next_item().unwrap(),
            Some(SseItem::Comment("heartbeat".into()))
        );
        let event = reader.next_event().unwrap().unwrap();
        assert_eq!((event.event.as_str(), event.data.as_str()), ("a", "x"));
    }

    #[test]
    fn empty_data_line_is_an_event() {
        assert_eq!(all("event: stdout\ndata:\n\n")[0].data, "");
    }
}
