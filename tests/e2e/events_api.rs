//! The multiplexed event stream (`GET /api/v1/events`, topics changed with
//! `POST /api/v1/events/{stream}/topics`), the agents listing, bus type validation, and a
//! server that stops at once on SIGTERM while a stream is open.

use std::time::{Duration, Instant};

use chrono::Utc;
use conductor::storage::{RunInfo, RunStatus};
use serde_json::{json, Value};

use crate::support::{append, serve_root as serve, sse_events as events, LiveRun, Sandbox};

fn data(event: &(String, String, String)) -> Value {
    serde_json::from_str(&event.2).unwrap_or_else(|e| panic!("not JSON ({e}): {event:?}"))
}

#[test]
fn one_stream_carries_run_logs_runs_and_buses_and_changes_topics_live() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let run = LiveRun::write(&root, "r1");
    let (dir, mut info) = (run.dir.clone(), run.info.clone());
    let server = serve(&sb, None);

    let url = format!("{}/api/v1/events?topics=runs,run:r1@4:0", server.base);
    let mut stream = events(&url, None);
    let hello = stream.next().unwrap();
    assert_eq!(hello.0, "hello");
    let id = data(&hello)["stream"].as_str().unwrap().to_string();

    // From byte 4 of stdout: only "two"; all of stderr; then the status.
    let mut logs = Vec::new();
    let status = loop {
        let e = stream.next().unwrap();
        match e.0.as_str() {
            "log" => logs.push(data(&e)),
            "status" => break data(&e),
            other => panic!("unexpected {other}: {e:?}"),
        }
    };
    assert_eq!(logs[0]["topic"], "run:r1");
    assert_eq!(logs[0]["stream"], "stdout");
    assert_eq!(logs[0]["lines"], json!(["two"]));
    assert_eq!(logs[1]["stream"], "stderr");
    assert_eq!(logs[1]["lines"], json!(["warn"]));
    assert_eq!(logs[1]["pos"], "8:5");
    assert_eq!(status["status"], "running");
    assert_eq!(status["pos"], "8:5");

    // A bus topic joins the open stream.
    let (code, answer) = server.post_json(
        &format!("/api/v1/events/{id}/topics"),
        json!({"add": ["bus:demo/task-1"]}),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["topics"],
        json!(["bus:demo/task-1", "run:r1", "runs"])
    );
    let (code, posted) = server.post_json(
        "/api/v1/projects/demo/tasks/task-1/bus",
        json!({"type": "FACT", "body": "hello bus"}),
    );
    assert_eq!(code, 201, "{posted}");
    let bus = stream.next().unwrap();
    assert_eq!(bus.0, "bus", "{bus:?}");
    let bus = data(&bus);
    assert_eq!(bus["topic"], "bus:demo/task-1");
    assert_eq!(bus["messages"][0]["body"], "hello bus");

    // New lines, a new run, and the end of r1, all on the same connection.
    append(&dir.join("agent-stdout.txt"), "three\n");
    let e = stream.next().unwrap();
    assert_eq!(
        (e.0.as_str(), data(&e)["lines"].clone()),
        ("log", json!(["three"]))
    );
    let other = root.join("demo/task-2/runs/r2");
    std::fs::create_dir_all(&other).unwrap();
    RunInfo::new_running("r2", "demo", "task-2", "command", Utc::now())
        .write(&other.join("run-info.yaml"))
        .unwrap();
    let created = stream.next().unwrap();
    assert_eq!(created.0, "run_created", "{created:?}");
    assert_eq!(data(&created)["run_id"], "r2");
    info.status = RunStatus::Completed;
    info.exit_code = 0;
    info.write(&dir.join("run-info.yaml")).unwrap();
    let mut kinds = Vec::new();
    while !kinds.contains(&"end".to_string()) {
        let e = stream.next().unwrap();
        if data(&e)["topic"] == "run:r1" {
            kinds.push(e.0);
        }
    }
    assert_eq!(kinds, ["status", "end"]);

    // Removing a topic; bad topics and unknown streams are named errors.
    let (code, answer) = server.post_json(
        &format!("/api/v1/events/{id}/topics"),
        json!({"remove": ["bus:demo/task-1"]}),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["topics"], json!(["run:r1", "runs"]));
    let (code, answer) = server.post_json(
        &format!("/api/v1/events/{id}/topics"),
        json!({"add": ["logs:everything"]}),
    );
    assert_eq!(code, 400, "{answer}");
    assert!(answer.to_string().contains("allowed: runs"), "{answer}");
    let (code, _) = server.post_json("/api/v1/events/nope/topics", json!({"add": ["runs"]}));
    assert_eq!(code, 404);
    let (code, answer) = server.get_json("/api/v1/events?topics=run:..");
    assert_eq!(code, 400, "{answer}");
    // An unknown run is an error event on its topic; the stream goes on.
    let mut stream = events(
        &format!("{}/api/v1/events?topics=run:r404", server.base),
        None,
    );
    assert_eq!(stream.next().unwrap().0, "hello");
    let e = stream.next().unwrap();
    assert_eq!(e.0, "error");
    assert_eq!(data(&e)["topic"], "run:r404");
}

#[test]
fn agents_lists_the_configured_names_and_types() {
    let sb = Sandbox::new();
    let server = serve(
        &sb,
        Some("agents:\n  fast:\n    type: command\n    command: [\"true\"]\n  main:\n    type: claude\ndefaults:\n  agent: main\n"),
    );
    let (code, body) = server.get_json("/api/v1/agents");
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({"agents": [{"name": "fast", "type": "command"}, {"name": "main", "type": "claude"}], "default": "main", "configured": true})
    );
}

#[test]
fn the_bus_refuses_a_type_that_is_not_a_token() {
    let sb = Sandbox::new();
    let server = serve(&sb, None);
    std::fs::create_dir_all(sb.path().join("root/demo")).unwrap();
    let (code, body) = server.post_json(
        "/api/v1/projects/demo/bus",
        json!({"type": "bogus type", "body": "x"}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("is not a message type"), "{body}");
    let (code, body) = server.post_json(
        "/api/v1/projects/demo/bus",
        json!({"type": "RUN_START", "body": "x"}),
    );
    assert_eq!(code, 201, "{body}");
}

#[test]
fn sigterm_ends_open_event_streams_and_stops_at_once() {
    let sb = Sandbox::new();
    let server = serve(&sb, None);
    let mut open = Vec::new();
    for url in ["/api/v1/events?topics=runs", "/api/v1/runs/stream/all"] {
        let mut stream = events(&format!("{}{url}", server.base), None);
        stream.next().unwrap();
        open.push(stream);
    }
    let started = Instant::now();
    let status = server.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    // Generous bound: without ending the streams, graceful shutdown waits for the clients.
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    // The streams ended (not cut mid-event).
    for mut stream in open {
        assert!(stream.next().is_none());
    }
}
