//! Claude Code (`claude -p --output-format stream-json --verbose`): `system`/`init`, then
//! `assistant` and `user` (tool result) messages, and one `result` event at the end —
//! `{"type":"result","is_error":false,"result":"<answer>","session_id":…}`, or with
//! `"is_error":true` and the failure in `result` (e.g. `Invalid API key`, `API Error: 500 …`).
//!
//! Usage: every `assistant` event carries its API message's `usage` (one message may come as
//! several events, one per content block, repeating the same usage); the `result` event has
//! the whole run's `usage`, `total_cost_usd` and `modelUsage` per model (with `costUSD`).
//! Claude counts `input_tokens` without the cache; cache reads and cache writes are input too.

use serde_json::Value;

use crate::storage::{CostSource, Usage};

use super::stream::text::first_text;
use super::stream::{count, kind, nonempty_str, EventParser};

/// What claude prints when `--permission-mode bypassPermissions` is used as root.
const ROOT_REFUSAL: &str = "root/sudo";

/// How to fix claude's root refusal.
pub const ROOT_HINT: &str = "claude refuses to skip permission prompts as root: run the \
    agent as a non-root user (in a container, a non-root USER), or set IS_SANDBOX=1 in its \
    environment when it runs in a sandbox";

/// A failure reason with the fix appended where claude's message is one we know the fix of.
pub fn with_hint(reason: String) -> String {
    if reason.contains(ROOT_REFUSAL) {
        format!("{reason} — {ROOT_HINT}")
    } else {
        reason
    }
}

/// The provider variable holding its API key.
pub const TOKEN_VAR: &str = "ANTHROPIC_API_KEY";

/// The command line: print mode, the prompt as text on stdin, NDJSON events, every tool, no permission prompts.
pub const ARGV: &[&str] = &[
    "claude",
    "-p",
    "--input-format",
    "text",
    "--output-format",
    "stream-json",
    "--verbose",
    "--tools",
    "default",
    "--permission-mode",
    "bypassPermissions",
];

/// `claude … --resume <session>`: continues the conversation `session`.
pub fn resume_argv(argv: &[String], session: &str) -> Vec<String> {
    super::select::with_flag(argv, "--resume", session)
}

/// Reads a claude stream.
#[derive(Debug, Default)]
pub struct Parser {
    result: Option<String>,
    texts: Vec<String>,
    error: Option<String>,
    /// Usage per API message id (the latest event of each message wins), in order.
    turns: Vec<(String, Usage)>,
    /// The `result` event's usage (the whole run), once it came.
    total: Option<Usage>,
}

/// The tokens of a claude `usage` object.
fn tokens(usage: &Value, model: Option<String>) -> Usage {
    let cached = count(usage, "cache_read_input_tokens");
    Usage {
        model,
        input_tokens: count(usage, "input_tokens")
            .saturating_add(count(usage, "cache_creation_input_tokens"))
            .saturating_add(cached),
        cached_input_tokens: cached,
        output_tokens: count(usage, "output_tokens"),
        cost_usd: None,
        cost_source: None,
    }
}

