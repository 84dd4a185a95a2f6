//! `run-agent gc`: trees of runs with chosen ages and statuses, and exactly which survive for
//! each flag combination; bus rotation beside live writers; hostile symlinks; output shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration as StdDuration, SystemTime};

use chrono::{Duration, Utc};
use conductor::bus::{AppendOptions, BusWriter, NewMessage};
use conductor::process::start_time as process_start_time;
use conductor::storage::{ProjectId, RunInfo, RunStatus, TaskId};

use crate::support::{run, text, ChildGuard, Sandbox};

// ---------------------------------------------------------------------------------------------
// Tree building
// ---------------------------------------------------------------------------------------------

/// A run to write: status, age of start_time (None: zero start_time), age of end_time.
#[derive(Clone, Copy)]
struct Spec {
    status: RunStatus,
    start_age: Option<Duration>,
    end_age: Option<Duration>,
    pid: i64,
    alive: bool,
}

fn finished(status: RunStatus, age: Duration) -> Spec {
    Spec {
        status,
        start_age: Some(age),
        end_age: Some(age - Duration::seconds(30)),
        pid: 0,
        alive: false,
    }
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// A pid that certainly belonged to a process that has exited and been reaped.
fn dead_pid() -> i64 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = i64::from(child.id());
    child.wait().expect("wait true");
    pid
}

fn running_alive(age: Duration) -> Spec {
    Spec {
        status: RunStatus::Running,
        start_age: Some(age),
        end_age: None,
        pid: i64::from(std::process::id()),
        alive: true,
    }
}

fn running_dead(age: Duration) -> Spec {
    Spec {
        status: RunStatus::Running,
        start_age: Some(age),
        end_age: None,
        pid: dead_pid(),
        alive: false,
    }
}

/// Writes `<root>/<p>/<t>/runs/<r>/run-info.yaml` (plus an output file) per `spec`.
fn write_run(root: &Path, p: &str, t: &str, r: &str, spec: Spec) -> PathBuf {
    let dir = root.join(p).join(t).join("runs").join(r);
    std::fs::create_dir_all(&dir).unwrap();
    let now = Utc::now();
    let zero = RunInfo::parse("").unwrap().start_time;
    let mut info = RunInfo::new_running(r, p, t, "claude", zero);
    if let Some(age) = spec.start_age {
        info.start_time = now - age;
    }
    if let Some(age) = spec.end_age {
        info.end_time = now - age;
    }
    info.status = spec.status;
    info.exit_code = match spec.status {
        RunStatus::Running => -1,
        RunStatus::Failed => 1,
        _ => 0,
    };
    if spec.pid != 0 {
        info.pid = spec.pid;
        info.pgid = spec.pid;
        if spec.alive {
            info.pid_start_time = process_start_time(spec.pid);
        }
    }
    info.write(&dir.join("run-info.yaml")).unwrap();
    std::fs::write(dir.join("output.md"), format!("output of {r}\n")).unwrap();
    dir
}

/// Every run directory left under `root` (both layouts), as `p/t/r`.
fn runs_left(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (base, canonical) in [(root.to_path_buf(), true), (root.join("runs"), false)] {
        for p in real_dirs(&base) {
            if canonical && p == "runs" {
                continue;
            }
            for t in real_dirs(&base.join(&p)) {
                for r in real_dirs(&base.join(&p).join(&t).join("runs")) {
                    out.insert(format!("{p}/{t}/{r}"));
                }
            }
        }
    }
    out
}

fn real_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every file, dir and symlink under `dir` with its content (files) or target (links).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if meta.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if meta.is_dir() {
                out.insert(rel, "<dir>".into());
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    out
}

