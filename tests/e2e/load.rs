//! e2e: load. One driver, two sizes:
//! - `load::short_load_loses_no_line_and_answers_every_request` (in the suite): a few dozen
//!   server-started tasks whose agents write output, reading and never-reading SSE clients,
//!   a listing loop and half-open connections; correctness only (zero errors, zero lost log
//!   lines, every task done once), timing is printed, not asserted.
//! - `load::full` (ignored; `scripts/load-test.sh` runs it in release): 200 tasks, 200 SSE
//!   clients of which 50 never read, 50 half-open connections, and the bounds asserted too
//!   (RSS < 300 MB, `/healthz` < 100 ms throughout, asked by a `curl` loop in its own session),
//!   and prints the slowest `/healthz` answer of each phase.
//!
//! Everything binds and connects to 127.0.0.1 only and stops by itself (every wait bounded).
//! Also: simultaneous `POST /api/v1/tasks` for one task id start it exactly once.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{free_port, Sandbox, Server};

/// The agent: waits for `$LOAD_GO` (so the clients are attached), then writes `$LOAD_LINES`
/// lines, one write each, a `stamp <ns since epoch>` line every 100 (for the delivery
/// latency), pausing 0.1 s every 100 lines, and marks its task done. One perl process per
/// agent: a shell agent forking `date` and `sleep` for its stamps and pauses spent half of two
/// CPUs on those forks, measuring the load generator's fork storm rather than the server.
const AGENT: &str = r#"#!/usr/bin/perl
use strict;
use warnings;
use Time::HiRes qw(time sleep);
$| = 1;
my $waited = 0;
while (!-e $ENV{LOAD_GO} && $waited < 1200) { sleep 0.1; $waited++; }
my $pad = "abcdefghijklmnopqrstuvwxyz" x 3;
for my $i (0 .. $ENV{LOAD_LINES} - 1) {
    if ($i % 100 == 0) { printf "stamp %d\n", time() * 1e9; } else { print "line $i $pad\n"; }
    sleep 0.1 if ($i + 1) % 100 == 0;
}
open(my $done, '>', "$ENV{JRUN_TASK_FOLDER}/DONE") or die "cannot write DONE: $!";
close($done);
"#;

/// What one load run does.
#[derive(Debug, Clone)]
struct Params {
    tasks: usize,
    sse_clients: usize,
    silent_clients: usize,
    half_open: usize,
    lines: usize,
    /// Assert the timing and memory bounds (the full run), not only correctness.
    bounds: bool,
    /// Longest the whole run may take.
    limit: Duration,
}

impl Params {
    /// `default` overridden by `LOAD_TASKS`, `LOAD_SSE`, `LOAD_SILENT`, `LOAD_HALF_OPEN`,
    /// `LOAD_LINES`, `LOAD_LIMIT_SECS`.
    fn from_env(default: Params) -> Params {
        let get = |name: &str, value: usize| {
            std::env::var(name).ok().map_or(value, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a count"))
            })
        };
        let p = Params {
            tasks: get("LOAD_TASKS", default.tasks),
            sse_clients: get("LOAD_SSE", default.sse_clients),
            silent_clients: get("LOAD_SILENT", default.silent_clients),
            half_open: get("LOAD_HALF_OPEN", default.half_open),
            lines: get("LOAD_LINES", default.lines),
            bounds: default.bounds,
            limit: Duration::from_secs(
                get("LOAD_LIMIT_SECS", default.limit.as_secs() as usize) as u64
            ),
        };
        assert!(p.silent_clients <= p.sse_clients, "LOAD_SILENT > LOAD_SSE");
        assert!(p.tasks > 0, "LOAD_TASKS must be at least 1");
        p
    }
}

/// Latencies in milliseconds, with percentiles.
#[derive(Debug, Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn add(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
            self.0.len(),
            self.pct(0.5),
            self.pct(0.99),
            self.max()
        )
    }
}

/// The phases of a run, for telling where the slowest `/healthz` answers fall.
const PHASES: [&str; 4] = [
    "starting tasks",
    "attaching clients",
    "writing",
    "finishing",
];

