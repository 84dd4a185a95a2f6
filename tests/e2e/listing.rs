//! Task listings at scale: the same derived statuses from `run-agent list` and every API
//! listing (including a run whose supervisor died while no server ran), a task view that pages
//! its runs, counters from the index, and an index keyed by run directory that forged,
//! rewritten or truncated run-info files cannot fool.

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use conductor::storage::{RunInfo, RunStatus};

use crate::support::{run, run_ids, serve_at, text, Sandbox, Server};

fn run_id(n: usize) -> String {
    format!("20260101-{:010}-1-{n}", n)
}

fn write_run(
    root: &Path,
    p: &str,
    t: &str,
    id: &str,
    status: RunStatus,
    edit: impl FnOnce(&mut RunInfo),
) {
    let dir = root.join(p).join(t).join("runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut info = RunInfo::new_running(id, p, t, "claude", Utc::now());
    info.status = status;
    if status != RunStatus::Running {
        info.exit_code = if status == RunStatus::Completed { 0 } else { 1 };
        info.end_time = Utc::now();
    }
    edit(&mut info);
    info.write(&dir.join("run-info.yaml")).unwrap();
}

fn dead_pid() -> i64 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = i64::from(child.id());
    child.wait().unwrap();
    pid
}

/// A tree with one task in each derived status.
fn statuses_tree(root: &Path) {
    // failed: the newest run failed (an older one completed).
    write_run(
        root,
        "p",
        "failed",
        &run_id(1),
        RunStatus::Completed,
        |_| {},
    );
    write_run(root, "p", "failed", &run_id(2), RunStatus::Failed, |_| {});
    // idle: the newest completed.
    write_run(root, "p", "idle", &run_id(3), RunStatus::Failed, |_| {});
    write_run(root, "p", "idle", &run_id(4), RunStatus::Completed, |_| {});
    // done: DONE exists.
    write_run(root, "p", "done", &run_id(5), RunStatus::Completed, |_| {});
    std::fs::write(root.join("p/done/DONE"), "").unwrap();
    // running: a live process (this test).
    write_run(root, "p", "running", &run_id(6), RunStatus::Running, |i| {
        i.pid = i64::from(std::process::id());
        i.pgid = i.pid;
    });
    // vanished: says running, but its process (and supervisor) died while no server ran.
    let pid = dead_pid();
    write_run(root, "p", "vanished", &run_id(7), RunStatus::Running, |i| {
        i.pid = pid;
        i.pgid = pid;
    });
    // queued and blocked: no runs; blocked waits for a task that is not DONE.
    std::fs::create_dir_all(root.join("p/queued")).unwrap();
    std::fs::create_dir_all(root.join("p/blocked")).unwrap();
    std::fs::write(
        root.join("p/blocked/TASK-CONFIG.yaml"),
        "depends_on:\n  - idle\n",
    )
    .unwrap();
}

const EXPECTED: [(&str, &str); 7] = [
    ("blocked", "blocked"),
    ("done", "done"),
    ("failed", "failed"),
    ("idle", "idle"),
    ("queued", "queued"),
    ("running", "running"),
    ("vanished", "failed"),
];

#[test]
fn cli_and_every_api_listing_derive_the_same_statuses() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    statuses_tree(&root);

    // The server first: its index reconciles the vanished run when it is built.
    let server = serve_at(&sb, &root);
    let (code, body) = server.get_json("/api/v1/projects/p/tasks");
    assert_eq!(code, 200, "{body}");
    let api: Vec<(String, String)> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task_id"].as_str().unwrap().into(),
                t["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .collect();
    assert_eq!(api, want, "{body:#}");
    let failed = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == "failed")
        .unwrap();
    assert_eq!(failed["run_count"], 2);
    assert_eq!(failed["latest_run"], run_id(2));
    let blocked = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == "blocked")
        .unwrap();
    assert_eq!(blocked["blocked_by"], serde_json::json!(["idle"]));

    // The reference's listing and each task's own view agree.
    let (_, compat) = server.get_json("/api/v1/tasks?project_id=p");
    for (task, status) in EXPECTED {
        let listed = compat["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task_id"] == task)
            .unwrap();
        assert_eq!(listed["status"], status, "compat {task}");
        let (code, view) = server.get_json(&format!("/api/v1/projects/p/tasks/{task}"));
        assert_eq!(code, 200);
        assert_eq!(view["status"], status, "view {task}: {view:#}");
    }

    // Counters come from the index: the vanished run is failed there too.
    let (_, status) = server.get_json("/api/v1/status");
    assert_eq!(status["index"]["state"], "ready", "{status:#}");
    assert_eq!(status["index"]["runs"], 7);
    assert_eq!(status["active_runs"], 1, "{status:#}");
    assert_eq!(status["runs"]["failed"], 3, "{status:#}");
    let record = RunInfo::read(
        &root
            .join("p/vanished/runs")
            .join(run_id(7))
            .join("run-info.yaml"),
    )
    .unwrap();
    assert_eq!(record.error_summary.as_deref(), Some("process vanished"));
    drop(server);

    // The CLI table (newest run per task) and its JSON (every run) say the same.
    let out = run(sb
        .run_agent()
        .args(["list", "--project", "p", "--root"])
        .arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    for (task, status) in EXPECTED {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(task))
            .unwrap_or_else(|| panic!("{task} missing: {table}"));
        assert_eq!(line.split_whitespace().nth(2), Some(status), "{table}");
    }
    let failed_line = table.lines().find(|l| l.contains(" failed ")).unwrap();
    assert_eq!(failed_line.split_whitespace().nth(3), Some("2"), "{table}");
    let out = run(sb
        .run_agent()
        .args(["list", "--project", "p", "--json", "--root"])
        .arg(&root));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (task, status) in EXPECTED {
        let t = json["projects"][0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task_id"] == task)
            .unwrap();
        assert_eq!(t["status"], status, "json {task}");
    }
}

