//! The web UI under load, in a real headless Chromium: several tabs with live logs, a fast
//! writer, a large finished run, thousands of runs, and resume with the agent's name. Times
//! are measured inside the page (performance.now(), PerformanceObserver), not around WebDriver
//! calls, so a loaded machine does not add the driver's own latency. With
//! `CONDUCTOR_SCREENSHOTS=<dir>` the pages are also saved as PNGs (docs/images/ is made so).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use conductor::storage::{RunInfo, RunStatus};
use serde_json::{json, Value};

use crate::browser::{Browser, WAIT};
use crate::support::{serve_config, Sandbox, Server, FAKE_AGENT};

const LONG: Duration = Duration::from_secs(90);
/// The bound asserted for "within 1 s" figures (each is printed): three times the target, so a
/// loaded shared machine does not fail the suite while a hang or a real regression does.
const ONE_SECOND_TARGET_BOUND_MS: f64 = 3000.0;

fn root(sb: &Sandbox) -> PathBuf {
    sb.path().join("root")
}

/// Changes the fragment to `hash` and answers the milliseconds until every selector in `sel`
/// matches and one more frame was painted, measured in the page.
fn time_to(b: &Browser, hash: &str, sel: &[&str]) -> f64 {
    let ms = b.execute_async(
        r#"const [hash, sel, done] = arguments;
           const t0 = performance.now();
           location.hash = hash;
           const poll = () => {
             if (sel.every((s) => document.querySelector(s))) {
               requestAnimationFrame(() => done(performance.now() - t0));
             } else if (performance.now() - t0 > 25000) {
               done(-1);
             } else {
               setTimeout(poll, 5);
             }
           };
           poll();"#,
        &[json!(hash), json!(sel)],
    );
    let ms = ms.as_f64().unwrap_or(-1.0);
    assert!(ms >= 0.0, "{hash}: {sel:?} never appeared");
    ms
}

fn screenshot(b: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("CONDUCTOR_SCREENSHOTS") {
        std::thread::sleep(Duration::from_millis(300));
        b.screenshot(&Path::new(&dir).join(name));
    }
}

/// Writes `n` finished runs of `project/task` straight into the tree (every 7th failed).
fn write_runs(sb: &Sandbox, project: &str, task: &str, n: usize, first: usize) {
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
    for i in first..first + n {
        let id = format!("20261101-{:06}{:04}-1-{i}", 80000 + i / 10000, i % 10000);
        let dir = root(sb).join(project).join(task).join("runs").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let start = base + chrono::Duration::seconds(i as i64);
        let mut info = RunInfo::new_running(&id, project, task, "command", start);
        info.end_time = start + chrono::Duration::seconds(3);
        if i % 7 == 0 {
            info.status = RunStatus::Failed;
            info.exit_code = 1;
            info.error_summary = Some(format!("step {i} failed: exit code 1"));
        } else {
            info.status = RunStatus::Completed;
            info.exit_code = 0;
        }
        info.write(&dir.join("run-info.yaml")).unwrap();
    }
}

fn start_task(server: &Server, task: &str, agent: Option<&str>) -> String {
    let mut body = json!({"project_id": "demo", "task_id": task, "prompt": "work"});
    if let Some(agent) = agent {
        body["agent"] = json!(agent);
    }
    let (code, started) = server.post_json("/api/v1/tasks", body);
    assert_eq!(code, 201, "{started}");
    started["run_id"].as_str().unwrap().to_string()
}

