//! e2e: runner — `run-agent job`, `task` and `stop` driven with fake agents: a shell script
//! (tests/fake-agents/fake-agent.sh) installed first on PATH as `claude`/`codex`/`gemini`, or
//! used as a `command` agent from a config. Checks the run files, statuses, exit codes, bus
//! events and process trees (the supervisor outlives a killed caller; a stop leaves no
//! grandchild).

use crate::support::alive;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conductor::bus::{read_all, Message};
use conductor::storage::{RunInfo, RunStatus};

use crate::support::{fails_with, read_text, run, text, words, ChildGuard, Sandbox};

use crate::support::FAKE_AGENT;

/// A sandbox with a `bin/` of fake CLIs first on PATH and a runs root.
struct World {
    sb: Sandbox,
}

impl World {
    fn new() -> World {
        World {
            sb: Sandbox::with_fake_clis(),
        }
    }

    fn root(&self) -> PathBuf {
        self.sb.root()
    }

    fn task_dir(&self, project: &str, task: &str) -> PathBuf {
        self.root().join(project).join(task)
    }

    /// `run-agent <args…> --root <root>` with the fake bin dir first on PATH.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.run_agent_with_fake_clis();
        cmd.args(args).arg("--root").arg(self.root());
        cmd
    }

    /// `run-agent <command>` (`job` or `task`) of task `task` of project `demo` with `agent`.
    fn demo(&self, command: &str, task: &str, agent: &str) -> Command {
        self.cmd(&[
            command,
            "--project",
            "demo",
            "--task",
            task,
            "--agent",
            agent,
        ])
    }

    /// `run-agent job` of task `task` of project `demo` with `agent` and `--prompt prompt`.
    fn job(&self, task: &str, agent: &str, prompt: &str) -> Command {
        let mut cmd = self.demo("job", task, agent);
        cmd.args(["--prompt", prompt]);
        cmd
    }

    /// `run-agent task` of task `task` of project `demo` with `agent`; without `prompt` the
    /// task's TASK.md is the prompt.
    fn task(&self, task: &str, agent: &str, prompt: Option<&str>) -> Command {
        let mut cmd = self.demo("task", task, agent);
        if let Some(prompt) = prompt {
            cmd.args(["--prompt", prompt]);
        }
        cmd
    }

    /// `run-agent stop` of task `task` of project `demo`, with `extra` flags.
    fn stop(&self, task: &str, extra: &[&str]) -> Command {
        let mut cmd = self.cmd(&["stop", "--project", "demo", "--task", task]);
        cmd.args(extra);
        cmd
    }

    /// Writes `body` as the executable `agent.sh` and a `config.yaml` of `defaults` (YAML
    /// lines, or nothing) and a `command` agent `script` running it; returns the config's path.
    fn script_config(&self, body: &str, defaults: &str) -> PathBuf {
        let script = self.sb.write("agent.sh", body);
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        self.sb.write(
            "config.yaml",
            &format!(
                "{defaults}agents:\n  script:\n    type: command\n    command: [\"{}\"]\n",
                script.display()
            ),
        )
    }

    fn runs(&self, project: &str, task: &str) -> Vec<(PathBuf, RunInfo)> {
        let dir = self.task_dir(project, task).join("runs");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        dirs.sort();
        // A run dir exists a moment before its run-info.yaml: skip it until then.
        dirs.into_iter()
            .filter_map(|d| {
                let info = RunInfo::read(&d.join("run-info.yaml")).ok()?;
                Some((d, info))
            })
            .collect()
    }

    /// The latest run of task `task` of project `demo`, once it has recorded its pid.
    fn wait_started(&self, task: &str) -> (PathBuf, RunInfo) {
        wait_for("the recorded pid", || {
            self.runs("demo", task).pop().filter(|(_, i)| i.pid > 0)
        })
    }

    fn task_bus(&self, project: &str, task: &str) -> Vec<Message> {
        read_all(&self.task_dir(project, task).join("TASK-MESSAGE-BUS.md")).unwrap()
    }

    /// Waits until the bus of task `task` of project `demo` holds a message `matches` accepts
    /// (the bus may not exist yet).
    fn wait_bus(&self, task: &str, what: &str, matches: impl Fn(&Message) -> bool) {
        let bus = self.task_dir("demo", task).join("TASK-MESSAGE-BUS.md");
        wait_for(what, || {
            read_all(&bus).ok()?.iter().any(&matches).then_some(())
        });
    }
}

