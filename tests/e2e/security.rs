//! API security through the real server: bearer key, login cookie, failed-auth rate limit,
//! keys refused in URLs, Origin checks, request ids and the audit log.

use std::time::Duration;

use crate::support::{Sandbox, Server};

const KEY: &str = "s3cret-key-for-tests-0123";

fn agent() -> ureq::Agent {
    crate::support::http_agent(Some(Duration::from_secs(10)))
}

fn start_with_key(sb: &Sandbox) -> Server {
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--api-key", KEY]);
    Server::start(cmd, sb.path())
}

#[test]
fn bearer_key_cookie_login_and_public_routes() {
    let sb = Sandbox::new();
    let server = start_with_key(&sb);
    let url = |p: &str| format!("{}{p}", server.base);
    let a = agent();

    let resp = a.get(&url("/api/v1/status")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = a
        .get(&url("/api/v1/status"))
        .header("Authorization", &format!("Bearer {KEY}"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("x-request-id").is_some());
    // Only the liveness probe, the UI files and the login are public: every other
    // /api/ route needs the key.
    for private in ["/api/v1/health", "/api/v1/version", "/metrics"] {
        assert_eq!(
            a.get(&url(private)).call().unwrap().status().as_u16(),
            401,
            "{private}"
        );
    }
    for public in ["/healthz", "/ui/"] {
        assert_eq!(
            a.get(&url(public)).call().unwrap().status().as_u16(),
            200,
            "{public}"
        );
    }
    // A key in the URL is refused even when it is right.
    let resp = a
        .get(&url(&format!("/api/v1/status?api_key={KEY}")))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // Login gives an HttpOnly SameSite=Strict cookie that authenticates GETs.
    let resp = a
        .post(&url("/api/v1/auth/login"))
        .header("Content-Type", "application/json")
        .send(format!("{{\"api_key\":\"{KEY}\"}}"))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let resp = a
        .get(&url("/api/v1/status"))
        .header("Cookie", pair)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Admin routes want the key itself: the cookie gets 403, and as often as a browser asks it
    // is not a failed authentication (no rate limit).
    for _ in 0..12 {
        let resp = a
            .get(&url("/api/v1/admin/self-update"))
            .header("Cookie", pair)
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
    }
    let resp = a
        .get(&url("/api/v1/admin/self-update"))
        .header("Authorization", &format!("Bearer {KEY}"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = a
        .get(&url("/api/v1/status"))
        .header("Cookie", "conductor_session=forged")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // The request id a client sends is echoed.
    let resp = a
        .get(&url("/healthz"))
        .header("X-Request-Id", "abc-123")
        .call()
        .unwrap();
    assert_eq!(resp.headers().get("x-request-id").unwrap(), "abc-123");
}

#[test]
fn failed_auth_is_rate_limited() {
    let sb = Sandbox::new();
    let server = start_with_key(&sb);
    let a = agent();
    // Requests without any credential (a logged-out browser polling) are refused but are not
    // attempts: they never lock the client out of the login.
    for _ in 0..15 {
        let resp = a
            .get(&format!("{}/api/v1/status", server.base))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let resp = a
            .get(&format!("{}/api/v1/status", server.base))
            .header("Authorization", "Bearer wrong")
            .call()
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status().as_u16() == 429 {
            assert!(resp.headers().get("retry-after").is_some());
        }
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[10], 429);
    // The correct key is never locked out, and the login cookie source has its own limit.
    let resp = a
        .get(&format!("{}/api/v1/status", server.base))
        .header("Authorization", &format!("Bearer {KEY}"))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = a
        .get(&format!("{}/api/v1/status", server.base))
        .header("Cookie", "conductor_session=stale")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[test]
fn mutations_are_audited_without_secrets_and_foreign_origins_refused() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--api-key", KEY, "--root"])
        .arg(&root);
    let server = Server::start(cmd, sb.path());
    let a = agent();
    let login = |origin: Option<&str>| {
        let mut req = a
            .post(&format!("{}/api/v1/auth/login", server.base))
            .header("Content-Type", "application/json");
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        req.send(format!("{{\"api_key\":\"{KEY}\"}}"))
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(login(Some("http://evil.example")), 403);
    assert_eq!(login(Some(&server.base)), 200);
    assert_eq!(login(None), 200);
    let audit = std::fs::read_to_string(root.join("_audit/audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{audit}");
    assert_eq!(lines[0]["status"], 403);
    assert_eq!(lines[1]["action"], "POST /api/v1/auth/login");
    assert_eq!(lines[1]["result"], "ok");
    assert_eq!(lines[1]["client"], "127.0.0.1");
    assert!(!audit.contains(KEY), "audit log leaked the key");
}

#[test]
fn oversized_and_non_json_bodies_and_cors() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.yaml",
        "api:\n  cors_origins: [\"http://ui.example:8080\"]\n",
    );
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--config"])
        .arg(&config);
    let server = Server::start(cmd, sb.path());
    let a = agent();
    let url = format!("{}/api/v1/tasks", server.base);
    let big = format!(
        "{{\"project_id\":\"p\",\"prompt\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    // The server may close the connection before reading a refused body, so the client can
    // see a reset while still sending (more often on a loaded machine); each try uses a
    // connection of its own.
    let mut resp = (0..20)
        .find_map(|_| {
            agent()
                .post(&url)
                .header("Content-Type", "application/json")
                .send(big.as_str())
                .ok()
        })
        .expect("no answer to the oversized request");
    assert_eq!(resp.status().as_u16(), 413);
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    let resp = a
        .post(&url)
        .header("Content-Type", "text/plain")
        .send("hi")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);

    let resp = a
        .options(&url)
        .header("Origin", "http://ui.example:8080")
        .header("Access-Control-Request-Method", "POST")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        resp.headers().get("access-control-allow-origin").unwrap(),
        "http://ui.example:8080"
    );
    let resp = a
        .get(&format!("{}/api/v1/status", server.base))
        .header("Origin", "http://evil.example")
        .call()
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    // A configured origin may also make changes; others may not.
    let post = |origin: &str| {
        a.post(&format!("{}/api/v1/projects/nope/bus", server.base))
            .header("Origin", origin)
            .header("Content-Type", "application/json")
            .send("{\"type\":\"FACT\"}")
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post("http://ui.example:8080"), 404);
    assert_eq!(post("http://evil.example"), 403);

    // Changes take a JSON body: a form-encoded or untyped POST is refused before any handler
    // runs; an empty body with the JSON type is fine.
    let stop = format!("{}/api/v1/runs/20260101-0000000000-1-1/stop", server.base);
    for content_type in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
    ] {
        let mut request = a.post(&stop);
        if let Some(t) = content_type {
            request = request.header("Content-Type", t);
        }
        let mut resp = request.send("").unwrap();
        assert_eq!(resp.status().as_u16(), 415, "{content_type:?}");
        let body = resp.body_mut().read_to_string().unwrap();
        assert!(body.contains("application/json"), "{body}");
    }
    let resp = a
        .post(&stop)
        .header("Content-Type", "application/json; charset=utf-8")
        .send("")
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        404,
        "passes the check, then: unknown run"
    );
}

/// The audit file and its rotated generations, oldest first, as JSON lines.
fn audit_generations(root: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<serde_json::Value>)> {
    let current = root.join("_audit/audit.jsonl");
    let mut files: Vec<_> = (1..=5)
        .rev()
        .map(|n| root.join(format!("_audit/audit.jsonl.{n}")))
        .collect();
    files.push(current);
    files
        .into_iter()
        .filter(|f| f.exists())
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let lines = text
                .lines()
                .map(|l| {
                    assert!(l.len() < 1024, "an audit line stays short: {l}");
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
                })
                .collect();
            (f, lines)
        })
        .collect()
}

