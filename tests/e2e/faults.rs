//! Faults: a full disk under a live server (a small tmpfs as the runs root), a server killed
//! with SIGKILL while it runs many tasks, and an interrupted task delete.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use conductor::storage::RunStatus;
use serde_json::{json, Value};

use crate::support::{run, run_infos, text, Sandbox, Server, FAKE_AGENT};

/// A tmpfs mounted for one test; unmounted (lazily, so open files do not block it) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`, or `None` where mounting is not allowed (not root,
    /// or no CAP_SYS_ADMIN in a container).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        out.status.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn request(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let agent = crate::support::http_agent(Some(Duration::from_secs(90)));
    let url = format!("{}{path}", server.base);
    let mut resp = match (method, body) {
        ("GET", _) => agent.get(&url).call(),
        (_, Some(body)) => agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string()),
        (_, None) => agent.post(&url).send_empty(),
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Fills the file system holding `dir` with `<dir>/_filler` until a write fails.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("_filler")).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
}

#[test]
fn a_full_disk_keeps_the_real_end_of_a_run_and_refuses_new_tasks_clearly() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let Some(_tmpfs) = Tmpfs::mount(&root, "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)");
        return;
    };
    // An agent that fills the disk through its own stdout, then exits 7.
    let agent = sb.write(
        "fill-agent.sh",
        "#!/bin/sh\nhead -c 4000000 /dev/zero | tr '\\0' 'x'\nexit 7\n",
    );
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  filler:\n    type: command\n    command: [\"{}\"]\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: filler\n  max_restarts: 0\n",
            agent.display()
        ),
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(&root)
        .arg("--config")
        .arg(&config);
    let server = Server::start(cmd, sb.path());

    let (code, body) = request(
        &server,
        "POST",
        "/api/v1/tasks",
        Some(
            json!({"project_id": "p", "task_id": "fill", "prompt": "fill the disk", "wait_seconds": 120}),
        ),
    );
    assert_eq!(code, 200, "{body}");
    let infos = run_infos(&root.join("p/fill/runs"));
    assert_eq!(infos.len(), 1, "{infos:?}");
    let info = &infos[0];
    assert_eq!(info.status, RunStatus::Failed, "{info:?}");
    assert_eq!(
        info.exit_code,
        7,
        "the agent's own exit code is kept: {info:?}\nserver log:\n{}",
        server.log()
    );
    let summary = info.error_summary.clone().unwrap_or_default();
    assert!(
        summary.contains("output.md not written") && summary.contains("No space left"),
        "the cause is recorded: {summary}"
    );
    assert!(info.end_time >= info.start_time, "{info:?}");
    // The record is whole (it parsed above) and no reserve or temp file is left behind.
    let run_dir = root.join("p/fill/runs").join(&info.run_id);
    for entry in std::fs::read_dir(&run_dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp") && !name.ends_with(".reserve"),
            "left over in the run dir: {name}"
        );
    }
    let (code, record) = request(
        &server,
        "GET",
        &format!("/api/v1/runs/{}", info.run_id),
        None,
    );
    assert_eq!(code, 200, "{record}");
    assert_eq!(record["info"]["exit_code"], 7, "{record}");

    // Now the disk is full: a start answers 507 at once, and nothing keeps retrying.
    fill(&root);
    let (code, body) = request(
        &server,
        "POST",
        "/api/v1/tasks",
        Some(json!({"project_id": "p", "task_id": "second", "prompt": "x", "agent": "script"})),
    );
    assert_eq!(code, 507, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("No space left"), "{message}");
    let (code, task) = request(&server, "GET", "/api/v1/projects/p/tasks/second", None);
    assert!(
        code == 404 || task["status"] != "running" && task["status"] != "queued",
        "{code} {task}"
    );
    // The CLI fails the same way, with a non-zero exit and the cause.
    for args in [
        &[
            "task",
            "--project",
            "p",
            "--task",
            "cli-task",
            "--agent",
            "script",
            "--prompt",
            "x",
        ][..],
        &[
            "job",
            "--project",
            "p",
            "--task",
            "cli-job",
            "--agent",
            "script",
            "--prompt",
            "x",
        ],
    ] {
        let out = run(sb
            .run_agent()
            .args(args)
            .arg("--root")
            .arg(&root)
            .arg("--config")
            .arg(&config));
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No space left"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // The server still serves.
    let (code, _) = request(&server, "GET", "/api/v1/status", None);
    assert_eq!(code, 200);
    let (code, runs) = request(&server, "GET", "/api/v1/runs", None);
    assert_eq!(code, 200, "{runs}");
    let _ = std::fs::remove_file(root.join("_filler"));
    drop(server);
}

fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The hidden aside dirs (`.gc-deleting-…`) in `dir`.
fn asides(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".gc-deleting-"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Builds task `task` of project `p` with `files` files and a finished run, starts
/// `task delete` on it and SIGKILLs it once the task has been renamed aside. Returns the
/// aside, or `None` when the delete finished before it could be killed.
fn interrupted_delete(sb: &Sandbox, root: &Path, task: &str, files: usize) -> Option<PathBuf> {
    let task_dir = root.join("p").join(task);
    let run_dir = task_dir.join("runs/20260101-1200000000-1-1");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut info = conductor::storage::RunInfo::new_running(
        "20260101-1200000000-1-1",
        "p",
        task,
        "claude",
        chrono::Utc::now(),
    );
    info.status = RunStatus::Completed;
    info.end_time = chrono::Utc::now();
    info.write(&run_dir.join("run-info.yaml")).unwrap();
    std::fs::write(task_dir.join("TASK.md"), "x\n").unwrap();
    for i in 0..files {
        let dir = run_dir.join(format!("d{}", i / 500));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}")), "x").unwrap();
    }
    let mut child = sb
        .run_agent()
        .args(["task", "delete", "--project", "p", "--task", task, "--root"])
        .arg(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let project = root.join("p");
    loop {
        let suffix = format!("-{task}");
        if let Some(aside) = asides(&project)
            .into_iter()
            .find(|a| a.to_string_lossy().ends_with(&suffix))
        {
            let _ = child.kill();
            let _ = child.wait();
            // Killed mid-removal, or just after it finished.
            return aside.exists().then_some(aside);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::yield_now();
    }
}

#[test]
fn a_task_delete_killed_halfway_leaves_no_half_deleted_task_and_is_finished_later() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let list = |args: &[&str]| {
        let out = run(sb.run_agent().args(args).arg("--root").arg(&root));
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut caught = Vec::new();
    let mut files = 5_000;
    for (n, task) in ["killed-one", "killed-two", "killed-three", "killed-four"]
        .iter()
        .enumerate()
    {
        if caught.len() == 2 {
            break;
        }
        match interrupted_delete(&sb, &root, task, files) {
            Some(aside) => caught.push((task.to_string(), aside)),
            None => files *= 2,
        }
        assert!(
            !root.join("p").join(task).exists(),
            "attempt {n}: the task is renamed before anything is removed"
        );
    }
    assert_eq!(caught.len(), 2, "could not interrupt two deletes");
    // Nothing of the killed deletes is visible as a task or a run.
    let listed = list(&["list", "--project", "p"]);
    for (task, _) in &caught {
        assert!(!listed.contains(task.as_str()), "{listed}");
    }
    assert!(!list(&["list", "--json"]).contains("20260101-1200000000-1-1"));
    // The next delete of the same task finishes the first one…
    let (task, aside) = &caught[0];
    let out = run(sb
        .run_agent()
        .args(["task", "delete", "--project", "p", "--task", task, "--root"])
        .arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("leftover"),
        "{}",
        text(&out)
    );
    assert!(!aside.exists());
    // …and gc finishes the other.
    let (_, aside) = &caught[1];
    let out = run(sb.run_agent().arg("gc").arg("--root").arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!aside.exists(), "{}", text(&out));
    assert!(asides(&root.join("p")).is_empty());
}

/// `conductor_<name>` from a Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("conductor_{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn metrics(server: &Server) -> String {
    crate::support::http_get(&format!("{}/metrics", server.base))
        .map(|(_, body)| body)
        .unwrap_or_default()
}

#[test]
fn a_server_killed_with_twenty_tasks_running_agrees_with_itself_after_a_restart() {
    const TASKS: usize = 20;
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let release = sb.path().join("release");
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 2\n"
        ),
    );
    let serve = || {
        let mut cmd = sb.run_agent();
        cmd.args(["serve", "--host", "127.0.0.1", "--root"])
            .arg(&root)
            .arg("--config")
            .arg(&config);
        Server::start(cmd, sb.path())
    };
    let mut server = serve();
    let tasks: Vec<String> = (0..TASKS).map(|i| format!("task-{i:02}")).collect();
    for task in &tasks {
        let (code, body) = request(
            &server,
            "POST",
            "/api/v1/tasks",
            Some(json!({
                "project_id": "p", "task_id": task, "prompt": "tick",
                "env": {"FAKE_TICK_UNTIL": release.display().to_string(), "FAKE_DONE_AFTER": "1"},
            })),
        );
        assert_eq!(code, 201, "{task}: {body}");
    }
    let running = |root: &Path| {
        tasks
            .iter()
            .flat_map(|t| run_infos(&root.join("p").join(t).join("runs")))
            .filter(|i| i.status == RunStatus::Running && i.pid > 0)
            .count()
    };
    wait_for("all runs to start", Duration::from_secs(120), || {
        (running(&root) == TASKS).then_some(())
    });

    // SIGKILL: no shutdown path runs. The detached supervisors and agents live on.
    let mut child = server.child.0.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(server);
    server = serve();

    // The restarted server sees every run still running, once each.
    let (code, status) = wait_for(
        "the index to list all runs",
        Duration::from_secs(60),
        || {
            let (code, status) = request(&server, "GET", "/api/v1/status", None);
            (status["active_runs"] == TASKS).then_some((code, status))
        },
    );
    assert_eq!(code, 200, "{status}");
    let (code, runs) = request(&server, "GET", "/api/v1/runs?limit=1000", None);
    assert_eq!(code, 200, "{runs}");
    let listed = runs["runs"].as_array().cloned().unwrap_or_default();
    let mut ids: Vec<&str> = listed.iter().filter_map(|r| r["run_id"].as_str()).collect();
    assert_eq!(ids.len(), TASKS, "{runs}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), TASKS, "duplicate runs listed: {runs}");
    assert_eq!(
        metric(&metrics(&server), "runs{status=\"running\"}"),
        Some(TASKS as f64)
    );

    // The runs end; the resumed loops see DONE and start nothing more.
    std::fs::write(&release, "").unwrap();
    wait_for("every task to be done", Duration::from_secs(120), || {
        tasks
            .iter()
            .all(|t| root.join("p").join(t).join("DONE").exists())
            .then_some(())
    });
    wait_for(
        "status, metrics and loops to settle",
        Duration::from_secs(60),
        || {
            let (_, status) = request(&server, "GET", "/api/v1/status", None);
            let text = metrics(&server);
            (status["active_runs"] == 0
                && metric(&text, "runs{status=\"running\"}") == Some(0.0)
                && metric(&text, "runs{status=\"completed\"}") == Some(TASKS as f64)
                && metric(&text, "task_loops_active") == Some(0.0))
            .then_some(())
        },
    );
    for task in &tasks {
        let infos = run_infos(&root.join("p").join(task).join("runs"));
        assert_eq!(infos.len(), 1, "{task}: one run, no duplicate: {infos:?}");
        assert_eq!(infos[0].status, RunStatus::Completed, "{task}: {infos:?}");
        let (code, view) = request(
            &server,
            "GET",
            &format!("/api/v1/projects/p/tasks/{task}"),
            None,
        );
        assert_eq!(code, 200, "{view}");
        assert_eq!(view["status"], "done", "{task}: {view}");
    }
    assert_eq!(running(&root), 0);
}
