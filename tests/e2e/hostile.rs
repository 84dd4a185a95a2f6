//! The server under hostile input: DNS rebinding (foreign `Host` names), half-open
//! connections, slow SSE clients. Each test drives the real binary over raw sockets.

use crate::support::{raw_http, Sandbox, Server};

fn keyless(sb: &Sandbox, config: Option<&str>) -> Server {
    std::fs::create_dir_all(sb.path().join("root/demo")).unwrap();
    crate::support::serve_root(sb, config)
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

/// The server's resident memory in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn sse_clients(server: &Server) -> u64 {
    let (_, body) = crate::support::http_get(&format!("{}/metrics", server.base)).unwrap();
    body.lines()
        .find(|l| l.starts_with("conductor_sse_clients "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .expect("conductor_sse_clients in /metrics")
}

/// Clients that open a stream on a 50 MB stdout or a 20 MB bus and never read: the server's
/// memory stays bounded (each client costs its 256 KiB buffer, not the backlog), `/healthz`
/// answers meanwhile, the open-stream gauge drops when they leave, and a client that does read
/// gets every byte of the log.
#[test]
fn non_reading_sse_clients_cost_a_bounded_buffer_each() {
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};

    use conductor::bus::{AppendOptions, BusWriter, NewMessage};
    use conductor::storage::{ProjectId, RunInfo, RunStatus};

    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let run_dir = root.join("demo/task-1/runs/r-big");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut info = RunInfo::new_running("r-big", "demo", "task-1", "command", chrono::Utc::now());
    info.status = RunStatus::Completed;
    info.write(&run_dir.join("run-info.yaml")).unwrap();
    let line = format!("{}\n", "o".repeat(4095));
    let mut stdout = std::fs::File::create(run_dir.join("agent-stdout.txt")).unwrap();
    for _ in 0..(50 * 256) {
        stdout.write_all(line.as_bytes()).unwrap();
    }
    drop(stdout);
    let stdout_len = std::fs::metadata(run_dir.join("agent-stdout.txt"))
        .unwrap()
        .len();
    let bus = root.join("demo/task-1/TASK-MESSAGE-BUS.md");
    let mut writer = BusWriter::new(&bus, AppendOptions::default());
    let body = "b".repeat(10_000);
    for _ in 0..2000 {
        let msg = NewMessage::new("INFO", ProjectId::parse("demo").unwrap()).body(body.clone());
        writer.append(&msg).unwrap();
    }

    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--root"])
        .arg(&root);
    let server = Server::start(cmd, sb.path());
    let port = server.port();
    let pid = server.child.0.as_ref().unwrap().id();
    let before = rss_kib(pid);

    let open = |path: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        s
    };
    let mut silent = Vec::new();
    for _ in 0..15 {
        silent.push(open("/api/v1/runs/r-big/stream"));
        silent.push(open("/api/v1/projects/demo/tasks/task-1/bus/stream"));
    }
    std::thread::sleep(Duration::from_secs(3));
    let health = Instant::now();
    let (status, _) = crate::support::http_get(&format!("{}/healthz", server.base)).unwrap();
    assert_eq!(status, 200);
    let health_ms = health.elapsed().as_millis();
    let during = rss_kib(pid);
    assert_eq!(sse_clients(&server), 30);
    // Unbounded, 30 clients would hold 15 × 50 MB + 15 × 20 MB. Bounded, each holds a few
    // hundred KiB (its buffer and hyper's): allow a generous 200 MB in total.
    let grown_mb = during.saturating_sub(before) / 1024;
    eprintln!(
        "30 silent SSE clients: RSS {} MB -> {} MB (+{grown_mb} MB), /healthz {health_ms} ms",
        before / 1024,
        during / 1024
    );
    assert!(grown_mb < 200, "RSS grew by {grown_mb} MB");

    // A reading client gets the whole log, line for line.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into();
    let resp = agent
        .get(&format!("{}/api/v1/runs/r-big/stream", server.base))
        .call()
        .unwrap();
    let mut received = 0u64;
    let mut lines = 0u64;
    for l in BufReader::new(resp.into_body().into_reader()).lines() {
        let l = l.unwrap();
        if let Some(data) = l.strip_prefix("data: ") {
            if data.len() == 4095 {
                received += 4096;
                lines += 1;
            }
        }
        if l == "event: end" {
            break;
        }
    }
    assert_eq!(received, stdout_len, "{lines} lines received");

    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sse_clients(&server) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        sse_clients(&server),
        0,
        "the gauge drops when clients leave"
    );
    eprintln!("after the clients left: RSS {} MB", rss_kib(pid) / 1024);
}

/// axum's own rejections (a bad query string, a method a route lacks) answer the JSON error
/// envelope, and `POST …/resume` with a JSON content type and an empty body reads as `{}`.
#[test]
fn rejections_use_the_json_envelope_and_resume_takes_an_empty_body() {
    let sb = Sandbox::new();
    let server = keyless(&sb, None);
    let port = server.port();
    for (method, path, want) in [
        ("GET", "/api/v1/runs?limit=-1", 400),
        ("DELETE", "/api/v1/runs", 405),
        ("GET", "/api/v1/projects/demo/bus?tail=x", 400),
    ] {
        let (status, body) = raw_http(port, &request(method, path, "localhost", ""));
        assert_eq!(status, want, "{method} {path}: {body}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert!(json["error"]["code"].is_string(), "{body}");
        assert!(
            !json["error"]["message"].as_str().unwrap().is_empty(),
            "{body}"
        );
    }
    let task = sb.path().join("root/demo/task-1");
    std::fs::create_dir_all(&task).unwrap();
    std::fs::write(task.join("DONE"), "").unwrap();
    let (status, body) = raw_http(
        port,
        &request(
            "POST",
            "/api/v1/projects/demo/tasks/task-1/resume",
            "localhost",
            "Content-Type: application/json\r\n",
        ),
    );
    // The empty body is the default (no reset_done), so the DONE task is a conflict, not a
    // body error.
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("reset_done"), "{body}");
}
