//! Finding one's way in the web UI, in a real headless Chromium: the runs page's filters
//! (agent, start time), a run's restart number and previous/next links, keyboard navigation,
//! an output.md that is a copy of stdout shown collapsed, "Reset DONE and resume" with its
//! confirmation, and the pages at 800 px and phone width. Every flow checks the console
//! (network 404s included) stays clean.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use conductor::storage::{RunInfo, RunStatus};
use serde_json::{json, Value};

use crate::browser::{Browser, WAIT};
use crate::support::{serve_config, Sandbox, Server, FAKE_AGENT};

const LONG: Duration = Duration::from_secs(90);
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";
const ARROW_UP: &str = "\u{E013}";
const ARROW_DOWN: &str = "\u{E015}";

fn serve(sb: &Sandbox, env: &[(&str, &str)]) -> Server {
    let config = format!(
        "agents:\n  long:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\n  short:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: long\n  max_restarts: 0\n"
    );
    serve_config(sb, &config, env)
}

fn root(sb: &Sandbox) -> PathBuf {
    sb.path().join("root")
}

fn js(b: &Browser, script: &str) -> Value {
    b.execute(script, &[])
}

fn wait_js(b: &Browser, what: &str, script: &str, wanted: Value) {
    b.wait_until(what, WAIT, |b| {
        b.try_execute(script, &[]).ok().as_ref() == Some(&wanted)
    });
}

fn hash(b: &Browser) -> String {
    js(b, "return decodeURIComponent(location.hash)")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn listed_runs(b: &Browser) -> Value {
    js(
        b,
        "return [...document.querySelectorAll('#runs-list tbody tr')].map((r) => r.dataset.run)",
    )
}

/// A finished run written straight into the tree: `(task, run id, agent type, agent name,
/// start hour on 2026-11-01 UTC, restart index, previous run)`.
type Written<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    u32,
    u64,
    Option<&'a str>,
);

