//! The final answer of a CLI agent, extracted from its NDJSON stdout (reference §3.7).
//! Lines that are not JSON are skipped; `None` means nothing was found.

use serde_json::Value;

use crate::config::AgentType;

/// Longest line parsed (the reference's 1 MiB scanner limit).
const MAX_LINE: usize = 1024 * 1024;

/// The final answer of `agent_type` in `stdout`, if the stream has one.
pub fn final_answer(agent_type: AgentType, stdout: &str) -> Option<String> {
    let events = stdout
        .lines()
        .filter(|l| l.len() <= MAX_LINE)
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object);
    let answer = match agent_type {
        AgentType::Claude => claude(events),
        AgentType::Codex => codex(events),
        AgentType::Gemini => gemini(events),
        _ => None,
    }?;
    (!answer.trim().is_empty()).then_some(answer)
}

/// The agent's own session id in `stdout`: `session_id` of a claude or gemini event, the
/// `thread_id` of codex's `thread.started`. Used to resume the same conversation later.
pub fn session_id(agent_type: AgentType, stdout: &str) -> Option<String> {
    let key = match agent_type {
        AgentType::Claude | AgentType::Gemini => "session_id",
        AgentType::Codex => "thread_id",
        _ => return None,
    };
    stdout
        .lines()
        .filter(|l| l.len() <= MAX_LINE && l.contains(key))
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find_map(|event| {
            event
                .get(key)
                .and_then(Value::as_str)
                .filter(|id| !id.trim().is_empty())
                .map(|id| id.trim().to_string())
        })
}

fn kind(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

/// First `result` event without error wins; else all assistant text blocks joined.
fn claude(events: impl Iterator<Item = Value>) -> Option<String> {
    let mut texts = Vec::new();
    for event in events {
        match kind(&event) {
            "result" if !event["is_error"].as_bool().unwrap_or(false) => {
                if let Some(text) = event["result"].as_str().filter(|t| !t.trim().is_empty()) {
                    return Some(text.to_string());
                }
            }
            "assistant" => {
                if let Some(blocks) = event["message"]["content"].as_array() {
                    texts.extend(
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
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// Text of result-like events and of agent-message items, delta-merged.
fn codex(events: impl Iterator<Item = Value>) -> Option<String> {
    let mut out = String::new();
    for event in events {
        if matches!(
            kind(&event),
            "result" | "response.completed" | "turn.completed" | "message"
        ) {
            let text = ["result", "output_text", "text", "content", "message"]
                .iter()
                .filter_map(|k| event.get(*k).map(text_of))
                .find(|t| !t.is_empty());
            if let Some(text) = text {
                merge(&mut out, &text);
            }
        }
        if let Some(item) = event.get("item").filter(|i| i.is_object()) {
            let item_type = item.get("type").and_then(Value::as_str).unwrap_or("");
            if matches!(item_type, "" | "agent_message" | "message") {
                let text = ["text", "output_text", "content", "message"]
                    .iter()
                    .filter_map(|k| item.get(*k).map(text_of))
                    .find(|t| !t.is_empty());
                if let Some(text) = text {
                    merge(&mut out, &text);
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A `result` event wins; else assistant messages, delta-merged.
fn gemini(events: impl Iterator<Item = Value>) -> Option<String> {
    let mut out = String::new();
    for event in events {
        match kind(&event) {
            "result" => {
                if let Some(result) = event.get("result") {
                    let text = text_of(result);
                    if !text.is_empty() {
                        return Some(text);
                    }
                }
            }
            "message" | "assistant" => {
                let role = event.get("role").and_then(Value::as_str).unwrap_or("");
                if kind(&event) == "message" && !matches!(role, "" | "assistant") {
                    continue;
                }
                let text = event
                    .get("content")
                    .map(text_of)
                    .filter(|t| !t.is_empty())
                    .or_else(|| event.get("message").map(text_of));
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    merge(&mut out, &text);
                }
            }
            _ => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Text in a value: a string, an object's text-like key, or an array's texts joined by `\n`.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(text_of)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Object(map) => [
            "text",
            "content",
            "result",
            "message",
            "output",
            "output_text",
        ]
        .iter()
        .filter_map(|k| map.get(*k).map(text_of))
        .find(|t| !t.is_empty())
        .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Delta merge: a chunk already emitted as a prefix is dropped, an extension adds its new
/// suffix, anything else starts a new line.
fn merge(out: &mut String, chunk: &str) {
    if chunk.is_empty() || out.starts_with(chunk) {
        return;
    }
    if let Some(rest) = chunk.strip_prefix(out.as_str()) {
        out.push_str(rest);
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(chunk);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_result_wins_else_assistant_text() {
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
    fn codex_items_merge() {
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
    fn gemini_messages_and_result() {
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
}