/// Shared results of the run.
#[derive(Default)]
struct Tally {
    errors: Mutex<Vec<String>>,
    api: Mutex<Samples>,
    healthz: Mutex<Samples>,
    /// The phase now (an index into [`PHASES`]).
    phase: AtomicUsize,
    /// The slowest `/healthz` answer of each phase, in ms, and when it came (s after start).
    healthz_by_phase: Mutex<[(f64, f64); 4]>,
    delivery: Mutex<Samples>,
    rss_kib: AtomicUsize,
    fds: AtomicUsize,
}

impl Tally {
    fn error(&self, what: String) {
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < 1000 {
            errors.push(what);
        }
    }
}

fn agent(limit: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(limit))
        .build()
        .into()
}

/// A timed request; `Some(body)` when it answered `expect`.
fn timed(
    agent: &ureq::Agent,
    tally: &Tally,
    method: &str,
    url: &str,
    body: Option<Value>,
    expect: &[u16],
) -> Option<Value> {
    let start = Instant::now();
    let result = match body {
        Some(body) => agent
            .post(url)
            .content_type("application/json")
            .send(body.to_string()),
        None => agent.get(url).call(),
    };
    let mut resp = match result {
        Ok(resp) => resp,
        Err(err) => {
            tally.error(format!("{method} {url}: {err}"));
            return None;
        }
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    tally.api.lock().unwrap().add(start.elapsed());
    if !expect.contains(&status) {
        tally.error(format!("{method} {url}: {status} {text}"));
        return None;
    }
    Some(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// What a reading SSE client received from one run.
struct Received {
    run: String,
    lines: Vec<String>,
    reconnects: usize,
}

/// Follows `/api/v1/runs/{run}/stream` until its `end` event, reconnecting with the last
/// event id if the server closes it early; stdout lines in order.
fn read_run(
    base: &str,
    run: &str,
    tally: &Tally,
    attached: &AtomicUsize,
    limit: Duration,
) -> Received {
    let agent = agent(limit);
    let url = format!("{base}/api/v1/runs/{run}/stream");
    let deadline = Instant::now() + limit;
    let mut out = Received {
        run: run.to_string(),
        lines: Vec::new(),
        reconnects: 0,
    };
    let mut last_id: Option<String> = None;
    let mut counted = false;
    while Instant::now() < deadline {
        let mut req = agent.get(&url);
        if let Some(id) = &last_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = match req.call() {
            Ok(resp) if resp.status().as_u16() == 200 => resp,
            Ok(resp) => {
                tally.error(format!("stream {run}: {}", resp.status()));
                return out;
            }
            Err(err) => {
                tally.error(format!("stream {run}: {err}"));
                return out;
            }
        };
        if !counted {
            attached.fetch_add(1, Ordering::SeqCst);
            counted = true;
        }
        let mut event = String::new();
        let mut id = String::new();
        let mut data = String::new();
        for line in BufReader::new(resp.into_body().into_reader()).lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                if !id.is_empty() {
                    last_id = Some(id.clone());
                }
                match event.as_str() {
                    "stdout" => {
                        if let Some(ns) = data.strip_prefix("stamp ") {
                            if let Ok(ns) = ns.trim().parse::<u128>() {
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap()
                                    .as_nanos();
                                let lag = Duration::from_nanos(now.saturating_sub(ns) as u64);
                                tally.delivery.lock().unwrap().add(lag);
                            }
                        }
                        out.lines.push(std::mem::take(&mut data));
                    }
                    "end" => return out,
                    _ => {}
                }
                event.clear();
                id.clear();
                data.clear();
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data = v.strip_prefix(' ').unwrap_or(v).to_string();
            }
        }
        out.reconnects += 1;
    }
    tally.error(format!("stream {run}: no end event within {limit:?}"));
    out
}

/// An SSE client that sends its request and never reads a byte.
fn silent_client(port: u16, run: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let req = format!(
        "GET /api/v1/runs/{run}/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    Some(s)
}

/// A connection that sends half a request head and stops.
fn half_open(port: u16) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .ok()?;
    Some(s)
}

fn proc_value(pid: u32, key: &str) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `/healthz` asked every 50 ms by `curl` from a shell loop in its own session: a client
/// outside this test process, as a monitor or a browser is. (Probed from a thread of this
/// process, the answer waited behind this process's own 150 reader threads when the runs ended
/// together, and that wait was counted as the server's.) Prints `<status> <seconds>` a probe;
/// stops when the server is gone, and is killed with its probe when dropped.
struct Prober(std::process::Child);

impl Prober {
    fn start(port: u16, server: u32) -> Prober {
        let script = format!(
            "while kill -0 {server} 2>/dev/null; do \
               curl -s -o /dev/null -m 10 -w '%{{http_code}} %{{time_total}}\\n' \
                 http://127.0.0.1:{port}/healthz; \
               sleep 0.05; \
             done"
        );
        let child = std::process::Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the /healthz prober (setsid, sh, curl)");
        Prober(child)
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        // setsid made the shell a session and group leader: end it with its curl.
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.0.wait();
    }
}

fn start_server(sb: &Sandbox, root: &Path, go: &Path, lines: usize) -> Server {
    let perl = std::process::Command::new("perl")
        .args(["-MTime::HiRes", "-e", "1"])
        .status();
    assert!(
        perl.is_ok_and(|s| s.success()),
        "the load test's agents need perl with Time::HiRes (Debian: apt-get install perl)"
    );
    let script = sb.path().join("load-agent.pl");
    std::fs::write(&script, AGENT).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  load:\n    type: command\n    command: [\"{}\"]\ndefaults:\n  agent: load\n  max_restarts: 0\n",
            script.display()
        ),
    );
    let port = free_port().to_string();
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--port", &port, "--root"])
        .arg(root)
        .arg("--config")
        .arg(&config)
        .env("LOAD_GO", go)
        .env("LOAD_LINES", lines.to_string());
    Server::start(cmd, sb.path())
}

