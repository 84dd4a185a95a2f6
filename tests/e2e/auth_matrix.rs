//! e2e: the auth matrix, generated from the OpenAPI document the server serves (a unit test
//! keeps that document in step with the router): every route × {no key, wrong key, key in the
//! query string, login cookie, forged cookie, the API key on admin routes, the admin key} on a
//! server with keys, and every route from a non-loopback client on a keyless non-loopback
//! bind. A route added later without auth fails here.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use conductor::storage::{RunInfo, RunStatus};
use serde_json::Value;

use crate::support::{free_port, Sandbox, Server};

const KEY: &str = "matrix-api-key-0123456789";
const ADMIN: &str = "matrix-admin-key-0123456789";
const RUN: &str = "20260101-0000000000-1-1";
/// Routes anyone may call; every other route must refuse a caller without the key.
const PUBLIC: &[&str] = &["/healthz", "/api/v1/auth/login"];

/// One request of the matrix.
#[derive(Debug, Clone)]
struct Route {
    method: String,
    /// The documented template, e.g. `/api/v1/runs/{run}`.
    template: String,
    /// With sample ids.
    path: String,
}

impl Route {
    fn is_public(&self) -> bool {
        PUBLIC.contains(&self.template.as_str())
    }

    fn is_admin(&self) -> bool {
        self.template.starts_with("/api/v1/admin/")
    }

    fn is_mutation(&self) -> bool {
        self.method != "get"
    }
}

fn sample(param: &str) -> &'static str {
    match param {
        "project" => "p",
        "task" => "t",
        "run" => RUN,
        "name" => "output.md",
        "stream" => "0123456789abcdef",
        other => {
            panic!("route parameter {{{other}}} has no sample id: add one to auth_matrix::sample")
        }
    }
}

/// `GET /api/v1/openapi.json`.
fn document_route() -> Route {
    Route {
        method: "get".into(),
        template: "/api/v1/openapi.json".into(),
        path: "/api/v1/openapi.json".into(),
    }
}

