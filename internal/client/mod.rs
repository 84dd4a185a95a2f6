//! A small blocking HTTP client for CLI commands that talk to a running server: JSON in and
//! out (typed with the API's wire model, [`crate::wire`]), `Authorization: Bearer` when a key
//! is known, percent-escaped path segments, SSE streams, and errors that say what failed where.

pub mod sse;

use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use sse::{SseEvent, SseItem, SseReader};

use crate::wire::ErrorBody;

/// Server URL used when neither `--server`, `CONDUCTOR_URL` nor a config gives one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:14355";

/// Env var with the server URL.
pub const ENV_URL: &str = "CONDUCTOR_URL";
/// Env var with the API key.
pub const ENV_KEY: &str = "CONDUCTOR_API_KEY";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection (refused, DNS, timeout…).
    #[error("cannot reach the server at {url}: {message}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The server answered an error status.
    #[error("server returned {status}: {message} ({method} {url})")]
    Http {
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// HTTP status.
        status: u16,
        /// The API error code, when the body had one.
        code: String,
        /// The API error message (or the raw body).
        message: String,
    },
    /// The answer was not JSON.
    #[error("{url} answered something that is not JSON: {message}")]
    Decode {
        /// The URL requested.
        url: String,
        /// The parse error.
        message: String,
    },
    /// The answer was JSON but not of the shape this client knows (another version?).
    #[error(
        "{url} answered JSON of an unexpected shape (is the server another version?): {message}"
    )]
    Shape {
        /// The URL requested.
        url: String,
        /// Which field did not fit, and why.
        message: String,
    },
}

/// A decoded 2xx answer: its status, the typed body, and the JSON as received (what
/// `--json` prints, unknown fields of a newer server included).
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// The HTTP status (200, 201, 202…).
    pub status: u16,
    /// The body, decoded into its wire type.
    pub body: T,
    /// The body as received.
    pub raw: Value,
}

/// Decodes `raw` (an answer of `url`) into `T`; the error names the field that did not fit.
pub fn decode<T: DeserializeOwned>(url: &str, raw: &Value) -> Result<T, ClientError> {
    serde_path_to_error::deserialize(raw).map_err(|e| ClientError::Shape {
        url: url.to_string(),
        message: match e.path().to_string().as_str() {
            "." => e.inner().to_string(),
            path => format!("field `{path}`: {}", e.inner()),
        },
    })
}

impl ClientError {
    /// The HTTP status, for answered requests.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Where the server is and which key to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL without a trailing slash.
    pub server: String,
    /// API key sent as `Authorization: Bearer`.
    pub key: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The server URL and key: `flag_server` > `CONDUCTOR_URL` > the config's `api.host`/`api.port`
/// (a wildcard host means 127.0.0.1) > [`DEFAULT_SERVER`]; `flag_key` > `CONDUCTOR_API_KEY` >
/// the config's `api.api_key`. The config is `flag_config` when given: it is always read, and a
/// missing or broken file is an error naming it. Otherwise it is found like the server finds it
/// (`CONDUCTOR_CONFIG`, `./config.*`, `~/.config/conductor/config.*`), only read when a value
/// is still missing, and skipped with a warning when it fails to load.
pub fn resolve_endpoint(
    flag_server: Option<&str>,
    flag_key: Option<&str>,
    flag_config: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<Endpoint, crate::config::ConfigError> {
    let secrets = crate::config::with_secret_files(env)?;
    let env = &|key: &str| secrets.get(key);
    let mut server = non_empty(flag_server.map(str::to_string)).or_else(|| non_empty(env(ENV_URL)));
    let mut key = non_empty(flag_key.map(str::to_string)).or_else(|| non_empty(env(ENV_KEY)));
    let explicit = flag_config.filter(|p| !p.as_os_str().is_empty());
    let config = if let Some(path) = explicit {
        let found = crate::config::discover(Some(path), env, cwd);
        if let Some(missing) = found.missing_explicit() {
            return Err(crate::config::ConfigError::NotFound {
                path: missing.to_path_buf(),
                origin: found.origin(),
            });
        }
        match found.path {
            Some(path) => Some(crate::config::load(&path, env)?),
            None => None,
        }
    } else if server.is_none() || key.is_none() {
        let found = crate::config::discover(None, env, cwd);
        match found.path.filter(|p| p.is_file()) {
            Some(path) => match crate::config::load(&path, env) {
                Ok(config) => Some(config),
                Err(err) => {
                    tracing::warn!(config = %path.display(), "ignoring the config for the server address and key: {err}");
                    None
                }
            },
            None => None,
        }
    } else {
        None
    };
    if let Some(config) = config {
        if server.is_none() {
            server = Some(config_url(&config.api.host, config.api.port));
        }
        if key.is_none() {
            key = non_empty(config.api.api_key.clone());
        }
    }
    let server = server.unwrap_or_else(|| DEFAULT_SERVER.to_string());
    Ok(Endpoint {
        server: server.trim_end_matches('/').to_string(),
        key,
    })
}

/// `http://host:port` for a configured bind address; wildcard hosts become 127.0.0.1.
pub fn config_url(host: &str, port: u16) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    let host = match host {
        "" | "0.0.0.0" | "::" | "*" => "127.0.0.1".to_string(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_string(),
    };
    format!("http://{host}:{port}")
}

/// Everything but the RFC 3986 unreserved characters.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-escapes one path segment (everything but RFC 3986 unreserved characters).
pub fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// `?k=v&…` from the pairs whose value is present (empty string when none are).
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{}={}", segment(k), segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    key: Option<String>,
    agent: ureq::Agent,
    stream_agent: ureq::Agent,
}

/// Longest silence (no event and no heartbeat; the server sends one every 15 s) before an
/// open stream counts as dropped.
pub const STREAM_IDLE: Duration = Duration::from_secs(45);

enum Pumped {
    Event(SseEvent),
    Alive,
    End,
    Failed(std::io::Error),
}

/// An open SSE stream, read on its own thread so that a silent (half-open) connection is
/// noticed: [`EventStream::next_event`] fails with `TimedOut` after the idle limit.
pub struct EventStream {
    rx: mpsc::Receiver<Pumped>,
    idle: Duration,
}

impl EventStream {
    /// Reads events from `input`; `idle` is the longest silence accepted.
    pub fn from_reader(input: impl Read + Send + 'static, idle: Duration) -> Self {
        let (tx, rx) = mpsc::sync_channel(64);
        std::thread::spawn(move || {
            let mut reader = SseReader::new(BufReader::new(input));
            loop {
                let (item, last) = match reader.next_item() {
                    Ok(Some(SseItem::Event(e))) => (Pumped::Event(e), false),
                    Ok(Some(SseItem::Comment(_))) => (Pumped::Alive, false),
                    Ok(None) => (Pumped::End, true),
                    Err(e) => (Pumped::Failed(e), true),
                };
                if tx.send(item).is_err() || last {
                    return;
                }
            }
        });
        Self { rx, idle }
    }

