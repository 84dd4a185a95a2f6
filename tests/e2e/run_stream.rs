//! SSE of one run's output and status, resumed by byte offsets, and of all runs.

use std::time::Duration;

use chrono::Utc;
use conductor::storage::{RunInfo, RunStatus};

use crate::support::{append, serve_root, sse_events as events, LiveRun, Sandbox};

#[test]
fn run_stream_sends_lines_and_status_and_resumes_by_offset() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    // A live process stands in for the agent so the run stays `running`.
    let run = LiveRun::write(&root, "r1");
    let dir = run.dir.clone();
    let server = serve_root(&sb, None);
    let url = format!("{}/api/v1/runs/r1/stream", server.base);

    let mut stream = events(&url, None);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(stream.next().unwrap());
    }
    drop(stream);
    let kinds: Vec<(&str, &str)> = seen.iter().map(|e| (e.0.as_str(), e.2.as_str())).collect();
    assert_eq!(kinds[0], ("stdout", "one"));
    assert_eq!(kinds[1], ("stdout", "two"));
    assert_eq!(kinds[2], ("stderr", "warn"));
    assert_eq!(kinds[3].0, "status");
    assert_eq!(seen[1].1, "8:0");
    assert_eq!(seen[2].1, "8:5");

    // Output written while disconnected arrives after a resume from the last id, once.
    append(&dir.join("agent-stdout.txt"), "three\n");
    let mut stream = events(&url, Some("8:5"));
    let next = stream.next().unwrap();
    assert_eq!(
        (next.0.as_str(), next.2.as_str(), next.1.as_str()),
        ("stdout", "three", "14:5")
    );
    let status = stream.next().unwrap();
    assert_eq!(status.0, "status");
    // Live: a line appended now is pushed (notification driven), then the run ends.
    append(&dir.join("agent-stdout.txt"), "four\n");
    let live = stream.next().unwrap();
    assert_eq!((live.0.as_str(), live.2.as_str()), ("stdout", "four"));
    RunInfo::update(&dir.join("run-info.yaml"), Duration::from_secs(5), |i| {
        i.status = RunStatus::Completed;
        i.exit_code = 0;
        i.end_time = Utc::now();
        Ok::<(), ()>(())
    })
    .unwrap()
    .unwrap();
    let rest: Vec<_> = stream.collect();
    assert!(
        rest.iter()
            .any(|e| e.0 == "status" && e.2.contains("completed")),
        "{rest:?}"
    );
    assert_eq!(rest.last().unwrap().0, "end");

    let (code, _) =
        crate::support::http_get(&format!("{}/api/v1/runs/r1/stream?from=x", server.base)).unwrap();
    assert_eq!(code, 400);
}

#[test]
fn all_runs_stream_reports_new_runs_and_status_changes() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let server = serve_root(&sb, None);
    let mut stream = events(&format!("{}/api/v1/runs/stream/all", server.base), None);
    assert_eq!(stream.next().unwrap().0, "ready");
    // A run directory seen before its record is created `unknown`; its record then
    // arrives as status changes.
    let dir = root.join("demo/task-1/runs/r9");
    std::fs::create_dir_all(&dir).unwrap();
    let created = stream.next().unwrap();
    assert_eq!(created.0, "run_created", "{created:?}");
    assert!(created.2.contains("\"r9\""), "{created:?}");
    assert!(created.2.contains("unknown"), "{created:?}");
    // A live run (this test process stands in for its agent) that then ends: the index
    // watches running runs' directories (finished ones only through its periodic rescan).
    let mut info = RunInfo::new_running("r9", "demo", "task-1", "command", Utc::now());
    info.pid = std::process::id() as i64;
    info.pgid = nix::unistd::getpgrp().as_raw() as i64;
    info.write(&dir.join("run-info.yaml")).unwrap();
    let running = stream.next().unwrap();
    assert_eq!(running.0, "run_status", "{running:?}");
    assert!(running.2.contains("running"), "{running:?}");
    info.status = RunStatus::Completed;
    info.write(&dir.join("run-info.yaml")).unwrap();
    let changed = stream.next().unwrap();
    assert_eq!(changed.0, "run_status", "{changed:?}");
    assert!(changed.2.contains("completed"), "{changed:?}");
}
