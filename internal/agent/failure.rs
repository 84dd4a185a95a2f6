//! Why a failed agent run failed, in the agent's own words: the CLI's error event
//! in its JSON stream (see [`crate::agent::stream`]), else the last non-empty line of its stderr;
//! with the agent's own hint where the fix is known ([`super::claude::with_hint`]).

use crate::config::AgentType;

use super::stream::StreamSummary;

/// Longest reason kept (characters); longer ones are cut with `…`.
const MAX_REASON: usize = 500;

/// The reason of a failed run of `agent_type`: the stream's error, else the last non-empty
/// stderr line; `None` when neither says anything.
pub fn reason(agent_type: AgentType, stream: &StreamSummary, stderr: &str) -> Option<String> {
    let text = stream
        .error
        .clone()
        .or_else(|| last_line(stderr).map(str::to_string))?;
    let text = shorten(text.trim());
    Some(match agent_type {
        AgentType::Claude => super::claude::with_hint(text),
        _ => text,
    })
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rev().find(|l| !l.is_empty())
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_error_then_last_stderr_line() {
        let mut stream = StreamSummary {
            error: Some("API key not valid".into()),
            ..StreamSummary::default()
        };
        assert_eq!(
            reason(AgentType::Gemini, &stream, "noise\n").as_deref(),
            Some("API key not valid")
        );
        stream.error = None;
        assert_eq!(
            reason(AgentType::Codex, &stream, "a\nError: no auth\n\n  \n").as_deref(),
            Some("Error: no auth")
        );
        assert_eq!(reason(AgentType::Codex, &stream, " \n"), None);
        let long = "x".repeat(600);
        assert_eq!(
            reason(AgentType::Command, &stream, &long).map(|r| r.chars().count()),
            Some(MAX_REASON + 1)
        );
    }

    #[test]
    fn claude_as_root_says_how_to_fix_it() {
        let stderr = "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n";
        let text = reason(AgentType::Claude, &StreamSummary::default(), stderr).unwrap();
        assert!(
            text.contains("IS_SANDBOX=1") && text.contains("non-root"),
            "{text}"
        );
    }
}
