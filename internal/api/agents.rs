//! `GET /api/v1/agents`: the agents a task can be started with on this server (names and
//! types from its config, or the built-in types when the config names none) and the default.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::state::AppState;
use crate::config::AgentType;

/// `GET /api/v1/agents`
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "tasks",
    responses((status = 200, description = "{agents: [{name, type}], default, configured}"))
)]
pub async fn agents(State(state): State<AppState>) -> Json<Value> {
    let config = &state.settings.config;
    let configured = !config.agents.is_empty();
    let agents: Vec<Value> = if configured {
        config
            .agents
            .iter()
            .map(|(name, a)| json!({ "name": name, "type": a.agent_type.as_str() }))
            .collect()
    } else {
        // Without a config, any type but `command` (which needs its command line) works by name.
        AgentType::ALL
            .iter()
            .filter(|t| !matches!(t, AgentType::Command))
            .map(|t| json!({ "name": t.as_str(), "type": t.as_str() }))
            .collect()
    };
    Json(json!({
        "agents": agents,
        "default": config.defaults.agent,
        "configured": configured,
    }))
}
