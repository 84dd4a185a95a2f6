//! Why a failed agent run failed, in the agent's own words: the CLI's error event
//! in its JSON stream (see [`crate::agent::stream`]), else the last non-empty line of its stderr;
//! with a hint where the fix is known (claude refusing to run as root).

use crate::config::AgentType;

use crate::agent::stream::StreamSummary;

/// Longest reason kept (characters); longer ones are cut with `…`.
const MAX_REASON: usize = 500;

/// What claude prints when `--permission-mode bypassPermissions` is used as root.
const CLAUDE_ROOT_REFUSAL: &str = "root/sudo";

/// How to fix claude's root refusal.
pub const CLAUDE_ROOT_HINT: &str = "claude refuses to skip permission prompts as root: run the \
    agent as a non-root user (in a container, a non-root USER), or set IS_SANDBOX=1 in its \
    environment when it runs in a sandbox";

/// The reason of a failed run of `agent_type`: the stream's error, else the last non-empty
/// stderr line; `None` when neither says anything.
pub fn reason(agent_type: AgentType, stream: &StreamSummary, stderr: &str) -> Option<String> {
    let text = stream
        .error
        .clone()
        .or_else(|| last_line(stderr).map(str::to_string))?;
    let text = shorten(text.trim());
    if agent_type == AgentType::Claude && text.contains(CLAUDE_ROOT_REFUSAL) {
        return Some(format!("{text} — {CLAUDE_ROOT_HINT}"));
    }
    Some(text)
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