    /// The next event; `Ok(None)` when the server closed the stream, an error when the
    /// connection failed or stayed silent longer than the idle limit.
    pub fn next_event(&mut self) -> std::io::Result<Option<SseEvent>> {
        loop {
            match self.rx.recv_timeout(self.idle) {
                Ok(Pumped::Event(e)) => return Ok(Some(e)),
                Ok(Pumped::Alive) => continue,
                Ok(Pumped::End) | Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
                Ok(Pumped::Failed(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no event or heartbeat for {}s", self.idle.as_secs()),
                    ))
                }
            }
        }
    }
}

impl ApiClient {
    /// A client of `base` (e.g. `http://127.0.0.1:14355`) sending `key` as a bearer token;
    /// `timeout` bounds each request (streams only bound the connect).
    pub fn new(base: &str, key: Option<String>, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        let stream_agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            agent,
            stream_agent,
        }
    }

    /// A client of `endpoint`.
    pub fn from_endpoint(endpoint: &Endpoint, timeout: Duration) -> Self {
        Self::new(&endpoint.server, endpoint.key.clone(), timeout)
    }

    /// The server URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn auth<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.key {
            Some(key) => request.header("Authorization", format!("Bearer {key}")),
            None => request,
        }
    }

    /// GET `path` and decode the answer into `T`; non-2xx statuses are errors.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Answer<T>, ClientError> {
        self.typed("GET", path, None)
    }

    /// POST `body` as JSON to `path` and decode the answer into `T`; non-2xx statuses are
    /// errors.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Answer<T>, ClientError> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Decode {
            url: format!("{}{path}", self.base),
            message: format!("cannot encode the request body: {e}"),
        })?;
        self.typed("POST", path, Some(&body))
    }

    /// DELETE `path` and decode the answer into `T`; non-2xx statuses are errors.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<Answer<T>, ClientError> {
        self.typed("DELETE", path, None)
    }

    fn typed<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer<T>, ClientError> {
        let (status, raw) = self.send(method, path, body)?;
        let body = decode(&format!("{}{path}", self.base), &raw)?;
        Ok(Answer { status, body, raw })
    }

    /// Sends a request (`GET`, `POST` with a JSON body, or `DELETE`) and returns the 2xx
    /// status with the parsed JSON answer.
    fn send(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        let result = match method {
            "POST" => self
                .auth(self.agent.post(&url).content_type("application/json"))
                .send(
                    body.map(Value::to_string)
                        .unwrap_or_else(|| "{}".to_string()),
                ),
            "DELETE" => self.auth(self.agent.delete(&url)).call(),
            _ => self.auth(self.agent.get(&url)).call(),
        };
        let (status, text) = read_answer(method, &url, result)?;
        let value = serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url: url.clone(),
            message: e.to_string(),
        })?;
        Ok((status, value))
    }

    /// GET `path` as raw bytes (a run file); non-2xx statuses are errors.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .auth(self.agent.get(&url))
            .call()
            .map_err(|e| unreachable(&url, e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(http_error("GET", &url, status, &text));
        }
        response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| ClientError::Unreachable {
                url,
                message: format!("reading the answer failed: {e}"),
            })
    }

    /// Opens the SSE stream at `path`, resuming after `last_event_id` when given.
    pub fn stream(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .auth(self.stream_agent.get(&url))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let mut response = request.call().map_err(|e| unreachable(&url, e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(http_error("GET", &url, status, &text));
        }
        Ok(EventStream::from_reader(
            response.into_body().into_reader(),
            STREAM_IDLE,
        ))
    }
}