fn wait_file(path: &Path) {
    let start = std::time::Instant::now();
    while !path.exists() && start.elapsed() < LONG {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn four_tabs_with_live_logs_leave_the_first_tab_responsive() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let never = sb.path().join("never").display().to_string();
    let server = serve_config(
        &sb,
        &format!("agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 0\n"),
        &[("FAKE_TICK_UNTIL", &never)],
    );
    let runs: Vec<String> = (1..=4)
        .map(|i| start_task(&server, &format!("t{i}"), None))
        .collect();
    let mut handles = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if i > 0 {
            let created = b
                .command("POST", "/window/new", Some(&json!({"type": "tab"})))
                .expect("new tab");
            let handle = created["handle"].as_str().unwrap().to_string();
            b.command("POST", "/window", Some(&json!({"handle": handle})))
                .expect("switch tab");
        }
        handles.push(
            b.command("GET", "/window", None)
                .expect("window handle")
                .as_str()
                .unwrap()
                .to_string(),
        );
        b.goto(&format!("{}/ui/#/runs/{run}", server.base));
        b.wait_until("live lines arrive", WAIT, |b| {
            b.execute(
                "return document.querySelectorAll('#log-stdout .log-line').length",
                &[],
            )
            .as_u64()
            .unwrap_or(0)
                >= 2
        });
    }
    b.command("POST", "/window", Some(&json!({"handle": handles[0]})))
        .expect("switch tab");
    // A fetch from the first tab while all four follow their runs.
    let fetch_ms = b
        .execute_async(
            r#"const done = arguments[0];
               const t0 = performance.now();
               fetch("../api/v1/status").then((r) => r.json()).then(
                 () => done(performance.now() - t0), () => done(-1));"#,
            &[],
        )
        .as_f64()
        .unwrap();
    assert!(
        (0.0..ONE_SECOND_TARGET_BOUND_MS).contains(&fetch_ms),
        "fetch took {fetch_ms} ms"
    );
    let nav_ms = time_to(&b, "#/", &["#recent-runs table", "#running-runs table"]);
    assert!(
        nav_ms < ONE_SECOND_TARGET_BOUND_MS,
        "navigation took {nav_ms} ms"
    );
    // The lines still arrive in the other tabs: one shared stream serves them all.
    b.command("POST", "/window", Some(&json!({"handle": handles[3]})))
        .expect("switch tab");
    let before = b
        .execute(
            "return document.querySelectorAll('#log-stdout .log-line').length",
            &[],
        )
        .as_u64()
        .unwrap();
    b.wait_until("the fourth tab keeps receiving lines", WAIT, |b| {
        b.execute(
            "return document.querySelectorAll('#log-stdout .log-line').length",
            &[],
        )
        .as_u64()
        .unwrap_or(0)
            > before
    });
    eprintln!("four tabs: fetch {fetch_ms:.0} ms, navigation {nav_ms:.0} ms");
    b.assert_no_console_errors();
    for run in &runs {
        server.post_json(&format!("/api/v1/runs/{run}/stop"), json!({}));
    }
}

