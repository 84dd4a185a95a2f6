//! `run-agent serve` and `conductor`: zero-config start, binding rules, status, config
//! errors, precedence of flags/env/file, and graceful shutdown.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::{run, text, wait_until, Sandbox, Server};

fn serve(sb: &Sandbox) -> std::process::Command {
    let mut cmd = sb.run_agent();
    cmd.arg("serve").env("CONDUCTOR_HOST", "127.0.0.1");
    cmd
}

#[test]
fn version_flags_print_version_and_commit() {
    let sb = Sandbox::new();
    for mut cmd in [sb.run_agent(), sb.conductor()] {
        let out = run(cmd.arg("--version"));
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
        assert!(
            stdout.contains('(') && stdout.contains(')'),
            "commit missing: {stdout}"
        );
    }
}

#[test]
fn serve_on_defaults_creates_root_and_reports_status() {
    let sb = Sandbox::new();
    // No config, no port: default 14355 with the auto-bind range (only the host is loopback).
    let server = Server::start(serve(&sb), sb.path());
    let port = server.port();
    assert!((14355..14455).contains(&port), "port {port}");
    let log = server.log();
    assert!(log.contains("/ui/"), "UI URL not logged: {log}");
    let (code, status) = server.get_json("/api/v1/status");
    assert_eq!(code, 200);
    let root = sb.path().join("run-agent");
    assert_eq!(status["root"], root.display().to_string());
    assert!(root.is_dir());
    assert_eq!(status["config"], "defaults");
    assert_eq!(status["config_error"], serde_json::Value::Null);
    assert_eq!(status["pid"], server.child.0.as_ref().unwrap().id());
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["task_start_enabled"], true);
    // Hashed in the background: `pending` (and null) until done, never waited for.
    assert!(
        ["pending", "ready"].contains(&status["executable_sha256_state"].as_str().unwrap()),
        "{status}"
    );
    let mut status = status;
    wait_until("the executable hash", Duration::from_secs(60), || {
        status = server.get_json("/api/v1/status").1;
        status["executable_sha256_state"] == "ready"
    });
    assert_eq!(status["executable_sha256"].as_str().map(str::len), Some(64));
    assert!(status["uptime_seconds"].is_u64());
    assert_eq!(status["active_runs"], 0);
    assert_eq!(status["update"]["state"], "idle");
    assert!(status["runs"].is_object(), "{status}");
    let (code, health) = server.get_json("/healthz");
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
    let (code, err) = server.get_json("/api/v1/nope");
    assert_eq!(code, 404);
    assert_eq!(err["error"]["code"], "not_found");
    let resp = ureq::get(&format!("{}/nope", server.base))
        .header("X-Request-Id", "rid-404")
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(resp.headers().get("x-request-id").unwrap(), "rid-404");
    let exit = server.terminate();
    assert!(exit.success(), "SIGTERM should exit 0, got {exit}");
}

