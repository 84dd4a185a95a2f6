//! Faults: a full disk under a live server (a small tmpfs as the runs root), a server killed
//! with SIGKILL while it runs many tasks, and an interrupted task delete.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(90)))
        .build()
        .into();
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
        info.exit_code, 7,
        "the agent's own exit code is kept: {info:?}"
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
