//! Shell completions and man pages: `completions <shell> [--dynamic]`, `man [--out-dir]`, and
//! the dynamic completer answering project / task / run ids from the runs root.

use std::process::Command;

use crate::support::{run, text, Sandbox};

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

#[test]
fn both_binaries_print_a_static_script_for_every_shell() {
    let sb = Sandbox::new();
    for (name, mut make) in [
        (
            "run-agent",
            Box::new(|| sb.run_agent()) as Box<dyn FnMut() -> Command>,
        ),
        ("conductor", Box::new(|| sb.conductor())),
    ] {
        for shell in SHELLS {
            let out = run(make().args(["completions", shell]));
            assert!(out.status.success(), "{name} {shell}: {}", text(&out));
            let script = String::from_utf8_lossy(&out.stdout);
            assert!(script.contains(name), "{name} {shell}: {script}");
            // Subcommands of each binary appear in its script.
            let sub = if name == "run-agent" {
                "validate"
            } else {
                "update"
            };
            assert!(script.contains(sub), "{name} {shell} lacks {sub}");
        }
    }
    let out = run(sb.run_agent().args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn dynamic_completer_lists_projects_tasks_and_runs_of_the_root() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    std::fs::create_dir_all(
        root.join("demo/task-20260101-000000-alpha/runs/20260101-0000000000-1-1"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("demo/task-20260102-000000-beta")).unwrap();
    std::fs::create_dir_all(root.join("docs/task-20260103-000000-gamma")).unwrap();
    let root_s = root.display().to_string();
    let complete = |words: &[&str]| {
        let mut cmd = sb.run_agent();
        cmd.env("CONDUCTOR_COMPLETE", "fish").arg("--").args(words);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{words:?}: {}", text(&out));
        let mut values: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect();
        values.sort();
        values
    };
    assert_eq!(
        complete(&["run-agent", "list", "--root", &root_s, "--project", ""]),
        ["demo", "docs"]
    );
    assert_eq!(
        complete(&["run-agent", "list", "--root", &root_s, "--project", "do"]),
        ["docs"]
    );
    assert_eq!(
        complete(&[
            "run-agent",
            "status",
            "--root",
            &root_s,
            "--project",
            "demo",
            "--task",
            ""
        ]),
        ["task-20260101-000000-alpha", "task-20260102-000000-beta"]
    );
    // Without --project, the tasks of every project.
    assert_eq!(
        complete(&[
            "run-agent",
            "bus",
            "read",
            "--root",
            &root_s,
            "--task",
            "task-2026010"
        ])
        .len(),
        3
    );
    assert_eq!(
        complete(&[
            "run-agent",
            "output",
            "--root",
            &root_s,
            "--project",
            "demo",
            "--task",
            "task-20260101-000000-alpha",
            "--run",
            ""
        ]),
        ["20260101-0000000000-1-1"]
    );
    // CONDUCTOR_ROOT is honoured like everywhere else.
    let mut cmd = sb.run_agent();
    cmd.env("CONDUCTOR_COMPLETE", "fish")
        .env("CONDUCTOR_ROOT", &root)
        .args(["--", "run-agent", "stop", "--project", "d"]);
    let out = run(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out)
    );
    // conductor completes its own client commands from the same root.
    let mut cmd = sb.conductor();
    cmd.env("CONDUCTOR_COMPLETE", "fish")
        .env("CONDUCTOR_ROOT", &root)
        .args(["--", "conductor", "task", "show", "--project", ""]);
    let out = run(&mut cmd);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("docs"),
        "{}",
        text(&out)
    );
}

#[test]
fn dynamic_bash_script_completes_ids_in_a_real_bash() {
    if Command::new("bash").arg("--version").output().is_err() {
        eprintln!("skipped: no bash");
        return;
    }
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    std::fs::create_dir_all(root.join("alpha-project/t1")).unwrap();
    let out = run(sb.run_agent().args(["completions", "bash", "--dynamic"]));
    assert!(out.status.success(), "{}", text(&out));
    let script = sb.write("complete.bash", &String::from_utf8_lossy(&out.stdout));
    // Simulate <TAB> after `run-agent list --project al`, as bash's completion would.
    let probe = format!(
        "source {script}\n\
         COMP_WORDS=(run-agent list --root {root} --project al); COMP_CWORD=5; COMP_TYPE=9\n\
         _clap_complete_run_agent run-agent al list\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n\
         complete -p run-agent\n",
        script = script.display(),
        root = root.display(),
    );
    let out = run(sb
        .command(std::path::Path::new("bash"))
        .args(["--norc", "-c", &probe]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.lines().any(|l| l.trim() == "alpha-project"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("_clap_complete_run_agent"),
        "{}",
        text(&out)
    );
}

#[test]
fn man_prints_a_page_and_writes_one_per_command() {
    let sb = Sandbox::new();
    let out = run(sb.run_agent().arg("man"));
    assert!(out.status.success(), "{}", text(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH run-agent 1"),
        "{page}"
    );
    assert!(page.contains(".TH run-agent 1"));

    let dir = sb.path().join("man/man1");
    let out = run(sb.conductor().args(["man", "--out-dir"]).arg(&dir));
    assert!(out.status.success(), "{}", text(&out));
    for page in [
        "conductor.1",
        "conductor-update.1",
        "conductor-task-submit.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} missing: {}", text(&out));
    }
    // Hidden internal commands get no page.
    assert!(!dir.join("conductor-supervise.1").exists());
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.lines().any(|l| l.ends_with("conductor.1")),
        "{listed}"
    );

    // A path that cannot be a directory is a clear error naming the flag.
    let file = sb.write("plain-file", "x");
    let out = run(sb.run_agent().args(["man", "--out-dir"]).arg(&file));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--out-dir"),
        "{}",
        text(&out)
    );
}