#[test]
fn explicit_busy_port_fails_fast() {
    let sb = Sandbox::new();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = run(serve(&sb).args(["--port", &port.to_string()]));
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&port.to_string()), "{}", text(&out));
    // The OS error is said once, not once per level of the error chain.
    assert_eq!(
        stderr.matches("in use").count(),
        1,
        "the cause is repeated: {stderr}"
    );
    // CONDUCTOR_PORT is explicit too.
    let out = run(serve(&sb).env("CONDUCTOR_PORT", port.to_string()));
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn config_port_is_not_explicit_and_moves_past_a_busy_port() {
    let sb = Sandbox::new();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    if port > u16::MAX - 100 {
        return; // no room for the range above this ephemeral port
    }
    let config = sb.write(
        "conf/config.yaml",
        &format!("api:\n  host: 127.0.0.1\n  port: {port}\nstorage:\n  runs_dir: ./runs\n"),
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--config"]).arg(&config);
    let server = Server::start(cmd, sb.path());
    assert!(
        server.port() > port && server.port() < port + 100,
        "{}",
        server.port()
    );
    let (_, status) = server.get_json("/api/v1/status");
    // storage.runs_dir is relative to the config file's directory.
    assert_eq!(
        status["root"],
        sb.path().join("conf/runs").display().to_string()
    );
    assert_eq!(status["config"], config.display().to_string());
}

#[test]
fn root_precedence_flag_env_file() {
    let sb = Sandbox::new();
    sb.write("config.yaml", "storage:\n  runs_dir: from-file\n");
    let status_root = |cmd: std::process::Command| {
        let server = Server::start(cmd, sb.path());
        let (_, status) = server.get_json("/api/v1/status");
        status["root"].as_str().unwrap().to_string()
    };
    // ./config.yaml is discovered from the working directory.
    assert_eq!(
        status_root(serve(&sb)),
        sb.path().join("from-file").display().to_string()
    );
    let mut cmd = serve(&sb);
    cmd.env("CONDUCTOR_ROOT", sb.path().join("from-env"));
    assert_eq!(
        status_root(cmd),
        sb.path().join("from-env").display().to_string()
    );
    let mut cmd = serve(&sb);
    cmd.env("CONDUCTOR_ROOT", sb.path().join("from-env"))
        .arg("--root")
        .arg(sb.path().join("from-flag"));
    assert_eq!(
        status_root(cmd),
        sb.path().join("from-flag").display().to_string()
    );
}

#[test]
fn broken_config_run_agent_continues_on_defaults() {
    let sb = Sandbox::new();
    let config = sb.write("bad.yaml", "api:\n  port: [1, 2\n");
    let mut cmd = serve(&sb);
    cmd.arg("--config").arg(&config);
    let server = Server::start(cmd, sb.path());
    let (_, status) = server.get_json("/api/v1/status");
    let err = status["config_error"]
        .as_str()
        .expect("config_error reported");
    assert!(err.contains("bad.yaml"), "{err}");
    assert_eq!(status["task_start_enabled"], true);
    assert_eq!(
        status["root"],
        sb.path().join("run-agent").display().to_string()
    );
    assert!(
        server.log().contains("bad.yaml"),
        "error not logged: {}",
        server.log()
    );
}

#[test]
fn broken_config_conductor_serves_read_only() {
    let sb = Sandbox::new();
    let config = sb.write("bad.yaml", "api:\n  bogus_key: 1\n");
    let mut cmd = sb.conductor();
    cmd.env("CONDUCTOR_HOST", "127.0.0.1")
        .arg("--config")
        .arg(&config);
    let server = Server::start(cmd, sb.path());
    let (_, status) = server.get_json("/api/v1/status");
    let err = status["config_error"]
        .as_str()
        .expect("config_error reported");
    assert!(err.contains("bogus_key"), "{err}");
    assert_eq!(status["task_start_enabled"], false);
}

#[test]
fn conductor_requires_a_config() {
    let sb = Sandbox::new();
    let mut cmd = sb.conductor();
    cmd.env("CONDUCTOR_HOST", "127.0.0.1");
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config.yaml"),
        "searched paths not named: {stderr}"
    );
    assert!(stderr.contains(".config/conductor"), "{stderr}");
}

#[test]
fn conductor_serves_with_a_config() {
    let sb = Sandbox::new();
    sb.write("config.hcl", "api {\n  host = \"127.0.0.1\"\n}\n");
    let server = Server::start(sb.conductor(), sb.path());
    let (_, status) = server.get_json("/api/v1/status");
    assert_eq!(
        status["config"],
        sb.path().join("config.hcl").display().to_string()
    );
    assert_eq!(status["task_start_enabled"], true);
    assert_eq!(status["config_error"], serde_json::Value::Null);
}

#[test]
fn disable_task_start_env_overrides_flag() {
    let sb = Sandbox::new();
    let mut cmd = serve(&sb);
    cmd.env("CONDUCTOR_DISABLE_TASK_START", "true");
    let server = Server::start(cmd, sb.path());
    assert_eq!(
        server.get_json("/api/v1/status").1["task_start_enabled"],
        false
    );
    let mut cmd = serve(&sb);
    cmd.env("CONDUCTOR_DISABLE_TASK_START", "0")
        .arg("--disable-task-start");
    let server = Server::start(cmd, sb.path());
    assert_eq!(
        server.get_json("/api/v1/status").1["task_start_enabled"],
        true
    );
}

