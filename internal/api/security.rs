//! Request security: request ids, API-key auth (bearer header or login cookie,
//! constant-time compare), admin key, failed-auth rate limiting, loopback-only mutations
//! without a key on a non-loopback bind, Origin checks, and the audit of every mutation.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::audit::{client_label, key_fingerprint, AuditRecord};
use super::error::ApiError;
use super::state::AppState;
use crate::limit::KeyedLimiter;
use crate::wire::{Done, LoginBody};

/// Name of the browser session cookie set by `POST /api/v1/auth/login`.
pub const SESSION_COOKIE: &str = "conductor_session";
/// Failed attempts allowed per client and credential source in a burst before 429.
const MAX_FAILURES: u32 = 10;
/// One more failed attempt is allowed per this interval (so 10 a minute when sustained).
const FAILURE_INTERVAL: Duration = Duration::from_secs(6);
/// Most (address, source) pairs whose failures are remembered; the map stays bounded
/// whatever the number of clients.
const MAX_TRACKED_CLIENTS: usize = 4096;
/// Non-admin routes the admin key may read too: what a self-update client polls to learn
/// which binary serves (`executable_sha256`, version).
const ADMIN_READABLE: &[&str] = &["/api/v1/status", "/api/v1/version"];
/// Query parameters that look like a credential and are refused.
const KEY_QUERY_PARAMS: &[&str] = &["api_key", "apikey", "key", "token", "access_token"];

/// Who made a request, as established by [`authenticate`]; handlers read it from the
/// request extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Client address.
    pub addr: Option<SocketAddr>,
    /// The key that authenticated the request, if any (never logged; fingerprinted).
    pub key: Option<String>,
    /// The request id.
    pub request_id: String,
}

/// Where a failed credential came from; each source of an address has its own failure limit,
/// so a browser with a stale cookie cannot lock out the CLI's bearer key on the same machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Bearer,
    Cookie,
    Login,
}

/// Mutable security state: login sessions and failed-auth counters.
#[derive(Debug)]
pub struct SecurityState {
    sessions: Mutex<HashSet<String>>,
    failures: KeyedLimiter<(IpAddr, Source)>,
}

impl Default for SecurityState {
    fn default() -> Self {
        Self {
            sessions: Mutex::default(),
            failures: KeyedLimiter::new(MAX_FAILURES, FAILURE_INTERVAL, MAX_TRACKED_CLIENTS),
        }
    }
}

impl SecurityState {
    fn new_session(&self) -> String {
        let token: String = (0..4)
            .map(|_| format!("{:016x}", fastrand::u64(..)))
            .collect();
        self.lock_sessions().insert(token.clone());
        token
    }

    fn has_session(&self, token: &str) -> bool {
        // Sessions are random 256-bit tokens; lookup by hash does not leak a usable prefix.
        self.lock_sessions().contains(token)
    }

    fn end_session(&self, token: &str) {
        self.lock_sessions().remove(token);
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds until `ip` may try again, when it is over the failure limit.
    fn retry_after(&self, ip: IpAddr, source: Source) -> Option<u64> {
        self.failures.check(&(ip, source)).err()
    }

    /// Refuses a client over the failure limit of `source`: 429 `rate_limited` with the
    /// seconds until it may try again.
    fn refuse_if_limited(&self, ip: Option<IpAddr>, source: Source) -> Result<(), ApiError> {
        match ip.and_then(|ip| self.retry_after(ip, source)) {
            Some(retry) => {
                let mut err = denied(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many failed authentication attempts; retry in {retry} s"),
                );
                err.retry_after = Some(retry);
                Err(err)
            }
            None => Ok(()),
        }
    }

    fn record_failure(&self, ip: IpAddr, source: Source) {
        // Over the limit the attempt was already refused; nothing more to count.
        let _ = self.failures.take(&(ip, source));
    }

    #[cfg(test)]
    /// Client addresses currently remembered (tests).
    fn tracked_clients(&self) -> usize {
        self.failures.len()
    }
}

/// Constant-time equality of two secrets (length is not hidden).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/ui" | "/healthz" | "/api/v1/auth/login") || path.starts_with("/ui/")
}

/// POST/PUT/PATCH must declare a JSON body (an empty one counts as `{}`). A cross-site HTML
/// form cannot send that type without a CORS preflight, so this is also a CSRF guard.
fn check_json_body(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .is_some_and(|t| t == "application/json" || t.ends_with("+json"));
    if json {
        return Ok(());
    }
    Err(denied(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "changes take a JSON body: send `Content-Type: application/json` (an empty body counts as {})",
    ))
}

fn is_mutation(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The caller's valid `X-Request-Id`, else a new random one.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:016x}", fastrand::u64(..)))
}

fn denied(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
        retry_after: None,
    }
}

