//! e2e: a live task loop is visible in the files. A `run-agent task` loop holds its
//! task's loop lock (`<task>/.loop.lock`) for its whole life, so while it waits to restart its
//! failed run: a second `task` (and the server's `POST /api/v1/tasks`) is refused, `watch`
//! keeps waiting, `list` and the API show the task `running`, and `task delete` refuses; once
//! the loop ends nothing stale is left.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conductor::storage::{RunInfo, RunStatus};

use crate::support::{run, serve_config_file, text, ChildGuard, Sandbox};

/// Generous upper bound of every wait (never reached unless something is broken).
const LIMIT: Duration = Duration::from_secs(60);

struct World {
    sb: Sandbox,
    config: PathBuf,
}

impl World {
    fn new() -> World {
        let sb = Sandbox::new();
        let config = sb.fake_agent_config("script");
        World { sb, config }
    }

    fn root(&self) -> PathBuf {
        self.sb.root()
    }

    fn runs_dir(&self) -> PathBuf {
        self.root().join("demo").join("dup").join("runs")
    }

    /// `run-agent <args…> --root <root>` without FAKE_* from the outer environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.run_agent();
        cmd.args(args).arg("--root").arg(self.root());
        for (key, _) in std::env::vars() {
            if key.starts_with("FAKE_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// `run-agent task` of demo/dup: the first run fails once `gate` exists, and the loop
    /// would restart it only after a minute, so it stays between runs until stopped.
    fn task(&self, gate: &Path) -> Command {
        let mut cmd = self.cmd(&[
            "task",
            "--project",
            "demo",
            "--task",
            "dup",
            "--agent",
            "script",
            "--prompt",
            "loop me",
            "--max-restarts",
            "3",
            "--restart-delay",
            "60s",
        ]);
        cmd.arg("--config")
            .arg(&self.config)
            .env("FAKE_TICK_UNTIL", gate)
            .env("FAKE_EXIT", "1");
        cmd
    }

    fn run_infos(&self) -> Vec<RunInfo> {
        crate::support::run_infos(&self.runs_dir())
    }

    fn run_count(&self) -> usize {
        std::fs::read_dir(self.runs_dir()).map_or(0, |rd| rd.count())
    }

    /// Waits until the task's only run has `status`.
    fn wait_run_status(&self, status: RunStatus) -> RunInfo {
        let start = Instant::now();
        loop {
            if let [info] = self.run_infos().as_slice() {
                if info.status == status {
                    return info.clone();
                }
            }
            assert!(
                start.elapsed() < LIMIT,
                "no {status} run: {:?}",
                self.run_infos()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The derived status of demo/dup in `run-agent list --json`.
    fn listed_status(&self) -> String {
        let out = run(&mut self.cmd(&["list", "--project", "demo", "--json"]));
        assert!(out.status.success(), "{}", text(&out));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        list["projects"][0]["tasks"][0]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("{list}"))
            .to_string()
    }

    /// A second `task` of demo/dup: refused before it creates anything.
    fn assert_second_task_refused(&self, gate: &Path) {
        let runs = self.run_count();
        let out = run(&mut self.task(gate));
        assert!(!out.status.success(), "second loop ran: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("task dup of project demo already has a running task loop"),
            "{}",
            text(&out)
        );
        assert_eq!(self.run_count(), runs, "the refused loop created a run");
    }
}

fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < LIMIT, "{what} did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_loop_waiting_to_restart_is_running_everywhere() {
    let w = World::new();
    let gate = w.sb.path().join("gate");
    let first_out = w.sb.path().join("first.out");
    let mut first = w.task(&gate);
    first
        .stdout(std::fs::File::create(&first_out).unwrap())
        .stderr(Stdio::null());
    let mut first = ChildGuard(Some(first.spawn().unwrap()));

    // (a) While the first loop's run runs, a second loop of the task is refused.
    let first_run = w.wait_run_status(RunStatus::Running);
    w.assert_second_task_refused(&gate);

    let mut watch = w.cmd(&["watch", "--project", "demo", "--task", "dup"]);
    watch.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut watch = ChildGuard(Some(watch.spawn().unwrap()));
    let (tx, lines) = mpsc::channel::<String>();
    let stdout = watch.0.as_mut().unwrap().stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // The run fails; the loop now waits (a minute) before restarting it.
    std::fs::write(&gate, "").unwrap();
    let failed = w.wait_run_status(RunStatus::Failed);
    assert_eq!(failed.run_id, first_run.run_id);

    // (b) watch has seen the run fail and keeps waiting for the loop.
    let want = format!("demo/dup {} failed exit_code=1", first_run.run_id);
    let start = Instant::now();
    loop {
        let line = lines
            .recv_timeout(LIMIT.saturating_sub(start.elapsed()))
            .unwrap_or_else(|_| panic!("watch never printed {want:?}"));
        if line.starts_with(&want) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        watch.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "watch exited while the task loop waits to restart"
    );

    // (c) The gap reads as running: `list`, the API task list and task view.
    assert_eq!(w.listed_status(), "running");
    // (a) A second loop is refused in the gap too, and so is deleting the task.
    w.assert_second_task_refused(&gate);
    let out = run(&mut w.cmd(&["task", "delete", "--project", "demo", "--task", "dup"]));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("running task loop"), "{}", text(&out));

    let server = serve_config_file(&w.sb, &w.config, &[]);
    let (code, tasks) = server.get_json("/api/v1/projects/demo/tasks");
    assert_eq!(code, 200, "{tasks}");
    assert_eq!(tasks["tasks"][0]["status"], "running", "{tasks}");
    let (code, view) = server.get_json("/api/v1/projects/demo/tasks/dup");
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["status"], "running", "{view}");
    // The server refuses to run a second loop of a task whose CLI loop runs.
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "dup", "prompt": "again", "agent": "script"}),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.to_string().contains("already running"), "{body}");
    assert_eq!(w.run_count(), 1);

    // Stopping the task in its gap ends the loop; then watch ends and nothing stays running.
    // (No run to signal: `stop` marks the task stopped, which ends the live loop: exit 0.)
    let out = run(&mut w.cmd(&["stop", "--project", "demo", "--task", "dup"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("its task loop, waiting to restart, now ends"),
        "{}",
        text(&out)
    );
    let status = wait_exit(first.0.as_mut().unwrap(), "the task loop");
    assert_eq!(status.code(), Some(1));
    let printed = std::fs::read_to_string(&first_out).unwrap();
    assert!(printed.contains("status: stopped"), "{printed}");
    let status = wait_exit(watch.0.as_mut().unwrap(), "watch");
    assert!(status.success());
    assert_eq!(w.listed_status(), "failed");
    let (_, view) = server.get_json("/api/v1/projects/demo/tasks/dup");
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(w.run_count(), 1);
}

#[test]
fn a_server_task_loop_refuses_a_cli_loop_of_the_same_task() {
    let w = World::new();
    let gate = w.sb.path().join("gate");
    let server = serve_config_file(&w.sb, &w.config, &[]);
    let gate_text = gate.display().to_string();
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({
            "project_id": "demo", "task_id": "dup", "prompt": "loop me", "agent": "script",
            "max_restarts": 0, "env": {"FAKE_TICK_UNTIL": gate_text, "FAKE_DONE_AFTER": "1"},
        }),
    );
    assert_eq!(code, 201, "{body}");
    w.wait_run_status(RunStatus::Running);
    w.assert_second_task_refused(&gate);
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "dup", "prompt": "again", "agent": "script"}),
    );
    assert_eq!(code, 409, "{body}");
    // The run ends the task (DONE) and with it the loop.
    std::fs::write(&gate, "").unwrap();
    w.wait_run_status(RunStatus::Completed);
    let start = Instant::now();
    loop {
        let (_, view) = server.get_json("/api/v1/projects/demo/tasks/dup");
        if view["status"] == "done" {
            break;
        }
        assert!(start.elapsed() < LIMIT, "{view}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(w.run_count(), 1);
}