fn set_mtime(path: &Path, age: StdDuration) {
    let file = std::fs::File::open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

fn gc(sb: &Sandbox, root: &Path, args: &[&str]) -> Output {
    run(sb.run_agent().arg("gc").arg("--root").arg(root).args(args))
}

fn ok(out: Output) -> Output {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The standard tree of the policy tests, in project `alpha`, task `task-a`.
fn policy_tree(root: &Path) {
    let (p, t) = ("alpha", "task-a");
    write_run(
        root,
        p,
        t,
        "completed-old",
        finished(RunStatus::Completed, days(8)),
    );
    write_run(
        root,
        p,
        t,
        "failed-old",
        finished(RunStatus::Failed, days(8)),
    );
    write_run(
        root,
        p,
        t,
        "stopped-old",
        finished(RunStatus::Stopped, days(8)),
    );
    write_run(
        root,
        p,
        t,
        "completed-new",
        finished(RunStatus::Completed, days(1)),
    );
    write_run(
        root,
        p,
        t,
        "failed-new",
        finished(RunStatus::Failed, days(6)),
    );
    let end_only = Spec {
        start_age: None,
        ..finished(RunStatus::Completed, days(9))
    };
    write_run(root, p, t, "endonly-old", end_only);
    let no_time = Spec {
        start_age: None,
        end_age: None,
        ..finished(RunStatus::Completed, days(9))
    };
    write_run(root, p, t, "notime", no_time);
    write_run(root, p, t, "running-alive", running_alive(days(30)));
    write_run(root, p, t, "running-dead", running_dead(days(30)));
    write_run(
        root,
        p,
        t,
        "unknown-old",
        finished(RunStatus::Unknown, days(8)),
    );
    let missing = root.join(p).join(t).join("runs/missing-info");
    std::fs::create_dir_all(&missing).unwrap();
    std::fs::write(missing.join("output.md"), "orphan").unwrap();
    let corrupt = write_run(
        root,
        p,
        t,
        "corrupt-info",
        finished(RunStatus::Completed, days(8)),
    );
    std::fs::write(corrupt.join("run-info.yaml"), "pid: [oops\n").unwrap();
}

const ALWAYS_KEPT: [&str; 7] = [
    "alpha/task-a/completed-new",
    "alpha/task-a/failed-new",
    "alpha/task-a/notime",
    "alpha/task-a/running-alive",
    "alpha/task-a/unknown-old",
    "alpha/task-a/missing-info",
    "alpha/task-a/corrupt-info",
];

// ---------------------------------------------------------------------------------------------
// Run retention
// ---------------------------------------------------------------------------------------------

#[test]
fn default_policy_deletes_only_old_finished_runs() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    policy_tree(&root);
    let out = ok(gc(&sb, &root, &[]));
    assert_eq!(runs_left(&root), set(&ALWAYS_KEPT), "{}", text(&out));
    let stdout = stdout(&out);
    for gone in [
        "completed-old",
        "failed-old",
        "stopped-old",
        "endonly-old",
        "running-dead",
    ] {
        assert!(
            stdout.contains(&format!("deleted run alpha/task-a/runs/{gone} (")),
            "{gone}: {stdout}"
        );
    }
    assert!(
        stdout.contains("Deleted 5 runs older than 7d (completed 2, failed 2, stopped 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("Kept 7 runs"), "{stdout}");
    let stderr = stderr(&out);
    assert!(
        stderr
            .contains("warning: kept run alpha/task-a/runs/missing-info: run-info.yaml is missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: kept run alpha/task-a/runs/corrupt-info:"),
        "{stderr}"
    );
    // Nothing hidden is left behind.
    let runs_dir = root.join("alpha/task-a/runs");
    for entry in std::fs::read_dir(&runs_dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "leftover {name}");
    }
    // The corrupt and missing records are untouched.
    assert_eq!(
        std::fs::read_to_string(runs_dir.join("corrupt-info/run-info.yaml")).unwrap(),
        "pid: [oops\n"
    );
}

#[test]
fn keep_failed_spares_failed_and_vanished_runs() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    policy_tree(&root);
    let out = ok(gc(&sb, &root, &["--keep-failed"]));
    let mut expected = set(&ALWAYS_KEPT);
    expected.extend(set(&[
        "alpha/task-a/failed-old",
        "alpha/task-a/running-dead",
    ]));
    assert_eq!(runs_left(&root), expected, "{}", text(&out));
    // The stale running record was reconciled on disk before being judged.
    let info = RunInfo::read(&root.join("alpha/task-a/runs/running-dead/run-info.yaml")).unwrap();
    assert_eq!(info.status, RunStatus::Failed);
    assert_eq!(info.error_summary.as_deref(), Some("process vanished"));
    let alive = RunInfo::read(&root.join("alpha/task-a/runs/running-alive/run-info.yaml")).unwrap();
    assert_eq!(alive.status, RunStatus::Running);
}

#[test]
fn dry_run_changes_nothing_and_lists_exactly_what_a_real_run_deletes() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    policy_tree(&root);
    let before = snapshot(&root);
    let out = ok(gc(&sb, &root, &["--dry-run", "--json"]));
    assert_eq!(
        snapshot(&root),
        before,
        "dry run must not touch a file (not even a stale record)"
    );
    let planned: BTreeSet<String> = json(&out)["deleted_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(json(&out)["dry_run"], true);

    let text_out = ok(gc(&sb, &root, &["--dry-run"]));
    assert_eq!(snapshot(&root), before);
    let text_stdout = stdout(&text_out);
    assert!(
        text_stdout.contains("[dry-run] would delete run alpha/task-a/runs/completed-old"),
        "{text_stdout}"
    );
    assert!(text_stdout.contains("Would delete 5 runs"), "{text_stdout}");

    let real = ok(gc(&sb, &root, &["--json"]));
    let deleted: BTreeSet<String> = json(&real)["deleted_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned, deleted);
    assert_eq!(deleted.len(), 5);
    for path in &deleted {
        assert!(!Path::new(path).exists(), "{path}");
    }
}

#[test]
fn older_than_accepts_each_unit() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let ages = [
        ("age-10m", Duration::minutes(10)),
        ("age-2h", Duration::hours(2)),
        ("age-2d", Duration::days(2)),
        ("age-10d", Duration::days(10)),
    ];
    for (name, age) in ages {
        write_run(
            &root,
            "alpha",
            "task-a",
            name,
            finished(RunStatus::Completed, age),
        );
    }
    let left = |names: &[&str]| -> BTreeSet<String> {
        names.iter().map(|n| format!("alpha/task-a/{n}")).collect()
    };
    ok(gc(&sb, &root, &["--older-than", "7d"]));
    assert_eq!(runs_left(&root), left(&["age-10m", "age-2h", "age-2d"]));
    ok(gc(&sb, &root, &["--older-than", "36h"]));
    assert_eq!(runs_left(&root), left(&["age-10m", "age-2h"]));
    ok(gc(&sb, &root, &["--older-than", "30m"]));
    assert_eq!(runs_left(&root), left(&["age-10m"]));
    ok(gc(&sb, &root, &["--older-than", "1h"]));
    assert_eq!(runs_left(&root), left(&["age-10m"]));
    ok(gc(&sb, &root, &["--older-than", "90s"]));
    assert!(runs_left(&root).is_empty());
}

#[test]
fn bad_flags_exit_2_naming_the_flag_and_the_accepted_forms() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    for (args, needles) in [
        (
            vec!["--older-than", "7"],
            vec!["--older-than", "no unit", "36h", "7d"],
        ),
        (
            vec!["--older-than", "7x"],
            vec!["--older-than", "90s, 30m, 36h, 7d"],
        ),
        (
            vec!["--older-than", "-1h"],
            vec!["--older-than", "invalid duration"],
        ),
        (
            vec!["--bus-max-size", "-1MB"],
            vec!["--bus-max-size", "invalid size"],
        ),
        (
            vec!["--bus-max-size", "10TB"],
            vec!["--bus-max-size", "B, KB, MB or GB"],
        ),
        (
            vec!["--bus-max-size", "big"],
            vec!["--bus-max-size", "base 1024"],
        ),
        (
            vec!["--project", "Bad_Name"],
            vec!["--project", "project_id"],
        ),
        (vec!["--json", "-q"], vec!["--json", "--quiet"]),
    ] {
        let out = gc(&sb, &root, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        for needle in needles {
            assert!(
                err.contains(needle),
                "{args:?}: missing {needle:?} in {err}"
            );
        }
    }
}

#[test]
fn project_scope_and_compat_layout() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let old = finished(RunStatus::Completed, days(8));
    write_run(&root, "alpha", "task-a", "r1", old);
    write_run(&root, "beta", "task-b", "r2", old);
    write_run(&root.join("runs"), "gamma", "task-c", "r3", old);
    write_run(&root.join("runs"), "alpha", "task-d", "r4", old);

    ok(gc(&sb, &root, &["--project", "alpha"]));
    assert_eq!(
        runs_left(&root),
        set(&["beta/task-b/r2", "gamma/task-c/r3"])
    );
    let out = gc(&sb, &root, &["--project", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("project \"nosuch\" not found"),
        "{}",
        text(&out)
    );
    ok(gc(&sb, &root, &[]));
    assert!(runs_left(&root).is_empty());
}

#[test]
fn root_comes_from_flag_config_env_or_dot_runs() {
    let sb = Sandbox::new();
    let old = finished(RunStatus::Completed, days(8));
    let dirs = ["flag-root", "cfg-root", "env-root", "runs"];
    for d in dirs {
        write_run(&sb.path().join(d), "alpha", "task-a", "r1", old);
    }
    let exists = |d: &str| sb.path().join(d).join("alpha/task-a/runs/r1").exists();
    sb.write("gc.yaml", "storage:\n  runs_dir: cfg-root\n");

    let all = |cmd: &mut Command| ok(run(cmd));
    all(sb
        .run_agent()
        .args(["gc", "--root", "flag-root", "--config", "gc.yaml"])
        .env("RUNS_DIR", "env-root"));
    assert_eq!(dirs.map(exists), [false, true, true, true]);
    all(sb
        .run_agent()
        .args(["gc", "--config", "gc.yaml"])
        .env("RUNS_DIR", "env-root"));
    assert_eq!(dirs.map(exists), [false, false, true, true]);
    all(sb.run_agent().args(["gc"]).env("RUNS_DIR", "env-root"));
    assert_eq!(dirs.map(exists), [false, false, false, true]);
    all(sb.run_agent().args(["gc"]));
    assert_eq!(dirs.map(exists), [false, false, false, false]);

    let out = run(sb.run_agent().args(["gc", "--root", "nowhere"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("nowhere does not exist"),
        "{}",
        text(&out)
    );
    sb.write("bad.yaml", "storage:\n  bogus: 1\n");
    let out = run(sb.run_agent().args(["gc", "--config", "bad.yaml"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("bad.yaml"), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// Done tasks
// ---------------------------------------------------------------------------------------------

#[test]
fn delete_done_tasks_only_when_every_condition_holds() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let p = root.join("alpha");
    let old = StdDuration::from_secs(8 * 86_400);
    let recent = StdDuration::from_secs(3_600);
    let mk = |task: &str, done: bool, runs: Option<&[(&str, Spec)]>| {
        let dir = p.join(task);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("TASK.md"), "do it").unwrap();
        if done {
            std::fs::write(dir.join("DONE"), "").unwrap();
        }
        if let Some(runs) = runs {
            std::fs::create_dir_all(dir.join("runs")).unwrap();
            for (name, spec) in runs {
                write_run(&root, "alpha", task, name, *spec);
            }
        }
        dir
    };
    let old_run = finished(RunStatus::Completed, days(8));
    let new_run = finished(RunStatus::Completed, days(1));
    let tasks = [
        ("done-no-runs-dir", mk("done-no-runs-dir", true, None), old),
        (
            "done-empty-runs",
            mk("done-empty-runs", true, Some(&[])),
            old,
        ),
        (
            "done-old-runs",
            mk(
                "done-old-runs",
                true,
                Some(&[("r1", old_run), ("r2", old_run)]),
            ),
            old,
        ),
        (
            "done-new-run",
            mk("done-new-run", true, Some(&[("r3", new_run)])),
            old,
        ),
        ("not-done", mk("not-done", false, Some(&[])), old),
        ("done-recent", mk("done-recent", true, None), recent),
        ("done-is-dir", mk("done-is-dir", false, None), old),
        (
            "done-stray-file",
            mk("done-stray-file", true, Some(&[])),
            old,
        ),
    ];
    std::fs::create_dir(p.join("done-is-dir/DONE")).unwrap();
    std::fs::write(p.join("done-stray-file/runs/notes.txt"), "x").unwrap();
    for (_, dir, age) in &tasks {
        set_mtime(dir, *age);
    }
    let expected_gone = ["done-no-runs-dir", "done-empty-runs", "done-old-runs"];

    // Dry run predicts the task whose old runs the same pass deletes.
    let dry = ok(gc(
        &sb,
        &root,
        &["--delete-done-tasks", "--dry-run", "--json"],
    ));
    let planned: BTreeSet<String> = json(&dry)["deleted_tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned, set(&expected_gone), "{}", text(&dry));
    assert!(tasks.iter().all(|(_, dir, _)| dir.exists()));
    // Without the flag no task is touched (old runs are deleted).
    ok(gc(&sb, &root, &[]));
    assert!(tasks.iter().all(|(_, dir, _)| dir.exists()));
    assert!(!p.join("done-old-runs/runs/r1").exists());

    // Put an old run back to show one pass deletes the run, then its task.
    write_run(&root, "alpha", "done-old-runs", "r1", old_run);
    set_mtime(&p.join("done-old-runs"), old);
    let out = ok(gc(&sb, &root, &["--delete-done-tasks"]));
    for (name, dir, _) in &tasks {
        assert_eq!(
            dir.exists(),
            !expected_gone.contains(name),
            "{name}: {}",
            text(&out)
        );
        assert!(
            stdout(&out).contains(&format!("deleted task alpha/{name} ("))
                == expected_gone.contains(name)
        );
    }
    let hidden: Vec<_> = std::fs::read_dir(&p)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

// ---------------------------------------------------------------------------------------------
// Bus rotation
// ---------------------------------------------------------------------------------------------

fn archives_of(bus: &Path) -> Vec<PathBuf> {
    let name = bus.file_name().unwrap().to_string_lossy().into_owned();
    let mut out: Vec<PathBuf> = std::fs::read_dir(bus.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{name}.")) && n.ends_with(".archived")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn rotate_bus_renames_only_oversized_buses() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let big_project = root.join("alpha/PROJECT-MESSAGE-BUS.md");
    let big_task = root.join("alpha/task-a/TASK-MESSAGE-BUS.md");
    let small_task = root.join("alpha/task-b/TASK-MESSAGE-BUS.md");
    let small_project = root.join("beta/PROJECT-MESSAGE-BUS.md");
    for (path, size) in [
        (&big_project, 2048),
        (&big_task, 1025),
        (&small_task, 1024),
        (&small_project, 10),
    ] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x".repeat(size)).unwrap();
    }
    // Without --rotate-bus nothing is rotated, whatever the size.
    ok(gc(&sb, &root, &["--bus-max-size", "1B"]));
    assert!(archives_of(&big_project).is_empty());

    let dry = ok(gc(
        &sb,
        &root,
        &["--rotate-bus", "--bus-max-size", "1kb", "--dry-run"],
    ));
    assert!(stdout(&dry).contains("[dry-run] would rotate bus alpha/PROJECT-MESSAGE-BUS.md -> alpha/PROJECT-MESSAGE-BUS.md."), "{}", text(&dry));
    assert!(archives_of(&big_project).is_empty() && big_project.exists());

    let out = ok(gc(
        &sb,
        &root,
        &["--rotate-bus", "--bus-max-size", "1KB", "--json"],
    ));
    let report = json(&out);
    assert_eq!(
        report["rotated_buses"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    for bus in [&big_project, &big_task] {
        assert!(!bus.exists());
        let archives = archives_of(bus);
        assert_eq!(archives.len(), 1);
        let name = archives[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let stamp = name
            .strip_prefix(&format!("{}.", bus.file_name().unwrap().to_string_lossy()))
            .and_then(|s| s.strip_suffix(".archived"))
            .unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S").is_ok(),
            "{name}"
        );
    }
    assert_eq!(std::fs::read(&small_task).unwrap().len(), 1024);
    assert_eq!(std::fs::read(&small_project).unwrap().len(), 10);
    assert!(stdout(&ok(gc(
        &sb,
        &root,
        &["--rotate-bus", "--bus-max-size", "1KB", "--json"]
    )))
    .contains("\"rotated_buses\": []"));
}

const WRITER_MODE: &str = "CONDUCTOR_TEST_GC_WRITER";
const WRITER_MESSAGES: usize = 150;

/// Child mode "<bus path>|<writer name>": append WRITER_MESSAGES messages with one long-lived
/// BusWriter. Halfway it waits until its bus has been rotated at least once, so its open
/// descriptor is known to outlive a rotation; the rest are appended while gc keeps rotating.
#[test]
fn child_bus_writer() {
    let Ok(mode) = std::env::var(WRITER_MODE) else {
        return;
    };
    let (path, name) = mode.split_once('|').expect("mode");
    let mut writer = BusWriter::new(path, AppendOptions::default());
    let project = ProjectId::parse("alpha").unwrap();
    for i in 0..WRITER_MESSAGES {
        let msg = NewMessage::new("INFO", project.clone())
            .task(TaskId::parse("task-a").unwrap())
            .body(format!("{name}-{i}"));
        writer.append(&msg).expect("append");
        if i == WRITER_MESSAGES / 2 {
            let start = std::time::Instant::now();
            while archives_of(Path::new(path)).is_empty() {
                assert!(
                    start.elapsed() < StdDuration::from_secs(60),
                    "no rotation seen"
                );
                std::thread::sleep(StdDuration::from_millis(5));
            }
        }
    }
}

#[test]
fn rotation_beside_live_writers_loses_no_message() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let task_bus = root.join("alpha/task-a/TASK-MESSAGE-BUS.md");
    let project_bus = root.join("alpha/PROJECT-MESSAGE-BUS.md");
    std::fs::create_dir_all(task_bus.parent().unwrap()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut writers = Vec::new();
    let mut expected = BTreeSet::new();
    for (w, bus) in [(0, &task_bus), (1, &task_bus), (2, &project_bus)] {
        let name = format!("w{w}");
        expected.extend((0..WRITER_MESSAGES).map(|i| format!("{name}-{i}")));
        let child = Command::new(&exe)
            .args([
                "--exact",
                "gc::child_bus_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_MODE, format!("{}|{name}", bus.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        writers.push(ChildGuard(Some(child)));
    }
    let mut rotations = 0;
    loop {
        let running = writers
            .iter_mut()
            .map(|g| g.0.as_mut().unwrap().try_wait().unwrap().is_none())
            .filter(|alive| *alive)
            .count();
        let out = ok(gc(
            &sb,
            &root,
            &["--rotate-bus", "--bus-max-size", "2KB", "--json"],
        ));
        rotations += json(&out)["rotated_buses"].as_array().unwrap().len();
        if running == 0 {
            break;
        }
    }
    for guard in &mut writers {
        let status = guard.0.as_mut().unwrap().wait().unwrap();
        assert!(status.success(), "writer failed: {status}");
    }
    assert!(rotations >= 2, "each bus was rotated at least once");
    let mut seen = Vec::new();
    for bus in [&task_bus, &project_bus] {
        let mut files = archives_of(bus);
        if bus.exists() {
            files.push(bus.to_path_buf());
        }
        assert!(!files.is_empty(), "{files:?}");
        for file in files {
            let messages = conductor::bus::read_all(&file).unwrap();
            seen.extend(messages.into_iter().map(|m| m.body));
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a message was duplicated");
    assert_eq!(
        unique, expected,
        "total across live buses and archives == written"
    );
}

// ---------------------------------------------------------------------------------------------
// Symlinks, leftovers, output, errors, concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn hostile_symlinks_are_never_followed_and_nothing_outside_is_deleted() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let outside = sb.path().join("outside");
    let old = finished(RunStatus::Completed, days(30));
    // Outside the root: whole trees that look like gc victims.
    write_run(&outside, "evil", "task-x", "r-out1", old);
    write_run(&outside, "evil2", "task-y", "r-out2", old);
    let outside_run = write_run(&outside, "p", "t", "r-out3", old);
    let outside_runs_dir = write_run(&outside, "q", "t", "r-out4", old)
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::create_dir_all(outside.join("data/deep")).unwrap();
    std::fs::write(outside.join("data/deep/precious.txt"), "precious").unwrap();
    std::fs::write(outside.join("bus.md"), "y".repeat(4096)).unwrap();
    std::fs::write(outside.join("evil/task-x/DONE"), "").unwrap();

    // Inside the root: symlinks at every level.
    std::os::unix::fs::symlink(outside.join("evil"), root_dir(&root).join("evil")).unwrap();
    let real_task = root.join("alpha/task-a");
    std::fs::create_dir_all(&real_task).unwrap();
    std::os::unix::fs::symlink(outside.join("evil2/task-y"), root.join("alpha/task-linked"))
        .unwrap();
    std::fs::create_dir_all(real_task.join("runs")).unwrap();
    std::os::unix::fs::symlink(&outside_run, real_task.join("runs/r-linked")).unwrap();
    let task_b = root.join("alpha/task-b");
    std::fs::create_dir_all(&task_b).unwrap();
    std::fs::write(task_b.join("DONE"), "").unwrap();
    std::os::unix::fs::symlink(&outside_runs_dir, task_b.join("runs")).unwrap();
    set_mtime(&task_b, StdDuration::from_secs(30 * 86_400));
    // A real old run containing a symlink to a directory outside, and a symlinked bus.
    let victim = write_run(&root, "alpha", "task-a", "r-real", old);
    std::os::unix::fs::symlink(outside.join("data"), victim.join("data-link")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("data/deep/precious.txt"),
        victim.join("file-link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        outside.join("bus.md"),
        real_task.join("TASK-MESSAGE-BUS.md"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, root.join("runs")).unwrap();

    let before_outside = snapshot(&outside);
    let out = ok(gc(
        &sb,
        &root,
        &[
            "--older-than",
            "0s",
            "--delete-done-tasks",
            "--rotate-bus",
            "--bus-max-size",
            "1B",
        ],
    ));
    assert_eq!(snapshot(&outside), before_outside, "{}", text(&out));
    assert!(!victim.exists(), "the real run is deleted: {}", text(&out));
    // The symlinks themselves are left in place.
    for link in [
        root.join("evil"),
        root.join("alpha/task-linked"),
        real_task.join("runs/r-linked"),
        task_b.join("runs"),
        real_task.join("TASK-MESSAGE-BUS.md"),
        root.join("runs"),
    ] {
        assert!(
            std::fs::symlink_metadata(&link).unwrap().is_symlink(),
            "{}",
            link.display()
        );
    }
    assert!(
        task_b.exists(),
        "a task whose runs/ is a symlink is not pruned"
    );
    let report = stdout(&out);
    assert!(report.contains("Deleted 1 runs"), "{report}");
}

fn root_dir(root: &Path) -> PathBuf {
    std::fs::create_dir_all(root).unwrap();
    root.to_path_buf()
}

#[test]
fn leftovers_of_a_crashed_gc_are_removed_unless_their_gc_is_alive() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    write_run(
        &root,
        "alpha",
        "task-a",
        "keep",
        finished(RunStatus::Completed, days(1)),
    );
    let runs = root.join("alpha/task-a/runs");
    let dead = runs.join(format!(".gc-deleting-{}-r1", dead_pid()));
    std::fs::create_dir_all(dead.join("sub")).unwrap();
    std::fs::write(dead.join("sub/run-info.yaml"), "status: completed\n").unwrap();
    let project_leftover = root.join(format!("alpha/.gc-deleting-{}-task-z", dead_pid()));
    std::fs::create_dir_all(&project_leftover).unwrap();
    let live = runs.join(format!(".gc-deleting-{}-r2", std::process::id()));
    std::fs::create_dir_all(&live).unwrap();

    let dry = ok(gc(&sb, &root, &["--dry-run"]));
    assert!(dead.exists() && project_leftover.exists());
    assert!(
        stdout(&dry).contains("[dry-run] would delete leftover alpha/task-a/runs/.gc-deleting-"),
        "{}",
        text(&dry)
    );
    let out = ok(gc(&sb, &root, &["--json"]));
    assert!(
        !dead.exists() && !project_leftover.exists(),
        "{}",
        text(&out)
    );
    assert!(live.exists(), "a live gc's dir is its own business");
    assert_eq!(json(&out)["removed_leftovers"].as_array().unwrap().len(), 2);
    assert_eq!(runs_left(&root), set(&["alpha/task-a/keep"]));
}

#[test]
fn json_report_shape() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    policy_tree(&root);
    let out = ok(gc(&sb, &root, &["--json", "--keep-failed"]));
    let r = json(&out);
    assert_eq!(r["dry_run"], false);
    assert_eq!(r["older_than"], "7d");
    assert_eq!(r["older_than_secs"], 604_800);
    assert!(r["root"].as_str().unwrap().ends_with("root"));
    assert!(r["cutoff"].as_str().unwrap().ends_with('Z'));
    let runs = &r["runs"];
    assert_eq!(runs["scanned"], 12);
    assert_eq!(runs["deleted"], 3);
    assert_eq!(runs["kept"], 9);
    assert_eq!(
        runs["deleted_by_status"],
        serde_json::json!({"completed": 2, "failed": 0, "stopped": 1})
    );
    assert_eq!(
        runs["kept_by_reason"],
        serde_json::json!({
            "running": 1, "too_new": 1, "keep_failed": 3, "unknown_status": 1,
            "no_timestamp": 1, "missing_run_info": 1, "corrupt_run_info": 1
        })
    );
    let deleted = r["deleted_runs"].as_array().unwrap();
    assert_eq!(deleted.len(), 3);
    let first = &deleted[0];
    assert_eq!(first["project"], "alpha");
    assert_eq!(first["task"], "task-a");
    assert_eq!(first["run_id"], "completed-old");
    assert_eq!(first["status"], "completed");
    assert!(first["bytes"].as_u64().unwrap() > 100);
    let total: u64 = deleted.iter().map(|d| d["bytes"].as_u64().unwrap()).sum();
    assert_eq!(runs["bytes_freed"], total);
    assert_eq!(r["bytes_freed"], total);
    let problems = r["problem_runs"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0]["reason"], "corrupt_run_info");
    assert_eq!(problems[1]["reason"], "missing_run_info");
    for key in [
        "rotated_buses",
        "deleted_tasks",
        "removed_leftovers",
        "errors",
    ] {
        assert_eq!(r[key], serde_json::json!([]), "{key}");
    }
}

#[test]
fn quiet_prints_only_errors_and_failures_exit_1_after_doing_the_rest() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    policy_tree(&root);
    // A stale running record whose lock file is a symlink: gc refuses to reconcile it (an
    // error) but still does everything else.
    let trap = write_run(&root, "beta", "task-b", "trap", running_dead(days(30)));
    let _ = std::fs::remove_file(trap.join("run-info.yaml.lock"));
    std::os::unix::fs::symlink(sb.path().join("elsewhere"), trap.join("run-info.yaml.lock"))
        .unwrap();

    let out = gc(&sb, &root, &["-q"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("trap") && err.contains("run-info.yaml.lock"),
        "{err}"
    );
    assert!(!sb.path().join("elsewhere").exists());
    assert_eq!(runs_left(&root), {
        let mut s = set(&ALWAYS_KEPT);
        s.insert("beta/task-b/trap".into());
        s
    });

    std::fs::remove_file(trap.join("run-info.yaml.lock")).unwrap();
    let out = ok(gc(&sb, &root, &["--quiet"]));
    assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()));
    assert!(!trap.exists(), "reconciled to failed, then deleted");
}

#[test]
fn runs_created_while_gc_runs_are_never_deleted() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let old = finished(RunStatus::Completed, days(30));
    for t in 0..4 {
        for r in 0..300 {
            write_run(
                &root,
                "alpha",
                &format!("task-{t}"),
                &format!("old-{r}"),
                old,
            );
        }
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let created = std::thread::scope(|scope| {
        let creator = scope.spawn(|| {
            let mut made = Vec::new();
            // At least 50 runs, however fast gc is; stop when gc is done (or at a hard cap).
            for n in 0..20_000 {
                if n >= 50 && stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let task = format!("task-{}", n % 4);
                let spec = if n % 2 == 0 {
                    finished(RunStatus::Completed, Duration::zero())
                } else {
                    running_alive(days(30))
                };
                write_run(&root, "alpha", &task, &format!("new-{n}"), spec);
                made.push(format!("alpha/{task}/new-{n}"));
            }
            made
        });
        // -q: a line per deleted run would overflow the pipe `run` only drains at exit.
        let out = gc(&sb, &root, &["--older-than", "1h", "-q"]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, creator.join().unwrap())
    });
    let (out, made) = created;
    let out = ok(out);
    let left = runs_left(&root);
    assert_eq!(left, made.iter().cloned().collect(), "{}", text(&out));
}
