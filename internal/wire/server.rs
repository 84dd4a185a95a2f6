//! Bodies of the routes about the server itself and its sessions: `GET /api/v1/agents`,
//! `POST /api/v1/auth/login|logout`, and the topics of an event stream
//! (`POST /api/v1/events/{stream}/topics`, and the stream's `hello` event).

use serde::{Deserialize, Serialize};

/// An agent a task can be started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentEntry {
    /// The name to pass as `agent` (a config key, or a type name).
    pub name: String,
    /// Its agent type (`claude`, `codex`, …).
    #[serde(rename = "type")]
    pub agent_type: String,
}

/// The answer of `GET /api/v1/agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentList {
    /// The agents of the config, or every built-in type (but `command`) without one.
    pub agents: Vec<AgentEntry>,
    /// `defaults.agent` of the config.
    pub default: Option<String>,
    /// Whether the config names agents.
    pub configured: bool,
}

/// Body of `POST /api/v1/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The API key.
    pub api_key: String,
}

/// The answer of login and logout (the session is in the cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Done {
    /// Always `true`.
    pub ok: bool,
}

impl Done {
    /// `{"ok": true}`.
    pub fn ok() -> Self {
        Self { ok: true }
    }
}

/// Body of `POST /api/v1/events/{stream}/topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicChange {
    /// Topics to follow (with an optional `@` position).
    #[serde(default)]
    pub add: Vec<String>,
    /// Topic names to stop following (a position is ignored).
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The topics of an event stream: the answer of a topic change. The stream's first event,
/// `hello`, carries only `stream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamTopics {
    /// The stream id (what topic changes address).
    pub stream: String,
    /// The topics it follows now, sorted.
    pub topics: Vec<String>,
}

/// The data of an event stream's first event, `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamHello {
    /// The stream id (what topic changes address).
    pub stream: String,
}
