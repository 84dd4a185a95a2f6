//! The embedded web UI: static files from `web/`, compiled into the binary, served
//! under `/ui/`; `/` redirects there.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Assets;

/// The UI loads nothing from other hosts and runs no inline script or style.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
                   frame-ancestors 'none'";

/// `GET /` → `/ui/`.
pub async fn redirect_root() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `GET /ui/` → `index.html`.
pub async fn index() -> Response {
    asset("index.html")
}

/// `GET /ui/{*path}`.
pub async fn file(Path(path): Path<String>) -> Response {
    asset(&path)
}

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => (
            [(header::CONTENT_TYPE, content_type(file.metadata.mimetype()))],
            [
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, CSP),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
            file.data.into_owned(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The file's type (guessed from its name when embedded), UTF-8 for text.
fn content_type(mime: &str) -> String {
    if mime.starts_with("text/") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}
