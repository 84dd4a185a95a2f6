//! Read-only API over the run tree: projects, tasks, runs (filters, pagination), run-info
//! as JSON and YAML, run files with Range, and hostile path parameters.

use std::path::Path;

use chrono::Utc;
use conductor::storage::{RunInfo, RunStatus};

use crate::support::{http_get, run_ids, serve_at, Sandbox, Server};

/// Writes a finished run `r` of `task` (`<project>/<task>`) under `root`.
fn make_run(root: &Path, task: &str, r: &str, status: RunStatus) {
    let (p, t) = task.split_once('/').expect("<project>/<task>");
    let dir = root.join(p).join(t).join("runs").join(r);
    std::fs::create_dir_all(&dir).unwrap();
    let mut info = RunInfo::new_running(r, p, t, "claude", Utc::now());
    info.status = status;
    info.exit_code = if status == RunStatus::Completed { 0 } else { 1 };
    info.end_time = Utc::now();
    info.write(&dir.join("run-info.yaml")).unwrap();
    std::fs::write(dir.join("agent-stdout.txt"), "0123456789").unwrap();
}

#[test]
fn browse_projects_tasks_runs_and_files() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    make_run(
        &root,
        "alpha/task-1",
        "20260101-0000000000-1-1",
        RunStatus::Completed,
    );
    make_run(
        &root,
        "alpha/task-1",
        "20260101-0000000000-1-2",
        RunStatus::Failed,
    );
    make_run(
        &root,
        "alpha/task-2",
        "20260101-0000000000-1-3",
        RunStatus::Completed,
    );
    std::fs::write(root.join("alpha/task-2/DONE"), "").unwrap();
    std::fs::write(root.join("alpha/task-2/TASK.md"), "do it\n").unwrap();
    make_run(
        &root,
        "beta/task-9",
        "20260101-0000000000-1-4",
        RunStatus::Completed,
    );
    let server = serve_at(&sb, &root);

    let (code, body) = server.get_json("/api/v1/projects");
    assert_eq!(code, 200);
    assert_eq!(body["projects"][0]["project_id"], "alpha");
    assert_eq!(body["projects"][0]["task_count"], 2);
    assert_eq!(body["projects"][1]["project_id"], "beta");

    let (_, body) = server.get_json("/api/v1/projects/alpha/tasks");
    assert_eq!(body["tasks"][0]["status"], "failed");
    assert_eq!(body["tasks"][1]["status"], "done");

    let (_, body) = server.get_json("/api/v1/projects/alpha/tasks/task-2");
    assert_eq!(body["task_md"], "do it\n");
    assert_eq!(body["done"], true);
    assert_eq!(body["runs"][0]["status"], "completed");

    // Pagination newest first, two per page.
    let (_, page1) = server.get_json("/api/v1/runs?limit=2");
    let ids: Vec<&str> = page1["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["20260101-0000000000-1-4", "20260101-0000000000-1-3"]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = server.get_json(&format!("/api/v1/runs?limit=2&cursor={cursor}"));
    assert_eq!(page2["runs"].as_array().unwrap().len(), 2);
    assert_eq!(page2["next_cursor"], serde_json::Value::Null);
    let (_, failed) = server.get_json("/api/v1/runs?status=failed&project=alpha");
    assert_eq!(failed["runs"].as_array().unwrap().len(), 1);
    let (code, _) = server.get_json("/api/v1/runs?status=exploded");
    assert_eq!(code, 400);
    let (code, _) = server.get_json("/api/v1/runs?limit=0");
    assert_eq!(code, 400);

    let (code, run) = server.get_json("/api/v1/runs/20260101-0000000000-1-2");
    assert_eq!(code, 200);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["info"]["task_id"], "task-1");
    // Its neighbours within the task (task-1 has runs 1 and 2; run 3 is another task's).
    assert_eq!(run["previous_run"], "20260101-0000000000-1-1");
    assert_eq!(run["next_run"], serde_json::Value::Null);
    let (_, first) = server.get_json("/api/v1/runs/20260101-0000000000-1-1");
    assert_eq!(first["previous_run"], serde_json::Value::Null);
    assert_eq!(first["next_run"], "20260101-0000000000-1-2");
    let (code, yaml) = http_get(&format!(
        "{}/api/v1/runs/20260101-0000000000-1-2?format=yaml",
        server.base
    ))
    .unwrap();
    assert_eq!(code, 200);
    assert!(
        yaml.starts_with("version: 1\nrun_id: 20260101-0000000000-1-2\n"),
        "{yaml}"
    );

    let url = format!(
        "{}/api/v1/runs/20260101-0000000000-1-2/files/stdout",
        server.base
    );
    assert_eq!(http_get(&url).unwrap(), (200, "0123456789".to_string()));
    let agent = crate::support::http_agent(None);
    let mut resp = agent.get(&url).header("Range", "bytes=2-4").call().unwrap();
    assert_eq!(resp.status().as_u16(), 206);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "234");
    let (code, _) = server.get_json("/api/v1/runs/20260101-0000000000-1-2/files/output");
    assert_eq!(code, 404);
    let (code, _) = server.get_json("/api/v1/runs/20260101-0000000000-1-2/files/passwd");
    assert_eq!(code, 400);
}