/// The security middleware wrapped around every route.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let headers = request.headers().clone();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let id = request_id(&headers);

    let verdict = check(
        &state,
        addr,
        &headers,
        &method,
        &path,
        request.uri().query(),
    )
    .and_then(|key| check_json_body(&method, &headers).map(|()| key));
    let refused_before_handler = verdict.is_err();
    let mut response = match verdict {
        Err(err) => err.into_response(),
        Ok(key) => {
            request.extensions_mut().insert(Caller {
                addr,
                key: key.clone(),
                request_id: id.clone(),
            });
            next.run(request).await
        }
    };
    if is_mutation(&method) {
        let status = response.status().as_u16();
        let key = match bearer(&headers) {
            Some(k) => Some(k.to_string()),
            None => cookie(&headers, SESSION_COOKIE).map(|_| "session".to_string()),
        };
        let record = AuditRecord {
            time: crate::storage::time::format_rfc3339_nano(&chrono::Utc::now()),
            request_id: &id,
            client: client_label(addr),
            key_fingerprint: key_fingerprint(key.as_deref()),
            action: format!("{method} {route}"),
            target: &path,
            status,
            result: if status < 400 { "ok" } else { "error" },
        };
        // Anyone can send refused requests at any rate: those are sampled, so a flood cannot
        // fill the disk; every authenticated request keeps its line.
        let refused = refused_before_handler
            || matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            );
        if refused {
            state.audit.append_refused(&record);
        } else {
            state.audit.append(&record);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Decides whether a request may proceed; `Ok(key)` carries the key that authenticated it.
fn check(
    state: &AppState,
    addr: Option<SocketAddr>,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if let Some(query) = query {
        let has_key = query
            .split('&')
            .filter_map(|kv| kv.split('=').next())
            .any(|k| KEY_QUERY_PARAMS.contains(&k.to_ascii_lowercase().as_str()));
        if has_key {
            return Err(ApiError::bad_request(
                "credentials are never accepted in a URL; send `Authorization: Bearer <key>`",
            ));
        }
    }
    if is_mutation(method) {
        check_origin(state, headers)?;
    }
    if is_public(path) {
        return Ok(None);
    }
    let settings = &state.settings;
    let ip = addr.map(|a| a.ip());
    let admin = path.starts_with("/api/v1/admin/");
    let required = match (&settings.admin_key, admin) {
        (Some(admin_key), true) => Some(admin_key.as_str()),
        _ if settings.auth_enabled => settings.api_key.value.as_deref(),
        _ => None,
    };
    let Some(required) = required else {
        return check_open_mutation(state, ip, method).map(|()| None);
    };
    // A correct key is never locked out: only wrong attempts meet the failure limit, so
    // someone guessing from the same address cannot lock out the local CLI.
    if let Some(given) = bearer(headers) {
        if constant_time_eq(given.as_bytes(), required.as_bytes()) {
            return Ok(Some(given.to_string()));
        }
        // The deploy job holding only the admin key must see which binary now serves.
        let admin_read = !admin && *method == Method::GET && ADMIN_READABLE.contains(&path);
        if let (true, Some(admin_key)) = (admin_read, settings.admin_key.as_deref()) {
            if constant_time_eq(given.as_bytes(), admin_key.as_bytes()) {
                return Ok(Some(given.to_string()));
            }
        }
    }
    let source = if bearer(headers).is_some() {
        Source::Bearer
    } else {
        Source::Cookie
    };
    state.security.refuse_if_limited(ip, source)?;
    if bearer(headers).is_some() {
        // Wrong key: counted below.
    } else if let Some(token) = cookie(headers, SESSION_COOKIE) {
        if state.security.has_session(token) {
            if !admin {
                return Ok(Some("session".to_string()));
            }
            // A logged-in browser lacks a privilege; it did not fail to authenticate (no
            // rate-limit strike).
            return Err(denied(
                StatusCode::FORBIDDEN,
                "forbidden",
                "admin routes do not accept the login cookie: send `Authorization: Bearer <key>`"
                    .to_string(),
            ));
        }
    }
    // Only a presented credential that is wrong counts as an attempt: a browser with no (or an
    // expired) session polling the status is not guessing keys, and must not lock itself out
    // of the login form.
    let presented = bearer(headers).is_some() || cookie(headers, SESSION_COOKIE).is_some();
    if let (Some(ip), true) = (ip, presented) {
        state.security.record_failure(ip, source);
    }
    let what = if admin && settings.admin_key.is_some() {
        "the admin key"
    } else {
        "the API key"
    };
    Err(denied(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        format!("this route needs {what}: send `Authorization: Bearer <key>`"),
    ))
}

/// Without any key, a non-loopback bind answers mutations only for loopback clients.
fn check_open_mutation(
    state: &AppState,
    ip: Option<IpAddr>,
    method: &Method,
) -> Result<(), ApiError> {
    if !is_mutation(method) || !state.remote_mutations_blocked() {
        return Ok(());
    }
    match ip {
        Some(ip) if ip.is_loopback() => Ok(()),
        _ => Err(denied(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this server has no API key and listens on a non-loopback address, so changes are \
             accepted only from this machine; set api.api_key (or CONDUCTOR_API_KEY), or set \
             api.allow_remote_without_key: true",
        )),
    }
}

/// A mutation from a browser must come from this server's own origin or a configured one.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same_origin = origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host);
    let configured = state
        .settings
        .config
        .api
        .cors_origins
        .iter()
        .any(|o| o.trim_end_matches('/') == origin.trim_end_matches('/'));
    if same_origin || configured {
        Ok(())
    } else {
        Err(denied(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!("origin {origin:?} may not change this server; add it to api.cors_origins"),
        ))
    }
}

