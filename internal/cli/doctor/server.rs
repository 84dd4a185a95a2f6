//! Checks of the port (free, or held by a live server of ours) and of the server the client
//! commands would talk to (reachable, and the API key accepted).

use std::time::Duration;

use crate::client::{config_url, ApiClient, ClientError, Endpoint};
use crate::config::ServerSettings;
use crate::wire::{Health, StatusBody};

use super::report::{Level, Report};

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `base` answers `/healthz` the way our server does.
fn is_conductor(base: &str) -> bool {
    let client = ApiClient::new(base, None, PROBE_TIMEOUT);
    client
        .get::<Health>("/healthz")
        .is_ok_and(|answer| answer.body == Health::ok())
}

/// The port `serve` would bind with these settings.
pub fn check_port(settings: &ServerSettings, report: &mut Report) {
    let host = settings.host.value.as_str();
    let port = settings.port.value;
    let shown = format!("{host}:{port} ({})", settings.port.source);
    match std::net::TcpListener::bind((host, port)) {
        Ok(listener) => {
            drop(listener);
            report.add("port", "port", Level::Pass, format!("{shown} is free"));
        }
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            let base = config_url(host, port);
            if is_conductor(&base) {
                report.add("port", "port", Level::Pass, format!("{shown} is held by a running Conductor server ({base})"));
            } else if settings.port_explicit {
                report.add_hint(
                    "port",
                    "port",
                    Level::Fail,
                    format!("{shown} is in use by another program; serve would fail with \"cannot listen on {host}:{port}: Address in use\""),
                    format!("find it with: ss -ltnp 'sport = :{port}'; or choose another port"),
                );
            } else {
                report.add(
                    "port",
                    "port",
                    Level::Warn,
                    format!("{shown} is in use by another program; serve would take the next free port of {port}..{}", port.saturating_add(99)),
                );
            }
        }
        Err(err) => report.add_hint(
            "port",
            "port",
            Level::Fail,
            format!("cannot bind {shown}: {err}"),
            "use a port above 1023 (or grant CAP_NET_BIND_SERVICE) and a host address of this machine",
        ),
    }
}

/// The server at `endpoint`: reachable, its identity, and whether the key is accepted.
pub fn check_server(endpoint: &Endpoint, our_root: &std::path::Path, report: &mut Report) {
    let base = endpoint.server.as_str();
    if !is_conductor(base) {
        report.add_hint(
            "server",
            "server.reachable",
            Level::Warn,
            format!("no Conductor server answers at {base}"),
            "start one with run-agent serve (or the systemd unit); client commands need it, local ones do not",
        );
        return;
    }
    report.add(
        "server",
        "server.reachable",
        Level::Pass,
        format!("{base} answers /healthz"),
    );
    let client = ApiClient::new(base, endpoint.key.clone(), PROBE_TIMEOUT);
    match client.get::<StatusBody>("/api/v1/status") {
        Ok(answer) => {
            let status = answer.body;
            let auth = status.auth_enabled;
            let version = status.version.as_str();
            let root = status.root.as_str();
            let how = match (auth, endpoint.key.is_some()) {
                (true, _) => "the API key is accepted",
                (false, true) => "auth is off (the key sent is not needed)",
                (false, false) => "auth is off",
            };
            report.add(
                "server",
                "server.auth",
                Level::Pass,
                format!("version {version}; {how}"),
            );
            let ours = std::path::absolute(our_root).unwrap_or_else(|_| our_root.to_path_buf());
            if !root.is_empty() && std::path::Path::new(root) != ours {
                report.add_hint(
                    "server",
                    "server.root",
                    Level::Warn,
                    format!("the server serves {root}, local commands here use {}", ours.display()),
                    "give both the same --root / CONDUCTOR_ROOT / storage.runs_dir, or the server will not see local runs",
                );
            } else {
                report.add(
                    "server",
                    "server.root",
                    Level::Pass,
                    format!("serves the same root {root}"),
                );
            }
        }
        Err(ClientError::Http {
            status: 401,
            message,
            ..
        }) => {
            let message = match &endpoint.key {
                Some(_) => format!("the API key is rejected: {message}"),
                None => format!("the server requires an API key and none is set: {message}"),
            };
            report.add_hint(
                "server",
                "server.auth",
                Level::Fail,
                message,
                "set CONDUCTOR_API_KEY (or --api-key, or api.api_key in the config) to the server's key",
            );
        }
        Err(err) => report.add(
            "server",
            "server.auth",
            Level::Fail,
            format!("GET /api/v1/status failed: {err}"),
        ),
    }
}