#[test]
fn a_task_view_pages_its_runs_newest_first() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    for n in 1..=5 {
        write_run(&root, "p", "t", &run_id(n), RunStatus::Completed, |_| {});
    }
    let server = serve_at(&sb, &root);
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (code, page1) = server.get_json("/api/v1/projects/p/tasks/t?limit=2");
    assert_eq!(code, 200, "{page1}");
    assert_eq!(page1["run_count"], 5);
    assert_eq!(ids(&page1), [run_id(5), run_id(4)]);
    let cursor = page1["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(cursor, run_id(4));
    let (_, page2) = server.get_json(&format!(
        "/api/v1/projects/p/tasks/t?limit=2&cursor={cursor}"
    ));
    assert_eq!(ids(&page2), [run_id(3), run_id(2)]);
    let cursor = page2["next_cursor"].as_str().unwrap().to_string();
    let (_, page3) = server.get_json(&format!(
        "/api/v1/projects/p/tasks/t?limit=2&cursor={cursor}"
    ));
    assert_eq!(ids(&page3), [run_id(1)]);
    assert!(page3["next_cursor"].is_null());
    assert_eq!(page3["status"], "idle");
    // The default page holds the 20 newest; bad parameters answer 400.
    let (_, all) = server.get_json("/api/v1/projects/p/tasks/t");
    assert_eq!(ids(&all).len(), 5);
    for bad in ["limit=0", "limit=1001", "cursor=..", "page=2"] {
        let url = format!("{}/api/v1/projects/p/tasks/t?{bad}", server.base);
        let (code, body) = crate::support::http_get(&url).unwrap();
        assert_eq!(code, 400, "{bad}: {body}");
    }
    // The UI's route for the same task pages the same way.
    let (_, runs) = server.get_json("/api/v1/runs?project=p&task=t&limit=2");
    assert_eq!(ids(&runs), [run_id(5), run_id(4)]);
}

#[test]
fn forged_rewritten_and_truncated_run_info_make_no_stale_or_duplicate_entries() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let (a, b) = (run_id(1), run_id(2));
    write_run(&root, "p", "t", &a, RunStatus::Completed, |_| {});
    // B's file claims to be run A of another task.
    write_run(&root, "p", "t", &b, RunStatus::Failed, |i| {
        i.run_id = run_id(1);
        i.task_id = "elsewhere".into();
    });
    let server = serve_at(&sb, &root);
    let listed = |server: &Server| -> Vec<String> { run_ids(&server.get_json("/api/v1/runs").1) };
    assert_eq!(listed(&server), [b.clone(), a.clone()]);
    let (code, run_b) = server.get_json(&format!("/api/v1/runs/{b}"));
    assert_eq!(code, 200);
    assert_eq!(run_b["run_id"], b.as_str());
    assert_eq!(run_b["task_id"], "t");
    assert_eq!(run_b["status"], "failed");

    // A rewritten with another id, then restored: never two entries for one directory.
    let path_a = root.join("p/t/runs").join(&a).join("run-info.yaml");
    let original = std::fs::read_to_string(&path_a).unwrap();
    std::fs::write(&path_a, original.replace(&a, &run_id(9))).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(listed(&server), [b.clone(), a.clone()]);
    std::fs::write(&path_a, &original).unwrap();
    // Truncated: still listed once, under its directory name, as unknown.
    std::fs::write(&path_a, &original[..30]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body) = server.get_json("/api/v1/runs");
        let runs = body["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{body:#}");
        if runs[1]["status"] == "unknown" {
            assert_eq!(runs[1]["run_id"], a.as_str());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "truncation not seen: {body:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
