//! Top-level `run-agent resume` continues a task like `run-agent task resume`.

use crate::support::{run, text, Sandbox};

use crate::support::FAKE_AGENT;

#[test]
fn top_level_resume_continues_the_chain() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.yaml",
        &format!("agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\n"),
    );
    let root = sb.path().join("root");
    let base = |cmd: &str| {
        let mut c = sb.run_agent();
        c.arg(cmd)
            .args([
                "--project",
                "demo",
                "--task",
                "t",
                "--max-restarts",
                "0",
                "--root",
            ])
            .arg(&root)
            .arg("--config")
            .arg(&config)
            .env("FAKE_DONE_AFTER", "2");
        c
    };
    let mut first = base("task");
    let out = run(first.args(["--agent", "script", "--prompt", "work"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "no DONE after one attempt: {}",
        text(&out)
    );
    let out = run(&mut base("resume"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(root.join("demo/t/DONE").exists());
    let mut runs: Vec<_> = std::fs::read_dir(root.join("demo/t/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2);
    let second = conductor::storage::RunInfo::read(&runs[1].join("run-info.yaml")).unwrap();
    let first_id = runs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(second.previous_run_id.as_deref(), Some(first_id.as_str()));
}
