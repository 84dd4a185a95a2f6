//! The HTTP server: routes, shared state, and the serve loop. The server takes an
//! already-bound listener and a shutdown future; nothing binds inside the router, so tests
//! and socket hand-over can pass their own socket.

pub mod agents;
pub mod audit;
pub mod browse;
pub mod bus;
mod bus_follow;
pub mod compat;
pub mod conn;
pub mod error;
pub mod events;
pub mod host;
pub mod index;
pub mod listen;
pub mod lookup;
pub mod metrics;
pub mod openapi;
pub mod range;
pub mod run_files;
mod run_follow;
pub mod run_stream;
pub mod security;
pub mod self_update;
pub mod serve_loop;
pub mod shutdown;
pub mod sse;
pub mod state;
pub mod status;
pub mod task_files;
pub mod task_loops;
pub mod tasks;

use std::future::Future;

use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use state::{AppState, ServerState};

/// Largest request body accepted (larger ones answer 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// All routes of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/api/v1/health", get(status::healthz))
        .route("/api/v1/version", get(status::version))
        .route("/api/v1/status", get(status::status))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route(
            "/api/v1/projects",
            get(browse::projects).post(tasks::create_project),
        )
        .route("/api/v1/projects/{project}/tasks", get(browse::tasks))
        .route(
            "/api/v1/projects/{project}/tasks/{task}",
            get(browse::task).delete(tasks::delete_task),
        )
        .route(
            "/api/v1/projects/{project}/tasks/{task}/stop",
            post(tasks::stop_task),
        )
        .route(
            "/api/v1/projects/{project}/tasks/{task}/resume",
            post(tasks::resume_task),
        )
        .route(
            "/api/v1/projects/{project}/bus",
            get(bus::read_project_bus).post(bus::post_project_bus),
        )
        .route(
            "/api/v1/projects/{project}/bus/stream",
            get(bus::stream_project_bus),
        )
        .route(
            "/api/v1/projects/{project}/tasks/{task}/bus",
            get(bus::read_task_bus).post(bus::post_task_bus),
        )
        .route(
            "/api/v1/projects/{project}/tasks/{task}/bus/stream",
            get(bus::stream_task_bus),
        )
        .route(
            "/api/v1/messages",
            get(bus::compat_read).post(bus::compat_post),
        )
        .route("/api/v1/messages/stream", get(bus::compat_stream))
        .route("/api/v1/tasks", get(compat::list).post(tasks::start_task))
        .route(
            "/api/v1/tasks/{task}",
            get(compat::show).delete(compat::stop),
        )
        .route("/api/v1/agents", get(agents::agents))
        .route("/api/v1/events", get(events::events))
        .route(
            "/api/v1/events/{stream}/topics",
            post(events::change_topics),
        )
        .route("/api/v1/runs", get(browse::runs))
        .route("/api/v1/runs/{run}", get(browse::run))
        .route("/api/v1/runs/{run}/stop", post(tasks::stop_run))
        .route("/api/v1/runs/{run}/stream", get(run_stream::run_stream))
        .route("/api/v1/runs/stream/all", get(run_stream::all_runs_stream))
        .route("/api/v1/runs/{run}/files/{name}", get(browse::run_file))
        .route("/", get(crate::ui::redirect_root))
        .route("/ui", get(crate::ui::redirect_root))
        .route("/ui/", get(crate::ui::index))
        .route("/ui/{*path}", get(crate::ui::file))
        .route(
            "/api/v1/admin/self-update",
            get(self_update::status).post(self_update::start),
        )
        .route("/api/v1/auth/login", post(security::login))
        .route("/api/v1/auth/logout", post(security::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::authenticate,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            shutdown::end_streams,
        ))
        .fallback(error::fallback)
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::cors,
        ))
        // Outermost: a request for another host name never reaches CORS or a handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            host::check_host,
        ))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let _summaries = AuditSummaries::start(&state);
    conn::serve(listener, app, conn::max_connections(), async move {
        shutdown.await;
        state.shutdown.begin();
    })
    .await
}

/// Writes the audit summary of each sampling window of refused requests once it has ended,
/// even when its client has gone quiet; dropping it (the server stops) writes the summaries
/// of the windows still open.
pub struct AuditSummaries {
    state: AppState,
    ticker: tokio::task::JoinHandle<()>,
}

impl AuditSummaries {
    /// Starts the periodic summaries of `state`'s audit log (inside a tokio runtime).
    pub fn start(state: &AppState) -> Self {
        let ticking = state.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(audit::SAMPLE_WINDOW / 6);
            loop {
                tick.tick().await;
                ticking.audit.flush_summaries(false);
            }
        });
        Self {
            state: state.clone(),
            ticker,
        }
    }
}

impl Drop for AuditSummaries {
    fn drop(&mut self) {
        self.ticker.abort();
        self.state.audit.flush_summaries(true);
    }
}
