//! What a CLI agent's NDJSON stdout says: its final answer, its own session id (to resume the
//! conversation), tokens and cost, and for a failed run the CLI's own error. One event parser
//! per CLI (in [`super::claude`], [`super::codex`], [`super::gemini`]) sees every JSON object
//! line in order; lines that are not JSON objects are skipped.

mod live;
pub(super) mod text;

use serde_json::Value;

use crate::config::AgentType;
use crate::storage::Usage;

pub use live::LiveUsage;

/// Longest line parsed (the reference's 1 MiB scanner limit).
const MAX_LINE: usize = 1024 * 1024;

/// Everything read from one agent stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamSummary {
    /// The final answer, if the stream has one (never only whitespace).
    pub answer: Option<String>,
    /// The agent's own session (claude/gemini `session_id`, codex `thread_id`).
    pub session_id: Option<String>,
    /// The CLI's own error event: claude `result` with `is_error`, codex `turn.failed` /
    /// `error`, gemini `result` with `status: error` / `error`.
    pub error: Option<String>,
    /// How many JSON object lines the stream had (0: not a JSON stream at all).
    pub events: usize,
    /// Tokens (and a reported cost) the stream told of; `None` when it told nothing.
    pub usage: Option<Usage>,
}

/// One CLI's reading of its stream, fed event by event.
pub(super) trait EventParser: Send {
    /// Takes the next JSON object of the stream.
    fn event(&mut self, event: &Value);
    /// What the events seen so far say of tokens and cost (`None`: nothing yet).
    fn usage(&self) -> Option<Usage>;
    /// The answer and the error, once every event was seen.
    fn finish(self: Box<Self>) -> (Option<String>, Option<String>);
}

fn parser(agent_type: AgentType) -> Option<(Box<dyn EventParser>, &'static str)> {
    Some(match agent_type {
        AgentType::Claude => (Box::<super::claude::Parser>::default(), "session_id"),
        AgentType::Codex => (Box::<super::codex::Parser>::default(), "thread_id"),
        AgentType::Gemini => (Box::<super::gemini::Parser>::default(), "session_id"),
        _ => return None,
    })
}

/// Reads the whole stream of an agent of `agent_type` (empty summary for non-CLI types).
pub fn parse(agent_type: AgentType, stdout: &str) -> StreamSummary {
    let Some((mut parser, session_key)) = parser(agent_type) else {
        return StreamSummary::default();
    };
    let mut summary = StreamSummary::default();
    let events = stdout
        .lines()
        .filter(|l| l.len() <= MAX_LINE)
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object);
    for event in events {
        summary.events += 1;
        if summary.session_id.is_none() {
            summary.session_id = event
                .get(session_key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string);
        }
        parser.event(&event);
    }
    summary.usage = parser.usage();
    let (answer, error) = parser.finish();
    summary.answer = answer.filter(|a| !a.trim().is_empty());
    summary.error = error
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    summary
}

/// The final answer of `agent_type` in `stdout`, if the stream has one.
pub fn final_answer(agent_type: AgentType, stdout: &str) -> Option<String> {
    parse(agent_type, stdout).answer
}

/// The agent's own session id in `stdout`: `session_id` of a claude or gemini event, the
/// `thread_id` of codex's `thread.started`. Used to resume the same conversation later.
pub fn session_id(agent_type: AgentType, stdout: &str) -> Option<String> {
    parse(agent_type, stdout).session_id
}

pub(super) fn kind(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A token count at `key` of `value` (0 when missing or not a non-negative integer).
pub(super) fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A non-empty string at `key` of `value`.
pub(super) fn nonempty_str(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        let claude = r#"{"type":"system","subtype":"init","session_id":"abc-123"}"#;
        assert_eq!(
            session_id(AgentType::Claude, claude).as_deref(),
            Some("abc-123")
        );
        let codex = r#"{"type":"thread.started","thread_id":"th_9"}"#;
        assert_eq!(session_id(AgentType::Codex, codex).as_deref(), Some("th_9"));
        assert_eq!(session_id(AgentType::Command, claude), None);
        assert_eq!(
            session_id(AgentType::Gemini, "session_id but not json"),
            None
        );
    }

    #[test]
    fn counts_only_json_objects() {
        let s = "plain\n[1]\n{\"type\":\"x\"}\n";
        assert_eq!(parse(AgentType::Claude, s).events, 1);
        assert_eq!(parse(AgentType::Command, s).events, 0);
    }
}
