//! The OpenAPI 3 document of this API, generated from the handlers' `#[utoipa::path]`
//! annotations and their request/response types (`GET /api/v1/openapi.json`). A readable
//! page of it is served by the UI at `/ui/api.html`.

use axum::Json;
use utoipa::OpenApi;

use super::{
    agents, browse, bus, compat, error, events, metrics, run_stream, security, self_update, status,
    tasks,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conductor API",
        description = "Runs AI coding agents as supervised, restartable runs stored as plain files. \
            Errors are {\"error\": {\"code\", \"message\"}}. With an API key configured every /api/ \
            route and /metrics need `Authorization: Bearer <key>` (or the login cookie)."
    ),
    paths(
        status::healthz,
        status::version,
        status::status,
        metrics::metrics,
        browse::projects,
        tasks::create_project,
        browse::tasks,
        browse::task,
        tasks::delete_task,
        tasks::stop_task,
        tasks::resume_task,
        tasks::start_task,
        compat::list,
        compat::show,
        compat::stop,
        bus::read_project_bus,
        bus::post_project_bus,
        bus::stream_project_bus,
        bus::read_task_bus,
        bus::post_task_bus,
        bus::stream_task_bus,
        bus::compat_read,
        bus::compat_post,
        bus::compat_stream,
        browse::runs,
        browse::run,
        browse::run_file,
        tasks::stop_run,
        run_stream::run_stream,
        run_stream::all_runs_stream,
        events::events,
        events::change_topics,
        agents::agents,
        security::login,
        security::logout,
        self_update::status,
        self_update::start,
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        crate::wire::RunSummary,
        crate::wire::StatusBody,
        crate::wire::UpdateSummary,
        crate::wire::RunChange,
        crate::wire::RunStatusEvent,
        crate::wire::LogLines,
        crate::wire::RunEnded,
        crate::wire::BusBatch,
        crate::wire::Resync,
        crate::wire::TopicError,
        crate::wire::StreamHello
    ))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod wire_check;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_routed_path_is_documented() {
        let doc = ApiDoc::openapi();
        let documented: Vec<&String> = doc.paths.paths.keys().collect();
        let routes = include_str!("../mod.rs");
        for line in routes.lines() {
            let Some(start) = line.find("\"/api/v1/") else {
                continue;
            };
            let rest = &line[start + 1..];
            let path = &rest[..rest.find('"').unwrap_or(rest.len())];
            if path == "/api/v1/health" || path == "/api/v1/openapi.json" {
                continue;
            }
            assert!(
                documented.iter().any(|d| d.as_str() == path),
                "{path} is not in the OpenAPI document"
            );
        }
    }
}
