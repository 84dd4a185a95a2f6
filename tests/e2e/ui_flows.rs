//! The web UI's user flows in a real headless Chromium: start a task from the
//! dashboard and follow its run live, the bus panels, stop / resume / delete from a task's page,
//! and the API-key login. Agents are the fake agent; nothing leaves 127.0.0.1.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::browser::{Browser, WAIT};
use crate::support::{run, text, Sandbox, Server};

use crate::support::FAKE_AGENT;

/// A server on `<sandbox>/root` whose default agent is the fake agent, with `env` for it.
fn serve(sb: &Sandbox, env: &[(&str, &str)], extra: &[&str]) -> Server {
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 0\n"
        ),
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(root(sb))
        .arg("--config")
        .arg(&config)
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::start(cmd, sb.path())
}

fn root(sb: &Sandbox) -> PathBuf {
    sb.path().join("root")
}

/// The visible text of the first element matching `css`, or "" when there is none.
fn text_of(b: &Browser, css: &str) -> String {
    b.try_execute(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
        &[json!(css)],
    )
    .ok()
    .and_then(|v| v.as_str().map(str::to_owned))
    .unwrap_or_default()
}

fn wait_text(b: &Browser, css: &str, wanted: &str) {
    b.wait_until(&format!("`{css}` shows `{wanted}`"), WAIT, |b| {
        text_of(b, css).contains(wanted)
    });
}

