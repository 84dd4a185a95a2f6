//! Backups and moves: a runs root copied with `cp -a` to another path (the original gone)
//! works from `storage.runs_dir` pointing at the copy, for local commands and the server.

use std::path::Path;
use std::process::Command;

use crate::support::{run, text, words, Sandbox, Server};

const ECHO_AGENT: &str = "agents:\n  echo: {type: command, command: [\"sh\", \"-c\", \"cat > /dev/null; echo hello-from-run; touch \\\"$JRUN_TASK_FOLDER/DONE\\\"\"]}\ndefaults: {agent: echo}\n";

/// `run-agent task` of `demo/<task>` with `prompt` and the config file `config`, which must
/// succeed.
fn run_task(sb: &Sandbox, task: &str, prompt: &str, config: &Path) {
    ok(sb
        .run_agent()
        .args([
            "task",
            "--project",
            "demo",
            "--task",
            task,
            "--prompt",
            prompt,
        ])
        .arg("--config")
        .arg(config));
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_root_copied_with_cp_a_works_from_its_new_path() {
    let sb = Sandbox::new();
    let old_root = sb.path().join("old-root");
    let old_config = sb.write(
        "old.yaml",
        &format!("storage:\n  runs_dir: {}\n{ECHO_AGENT}", old_root.display()),
    );
    run_task(&sb, "first", "hi", &old_config);
    ok(sb
        .run_agent()
        .args(words("bus post --project demo --type NOTE --body"))
        .arg("kept across the move")
        .arg("--config")
        .arg(&old_config));

    // Copy (as a backup restored elsewhere would be) and remove the original.
    let new_root = sb.path().join("elsewhere/new-root");
    std::fs::create_dir_all(new_root.parent().unwrap()).unwrap();
    let out = run(Command::new("cp").arg("-a").arg(&old_root).arg(&new_root));
    assert!(out.status.success(), "{}", text(&out));
    std::fs::rename(&old_root, sb.path().join("moved-away")).unwrap();
    std::fs::remove_dir_all(sb.path().join("moved-away")).unwrap();
    let config = sb.write(
        "new.yaml",
        &format!("storage:\n  runs_dir: {}\n{ECHO_AGENT}", new_root.display()),
    );

    // Local commands read the copy.
    let listed = ok(sb
        .run_agent()
        .args(["list", "--project", "demo", "--config"])
        .arg(&config));
    assert!(
        listed.contains("first") && listed.contains("done"),
        "{listed}"
    );
    let output = ok(sb
        .run_agent()
        .args(["output", "--project", "demo", "--task", "first", "--config"])
        .arg(&config));
    assert!(output.contains("hello-from-run"), "{output}");
    let bus = ok(sb
        .run_agent()
        .args(["bus", "read", "--project", "demo", "--config"])
        .arg(&config));
    assert!(bus.contains("kept across the move"), "{bus}");
    // New work goes into the copy.
    run_task(&sb, "second", "again", &config);
    assert!(new_root.join("demo/second/DONE").is_file());
    assert!(!old_root.exists());

    // The server serves the copy: tasks, and a run's files by run id.
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--port", "0", "--config"])
        .arg(&config);
    let server = Server::start(cmd, sb.path());
    let (status, tasks) = server.get_json("/api/v1/projects/demo/tasks");
    assert_eq!(status, 200, "{tasks}");
    let tasks = tasks.to_string();
    assert!(
        tasks.contains("first") && tasks.contains("second"),
        "{tasks}"
    );
    let run_id = std::fs::read_dir(new_root.join("demo/first/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with('.'))
        .expect("a run of the first task");
    let (status, body) = crate::support::http_get(&format!(
        "{}/api/v1/runs/{run_id}/files/stdout",
        server.base
    ))
    .expect("GET run file");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello-from-run"), "{body}");
}