fn unreachable(url: &str, e: ureq::Error) -> ClientError {
    ClientError::Unreachable {
        url: url.to_string(),
        message: e.to_string(),
    }
}

fn read_answer(
    method: &'static str,
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), ClientError> {
    let mut response = result.map_err(|e| unreachable(url, e))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            message: format!("reading the answer failed: {e}"),
        })?;
    if !(200..300).contains(&status) {
        return Err(http_error(method, url, status, &text));
    }
    Ok((status, text))
}

fn http_error(method: &'static str, url: &str, status: u16, text: &str) -> ClientError {
    let (code, message) = match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (String::new(), text.trim().to_string()),
    };
    ClientError::Http {
        method,
        url: url.to_string(),
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn endpoint_precedence() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "api:\n  host: 0.0.0.0\n  port: 15000\n  api_key: from-config\n",
        )
        .unwrap();
        let none = env_of(&[]);
        let e = resolve_endpoint(None, None, None, &none, dir.path()).unwrap();
        assert_eq!(e.server, "http://127.0.0.1:15000");
        assert_eq!(e.key.as_deref(), Some("from-config"));
        let env = env_of(&[
            ("CONDUCTOR_URL", "http://h:2/"),
            ("CONDUCTOR_API_KEY", "k-env"),
        ]);
        let e = resolve_endpoint(None, None, None, &env, dir.path()).unwrap();
        assert_eq!(
            (e.server.as_str(), e.key.as_deref()),
            ("http://h:2", Some("k-env"))
        );
        let e =
            resolve_endpoint(Some("http://h:1/"), Some("k-flag"), None, &env, dir.path()).unwrap();
        assert_eq!(
            (e.server.as_str(), e.key.as_deref()),
            ("http://h:1", Some("k-flag"))
        );
        let empty = tempfile::tempdir().unwrap();
        let e = resolve_endpoint(None, None, None, &none, empty.path()).unwrap();
        assert_eq!((e.server.as_str(), e.key), (DEFAULT_SERVER, None));
        // An explicit config beats discovery but not the env; missing or broken is an error.
        std::fs::write(
            empty.path().join("other.yaml"),
            "api:\n  host: example.org\n  port: 16000\n  api_key: other\n",
        )
        .unwrap();
        let other = Some(Path::new("other.yaml"));
        let e = resolve_endpoint(None, None, other, &none, empty.path()).unwrap();
        assert_eq!(
            (e.server.as_str(), e.key.as_deref()),
            ("http://example.org:16000", Some("other"))
        );
        let e = resolve_endpoint(None, None, other, &env, dir.path());
        assert!(e.is_err(), "other.yaml is relative to the cwd");
        let e = resolve_endpoint(None, None, other, &env, empty.path()).unwrap();
        assert_eq!(e.server, "http://h:2");
        let err = resolve_endpoint(
            Some("http://h:1"),
            None,
            Some(Path::new("nope.yaml")),
            &none,
            empty.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("nope.yaml") && err.contains("--config"),
            "{err}"
        );
        std::fs::write(empty.path().join("bad.yaml"), "api: [\n").unwrap();
        let err = resolve_endpoint(None, None, Some(Path::new("bad.yaml")), &none, empty.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.yaml"), "{err}");
    }

    #[test]
    fn config_hosts() {
        assert_eq!(config_url("::", 1), "http://127.0.0.1:1");
        assert_eq!(config_url("::1", 1), "http://[::1]:1");
        assert_eq!(config_url("example.org", 80), "http://example.org:80");
    }

    #[test]
    fn segments_and_queries_are_escaped() {
        assert_eq!(segment("a/../b c%"), "a%2F..%2Fb%20c%25");
        assert_eq!(segment("task-1_x.y"), "task-1_x.y");
        assert_eq!(
            query(&[
                ("a", Some("x&y".into())),
                ("b", None),
                ("c", Some("1".into()))
            ]),
            "?a=x%26y&c=1"
        );
        assert_eq!(query(&[("a", None)]), "");
    }

    #[test]
    fn a_silent_stream_times_out_and_a_closed_one_ends() {
        let (mut tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut tx, b"event: a\ndata: 1\n\n:heartbeat\n").unwrap();
        let mut stream = EventStream::from_reader(rx, Duration::from_millis(200));
        assert_eq!(stream.next_event().unwrap().unwrap().data, "1");
        let err = stream.next_event().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        let (tx2, rx2) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(tx2);
        let mut closed = EventStream::from_reader(rx2, Duration::from_secs(30));
        assert!(closed.next_event().unwrap().is_none());
        drop(tx);
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = ApiClient::new(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(5),
        );
        let err = client.get::<Value>("/healthz").unwrap_err().to_string();
        assert!(err.contains("cannot reach the server"), "{err}");
    }
}
