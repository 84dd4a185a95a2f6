//! Fixtures: the environments tests run in — the binaries, a sandbox with an isolated HOME,
//! servers on free loopback ports, and guards so no process outlives its test.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// The fake agent CLI of the tests (its behaviour is driven by `FAKE_*` variables).
pub const FAKE_AGENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fake-agents/fake-agent.sh"
);

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

    /// `<sandbox>/root`, the runs root most tests use (not created).
    pub fn root(&self) -> PathBuf {
        self.path().join("root")
    }

    /// A sandbox with the fake agent installed as `claude`, `codex` and `gemini` in
    /// `<sandbox>/bin` (see [`Sandbox::run_agent_with_fake_clis`]).
    pub fn with_fake_clis() -> Self {
        let sb = Self::new();
        sb.install_fake_clis(&["claude", "codex", "gemini"]);
        sb
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

    /// `run-agent serve` on `<sandbox>/root` with the fake CLIs first on PATH; add a config
    /// or `FAKE_*` variables, then [`Server::start`] it.
    pub fn serve_with_fake_clis(&self) -> Command {
        let mut cmd = self.run_agent_with_fake_clis();
        cmd.args(["serve", "--host", "127.0.0.1", "--root"])
            .arg(self.root());
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

/// Kills the child (and waits for it) when dropped, so no test leaves a process behind.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    /// Starts `cmd` in the background with its stdout piped (read by [`ChildGuard::output`])
    /// and its stderr discarded.
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn command");
        ChildGuard(Some(child))
    }

    /// Starts `cmd` in the background with its stdout and stderr discarded.
    pub fn spawn_quiet(cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn command");
        ChildGuard(Some(child))
    }

    /// Waits for the child to end and returns its output; the guard is empty afterwards.
    pub fn output(&mut self) -> std::process::Output {
        self.0
            .take()
            .expect("child running")
            .wait_with_output()
            .expect("wait for the child")
    }
}

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

/// Spawns `cmd`, retrying for a while when its program is "text file busy": a test that has
/// just copied a binary (the update tests) can race another test's fork, whose child holds the
/// copy's write descriptor open until it execs.
pub fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Server {
    /// Starts `cmd` (a `serve` command) with stderr to a file, waits for its
    /// "API listening on <url>" log line and for `/healthz` to answer there.
    pub fn start(mut cmd: Command, log_dir: &Path) -> Server {
        let stderr_path = log_dir.join(format!("server-{}.log", fastrand::u64(..)));
        let log = std::fs::File::create(&stderr_path).expect("create server log");
        cmd.stdout(Stdio::null()).stderr(log);
        let child = spawn_retrying_busy(&mut cmd).expect("spawn server");
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
        self.post_json_with(&http_agent(None), path, body)
    }

    /// [`Server::post_json`] with `agent` (for its timeout).
    pub fn post_json_with(
        &self,
        agent: &ureq::Agent,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let (status, text) = post_json_text(agent, &format!("{}{path}", self.base), &body);
        (status, json_or_text(text))
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

/// A `run-agent serve` on `<sandbox>/root` with the config file `config` and `env` for the
/// server (and so for its agents).
pub fn serve_config(sb: &Sandbox, config: &str, env: &[(&str, &str)]) -> Server {
    serve_config_file(sb, &sb.write("config.yaml", config), env)
}

/// A `run-agent serve` on `<sandbox>/root` with the config file at `config` and `env` for
/// the server.
pub fn serve_config_file(sb: &Sandbox, config: &Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::start(cmd, sb.path())
}

/// A `run-agent serve` on `root`, without a config file.
pub fn serve_at(sb: &Sandbox, root: &Path) -> Server {
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(root);
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
