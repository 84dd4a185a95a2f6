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

/// A task run with the config agent `long` (type `command`) records `agent_name: long`, and
/// resume runs that agent again (not `aaa`, the first `command` agent by name), in the
/// working directory the task ran in.
#[test]
fn resume_runs_the_recorded_agent_name_in_the_recorded_cwd() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  aaa:\n    type: command\n    command: [\"{FAKE_AGENT}\", \"aaa\"]\n  \
             long:\n    type: command\n    command: [\"{FAKE_AGENT}\", \"long\"]\n"
        ),
    );
    let root = sb.path().join("root");
    let work = sb.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let argv = sb.path().join("argv.txt");
    let base = |cmd: &str| {
        let mut c = sb.run_agent();
        c.arg(cmd)
            .args(["--project", "demo", "--task", "t", "--max-restarts", "0"])
            .arg("--root")
            .arg(&root)
            .arg("--config")
            .arg(&config)
            .env("FAKE_ARGV_DUMP", &argv);
        c
    };
    let mut first = base("task");
    first
        .args(["--agent", "long", "--prompt", "work", "--cwd"])
        .arg(&work);
    let out = run(&mut first);
    assert_eq!(out.status.code(), Some(1), "no DONE yet: {}", text(&out));
    let out = run(&mut base("resume"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let runs = crate::support::run_infos(&root.join("demo/t/runs"));
    assert_eq!(runs.len(), 2);
    for info in &runs {
        assert_eq!(info.agent, "command");
        assert_eq!(info.agent_name.as_deref(), Some("long"));
        assert_eq!(info.cwd.as_deref(), Some(work.to_str().unwrap()));
    }
    let yaml = std::fs::read_to_string(
        root.join("demo/t/runs")
            .join(&runs[0].run_id)
            .join("run-info.yaml"),
    )
    .unwrap();
    assert!(yaml.contains("\nagent_name: long\n"), "{yaml}");
    let lines = std::fs::read_to_string(&argv).unwrap();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        ["fake-agent.sh long", "fake-agent.sh long"],
        "{lines}"
    );
}