fn write_run(sb: &Sandbox, (task, id, agent, name, hour, restart, previous): Written) {
    let dir = root(sb).join("demo").join(task).join("runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 1, hour, 0, 0).unwrap();
    let mut info = RunInfo::new_running(id, "demo", task, agent, start);
    info.agent_name = Some(name.to_string());
    info.status = RunStatus::Completed;
    info.exit_code = 0;
    info.end_time = start + chrono::Duration::seconds(95);
    info.restart_index = Some(restart);
    info.previous_run_id = previous.map(str::to_string);
    info.write(&dir.join("run-info.yaml")).unwrap();
    std::fs::write(dir.join("agent-stdout.txt"), format!("run {id}\n")).unwrap();
    std::fs::write(dir.join("output.md"), format!("# Answer of {id}\n")).unwrap();
}

const R1: &str = "20261101-0800000000-1-1";
const R2: &str = "20261101-0900000000-1-2";
const R3: &str = "20261101-1000000000-1-3";
const R4: &str = "20261101-1100000000-1-4";

/// A three-run restart chain of `demo/chain` (agents long, long, short) and one run of
/// `demo/other` by a claude agent.
fn write_chain(sb: &Sandbox) {
    write_run(sb, ("chain", R1, "command", "long", 8, 0, None));
    write_run(sb, ("chain", R2, "command", "long", 9, 1, Some(R1)));
    write_run(sb, ("chain", R3, "command", "short", 10, 2, Some(R2)));
    write_run(sb, ("other", R4, "claude", "claude", 11, 0, None));
}

/// Writes the chain, serves it and opens the runs page once every run is listed.
fn open_runs_page(b: &Browser, sb: &Sandbox) -> Server {
    write_chain(sb);
    let server = serve(sb, &[]);
    b.goto(&format!("{}/ui/#/runs", server.base));
    wait_js(
        b,
        "all runs are listed",
        "return document.querySelectorAll('#runs-list tbody tr').length",
        json!(4),
    );
    server
}

/// The `href` attribute of the first element matching `css` ("" when there is none). Read in
/// the page: the run page redraws its links when the run's record is re-read, so a held
/// element reference can go stale.
fn href(b: &Browser, css: &str) -> String {
    b.execute(
        "return document.querySelector(arguments[0])?.getAttribute('href') || ''",
        &[json!(css)],
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Clicks the element matching `css`, finding it again when a redraw replaced it.
fn click(b: &Browser, css: &str) {
    b.wait_until(&format!("`{css}` is clicked"), WAIT, |b| {
        b.try_find(css).and_then(|e| e.try_click()).is_ok()
    });
}

fn submit_filters(b: &Browser) {
    b.find("#runs-filter button[type=submit]").click();
}

#[test]
fn runs_page_filters_by_agent_and_start_time() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = open_runs_page(&b, &sb);
    assert_eq!(listed_runs(&b), json!([R4, R3, R2, R1]));

    // By agent name, then by agent type (the datalist offers both).
    wait_js(
        &b,
        "the agent list offers names and types",
        "return [...document.querySelectorAll('#runs-agent-names option')].map((o) => o.value).sort().join(',')",
        json!("command,long,short"),
    );
    b.find("#runs-agent").send_keys("long");
    submit_filters(&b);
    b.wait_until("the agent filter is in the link", WAIT, |b| {
        hash(b) == "#/runs?agent=long"
    });
    wait_js(&b, "only long's runs", "return [...document.querySelectorAll('#runs-list tbody tr')].map((r) => r.dataset.run).join()", json!(format!("{R2},{R1}")));
    b.find("#runs-agent").clear();
    b.find("#runs-agent").send_keys("command");
    submit_filters(&b);
    wait_js(&b, "only command runs", "return [...document.querySelectorAll('#runs-list tbody tr')].map((r) => r.dataset.run).join()", json!(format!("{R3},{R2},{R1}")));

    // By start time: the form's local times become RFC 3339 UTC in the link.
    b.find("#runs-agent").clear();
    js(
        &b,
        "const local = (iso) => { const d = new Date(iso); const p = (n) => String(n).padStart(2, '0'); \
           return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; }; \
         document.querySelector('#runs-since').value = local('2026-11-01T08:30:00Z'); \
         document.querySelector('#runs-until').value = local('2026-11-01T10:30:00Z');",
    );
    submit_filters(&b);
    b.wait_until("the time filter is in the link", WAIT, |b| {
        hash(b) == "#/runs?since=2026-11-01T08:30:00.000Z&until=2026-11-01T10:30:00.000Z"
    });
    wait_js(&b, "only the runs started in the window", "return [...document.querySelectorAll('#runs-list tbody tr')].map((r) => r.dataset.run).join()", json!(format!("{R3},{R2}")));

    // A deep link fills the form, and filters combine.
    b.goto(&format!(
        "{}/ui/#/runs?agent=command&since=2026-11-01T09:00:00Z",
        server.base
    ));
    wait_js(&b, "the combined filter", "return [...document.querySelectorAll('#runs-list tbody tr')].map((r) => r.dataset.run).join()", json!(format!("{R3},{R2}")));
    assert_eq!(
        js(&b, "return document.querySelector('#runs-agent').value"),
        json!("command")
    );
    assert_ne!(
        js(&b, "return document.querySelector('#runs-since').value"),
        json!("")
    );
    b.goto(&format!("{}/ui/#/runs?agent=codex", server.base));
    b.wait_for("#runs-none", WAIT);
    b.assert_no_console_errors();
}

#[test]
fn run_page_links_the_task_s_previous_and_next_runs() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    write_chain(&sb);
    let server = serve(&sb, &[]);
    b.goto(&format!("{}/ui/#/runs/{R2}", server.base));
    b.wait_for("#run-neighbours a.run-prev", WAIT);
    let info = b.text("#run-info");
    assert!(info.contains("1 (run 2 of the chain)"), "{info}");
    assert!(
        info.contains(R1),
        "the chain's previous run is shown: {info}"
    );
    assert_eq!(
        href(&b, "#run-neighbours a.run-prev"),
        format!("#/runs/{R1}")
    );
    assert_eq!(
        href(&b, "#run-neighbours a.run-next"),
        format!("#/runs/{R3}")
    );
    click(&b, "#run-neighbours a.run-next");
    b.wait_until("the next run opens", WAIT, |b| {
        hash(b) == format!("#/runs/{R3}")
    });
    b.wait_for("#run-neighbours a.run-prev", WAIT);
    // The newest run of the task has no next run; R4 belongs to another task.
    assert_eq!(b.count("#run-neighbours a.run-next"), 0);
    assert!(b.text("#run-info").contains("2 (run 3 of the chain)"));
    b.goto(&format!("{}/ui/#/runs/{R1}", server.base));
    b.wait_for("#run-neighbours a.run-next", WAIT);
    assert_eq!(b.count("#run-neighbours a.run-prev"), 0);
    assert!(b.text("#run-info").contains("0 (first run)"));
    // A real answer is rendered as Markdown.
    wait_js(
        &b,
        "output.md is rendered",
        "return document.querySelector('#run-output h1')?.textContent || ''",
        json!(format!("Answer of {R1}")),
    );
    b.assert_no_console_errors();
}

fn active(b: &Browser) -> String {
    js(
        b,
        "const a = document.activeElement; return a ? (a.id || a.getAttribute('href') || a.tagName) : ''",
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

#[test]
fn keyboard_navigation_moves_through_lists_and_pages() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let _server = open_runs_page(&b, &sb);

    // `/` focuses the first filter; keys typed there are text, not shortcuts.
    b.press_keys("/");
    assert_eq!(active(&b), "runs-project");
    b.press_keys("jkgd");
    assert_eq!(
        js(&b, "return document.querySelector('#runs-project').value"),
        json!("jkgd")
    );
    assert_eq!(hash(&b), "#/runs");
    b.press_keys(ESCAPE);
    assert_eq!(active(&b), "BODY");

    // j/k move through the rows, Enter opens the selected one.
    b.press_keys("j");
    assert_eq!(active(&b), format!("#/runs/{R4}"));
    b.press_keys("jjk");
    assert_eq!(active(&b), format!("#/runs/{R3}"));
    // With a row selected the arrows move as well.
    b.press_keys(ARROW_DOWN);
    assert_eq!(active(&b), format!("#/runs/{R2}"));
    b.press_keys(ARROW_UP);
    assert_eq!(active(&b), format!("#/runs/{R3}"));
    assert_eq!(b.count("#runs-list tr.kb-current"), 1);
    b.press_keys(ENTER);
    b.wait_until("the run opens", WAIT, |b| hash(b) == format!("#/runs/{R3}"));

    // [ and ] walk the task's runs; `/` focuses the log search there.
    b.wait_for("#run-neighbours a.run-prev", WAIT);
    b.press_keys("[");
    b.wait_until("the previous run opens", WAIT, |b| {
        hash(b) == format!("#/runs/{R2}")
    });
    b.wait_for("#run-neighbours a.run-next", WAIT);
    b.press_keys("]");
    b.wait_until("the next run opens", WAIT, |b| {
        hash(b) == format!("#/runs/{R3}")
    });
    b.wait_for("#run-neighbours a.run-prev", WAIT);
    b.press_keys("/");
    assert!(
        js(
            &b,
            "return document.activeElement.classList.contains('log-search')"
        ) == json!(true)
    );
    b.press_keys(ESCAPE);

    // g d / g r / g a go to the dashboard, the runs and the about page.
    b.press_keys("gd");
    b.wait_until("the dashboard opens", WAIT, |b| hash(b) == "#/");
    b.press_keys("gr");
    b.wait_until("the runs page opens", WAIT, |b| hash(b) == "#/runs");
    b.press_keys("ga");
    b.wait_until("the about page opens", WAIT, |b| hash(b) == "#/about");

    // ? shows the shortcuts in a modal dialog; Escape closes it.
    b.press_keys("?");
    wait_js(
        &b,
        "the help is open",
        "return !!document.querySelector('#kb-help')?.open",
        json!(true),
    );
    assert!(b.text("#kb-help").contains("g r"));
    b.press_keys(ESCAPE);
    wait_js(
        &b,
        "the help is closed",
        "return !!document.querySelector('#kb-help')?.open",
        json!(false),
    );
    // The header's ? button opens it too.
    b.find("#kb-help-open").click();
    wait_js(
        &b,
        "the help is open again",
        "return !!document.querySelector('#kb-help')?.open",
        json!(true),
    );
    b.press_keys(ESCAPE);
    b.assert_no_console_errors();
}

#[test]
fn a_command_agent_s_output_copy_is_collapsed_not_rendered() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve(&sb, &[("FAKE_STDOUT", "# not a heading, just stdout")]);
    let (code, started) = server.post_json(
        "/api/v1/tasks",
        json!({"project_id": "demo", "task_id": "copy", "prompt": "echo"}),
    );
    assert_eq!(code, 201, "{started}");
    let run = started["run_id"].as_str().unwrap().to_string();
    let dir = root(&sb).join("demo/copy/runs").join(&run);
    b.wait_until("the run ends", LONG, |_| {
        std::fs::read_to_string(dir.join("run-info.yaml"))
            .is_ok_and(|t| t.contains("status: completed"))
    });
    assert_eq!(
        std::fs::read(dir.join("output.md")).unwrap(),
        std::fs::read(dir.join("agent-stdout.txt")).unwrap(),
        "the runner copies a command agent's stdout to output.md"
    );
    b.goto(&format!("{}/ui/#/runs/{run}", server.base));
    b.wait_for("#run-output details.output-collapsed", WAIT);
    assert!(b.text("#run-output").contains("copy of stdout"));
    assert_eq!(b.count("#run-output h1"), 0);
    let raw = href(&b, "#run-output details a");
    assert!(raw.ends_with("/files/output"), "{raw}");
    b.assert_no_console_errors();
}

#[test]
fn reset_done_and_resume_asks_first_and_then_runs_again() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve(&sb, &[("FAKE_DONE_AFTER", "1")]);
    let (code, started) = server.post_json(
        "/api/v1/tasks",
        json!({"project_id": "demo", "task_id": "finished", "prompt": "finish"}),
    );
    assert_eq!(code, 201, "{started}");
    let task = root(&sb).join("demo/finished");
    b.goto(&format!(
        "{}/ui/#/projects/demo/tasks/finished",
        server.base
    ));
    b.wait_until("the task is done", LONG, |b| {
        b.text("#task-status").contains("done")
            && b.find("#task-resume").prop("disabled") == json!(false)
    });
    assert_eq!(b.text("#task-resume"), "Reset DONE and resume");

    // Cancel keeps everything as it was.
    b.find("#task-resume").click();
    assert!(b.wait_for_alert(WAIT).contains("is DONE"));
    b.dismiss_alert();
    std::thread::sleep(Duration::from_millis(500));
    assert!(task.join("DONE").exists());
    assert_eq!(b.count("#task-runs tbody tr"), 1);

    // OK removes DONE and resumes: a second run starts (and, this agent being done again,
    // marks the task DONE again).
    b.find("#task-resume").click();
    b.wait_for_alert(WAIT);
    b.accept_alert();
    b.wait_until("the message says resumed", WAIT, |b| {
        b.text("#task-message").contains("Resumed")
    });
    b.wait_until("the second run is listed", LONG, |b| {
        b.count("#task-runs tbody tr") == 2
    });
    // The second run's record is on disk (its directory may show before the record does).
    b.wait_until("two run records", LONG, |_| {
        crate::support::run_infos(&task.join("runs")).len() == 2
    });
    b.wait_until("the task is done again", LONG, |b| {
        b.text("#task-status").contains("done") && b.text("#task-resume") == "Reset DONE and resume"
    });
    b.assert_no_console_errors();
}

