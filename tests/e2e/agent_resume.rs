//! Resuming a task continues the agent's own conversation: the fake CLIs
//! (tests/fake-agents/fake-agent.sh installed as `claude`/`codex`/`gemini`) report a session
//! id in their stream format, and the first run of `run-agent task resume` and of
//! `POST /api/v1/projects/{p}/tasks/{t}/resume` gets that agent's resume form; later runs of
//! the loop, and a resume with another agent type, start a new conversation.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use conductor::storage::{RunInfo, RunStatus};

use crate::support::{run, text, Sandbox, Server};

const CLAUDE: &str = "claude -p --input-format text --output-format stream-json --verbose \
                      --tools default --permission-mode bypassPermissions";
const CODEX: &str = "codex exec --dangerously-bypass-approvals-and-sandbox --json -";
const GEMINI: &str = "gemini --screen-reader true --approval-mode yolo --output-format stream-json";

/// Per agent: its stream line that reports a session, the id, and the expected command lines
/// of the resumed first run and of a fresh run.
struct Case {
    agent: &'static str,
    stream: &'static str,
    session: &'static str,
    resumed: String,
    fresh: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            agent: "claude",
            stream: r#"{"type":"system","subtype":"init","session_id":"sess-c1"}"#,
            session: "sess-c1",
            resumed: format!("{CLAUDE} --resume sess-c1"),
            fresh: CLAUDE,
        },
        Case {
            agent: "codex",
            stream: r#"{"type":"thread.started","thread_id":"th-x9"}"#,
            session: "th-x9",
            resumed: "codex exec resume th-x9 --dangerously-bypass-approvals-and-sandbox --json -"
                .to_string(),
            fresh: CODEX,
        },
        Case {
            agent: "gemini",
            stream: r#"{"type":"init","session_id":"gem-7","model":"m"}"#,
            session: "gem-7",
            resumed: format!("{GEMINI} --resume gem-7"),
            fresh: GEMINI,
        },
    ]
}

/// A sandbox with fake CLIs first on PATH and a runs root.
struct World {
    sb: Sandbox,
}

impl World {
    fn new() -> World {
        World {
            sb: Sandbox::with_fake_clis(),
        }
    }

    fn dump(&self) -> PathBuf {
        self.sb.path().join("argv.txt")
    }

    /// `run-agent <args…>` with the fake bin dir first on PATH and no inherited FAKE_*.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.run_agent_with_fake_clis();
        cmd.args(args);
        cmd
    }

    /// The working directory of `task`'s first run (claude and gemini keep conversations
    /// per directory, so resumed runs must run there too).
    fn work_dir(&self, task: &str) -> PathBuf {
        self.sb.path().join("work").join(task)
    }

    /// A first run of `task` with `agent` whose stream reports a session, in [`World::work_dir`].
    fn first_run(&self, task: &str, agent: &str, stream: &str) {
        std::fs::create_dir_all(self.work_dir(task)).unwrap();
        let mut cmd = self.cmd(&["job", "--project", "demo", "--task", task, "--agent", agent]);
        cmd.args(["--prompt", "work", "--root"])
            .arg(self.sb.root())
            .arg("--cwd")
            .arg(self.work_dir(task))
            .env("FAKE_STDOUT", stream);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", text(&out));
    }

    fn runs(&self, task: &str) -> Vec<RunInfo> {
        crate::support::run_infos(&self.sb.root().join("demo").join(task).join("runs"))
    }

    /// The dumped command lines of the fake `program`, in run order.
    fn argv_lines(&self, program: &str) -> Vec<String> {
        std::fs::read_to_string(self.dump())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').next() == Some(program))
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn cli_task_resume_continues_each_agents_session_in_the_first_run_only() {
    let w = World::new();
    for case in cases() {
        let task = format!("t-{}", case.agent);
        w.first_run(&task, case.agent, case.stream);
        let first = w.runs(&task).remove(0);
        assert_eq!(first.agent_session_id.as_deref(), Some(case.session));

        // Two runs: the first resumes the session, the restart (DONE on the 2nd) does not.
        let mut cmd = w.cmd(&["task", "resume", "--project", "demo", "--task", &task]);
        cmd.args(["--max-restarts", "1", "--restart-delay", "10ms", "--root"])
            .arg(w.sb.root())
            .env("FAKE_ARGV_DUMP", w.dump())
            .env("FAKE_DONE_AFTER", "2");
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}: {}", case.agent, text(&out));
        assert_eq!(
            w.argv_lines(case.agent),
            [case.resumed.as_str(), case.fresh],
            "{}",
            case.agent
        );
        let runs = w.runs(&task);
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[1].commandline.as_deref(), Some(case.resumed.as_str()));
        let work = w.work_dir(&task).display().to_string();
        assert!(
            runs.iter().all(|r| r.cwd.as_deref() == Some(work.as_str())),
            "resumed runs keep the first run's cwd: {runs:?}"
        );
    }

    // Resuming with another agent type starts a new conversation.
    w.first_run("switch", "claude", cases()[0].stream);
    let mut cmd = w.cmd(&["task", "resume", "--project", "demo", "--task", "switch"]);
    cmd.args(["--agent", "gemini", "--max-restarts", "0", "--root"])
        .arg(w.sb.root())
        .env("FAKE_ARGV_DUMP", w.dump())
        .env("FAKE_DONE_AFTER", "1");
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        w.argv_lines("gemini").last().map(String::as_str),
        Some(GEMINI)
    );
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn loop_ended(w: &World, server: &Server, task: &str) -> bool {
    let (_, t) = server.get_json(&format!("/api/v1/projects/demo/tasks/{task}"));
    t["status"] == "done" && w.runs(task).iter().all(|r| r.status != RunStatus::Running)
}