#[test]
fn audit_log_stays_bounded_under_a_flood_of_refused_requests() {
    const MAX: u64 = 64 * 1024;
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    let mut cmd = sb.run_agent();
    cmd.args(["serve", "--host", "127.0.0.1", "--api-key", KEY, "--root"])
        .arg(&root)
        .env("CONDUCTOR_AUDIT_MAX_BYTES", MAX.to_string());
    let server = Server::start(cmd, sb.path());
    let a = agent();
    let post = |path: &str, key: &str, id: &str| {
        a.post(&format!("{}{path}", server.base))
            .header("Authorization", &format!("Bearer {key}"))
            .header("X-Request-Id", id)
            .content_type("application/json")
            .send("{}")
            .unwrap()
            .status()
            .as_u16()
    };

    // 5,000 refused POSTs, 100 more on 8 KB paths, 50 wrong logins.
    let mut refused = 0u64;
    for i in 0..5000 {
        let code = post("/api/v1/tasks", "wrong-key", &format!("bad-{i}"));
        assert!(matches!(code, 401 | 429), "{code}");
        refused += 1;
    }
    let long = "a".repeat(8000);
    for i in 0..100 {
        let path = format!("/api/v1/projects/{long}/tasks/t/stop");
        let code = post(&path, "wrong-key", &format!("badlong-{i}"));
        assert!(matches!(code, 401 | 429), "{code}");
        refused += 1;
    }
    for _ in 0..50 {
        let resp = a
            .post(&format!("{}/api/v1/auth/login", server.base))
            .content_type("application/json")
            .send(r#"{"api_key": "wrong-key"}"#)
            .unwrap();
        assert!(matches!(resp.status().as_u16(), 401 | 429));
        refused += 1;
    }
    // 300 authenticated requests on long paths (refused by the handler: bad project id):
    // each keeps its line, and they push the file through rotations.
    for i in 0..300 {
        let path = format!("/api/v1/projects/{long}/tasks/t/stop");
        assert_eq!(post(&path, KEY, &format!("acc-{i}")), 400);
    }
    // The summary of the window is written at shutdown at the latest.
    assert!(server.terminate().success());

    let generations = audit_generations(&root);
    assert!(
        generations.len() >= 2,
        "the file was rotated: {generations:?}"
    );
    assert!(
        generations.len() <= 4,
        "at most 3 rotated generations are kept"
    );
    for (file, _) in &generations {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(size <= MAX, "{} holds {size} bytes", file.display());
    }
    let lines: Vec<&serde_json::Value> = generations.iter().flat_map(|(_, l)| l).collect();
    for i in 0..300 {
        let id = format!("acc-{i}");
        let found = lines.iter().filter(|l| l["request_id"] == id).count();
        assert_eq!(found, 1, "authenticated request {id} audited once");
    }
    let target = lines.iter().find(|l| l["request_id"] == "acc-0").unwrap()["target"]
        .as_str()
        .unwrap();
    assert!(target.len() <= 256 && target.ends_with('…'), "{target}");
    let sampled = lines
        .iter()
        .filter(|l| matches!(l["status"].as_u64(), Some(401 | 429)))
        .count() as u64;
    let suppressed: u64 = lines.iter().filter_map(|l| l["suppressed"].as_u64()).sum();
    assert!(suppressed > 0, "a summary line counts the refused requests");
    assert_eq!(
        sampled + suppressed,
        refused,
        "every refused request is accounted for"
    );
    assert!(
        sampled <= 40,
        "refused requests are sampled: {sampled} lines"
    );
}
