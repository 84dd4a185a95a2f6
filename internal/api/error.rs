//! API errors: one JSON shape `{"error":{"code","message"}}` and the one place where error
//! kinds map to HTTP status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub use crate::wire::{ErrorBody, ErrorDetail};

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`not_found`, `bad_request`, …).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            retry_after: None,
        }
    }

    /// 409 with `message`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            retry_after: None,
        }
    }

    /// 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl ApiError {
    /// 507 `insufficient_storage`: the file system holding the runs root is full.
    pub fn insufficient_storage(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INSUFFICIENT_STORAGE,
            code: "insufficient_storage",
            message: message.into(),
            retry_after: None,
        }
    }

    /// 403 `path_refused`: a path below the root that is a symlink (never followed).
    pub fn path_refused(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "path_refused",
            message: message.into(),
            retry_after: None,
        }
    }

    /// 403 `path_refused` for a path below the root that is reached through a symlink (or is
    /// otherwise refused by [`crate::storage::confined`]), 404 for a missing one, else 500.
    pub fn from_confined(err: crate::storage::ConfinedError) -> Self {
        if err.is_refusal() {
            Self::path_refused(err.to_string())
        } else if err.is_not_found() {
            Self::not_found(err.to_string())
        } else {
            Self::internal(err.to_string())
        }
    }

    /// A rejected JSON body: 413 when too large, 415 without a JSON content type, otherwise
    /// 400 — always with the extractor's explanation (e.g. the unknown field's name).
    pub fn from_json(rejection: axum::extract::rejection::JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ => "bad_request",
        };
        Self {
            status: match code {
                "bad_request" => StatusCode::BAD_REQUEST,
                _ => status,
            },
            code,
            message: format!("invalid request body: {}", rejection.body_text()),
            retry_after: None,
        }
    }
}

/// An optional JSON body: empty (or only whitespace) is `T::default()`, anything else must
/// parse as `T` (400 naming the problem otherwise). The JSON content type is enforced by the
/// security middleware for every POST.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Middleware: an error answer that is not JSON (axum's own rejections: a bad query string,
/// a bad path parameter, a method the route lacks) is rewritten into the JSON envelope with the
/// same status, its text as the message.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut answer = ApiError {
        status,
        code,
        message,
        retry_after: None,
    }
    .into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    answer
}

/// Unknown routes answer a JSON 404 too, with a request id like every other answer.
pub async fn fallback(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let mut response = ApiError::not_found(format!("no route for {}", uri.path())).into_response();
    if let Ok(id) = axum::http::HeaderValue::from_str(&super::security::request_id(&headers)) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

/// Runs `work` (file reads and scans) on the runtime's blocking pool, so the few runtime
/// workers stay free for other requests (`/healthz` answers while a listing reads the disk).
/// `what` names the work in the error if it panicked.
pub async fn off_runtime<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("{what} failed: {e}")))
}
