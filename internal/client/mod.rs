//! A small blocking HTTP client for CLI commands that talk to a running server: JSON in and
//! out, `Authorization: Bearer` when a key is known, and errors that say what failed where.

use std::time::Duration;

use serde_json::Value;

/// Server URL used when neither `--server` nor `CONDUCTOR_URL` is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:14355";

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
    #[error("{url} answered {status}{}: {message}", if code.is_empty() { String::new() } else { format!(" ({code})") })]
    Http {
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

/// A client of one server.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    key: Option<String>,
    agent: ureq::Agent,
}

/// `flag`, else `CONDUCTOR_URL`, else [`DEFAULT_SERVER`]; without a trailing slash.
pub fn resolve_server(flag: Option<&str>) -> String {
    let url = flag
        .map(str::to_string)
        .or_else(|| std::env::var("CONDUCTOR_URL").ok())
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    url.trim().trim_end_matches('/').to_string()
}

/// `flag`, else `CONDUCTOR_API_KEY`.
pub fn resolve_key(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| std::env::var("CONDUCTOR_API_KEY").ok())
        .filter(|k| !k.trim().is_empty())
}

impl ApiClient {
    /// A client of `base` (e.g. `http://127.0.0.1:14355`) sending `key` as a bearer token.
    pub fn new(base: &str, key: Option<String>, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            agent,
        }
    }

    /// The server URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` and parse the JSON answer; non-2xx statuses are errors.
    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if let Some(key) = &self.key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        finish(&url, request.call())
    }

    /// POST `body` as JSON to `path` and parse the JSON answer; non-2xx statuses are errors.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.post(&url).content_type("application/json");
        if let Some(key) = &self.key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        finish(&url, request.send(body.to_string()))
    }
}

fn finish(
    url: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Value, ClientError> {
    let mut response = result.map_err(|e| ClientError::Unreachable {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            message: format!("reading the answer failed: {e}"),
        })?;
    let parsed: Result<Value, _> = serde_json::from_str(&text);
    if !(200..300).contains(&status) {
        let (code, message) = match &parsed {
            Ok(v) => (
                v["error"]["code"].as_str().unwrap_or("").to_string(),
                v["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| text.trim().to_string()),
            ),
            Err(_) => (String::new(), text.trim().to_string()),
        };
        return Err(ClientError::Http {
            url: url.to_string(),
            status,
            code,
            message,
        });
    }
    parsed.map_err(|e| ClientError::Decode {
        url: url.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_precedence_and_trailing_slash() {
        assert_eq!(resolve_server(Some("http://h:1/")), "http://h:1");
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
        let err = client.get_json("/healthz").unwrap_err().to_string();
        assert!(err.contains("cannot reach the server"), "{err}");
    }
}
