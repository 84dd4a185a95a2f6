//! What the runner reads from each CLI's own stream shape (the fake CLIs print exactly what
//! claude 2.1, codex 0.17x and gemini 0.61 print): gemini's `delta` chunks joined into one
//! answer, the CLI's error event (else the last stderr line) as the failure reason in
//! run-info, `run-agent status` and the API, a failed run's output.md that is not the raw
//! NDJSON stream, and the env gemini needs to run in an untrusted folder.

use std::path::{Path, PathBuf};

use conductor::storage::{RunInfo, RunStatus};

use crate::support::{run, text, Sandbox, Server};

/// Gemini 0.61's stream of a two-turn answer: delta chunks, a tool call, more chunks.
const GEMINI_DELTAS: &str = r#"{"type":"init","timestamp":"2026-01-01T00:00:00.000Z","session_id":"g-1","model":"gemini-2.5-pro"}
{"type":"message","timestamp":"2026-01-01T00:00:00.000Z","role":"user","content":"SECRET PROMPT"}
{"type":"message","timestamp":"2026-01-01T00:00:01.000Z","role":"assistant","content":"MOCK: ","delta":true}
{"type":"message","timestamp":"2026-01-01T00:00:01.000Z","role":"assistant","content":"hello ","delta":true}
{"type":"message","timestamp":"2026-01-01T00:00:01.000Z","role":"assistant","content":"from the mock","delta":true}
{"type":"tool_use","timestamp":"2026-01-01T00:00:01.000Z","tool_name":"run_shell_command","tool_id":"t1","parameters":{"command":"ls"}}
{"type":"tool_result","timestamp":"2026-01-01T00:00:02.000Z","tool_id":"t1","status":"success","output":"x"}
{"type":"message","timestamp":"2026-01-01T00:00:02.000Z","role":"assistant","content":"All ","delta":true}
{"type":"message","timestamp":"2026-01-01T00:00:02.000Z","role":"assistant","content":"done.","delta":true}
{"type":"result","timestamp":"2026-01-01T00:00:02.000Z","status":"success","stats":{"total_tokens":10}}"#;

/// One failure per CLI: its stream, exit code, stderr, and the reason the run must record.
struct Failure {
    agent: &'static str,
    stdout: &'static str,
    stderr: &'static str,
    exit: &'static str,
    reason: &'static str,
}

