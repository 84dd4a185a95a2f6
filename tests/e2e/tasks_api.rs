//! Starting and controlling tasks through the API with a fake `command` agent: sync-then-async
//! `POST /api/v1/tasks`, project creation, stop, delete, and read-only servers.

use std::path::Path;
use std::time::Duration;

use crate::support::{wait_until, Sandbox, Server};

use crate::support::FAKE_AGENT;

fn agent() -> ureq::Agent {
    crate::support::http_agent(Some(Duration::from_secs(60)))
}

fn post(server: &Server, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    server.post_json_with(&agent(), path, body)
}

/// Starts task `task` of project `demo` (prompt `x`), which must answer 201; its run id.
fn start_task(server: &Server, task: &str) -> String {
    let (code, body) = post(
        server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": task, "prompt": "x"}),
    );
    assert_eq!(code, 201, "{body}");
    body["run_id"].as_str().unwrap().to_string()
}

/// A server whose config has a `command` agent `script` running the fake agent; `env` is
/// given to the server (and so to its agents).
fn start(sb: &Sandbox, env: &[(&str, &str)], extra_args: &[&str]) -> Server {
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 2\n"
        ),
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(&config)
        .args(extra_args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::start(cmd, sb.path())
}

#[test]
fn start_task_and_wait_for_its_result() {
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &[
            ("FAKE_DONE_AFTER", "1"),
            ("FAKE_WRITE_OUTPUT", "the answer"),
        ],
        &[],
    );
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "task-1", "prompt": "answer", "wait_seconds": 60}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["outcome"], "done");
    assert_eq!(body["output"], "the answer\n");
    let run_id = body["run_id"].as_str().unwrap();
    let (_, run) = server.get_json(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(run["status"], "completed");
    let (_, task) = server.get_json("/api/v1/projects/demo/tasks/task-1");
    assert_eq!(task["status"], "done");
    assert_eq!(task["task_md"], "answer\n");
}

#[test]
fn start_without_wait_answers_201_and_slow_task_answers_202() {
    let sb = Sandbox::new();
    let server = start(&sb, &[("FAKE_SLEEP", "2"), ("FAKE_DONE_AFTER", "1")], &[]);
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "prompt": "slow work"}),
    );
    assert_eq!(code, 201, "{body}");
    assert!(body["run_id"].is_string(), "{body}");
    let task_id = body["task_id"].as_str().unwrap().to_string();
    assert!(
        task_id.starts_with("task-") && task_id.ends_with("-slow-work"),
        "{task_id}"
    );
    // Starting the same task again while it runs is a conflict.
    let (code, _) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": task_id, "prompt": "again"}),
    );
    assert_eq!(code, 409);
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "task-2", "prompt": "x", "wait_seconds": 1}),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["status_url"], "/api/v1/projects/demo/tasks/task-2");
}

#[test]
fn bad_task_requests_are_rejected() {
    let sb = Sandbox::new();
    let server = start(&sb, &[], &[]);
    for (body, want) in [
        (
            serde_json::json!({"project_id": "demo", "prompt": "x", "bogus": 1}),
            "bogus",
        ),
        (
            serde_json::json!({"project_id": "../x", "prompt": "x"}),
            "project_id",
        ),
        (
            serde_json::json!({"project_id": "demo", "task_id": "a/b", "prompt": "x"}),
            "task_id",
        ),
        (
            serde_json::json!({"project_id": "demo", "prompt": "  "}),
            "prompt",
        ),
        (
            serde_json::json!({"project_id": "demo", "prompt": "x", "agent": "nope"}),
            "nope",
        ),
    ] {
        let (code, resp) = post(&server, "/api/v1/tasks", body.clone());
        assert_eq!(code, 400, "{body}: {resp}");
        assert!(
            resp["error"]["message"].as_str().unwrap().contains(want),
            "{resp}"
        );
    }
    assert!(!sb.path().join("x").exists());
}

#[test]
fn read_only_server_refuses_task_start() {
    let sb = Sandbox::new();
    let server = start(&sb, &[], &["--disable-task-start"]);
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "prompt": "x"}),
    );
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "task_start_disabled");
}

