//! `/metrics` in Prometheus text format: requests by route template and status, runs by
//! status, active task loops, bus appends, SSE clients, self-update state, and the tokens and
//! cost of the runs by agent and model.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::error::ApiError;
use super::state::AppState;
use crate::storage::{RunStatus, UsageTotals};

type Labels = Vec<(String, String)>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    runs: Family<Labels, Gauge>,
    task_loops: Gauge,
    bus_appends: Counter,
    sse_clients: Gauge,
    update_state: Family<Labels, Gauge>,
    sse_open: AtomicI64,
    tokens: Family<Labels, Counter>,
    cost: Family<Labels, Counter<f64, AtomicU64>>,
    /// The usage sums by (agent, model) at the previous scrape: counters grow by what was
    /// added since (runs deleted by gc never make them go down).
    usage_seen: Mutex<HashMap<(String, String), UsageTotals>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("conductor");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let runs = Family::<Labels, Gauge>::default();
        registry.register("runs", "Runs in the tree by status", runs.clone());
        let task_loops = Gauge::default();
        registry.register(
            "task_loops_active",
            "Task loops running in this server",
            task_loops.clone(),
        );
        let bus_appends = Counter::default();
        registry.register(
            "bus_appends",
            "Messages posted through the API",
            bus_appends.clone(),
        );
        let sse_clients = Gauge::default();
        registry.register(
            "sse_clients",
            "Open Server-Sent Events streams",
            sse_clients.clone(),
        );
        let update_state = Family::<Labels, Gauge>::default();
        registry.register(
            "update_state",
            "Self-update state (1 for the current state)",
            update_state.clone(),
        );
        let tokens = Family::<Labels, Counter>::default();
        registry.register(
            "tokens",
            "Tokens the runs' agents reported, by agent type, model and kind (input: all input tokens; cached_input: the cached part of them; output)",
            tokens.clone(),
        );
        let cost = Family::<Labels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "cost_usd",
            "Cost of the runs in US dollars (reported or estimated), by agent type and model",
            cost.clone(),
        );
        Self {
            tokens,
            cost,
            usage_seen: Mutex::new(HashMap::new()),
            registry,
            requests,
            runs,
            task_loops,
            bus_appends,
            sse_clients,
            update_state,
            sse_open: AtomicI64::new(0),
        }
    }
}

impl Metrics {
    /// Adds to the token and cost counters what the runs' usage grew by since the last call.
    fn count_usage(&self, now: std::collections::BTreeMap<(String, String), UsageTotals>) {
        let mut seen = self
            .usage_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((agent, model), totals) in now {
            let before = seen.get(&(agent.clone(), model.clone()));
            let labels = |extra: Option<&str>| {
                let mut l = vec![
                    ("agent".to_string(), agent.clone()),
                    ("model".to_string(), model.clone()),
                ];
                if let Some(kind) = extra {
                    l.push(("kind".to_string(), kind.to_string()));
                }
                l
            };
            for (kind, value, old) in [
                (
                    "input",
                    totals.input_tokens,
                    before.map_or(0, |b| b.input_tokens),
                ),
                (
                    "cached_input",
                    totals.cached_input_tokens,
                    before.map_or(0, |b| b.cached_input_tokens),
                ),
                (
                    "output",
                    totals.output_tokens,
                    before.map_or(0, |b| b.output_tokens),
                ),
            ] {
                let counter = self.tokens.get_or_create(&labels(Some(kind)));
                counter.inc_by(value.saturating_sub(old));
            }
            let added = totals.cost_usd - before.map_or(0.0, |b| b.cost_usd);
            let counter = self.cost.get_or_create(&labels(None));
            if added > 0.0 {
                counter.inc_by(added);
            }
            seen.insert((agent, model), totals);
        }
    }

    /// Counts one message posted through the API.
    pub fn bus_append(&self) {
        self.bus_appends.inc();
    }

    /// Marks an SSE stream open until the guard is dropped.
    pub fn sse_guard(self: &std::sync::Arc<Self>) -> SseGuard {
        self.sse_open.fetch_add(1, Ordering::Relaxed);
        SseGuard(self.clone())
    }
}

/// Decrements the open-SSE count when dropped.
#[derive(Debug)]
pub struct SseGuard(std::sync::Arc<Metrics>);

impl Drop for SseGuard {
    fn drop(&mut self) {
        self.0.sse_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware counting requests by route template (never the raw path) and status.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let labels = vec![
        ("method".to_string(), method),
        ("route".to_string(), route),
        ("status".to_string(), response.status().as_u16().to_string()),
    ];
    state.metrics.requests.get_or_create(&labels).inc();
    response
}

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let m = &state.metrics;
    let counts = state.index.status_counts();
    for status in [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Stopped,
        RunStatus::Unknown,
    ] {
        let labels = vec![("status".to_string(), status.as_str().to_string())];
        m.runs
            .get_or_create(&labels)
            .set(counts.get(&status).copied().unwrap_or(0) as i64);
    }
    m.count_usage(state.index.usage_by_agent_model());
    m.task_loops.set(state.task_loops.active() as i64);
    m.sse_clients.set(m.sse_open.load(Ordering::Relaxed));
    if let Ok(view) = state.update.status() {
        let current = serde_json::to_value(view.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        for name in ["idle", "deferred", "applying", "failed"] {
            let labels = vec![("state".to_string(), name.to_string())];
            m.update_state
                .get_or_create(&labels)
                .set(i64::from(name == current));
        }
    }
    let mut text = String::new();
    encode(&mut text, &m.registry)
        .map_err(|e| ApiError::internal(format!("cannot encode metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
