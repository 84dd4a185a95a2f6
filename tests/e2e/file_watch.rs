//! Watching files: a server holds one inotify instance however many followers it runs (SSE
//! streams, task loops, the run index), and every follower — SSE streams, the run index,
//! `bus read --follow`, `output --follow`, `watch` — still delivers with inotify disabled
//! (`CONDUCTOR_WATCH=poll`: the paths are polled instead).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use chrono::Utc;
use conductor::storage::{RunInfo, RunStatus};

use crate::support::{
    append, run, serve_config, sse_events, text, wait_until, ChildGuard, LiveRun, Sandbox, Server,
    FAKE_AGENT,
};

/// Generous: only a bound in case a line never comes.
const WAIT: Duration = Duration::from_secs(60);
const RUN: &str = "20260101-1200000000-1-1";
const POLL: (&str, &str) = ("CONDUCTOR_WATCH", "poll");

/// The inotify instances process `pid` holds (its `anon_inode:inotify` descriptors).
fn inotify_instances(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the process's fds")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.as_os_str() == "anon_inode:inotify")
        .count()
}

fn server_pid(server: &Server) -> u32 {
    server.child.0.as_ref().expect("server running").id()
}

/// Spawns `cmd` and hands its stdout lines over a channel.
fn spawn_lines(mut cmd: Command) -> (ChildGuard, Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (ChildGuard(Some(child)), rx)
}

/// Waits for a line containing `want` (skipping others).
fn expect_line(rx: &Receiver<String>, want: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(want) => return,
            Ok(_) => {}
            Err(err) => panic!("no line with {want:?}: {err}"),
        }
    }
    panic!("no line with {want:?} in {WAIT:?}");
}

/// A `serve` of `<sandbox>/root` whose default agent runs the fake agent, with `env`.
fn serve(sb: &Sandbox, env: &[(&str, &str)]) -> Server {
    std::fs::create_dir_all(sb.path().join("root")).expect("create root");
    let config = format!(
        "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 0\n"
    );
    serve_config(sb, &config, env)
}

/// Ends the live run: its record says completed.
fn complete(dir: &Path) {
    RunInfo::update(&dir.join("run-info.yaml"), Duration::from_secs(5), |i| {
        i.status = RunStatus::Completed;
        i.exit_code = 0;
        i.end_time = Utc::now();
        Ok::<(), ()>(())
    })
    .expect("update run-info")
    .expect("update run-info");
}

/// Reads a run stream up to its first `status` event (the follower is then waiting).
fn until_status(stream: &mut impl Iterator<Item = (String, String, String)>) {
    for event in stream.by_ref() {
        if event.0 == "status" {
            return;
        }
    }
    panic!("the run stream ended before its status");
}

#[test]
fn a_server_holds_one_inotify_instance_for_all_its_followers() {
    let sb = Sandbox::new();
    let server = serve(&sb, &[("FAKE_SLEEP", "60")]);
    let pid = server_pid(&server);
    // A task loop (its run stays running for a minute).
    let (code, body) = server.post_json(
        "/api/v1/tasks",
        serde_json::json!({"project_id": "demo", "task_id": "long", "prompt": "x"}),
    );
    assert_eq!(code, 201, "{body}");
    let run_id = body["run_id"].as_str().expect("run_id").to_string();
    // Two live log streams of its run, and the stream of all runs (fed by the index).
    let url = format!("{}/api/v1/runs/{run_id}/stream", server.base);
    let mut first = sse_events(&url, None);
    let mut second = sse_events(&url, None);
    until_status(&mut first);
    until_status(&mut second);
    let mut all = sse_events(&format!("{}/api/v1/runs/stream/all", server.base), None);
    assert_eq!(all.next().expect("ready").0, "ready");
    let instances = inotify_instances(pid);
    eprintln!(
        "inotify instances of a server with 2 run streams, a task loop and the index: {instances}"
    );
    assert_eq!(instances, 1, "one inotify instance for every follower");
    let (code, body) = server.post_json(
        "/api/v1/projects/demo/tasks/long/stop",
        serde_json::json!({}),
    );
    assert_eq!(code, 200, "{body}");
    // The streams see the run end.
    assert!(first.any(|e| e.0 == "end"));
}