#[test]
fn create_project_then_runs_use_its_directory() {
    let sb = Sandbox::new();
    let workdir = sb.path().join("repo");
    std::fs::create_dir_all(&workdir).unwrap();
    let pwd_file = sb.path().join("pwd.txt");
    let server = start(
        &sb,
        &[
            ("FAKE_DONE_AFTER", "1"),
            ("FAKE_ENV_DUMP", pwd_file.to_str().unwrap()),
        ],
        &[],
    );
    let (code, body) = post(
        &server,
        "/api/v1/projects",
        serde_json::json!({"project_id": "web", "project_root": workdir}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, _) = post(
        &server,
        "/api/v1/projects",
        serde_json::json!({"project_id": "web", "project_root": workdir}),
    );
    assert_eq!(code, 409);
    let (code, _) = post(
        &server,
        "/api/v1/projects",
        serde_json::json!({"project_id": "other", "project_root": sb.path().join("missing")}),
    );
    assert_eq!(code, 400);
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "web", "task_id": "t1", "prompt": "x", "wait_seconds": 60}),
    );
    assert_eq!(code, 200, "{body}");
    let env = std::fs::read_to_string(&pwd_file).unwrap();
    assert!(
        env.lines()
            .any(|l| l == format!("PWD={}", workdir.display())),
        "agent did not run in the project root: {env}"
    );
}

#[test]
fn agents_and_their_child_runs_know_the_server_url_and_config() {
    let sb = Sandbox::new();
    let env_file = sb.path().join("env.txt");
    let server = start(
        &sb,
        &[
            ("FAKE_DONE_AFTER", "1"),
            ("FAKE_ENV_DUMP", env_file.to_str().unwrap()),
            ("FAKE_SPAWN_CHILD", "script"),
        ],
        &[],
    );
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        // A caller's JRUN_* cannot replace the server's own.
        serde_json::json!({"project_id": "demo", "task_id": "t1", "prompt": "x", "wait_seconds": 60,
                           "env": {"JRUN_CONDUCTOR_URL": "http://evil.example",
                                   "CONDUCTOR_CONFIG": "/nonexistent/config.yaml"}}),
    );
    assert_eq!(code, 200, "{body}");
    // The dump is the child's: the agent started `run-agent job --agent script`, which only
    // works when the child knows the server's config (where `script` is defined).
    let env = std::fs::read_to_string(&env_file).unwrap();
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    assert!(
        var("JRUN_PARENT_ID").is_some_and(|p| !p.is_empty()),
        "{env}"
    );
    assert_eq!(
        var("JRUN_CONDUCTOR_URL"),
        Some(server.base.clone()),
        "{env}"
    );
    let (_, task) = server.get_json("/api/v1/projects/demo/tasks/t1");
    let runs = task["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{task}");
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{task}");
    let run_id = runs
        .iter()
        .find(|r| r["info"]["parent_run_id"].is_null())
        .unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let prompt = crate::support::http_get(&format!(
        "{}/api/v1/runs/{run_id}/files/prompt",
        server.base
    ))
    .unwrap()
    .1;
    assert!(
        prompt.contains(&format!("JRUN_CONDUCTOR_URL={}", server.base)),
        "{prompt}"
    );
}

#[test]
fn stop_then_delete_a_task() {
    let sb = Sandbox::new();
    let server = start(&sb, &[("FAKE_SLEEP", "30")], &[]);
    let run_id = start_task(&server, "long");
    let del = agent()
        .delete(&format!("{}/api/v1/projects/demo/tasks/long", server.base))
        .call()
        .unwrap();
    assert_eq!(del.status().as_u16(), 409);
    let (code, body) = post(
        &server,
        "/api/v1/projects/demo/tasks/long/stop",
        serde_json::json!({}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["stopped_runs"][0], run_id.as_str());
    let (_, run) = server.get_json(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(run["status"], "stopped");
    // The loop notices the stop and ends without restarting; then the task can be deleted.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let del = agent()
            .delete(&format!("{}/api/v1/projects/demo/tasks/long", server.base))
            .call()
            .unwrap();
        if del.status().as_u16() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task never became deletable"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!Path::new(&sb.path().join("root/demo/long")).exists());
    let runs = std::fs::read_dir(sb.path().join("root/demo"))
        .unwrap()
        .count();
    assert_eq!(runs, 0);
}

fn runs_of(root: &Path, project: &str, task: &str) -> Vec<conductor::storage::RunInfo> {
    crate::support::run_infos(&root.join(project).join(task).join("runs"))
}

/// How long a wait may take before the test fails.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn resume_continues_the_chain_and_respects_done() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let server = start(&sb, &[("FAKE_DONE_AFTER", "2")], &[]);
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "t", "prompt": "x", "max_restarts": 0, "wait_seconds": 60}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["outcome"], "gave_up");
    let (code, body) = post(
        &server,
        "/api/v1/projects/demo/tasks/t/resume",
        serde_json::json!({}),
    );
    assert_eq!(code, 202, "{body}");
    wait_until("DONE", WAIT_LIMIT, || root.join("demo/t/DONE").exists());
    wait_until("the loop to end", WAIT_LIMIT, || {
        let (_, t) = server.get_json("/api/v1/projects/demo/tasks/t");
        t["status"] == "done"
            && runs_of(&root, "demo", "t")
                .iter()
                .all(|r| r.status != conductor::storage::RunStatus::Running)
    });
    let runs = runs_of(&root, "demo", "t");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[1].previous_run_id.as_deref(),
        Some(runs[0].run_id.as_str())
    );
    // A done task resumes only when asked to reset DONE.
    std::thread::sleep(Duration::from_millis(300));
    let (code, _) = post(
        &server,
        "/api/v1/projects/demo/tasks/t/resume",
        serde_json::json!({}),
    );
    assert_eq!(code, 409);
    let (code, _) = post(
        &server,
        "/api/v1/projects/demo/tasks/nope/resume",
        serde_json::json!({}),
    );
    assert_eq!(code, 404);
}

