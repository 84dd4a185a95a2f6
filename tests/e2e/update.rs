//! e2e: self-update — a copy of the built `run-agent` serves from a temp dir and is updated
//! to a second, distinguishable build (the same bytes plus a suffix, so its sha256 differs):
//! idle update under a `/healthz` hammer (zero connection errors, same pid, backup kept),
//! drain behind an active root run, handoff with a real run in flight, every rollback path,
//! request errors (400/409/429), the CLI with `--wait`, and the offline status.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor::storage::{RunInfo, RunStatus};
use serde_json::{json, Value};

use crate::support::{free_port, ok_stdout, run, text, words, ChildGuard, Sandbox, Server};

use crate::support::FAKE_AGENT;
const ROUTE: &str = "/api/v1/admin/self-update";
/// Generous bound for one update (copies and fsyncs a ~50 MB debug binary).
const UPDATE_LIMIT: Duration = Duration::from_secs(90);

/// Kills a pid on drop (the server may end up under another pid after a rollback).
struct PidGuard(i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A sandbox with `bin/<name>` (a copy of a built binary) and a runs root.
struct World {
    sb: Sandbox,
    name: &'static str,
}

impl World {
    fn new() -> World {
        World::of("run-agent", crate::support::run_agent_bin())
    }

    /// The sandbox with `bin/<name>` a copy of `built`.
    fn of(name: &'static str, built: PathBuf) -> World {
        let sb = Sandbox::new();
        std::fs::create_dir_all(sb.path().join("bin")).unwrap();
        std::fs::create_dir_all(sb.path().join("root")).unwrap();
        std::fs::copy(&built, sb.path().join("bin").join(name)).unwrap();
        World { sb, name }
    }

    fn exe(&self) -> PathBuf {
        self.sb.path().join("bin").join(self.name)
    }

    fn root(&self) -> PathBuf {
        self.sb.path().join("root")
    }

    /// A second build: the binary with `suffix` appended (runs the same, hashes differently).
    fn candidate(&self, name: &str, suffix: &str) -> PathBuf {
        let path = self.sb.path().join(name);
        let built = match self.name {
            "conductor" => crate::support::conductor_bin(),
            _ => crate::support::run_agent_bin(),
        };
        let mut bytes = std::fs::read(built).unwrap();
        bytes.extend_from_slice(suffix.as_bytes());
        write_exe(&path, &bytes, 0o755);
        path
    }

    /// A shell script candidate.
    fn script(&self, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = self.sb.path().join(name);
        write_exe(&path, body.as_bytes(), mode);
        path
    }

    /// Starts the copied binary as a server on a free loopback port.
    fn serve(&self, extra: &[&str]) -> Server {
        let mut cmd = self.serve_cmd();
        cmd.args(extra);
        Server::start(cmd, self.sb.path())
    }

    /// The copied binary's `serve` on a free loopback port and the runs root.
    fn serve_cmd(&self) -> Command {
        let port = free_port().to_string();
        let mut cmd = self.sb.command(&self.exe());
        cmd.args(["serve", "--host", "127.0.0.1", "--port", &port, "--root"])
            .arg(self.root());
        cmd
    }

    /// A PATH with `fake-bin/claude` (the fake agent) first.
    fn path_with_fake_claude(&self) -> String {
        let bin = self.sb.path().join("fake-bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(FAKE_AGENT, bin.join("claude")).unwrap();
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// `server update status --offline --json` of the runs root, which must succeed.
    fn offline_status(&self) -> Value {
        let out = run(self
            .sb
            .command(&self.exe())
            .args([
                "server",
                "update",
                "status",
                "--offline",
                "--json",
                "--root",
            ])
            .arg(self.root()));
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn backups(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.sb.path().join("bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("{}.rollback-", self.name)))
            .collect();
        names.sort();
        names
    }
}

fn write_exe(path: &Path, bytes: &[u8], mode: u32) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
    drop(file);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// POST `body` to the self-update route: status, JSON body, Retry-After header.
fn post(server: &Server, body: &Value, key: Option<&str>) -> (u16, Value, Option<String>) {
    let agent = crate::support::http_agent(Some(Duration::from_secs(60)));
    let mut req = agent
        .post(format!("{}{ROUTE}", server.base))
        .content_type("application/json");
    if let Some(key) = key {
        req = req.header("Authorization", format!("Bearer {key}"));
    }
    let mut resp = req.send(body.to_string()).unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value, retry)
}

/// Starts an update to `binary` in `mode`, which must be accepted (202); the answer.
fn start_update(server: &Server, binary: &Path, mode: &str) -> Value {
    let (code, accepted, _) = post(
        server,
        &json!({ "binary_path": binary, "mode": mode }),
        None,
    );
    assert_eq!(code, 202, "{accepted}");
    accepted
}

/// The record of the first run under `runs_dir` once it runs with a pid, and a guard that
/// kills its process group.
fn wait_running_run(runs_dir: &Path) -> (PathBuf, PidGuard) {
    let info_path = wait_for("the run to start", Duration::from_secs(30), || {
        // The run directory (runs/ also holds the run's live marker file).
        let dir = std::fs::read_dir(runs_dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_dir())?;
        let info = RunInfo::read(&dir.join("run-info.yaml")).ok()?;
        (info.status == RunStatus::Running && info.pid > 0).then(|| dir.join("run-info.yaml"))
    });
    let agent = PidGuard(-(RunInfo::read(&info_path).unwrap().pgid as i32));
    (info_path, agent)
}

/// The record at `info_path` once its run has ended.
fn wait_run_end(info_path: &Path) -> RunInfo {
    wait_for("the run to finish", Duration::from_secs(60), || {
        let info = RunInfo::read(info_path).ok()?;
        info.status.is_terminal().then_some(info)
    })
}

fn update_status(server: &Server) -> Value {
    let (code, body) = server.get_json(ROUTE);
    assert_eq!(code, 200, "{body}");
    body
}

/// The running executable's sha256 from the status, once its background hash is done.
fn running_sha(server: &Server) -> String {
    wait_for("the executable hash", Duration::from_secs(60), || {
        let status = server.get_json("/api/v1/status").1;
        status["executable_sha256"].as_str().map(str::to_string)
    })
}

fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the update started at `started_at` is finished (idle or failed).
fn wait_finished(server: &Server, started_at: &Value) -> Value {
    wait_for("the update to finish", UPDATE_LIMIT, || {
        let s = update_status(server);
        let done = matches!(s["state"].as_str(), Some("idle" | "failed"));
        (done && s["started_at"] == *started_at && !s["history"].as_array()?.is_empty())
            .then_some(s)
    })
}

/// Hammers `/healthz` from `threads` threads, each with fresh connections, until stopped:
/// (successes, errors, slowest answer).
fn hammer(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: usize,
) -> std::thread::JoinHandle<(u64, Vec<String>, Duration)> {
    std::thread::spawn(move || {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut ok = 0u64;
                    let mut errors = Vec::new();
                    let mut slowest = Duration::ZERO;
                    while !stop.load(Ordering::Relaxed) {
                        let start = Instant::now();
                        match healthz_once(addr) {
                            Ok(()) => ok += 1,
                            Err(e) => errors.push(e),
                        }
                        slowest = slowest.max(start.elapsed());
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    (ok, errors, slowest)
                })
            })
            .collect();
        let mut total = (0u64, Vec::new(), Duration::ZERO);
        for worker in workers {
            let (ok, errors, slowest) = worker.join().unwrap();
            total.0 += ok;
            total.1.extend(errors);
            total.2 = total.2.max(slowest);
        }
        total
    })
}

fn healthz_once(addr: SocketAddr) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    if answer.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("unexpected answer: {answer:?}"))
    }
}

