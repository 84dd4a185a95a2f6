//! A small W3C WebDriver client driving a real headless Chromium through `chromedriver`,
//! for the web UI tests. One browser runs at a time across the test binary (a process-wide
//! lock), and dropping a [`Browser`] ends the session, kills chromedriver and every process
//! it started (its own process group), and removes the temporary profile, also when the
//! test panics.
//!
//! Without `chromium`/`chromedriver` on the machine, [`Browser::start`] returns `None` and
//! the test skips itself; under `CI=true` it panics instead, so CI cannot pass silently.
#![allow(dead_code)]

use std::fmt;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Flags every Chromium must get here: headless as root, and no background networking
/// (this machine's closed network refuses those connections).
const CHROME_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// The W3C key of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A generous bound to pass as the `timeout` of the `wait_*` helpers.
pub const WAIT: Duration = Duration::from_secs(20);

/// Poll interval of every waiting loop.
const POLL: Duration = Duration::from_millis(75);

/// Only one browser at a time: Chromium is heavy on a 2-core machine.
static BROWSER_LOCK: Mutex<()> = Mutex::new(());

/// An error answered by chromedriver (`error` is the W3C error code, such as
/// `no such element`), or a transport failure (`error` is `transport`).
#[derive(Debug, Clone)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl WdError {
    /// The selector matched nothing.
    pub fn is_no_such_element(&self) -> bool {
        self.error == "no such element"
    }

    /// The element was removed from the page since it was found.
    pub fn is_stale(&self) -> bool {
        self.error == "stale element reference"
    }

    /// No `alert`/`confirm`/`prompt` dialog is open.
    pub fn is_no_such_alert(&self) -> bool {
        self.error == "no such alert"
    }
}

impl fmt::Display for WdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// One browser console message (`level` is `SEVERE`, `WARNING`, `INFO`, ...).
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

/// The chromedriver process, in its own process group, with `HOME` inside the browser's
/// temp dir. Stopping it kills the group and every process naming the temp dir.
struct Driver {
    child: Option<Child>,
    log_path: PathBuf,
    /// The browser's temp dir followed by `/`: Chromium's crash handler leaves the process
    /// group, but its command line names its database under this `HOME`.
    marker: String,
    pgid: nix::unistd::Pid,
}