#[test]
fn a_fast_writer_keeps_the_run_page_responsive() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let go = sb.path().join("go");
    // 50 lines every 10 ms: about 5,000 lines/s for 10 s.
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.05; done; i=0; while [ $i -lt 50000 ]; do \
         seq -f \"line %g \x1b[32mof a fast writer\x1b[0m with some padding text\" $i $((i+49)); \
         i=$((i+50)); sleep 0.01; done; echo last-line-of-the-run",
        go = go.display()
    );
    let server = serve_config(
        &sb,
        &format!(
            "agents:\n  fast:\n    type: command\n    command: [\"sh\", \"-c\", {}]\ndefaults:\n  agent: fast\n  max_restarts: 0\n",
            serde_json::to_string(&script).unwrap()
        ),
        &[],
    );
    let run = start_task(&server, "fast", None);
    b.goto(&format!("{}/ui/#/runs/{run}", server.base));
    b.wait_for("#run-status [data-status=running]", WAIT);
    b.execute(
        r#"window.__long = [];
           new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
             .observe({ type: "longtask", buffered: false });
           // When the run's last line first appears in the page (wall clock, ms).
           window.__lastSeen = 0;
           window.__lastTimer = setInterval(() => {
             const last = document.querySelector('#log-stdout .log-chunk:last-child .log-line:last-child');
             if (!window.__lastSeen && last && last.textContent === 'last-line-of-the-run') window.__lastSeen = Date.now();
           }, 10);
           window.__heap = 0;
           window.__heapTimer = setInterval(() => {
             window.__heap = Math.max(window.__heap, performance.memory ? performance.memory.usedJSHeapSize : 0);
           }, 250);"#,
        &[],
    );
    std::fs::write(&go, "").unwrap();
    b.wait_until("the run ends", LONG, |b| {
        b.execute(
            "return document.querySelector('#run-status')?.textContent",
            &[],
        ) == json!("completed")
    });
    b.wait_until("the last line is shown", WAIT, |b| {
        b.execute(
            "return [...document.querySelectorAll('#log-stdout .log-line')].pop()?.textContent || ''",
            &[],
        ) == json!("last-line-of-the-run")
    });
    let stats: Value = b.execute(
        "clearInterval(window.__heapTimer); clearInterval(window.__lastTimer); return {long: window.__long, heap: window.__heap, lastSeen: window.__lastSeen, lines: document.querySelectorAll('#log-stdout .log-line').length};",
        &[],
    );
    // The run's end as its record says (written once the agent exited, after its last line).
    let (code, record) = server.get_json(&format!("/api/v1/runs/{run}"));
    assert_eq!(code, 200, "{record}");
    let ended = chrono::DateTime::parse_from_rfc3339(record["info"]["end_time"].as_str().unwrap())
        .unwrap()
        .timestamp_millis() as f64;
    let seen = stats["lastSeen"].as_f64().unwrap_or(0.0);
    assert!(seen > 0.0, "the last line was never seen in the page");
    let after_end_ms = seen - ended;
    let longest = stats["long"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .fold(0.0, f64::max);
    let heap_mb = stats["heap"].as_f64().unwrap_or(0.0) / 1e6;
    eprintln!("fast writer: longest task {longest:.0} ms, {} long tasks, peak JS heap {heap_mb:.1} MB, {} lines in the page, last line shown {after_end_ms:.0} ms after the run's end", stats["long"].as_array().unwrap().len(), stats["lines"]);
    // Target 1 s; the bound is generous because a loaded CI machine delays everything.
    assert!(
        after_end_ms < 5000.0,
        "the last line appeared {after_end_ms} ms after the run's end"
    );
    assert!(longest <= 200.0, "a task blocked the page for {longest} ms");
    assert!(heap_mb < 200.0, "JS heap reached {heap_mb} MB");
    assert!(stats["lines"].as_u64().unwrap() <= 5000);
    b.assert_no_console_errors();
}

#[test]
fn a_finished_large_run_opens_at_once_with_its_output_collapsed() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve_config(
        &sb,
        "agents:\n  seq:\n    type: command\n    command: [\"sh\", \"-c\", \"seq -f 'output line %g of a long command run, padded to look like real output' 1 30000\"]\ndefaults:\n  agent: seq\n  max_restarts: 0\n",
        &[],
    );
    let run = start_task(&server, "big", None);
    let dir = sb.path().join("root/demo/big/runs").join(&run);
    wait_file(&dir.join("output.md"));
    b.goto(&format!("{}/ui/#/", server.base));
    b.wait_until("the run is listed as completed", LONG, |b| {
        b.execute(
            "return document.querySelector('#recent-runs [data-status]')?.dataset.status",
            &[],
        ) == json!("completed")
    });
    let ms = time_to(
        &b,
        &format!("#/runs/{run}"),
        &[
            "#log-stdout .log-line",
            "#run-output details.output-collapsed",
            "#run-info dl",
        ],
    );
    eprintln!("30,000-line run page interactive in {ms:.0} ms");
    assert!(ms < ONE_SECOND_TARGET_BOUND_MS, "the run page took {ms} ms");
    let last = b.execute(
        "return [...document.querySelectorAll('#log-stdout .log-line')].pop().textContent",
        &[],
    );
    assert!(last.as_str().unwrap().contains("line 30000 "), "{last}");
    screenshot(&b, "run.png");
    b.assert_no_console_errors();
}