fn server_pid(server: &Server) -> i32 {
    server.get_json("/api/v1/status").1["pid"].as_i64().unwrap() as i32
}

#[test]
fn idle_update_swaps_the_binary_in_place_without_refusing_a_connection() {
    let w = World::new();
    let cand = w.candidate("cand", "build-2");
    let server = w.serve(&[]);
    let pid = server_pid(&server);
    let old_sha = running_sha(&server);
    assert_eq!(old_sha, sha256(&w.exe()));
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let hammering = hammer(addr, stop.clone(), 4);
    let (code, accepted, _) = post(&server, &json!({ "binary_path": cand }), None);
    assert_eq!(code, 202, "{accepted}");
    assert_eq!(accepted["state"], "applying");
    assert_eq!(accepted["mode"], "drain");
    assert_eq!(accepted["sha256"], sha256(&cand));
    let done = wait_finished(&server, &accepted["started_at"]);
    // Keep hammering the new image for a moment too.
    let after = Instant::now();
    while after.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, errors, slowest) = hammering.join().unwrap();
    eprintln!(
        "health checks during the update: {ok} ok, {} failed, slowest {slowest:?}",
        errors.len()
    );

    assert_eq!(done["state"], "idle", "{done}");
    let last = done["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "ok", "{done}");
    assert_eq!(last["from_sha256"], old_sha);
    assert_eq!(last["to_sha256"], sha256(&cand));
    assert!(last["to_version"]
        .as_str()
        .unwrap()
        .starts_with("run-agent "));
    assert_eq!(running_sha(&server), sha256(&cand), "{}", server.log());
    assert_eq!(server_pid(&server), pid, "exec keeps the pid");
    assert_eq!(sha256(&w.exe()), sha256(&cand));
    let backups = w.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(sha256(&w.sb.path().join("bin").join(&backups[0])), old_sha);
    assert!(
        errors.is_empty(),
        "{} of {} health checks failed during the update: {:?}",
        errors.len(),
        ok + errors.len() as u64,
        &errors[..errors.len().min(5)]
    );
    assert!(ok > 0);
    let audit = std::fs::read_to_string(w.root().join("_audit/audit.jsonl")).unwrap();
    for action in [
        "self-update.accepted",
        "self-update.applying",
        "self-update.applied",
    ] {
        assert!(
            audit.contains(action),
            "{action} missing from the audit log:\n{audit}"
        );
    }
    assert!(audit.contains("POST /api/v1/admin/self-update"), "{audit}");
    let status = server.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn bad_requests_are_refused_and_rate_limited() {
    let w = World::new();
    let plain = w.script("plain", "#!/bin/sh\necho v\n", 0o644);
    let cand = w.candidate("cand", "x");
    let server = w.serve(&[]);
    let cases = [
        (
            json!({ "binary_path": w.sb.path().join("missing") }),
            "does not exist",
        ),
        (json!({ "binary_path": w.sb.path() }), "not a regular file"),
        (json!({ "binary_path": plain }), "not executable"),
        (
            json!({ "binary_path": cand, "sha256": "0".repeat(64) }),
            "checksum mismatch",
        ),
        (json!({ "binary_path": cand, "bogus": 1 }), "unknown field"),
        (
            json!({ "binary_path": cand, "mode": "fast" }),
            "unknown variant",
        ),
    ];
    for (body, needle) in &cases {
        let (code, answer, _) = post(&server, body, None);
        assert_eq!(code, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    // Quick requests spend the burst: then one is refused until a token is back.
    let missing = json!({ "binary_path": w.sb.path().join("missing") });
    let (code, answer, retry) = (0..20)
        .map(|_| post(&server, &missing, None))
        .find(|(code, _, _)| *code != 400)
        .expect("rate limited within 20 requests");
    assert_eq!(code, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // Nothing changed.
    assert_eq!(update_status(&server)["state"], "idle");
    assert_eq!(running_sha(&server), sha256(&w.exe()));
    assert!(w.backups().is_empty());
}

/// A run-info.yaml saying `running` with `pid` = a live `sleep` (an active root run).
fn fake_active_run(root: &Path, sleep: &Child) {
    let run_id = "20260101-0000000000-1-1";
    let dir = root.join("demo/task-1/runs").join(run_id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut info = RunInfo::new_running(run_id, "demo", "task-1", "claude", chrono::Utc::now());
    info.pid = i64::from(sleep.id());
    info.pgid = info.pid;
    info.pid_start_time = conductor::process::start_time(info.pid);
    info.write(&dir.join("run-info.yaml")).unwrap();
}

#[test]
fn drain_defers_while_a_root_run_is_active_then_applies() {
    let w = World::new();
    let cand = w.candidate("cand", "drained");
    let sleep = Command::new("sleep").arg("120").spawn().unwrap();
    let mut sleep = ChildGuard(Some(sleep));
    fake_active_run(&w.root(), sleep.0.as_ref().unwrap());
    let server = w.serve(&[]);
    let old_sha = running_sha(&server);

    let accepted = start_update(&server, &cand, "drain");
    assert_eq!(accepted["state"], "deferred");
    assert_eq!(accepted["active_root_runs"], 1);
    let (code, conflict, _) = post(&server, &json!({ "binary_path": cand }), None);
    assert_eq!(code, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "conflict");
    // New root tasks are refused while the drain is in progress.
    let agent = crate::support::http_agent(None);
    let mut resp = agent
        .post(&format!("{}/api/v1/tasks", server.base))
        .header("Content-Type", "application/json")
        .send(json!({ "project_id": "demo", "prompt": "x", "agent": "claude" }).to_string())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(body.contains("self-update drain in progress"), "{body}");
    // Several re-checks later it is still deferred and nothing was swapped.
    std::thread::sleep(Duration::from_millis(2500));
    let status = update_status(&server);
    assert_eq!(status["state"], "deferred", "{status}");
    assert_eq!(status["active_root_runs"], 1);
    assert_eq!(running_sha(&server), old_sha);
    assert!(w.backups().is_empty());
    let view = w.offline_status();
    assert_eq!(view["state"], "deferred");
    assert_eq!(view["active_root_runs"], 1);

    // The run ends: the update applies.
    let mut child = sleep.0.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let done = wait_finished(&server, &accepted["started_at"]);
    assert_eq!(done["state"], "idle", "{done}");
    assert_eq!(
        done["history"].as_array().unwrap().last().unwrap()["mode"],
        "drain"
    );
    assert_eq!(running_sha(&server), sha256(&cand));
}

#[test]
fn candidate_failing_its_version_check_leaves_the_server_as_it_was() {
    let w = World::new();
    let failing = w.script("failing", "#!/bin/sh\necho 'nope' >&2\nexit 3\n", 0o755);
    let silent = w.script("silent", "#!/bin/sh\nexit 0\n", 0o755);
    let server = w.serve(&[]);
    let pid = server_pid(&server);
    let old_sha = running_sha(&server);
    for (cand, needle) in [(&failing, "exited with"), (&silent, "printed nothing")] {
        let (code, accepted, _) = post(&server, &json!({ "binary_path": cand }), None);
        assert_eq!(code, 202, "{accepted}");
        let done = wait_finished(&server, &accepted["started_at"]);
        assert_eq!(done["state"], "failed", "{done}");
        let error = done["last_error"].as_str().unwrap();
        assert!(
            error.contains("--version") && error.contains(needle),
            "{error}"
        );
        assert_eq!(running_sha(&server), old_sha);
        assert_eq!(sha256(&w.exe()), old_sha);
        assert_eq!(server_pid(&server), pid);
    }
    assert!(w.backups().is_empty(), "no swap, no backup");
    let history = update_status(&server)["history"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|h| h["result"] == "failed"));
}

#[test]
fn new_image_that_exits_at_startup_is_rolled_back_on_the_same_socket() {
    let w = World::new();
    let bad = w.script(
        "bad",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'bad 9.9'; exit 0; fi\necho 'bad image: exiting' >&2\nexit 1\n",
        0o755,
    );
    let server = w.serve(&[]);
    let old_sha = running_sha(&server);
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let hammering = hammer(addr, stop.clone(), 2);

    let accepted = start_update(&server, &bad, "handoff");
    let done = wait_finished(&server, &accepted["started_at"]);
    // The previous binary serves again (under the watchdog's pid) on the same port.
    let new_pid = server_pid(&server);
    let _guard = PidGuard(new_pid);
    stop.store(true, Ordering::Relaxed);
    let (ok, errors, _) = hammering.join().unwrap();

    assert_eq!(done["state"], "failed", "{done}");
    let error = done["last_error"].as_str().unwrap();
    assert!(
        error.contains("exited before it reported healthy"),
        "{error}"
    );
    assert!(error.contains("restored"), "{error}");
    assert_eq!(running_sha(&server), old_sha);
    assert_eq!(
        sha256(&w.exe()),
        old_sha,
        "the previous binary is back on disk"
    );
    assert!(server.log().contains("bad image: exiting"));
    assert!(
        errors.is_empty(),
        "{} failed of {}: {:?}",
        errors.len(),
        ok,
        &errors[..errors.len().min(5)]
    );
    let history = done["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["result"], "failed");
    assert_eq!(history.last().unwrap()["to_version"], "bad 9.9");
}

#[test]
fn handoff_does_not_wait_and_a_run_in_flight_finishes_with_its_real_exit_code() {
    let w = World::new();
    let path = w.path_with_fake_claude();
    let cand = w.candidate("cand", "handoff");
    let server = w.serve(&[]);
    let _job = ChildGuard::spawn_quiet(
        w.sb.command(&w.exe())
            .args(words(
                "job --project demo --task long --agent claude --prompt x --root",
            ))
            .arg(w.root())
            .env("PATH", path)
            .env("FAKE_SLEEP", "4")
            .env("FAKE_EXIT", "5"),
    );
    let runs_dir = w.root().join("demo/long/runs");
    let (info_path, _agent) = wait_running_run(&runs_dir);

    let accepted = start_update(&server, &cand, "handoff");
    assert_eq!(accepted["state"], "applying", "handoff does not drain");
    let done = wait_finished(&server, &accepted["started_at"]);
    assert_eq!(done["state"], "idle", "{done}");
    assert_eq!(running_sha(&server), sha256(&cand));
    let info = wait_run_end(&info_path);
    assert_eq!(info.exit_code, 5, "{info:?}");
    assert_eq!(info.status, RunStatus::Failed);
}

#[test]
fn cli_start_wait_status_and_errors() {
    let w = World::new();
    let cand = w.candidate("cand", "cli");
    let server = w.serve(&[]);
    let cli = |args: &[&str]| {
        let mut cmd = w.sb.command(&w.exe());
        cmd.args(args);
        cmd
    };
    // `server update start --wait` of `binary`.
    let start_and_wait = |binary: &Path| {
        let mut cmd = cli(&["server", "update", "start", "--wait"]);
        cmd.args(["--server", &server.base])
            .arg("--binary")
            .arg(binary);
        cmd
    };
    let stdout = ok_stdout(&run(
        start_and_wait(&cand).args(["--sha256", &sha256(&cand)])
    ));
    assert!(stdout.contains("update accepted"), "{stdout}");
    assert!(
        stdout.contains("updated: the server now runs run-agent"),
        "{stdout}"
    );
    assert_eq!(running_sha(&server), sha256(&cand));

    let out = run(&mut cli(&[
        "server",
        "update",
        "status",
        "--server",
        &server.base,
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("state:            idle"), "{stdout}");
    assert!(stdout.contains(" ok "), "{stdout}");

    // The same through `conductor update`, offline.
    let out = run(w
        .sb
        .conductor()
        .args(["update", "status", "--offline", "--json", "--root"])
        .arg(w.root()));
    assert!(out.status.success(), "{}", text(&out));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["history"][0]["result"], "ok");

    // A failing update with --wait exits non-zero with the reason.
    let failing = w.script("failing", "#!/bin/sh\nexit 2\n", 0o755);
    let out = run(&mut start_and_wait(&failing));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("update failed"),
        "{}",
        text(&out)
    );

    // HTTP errors and an unreachable server are clear, non-zero exits.
    let out = run(&mut cli(&[
        "server",
        "update",
        "start",
        "--server",
        &server.base,
        "--binary",
        "/nonexistent/x",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        text(&out)
    );
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(&mut cli(&["server", "update", "status", "--server", &dead]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the server"),
        "{}",
        text(&out)
    );
}

#[test]
fn admin_key_guards_the_route() {
    let w = World::new();
    let config = w.sb.write(
        "config.yaml",
        "api:\n  admin_key: admin-secret-0123456789\n",
    );
    let server = w.serve(&["--config", config.to_str().unwrap()]);
    let body = json!({ "binary_path": "/nonexistent/candidate" });
    let (code, answer, _) = post(&server, &body, None);
    assert_eq!(code, 401, "{answer}");
    let (code, answer, _) = post(&server, &body, Some("wrong-key"));
    assert_eq!(code, 401, "{answer}");
    let (code, answer, _) = post(&server, &body, Some("admin-secret-0123456789"));
    assert_eq!(code, 400, "authenticated, then validated: {answer}");
    let out =
        run(w
            .sb
            .command(&w.exe())
            .args(["server", "update", "status", "--server", &server.base]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        text(&out)
    );
    let out = run(w.sb.command(&w.exe()).args([
        "server",
        "update",
        "status",
        "--server",
        &server.base,
        "--api-key",
        "admin-secret-0123456789",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    let audit = std::fs::read_to_string(w.root().join("_audit/audit.jsonl")).unwrap();
    assert!(
        !audit.contains("admin-secret"),
        "the audit log never holds a key"
    );
}

const BAD_VERSION_OK: &str =
    "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'bad 9.9'; exit 0; fi\n";

#[test]
fn new_image_that_never_reports_healthy_is_killed_and_rolled_back() {
    let w = World::new();
    let hang = w.script("hang", &format!("{BAD_VERSION_OK}exec sleep 60\n"), 0o755);
    let port = free_port().to_string();
    let mut cmd = w.sb.command(&w.exe());
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port, "--root"])
        .arg(w.root())
        .env("CONDUCTOR_UPDATE_HEALTH_TIMEOUT", "2");
    let server = Server::start(cmd, w.sb.path());
    let old_sha = running_sha(&server);
    let (code, accepted, _) = post(&server, &json!({ "binary_path": hang }), None);
    assert_eq!(code, 202, "{accepted}");
    let done = wait_finished(&server, &accepted["started_at"]);
    let _guard = PidGuard(server_pid(&server));
    assert_eq!(done["state"], "failed", "{done}");
    let error = done["last_error"].as_str().unwrap();
    assert!(
        error.contains("did not report healthy within 2s"),
        "{error}"
    );
    assert_eq!(running_sha(&server), old_sha);
    assert_eq!(sha256(&w.exe()), old_sha);
}

#[test]
fn conductor_binary_updates_and_rolls_back_through_its_own_watchdog() {
    let w = World::of("conductor", crate::support::conductor_bin());
    let config = w.sb.write("config.yaml", "api:\n  host: 127.0.0.1\n");
    let port = free_port().to_string();
    let mut cmd = w.sb.command(&w.exe());
    cmd.args([
        "--config",
        config.to_str().unwrap(),
        "--port",
        &port,
        "--root",
    ])
    .arg(w.root());
    let server = Server::start(cmd, w.sb.path());
    let pid = server_pid(&server);

    let bad = w.script("bad", &format!("{BAD_VERSION_OK}exit 1\n"), 0o755);
    let (code, accepted, _) = post(&server, &json!({ "binary_path": bad }), None);
    assert_eq!(code, 202, "{accepted}");
    let done = wait_finished(&server, &accepted["started_at"]);
    let restored = server_pid(&server);
    let _guard = PidGuard(restored);
    assert_eq!(done["state"], "failed", "{done}");
    assert_ne!(restored, pid, "the watchdog restarted the previous binary");

    let cand = w.candidate("cand", "conductor-2");
    let (code, accepted, _) = post(&server, &json!({ "binary_path": cand }), None);
    assert_eq!(code, 202, "{accepted}");
    let done = wait_finished(&server, &accepted["started_at"]);
    assert_eq!(done["state"], "idle", "{done}");
    assert_eq!(running_sha(&server), sha256(&cand));
    assert_eq!(server_pid(&server), restored);
    let out = run(w
        .sb
        .command(&w.exe())
        .args(["update", "status", "--server", &server.base]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("state:            idle"));
}

#[test]
fn stopping_the_server_cancels_a_deferred_update() {
    let w = World::new();
    let cand = w.candidate("cand", "never");
    let sleep = Command::new("sleep").arg("120").spawn().unwrap();
    let _sleep = ChildGuard(Some(sleep));
    fake_active_run(&w.root(), _sleep.0.as_ref().unwrap());
    let server = w.serve(&[]);
    let old_sha = running_sha(&server);
    let (code, accepted, _) = post(&server, &json!({ "binary_path": cand }), None);
    assert_eq!(code, 202, "{accepted}");
    assert_eq!(accepted["state"], "deferred");
    let status = server.terminate();
    assert!(status.success(), "{status}");
    let view = w.offline_status();
    assert_eq!(view["state"], "failed", "{view}");
    assert!(
        view["last_error"].as_str().unwrap().contains("interrupted"),
        "{view}"
    );
    assert_eq!(sha256(&w.exe()), old_sha);
    assert!(w.backups().is_empty());
}

#[test]
fn drain_waits_for_a_task_started_through_the_api() {
    let w = World::new();
    let cand = w.candidate("cand", "after-task");
    let config = w.sb.write(
        "config.yaml",
        &format!(
            "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n"
        ),
    );
    let port = free_port().to_string();
    let mut cmd = w.sb.command(&w.exe());
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port, "--root"])
        .arg(w.root())
        .arg("--config")
        .arg(&config)
        .env("FAKE_SLEEP", "3")
        .env("FAKE_DONE_AFTER", "1");
    let server = Server::start(cmd, w.sb.path());
    let agent = crate::support::http_agent(None);
    let mut resp = agent
        .post(format!("{}/api/v1/tasks", server.base))
        .content_type("application/json")
        .send(json!({ "project_id": "demo", "task_id": "t1", "prompt": "work" }).to_string())
        .unwrap();
    let body = resp.body_mut().read_to_string().unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{body}");
    let task: Value = serde_json::from_str(&body).unwrap();
    let run_id = task["run_id"].as_str().unwrap().to_string();

    let (code, accepted, _) = post(&server, &json!({ "binary_path": cand }), None);
    assert_eq!(code, 202, "{accepted}");
    assert_eq!(accepted["state"], "deferred", "{accepted}");
    assert!(accepted["active_root_runs"].as_u64().unwrap() >= 1);
    let done = wait_finished(&server, &accepted["started_at"]);
    assert_eq!(done["state"], "idle", "{done}");
    assert_eq!(running_sha(&server), sha256(&cand));
    let info = RunInfo::read(
        &w.root()
            .join("demo/t1/runs")
            .join(&run_id)
            .join("run-info.yaml"),
    )
    .unwrap();
    assert_eq!(info.status, RunStatus::Completed, "{info:?}");
    let applied = done["history"].as_array().unwrap().last().unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    let applied = chrono::DateTime::parse_from_rfc3339(&applied).unwrap();
    assert!(
        info.end_time <= applied,
        "the swap waited for the task's run to end"
    );
}

#[test]
fn handoff_keeps_a_server_task_loop_going_in_the_new_image() {
    let w = World::new();
    let path = w.path_with_fake_claude();
    let cand = w.candidate("cand", "handoff-loop");
    let mut cmd = w.serve_cmd();
    cmd.env("PATH", &path)
        .env("FAKE_SLEEP", "3")
        .env("FAKE_DONE_AFTER", "2");
    let server = Server::start(cmd, w.sb.path());
    let agent = crate::support::http_agent(None);
    let resp = agent
        .post(&format!("{}/api/v1/tasks", server.base))
        .header("Content-Type", "application/json")
        .send(
            json!({"project_id": "demo", "task_id": "loop", "prompt": "x", "agent": "claude", "max_restarts": 3})
                .to_string(),
        )
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let accepted = start_update(&server, &cand, "handoff");
    let done = wait_finished(&server, &accepted["started_at"]);
    assert_eq!(done["state"], "idle", "{done}");
    assert_eq!(running_sha(&server), sha256(&cand));
    // The loop, recorded by the old image, is resumed by the new one: the first run ends
    // under its supervisor, then the new image starts the second run, which writes DONE.
    let task_dir = w.root().join("demo/loop");
    wait_for("DONE from the second run", Duration::from_secs(60), || {
        task_dir.join("DONE").exists().then_some(())
    });
    let runs = wait_for("both runs to end", Duration::from_secs(60), || {
        let mut dirs: Vec<_> = std::fs::read_dir(task_dir.join("runs"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .collect();
        dirs.sort();
        let infos: Vec<RunInfo> = dirs
            .iter()
            .filter_map(|d| RunInfo::read(&d.join("run-info.yaml")).ok())
            .collect();
        infos
            .iter()
            .all(|i| i.status.is_terminal())
            .then_some(infos)
    });
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(
        runs[1].previous_run_id.as_deref(),
        Some(runs[0].run_id.as_str())
    );
}

#[test]
fn handoff_with_a_server_owned_run_in_flight_records_its_nonzero_exit_after_the_swap() {
    let w = World::new();
    let path = w.path_with_fake_claude();
    let cand = w.candidate("cand", "handoff-exit");
    let release = w.sb.path().join("release");
    let mut cmd = w.serve_cmd();
    cmd.env("PATH", &path);
    let server = Server::start(cmd, w.sb.path());
    let (code, started) = server.post_json(
        "/api/v1/tasks",
        json!({
            "project_id": "demo", "task_id": "exits", "prompt": "x", "agent": "claude",
            "max_restarts": 0,
            "env": {"FAKE_TICK_UNTIL": release.display().to_string(), "FAKE_EXIT": "5"},
        }),
    );
    assert_eq!(code, 201, "{started}");
    let runs_dir = w.root().join("demo/exits/runs");
    let (info_path, _agent) = wait_running_run(&runs_dir);

    let accepted = start_update(&server, &cand, "handoff");
    let done = wait_finished(&server, &accepted["started_at"]);
    assert_eq!(done["state"], "idle", "{done}");
    assert_eq!(running_sha(&server), sha256(&cand));
    let swapped_at = chrono::Utc::now();
    assert_eq!(
        RunInfo::read(&info_path).unwrap().status,
        RunStatus::Running,
        "the run is still in flight after the swap"
    );

    std::fs::write(&release, "").unwrap();
    let info = wait_run_end(&info_path);
    assert_eq!(info.exit_code, 5, "{info:?}");
    assert_eq!(info.status, RunStatus::Failed, "{info:?}");
    assert!(info.end_time > swapped_at, "end after the swap: {info:?}");
    // The new image reports the same end, and its resumed loop (no restarts left) starts
    // no other run.
    let run_id = info.run_id.clone();
    let seen = wait_for(
        "the new image to report the end",
        Duration::from_secs(30),
        || {
            let (_, run) = server.get_json(&format!("/api/v1/runs/{run_id}"));
            (run["status"] == "failed").then_some(run)
        },
    );
    assert_eq!(seen["info"]["exit_code"], 5, "{seen}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(std::fs::read_dir(&runs_dir).unwrap().count(), 1);
}

/// The first ```sh block after `heading` in docs/operations.md, as documented.
fn operations_doc_block(heading: &str) -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    let section = doc
        .split_once(heading)
        .unwrap_or_else(|| panic!("docs/operations.md has no {heading:?}"))
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .unwrap_or_else(|| panic!("no sh block under {heading:?}"))
        .0;
    block.to_string()
}

/// The deploy job of docs/operations.md holds only the admin key (auth on, a separate API
/// key): the documented curl flow and the documented CLI flow each update the server and exit
/// 0. The shell blocks are run as written; only the placeholders (binary path, URL, root) are
/// replaced.
#[test]
fn documented_ci_flows_succeed_with_only_the_admin_key() {
    const DOC_BIN: &str = "/opt/conductor/releases/run-agent-1.4.0";
    const ADMIN: &str = "admin-secret-0123456789";
    let w = World::new();
    let config = w.sb.write(
        "config.yaml",
        &format!("api:\n  auth_enabled: true\n  api_key: everyday-key-0123456789\n  admin_key: {ADMIN}\n"),
    );
    let server = w.serve(&["--config", config.to_str().unwrap()]);
    let shell = |script: String| {
        let mut cmd = w.sb.command(Path::new("timeout"));
        cmd.args(["50", "bash", "-e", "-c", &script])
            .env("CONDUCTOR_URL", &server.base)
            .env("CONDUCTOR_ADMIN_KEY", ADMIN);
        cmd
    };

    let curl_flow = operations_doc_block("### From CI with curl");
    assert!(
        curl_flow.contains(&format!("BIN={DOC_BIN}\n")),
        "{curl_flow}"
    );
    let cand = w.candidate("cand-curl", "curl-flow");
    let out = run(&mut shell(
        curl_flow.replace(DOC_BIN, cand.to_str().unwrap()),
    ));
    assert!(out.status.success(), "curl flow: {}", text(&out));
    let status_as_admin = || {
        let agent = crate::support::http_agent(None);
        let mut resp = agent
            .get(format!("{}/api/v1/status", server.base))
            .header("Authorization", format!("Bearer {ADMIN}"))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        serde_json::from_str::<Value>(&resp.body_mut().read_to_string().unwrap()).unwrap()
    };
    assert_eq!(status_as_admin()["executable_sha256"], sha256(&cand));

    let cli_flow = operations_doc_block("### With the CLI");
    for placeholder in [DOC_BIN, "http://build-host:14355", "/srv/runs"] {
        assert!(cli_flow.contains(placeholder), "{placeholder}: {cli_flow}");
    }
    let cand = w.candidate("cand-cli", "cli-flow");
    let script = cli_flow
        .replace(DOC_BIN, cand.to_str().unwrap())
        .replace("http://build-host:14355", &server.base)
        .replace("/srv/runs", w.root().to_str().unwrap());
    let mut cmd = shell(script);
    let path = format!(
        "{}:{}",
        w.sb.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path).env("SUM", sha256(&cand));
    let out = run(&mut cmd);
    assert!(out.status.success(), "CLI flow: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("updated: the server now runs"), "{stdout}");
    assert_eq!(status_as_admin()["executable_sha256"], sha256(&cand));

    // The admin key reads the status and the version, nothing else outside the admin routes.
    let (code, _) = crate::support::raw_http(
        server.port(),
        &format!("GET /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 401, "the admin key is not a general key");
}