#[test]
fn a_restarted_server_resumes_its_unfinished_task_loops() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let env = [("FAKE_SLEEP", "2"), ("FAKE_DONE_AFTER", "2")];
    let server = start(&sb, &env, &[]);
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "t", "prompt": "x", "max_restarts": 3}),
    );
    assert_eq!(code, 201, "{body}");
    // The server dies while the first run is in progress; the run's supervisor keeps it.
    drop(server);
    let second = start(&sb, &env, &[]);
    wait_until("DONE after the resumed loop", WAIT_LIMIT, || {
        root.join("demo/t/DONE").exists()
    });
    wait_until("all runs to end", WAIT_LIMIT, || {
        runs_of(&root, "demo", "t")
            .iter()
            .all(|r| r.status != conductor::storage::RunStatus::Running)
    });
    let runs = runs_of(&root, "demo", "t");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].status, conductor::storage::RunStatus::Completed);
    assert_eq!(runs[0].exit_code, 0);
    assert_eq!(
        runs[1].previous_run_id.as_deref(),
        Some(runs[0].run_id.as_str())
    );
    wait_until("the loop record to be removed", WAIT_LIMIT, || {
        std::fs::read_dir(root.join(".conductor/task-loops"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    });
    drop(second);
}

#[test]
fn reference_task_routes_list_show_and_stop() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let server = start(&sb, &[("FAKE_SLEEP", "30")], &[]);
    let run_id = start_task(&server, "long");
    let (code, list) = server.get_json("/api/v1/tasks?project_id=demo");
    assert_eq!(code, 200);
    assert_eq!(list["tasks"][0]["task_id"], "long");
    assert_eq!(list["tasks"][0]["status"], "running");
    let (code, task) = server.get_json("/api/v1/tasks/long");
    assert_eq!(code, 200, "{task}");
    assert_eq!(task["project_id"], "demo");
    assert_eq!(task["runs"][0]["run_id"], run_id.as_str());
    assert_eq!(server.get_json("/api/v1/tasks/nope").0, 404);
    assert_eq!(server.get_json("/api/v1/tasks/long?project_id=nope").0, 404);
    // DELETE stops the task as the reference does: DONE first, then the runs.
    let resp = agent()
        .delete(&format!(
            "{}/api/v1/tasks/long?project_id=demo",
            server.base
        ))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    assert!(root.join("demo/long/DONE").exists());
    let (_, run) = server.get_json(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(run["status"], "stopped");
}

#[test]
fn stop_with_a_grace_period_kills_a_run_that_ignores_sigterm() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    // The fake agent writes `ready` once it ignores SIGTERM (then it sleeps).
    let ready = sb.path().join("ready");
    let server = start(
        &sb,
        &[
            ("FAKE_SLEEP", "60"),
            ("FAKE_IGNORE_TERM", "1"),
            ("FAKE_GRANDCHILD", ready.to_str().unwrap()),
        ],
        &[],
    );
    let start_task = |task: &str| {
        let _ = std::fs::remove_file(&ready);
        let (code, body) = post(
            &server,
            "/api/v1/tasks",
            serde_json::json!({"project_id": "demo", "task_id": task, "prompt": "x"}),
        );
        assert_eq!(code, 201, "{body}");
        wait_until("the agent to ignore SIGTERM", WAIT_LIMIT, || ready.exists());
        body["run_id"].as_str().unwrap().to_string()
    };
    let run_id = start_task("stubborn");
    // Bad grace periods are refused before anything is stopped.
    for bad in [
        serde_json::json!({"grace_seconds": 3601}),
        serde_json::json!({"grace_seconds": -1}),
        serde_json::json!({"grace_seconds": "1"}),
        serde_json::json!({"grace": 1}),
    ] {
        for path in [
            "/api/v1/projects/demo/tasks/stubborn/stop".to_string(),
            format!("/api/v1/runs/{run_id}/stop"),
        ] {
            let (code, body) = post(&server, &path, bad.clone());
            assert_eq!(code, 400, "{path} {bad}: {body}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains("grace"),
                "{body}"
            );
        }
    }
    let (_, run) = server.get_json(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(run["status"], "running");
    // The agent (a shell and its `sleep`s) ignores SIGTERM: SIGKILL after 1 s ends it.
    let (code, body) = post(
        &server,
        "/api/v1/projects/demo/tasks/stubborn/stop",
        serde_json::json!({"grace_seconds": 1}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["stopped_runs"][0], run_id.as_str(), "{body}");
    let (_, run) = server.get_json(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(run["status"], "stopped", "{run}");
    // Killed by SIGKILL (128 + 9), not ended by the SIGTERM it ignored.
    assert_eq!(run["info"]["exit_code"], 137, "{run}");
    wait_until("the loop to end", WAIT_LIMIT, || {
        let (_, t) = server.get_json("/api/v1/projects/demo/tasks/stubborn");
        runs_of(&root, "demo", "stubborn").len() == 1 && t["status"] == "stopped"
    });

    // The run route takes the same body.
    let run_id = start_task("stubborn-2");
    let (code, body) = post(
        &server,
        &format!("/api/v1/runs/{run_id}/stop"),
        serde_json::json!({"grace_seconds": 0}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "stopped", "{body}");
    let (_, run) = server.get_json(&format!("/api/v1/runs/{run_id}"));
    assert_eq!(run["info"]["exit_code"], 137, "{run}");
}

#[test]
fn stop_routes_accept_an_empty_body() {
    let sb = Sandbox::new();
    let server = start(&sb, &[("FAKE_SLEEP", "60")], &[]);
    let run_id = start_task(&server, "t");
    let empty = |path: &str| {
        let mut resp = agent()
            .post(&format!("{}{path}", server.base))
            .header("Content-Type", "application/json")
            .send_empty()
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        )
    };
    let (code, body) = empty(&format!("/api/v1/runs/{run_id}/stop"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "stopped");
    let (code, body) = empty("/api/v1/projects/demo/tasks/t/stop");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["stopped_runs"], serde_json::json!([]));
}

#[test]
fn depends_on_blocks_an_api_task_until_its_dependencies_are_done() {
    let sb = Sandbox::new();
    let server = start(&sb, &[("FAKE_DONE_AFTER", "1")], &[]);
    let base = sb.path().join("root/demo/base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("TASK.md"), "the base\n").unwrap();

    let start_after = |deps: serde_json::Value| {
        post(
            &server,
            "/api/v1/tasks",
            serde_json::json!({"project_id": "demo", "task_id": "after", "prompt": "after", "depends_on": deps}),
        )
    };
    // Bad lists are refused before anything runs, naming the field.
    for (deps, says) in [
        (serde_json::json!(["missing"]), "does not exist"),
        (serde_json::json!(["../x"]), "depends_on"),
        (serde_json::json!(["after"]), "itself"),
    ] {
        let (code, body) = start_after(deps.clone());
        assert_eq!(code, 400, "{deps}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("depends_on") && message.contains(says),
            "{deps}: {body}"
        );
    }

    let (code, body) = start_after(serde_json::json!(["base"]));
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"], "blocked", "{body}");
    assert!(body["run_id"].is_null(), "{body}");
    let (_, task) = server.get_json("/api/v1/projects/demo/tasks/after");
    assert_eq!(task["status"], "blocked", "{task}");
    assert_eq!(task["depends_on"], serde_json::json!(["base"]), "{task}");
    assert_eq!(task["blocked_by"], serde_json::json!(["base"]), "{task}");
    let (_, list) = server.get_json("/api/v1/projects/demo/tasks");
    let listed = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == "after")
        .cloned()
        .unwrap();
    assert_eq!(listed["status"], "blocked", "{list}");
    let config = std::fs::read_to_string(sb.path().join("root/demo/after/TASK-CONFIG.yaml"))
        .expect("depends_on is saved in TASK-CONFIG.yaml");
    assert!(config.contains("base"), "{config}");
    // The reverse edge would close a cycle.
    let (code, body) = post(
        &server,
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "base", "prompt": "b", "depends_on": ["after"]}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("cycle"),
        "{body}"
    );
    // Nothing ran while blocked.
    assert!(
        !sb.path().join("root/demo/after/runs").exists()
            || std::fs::read_dir(sb.path().join("root/demo/after/runs"))
                .unwrap()
                .next()
                .is_none()
    );

    std::fs::write(base.join("DONE"), "").unwrap();
    crate::support::wait_until(
        "the unblocked task to finish",
        Duration::from_secs(60),
        || server.get_json("/api/v1/projects/demo/tasks/after").1["status"] == "done",
    );
    let bus =
        std::fs::read_to_string(sb.path().join("root/demo/after/TASK-MESSAGE-BUS.md")).unwrap();
    assert!(bus.contains("task blocked by dependencies: base"), "{bus}");
    assert!(bus.contains("dependencies satisfied"), "{bus}");
}
