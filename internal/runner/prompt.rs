//! `prompt.md`: the preamble (JRUN_* values, how to use the bus, spawn children and finish)
//! followed by `\n---\n\n` and the task prompt. Every command shown works as
//! written inside a run, because the runner puts its own directory on the agent's PATH and
//! sets the JRUN_* variables those commands read.

use std::path::Path;

/// Prefix of the prompt of every Ralph-loop attempt after the first.
pub const RESTART_PREFIX: &str = "Continue working on the following:";

/// Everything the preamble mentions.
#[derive(Debug, Clone)]
pub struct PromptContext<'a> {
    /// Absolute task dir.
    pub task_dir: &'a Path,
    /// Absolute run dir.
    pub run_dir: &'a Path,
    /// Project id.
    pub project_id: &'a str,
    /// Task id.
    pub task_id: &'a str,
    /// Run id.
    pub run_id: &'a str,
    /// Parent run id, if any.
    pub parent_run_id: Option<&'a str>,
    /// The task bus file.
    pub task_bus: &'a Path,
    /// Agent name to use in the child-spawn example.
    pub agent_name: &'a str,
    /// The Conductor server's URL, when the caller knows it.
    pub conductor_url: Option<&'a str>,
}

/// The task prompt with the restart prefix applied when `restarted`.
pub fn task_prompt(prompt: &str, restarted: bool) -> String {
    let prompt = prompt.trim();
    if restarted {
        format!("{RESTART_PREFIX}\n\n{prompt}")
    } else {
        prompt.to_string()
    }
}

/// The full text of prompt.md.
pub fn build(ctx: &PromptContext<'_>, task_prompt: &str) -> String {
    let mut out = String::with_capacity(2048 + task_prompt.len());
    let mut line = |key: &str, value: &str| {
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        out.push('\n');
    };
    line("JRUN_TASK_FOLDER", &ctx.task_dir.display().to_string());
    line("JRUN_RUN_FOLDER", &ctx.run_dir.display().to_string());
    line("JRUN_PROJECT_ID", ctx.project_id);
    line("JRUN_TASK_ID", ctx.task_id);
    line("JRUN_ID", ctx.run_id);
    if let Some(parent) = ctx.parent_run_id.filter(|p| !p.is_empty()) {
        line("JRUN_PARENT_ID", parent);
    }
    line("JRUN_MESSAGE_BUS", &ctx.task_bus.display().to_string());
    if let Some(url) = ctx.conductor_url.filter(|u| !u.is_empty()) {
        line("JRUN_CONDUCTOR_URL", url);
    }
    out.push_str(&format!(
        "Write output.md to {}\n",
        ctx.run_dir.join("output.md").display()
    ));
    out.push_str(&format!(
        "\n## Message Bus\n\
         Report progress, facts and decisions on the task's message bus:\n\
         \x20 run-agent bus post --type PROGRESS --body \"what changed\"\n\
         Types: FACT, PROGRESS, DECISION, ERROR, QUESTION, INFO.\n\
         The bus file is taken from $JRUN_MESSAGE_BUS automatically. Read recent messages with:\n\
         \x20 run-agent bus read --tail 20\n\
         \n## Sub-Agent Spawning\n\
         Start a child run in this task (project, task and parent run come from the JRUN_* variables):\n\
         \x20 run-agent job --agent {agent} --prompt \"a focused sub-task\"\n\
         It waits for the child and exits 0 when the child completed; the child's answer is in its\n\
         run folder under $JRUN_RUNS_DIR. Start several in the background (`&`) to run them in parallel.\n\
         \n## Completion\n\
         When done, create: {done}\n\
         For example: touch {done}\n\
         This signals the conductor loop to stop restarting this task.\n",
        agent = shell_word(ctx.agent_name),
        done = shell_word(&ctx.task_dir.join("DONE").display().to_string()),
    ));
    out.push_str("\n---\n\n");
    out.push_str(task_prompt.trim());
    out.push('\n');
    out
}

/// Quotes `word` for a POSIX shell when it holds anything but safe characters.
fn shell_word(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_then_prompt() {
        let ctx = PromptContext {
            task_dir: Path::new("/r/p/t"),
            run_dir: Path::new("/r/p/t/runs/x"),
            project_id: "p",
            task_id: "t",
            run_id: "x",
            parent_run_id: None,
            task_bus: Path::new("/r/p/t/TASK-MESSAGE-BUS.md"),
            agent_name: "my agent",
            conductor_url: Some("http://127.0.0.1:14355"),
        };
        let text = build(&ctx, &task_prompt("  do it \n", true));
        assert!(text.starts_with("JRUN_TASK_FOLDER=/r/p/t\nJRUN_RUN_FOLDER=/r/p/t/runs/x\n"));
        assert!(!text.contains("JRUN_PARENT_ID"));
        assert!(text.contains("JRUN_MESSAGE_BUS=/r/p/t/TASK-MESSAGE-BUS.md\nJRUN_CONDUCTOR_URL=http://127.0.0.1:14355\n"));
        assert!(text.contains("run-agent job --agent 'my agent' --prompt"));
        assert!(text.contains("When done, create: /r/p/t/DONE\n"));
        assert!(text.ends_with("\n---\n\nContinue working on the following:\n\ndo it\n"));
    }
}
