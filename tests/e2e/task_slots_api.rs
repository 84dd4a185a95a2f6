//! e2e: `defaults.max_concurrent_root_tasks` for the server's own task loops — with one slot,
//! a second task started through the API waits until the first task's loop ends.

use std::path::Path;
use std::time::Duration;

use conductor::storage::{RunInfo, RunStatus};

use crate::support::{http_agent, post_json_text, wait_until, Sandbox, Server};

fn post(base: &str, body: serde_json::Value) -> (u16, String) {
    let agent = http_agent(Some(Duration::from_secs(60)));
    post_json_text(&agent, &format!("{base}/api/v1/tasks"), &body)
}

fn runs_of(root: &Path, task: &str) -> Vec<RunInfo> {
    crate::support::run_infos(&root.join("demo").join(task).join("runs"))
}

/// How long a wait may take before the test fails.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Opens the gate when dropped, so no waiting agent outlives a failed test.
struct OpenOnDrop(std::path::PathBuf);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

#[test]
fn second_task_waits_for_the_only_task_slot() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let gate = sb.path().join("gate");
    let _open = OpenOnDrop(gate.clone());
    // The agent waits for the gate file, then marks its task done.
    // (Also ends when the sandbox is gone, so no agent outlives the test.)
    let script = r#"while [ ! -f "$GATE" ] && [ -d "${GATE%/*}" ]; do sleep 0.05; done; touch "$JRUN_TASK_FOLDER/DONE""#;
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  gate:\n    type: command\n    command: [\"/bin/sh\", \"-c\", {}]\n\
             defaults:\n  agent: gate\n  max_concurrent_root_tasks: 1\n",
            serde_json::to_string(script).unwrap()
        ),
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(&root)
        .arg("--config")
        .arg(&config)
        .env("GATE", &gate);
    let server = Server::start(cmd, sb.path());

    let (code, body) = post(
        &server.base,
        serde_json::json!({"project_id": "demo", "task_id": "first", "prompt": "x"}),
    );
    assert!((200..300).contains(&code), "{code} {body}");
    wait_until("the first task's run", WAIT_LIMIT, || {
        runs_of(&root, "first")
            .iter()
            .any(|r| r.status == RunStatus::Running && r.pid > 0)
    });
    // A queued task's POST answers once its first run starts (or after 15 s): send it aside.
    let base = server.base.clone();
    let second_post = std::thread::spawn(move || {
        post(
            &base,
            serde_json::json!({"project_id": "demo", "task_id": "second", "prompt": "y"}),
        )
    });
    // The second loop queues (the server logs it) and starts no run while the first runs.
    wait_until("the second task to queue", WAIT_LIMIT, || {
        server
            .log()
            .contains("task queued: waiting for a free task slot")
    });
    assert!(runs_of(&root, "second").is_empty());
    std::fs::write(&gate, "").unwrap();
    let (code, body) = second_post.join().unwrap();
    assert!((200..300).contains(&code), "{code} {body}");
    wait_until("both tasks done", WAIT_LIMIT, || {
        root.join("demo/first/DONE").exists() && root.join("demo/second/DONE").exists()
    });
    let first = runs_of(&root, "first");
    wait_until("the second task's run to end", WAIT_LIMIT, || {
        runs_of(&root, "second")
            .iter()
            .all(|r| r.status.is_terminal())
    });
    let second = runs_of(&root, "second");
    assert_eq!((first.len(), second.len()), (1, 1));
    assert!(
        second[0].start_time >= first[0].end_time,
        "the second task started before the first ended: {:?} < {:?}",
        second[0].start_time,
        first[0].end_time
    );
}
