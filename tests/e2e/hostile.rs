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

/// Half-open connections (a partial request head, then silence) under a low open-file limit:
/// the server caps its connections instead of running out of descriptors, logs the cap, drops
/// the half-open ones after the header timeout, and `/healthz` answers again.
#[test]
fn half_open_connections_are_capped_and_timed_out() {
    use std::io::{Read, Write};
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    let sb = Sandbox::new();
    let root = sb.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(&root);
    // SAFETY: setrlimit is async-signal-safe; it only affects the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 300,
                rlim_max: 300,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Server::start(cmd, sb.path());
    let port = server.port();
    // More than the cap (64 at this limit), each with half a request head.
    let mut open: Vec<std::net::TcpStream> = (0..120)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // The accepted ones are closed by the server after the header timeout.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut closed = 0;
    for s in open.iter_mut().take(10) {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 512];
        // Either EOF, an error answer then EOF, or a reset: the server hung up.
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        closed += 1;
    }
    assert_eq!(closed, 10);
    assert!(
        Instant::now() < deadline,
        "half-open connections were not timed out"
    );
    // The server still answers.
    let (status, _) = raw_http(
        port,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let log = server.log();
    assert!(log.contains("connection limit reached"), "{log}");
    assert!(!log.contains("Too many open files"), "{log}");
    drop(open);
}
