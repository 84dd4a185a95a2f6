//! The run page's log viewer in a real headless Chromium: ANSI colours rendered (and no escape
//! codes in the text), line numbers, search with next/previous, the wrap and follow toggles,
//! stdout/stderr tabs (stderr hidden while empty) and the raw download link.

use chrono::Utc;
use conductor::storage::{RunInfo, RunStatus};
use serde_json::{json, Value};

use crate::browser::{Browser, WAIT};
use crate::support::{serve_config, Sandbox};

/// A finished run of `demo/logs` with these stdout and stderr files.
fn write_run(sb: &Sandbox, id: &str, stdout: &str, stderr: &str) {
    let dir = sb.path().join("root/demo/logs/runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut info = RunInfo::new_running(id, "demo", "logs", "command", Utc::now());
    info.status = RunStatus::Completed;
    info.exit_code = 0;
    info.end_time = Utc::now();
    info.write(&dir.join("run-info.yaml")).unwrap();
    std::fs::write(dir.join("agent-stdout.txt"), stdout).unwrap();
    std::fs::write(dir.join("agent-stderr.txt"), stderr).unwrap();
}

fn js(b: &Browser, script: &str) -> Value {
    b.execute(script, &[])
}

const QUIET: &str = "20261101-0800000000-1-1";
const NOISY: &str = "20261101-0900000000-1-2";

#[test]
fn the_log_viewer_renders_colours_searches_and_switches_streams() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let mut stdout = String::new();
    for i in 1..=300 {
        if i % 100 == 0 {
            stdout.push_str(&format!("line {i} \x1b[1;32mneedle\x1b[0m found\n"));
        } else {
            stdout.push_str(&format!("line {i} plain text\n"));
        }
    }
    write_run(&sb, QUIET, &stdout, "");
    write_run(&sb, NOISY, "out\n", "first warning\nsecond warning\n");
    let server = serve_config(&sb, "defaults:\n  max_restarts: 0\n", &[]);

    b.goto(&format!("{}/ui/#/runs/{QUIET}", server.base));
    b.wait_until("the log is loaded", WAIT, |b| {
        b.count("#log-stdout .log-line") == 300
    });
    // Line numbers, colours as spans, no escape codes in the text.
    assert_eq!(
        js(
            &b,
            "return [...document.querySelectorAll('#log-stdout .log-line')].pop().dataset.n"
        ),
        json!("300")
    );
    let coloured = js(
        &b,
        "const s = document.querySelector('#log-stdout .ansi-fg-32'); \
         return s ? [s.textContent, s.classList.contains('ansi-bold'), s.closest('.log-line').textContent] : null",
    );
    assert_eq!(coloured, json!(["needle", true, "line 100 needle found"]));
    assert_eq!(
        js(
            &b,
            "return document.querySelector('#log-stdout').textContent.includes('\\x1b')"
        ),
        json!(false)
    );
    // stderr is empty: no tab for it; the download link is stdout's.
    assert!(!b.find("#tab-stderr").is_displayed());
    let download = b.find(".log-download").attr("href").unwrap_or_default();
    assert!(
        download.ends_with(&format!("/runs/{QUIET}/files/stdout")),
        "{download}"
    );
    assert_eq!(b.text(".log-download"), "Download stdout");

    // Search: Enter goes to the next match, Shift+Enter and ↑ back; following stops.
    let search = b.find(".log-search");
    search.send_keys("needle\u{E007}");
    b.wait_until("the first match", WAIT, |b| {
        b.text(".log-hits") == "line 100"
    });
    search.send_keys("\u{E007}");
    b.wait_until("the second match", WAIT, |b| {
        b.text(".log-hits") == "line 200"
    });
    search.send_keys("\u{E008}\u{E007}\u{E008}");
    b.wait_until("back to the first match", WAIT, |b| {
        b.text(".log-hits") == "line 100"
    });
    b.find(".log-tools button[title^='next']").click();
    b.find(".log-tools button[title^='next']").click();
    b.wait_until("the third match", WAIT, |b| {
        b.text(".log-hits") == "line 300"
    });
    b.find(".log-tools button[title^='previous']").click();
    b.wait_until("previous goes back", WAIT, |b| {
        b.text(".log-hits") == "line 200"
    });
    assert_eq!(b.count("#log-stdout .log-hit"), 1);
    assert_eq!(b.find("#log-follow").prop("checked"), json!(false));
    search.clear();
    search.send_keys("nowhere\u{E007}");
    b.wait_until("no match is said", WAIT, |b| {
        b.text(".log-hits") == "no match"
    });

    // Wrap toggles long lines.
    assert_eq!(
        js(
            &b,
            "return document.querySelector('.log-viewer').dataset.wrap"
        ),
        json!("off")
    );
    b.find("#log-wrap").click();
    assert_eq!(
        js(
            &b,
            "return document.querySelector('.log-viewer').dataset.wrap"
        ),
        json!("on")
    );

    // A run with stderr gets its tab; the tab shows it and the download follows.
    b.goto(&format!("{}/ui/#/runs/{NOISY}", server.base));
    b.wait_for_visible("#tab-stderr", WAIT);
    assert!(b.find("#log-stdout").is_displayed());
    b.find("#tab-stderr").click();
    b.wait_until("stderr is shown", WAIT, |b| {
        b.find("#log-stderr").is_displayed()
    });
    assert!(!b.find("#log-stdout").is_displayed());
    assert_eq!(
        js(&b, "return [...document.querySelectorAll('#log-stderr .log-line')].map((l) => l.textContent)"),
        json!(["first warning", "second warning"])
    );
    assert_eq!(b.text(".log-download"), "Download stderr");
    assert_eq!(
        b.find("#tab-stderr").attr("aria-selected").as_deref(),
        Some("true")
    );
    b.assert_no_console_errors();
}