#[test]
fn json_logs_are_json_lines() {
    let sb = Sandbox::new();
    let mut cmd = serve(&sb);
    cmd.args(["--log-format", "json"]);
    let server = Server::start(cmd, sb.path());
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("API listening"))
        .expect("listening line");
    let value: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    assert_eq!(value["level"], "INFO");
}

#[test]
fn ui_is_served_and_root_redirects() {
    let sb = Sandbox::new();
    let server = Server::start(serve(&sb), sb.path());
    let (code, body) = crate::support::http_get(&format!("{}/ui/", server.base)).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("<title>Conductor</title>"), "{body}");
    let (code, js) = crate::support::http_get(&format!("{}/ui/app.js", server.base)).unwrap();
    assert_eq!(code, 200);
    assert!(js.contains("import "), "app.js is an ES module: {js}");
    let (code, api) = crate::support::http_get(&format!("{}/ui/js/api.js", server.base)).unwrap();
    assert_eq!(code, 200);
    assert!(api.contains("../api/v1"), "{api}");
    let (code, _) = crate::support::http_get(&format!("{}/ui/missing.js", server.base)).unwrap();
    assert_eq!(code, 404);
    // ureq follows the redirect from / to /ui/.
    let (code, body) = crate::support::http_get(&format!("{}/", server.base)).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("<title>Conductor</title>"));
    // Content types come from the file names; a module script must be served as JavaScript.
    for (path, expected) in [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
    ] {
        let resp = ureq::get(&format!("{}{path}", server.base)).call().unwrap();
        let got = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert_eq!(got, expected, "{path}");
    }
}

#[test]
fn metrics_are_prometheus_text_labelled_by_route_template() {
    let sb = Sandbox::new();
    let server = Server::start(serve(&sb), sb.path());
    for _ in 0..3 {
        crate::support::http_get(&format!("{}/api/v1/runs/r-123", server.base)).unwrap();
    }
    let (code, text) = crate::support::http_get(&format!("{}/metrics", server.base)).unwrap();
    assert_eq!(code, 200);
    assert!(
        text.contains(r#"conductor_http_requests_total{method="GET",route="/api/v1/runs/{run}",status="404"} 3"#),
        "{text}"
    );
    assert!(
        !text.contains("r-123"),
        "raw paths must not become labels: {text}"
    );
    assert!(
        text.contains(r#"conductor_runs{status="running"} 0"#),
        "{text}"
    );
    assert!(text.contains("conductor_sse_clients 0"), "{text}");
    assert!(
        text.contains(r#"conductor_update_state{state="idle"} 1"#),
        "{text}"
    );
}

#[test]
fn metrics_need_the_key_when_auth_is_on() {
    let sb = Sandbox::new();
    let mut cmd = serve(&sb);
    cmd.args(["--api-key", "metrics-key-123456"]);
    let server = Server::start(cmd, sb.path());
    let (code, _) = crate::support::http_get(&format!("{}/metrics", server.base)).unwrap();
    assert_eq!(code, 401);
}

#[test]
fn openapi_document_describes_the_routes() {
    let sb = Sandbox::new();
    let server = Server::start(serve(&sb), sb.path());
    let (code, doc) = server.get_json("/api/v1/openapi.json");
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/tasks",
        "/api/v1/runs/{run}/stream",
        "/api/v1/admin/self-update",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(doc["paths"]["/api/v1/tasks"]["post"]["requestBody"].is_object());
    assert!(
        doc["components"]["schemas"]["StartTaskBody"]["properties"]["wait_seconds"].is_object()
    );
    let (code, page) = crate::support::http_get(&format!("{}/ui/api.html", server.base)).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("openapi.json"));
    // The script the page names is served and is the one that renders the document.
    let script = page
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("api.html names its script");
    let (code, js) = crate::support::http_get(&format!("{}/ui/{script}", server.base)).unwrap();
    assert_eq!(code, 200, "/ui/{script}");
    assert!(
        js.contains("openapi.json"),
        "/ui/{script} renders the OpenAPI document"
    );
}
