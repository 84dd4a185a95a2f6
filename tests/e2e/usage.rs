//! Usage and cost per run: the fake CLIs print each real CLI's usage events (shapes taken from
//! claude 2.x stream-json, `codex exec --json` and gemini stream-json), and run-info.yaml
//! gets the tokens and the cost — reported by the CLI, or estimated from the config's
//! `pricing` — while the run is live and at its end, also when a stop cuts the stream.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use conductor::storage::{CostSource, RunInfo, RunStatus, Usage};

use crate::support::{run, run_infos, text, wait_until, Sandbox};

const LIMIT: Duration = Duration::from_secs(60);

/// Two claude turns (the first split over two events repeating its usage).
pub const CLAUDE_TURNS: &str = r#"{"type":"system","subtype":"init","session_id":"c-1","model":"claude-sonnet-4-5-20250929"}
{"type":"assistant","message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"looking"}],"usage":{"input_tokens":3,"cache_creation_input_tokens":1000,"cache_read_input_tokens":0,"output_tokens":20}},"session_id":"c-1"}
{"type":"assistant","message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}],"usage":{"input_tokens":3,"cache_creation_input_tokens":1000,"cache_read_input_tokens":0,"output_tokens":20}},"session_id":"c-1"}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]},"session_id":"c-1"}
{"type":"assistant","message":{"id":"msg_2","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"done"}],"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":1000,"output_tokens":30}},"session_id":"c-1"}"#;

/// claude's closing event with the run's usage and its own cost.
pub const CLAUDE_RESULT: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":900,"num_turns":2,"result":"done","session_id":"c-1","total_cost_usd":0.0123,"usage":{"input_tokens":8,"cache_creation_input_tokens":1000,"cache_read_input_tokens":1000,"output_tokens":50},"modelUsage":{"claude-sonnet-4-5-20250929":{"inputTokens":8,"outputTokens":50,"cacheReadInputTokens":1000,"cacheCreationInputTokens":1000,"costUSD":0.0123}}}"#;

const CODEX_STREAM: &str = r#"{"type":"thread.started","thread_id":"th-1"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"first"}}
{"type":"turn.completed","usage":{"input_tokens":1200,"cached_input_tokens":1000,"output_tokens":300}}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"second"}}
{"type":"turn.completed","usage":{"input_tokens":800,"cached_input_tokens":0,"output_tokens":200}}"#;

const GEMINI_STREAM: &str = r#"{"type":"init","timestamp":"2026-01-01T00:00:00.000Z","session_id":"g-1","model":"auto"}
{"type":"message","timestamp":"2026-01-01T00:00:00.000Z","role":"assistant","content":"hi","delta":true}
{"type":"result","timestamp":"2026-01-01T00:00:01.000Z","status":"success","stats":{"total_tokens":140,"input_tokens":100,"output_tokens":40,"cached":60,"input":40,"duration_ms":1000,"tool_calls":0,"models":{"gemini-2.5-pro":{"total_tokens":140,"input_tokens":100,"output_tokens":40,"cached":60,"input":40}}}}"#;

pub(crate) fn world() -> Sandbox {
    let sb = Sandbox::new();
    sb.install_fake_clis(&["claude", "codex", "gemini"]);
    sb.write(
        "config.yaml",
        "pricing:\n  gpt-5: {input_per_mtok: 1.25, output_per_mtok: 10, cached_input_per_mtok: 0.125}\n  \
         gemini-2.5: {input_per_mtok: 1, output_per_mtok: 2}\n  \
         claude-sonnet-4-5: {input_per_mtok: 100, output_per_mtok: 100}\n",
    );
    // codex names its model in its own config, not in its stream.
    sb.write("codex-home/config.toml", "model = \"gpt-5\"\n");
    sb
}

fn job_cmd(sb: &Sandbox, task: &str, agent: &str, stdout: &str) -> std::process::Command {
    let mut cmd = sb.run_agent_with_fake_clis();
    cmd.args(["job", "--project", "p", "--task", task, "--agent", agent])
        .args(["--prompt", "work", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(sb.path().join("config.yaml"))
        .env("CODEX_HOME", sb.path().join("codex-home"))
        .env("FAKE_STDOUT", stdout);
    cmd
}

fn job(sb: &Sandbox, task: &str, agent: &str, stdout: &str) -> Output {
    run(&mut job_cmd(sb, task, agent, stdout))
}

fn runs_dir(sb: &Sandbox, task: &str) -> PathBuf {
    sb.path().join("root/p").join(task).join("runs")
}

fn only_run(sb: &Sandbox, task: &str) -> RunInfo {
    run_infos(&runs_dir(sb, task)).pop().expect("one run")
}

fn tokens(usage: &Usage) -> (u64, u64, u64) {
    (
        usage.input_tokens,
        usage.cached_input_tokens,
        usage.output_tokens,
    )
}

#[test]
fn each_clis_usage_and_cost_land_in_run_info() {
    let sb = world();
    let out = job(
        &sb,
        "t-claude",
        "claude",
        &format!("{CLAUDE_TURNS}\n{CLAUDE_RESULT}"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let usage = only_run(&sb, "t-claude").usage.expect("claude usage");
    assert_eq!(tokens(&usage), (2008, 1000, 50));
    assert_eq!(usage.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    // The reported cost wins over the config's (much higher) price.
    assert_eq!(usage.cost_usd, Some(0.0123));
    assert_eq!(usage.cost_source, Some(CostSource::Reported));

    let out = job(&sb, "t-codex", "codex", CODEX_STREAM);
    assert!(out.status.success(), "{}", text(&out));
    let usage = only_run(&sb, "t-codex").usage.expect("codex usage");
    assert_eq!(tokens(&usage), (2000, 1000, 500));
    assert_eq!(usage.model.as_deref(), Some("gpt-5"));
    assert_eq!(usage.cost_source, Some(CostSource::Estimated));
    // 1000 uncached × 1.25 + 1000 cached × 0.125 + 500 out × 10, per million.
    let cost = usage.cost_usd.expect("estimated cost");
    assert!((cost - 0.006375).abs() < 1e-9, "{cost}");

    let out = job(&sb, "t-gemini", "gemini", GEMINI_STREAM);
    assert!(out.status.success(), "{}", text(&out));
    let info = only_run(&sb, "t-gemini");
    let usage = info.usage.expect("gemini usage");
    assert_eq!(tokens(&usage), (100, 60, 40));
    assert_eq!(usage.model.as_deref(), Some("gemini-2.5-pro"));
    assert_eq!(usage.cost_source, Some(CostSource::Estimated));
    let yaml = std::fs::read_to_string(
        runs_dir(&sb, "t-gemini")
            .join(&info.run_id)
            .join("run-info.yaml"),
    )
    .unwrap();
    assert!(yaml.contains("\ninput_tokens: 100\n"), "{yaml}");
    assert!(yaml.contains("\ncost_source: estimated\n"), "{yaml}");

    // A stream without usage (or not JSON at all) records none and does not fail the run.
    let out = job(&sb, "t-none", "claude", "plain text, no events");
    assert!(out.status.success(), "{}", text(&out));
    let info = only_run(&sb, "t-none");
    assert_eq!(info.status, RunStatus::Completed);
    assert_eq!(info.usage, None);
}

/// Waits for `child` (a `run-agent job`) to exit, killing it after [`LIMIT`].
fn wait_child(mut child: Child) {
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("run-agent job did not end");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn live_usage(runs: &Path) -> Option<(RunStatus, Usage)> {
    let info = run_infos(runs).pop()?;
    Some((info.status, info.usage?))
}

#[test]
fn usage_is_recorded_while_the_run_is_live_and_kept_when_a_stop_cuts_the_stream() {
    let sb = world();
    let never = sb.path().join("never-released");
    let child = job_cmd(&sb, "t-live", "claude", CLAUDE_TURNS)
        .env("FAKE_TICK_UNTIL", &never)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start job");
    let runs = runs_dir(&sb, "t-live");
    wait_until("live usage in run-info", LIMIT, || {
        live_usage(&runs).is_some_and(|(status, _)| status == RunStatus::Running)
    });
    let (_, usage) = live_usage(&runs).unwrap();
    assert_eq!(tokens(&usage), (2008, 1000, 50));
    // No reported cost in the turns: the config's price estimates it.
    assert_eq!(usage.cost_source, Some(CostSource::Estimated));
    let out = run(sb
        .run_agent()
        .args(["stop", "--project", "p", "--task", "t-live", "--root"])
        .arg(sb.path().join("root")));
    assert!(out.status.success(), "{}", text(&out));
    wait_child(child);
    let info = only_run(&sb, "t-live");
    assert_eq!(info.status, RunStatus::Stopped);
    let usage = info.usage.expect("usage kept after the stop");
    assert_eq!(tokens(&usage), (2008, 1000, 50));
    let cost = usage.cost_usd.unwrap();
    assert!((cost - 0.2058).abs() < 1e-9, "{cost}");
}

/// A run of task `p/t-sum` whose claude agent starts a child run (same agent, same stream):
/// both runs report 2058 tokens and $0.0123, and every total counts the child.
fn parent_and_child(sb: &Sandbox) {
    let out = run(job_cmd(
        sb,
        "t-sum",
        "claude",
        &format!("{CLAUDE_TURNS}\n{CLAUDE_RESULT}"),
    )
    .env("FAKE_SPAWN_CHILD", "claude"));
    assert!(out.status.success(), "{}", text(&out));
    let runs = run_infos(&runs_dir(sb, "t-sum"));
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().any(|r| r.parent_run_id.is_some()), "{runs:?}");
    assert!(runs.iter().all(|r| r.usage.is_some()), "{runs:?}");
}

fn close(value: &serde_json::Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[test]
fn task_and_project_totals_count_child_runs_in_list_status_api_and_metrics() {
    let sb = world();
    parent_and_child(&sb);
    let cli = |args: &[&str]| {
        let out = run(sb
            .run_agent()
            .args(args)
            .arg("--root")
            .arg(sb.path().join("root")));
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list: serde_json::Value =
        serde_json::from_str(&cli(&["list", "--project", "p", "--json"])).unwrap();
    let project = &list["projects"][0];
    assert_eq!(project["usage"]["runs_with_usage"], 2, "{project}");
    assert_eq!(project["usage"]["total_tokens"], 4116, "{project}");
    assert!(close(&project["usage"]["cost_usd"], 0.0246), "{project}");
    let task = &project["tasks"][0];
    assert_eq!(task["usage"]["cached_input_tokens"], 2000, "{task}");
    assert_eq!(
        task["runs"][0]["usage"]["cost_source"], "reported",
        "{task}"
    );

    let table = cli(&["list", "--project", "p", "--task", "t-sum"]);
    assert!(table.contains("TOKENS_IN/OUT"), "{table}");
    assert!(table.contains("2008/50"), "{table}");
    assert!(table.contains("0.0123"), "{table}");
    assert!(
        table.contains("usage: 4116 tokens (input 4016, cached 2000, output 100), $0.0246"),
        "{table}"
    );
    // The project's task table: usage columns on request.
    let tasks = cli(&["list", "--project", "p", "--usage"]);
    let row = tasks
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("t-sum"))
        .unwrap_or_else(|| panic!("no t-sum row: {tasks}"));
    assert!(
        tasks.lines().next().unwrap().ends_with("TOKENS  COST"),
        "{tasks}"
    );
    assert!(row.ends_with("4116    $0.0246"), "{tasks}");
    assert!(!cli(&["list", "--project", "p"]).contains("TOKENS"));
    let status = cli(&["status", "--project", "p", "--task", "t-sum"]);
    assert!(status.contains("usage: 4116 tokens"), "{status}");
    let status: serde_json::Value = serde_json::from_str(&cli(&[
        "status",
        "--project",
        "p",
        "--task",
        "t-sum",
        "--json",
    ]))
    .unwrap();
    assert_eq!(status["usage"]["output_tokens"], 100, "{status}");

    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"));
    let server = crate::support::Server::start(cmd, sb.path());
    let mut ready = serde_json::Value::Null;
    wait_until("the index", LIMIT, || {
        let (code, body) = server.get_json("/api/v1/projects/p/tasks");
        ready = body;
        code == 200
    });
    let task = &ready["tasks"][0];
    assert_eq!(task["usage"]["total_tokens"], 4116, "{task}");
    assert!(close(&task["usage"]["cost_usd"], 0.0246), "{task}");
    let (_, projects) = server.get_json("/api/v1/projects");
    assert_eq!(
        projects["projects"][0]["usage"]["runs_with_usage"], 2,
        "{projects}"
    );
    let (_, view) = server.get_json("/api/v1/projects/p/tasks/t-sum?limit=1");
    assert_eq!(view["usage"]["runs_with_usage"], 2, "{view}");
    let (_, runs) = server.get_json("/api/v1/runs?project=p");
    let runs = runs["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r["usage"]["input_tokens"], 2008, "{r}");
        assert!(close(&r["usage"]["cost_usd"], 0.0123), "{r}");
    }
    let (code, metrics) = crate::support::http_get(&format!("{}/metrics", server.base)).unwrap();
    assert_eq!(code, 200);
    let labels = "agent=\"claude\",model=\"claude-sonnet-4-5-20250929\"";
    for line in [
        format!("conductor_tokens_total{{{labels},kind=\"input\"}} 4016"),
        format!("conductor_tokens_total{{{labels},kind=\"cached_input\"}} 2000"),
        format!("conductor_tokens_total{{{labels},kind=\"output\"}} 100"),
        format!("conductor_cost_usd_total{{{labels}}} 0.0246"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line}: {metrics}");
    }
    // A second scrape adds nothing: the counters count usage once.
    let (_, again) = crate::support::http_get(&format!("{}/metrics", server.base)).unwrap();
    assert!(again.contains(&format!(
        "conductor_tokens_total{{{labels},kind=\"output\"}} 100"
    )));
    server.terminate();
}

/// The visible text of the first element matching `css` ("" when there is none).
fn ui_text(b: &crate::browser::Browser, css: &str) -> String {
    b.try_execute(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
        &[serde_json::json!(css)],
    )
    .ok()
    .and_then(|v| v.as_str().map(str::to_owned))
    .unwrap_or_default()
}

fn ui_wait(b: &crate::browser::Browser, css: &str, wanted: &str) {
    b.wait_until(
        &format!("`{css}` shows `{wanted}`"),
        crate::browser::WAIT,
        |b| ui_text(b, css).contains(wanted),
    );
}

#[test]
fn the_ui_shows_a_runs_usage_the_task_total_with_its_chart_and_the_project_total() {
    let Some(b) = crate::browser::Browser::start() else {
        return;
    };
    let sb = world();
    parent_and_child(&sb);
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"));
    let server = crate::support::Server::start(cmd, sb.path());
    b.goto(&format!("{}/ui/#/projects/p/tasks/t-sum", server.base));
    ui_wait(&b, "#task-usage", "4,116 tokens · $0.0246");
    let bars = b.find_all("#task-usage-chart svg.usage-chart rect");
    assert_eq!(bars.len(), 2, "one bar per run");
    let run_id = run_infos(&runs_dir(&sb, "t-sum"))[0].run_id.clone();
    b.goto(&format!("{}/ui/#/runs/{run_id}", server.base));
    ui_wait(
        &b,
        "#run-usage",
        "2,008 in (1,000 cached) / 50 out · $0.0123 reported",
    );
    b.goto(&format!("{}/ui/#/projects/p", server.base));
    ui_wait(
        &b,
        "#project-usage",
        "Project total: 4,116 tokens · $0.0246",
    );
    ui_wait(&b, "#task-list td.cost", "$0.0246");
    b.goto(&format!("{}/ui/#/", server.base));
    ui_wait(&b, "#project-list td.usage", "4,116 tokens · $0.0246");
    server.terminate();
}
