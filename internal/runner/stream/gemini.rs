//! Gemini CLI (`gemini --output-format stream-json`): `init` (`session_id`), the user's
//! `message`, the assistant's answer as `message` chunks with `"delta": true` (joined end to
//! end), `tool_use` / `tool_result` between turns, and a closing `result` with
//! `"status": "success"` or `"status": "error"` and `error.message`.

use serde_json::Value;

use super::text::{first_text, merge, text_of};
use super::{kind, EventParser};

/// Reads a gemini stream.
#[derive(Debug, Default)]
pub struct Parser {
    result: Option<String>,
    out: String,
    /// The previous event was an assistant delta chunk: the next one continues its text.
    in_delta: bool,
    error: Option<String>,
}

impl EventParser for Parser {
    fn event(&mut self, event: &Value) {
        let event_kind = kind(event);
        let role = event.get("role").and_then(Value::as_str).unwrap_or("");
        let assistant = match event_kind {
            "message" => matches!(role, "" | "assistant"),
            "assistant" => true,
            _ => false,
        };
        if !assistant {
            self.in_delta = false;
        }
        match event_kind {
            "result" => {
                let failed =
                    event["status"].as_str() == Some("error") || event["error"].is_object();
                if failed {
                    let reason = first_text(&event["error"], &["message"])
                        .or_else(|| first_text(event, &["error"]));
                    if reason.is_some() {
                        self.error = reason;
                    }
                } else if self.result.is_none() {
                    self.result = event.get("result").map(text_of).filter(|t| !t.is_empty());
                }
            }
            "error" => {
                if let Some(message) = first_text(event, &["message", "error"]) {
                    self.error = Some(message);
                }
            }
            _ if assistant => {
                let text = event
                    .get("content")
                    .map(text_of)
                    .filter(|t| !t.is_empty())
                    .or_else(|| event.get("message").map(text_of))
                    .unwrap_or_default();
                if event["delta"].as_bool() == Some(true) {
                    if !self.in_delta && !self.out.is_empty() && !text.is_empty() {
                        self.out.push('\n');
                    }
                    self.out.push_str(&text);
                    self.in_delta = true;
                } else {
                    merge(&mut self.out, &text);
                    self.in_delta = false;
                }
            }
            _ => {}
        }
    }

    /// A `result` text wins; else the assistant's messages (delta chunks joined end to end,
    /// turns on their own lines).
    fn finish(self: Box<Self>) -> (Option<String>, Option<String>) {
        let this = *self;
        let answer = this
            .result
            .or_else(|| (!this.out.is_empty()).then_some(this.out));
        (answer, this.error)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AgentType;

    use super::super::{final_answer, parse};

    #[test]
    fn messages_and_result() {
        let s = r#"{"type":"message","role":"user","content":"q"}
{"type":"message","role":"assistant","content":"par"}
{"type":"message","role":"assistant","content":"partial"}"#;
        assert_eq!(
            final_answer(AgentType::Gemini, s).as_deref(),
            Some("partial")
        );
        let s = r#"{"type":"result","result":"done"}"#;
        assert_eq!(final_answer(AgentType::Gemini, s).as_deref(), Some("done"));
    }

    #[test]
    fn delta_chunks_join_end_to_end_and_turns_split() {
        let s = r#"{"type":"init","session_id":"g1","model":"m"}
{"type":"message","role":"user","content":"say hello"}
{"type":"message","role":"assistant","content":"MOCK: ","delta":true}
{"type":"message","role":"assistant","content":"hello ","delta":true}
{"type":"message","role":"assistant","content":"from the mock","delta":true}
{"type":"tool_use","tool_name":"run_shell_command","tool_id":"t1","parameters":{}}
{"type":"tool_result","tool_id":"t1","status":"success"}
{"type":"message","role":"assistant","content":"All ","delta":true}
{"type":"message","role":"assistant","content":"done.","delta":true}
{"type":"result","status":"success","stats":{}}"#;
        let summary = parse(AgentType::Gemini, s);
        assert_eq!(
            summary.answer.as_deref(),
            Some("MOCK: hello from the mock\nAll done.")
        );
        assert_eq!(summary.session_id.as_deref(), Some("g1"));
        assert_eq!(summary.error, None);
    }

    #[test]
    fn error_result() {
        let s = r#"{"type":"init","session_id":"g1"}
{"type":"result","status":"error","error":{"type":"FatalAuthenticationError","message":"API key not valid"},"stats":{}}"#;
        assert_eq!(
            parse(AgentType::Gemini, s).error.as_deref(),
            Some("API key not valid")
        );
    }
}