impl Driver {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills chromedriver, Chromium and its helpers, and waits (bounded) until none runs.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let kill = |pids: &[nix::unistd::Pid]| {
            let _ = nix::sys::signal::killpg(self.pgid, nix::sys::signal::Signal::SIGKILL);
            for pid in pids {
                let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
            }
        };
        kill(&self.processes(false));
        let _ = child.wait();
        let start = Instant::now();
        loop {
            let alive = self.processes(false);
            if alive.is_empty() || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            kill(&alive);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until init has reaped the killed processes, so `pgrep` right after
    /// a test shows no `<defunct>` entries. Cosmetic: they are dead already.
    fn wait_reaped(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) && !self.processes(true).is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Processes in the driver's group or naming the temp dir (zombies with `zombies`).
    fn processes(&self, zombies: bool) -> Vec<nix::unistd::Pid> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let own_group = self.pgid.as_raw().to_string();
        entries
            .flatten()
            .filter_map(|entry| {
                let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // After the parenthesised command name: state ppid pgrp ...
                let (_, rest) = stat.rsplit_once(')')?;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                if fields.len() < 3 || (!zombies && fields[0] == "Z") {
                    return None;
                }
                let in_group = fields[2] == own_group;
                let names_dir = || {
                    std::fs::read(entry.path().join("cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(&self.marker))
                        .unwrap_or(false)
                };
                (in_group || names_dir()).then_some(nix::unistd::Pid::from_raw(pid))
            })
            .collect()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A headless Chromium session. Dropping it closes the browser and cleans up.
pub struct Browser {
    agent: ureq::Agent,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    // Field order matters: the driver's processes die before the temp dir is removed.
    driver: Driver,
    work: tempfile::TempDir,
    lock: Option<MutexGuard<'static, ()>>,
}

/// Where the browser binaries are, or `None` with the reason.
fn locate_binaries() -> Result<(PathBuf, PathBuf), String> {
    let driver = locate(
        "CHROMEDRIVER",
        &["/usr/bin/chromedriver"],
        &["chromedriver"],
    );
    let chrome = locate(
        "CHROME_BIN",
        &["/usr/bin/chromium"],
        &["chromium", "chromium-browser"],
    );
    match (driver, chrome) {
        (Ok(d), Ok(c)) => Ok((d, c)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The binary named by `env` (which must then exist), else the first existing default
/// path, else the first of `names` found on `PATH`.
fn locate(env: &str, defaults: &[&str], names: &[&str]) -> Result<PathBuf, String> {
    if let Some(value) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "${env}={} is not an executable file",
                path.display()
            ))
        };
    }
    if let Some(path) = defaults
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
    {
        return Ok(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path_var) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(format!("none of {} found (set ${env})", names.join(", ")))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. Returns `None` (after printing
    /// a skip notice) when the binaries are missing, unless `CI=true`, where that panics.
    pub fn start() -> Option<Browser> {
        let (driver_bin, chrome_bin) = match locate_binaries() {
            Ok(found) => found,
            Err(reason) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!(
                        "CI=true but chromium/chromedriver not found: install chromium \
                         chromium-driver ({reason})"
                    );
                }
                eprintln!(
                    "SKIPPED browser test: chromium/chromedriver not found ({reason}); \
                     install chromium chromium-driver to run it"
                );
                return None;
            }
        };
        let lock = BROWSER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let work = tempfile::tempdir().expect("create browser temp dir");
        let profile = work.path().join("profile");
        std::fs::create_dir(&profile).expect("create browser profile dir");
        let agent: ureq::Agent = crate::support::http_agent(Some(Duration::from_secs(90)));

        // A free port can be taken between probing and binding: retry on early exit.
        let mut attempt = 0;
        let (driver, base) = loop {
            attempt += 1;
            let port = free_port();
            let log_path = work.path().join(format!("chromedriver-{attempt}.log"));
            let driver = spawn_driver(&driver_bin, port, &log_path, work.path());
            let base = format!("http://127.0.0.1:{port}");
            match wait_driver_ready(&agent, &base, driver) {
                Ok(driver) => break (driver, base),
                Err(log) if attempt < 3 => {
                    eprintln!("chromedriver failed to start, retrying: {log}")
                }
                Err(log) => panic!("chromedriver did not become ready: {log}"),
            }
        };

        let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "goog:chromeOptions": {
                        "binary": chrome_bin.display().to_string(),
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    // Dialogs stay open until the test accepts or dismisses them.
                    "unhandledPromptBehavior": "ignore",
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
                }
            }
        });
        let created = request(&agent, "POST", &format!("{base}/session"), Some(&caps));
        let session_id = match created {
            Ok(value) => value["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("new session answer has no sessionId: {value}"))
                .to_string(),
            Err(err) => {
                let log = driver.log();
                drop(driver);
                panic!(
                    "could not start Chromium ({}): {err}\n{log}",
                    chrome_bin.display()
                );
            }
        };
        Some(Browser {
            agent,
            session: format!("{base}/session/{session_id}"),
            driver,
            work,
            lock: Some(lock),
        })
    }

    /// Sends a WebDriver command relative to the session (`path` like `/url`); returns the
    /// answer's `value`.
    pub fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, WdError> {
        request(
            &self.agent,
            method,
            &format!("{}{path}", self.session),
            body,
        )
    }

    /// Like [`Browser::command`] but panics with the command and error.
    fn must(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.command(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} failed: {e}"))
    }

    /// Navigates to `url` and waits for the page load.
    pub fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Reloads the page.
    pub fn refresh(&self) {
        self.must("POST", "/refresh", Some(&json!({})));
    }

    /// Goes back in history.
    pub fn back(&self) {
        self.must("POST", "/back", Some(&json!({})));
    }

    pub fn current_url(&self) -> String {
        string(self.must("GET", "/url", None))
    }

    pub fn title(&self) -> String {
        string(self.must("GET", "/title", None))
    }

    /// The first element matching the CSS selector, or the WebDriver error.
    pub fn try_find(&self, css: &str) -> Result<Element<'_>, WdError> {
        let value = self.command("POST", "/element", Some(&by_css(css)))?;
        Ok(self.element(&value))
    }