fn stdout_file(root: &Path, task: &str, run: &str) -> PathBuf {
    root.join("load")
        .join(task)
        .join("runs")
        .join(run)
        .join("agent-stdout.txt")
}

/// Runs the load described by `p` and asserts its outcome; prints the figures.
fn drive(p: &Params) {
    let started = Instant::now();
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let go = sb.path().join("GO");
    let server = start_server(&sb, &root, &go, p.lines);
    let base = server.base.clone();
    let port = server.port();
    let pid = server.child.0.as_ref().expect("server running").id();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));

    // Monitors: /healthz every 50 ms, RSS and fds every 100 ms, a listing loop.
    let mut monitors = Vec::new();
    {
        let (tally, stop) = (tally.clone(), stop.clone());
        let run_start = Instant::now();
        let mut prober = Prober::start(port, pid);
        monitors.push(std::thread::spawn(move || {
            let Some(out) = prober.0.stdout.take() else {
                tally.error("the /healthz prober has no output".to_string());
                return;
            };
            for line in BufReader::new(out).lines() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(line) = line else { break };
                let (code, seconds) = line.split_once(' ').unwrap_or((&line, ""));
                let Ok(seconds) = seconds.trim().parse::<f64>() else {
                    tally.error(format!("healthz prober: {line:?}"));
                    continue;
                };
                if code != "200" {
                    tally.error(format!("healthz answered {code}"));
                    continue;
                }
                let took = Duration::from_secs_f64(seconds);
                tally.healthz.lock().unwrap().add(took);
                let phase = tally.phase.load(Ordering::Relaxed).min(PHASES.len() - 1);
                let mut worst = tally.healthz_by_phase.lock().unwrap();
                let ms = seconds * 1000.0;
                if ms > worst[phase].0 {
                    worst[phase] = (ms, run_start.elapsed().as_secs_f64());
                }
            }
            drop(prober);
        }));
    }
    {
        let (tally, stop) = (tally.clone(), stop.clone());
        monitors.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let rss = proc_value(pid, "VmRSS:").unwrap_or(0);
                tally.rss_kib.fetch_max(rss, Ordering::Relaxed);
                tally.fds.fetch_max(fd_count(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    {
        let (tally, stop, base) = (tally.clone(), stop.clone(), base.clone());
        let limit = p.limit;
        monitors.push(std::thread::spawn(move || {
            let a = agent(limit);
            while !stop.load(Ordering::Relaxed) {
                for path in [
                    "/api/v1/runs?limit=100",
                    "/api/v1/projects",
                    "/api/v1/status",
                ] {
                    timed(&a, &tally, "GET", &format!("{base}{path}"), None, &[200]);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    let half: Vec<TcpStream> = (0..p.half_open).filter_map(|_| half_open(port)).collect();
    if half.len() != p.half_open {
        tally.error(format!(
            "only {} of {} half-open connections opened",
            half.len(),
            p.half_open
        ));
    }

    // Start the tasks from 16 threads at once.
    let next = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let starters: Vec<_> = (0..16)
        .map(|_| {
            let (tally, next, runs, base) =
                (tally.clone(), next.clone(), runs.clone(), base.clone());
            let (tasks, limit) = (p.tasks, p.limit);
            std::thread::spawn(move || {
                let a = agent(limit);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= tasks {
                        return;
                    }
                    let task = format!("t-{i:04}");
                    let body = json!({"project_id": "load", "task_id": task, "prompt": "load"});
                    let answer = timed(
                        &a,
                        &tally,
                        "POST",
                        &format!("{base}/api/v1/tasks"),
                        Some(body),
                        &[201],
                    );
                    match answer.as_ref().and_then(|v| v["run_id"].as_str()) {
                        Some(run) => runs.lock().unwrap().push((task, run.to_string())),
                        None => tally.error(format!("task {task}: no run id in {answer:?}")),
                    }
                }
            })
        })
        .collect();
    for s in starters {
        s.join().unwrap();
    }
    tally.phase.store(1, Ordering::Relaxed);
    let mut runs = runs.lock().unwrap().clone();
    runs.sort();
    assert_eq!(
        runs.len(),
        p.tasks,
        "every task started: {:?}",
        tally.errors.lock().unwrap()
    );

    // SSE clients, round robin over the runs: the first `silent_clients` never read.
    let silent: Vec<TcpStream> = (0..p.silent_clients)
        .filter_map(|i| silent_client(port, &runs[i % runs.len()].1))
        .collect();
    let attached = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (p.silent_clients..p.sse_clients)
        .map(|i| {
            let (tally, attached, base) = (tally.clone(), attached.clone(), base.clone());
            let (task, run) = runs[i % runs.len()].clone();
            let limit = p.limit;
            std::thread::spawn(move || (task, read_run(&base, &run, &tally, &attached, limit)))
        })
        .collect();
    let reading = p.sse_clients - p.silent_clients;
    let wait_attach = Instant::now();
    while attached.load(Ordering::SeqCst) < reading
        && wait_attach.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&go, "").unwrap();
    tally.phase.store(2, Ordering::Relaxed);
    let writing = Instant::now();

    let mut lost = 0usize;
    let mut reconnects = 0usize;
    for reader in readers {
        let (task, got) = reader.join().unwrap();
        reconnects += got.reconnects;
        let file = std::fs::read_to_string(stdout_file(&root, &task, &got.run)).unwrap_or_default();
        let expected: Vec<&str> = file.lines().collect();
        if expected.len() != p.lines {
            tally.error(format!(
                "run {}: the agent wrote {} lines, not {}",
                got.run,
                expected.len(),
                p.lines
            ));
        }
        if got.lines != expected {
            lost += expected.len().saturating_sub(got.lines.len()).max(1);
            tally.error(format!(
                "run {}: received {} lines, the file has {}",
                got.run,
                got.lines.len(),
                expected.len()
            ));
        }
    }

    tally.phase.store(3, Ordering::Relaxed);
    // Every task ends done with exactly one run, completed with exit 0.
    let deadline = started + p.limit;
    for (task, _) in &runs {
        let dir = root.join("load").join(task);
        while !dir.join("DONE").exists()
            || crate::support::run_infos(&dir.join("runs"))
                .iter()
                .any(|i| !i.status.is_terminal())
        {
            if Instant::now() > deadline {
                tally.error(format!("task {task} not finished within {:?}", p.limit));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let infos = crate::support::run_infos(&dir.join("runs"));
        if infos.len() != 1 || infos[0].exit_code != 0 {
            tally.error(format!(
                "task {task}: runs {:?}",
                infos
                    .iter()
                    .map(|i| (&i.run_id, i.status, i.exit_code))
                    .collect::<Vec<_>>()
            ));
        }
    }
    let write_time = writing.elapsed();
    // The server still answers while the silent clients and half-open connections hang on.
    timed(
        &agent(p.limit),
        &tally,
        "GET",
        &format!("{base}/api/v1/runs?limit=500"),
        None,
        &[200],
    );
    stop.store(true, Ordering::Relaxed);
    for m in monitors {
        m.join().unwrap();
    }
    drop(silent);
    drop(half);

    let errors = tally.errors.lock().unwrap().clone();
    let rss_mb = tally.rss_kib.load(Ordering::Relaxed) as f64 / 1024.0;
    let healthz = tally.healthz.lock().unwrap();
    let report = [
        format!(
            "load: {} tasks x {} lines, {} SSE clients ({} never read), {} half-open, {:.1} s (writing {:.1} s)",
            p.tasks,
            p.lines,
            p.sse_clients,
            p.silent_clients,
            p.half_open,
            started.elapsed().as_secs_f64(),
            write_time.as_secs_f64()
        ),
        tally.api.lock().unwrap().line("API latency"),
        tally.delivery.lock().unwrap().line("SSE delivery latency"),
        healthz.line("/healthz"),
        format!(
            "/healthz max by phase: {}",
            PHASES
                .iter()
                .zip(tally.healthz_by_phase.lock().unwrap().iter())
                .map(|(phase, (ms, at))| format!("{phase} {ms:.1} ms (at {at:.2} s)"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "server peak RSS {rss_mb:.0} MB, peak fds {}; lost lines {lost}; reconnects {reconnects}; errors {}",
            tally.fds.load(Ordering::Relaxed),
            errors.len()
        ),
    ];
    eprintln!("{}", report.join("\n"));
    assert!(errors.is_empty(), "errors:\n{}", errors.join("\n"));
    assert_eq!(lost, 0, "lost log lines");
    if p.bounds {
        assert!(rss_mb < 300.0, "server RSS {rss_mb:.0} MB >= 300 MB");
        assert!(
            healthz.max() < 100.0,
            "/healthz took {:.1} ms",
            healthz.max()
        );
    }
}

#[test]
fn short_load_loses_no_line_and_answers_every_request() {
    drive(&Params {
        tasks: 20,
        sse_clients: 24,
        silent_clients: 6,
        half_open: 8,
        lines: 500,
        bounds: false,
        limit: Duration::from_secs(240),
    });
}

/// The full load (`scripts/load-test.sh`; sizes from `LOAD_*`).
#[test]
#[ignore = "minutes of load: run through scripts/load-test.sh"]
fn full() {
    drive(&Params::from_env(Params {
        tasks: 200,
        sse_clients: 200,
        silent_clients: 50,
        half_open: 50,
        lines: 2000,
        bounds: true,
        limit: Duration::from_secs(600),
    }));
}

#[test]
fn simultaneous_starts_of_one_task_start_it_once() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let go = sb.path().join("GO");
    let server = start_server(&sb, &root, &go, 10);
    let url = format!("{}/api/v1/tasks", server.base);
    let barrier = Arc::new(Barrier::new(20));
    let posts: Vec<_> = (0..20)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                let a = agent(Duration::from_secs(60));
                barrier.wait();
                let mut resp = a
                    .post(&url)
                    .content_type("application/json")
                    .send(
                        json!({"project_id": "load", "task_id": "same", "prompt": "once"})
                            .to_string(),
                    )
                    .unwrap();
                let status = resp.status().as_u16();
                (status, resp.body_mut().read_to_string().unwrap_or_default())
            })
        })
        .collect();
    let answers: Vec<(u16, String)> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    let started: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).collect();
    let conflicts = answers.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!(started.len(), 1, "exactly one start: {answers:?}");
    assert_eq!(conflicts, 19, "the others conflict: {answers:?}");
    std::fs::write(&go, "").unwrap();
    let runs = root.join("load/same/runs");
    crate::support::wait_until("the task to finish", Duration::from_secs(60), || {
        root.join("load/same/DONE").exists()
            && crate::support::run_infos(&runs)
                .iter()
                .all(|i| i.status.is_terminal())
    });
    // Run directories only: runs/ may still hold the run's live marker file for a moment.
    let dirs = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(dirs, 1, "exactly one run directory");
}
