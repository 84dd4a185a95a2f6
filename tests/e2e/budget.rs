//! Task budgets: `--max-cost` / `--max-tokens` (saved in TASK-CONFIG.yaml), checked on every
//! usage update of every run of the task (child runs included): the running agents get the
//! graceful stop, the loop does not restart, the bus, `status` and a `budget_exceeded` webhook
//! event say so with the figures; a resume with a higher budget continues.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use conductor::storage::RunStatus;

use crate::support::{run, run_infos, text, Sandbox};
use crate::usage::{world, CLAUDE_RESULT, CLAUDE_TURNS};

/// `run-agent task|task resume` of `p/<task>` with the fake claude, the sandbox config plus
/// `webhook_port` as its webhook, and the fake's `env`.
fn loop_cmd(sb: &Sandbox, sub: &[&str], task: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = sb.run_agent_with_fake_clis();
    cmd.args(sub)
        .args(["--project", "p", "--task", task, "--agent", "claude"])
        .args(["--restart-delay", "100ms", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(sb.path().join("config.yaml"))
        .envs(env.iter().copied());
    run(&mut cmd)
}

fn task_dir(sb: &Sandbox, task: &str) -> PathBuf {
    sb.path().join("root/p").join(task)
}

fn bus(sb: &Sandbox, task: &str) -> String {
    std::fs::read_to_string(task_dir(sb, task).join("TASK-MESSAGE-BUS.md")).unwrap_or_default()
}

fn with_webhook(sb: &Sandbox, port: u16) {
    let config = std::fs::read_to_string(sb.path().join("config.yaml")).unwrap();
    sb.write(
        "config.yaml",
        &format!(
            "{config}webhook:\n  url: http://127.0.0.1:{port}/hook\n  events: [budget_exceeded]\n"
        ),
    );
}

#[test]
fn a_budget_smaller_than_one_run_stops_it_mid_run_and_a_higher_one_resumes() {
    let sb = world();
    let (port, hooks) = crate::webhook::receiver();
    with_webhook(&sb, port);
    let never = sb.path().join("never-released");
    let never = never.to_str().unwrap();
    // The turns cost $0.2058 by the config's price; the agent would then run forever.
    let out = loop_cmd(
        &sb,
        &["task", "--prompt", "work", "--max-cost", "0.05"],
        "b",
        &[("FAKE_STDOUT", CLAUDE_TURNS), ("FAKE_TICK_UNTIL", never)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("status: budget exceeded"), "{stdout}");
    assert!(
        stdout.contains("error: budget exceeded: cost $0.2058 of max $0.05"),
        "{stdout}"
    );
    let runs = run_infos(&task_dir(&sb, "b").join("runs"));
    assert_eq!(runs.len(), 1, "the loop restarted: {runs:?}");
    assert_eq!(runs[0].status, RunStatus::Stopped);
    assert!(
        runs[0]
            .error_summary
            .as_deref()
            .is_some_and(|s| s.starts_with("budget exceeded: cost $0.2058")),
        "{:?}",
        runs[0]
    );
    let config = std::fs::read_to_string(task_dir(&sb, "b").join("TASK-CONFIG.yaml")).unwrap();
    assert!(config.contains("max_cost_usd: 0.05"), "{config}");
    let bus_text = bus(&sb, "b");
    assert!(
        bus_text.contains("budget exceeded: cost $0.2058 of max $0.05; stopping the task"),
        "{bus_text}"
    );
    assert!(bus_text.contains("not restarting"), "{bus_text}");
    let (headers, body) = hooks
        .recv_timeout(Duration::from_secs(30))
        .expect("budget_exceeded webhook");
    assert!(
        headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("x-conductor-event: budget_exceeded")),
        "{headers:?}"
    );
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], "budget_exceeded");
    assert_eq!(event["budget"]["max_cost_usd"], 0.05, "{event}");
    let status = run(sb
        .run_agent()
        .args(["status", "--project", "p", "--task", "b", "--root"])
        .arg(sb.path().join("root")));
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains("budget: budget exceeded"), "{status}");

    // A resume keeps the saved budget: nothing runs.
    let out = loop_cmd(&sb, &["task", "resume"], "b", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(run_infos(&task_dir(&sb, "b").join("runs")).len(), 1);

    // A higher budget continues; this run finishes the task (and costs $0.2058 too).
    let out = loop_cmd(
        &sb,
        &["task", "resume", "--max-cost", "1"],
        "b",
        &[("FAKE_STDOUT", CLAUDE_TURNS), ("FAKE_DONE_AFTER", "1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let runs = run_infos(&task_dir(&sb, "b").join("runs"));
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].status, RunStatus::Completed);
    let config = std::fs::read_to_string(task_dir(&sb, "b").join("TASK-CONFIG.yaml")).unwrap();
    assert!(config.contains("max_cost_usd: 1"), "{config}");
    assert!(!task_dir(&sb, "b").join("BUDGET-EXCEEDED").exists());
}

#[test]
fn child_runs_count_toward_the_parent_tasks_budget() {
    let sb = world();
    let never = sb.path().join("never-released");
    let never = never.to_str().unwrap();
    // Each run reports $0.0123: the parent alone stays below $0.02, parent and child do not.
    let stream = format!("{CLAUDE_TURNS}\n{CLAUDE_RESULT}");
    let out = loop_cmd(
        &sb,
        &["task", "--prompt", "work", "--max-cost", "0.02"],
        "c",
        &[
            ("FAKE_STDOUT", &stream),
            ("FAKE_SPAWN_CHILD", "claude"),
            ("FAKE_TICK_UNTIL", never),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("status: budget exceeded"),
        "{}",
        text(&out)
    );
    let runs = run_infos(&task_dir(&sb, "c").join("runs"));
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.status.is_terminal()), "{runs:?}");
    let bus_text = bus(&sb, "c");
    assert!(
        bus_text.contains("budget exceeded: cost $0.0246 of max $0.02"),
        "{bus_text}"
    );
}

