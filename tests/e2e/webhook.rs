//! The run webhook, delivered by each run's supervisor: signed run_start / run_stop events
//! reach a local receiver whether a server started the run or a plain `run-agent job` did
//! (no server needed), exactly once each even when a server watches the same root; a
//! receiver that never answers leads to a WARN on the task bus, and the run is unaffected.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{run, text, Sandbox, Server};

pub(crate) type Request = (Vec<String>, String);

use crate::support::FAKE_AGENT;

/// A one-thread HTTP receiver on 127.0.0.1: sends (headers, body) of each request.
pub(crate) fn receiver() -> (u16, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_string();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push(line);
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx
                .send((headers, String::from_utf8_lossy(&body).into_owned()))
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

fn config(sb: &Sandbox, webhook: &str) -> PathBuf {
    sb.write(
        "config.yaml",
        &format!(
            "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 0\n{webhook}"
        ),
    )
}

fn start(sb: &Sandbox, webhook: &str) -> Server {
    let config = config(sb, webhook);
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(&config)
        .env("FAKE_DONE_AFTER", "1");
    Server::start(cmd, sb.path())
}

fn start_task(server: &Server) {
    let agent = crate::support::http_agent(None);
    let resp = agent
        .post(&format!("{}/api/v1/tasks", server.base))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"project_id": "demo", "task_id": "t", "prompt": "x", "wait_seconds": 60}).to_string())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

/// The value of header `name` (case-insensitive).
fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| {
        let (key, value) = h.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// Checks the request's signature and content type; returns its JSON body.
fn signed_event((headers, body): &Request) -> serde_json::Value {
    assert_eq!(
        header(headers, "X-Conductor-Signature"),
        Some(conductor::runner::webhook::signature("topsecret", body.as_bytes()).as_str()),
        "{headers:?}"
    );
    assert_eq!(header(headers, "Content-Type"), Some("application/json"));
    serde_json::from_str(body).unwrap()
}

/// `n` requests, sorted by event name.
fn events(rx: &mpsc::Receiver<Request>, n: usize) -> Vec<serde_json::Value> {
    let mut events: Vec<_> = (0..n)
        .map(|_| {
            signed_event(
                &rx.recv_timeout(Duration::from_secs(30))
                    .expect("webhook request"),
            )
        })
        .collect();
    events.sort_by_key(|e| e["event"].as_str().unwrap().to_string());
    events
}

fn assert_start_and_stop(events: &[serde_json::Value], task: &str) {
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["event"], "run_start");
    assert_eq!(events[1]["event"], "run_stop");
    assert_eq!(events[0]["run_id"], events[1]["run_id"]);
    assert_eq!(events[1]["status"], "completed");
    assert_eq!(events[1]["exit_code"], 0);
    assert_eq!(events[1]["project_id"], "demo");
    assert_eq!(events[1]["task_id"], task);
    assert_eq!(events[1]["agent_type"], "command");
    assert!(events[1]["duration_seconds"].is_f64(), "{}", events[1]);
    assert!(events[1].get("error_summary").is_none(), "{}", events[1]);
}

/// `run-agent job` on `root` with `config` (the fake agent finishes at once).
fn cli_job(sb: &Sandbox, root: &std::path::Path, config: &std::path::Path, task: &str) {
    let out = run(sb
        .run_agent()
        .args([
            "job",
            "--project",
            "demo",
            "--task",
            task,
            "--prompt",
            "x",
            "--root",
        ])
        .arg(root)
        .arg("--config")
        .arg(config));
    assert!(out.status.success(), "{}", text(&out));
}

/// Waits until the server lists `task`'s first run as completed (it has indexed the end).
fn wait_indexed(server: &Server, task: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = server.get_json(&format!("/api/v1/projects/demo/tasks/{task}"));
        if body["runs"][0]["status"] == "completed" {
            return;
        }
        assert!(Instant::now() < deadline, "run not indexed: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After the server has seen the run end, nothing more arrives (one bounded settle wait).
fn assert_no_more(rx: &mpsc::Receiver<Request>) {
    if let Ok(extra) = rx.recv_timeout(Duration::from_millis(1500)) {
        panic!("a duplicate delivery: {extra:?}");
    }
}

#[test]
fn run_events_are_delivered_signed() {
    let (port, rx) = receiver();
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &format!("webhook:\n  url: http://127.0.0.1:{port}/hook\n  secret: topsecret\n"),
    );
    start_task(&server);
    assert_start_and_stop(&events(&rx, 2), "t");
    wait_indexed(&server, "t");
    assert_no_more(&rx);
}

#[test]
fn a_cli_job_without_a_server_delivers_its_events() {
    let (port, rx) = receiver();
    let sb = Sandbox::new();
    let config = config(
        &sb,
        &format!("webhook:\n  url: http://127.0.0.1:{port}/hook\n  secret: topsecret\n"),
    );
    cli_job(&sb, &sb.path().join("root"), &config, "solo");
    // The detached supervisor delivers, also after the job command has returned.
    assert_start_and_stop(&events(&rx, 2), "solo");
    assert_no_more(&rx);
}

#[test]
fn a_cli_job_is_delivered_once_while_a_server_watches_the_root() {
    let (port, rx) = receiver();
    let sb = Sandbox::new();
    let webhook =
        format!("webhook:\n  url: http://127.0.0.1:{port}/hook\n  secret: topsecret\n  events: [run_stop]\n");
    let server = start(&sb, &webhook);
    cli_job(&sb, &sb.path().join("root"), &config(&sb, &webhook), "cli");
    let stop = events(&rx, 1);
    assert_eq!(stop[0]["event"], "run_stop");
    assert_eq!(stop[0]["task_id"], "cli");
    wait_indexed(&server, "cli");
    assert_no_more(&rx);
}

#[test]
fn failed_delivery_warns_on_the_task_bus() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sb = Sandbox::new();
    let server = start(
        &sb,
        &format!("webhook:\n  url: http://127.0.0.1:{closed}/hook\n  events: [run_stop]\n"),
    );
    start_task(&server);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, bus) = server.get_json("/api/v1/projects/demo/tasks/t/bus?type=WARN");
        if let Some(msg) = bus["messages"].as_array().and_then(|m| m.first()) {
            let body = msg["body"].as_str().unwrap();
            assert!(body.contains("webhook delivery failed: run_stop"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "no WARN on the task bus");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, task) = server.get_json("/api/v1/projects/demo/tasks/t");
    assert_eq!(task["runs"][0]["status"], "completed");
}
