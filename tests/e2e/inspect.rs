//! e2e: local inspection — `run-agent list`, `status`, `output` and `watch` on runs made by
//! `run-agent job` with the fake agent, and on run-info files written directly (a dead
//! `running` run reconciled to failed, a corrupt run-info shown as unknown).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conductor::storage::{RunInfo, RunStatus};

use crate::support::{run, text, words, ChildGuard, Sandbox};

/// A sandbox with the fake agent installed as `claude` first on PATH, and a runs root.
struct World {
    sb: Sandbox,
}

impl World {
    fn new() -> World {
        let sb = Sandbox::new();
        sb.install_fake_clis(&["claude"]);
        World { sb }
    }

    fn root(&self) -> PathBuf {
        self.sb.path().join("root")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.sb.run_agent_with_fake_clis();
        cmd.args(args).arg("--root").arg(self.root());
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = run(&mut self.cmd(args));
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// `run-agent job` with the fake agent and the given FAKE_* env.
    fn job(&self, project: &str, task: &str, env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd(&[
            "job",
            "--project",
            project,
            "--task",
            task,
            "--agent",
            "claude",
            "--prompt",
            "inspect me",
        ]);
        cmd.envs(env.iter().copied());
        run(&mut cmd)
    }

    /// Writes a run-info.yaml for `<project>/<task>/runs/<run>` directly.
    fn write_run(&self, project: &str, task: &str, run: &str, edit: impl FnOnce(&mut RunInfo)) {
        let dir = self.root().join(project).join(task).join("runs").join(run);
        std::fs::create_dir_all(&dir).unwrap();
        let mut info = RunInfo::new_running(run, project, task, "claude", chrono::Utc::now());
        edit(&mut info);
        info.write(&dir.join("run-info.yaml")).unwrap();
    }

    /// Waits until `<project>/<task>` has a run recorded as running with a pid; returns its id.
    fn wait_running(&self, project: &str, task: &str) -> String {
        let runs = self.root().join(project).join(task).join("runs");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            for entry in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
                if let Ok(info) = RunInfo::read(&entry.path().join("run-info.yaml")) {
                    if info.status == RunStatus::Running && info.pid > 0 {
                        return info.run_id;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no running run appeared in {}", runs.display());
    }
}

fn task_of<'a>(list: &'a serde_json::Value, project: &str, task: &str) -> &'a serde_json::Value {
    list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project_id"] == project)
        .and_then(|p| {
            p["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["task_id"] == task)
        })
        .unwrap_or_else(|| panic!("{project}/{task} not listed: {list:#}"))
}

fn dead_pid() -> i64 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = i64::from(child.id());
    child.wait().unwrap();
    pid
}

#[test]
fn list_status_output_of_job_runs_and_written_runs() {
    let w = World::new();
    let out = w.job(
        "proj",
        "answered",
        &[
            ("FAKE_STDOUT", "raw stdout line"),
            ("FAKE_STDERR", "a warning"),
            ("FAKE_WRITE_OUTPUT", "the final answer"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = w.job("proj", "broken", &[("FAKE_EXIT", "3")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    std::fs::write(w.root().join("proj/answered/DONE"), "").unwrap();
    // Written directly: a `running` run whose process is gone, and a corrupt run-info.
    let pid = dead_pid();
    w.write_run("other", "vanished", "20260101-0000000000-1-1", |i| {
        i.pid = pid;
        i.pgid = pid;
    });
    let corrupt = w.root().join("other/corrupt/runs/20260101-0000000000-2-1");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("run-info.yaml"), "pid: [oops\n").unwrap();
    // A task waiting for an unfinished dependency.
    std::fs::create_dir_all(w.root().join("other/waiting")).unwrap();
    std::fs::write(
        w.root().join("other/waiting/TASK-CONFIG.yaml"),
        "depends_on:\n  - vanished\n",
    )
    .unwrap();

    let list = w.json(&["list", "--json"]);
    let status = |p: &str, t: &str| task_of(&list, p, t)["status"].clone();
    assert_eq!(status("proj", "answered"), "done");
    assert_eq!(status("proj", "broken"), "failed");
    assert_eq!(status("other", "vanished"), "failed");
    assert_eq!(status("other", "corrupt"), "unknown");
    assert_eq!(status("other", "waiting"), "blocked");
    let vanished = &task_of(&list, "other", "vanished")["runs"][0];
    assert_eq!(vanished["error_summary"], "process vanished", "{vanished}");
    assert!(task_of(&list, "other", "corrupt")["runs"][0]["error"]
        .as_str()
        .unwrap()
        .contains("invalid YAML"));
    // The reconciliation was written back.
    let info = RunInfo::read(
        &w.root()
            .join("other/vanished/runs/20260101-0000000000-1-1/run-info.yaml"),
    )
    .unwrap();
    assert_eq!(info.status, RunStatus::Failed);

    let table = w.ok(&["list"]);
    assert!(table.starts_with("PROJECT"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("other") && l.contains("waiting") && l.contains("blocked")),
        "{table}"
    );
    let failed = w.json(&["list", "--json", "--status", "failed"]);
    let names: Vec<&str> = failed["projects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["tasks"].as_array().unwrap())
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["vanished", "broken"]);
    let runs = w.ok(&["list", "--project", "proj", "--task", "broken"]);
    assert!(runs.contains("RUN_ID") && runs.contains("failed"), "{runs}");
    let bad = run(&mut w.cmd(&["list", "--status", "sideways"]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad).contains("running, done, failed"),
        "{}",
        text(&bad)
    );
    let bad = run(&mut w.cmd(&["list", "--project", "../etc"]));
    assert!(text(&bad).contains("invalid project_id"), "{}", text(&bad));

    let st = w.json(&["status", "--project", "proj", "--task", "broken", "--json"]);
    assert_eq!(st["status"], "failed");
    assert_eq!(st["exit_code"], 3);
    assert_eq!(st["pid_alive"], false);
    assert_eq!(st["done"], false);
    let st = w.json(&words("status --project other --task waiting --json"));
    assert_eq!(st["blocked_by"], serde_json::json!(["vanished"]));
    assert_eq!(st["latest_run"], serde_json::Value::Null);
    let st = w.ok(&["status", "--project", "other", "--task", "corrupt"]);
    assert!(st.contains("status: unknown"), "{st}");
    let missing = run(&mut w.cmd(&["status", "--project", "proj", "--task", "nope"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("task nope not found"));

    let answered = ["--project", "proj", "--task", "answered"];
    let output = |extra: &[&str]| w.ok(&[&["output"][..], &answered[..], extra].concat());
    assert_eq!(output(&[]), "the final answer\n");
    assert_eq!(output(&["--stdout"]), "raw stdout line\n");
    assert_eq!(output(&["--stderr"]), "a warning\n");
    assert!(output(&["--prompt"]).contains("inspect me"));
    // Finished run: --follow prints the file and returns.
    assert_eq!(output(&["--follow"]), "the final answer\n");
    // --run alone finds the run anywhere under the root.
    let run_id = task_of(&list, "proj", "answered")["latest_run"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(w.ok(&["output", "--run", &run_id]), "the final answer\n");
    let none = run(&mut w.cmd(&["output", "--run", "20990101-0000000000-9-9"]));
    assert!(text(&none).contains("not found"), "{}", text(&none));
}

#[test]
fn output_follow_and_watch_end_with_the_run() {
    let w = World::new();
    let mut guard = ChildGuard::spawn_quiet(
        w.cmd(&words(
            "job --project proj --task live --agent claude --prompt go",
        ))
        .env("FAKE_STDOUT", "streamed line")
        .env("FAKE_SLEEP", "2"),
    );
    let run_id = w.wait_running("proj", "live");
    let watch = w.cmd(&["watch", "--project", "proj", "--task", "live"]);
    let follow = w.cmd(&["output", "--project", "proj", "--task", "live", "--follow"]);
    let spawn = |mut cmd: Command| std::thread::spawn(move || run(&mut cmd));
    let (watch, follow) = (spawn(watch), spawn(follow));
    let (watch, follow) = (watch.join().unwrap(), follow.join().unwrap());
    assert!(follow.status.success(), "{}", text(&follow));
    assert!(
        String::from_utf8_lossy(&follow.stdout).contains("streamed line"),
        "{}",
        text(&follow)
    );
    assert!(watch.status.success(), "{}", text(&watch));
    let lines = String::from_utf8_lossy(&watch.stdout).into_owned();
    assert!(
        lines
            .lines()
            .any(|l| l == format!("proj/live {run_id} completed exit_code=0")),
        "{}",
        text(&watch)
    );
    let status = guard.0.take().unwrap().wait().unwrap();
    assert!(status.success());
    // With the run over, watch exits at once.
    let again = w.ok(&["watch", "--project", "proj"]);
    assert_eq!(again.lines().count(), 1, "{again}");
}

/// The Go fixture of a completed run (project `my-project`), as a flat extra-root run.
const GO_COMPLETED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/run-info/go-completed.yaml"
);
const LEGACY_PROJECT: &str = "my-project";
const LEGACY_TASK: &str = "task-20260223-204712-fix-build";
const LEGACY_RUN: &str = "20260223-2048580000-66788-1";

#[test]
fn config_flag_and_extra_roots_reach_every_local_command() {
    let sb = Sandbox::new();
    // A config elsewhere: its relative paths resolve against its own directory.
    let config = sb.write(
        "etc/conductor.yaml",
        "storage:\n  runs_dir: ../tree\n  extra_roots: [../legacy]\n",
    );
    let config_arg = config.display().to_string();
    let elsewhere = sb.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let cmd = |args: &[&str]| {
        let mut cmd = sb.run_agent();
        cmd.current_dir(&elsewhere).args(args);
        run(&mut cmd)
    };
    let ok = |args: &[&str]| {
        let out = cmd(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // `run-agent <line>` with `--config <config>` before the line's first flag.
    let ok_configured = |line: &str| {
        let mut args = words(line);
        let at = args
            .iter()
            .position(|a| a.starts_with("--"))
            .unwrap_or(args.len());
        args.splice(at..at, ["--config", config_arg.as_str()]);
        ok(&args)
    };

    // A run in the main tree, written directly.
    let main_run = sb.path().join("tree/xp/t1/runs/20260101-0000000000-1-1");
    std::fs::create_dir_all(&main_run).unwrap();
    let mut info = RunInfo::new_running(
        "20260101-0000000000-1-1",
        "xp",
        "t1",
        "claude",
        chrono::Utc::now(),
    );
    info.status = RunStatus::Completed;
    info.exit_code = 0;
    info.write(&main_run.join("run-info.yaml")).unwrap();
    std::fs::write(main_run.join("output.md"), "main output\n").unwrap();

    // Flat extra root: the Go fixture, and a later run of the same task whose process is gone.
    let legacy = sb.path().join("legacy/runs");
    std::fs::create_dir_all(legacy.join(LEGACY_RUN)).unwrap();
    std::fs::copy(GO_COMPLETED, legacy.join(LEGACY_RUN).join("run-info.yaml")).unwrap();
    std::fs::write(legacy.join(LEGACY_RUN).join("output.md"), "legacy output\n").unwrap();
    let dead_run = "20260223-2100000000-66788-2";
    std::fs::create_dir_all(legacy.join(dead_run)).unwrap();
    let mut dead = RunInfo::new_running(
        dead_run,
        LEGACY_PROJECT,
        LEGACY_TASK,
        "codex",
        chrono::Utc::now(),
    );
    dead.pid = dead_pid();
    dead.pgid = dead.pid;
    let dead_file = legacy.join(dead_run).join("run-info.yaml");
    dead.write(&dead_file).unwrap();
    let dead_bytes = std::fs::read(&dead_file).unwrap();

    // Without --config, from another directory, nothing of this is visible.
    let out = cmd(&["list", "--project", "xp"]);
    assert!(!out.status.success(), "{}", text(&out));

    // list: the main tree and the extra root's task (placed by its record's ids).
    let list: serde_json::Value = serde_json::from_str(&ok_configured("list --json")).unwrap();
    assert_eq!(task_of(&list, "xp", "t1")["status"], "idle");
    let legacy_task = task_of(&list, LEGACY_PROJECT, LEGACY_TASK);
    assert_eq!(
        legacy_task["runs"].as_array().unwrap().len(),
        2,
        "{legacy_task:#}"
    );
    assert_eq!(legacy_task["latest_run"], dead_run);
    // The dead `running` record reads as failed, but an extra root is never written.
    assert_eq!(legacy_task["status"], "failed", "{legacy_task:#}");
    assert_eq!(std::fs::read(&dead_file).unwrap(), dead_bytes);
    let table = ok_configured(&format!("list --project {LEGACY_PROJECT}"));
    assert!(table.contains(LEGACY_TASK), "{table}");
    let runs = ok_configured(&format!(
        "list --project {LEGACY_PROJECT} --task {LEGACY_TASK}"
    ));
    assert!(
        runs.contains(LEGACY_RUN) && runs.contains(dead_run),
        "{runs}"
    );

    // status
    let status: serde_json::Value = serde_json::from_str(&ok_configured(&format!(
        "status --project {LEGACY_PROJECT} --task {LEGACY_TASK} --json"
    )))
    .unwrap();
    assert_eq!(status["runs"], 2, "{status:#}");
    assert_eq!(status["latest_run"], dead_run);
    assert_eq!(status["latest_status"], "failed");
    let status = ok_configured("status --project xp --task t1");
    assert!(status.contains("status: idle"), "{status}");

    // output: by run id alone, and the task's latest (main tree) run.
    assert_eq!(
        ok_configured(&format!("output --run {LEGACY_RUN}")),
        "legacy output\n"
    );
    assert_eq!(
        ok_configured("output --project xp --task t1"),
        "main output\n"
    );
    assert_eq!(
        ok_configured(&format!(
            "output --project {LEGACY_PROJECT} --task {LEGACY_TASK} --run {LEGACY_RUN}"
        )),
        "legacy output\n"
    );
    assert_eq!(std::fs::read(&dead_file).unwrap(), dead_bytes);

    // watch ends at once: nothing runs (the dead extra run included).
    let watched = ok_configured(&format!("watch --project {LEGACY_PROJECT}"));
    assert!(watched.contains(LEGACY_RUN), "{watched}");

    // bus post/read/discover use the config's root.
    let posted = ok_configured("bus post --project xp --task t1 --body hello");
    assert!(!posted.trim().is_empty());
    assert!(sb.path().join("tree/xp/t1/TASK-MESSAGE-BUS.md").is_file());
    let read = ok_configured("bus read --project xp --task t1");
    assert!(read.contains("hello"), "{read}");
    let found = ok_configured("bus discover");
    assert!(found.contains("TASK-MESSAGE-BUS.md"), "{found}");

    // A --config that does not exist (or does not load) fails, naming the file.
    let missing = elsewhere.join("nope.yaml");
    for args in [
        vec!["list"],
        vec!["status", "--project", "xp", "--task", "t1"],
        vec!["output", "--run", LEGACY_RUN],
        vec!["watch"],
        vec!["stop", "--project", "xp", "--task", "t1"],
        vec!["bus", "read", "--project", "xp"],
        vec!["bus", "post", "--project", "xp", "--body", "x"],
        vec!["bus", "discover"],
        vec!["task", "delete", "--project", "xp", "--task", "t1"],
    ] {
        let mut args = args.clone();
        args.extend(["--config", "nope.yaml"]);
        let out = cmd(&args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("--config"),
            "{args:?}: {err}"
        );
    }
    let broken = sb.write("etc/broken.yaml", "storage:\n  runs_dirr: x\n");
    let out = cmd(&["list", "--config", &broken.display().to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&broken.display().to_string()) && err.contains("storage.runs_dirr"),
        "{err}"
    );
    assert!(
        sb.path().join("tree/xp/t1").is_dir(),
        "task delete must not have run"
    );
}

/// The STATUS cell of `task` in a `list` table.
fn table_status(table: &str, task: &str) -> String {
    table
        .lines()
        .find_map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells.get(1) == Some(&task)).then(|| cells[2].to_string())
        })
        .unwrap_or_else(|| panic!("no row for {task}: {table}"))
}

/// `list` reads each task's newest run plus the runs marked live in `runs/`: an older run still
/// running behind a newer finished one keeps its task `running`; once it ends the task reads
/// `idle` and no marker is left. A run whose supervisor died (marker left behind) is reconciled.
#[test]
fn list_sees_an_older_run_still_running_behind_a_newer_finished_one() {
    let w = World::new();
    let stop = w.sb.path().join("stop-older");
    let mut guard = ChildGuard::spawn_quiet(
        w.cmd(&words(
            "job --project proj --task pair --agent claude --prompt go",
        ))
        .env("FAKE_TICK_UNTIL", &stop),
    );
    let older = w.wait_running("proj", "pair");
    let newer = w.job("proj", "pair", &[]);
    assert!(newer.status.success(), "{}", text(&newer));
    let table = w.ok(&["list", "--project", "proj"]);
    assert_eq!(table_status(&table, "pair"), "running", "{table}");
    // The table's latest run is still the newest one.
    assert!(!table.contains(&older), "{table}");

    std::fs::write(&stop, "").unwrap();
    let status = guard.0.take().unwrap().wait().unwrap();
    assert!(status.success());
    let table = w.ok(&["list", "--project", "proj"]);
    assert_eq!(table_status(&table, "pair"), "idle", "{table}");
    let runs = w.root().join("proj/pair/runs");
    let markers: Vec<String> = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(markers.is_empty(), "{markers:?}");

    // A supervisor that died left its marker and a `running` record with a dead process:
    // the older run is reconciled to failed, the task reads from its newest run, the marker goes.
    let dead = "20200101-0000000000-1-1";
    w.write_run("proj", "pair", dead, |info| {
        info.pid = 999_999_999;
        info.pgid = 999_999_999;
    });
    std::fs::write(runs.join(format!(".running-{dead}")), "").unwrap();
    let table = w.ok(&["list", "--project", "proj"]);
    assert_eq!(table_status(&table, "pair"), "idle", "{table}");
    assert!(!runs.join(format!(".running-{dead}")).exists());
    let info = RunInfo::read(&runs.join(dead).join("run-info.yaml")).unwrap();
    assert_eq!(info.status, RunStatus::Failed);
}

/// `run-agent list | head`: the reader goes away after a few bytes of a long listing; list ends
/// like a Unix tool (by SIGPIPE, or 0), never with a panic on the broken pipe.
#[test]
fn a_listing_piped_into_head_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;

    let w = World::new();
    // Enough tasks that the JSON listing is larger than a pipe buffer (64 KiB).
    for i in 0..2000 {
        std::fs::create_dir_all(w.root().join(format!("big/task-{i:04}"))).unwrap();
    }
    for args in [
        &["list", "--project", "big", "--json"][..],
        &["list", "--project", "big"][..],
    ] {
        let mut child = w
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        // The pipe's reading end is closed here.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}