/// Every (method, path) the document describes, plus the document itself.
fn routes(doc: &Value) -> Vec<Route> {
    let mut routes = vec![document_route()];
    for (template, ops) in doc["paths"].as_object().expect("paths") {
        let path = template
            .split('/')
            .map(
                |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(param) => sample(param).to_string(),
                    None => seg.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().expect("operations").keys() {
            assert!(
                matches!(method.as_str(), "get" | "post" | "delete"),
                "the matrix sends {method}: extend auth_matrix::send"
            );
            routes.push(Route {
                method: method.clone(),
                template: template.clone(),
                path: path.clone(),
            });
        }
    }
    routes
}

/// A client with a fresh connection per request: a refused request may leave its connection
/// closed, and an event stream is dropped unread.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Sends `route` to `base` with `headers` (and `query` appended); status and body text (empty
/// for an event stream, which is not read).
fn send(
    agent: &ureq::Agent,
    base: &str,
    route: &Route,
    query: &str,
    headers: &[(&str, String)],
) -> (u16, String) {
    let url = format!("{base}{}{query}", route.path);
    let response = match route.method.as_str() {
        "get" => {
            let mut req = agent.get(&url);
            for (name, value) in headers {
                req = req.header(*name, value);
            }
            req.call()
        }
        "delete" => {
            let mut req = agent.delete(&url);
            for (name, value) in headers {
                req = req.header(*name, value);
            }
            req.call()
        }
        _ => {
            let mut req = agent.post(&url).content_type("application/json");
            for (name, value) in headers {
                req = req.header(*name, value);
            }
            req.send("{}")
        }
    };
    let mut response = response.unwrap_or_else(|e| panic!("{} {url}: {e}", route.method));
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
    let body = if streaming {
        String::new()
    } else {
        response.body_mut().read_to_string().unwrap_or_default()
    };
    (status, body)
}

fn make_run(root: &Path) {
    let dir = root.join("p/t/runs").join(RUN);
    std::fs::create_dir_all(&dir).unwrap();
    let mut info = RunInfo::new_running(RUN, "p", "t", "claude", Utc::now());
    info.status = RunStatus::Completed;
    info.end_time = Utc::now();
    info.write(&dir.join("run-info.yaml")).unwrap();
    std::fs::write(dir.join("output.md"), "done\n").unwrap();
}

/// A refusal by authentication: 401, or 429 once this address has failed too often.
fn refused(status: u16) -> bool {
    matches!(status, 401 | 429)
}

/// Passed authentication: whatever the handler says, it is not an auth refusal.
fn admitted(status: u16) -> bool {
    !matches!(status, 401 | 403 | 429)
}

fn login_cookie(base: &str) -> String {
    let mut resp = agent()
        .post(&format!("{base}/api/v1/auth/login"))
        .content_type("application/json")
        .send(format!("{{\"api_key\": \"{KEY}\"}}"))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .expect("login sets a cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let _ = resp.body_mut().read_to_string();
    cookie
}

#[test]
fn every_documented_route_refuses_callers_without_the_right_credential() {
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    make_run(&root);
    let config = sb.write("config.yaml", &format!("api:\n  admin_key: {ADMIN}\n"));
    let mut cmd = sb.run_agent();
    let port = free_port().to_string();
    cmd.args([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--api-key",
        KEY,
    ])
    .arg("--config")
    .arg(&config)
    .arg("--root")
    .arg(&root);
    let server = Server::start(cmd, sb.path());
    let base = server.base.clone();
    let a = agent();
    let bearer = |key: &str| vec![("Authorization", format!("Bearer {key}"))];

    let (code, doc) = send(&a, &base, &document_route(), "", &bearer(KEY));
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let routes = routes(&doc);
    assert!(
        routes.len() >= 35,
        "the document lists every route: {routes:?}"
    );
    let mut failures = Vec::new();
    let mut expect = |route: &Route, case: &str, status: u16, ok: bool, body: &str| {
        if !ok {
            failures.push(format!(
                "{} {} with {case}: {status} {body}",
                route.method.to_uppercase(),
                route.template
            ));
        }
    };
    // The DELETE of the sample task goes last: it removes what the others read.
    let (deletes, others): (Vec<Route>, Vec<Route>) =
        routes.into_iter().partition(|r| r.method == "delete");
    let ordered: Vec<Route> = others.into_iter().chain(deletes).collect();

    // The login cookie first: forged cookies below use up this address's cookie attempts.
    let cookie = login_cookie(&base);
    for route in &ordered {
        if route.template == "/api/v1/auth/logout" || route.method == "delete" {
            continue; // would end the session (or the sample data) the other rows use
        }
        let (status, body) = send(&a, &base, route, "", &[("Cookie", cookie.clone())]);
        let ok = if route.is_admin() {
            status == 403
        } else {
            admitted(status)
        };
        expect(route, "the login cookie", status, ok, &body);
    }
    for route in &ordered {
        // A key in the URL is refused on every route, even the right key on a public one.
        let (status, body) = send(&a, &base, route, &format!("?api_key={KEY}"), &[]);
        expect(route, "the key in the query", status, status == 400, &body);

        let (status, body) = send(&a, &base, route, "", &[]);
        let ok = if route.is_public() {
            admitted(status)
        } else {
            refused(status)
        };
        expect(route, "no key", status, ok, &body);

        if !route.is_public() {
            let (status, body) = send(&a, &base, route, "", &bearer("wrong-key"));
            expect(route, "a wrong key", status, refused(status), &body);
            let forged = vec![("Cookie", "conductor_session=forged".to_string())];
            let (status, body) = send(&a, &base, route, "", &forged);
            expect(route, "a forged cookie", status, refused(status), &body);
        }
        if route.is_admin() {
            let (status, body) = send(&a, &base, route, "", &bearer(KEY));
            expect(route, "the API key", status, refused(status), &body);
        }
        if route.template == "/api/v1/auth/logout" {
            continue;
        }
        let right = if route.is_admin() { ADMIN } else { KEY };
        let (status, body) = send(&a, &base, route, "", &bearer(right));
        expect(route, "the right key", status, admitted(status), &body);
    }
    assert!(failures.is_empty(), "auth matrix:\n{}", failures.join("\n"));
}

/// This machine's non-loopback address (the one a default route would use), if any.
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route and source address.
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_keyless_non_loopback_bind_refuses_every_change_from_another_address() {
    let Some(ip) = non_loopback_address() else {
        assert!(
            std::env::var("CI").is_err(),
            "no non-loopback address on this machine to test remote clients with"
        );
        eprintln!("skipped: no non-loopback address");
        return;
    };
    let sb = Sandbox::new();
    let root = sb.path().join("root");
    make_run(&root);
    let port = free_port();
    let mut cmd = sb.run_agent();
    cmd.args([
        "serve",
        "--host",
        &ip.to_string(),
        "--port",
        &port.to_string(),
    ])
    .arg("--root")
    .arg(&root);
    let server = Server::start(cmd, sb.path());
    // The client connects to the bound address, so its source address is not loopback.
    assert_eq!(server.base, format!("http://{ip}:{port}"));
    let a = agent();
    let (code, doc) = send(&a, &server.base, &document_route(), "", &[]);
    assert_eq!(code, 200, "{doc}");
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let routes = routes(&doc);
    let mut failures = Vec::new();
    for route in &routes {
        let (status, body) = send(&a, &server.base, route, "", &[]);
        let ok = if route.is_mutation() && !route.is_public() {
            status == 403 && body.contains("only from this machine")
        } else {
            admitted(status)
        };
        if !ok {
            failures.push(format!(
                "{} {}: {status} {body}",
                route.method.to_uppercase(),
                route.template
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "remote client on a keyless bind:\n{}",
        failures.join("\n")
    );
    assert!(
        root.join("p/t/runs").join(RUN).exists(),
        "nothing was deleted"
    );
}