/// A completed run of agent type `agent` (selected as `name`) that started at `start`.
fn make_agent_run(root: &Path, r: &str, agent: &str, name: &str, start: &str) {
    let dir = root.join("p/t/runs").join(r);
    std::fs::create_dir_all(&dir).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339(start)
        .unwrap()
        .to_utc();
    let mut info = RunInfo::new_running(r, "p", "t", agent, start);
    info.agent_name = Some(name.to_string());
    info.status = RunStatus::Completed;
    info.exit_code = 0;
    info.end_time = start + chrono::Duration::seconds(5);
    info.write(&dir.join("run-info.yaml")).unwrap();
}

fn listed(server: &Server, query: &str) -> Vec<String> {
    let (code, body) = server.get_json(&format!("/api/v1/runs?{query}"));
    assert_eq!(code, 200, "{query}: {body}");
    run_ids(&body)
}

#[test]
fn runs_filter_by_agent_name_or_type_and_start_time() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let (r1, r2, r3) = (
        "20261201-0900000000-1-1",
        "20261202-0900000000-1-2",
        "20261203-0900000000-1-3",
    );
    make_agent_run(&root, r1, "command", "long", "2026-12-01T09:00:00Z");
    make_agent_run(&root, r2, "claude", "claude", "2026-12-02T09:00:00Z");
    make_agent_run(&root, r3, "command", "short", "2026-12-03T09:00:00Z");
    let server = serve_at(&sb, &root);

    assert_eq!(listed(&server, "agent=command"), [r3, r1]);
    assert_eq!(listed(&server, "agent=long"), [r1]);
    assert_eq!(listed(&server, "agent=claude"), [r2]);
    assert!(listed(&server, "agent=codex").is_empty());
    // since is inclusive, until exclusive, both on the start time.
    assert_eq!(listed(&server, "since=2026-12-02T09:00:00Z"), [r3, r2]);
    assert_eq!(listed(&server, "until=2026-12-02T09:00:00Z"), [r1]);
    assert_eq!(
        listed(
            &server,
            "since=2026-12-01T12:00:00%2B02:00&until=2026-12-03T00:00:00Z"
        ),
        [r2]
    );
    // Filters combine, and paging goes on after the filtered page.
    assert_eq!(
        listed(&server, "agent=command&since=2026-12-02T00:00:00Z"),
        [r3]
    );
    let (_, page) = server.get_json("/api/v1/runs?agent=command&limit=1");
    assert_eq!(page["next_cursor"], r3);
    assert_eq!(
        listed(&server, &format!("agent=command&limit=1&cursor={r3}")),
        [r1]
    );

    for (query, names) in [
        ("since=yesterday", "since"),
        ("until=2026-12-01", "until"),
        (
            "since=2026-12-03T00:00:00Z&until=2026-12-01T00:00:00Z",
            "since must be before until",
        ),
        ("agent=", "agent"),
        ("agent=%01x", "agent"),
    ] {
        let (code, body) = server.get_json(&format!("/api/v1/runs?{query}"));
        assert_eq!(code, 400, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{query}: {body}");
    }
}

