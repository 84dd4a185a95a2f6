//! The server under hostile input: DNS rebinding (foreign `Host` names), half-open
//! connections, slow SSE clients. Each test drives the real binary over raw sockets.

use crate::support::{raw_http, Sandbox, Server};

fn keyless(sb: &Sandbox, config: Option<&str>) -> Server {
    let root = sb.path().join("root");
    std::fs::create_dir_all(root.join("demo")).unwrap();
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(&root);
    if let Some(text) = config {
        cmd.arg("--config").arg(sb.write("config.yaml", text));
    }
    Server::start(cmd, sb.path())
}

fn request(method: &str, path: &str, host: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn a_rebound_host_name_is_refused_before_any_handler() {
    let sb = Sandbox::new();
    let server = keyless(
        &sb,
        Some("api:\n  allowed_hosts: [conductor.example.com]\n"),
    );
    let port = server.port();
    let evil = format!("attacker.example:{port}");
    let origin = format!("Origin: http://{evil}\r\nContent-Type: application/json\r\n");
    for (method, path, extra) in [
        ("POST", "/api/v1/tasks", origin.as_str()),
        ("GET", "/api/v1/status", ""),
        ("GET", "/healthz", ""),
        ("GET", "/ui/", ""),
        ("GET", "/no/such/route", ""),
    ] {
        let (status, body) = raw_http(port, &request(method, path, &evil, extra));
        assert_eq!(status, 421, "{method} {path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON envelope");
        assert_eq!(json["error"]["code"], "misdirected_host", "{body}");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed_hosts"));
    }
    // Loopback names, addresses and listed names reach the handlers.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "conductor.example.com".to_string(),
    ] {
        let (status, body) = raw_http(port, &request("GET", "/api/v1/status", &host, ""));
        assert_eq!(status, 200, "{host}: {body}");
    }
    // Nothing was started by the refused POST.
    assert!(!sb
        .path()
        .join("root/demo")
        .read_dir()
        .unwrap()
        .any(|_| true));
}
