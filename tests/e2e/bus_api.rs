//! The bus over HTTP: post and read (since / tail / type), SSE follow with resume from
//! `Last-Event-ID`, and the reference's `/api/v1/messages` routes.

use std::time::Duration;

use crate::support::{post_json_text, serve_root, sse_events, Sandbox, Server};

fn agent() -> ureq::Agent {
    crate::support::http_agent(Some(Duration::from_secs(30)))
}

/// POSTs `body` to `path`; the status and the JSON answer (a non-JSON answer fails the test).
fn post(server: &Server, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let (code, text) = post_json_text(&agent(), &format!("{}{path}", server.base), &body);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (code, value)
}

/// A server on `<sandbox>/root`, which holds task `demo/task-1`.
fn start(sb: &Sandbox) -> Server {
    std::fs::create_dir_all(sb.root().join("demo/task-1")).unwrap();
    serve_root(sb, None)
}

/// Reads SSE events (`event`, `id`, `data`) until `count` `message` events arrived.
fn read_events(
    server: &Server,
    path: &str,
    last_id: Option<&str>,
    count: usize,
) -> Vec<(String, String, String)> {
    let mut events = Vec::new();
    for event in sse_events(&format!("{}{path}", server.base), last_id) {
        events.push(event);
        if events.iter().filter(|e| e.0 == "message").count() == count {
            break;
        }
    }
    events
}

#[test]
fn post_read_and_filter() {
    let sb = Sandbox::new();
    let server = start(&sb);
    let mut ids = Vec::new();
    for (t, body) in [
        ("FACT", "one"),
        ("PROGRESS", "two\n---\nthree"),
        ("FACT", "four"),
    ] {
        let (code, resp) = post(
            &server,
            "/api/v1/projects/demo/tasks/task-1/bus",
            serde_json::json!({"type": t, "body": body}),
        );
        assert_eq!(code, 201, "{resp}");
        ids.push(resp["msg_id"].as_str().unwrap().to_string());
    }
    let (_, all) = server.get_json("/api/v1/projects/demo/tasks/task-1/bus");
    let bodies: Vec<&str> = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["one", "two\n---\nthree", "four"]);
    let (_, since) = server.get_json(&format!(
        "/api/v1/projects/demo/tasks/task-1/bus?since={}",
        ids[0]
    ));
    assert_eq!(since["messages"].as_array().unwrap().len(), 2);
    let (_, tail) = server.get_json("/api/v1/projects/demo/tasks/task-1/bus?tail=1");
    assert_eq!(tail["messages"][0]["msg_id"], ids[2].as_str());
    let (_, facts) = server.get_json("/api/v1/projects/demo/tasks/task-1/bus?type=FACT");
    assert_eq!(facts["messages"].as_array().unwrap().len(), 2);
    let (code, err) = server.get_json("/api/v1/projects/demo/tasks/task-1/bus?since=MSG-nope");
    assert_eq!(code, 400, "{err}");
    let (code, _) = post(
        &server,
        "/api/v1/projects/demo/bus",
        serde_json::json!({"type": "", "body": "x"}),
    );
    assert_eq!(code, 400);
    let (code, _) = post(
        &server,
        "/api/v1/projects/demo/bus",
        serde_json::json!({"type": "FACT", "extra": 1}),
    );
    assert_eq!(code, 400);
    let (code, _) = post(
        &server,
        "/api/v1/projects/nope/bus",
        serde_json::json!({"type": "FACT"}),
    );
    assert_eq!(code, 404);
    // The reference's routes see the same bus.
    let (code, _) = post(
        &server,
        "/api/v1/messages",
        serde_json::json!({"project_id": "demo", "task_id": "task-1", "type": "INFO", "body": "compat"}),
    );
    assert_eq!(code, 201);
    let (_, compat) = server.get_json("/api/v1/messages?project_id=demo&task_id=task-1");
    assert_eq!(compat["messages"].as_array().unwrap().len(), 4);
}

#[test]
fn sse_follow_resumes_from_last_event_id() {
    let sb = Sandbox::new();
    let server = start(&sb);
    let path = "/api/v1/projects/demo/bus/stream";
    for body in ["a", "b"] {
        post(
            &server,
            "/api/v1/projects/demo/bus",
            serde_json::json!({"type": "FACT", "body": body}),
        );
    }
    let first = read_events(&server, path, None, 2);
    let msgs: Vec<_> = first.iter().filter(|e| e.0 == "message").collect();
    assert_eq!(msgs.len(), 2);
    let last_id = msgs[1].1.clone();
    // Messages posted while disconnected arrive after a resume, without duplicates.
    for body in ["c", "d"] {
        post(
            &server,
            "/api/v1/projects/demo/bus",
            serde_json::json!({"type": "FACT", "body": body}),
        );
    }
    let handle = {
        let base = server.base.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let body = serde_json::json!({"type": "FACT", "body": "e"}).to_string();
            agent()
                .post(&format!("{base}/api/v1/projects/demo/bus"))
                .header("Content-Type", "application/json")
                .send(body)
                .unwrap();
        })
    };
    let resumed = read_events(&server, path, Some(&last_id), 3);
    handle.join().unwrap();
    let bodies: Vec<String> = resumed
        .iter()
        .filter(|e| e.0 == "message")
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.2).unwrap()["body"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(bodies, ["c", "d", "e"]);
    // An unknown resume id gets a resync notice and the whole bus.
    let events = read_events(&server, path, Some("MSG-unknown"), 5);
    assert_eq!(events[0].0, "resync");
}