#[test]
fn token_budgets_and_bad_figures() {
    let sb = world();
    let out = loop_cmd(
        &sb,
        &["task", "--prompt", "work", "--max-cost", "0"],
        "bad",
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--max-cost"), "{}", text(&out));
    let out = loop_cmd(
        &sb,
        &["task", "--prompt", "work", "--max-tokens", "0"],
        "bad",
        &[],
    );
    assert!(text(&out).contains("--max-tokens"), "{}", text(&out));
    assert!(!task_dir(&sb, "bad").join("runs").exists());
    // 2058 tokens per run: a 3000-token budget allows one run, not a second.
    let out = loop_cmd(
        &sb,
        &["task", "--prompt", "work", "--max-tokens", "3000"],
        "tok",
        &[("FAKE_STDOUT", CLAUDE_TURNS), ("FAKE_EXIT", "1")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let runs = run_infos(&task_dir(&sb, "tok").join("runs"));
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("error: budget exceeded: tokens 4116 of max 3000"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_api_takes_a_budget_and_a_resume_raises_it() {
    let sb = world();
    let never = sb.path().join("never-released");
    let mut cmd = sb.serve_with_fake_clis();
    cmd.arg("--config")
        .arg(sb.path().join("config.yaml"))
        .env("FAKE_STDOUT", CLAUDE_TURNS)
        .env("FAKE_TICK_UNTIL", &never);
    let server = crate::support::Server::start(cmd, sb.path());
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({"project_id": "p", "task_id": "api", "prompt": "x",
                           "agent": "claude", "max_cost_usd": -1}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("max_cost_usd"), "{body}");
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({"project_id": "p", "task_id": "api", "prompt": "x",
                           "agent": "claude", "max_cost_usd": 0.05, "wait_seconds": 60}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["outcome"], "budget_exceeded", "{body}");
    let (_, view) = server.get_json("/api/v1/projects/p/tasks/api");
    assert!(
        view["budget_exceeded"]
            .as_str()
            .is_some_and(|s| s.starts_with("budget exceeded: cost $0.2058")),
        "{view}"
    );
    assert!(view["usage"]["cost_usd"].as_f64().unwrap() > 0.2, "{view}");
    let (code, body) = server.post_json(
        "/api/v1/projects/p/tasks/api/resume",
        serde_json::json!({"max_cost_usd": 100}),
    );
    assert_eq!(code, 202, "{body}");
    let config = task_dir(&sb, "api").join("TASK-CONFIG.yaml");
    crate::support::wait_until("the raised budget", Duration::from_secs(30), || {
        std::fs::read_to_string(&config).is_ok_and(|t| t.contains("max_cost_usd: 100"))
    });
    crate::support::wait_until("the resumed run", Duration::from_secs(60), || {
        run_infos(&task_dir(&sb, "api").join("runs")).len() == 2
    });
    std::fs::write(&never, "").unwrap();
    server.terminate();
}

/// The loop, not a supervisor, finds the budget passed: runs made without a budget, then a
/// resume with one smaller than what they cost. Nothing runs, and the bus and the webhook
/// still say why, naming the newest run.
#[test]
fn a_budget_found_passed_by_the_loop_is_reported_with_its_webhook() {
    let sb = world();
    let (port, hooks) = crate::webhook::receiver();
    with_webhook(&sb, port);
    // One run costing $0.2058 that ends without DONE; no budget yet.
    let out = loop_cmd(
        &sb,
        &["task", "--prompt", "work", "--max-restarts", "0"],
        "late",
        &[("FAKE_STDOUT", CLAUDE_TURNS)],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let runs = run_infos(&task_dir(&sb, "late").join("runs"));
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(hooks.try_recv().is_err(), "no budget, no event");

    let out = loop_cmd(&sb, &["task", "resume", "--max-cost", "0.05"], "late", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(run_infos(&task_dir(&sb, "late").join("runs")).len(), 1);
    assert!(
        bus(&sb, "late").contains("budget exceeded: cost $0.2058 of max $0.05"),
        "{}",
        bus(&sb, "late")
    );
    let (_, body) = hooks
        .recv_timeout(Duration::from_secs(30))
        .expect("budget_exceeded webhook from the loop");
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], "budget_exceeded", "{event}");
    assert_eq!(event["run_id"], runs[0].run_id.as_str(), "{event}");
    assert_eq!(event["budget"]["max_cost_usd"], 0.05, "{event}");
}
