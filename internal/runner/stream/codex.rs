//! Codex (`codex exec --json`): `thread.started` (`thread_id`), `turn.started`, `item.*`
//! events (`agent_message` items carry the answer), then `turn.completed` (with usage) or
//! `turn.failed` with `error.message`; stream-level problems come as `error` events.

use serde_json::Value;

use super::text::{first_text, merge};
use super::{kind, EventParser};

/// Reads a codex stream.
#[derive(Debug, Default)]
pub struct Parser {
    out: String,
    turn_failed: Option<String>,
    error: Option<String>,
}

impl EventParser for Parser {
    fn event(&mut self, event: &Value) {
        match kind(event) {
            "turn.failed" => {
                if let Some(message) = first_text(&event["error"], &["message"])
                    .or_else(|| first_text(event, &["error", "message"]))
                {
                    self.turn_failed = Some(message);
                }
            }
            "error" => {
                if let Some(message) = first_text(event, &["message", "error"]) {
                    self.error = Some(message);
                }
            }
            "result" | "response.completed" | "turn.completed" | "message" => {
                if let Some(text) = first_text(
                    event,
                    &["result", "output_text", "text", "content", "message"],
                ) {
                    merge(&mut self.out, &text);
                }
            }
            _ => {}
        }
        if let Some(item) = event.get("item").filter(|i| i.is_object()) {
            let item_type = item.get("type").and_then(Value::as_str).unwrap_or("");
            if matches!(item_type, "" | "agent_message" | "message") {
                if let Some(text) = first_text(item, &["text", "output_text", "content", "message"])
                {
                    merge(&mut self.out, &text);
                }
            }
        }
    }

    /// Text of result-like events and of agent-message items, delta-merged; the error of
    /// `turn.failed`, else of the last `error` event.
    fn finish(self: Box<Self>) -> (Option<String>, Option<String>) {
        let answer = (!self.out.is_empty()).then_some(self.out);
        (answer, self.turn_failed.or(self.error))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AgentType;

    use super::super::{final_answer, parse};

    #[test]
    fn items_merge() {
        let s = r#"{"type":"item.completed","item":{"type":"reasoning","text":"no"}}
{"type":"item.completed","item":{"type":"agent_message","text":"Hello"}}
{"type":"item.completed","item":{"type":"agent_message","text":"Hello world"}}
{"type":"turn.completed","usage":{}}"#;
        assert_eq!(
            final_answer(AgentType::Codex, s).as_deref(),
            Some("Hello world")
        );
    }

    #[test]
    fn turn_failed_wins_over_error_events() {
        let s = r#"{"type":"thread.started","thread_id":"t1"}
{"type":"error","message":"Reconnecting... 1/5"}
{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: bad key"}}"#;
        let summary = parse(AgentType::Codex, s);
        assert_eq!(
            summary.error.as_deref(),
            Some("unexpected status 401 Unauthorized: bad key")
        );
        assert_eq!(summary.answer, None);
    }
}