#[test]
fn server_streams_deliver_with_inotify_disabled() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let live = LiveRun::write(&root, RUN);
    let server = serve(&sb, &[POLL]);
    assert_eq!(inotify_instances(server_pid(&server)), 0, "polling only");
    let mut stream = sse_events(&format!("{}/api/v1/runs/{RUN}/stream", server.base), None);
    until_status(&mut stream);
    append(&live.dir.join("agent-stdout.txt"), "polled line\n");
    let next = stream.next().expect("a polled line");
    assert_eq!(
        (next.0.as_str(), next.2.as_str()),
        ("stdout", "polled line")
    );
    // The index notices a new run by polling too.
    let mut all = sse_events(&format!("{}/api/v1/runs/stream/all", server.base), None);
    assert_eq!(all.next().expect("ready").0, "ready");
    let dir = root.join("demo/task-1/runs/20260101-1200000001-1-1");
    std::fs::create_dir_all(&dir).unwrap();
    let mut info = RunInfo::new_running(
        "20260101-1200000001-1-1",
        "demo",
        "task-1",
        "command",
        Utc::now(),
    );
    info.status = RunStatus::Failed;
    info.write(&dir.join("run-info.yaml")).unwrap();
    let created = all.find(|e| e.0 == "run_created").expect("run_created");
    assert!(created.2.contains("20260101-1200000001-1-1"), "{created:?}");
    complete(&live.dir);
    let rest: Vec<_> = stream.collect();
    assert_eq!(rest.last().map(|e| e.0.as_str()), Some("end"), "{rest:?}");
    assert_eq!(inotify_instances(server_pid(&server)), 0);
}

#[test]
fn cli_followers_deliver_with_inotify_disabled() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let live = LiveRun::write(&root, RUN);
    let cli = |args: &[&str]| {
        let mut cmd = sb.run_agent();
        cmd.args(args).arg("--root").arg(&root).env(POLL.0, POLL.1);
        cmd
    };
    // bus read --follow
    let post = |body: &str| {
        let out = run(&mut cli(&[
            "bus",
            "post",
            "--project",
            "demo",
            "--body",
            body,
        ]));
        assert!(out.status.success(), "{}", text(&out));
    };
    post("before");
    let (bus, bus_lines) = spawn_lines(cli(&[
        "bus",
        "read",
        "--project",
        "demo",
        "--follow",
        "--tail",
        "1",
    ]));
    expect_line(&bus_lines, "before");
    let bus_pid = bus.0.as_ref().expect("bus follower").id();
    assert_eq!(inotify_instances(bus_pid), 0, "polling only");
    post("after");
    expect_line(&bus_lines, "after");
    // output --follow and watch, until the run ends.
    let (output, output_lines) = spawn_lines(cli(&[
        "output",
        "--project",
        "demo",
        "--task",
        "task-1",
        "--follow",
    ]));
    expect_line(&output_lines, "two");
    let (mut watch, watch_lines) =
        spawn_lines(cli(&["watch", "--project", "demo", "--task", "task-1"]));
    expect_line(&watch_lines, "running");
    append(&live.dir.join("agent-stdout.txt"), "followed line\n");
    expect_line(&output_lines, "followed line");
    complete(&live.dir);
    expect_line(&watch_lines, "completed");
    let mut output = output;
    for child in [&mut output, &mut watch] {
        let child = child.0.as_mut().expect("child");
        wait_until("the follower to end with the run", WAIT, || {
            child.try_wait().ok().flatten().is_some()
        });
        assert!(child.wait().expect("wait").success());
    }
    drop(bus);
}