/// The tallest `time` and the widest page overflow of the current page, and how many times
/// it holds.
fn layout_figures(b: &Browser) -> Value {
    js(
        b,
        "const times = [...document.querySelectorAll('#view time')].filter((t) => t.offsetParent !== null); \
         const line = (el) => parseFloat(getComputedStyle(el).lineHeight) || parseFloat(getComputedStyle(el).fontSize) * 1.4; \
         const worst = times.reduce((m, t) => Math.max(m, t.getBoundingClientRect().height / line(t)), 0); \
         const cells = [...document.querySelectorAll('#view td, #view dd')].filter((c) => c.querySelector('time')); \
         const cell = cells.reduce((m, c) => Math.max(m, c.getBoundingClientRect().height / line(c)), 0); \
         return { times: times.length, lines: worst, cellLines: cell, width: innerWidth, \
                  overflow: document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth, \
                  widest: [...document.querySelectorAll('#view *')].filter((e) => e.getBoundingClientRect().right > document.scrollingElement.clientWidth + 1) \
                    .slice(0, 3).map((e) => `${e.tagName}#${e.id}.${e.className}`) };",
    )
}

#[test]
fn pages_stay_usable_at_800_px_and_phone_width() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    write_chain(&sb);
    let server = serve(&sb, &[]);
    let pages = [
        ("#/", "#recent-runs tbody tr"),
        ("#/runs", "#runs-list tbody tr"),
        (&*format!("#/runs/{R2}"), "#run-info dl"),
        ("#/projects/demo/tasks/chain", "#task-runs tbody tr"),
        ("#/projects/demo", "#task-list tbody tr"),
    ];
    for width in [800, 390] {
        b.set_window_size(width, 900);
        for (page, ready) in &pages {
            b.goto(&format!("{}/ui/{page}", server.base));
            b.wait_for(ready, WAIT);
            std::thread::sleep(Duration::from_millis(200));
            let f = layout_figures(&b);
            eprintln!("{width} px {page}: {f}");
            let lines = f["lines"].as_f64().unwrap();
            let cell = f["cellLines"].as_f64().unwrap();
            assert!(lines < 1.6, "{width} px {page}: a date wraps ({f})");
            assert!(
                cell < 2.6,
                "{width} px {page}: a date's cell spans three lines ({f})"
            );
            assert!(
                f["overflow"].as_f64().unwrap() <= 1.0,
                "{width} px {page}: the page scrolls sideways ({f})"
            );
            if let Ok(dir) = std::env::var("CONDUCTOR_SCREENSHOTS") {
                if width == 390 && page.starts_with("#/runs/") {
                    b.screenshot(&Path::new(&dir).join("run-phone.png"));
                }
            }
        }
    }
    // Dark by system: the page follows prefers-color-scheme.
    b.set_window_size(1280, 900);
    b.prefer_color_scheme("dark");
    b.goto(&format!("{}/ui/#/runs/{R2}", server.base));
    b.wait_for("#run-info dl", WAIT);
    let background = |b: &Browser| {
        js(
            b,
            "return getComputedStyle(document.documentElement).backgroundColor",
        )
    };
    assert_eq!(background(&b), json!("rgb(17, 20, 24)"));
    if let Ok(dir) = std::env::var("CONDUCTOR_SCREENSHOTS") {
        std::thread::sleep(Duration::from_millis(200));
        b.screenshot(&Path::new(&dir).join("run-dark.png"));
    }
    b.prefer_color_scheme("light");
    assert_eq!(background(&b), json!("rgb(246, 247, 249)"));
    b.assert_no_console_errors();
}