#[test]
fn hostile_path_parameters_are_rejected() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    make_run(&root, "alpha/task-1", "r1", RunStatus::Completed);
    // A project and a run dir that are symlinks pointing outside the root.
    let outside = sb.path().join("outside");
    make_run(&outside, "secret/task-1", "r2", RunStatus::Completed);
    std::os::unix::fs::symlink(outside.join("secret"), root.join("secret")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("secret/task-1/runs/r2"),
        root.join("alpha/task-1/runs/r3"),
    )
    .unwrap();
    let server = serve_at(&sb, &root);
    // Activity in the symlink targets must not pull them into the index either.
    RunInfo::read(&outside.join("secret/task-1/runs/r2/run-info.yaml"))
        .unwrap()
        .write(&outside.join("secret/task-1/runs/r2/run-info.yaml"))
        .unwrap();
    std::fs::write(
        outside.join("secret/task-1/runs/r2/agent-stdout.txt"),
        "0123456789!",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    for path in [
        "/api/v1/projects/..%2F..%2Fetc/tasks",
        "/api/v1/projects/%2e%2e/tasks",
        "/api/v1/projects/alpha/tasks/..",
        "/api/v1/projects/alpha/tasks/%2e%2e",
        "/api/v1/projects/alpha/tasks/a%5Cb",
        "/api/v1/projects/alpha/tasks/a%00b",
        "/api/v1/projects/%2Fetc/tasks",
        "/api/v1/runs/..%2F..%2Fpasswd",
        "/api/v1/runs/%2e%2e/files/stdout",
        "/api/v1/runs/r1/files/..%2F..%2Frun-info.yaml",
        "/api/v1/projects/secret/tasks",
        "/api/v1/projects/secret/tasks/task-1",
        "/api/v1/runs/r2",
        "/api/v1/runs/r3",
        "/api/v1/runs/r3/files/stdout",
    ] {
        let (code, body) = http_get(&format!("{}{path}", server.base)).unwrap();
        assert!(
            code == 400 || code == 403 || code == 404,
            "{path}: {code} {body}"
        );
        assert!(!body.contains("0123456789"), "{path} leaked a file: {body}");
    }
    let (_, projects) = server.get_json("/api/v1/projects");
    assert_eq!(projects["projects"].as_array().unwrap().len(), 1);

    // Every route with a path parameter, read and write, with hostile values.
    let before = snapshot(&outside);
    let agent = crate::support::http_agent(Some(std::time::Duration::from_secs(10)));
    let bad_projects = [
        "..",
        "%2e%2e",
        "..%2F..%2Ftmp",
        "a%5Cb",
        "a%00b",
        "%2Ftmp",
        "secret",
    ];
    let bad_tasks = ["..", "%2e%2e", "..%2Fx", "a%5Cb", "a%00b", "%2Fetc"];
    let mut paths: Vec<(&str, String)> = Vec::new();
    for p in bad_projects {
        paths.push(("GET", format!("/api/v1/projects/{p}/bus")));
        paths.push(("POST", format!("/api/v1/projects/{p}/bus")));
        paths.push(("GET", format!("/api/v1/projects/{p}/bus/stream")));
        paths.push(("POST", format!("/api/v1/projects/{p}/tasks/task-1/stop")));
        paths.push(("POST", format!("/api/v1/projects/{p}/tasks/task-1/resume")));
        paths.push(("DELETE", format!("/api/v1/projects/{p}/tasks/task-1")));
    }
    for t in bad_tasks {
        paths.push(("GET", format!("/api/v1/projects/alpha/tasks/{t}/bus")));
        paths.push(("POST", format!("/api/v1/projects/alpha/tasks/{t}/bus")));
        paths.push((
            "GET",
            format!("/api/v1/projects/alpha/tasks/{t}/bus/stream"),
        ));
        paths.push(("POST", format!("/api/v1/projects/alpha/tasks/{t}/stop")));
        paths.push(("POST", format!("/api/v1/projects/alpha/tasks/{t}/resume")));
        paths.push(("DELETE", format!("/api/v1/projects/alpha/tasks/{t}")));
        paths.push(("POST", format!("/api/v1/runs/{t}/stop")));
        paths.push(("GET", format!("/api/v1/runs/{t}/stream")));
    }
    paths.push(("POST", "/api/v1/runs/r2/stop".to_string()));
    paths.push(("GET", "/api/v1/runs/r3/stream".to_string()));
    for (method, path) in &paths {
        let url = format!("{}{path}", server.base);
        let resp = match *method {
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            _ => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send("{\"type\":\"FACT\",\"body\":\"x\"}"),
        }
        .unwrap();
        let code = resp.status().as_u16();
        assert!(
            code == 400 || code == 403 || code == 404,
            "{method} {path}: {code}"
        );
    }
    assert_eq!(
        snapshot(&outside),
        before,
        "something outside the root changed"
    );
    assert!(root.join("alpha/task-1/runs/r1/run-info.yaml").exists());
}

/// Every file under `dir` with its contents (symlinks not followed).
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let ty = entry.file_type().unwrap();
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() {
                out.push((entry.path(), std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn index_follows_runs_created_and_deleted_after_start() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    make_run(
        &root,
        "alpha/task-1",
        "20260101-0000000000-1-1",
        RunStatus::Completed,
    );
    let server = serve_at(&sb, &root);
    let count = |server: &Server| {
        server.get_json("/api/v1/runs").1["runs"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(&server), 1);
    make_run(
        &root,
        "alpha/task-2",
        "20260101-0000000000-1-2",
        RunStatus::Failed,
    );
    let wait = |want: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while count(&server) != want {
            assert!(
                std::time::Instant::now() < deadline,
                "index never reached {want} runs"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait(2);
    let (_, run) = server.get_json("/api/v1/runs/20260101-0000000000-1-2");
    assert_eq!(run["status"], "failed");
    std::fs::remove_dir_all(root.join("alpha/task-2")).unwrap();
    wait(1);
}