    /// The first element matching `css`; panics (with the page text) when there is none.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.try_find(css).unwrap_or_else(|e| {
            panic!(
                "no element for {css:?}: {e}\npage text:\n{}",
                self.body_text()
            )
        })
    }

    /// Every element matching `css`, in document order (possibly none).
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let value = self.must("POST", "/elements", Some(&by_css(css)));
        elements(self, &value)
    }

    /// Waits (polling) until an element matches `css`, and returns it.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        let mut found = None;
        self.wait_until(&format!("an element matches {css:?}"), timeout, |b| {
            found = b.try_find(css).ok().map(|e| e.id);
            found.is_some()
        });
        Element {
            browser: self,
            id: found.expect("set when the wait succeeded"),
        }
    }

    /// Waits (polling) until an element matching `css` is displayed, and returns it.
    pub fn wait_for_visible(&self, css: &str, timeout: Duration) -> Element<'_> {
        let mut found = None;
        self.wait_until(
            &format!("an element matching {css:?} is displayed"),
            timeout,
            |b| {
                found = b
                    .find_all(css)
                    .into_iter()
                    .find(|e| e.try_is_displayed().unwrap_or(false))
                    .map(|e| e.id);
                found.is_some()
            },
        );
        Element {
            browser: self,
            id: found.expect("set when the wait succeeded"),
        }
    }

    /// Polls `condition` every ~75 ms until it holds; panics after `timeout` with
    /// `description`, the URL and the page text.
    pub fn wait_until(
        &self,
        description: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Browser) -> bool,
    ) {
        let start = Instant::now();
        loop {
            if condition(self) {
                return;
            }
            if start.elapsed() >= timeout {
                let url = match self.command("GET", "/url", None) {
                    Ok(url) => string(url),
                    Err(e) => format!("<unavailable: {e}>"),
                };
                panic!(
                    "timed out after {timeout:?} waiting until {description}\nurl: {url}\n\
                     page text:\n{}",
                    self.body_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The visible text of the first element matching `css` (panics if none).
    pub fn text(&self, css: &str) -> String {
        self.find(css).text()
    }

    /// `document.body.innerText`, or a note saying why it is unavailable (an open dialog,
    /// no body yet); never panics, so it is safe in failure messages.
    pub fn body_text(&self) -> String {
        let script = json!({
            "script": "return document.body ? document.body.innerText : '';",
            "args": [],
        });
        match self.command("POST", "/execute/sync", Some(&script)) {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => format!("<page text unavailable: {e}>"),
        }
    }

    /// Runs `script` as a function body in the page (`arguments[i]` are `args`; elements are
    /// passed with [`Element::to_json`]); returns what it `return`s.
    pub fn try_execute(&self, script: &str, args: &[Value]) -> Result<Value, WdError> {
        let body = json!({ "script": script, "args": args });
        self.command("POST", "/execute/sync", Some(&body))
    }

    /// [`Browser::try_execute`], panicking on a script error.
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.try_execute(script, args)
            .unwrap_or_else(|e| panic!("script failed: {e}\nscript: {script}"))
    }

    /// Runs an asynchronous script: it finishes by calling
    /// `arguments[arguments.length - 1](result)` (within the 30 s script timeout).
    pub fn execute_async(&self, script: &str, args: &[Value]) -> Value {
        let body = json!({ "script": script, "args": args });
        self.command("POST", "/execute/async", Some(&body))
            .unwrap_or_else(|e| panic!("async script failed: {e}\nscript: {script}"))
    }

    /// The current DOM serialised as HTML.
    pub fn page_source(&self) -> String {
        string(self.must("GET", "/source", None))
    }

    /// Saves a PNG screenshot of the viewport to `path` (for debugging failures).
    pub fn screenshot(&self, path: &Path) {
        let encoded = string(self.must("GET", "/screenshot", None));
        let png = decode_base64(&encoded).expect("screenshot is base64");
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("write screenshot {}: {e}", path.display()));
    }

    /// Types `keys` into whatever has the focus, as a user would (W3C key actions: each
    /// character pressed and released; WebDriver codes such as `\u{E007}` for Enter).
    pub fn press_keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.must("POST", "/actions", Some(&body));
    }

    /// Makes the page see `prefers-color-scheme: dark` (or light), through the DevTools
    /// protocol's media emulation.
    pub fn prefer_color_scheme(&self, scheme: &str) {
        let params =
            json!({"media": "", "features": [{"name": "prefers-color-scheme", "value": scheme}]});
        self.must(
            "POST",
            "/goog/cdp/execute",
            Some(&json!({"cmd": "Emulation.setEmulatedMedia", "params": params})),
        );
    }

    /// Sets the window's size in CSS pixels (the headless viewport follows it).
    pub fn set_window_size(&self, width: u32, height: u32) {
        self.must(
            "POST",
            "/window/rect",
            Some(&json!({"width": width, "height": height})),
        );
    }

    /// The text of the open `alert`/`confirm`/`prompt` dialog, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        match self.command("GET", "/alert/text", None) {
            Ok(value) => Some(string(value)),
            Err(e) if e.is_no_such_alert() => None,
            Err(e) => panic!("reading the alert text failed: {e}"),
        }
    }

    /// Waits until a dialog is open and returns its text.
    pub fn wait_for_alert(&self, timeout: Duration) -> String {
        let mut text = None;
        self.wait_until("a dialog is open", timeout, |b| {
            text = b.alert_text();
            text.is_some()
        });
        text.expect("set when the wait succeeded")
    }

    /// Presses OK on the open dialog (`confirm()` then returns true).
    pub fn accept_alert(&self) {
        self.must("POST", "/alert/accept", Some(&json!({})));
    }

    /// Presses Cancel on the open dialog (`confirm()` then returns false).
    pub fn dismiss_alert(&self) {
        self.must("POST", "/alert/dismiss", Some(&json!({})));
    }

    /// Sets a cookie for the current page's origin.
    pub fn set_cookie(&self, name: &str, value: &str) {
        let body = json!({ "cookie": { "name": name, "value": value } });
        self.must("POST", "/cookie", Some(&body));
    }

    /// The value of the cookie `name` visible to the current page.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str().map(str::to_string))
    }

    /// Every cookie visible to the current page, as WebDriver cookie objects.
    pub fn cookies(&self) -> Vec<Value> {
        match self.must("GET", "/cookie", None) {
            Value::Array(cookies) => cookies,
            other => panic!("cookies are not a list: {other}"),
        }
    }

    /// Browser console messages logged since the previous call (chromedriver hands each
    /// entry out once), including uncaught exceptions and failed resource loads.
    pub fn console_logs(&self) -> Vec<LogEntry> {
        let value = self.must("POST", "/se/log", Some(&json!({ "type": "browser" })));
        let Value::Array(entries) = value else {
            panic!("browser log is not a list: {value}");
        };
        entries
            .iter()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_string(),
                source: e["source"].as_str().unwrap_or_default().to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }

    /// The messages of `SEVERE` console entries (JS errors, `console.error`, failed
    /// loads) since the previous call to [`Browser::console_logs`]/`console_errors`.
    pub fn console_errors(&self) -> Vec<String> {
        self.console_logs()
            .into_iter()
            .filter(|e| e.level == "SEVERE")
            .map(|e| e.message)
            .collect()
    }

    /// Fails the test when the page logged an error since the previous look at the console:
    /// a script error, `console.error`, or a failed load (a network 404 included).
    pub fn assert_no_console_errors(&self) {
        let errors = self.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    }

    /// How many elements match `css` now.
    pub fn count(&self, css: &str) -> u64 {
        self.execute(
            "return document.querySelectorAll(arguments[0]).length;",
            &[json!(css)],
        )
        .as_u64()
        .unwrap_or(0)
    }

    /// The chromedriver (and Chromium stderr) log so far, for failure messages.
    pub fn driver_log(&self) -> String {
        self.driver.log()
    }

    fn element(&self, value: &Value) -> Element<'_> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {value}"));
        Element {
            browser: self,
            id: id.to_string(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Graceful first (chromedriver closes Chromium), then kill whatever is left.
        let quick: ureq::Agent = crate::support::http_agent(Some(Duration::from_secs(10)));
        let _ = request(&quick, "DELETE", &self.session, None);
        self.driver.stop();
        // The next browser may start while init reaps this one's dead processes.
        self.lock.take();
        self.driver.wait_reaped();
    }
}

