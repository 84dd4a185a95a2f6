//! Ending long-lived responses when the server shuts down. Graceful shutdown waits for every
//! open response; an event stream never ends by itself, so a browser tab left open would hold
//! SIGTERM until the stop grace runs out. [`end_streams`] ends every `text/event-stream` body
//! as soon as [`Shutdown::begin`] is called, so the server stops in well under a second.

use std::future::Future;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::state::AppState;

/// The server's shutdown flag: set once, observed by every open stream.
#[derive(Debug)]
pub struct Shutdown(watch::Sender<bool>);

impl Default for Shutdown {
    fn default() -> Self {
        Self(watch::channel(false).0)
    }
}

impl Shutdown {
    /// Marks the server as shutting down: every event stream ends now.
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    /// True once [`begin`](Self::begin) was called.
    pub fn started(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the server starts shutting down.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|started| *started).await;
        }
    }
}

/// Middleware: an event-stream response body ends when the server starts shutting down.
pub async fn end_streams(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().take_until(state.shutdown.wait());
    Response::from_parts(parts, Body::from_stream(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_resolves_after_begin_even_when_subscribed_before() {
        let shutdown = Shutdown::default();
        let waiting = shutdown.wait();
        assert!(!shutdown.started());
        shutdown.begin();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("wait resolves");
        assert!(shutdown.started());
        // A late subscriber sees it at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), shutdown.wait())
            .await
            .expect("late wait resolves");
    }
}
