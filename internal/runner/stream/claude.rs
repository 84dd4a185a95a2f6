//! Claude Code (`claude -p --output-format stream-json --verbose`): `system`/`init`, then
//! `assistant` and `user` (tool result) messages, and one `result` event at the end —
//! `{"type":"result","is_error":false,"result":"<answer>","session_id":…}`, or with
//! `"is_error":true` and the failure in `result` (e.g. `Invalid API key`, `API Error: 500 …`).

use serde_json::Value;

use super::text::first_text;
use super::{kind, EventParser};

/// Reads a claude stream.
#[derive(Debug, Default)]
pub struct Parser {
    result: Option<String>,
    texts: Vec<String>,
    error: Option<String>,
}

impl EventParser for Parser {
    fn event(&mut self, event: &Value) {
        match kind(event) {
            "result" if event["is_error"].as_bool().unwrap_or(false) => {
                let reason = first_text(event, &["result", "error", "errors"])
                    .or_else(|| event["subtype"].as_str().map(str::to_string));
                if reason.is_some() {
                    self.error = reason;
                }
            }
            "result" if self.result.is_none() => {
                self.result = event["result"]
                    .as_str()
                    .filter(|t| !t.trim().is_empty())
                    .map(str::to_string);
            }
            "assistant" => {
                if let Some(blocks) = event["message"]["content"].as_array() {
                    self.texts.extend(
                        blocks
                            .iter()
                            .filter(|b| b["type"] == "text")
                            .filter_map(|b| b["text"].as_str())
                            .map(str::to_string),
                    );
                }
            }
            _ => {}
        }
    }

    /// The first `result` without error wins; else, unless a `result` reported an error
    /// (its assistant text is that error), all assistant text blocks joined.
    fn finish(self: Box<Self>) -> (Option<String>, Option<String>) {
        let this = *self;
        let texts = (!this.texts.is_empty() && this.error.is_none()).then(|| this.texts.join("\n"));
        let answer = this.result.or(texts);
        (answer, this.error)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AgentType;

    use super::super::{final_answer, parse};

    #[test]
    fn result_wins_else_assistant_text() {
        let s = r#"{"type":"system"}
not json
{"type":"assistant","message":{"content":[{"type":"text","text":"thinking"}]}}
{"type":"result","is_error":false,"result":"final answer"}"#;
        assert_eq!(
            final_answer(AgentType::Claude, s).as_deref(),
            Some("final answer")
        );
        let s = r#"{"type":"assistant","message":{"content":[{"type":"text","text":"a"},{"type":"tool_use"}]}}
{"type":"assistant","message":{"content":[{"type":"text","text":"b"}]}}"#;
        assert_eq!(final_answer(AgentType::Claude, s).as_deref(), Some("a\nb"));
        assert_eq!(final_answer(AgentType::Claude, "plain text"), None);
    }

    #[test]
    fn error_result() {
        let s = r#"{"type":"system","subtype":"init","session_id":"s1"}
{"type":"assistant","message":{"content":[{"type":"text","text":"Invalid API key · Please run /login"}]}}
{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key · Please run /login","session_id":"s1"}"#;
        let summary = parse(AgentType::Claude, s);
        assert_eq!(
            summary.error.as_deref(),
            Some("Invalid API key · Please run /login")
        );
        assert_eq!(summary.session_id.as_deref(), Some("s1"));
    }
}
