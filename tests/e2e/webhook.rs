//! The run webhook: signed run_start / run_stop events reach a local receiver; a receiver
//! that never answers leads to a WARN on the task bus, and the run itself is unaffected.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Sandbox, Server};

const FAKE_AGENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fake-agents/fake-agent.sh"
);

/// A one-thread HTTP receiver on 127.0.0.1: sends (headers, body) of each request.
fn receiver() -> (u16, mpsc::Receiver<(Vec<String>, String)>) {
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

fn start(sb: &Sandbox, webhook: &str) -> Server {
    let config = sb.write(
        "config.yaml",
        &format!(
            "agents:\n  script:\n    type: command\n    command: [\"{FAKE_AGENT}\"]\ndefaults:\n  agent: script\n  max_restarts: 0\n{webhook}"
        ),
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(sb.path().join("root"))
        .arg("--config")
        .arg(&config)
        .env("FAKE_DONE_AFTER", "1");
    Server::start(cmd, sb.path())
}

fn start_task(server: &Server) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(&format!("{}/api/v1/tasks", server.base))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"project_id": "demo", "task_id": "t", "prompt": "x", "wait_seconds": 60}).to_string())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
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
    let mut events = Vec::new();
    while events.len() < 2 {
        let (headers, body) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("webhook request");
        let sig = headers
            .iter()
            .find_map(|h| {
                h.strip_prefix("X-Conductor-Signature: ")
                    .or_else(|| h.strip_prefix("x-conductor-signature: "))
            })
            .expect("signature header")
            .to_string();
        assert_eq!(
            sig,
            conductor::api::webhook::signature("topsecret", body.as_bytes())
        );
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        events.push(value);
    }
    events.sort_by_key(|e| e["event"].as_str().unwrap().to_string());
    assert_eq!(events[0]["event"], "run_start");
    assert_eq!(events[1]["event"], "run_stop");
    assert_eq!(events[1]["status"], "completed");
    assert_eq!(events[1]["exit_code"], 0);
    assert_eq!(events[1]["project_id"], "demo");
    assert_eq!(events[1]["task_id"], "t");
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
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, bus) = server.get_json("/api/v1/projects/demo/tasks/t/bus?type=WARN");
        if let Some(msg) = bus["messages"].as_array().and_then(|m| m.first()) {
            let body = msg["body"].as_str().unwrap();
            assert!(body.contains("webhook delivery failed: run_stop"), "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no WARN on the task bus"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, task) = server.get_json("/api/v1/projects/demo/tasks/t");
    assert_eq!(task["runs"][0]["status"], "completed");
}