#[test]
fn resume_from_the_task_page_runs_the_same_agent_name() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    // Two agents of one type; the default is the other one.
    let server = serve_config(
        &sb,
        &format!("agents:\n  first:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\n  second:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: second\n  max_restarts: 0\n"),
        &[],
    );
    start_task(&server, "named", Some("first"));
    b.goto(&format!("{}/ui/#/projects/demo/tasks/named", server.base));
    b.wait_until("Resume is enabled", LONG, |b| {
        b.execute(
            "return document.querySelector('#task-resume')?.disabled === false",
            &[],
        ) == json!(true)
    });
    b.wait_until("the agent name is shown", WAIT, |b| {
        b.execute(
            "return document.querySelector('#resume-agent')?.textContent",
            &[],
        ) == json!("with agent first")
    });
    b.find("#task-resume").click();
    b.wait_until("the second run is listed", LONG, |b| {
        b.execute(
            "return document.querySelectorAll('#task-runs tbody tr').length",
            &[],
        ) == json!(2)
    });
    let (code, task) = server.get_json("/api/v1/projects/demo/tasks/named");
    assert_eq!(code, 200);
    let names: Vec<Value> = task["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info"]["agent_name"].clone())
        .collect();
    assert_eq!(names, [json!("first"), json!("first")], "{task}");
    b.assert_no_console_errors();
}

#[test]
fn ten_thousand_runs_a_quick_dashboard_and_a_small_task_page() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    write_runs(&sb, "demo", "big-task", 1500, 0);
    for t in 0..17 {
        write_runs(&sb, "other", &format!("task-{t:02}"), 500, 1500 + t * 500);
    }
    let server = serve_config(&sb, "defaults:\n  max_restarts: 0\n", &[]);
    // The index of 10,000 runs is built in the background; a loaded machine can take longer
    // than the 3 s a listing waits for it (then 503), and the build is not what is measured.
    crate::support::wait_until("the run index is built", LONG, || {
        server.get_json("/api/v1/status").1["index"]["state"] == "ready"
    });
    b.goto(&format!("{}/ui/#/about", server.base));
    b.wait_for("#server-status dl", LONG);
    let ms = time_to(
        &b,
        "#/",
        &["#recent-runs table", "#failed-runs li", "#run-counts a"],
    );
    eprintln!("dashboard with 10,000 runs interactive in {ms:.0} ms");
    assert!(ms < ONE_SECOND_TARGET_BOUND_MS, "dashboard took {ms} ms");
    screenshot(&b, "dashboard.png");

    b.execute(
        "performance.clearResourceTimings(); performance.setResourceTimingBufferSize(1000);",
        &[],
    );
    let ms = time_to(
        &b,
        "#/projects/demo/tasks/big-task",
        &["#task-runs tbody tr", "#task-run-count"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let bytes = b
        .execute(
            "return performance.getEntriesByType('resource').reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0);",
            &[],
        )
        .as_f64()
        .unwrap();
    eprintln!(
        "task page of 1,500 runs: {ms:.0} ms, {:.1} KB transferred",
        bytes / 1024.0
    );
    assert!(
        bytes > 0.0 && bytes < 200.0 * 1024.0,
        "task page transferred {bytes} bytes"
    );
    screenshot(&b, "task.png");

    time_to(&b, "#/runs?status=failed", &["#runs-list tbody tr"]);
    let shown = b.execute(
        "return document.querySelectorAll('#runs-list tbody tr').length",
        &[],
    );
    assert_eq!(shown, json!(50));
    screenshot(&b, "runs.png");
    b.find("#runs-more").click();
    b.wait_until("an older page is added", WAIT, |b| {
        b.execute(
            "return document.querySelectorAll('#runs-list tbody tr').length",
            &[],
        ) == json!(100)
    });
    b.assert_no_console_errors();
}