fn failures() -> Vec<Failure> {
    vec![
        Failure {
            agent: "claude",
            stdout: r#"{"type":"system","subtype":"init","session_id":"c-1","tools":[]}
{"type":"user","message":{"role":"user","content":"SECRET PROMPT"}}
{"type":"assistant","message":{"content":[{"type":"text","text":"Invalid API key · Please run /login"}]},"session_id":"c-1"}
{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key · Please run /login","session_id":"c-1"}"#,
            stderr: "",
            exit: "1",
            reason: "Invalid API key · Please run /login",
        },
        Failure {
            agent: "codex",
            stdout: r#"{"type":"thread.started","thread_id":"th-1"}
{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 1/5 (unexpected status 401 Unauthorized)"}
{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: Incorrect API key provided"}}"#,
            stderr: "",
            exit: "1",
            reason: "unexpected status 401 Unauthorized: Incorrect API key provided",
        },
        Failure {
            agent: "gemini",
            stdout: r#"{"type":"init","session_id":"g-1","model":"m"}
{"type":"message","role":"user","content":"SECRET PROMPT"}
{"type":"result","status":"error","error":{"type":"Error","message":"[API Error: API key not valid. Please pass a valid API key.]"},"stats":{}}"#,
            stderr: "Loaded cached credentials.",
            exit: "145",
            reason: "[API Error: API key not valid. Please pass a valid API key.]",
        },
        Failure {
            agent: "codex",
            stdout: "",
            stderr: "Reading prompt from stdin...\nError: Not inside a trusted directory\n",
            exit: "1",
            reason: "Error: Not inside a trusted directory",
        },
    ]
}

fn world() -> Sandbox {
    let sb = Sandbox::new();
    sb.install_fake_clis(&["claude", "codex", "gemini"]);
    sb
}

/// `run-agent job` of `agent` in task `task` with the fake CLI's `FAKE_*` settings.
fn job(sb: &Sandbox, task: &str, agent: &str, fake: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = sb.run_agent_with_fake_clis();
    cmd.args(["job", "--project", "p", "--task", task, "--agent", agent])
        .args(["--prompt", "SECRET PROMPT", "--root"])
        .arg(sb.path().join("root"))
        .envs(fake.iter().copied());
    run(&mut cmd)
}

fn only_run(sb: &Sandbox, task: &str) -> (PathBuf, RunInfo) {
    let runs = sb.path().join("root/p").join(task).join("runs");
    let info = crate::support::run_infos(&runs).pop().expect("one run");
    (runs.join(&info.run_id), info)
}

fn output_md(run_dir: &Path) -> String {
    std::fs::read_to_string(run_dir.join("output.md")).unwrap()
}

#[test]
fn gemini_delta_chunks_are_joined_into_one_answer() {
    let sb = world();
    let out = job(&sb, "t", "gemini", &[("FAKE_STDOUT", GEMINI_DELTAS)]);
    assert!(out.status.success(), "{}", text(&out));
    let (run_dir, info) = only_run(&sb, "t");
    assert_eq!(
        output_md(&run_dir),
        "MOCK: hello from the mock\nAll done.\n"
    );
    assert_eq!(info.agent_session_id.as_deref(), Some("g-1"));
}

#[test]
fn failures_carry_the_clis_own_reason_and_no_raw_stream() {
    let sb = world();
    for (i, case) in failures().iter().enumerate() {
        let task = format!("f{i}");
        let out = job(
            &sb,
            &task,
            case.agent,
            &[
                ("FAKE_STDOUT", case.stdout),
                ("FAKE_STDERR", case.stderr),
                ("FAKE_EXIT", case.exit),
            ],
        );
        assert!(!out.status.success(), "{}", text(&out));
        let (run_dir, info) = only_run(&sb, &task);
        assert_eq!(info.status, RunStatus::Failed, "{}", case.agent);
        assert_eq!(info.exit_code.to_string(), case.exit);
        assert_eq!(
            info.error_summary.as_deref(),
            Some(case.reason),
            "{}",
            case.agent
        );
        let output = output_md(&run_dir);
        assert!(
            !output.contains("SECRET PROMPT") && !output.contains("{\"type\""),
            "{}: output.md is the raw stream: {output}",
            case.agent
        );
        if !case.stdout.is_empty() {
            assert_eq!(output, format!("Run failed: {}\n", case.reason));
        }
        let mut status = sb.run_agent();
        status
            .args(["status", "--project", "p", "--task", &task, "--root"])
            .arg(sb.path().join("root"));
        let status = run(&mut status);
        let shown = String::from_utf8_lossy(&status.stdout);
        assert!(shown.contains(case.reason), "{}: {shown}", case.agent);
    }
}

#[test]
fn claude_as_root_says_how_to_fix_it() {
    let sb = world();
    let stderr = "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons";
    let out = job(
        &sb,
        "t",
        "claude",
        &[("FAKE_STDERR", stderr), ("FAKE_EXIT", "1")],
    );
    assert!(!out.status.success());
    let (_, info) = only_run(&sb, "t");
    let summary = info.error_summary.unwrap_or_default();
    assert!(
        summary.starts_with(stderr)
            && summary.contains("IS_SANDBOX=1")
            && summary.contains("non-root"),
        "{summary}"
    );
}

#[test]
fn gemini_runs_with_a_trusted_workspace() {
    let sb = world();
    let dump = sb.path().join("env.txt");
    let out = job(
        &sb,
        "t",
        "gemini",
        &[("FAKE_ENV_DUMP", dump.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", text(&out));
    let env = std::fs::read_to_string(&dump).unwrap();
    assert!(
        env.lines().any(|l| l == "GEMINI_CLI_TRUST_WORKSPACE=true"),
        "{env}"
    );
}

/// A task that gives up reports its last run's reason as the API's `error`.
#[test]
fn api_task_outcome_carries_the_failure_reason() {
    let sb = world();
    let mut cmd = sb.serve_with_fake_clis();
    cmd.env("FAKE_STDOUT", failures()[1].stdout)
        .env("FAKE_EXIT", "1");
    let server = Server::start(cmd, sb.path());
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({"project_id": "p", "task_id": "t", "agent": "codex",
                           "prompt": "SECRET PROMPT", "max_restarts": 0, "wait_seconds": 60}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["outcome"], "gave_up", "{body}");
    assert_eq!(body["error"], failures()[1].reason, "{body}");
    let output = body["output"].as_str().unwrap_or_default();
    assert!(!output.contains("SECRET PROMPT"), "{body}");
    drop(server);
}