/// An element of the page, valid until the page changes (then commands fail as stale).
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Element({})", self.id)
    }
}

impl Element<'_> {
    fn path(&self, tail: &str) -> String {
        format!("/element/{}{tail}", self.id)
    }

    fn must(&self, method: &str, tail: &str, body: Option<&Value>) -> Value {
        self.browser
            .command(method, &self.path(tail), body)
            .unwrap_or_else(|e| panic!("element {method} {tail} failed: {e}"))
    }

    /// The element as a script argument for [`Browser::execute`].
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    pub fn try_click(&self) -> Result<(), WdError> {
        self.browser
            .command("POST", &self.path("/click"), Some(&json!({})))
            .map(drop)
    }

    /// Clicks the element (scrolled into view; it must be displayed and enabled).
    pub fn click(&self) {
        self.must("POST", "/click", Some(&json!({})));
    }

    /// Types `text` into the element (appends to an input's value).
    pub fn send_keys(&self, text: &str) {
        self.must("POST", "/value", Some(&json!({ "text": text })));
    }

    /// Empties an input or textarea.
    pub fn clear(&self) {
        self.must("POST", "/clear", Some(&json!({})));
    }

    /// The rendered text (empty for hidden elements).
    pub fn text(&self) -> String {
        string(self.must("GET", "/text", None))
    }

    pub fn try_text(&self) -> Result<String, WdError> {
        self.browser
            .command("GET", &self.path("/text"), None)
            .map(string)
    }

    /// The HTML attribute `name` (as written in the markup), if present.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.must("GET", &format!("/attribute/{name}"), None)
            .as_str()
            .map(str::to_string)
    }

    /// The DOM property `name` (for example `value`, `checked`, `disabled`).
    pub fn prop(&self, name: &str) -> Value {
        self.must("GET", &format!("/property/{name}"), None)
    }

    pub fn try_is_displayed(&self) -> Result<bool, WdError> {
        let value = self
            .browser
            .command("GET", &self.path("/displayed"), None)?;
        Ok(value.as_bool().unwrap_or(false))
    }

    pub fn is_displayed(&self) -> bool {
        self.must("GET", "/displayed", None)
            .as_bool()
            .unwrap_or(false)
    }

    /// The first descendant matching `css` (panics if none).
    pub fn find(&self, css: &str) -> Element<'_> {
        let value = self.must("POST", "/element", Some(&by_css(css)));
        self.browser.element(&value)
    }

    /// Every descendant matching `css`.
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        let value = self.must("POST", "/elements", Some(&by_css(css)));
        elements(self.browser, &value)
    }
}

