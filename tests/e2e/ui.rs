//! The embedded web UI in a real headless Chromium (see `browser.rs`): the page loads,
//! shows the server's status, and logs no JavaScript errors. Skipped when Chromium is not
//! installed, required under `CI=true`.

use std::time::Duration;

use serde_json::json;

use crate::browser::{Browser, WAIT};
use crate::support::{Sandbox, Server};

fn serve(sb: &Sandbox) -> Server {
    let mut cmd = sb.run_agent();
    cmd.arg("serve").env("CONDUCTOR_HOST", "127.0.0.1");
    Server::start(cmd, sb.path())
}

#[test]
fn ui_shows_server_status_without_console_errors() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve(&sb);
    let root = sb.path().join("run-agent").display().to_string();

    browser.goto(&format!("{}/ui/#/about", server.base));
    browser.wait_until("the page shows the server's root path", WAIT, |b| {
        b.body_text().contains(&root)
    });
    assert!(browser.title().contains("Conductor"), "{}", browser.title());
    assert!(
        browser.current_url().ends_with("/ui/#/about"),
        "{}",
        browser.current_url()
    );
    // The page declares its icon inline, so not even /favicon.ico is requested.
    let errors = browser.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// Proves the harness itself on the served page, with elements the test adds: typing,
/// clicking, confirm() dialogs, scripts, cookies, screenshots and console error capture.
#[test]
fn harness_drives_inputs_dialogs_scripts_and_console() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let sb = Sandbox::new();
    let server = serve(&sb);
    browser.goto(&format!("{}/ui/", server.base));
    browser.execute(
        r#"const box = document.createElement("div");
           box.id = "harness";
           box.innerHTML = '<input id="name" value="old"><button id="ask">Ask</button>'
             + '<p id="answer"></p><p id="late" hidden>late</p>';
           document.body.appendChild(box);
           document.getElementById("ask").onclick = () => {
             const name = document.getElementById("name").value;
             document.getElementById("answer").textContent =
               confirm("Delete " + name + "?") ? "yes " + name : "no " + name;
           };
           setTimeout(() => { document.getElementById("late").hidden = false; }, 300);"#,
        &[],
    );

    let input = browser.wait_for("#harness #name", WAIT);
    assert_eq!(input.prop("value"), json!("old"));
    input.clear();
    input.send_keys("run-1");
    assert_eq!(input.prop("value"), json!("run-1"));
    assert_eq!(input.attr("id").as_deref(), Some("name"));
    assert_eq!(input.attr("nonexistent"), None);

    let ask = browser.find("#ask");
    ask.click();
    assert_eq!(browser.wait_for_alert(WAIT), "Delete run-1?");
    browser.accept_alert();
    assert_eq!(browser.alert_text(), None);
    assert_eq!(browser.text("#answer"), "yes run-1");
    ask.click();
    assert_eq!(browser.wait_for_alert(WAIT), "Delete run-1?");
    browser.dismiss_alert();
    assert_eq!(browser.text("#answer"), "no run-1");

    let late = browser.wait_for_visible("#late", WAIT);
    assert_eq!(late.text(), "late");
    assert_eq!(browser.find("#harness").find_all("p").len(), 2);
    assert!(browser
        .try_find("#absent")
        .unwrap_err()
        .is_no_such_element());
    assert!(browser.find_all("#absent").is_empty());

    assert_eq!(
        browser.execute("return arguments[0] + 1;", &[json!(41)]),
        42
    );
    let name = browser.execute("return arguments[0].value;", &[input.to_json()]);
    assert_eq!(name, "run-1");
    let later = browser.execute_async(
        "const done = arguments[arguments.length - 1]; setTimeout(() => done('later'), 10);",
        &[],
    );
    assert_eq!(later, "later");
    assert!(browser.page_source().contains("id=\"harness\""));

    browser.set_cookie("harness", "c1");
    assert_eq!(browser.cookie("harness").as_deref(), Some("c1"));

    let shot = sb.path().join("page.png");
    browser.screenshot(&shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");

    // Console capture sees both console.error and uncaught exceptions.
    browser.console_errors();
    browser.execute(
        "console.error('harness-error-1'); setTimeout(() => { throw new Error('harness-error-2'); });",
        &[],
    );
    let mut seen = Vec::new();
    browser.wait_until(
        "both errors reach the browser log",
        Duration::from_secs(20),
        |b| {
            seen.extend(b.console_errors());
            seen.iter().any(|m| m.contains("harness-error-1"))
                && seen.iter().any(|m| m.contains("harness-error-2"))
        },
    );
}