fn bus_post(sb: &Sandbox, project: &str, task: Option<&str>, body: &str) {
    let mut cmd = sb.run_agent();
    cmd.args(["bus", "post", "--root"]).arg(root(sb)).args([
        "--project",
        project,
        "--type",
        "FACT",
        "--body",
        body,
    ]);
    if let Some(task) = task {
        cmd.args(["--task", task]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", text(&out));
}

const HOSTILE_OUTPUT: &str =
    "# Result\n\nSome **bold** text, a [safe link](https://example.com/a_(b)) and \
[a bad one](javascript:window.__xss=1).\n\n<img src=x onerror=\"window.__xss=1\">\n\n\
<script>window.__xss=1</script>\n\n- one\n- two";

#[test]
fn start_a_task_from_the_dashboard_and_follow_its_run_live() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let release = sb.path().join("release");
    let release_env = release.display().to_string();
    let server = serve(
        &sb,
        &[
            ("FAKE_TICK_UNTIL", &release_env),
            ("FAKE_WRITE_OUTPUT", HOSTILE_OUTPUT),
            ("FAKE_DONE_AFTER", "1"),
        ],
        &[],
    );

    b.goto(&format!("{}/ui/#/about", server.base));
    wait_text(&b, "#server-status", &root(&sb).display().to_string());
    wait_text(&b, "#update-state", "idle");
    b.goto(&format!("{}/ui/#/", server.base));
    // The agents offered are the server's config, by name.
    b.wait_until("the agent list is loaded", WAIT, |b| {
        b.count("#agent-names option[value=script]") == 1
    });
    b.find("#start-project").send_keys("demo");
    b.find("#start-task").send_keys("ui-task");
    b.find("#start-prompt").send_keys("Count to a hundred.");
    b.find("#start-task-form button[type=submit]").click();

    b.wait_until("the task page opens", WAIT, |b| {
        b.current_url().ends_with("#/projects/demo/tasks/ui-task")
    });
    wait_text(&b, "#task-status", "running");
    wait_text(&b, "#tree .tree-task[data-task=\"ui-task\"]", "running");
    let run_link = b.wait_for("#task-runs a", WAIT);
    let run_id = run_link.text();
    run_link.click();

    b.wait_until("the run page opens", WAIT, |b| {
        b.current_url().ends_with(&format!("#/runs/{run_id}"))
    });
    wait_text(&b, "#run-status", "running");
    // Lines arrive while the run goes on: the stream is live, not a one-off read.
    wait_text(&b, "#log-stdout", "tick 3");
    wait_text(&b, "#log-stderr", "warn 3");
    let seen = text_of(&b, "#log-stdout").lines().count();
    b.wait_until("more stdout lines arrive", WAIT, |b| {
        text_of(b, "#log-stdout").lines().count() > seen + 2
    });
    assert!(!b
        .find("#run-stop")
        .prop("disabled")
        .as_bool()
        .unwrap_or(true));

    std::fs::write(&release, "").unwrap();
    wait_text(&b, "#run-status", "completed");
    wait_text(&b, "#run-output h1", "Result");
    wait_text(&b, "#run-info", "completed");
    // output.md is rendered, and nothing in it runs or becomes markup.
    assert_eq!(text_of(&b, "#run-output strong"), "bold");
    assert_eq!(
        b.find("#run-output a").attr("href").as_deref(),
        Some("https://example.com/a_(b)")
    );
    assert!(text_of(&b, "#run-output").contains("<script>window.__xss=1</script>"));
    assert_eq!(
        b.count(
            "#run-output script, #run-output img, #run-output [onerror], a[href^='javascript']"
        ),
        0
    );
    assert_eq!(
        b.execute("return window.__xss === undefined;", &[]),
        json!(true)
    );
    // Lines are shown once each, in order.
    let stdout = text_of(&b, "#log-stdout");
    let ticks: Vec<&str> = stdout.lines().collect();
    let expected: Vec<String> = (1..=ticks.len()).map(|n| format!("tick {n}")).collect();
    assert_eq!(ticks, expected);
    assert!(b
        .find("#run-stop")
        .prop("disabled")
        .as_bool()
        .unwrap_or(false));
    wait_text(&b, "#tree .tree-task[data-task=\"ui-task\"]", "done");
    b.assert_no_console_errors();
}

#[test]
fn bus_panels_show_messages_live_and_post_new_ones() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve(&sb, &[], &[]);
    bus_post(&sb, "demo", None, "from the cli, before");
    bus_post(&sb, "demo", Some("t1"), "task note");

    b.goto(&format!("{}/ui/#/projects/demo", server.base));
    wait_text(&b, ".bus-panel[data-bus=project]", "from the cli, before");
    assert!(!text_of(&b, ".bus-panel").contains("task note"));

    b.find(".bus-panel input[name=type]").clear();
    b.find(".bus-panel input[name=type]").send_keys("DECISION");
    b.find(".bus-panel textarea[name=body]")
        .send_keys("from the browser\n---\nwith a separator line");
    b.find(".bus-panel button[type=submit]").click();
    wait_text(&b, ".bus-panel .form-message", "Posted MSG-");
    wait_text(&b, ".bus-messages", "from the browser");
    bus_post(&sb, "demo", None, "from the cli, after");
    wait_text(&b, ".bus-messages", "from the cli, after");

    let bodies = b.execute(
        "return [...document.querySelectorAll('.bus-panel .bus-body')].map(e => e.textContent);",
        &[],
    );
    assert_eq!(
        bodies,
        json!([
            "from the cli, before",
            "from the browser\n---\nwith a separator line",
            "from the cli, after"
        ])
    );
    // What the browser posted is on the bus file, with its type.
    let (code, bus) = server.get_json("/api/v1/projects/demo/bus");
    assert_eq!(code, 200);
    assert_eq!(bus["messages"][1]["type"], "DECISION");
    assert_eq!(
        bus["messages"][1]["body"],
        "from the browser\n---\nwith a separator line"
    );

    // Lifecycle messages are hidden until asked for; the type filter keeps one type.
    let (code, posted) = server.post_json(
        "/api/v1/projects/demo/bus",
        json!({"type": "RUN_START", "body": "run started"}),
    );
    assert_eq!(code, 201, "{posted}");
    b.wait_until("the lifecycle message arrives", WAIT, |b| {
        b.count(".bus-messages li[data-type=RUN_START]") == 1
    });
    let visible = |b: &Browser| {
        b.execute(
            "return [...document.querySelectorAll('.bus-panel .bus-message')].filter((m) => m.offsetParent !== null).map((m) => m.dataset.type)",
            &[],
        )
    };
    assert_eq!(visible(&b), json!(["FACT", "DECISION", "FACT"]));
    b.find(".bus-panel .bus-lifecycle").click();
    assert_eq!(
        visible(&b),
        json!(["FACT", "DECISION", "FACT", "RUN_START"])
    );
    b.execute(
        "const f = document.querySelector('.bus-panel .bus-filter'); f.value = 'DECISION'; f.dispatchEvent(new Event('change'));",
        &[],
    );
    assert_eq!(visible(&b), json!(["DECISION"]));

    b.goto(&format!("{}/ui/#/projects/demo/tasks/t1", server.base));
    wait_text(&b, ".bus-panel[data-bus=task]", "task note");
    assert!(!text_of(&b, ".bus-panel").contains("from the cli"));
    b.assert_no_console_errors();
}