/// Agents run detached from the test: kill the process group of every run still running,
/// so a failing test leaves no process behind.
impl Drop for World {
    fn drop(&mut self) {
        let Ok(projects) = std::fs::read_dir(self.root()) else {
            return;
        };
        for project in projects.flatten() {
            for task in std::fs::read_dir(project.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = task.file_name().to_string_lossy().into_owned();
                for (_, info) in self.runs(&project.file_name().to_string_lossy(), &name) {
                    if info.status == RunStatus::Running && info.pgid > 1 {
                        let pgid = nix::unistd::Pid::from_raw(-(info.pgid as i32));
                        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
            }
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn types(msgs: &[Message]) -> Vec<&str> {
    msgs.iter().map(|m| m.msg_type.as_str()).collect()
}

/// The bodies of the messages of type `kind`, in order.
fn bodies_of<'a>(msgs: &'a [Message], kind: &str) -> Vec<&'a str> {
    msgs.iter()
        .filter(|m| m.msg_type == kind)
        .map(|m| m.body.as_str())
        .collect()
}

/// A run started in the background whose agent sleeps 30 s with a grandchild
/// (`FAKE_GRANDCHILD`), once the grandchild and the agent run.
struct Sleeper {
    /// The `run-agent job`/`task` process.
    guard: ChildGuard,
    grandchild: i32,
    /// The agent's pid.
    agent: i32,
    dir: PathBuf,
}

impl World {
    /// Starts `cmd` (a `job` or `task` of task `task`) as a [`Sleeper`].
    fn start_sleeper(&self, task: &str, cmd: &mut Command) -> Sleeper {
        let grandchild_file = self.sb.path().join("grandchild.pid");
        let guard = ChildGuard::spawn(
            cmd.env("FAKE_GRANDCHILD", &grandchild_file)
                .env("FAKE_SLEEP", "30"),
        );
        let grandchild = wait_grandchild(&grandchild_file);
        let (dir, info) = self.wait_started(task);
        Sleeper {
            guard,
            grandchild,
            agent: info.pid as i32,
            dir,
        }
    }

    /// A `job` of task `task` started as a [`Sleeper`] whose agent and grandchild ignore
    /// SIGTERM.
    fn start_stubborn_job(&self, task: &str) -> Sleeper {
        self.start_sleeper(
            task,
            self.job(task, "claude", "x").env("FAKE_IGNORE_TERM", "1"),
        )
    }
}

/// Asserts that a `job` or `task` ended with exit code 1 and reported its run stopped.
fn assert_stopped(out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    assert!(stdout(out).contains("status: stopped"), "{}", text(out));
}

/// The pid the fake agent's grandchild wrote to `file` (`FAKE_GRANDCHILD`), once it is there.
fn wait_grandchild(file: &Path) -> i32 {
    wait_for("the grandchild", || {
        std::fs::read_to_string(file).ok()?.trim().parse().ok()
    })
}

/// Polls `check` every 20 ms for up to 30 s.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn job_with_cli_agent_writes_every_file_and_event() {
    let w = World::new();
    let stdin_copy = w.sb.path().join("stdin.txt");
    let env_dump = w.sb.path().join("env.txt");
    let stream = r#"{"type":"system","subtype":"init","session_id":"sess-42"}
{"type":"assistant","message":{"content":[{"type":"text","text":"working"}]}}
{"type":"result","is_error":false,"result":"The answer is 42."}"#;
    let out = run(w
        .job("task-1", "claude", "  What is the answer?  ")
        .env("FAKE_STDIN_COPY", &stdin_copy)
        .env("FAKE_ENV_DUMP", &env_dump)
        .env("FAKE_STDOUT", stream)
        .env("FAKE_STDERR", "a warning")
        .env("ANTHROPIC_API_KEY", "keep-me")
        .env("OPENAI_API_KEY", "drop-me"));
    assert!(out.status.success(), "{}", text(&out));
    let runs = w.runs("demo", "task-1");
    assert_eq!(runs.len(), 1);
    let (dir, info) = &runs[0];
    assert!(stdout(&out).contains(&format!(
        "run_id: {}\nstatus: completed\nexit_code: 0",
        info.run_id
    )));
    let task_dir = w.task_dir("demo", "task-1");
    assert_eq!(info.status, RunStatus::Completed);
    assert_eq!(info.exit_code, 0);
    assert_eq!(info.agent, "claude");
    assert_eq!(info.agent_version, "fake-agent 1.2.3");
    assert!(info.pid > 0 && info.pgid == info.pid, "{info:?}");
    assert!(info.pid_start_time.is_some());
    assert!(info.end_time_opt().is_some());
    assert_eq!(info.cwd.as_deref(), Some(task_dir.to_str().unwrap()));
    assert!(info
        .commandline
        .as_deref()
        .unwrap()
        .starts_with("claude -p --input-format text --output-format stream-json --verbose"));
    assert_eq!(info.error_summary, None);
    assert_eq!(info.agent_session_id.as_deref(), Some("sess-42"));

    // prompt.md = preamble + separator + trimmed prompt, and it was the agent's stdin.
    let prompt = read_text(dir.join("prompt.md"));
    assert!(prompt.starts_with(&format!("JRUN_TASK_FOLDER={}\n", task_dir.display())));
    assert!(prompt.contains(&format!("JRUN_ID={}\n", info.run_id)));
    assert!(prompt.contains("run-agent bus post --type PROGRESS"));
    assert!(prompt.contains("run-agent job --agent claude --prompt"));
    assert!(prompt.contains(&format!("When done, create: {}/DONE", task_dir.display())));
    assert!(prompt.ends_with("\n---\n\nWhat is the answer?\n"));
    assert_eq!(read_text(&stdin_copy), prompt);
    assert_eq!(read_text(task_dir.join("TASK.md")), "What is the answer?\n");

    // stdout/stderr files, and output.md extracted from the stream.
    assert_eq!(
        read_text(dir.join("agent-stdout.txt")),
        format!("{stream}\n")
    );
    assert_eq!(read_text(dir.join("agent-stderr.txt")), "a warning\n");
    assert_eq!(read_text(dir.join("output.md")), "The answer is 42.\n");

    // The env contract.
    let env = read_text(&env_dump);
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    assert_eq!(var("JRUN_PROJECT_ID").as_deref(), Some("demo"));
    assert_eq!(var("JRUN_TASK_ID").as_deref(), Some("task-1"));
    assert_eq!(var("JRUN_ID").as_deref(), Some(info.run_id.as_str()));
    assert_eq!(var("JRUN_PARENT_ID").as_deref(), Some(""));
    assert_eq!(
        var("JRUN_RUN_FOLDER").as_deref(),
        Some(dir.to_str().unwrap())
    );
    assert_eq!(
        var("JRUN_RUNS_DIR").as_deref(),
        Some(task_dir.join("runs").to_str().unwrap())
    );
    assert_eq!(
        var("JRUN_MESSAGE_BUS").as_deref(),
        Some(task_dir.join("TASK-MESSAGE-BUS.md").to_str().unwrap())
    );
    assert_eq!(var("ANTHROPIC_API_KEY").as_deref(), Some("keep-me"));
    assert_eq!(var("OPENAI_API_KEY"), None);
    let exe_dir = crate::support::run_agent_bin()
        .parent()
        .unwrap()
        .to_path_buf();
    let first_path = var("PATH").unwrap().split(':').next().unwrap().to_string();
    assert_eq!(Path::new(&first_path), exe_dir);

    let bus = w.task_bus("demo", "task-1");
    assert_eq!(types(&bus), ["RUN_START", "RUN_STOP"]);
    assert!(bus
        .iter()
        .all(|m| m.run_id == info.run_id && m.task_id == "task-1"));
    assert!(bus[1].body.starts_with("run stopped with code 0\n"));
}

#[test]
fn failed_runs_record_code_summary_and_crash_event() {
    let w = World::new();
    // The last stderr line is the reason; without stderr, a generic one.
    for (code, stderr, summary) in [
        ("1", "boom: something broke", "boom: something broke"),
        ("1", "", "agent reported failure"),
        ("3", "", "agent exited with code 3"),
    ] {
        let task = format!("fail-{code}-{}", stderr.len());
        let out = run(w
            .job(&task, "codex", "x")
            .env("FAKE_EXIT", code)
            .env("FAKE_STDOUT", "plain text answer")
            .env("FAKE_STDERR", stderr));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(stdout(&out).contains("status: failed"), "{}", text(&out));
        let (dir, info) = w.runs("demo", &task).remove(0);
        assert_eq!(info.status, RunStatus::Failed);
        assert_eq!(info.exit_code.to_string(), code);
        assert_eq!(info.error_summary.as_deref(), Some(summary));
        // No JSON stream: output.md is a copy of stdout.
        assert_eq!(read_text(dir.join("output.md")), "plain text answer\n");
        let bus = w.task_bus("demo", &task);
        assert_eq!(types(&bus), ["RUN_START", "RUN_CRASH"]);
        assert!(
            stderr.is_empty()
                || bus[1]
                    .body
                    .contains(&format!("## stderr (last 50 lines)\n{stderr}")),
            "{}",
            bus[1].body
        );
    }
}

#[test]
fn bad_input_is_rejected_with_clear_errors() {
    let w = World::new();
    let out = run(&mut w.job("t", "fast", "x"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown agent `fast`") && err.contains("claude, codex, gemini"),
        "{err}"
    );
    let out = run(&mut w.cmd(&words(
        "job --project Bad_Project --task t --agent claude --prompt x",
    )));
    fails_with(&out, "--project");
    fails_with(&run(&mut w.job("../x", "claude", "x")), "--task");
    fails_with(&run(&mut w.job("t", "claude", "  ")), "prompt is empty");
    let out = run(w.job("t", "claude", "x").args(["--cwd", "/no/such/dir"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cwd") && err.contains("/no/such/dir is not an existing directory"),
        "{err}"
    );
    assert!(
        !w.root().join("demo").exists(),
        "nothing is created for rejected input"
    );
    // A PROJECT-ROOT.txt naming a missing directory is named in the error.
    w.sb.write("root/demo/PROJECT-ROOT.txt", "/no/such/repo\n");
    let out = run(&mut w.job("t", "claude", "x"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PROJECT-ROOT.txt") && err.contains("/no/such/repo"),
        "{err}"
    );
    assert!(!w.root().join("demo/t").exists());
}

#[test]
fn command_agent_uses_the_preamble_commands_and_keeps_its_own_output() {
    let w = World::new();
    let project_root = w.sb.path().join("repo");
    std::fs::create_dir_all(&project_root).unwrap();
    w.sb.write(
        "root/demo/PROJECT-ROOT.txt",
        &format!("{}\n", project_root.display()),
    );
    // The agent does what its preamble says: post to the bus and spawn a child run.
    let config = w.script_config(
        r#"#!/bin/sh
pwd > "$JRUN_RUN_FOLDER/cwd.txt"
if [ -z "$JRUN_PARENT_ID" ]; then
    run-agent bus post --type PROGRESS --body "parent working" || exit 11
    run-agent job --agent script --prompt "child work" > "$JRUN_RUN_FOLDER/child.txt" || exit 12
    echo "my own answer" > "$JRUN_RUN_FOLDER/output.md"
    touch "$JRUN_TASK_FOLDER/DONE"
else
    echo "child output"
fi
"#,
        "",
    );
    let out = run(w.job("task-2", "script", "go").arg("--config").arg(&config));
    assert!(out.status.success(), "{}", text(&out));
    let runs = w.runs("demo", "task-2");
    assert_eq!(runs.len(), 2, "parent and child");
    let (parent_dir, parent) = runs
        .iter()
        .find(|(_, i)| i.parent_run_id.is_none())
        .unwrap();
    let (child_dir, child) = runs
        .iter()
        .find(|(_, i)| i.parent_run_id.is_some())
        .unwrap();
    assert_eq!(child.parent_run_id.as_deref(), Some(parent.run_id.as_str()));
    assert_eq!(
        (parent.status, child.status),
        (RunStatus::Completed, RunStatus::Completed)
    );
    assert_eq!(parent.agent, "command");
    assert_eq!(parent.agent_version, "");
    assert_eq!(
        read_text(parent_dir.join("cwd.txt")).trim(),
        project_root.to_str().unwrap()
    );
    assert_eq!(read_text(parent_dir.join("output.md")), "my own answer\n");
    assert_eq!(read_text(child_dir.join("output.md")), "child output\n");
    let child_report = read_text(parent_dir.join("child.txt"));
    assert!(child_report.contains(&format!("run_id: {}\nstatus: completed", child.run_id)));
    let bus = w.task_bus("demo", "task-2");
    let progress = bus.iter().find(|m| m.msg_type == "PROGRESS").unwrap();
    assert_eq!(progress.body, "parent working");
    assert_eq!(progress.run_id, parent.run_id);
    assert_eq!(bus.iter().filter(|m| m.msg_type == "RUN_STOP").count(), 2);
}

#[test]
fn idle_timeout_kills_the_run() {
    let w = World::new();
    let grandchild_file = w.sb.path().join("grandchild.pid");
    let out = run(w
        .job("slow", "gemini", "x")
        .args(["--timeout", "300ms"])
        .env("FAKE_GRANDCHILD", &grandchild_file)
        .env("FAKE_SLEEP", "20"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (_, info) = w.runs("demo", "slow").remove(0);
    assert_eq!(info.status, RunStatus::Failed);
    assert_eq!(info.error_summary.as_deref(), Some("timed out"));
    assert_eq!(info.exit_code, 137);
    let bus = w.task_bus("demo", "slow");
    assert_eq!(types(&bus), ["RUN_START", "RUN_CRASH", "WARN"]);
    assert_eq!(
        bus[2].body,
        "agent job timed out after 300ms of idle output"
    );
    let grandchild: i32 = read_text(&grandchild_file).trim().parse().unwrap();
    // The whole process group was killed, not only the agent.
    wait_for("the group to die", || {
        (!alive(info.pid as i32) && !alive(grandchild)).then_some(())
    });
}

#[test]
fn supervisor_records_the_real_exit_code_after_the_caller_is_killed() {
    let w = World::new();
    // SIGKILL, or SIGHUP (its terminal went away), ends the `run-agent job` process while
    // the agent runs; the run's supervisor still records the agent's real exit code.
    for (task, signal) in [
        ("orphan-kill", nix::sys::signal::Signal::SIGKILL),
        ("orphan-hup", nix::sys::signal::Signal::SIGHUP),
    ] {
        let mut guard = ChildGuard::spawn_quiet(
            w.job(task, "claude", "x")
                .env("FAKE_SLEEP", "1")
                .env("FAKE_EXIT", "7"),
        );
        let (_, info) = w.wait_started(task);
        let mut job = guard.0.take().unwrap();
        let job_pid = nix::unistd::Pid::from_raw(job.id() as i32);
        nix::sys::signal::kill(job_pid, signal).unwrap();
        let status = job.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(signal as i32)
        );
        assert_eq!(info.status, RunStatus::Running);
        let done = wait_for("the final record", || {
            w.runs("demo", task)
                .pop()
                .map(|(_, i)| i)
                .filter(|i| i.status.is_terminal())
        });
        assert_eq!(done.status, RunStatus::Failed);
        assert_eq!(done.exit_code, 7);
        assert_eq!(
            done.error_summary.as_deref(),
            Some("agent exited with code 7")
        );
        assert!(types(&w.task_bus("demo", task)).contains(&"RUN_CRASH"));
    }
}

#[test]
fn stop_kills_the_whole_group_and_records_stopped() {
    let w = World::new();
    let mut sleeper = w.start_stubborn_job("stoppable");
    assert!(alive(sleeper.grandchild) && alive(sleeper.agent));
    // The agent and its grandchild ignore SIGTERM: the grace period ends in SIGKILL.
    let out = run(&mut w.stop("stoppable", &["--grace", "300ms"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("status: stopped"), "{}", text(&out));
    assert!(
        !alive(sleeper.grandchild),
        "grandchild {} survived the stop",
        sleeper.grandchild
    );
    assert!(!alive(sleeper.agent));
    assert_stopped(&sleeper.guard.output());
    let (dir, info) = w.runs("demo", "stoppable").remove(0);
    assert_eq!(info.status, RunStatus::Stopped);
    assert_eq!(info.exit_code, 137);
    assert_eq!(info.error_summary.as_deref(), Some("stopped by user"));
    assert!(dir.join("STOP-REQUESTED").exists());
    let bus = w.task_bus("demo", "stoppable");
    let last = bus.last().unwrap();
    assert_eq!(last.msg_type, "RUN_STOP");
    assert!(
        last.body.starts_with("run stopped by user"),
        "{}",
        last.body
    );
    // Nothing left to stop.
    let again = run(&mut w.stop("stoppable", &[]));
    fails_with(&again, "no running run");
}

#[test]
fn task_restarts_until_done_then_posts_the_completion_fact() {
    let w = World::new();
    let out = run(w
        .task("ralph", "claude", Some("build it"))
        .args(["--restart-delay", "10ms", "--max-restarts", "5"])
        .env("FAKE_DONE_AFTER", "3"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("status: done"), "{}", text(&out));
    let runs = w.runs("demo", "ralph");
    assert_eq!(runs.len(), 3);
    for (i, (dir, info)) in runs.iter().enumerate() {
        assert_eq!(info.status, RunStatus::Completed);
        assert_eq!(info.restart_index, Some(i as u64));
        let prompt = read_text(dir.join("prompt.md"));
        let restarted = prompt.ends_with("---\n\nContinue working on the following:\n\nbuild it\n");
        assert_eq!(restarted, i > 0, "attempt {i}: {prompt}");
        let previous = i.checked_sub(1).map(|p| runs[p].1.run_id.as_str());
        assert_eq!(info.previous_run_id.as_deref(), previous);
    }
    let bus = w.task_bus("demo", "ralph");
    let infos = bodies_of(&bus, "INFO");
    assert_eq!(
        infos,
        [
            "starting root agent (restart #0)",
            "starting root agent (restart #1)",
            "starting root agent (restart #2)",
            "task completed (DONE marker present, no active children)"
        ]
    );
    let project_bus = read_all(&w.root().join("demo/PROJECT-MESSAGE-BUS.md")).unwrap();
    assert_eq!(types(&project_bus), ["FACT"]);
    assert_eq!(project_bus[0].task_id, "ralph");
    assert!(project_bus[0].body.starts_with("task ralph completed"));
    assert_eq!(
        project_bus[0].meta.get("kind").map(String::as_str),
        Some("task_completion")
    );
    // Running the done task again starts no run and posts no second FACT for the same DONE.
    let out = run(&mut w.task("ralph", "claude", None));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(w.runs("demo", "ralph").len(), 3);
    let project_bus = read_all(&w.root().join("demo/PROJECT-MESSAGE-BUS.md")).unwrap();
    assert_eq!(types(&project_bus), ["FACT"]);
    let last = w.task_bus("demo", "ralph").pop().unwrap();
    assert_eq!(
        last.body,
        "task completion fact already posted for this DONE"
    );
}

#[test]
fn task_gives_up_after_max_restarts() {
    let w = World::new();
    let out = run(w.task("never", "claude", Some("x")).args([
        "--restart-delay",
        "10ms",
        "--max-restarts",
        "0",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout(&out).contains("status: failed"), "{}", text(&out));
    assert_eq!(
        w.runs("demo", "never").len(),
        1,
        "max-restarts 0 means one attempt"
    );
    let bus = w.task_bus("demo", "never");
    let error = bus.iter().find(|m| m.msg_type == "ERROR").unwrap();
    assert_eq!(error.body, "task failed: max restarts (0) exceeded");
    assert!(!w.root().join("demo/PROJECT-MESSAGE-BUS.md").exists());
}

#[test]
fn a_stopped_run_ends_the_task_loop() {
    let w = World::new();
    let mut guard = ChildGuard::spawn(
        w.task("halt", "claude", Some("x"))
            .args(["--restart-delay", "10ms", "--max-restarts", "5"])
            .env("FAKE_SLEEP", "30"),
    );
    w.wait_started("halt");
    let out = run(&mut w.stop("halt", &[]));
    assert!(out.status.success(), "{}", text(&out));
    let task = guard.output();
    assert_stopped(&task);
    let runs = w.runs("demo", "halt");
    assert_eq!(runs.len(), 1, "no restart after a stop");
    assert_eq!(runs[0].1.status, RunStatus::Stopped);
    assert_eq!(
        runs[0].1.exit_code, 143,
        "the fake agent's shell died of SIGTERM"
    );
}

#[test]
fn ctrl_c_on_a_foreground_task_stops_its_agent_without_restart() {
    let w = World::new();
    let mut sleeper = w.start_sleeper(
        "ctrl-c",
        w.task("ctrl-c", "codex", Some("x")).args([
            "--restart-delay",
            "10ms",
            "--max-restarts",
            "5",
        ]),
    );
    let task = sleeper.guard.0.take().unwrap();
    let task_pid = nix::unistd::Pid::from_raw(task.id() as i32);
    nix::sys::signal::kill(task_pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_stopped(&task.wait_with_output().unwrap());
    assert!(!alive(sleeper.agent) && !alive(sleeper.grandchild));
    let runs = w.runs("demo", "ctrl-c");
    assert_eq!(runs.len(), 1, "no restart after Ctrl-C");
    assert_eq!(runs[0].1.status, RunStatus::Stopped);
}

#[test]
fn task_waits_for_running_children_before_completing() {
    let w = World::new();
    let config = w.script_config(
        r#"#!/bin/sh
if [ -z "$JRUN_PARENT_ID" ]; then
    # Start a child in the background and finish at once.
    run-agent job --agent script --prompt "slow child" > /dev/null 2>&1 &
    while [ "$(ls "$JRUN_RUNS_DIR"/*/run-info.yaml | wc -l)" -lt 2 ]; do sleep 0.05; done
    touch "$JRUN_TASK_FOLDER/DONE"
else
    # Run until the test has seen the task wait for this child.
    while [ ! -e "$JRUN_TASK_FOLDER/release" ]; do sleep 0.05; done
    echo "child finished"
fi
"#,
        "",
    );
    // stderr is kept for the failure message.
    let child = w
        .task("kids", "script", Some("go"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(Some(child));
    w.wait_bus("kids", "the task to wait for its child", |m| {
        m.body.starts_with("waiting for 1 children to complete")
    });
    std::fs::write(w.task_dir("demo", "kids").join("release"), "").unwrap();
    let out = guard.output();
    assert!(out.status.success(), "{}", text(&out));
    let runs = w.runs("demo", "kids");
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().all(|(_, i)| i.status == RunStatus::Completed),
        "{runs:?}"
    );
    let bus = w.task_bus("demo", "kids");
    let infos = bodies_of(&bus, "INFO");
    assert!(
        infos
            .iter()
            .any(|b| b.starts_with("waiting for 1 children to complete")),
        "{infos:?}"
    );
    assert_eq!(
        infos.last(),
        Some(&"task completed (all children finished)")
    );
}

#[test]
fn second_ctrl_c_on_a_job_kills_an_agent_that_ignores_sigterm() {
    let w = World::new();
    let mut sleeper = w.start_stubborn_job("stubborn");
    let job = sleeper.guard.0.take().unwrap();
    let job_pid = nix::unistd::Pid::from_raw(job.id() as i32);
    nix::sys::signal::kill(job_pid, nix::sys::signal::Signal::SIGINT).unwrap();
    wait_for("the stop marker", || {
        sleeper.dir.join("STOP-REQUESTED").exists().then_some(())
    });
    assert!(
        alive(sleeper.agent),
        "SIGTERM is ignored, the grace period is 30 s"
    );
    nix::sys::signal::kill(job_pid, nix::sys::signal::Signal::SIGINT).unwrap();
    assert_stopped(&job.wait_with_output().unwrap());
    assert!(!alive(sleeper.agent) && !alive(sleeper.grandchild));
}

/// docs/running-agents.md: the files it shows are written and the commands it shows are run,
/// in order, in an empty directory; each block must succeed.
#[test]
fn running_agents_doc_example_works() {
    let doc = read_text(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/running-agents.md"
    ));
    let sb = Sandbox::new();
    let exe_dir = crate::support::run_agent_bin()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", exe_dir.display(), std::env::var("PATH").unwrap());
    let mut lines = doc.lines();
    let mut ran = 0;
    while let Some(line) = lines.next() {
        let marker = line.trim();
        let file = marker
            .strip_prefix("<!-- file: ")
            .and_then(|m| m.strip_suffix(" -->"));
        if file.is_none() && marker != "<!-- run -->" {
            continue;
        }
        assert!(
            lines.next().unwrap().starts_with("```"),
            "a fence follows {marker}"
        );
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let body = format!("{}\n", block.join("\n"));
        match file {
            Some(name) => {
                sb.write(name, &body);
            }
            None => {
                let out = run(sb
                    .command(Path::new("/bin/sh"))
                    .args(["-e", "-c", &body])
                    .env("PATH", &path));
                assert!(
                    out.status.success(),
                    "block failed:\n{body}\n{}",
                    text(&out)
                );
                ran += 1;
            }
        }
    }
    assert_eq!(ran, 5, "every run block was found");
    let root = sb.path().join("runs/demo");
    let hello = std::fs::read_dir(root.join("hello/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(read_text(hello.join("output.md")), "You asked: Say hello\n");
    assert!(root.join("greet/DONE").exists());
    assert_eq!(
        std::fs::read_dir(root.join("forever/runs"))
            .unwrap()
            .count(),
        2
    );
    let project_bus = read_all(&root.join("PROJECT-MESSAGE-BUS.md")).unwrap();
    assert!(project_bus
        .iter()
        .any(|m| m.body.starts_with("task greet completed")));
}

#[test]
fn config_token_goes_to_the_provider_variable_and_config_to_children() {
    let w = World::new();
    let config = w.sb.write(
        "config.yaml",
        "agents:\n  mine:\n    type: claude\n    token: secret-token\n  broken:\n    type: command\n    command: [\"no-such-program-for-conductor\"]\n",
    );
    let env_dump = w.sb.path().join("env.txt");
    let out = run(w
        .job("tok", "mine", "x")
        .arg("--config")
        .arg(&config)
        .env("FAKE_ENV_DUMP", &env_dump)
        .env("ANTHROPIC_API_KEY", "from-the-shell")
        .env("XAI_API_KEY", "other-provider"));
    assert!(out.status.success(), "{}", text(&out));
    let env = read_text(&env_dump);
    assert!(
        env.lines().any(|l| l == "ANTHROPIC_API_KEY=secret-token"),
        "{env}"
    );
    assert!(!env.contains("XAI_API_KEY"), "{env}");
    assert!(
        env.lines()
            .any(|l| l == format!("CONDUCTOR_CONFIG={}", config.display())),
        "{env}"
    );
    let (_, info) = w.runs("demo", "tok").remove(0);
    assert_eq!(info.agent, "claude");

    // A program that cannot be started: the run fails and says why.
    let out = run(w.job("nostart", "broken", "x").arg("--config").arg(&config));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (_, info) = w.runs("demo", "nostart").remove(0);
    assert_eq!(info.status, RunStatus::Failed);
    let summary = info.error_summary.unwrap();
    assert!(
        summary.contains("cannot start no-such-program-for-conductor"),
        "{summary}"
    );
    assert_eq!(types(&w.task_bus("demo", "nostart")), ["RUN_CRASH"]);
}

#[test]
fn max_concurrent_runs_queues_runs_and_a_queued_run_can_be_stopped() {
    let w = World::new();
    let log = w.sb.path().join("log.txt");
    let config = w.script_config(
        &format!(
            "#!/bin/sh\necho \"start $JRUN_TASK_ID\" >> {log}\nsleep \"${{NAP:-0.3}}\"\necho \"end $JRUN_TASK_ID\" >> {log}\n",
            log = log.display()
        ),
        "defaults:\n  max_concurrent_runs: 1\n",
    );
    let start = |task: &str, nap: &str| {
        ChildGuard::spawn(
            w.job(task, "script", "x")
                .arg("--config")
                .arg(&config)
                .env("NAP", nap),
        )
    };
    // Three runs with one slot: they never overlap.
    let mut jobs: Vec<ChildGuard> = ["q1", "q2", "q3"].iter().map(|t| start(t, "0.3")).collect();
    for job in &mut jobs {
        let out = job.output();
        assert!(out.status.success(), "{}", stdout(&out));
    }
    let lines: Vec<String> = read_text(&log).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for pair in lines.chunks(2) {
        let task = pair[0].strip_prefix("start ").unwrap();
        assert_eq!(pair[1], format!("end {task}"), "runs overlapped: {lines:?}");
    }

    // A run queued behind a long one is stopped without ever starting its agent.
    let mut holder = start("holder", "30");
    w.wait_started("holder");
    let mut waiting = start("waiting", "0");
    wait_for("the queued run", || {
        w.task_bus("demo", "waiting")
            .iter()
            .any(|m| m.body.starts_with("run queued"))
            .then_some(())
    });
    let out = run(&mut w.stop("waiting", &[]));
    assert!(out.status.success(), "{}", text(&out));
    let out = waiting.output();
    assert_eq!(out.status.code(), Some(1));
    let (_, info) = w.runs("demo", "waiting").remove(0);
    assert_eq!((info.status, info.pid), (RunStatus::Stopped, 0));
    assert!(!read_text(&log).contains("start waiting"));
    let out = run(&mut w.stop("holder", &["--force"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(holder.0.take().unwrap().wait().unwrap().code(), Some(1));
}

#[test]
fn task_waits_for_its_dependencies_and_rejects_unknown_ids_and_cycles() {
    let w = World::new();
    let task = |name: &str, deps: &str| {
        let mut cmd = w.task(name, "claude", None);
        cmd.args([
            "--prompt",
            "x",
            "--depends-on",
            deps,
            "--dependency-poll",
            "50ms",
        ])
        .args(["--restart-delay", "10ms"])
        .env("FAKE_DONE_AFTER", "1");
        cmd
    };
    let out = run(&mut task("b", "a"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("task a does not exist in project demo"),
        "{err}"
    );

    // Task a exists (one run, not done yet); b waits for its DONE.
    let out = run(&mut w.job("a", "claude", "x"));
    assert!(out.status.success(), "{}", text(&out));
    let mut guard = ChildGuard::spawn(&mut task("b", "a"));
    w.wait_bus("b", "b to report it is blocked", |m| {
        m.msg_type == "PROGRESS" && m.body == "task blocked by dependencies: a"
    });
    assert!(
        w.runs("demo", "b").is_empty(),
        "b must not start before a is done"
    );
    assert_eq!(
        read_text(w.task_dir("demo", "b").join("TASK-CONFIG.yaml")),
        "depends_on:\n- a\n"
    );
    // A cycle through the saved dependency is refused.
    let out = run(&mut task("a", "b"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dependency cycle detected: a -> b -> a"),
        "{err}"
    );

    std::fs::write(w.task_dir("demo", "a").join("DONE"), "").unwrap();
    let out = guard.output();
    assert!(out.status.success(), "{}", stdout(&out));
    let bus = w.task_bus("demo", "b");
    assert!(bus
        .iter()
        .any(|m| m.msg_type == "FACT" && m.body == "dependencies satisfied; starting task"));
    assert_eq!(w.runs("demo", "b").len(), 1);
}

#[test]
fn task_resume_continues_from_the_latest_run_and_its_session() {
    let w = World::new();
    let stream = r#"{"type":"system","subtype":"init","session_id":"sess-1"}"#;
    let out = run(w
        .task("again", "claude", None)
        .args(["--prompt", "keep going", "--max-restarts", "0"])
        .env("FAKE_STDOUT", stream));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let first = w.runs("demo", "again").remove(0).1;
    assert_eq!(first.agent_session_id.as_deref(), Some("sess-1"));

    let resume = |extra: &[&str]| {
        let mut cmd = w.cmd(&["task", "resume", "--project", "demo", "--task", "again"]);
        cmd.args(["--max-restarts", "0"])
            .args(extra)
            .env("FAKE_DONE_AFTER", "1");
        run(&mut cmd)
    };
    let out = resume(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let runs = w.runs("demo", "again");
    assert_eq!(runs.len(), 2);
    let (dir, second) = &runs[1];
    assert_eq!(second.agent, "claude");
    assert_eq!(
        second.previous_run_id.as_deref(),
        Some(first.run_id.as_str())
    );
    assert!(second
        .commandline
        .as_deref()
        .unwrap()
        .ends_with(" --resume sess-1"));
    let prompt = read_text(dir.join("prompt.md"));
    assert!(prompt.ends_with("---\n\nContinue working on the following:\n\nkeep going\n"));

    let out = resume(&[]);
    fails_with(&out, "--reset-done");
    let out = resume(&["--reset-done"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(w.runs("demo", "again").len(), 3);
    assert!(w.task_dir("demo", "again").join("DONE").exists());
}

#[test]
fn an_old_gemini_cli_that_rejects_the_stream_flags_fails_with_advice() {
    let w = World::new();
    let out = run(w
        .job("old-gemini", "gemini", "x")
        .env("FAKE_STDOUT", "Usage: gemini [options]")
        .env("FAKE_STDERR", "Unknown argument: output-format"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (_, info) = w.runs("demo", "old-gemini").remove(0);
    assert_eq!(info.status, RunStatus::Failed);
    assert_eq!(info.exit_code, 1);
    assert!(info
        .error_summary
        .unwrap()
        .contains("update your Gemini CLI"));
}

#[test]
fn a_killed_supervisor_leaves_the_run_to_liveness_reconciliation() {
    let w = World::new();
    let mut guard = ChildGuard::spawn(w.job("no-shim", "claude", "x").env("FAKE_SLEEP", "1"));
    let (dir, info) = w.wait_started("no-shim");
    let supervisor = conductor::process::proc_stat::read(info.pid as i32)
        .unwrap()
        .ppid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = guard.output();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("status: running"), "{}", stdout(&out));
    // Once the orphaned agent exits, a reader reconciles the record.
    let info = wait_for("the agent to exit", || {
        let info =
            conductor::storage::liveness::read_reconciled(&dir.join("run-info.yaml")).unwrap();
        info.status.is_terminal().then_some(info)
    });
    assert_eq!(info.status, RunStatus::Failed);
    assert_eq!(info.error_summary.as_deref(), Some("process vanished"));
}

#[test]
fn stop_between_two_runs_ends_the_task_loop() {
    let w = World::new();
    let mut guard = ChildGuard::spawn(
        w.task("between", "claude", Some("x"))
            .args(["--max-restarts", "5", "--restart-delay", "60s"])
            .env("FAKE_EXIT", "1"),
    );
    wait_for("the first run to fail", || {
        w.runs("demo", "between")
            .pop()
            .filter(|(_, i)| i.status == RunStatus::Failed)
    });
    // The loop now waits 60 s before the restart.
    // Stopping a live loop between runs succeeds.
    let out = run(&mut w.stop("between", &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("its task loop, waiting to restart, now ends"),
        "{}",
        text(&out)
    );
    let task = guard.output();
    assert_stopped(&task);
    assert_eq!(w.runs("demo", "between").len(), 1);
    // With no loop and no run left, there is nothing to stop.
    let out = run(&mut w.stop("between", &[]));
    fails_with(&out, "has no running run");
}

#[test]
fn a_child_run_ignores_a_config_yaml_in_the_agents_working_directory() {
    let w = World::new();
    // The agent works in a repo that has an unrelated config.yaml.
    let repo = w.sb.path().join("repo");
    w.sb.write("repo/config.yaml", "database: postgres\n");
    let out = run(w
        .job("nested", "claude", "x")
        .arg("--cwd")
        .arg(&repo)
        .env("FAKE_SPAWN_CHILD", "claude"));
    assert!(out.status.success(), "{}", text(&out));
    let runs = w.runs("demo", "nested");
    assert_eq!(runs.len(), 2);
    let parent = runs
        .iter()
        .find(|(_, i)| i.parent_run_id.is_none())
        .unwrap();
    let child = runs
        .iter()
        .find(|(_, i)| i.parent_run_id.is_some())
        .unwrap();
    assert_eq!(
        child.1.parent_run_id.as_deref(),
        Some(parent.1.run_id.as_str())
    );
    assert_eq!(child.1.status, RunStatus::Completed);
    assert_eq!(
        child.1.cwd.as_deref(),
        Some(w.task_dir("demo", "nested").to_str().unwrap())
    );
}

/// The server binary hosts supervisors too: a run started by the library with
/// `exe = conductor` (as the server does) completes like one started by `run-agent`.
#[test]
fn the_conductor_binary_can_supervise_runs() {
    use conductor::runner::{run_job, AgentSpec, JobRequest};
    use conductor::storage::{ProjectId, TaskId};
    let w = World::new();
    let req = JobRequest {
        root: w.root(),
        project: ProjectId::parse("demo").unwrap(),
        task: TaskId::parse("served").unwrap(),
        agent: AgentSpec {
            name: "fake".into(),
            agent_type: conductor::config::AgentType::Command,
            argv: vec![FAKE_AGENT.to_string()],
            token: None,
        },
        prompt: "hello".into(),
        parent_run_id: None,
        previous_run_id: None,
        restart_index: None,
        cwd: None,
        idle_timeout: None,
        extra_env: vec![("FAKE_STDOUT".into(), "served answer".into())],
        max_concurrent_runs: 0,
        exe: crate::support::conductor_bin(),
        resumes_session: None,
    };
    let info = run_job(&req, |_| {}).unwrap();
    assert_eq!(info.status, RunStatus::Completed, "{info:?}");
    let (dir, _) = w.runs("demo", "served").remove(0);
    assert_eq!(read_text(dir.join("output.md")), "served answer\n");
}

#[test]
fn task_delete_refuses_running_tasks_and_removes_finished_ones() {
    let w = World::new();
    let out = run(&mut w.job("old", "claude", "x"));
    assert!(out.status.success(), "{}", text(&out));
    let mut guard = ChildGuard::spawn_quiet(w.job("busy", "claude", "x").env("FAKE_SLEEP", "30"));
    w.wait_started("busy");
    let delete =
        |task: &str| run(&mut w.cmd(&["task", "delete", "--project", "demo", "--task", task]));
    let out = delete("busy");
    fails_with(&out, "has a running run");
    assert!(w.task_dir("demo", "busy").exists());
    let out = delete("old");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!w.task_dir("demo", "old").exists());
    let out = delete("old");
    fails_with(&out, "does not exist");
    let out = delete("..");
    assert_eq!(out.status.code(), Some(1));
    assert!(w.root().join("demo").exists());
    let out = run(&mut w.stop("busy", &["--force"]));
    assert!(out.status.success(), "{}", text(&out));
    guard.0.take().unwrap().wait().unwrap();
    assert!(delete("busy").status.success());
}

#[test]
fn max_concurrent_root_tasks_queues_whole_tasks() {
    let w = World::new();
    let config = w.script_config(
        "#!/bin/sh\nwhile [ ! -e \"$JRUN_TASK_FOLDER/release\" ]; do sleep 0.05; done\ntouch \"$JRUN_TASK_FOLDER/DONE\"\n",
        "defaults:\n  max_concurrent_root_tasks: 1\n",
    );
    let start = |task: &str| {
        ChildGuard::spawn(
            w.task(task, "script", Some("x"))
                .arg("--config")
                .arg(&config),
        )
    };
    let mut first = start("first");
    w.wait_started("first");
    let mut second = start("second");
    w.wait_bus("second", "the second task to queue", |m| {
        m.body
            .starts_with("task queued: waiting for a free task slot")
    });
    assert!(
        w.runs("demo", "second").is_empty(),
        "the second task waits for a slot"
    );
    std::fs::write(w.task_dir("demo", "first").join("release"), "").unwrap();
    let out = first.output();
    assert!(out.status.success(), "{}", stdout(&out));
    w.wait_started("second");
    std::fs::write(w.task_dir("demo", "second").join("release"), "").unwrap();
    let out = second.output();
    assert!(out.status.success(), "{}", stdout(&out));
}

/// Where a run's processes sit for the scheduler: the agent leads a session of its own at the
/// caller's priority; the supervisor leads its own process group but stays in the caller's
/// session (one kernel autogroup with the caller, not one per run), and once the agent runs it
/// steps down to nice 19, so hundreds of supervisors keeping books at once yield to a server.
#[test]
fn the_supervisor_keeps_books_at_a_lower_priority_in_the_callers_session() {
    let w = World::new();
    // `ps`-free: fields 5 (pgrp), 6 (session) and 19 (nice) of /proc/<pid>/stat, after the
    // parenthesised command name.
    let config = w.script_config(
        r#"#!/bin/sh
fields() { sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f3,4,17; }
tries=0
while [ "$(fields $PPID | cut -d' ' -f3)" != 19 ] && [ $tries -lt 100 ]; do
    sleep 0.05; tries=$((tries + 1))
done
echo "agent $$ $(fields $$)" > "$JRUN_RUN_FOLDER/placement.txt"
echo "supervisor $PPID $(fields $PPID)" >> "$JRUN_RUN_FOLDER/placement.txt"
"#,
        "",
    );
    let out = run(w
        .job("placement", "script", "go")
        .arg("--config")
        .arg(&config));
    assert!(out.status.success(), "{}", text(&out));
    let (dir, _) = w.runs("demo", "placement").pop().expect("one run");
    let placement = read_text(dir.join("placement.txt"));
    let numbers = |who: &str| -> Vec<i64> {
        placement
            .lines()
            .find_map(|l| l.strip_prefix(who))
            .unwrap_or_else(|| panic!("no {who} line in {placement:?}"))
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let (agent, supervisor) = (numbers("agent "), numbers("supervisor "));
    let our_session = i64::from(nix::unistd::getsid(None).unwrap().as_raw());
    let our_nice = {
        let stat = read_text(format!("/proc/{}/stat", std::process::id()));
        let after = stat.rsplit_once(") ").unwrap().1;
        after.split(' ').nth(16).unwrap().parse::<i64>().unwrap()
    };
    // [pid, pgrp, session, nice]
    assert_eq!(agent[1], agent[0], "the agent leads its group: {placement}");
    assert_eq!(
        agent[2], agent[0],
        "the agent leads its session: {placement}"
    );
    assert_eq!(
        agent[3], our_nice,
        "the agent runs at the caller's priority: {placement}"
    );
    assert_eq!(
        supervisor[1], supervisor[0],
        "the supervisor leads its group: {placement}"
    );
    assert_eq!(
        supervisor[2], our_session,
        "the supervisor stays in the session: {placement}"
    );
    assert_eq!(supervisor[3], 19, "the supervisor steps down: {placement}");
}