/// `POST /api/v1/auth/login`: exchanges the API key for an HttpOnly SameSite=Strict cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses((status = 200, description = "Sets the HttpOnly SameSite=Strict session cookie", body = Done), (status = 401, description = "Wrong key", body = crate::api::error::ErrorBody), (status = 429, description = "Too many failures", body = crate::api::error::ErrorBody))
)]
pub async fn login(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json)?;
    let ip = caller.addr.map(|a| a.ip());
    state.security.refuse_if_limited(ip, Source::Login)?;
    let Some(required) = state
        .settings
        .api_key
        .value
        .as_deref()
        .filter(|_| state.settings.auth_enabled)
    else {
        return Err(ApiError::bad_request(
            "authentication is not enabled on this server",
        ));
    };
    if !constant_time_eq(body.api_key.as_bytes(), required.as_bytes()) {
        if let Some(ip) = ip {
            state.security.record_failure(ip, Source::Login);
        }
        return Err(denied(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong API key",
        ));
    }
    let token = state.security.new_session();
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    Ok(([(header::SET_COOKIE, cookie)], Json(Done::ok())).into_response())
}

/// `POST /api/v1/auth/logout`: forgets the session cookie.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses((status = 200, description = "Session forgotten", body = Done))
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state.security.end_session(token);
    }
    let expired = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, expired)], Json(Done::ok())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn failure_limit() {
        let s = SecurityState::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(s.retry_after(ip, Source::Bearer).is_none());
            s.record_failure(ip, Source::Bearer);
        }
        assert!(s.retry_after(ip, Source::Bearer).is_some());
        // Another credential source of the same address is not locked out.
        assert!(s.retry_after(ip, Source::Cookie).is_none());
    }

    #[test]
    fn failure_map_stays_bounded() {
        let s = SecurityState::default();
        for i in 0..(MAX_TRACKED_CLIENTS as u32 + 500) {
            s.record_failure(IpAddr::from(i.to_be_bytes()), Source::Bearer);
        }
        assert!(s.tracked_clients() <= MAX_TRACKED_CLIENTS);
    }
}

#[cfg(test)]
mod remote_tests {
    use super::*;
    use crate::api::ServerState;
    use crate::config::{resolve_server, ConfigMode, ServerFlags};
    use std::sync::Arc;

    fn state(host: &str, key: Option<&str>, allow_remote: bool) -> AppState {
        let dir = tempfile::tempdir().unwrap();
        let flags = ServerFlags {
            root: Some(dir.path().to_path_buf()),
            host: Some(host.to_string()),
            api_key: key.map(str::to_string),
            ..ServerFlags::default()
        };
        let env = |k: &str| (k == "HOME").then(|| "/nonexistent".to_string());
        let mut settings = resolve_server(&flags, ConfigMode::Optional, &env, dir.path()).unwrap();
        settings.config.api.allow_remote_without_key = allow_remote;
        Arc::new(ServerState::new(settings))
    }

    fn post_from(state: &AppState, ip: &str) -> Result<Option<String>, ApiError> {
        let addr: SocketAddr = format!("{ip}:5000").parse().unwrap();
        check(
            state,
            Some(addr),
            &HeaderMap::new(),
            &Method::POST,
            "/api/v1/tasks",
            None,
        )
    }

    #[test]
    fn open_non_loopback_server_accepts_changes_only_from_loopback() {
        let open = state("0.0.0.0", None, false);
        assert!(open.remote_mutations_blocked());
        assert_eq!(
            post_from(&open, "10.1.2.3").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(post_from(&open, "127.0.0.1").is_ok());
        let addr: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let get = check(
            &open,
            Some(addr),
            &HeaderMap::new(),
            &Method::GET,
            "/api/v1/runs",
            None,
        );
        assert!(get.is_ok(), "reads stay open");

        let allowed = state("0.0.0.0", None, true);
        assert!(post_from(&allowed, "10.1.2.3").is_ok());
        let loopback = state("127.0.0.1", None, false);
        assert!(post_from(&loopback, "10.1.2.3").is_ok());
        let keyed = state("0.0.0.0", Some("k"), false);
        assert_eq!(
            post_from(&keyed, "10.1.2.3").unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// CORS for the origins in `api.cors_origins` only: matching requests get
/// `Access-Control-Allow-Origin`, and their preflight `OPTIONS` is answered here. Other
/// origins get no CORS headers, so browsers keep them out.
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| o.trim_end_matches('/').to_string());
    let allowed = origin.filter(|o| {
        state
            .settings
            .config
            .api
            .cors_origins
            .iter()
            .any(|c| c.trim_end_matches('/') == o)
    });
    let Some(origin) = allowed else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Last-Event-ID, X-Request-Id"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}