#[test]
fn api_resume_continues_each_agents_session_in_the_first_run_only() {
    let w = World::new();
    for case in cases() {
        w.first_run(&format!("t-{}", case.agent), case.agent, case.stream);
    }
    w.first_run("switch", "claude", cases()[0].stream);
    let mut cmd = w.cmd(&["serve", "--host", "127.0.0.1", "--root"]);
    cmd.arg(w.sb.root())
        .env("FAKE_ARGV_DUMP", w.dump())
        .env("FAKE_DONE_AFTER", "2");
    let server = Server::start(cmd, w.sb.path());

    for case in cases() {
        let path = format!("/api/v1/projects/demo/tasks/t-{}/resume", case.agent);
        let (code, body) = server.post_json(&path, serde_json::json!({"max_restarts": 1}));
        assert_eq!(code, 202, "{}: {body}", case.agent);
    }
    let (code, body) = server.post_json(
        "/api/v1/projects/demo/tasks/switch/resume",
        serde_json::json!({"agent": "codex", "max_restarts": 1, "cwd": "relative/dir"}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("cwd"), "{body}");
    let elsewhere = w.sb.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let (code, body) = server.post_json(
        "/api/v1/projects/demo/tasks/switch/resume",
        serde_json::json!({"agent": "codex", "max_restarts": 1, "cwd": elsewhere}),
    );
    assert_eq!(code, 202, "{body}");
    for task in ["t-claude", "t-codex", "t-gemini", "switch"] {
        wait_until(&format!("{task} done"), || {
            w.sb.root().join("demo").join(task).join("DONE").exists()
                && loop_ended(&w, &server, task)
        });
    }
    for case in cases() {
        // What the agent got (the switched task's codex runs interleave with t-codex's)…
        let lines = w.argv_lines(case.agent);
        let resumed = lines.iter().filter(|l| **l == case.resumed).count();
        assert_eq!(resumed, 1, "{}: {lines:?}", case.agent);
        assert!(
            lines.iter().all(|l| *l == case.resumed || l == case.fresh),
            "{lines:?}"
        );
        // …and in which run: the first of the resumed loop only.
        let runs = w.runs(&format!("t-{}", case.agent));
        assert_eq!(runs.len(), 3, "{runs:?}");
        assert_eq!(runs[1].commandline.as_deref(), Some(case.resumed.as_str()));
        assert_eq!(runs[2].commandline.as_deref(), Some(case.fresh));
        let work = w
            .work_dir(&format!("t-{}", case.agent))
            .display()
            .to_string();
        assert!(
            runs.iter().all(|r| r.cwd.as_deref() == Some(work.as_str())),
            "resumed runs keep the first run's cwd: {runs:?}"
        );
    }
    assert_eq!(w.argv_lines("claude").len(), 2);
    assert_eq!(w.argv_lines("codex").len(), 4);
    let switched = w.runs("switch");
    assert_eq!(switched.len(), 3);
    assert_eq!(switched[1].agent, "codex");
    assert_eq!(switched[1].commandline.as_deref(), Some(CODEX));
    let elsewhere = elsewhere.display().to_string();
    assert_eq!(switched[1].cwd.as_deref(), Some(elsewhere.as_str()));
    assert_eq!(switched[2].cwd.as_deref(), Some(elsewhere.as_str()));
    drop(server);
}

/// A resume whose agent fails before reporting a session (no stream at all) keeps the
/// session id in its record, so the next resume tries the same conversation again.
#[test]
fn a_failed_resume_without_a_stream_keeps_the_session_for_the_next_try() {
    let w = World::new();
    let case = &cases()[0];
    w.first_run("t", case.agent, case.stream);
    let resume = |exit: &str, done_after: &str| {
        let mut cmd = w.cmd(&["task", "resume", "--project", "demo", "--task", "t"]);
        cmd.args(["--max-restarts", "0", "--root"])
            .arg(w.sb.root())
            .env("FAKE_ARGV_DUMP", w.dump())
            .env("FAKE_EXIT", exit)
            .env("FAKE_DONE_AFTER", done_after);
        run(&mut cmd)
    };
    let out = resume("1", "99");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let runs = w.runs("t");
    assert_eq!(runs[1].status, RunStatus::Failed);
    assert_eq!(runs[1].agent_session_id.as_deref(), Some(case.session));
    let out = resume("0", "1");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        w.argv_lines(case.agent),
        [case.resumed.as_str(), case.resumed.as_str()]
    );
}