fn task_dir(sb: &Sandbox, task: &str) -> PathBuf {
    root(sb).join("demo").join(task)
}

fn wait_gone(b: &Browser, path: &Path) {
    b.wait_until(&format!("{} is deleted", path.display()), WAIT, |_| {
        !path.exists()
    });
}

#[test]
fn stop_resume_and_delete_a_task_from_its_page() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let never = sb.path().join("never").display().to_string();
    let server = serve(&sb, &[("FAKE_TICK_UNTIL", &never)], &[]);
    let (code, started) = server.post_json(
        "/api/v1/tasks",
        json!({"project_id": "demo", "task_id": "long", "prompt": "run forever"}),
    );
    assert_eq!(code, 201, "{started}");

    b.goto(&format!("{}/ui/#/projects/demo/tasks/long", server.base));
    wait_text(&b, "#task-status", "running");
    b.wait_until("Stop is enabled", WAIT, |b| {
        b.find("#task-stop").prop("disabled") == json!(false)
    });
    b.find("#task-stop").click();
    wait_text(&b, "#task-message", "Stop requested");
    wait_text(&b, "#task-status", "stopped");

    b.wait_until("Resume is enabled", WAIT, |b| {
        b.find("#task-resume").prop("disabled") == json!(false)
    });
    b.find("#task-resume").click();
    wait_text(&b, "#task-message", "Resumed");
    wait_text(&b, "#task-status", "running");
    b.wait_until("the second run is listed", WAIT, |b| {
        b.count("#task-runs tbody tr") == 2
    });

    b.wait_until("Stop is enabled again", WAIT, |b| {
        b.find("#task-stop").prop("disabled") == json!(false)
    });
    b.find("#task-stop").click();
    wait_text(&b, "#task-status", "stopped");

    // Delete asks first; dismissing keeps the task.
    b.wait_until("Delete is enabled", WAIT, |b| {
        b.find("#task-delete").prop("disabled") == json!(false)
    });
    b.find("#task-delete").click();
    assert!(b.wait_for_alert(WAIT).contains("Delete task long"));
    b.dismiss_alert();
    assert!(task_dir(&sb, "long").is_dir());
    b.find("#task-delete").click();
    b.wait_for_alert(WAIT);
    b.accept_alert();
    b.wait_until("the project page opens", WAIT, |b| {
        b.current_url().ends_with("#/projects/demo")
    });
    wait_gone(&b, &task_dir(&sb, "long"));
    wait_text(&b, "#task-list", "No tasks yet.");
    b.assert_no_console_errors();
}

