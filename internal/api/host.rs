//! The DNS-rebinding guard: every request must name this server in its `Host` header.
//!
//! A web page on `attacker.example` whose DNS is re-pointed at 127.0.0.1 reaches a local server
//! with `Host: attacker.example` (and a matching `Origin`, so an Origin check alone passes).
//! Accepted are: loopback names (`localhost`, `*.localhost`), any IP literal (a browser that
//! sends one reached that address itself, so no name was rebound), the bind host, this
//! machine's host name, and the names listed in `api.allowed_hosts`. Everything else is
//! answered `421 Misdirected Request` before any handler runs, `/healthz` included (a health
//! probe uses `localhost` or an address, so it never needs an exception).

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::config::host_name::{parse_allowed, split_host};

/// This machine's host name, lower case.
fn machine_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

/// Whether a request with `Host: value` is meant for this server.
pub fn host_allowed(value: &str, bind_host: &str, allowed: &[String]) -> bool {
    let Some((name, port)) = split_host(value) else {
        return false;
    };
    if name.parse::<IpAddr>().is_ok() || name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if name.eq_ignore_ascii_case(bind_host.trim_end_matches('.')) {
        return true;
    }
    if let Some(machine) = machine_name() {
        let short = machine.split('.').next().unwrap_or(&machine);
        if name == machine || name == short {
            return true;
        }
    }
    allowed
        .iter()
        .filter_map(|entry| parse_allowed(entry))
        .any(|entry| entry.name == name && entry.port.is_none_or(|p| Some(p) == port))
}

/// Middleware: refuses requests whose `Host` does not name this server (421, JSON envelope).
/// A request without a `Host` header (HTTP/1.0, not a browser) passes.
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
    let api = &state.settings.config.api;
    if let Some(host) = host {
        if !host_allowed(&host, &api.host, &api.allowed_hosts) {
            return ApiError {
                status: StatusCode::MISDIRECTED_REQUEST,
                code: "misdirected_host",
                message: format!(
                    "Host {host:?} does not name this server; use localhost or an address, \
                     or add the name to api.allowed_hosts"
                ),
                retry_after: None,
            }
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_and_listed_names_pass_others_do_not() {
        let ok = |h: &str| {
            host_allowed(
                h,
                "127.0.0.1",
                &["conductor.example.com".into(), "devbox:8080".into()],
            )
        };
        for good in [
            "localhost",
            "LOCALHOST:14355",
            "app.localhost:1",
            "127.0.0.1:14355",
            "[::1]:14355",
            "::1",
            "10.1.2.3:80",
            "conductor.example.com",
            "Conductor.Example.Com:443",
            "devbox:8080",
        ] {
            assert!(ok(good), "{good} should pass");
        }
        for bad in [
            "attacker.example:14355",
            "attacker.example",
            "localhost.attacker.example",
            "devbox:8081",
            "",
            "a b",
            "evil/x",
            "127.0.0.1:notaport",
        ] {
            assert!(!ok(bad), "{bad} should be refused");
        }
        assert!(host_allowed("myhost.lan:1", "myhost.lan", &[]));
    }
}