fn by_css(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

fn elements<'a>(browser: &'a Browser, value: &Value) -> Vec<Element<'a>> {
    match value {
        Value::Array(items) => items.iter().map(|v| browser.element(v)).collect(),
        other => panic!("elements answer is not a list: {other}"),
    }
}

fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Starts chromedriver in its own process group with `HOME` (and so Chromium's config,
/// cache and crash database) inside the browser's temp dir `work`.
fn spawn_driver(bin: &Path, port: u16, log_path: &Path, work: &Path) -> Driver {
    let log = File::create(log_path).expect("create chromedriver log");
    let log_err = log.try_clone().expect("clone chromedriver log handle");
    let home = work.join("home");
    std::fs::create_dir_all(&home).expect("create browser home");
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    Driver {
        pgid: nix::unistd::Pid::from_raw(child.id() as i32),
        child: Some(child),
        log_path: log_path.to_path_buf(),
        marker: format!("{}/", work.display()),
    }
}

/// Waits (bounded, 20 s) for `/status` to report ready; on failure kills the driver and
/// returns its log.
fn wait_driver_ready(
    agent: &ureq::Agent,
    base: &str,
    mut driver: Driver,
) -> Result<Driver, String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(child) = driver.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("chromedriver exited ({status}): {}", driver.log()));
            }
        }
        if let Ok(value) = request(agent, "GET", &format!("{base}/status"), None) {
            if value["ready"] == true {
                return Ok(driver);
            }
        }
        std::thread::sleep(POLL);
    }
    Err(format!("not ready in 20 s: {}", driver.log()))
}

/// One WebDriver HTTP exchange; returns the answer's `value` or its error.
fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, WdError> {
    let transport = |e: ureq::Error| WdError {
        error: "transport".to_string(),
        message: format!("{method} {url}: {e}"),
    };
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        ("POST", body) => agent
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .send(body.unwrap_or(&json!({})).to_string()),
        (other, _) => panic!("unsupported WebDriver method {other}"),
    };
    let mut response = response.map_err(transport)?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(transport)?;
    let parsed: Value = serde_json::from_str(&text).map_err(|e| WdError {
        error: "transport".to_string(),
        message: format!("{method} {url}: HTTP {status}, not JSON ({e}): {text}"),
    })?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if status >= 400 || value.get("error").is_some_and(Value::is_string) {
        return Err(WdError {
            error: value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(value)
}

/// Standard base64 (with padding, whitespace ignored), for screenshots.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let clean: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let trimmed = clean
        .strip_suffix(b"==")
        .or_else(|| clean.strip_suffix(b"="))
        .unwrap_or(&clean);
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | sextet(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
            2 => out.push((acc >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}

#[test]
fn base64_decodes_padded_and_unpadded_tails() {
    assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(decode_base64("aGVsbA==").unwrap(), b"hell");
    assert_eq!(decode_base64("aGVs\nbG8h").unwrap(), b"hello!");
    assert!(decode_base64("a$==").is_none());
}
