//! Shared test helpers: run the binaries with an isolated HOME, start servers on free
//! loopback ports, and make sure no process outlives its test.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The fake agent CLI of the tests (its behaviour is driven by `FAKE_*` variables).
pub const FAKE_AGENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fake-agents/fake-agent.sh"
);

/// The readable run records in `runs_dir` (a task's `runs/`), oldest first by run id; none
/// when the directory does not exist.
pub fn run_infos(runs_dir: &Path) -> Vec<conductor::storage::RunInfo> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs_dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.iter()
        .filter_map(|d| conductor::storage::RunInfo::read(&d.join("run-info.yaml")).ok())
        .collect()
}

/// Path of the built `run-agent` binary.
pub fn run_agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_run-agent"))
}

/// Path of the built `conductor` binary.
pub fn conductor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_conductor"))
}

/// A temp directory used as `$HOME` and working directory, so no test sees the user's config.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command for `bin` with HOME and cwd set to the sandbox and conductor env cleared.
    pub fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.path())
            .env("HOME", self.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        for (key, _) in std::env::vars() {
            if key.starts_with("CONDUCTOR_") || key.starts_with("JRUN_") || key == "RUNS_DIR" {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    pub fn run_agent(&self) -> Command {
        self.command(&run_agent_bin())
    }

    pub fn conductor(&self) -> Command {
        self.command(&conductor_bin())
    }

    /// Puts the fake agent (`tests/fake-agents/fake-agent.sh`) into `<sandbox>/bin` under each
    /// of `names` (e.g. `claude`, `codex`, `gemini`).
    pub fn install_fake_clis(&self, names: &[&str]) {
        let bin = self.path().join("bin");
        std::fs::create_dir_all(&bin).expect("create bin dir");
        for name in names {
            std::os::unix::fs::symlink(FAKE_AGENT, bin.join(name)).expect("link fake CLI");
        }
    }

    /// `run-agent` with `<sandbox>/bin` first on PATH and no inherited `FAKE_*` variable.
    pub fn run_agent_with_fake_clis(&self) -> Command {
        let mut cmd = self.run_agent();
        let path = format!(
            "{}:{}",
            self.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path);
        for (key, _) in std::env::vars() {
            if key.starts_with("FAKE_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Writes `config.yaml` with one `command` agent called `name` running the fake agent,
    /// and returns its path.
    pub fn fake_agent_config(&self, name: &str) -> PathBuf {
        self.write(
            "config.yaml",
            &format!("agents:\n  {name}:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\n"),
        )
    }

    /// Writes `contents` to `name` inside the sandbox and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

/// Runs `cmd` to completion and returns its output. Output is collected while the child
/// runs (no pipe can fill up); a child still running after 60 s is killed and the test fails.
pub fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("collect output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("command did not finish in 60 s");
        }
    }
}

/// stdout and stderr of an output as one string, for error messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Kills the child (and waits for it) when dropped, so no test leaves a process behind.
pub struct ChildGuard(pub Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A running server process; killed on drop.
pub struct Server {
    pub child: ChildGuard,
    pub base: String,
    pub stderr_path: PathBuf,
}

impl Server {
    /// Starts `cmd` (a `serve` command) with stderr to a file, waits for its
    /// "API listening on <url>" log line and for `/healthz` to answer there.
    pub fn start(mut cmd: Command, log_dir: &Path) -> Server {
        let stderr_path = log_dir.join(format!("server-{}.log", fastrand::u64(..)));
        let log = std::fs::File::create(&stderr_path).expect("create server log");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        let mut server = Server {
            child: ChildGuard(Some(child)),
            base: String::new(),
            stderr_path,
        };
        server.wait_healthy(Duration::from_secs(30));
        server
    }

    fn wait_healthy(&mut self, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(child) = self.child.0.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("server exited early ({status}): {}", self.log());
                }
            }
            if self.base.is_empty() {
                if let Some(url) = listening_url(&self.log()) {
                    self.base = url;
                }
            }
            if !self.base.is_empty() && http_get(&format!("{}/healthz", self.base)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server not healthy in {limit:?}: {}", self.log());
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in base URL")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// GET `path` and parse the JSON body.
    pub fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = http_get(&format!("{}{path}", self.base)).expect("GET");
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
        (status, value)
    }

    /// POST `body` as JSON to `path`; the answer's status and JSON (or a JSON string).
    pub fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .post(&format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .expect("POST");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("read body");
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.0.take().expect("server running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("server ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A plain GET returning status and body; non-2xx statuses are not errors.
pub fn http_get(url: &str) -> Result<(u16, String), ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent.get(url).call()?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string()?;
    Ok((status, body))
}

/// The base URL from a server log's "API listening on http://host:port/api/v1/" line.
pub fn listening_url(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("API listening on "))?;
    let rest = line.split("API listening on ").nth(1)?;
    let url: String = rest
        .chars()
        .take_while(|c| !matches!(c, '"' | ' ' | '}'))
        .collect();
    let url = url.trim_end_matches("/api/v1/").trim_end_matches('/');
    Some(url.replace("localhost", "127.0.0.1"))
}

/// Sends `request` (a full raw HTTP/1.1 request, `Connection: close` advised) to
/// 127.0.0.1:`port` and returns the status and the body (headers stripped).
pub fn raw_http(port: u16, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Whether `pid` is a live process (a zombie counts as gone): the product's own rule.
pub fn alive(pid: i32) -> bool {
    conductor::process::pid_alive(i64::from(pid))
}

/// Polls `check` every 50 ms until it holds; fails the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `run-agent serve` on `<sandbox>/root` with the config file `config` and `env` for the
/// server (and so for its agents).
pub fn serve_config(sb: &Sandbox, config: &str, env: &[(&str, &str)]) -> Server {
    let config = sb.write("config.yaml", config);
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(&config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::start(cmd, sb.path())
}

/// A `run-agent serve` on `<sandbox>/root` (created), with `config` as its config file.
pub fn serve_root(sb: &Sandbox, config: Option<&str>) -> Server {
    let root = sb.path().join("root");
    std::fs::create_dir_all(&root).expect("create root");
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(&root);
    if let Some(text) = config {
        cmd.arg("--config").arg(sb.write("config.yaml", text));
    }
    Server::start(cmd, sb.path())
}

/// Opens a server-sent event stream (optionally resuming after `last_id`) and returns an
/// iterator of its events as (event, id, data); it ends when the server closes the stream.
pub fn sse_events(
    url: &str,
    last_id: Option<&str>,
) -> impl Iterator<Item = (String, String, String)> {
    use std::io::BufRead;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.call().expect("open the event stream");
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let mut lines = std::io::BufReader::new(resp.into_body().into_reader()).lines();
    std::iter::from_fn(move || {
        let mut cur = (String::new(), String::new(), String::new());
        loop {
            let line = lines.next()?.ok()?;
            if line.is_empty() {
                if cur.0.is_empty() {
                    continue;
                }
                return Some(cur);
            }
            if let Some(v) = line.strip_prefix("event:") {
                cur.0 = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                cur.1 = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                cur.2 = v.trim_start().to_string();
            }
        }
    })
}

/// Appends `text` to the file at `path` (created when missing), as an agent writes its log.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// A `running` run written into a tree, kept running by a live stand-in process (killed on
/// drop), with `one\ntwo\n` on stdout and `warn\n` on stderr.
pub struct LiveRun {
    /// The run directory.
    pub dir: PathBuf,
    /// The record as written (change it and write it again to end the run).
    pub info: conductor::storage::RunInfo,
    _process: ChildGuard,
}

impl LiveRun {
    /// Writes run `run` of `demo/task-1` under `root`.
    pub fn write(root: &Path, run: &str) -> LiveRun {
        let dir = root.join("demo/task-1/runs").join(run);
        std::fs::create_dir_all(&dir).expect("create run dir");
        let process = ChildGuard(Some(
            Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawn sleep"),
        ));
        let pid = i64::from(process.0.as_ref().map_or(0, Child::id));
        let mut info = conductor::storage::RunInfo::new_running(
            run,
            "demo",
            "task-1",
            "command",
            chrono::Utc::now(),
        );
        info.pid = pid;
        info.pgid = pid;
        info.pid_start_time = conductor::process::start_time(pid);
        info.write(&dir.join("run-info.yaml"))
            .expect("write run-info");
        append(&dir.join("agent-stdout.txt"), "one\ntwo\n");
        append(&dir.join("agent-stderr.txt"), "warn\n");
        LiveRun {
            dir,
            info,
            _process: process,
        }
    }
}