#[test]
fn the_api_key_login_gates_the_ui() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve(&sb, &[], &["--api-key", "s3cret-key"]);

    b.goto(&format!("{}/ui/", server.base));
    b.wait_until("the login form is shown", WAIT, |b| {
        b.current_url().ends_with("#/login")
    });
    let key = b.wait_for("#login-key", WAIT);
    key.send_keys("wrong");
    b.find("#login-form button[type=submit]").click();
    wait_text(&b, "#login-form .form-message", "wrong API key");

    let key = b.find("#login-key");
    key.clear();
    key.send_keys("s3cret-key");
    b.find("#login-form button[type=submit]").click();
    b.wait_for("#recent-runs", WAIT);
    b.goto(&format!("{}/ui/#/about", server.base));
    wait_text(&b, "#server-status", &root(&sb).display().to_string());
    wait_text(&b, "#server-status", "API key required");
    // The session cookie is HttpOnly: scripts cannot read it.
    assert!(b.cookie("conductor_session").is_some());
    assert_eq!(
        b.execute("return document.cookie.includes('conductor_session');", &[]),
        json!(false)
    );

    b.find("#logout").click();
    b.wait_until("back at the login form", WAIT, |b| {
        b.current_url().ends_with("#/login")
    });
    b.goto(&format!("{}/ui/#/", server.base));
    b.wait_until("logged out for real", WAIT, |b| {
        b.current_url().ends_with("#/login")
    });
    // Logged out, requests are answered 401 (the browser logs those); nothing else may show
    // up: no script error, no 404.
    let errors: Vec<String> = b
        .console_errors()
        .into_iter()
        .filter(|e| !e.contains("status of 401"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

#[test]
fn a_large_log_opens_at_its_tail() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let config = sb.write(
        "config.yaml",
        "agents:\n  seq:\n    type: command\n    command: [\"sh\", \"-c\", \"seq 1 100000\"]\n",
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(root(&sb))
        .arg("--config")
        .arg(&config);
    let server = Server::start(cmd, sb.path());
    let (code, started) = server.post_json(
        "/api/v1/tasks",
        json!({"project_id": "demo", "task_id": "big", "prompt": "count", "agent": "seq", "max_restarts": 0, "wait_seconds": 60}),
    );
    assert_eq!(code, 200, "{started}");
    let run_id = started["run_id"].as_str().unwrap();

    b.goto(&format!("{}/ui/#/runs/{run_id}", server.base));
    wait_text(&b, "#run-status", "completed");
    // Lines off screen are not rendered (content-visibility), so read textContent, not innerText.
    let log_lines = |b: &Browser| -> Vec<String> {
        b.execute(
            "return [...document.querySelectorAll('#log-stdout .log-line')].map((e) => e.textContent);",
            &[],
        )
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
    };
    b.wait_until("the last line is shown", WAIT, |b| {
        log_lines(b).last().map(String::as_str) == Some("100000")
    });
    // 590 KB of output: the page reads only the tail and keeps at most 5000 lines.
    let lines = log_lines(&b);
    assert_eq!(lines.len(), 5000);
    assert_eq!(lines.first().map(String::as_str), Some("95001"));
    assert_eq!(lines.last().map(String::as_str), Some("100000"));
    wait_text(&b, ".log-stdout .log-note", "Earlier output is not shown");
    b.assert_no_console_errors();
}

#[test]
fn markdown_rendering_keeps_structure_and_drops_anything_active() {
    let Some(b) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve(&sb, &[], &[]);
    b.goto(&format!("{}/ui/", server.base));
    b.wait_for("#recent-runs", WAIT);
    let source = "# Title\n\nA *soft* and **strong** `code` ~~gone~~.\n\n\
        ```html\n<b onclick=\"x()\">not bold</b>\n```\n\n\
        1. first\n2. second\n\n- a\n- b\n\n> quoted\n\n\
        | k | v |\n|---|---|\n| x | 1 |\n\n---\n\n\
        [web](https://example.com) [mail](mailto:a@b.c) [rel](../x) \
        [js](javascript:alert(1)) [JS](JaVaScRiPt:alert(1)) [data](data:text/html,x) \
        [proto](//evil.example) [vb](vbscript:x) ![img](https://example.com/i.png)\n\n\
        <div onclick=\"alert(1)\">raw</div><iframe src=\"x\"></iframe>";
    let result = b.execute_async(
        r#"const [source, done] = arguments;
           import("./js/markdown.js").then((m) => {
             const root = m.renderMarkdown(source);
             const q = (css) => root.querySelectorAll(css).length;
             done({
               h1: root.querySelector("h1")?.textContent,
               em: root.querySelector("em")?.textContent,
               strong: root.querySelector("strong")?.textContent,
               code: root.querySelector("p code")?.textContent,
               del: q("del"),
               pre: root.querySelector("pre code.language-html")?.textContent,
               ol: q("ol > li"), ul: q("ul > li"), quote: q("blockquote"),
               cells: q("table td"), hr: q("hr"),
               hrefs: [...root.querySelectorAll("a")].map((a) => a.getAttribute("href")),
               unsafe: q(".unsafe-link"),
               active: q("script, iframe, img, b, div[onclick], [onclick], [onerror]"),
               text: root.textContent,
             });
           }, (err) => done({ error: String(err) }));"#,
        &[json!(source)],
    );
    assert_eq!(result["error"], serde_json::Value::Null, "{result}");
    assert_eq!(result["h1"], "Title");
    assert_eq!(result["em"], "soft");
    assert_eq!(result["strong"], "strong");
    assert_eq!(result["code"], "code");
    assert_eq!(result["del"], 1);
    assert_eq!(result["pre"], "<b onclick=\"x()\">not bold</b>");
    assert_eq!(
        (result["ol"].as_u64(), result["ul"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (result["quote"].as_u64(), result["cells"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(result["hr"], 1);
    assert_eq!(
        result["hrefs"],
        json!([
            "https://example.com",
            "mailto:a@b.c",
            "../x",
            "https://example.com/i.png"
        ])
    );
    assert_eq!(result["unsafe"], 5);
    assert_eq!(result["active"], 0);
    let text = result["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("<div onclick=\"alert(1)\">raw</div>"),
        "{text}"
    );
    b.assert_no_console_errors();
}
