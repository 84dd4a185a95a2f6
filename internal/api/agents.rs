//! `GET /api/v1/agents`: the agents a task can be started with on this server (names and
//! types from its config, or the built-in types when the config names none) and the default.

use axum::extract::State;
use axum::Json;

use super::state::AppState;
use crate::config::AgentType;
use crate::wire::{AgentEntry, AgentList};

/// `GET /api/v1/agents`
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "tasks",
    responses((status = 200, description = "The agents, the default one, and whether the config names them", body = AgentList))
)]
pub async fn agents(State(state): State<AppState>) -> Json<AgentList> {
    let config = &state.settings.config;
    let configured = !config.agents.is_empty();
    let agents: Vec<AgentEntry> = if configured {
        config
            .agents
            .iter()
            .map(|(name, a)| AgentEntry {
                name: name.clone(),
                agent_type: a.agent_type.as_str().to_string(),
            })
            .collect()
    } else {
        // Without a config, any type but `command` (which needs its command line) works by name.
        AgentType::ALL
            .iter()
            .filter(|t| !matches!(t, AgentType::Command))
            .map(|t| AgentEntry {
                name: t.as_str().to_string(),
                agent_type: t.as_str().to_string(),
            })
            .collect()
    };
    Json(AgentList {
        agents,
        default: config.defaults.agent.clone(),
        configured,
    })
}