/// The model of `modelUsage` that cost the most (else used the most tokens).
fn main_model(model_usage: &Value) -> Option<String> {
    let models = model_usage.as_object()?;
    let weight = |m: &Value| {
        (
            m["costUSD"].as_f64().unwrap_or(0.0),
            count(m, "inputTokens") + count(m, "outputTokens"),
        )
    };
    models
        .iter()
        .max_by(|a, b| {
            weight(a.1)
                .partial_cmp(&weight(b.1))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|(name, _)| name.clone())
}

impl Parser {
    fn record_usage(&mut self, event: &Value) {
        match kind(event) {
            "assistant" => {
                let message = &event["message"];
                if !message["usage"].is_object() {
                    return;
                }
                let usage = tokens(&message["usage"], nonempty_str(message, "model"));
                let id = nonempty_str(message, "id").unwrap_or_default();
                match self
                    .turns
                    .iter_mut()
                    .find(|(i, _)| !id.is_empty() && *i == id)
                {
                    Some((_, seen)) => *seen = usage,
                    None => self.turns.push((id, usage)),
                }
            }
            "result" => {
                let told = event["usage"].is_object()
                    || event["total_cost_usd"].is_number()
                    || !self.turns.is_empty();
                if !told {
                    return;
                }
                let model = main_model(&event["modelUsage"])
                    .or_else(|| self.turns.last().and_then(|(_, u)| u.model.clone()));
                let mut usage = if event["usage"].is_object() {
                    tokens(&event["usage"], model)
                } else {
                    let mut sum = self.turn_sum();
                    sum.model = model.or(sum.model);
                    sum
                };
                if let Some(cost) = event["total_cost_usd"].as_f64().filter(|c| *c >= 0.0) {
                    usage.cost_usd = Some(cost);
                    usage.cost_source = Some(CostSource::Reported);
                }
                self.total = Some(usage);
            }
            _ => {}
        }
    }

    fn turn_sum(&self) -> Usage {
        let mut sum = Usage::default();
        for (_, turn) in &self.turns {
            sum.input_tokens += turn.input_tokens;
            sum.cached_input_tokens += turn.cached_input_tokens;
            sum.output_tokens += turn.output_tokens;
            if turn.model.is_some() {
                sum.model.clone_from(&turn.model);
            }
        }
        sum
    }
}

impl EventParser for Parser {
    fn usage(&self) -> Option<Usage> {
        if let Some(total) = &self.total {
            return Some(total.clone());
        }
        (!self.turns.is_empty()).then(|| self.turn_sum())
    }

    fn event(&mut self, event: &Value) {
        self.record_usage(event);
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

    use super::super::stream::{final_answer, parse};

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
        assert_eq!(summary.usage, None);
    }

    /// The shapes of claude 2.x stream-json: one message split over two events repeating its
    /// usage, a second turn, then the run's `result`.
    const TURNS: &str = r#"{"type":"system","subtype":"init","session_id":"s1","model":"claude-sonnet-4-5-20250929"}
{"type":"assistant","message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"a"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"output_tokens":5}},"session_id":"s1"}
{"type":"assistant","message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929","content":[{"type":"tool_use"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"output_tokens":5}},"session_id":"s1"}
{"type":"user","message":{"content":[{"type":"tool_result"}]}}
{"type":"assistant","message":{"id":"msg_2","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"b"}],"usage":{"input_tokens":4,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":9}},"session_id":"s1"}"#;

    #[test]
    fn usage_per_turn_then_the_result_with_its_cost() {
        let usage = parse(AgentType::Claude, TURNS).usage.unwrap();
        assert_eq!(
            (
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens
            ),
            (207, 100, 14)
        );
        assert_eq!(usage.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
        assert_eq!(usage.cost_usd, None);
        let done = format!(
            "{TURNS}\n{}",
            r#"{"type":"result","subtype":"success","is_error":false,"result":"b","session_id":"s1","total_cost_usd":0.012345,"usage":{"input_tokens":7,"cache_creation_input_tokens":100,"cache_read_input_tokens":100,"output_tokens":14},"modelUsage":{"claude-haiku-4-5":{"inputTokens":50,"outputTokens":1,"costUSD":0.0001},"claude-sonnet-4-5-20250929":{"inputTokens":7,"outputTokens":14,"costUSD":0.012245}}}"#
        );
        let usage = parse(AgentType::Claude, &done).usage.unwrap();
        assert_eq!(usage.input_tokens, 207);
        assert_eq!(usage.output_tokens, 14);
        assert_eq!(usage.cost_usd, Some(0.012345));
        assert_eq!(
            usage.cost_source,
            Some(crate::storage::CostSource::Reported)
        );
        assert_eq!(usage.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    }
}
