//! Gemini CLI (`gemini --output-format stream-json`): `init` (`session_id`), the user's
//! `message`, the assistant's answer as `message` chunks with `"delta": true` (joined end to
//! end), `tool_use` / `tool_result` between turns, and a closing `result` with
//! `"status": "success"` or `"status": "error"` and `error.message`.
//!
//! Usage: only the closing `result` has it, as `stats: {input_tokens, output_tokens, cached,
//! input, models: {<model>: {…}}}` (`input_tokens` is the whole prompt, `cached` the cached
//! part of it). The `init` event names the model asked for.

use serde_json::Value;

use crate::storage::Usage;

use super::stream::text::{first_text, merge, text_of};
use super::stream::{count, kind, nonempty_str, EventParser};

/// The provider variable holding its API key.
pub const TOKEN_VAR: &str = "GEMINI_API_KEY";

/// The command line: plain output, every tool approved, NDJSON events; the prompt on stdin.
pub const ARGV: &[&str] = &[
    "gemini",
    "--screen-reader",
    "true",
    "--approval-mode",
    "yolo",
    "--output-format",
    "stream-json",
];

/// `gemini … --resume <session>`: continues the conversation `session`.
pub fn resume_argv(argv: &[String], session: &str) -> Vec<String> {
    super::select::with_flag(argv, "--resume", session)
}

/// Reads a gemini stream.
#[derive(Debug, Default)]
pub struct Parser {
    result: Option<String>,
    out: String,
    /// The previous event was an assistant delta chunk: the next one continues its text.
    in_delta: bool,
    error: Option<String>,
    /// The model of the `init` event.
    model: Option<String>,
    usage: Option<Usage>,
}

/// The model of `stats.models` with the most tokens.
fn main_model(models: &Value) -> Option<String> {
    models
        .as_object()?
        .iter()
        .max_by_key(|(_, m)| count(m, "total_tokens"))
        .map(|(name, _)| name.clone())
}

impl EventParser for Parser {
    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    fn event(&mut self, event: &Value) {
        let event_kind = kind(event);
        if event_kind == "init" {
            self.model = nonempty_str(event, "model");
        }
        let stats = &event["stats"];
        if event_kind == "result" && stats.get("input_tokens").is_some() {
            self.usage = Some(Usage {
                model: main_model(&stats["models"]).or_else(|| self.model.clone()),
                input_tokens: count(stats, "input_tokens"),
                cached_input_tokens: count(stats, "cached"),
                output_tokens: count(stats, "output_tokens"),
                cost_usd: None,
                cost_source: None,
            });
        }
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

    use super::super::stream::{final_answer, parse};

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
        assert_eq!(summary.usage, None);
    }

    #[test]
    fn result_stats_are_the_usage() {
        let s = r#"{"type":"init","timestamp":"t","session_id":"g1","model":"auto"}
{"type":"message","role":"assistant","content":"ok","delta":true}
{"type":"result","timestamp":"t","status":"success","stats":{"total_tokens":18,"input_tokens":11,"output_tokens":7,"cached":4,"input":7,"duration_ms":5,"tool_calls":0,"models":{"gemini-2.5-flash-lite":{"total_tokens":2,"input_tokens":1,"output_tokens":1,"cached":0,"input":1},"gemini-2.5-pro":{"total_tokens":16,"input_tokens":10,"output_tokens":6,"cached":4,"input":6}}}}"#;
        let usage = parse(AgentType::Gemini, s).usage.unwrap();
        assert_eq!(
            (
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens
            ),
            (11, 4, 7)
        );
        assert_eq!(usage.model.as_deref(), Some("gemini-2.5-pro"));
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
