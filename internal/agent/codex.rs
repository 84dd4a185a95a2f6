//! Codex (`codex exec --json`): `thread.started` (`thread_id`), `turn.started`, `item.*`
//! events (`agent_message` items carry the answer), then `turn.completed` (with usage) or
//! `turn.failed` with `error.message`; stream-level problems come as `error` events.
//!
//! Usage: each `turn.completed` has `usage: {input_tokens, cached_input_tokens,
//! output_tokens}` of that turn (input includes the cached part, OpenAI style); the turns of a
//! run add up. The stream does not name the model (the supervisor takes it from the command
//! line when given there).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::storage::Usage;

use super::stream::text::{first_text, merge};
use super::stream::{count, kind, EventParser};

/// The provider variable holding its API key.
pub const TOKEN_VAR: &str = "OPENAI_API_KEY";

/// The command line: non-interactive `exec`, no approvals or sandbox, JSON events, the prompt from stdin (`-`).
pub const ARGV: &[&str] = &[
    "codex",
    "exec",
    "--dangerously-bypass-approvals-and-sandbox",
    "--json",
    "-",
];

/// `codex exec resume <session> … --json -` (the `thread_id` of `thread.started`); `None`
/// when `argv` has no `exec` subcommand.
pub fn resume_argv(argv: &[String], session: &str) -> Option<Vec<String>> {
    let exec = argv.iter().skip(1).position(|a| a == "exec")? + 2;
    let mut out = argv.to_vec();
    out.splice(exec..exec, ["resume".to_string(), session.to_string()]);
    Some(out)
}

/// Reads a codex stream.
#[derive(Debug, Default)]
pub struct Parser {
    out: String,
    turn_failed: Option<String>,
    error: Option<String>,
    usage: Option<Usage>,
}

impl EventParser for Parser {
    fn usage(&self) -> Option<Usage> {
        self.usage.clone()
    }

    fn event(&mut self, event: &Value) {
        let turn_usage = &event["usage"];
        if kind(event) == "turn.completed" && turn_usage.is_object() {
            let sum = self.usage.get_or_insert_with(Usage::default);
            sum.input_tokens += count(turn_usage, "input_tokens");
            sum.cached_input_tokens += count(turn_usage, "cached_input_tokens");
            sum.output_tokens += count(turn_usage, "output_tokens");
        }
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

/// The `model` codex runs with when its command line names none: the top-level `model = "…"`
/// of `$CODEX_HOME/config.toml` (default `~/.codex/config.toml`), as codex itself reads it.
pub fn config_model(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let home = env("CODEX_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".codex")))?;
    let text = std::fs::read_to_string(home.join("config.toml")).ok()?;
    top_level_toml_string(&text, "model")
}

/// The string value of `key` before the first `[table]` of a TOML document (basic or literal
/// one-line strings only).
fn top_level_toml_string(text: &str, key: &str) -> Option<String> {
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            return None;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.trim() != key {
            continue;
        }
        let value = value.trim();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let end = value[1..].find(quote)?;
        return Some(value[1..=end].to_string()).filter(|m| !m.trim().is_empty());
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::AgentType;

    use super::super::stream::{final_answer, parse};
    use super::top_level_toml_string;

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
        assert_eq!(summary.usage, None);
    }

    #[test]
    fn turn_usages_add_up() {
        let s = r#"{"type":"thread.started","thread_id":"t1"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"hi"}}
{"type":"turn.completed","usage":{"input_tokens":11,"cached_input_tokens":3,"output_tokens":7}}
{"type":"turn.started"}
{"type":"turn.completed","usage":{"input_tokens":20,"cached_input_tokens":11,"output_tokens":2}}"#;
        let usage = parse(AgentType::Codex, s).usage.unwrap();
        assert_eq!(
            (
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens
            ),
            (31, 14, 9)
        );
        assert_eq!(usage.model, None);
    }

    #[test]
    fn codex_model_from_its_config() {
        let toml =
            "# c\nmodel = \"gpt-5\" # x\nmodel_provider = \"mock\"\n[profiles.a]\nmodel = \"o3\"\n";
        assert_eq!(
            top_level_toml_string(toml, "model").as_deref(),
            Some("gpt-5")
        );
        assert_eq!(top_level_toml_string("[a]\nmodel = 'x'\n", "model"), None);
        assert_eq!(
            top_level_toml_string("model = 'x'\n", "model").as_deref(),
            Some("x")
        );
    }
}
